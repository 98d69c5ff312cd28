// The milter settings as mta-core reads them from main.cf (postconf(5),
// MILTER_README): Postfix 3.7's defaults, per-milter groups, and errors
// that name the parameter.
#include <gtest/gtest.h>

#include "config/config.h"
#include "milter/milter_config.h"

using mta::config::ConfigError;
using mta::config::parse_main_cf;
using mta::config::Settings;
using mta::milter::DefaultAction;
using mta::milter::read_milter_settings;
using proto::milter::MacroStage;

namespace {

mta::milter::MilterSettings read(std::string_view main_cf) {
    Settings s(parse_main_cf(main_cf, "main.cf"), std::vector<std::string>{});
    return read_milter_settings(s, "/var/spool/postfix");
}

const std::vector<std::string>& macros(const mta::milter::MilterSettings& m, MacroStage stage) {
    return m.macros[static_cast<std::size_t>(stage)];
}

std::string error_of(std::string_view main_cf) {
    try {
        read(main_cf);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(MtaMilterConfig, PostfixDefaults) {
    auto m = read("myhostname = mx.example\nsmtpd_milters = inet:127.0.0.1:8891\n");
    ASSERT_EQ(m.smtpd.size(), 1u);
    const auto& spec = m.smtpd[0];
    EXPECT_EQ(spec.name, "inet:127.0.0.1:8891");
    EXPECT_EQ(spec.endpoint.host, "127.0.0.1");
    EXPECT_EQ(spec.endpoint.port, 8891);
    EXPECT_EQ(spec.connect_timeout, std::chrono::seconds(30));
    EXPECT_EQ(spec.command_timeout, std::chrono::seconds(30));
    EXPECT_EQ(spec.content_timeout, std::chrono::seconds(300));
    EXPECT_EQ(spec.default_action, DefaultAction::tempfail);
    EXPECT_EQ(spec.protocol, 6u);
    EXPECT_TRUE(m.non_smtpd.empty());
    EXPECT_EQ(macros(m, MacroStage::connect), (std::vector<std::string>{"j", "{daemon_name}", "{daemon_addr}", "v", "_"}));
    EXPECT_EQ(macros(m, MacroStage::helo),
              (std::vector<std::string>{"{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}"}));
    EXPECT_EQ(macros(m, MacroStage::envfrom), (std::vector<std::string>{"i", "{auth_type}", "{auth_authen}",
                                                                        "{auth_author}", "{mail_addr}", "{mail_host}",
                                                                        "{mail_mailer}"}));
    EXPECT_EQ(macros(m, MacroStage::envrcpt),
              (std::vector<std::string>{"i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"}));
    EXPECT_EQ(macros(m, MacroStage::data), (std::vector<std::string>{"i"}));
    EXPECT_EQ(macros(m, MacroStage::eoh), (std::vector<std::string>{"i"}));
    EXPECT_EQ(macros(m, MacroStage::eom), (std::vector<std::string>{"i"}));
    EXPECT_EQ(m.daemon_name, "mx.example");
    EXPECT_EQ(m.v.rfind("Postfix", 0), 0u) << m.v;
}

TEST(MtaMilterConfig, GroupsListsAndOverrides) {
    auto m = read(
        "milter_default_action = accept\n"
        "milter_command_timeout = 10s\n"
        "milter_rcpt_macros = {rcpt_addr}, i\n"
        "smtpd_milters = { inet:[::1]:8891, command_timeout=5s, default_action=quarantine, protocol=4 },\n"
        "  unix:private/clamav, inet:localhost:11332\n"
        "non_smtpd_milters = unix:/run/opendkim.sock\n");
    ASSERT_EQ(m.smtpd.size(), 3u);
    EXPECT_EQ(m.smtpd[0].endpoint.host, "::1");
    EXPECT_EQ(m.smtpd[0].command_timeout, std::chrono::seconds(5));
    EXPECT_EQ(m.smtpd[0].default_action, DefaultAction::quarantine);
    EXPECT_EQ(m.smtpd[0].protocol, 4u);
    // A relative unix: path is under queue_directory, as Postfix reads it.
    EXPECT_EQ(m.smtpd[1].endpoint.path, "/var/spool/postfix/private/clamav");
    EXPECT_EQ(m.smtpd[1].name, "unix:private/clamav");
    EXPECT_EQ(m.smtpd[1].command_timeout, std::chrono::seconds(10));
    EXPECT_EQ(m.smtpd[1].default_action, DefaultAction::accept);
    EXPECT_EQ(m.smtpd[2].endpoint.host, "localhost");
    ASSERT_EQ(m.non_smtpd.size(), 1u);
    EXPECT_EQ(m.non_smtpd[0].endpoint.path, "/run/opendkim.sock");
    EXPECT_EQ(macros(m, MacroStage::envrcpt), (std::vector<std::string>{"{rcpt_addr}", "i"}));
}

TEST(MtaMilterConfig, ErrorsNameTheParameter) {
    EXPECT_EQ(error_of("milter_default_action = bounce\n"),
              "milter_default_action: bad default action \"bounce\" (expected accept, reject, tempfail, "
              "quarantine or shutdown)");
    EXPECT_EQ(error_of("milter_protocol = 7\n"), "milter_protocol: bad milter protocol version \"7\" (expected 2 to 6)");
    EXPECT_EQ(error_of("smtpd_milters = 127.0.0.1:8891\n"),
              "smtpd_milters: bad milter address \"127.0.0.1:8891\" (expected inet:host:port or unix:/path)");
    EXPECT_NE(error_of("smtpd_milters = inet:127.0.0.1\n").find("smtpd_milters: bad milter address"), std::string::npos);
    EXPECT_EQ(error_of("smtpd_milters = { inet:127.0.0.1:1, timeout=5s }\n"),
              "smtpd_milters inet:127.0.0.1:1: unknown milter setting \"timeout\"");
    EXPECT_EQ(error_of("smtpd_milters = { inet:127.0.0.1:1, quick }\n"),
              "smtpd_milters inet:127.0.0.1:1: expected name=value: quick");
    EXPECT_NE(error_of("non_smtpd_milters = { inet:127.0.0.1:1, content_timeout=soon }\n")
                  .find("non_smtpd_milters inet:127.0.0.1:1 content_timeout"),
              std::string::npos);
}
