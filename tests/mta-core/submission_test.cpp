// Submission: AUTH over TLS through Cyrus SASL's library and a real
// saslauthd (sasl2-bin), sender login maps (pcre), and what an
// authenticated client gets (Message-ID and Date added, the login in the
// logs), beside port 25 where the classic configuration's
// reject_sender_login_mismatch refuses every unauthenticated sender.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../delivery/helpers.h"
#include "mta_instance.h"

using namespace testsupport;
using dtest::LineClient;
using mtatest::MtaInstance;
using mtatest::cmd;

namespace {

// A throwaway system user with a password (saslauthd -a shadow checks it),
// saslauthd itself on a private socket, and the application's smtpd.conf.
class Saslauthd {
public:
    Saslauthd() {
        ::chmod(dir.path().c_str(), 0755);
        dir.write("smtpd.conf", "pwcheck_method: saslauthd\nsaslauthd_path: " + dir.file("mux") +
                                    "\nmech_list: PLAIN LOGIN\n");
        auto add = run({"/usr/sbin/useradd", "-M", "-N", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", user});
        if (add.exit_code != 0) throw std::runtime_error("useradd: " + add.output);
        auto pw = run({"/usr/sbin/chpasswd"}, user + ":" + password + "\n");
        if (pw.exit_code != 0) throw std::runtime_error("chpasswd: " + pw.output);
        process = Process({"/usr/sbin/saslauthd", "-a", "shadow", "-m", dir.path(), "-n", "1", "-d"},
                          dir.file("saslauthd.log"));
        wait_for_unix(dir.file("mux"));
    }
    ~Saslauthd() {
        process.stop();
        run({"/usr/sbin/userdel", user});
    }
    TempDir dir;
    std::string user = "mtasub" + std::to_string(::getpid());
    std::string password = "s3cret pass:word";
    Process process;
};

void make_certificate(const TempDir& dir) {
    auto r = run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.file("key.pem"), "-out",
                  dir.file("cert.pem"), "-days", "2", "-subj", "/CN=mx.test.example"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace

class MtaSubmission : public ::testing::Test {
protected:
    void start(const std::string& login_map, const std::string& extra_main_cf = "") {
        make_certificate(certs_);
        certs_.write("login_maps.pcre", login_map + "\n");
        submission_port_ = free_port();
        mtatest::Options o;
        o.main_cf = "smtpd_tls_security_level = may\n"
                    "smtpd_tls_cert_file = " + certs_.file("cert.pem") + "\n"
                    "smtpd_tls_key_file = " + certs_.file("key.pem") + "\n"
                    "smtpd_tls_auth_only = yes\n"
                    "smtpd_sasl_auth_enable = yes\n"
                    "smtpd_sasl_type = cyrus\n"
                    "smtpd_sasl_path = smtpd\n"
                    "cyrus_sasl_config_path = " + sasl_.dir.path() + "\n"
                    "smtpd_sasl_security_options = noanonymous\n"
                    "smtpd_sender_login_maps = pcre:" + certs_.file("login_maps.pcre") + "\n"
                    "smtpd_sender_restrictions = reject_non_fqdn_sender, reject_sender_login_mismatch, permit\n"
                    "smtpd_recipient_restrictions = permit_sasl_authenticated, reject_unauth_destination\n" +
                    extra_main_cf;
        o.master_cf = "127.0.0.1:" + std::to_string(submission_port_) + " inet n - n - - smtpd\n"
                      "  -o smtpd_tls_security_level=encrypt\n"
                      "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n";
        mta_ = std::make_unique<MtaInstance>(o);
        wait_for_tcp("127.0.0.1", submission_port_);
    }
    std::string submit(const std::string& login, const std::string& password, const std::string& from,
                       const std::string& to, const std::string& message) {
        auto r = mtatest::python(
            "import smtplib, ssl, sys\n"
            "ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n"
            "s = smtplib.SMTP('127.0.0.1', " + std::to_string(submission_port_) + ")\n"
            "s.ehlo('laptop.example')\n"
            "print('auth before tls', s.has_extn('auth'))\n"
            "s.starttls(context=ctx); s.ehlo('laptop.example')\n"
            "print('auth after tls', s.esmtp_features.get('auth'))\n"
            "try:\n"
            "    s.login(" + py(login) + ", " + py(password) + ")\n"
            "    print('login ok')\n"
            "except smtplib.SMTPAuthenticationError as e:\n"
            "    print('login refused', e.smtp_code, e.smtp_error.decode()); sys.exit(0)\n"
            "try:\n"
            "    s.sendmail(" + py(from) + ", [" + py(to) + "], " + py(message) + ")\n"
            "    print('sent')\n"
            "except smtplib.SMTPException as e:\n"
            "    print('refused', e)\n"
            "s.quit()\n");
        EXPECT_EQ(r.exit_code, 0) << r.output;
        return r.output;
    }
    static std::string py(const std::string& s) {
        std::string out = "'";
        for (char c : s) {
            if (c == '\'' || c == '\\') out += '\\';
            if (c == '\r') { out += "\\r"; continue; }
            if (c == '\n') { out += "\\n"; continue; }
            out += c;
        }
        return out + "'";
    }

    Saslauthd sasl_;
    TempDir certs_;
    int submission_port_ = 0;
    std::unique_ptr<MtaInstance> mta_;
};

TEST_F(MtaSubmission, AuthOnlyOverTlsAndTheSubmissionIsDeliveredWithMessageIdAndDate) {
    start("/^(.*)@example\\.org$/ ${1}");
    std::string out = submit(sasl_.user, sasl_.password, sasl_.user + "@example.org", "bob@example.org",
                             "Subject: from my laptop\r\n\r\nhello\r\n");
    EXPECT_NE(out.find("auth before tls False"), std::string::npos) << out;
    EXPECT_NE(out.find("auth after tls") , std::string::npos) << out;
    EXPECT_NE(out.find("PLAIN LOGIN"), std::string::npos) << out;
    EXPECT_NE(out.find("login ok"), std::string::npos) << out;
    EXPECT_NE(out.find("sent"), std::string::npos) << out;
    auto files = mta_->wait_for_mail("bob", 1);
    ASSERT_EQ(files.size(), 1u) << mta_->maillog();
    std::string m = read_file(files[0]);
    EXPECT_NE(m.find("\nMessage-ID: <"), std::string::npos) << m;
    EXPECT_NE(m.find("\nDate: "), std::string::npos) << m;
    EXPECT_NE(m.find("with ESMTPSA id"), std::string::npos) << m;
    EXPECT_TRUE(mta_->maillog_has("sasl_method=PLAIN, sasl_username=" + sasl_.user));
    EXPECT_EQ(mta_->maillog().find(sasl_.password), std::string::npos) << "a password in the log";
    EXPECT_EQ(mta_->log().find(sasl_.password), std::string::npos) << "a password in the log";
}

TEST_F(MtaSubmission, WrongPasswordIsRefusedAndLoggedWithoutIt) {
    start("/^(.*)@example\\.org$/ ${1}");
    std::string out = submit(sasl_.user, "not the password", sasl_.user + "@example.org", "bob@example.org",
                             "Subject: x\r\n\r\nx\r\n");
    EXPECT_NE(out.find("login refused 535"), std::string::npos) << out;
    EXPECT_TRUE(mta_->maillog_has("SASL PLAIN authentication failed") ||
                mta_->maillog_has("SASL LOGIN authentication failed"))
        << mta_->maillog();
    EXPECT_EQ(mta_->maillog().find("not the password"), std::string::npos);
}

TEST_F(MtaSubmission, SenderLoginMismatchIsRefused) {
    start("/^(.*)@example\\.org$/ ${1}");
    std::string out = submit(sasl_.user, sasl_.password, "alice@example.org", "bob@example.org",
                             "Subject: x\r\n\r\nx\r\n");
    EXPECT_NE(out.find("login ok"), std::string::npos) << out;
    EXPECT_NE(out.find("553"), std::string::npos) << out;
    EXPECT_NE(out.find("Sender address rejected: not owned by user " + sasl_.user), std::string::npos) << out;
}

// The classic configuration's map gives every address an owner, so on port
// 25 every unauthenticated non-null sender is refused, as Postfix does.
TEST_F(MtaSubmission, ClassicLoginMapRefusesUnauthenticatedSendersOnPort25) {
    start("/^(.*)$/   ${1}");
    LineClient c("127.0.0.1", mta_->port());
    c.reply();
    cmd(c, "EHLO client.example");
    EXPECT_EQ(cmd(c, "AUTH PLAIN AGZvbwBiYXI="), "538 5.7.11 Encryption required for requested authentication mechanism");
    EXPECT_EQ(cmd(c, "MAIL FROM:<someone@remote.example>"), "250 2.1.0 Ok");
    EXPECT_EQ(cmd(c, "RCPT TO:<alice@example.org>"),
              "553 5.7.1 <someone@remote.example>: Sender address rejected: not logged in");
    EXPECT_EQ(cmd(c, "RSET"), "250 2.0.0 Ok");
    EXPECT_EQ(cmd(c, "MAIL FROM:<>"), "250 2.1.0 Ok");
    EXPECT_EQ(cmd(c, "RCPT TO:<alice@example.org>"), "250 2.1.5 Ok") << "the null sender has no owner";
}

// The smuggling sequences, submitted on the submission port with AUTH over
// TLS and relayed on: the receiving server gets one message whose lines all
// end in CRLF, dot-stuffed, and never a command hidden in the data.
TEST_F(MtaSubmission, SmugglingSequencesReachTheNextHopAsOneCleanMessage) {
    TempDir cap;
    int port = free_port();
    Process server = mtatest::capture_server(cap, port);
    start("/^(.*)@example\\.org$/ ${1}", "relayhost = [127.0.0.1]:" + std::to_string(port) + "\n");
    const std::vector<std::string> tricks{"\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r", "\r.\n", "\n.\r",
                                          "\r.\r\n", "\r\n.\r", "\r\n\0.\r\n", "\r\n.\r\r\n"};
    std::string body;
    for (std::size_t i = 0; i < tricks.size(); ++i)
        body += "part " + std::to_string(i) + tricks[i] + "MAIL FROM:<evil@remote.example>\r\nRCPT TO:<victim" +
                std::to_string(i) + "@remote.example>\r\nDATA\r\n";
    // Raw bytes over TLS after AUTH PLAIN, so no client library cleans them up.
    std::string hex;
    for (unsigned char ch : "Subject: smuggle\r\n\r\n" + body + "the end\r\n.\r\n") {
        char b[3];
        std::snprintf(b, sizeof b, "%02x", ch);
        hex += b;
    }
    auto r = mtatest::python(
        "import base64, socket, ssl\n"
        "ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n"
        "s = socket.create_connection(('127.0.0.1', " + std::to_string(submission_port_) + "))\n"
        "f = s.makefile('rb')\n"
        "def reply(f):\n"
        "    while True:\n"
        "        line = f.readline()\n"
        "        if line[3:4] != b'-': return line\n"
        "reply(f); s.sendall(b'EHLO laptop.example\\r\\n'); reply(f)\n"
        "s.sendall(b'STARTTLS\\r\\n'); reply(f)\n"
        "t = ctx.wrap_socket(s); g = t.makefile('rb')\n"
        "t.sendall(b'EHLO laptop.example\\r\\n'); reply(g)\n"
        "auth = base64.b64encode(b'\\0' + " + py(sasl_.user) + ".encode() + b'\\0' + " + py(sasl_.password) +
        ".encode())\n"
        "t.sendall(b'AUTH PLAIN ' + auth + b'\\r\\n'); print('auth', reply(g))\n"
        "t.sendall(b'MAIL FROM:<" + sasl_.user + "@example.org>\\r\\n'); print('mail', reply(g))\n"
        "t.sendall(b'RCPT TO:<friend@remote.example>\\r\\n'); print('rcpt', reply(g))\n"
        "t.sendall(b'DATA\\r\\n'); reply(g)\n"
        "t.sendall(bytes.fromhex('" + hex + "')); print('data', reply(g))\n"
        "t.sendall(b'QUIT\\r\\n'); reply(g)\n");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_NE(r.output.find("data b'250 2.0.0 Ok: queued as"), std::string::npos) << r.output;
    ASSERT_TRUE(mtatest::wait_for_file(cap.file("captured"))) << mta_->maillog();
    std::string raw = read_file(cap.file("captured"));
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\r') {
            ASSERT_TRUE(i + 1 < raw.size() && raw[i + 1] == '\n') << "bare CR at " << i;
        }
        if (raw[i] == '\n') {
            ASSERT_TRUE(i > 0 && raw[i - 1] == '\r') << "bare LF at " << i;
        }
    }
    EXPECT_NE(raw.find("the end\r\n.\r\n"), std::string::npos) << raw;
    std::string commands = read_file(cap.file("captured.commands"));
    EXPECT_EQ(commands.find("victim"), std::string::npos) << "a smuggled command reached the next hop:\n" << commands;
    EXPECT_EQ(commands.find("MAIL FROM:<evil"), std::string::npos) << commands;
}
