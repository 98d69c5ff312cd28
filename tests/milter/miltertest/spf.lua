-- policyd-spf through the milter protocol: a sender whose domain fails SPF
-- for the client is refused with a reply code at MAIL; one that passes gets
-- its Received-SPF header inserted at end of message.
dofile(os.getenv("MILTERTEST_DIR") .. "/common.lua")

local conn = open_session("192.0.2.99", "none.example")
check("mail", mt.mailfrom(conn, "<alice@fail.example>"))
expect(conn, "mail from an SPF fail", SMFIR_REPLYCODE)
check("abort", mt.abort(conn))

check("mail", mt.mailfrom(conn, "<alice@pass.example>"))
expect(conn, "mail", SMFIR_CONTINUE)
check("rcpt", mt.rcptto(conn, "<bob@example.net>"))
expect(conn, "rcpt from an SPF pass", SMFIR_CONTINUE)
finish_message(conn, SMFIR_CONTINUE)
if not mt.eom_check(conn, MT_HDRINSERT, "Received-SPF") then error("no Received-SPF header inserted") end
local value = mt.getheader(conn, "Received-SPF", 0)
-- Both are inserted at the top, the HELO identity's first, so the MAIL
-- FROM identity's ends up above it.
local value = mt.getheader(conn, "Received-SPF", 0)
if value == nil or not string.find(value, "^Pass ") then error("Received-SPF: " .. tostring(value)) end
mt.disconnect(conn)
