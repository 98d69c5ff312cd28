// mta-core delivering to the Internet, end to end with real parts only:
// - DNS: dnsmasq on 127.N.0.91:53 (N from the process id, so two runs
//   never meet) serving MX, A, CNAME and null MX records and forwarding one
//   zone to a server that answers SERVFAIL; mta-core reads it through its
//   own resolv.conf (a private mount namespace), as a host pointed at that
//   server would.
// - Receiving servers on other loopback addresses (127.N.0.61-69), port 25:
//   Postfix's smtp-sink (two that take mail, one that answers 4xx at the
//   greeting, one that refuses EHLO), an address where nothing listens, a
//   real Postfix with STARTTLS (a certificate from a test CA), AUTH (Cyrus
//   SASL, sasldb) and a size limit, and a faulty server for what real ones
//   do not do on purpose.
// What is asserted is what an operator would read: where the mail went,
// the maillog lines, the bounces in the sender's mailbox.
#include <gtest/gtest.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <thread>

#include "mta_instance.h"
#include "support/postfix_instance.h"

using namespace testsupport;
using mtatest::MtaInstance;
using namespace std::chrono_literals;

namespace {

// Addresses of this run: 127.N.0.X with N from the process id, so two runs
// of this test (two build trees) never meet on port 25 or 53.
const std::string kNet = "127." + std::to_string(100 + ::getpid() % 100) + ".0.";
const std::string kDns = kNet + "91";
const std::string kServfailDns = kNet + "93";
const std::string kSinkA = kNet + "61";
const std::string kNothing = kNet + "62";  // connection refused
const std::string kSinkB = kNet + "63";
const std::string kBusy = kNet + "64";     // 450 at the greeting
const std::string kPostfix = kNet + "65";  // STARTTLS, AUTH, SIZE
const std::string kInjector = kNet + "66";  // a reply injected before the TLS handshake
const std::string kBrokenTls = kNet + "67";  // offers STARTTLS, cannot do it
const std::string kHeloOnly = kNet + "68";  // refuses EHLO with 5xx
const std::string kSlow = kNet + "69";      // a second per message, counts connections

// A faulty SMTP server (Python's ssl module for the TLS side), for what no
// real server does on purpose. "inject": with its 220 to STARTTLS it sends
// a 550 in the clear (the STARTTLS command injection attack). "broken": its
// 220 to STARTTLS is followed by text instead of a handshake. Neither
// offers SMTPUTF8. "slow": takes a second to answer the end of data and
// writes the most connections it had at once to OUT.max. Each message
// taken is appended to OUT.
const char* kFaultyServer = R"(import socket, ssl, sys, threading, time
mode, addr, cert, key, out = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
lock = threading.Lock(); now = [0]; most = [0]
def count(d):
    with lock:
        now[0] += d; most[0] = max(most[0], now[0]); open(out + '.max', 'w').write(str(most[0]))
def serve(c):
    count(1)
    try: talk(c)
    except OSError: pass
    count(-1)
def talk(c):
    f = c.makefile('rb'); w = c.sendall; tls = False
    w(b'220 faulty ESMTP\r\n')
    while True:
        line = f.readline()
        if not line: return
        verb = line[:4].upper()
        if verb == b'EHLO':
            w(b'250-faulty\r\n250-PIPELINING\r\n250-8BITMIME\r\n' + (b'' if tls else b'250-STARTTLS\r\n') + b'250 SIZE 1000000\r\n')
        elif line.upper().startswith(b'STARTTLS'):
            if mode == 'inject':
                w(b'220 2.0.0 Ready to start TLS\r\n550 5.7.1 injected before the handshake\r\n')
                c = ctx.wrap_socket(c, server_side=True); f = c.makefile('rb'); w = c.sendall; tls = True
            else:
                w(b'220 2.0.0 Ready to start TLS\r\nthis is not TLS\r\n'); c.close(); return
        elif verb == b'DATA':
            w(b'354 go\r\n'); raw = b''
            while not raw.endswith(b'\r\n.\r\n'):
                l = f.readline()
                if not l: return
                raw += l
            if mode == 'slow': time.sleep(1)
            open(out, 'ab').write(raw); w(b'250 2.0.0 taken' + (b' over TLS' if tls else b' in the clear') + b'\r\n')
        elif verb == b'QUIT':
            w(b'221 bye\r\n'); return
        else:
            w(b'250 2.0.0 ok\r\n')
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((addr, 25)); srv.listen(16)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
)";
const std::string kPassword = "Pa55-not-in-any-log";

std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (auto* e = ::readdir(d))
            if (e->d_name[0] != '.') out.push_back(dir + "/" + e->d_name);
        ::closedir(d);
    }
    return out;
}

// Polls a directory (smtp-sink writes one file per message), bounded.
std::vector<std::string> wait_for_files(const std::string& dir, std::size_t n, std::chrono::milliseconds limit = 20s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    auto f = files_in(dir);
    while (f.size() < n && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);  // polling a directory
        f = files_in(dir);
    }
    return f;
}

void must(const RunResult& r, const std::string& what) {
    if (r.exit_code != 0) throw std::runtime_error(what + ": " + r.output);
}

// Everything the tests send to, started once for the suite.
class World {
public:
    World() {
        ::chmod(dir_.path().c_str(), 0755);
        // The test CA, the receiving Postfix's certificate, and another CA.
        must(run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir_.file("ca.key"), "-out",
                  dir_.file("ca.pem"), "-days", "2", "-subj", "/CN=Test CA"}),
             "CA");
        must(run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir_.file("other.key"),
                  "-out", dir_.file("other-ca.pem"), "-days", "2", "-subj", "/CN=Other CA"}),
             "other CA");
        must(run({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", dir_.file("mx.key"), "-out",
                  dir_.file("mx.csr"), "-subj", "/CN=mx.tls.test"}),
             "CSR");
        dir_.write("san.ext", "subjectAltName=DNS:mx.tls.test\n");
        must(run({"openssl", "x509", "-req", "-in", dir_.file("mx.csr"), "-CA", dir_.file("ca.pem"), "-CAkey",
                  dir_.file("ca.key"), "-CAcreateserial", "-out", dir_.file("mx.pem"), "-days", "2", "-extfile",
                  dir_.file("san.ext")}),
             "certificate");
        ::chmod(dir_.file("mx.key").c_str(), 0644);

        // DNS.
        dir_.write("servfail.py",
                   "import socket, sys\n"
                   "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                   "s.bind((sys.argv[1], 53))\n"
                   "while True:\n"
                   "    q, peer = s.recvfrom(1500)\n"
                   "    if len(q) < 12: continue\n"
                   "    r = bytearray(q); r[2] |= 0x80; r[3] = 0x80 | 2  # QR, RA, SERVFAIL\n"
                   "    s.sendto(bytes(r), peer)\n");
        servfail_ = Process({"/usr/bin/python3", dir_.file("servfail.py"), kServfailDns}, dir_.file("servfail.log"));
        std::vector<std::string> dns = {
            "/usr/sbin/dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            "--listen-address=" + std::string(kDns), "--bind-interfaces", "--port=53", "--user=root",
            "--pid-file=", "--local-ttl=60", "--neg-ttl=60", "--local=/test/",
            "--server=/servfail.test/" + std::string(kServfailDns),
            // MX order: the best is down, the next takes the mail, the last is never asked.
            "--mx-host=order.test,mx-down.order.test,10", "--mx-host=order.test,mx-a.order.test,20",
            "--mx-host=order.test,mx-b.order.test,30",
            "--host-record=mx-down.order.test," + std::string(kNothing),
            "--host-record=mx-a.order.test," + std::string(kSinkA),
            "--host-record=mx-b.order.test," + std::string(kSinkB),
            // A server answering 4xx at the greeting, then a good one.
            "--mx-host=greet.test,mx-busy.greet.test,10", "--mx-host=greet.test,mx-b.order.test,20",
            "--host-record=mx-busy.greet.test," + std::string(kBusy),
            // No MX: the A record (RFC 5321 5.1); through a CNAME too.
            "--host-record=noma.test," + std::string(kSinkB), "--cname=alias.test,noma.test",
            // An MX host that is a CNAME.
            "--mx-host=cnamemx.test,mxalias.cnamemx.test,10", "--cname=mxalias.cnamemx.test,mx-a.order.test",
            // RFC 7505.
            "--dns-rr=nullmx.test,15,000000",
            // MX pointing at mta-core itself (127.0.0.1), alone and as a backup.
            "--mx-host=loop.test,self.loop.test,10", "--host-record=self.loop.test,127.0.0.1",
            "--mx-host=backup.test,mx-a.order.test,10", "--mx-host=backup.test,self.loop.test,20",
            // The real Postfix.
            "--mx-host=tls.test,mx.tls.test,10", "--mx-host=size.test,mx.tls.test,10",
            "--mx-host=plain.test,mx-a.order.test,10", "--host-record=mx.tls.test," + std::string(kPostfix),
            "--mx-host=sub.tls.test,mx.tls.test,10",
            "--mx-host=helo.test,mx.helo.test,10", "--host-record=mx.helo.test," + std::string(kHeloOnly),
            "--mx-host=slow.test,mx.slow.test,10", "--host-record=mx.slow.test," + std::string(kSlow),
            // An IPv6-only host, for an IPv4-only mta-core (inet_protocols).
            "--host-record=v6only.test,2001:db8::25",
            // The faulty servers.
            "--mx-host=inject.test,mx.inject.test,10", "--host-record=mx.inject.test," + std::string(kInjector),
            "--mx-host=broken.test,mx.broken.test,10", "--host-record=mx.broken.test," + std::string(kBrokenTls),
        };
        dns_ = Process(dns, dir_.file("dnsmasq.log"));
        wait_for_tcp(kDns, 53, 10s);
        dir_.write("resolv.conf", std::string("nameserver ") + kDns + "\n");

        // smtp-sink: two that take mail (dumped one file each), one busy.
        sink_a_ = sink(kSinkA, "sink-a", {});
        sink_b_ = sink(kSinkB, "sink-b", {});
        busy_ = sink(kBusy, "busy", {"-r", "CONNECT"});
        helo_only_ = sink(kHeloOnly, "helo-only", {"-f", "EHLO"});
        dir_.write("faulty.py", kFaultyServer);
        for (auto [mode, address] :
             {std::pair{"inject", kInjector}, std::pair{"broken", kBrokenTls}, std::pair{"slow", kSlow}}) {
            faulty_.emplace_back(std::vector<std::string>{"/usr/bin/python3", dir_.file("faulty.py"), mode, address,
                                                          dir_.file("mx.pem"), dir_.file("mx.key"),
                                                          dir_.file(std::string("taken-") + mode)},
                                 dir_.file(std::string("faulty-") + mode + ".log"));
            wait_for_tcp(address, 25, 10s);
        }

        // Postfix: STARTTLS, AUTH required to relay, a 20,000-byte limit.
        // Mail it accepts is discarded (it is a receiving server here).
        postfix_ = std::make_unique<PostfixInstance>(dir_);
        int port = free_port();
        postfix_port_ = port;
        // Debian's Postfix reads $config_directory/sasl/smtpd.conf.
        const std::string sasl_dir = postfix_->config_dir() + "/sasl";
        ::mkdir(sasl_dir.c_str(), 0755);
        std::ofstream(sasl_dir + "/smtpd.conf") << ("pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: " +
                                                 dir_.file("sasldb2") + "\nmech_list: PLAIN LOGIN\n");
        ::chmod((sasl_dir + "/smtpd.conf").c_str(), 0644);
        must(run({"/usr/sbin/saslpasswd2", "-c", "-p", "-f", dir_.file("sasldb2"), "-u", "mx.tls.test", "relayuser"},
                 kPassword),
             "saslpasswd2");
        ::chmod(dir_.file("sasldb2").c_str(), 0644);
        std::string main = postfix_->base_main_cf() +
                           "myhostname = mx.tls.test\n"
                           "mydestination =\n"
                           "mynetworks = " + kNet + "100/32\n"
                           "relay_domains = tls.test, size.test\n"
                           "smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination\n"
                           "relay_transport = discard\n"
                           "default_transport = discard\n"
                           "message_size_limit = 20000\n"
                           "smtpd_tls_security_level = may\n"
                           "smtpd_tls_cert_file = " + dir_.file("mx.pem") + "\n"
                           "smtpd_tls_key_file = " + dir_.file("mx.key") + "\n"
                           "smtpd_tls_auth_only = yes\n"
                           "smtpd_sasl_auth_enable = yes\n"
                           "smtpd_sasl_type = cyrus\n"
                           "smtpd_sasl_security_options = noanonymous\n";
        postfix_->write_config(main, std::string(kPostfix) + ":25 inet n - n - - smtpd\n" +
                                         PostfixInstance::master_cf(port));
        try {
            postfix_->start(port);
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string(e.what()) + "\n" + postfix_->maillog());
        }
        wait_for_tcp(kPostfix, 25, 20s);
    }
    ~World() {
        if (postfix_) postfix_->stop();
    }

    const TempDir& dir() const { return dir_; }
    std::string sink_dir(const char* name) const { return dir_.file(std::string("dump-") + name); }
    std::string postfix_log() const { return postfix_->maillog(); }

    // mta-core with main_cf, resolving through the test DNS server.
    std::unique_ptr<MtaInstance> mta(const std::string& main_cf) const {
        mtatest::Options o;
        o.main_cf = main_cf;
        o.wrapper = {"/usr/bin/unshare", "-m", "/bin/sh", "-c",
                     "mount --bind " + dir_.file("resolv.conf") + " /etc/resolv.conf && exec \"$@\"", "sh"};
        return std::make_unique<MtaInstance>(o);
    }

private:
    Process sink(const std::string& address, const std::string& name, std::vector<std::string> extra) {
        ::mkdir(dir_.file("dump-" + name).c_str(), 0777);
        ::chmod(dir_.file("dump-" + name).c_str(), 0777);  // smtp-sink writes as nobody
        std::vector<std::string> argv = {"/usr/sbin/smtp-sink", "-u", "nobody", "-h", name,
                                         "-d", dir_.file("dump-" + name) + "/%M."};
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.push_back(std::string(address) + ":25");
        argv.push_back("100");
        Process p(argv, dir_.file(name + ".log"));
        wait_for_tcp(address, 25, 10s);
        return p;
    }

    TempDir dir_;
    Process servfail_, dns_, sink_a_, sink_b_, busy_, helo_only_;
    std::vector<Process> faulty_;
    std::unique_ptr<PostfixInstance> postfix_;
    int postfix_port_ = 0;
};

class MxDelivery : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        try {
            world_ = std::make_unique<World>();
        } catch (const std::exception& e) {
            start_error_ = e.what();
        }
    }
    static void TearDownTestSuite() { world_.reset(); }
    void SetUp() override {
        // A test that cannot run fails.
        if (!world_) FAIL() << "the test servers did not start: " << start_error_;
    }

    // Relay one message from a trusted client (127.0.0.2 is in mynetworks).
    static RunResult send(const MtaInstance& mta, const std::string& to, const std::string& body = "hello",
                          std::vector<std::string> extra = {}) {
        std::vector<std::string> argv = {"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta.port()),
                                         "--local-interface", "127.0.0.2", "--from", "alice@example.org",
                                         "--to", to, "--header", "Subject: mx test", "--body", body};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return run(argv);
    }

    static std::unique_ptr<World> world_;
    static std::string start_error_;
};
std::unique_ptr<World> MxDelivery::world_;
std::string MxDelivery::start_error_;

}  // namespace

TEST_F(MxDelivery, TriesMxHostsInPreferenceOrderAndStopsAtTheFirstThatTakesTheMail) {
    auto before_a = files_in(world_->sink_dir("sink-a")).size();
    auto before_b = files_in(world_->sink_dir("sink-b")).size();
    auto mta = world_->mta("");
    ASSERT_EQ(send(*mta, "bob@order.test").exit_code, 0);
    ASSERT_TRUE(mta->maillog_has("to=<bob@order.test>, relay=mx-a.order.test[" + kNet + "61]:25")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("status=sent (250 2.0.0 Ok"));
    // The best MX refused the connection first; the worst was never asked.
    EXPECT_TRUE(mta->maillog_has("connect to mx-down.order.test[" + kNet + "62]:25: Connection refused"));
    EXPECT_EQ(wait_for_files(world_->sink_dir("sink-a"), before_a + 1).size(), before_a + 1);
    EXPECT_EQ(files_in(world_->sink_dir("sink-b")).size(), before_b);
}

TEST_F(MxDelivery, AServerThatAnswers4xxAtTheGreetingIsPassedOver) {
    auto mta = world_->mta("");
    ASSERT_EQ(send(*mta, "bob@greet.test").exit_code, 0);
    ASSERT_TRUE(mta->maillog_has("to=<bob@greet.test>, relay=mx-b.order.test[" + kNet + "63]:25")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("host mx-busy.greet.test[" + kNet + "64]:25 refused to talk to me: 450"));
}

TEST_F(MxDelivery, WithoutMxTheDomainsOwnAddressIsUsedAlsoThroughACname) {
    auto mta = world_->mta("");
    ASSERT_EQ(send(*mta, "bob@noma.test").exit_code, 0);
    ASSERT_EQ(send(*mta, "carol@alias.test").exit_code, 0);
    ASSERT_EQ(send(*mta, "dave@cnamemx.test").exit_code, 0);
    EXPECT_TRUE(mta->maillog_has("to=<bob@noma.test>, relay=noma.test[" + kNet + "63]:25")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("to=<carol@alias.test>, relay=alias.test[" + kNet + "63]:25")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("to=<dave@cnamemx.test>, relay=mxalias.cnamemx.test[" + kNet + "61]:25"))
        << mta->maillog();
}

TEST_F(MxDelivery, NullMxBouncesAtOnce) {
    auto mta = world_->mta("");
    ASSERT_EQ(send(*mta, "bob@nullmx.test").exit_code, 0);
    auto files = mta->wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u) << mta->maillog();
    std::string dsn = read_file(files[0]);
    EXPECT_NE(dsn.find("Status: 5.1.10"), std::string::npos) << dsn;
    EXPECT_NE(dsn.find("Domain nullmx.test does not accept mail (nullMX)"), std::string::npos) << dsn;
    EXPECT_TRUE(mta->maillog_has("dsn=5.1.10, status=bounced"));
}

TEST_F(MxDelivery, AnMxThatIsThisServerLoopsBackUnlessABetterOneExists) {
    auto mta = world_->mta("");
    ASSERT_EQ(send(*mta, "bob@loop.test").exit_code, 0);
    ASSERT_EQ(send(*mta, "carol@backup.test").exit_code, 0);
    auto files = mta->wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u) << mta->maillog();
    std::string dsn = read_file(files[0]);
    EXPECT_NE(dsn.find("Status: 5.4.6"), std::string::npos) << dsn;
    EXPECT_NE(dsn.find("mail for loop.test loops back to myself"), std::string::npos) << dsn;
    // As a backup MX, mta-core hands the mail to the better one.
    EXPECT_TRUE(mta->maillog_has("to=<carol@backup.test>, relay=mx-a.order.test[" + kNet + "61]:25")) << mta->maillog();
}

TEST_F(MxDelivery, ServfailDefersAndNeverBounces) {
    auto mta = world_->mta("");
    ASSERT_EQ(send(*mta, "bob@servfail.test").exit_code, 0);
    ASSERT_TRUE(mta->maillog_has("to=<bob@servfail.test>, relay=none")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("dsn=4.4.3, status=deferred (Host or domain name not found. Name service error "
                                 "for name=servfail.test type=MX: Host not found, try again)"))
        << mta->maillog();
    EXPECT_EQ(mta->maillog().find("status=bounced"), std::string::npos) << mta->maillog();
    EXPECT_TRUE(mta->mail_files("alice").empty());
}

TEST_F(MxDelivery, AMessageLargerThanTheServersSizeIsBouncedWithoutSendingIt) {
    auto mta = world_->mta("");
    std::string big(30000, 'x');
    for (std::size_t i = 70; i < big.size(); i += 72) big[i] = '\n';
    ASSERT_EQ(send(*mta, "bob@size.test", big).exit_code, 0);
    auto files = mta->wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u) << mta->maillog();
    std::string dsn = read_file(files[0]);
    EXPECT_NE(dsn.find("Status: 5.3.4"), std::string::npos) << dsn;
    EXPECT_NE(dsn.find("exceeds size limit 20000 of server mx.tls.test[" + kNet + "65]:25"), std::string::npos) << dsn;
}

TEST_F(MxDelivery, TlsMayIsUsedWhenOfferedAndLoggedWithVersionAndCipher) {
    auto mta = world_->mta("");  // smtp_tls_security_level = may by default
    ASSERT_EQ(send(*mta, "bob@tls.test").exit_code, 0);
    ASSERT_TRUE(mta->maillog_has("Untrusted TLS connection established to mx.tls.test[" + kNet + "65]:25: TLSv1.3 "
                                 "with cipher TLS_"))
        << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("to=<bob@tls.test>, relay=mx.tls.test[" + kNet + "65]:25")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("status=sent (250 2.0.0 Ok: queued as")) << mta->maillog();
}

TEST_F(MxDelivery, TlsVerifyWithTheRightCaIsVerifiedWithAWrongCaDefers) {
    auto good = world_->mta("smtp_tls_CAfile = " + world_->dir().file("ca.pem") +
                            "\nsmtp_tls_policy_maps = inline:{ tls.test=verify }\n");
    ASSERT_EQ(send(*good, "bob@tls.test").exit_code, 0);
    ASSERT_TRUE(good->maillog_has("Verified TLS connection established to mx.tls.test[" + kNet + "65]:25: TLSv1.3"))
        << good->maillog();
    EXPECT_TRUE(good->maillog_has("status=sent (250 2.0.0 Ok: queued as")) << good->maillog();

    // The right CA, but a name the certificate does not carry.
    auto misnamed = world_->mta("smtp_tls_CAfile = " + world_->dir().file("ca.pem") +
                                "\nsmtp_tls_policy_maps = inline:{ {tls.test = verify match=mail.other.example} }\n");
    ASSERT_EQ(send(*misnamed, "bob@tls.test").exit_code, 0);
    ASSERT_TRUE(misnamed->maillog_has("status=deferred (Server certificate not verified (mx.tls.test[" + kNet + "65]:25"))
        << misnamed->maillog();
    EXPECT_TRUE(misnamed->maillog_has("Trusted TLS connection established to mx.tls.test[" + kNet + "65]:25"));

    auto wrong = world_->mta("smtp_tls_CAfile = " + world_->dir().file("other-ca.pem") +
                             "\nsmtp_tls_security_level = verify\n");
    ASSERT_EQ(send(*wrong, "bob@tls.test").exit_code, 0);
    ASSERT_TRUE(wrong->maillog_has("status=deferred (Server certificate not trusted (mx.tls.test[" + kNet + "65]:25"))
        << wrong->maillog();
    EXPECT_EQ(wrong->maillog().find("status=sent"), std::string::npos) << wrong->maillog();
}

TEST_F(MxDelivery, TlsEncryptToAServerWithoutStarttlsDefers) {
    auto mta = world_->mta("smtp_tls_policy_maps = inline:{ plain.test=encrypt }\n");
    ASSERT_EQ(send(*mta, "bob@plain.test").exit_code, 0);
    ASSERT_TRUE(mta->maillog_has(
        "dsn=4.7.4, status=deferred (TLS is required, but was not offered by host mx-a.order.test[" + kNet + "61]:25)"))
        << mta->maillog();
    EXPECT_EQ(mta->maillog().find("status=sent"), std::string::npos) << mta->maillog();
}

TEST_F(MxDelivery, AuthPlainToARelayhostOverTlsAndThePasswordIsNeverLogged) {
    world_->dir().write("sasl_passwd", "[mx.tls.test]:25 relayuser:" + kPassword + "\n");
    auto mta = world_->mta("relayhost = [mx.tls.test]:25\n"
                           "smtp_tls_security_level = encrypt\n"
                           "smtp_sasl_auth_enable = yes\n"
                           "smtp_sasl_password_maps = texthash:" + world_->dir().file("sasl_passwd") + "\n"
                           "smtp_sasl_tls_security_options = noanonymous\n");
    ASSERT_EQ(send(*mta, "someone@elsewhere.example").exit_code, 0);
    ASSERT_TRUE(mta->maillog_has("to=<someone@elsewhere.example>, relay=mx.tls.test[" + kNet + "65]:25")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("status=sent (250 2.0.0 Ok: queued as")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("TLS connection established to mx.tls.test[" + kNet + "65]:25"));
    // The receiving Postfix saw the login.
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (world_->postfix_log().find("sasl_method=PLAIN, sasl_username=relayuser") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);  // polling Postfix's log, bounded
    EXPECT_NE(world_->postfix_log().find("sasl_method=PLAIN, sasl_username=relayuser"), std::string::npos)
        << world_->postfix_log();
    EXPECT_EQ(mta->maillog().find(kPassword), std::string::npos);
    EXPECT_EQ(mta->log().find(kPassword), std::string::npos);

    // Without AUTH (plaintext mechanisms forbidden, the default), the same
    // relay is refused: the credentials are what let it through.
    auto plain = world_->mta("relayhost = [mx.tls.test]:25\n"
                             "smtp_sasl_auth_enable = yes\n"
                             "smtp_sasl_password_maps = texthash:" + world_->dir().file("sasl_passwd") + "\n");
    ASSERT_EQ(send(*plain, "someone@elsewhere.example").exit_code, 0);
    ASSERT_TRUE(plain->maillog_has("SASL authentication failed; cannot authenticate to server "
                                   "mx.tls.test[" + kNet + "65]:25: no mechanism available"))
        << plain->maillog();
}

TEST_F(MxDelivery, WhatAServerSendsBeforeTheTlsHandshakeIsDiscarded) {
    auto mta = world_->mta("");
    ASSERT_EQ(send(*mta, "bob@inject.test").exit_code, 0);
    ASSERT_TRUE(mta->maillog_has("to=<bob@inject.test>, relay=mx.inject.test[" + kNet + "66]:25")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("status=sent (250 2.0.0 taken over TLS)")) << mta->maillog();
    EXPECT_EQ(mta->maillog().find("injected"), std::string::npos) << mta->maillog();
}

TEST_F(MxDelivery, TlsMayRetriesInTheClearWhenTheHandshakeFails) {
    auto mta = world_->mta("");
    ASSERT_EQ(send(*mta, "bob@broken.test").exit_code, 0);
    ASSERT_TRUE(mta->maillog_has("status=sent (250 2.0.0 taken in the clear)")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("retrying without TLS")) << mta->maillog();
}

TEST_F(MxDelivery, AMessageThatNeedsSmtputf8BouncesAtAServerWithoutIt) {
    auto mta = world_->mta("");
    auto r = run({"swaks", "--server", "127.0.0.1", "--port", std::to_string(mta->port()), "--local-interface",
                  "127.0.0.2", "--from", "alice@example.org", "--to", "bob@inject.test", "--header",
                  "Subject: Gr\xc3\xbc\xc3\x9f" "e"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto files = mta->wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u) << mta->maillog();
    std::string dsn = read_file(files[0]);
    EXPECT_NE(dsn.find("Status: 5.6.7"), std::string::npos) << dsn;
    EXPECT_NE(dsn.find("SMTPUTF8 is required, but was not offered by host mx.inject.test[" + kNet + "66]:25"),
              std::string::npos)
        << dsn;
}

TEST_F(MxDelivery, SmtpBindAddressIsTheSourceOfTheConnection) {
    auto before = files_in(world_->sink_dir("sink-b")).size();
    auto mta = world_->mta("smtp_bind_address = " + kNet + "5\n");
    ASSERT_EQ(send(*mta, "bob@noma.test").exit_code, 0);
    ASSERT_TRUE(mta->maillog_has("to=<bob@noma.test>, relay=noma.test[" + kNet + "63]:25")) << mta->maillog();
    auto files = wait_for_files(world_->sink_dir("sink-b"), before + 1);
    ASSERT_GE(files.size(), before + 1);
    bool from_bound = false;
    for (const auto& f : files) from_bound |= read_file(f).find("X-Client-Addr: " + kNet + "5\n") != std::string::npos;
    EXPECT_TRUE(from_bound) << "smtp-sink saw no client " + kNet + "5";
}

TEST_F(MxDelivery, AddressesOfAFamilyInetProtocolsExcludesAreNotUsed) {
    auto mta = world_->mta("inet_protocols = ipv4\n");
    ASSERT_EQ(send(*mta, "bob@v6only.test").exit_code, 0);
    auto files = mta->wait_for_mail("alice", 1);
    ASSERT_EQ(files.size(), 1u) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("to=<bob@v6only.test>, relay=none")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for "
                                 "name=v6only.test type=A: Host not found)"))
        << mta->maillog();
    EXPECT_EQ(mta->maillog().find("2001:db8::25"), std::string::npos) << mta->maillog();
}

TEST_F(MxDelivery, ASessionIsKeptForTheNextMessageToTheSameServer) {
    auto mta = world_->mta("smtp_connection_cache_time_limit = 30s\n");
    ASSERT_EQ(send(*mta, "bob@cnamemx.test").exit_code, 0);
    ASSERT_TRUE(mta->maillog_has("to=<bob@cnamemx.test>, relay=mxalias.cnamemx.test[" + kNet + "61]:25, delay="))
        << mta->maillog();
    ASSERT_EQ(send(*mta, "carol@cnamemx.test").exit_code, 0);
    EXPECT_TRUE(mta->maillog_has("to=<carol@cnamemx.test>, relay=mxalias.cnamemx.test[" + kNet + "61]:25, conn_use=2, "))
        << mta->maillog();
    // Off: every message has its own connection.
    auto uncached = world_->mta("smtp_connection_cache_on_demand = no\n");
    ASSERT_EQ(send(*uncached, "bob@cnamemx.test").exit_code, 0);
    ASSERT_TRUE(uncached->maillog_has("to=<bob@cnamemx.test>, relay=mxalias.cnamemx.test[" + kNet + "61]:25, delay="));
    ASSERT_EQ(send(*uncached, "carol@cnamemx.test").exit_code, 0);
    ASSERT_TRUE(uncached->maillog_has("to=<carol@cnamemx.test>, relay=mxalias.cnamemx.test[" + kNet + "61]:25, delay="))
        << uncached->maillog();
}

TEST_F(MxDelivery, ATlsPolicyForDotDomainCoversItsSubdomains) {
    // secure matches the nexthop (sub.tls.test and its subdomains, by
    // default); the server's certificate names mx.tls.test: not verified.
    auto mta = world_->mta("smtp_tls_CAfile = " + world_->dir().file("ca.pem") +
                           "\nsmtp_tls_policy_maps = inline:{ .tls.test=secure }\n");
    ASSERT_EQ(send(*mta, "bob@sub.tls.test").exit_code, 0);
    ASSERT_TRUE(mta->maillog_has("status=deferred (Server certificate not verified (mx.tls.test[" + kNet + "65]:25"))
        << mta->maillog();
    // The domain itself has no entry: the default, may.
    ASSERT_EQ(send(*mta, "bob@tls.test").exit_code, 0);
    EXPECT_TRUE(mta->maillog_has("to=<bob@tls.test>, relay=mx.tls.test[" + kNet + "65]:25")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("status=sent (250 2.0.0 Ok: queued as")) << mta->maillog();
}

TEST_F(MxDelivery, AServerThatRefusesEhloGetsHelo) {
    auto mta = world_->mta("");
    ASSERT_EQ(send(*mta, "bob@helo.test").exit_code, 0);
    ASSERT_TRUE(mta->maillog_has("to=<bob@helo.test>, relay=mx.helo.test[" + kNet + "68]:25")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("status=sent (250 2.0.0 Ok")) << mta->maillog();
    EXPECT_EQ(wait_for_files(world_->sink_dir("helo-only"), 1).size(), 1u);
}

TEST_F(MxDelivery, NoMoreDeliveriesToADestinationAtOnceThanItsConcurrencyLimit) {
    auto mta = world_->mta("default_destination_concurrency_limit = 2\n");
    for (int i = 0; i < 6; ++i) ASSERT_EQ(send(*mta, "rcpt" + std::to_string(i) + "@slow.test").exit_code, 0);
    for (int i = 0; i < 6; ++i)
        ASSERT_TRUE(mta->maillog_has("to=<rcpt" + std::to_string(i) + "@slow.test>, relay=mx.slow.test", 30s))
            << mta->maillog();
    // Deliveries overlapped (a second each, six messages) but never beyond two.
    EXPECT_EQ(read_file(world_->dir().file("taken-slow.max")), "2");
}

TEST_F(MxDelivery, AuthLoginWhenTheMechanismFilterAsksForIt) {
    world_->dir().write("sasl_passwd_login", "[mx.tls.test]:25 relayuser:" + kPassword + "\n");
    auto mta = world_->mta("relayhost = [mx.tls.test]:25\n"
                           "smtp_tls_security_level = encrypt\n"
                           "smtp_sasl_auth_enable = yes\n"
                           "smtp_sasl_password_maps = texthash:" + world_->dir().file("sasl_passwd_login") + "\n"
                           "smtp_sasl_tls_security_options = noanonymous\n"
                           "smtp_sasl_mechanism_filter = login\n");
    ASSERT_EQ(send(*mta, "someone@login.example").exit_code, 0);
    ASSERT_TRUE(mta->maillog_has("to=<someone@login.example>, relay=mx.tls.test[" + kNet + "65]:25")) << mta->maillog();
    EXPECT_TRUE(mta->maillog_has("status=sent (250 2.0.0 Ok: queued as")) << mta->maillog();
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (world_->postfix_log().find("sasl_method=LOGIN, sasl_username=relayuser") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);  // polling Postfix's log, bounded
    EXPECT_NE(world_->postfix_log().find("sasl_method=LOGIN, sasl_username=relayuser"), std::string::npos)
        << world_->postfix_log();
    EXPECT_EQ(mta->maillog().find(kPassword), std::string::npos);
}
