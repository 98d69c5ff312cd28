-- policyd-ratelimit through the milter protocol with a limit of two
-- recipients per client: the third recipient of the message gets a reply
-- code, the message goes on for the other two.
dofile(os.getenv("MILTERTEST_DIR") .. "/common.lua")

local conn = open_session("192.0.2.10", "client.example.net")
check("mail", mt.mailfrom(conn, "<alice@example.org>"))
expect(conn, "mail", SMFIR_CONTINUE)
for i, want in ipairs({SMFIR_CONTINUE, SMFIR_CONTINUE, SMFIR_REPLYCODE}) do
    check("rcpt", mt.rcptto(conn, "<r" .. i .. "@example.net>"))
    expect(conn, "rcpt " .. i, want)
end
finish_message(conn, SMFIR_CONTINUE)
mt.disconnect(conn)
