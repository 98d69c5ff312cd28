-- policyd-greylist through the milter protocol: a new triplet gets a reply
-- code (4xx) at RCPT, the retry passes and end of message inserts the
-- X-Greylist header. Run by tests/milter/daemon_test.cpp with delay 0.
dofile(os.getenv("MILTERTEST_DIR") .. "/common.lua")

local conn = open_session("192.0.2.1", "client.example.net")
check("mail", mt.mailfrom(conn, "<alice@example.net>"))
expect(conn, "mail", SMFIR_CONTINUE)
check("rcpt", mt.rcptto(conn, "<bob@example.org>"))
expect(conn, "rcpt of a new triplet", SMFIR_REPLYCODE)
check("abort", mt.abort(conn))

check("mail", mt.mailfrom(conn, "<alice@example.net>"))
expect(conn, "mail", SMFIR_CONTINUE)
check("rcpt", mt.rcptto(conn, "<bob@example.org>"))
expect(conn, "rcpt of the retry", SMFIR_CONTINUE)
finish_message(conn, SMFIR_CONTINUE)
if not mt.eom_check(conn, MT_HDRINSERT, "X-Greylist") then error("no X-Greylist header inserted") end
local value = mt.getheader(conn, "X-Greylist", 0)
if value == nil or not string.find(value, "^delayed %d+ seconds by policyd%-greylist at mx%.test; ") then
    error("X-Greylist: " .. tostring(value))
end
mt.disconnect(conn)
