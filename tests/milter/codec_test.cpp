// Unit tests of the milter codec: every command and reply encoded, read back
// through the packet reader split at every byte offset, and decoded to the
// same value; malformed and oversized packets; the stage-to-policy mapping.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "milter/address.h"
#include "milter/codec.h"
#include "milter/policy.h"

using namespace proto::milter;

namespace {

std::vector<Command> all_commands() {
    OptionNegotiation offer{6, action::all_v6, 0x001fffff, {}};
    return {
        Command(offer),
        Command(Macros{'C', {{"j", "mx.example.org"}, {"{daemon_addr}", "192.0.2.25"}, {"_", ""}}}),
        Command(Connect{"client.example.net", '4', 40123, "192.0.2.1"}),
        Command(Connect{"[2001:db8::1]", '6', 25, "IPv6:2001:db8::1"}),
        Command(Connect{"localhost", 'L', 0, "/run/sock"}),
        Command(Connect{"unknown", 'U', 0, ""}),
        Command(Helo{"client.example.net"}),
        Command(Mail{"<a@example.net>", {"SIZE=1234", "BODY=8BITMIME"}}),
        Command(Mail{"<>", {}}),
        Command(Rcpt{"<b@example.org>", {"NOTIFY=NEVER"}}),
        Command(Header{"Subject", " hello"}),
        Command(Header{"X-Empty", ""}),
        Command(EndOfHeaders{}),
        Command(BodyChunk{std::string("line\r\n\0binary\r\n", 15)}),
        Command(BodyChunk{std::string(kChunkSize, 'x')}),
        Command(EndOfMessage{}),
        Command(EndOfMessage{"last chunk"}),
        Command(Abort{}),
        Command(Data{}),
        Command(Unknown{"XYZZY arg"}),
        Command(QuitNewConnection{}),
        Command(Quit{}),
    };
}

std::vector<Reply> all_replies() {
    OptionNegotiation wanted{6, action::add_headers | action::quarantine | action::set_symlist,
                             step::no_unknown | step::no_reply_body, {}};
    wanted.macros[0] = "j {client_addr}";
    wanted.macros[5] = "i";
    return {
        Reply(wanted),
        Reply(Accept{}),
        Reply(Continue{}),
        Reply(Discard{}),
        Reply(Reject{}),
        Reply(Tempfail{}),
        Reply(ReplyCode{"450 4.7.1 Greylisted, see https://example.org/%%"}),
        Reply(ReplyCode{"550-5.7.1 first line\r\n550 5.7.1 second"}),
        Reply(Skip{}),
        Reply(Progress{}),
        Reply(Shutdown{}),
        Reply(ConnectionFailure{}),
        Reply(AddHeader{"X-Policy", "checked"}),
        Reply(InsertHeader{0, "X-Greylist", "delayed 300 seconds"}),
        Reply(ChangeHeader{2, "Subject", ""}),
        Reply(ReplaceBody{std::string("new\0body\r\n", 10)}),
        Reply(AddRcpt{"<c@example.org>"}),
        Reply(AddRcptPar{"<d@example.org>", "NOTIFY=NEVER"}),
        Reply(AddRcptPar{"<e@example.org>", std::nullopt}),
        Reply(DeleteRcpt{"<b@example.org>"}),
        Reply(ChangeFrom{"<f@example.org>", std::nullopt}),
        Reply(ChangeFrom{"<g@example.org>", "SIZE=10"}),
        Reply(Quarantine{"held by policy"}),
        Reply(SetSymbolList{MacroStage::envfrom, "{auth_authen}"}),
    };
}

// Feed wire to a reader in two parts cut at `cut`; return the packets read.
std::vector<Packet> read_split(std::string_view wire, std::size_t cut, std::size_t max_data = kMaxData1M) {
    PacketReader reader(max_data);
    std::vector<Packet> out;
    for (std::string_view part : {wire.substr(0, cut), wire.substr(cut)}) {
        while (!part.empty()) {
            auto r = reader.feed(part);
            EXPECT_NE(r.status, ReadStatus::error) << reader.error();
            if (r.status == ReadStatus::error) return out;
            EXPECT_LE(r.consumed, part.size());
            part.remove_prefix(r.consumed);
            if (r.status == ReadStatus::done) {
                out.push_back(reader.take());
                reader.next();
            } else {
                EXPECT_TRUE(part.empty());
            }
        }
    }
    EXPECT_FALSE(reader.in_progress());
    return out;
}

Packet packet_of(std::string_view wire) {
    PacketReader reader(kMaxData1M);
    auto r = reader.feed(wire);
    EXPECT_EQ(r.status, ReadStatus::done) << reader.error();
    EXPECT_EQ(r.consumed, wire.size());
    return reader.take();
}

// What Postfix 3.7 offers (milter_protocol = 6).
OptionNegotiation postfix_offer() { return OptionNegotiation{6, action::all_v6, 0x001fffff, {}}; }

Packet raw(char code, std::string_view data) { return Packet{code, std::string(data)}; }

std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int c : b) s.push_back(static_cast<char>(c));
    return s;
}

}  // namespace

TEST(MilterCodec, EveryCommandRoundTripsAtEveryByteSplit) {
    for (const auto& command : all_commands()) {
        std::string wire = encode(command);
        ASSERT_GE(wire.size(), 5u);
        EXPECT_EQ(wire[4], code_of(command));
        // Small packets at every offset; the 64 KiB body chunk at a sample
        // of them (the reader's state does not depend on the data bytes).
        std::size_t step = wire.size() > 1000 ? 997 : 1;
        for (std::size_t cut = 0; cut <= wire.size(); cut += step) {
            auto packets = read_split(wire, cut);
            ASSERT_EQ(packets.size(), 1u) << command_name(wire[4]) << " cut " << cut;
            auto decoded = decode_command(packets[0]);
            ASSERT_TRUE(decoded.value) << decoded.error;
            EXPECT_EQ(*decoded.value, command) << command_name(wire[4]) << " cut " << cut;
        }
    }
}

TEST(MilterCodec, EveryReplyRoundTripsAtEveryByteSplit) {
    for (const auto& reply : all_replies()) {
        std::string wire = encode(reply);
        EXPECT_EQ(wire[4], code_of(reply));
        for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
            auto packets = read_split(wire, cut);
            ASSERT_EQ(packets.size(), 1u) << reply_name(wire[4]) << " cut " << cut;
            auto decoded = decode_reply(packets[0]);
            ASSERT_TRUE(decoded.value) << reply_name(wire[4]) << ": " << decoded.error;
            EXPECT_EQ(*decoded.value, reply) << reply_name(wire[4]) << " cut " << cut;
        }
    }
}

TEST(MilterCodec, ASessionStreamReadsTheSameAtEverySplitAndByteByByte) {
    std::string wire;
    std::vector<Command> expected;
    for (const auto& c : all_commands()) {
        if (std::holds_alternative<BodyChunk>(c) && std::get<BodyChunk>(c).bytes.size() > 100) continue;
        wire += encode(c);
        expected.push_back(c);
    }
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
        auto packets = read_split(wire, cut);
        ASSERT_EQ(packets.size(), expected.size()) << "cut " << cut;
        for (std::size_t i = 0; i < packets.size(); ++i)
            EXPECT_EQ(decode_command(packets[i]).value, expected[i]) << "cut " << cut << " packet " << i;
    }
    PacketReader reader;
    std::size_t n = 0;
    for (char byte : wire) {
        auto r = reader.feed(std::string_view(&byte, 1));
        ASSERT_EQ(r.consumed, 1u);
        ASSERT_NE(r.status, ReadStatus::error);
        if (r.status == ReadStatus::done) {
            EXPECT_EQ(decode_command(reader.packet()).value, expected[n++]);
            reader.next();
        }
    }
    EXPECT_EQ(n, expected.size());
}

TEST(MilterCodec, WireFormatMatchesTheSpecification) {
    // mfdef.h / engine.c: length counts the command byte, network byte order.
    EXPECT_EQ(encode(Command(Quit{})), bytes({0, 0, 0, 1, 'Q'}));
    EXPECT_EQ(encode(Reply(Continue{})), bytes({0, 0, 0, 1, 'c'}));
    EXPECT_EQ(encode(Command(Helo{"a"})), bytes({0, 0, 0, 3, 'H', 'a', 0}));
    EXPECT_EQ(encode(Command(Connect{"h", '4', 0x1234, "1.2.3.4"})),
              bytes({0, 0, 0, 14, 'C', 'h', 0, '4', 0x12, 0x34, '1', '.', '2', '.', '3', '.', '4', 0}));
    EXPECT_EQ(encode(Command(OptionNegotiation{6, 0x1ff, 0x3fffff, {}})),
              bytes({0, 0, 0, 13, 'O', 0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x3f, 0xff, 0xff}));
    OptionNegotiation with_list{6, 0x101, 0, {}};
    with_list.macros[5] = "i";
    EXPECT_EQ(encode(Reply(with_list)),
              bytes({0, 0, 0, 19, 'O', 0, 0, 0, 6, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 5, 'i', 0}));
    EXPECT_EQ(encode(Reply(InsertHeader{0, "X", "y"})),
              bytes({0, 0, 0, 9, 'i', 0, 0, 0, 0, 'X', 0, 'y', 0}));
}

TEST(MilterPacketReader, EnforcesTheDataLimitFromTheLengthAlone) {
    // Exactly the limit passes (65535 data bytes: a full body chunk).
    std::string full = encode(Command(BodyChunk{std::string(kMaxDataDefault, 'b')}));
    PacketReader ok;
    auto r = ok.feed(full);
    EXPECT_EQ(r.status, ReadStatus::done);
    EXPECT_EQ(ok.packet().data.size(), kMaxDataDefault);

    // One more is refused after the four length bytes, before any data.
    std::string over = encode(Command(BodyChunk{std::string(kMaxDataDefault + 1, 'b')}));
    PacketReader reader;
    auto first = reader.feed(std::string_view(over).substr(0, 3));
    EXPECT_EQ(first.status, ReadStatus::need_more);
    auto second = reader.feed(std::string_view(over).substr(3));
    EXPECT_EQ(second.status, ReadStatus::error);
    EXPECT_EQ(second.consumed, 1u);
    EXPECT_NE(reader.error().find("exceeds"), std::string::npos);
    // Stays in error until reset.
    EXPECT_EQ(reader.feed(encode(Command(Quit{}))).status, ReadStatus::error);
    reader.reset();
    EXPECT_EQ(reader.feed(encode(Command(Quit{}))).status, ReadStatus::done);

    // A hostile 4 GiB length is refused the same way.
    PacketReader huge;
    EXPECT_EQ(huge.feed(bytes({0xff, 0xff, 0xff, 0xff, 'B'})).status, ReadStatus::error);
    // Length 0 has no command byte (comm.c mi_rd_cmd).
    PacketReader zero;
    EXPECT_EQ(zero.feed(bytes({0, 0, 0, 0})).status, ReadStatus::error);
    // The negotiated steps raise the limit.
    EXPECT_EQ(max_data_for(0), kMaxDataDefault);
    EXPECT_EQ(max_data_for(step::mds_256k), kMaxData256K);
    EXPECT_EQ(max_data_for(step::mds_1m | step::mds_256k), kMaxData1M);
    PacketReader raised(max_data_for(step::mds_256k));
    EXPECT_EQ(raised.feed(over).status, ReadStatus::done);
}

TEST(MilterPacketReader, TruncatedPacketsNeedMoreAndNeverComplete) {
    std::string wire = encode(Command(Mail{"<a@b>", {"SIZE=1"}}));
    for (std::size_t n = 0; n < wire.size(); ++n) {
        PacketReader reader;
        auto r = reader.feed(std::string_view(wire).substr(0, n));
        EXPECT_EQ(r.status, ReadStatus::need_more) << n;
        EXPECT_EQ(r.consumed, n);
        EXPECT_EQ(reader.in_progress(), n > 0);
    }
}

TEST(MilterCodec, MalformedCommandsAreErrorsWithReasons) {
    struct Case {
        Packet p;
        std::string_view why;
    };
    std::vector<Case> cases = {
        {raw('O', bytes({0, 0, 0, 6, 0, 0, 0, 0})), "shorter than 12"},
        {raw('O', bytes({0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})), "below 2"},
        {raw('O', bytes({0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 'i', 0})), "unknown stage"},
        {raw('O', bytes({0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'i'})), "truncated"},
        {raw('D', ""), "empty"},
        {raw('D', std::string("Ci\0", 3)), "without a value"},
        {raw('D', std::string("Ci", 2)), "without NUL"},
        {raw('C', "host"), "hostname without NUL"},
        {raw('C', std::string("host\0", 5)), "no address family"},
        {raw('C', std::string("host\0X\0\0a\0", 10)), "unknown address family"},
        {raw('C', std::string("host\0" "4\0", 7)), "no port"},
        {raw('C', std::string("host\0" "4\0\0" "1.2.3.4", 15)), "address without NUL"},
        {raw('C', std::string("host\0U\0", 7)), "trailing"},
        {raw('H', "name"), "not one string"},
        {raw('H', std::string("a\0b\0", 4)), "not one string"},
        {raw('M', ""), "no NUL-terminated"},
        {raw('M', std::string("<a>\0SIZE=1", 10)), "no NUL-terminated"},
        {raw('R', "<b>"), "no NUL-terminated"},
        {raw('L', std::string("Subject\0", 8)), "not a name and a value"},
        {raw('L', std::string("a\0b\0c\0", 6)), "not a name and a value"},
        {raw('U', "XYZZY"), "not one string"},
        {raw('Z', ""), "unknown command byte 0x5a"},
        {raw('\xff', ""), "unknown command byte 0xff"},
    };
    for (const auto& c : cases) {
        auto d = decode_command(c.p);
        EXPECT_FALSE(d.value) << command_name(c.p.code) << " " << c.why;
        EXPECT_NE(d.error.find(c.why), std::string::npos) << d.error << " / " << c.why;
    }
    // Commands without data ignore any, as libmilter does.
    EXPECT_EQ(decode_command(raw('Q', "junk")).value, Command(Quit{}));
}

TEST(MilterCodec, MalformedRepliesAreErrors) {
    std::vector<Packet> cases = {
        raw('y', "250 ok"),      raw('y', std::string("2xx\0", 4)), raw('y', std::string("45\0", 3)),
        raw('y', std::string("450x\0", 5)), raw('y', "450 no nul"),
        raw('h', std::string("X\0", 2)), raw('i', std::string("\0\0\0", 3)),
        raw('m', std::string("\0\0\0\1X\0", 6)), raw('+', "<a>"), raw('-', std::string("a\0b\0", 4)),
        raw('2', std::string("a\0b\0c\0", 6)), raw('e', ""), raw('q', "x"),
        raw('l', std::string("\0\0\0\7x\0", 6)), raw('O', "short"), raw('z', ""),
    };
    for (const auto& p : cases) {
        auto d = decode_reply(p);
        EXPECT_FALSE(d.value) << p.code << " " << p.data.size();
        EXPECT_FALSE(d.error.empty());
    }
    EXPECT_TRUE(decode_reply(raw('y', std::string("421\0", 4))).value);
}

TEST(MilterCodec, TheCommandTableSaysWhatIsSentAndAnswered) {
    EXPECT_TRUE(expects_reply('R', 0));
    EXPECT_FALSE(expects_reply('R', step::no_reply_rcpt));
    EXPECT_TRUE(expects_reply('L', step::no_reply_body));
    EXPECT_FALSE(expects_reply('L', step::no_reply_header));
    EXPECT_FALSE(expects_reply('D', 0));
    EXPECT_FALSE(expects_reply('A', 0));
    EXPECT_FALSE(expects_reply('Q', 0));
    EXPECT_TRUE(expects_reply('E', ~0u));  // end of message is always answered
    EXPECT_FALSE(expects_reply('z', 0));
    EXPECT_TRUE(is_sent('T', step::no_body));
    EXPECT_FALSE(is_sent('T', step::no_data));
    EXPECT_FALSE(is_sent('U', step::no_unknown));
    EXPECT_TRUE(is_sent('O', ~0u));
    // Every command the codec encodes has a row.
    for (const auto& c : all_commands()) EXPECT_NE(command_info(code_of(c)), nullptr);
}

TEST(MilterCodec, NamesComeFromOneTable) {
    EXPECT_EQ(command_name('R'), "SMFIC_RCPT");
    EXPECT_EQ(command_name('K'), "SMFIC_QUIT_NC");
    EXPECT_EQ(reply_name('y'), "SMFIR_REPLYCODE");
    EXPECT_EQ(reply_name('2'), "SMFIR_ADDRCPT_PAR");
    EXPECT_EQ(command_name('z'), "unknown");
}

TEST(MilterCodec, TheMtaSideChecksTheFiltersNegotiation) {
    OptionNegotiation offer{6, action::add_headers | action::quarantine, step::no_body | step::no_reply_header, {}};
    auto ok = check_negotiation(offer, OptionNegotiation{6, action::add_headers, step::no_body | step::skip, {}});
    EXPECT_EQ(ok.error, "");
    EXPECT_EQ(ok.actions, action::add_headers);
    EXPECT_EQ(ok.steps_in_force, step::no_body);  // SMFIP_SKIP was not offered
    EXPECT_EQ(check_negotiation(offer, OptionNegotiation{2, 0, 0, {}}).error, "");
    EXPECT_NE(check_negotiation(offer, OptionNegotiation{7, 0, 0, {}}).error.find("version 7"), std::string::npos);
    EXPECT_NE(check_negotiation(offer, OptionNegotiation{6, action::change_body, 0, {}}).error.find("not offered"),
              std::string::npos);
    // What the daemons answer always passes Postfix's check.
    auto mine = negotiate_policy_filter(postfix_offer());
    ASSERT_TRUE(mine.reply);
    EXPECT_EQ(check_negotiation(postfix_offer(), *mine.reply).error, "");
}

// ---- The mapping to and from the policy protocol ---------------------------

TEST(MilterPolicy, NegotiationAsksOnlyForWhatIsOfferedAndNeeded) {
    OptionNegotiation postfix{6, action::all_v6, 0x001fffff, {}};
    auto n = negotiate_policy_filter(postfix);
    ASSERT_TRUE(n.reply);
    EXPECT_EQ(n.reply->version, 6u);
    EXPECT_EQ(n.reply->actions, action::add_headers | action::quarantine | action::set_symlist);
    EXPECT_TRUE(n.reply->steps & step::no_reply_body);
    EXPECT_TRUE(n.reply->steps & step::no_unknown);
    EXPECT_FALSE(n.reply->steps & step::header_leading_space);
    EXPECT_FALSE(n.reply->steps & (step::no_connect | step::no_helo | step::no_mail | step::no_rcpt));
    EXPECT_FALSE(n.reply->steps & (step::no_reply_rcpt | step::no_body));
    ASSERT_TRUE(n.reply->macros[static_cast<int>(MacroStage::envfrom)]);
    EXPECT_NE(n.reply->macros[static_cast<int>(MacroStage::envfrom)]->find("{auth_authen}"),
              std::string::npos);
    // An old MTA (version 2, no symbol lists, few steps): only the subset.
    auto old = negotiate_policy_filter(OptionNegotiation{2, action::add_headers, 0x7f, {}});
    ASSERT_TRUE(old.reply);
    EXPECT_EQ(old.reply->version, 2u);
    EXPECT_EQ(old.reply->actions, action::add_headers);
    EXPECT_EQ(old.reply->steps & ~0x7fu, 0u);
    EXPECT_FALSE(old.reply->macros[0]);
    EXPECT_FALSE(negotiate_policy_filter(OptionNegotiation{1, 0, 0, {}}).reply);
}

TEST(MilterPolicy, StagesBecomePolicyRequests) {
    Session s;
    s.define(Macros{'C', {{"j", "mx.example.org"}, {"{daemon_addr}", "192.0.2.25"},
                          {"{daemon_port}", "25"}, {"{client_ptr}", "ptr.example.net"}}});
    s.connect(Connect{"[192.0.2.1]", '4', 40000, "192.0.2.1"});
    auto c = s.request(Stage::connect);
    EXPECT_EQ(c.get("request"), "smtpd_access_policy");
    EXPECT_EQ(c.get("protocol_state"), "CONNECT");
    EXPECT_EQ(c.get("client_address"), "192.0.2.1");
    EXPECT_EQ(c.get("client_name"), "unknown");
    EXPECT_EQ(c.get("reverse_client_name"), "ptr.example.net");
    EXPECT_EQ(c.get("client_port"), "40000");
    EXPECT_EQ(c.get("server_address"), "192.0.2.25");

    s.helo(Helo{"helo.example.net"});
    s.define(Macros{'M', {{"{auth_authen}", "alice"}, {"{auth_type}", "PLAIN"}}});
    s.mail(Mail{"<a@example.net>", {"BODY=8BITMIME", "size=4321"}}, "m1");
    auto m = s.request(Stage::mail);
    EXPECT_EQ(m.get("protocol_state"), "MAIL");
    EXPECT_EQ(m.get("helo_name"), "helo.example.net");
    EXPECT_EQ(m.get("sender"), "a@example.net");
    EXPECT_EQ(m.get("sasl_username"), "alice");
    EXPECT_EQ(m.get("sasl_method"), "PLAIN");
    EXPECT_EQ(m.get("size"), "4321");
    EXPECT_EQ(m.get("instance"), "m1");
    EXPECT_EQ(m.get("queue_id"), "");  // Postfix defines {i} only later by default

    s.rcpt(Rcpt{"<b@example.org>", {}});
    auto r = s.request(Stage::rcpt);
    EXPECT_EQ(r.get("protocol_state"), "RCPT");
    EXPECT_EQ(r.get("recipient"), "b@example.org");
    EXPECT_EQ(r.get("recipient_count"), "0");
    s.recipient_accepted();
    s.rcpt(Rcpt{"<c@example.org>", {}});
    s.recipient_accepted();

    s.header(Header{"Subject", "hi"}, false);  // "Subject: hi\r\n" = 13
    s.end_of_headers();                        // 2
    s.body(10);
    s.define(Macros{'E', {{"i", "4ABC123"}}});
    auto e = s.request(Stage::end_of_message);
    EXPECT_EQ(e.get("protocol_state"), "END-OF-MESSAGE");
    EXPECT_EQ(e.get("queue_id"), "4ABC123");
    EXPECT_EQ(e.get("recipient_count"), "2");
    EXPECT_EQ(e.get("size"), "25");
    EXPECT_EQ(e.get("recipient"), "");
    EXPECT_EQ(e.get("instance"), "m1");

    // A new message forgets the old one's facts but keeps the connection's.
    s.end_message();
    s.mail(Mail{"<>", {}}, "m2");
    auto m2 = s.request(Stage::mail);
    EXPECT_EQ(m2.get("sender"), "");
    EXPECT_EQ(m2.get("instance"), "m2");
    EXPECT_EQ(m2.get("sasl_username"), "");
    EXPECT_EQ(m2.get("queue_id"), "");
    EXPECT_EQ(m2.get("client_address"), "192.0.2.1");
    EXPECT_EQ(m2.get("size"), "0");
}

TEST(MilterPolicy, ConnectNamesAndAddressesAsPostfixWouldReportThem) {
    Session v6;
    v6.connect(Connect{"mail.example.net", '6', 25, "IPv6:2001:db8::1"});
    auto r = v6.request(Stage::connect);
    EXPECT_EQ(r.get("client_address"), "2001:db8::1");
    EXPECT_EQ(r.get("client_name"), "mail.example.net");
    EXPECT_EQ(r.get("reverse_client_name"), "mail.example.net");
    // A unix-socket or unknown peer: the address from {client_addr}, if sent.
    Session local;
    local.define(Macros{'C', {{"{client_addr}", "192.0.2.9"}}});
    local.connect(Connect{"localhost", 'U', 0, ""});
    EXPECT_EQ(local.request(Stage::connect).get("client_address"), "192.0.2.9");
}

TEST(MilterPolicy, VerdictsMapToRepliesWithMatchingCodes) {
    using proto::policy::parse_action;
    auto verdict = [](std::string_view a) { return map_action(*parse_action(a).action); };
    auto text = [](const StageVerdict& v) { return std::get<ReplyCode>(v.reply).text; };

    EXPECT_TRUE(std::holds_alternative<Continue>(verdict("DUNNO").reply));
    EXPECT_TRUE(std::holds_alternative<Continue>(verdict("OK").reply));
    EXPECT_EQ(text(verdict("REJECT SPF fail: not permitted")), "554 5.7.1 SPF fail: not permitted");
    EXPECT_EQ(text(verdict("REJECT")), "554 5.7.1 Access denied");
    EXPECT_EQ(text(verdict("DEFER_IF_PERMIT Greylisted, see https://x/%d")),
              "450 4.7.1 Greylisted, see https://x/%%d");
    EXPECT_EQ(text(verdict("DEFER")), "450 4.7.1 Try again later");
    EXPECT_EQ(text(verdict("452 4.2.2 Rate limit exceeded")), "452 4.2.2 Rate limit exceeded");
    // An enhanced code of the wrong class is replaced, never passed on.
    EXPECT_EQ(text(verdict("450 5.7.1 mixed")), "450 4.7.1 mixed");
    EXPECT_EQ(text(verdict("550 too many")), "550 5.7.1 too many");
    EXPECT_TRUE(std::holds_alternative<Discard>(verdict("DISCARD spam").reply));

    auto p = verdict("PREPEND X-Greylist: delayed 2 seconds by policyd-greylist");
    EXPECT_TRUE(std::holds_alternative<Continue>(p.reply));
    ASSERT_TRUE(p.prepend);
    EXPECT_EQ(p.prepend->index, 0u);
    EXPECT_EQ(p.prepend->name, "X-Greylist");
    EXPECT_EQ(p.prepend->value, "delayed 2 seconds by policyd-greylist");
    EXPECT_TRUE(map_action({proto::policy::ActionKind::prepend, "no colon here", {}}).unsupported);

    auto h = verdict("HOLD suspicious");
    EXPECT_TRUE(std::holds_alternative<Continue>(h.reply));
    EXPECT_EQ(h.quarantine, "suspicious");
    EXPECT_EQ(verdict("HOLD").quarantine, "held by policy");
    EXPECT_TRUE(verdict("REDIRECT a@b").unsupported);
    EXPECT_FALSE(verdict("WARN note").unsupported);
}

TEST(MilterPolicy, ReplyTextIsMadeSafe) {
    EXPECT_EQ(safe_reply_text("a\r\n250 injected"), "a  250 injected");
    EXPECT_EQ(safe_reply_text("100%"), "100%%");
    EXPECT_EQ(safe_reply_text(std::string("nul\0ctl\x7f\xc3\xa9", 10)), "nul ctl");
    std::string long_text(2000, 'x');
    EXPECT_EQ(safe_reply_text(long_text).size(), kMaxReplyText);
    // Doubling happens after the cut, so a '%' is never split from its twin.
    std::string percents(kMaxReplyText + 10, '%');
    EXPECT_EQ(safe_reply_text(percents).size(), 2 * kMaxReplyText);
    auto code = make_reply_code("554", std::string("bad\nline"));
    EXPECT_EQ(code.text, "554 5.7.1 bad line");
    EXPECT_TRUE(decode_reply(packet_of(encode(Reply(code)))).value);
}

TEST(MilterAddress, LibmilterNotationBecomesEndpoints) {
    auto inet = parse_address("inet:10025@127.0.0.1");
    ASSERT_TRUE(inet.endpoint) << inet.error;
    EXPECT_EQ(inet.endpoint->host, "127.0.0.1");
    EXPECT_EQ(inet.endpoint->port, 10025);
    // Postfix's notation for the same socket, as the logs show it.
    EXPECT_EQ(inet.endpoint->to_string(), "inet:127.0.0.1:10025");
    EXPECT_EQ(parse_address("inet:8891@localhost").endpoint->host, "localhost");
    EXPECT_EQ(parse_address("inet:8891").endpoint->host, "0.0.0.0");
    EXPECT_EQ(parse_address("inet6:8891@[::1]").endpoint->host, "::1");
    EXPECT_EQ(parse_address("inet6:8891@::1").endpoint->host, "::1");
    EXPECT_EQ(parse_address("inet6:8891").endpoint->host, "::");
    EXPECT_EQ(parse_address("inet6:8891@[::1]").endpoint->to_string(), "inet:[::1]:8891");
    for (std::string_view unix_form : {"unix:/run/m.sock", "local:/run/m.sock", "/run/m.sock"}) {
        auto u = parse_address(unix_form);
        ASSERT_TRUE(u.endpoint) << unix_form << ": " << u.error;
        EXPECT_EQ(u.endpoint->kind, proto::net::Endpoint::Kind::unix_socket);
        EXPECT_EQ(u.endpoint->path, "/run/m.sock");
    }
}

TEST(MilterAddress, BadAddressesAreErrorsWithReasons) {
    struct Case {
        std::string_view text, why;
    };
    for (auto [text, why] : std::initializer_list<Case>{
             {"inet:99999@127.0.0.1", "not a port"},
             {"inet:@127.0.0.1", "not a port"},
             {"inet:25x@h", "not a port"},
             {"inet:25@", "empty host"},
             {"inet:25@::1", "needs inet6"},
             {"inet6:25@127.0.0.1", "IPv6 address"},
             {"inet:25@h st", "bad host"},
             {"inet:25@h\nx", "bad host"},
             {"inet:127.0.0.1:10025", "not a port"},  // Postfix's notation is not milter's
             {"unix:relative", "absolute path"},
             {"unix:", "absolute path"},
             {"tcp:25@h", "expected inet"},
             {"", "expected inet"},
         }) {
        auto p = parse_address(text);
        EXPECT_FALSE(p.endpoint) << text;
        EXPECT_NE(p.error.find(why), std::string::npos) << text << ": " << p.error;
    }
    EXPECT_FALSE(parse_address("unix:/" + std::string(200, 'a')).endpoint);
    EXPECT_FALSE(parse_address(std::string("unix:/a\0b", 9)).endpoint);
}
