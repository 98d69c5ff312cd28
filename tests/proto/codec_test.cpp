// Unit tests of the I/O-free codecs: policy requests, access(5) actions,
// policy replies, endpoints and networks.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>

#include "net/address.h"
#include "net/endpoint_asio.h"
#include "policy/action.h"
#include "policy/client.h"
#include "policy/request.h"

using namespace proto;
using policy::ActionKind;
using policy::ParseStatus;
using policy::RequestParser;

namespace {

const std::string kRequest =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTP\n"
    "client_address=192.0.2.1\n"
    "client_name=\n"
    "sender=a@example.org\n"
    "recipient=b@example.net\n"
    "x_unknown_attribute=kept\n"
    "\n";

std::vector<policy::Request::Attribute> attrs(const policy::Request& r) {
    return {r.attributes().begin(), r.attributes().end()};
}

}  // namespace

TEST(RequestParser, ParsesWholeRequestAndKeepsUnknownAndEmpty) {
    RequestParser p;
    auto r = p.feed(kRequest);
    ASSERT_EQ(r.status, ParseStatus::done);
    EXPECT_EQ(r.consumed, kRequest.size());
    auto req = p.take();
    EXPECT_EQ(req.get("protocol_state"), "RCPT");
    EXPECT_EQ(req.get("client_name"), "");
    EXPECT_TRUE(req.has("client_name"));
    EXPECT_EQ(req.get("x_unknown_attribute"), "kept");
    EXPECT_FALSE(req.has("missing"));
    EXPECT_EQ(req.attributes().size(), 8u);
}

TEST(RequestParser, EveryByteSplitGivesTheSameRequest) {
    RequestParser whole;
    whole.feed(kRequest);
    auto expected = attrs(whole.take());
    for (std::size_t cut = 0; cut <= kRequest.size(); ++cut) {
        RequestParser p;
        auto first = p.feed(std::string_view(kRequest).substr(0, cut));
        if (cut < kRequest.size()) {
            ASSERT_EQ(first.status, ParseStatus::need_more) << "cut " << cut;
            ASSERT_EQ(first.consumed, cut);
            auto second = p.feed(std::string_view(kRequest).substr(cut));
            ASSERT_EQ(second.status, ParseStatus::done) << "cut " << cut;
        } else {
            ASSERT_EQ(first.status, ParseStatus::done);
        }
        EXPECT_EQ(attrs(p.take()), expected) << "cut " << cut;
    }
}

TEST(RequestParser, ByteAtATime) {
    RequestParser p;
    for (std::size_t i = 0; i + 1 < kRequest.size(); ++i)
        ASSERT_EQ(p.feed(kRequest.substr(i, 1)).status, ParseStatus::need_more);
    EXPECT_EQ(p.feed(kRequest.substr(kRequest.size() - 1)).status, ParseStatus::done);
}

TEST(RequestParser, CrLfLineEnds) {
    RequestParser p;
    auto r = p.feed("protocol_state=RCPT\r\nsender=x@y\r\n\r\n");
    ASSERT_EQ(r.status, ParseStatus::done);
    auto req = p.take();
    EXPECT_EQ(req.get("protocol_state"), "RCPT");
    EXPECT_EQ(req.get("sender"), "x@y");
}

TEST(RequestParser, TwoRequestsInOneBufferStopAtTheFirst) {
    RequestParser p;
    std::string two = kRequest + "protocol_state=DATA\n\n";
    auto r = p.feed(two);
    ASSERT_EQ(r.status, ParseStatus::done);
    EXPECT_EQ(r.consumed, kRequest.size());
    p.take();
    r = p.feed(std::string_view(two).substr(kRequest.size()));
    ASSERT_EQ(r.status, ParseStatus::done);
    EXPECT_EQ(p.take().get("protocol_state"), "DATA");
}

TEST(RequestParser, ValueMayContainEqualsSign) {
    RequestParser p;
    ASSERT_EQ(p.feed("sender=prvs=1234=a@b\n\n").status, ParseStatus::done);
    EXPECT_EQ(p.take().get("sender"), "prvs=1234=a@b");
}

TEST(RequestParser, LineLimitIsExactlyEightKiB) {
    policy::Limits limits;
    // name "a=" + value + LF == max_line passes; one more byte fails.
    std::string ok_line = "a=" + std::string(limits.max_line - 3, 'x') + "\n";
    RequestParser ok;
    EXPECT_EQ(ok.feed(ok_line + "\n").status, ParseStatus::done);
    RequestParser bad;
    EXPECT_EQ(bad.feed("a=" + std::string(limits.max_line - 2, 'x') + "\n\n").status,
              ParseStatus::error);
    EXPECT_NE(bad.error().find("line longer"), std::string::npos);
}

TEST(RequestParser, LineLimitHoldsWithoutNewline) {
    RequestParser p;
    std::string chunk(1000, 'x');
    ParseStatus st = ParseStatus::need_more;
    for (int i = 0; i < 20 && st == ParseStatus::need_more; ++i) st = p.feed(chunk).status;
    EXPECT_EQ(st, ParseStatus::error);
}

TEST(RequestParser, AttributeCountLimit) {
    std::string req;
    for (int i = 0; i < 128; ++i) req += "a" + std::to_string(i) + "=v\n";
    RequestParser ok;
    EXPECT_EQ(ok.feed(req + "\n").status, ParseStatus::done);
    RequestParser bad;
    EXPECT_EQ(bad.feed(req + "extra=v\n\n").status, ParseStatus::error);
    EXPECT_NE(bad.error().find("attributes"), std::string::npos);
}

TEST(RequestParser, RequestSizeLimit) {
    // 100 lines of 700 bytes = 70 KB > 64 KiB, each line under the line limit.
    std::string req;
    for (int i = 0; i < 100; ++i) req += "a" + std::to_string(i) + "=" + std::string(700, 'v') + "\n";
    RequestParser p;
    EXPECT_EQ(p.feed(req + "\n").status, ParseStatus::error);
    EXPECT_NE(p.error().find("request larger"), std::string::npos);
}

TEST(RequestParser, MalformedInputs) {
    for (const std::string& bad : std::vector<std::string>{"\n", "noequals\n\n", "=value\n\n", "sp ace=v\n\n",
                            std::string("a=b\0c\n\n", 7), "na\xffme=v\n\n", "a=b\rc\n\n", "a=b\r\r\n\n"}) {
        RequestParser p;
        EXPECT_EQ(p.feed(bad).status, ParseStatus::error) << bad;
        EXPECT_FALSE(p.error().empty());
        // Stays in error until reset.
        EXPECT_EQ(p.feed("a=b\n\n").status, ParseStatus::error);
        p.reset();
        EXPECT_EQ(p.feed("a=b\n\n").status, ParseStatus::done);
    }
}

TEST(RequestParser, SerializeRoundTrip) {
    policy::Request r;
    r.set("request", "smtpd_access_policy");
    r.set("sender", "");
    r.set("request", "replaced");
    EXPECT_EQ(r.serialize(), "request=replaced\nsender=\n\n");
    RequestParser p;
    ASSERT_EQ(p.feed(r.serialize()).status, ParseStatus::done);
    EXPECT_EQ(attrs(p.take()), attrs(r));
}

struct ActionCase {
    std::string text;
    ActionKind kind;
    std::string rest;
};

TEST(Action, EveryAccessAction) {
    std::vector<ActionCase> cases = {
        {"OK", ActionKind::ok, ""},
        {"ok", ActionKind::ok, ""},
        {"DUNNO", ActionKind::dunno, ""},
        {"REJECT", ActionKind::reject, ""},
        {"REJECT go away", ActionKind::reject, "go away"},
        {"DEFER", ActionKind::defer, ""},
        {"DEFER try later", ActionKind::defer, "try later"},
        {"DEFER_IF_PERMIT 4.7.1 Greylisted", ActionKind::defer_if_permit, "4.7.1 Greylisted"},
        {"DEFER_IF_REJECT maybe", ActionKind::defer_if_reject, "maybe"},
        {"450 4.7.1 Try later", ActionKind::smtp_4xx, "4.7.1 Try later"},
        {"550 5.7.23 SPF fail", ActionKind::smtp_5xx, "5.7.23 SPF fail"},
        {"PREPEND X-Greylist: delayed 300 seconds", ActionKind::prepend,
         "X-Greylist: delayed 300 seconds"},
        {"HOLD", ActionKind::hold, ""},
        {"HOLD quarantine", ActionKind::hold, "quarantine"},
        {"DISCARD", ActionKind::discard, ""},
        {"REDIRECT abuse@example.org", ActionKind::redirect, "abuse@example.org"},
        {"FILTER smtp:[127.0.0.1]:10025", ActionKind::filter, "smtp:[127.0.0.1]:10025"},
        {"BCC archive@example.org", ActionKind::bcc, "archive@example.org"},
        {"WARN suspicious", ActionKind::warn, "suspicious"},
        {"INFO noted", ActionKind::info, "noted"},
        {"12345", ActionKind::ok, ""},
        {"45 text", ActionKind::ok, "text"},  // access(5): all-numerical means OK
        {"  DUNNO  ", ActionKind::dunno, ""},
    };
    for (const auto& c : cases) {
        auto parsed = policy::parse_action(c.text);
        ASSERT_TRUE(parsed.action) << c.text << ": " << parsed.error;
        EXPECT_EQ(parsed.action->kind, c.kind) << c.text;
        EXPECT_EQ(parsed.action->text, c.rest) << c.text;
    }
    auto code = policy::parse_action("451 4.3.5 later");
    EXPECT_EQ(code.action->code, "451");
    EXPECT_EQ(code.action->to_string(), "451 4.3.5 later");
    EXPECT_EQ(policy::parse_action("defer_if_permit x").action->to_string(), "DEFER_IF_PERMIT x");
}

TEST(Action, MalformedActionsAreRefused) {
    for (const std::string& bad : std::vector<std::string>{"", "   ", "MAYBE", "PREPEND", "PREPEND no colon here",
                            "PREPEND : empty name", "REDIRECT", "REDIRECT nobody",
                            "REDIRECT a@b c@d", "FILTER", "FILTER nocolon", "BCC", "4x0 text", std::string("REJECT a\nb"), std::string("OK\0", 3)}) {
        auto parsed = policy::parse_action(bad);
        EXPECT_FALSE(parsed.action) << "accepted: " << bad;
        EXPECT_FALSE(parsed.error.empty());
    }
}

TEST(Action, RefusesAndKeywords) {
    EXPECT_TRUE(policy::parse_action("REJECT").action->refuses());
    EXPECT_TRUE(policy::parse_action("554 no").action->refuses());
    EXPECT_FALSE(policy::parse_action("DUNNO").action->refuses());
    EXPECT_EQ(policy::parse_action("554 no").action->keyword(), "554");
}

TEST(Reply, ParseReplyBlocks) {
    EXPECT_EQ(policy::parse_reply("action=DUNNO\n\n").action->kind, ActionKind::dunno);
    EXPECT_EQ(policy::parse_reply("action=REJECT no\r\n\r\n").action->text, "no");
    EXPECT_EQ(policy::parse_reply("x=1\naction=OK\n\n").action->kind, ActionKind::ok);
    EXPECT_FALSE(policy::parse_reply("\n").action);
    EXPECT_FALSE(policy::parse_reply("action=DUNNO\naction=OK\n\n").action);
    EXPECT_FALSE(policy::parse_reply("action=WHATEVER\n\n").action);
    EXPECT_FALSE(policy::parse_reply("garbage\n\n").action);
}

TEST(Endpoint, PostfixNotation) {
    auto a = net::parse_endpoint("inet:127.0.0.1:10023");
    ASSERT_TRUE(a.endpoint);
    EXPECT_EQ(a.endpoint->host, "127.0.0.1");
    EXPECT_EQ(a.endpoint->port, 10023);
    auto b = net::parse_endpoint("inet:[::1]:10023");
    ASSERT_TRUE(b.endpoint);
    EXPECT_EQ(b.endpoint->host, "::1");
    EXPECT_EQ(b.endpoint->to_string(), "inet:[::1]:10023");
    auto c = net::parse_endpoint("unix:/run/x.sock");
    ASSERT_TRUE(c.endpoint);
    EXPECT_EQ(c.endpoint->kind, net::Endpoint::Kind::unix_socket);
    EXPECT_EQ(c.endpoint->to_string(), "unix:/run/x.sock");
    EXPECT_TRUE(net::parse_endpoint("127.0.0.1:25").endpoint);
    EXPECT_TRUE(net::parse_endpoint("/run/y.sock").endpoint);
    EXPECT_TRUE(net::parse_endpoint("localhost:10023").endpoint);
    for (auto bad : {"inet:", "inet:127.0.0.1", "inet:127.0.0.1:0", "inet:127.0.0.1:65536",
                     "inet:::1:25", "inet:[::1]25", "inet:[zz]:25", "unix:relative",
                     "inet::25", "inet:1.2.3.4:2x"})
        EXPECT_FALSE(net::parse_endpoint(bad).endpoint) << bad;
    // An unknown scheme is named as such, not reported as a bad port or host.
    for (auto bad : {"tcp:foo", "tcp:127.0.0.1:10023", "tcp:[::1]:25", "udp:localhost:25"})
        EXPECT_EQ(net::parse_endpoint(bad).error.rfind("unknown scheme \"", 0), 0u)
            << bad << ": " << net::parse_endpoint(bad).error;
    EXPECT_TRUE(net::parse_endpoint("localhost:25").endpoint);
    EXPECT_EQ(net::parse_endpoint("inet:127.0.0.1:foo").error, "bad port \"foo\"");
}

// Clients look names up (a compose service name); numeric hosts and
// "localhost" are taken as they are, as listeners take them.
TEST(Endpoint, ResolveForConnect) {
    auto literal = [](const char* text) {
        return net::resolve_for_connect(*net::parse_endpoint(text).endpoint);
    };
    EXPECT_EQ(literal("inet:192.0.2.7:10023"), net::to_asio(*net::parse_endpoint("inet:192.0.2.7:10023").endpoint));
    EXPECT_EQ(literal("inet:[2001:db8::1]:24"), net::to_asio(*net::parse_endpoint("inet:[2001:db8::1]:24").endpoint));
    EXPECT_EQ(literal("inet:localhost:25"), net::to_asio(*net::parse_endpoint("inet:127.0.0.1:25").endpoint));
    EXPECT_EQ(literal("unix:/run/x.sock"), net::to_asio(*net::parse_endpoint("unix:/run/x.sock").endpoint));
    // A name is an error for to_asio (listeners never wait on DNS) ...
    net::Endpoint named{net::Endpoint::Kind::inet, "", 10023, ""};
    // ... and resolved by the system resolver for a client: every name of
    // /etc/hosts other than localhost resolves to one of its addresses there.
    std::ifstream hosts("/etc/hosts");
    std::multimap<std::string, std::string> listed;
    for (std::string line; std::getline(hosts, line);) {
        line = line.substr(0, line.find('#'));
        std::istringstream words(line);
        std::string addr, name;
        if (!(words >> addr) || !net::IpAddress::parse(addr)) continue;
        while (words >> name)
            if (name != "localhost" && !net::IpAddress::parse(name)) listed.emplace(name, addr);
    }
    ASSERT_FALSE(listed.empty()) << "/etc/hosts names no host besides localhost";
    for (const auto& [name, addr] : listed) {
        named.host = name;
        EXPECT_THROW(net::to_asio(named), std::system_error) << name;
        auto ep = net::resolve_for_connect(named);
        boost::asio::ip::tcp::endpoint tcp;
        ASSERT_EQ(ep.size(), tcp.size()) << name;
        std::memcpy(tcp.data(), ep.data(), ep.size());
        EXPECT_EQ(tcp.port(), 10023);
        auto [lo, hi] = listed.equal_range(name);
        bool one_of = false;
        for (auto it = lo; it != hi; ++it)
            one_of = one_of || net::IpAddress::parse(it->second)->to_string() ==
                                   net::IpAddress::parse(tcp.address().to_string())->to_string();
        EXPECT_TRUE(one_of) << name << " resolved to " << tcp.address().to_string();
    }
    // A name nobody knows: an error naming the endpoint, not a crash.
    named.host = "no-such-host.invalid";
    try {
        net::resolve_for_connect(named);
        ADD_FAILURE() << "no-such-host.invalid resolved";
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find("no-such-host.invalid"), std::string::npos) << e.what();
    }
}

TEST(Cidr, MatchingV4V6AndMapped) {
    auto list = net::CidrList::parse({"192.0.2.0/24", "2001:db8::/32", "10.1.2.3", "::1"});
    EXPECT_TRUE(list.contains("192.0.2.77"));
    EXPECT_FALSE(list.contains("192.0.3.1"));
    EXPECT_TRUE(list.contains("2001:db8:1::5"));
    EXPECT_FALSE(list.contains("2001:db9::1"));
    EXPECT_TRUE(list.contains("10.1.2.3"));
    EXPECT_FALSE(list.contains("10.1.2.4"));
    EXPECT_TRUE(list.contains("::ffff:192.0.2.9"));  // mapped is IPv4
    EXPECT_TRUE(list.contains("::1"));
    EXPECT_FALSE(list.contains("not-an-ip"));
    EXPECT_THROW(net::CidrList::parse({"192.0.2.0/33"}), std::invalid_argument);
    EXPECT_THROW(net::CidrList::parse({"nonsense"}), std::invalid_argument);
    EXPECT_TRUE(net::Cidr::parse("[2001:db8::]/64"));
    EXPECT_EQ(net::Cidr::parse("192.0.2.77/24")->to_string(), "192.0.2.0/24");
    EXPECT_EQ(net::IpAddress::parse("2001:db8::1:2")->masked(64).to_string(), "2001:db8::");
    EXPECT_EQ(net::IpAddress::parse("192.0.2.200")->masked(25).to_string(), "192.0.2.128");
    EXPECT_EQ(net::IpAddress::parse("192.0.2.200")->masked(0).to_string(), "0.0.0.0");
}
