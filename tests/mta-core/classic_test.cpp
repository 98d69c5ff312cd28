// The classic Postfix 2.6 configuration (main.cf and master.cf as a mail
// server ran them for years), adapted only in paths, ports and names, run by
// mta-core with everything it names for real: TLS, AUTH through Cyrus SASL
// and saslauthd, a pcre login map, check_policy_service to policyd-greylist
// with Redis, Debian's policyd-spf spawned on stdin/stdout as nobody, DNS
// from a dnsmasq that mta-core and policyd-spf reach through their own
// resolv.conf (a private mount namespace), reject_unknown_*_hostname, an RBL
// that does not answer, aliases, and delivery into ~/Maildir of a system user
// through delivery-maildir.
#include <gtest/gtest.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "../delivery/helpers.h"
#include "mta_instance.h"
#include "support/redis_server.h"

using namespace testsupport;
using dtest::LineClient;
using mtatest::MtaInstance;
using mtatest::cmd;

namespace {

// The classic main.cf, from the configuration's own text; %GREYLIST% and
// %TLS% are the adapted parts (a port, and the test's certificate paths).
const char* kClassicMainCf = R"(myhostname = mail.example.org
mydomain = $myhostname
myorigin = $mydomain
inet_interfaces = all
inet_protocols = all
mydestination = $mydomain, localhost
mynetworks_style = host
home_mailbox = Maildir/
smtpd_banner = $myhostname ESMTP Why, hello there!
smtpd_tls_security_level = may
smtpd_tls_cert_file = %DIR%/cert.pem
smtpd_tls_key_file = %DIR%/key.pem
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 3
smtpd_tls_received_header = yes
smtpd_tls_session_cache_timeout = 3600s
tls_random_source = dev:/dev/urandom
smtpd_client_restrictions = reject_unknown_client_hostname, permit
smtpd_helo_required = yes
smtpd_helo_restrictions = reject_unknown_helo_hostname, reject_non_fqdn_helo_hostname, reject_invalid_helo_hostname, permit
smtpd_sender_login_maps = pcre:%DIR%/login_maps.pcre
smtpd_sender_restrictions = reject_non_fqdn_sender, %MISMATCH%reject_unknown_sender_domain, permit
smtpd_recipient_restrictions = permit_sasl_authenticated, reject_unauth_destination, reject_rbl_client zen.spamhaus.org, check_policy_service unix:private/policy-spf, check_policy_service inet:127.0.0.1:%GREYLIST%, permit
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_security_options = noanonymous
policy_time_limit = 3600
anvil_rate_time_unit = 120s
smtpd_client_connection_rate_limit = 2400
smtpd_client_message_rate_limit = 12000
smtpd_error_sleep_time = 60
alias_maps = hash:%DIR%/aliases
cyrus_sasl_config_path = %DIR%
)";

const char* kClassicMasterCf = R"(127.0.0.1:%SMTP% inet  n  -  n  -  -  smtpd
127.0.0.1:%SUBMISSION% inet  n  -  n  -  -  smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
%SUBMISSION_EXTRA%policy-spf unix  -  n  n  -  0  spawn
  user=nobody argv=/usr/bin/policyd-spf %DIR%/policyd-spf.conf
)";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
        s.replace(pos, from.size(), to);
    return s;
}

// Everything the configuration names, for real.
class Classic : public ::testing::Test {
protected:
    void SetUp() override {
        ::chmod(dir_.path().c_str(), 0755);
        // A system user with a home (~/Maildir) and a password (saslauthd -a shadow).
        auto add = run({"/usr/sbin/useradd", "-m", "-d", dir_.file("home"), "-N", "-s", "/usr/sbin/nologin", user_});
        ASSERT_EQ(add.exit_code, 0) << add.output;
        user_created_ = true;
        ASSERT_EQ(run({"/usr/sbin/chpasswd"}, user_ + ":" + password_ + "\n").exit_code, 0);
        ::chmod(dir_.file("home").c_str(), 0755);
        // TLS, the login map of the configuration, aliases, Cyrus's smtpd.conf.
        auto cert = run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir_.file("key.pem"),
                         "-out", dir_.file("cert.pem"), "-days", "2", "-subj", "/CN=mail.example.org"});
        ASSERT_EQ(cert.exit_code, 0) << cert.output;
        dir_.write("login_maps.pcre", "/^(.*)$/   ${1}\n");
        dir_.write("aliases", "postmaster: " + user_ + "\n");
        dir_.write("smtpd.conf", "pwcheck_method: saslauthd\nsaslauthd_path: " + dir_.file("mux") +
                                     "\nmech_list: PLAIN LOGIN\n");
        saslauthd_ = Process({"/usr/sbin/saslauthd", "-a", "shadow", "-m", dir_.path(), "-n", "1", "-d"},
                             dir_.file("saslauthd.log"));
        wait_for_unix(dir_.file("mux"));
        // Debian's policyd-spf, configured not to skip loopback clients.
        dir_.write("policyd-spf.conf",
                   "debugLevel = 1\nTestOnly = 1\nHELO_reject = Fail\nMail_From_reject = Fail\n"
                   "PermError_reject = False\nTempError_Defer = False\nskip_addresses = 192.0.2.255/32\n");
        // DNS: dnsmasq on 127.0.0.77:53, authoritative for .test; the RBL
        // (zen.spamhaus.org) gets no answer it can use: "not listed".
        dns_ = Process({"/usr/sbin/dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                        "--conf-file=/dev/null", "--listen-address=127.0.0.77", "--bind-interfaces", "--port=53",
                        "--local=/test/", "--local-ttl=60", "--neg-ttl=60", "--host-record=client.test,127.0.0.1",
                        "--host-record=remote.test,192.0.2.10", "--host-record=forged.test,192.0.2.11",
                        "--txt-record=remote.test,v=spf1 ip4:127.0.0.1 -all",
                        "--txt-record=forged.test,v=spf1 -all", "--pid-file=" + dir_.file("dnsmasq.pid")},
                       dir_.file("dnsmasq.log"));
        auto probe_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        const std::string probe =
            "import dnslib, sys\n"
            "try: print(dnslib.DNSRecord.parse(dnslib.DNSRecord.question('remote.test').send('127.0.0.77', 53, "
            "timeout=1)).a.rdata)\n"
            "except Exception as e: print(e)\n";
        while (mtatest::python(probe).output.find("192.0.2.10") == std::string::npos) {
            ASSERT_LT(std::chrono::steady_clock::now(), probe_deadline)
                << "dnsmasq did not answer: " << read_file(dir_.file("dnsmasq.log"));
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // waiting for a server to start
        }
        dir_.write("resolv.conf", "nameserver 127.0.0.77\n");
        greylist_ = std::make_unique<DaemonProcess>(
            dir_, DaemonProcess::Options{POLICYD_GREYLIST, "greylist", redis_.url(), {}, false},
            nlohmann::json{{"delay", "1s"}, {"whitelist_clients", nlohmann::json::array()},
                           {"whitelist_recipients", nlohmann::json::array()}});
    }
    void TearDown() override {
        mta_.reset();
        saslauthd_.stop();
        dns_.stop();
        if (user_created_) run({"/usr/sbin/userdel", "-r", user_});
    }

    // Start mta-core with the classic files; mismatch_in_main: the login
    // mismatch check stays global (as the configuration has it) or moves to
    // the submission service.
    void start(bool mismatch_in_main) {
        smtp_ = free_port();
        submission_ = free_port();
        std::string main = replace_all(kClassicMainCf, "%DIR%", dir_.path());
        main = replace_all(main, "%GREYLIST%", std::to_string(greylist_->port()));
        main = replace_all(main, "%MISMATCH%", mismatch_in_main ? "reject_sender_login_mismatch, " : "");
        std::string master = replace_all(kClassicMasterCf, "%DIR%", dir_.path());
        master = replace_all(master, "%SMTP%", std::to_string(smtp_));
        master = replace_all(master, "%SUBMISSION%", std::to_string(submission_));
        master = replace_all(master, "%SUBMISSION_EXTRA%",
                             mismatch_in_main ? "" : "  -o smtpd_sender_restrictions=reject_sender_login_mismatch\n");
        mtatest::Options o;
        o.default_main_cf = false;
        o.main_cf = main;
        o.master_cf = master;
        o.delivery_mode = "system";
        // Its own resolv.conf, as a host pointed at this DNS server would have.
        o.wrapper = {"/usr/bin/unshare", "-m", "/bin/sh", "-c",
                     "mount --bind " + dir_.file("resolv.conf") + " /etc/resolv.conf && exec \"$@\"", "sh"};
        mta_ = std::make_unique<MtaInstance>(o);
        wait_for_tcp("127.0.0.1", smtp_);
        wait_for_tcp("127.0.0.1", submission_);
    }

    std::vector<std::string> maildir() const {
        std::vector<std::string> out;
        std::string d = dir_.file("home/Maildir/new");
        if (DIR* h = ::opendir(d.c_str())) {
            while (auto* e = ::readdir(h))
                if (e->d_name[0] != '.') out.push_back(d + "/" + e->d_name);
            ::closedir(h);
        }
        return out;
    }

    TempDir dir_;
    std::string user_ = "classic" + std::to_string(::getpid());
    std::string password_ = "Why, hello 7here";
    bool user_created_ = false;
    RedisServer redis_;
    Process saslauthd_, dns_;
    std::unique_ptr<DaemonProcess> greylist_;
    std::unique_ptr<MtaInstance> mta_;
    int smtp_ = 0, submission_ = 0;
};

}  // namespace

TEST_F(Classic, AsItIsUnauthenticatedSendersAreRefused553) {
    start(true);
    auto check = mta_->command({"--check-config"});
    EXPECT_EQ(check.exit_code, 0) << check.output;
    EXPECT_NE(check.output.find("unused parameter: policy_time_limit=3600"), std::string::npos) << check.output;
    LineClient c("127.0.0.1", smtp_);
    EXPECT_EQ(c.reply(), "220 mail.example.org ESMTP Why, hello there!");
    cmd(c, "EHLO client.test");
    EXPECT_EQ(cmd(c, "MAIL FROM:<someone@remote.test>"), "250 2.1.0 Ok");
    EXPECT_EQ(cmd(c, "RCPT TO:<" + user_ + "@mail.example.org>"),
              "553 5.7.1 <someone@remote.test>: Sender address rejected: not logged in");
    EXPECT_TRUE(mta_->maillog_has("NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 553 5.7.1"));
}

TEST_F(Classic, WithTheMismatchCheckOnSubmission) {
    start(false);
    // Port 25: SPF passes (policyd-spf, spawned), greylisting defers, the
    // retry after the delay is delivered into ~/Maildir with both headers.
    auto send = [&](const std::string& from) {
        return run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(smtp_), "--helo", "client.test",
                    "--from", from, "--to", "postmaster@mail.example.org", "--header", "Subject: classic"});
    };
    auto first = send("someone@remote.test");
    EXPECT_NE(first.output.find("450 4.7.1 <postmaster@mail.example.org>: Recipient address rejected: Greylisted"),
              std::string::npos)
        << first.output << mta_->log();
    std::string later;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = send("someone@remote.test");
        later = r.output;
        if (r.exit_code == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the greylist delay is wall-clock time
    }
    ASSERT_NE(later.find("250 2.0.0 Ok: queued as"), std::string::npos) << later << mta_->maillog();
    std::vector<std::string> files;
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while ((files = maildir()).empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling a directory, bounded
    ASSERT_EQ(files.size(), 1u) << mta_->maillog();
    std::string m = read_file(files[0]);
    EXPECT_NE(m.find("Received-SPF: Pass"), std::string::npos) << m;
    EXPECT_NE(m.find("X-Greylist:"), std::string::npos) << m;
    EXPECT_TRUE(mta_->maillog_has("orig_to=<postmaster@mail.example.org>")) << "aliases(5) expanded";
    // A forged sender: policyd-spf's own refusal.
    auto forged = send("someone@forged.test");
    EXPECT_NE(forged.output.find("550 5.7.23"), std::string::npos) << forged.output;
    // Submission: TLS required, AUTH through saslauthd, a sender that is not
    // the login refused.
    auto r = mtatest::python(
        "import smtplib, ssl\n"
        "ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n"
        "s = smtplib.SMTP('127.0.0.1', " + std::to_string(submission_) + ")\n"
        "s.ehlo('client.test')\n"
        "print('before tls', s.mail('x@remote.test'))\n"
        "s.rset(); s.starttls(context=ctx); s.ehlo('client.test')\n"
        "s.login('" + user_ + "', '" + password_ + "'); print('login ok')\n"
        "try:\n"
        "    s.sendmail('somebody.else@mail.example.org', ['postmaster@mail.example.org'], 'Subject: x\\r\\n\\r\\nx\\r\\n')\n"
        "except smtplib.SMTPException as e: print('refused', e)\n"
        "s.quit()\n");
    EXPECT_NE(r.output.find("before tls (530, b'5.7.0 Must issue a STARTTLS command first')"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("login ok"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("553"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("not owned by user " + user_), std::string::npos) << r.output;
}

namespace {

// reject_tempfail_action and its siblings, against a name server that answers
// SERVFAIL to everything (127.0.0.78:53, through mta-core's own resolv.conf).
class TempfailActions : public ::testing::Test {
protected:
    void SetUp() override {
        dns_ = Process({"/usr/bin/python3", "-c",
                        "import socket, dnslib\n"
                        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.78', 53))\n"
                        "print('ready', flush=True)\n"
                        "while True:\n"
                        "    data, peer = s.recvfrom(4096)\n"
                        "    reply = dnslib.DNSRecord.parse(data).reply(); reply.header.rcode = 2\n"
                        "    s.sendto(reply.pack(), peer)\n"},
                       dir_.file("dns.log"));
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (read_file(dir_.file("dns.log")).find("ready") == std::string::npos) {
            ASSERT_TRUE(dns_.running()) << read_file(dir_.file("dns.log"));
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << read_file(dir_.file("dns.log"));
            std::this_thread::sleep_for(std::chrono::milliseconds(20));  // waiting for a server to start
        }
        dir_.write("resolv.conf", "nameserver 127.0.0.78\noptions timeout:1 attempts:1\n");
    }
    void TearDown() override { dns_.stop(); }

    // MAIL FROM's reply with the sender checks at MAIL (smtpd_delay_reject = no).
    std::string mail_from(const std::string& actions, const std::string& sender) {
        mtatest::Options o;
            o.main_cf = actions +
                    "smtpd_delay_reject = no\n"
                    "smtpd_sender_restrictions = reject_unknown_sender_domain, "
                    "check_sender_access inline:{ refused@fail.test=REJECT }, permit\n";
        o.wrapper = {"/usr/bin/unshare", "-m", "/bin/sh", "-c",
                     "mount --bind " + dir_.file("resolv.conf") + " /etc/resolv.conf && exec \"$@\"", "sh"};
        MtaInstance mta(o);
        LineClient c("127.0.0.1", mta.port());
        c.reply();
        cmd(c, "EHLO client.test");
        return cmd(c, "MAIL FROM:<" + sender + ">");
    }

    TempDir dir_;
    Process dns_;
};

}  // namespace

TEST_F(TempfailActions, DeferIfPermitKeepsLookingForAReasonToReject) {
    EXPECT_EQ(mail_from("", "refused@fail.test"), "554 5.7.1 <refused@fail.test>: Sender address rejected: Access denied");
    EXPECT_EQ(mail_from("", "other@fail.test"), "450 4.1.8 <other@fail.test>: Sender address rejected: Domain not found");
}

TEST_F(TempfailActions, DeferDefersAtOnceAndAnUnknownActionIsAConfigError) {
    EXPECT_EQ(mail_from("unknown_address_tempfail_action = defer\n", "refused@fail.test"),
              "450 4.1.8 <refused@fail.test>: Sender address rejected: Domain not found");
    // The finer parameter follows reject_tempfail_action by default.
    EXPECT_EQ(mail_from("reject_tempfail_action = defer\n", "refused@fail.test"),
              "450 4.1.8 <refused@fail.test>: Sender address rejected: Domain not found");
    mtatest::Options o;
    MtaInstance probe(o);
    probe.rewrite_main_cf("reject_tempfail_action = bounce\n");
    auto check = probe.command({"--check-config"});
    EXPECT_NE(check.exit_code, 0);
    EXPECT_NE(check.output.find("reject_tempfail_action = bounce: specify defer or defer_if_permit"), std::string::npos)
        << check.output;
}

namespace {

// default_rbl_reply and rbl_reply_maps against a DNS list served by dnsmasq
// (127.0.0.79:53, through mta-core's own resolv.conf): 127.0.0.1 is listed
// in zen.test with a TXT reason that holds '$' (data, never expanded).
class RblReplies : public ::testing::Test {
protected:
    void SetUp() override {
        dns_ = Process({"/usr/sbin/dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                        "--conf-file=/dev/null", "--listen-address=127.0.0.79", "--bind-interfaces", "--port=53",
                        "--local=/test/", "--host-record=1.0.0.127.zen.test,127.0.0.2",
                        "--txt-record=1.0.0.127.zen.test,Listed for $100 by $client_address",
                        "--pid-file=" + dir_.file("dnsmasq.pid")},
                       dir_.file("dnsmasq.log"));
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        const std::string probe =
            "import dnslib\n"
            "try: print(dnslib.DNSRecord.parse(dnslib.DNSRecord.question('1.0.0.127.zen.test', 'TXT')"
            ".send('127.0.0.79', 53, timeout=1)).a.rdata)\n"
            "except Exception as e: print(e)\n";
        while (mtatest::python(probe).output.find("Listed") == std::string::npos) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << read_file(dir_.file("dnsmasq.log"));
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // waiting for a server to start
        }
        dir_.write("resolv.conf", "nameserver 127.0.0.79\n");
    }
    void TearDown() override { dns_.stop(); }

    // The RCPT reply from 127.0.0.1 with these extra main.cf lines.
    std::string rcpt_reply(const std::string& extra) {
        mtatest::Options o;
        o.main_cf = "smtpd_recipient_restrictions = reject_rbl_client zen.test, permit\n" + extra;
        o.wrapper = {"/usr/bin/unshare", "-m", "/bin/sh", "-c",
                     "mount --bind " + dir_.file("resolv.conf") + " /etc/resolv.conf && exec \"$@\"", "sh"};
        mta_ = std::make_unique<MtaInstance>(o);
        LineClient c("127.0.0.1", mta_->port());
        c.reply();
        cmd(c, "EHLO client.test");
        cmd(c, "MAIL FROM:<someone@remote.test>");
        return cmd(c, "RCPT TO:<alice@example.org>");
    }

    TempDir dir_;
    Process dns_;
    std::unique_ptr<MtaInstance> mta_;
};

}  // namespace

TEST_F(RblReplies, TheDefaultReplyCarriesTheListingsReasonAsData) {
    EXPECT_EQ(rcpt_reply(""),
              "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.test; "
              "Listed for $100 by $client_address");
}

TEST_F(RblReplies, RblReplyMapsGiveTheTemplateOfTheList) {
    dir_.write("rbl_replies", "zen.test $rbl_code Go away, $client_address ($rbl_class in $rbl_domain): $rbl_reason\n"
                              "other.test 550 never used\n");
    EXPECT_EQ(rcpt_reply("rbl_reply_maps = texthash:" + dir_.file("rbl_replies") + "\n"),
              "554 5.7.1 Go away, 127.0.0.1 (Client host in zen.test): Listed for $100 by $client_address");
    EXPECT_EQ(rcpt_reply("default_rbl_reply = 450 4.7.1 Try later; ${rbl_reason?listed}\n"),
              "450 4.7.1 Try later; listed");
}

TEST_F(RblReplies, ATemplateWithoutAReplyCodeFallsBackToTheDefaultWithAWarning) {
    EXPECT_EQ(rcpt_reply("default_rbl_reply = blocked, no code\n"),
              "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.test; "
              "Listed for $100 by $client_address");
    EXPECT_NE(mta_->log().find("rbl reply template for zen.test gives a bad reply: blocked, no code"),
              std::string::npos)
        << mta_->log();
}
