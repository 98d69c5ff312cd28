// Tests of the built policyd-spf over the policy protocol, with a real DNS
// server: each option of the configuration and each kind of reply.
//
// DNS: suite_dns.py, an authoritative server, answers tests/spf/zones.yml on
// 127.0.0.1:53 inside a network namespace made for this test process, whose
// resolv.conf points there; the daemon runs in that namespace and listens on
// a unix socket in a temp dir, which the test reaches from outside. Needs
// root (ip netns), as CI has; without it the tests fail, never skip.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/daemon_process.h"
#include "support/dns_namespace.h"
#include "support/policy_conn.h"
#include "support/process.h"

#ifndef SUITE_DNS
#error "SUITE_DNS must name tests/spf/suite_dns.py"
#endif

namespace {

using namespace std::chrono_literals;
using testsupport::PolicyConn;
using Attrs = std::map<std::string, std::string>;

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}
bool contains(const std::string& s, const std::string& what) {
    return s.find(what) != std::string::npos;
}

testsupport::DnsNamespace* g_ns = nullptr;

// The daemon runs in the namespace and listens on a unix socket in dir.
class Daemon {
public:
    Daemon(const testsupport::TempDir& dir, nlohmann::json config)
        : process_(dir,
                   {.program = POLICYD_SPF,
                    .name = "spf",
                    .wrapper = {"ip", "netns", "exec", g_ns->name()},
                    .unix_socket = true},
                   std::move(config)),
          conn_(process_.connect()) {}
    // One request as Postfix sends it at RCPT; a new message unless the
    // instance is given.
    std::string ask(Attrs overrides) {
        Attrs r = testsupport::rcpt_request({{"client_address", "192.0.2.99"},
                                             {"helo_name", "none.example"},
                                             {"instance", "msg." + std::to_string(++messages_)}});
        for (auto& [k, v] : overrides) r[k] = v;
        return conn_->ask(r, 10s);
    }
    std::string log() const { return process_.log(); }
    bool log_has(const std::string& text) const { return process_.log_has(text); }

private:
    testsupport::DaemonProcess process_;
    std::unique_ptr<PolicyConn> conn_;
    int messages_ = 0;
};

class SpfDaemon : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        ASSERT_EQ(::geteuid(), 0u) << "these tests need root for a network namespace";
        g_ns = new testsupport::DnsNamespace(std::string(MAILPOLICY_SOURCE_DIR) + "/tests/spf/zones.yml", SUITE_DNS);
    }
    static void TearDownTestSuite() {
        delete g_ns;
        g_ns = nullptr;
    }
    Daemon& start(nlohmann::json config = nlohmann::json::object()) {
        daemon_ = std::make_unique<Daemon>(dir_, std::move(config));
        return *daemon_;
    }
    testsupport::TempDir dir_;
    std::unique_ptr<Daemon> daemon_;
};

const std::string kReject = "550 5.7.23 ";
const std::string kSpfHeader = "PREPEND Received-SPF: ";

// --- mail_from_reject --------------------------------------------------------

TEST_F(SpfDaemon, MailFromFailIsRejectedByDefaultWithTheExplanation) {
    auto& d = start();
    std::string a = d.ask({{"sender", "alice@fail.example"}});
    EXPECT_EQ(a, kReject + "alice@fail.example may not send from 192.0.2.99");
}

TEST_F(SpfDaemon, MailFromRejectFailLetsSoftfailThroughWithAHeader) {
    auto& d = start({{"mail_from_reject", "Fail"}});
    std::string a = d.ask({{"sender", "alice@softfail.example"}});
    EXPECT_TRUE(starts_with(a, kSpfHeader + "Softfail (")) << a;
    EXPECT_TRUE(contains(a, "identity=mailfrom;")) << a;
}

TEST_F(SpfDaemon, MailFromRejectSoftfailRejectsSoftfailAndFail) {
    auto& d = start({{"mail_from_reject", "Softfail"}});
    EXPECT_TRUE(starts_with(d.ask({{"sender", "a@softfail.example"}}), kReject));
    EXPECT_TRUE(starts_with(d.ask({{"sender", "a@fail.example"}}), kReject));
    EXPECT_TRUE(starts_with(d.ask({{"sender", "a@neutral.example"}}), kSpfHeader + "Neutral"));
}

TEST_F(SpfDaemon, MailFromRejectFalseOnlyAddsTheHeader) {
    auto& d = start({{"mail_from_reject", "False"}});
    std::string a = d.ask({{"sender", "alice@fail.example"}});
    EXPECT_TRUE(starts_with(a, kSpfHeader + "Fail (")) << a;
    EXPECT_TRUE(contains(a, "identity=mailfrom; client-ip=192.0.2.99;")) << a;
}

TEST_F(SpfDaemon, NoCheckForBothIdentitiesAnswersDunno) {
    auto& d = start({{"mail_from_reject", "No_Check"}, {"helo_reject", "No_Check"}});
    EXPECT_EQ(d.ask({{"sender", "alice@fail.example"}, {"helo_name", "fail.example"}}), "DUNNO");
}

TEST_F(SpfDaemon, MailFromNoCheckStillReportsHelo) {
    auto& d = start({{"mail_from_reject", "No_Check"}, {"helo_reject", "False"}});
    std::string a = d.ask({{"sender", "alice@fail.example"}, {"helo_name", "pass.example"}});
    EXPECT_TRUE(starts_with(a, kSpfHeader + "Pass (")) << a;
    EXPECT_TRUE(contains(a, "identity=helo;")) << a;
}

// --- helo_reject ---------------------------------------------------------------

TEST_F(SpfDaemon, HeloRejectSpfNotPassRejectsEveryHeloResultButPassAndNone) {
    auto& d = start({{"helo_reject", "SPF_Not_Pass"}});
    EXPECT_TRUE(starts_with(d.ask({{"helo_name", "fail.example"}, {"sender", "a@pass.example"}}), kReject));
    EXPECT_TRUE(starts_with(d.ask({{"helo_name", "softfail.example"}, {"sender", "a@pass.example"}}), kReject));
    EXPECT_TRUE(starts_with(d.ask({{"helo_name", "neutral.example"}, {"sender", "a@pass.example"}}), kReject));
    EXPECT_TRUE(starts_with(d.ask({{"helo_name", "pass.example"}, {"sender", "a@pass.example"}}),
                            kSpfHeader + "Pass"));
    EXPECT_TRUE(starts_with(d.ask({{"helo_name", "none.example"}, {"sender", "a@pass.example"}}),
                            kSpfHeader + "Pass"));
}

TEST_F(SpfDaemon, HeloRejectSoftfailRejectsSoftfailAndFailOnly) {
    auto& d = start({{"helo_reject", "Softfail"}});
    EXPECT_TRUE(starts_with(d.ask({{"helo_name", "softfail.example"}, {"sender", "a@pass.example"}}), kReject));
    EXPECT_TRUE(starts_with(d.ask({{"helo_name", "fail.example"}, {"sender", "a@pass.example"}}), kReject));
    EXPECT_TRUE(starts_with(d.ask({{"helo_name", "neutral.example"}, {"sender", "a@pass.example"}}),
                            kSpfHeader + "Pass"));
}

TEST_F(SpfDaemon, HeloRejectFailRejectsFailOnly) {
    auto& d = start({{"helo_reject", "Fail"}});
    std::string a = d.ask({{"helo_name", "fail.example"}, {"sender", "a@pass.example"}});
    EXPECT_EQ(a, kReject + "postmaster@fail.example may not send from 192.0.2.99");
    EXPECT_TRUE(starts_with(d.ask({{"helo_name", "softfail.example"}, {"sender", "a@pass.example"}}),
                            kSpfHeader + "Pass"));
}

TEST_F(SpfDaemon, HeloRejectNullRejectsAHeloFailOnlyForTheNullSender) {
    auto& d = start({{"helo_reject", "Null"}, {"mail_from_reject", "False"}});
    EXPECT_TRUE(starts_with(d.ask({{"helo_name", "fail.example"}, {"sender", "a@pass.example"}}),
                            kSpfHeader + "Pass"));
    EXPECT_TRUE(starts_with(d.ask({{"helo_name", "fail.example"}, {"sender", ""}}), kReject));
}

TEST_F(SpfDaemon, HeloRejectFalseNeverRejectsOnHelo) {
    auto& d = start({{"helo_reject", "False"}});
    std::string a = d.ask({{"helo_name", "fail.example"}, {"sender", "a@none.example"}});
    // MAIL FROM gave None, so the HELO result is the header, named as such.
    EXPECT_TRUE(starts_with(a, kSpfHeader + "Fail (")) << a;
    EXPECT_TRUE(contains(a, "identity=helo;")) << a;
}

TEST_F(SpfDaemon, HeloRejectNoCheckDoesNotLookAtHelo) {
    auto& d = start({{"helo_reject", "No_Check"}});
    std::string a = d.ask({{"helo_name", "fail.example"}, {"sender", "a@none.example"}});
    EXPECT_TRUE(starts_with(a, kSpfHeader + "None (")) << a;
    EXPECT_TRUE(contains(a, "identity=mailfrom;")) << a;
}

// --- permerror_reject, temperror_defer -----------------------------------------

TEST_F(SpfDaemon, PermerrorGivesAHeaderUnlessPermerrorReject) {
    {
        auto& d = start({{"helo_reject", "False"}});
        std::string a = d.ask({{"sender", "a@permerror.example"}});
        EXPECT_TRUE(starts_with(a, kSpfHeader + "PermError (")) << a;
    }
    daemon_.reset();
    auto& d = start({{"helo_reject", "False"}, {"permerror_reject", true}});
    std::string a = d.ask({{"sender", "a@permerror.example"}});
    EXPECT_TRUE(starts_with(a, "550 5.7.24 ")) << a;
    EXPECT_TRUE(contains(a, "permanent error")) << a;
}

TEST_F(SpfDaemon, TemperrorGivesAHeaderUnlessTemperrorDefer) {
    {
        auto& d = start({{"lookup_time", 4}});
        std::string a = d.ask({{"sender", "a@temperror.example"}});
        EXPECT_TRUE(starts_with(a, kSpfHeader + "TempError (")) << a;
    }
    daemon_.reset();
    auto& d = start({{"temperror_defer", true}, {"lookup_time", 4}});
    auto t0 = std::chrono::steady_clock::now();
    std::string a = d.ask({{"sender", "a@temperror.example"}});
    EXPECT_TRUE(starts_with(a, "DEFER_IF_PERMIT 4.4.3 ")) << a;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "temperror must come within lookup_time";
}

// --- skip_addresses, whitelist, helo_whitelist, domain_whitelist ---------------

TEST_F(SpfDaemon, LoopbackIsSkippedByDefault) {
    auto& d = start();
    EXPECT_EQ(d.ask({{"client_address", "127.0.0.1"}, {"sender", "a@fail.example"}}), "DUNNO");
    EXPECT_EQ(d.ask({{"client_address", "::1"}, {"sender", "a@fail.example"}}), "DUNNO");
}

TEST_F(SpfDaemon, SkipAddressesReplacesTheDefault) {
    auto& d = start({{"skip_addresses", {"192.0.2.0/24"}}});
    EXPECT_EQ(d.ask({{"sender", "a@fail.example"}}), "DUNNO");
    std::string a = d.ask({{"client_address", "198.51.100.7"}, {"sender", "a@fail.example"}});
    EXPECT_TRUE(starts_with(a, kReject)) << a;
}

TEST_F(SpfDaemon, LoopbackClientsAreEvaluatedWhenNotSkipped) {
    auto& d = start({{"skip_addresses", nlohmann::json::array()}});
    for (std::string ip : {"127.0.0.1", "::1"}) {
        std::string ok = d.ask({{"client_address", ip}, {"sender", "a@loopback.example"}});
        EXPECT_TRUE(starts_with(ok, kSpfHeader + "Pass (")) << ip << ": " << ok;
        std::string no = d.ask({{"client_address", ip}, {"sender", "a@fail.example"}});
        EXPECT_TRUE(starts_with(no, kReject)) << ip << ": " << no;
    }
    std::string other = d.ask({{"client_address", "127.0.0.2"}, {"sender", "a@loopback.example"}});
    EXPECT_TRUE(starts_with(other, kReject)) << other;
}

TEST_F(SpfDaemon, ClientAddressThatIsNotAnIpAddressGetsDunnoAndALoggedReason) {
    auto& d = start({{"skip_addresses", nlohmann::json::array()}});
    for (std::string bad : {"not-an-ip", "", "192.0.2.300", "unknown"}) {
        EXPECT_EQ(d.ask({{"client_address", bad}, {"sender", "a@fail.example"}}), "DUNNO") << bad;
        EXPECT_EQ(d.ask({{"client_address", bad}, {"sender", "a@pass.example"}}), "DUNNO") << bad;
    }
    EXPECT_TRUE(d.log_has("client_address is not an IP address"));
    // An address still gets its evaluation.
    EXPECT_TRUE(starts_with(d.ask({{"sender", "a@fail.example"}}), kReject));
}

TEST_F(SpfDaemon, WhitelistedClientsAreNotChecked) {
    auto& d = start({{"whitelist", {"192.0.2.99/32", "2001:db8::/32"}}});
    EXPECT_EQ(d.ask({{"sender", "a@fail.example"}}), "DUNNO");
    EXPECT_EQ(d.ask({{"client_address", "2001:db8::5"}, {"sender", "a@fail.example"}}), "DUNNO");
    EXPECT_TRUE(starts_with(d.ask({{"client_address", "192.0.2.98"}, {"sender", "a@fail.example"}}), kReject));
}

TEST_F(SpfDaemon, HeloWhitelistSkipsTheChecksOnlyForTheNamesOwnAddress) {
    auto& d = start({{"helo_whitelist", {"Relay.Partner.example."}}});
    // relay.partner.example has 192.0.2.99, the default client.
    EXPECT_EQ(d.ask({{"helo_name", "relay.partner.example"}, {"sender", "a@fail.example"}}), "DUNNO");
    std::string forged = d.ask({{"client_address", "198.51.100.7"},
                                {"helo_name", "relay.partner.example"},
                                {"sender", "a@fail.example"}});
    EXPECT_TRUE(starts_with(forged, kReject)) << "a forged whitelisted HELO must not skip: " << forged;
    EXPECT_TRUE(starts_with(d.ask({{"helo_name", "other.example"}, {"sender", "a@fail.example"}}), kReject));
}

TEST_F(SpfDaemon, DomainWhitelistSkipsClientsItsRecordPasses) {
    auto& d = start({{"domain_whitelist", {"pass.example"}}});
    EXPECT_EQ(d.ask({{"sender", "a@fail.example"}}), "DUNNO");
    EXPECT_TRUE(starts_with(d.ask({{"client_address", "198.51.100.7"}, {"sender", "a@fail.example"}}), kReject));
}

// --- header_type, authserv_id, hide_receiver -----------------------------------

TEST_F(SpfDaemon, ReceivedSpfHeaderNamesIdentityAndKeys) {
    auto& d = start({{"hide_receiver", true}});
    std::string a = d.ask({{"sender", "alice@pass.example"}, {"helo_name", "mx.pass.example"}});
    EXPECT_EQ(a, kSpfHeader +
                     "Pass (domain of alice@pass.example designates 192.0.2.99 as permitted sender) "
                     "identity=mailfrom; client-ip=192.0.2.99; helo=mx.pass.example; "
                     "envelope-from=\"alice@pass.example\";");
}

TEST_F(SpfDaemon, AuthenticationResultsHeader) {
    auto& d = start({{"header_type", "AR"}, {"authserv_id", "mx.test.example"}});
    EXPECT_EQ(d.ask({{"sender", "alice@pass.example"}}),
              "PREPEND Authentication-Results: mx.test.example; spf=pass smtp.mailfrom=alice@pass.example");
    EXPECT_EQ(d.ask({{"sender", ""}, {"helo_name", "pass.example"}}),
              "PREPEND Authentication-Results: mx.test.example; spf=pass smtp.helo=pass.example");
}

TEST_F(SpfDaemon, HeaderTypeNoneAnswersDunnoButStillRejects) {
    auto& d = start({{"header_type", "None"}});
    EXPECT_EQ(d.ask({{"sender", "alice@pass.example"}}), "DUNNO");
    EXPECT_TRUE(starts_with(d.ask({{"sender", "alice@fail.example"}}), kReject));
}

TEST_F(SpfDaemon, HideReceiverFalseNamesTheReceiver) {
    auto& d = start({{"hide_receiver", false}, {"authserv_id", "mx.test.example"}});
    std::string a = d.ask({{"sender", "alice@pass.example"}});
    EXPECT_TRUE(contains(a, " receiver=mx.test.example;")) << a;
    EXPECT_TRUE(contains(a, "(mx.test.example: ")) << a;
}

TEST_F(SpfDaemon, HideReceiverLeavesTheReceiverOut) {
    auto& d = start({{"hide_receiver", true}, {"authserv_id", "mx.test.example"}});
    std::string a = d.ask({{"sender", "alice@pass.example"}});
    EXPECT_FALSE(contains(a, "receiver=")) << a;
    EXPECT_FALSE(contains(a, "mx.test.example")) << a;
}

TEST_F(SpfDaemon, DefaultsAreThoseOfPolicydSpfConf) {
    auto& d = start({{"authserv_id", "mx.test.example"}});
    // HELO_reject = Fail: a HELO softfail is not refused, a HELO fail is.
    std::string a = d.ask({{"helo_name", "softfail.example"}, {"sender", "a@pass.example"}});
    EXPECT_TRUE(starts_with(a, kSpfHeader + "Pass (mx.test.example: ")) << a;
    EXPECT_TRUE(contains(a, " receiver=mx.test.example;")) << "Hide_Receiver = No: " << a;
    EXPECT_TRUE(starts_with(d.ask({{"helo_name", "fail.example"}, {"sender", "a@pass.example"}}), kReject));
    // Mail_From_reject = Fail.
    EXPECT_TRUE(starts_with(d.ask({{"sender", "a@fail.example"}}), kReject));
    EXPECT_TRUE(starts_with(d.ask({{"sender", "a@softfail.example"}}), kSpfHeader + "Softfail"));
}

// --- reject_not_pass_domains, dry_run ------------------------------------------

TEST_F(SpfDaemon, RejectNotPassDomainsRequiresAPass) {
    auto& d = start({{"mail_from_reject", "False"}, {"reject_not_pass_domains", {"neutral.example"}}});
    std::string a = d.ask({{"sender", "a@neutral.example"}});
    EXPECT_TRUE(starts_with(a, kReject)) << a;
    EXPECT_TRUE(starts_with(d.ask({{"sender", "a@softfail.example"}}), kSpfHeader + "Softfail"));
}

TEST_F(SpfDaemon, DryRunLogsTheRefusalAndOnlyAddsTheHeader) {
    auto& d = start({{"dry_run", true}});
    std::string a = d.ask({{"sender", "a@fail.example"}});
    EXPECT_TRUE(starts_with(a, kSpfHeader + "Fail (")) << a;
    EXPECT_TRUE(d.log_has("would refuse")) << d.log();
}

// --- null sender, one result per message ---------------------------------------

TEST_F(SpfDaemon, NullSenderIsCheckedAsPostmasterAtHelo) {
    auto& d = start();
    std::string a = d.ask({{"sender", ""}, {"helo_name", "fail.example"}});
    EXPECT_EQ(a, kReject + "postmaster@fail.example may not send from 192.0.2.99");
    std::string b = d.ask({{"sender", ""}, {"helo_name", "pass.example"}});
    EXPECT_TRUE(starts_with(b, kSpfHeader + "Pass (")) << b;
    EXPECT_TRUE(contains(b, "identity=helo;")) << b;
}

TEST_F(SpfDaemon, OneResultPerMessageInstance) {
    auto& d = start();
    Attrs msg{{"instance", "same.message"}, {"sender", "a@pass.example"}};
    EXPECT_TRUE(starts_with(d.ask(msg), kSpfHeader + "Pass"));
    msg["recipient"] = "carol@example.net";
    EXPECT_EQ(d.ask(msg), "DUNNO") << "a second recipient must not get a second header";

    Attrs refused{{"instance", "refused.message"}, {"sender", "a@fail.example"}};
    EXPECT_TRUE(starts_with(d.ask(refused), kReject));
    refused["recipient"] = "carol@example.net";
    EXPECT_TRUE(starts_with(d.ask(refused), kReject)) << "every recipient gets the refusal";
}

TEST_F(SpfDaemon, HeloPassIsNeverShownAsMailFromPass) {
    auto& d = start({{"helo_reject", "False"}});
    std::string a = d.ask({{"helo_name", "pass.example"}, {"sender", "a@none.example"}});
    EXPECT_TRUE(starts_with(a, kSpfHeader + "Pass (")) << a;
    EXPECT_TRUE(contains(a, "identity=helo;")) << a;
    EXPECT_FALSE(contains(a, "identity=mailfrom")) << a;
}

TEST_F(SpfDaemon, HostileHeloCannotInjectHeaderSyntax) {
    auto& d = start({{"helo_reject", "False"}});
    std::string a = d.ask({{"helo_name", "x; receiver=evil (a"}, {"sender", "a@pass.example"}});
    EXPECT_TRUE(starts_with(a, kSpfHeader + "Pass (")) << a;
    EXPECT_TRUE(contains(a, "helo=\"x; receiver=evil (a\";")) << a;
}

// --- configuration ---------------------------------------------------------------

TEST(SpfConfig, BadValuesNameTheKey) {
    testsupport::TempDir dir;
    for (auto [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
             {"helo_reject", "Sometimes"},
             {"mail_from_reject", "Null"},
             {"header_type", "XML"},
             {"permerror_reject", "yes"},
             {"skip_addresses", {"not-a-cidr"}},
             {"lookup_time", 0},
             {"no_such_option", 1}}) {
        dir.write("bad.json", nlohmann::json{{key, value}}.dump());
        auto r = testsupport::run({POLICYD_SPF, "--config", dir.file("bad.json"), "--check-config"});
        EXPECT_EQ(r.exit_code, 1) << key << ": " << r.output;
        EXPECT_TRUE(contains(r.output, key)) << key << ": " << r.output;
    }
    dir.write("good.json", nlohmann::json{{"helo_reject", "softfail"}, {"header_type", "AR"},
                                          {"authserv_id", "mx.example"}, {"void_limit", 2}}
                               .dump());
    auto r = testsupport::run({POLICYD_SPF, "--config", dir.file("good.json"), "--check-config"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
