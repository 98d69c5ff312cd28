// mta_config unit tests: main.cf and master.cf readers, the parameter table,
// macro expansion, typed getters, validation and postconf -n output.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "config/config.h"
#include "support/process.h"

using namespace mta::config;

namespace {

std::string data(const std::string& rel) { return std::string(MTA_TEST_DATA) + "/" + rel; }

Settings settings(std::string_view main_cf, std::vector<std::string> services = {}) {
    return Settings(parse_main_cf(main_cf, "main.cf"), std::move(services));
}

std::string error_of(auto&& f) {
    try {
        f();
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

// ------------------------------------------------------------------ main.cf

TEST(MtaConfigMainCf, NameValueCommentsBlankLines) {
    auto cf = parse_main_cf("# comment\n\nmyhostname = mail.example.org\n  # indented comment\n"
                            "mydomain=example.org\nempty =\nsp   =   a b   \n",
                            "main.cf");
    ASSERT_EQ(cf.params.size(), 4u);
    EXPECT_EQ(cf.params.at("myhostname").value, "mail.example.org");
    EXPECT_EQ(cf.params.at("myhostname").line, 3);
    EXPECT_EQ(cf.params.at("mydomain").value, "example.org");
    EXPECT_EQ(cf.params.at("empty").value, "");
    EXPECT_EQ(cf.params.at("sp").value, "a b");
    EXPECT_TRUE(cf.warnings.empty());
}

TEST(MtaConfigMainCf, HashInsideValueIsNotAComment) {
    auto cf = parse_main_cf("smtpd_banner = x # not a comment\n", "main.cf");
    EXPECT_EQ(cf.params.at("smtpd_banner").value, "x # not a comment");
}

TEST(MtaConfigMainCf, ContinuationLinesSkipCommentsAndBlankLines) {
    auto cf = parse_main_cf("smtpd_banner = $myhostname ESMTP Why,\n    hello there!\n"
                            "# comment inside\n\n  \n\tmore\nnext = 1\n",
                            "main.cf");
    EXPECT_EQ(cf.params.at("smtpd_banner").value, "$myhostname ESMTP Why,    hello there!\tmore");
    EXPECT_EQ(cf.params.at("smtpd_banner").line, 1);
    EXPECT_EQ(cf.params.at("next").line, 7);
}

TEST(MtaConfigMainCf, CrLfLineEnds) {
    auto cf = parse_main_cf("a = b\r\nc = d\r\n  e\r\n", "main.cf");
    EXPECT_EQ(cf.params.at("a").value, "b");
    EXPECT_EQ(cf.params.at("c").value, "d\r  e");  // inner CR kept as Postfix keeps it
}

TEST(MtaConfigMainCf, LaterDefinitionWinsWithWarning) {
    auto cf = parse_main_cf("mydomain = a\nmydomain = b\n", "/x/main.cf");
    EXPECT_EQ(cf.params.at("mydomain").value, "b");
    EXPECT_EQ(cf.params.at("mydomain").line, 2);
    ASSERT_EQ(cf.warnings.size(), 1u);
    EXPECT_EQ(cf.warnings[0], "/x/main.cf, line 2: overriding earlier entry: mydomain=a");
}

TEST(MtaConfigMainCf, LeadingWhitespaceWithoutLogicalLineIsWarned) {
    auto cf = parse_main_cf("  leading = x\nmyhostname = y\n", "main.cf");
    EXPECT_EQ(cf.params.size(), 1u);
    ASSERT_EQ(cf.warnings.size(), 1u);
    EXPECT_NE(cf.warnings[0].find("logical line must not start with whitespace"), std::string::npos);
}

TEST(MtaConfigMainCf, ErrorsNameFileAndLine) {
    EXPECT_EQ(error_of([] { parse_main_cf("a = 1\nmyhostname y\n", "/etc/main.cf"); }),
              "/etc/main.cf, line 2: missing '=' after attribute name: \"myhostname y\"");
    EXPECT_EQ(error_of([] { parse_main_cf("= y\n", "main.cf"); }),
              "main.cf, line 1: missing attribute name: \"= y\"");
    // A continuation line may carry the '=': the logical line is "x  = y".
    EXPECT_EQ(parse_main_cf("x\n  = y\n", "main.cf").params.at("x").value, "y");
}

TEST(MtaConfigMainCf, EmptyAndNoFinalNewline) {
    EXPECT_TRUE(parse_main_cf("", "main.cf").params.empty());
    EXPECT_EQ(parse_main_cf("a=b", "main.cf").params.at("a").value, "b");
}

TEST(MtaConfigMainCf, LoadMissingFileIsAnError) {
    EXPECT_THROW(load_main_cf("/nonexistent/main.cf"), ConfigError);
    auto cf = load_main_cf(data("classic/main.cf"));
    EXPECT_EQ(cf.path, data("classic/main.cf"));
    EXPECT_EQ(cf.params.at("smtpd_error_sleep_time").file, data("classic/main.cf"));
}

// ---------------------------------------------------------------- master.cf

TEST(MtaConfigMasterCf, ClassicEntries) {
    auto m = load_master_cf(data("classic/master.cf"));
    ASSERT_EQ(m.size(), 3u);
    EXPECT_EQ(m[0].service, "smtp");
    EXPECT_EQ(m[0].type, "inet");
    EXPECT_EQ(m[0].private_, "n");
    EXPECT_EQ(m[0].chroot, "n");
    EXPECT_EQ(m[0].command, "smtpd");
    EXPECT_TRUE(m[0].overrides.empty());
    EXPECT_EQ(m[1].service, "submission");
    ASSERT_EQ(m[1].overrides.size(), 3u);
    EXPECT_EQ(m[1].overrides[0], (std::pair<std::string, std::string>{"smtpd_tls_security_level", "encrypt"}));
    EXPECT_EQ(m[1].overrides[2].second, "permit_sasl_authenticated,reject");
    EXPECT_EQ(m[1].line, 2);
    EXPECT_EQ(m[2].service, "policy-spf");
    EXPECT_EQ(m[2].maxproc, "0");
    EXPECT_EQ(m[2].command, "spawn");
    EXPECT_EQ(m[2].args, (std::vector<std::string>{"user=nobody", "argv=/usr/bin/policyd-spf"}));
    EXPECT_EQ(m[2].line, 6);
}

TEST(MtaConfigMasterCf, BracedOverridesAndArguments) {
    auto m = parse_master_cf(
        "submission inet n - n - - smtpd\n"
        "  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }\n"
        "#  -o commented=out\n"
        "  -o syslog_name=postfix/submission -osmtpd_tls_wrappermode=yes -v\n"
        "policy unix - n n - 0 spawn user=nobody argv=/bin/p { a b } -o not=override\n",
        "master.cf");
    ASSERT_EQ(m.size(), 2u);
    ASSERT_EQ(m[0].overrides.size(), 3u);
    EXPECT_EQ(m[0].overrides[0].first, "smtpd_client_restrictions");
    EXPECT_EQ(m[0].overrides[0].second, "permit_sasl_authenticated, reject");
    EXPECT_EQ(m[0].overrides[2].first, "smtpd_tls_wrappermode");
    EXPECT_EQ(m[0].args, (std::vector<std::string>{"-v"}));
    EXPECT_EQ(m[1].args, (std::vector<std::string>{"user=nobody", "argv=/bin/p", "a b", "-o",
                                                   "not=override"}));
}

TEST(MtaConfigMasterCf, HostPortServiceAndWakeup) {
    auto m = parse_master_cf("127.0.0.1:2525 inet n - n - - smtpd\n"
                             "[::1]:25 inet n - n - - smtpd\n"
                             "tlsmgr unix - - y 1000? 1 tlsmgr\n"
                             "postlog unix-dgram n - n - 1 postlogd\n",
                             "master.cf");
    ASSERT_EQ(m.size(), 4u);
    EXPECT_EQ(m[0].service, "127.0.0.1:2525");
    EXPECT_EQ(m[1].service, "[::1]:25");
    EXPECT_EQ(m[2].wakeup, "1000?");
    EXPECT_EQ(m[3].type, "unix-dgram");
}

TEST(MtaConfigMasterCf, DebianStockShape) {
    auto m = load_master_cf(data("debian/master.cf"));
    EXPECT_EQ(m.size(), 29u);
    auto find = [&](std::string_view s, std::string_view t) {
        return std::find_if(m.begin(), m.end(), [&](auto& e) { return e.service == s && e.type == t; });
    };
    ASSERT_NE(find("pickup", "unix"), m.end());
    EXPECT_EQ(find("pickup", "unix")->wakeup, "60");
    ASSERT_NE(find("relay", "unix"), m.end());
    EXPECT_EQ(find("relay", "unix")->overrides.at(0).second, "postfix/$service_name");
    auto uucp = find("uucp", "unix");
    ASSERT_NE(uucp, m.end());
    EXPECT_EQ(uucp->command, "pipe");
    EXPECT_EQ(uucp->args.back(), "($recipient)");
    EXPECT_EQ(find("maildrop", "unix")->args,
              (std::vector<std::string>{"flags=DRXhu", "user=vmail", "argv=/usr/bin/maildrop", "-d",
                                        "${recipient}"}));
}

TEST(MtaConfigMasterCf, InstalledDebianFileParses) {
    const char* path = "/usr/share/postfix/master.cf.dist";
    if (testsupport::read_file(path).empty()) GTEST_SKIP() << "no " << path;
    auto m = load_master_cf(path);
    EXPECT_GE(m.size(), 20u);
}

TEST(MtaConfigMasterCf, ErrorsNameFileLineAndField) {
    EXPECT_EQ(error_of([] { parse_master_cf("smtp inet n - n - smtpd\n", "m.cf"); }),
              "m.cf, line 1: expected at least 8 fields (service type private unpriv chroot "
              "wakeup maxproc command), got 7");
    EXPECT_EQ(error_of([] { parse_master_cf("\nsmtp tcp n - n - - smtpd\n", "m.cf"); }),
              "m.cf, line 2: service smtp: field type: bad value: \"tcp\"");
    EXPECT_NE(error_of([] { parse_master_cf("smtp inet x - n - - smtpd\n", "m.cf"); }).find("field private"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_master_cf("smtp inet n - n - many smtpd\n", "m.cf"); }).find("maxproc"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_master_cf("smtp inet n - n 1x - smtpd\n", "m.cf"); }).find("wakeup"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_master_cf("smtp inet n - n - - smtpd -o\n", "m.cf"); }).find("-o"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_master_cf("smtp inet n - n - - smtpd -o novalue\n", "m.cf"); })
                  .find("expected name=value"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_master_cf("smtp inet n - n - - smtpd -o { a = b\n", "m.cf"); })
                  .find("unbalanced"),
              std::string::npos);
    EXPECT_NE(error_of([] {
                  parse_master_cf("smtp inet n - n - - smtpd\nsmtp inet n - n - - smtpd\n", "m.cf");
              }).find("line 2: service smtp: duplicate"),
              std::string::npos);
}

// -------------------------------------------------------------------- lists

TEST(MtaConfigList, SplitListKeepsBraceGroups) {
    EXPECT_EQ(split_list("a, b c,{ x, y = z }"),
              (std::vector<std::string>{"a", "b", "c", "{ x, y = z }"}));
    EXPECT_EQ(split_list(" ,, \t\n"), std::vector<std::string>{});
    EXPECT_EQ(split_list("check_policy_service { inet:127.0.0.1:9998, { default_action = DUNNO } }, permit"),
              (std::vector<std::string>{"check_policy_service",
                                        "{ inet:127.0.0.1:9998, { default_action = DUNNO } }",
                                        "permit"}));
    // An unclosed brace takes the rest, as mystrtokq does; a stray '}' is text.
    EXPECT_EQ(split_list("a {b, c"), (std::vector<std::string>{"a", "{b, c"}));
    EXPECT_EQ(split_list("a} b"), (std::vector<std::string>{"a}", "b"}));
}

TEST(MtaConfigList, ParseGroup) {
    auto g = parse_group("{ inet:127.0.0.1:9998, timeout=10s, { default_action = 451 4.3.5 try later } }");
    ASSERT_TRUE(g);
    EXPECT_EQ(g->items, (std::vector<std::string>{"inet:127.0.0.1:9998", "timeout=10s",
                                                  "default_action = 451 4.3.5 try later"}));
    EXPECT_FALSE(parse_group("inet:x"));
    EXPECT_FALSE(parse_group("{ a"));
    EXPECT_FALSE(parse_group("{ a } b"));
    EXPECT_FALSE(parse_group("{ a, {b }"));
    EXPECT_EQ(parse_group("{}")->items.size(), 0u);
    auto nv = split_nameval(g->items[2]);
    ASSERT_TRUE(nv);
    EXPECT_EQ(nv->first, "default_action");
    EXPECT_EQ(nv->second, "451 4.3.5 try later");
    EXPECT_FALSE(split_nameval("novalue"));
    EXPECT_FALSE(split_nameval(" = x"));
}

TEST(MtaConfigList, ParseTime) {
    using std::chrono::seconds;
    EXPECT_EQ(parse_time("3600s"), seconds(3600));
    EXPECT_EQ(parse_time("1h"), seconds(3600));
    EXPECT_EQ(parse_time("60"), seconds(60));
    EXPECT_EQ(parse_time("60", 'm'), seconds(3600));
    EXPECT_EQ(parse_time("2d"), seconds(172800));
    EXPECT_EQ(parse_time("1w"), seconds(604800));
    EXPECT_EQ(parse_time("0"), seconds(0));
    for (auto bad : {"", "s", "-1", "1x", "1hs", "1 h", "99999999999999999999"})
        EXPECT_THROW(parse_time(bad), ConfigError) << bad;
    EXPECT_NE(error_of([] { parse_time("1y", 's', "smtpd_timeout"); }).find("smtpd_timeout"),
              std::string::npos);
}

// ------------------------------------------------------------------- table

TEST(MtaConfigTable, SortedUniqueAndFindable) {
    auto t = parameter_table();
    ASSERT_GT(t.size(), 250u);
    for (std::size_t i = 1; i < t.size(); ++i) EXPECT_LT(t[i - 1].name, t[i].name) << t[i].name;
    for (const auto& p : t) {
        EXPECT_EQ(find_param(p.name), &p);
        if (p.support != Support::supported) { EXPECT_FALSE(p.hint.empty()) << p.name; }
    }
    EXPECT_EQ(find_param("policy_time_limit"), nullptr);
    EXPECT_EQ(find_param(""), nullptr);
    EXPECT_EQ(find_param("zzzz"), nullptr);
}

TEST(MtaConfigTable, IssueParametersAreSupported) {
    for (auto name :
         {"myhostname", "mydomain", "myorigin", "mydestination", "mynetworks", "mynetworks_style",
          "relay_domains", "relayhost", "inet_interfaces", "inet_protocols", "home_mailbox",
          "smtpd_banner", "smtpd_helo_required", "smtpd_delay_reject", "smtpd_client_restrictions",
          "smtpd_helo_restrictions", "smtpd_sender_restrictions", "smtpd_relay_restrictions",
          "smtpd_recipient_restrictions", "smtpd_data_restrictions", "smtpd_end_of_data_restrictions",
          "smtpd_sender_login_maps", "smtpd_tls_security_level", "smtpd_tls_cert_file",
          "smtpd_tls_key_file", "smtpd_tls_auth_only", "smtpd_tls_loglevel", "smtpd_tls_received_header",
          "smtpd_tls_session_cache_timeout", "smtpd_tls_wrappermode", "smtpd_tls_protocols",
          "smtpd_tls_mandatory_protocols", "smtpd_sasl_auth_enable", "smtpd_sasl_type", "smtpd_sasl_path",
          "smtpd_sasl_security_options", "smtpd_sasl_response_limit", "anvil_rate_time_unit",
          "smtpd_client_connection_count_limit", "smtpd_client_connection_rate_limit",
          "smtpd_client_message_rate_limit", "smtpd_client_recipient_rate_limit",
          "smtpd_client_auth_rate_limit", "smtpd_client_new_tls_session_rate_limit",
          "smtpd_client_event_limit_exceptions", "smtpd_error_sleep_time", "smtpd_soft_error_limit",
          "smtpd_hard_error_limit", "smtpd_junk_command_limit", "smtpd_recipient_limit", "smtpd_timeout",
          "smtpd_per_request_deadline", "line_length_limit", "header_size_limit", "hopcount_limit",
          "message_size_limit", "disable_vrfy_command", "smtputf8_enable", "smtpd_forbid_bare_newline",
          "smtpd_forbid_unauth_pipelining", "smtpd_policy_service_timeout",
          "smtpd_policy_service_default_action", "smtpd_policy_service_max_idle",
          "smtpd_policy_service_max_ttl", "smtpd_policy_service_try_limit", "reject_tempfail_action",
          "unknown_helo_hostname_tempfail_action", "unknown_address_tempfail_action",
          "alias_maps", "local_recipient_maps",
          "virtual_alias_maps", "virtual_alias_domains", "virtual_mailbox_domains", "virtual_mailbox_maps",
          "transport_maps", "mailbox_transport", "virtual_transport", "minimal_backoff_time",
          "maximal_backoff_time", "queue_run_delay", "maximal_queue_lifetime",
          "default_destination_concurrency_limit", "queue_directory", "mail_owner", "syslog_name",
          "maillog_file", "recipient_delimiter", "parent_domain_matches_subdomains", "smtpd_milters",
          "non_smtpd_milters", "milter_default_action", "milter_protocol", "milter_macro_v"}) {
        const ParamInfo* p = find_param(name);
        ASSERT_NE(p, nullptr) << name;
        EXPECT_EQ(p->support, Support::supported) << name;
    }
    // Known, not built yet: setting them is an error that says so.
    for (auto name : {"relay_recipient_maps", "smtpd_discard_ehlo_keywords"}) {
        const ParamInfo* p = find_param(name);
        ASSERT_NE(p, nullptr) << name;
        EXPECT_EQ(p->support, Support::unsupported) << name;
        EXPECT_NE(p->hint.find("not available yet"), std::string_view::npos) << name;
    }
}

TEST(MtaConfigTable, UnsupportedAndIgnoredExamples) {
    EXPECT_EQ(find_param("content_filter")->support, Support::unsupported);
    EXPECT_NE(find_param("content_filter")->hint.find("smtpd_milters"), std::string_view::npos);
    for (auto n : {"mailbox_command", "forward_path", "allow_mail_to_commands", "allow_mail_to_files",
                   "header_checks", "smtpd_proxy_filter"})
        EXPECT_EQ(find_param(n)->support, Support::unsupported) << n;
    for (auto n : {"biff", "readme_directory", "compatibility_level", "alias_database",
                   "tls_random_source", "smtp_tls_session_cache_database", "mailbox_size_limit"})
        EXPECT_EQ(find_param(n)->support, Support::ignored) << n;
    EXPECT_EQ(find_param("append_dot_mydomain")->support, Support::supported);
}

TEST(MtaConfigTable, IssueDefaults) {
    auto s = settings("");
    EXPECT_EQ(s.str("smtpd_forbid_bare_newline"), "normalize");
    EXPECT_TRUE(s.boolean("smtpd_forbid_unauth_pipelining"));
    EXPECT_EQ(s.str("smtpd_tls_protocols"), ">=TLSv1.2");
    EXPECT_EQ(s.str("smtpd_tls_mandatory_protocols"), ">=TLSv1.2");
    EXPECT_EQ(s.str("smtpd_relay_restrictions"),
              "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination");
    EXPECT_EQ(s.str("mynetworks_style"), "host");
    EXPECT_EQ(s.str("relay_domains"), "");
    EXPECT_TRUE(s.boolean("smtputf8_enable"));
    EXPECT_FALSE(s.boolean("append_dot_mydomain"));
    EXPECT_EQ(s.str("syslog_name"), "postfix");
    EXPECT_EQ(s.time("smtpd_timeout"), std::chrono::seconds(300));
    EXPECT_EQ(s.integer("smtpd_hard_error_limit", 1, 1000), 20);
    EXPECT_EQ(s.integer("message_size_limit", 0, 1LL << 40), 10240000);
    EXPECT_EQ(s.str("smtpd_client_event_limit_exceptions"), s.str("mynetworks"));
    EXPECT_EQ(s.str("smtpd_policy_service_default_action"), "451 4.3.5 Server configuration problem");
    // A raw parameter keeps its run-time macros.
    EXPECT_EQ(s.str("default_rbl_reply"), std::string(find_param("default_rbl_reply")->default_value));
}

TEST(MtaConfigTable, DifferencesAreFromTheTable) {
    std::set<std::string_view> seen;
    for (const auto& d : default_differences()) {
        const ParamInfo* p = find_param(d.name);
        ASSERT_NE(p, nullptr) << d.name;
        EXPECT_NE(p->default_value, d.postfix_37) << d.name;
        EXPECT_FALSE(d.reason.empty());
        EXPECT_TRUE(seen.insert(d.name).second) << d.name;
        // Postfix's compatibility_level expressions, evaluated at 3.6, give our defaults.
        if (d.reason == "compatibility_level 3.6 value") {
            auto s = settings("myhostname = h.example\ncompatibility_level = 3.6\nexpr = " +
                              std::string(d.postfix_37) + "\n");
            EXPECT_EQ(s.str("expr"), s.expand(p->default_value)) << d.name;
        }
    }
}

// --------------------------------------------------------------- expansion

TEST(MtaConfigExpand, ClassicBannerAndDomain) {
    Settings s(load_main_cf(data("classic/main.cf")), load_master_cf(data("classic/master.cf")));
    EXPECT_EQ(s.str("smtpd_banner"), "mail.example.org ESMTP Why, hello there!");
    EXPECT_EQ(s.raw("smtpd_banner"), "$myhostname ESMTP Why, hello there!");
    EXPECT_EQ(s.str("mydomain"), "mail.example.org");
    EXPECT_EQ(s.str("myorigin"), "mail.example.org");
    EXPECT_EQ(s.list("mydestination"), (std::vector<std::string>{"mail.example.org", "localhost"}));
    EXPECT_EQ(s.time("anvil_rate_time_unit"), std::chrono::seconds(120));
    EXPECT_EQ(s.time("smtpd_tls_session_cache_timeout"), std::chrono::seconds(3600));
    EXPECT_EQ(s.time("smtpd_error_sleep_time"), std::chrono::seconds(60));
    EXPECT_EQ(s.integer("smtpd_client_connection_rate_limit", 0, 1 << 30), 2400);
    EXPECT_EQ(s.integer("smtpd_tls_loglevel", 0, 4), 3);
    EXPECT_TRUE(s.boolean("smtpd_tls_auth_only"));
    EXPECT_EQ(s.list("smtpd_recipient_restrictions").size(), 9u);
    // The spawn service's time limit: unset, so Postfix's default.
    EXPECT_EQ(s.raw("policy-spf_time_limit"), "$command_time_limit");
    EXPECT_EQ(s.time("policy-spf_time_limit"), std::chrono::seconds(1000));
}

TEST(MtaConfigExpand, MacExpandForms) {
    auto s = settings("myhostname = h.example\nmydomain = $myhostname\nrelayhost =\n"
                      "a = x$$y\nb = ${mydomain?yes}/${nonesuch?no}/${nonesuch:dflt}/$(mydomain)\n"
                      "c = ${mydomain?{Y}:{N}}/${relayhost?{Y}:{N}}/${relayhost?{a}  :  {b}}\n"
                      "d = ${relayhost:empty}/${relayhost?set}/${mydomain:{unused}}\n"
                      "e = $myhostname.x$mydomain,\n"
                      "f = ${mydomain?{$myhostname}}\n");
    EXPECT_EQ(s.str("a"), "x$y");
    EXPECT_EQ(s.str("b"), "yes//dflt/h.example");
    EXPECT_EQ(s.str("c"), "Y/N/b");
    EXPECT_EQ(s.str("d"), "empty//");
    EXPECT_EQ(s.str("e"), "h.example.xh.example,");
    EXPECT_EQ(s.str("f"), "h.example");
    EXPECT_EQ(s.expand("$undefined_thing!"), "!");
    EXPECT_EQ(s.str("smtpd_timeout"), "300s");  // ${stress?{10}:{300}}s with no stress
}

TEST(MtaConfigExpand, SpacesAndRelationalOperators) {
    auto s = settings("myhostname = h.example\nrelayhost =\nn = 10\n"
                      "a = ${myhostname ? {a} : {b}}/${relayhost ?x}/${relayhost?{a}:b c}\n"
                      "b = ${{$myhostname} == {h.example} ? {eq} : {ne}}/${{$n} < {9} ? {lt} : {ge}}\n"
                      "c = ${{3.6} <level {3.10} ? {older}}/${{2} >=level {2.0.0}?{same}:{no}}\n"
                      "d = ${{$n} != {10}?{x}}|\n"
                      "e = ${{a} < {b} ? {x}}/${{10} < {9a} ? {lt} : {ge}}/${{2} == {02} ? {eq} : {ne}}/${{ 5} < {10}?{lt}}\n"
                      "bad1 = ${relayhost:{x} y}\nbad2 = ${{x} <level {1} ? {x}}\nbad3 = ${{a} ~ {b} ? {x}}\n"
                      "bad4 = ${{a} == {b} {x}}\nbad5 = ${myhostname?{a}b}\n");
    EXPECT_EQ(s.str("a"), "a//b c");
    EXPECT_EQ(s.str("b"), "eq/ge");
    EXPECT_EQ(s.str("c"), "older/same");
    EXPECT_EQ(s.str("d"), "|");
    EXPECT_NE(error_of([&] { s.str("bad1"); }).find("unexpected input"), std::string::npos);
    // Numbers compare as numbers, other text (" 5" included) as strings.
    EXPECT_EQ(s.str("e"), "x/lt/eq/lt");
    EXPECT_NE(error_of([&] { s.str("bad2"); }).find("malformed compatibility level"), std::string::npos);
    EXPECT_NE(error_of([&] { s.str("bad3"); }).find("unknown operator"), std::string::npos);
    EXPECT_NE(error_of([&] { s.str("bad4"); }).find("'?' expected"), std::string::npos);
    EXPECT_NE(error_of([&] { s.str("bad5"); }).find("unexpected input"), std::string::npos);
    // Postfix's own default expressions, at compatibility level 3.6.
    auto t = settings("compatibility_level = 3.6\n"
                      "x = ${{$compatibility_level} <level {2} ? {subnet} : {host}}\n");
    EXPECT_EQ(t.str("x"), "host");
}

TEST(MtaConfigExpand, ConditionsTestTheUnexpandedValue) {
    // mac_expand tests the looked-up value before expanding it: u is
    // "${relayhost}" (not empty) even though it expands to nothing.
    auto s = settings("relayhost =\nu = ${relayhost}\na = ${u:fallback}/${u?set}\n"
                      "b = ${{$relayhost x} == { x} ? {eq} : {ne}}\n");
    EXPECT_EQ(s.str("u"), "");
    EXPECT_EQ(s.str("a"), "/set");
    EXPECT_EQ(s.str("b"), "eq");
    // A condition on the parameter itself is not a loop.
    EXPECT_EQ(settings("c = ${c?yes}\n").str("c"), "yes");
}

TEST(MtaConfigExpand, ErrorsAndLoops) {
    auto s = settings("myhostname = $mydomain\nmydomain = $myhostname\nself = a $self\n"
                      "x = end$\ny = ${foo\nz = ${a b}\nw = $-x\n");
    std::string e = error_of([&] { s.str("myhostname"); });
    EXPECT_NE(e.find("main.cf, line 1: parameter myhostname"), std::string::npos) << e;
    EXPECT_NE(e.find("loop"), std::string::npos) << e;
    EXPECT_NE(error_of([&] { s.str("self"); }).find("loop"), std::string::npos);
    EXPECT_NE(error_of([&] { s.str("x"); }).find("empty macro name"), std::string::npos);
    EXPECT_NE(error_of([&] { s.str("y"); }).find("truncated macro reference"), std::string::npos);
    EXPECT_NE(error_of([&] { s.str("z"); }).find("syntax error"), std::string::npos);
    EXPECT_NE(error_of([&] { s.str("w"); }).find("empty macro name"), std::string::npos);
}

TEST(MtaConfigExpand, DeepChainWithinLimitAndBeyond) {
    std::string text;
    for (int i = 0; i < 50; ++i) text += "p" + std::to_string(i) + " = $p" + std::to_string(i + 1) + "\n";
    text += "p50 = end\n";
    EXPECT_EQ(settings(text).str("p0"), "end");
    std::string deep;
    for (int i = 0; i < 150; ++i) deep += "q" + std::to_string(i) + " = $q" + std::to_string(i + 1) + "\n";
    EXPECT_NE(error_of([&] { settings(deep).str("q0"); }).find("nesting"), std::string::npos);
}

TEST(MtaConfigExpand, ExponentialChainsAreBounded) {
    // 20 levels of a = $b$b: 2^20 lookups or a megabyte of output, cut short.
    std::string text;
    for (int i = 0; i < 20; ++i)
        text += "e" + std::to_string(i) + " = $e" + std::to_string(i + 1) + "$e" + std::to_string(i + 1) + "\n";
    text += "e20 = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";
    EXPECT_NE(error_of([&] { settings(text).str("e0"); }).find("main.cf, line 1: parameter e0: "),
              std::string::npos);
    std::string empty;
    for (int i = 0; i < 20; ++i)
        empty += "z" + std::to_string(i) + " = $z" + std::to_string(i + 1) + "$z" + std::to_string(i + 1) + "\n";
    EXPECT_NE(error_of([&] { settings(empty).str("z0"); }).find("too many macro expansions"), std::string::npos);
}

// ------------------------------------------------------------ typed values

TEST(MtaConfigSettings, TimeUnitsFromTheTable) {
    auto s = settings("maximal_queue_lifetime = 5\ndelay_warning_time = 4\nsmtpd_timeout = 30\n"
                      "bounce_queue_lifetime = 2h\n");
    EXPECT_EQ(s.time("maximal_queue_lifetime"), std::chrono::days(5));
    EXPECT_EQ(s.time("delay_warning_time"), std::chrono::hours(4));
    EXPECT_EQ(s.time("smtpd_timeout"), std::chrono::seconds(30));
    EXPECT_EQ(s.time("bounce_queue_lifetime"), std::chrono::hours(2));
    EXPECT_EQ(s.time("maximal_queue_lifetime", 's'), std::chrono::seconds(5));  // caller's unit wins
    EXPECT_EQ(find_param("maximal_queue_lifetime")->kind, Kind::time);
    EXPECT_EQ(find_param("smtpd_helo_required")->kind, Kind::boolean);
    EXPECT_EQ(find_param("smtpd_per_request_deadline")->kind, Kind::boolean);
    EXPECT_EQ(find_param("message_size_limit")->kind, Kind::integer);
    EXPECT_EQ(find_param("smtpd_forbid_bare_newline")->kind, Kind::text);  // yes, no or normalize
}

TEST(MtaConfigSettings, EveryDefaultHasTheSyntaxOfItsKind) {
    std::string text;
    for (const auto& p : parameter_table())
        if (p.support == Support::supported) text += std::string(p.name) + " = " + std::string(p.default_value) + "\n";
    auto s = settings(text);
    EXPECT_NO_THROW(s.check_values());
    auto d = settings("");
    for (const auto& p : parameter_table()) {
        if (p.kind == Kind::time) {
            EXPECT_NO_THROW(d.time(p.name)) << p.name;
            EXPECT_NE(p.time_unit, 0) << p.name;
        }
        if (p.kind == Kind::boolean) {
            EXPECT_NO_THROW(d.boolean(p.name)) << p.name;
        }
    }
}

TEST(MtaConfigSettings, CheckValuesNamesEveryBadValue) {
    Settings ok(load_main_cf(data("classic/main.cf")), load_master_cf(data("classic/master.cf")));
    EXPECT_NO_THROW(ok.check_values());
    Settings debian(load_main_cf(data("debian/main.cf")), load_master_cf(data("debian/master.cf")));
    EXPECT_NO_THROW(debian.check_values());
    auto s = settings("smtpd_helo_required = maybe\nmessage_size_limit = 10M\nsmtpd_timeout = 5y\n"
                      "smtpd_banner = ${oops\nunknown_x = ${also_oops\nreadme_directory = /usr/share/doc\n"
                      "mua_r = ${bad\nsmtpd_client_restrictions = $mua_r\n");
    std::string e = error_of([&] { s.check_values(); });
    EXPECT_NE(e.find("main.cf, line 1: parameter smtpd_helo_required"), std::string::npos) << e;
    EXPECT_NE(e.find("main.cf, line 2: parameter message_size_limit"), std::string::npos) << e;
    EXPECT_NE(e.find("main.cf, line 3: parameter smtpd_timeout"), std::string::npos) << e;
    EXPECT_NE(e.find("main.cf, line 4: parameter smtpd_banner"), std::string::npos) << e;
    EXPECT_NE(e.find("main.cf, line 7: parameter mua_r"), std::string::npos) << e;
    EXPECT_EQ(e.find("unknown_x"), std::string::npos) << e;         // unused: only warned about
    EXPECT_EQ(e.find("readme_directory"), std::string::npos) << e;  // ignored
    auto o = settings("").with_overrides({{"smtpd_tls_wrappermode", "sure"}}, "master.cf, line 9: service smtps");
    EXPECT_NE(error_of([&] { o.check_values(); }).find("master.cf, line 9: service smtps: parameter smtpd_tls_wrappermode"),
              std::string::npos);
}

TEST(MtaConfigSettings, TypedGettersAndErrors) {
    auto s = settings("smtpd_timeout = 5m\nsmtpd_recipient_limit = 1000\nbad_int = 12x\n"
                      "smtpd_helo_required = TRUE\ndisable_vrfy_command = maybe\nneg = -5\n"
                      "smtpd_error_sleep_time = 1d\n");
    EXPECT_EQ(s.time("smtpd_timeout"), std::chrono::seconds(300));
    EXPECT_EQ(s.time("smtpd_error_sleep_time"), std::chrono::seconds(86400));
    EXPECT_EQ(s.integer("smtpd_recipient_limit", 1, 100000), 1000);
    EXPECT_EQ(s.integer("neg", -10, 10), -5);
    EXPECT_TRUE(s.boolean("smtpd_helo_required"));
    std::string e = error_of([&] { s.integer("smtpd_recipient_limit", 1, 10); });
    EXPECT_EQ(e, "main.cf, line 2: parameter smtpd_recipient_limit: invalid value 1000 > 10");
    EXPECT_NE(error_of([&] { s.integer("bad_int", 0, 100); }).find("bad numerical"), std::string::npos);
    EXPECT_NE(error_of([&] { s.integer("neg", 0, 100); }).find("< 0"), std::string::npos);
    EXPECT_NE(error_of([&] { s.boolean("disable_vrfy_command"); }).find("line 5: parameter disable_vrfy_command"),
              std::string::npos);
    EXPECT_NE(error_of([&] { s.integer("smtpd_timeout", 0, 10); }).find("bad numerical"), std::string::npos);
    EXPECT_NE(error_of([&] { settings("x = 99999999999999999999999\n").integer("x", 0, 1LL << 62); })
                  .find("bad numerical"),
              std::string::npos);
}

TEST(MtaConfigSettings, OverridesWinAndAreChecked) {
    Settings base(load_main_cf(data("classic/main.cf")), load_master_cf(data("classic/master.cf")));
    auto master = load_master_cf(data("classic/master.cf"));
    auto sub = base.with_service(master[1]);
    EXPECT_EQ(sub.str("smtpd_tls_security_level"), "encrypt");
    EXPECT_EQ(base.str("smtpd_tls_security_level"), "may");
    EXPECT_EQ(sub.list("smtpd_client_restrictions"),
              (std::vector<std::string>{"permit_sasl_authenticated", "reject"}));
    EXPECT_TRUE(sub.is_set("smtpd_tls_security_level"));
    EXPECT_NE(sub.origin("smtpd_tls_security_level").find("service submission"), std::string::npos);
    EXPECT_EQ(sub.expand("$service_name"), "submission");
    EXPECT_NE(error_of([&] { base.with_overrides({{"content_filter", "smtp:[127.0.0.1]:10025"}}); })
                  .find("smtpd_milters"),
              std::string::npos);
    EXPECT_NE(error_of([&] { base.with_overrides({{"bad name", "x"}}); }).find("bad -o parameter name"),
              std::string::npos);
    EXPECT_NE(error_of([&] { base.with_overrides({{"", "x"}}); }).find("bad -o"), std::string::npos);
}

TEST(MtaConfigSettings, ComputedDefaults) {
    auto s = settings("");
    EXPECT_FALSE(s.is_set("myhostname"));
    s.set_computed_default("myhostname", "host.example.net");
    s.set_computed_default("mydomain", "example.net");
    EXPECT_EQ(s.str("myorigin"), "host.example.net");
    EXPECT_EQ(s.str("mydestination"), "host.example.net, localhost.example.net, localhost");
    EXPECT_FALSE(s.is_set("myhostname"));
    auto t = settings("myhostname = explicit.example\n");
    t.set_computed_default("myhostname", "host.example.net");
    EXPECT_EQ(t.str("myhostname"), "explicit.example");
}

// --------------------------------------------------------------- validate

TEST(MtaConfigValidate, ClassicConfigurationAsPostfixSeesIt) {
    auto master = load_master_cf(data("classic/master.cf"));
    Settings s(load_main_cf(data("classic/main.cf")), master);
    auto warnings = s.validate();
    // Postfix warns about policy_time_limit only: spawn reads policy-spf_time_limit.
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0], data("classic/main.cf") + ": unused parameter: policy_time_limit=3600");
    auto notes = s.ignored_notes();
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_NE(notes[0].find("tls_random_source"), std::string::npos);
    for (const auto& e : master) EXPECT_TRUE(s.with_service(e).validate().size() == 1u);
}

TEST(MtaConfigValidate, ServiceSpecificParametersFollowTheCommand) {
    auto master = parse_master_cf("policy-spf unix - n n - 0 spawn user=nobody argv=/x\n"
                                  "relay unix - - n - - smtp\nmd unix - n n - - pipe argv=/x\n",
                                  "master.cf");
    Settings s(parse_main_cf("policy-spf_time_limit = 3600\npolicy_time_limit = 1\n"
                             "relay_destination_concurrency_limit = 5\n"
                             "policy-spf_destination_concurrency_limit = 5\nmd_time_limit = 10\n"
                             "md_destination_recipient_limit = 1\n",
                             "main.cf"),
               master);
    auto w = s.validate();
    EXPECT_EQ(w, (std::vector<std::string>{
                     "main.cf: unused parameter: policy-spf_destination_concurrency_limit=5",
                     "main.cf: unused parameter: policy_time_limit=1"}));
    EXPECT_EQ(s.time("policy-spf_time_limit"), std::chrono::seconds(3600));
    // Built from names only, every suffix is accepted for every service.
    Settings names(parse_main_cf("policy-spf_time_limit = 3600\npolicy_time_limit = 1\n", "main.cf"),
                   std::vector<std::string>{"policy-spf"});
    EXPECT_EQ(names.validate().size(), 1u);
}

TEST(MtaConfigValidate, UnsupportedIsAnErrorNamingAllWithHints) {
    auto s = settings("content_filter = smtp:[127.0.0.1]:10025\nmyhostname = x\n"
                      "mailbox_command = /usr/bin/procmail\n");
    std::string e = error_of([&] { s.validate(); });
    EXPECT_NE(e.find("main.cf, line 1: parameter content_filter is not supported by mta-core: "
                     "content filters are not run; use smtpd_milters"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find("main.cf, line 3: parameter mailbox_command"), std::string::npos) << e;
}

TEST(MtaConfigValidate, UnsupportedSetToItsDefaultIsAccepted) {
    auto s = settings("mailbox_command =\ncontent_filter =\nsmtpd_tls_ask_ccert = no\n");
    EXPECT_TRUE(s.validate().empty());
    EXPECT_EQ(s.ignored_notes().size(), 3u);
    EXPECT_NO_THROW(s.with_overrides({{"content_filter", ""}, {"receive_override_options", ""}}));
    EXPECT_THROW(s.with_overrides({{"receive_override_options", "no_address_mappings"}}), ConfigError);
}

TEST(MtaConfigValidate, UnknownWarnsReferencedIsUsed) {
    auto s = settings("foo = bar\nmua_client_restrictions = permit_sasl_authenticated, reject\n"
                      "smtpd_client_restrictions = $mua_client_restrictions\n"
                      "smtpd_per_record_deadline = yes\nempty =\n");
    EXPECT_EQ(s.validate(), (std::vector<std::string>{"main.cf: unused parameter: empty=",
                                                      "main.cf: unused parameter: foo=bar"}));
    // A name used only in a master.cf override is used too (Debian's submission pattern).
    auto master = parse_master_cf("submission inet n - n - - smtpd -o smtpd_client_restrictions=$mua_x\n",
                                  "master.cf");
    Settings t(parse_main_cf("mua_x = permit\n", "main.cf"), master);
    EXPECT_TRUE(t.validate().empty());
    auto sub = t.with_service(master[0]);
    EXPECT_EQ(sub.str("smtpd_client_restrictions"), "permit");
    // An unknown -o is a warning naming the service.
    auto odd = t.with_overrides({{"nonesuch_param", "1"}}, "master.cf, line 1: service submission");
    EXPECT_EQ(odd.validate(), (std::vector<std::string>{
                                  "master.cf, line 1: service submission: unused parameter: nonesuch_param=1"}));
}

TEST(MtaConfigValidate, DebianStockConfigurationIsAccepted) {
    auto master = load_master_cf(data("debian/master.cf"));
    Settings s(load_main_cf(data("debian/main.cf")), master);
    EXPECT_TRUE(s.validate().empty());
    EXPECT_GE(s.ignored_notes().size(), 5u);  // biff, readme_directory, compatibility_level, ...
    EXPECT_EQ(s.str("smtp_tls_session_cache_database"), "btree:/var/lib/postfix/smtp_scache");
    for (const auto& e : master) EXPECT_NO_THROW(s.with_service(e).validate()) << e.service;
}

// ------------------------------------------------------------ postconf -n

TEST(MtaConfigPrint, NonDefaultLikePostconfN) {
    auto s = settings("myhostname =   a    b\t\tc  \nmydomain=x\nmyorigin = one\n\ttwo\nfoo = bar\nempty_x =\n"
                      "relayhost =\n");
    EXPECT_EQ(s.print_non_default(),
              "mydomain = x\nmyhostname = a b c\nmyorigin = one two\nrelayhost =\n");
}

// find_param searches the table by binary search: it must stay sorted.
TEST(MtaConfigTable, TheTableIsSortedByName) {
    auto table = mta::config::parameter_table();
    for (std::size_t i = 1; i < table.size(); ++i)
        EXPECT_LT(table[i - 1].name, table[i].name) << "out of order at " << table[i].name;
}
