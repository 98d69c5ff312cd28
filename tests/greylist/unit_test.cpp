// Unit tests of policyd-greylist's pure logic: sender normalisation (postgrey's
// rules plus SRS), whitelist files in postgrey's format, client keys (network
// and Public Suffix List), the keyed hash, key layout, settings and reply text.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "client_key.h"
#include "keyed_hash.h"
#include "sender.h"
#include "settings.h"
#include "store.h"
#include "support/process.h"
#include "whitelist.h"

namespace {

using greylist::normalise_sender;
using proto::net::IpAddress;

IpAddress ip(const char* text) {
    auto a = IpAddress::parse(text);
    EXPECT_TRUE(a.has_value()) << text;
    return a.value_or(IpAddress{});
}

// ---- sender normalisation ----------------------------------------------------------

TEST(Sender, LowerCaseAndNullSender) {
    EXPECT_EQ(normalise_sender(""), "");
    EXPECT_EQ(normalise_sender("Alice@Example.COM"), "alice@example.com");
    EXPECT_EQ(normalise_sender("NoDomain"), "nodomain");
}

TEST(Sender, Batv) {
    EXPECT_EQ(normalise_sender("prvs=1234abcdef=user@example.com"), "user@example.com");
    // The reversed form some senders use.
    EXPECT_EQ(normalise_sender("prvs=user=1234abcdef@example.com"), "user@example.com");
    // Ambiguous: the standard position wins.
    EXPECT_EQ(normalise_sender("prvs=abcdefghij=klmnopqrst@example.com"),
              "klmnopqrst@example.com");
    // Not three fields: left alone (apart from case).
    EXPECT_EQ(normalise_sender("prvs=x@example.com"), "prvs=x@example.com");
    // Gateway variants of the same scheme.
    EXPECT_EQ(normalise_sender("msprvs1=19890ab1cDeF=bounces-1234@example.com"),
              "bounces-#@example.com");
    EXPECT_EQ(normalise_sender("btv1==0a1b2c3d4e5==Carol@Example.com"), "carol@example.com");
    EXPECT_EQ(normalise_sender("btv1==broken@example.com"), "btv1==broken@example.com");
}

TEST(Sender, Srs) {
    EXPECT_EQ(normalise_sender("SRS0=HHH=TT=orig.example=alice@forwarder.example"),
              "alice@orig.example");
    EXPECT_EQ(normalise_sender("SRS0+HHH=TT=orig.example=alice@forwarder.example"),
              "alice@orig.example");
    EXPECT_EQ(normalise_sender("SRS1=HHH=first.example==HHH=TT=orig.example=bob@second.example"),
              "bob@orig.example");
    // Unreadable SRS stays as it is.
    EXPECT_EQ(normalise_sender("SRS0=broken@forwarder.example"), "srs0=broken@forwarder.example");
    // An SRS-wrapped BATV sender reduces to the original user.
    EXPECT_EQ(normalise_sender("SRS0=h=t=orig.example=prvs=1234abcdef=carol@fw.example"),
              "carol@orig.example");
}

TEST(Sender, ExtensionAndVerpNumbers) {
    EXPECT_EQ(normalise_sender("list+bounces-123-alice=example.org@lists.example"),
              "list@lists.example");
    EXPECT_EQ(normalise_sender("bounce-12345-678@mailer.example"), "bounce-#-#@mailer.example");
    // Digits inside a word are not a VERP number (Perl's \b\d+\b).
    EXPECT_EQ(normalise_sender("user123@example.com"), "user123@example.com");
    EXPECT_EQ(normalise_sender("a_1.2@example.com"), "a_1.#@example.com");
    // The domain is never folded.
    EXPECT_EQ(normalise_sender("x.1@mx1.2.example"), "x.#@mx1.2.example");
}

TEST(Sender, LastAtSeparatesTheDomain) {
    EXPECT_EQ(normalise_sender("\"a@b\"@example.com"), "\"a@b\"@example.com");
}

// ---- whitelists ----------------------------------------------------------------------

TEST(ClientWhitelist, PostgreyFormat) {
    greylist::ClientWhitelist w;
    w.parse("# comment\n"
            "example.com   # trailing comment\n"
            "\n"
            "  .dotted.example  \n"
            "/^mta[0-9]+\\.isp\\.example$/\n"
            "192.0.2.7\n"
            "198.51.100.0/24\n"
            "203.0.113\n"
            "10.9\n"
            "2001:db8:1::/48\n",
            "test");
    EXPECT_EQ(w.size(), 8u);
    IpAddress other = ip("172.16.0.1");
    EXPECT_TRUE(w.matches("example.com", other));
    EXPECT_TRUE(w.matches("MX.Example.Com", other));
    EXPECT_FALSE(w.matches("notexample.com", other));
    EXPECT_TRUE(w.matches("a.dotted.example", other));
    EXPECT_TRUE(w.matches("MTA12.isp.example", other));
    EXPECT_FALSE(w.matches("mta12.isp.example.evil", other));
    EXPECT_TRUE(w.matches("unknown", ip("192.0.2.7")));
    EXPECT_FALSE(w.matches("unknown", ip("192.0.2.8")));
    EXPECT_TRUE(w.matches("", ip("198.51.100.200")));
    EXPECT_TRUE(w.matches("", ip("203.0.113.9")));   // partial = /24
    EXPECT_TRUE(w.matches("", ip("10.9.200.1")));    // partial = /16
    EXPECT_FALSE(w.matches("", ip("10.10.0.1")));
    EXPECT_TRUE(w.matches("", ip("2001:db8:1:ffff::1")));
    EXPECT_FALSE(w.matches("", ip("2001:db8:2::1")));
    // A client without a verified name never matches a name entry.
    EXPECT_FALSE(w.matches("unknown", other));
    // An absolute name (trailing dot) is the same name.
    w.parse("absolute.example.\n", "test");
    EXPECT_TRUE(w.matches("mx.absolute.example", other));
}

TEST(ClientWhitelist, ErrorsNameFileAndLine) {
    greylist::ClientWhitelist w;
    try {
        w.parse("ok.example\nnot a host\n", "clients.txt");
        FAIL() << "no error";
    } catch (const greylist::WhitelistError& e) {
        EXPECT_STREQ(e.what(), "clients.txt:2: doesn't look like a host name or address");
    }
    EXPECT_THROW(w.parse("/(unclosed/\n", "f"), greylist::WhitelistError);
    EXPECT_THROW(w.parse("300.1.2.3\n", "f"), greylist::WhitelistError);
    EXPECT_THROW(w.parse("user@example.com\n", "f"), greylist::WhitelistError);
    EXPECT_THROW(w.parse("/" + std::string(600, 'a') + "/\n", "f"), greylist::WhitelistError);
}

TEST(ClientWhitelist, DebianPostgreyListLoads) {
    // The list operators migrate from (Debian's postgrey package, a test
    // dependency in deploy/install-deps.sh): it must load as it is.
    std::string text = testsupport::read_file("/etc/postgrey/whitelist_clients");
    ASSERT_FALSE(text.empty()) << "/etc/postgrey/whitelist_clients missing: install postgrey";
    greylist::ClientWhitelist w;
    w.parse(text, "/etc/postgrey/whitelist_clients");
    EXPECT_GT(w.size(), 100u);
    EXPECT_TRUE(w.matches("lists.debian.org", ip("192.0.2.1")));      // a name entry
    EXPECT_TRUE(w.matches("ms-smtp-01.nyc.rr.com", ip("192.0.2.1")));  // a regex entry
    EXPECT_FALSE(w.matches("mail.example.com", ip("192.0.2.1")));
    std::string recipients = testsupport::read_file("/etc/postgrey/whitelist_recipients");
    ASSERT_FALSE(recipients.empty());
    greylist::RecipientWhitelist r;
    r.parse(recipients, "/etc/postgrey/whitelist_recipients");
    EXPECT_TRUE(r.matches("postmaster@example.org"));
}

TEST(RecipientWhitelist, PostgreyFormat) {
    greylist::RecipientWhitelist w;
    w.parse("postmaster@\nabuse@\nwhole.example\nbob@partial.example\n/^list-.*@/\n", "test");
    EXPECT_TRUE(w.matches("postmaster@anything.example"));
    EXPECT_TRUE(w.matches("Postmaster+tag@anything.example"));
    EXPECT_FALSE(w.matches("postmasterx@anything.example"));
    EXPECT_TRUE(w.matches("anyone@whole.example"));
    EXPECT_TRUE(w.matches("anyone@sub.whole.example"));
    EXPECT_FALSE(w.matches("anyone@notwhole.example"));
    EXPECT_TRUE(w.matches("bob@partial.example"));
    EXPECT_TRUE(w.matches("bob+ext@partial.example"));
    EXPECT_FALSE(w.matches("alice@partial.example"));
    EXPECT_TRUE(w.matches("LIST-dev@lists.example"));
    EXPECT_FALSE(w.matches(""));
    EXPECT_THROW(w.parse("@\n", "f"), greylist::WhitelistError);
    // Regexes are not run on absurdly long values.
    EXPECT_FALSE(w.matches("list-" + std::string(1000, 'a') + "@x.example"));
}

TEST(Builtin, ListsParseAndCoverBigSenders) {
    greylist::ClientWhitelist c;
    c.parse(greylist::builtin_client_whitelist(), "builtin");
    EXPECT_TRUE(c.matches("mail-wm1-f54.google.com", ip("209.85.128.54")));
    EXPECT_TRUE(c.matches("mail-am6eur05on2101.outbound.protection.outlook.com", ip("40.107.1.1")));
    EXPECT_TRUE(c.matches("a8-30.smtp-out.amazonses.com", ip("54.240.8.30")));
    EXPECT_FALSE(c.matches("mail.example.com", ip("192.0.2.1")));
    greylist::RecipientWhitelist r;
    r.parse(greylist::builtin_recipient_whitelist(), "builtin");
    EXPECT_TRUE(r.matches("postmaster@example.org"));
    EXPECT_TRUE(r.matches("abuse@example.org"));
    EXPECT_FALSE(r.matches("info@example.org"));
}

// ---- client keys ---------------------------------------------------------------------

TEST(ClientKey, Networks) {
    EXPECT_EQ(greylist::network_key(ip("192.0.2.77"), 24, 64), "192.0.2.0/24");
    EXPECT_EQ(greylist::network_key(ip("192.0.2.77"), 32, 64), "192.0.2.77/32");
    EXPECT_EQ(greylist::network_key(ip("2001:db8:1:2:3::9"), 24, 64), "2001:db8:1:2::/64");
    EXPECT_EQ(greylist::network_key(ip("::ffff:192.0.2.77"), 24, 64), "192.0.2.0/24");
}

TEST(ClientKey, PoolAwareDomain) {
    greylist::ClientKeyer keyer;
    using greylist::ClientKeyMode;
    auto v = ClientKeyMode::verified_domain_or_network;
    EXPECT_EQ(keyer.key(v, ip("209.85.128.54"), "mail-wm1-f54.google.com", 24, 64), "google.com");
    EXPECT_EQ(keyer.key(v, ip("203.0.113.9"), "mx.Example.CO.UK", 24, 64), "example.co.uk");
    // Two addresses of one pool in different networks share the key.
    EXPECT_EQ(keyer.key(v, ip("198.51.100.1"), "out1.bigsender.example.com", 24, 64),
              keyer.key(v, ip("203.0.113.1"), "out7.bigsender.example.com", 24, 64));
    // Unverified names, dynamic names and non-names fall back to the network.
    EXPECT_EQ(keyer.key(v, ip("203.0.113.9"), "unknown", 24, 64), "203.0.113.0/24");
    EXPECT_EQ(keyer.key(v, ip("203.0.113.9"), "", 24, 64), "203.0.113.0/24");
    EXPECT_EQ(keyer.key(v, ip("203.0.113.9"), "dsl-203-0-113-9.isp.example", 24, 64),
              "203.0.113.0/24");
    EXPECT_EQ(keyer.key(v, ip("203.0.113.9"), "9.113.0.203.dyn.isp.example", 24, 64),
              "203.0.113.0/24");
    EXPECT_EQ(keyer.key(v, ip("203.0.113.9"), "co.uk", 24, 64), "203.0.113.0/24");
    EXPECT_EQ(keyer.key(v, ip("203.0.113.9"), "bad{name}.example", 24, 64), "203.0.113.0/24");
    // postgrey's mode ignores the name.
    EXPECT_EQ(keyer.key(ClientKeyMode::network, ip("209.85.128.54"), "mail.google.com", 24, 64),
              "209.85.128.0/24");
}

// ---- keyed hash and keys ---------------------------------------------------------------

TEST(KeyedHash, KeysAreThoseOfEarlierVersions) {
    // Values from the previous, hand-written SipHash: existing Redis keys
    // with privacy on must keep working.
    EXPECT_EQ(greylist::KeyedHash::from_secret("0123456789abcdef-secret").hex("192.0.2.0/24"),
              "0829c39ca447fff4");
    EXPECT_EQ(greylist::KeyedHash::from_secret("policyd-greylist default privacy key")
                  .hex(std::string("alice@example.org\0bob@example.net", 33)),
              "5eb5be157d33b31b");
    EXPECT_EQ(greylist::KeyedHash().hex(std::string(300, 'a')), "28a2afac267402a1");
}

TEST(StoreKeys, ClearAndPrivate) {
    greylist::StoreKeys clear("gl", std::nullopt);
    greylist::Triplet t{"192.0.2.0/24", "", "bob@example.org"};
    EXPECT_EQ(clear.triplet(t), "gl:t:{192.0.2.0/24}:2:<>/bob@example.org");
    EXPECT_EQ(clear.client("192.0.2.0/24"), "gl:c:{192.0.2.0/24}");
    // Hostile long addresses are hashed, not stored.
    greylist::Triplet big{"x", std::string(5000, 'a'), "r"};
    EXPECT_LT(clear.triplet(big).size(), 64u);

    greylist::StoreKeys priv("gl", greylist::KeyedHash::from_secret("0123456789abcdef-secret"));
    std::string k = priv.triplet(t);
    EXPECT_EQ(k.find("192.0.2"), std::string::npos);
    EXPECT_EQ(k.find("example"), std::string::npos);
    EXPECT_EQ(k.size(), std::string("gl:t:{").size() + 16 + 2 + 16);
    // Same hash tag for both keys of one decision (one Cluster slot).
    EXPECT_EQ(k.substr(5, 18), priv.client("192.0.2.0/24").substr(5, 18));
    greylist::StoreKeys other("gl", greylist::KeyedHash::from_secret("another-secret-of-16+"));
    EXPECT_NE(other.triplet(t), k);
}

// ---- settings --------------------------------------------------------------------------

greylist::Settings settings_from(const std::string& json) {
    auto doc = nlohmann::json::parse(json);
    proto::config::Reader reader(doc);
    auto s = greylist::read_settings(reader);
    reader.finish();
    return s;
}

TEST(Settings, Defaults) {
    auto s = settings_from("{}");
    EXPECT_EQ(s.rules.delay, 300);
    EXPECT_EQ(s.rules.retry_window, 2 * 86400);
    EXPECT_EQ(s.rules.max_age, 35 * 86400);
    EXPECT_EQ(s.rules.auto_whitelist_clients, 5);
    EXPECT_EQ(s.rules.auto_whitelist_interval, 3600);
    EXPECT_EQ(s.ipv4_prefix, 24);
    EXPECT_EQ(s.ipv6_prefix, 64);
    EXPECT_EQ(s.client_key, greylist::ClientKeyMode::verified_domain_or_network);
    EXPECT_EQ(s.greylist_action.to_string(), "DEFER_IF_PERMIT");
    EXPECT_TRUE(s.x_greylist_header);
    EXPECT_FALSE(s.privacy);
    EXPECT_FALSE(s.dry_run);
    EXPECT_EQ(s.on_store_error.to_string(), "DUNNO");
    EXPECT_TRUE(s.whitelist_recipients->matches("postmaster@x.example"));
}

TEST(Settings, ValuesAndErrors) {
    auto s = settings_from(R"({"delay":"1m","retry_window":"1d","max_age":"10d",
        "client_key":"network","greylist_action":"450 4.2.0","on_store_error":"DEFER_IF_PERMIT",
        "whitelist_clients":[],"whitelist_recipients":[]})");
    EXPECT_EQ(s.rules.delay, 60);
    EXPECT_EQ(s.rules.retry_window, 86400);
    EXPECT_EQ(s.client_key, greylist::ClientKeyMode::network);
    EXPECT_EQ(s.whitelist_recipients->size(), 0u);
    auto error_of = [](const std::string& json) -> std::string {
        try {
            settings_from(json);
        } catch (const proto::config::ConfigError& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_NE(error_of(R"({"greylist_action":"REJECT"})").find("greylist_action"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"delay":600,"retry_window":300})").find("retry_window"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"ipv4_prefix":33})").find("ipv4_prefix"), std::string::npos);
    EXPECT_NE(error_of(R"({"client_key":"host"})").find("client_key"), std::string::npos);
    EXPECT_NE(error_of(R"({"whitelist_clients":["/nonexistent/list"]})").find("whitelist_clients"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"greylist_text":"a\nb"})").find("greylist_text"), std::string::npos);
    EXPECT_NE(error_of(R"({"delai":1})").find("delai"), std::string::npos);
}

TEST(Settings, PrivacyKeyFile) {
    testsupport::TempDir dir;
    dir.write("key", "short\n");
    EXPECT_THROW(settings_from(R"({"privacy":true,"privacy_key_file":")" + dir.file("key") + "\"}"),
                 proto::config::ConfigError);
    dir.write("key", "a-long-enough-secret-key\n");
    auto s = settings_from(R"({"privacy":true,"privacy_key_file":")" + dir.file("key") + "\"}");
    ASSERT_TRUE(s.privacy_hash.has_value());
    EXPECT_FALSE(s.privacy_key_builtin);
    EXPECT_TRUE(settings_from(R"({"privacy":true})").privacy_key_builtin);
}

TEST(GreylistText, Placeholders) {
    EXPECT_EQ(greylist::format_greylist_text("try again in %s seconds", 42, "bob@example.org"),
              "try again in 42 seconds");
    EXPECT_EQ(greylist::format_greylist_text("see https://%r/greylisting %", 1, "bob@Ex.org"),
              "see https://Ex.org/greylisting %");
    EXPECT_EQ(greylist::format_greylist_text("%r", 1, std::string("bob@a\rb\x01")), "ab");
}

}  // namespace
