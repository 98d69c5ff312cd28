-- Helpers for the miltertest scripts: the daemon's socket comes from
-- MILTER_SOCKET; every step must succeed and get the expected reply.
function open_session(client_ip, helo)
    local conn = mt.connect(os.getenv("MILTER_SOCKET"))
    if conn == nil then error("cannot connect to " .. tostring(os.getenv("MILTER_SOCKET"))) end
    check("conninfo", mt.conninfo(conn, helo, client_ip))
    expect(conn, "connect", SMFIR_CONTINUE)
    check("helo", mt.helo(conn, helo))
    expect(conn, "helo", SMFIR_CONTINUE)
    return conn
end

function check(what, err)
    if err ~= nil then error(what .. " failed: " .. tostring(err)) end
end

function expect(conn, what, want)
    local got = mt.getreply(conn)
    if got ~= want then
        error(string.format("%s: reply '%s', expected '%s'", what, string.char(got), string.char(want)))
    end
end

-- Headers, body and end of message; the end-of-message reply is checked.
function finish_message(conn, want)
    check("header", mt.header(conn, "Subject", "miltertest"))
    check("eoh", mt.eoh(conn))
    check("body", mt.bodystring(conn, "Hello from miltertest.\r\n"))
    check("eom", mt.eom(conn))
    expect(conn, "end of message", want)
end
