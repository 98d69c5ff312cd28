// smtpd_sasl_type = dovecot: the client side of Dovecot's authentication
// protocol on the unix socket smtpd_sasl_path, as Postfix's
// xsasl_dovecot_server.c speaks it (read, not copied), with one difference:
// one connection per backend carries the requests of all sessions at once,
// told apart by request id, where Postfix has one connection per process.
//
// All connection state lives on one strand: the reader coroutine (handshake,
// then replies routed to the waiting request by id), the write queue, the
// per-request timers. Requests come in through plain functions that return
// async_initiate, and complete on the caller's executor.
//
// Failure handling: no connection, a lost connection, a protocol error (a
// line over Dovecot's own limit, a malformed reply) or no reply within
// Settings::timeout is a temporary failure of the requests concerned; the
// next AUTH connects again (late binding, as Postfix). A reply that arrives
// after its request timed out is dropped. The mechanism list is the one of
// the last handshake, filtered by the security options as Postfix does
// (positive properties required, negative ones excluded, "private" never
// offered); mechanisms() starts a connection when there has been none.
//
// Security: the initial and continued responses (which hold passwords) are
// only ever written to the socket; reasons and logs never carry them.
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <array>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <sys/un.h>

#include "maillog.h"
#include "sasl/backends.h"
#include "sasl/dovecot_protocol.h"
#include "sasl/offload.h"

namespace mta::sasl {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

struct Outcome {
    enum class Kind { reply, failure, temporary } kind = Kind::temporary;
    dovecot::Reply reply;
    std::string reason;
    std::uint64_t generation = 0;  // of the connection the request went out on
};
using Completion = std::function<void(Outcome)>;

std::string upper(std::string text) {
    for (auto& c : text)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return text;
}

unsigned required(const SecurityOptions& o) {
    return (o.forward_secrecy ? dovecot::forward_secrecy : 0u) | (o.mutual_auth ? dovecot::mutual_auth : 0u);
}
unsigned excluded(const SecurityOptions& o) {
    return (o.noplaintext ? dovecot::plaintext : 0u) | (o.noactive ? dovecot::active : 0u) |
           (o.nodictionary ? dovecot::dictionary : 0u) | (o.noanonymous ? dovecot::anonymous : 0u);
}

struct Mechanism {
    std::string name;
    unsigned properties = 0;
};

std::vector<std::string> filter(const std::vector<Mechanism>& all, const SecurityOptions& options) {
    std::vector<std::string> names;
    for (const auto& m : all)
        if ((m.properties & required(options)) == required(options) && (m.properties & excluded(options)) == 0)
            names.push_back(m.name);
    return names;
}

struct Job {
    bool auth = true;
    dovecot::AuthRequest request;  // auth: id assigned on the strand
    SecurityOptions options;       // auth: which mechanisms are allowed
    unsigned long id = 0;          // cont
    std::uint64_t generation = 0;  // cont
    std::string response;          // cont, base64
    Completion done;
    bool retried = false;          // auth: sent again after a lost connection
};

// One connection to the auth socket; handlers hold it, so its buffers live
// as long as an operation on it.
struct Connection {
    explicit Connection(asio::strand<asio::any_io_executor>& strand, std::uint64_t gen)
        : socket(strand), generation(gen) {}
    stream::socket socket;
    std::uint64_t generation;
    dovecot::Parser parser;
    std::string outbox, inflight;
    bool writing = false;
};

class Core : public std::enable_shared_from_this<Core> {
public:
    Core(const Settings& settings, asio::any_io_executor io, std::string socket_path)
        : settings_(settings), strand_(asio::make_strand(io)), path_(std::move(socket_path)) {}

    // Any thread.
    std::vector<std::string> mechanisms(const SecurityOptions& options) {
        std::lock_guard lock(mutex_);
        if (!ever_connected_)
            asio::post(strand_, [self = shared_from_this()] { self->ensure_connecting(); });
        return filter(mechanisms_, options);
    }

    void close() {
        asio::post(strand_, [self = shared_from_this()] {
            self->closed_ = true;
            self->fail_waiting("SASL backend was replaced");
            if (self->connection_) self->drop(self->connection_, "SASL backend was replaced");
        });
    }

    const Settings& settings() const { return settings_; }

    // Plain function (not a coroutine): queue the job on the strand, resume
    // the caller on home with the outcome.
    auto submit(Job job, asio::any_io_executor home) {
        return asio::async_initiate<const asio::use_awaitable_t<>&, void(Outcome)>(
            [self = shared_from_this(), job = std::move(job), home = std::move(home)](auto handler) mutable {
                auto shared = std::make_shared<decltype(handler)>(std::move(handler));
                job.done = [shared, home](Outcome outcome) {
                    asio::post(home, [shared, outcome = std::move(outcome)]() mutable {
                        (*shared)(std::move(outcome));
                    });
                };
                asio::post(self->strand_, [self, job = std::move(job)]() mutable { self->handle(std::move(job)); });
            },
            asio::use_awaitable);
    }

private:
    struct Pending {
        Completion done;
        std::shared_ptr<asio::steady_timer> timer;
        std::optional<Job> retry;  // a first step not yet retried
    };

    // --- everything below runs on strand_ ---

    static Outcome temporary(std::string reason) {
        Outcome o;
        o.kind = Outcome::Kind::temporary;
        o.reason = std::move(reason);
        return o;
    }

    void handle(Job job) {
        if (closed_) return job.done(temporary("SASL backend was replaced"));
        if (job.auth) {
            if (connection_) return send_auth(std::move(job));
            waiting_.push_back(std::move(job));
            ensure_connecting();
            return;
        }
        if (!connection_ || connection_->generation != job.generation)
            return job.done(temporary("connection to the Dovecot auth server was lost during the exchange"));
        std::string line = dovecot::format_cont(job.id, job.response);
        if (line.size() > dovecot::max_line) {
            Outcome o;
            o.kind = Outcome::Kind::failure;
            o.reason = "response longer than the Dovecot protocol allows";
            return job.done(std::move(o));
        }
        expect(job.id, std::move(job.done));
        write(connection_, std::move(line));
    }

    void send_auth(Job job) {
        std::vector<std::string> allowed;
        {
            std::lock_guard lock(mutex_);
            allowed = filter(mechanisms_, job.options);
        }
        bool known = false;
        for (const auto& m : allowed) known = known || upper(m) == job.request.mechanism;
        if (!known) {
            Outcome o;
            o.kind = Outcome::Kind::failure;
            o.reason = "unsupported authentication mechanism";
            return job.done(std::move(o));
        }
        job.request.id = ++next_id_;  // never reused, even across connections
        std::string line = dovecot::format_auth(job.request);
        if (line.size() > dovecot::max_line) {
            Outcome o;
            o.kind = Outcome::Kind::failure;
            o.reason = "initial response longer than the Dovecot protocol allows";
            return job.done(std::move(o));
        }
        auto generation = connection_->generation;
        auto id = job.request.id;
        auto done = job.done;
        expect(id, [done = std::move(done), generation](Outcome o) {
            o.generation = generation;
            done(std::move(o));
        });
        // A first step lost with its connection is sent once more on a new
        // one (as Postfix retries once): the server may have closed an idle
        // connection just before the request went out. Continuations are
        // never retried: their state died with the connection.
        if (!job.retried) pending_[id].retry = std::move(job);
        write(connection_, std::move(line));
    }

    void expect(unsigned long id, Completion done) {
        auto timer = std::make_shared<asio::steady_timer>(strand_, settings_.timeout);
        timer->async_wait([self = shared_from_this(), id](boost::system::error_code ec) {
            if (ec) return;
            auto it = self->pending_.find(id);
            if (it == self->pending_.end()) return;
            auto finished = std::move(it->second.done);
            self->pending_.erase(it);
            finished(temporary("no reply from the Dovecot auth server within " +
                               std::to_string(self->settings_.timeout.count()) + "ms"));
        });
        pending_[id] = Pending{std::move(done), std::move(timer)};
    }

    void write(const std::shared_ptr<Connection>& conn, std::string line) {
        conn->outbox += line;
        if (!conn->writing) start_write(conn);
    }

    void start_write(std::shared_ptr<Connection> conn) {
        conn->writing = true;
        conn->inflight = std::move(conn->outbox);
        conn->outbox.clear();
        asio::async_write(conn->socket, asio::buffer(conn->inflight),
                          asio::bind_executor(strand_, [self = shared_from_this(), conn](
                                                               boost::system::error_code ec, std::size_t) {
                              conn->writing = false;
                              if (ec) return self->drop(conn, "write: " + ec.message());
                              if (!conn->outbox.empty()) self->start_write(conn);
                          }));
    }

    void ensure_connecting() {
        if (connecting_ || connection_ || closed_) return;
        connecting_ = true;
        asio::co_spawn(strand_, run(shared_from_this()), asio::detached);
    }

    void fail_waiting(const std::string& reason) {
        auto waiting = std::move(waiting_);
        waiting_.clear();
        for (auto& job : waiting) job.done(temporary(reason));
    }

    void drop(const std::shared_ptr<Connection>& conn, const std::string& reason) {
        boost::system::error_code ignored;
        conn->socket.close(ignored);
        if (connection_ != conn) return;
        connection_.reset();
        if (!closed_)
            maillog::line("smtpd", "warning: SASL: connection to Dovecot auth socket '" + path_ + "' lost: " +
                                       maillog::printable(reason));
        auto pending = std::move(pending_);
        pending_.clear();
        for (auto& [id, p] : pending) {
            p.timer->cancel();
            if (p.retry && !closed_) {
                p.retry->retried = true;
                waiting_.push_back(std::move(*p.retry));
            } else {
                p.done(temporary("connection to the Dovecot auth server lost: " + reason));
            }
        }
        if (!waiting_.empty()) ensure_connecting();
    }

    void dispatch(dovecot::Reply reply) {
        if (reply.kind != dovecot::Reply::Kind::ok && reply.kind != dovecot::Reply::Kind::cont &&
            reply.kind != dovecot::Reply::Kind::fail)
            return;
        auto it = pending_.find(reply.id);
        if (it == pending_.end()) return;  // timed out already, or not ours
        auto p = std::move(it->second);
        pending_.erase(it);
        p.timer->cancel();
        Outcome o;
        o.kind = Outcome::Kind::reply;
        o.reply = std::move(reply);
        p.done(std::move(o));
    }

    // Connect, handshake, then read replies until the connection goes.
    static asio::awaitable<void> run(std::shared_ptr<Core> self) {
        auto conn = std::make_shared<Connection>(self->strand_, ++self->generations_);
        auto op = self->handshake(conn);
        std::string failure = co_await std::move(op);
        self->connecting_ = false;
        if (!failure.empty()) {
            boost::system::error_code ignored;
            conn->socket.close(ignored);
            if (!self->closed_)
                maillog::line("smtpd", "warning: SASL: connect to Dovecot auth socket '" + self->path_ +
                                           "' failed: " + maillog::printable(failure));
            self->fail_waiting("cannot connect to the Dovecot auth server: " + failure);
            co_return;
        }
        if (self->closed_) {
            boost::system::error_code ignored;
            conn->socket.close(ignored);
            co_return;
        }
        self->connection_ = conn;
        auto waiting = std::move(self->waiting_);
        self->waiting_.clear();
        for (auto& job : waiting) self->send_auth(std::move(job));

        std::string reason;
        std::array<char, 4096> buffer;
        while (reason.empty()) {
            auto [ec, n] = co_await conn->socket.async_read_some(asio::buffer(buffer), use_nothrow);
            if (ec) {
                reason = ec == asio::error::eof ? std::string("closed by the server") : ec.message();
            } else if (!conn->parser.feed(std::string_view(buffer.data(), n))) {
                reason = "protocol error: " + conn->parser.error();
            }
            while (auto reply = conn->parser.next()) self->dispatch(std::move(*reply));
        }
        self->drop(conn, reason);
    }

    // Returns "" on success, else what went wrong; bounded by the timeout.
    asio::awaitable<std::string> handshake(std::shared_ptr<Connection> conn) {
        auto expired = std::make_shared<bool>(false);
        asio::steady_timer deadline(strand_, settings_.timeout);
        deadline.async_wait([conn, expired](boost::system::error_code ec) {
            if (ec) return;
            *expired = true;
            boost::system::error_code ignored;
            conn->socket.close(ignored);
        });
        stream::endpoint endpoint(path_);
        auto [connect_error] = co_await conn->socket.async_connect(endpoint, use_nothrow);
        if (connect_error) co_return *expired ? std::string("timed out") : connect_error.message();
        std::string hello = dovecot::handshake(static_cast<unsigned long>(::getpid()));
        auto [write_error, written] = co_await asio::async_write(conn->socket, asio::buffer(hello), use_nothrow);
        if (write_error) co_return *expired ? std::string("timed out") : write_error.message();
        std::vector<Mechanism> mechanisms;
        bool version_ok = false, done = false;
        std::array<char, 4096> buffer;
        std::string failure;
        while (!done && failure.empty()) {
            auto [ec, n] = co_await conn->socket.async_read_some(asio::buffer(buffer), use_nothrow);
            if (ec) {
                failure = *expired ? std::string("timed out during the handshake")
                                   : "handshake: " + (ec == asio::error::eof ? std::string("closed by the server")
                                                                              : ec.message());
            } else if (!conn->parser.feed(std::string_view(buffer.data(), n))) {
                failure = "protocol error: " + conn->parser.error();
            }
            for (auto reply = conn->parser.next(); reply && !done && failure.empty(); reply = conn->parser.next()) {
                switch (reply->kind) {
                    case dovecot::Reply::Kind::version:
                        if (reply->major != 1)
                            failure = "protocol version mismatch (" + std::to_string(reply->major) + " vs. 1)";
                        version_ok = true;
                        break;
                    case dovecot::Reply::Kind::mech:
                        if (!(reply->properties & dovecot::private_mech))
                            mechanisms.push_back(Mechanism{upper(reply->mechanism), reply->properties});
                        break;
                    case dovecot::Reply::Kind::spid:
                        // auth-master and auth-userdb sockets send no MECH
                        // lines before SPID (Postfix tells them apart so).
                        if (mechanisms.empty()) failure = "not an auth-client socket (no MECH lines)";
                        break;
                    case dovecot::Reply::Kind::done:
                        done = true;
                        break;
                    default:
                        break;
                }
            }
        }
        deadline.cancel();
        if (failure.empty() && !version_ok) failure = "no VERSION line in the handshake";
        if (failure.empty() && *expired) failure = "timed out during the handshake";
        if (!failure.empty()) co_return failure;
        std::lock_guard lock(mutex_);
        mechanisms_ = std::move(mechanisms);
        ever_connected_ = true;
        co_return std::string();
    }

    Settings settings_;
    asio::strand<asio::any_io_executor> strand_;
    std::string path_;

    std::mutex mutex_;  // guards the two below, read from any thread
    std::vector<Mechanism> mechanisms_;
    bool ever_connected_ = false;

    std::shared_ptr<Connection> connection_;
    bool connecting_ = false, closed_ = false;
    std::uint64_t generations_ = 0;
    unsigned long next_id_ = 0;
    std::deque<Job> waiting_;
    std::map<unsigned long, Pending> pending_;
};

class DovecotAuthentication final : public Authentication {
public:
    DovecotAuthentication(std::shared_ptr<Core> core, const Peer& peer, SecurityOptions options)
        : core_(std::move(core)), peer_(peer), options_(options) {}

    asio::awaitable<Step> start(std::string mechanism, std::optional<std::string> initial_response) override {
        if (started_) co_return Step{Step::Status::failure, {}, {}, "AUTH exchange already started"};
        started_ = true;
        auto home = co_await asio::this_coro::executor;
        Job job;
        job.auth = true;
        job.options = options_;
        job.request.mechanism = upper(std::move(mechanism));
        job.request.service = core_->settings().service;
        job.request.local_ip = peer_.server_address;
        job.request.remote_ip = peer_.client_address;
        job.request.local_port = peer_.server_port;
        job.request.remote_port = peer_.client_port;
        job.request.secured = peer_.tls;
        if (initial_response) job.request.initial_response = base64_encode(*initial_response);
        auto op = core_->submit(std::move(job), home);
        Outcome outcome = co_await std::move(op);
        co_return interpret(std::move(outcome));
    }

    asio::awaitable<Step> next(std::string response) override {
        if (!id_) co_return Step{Step::Status::failure, {}, {}, "no AUTH exchange in progress"};
        auto home = co_await asio::this_coro::executor;
        Job job;
        job.auth = false;
        job.id = id_;
        job.generation = generation_;
        job.response = base64_encode(response);
        auto op = core_->submit(std::move(job), home);
        Outcome outcome = co_await std::move(op);
        co_return interpret(std::move(outcome));
    }

private:
    Step interpret(Outcome o) {
        if (o.kind == Outcome::Kind::temporary) return Step{Step::Status::temporary, {}, {}, o.reason};
        if (o.kind == Outcome::Kind::failure) return Step{Step::Status::failure, {}, {}, o.reason};
        auto& r = o.reply;
        switch (r.kind) {
            case dovecot::Reply::Kind::cont: {
                auto challenge = base64_decode(r.data);
                if (!challenge) return Step{Step::Status::failure, {}, {}, "invalid base64 challenge from Dovecot"};
                id_ = r.id;
                if (o.generation) generation_ = o.generation;
                return Step{Step::Status::challenge, std::move(*challenge), {}, {}};
            }
            case dovecot::Reply::Kind::ok:
                id_ = 0;
                if (r.user.empty())
                    return Step{Step::Status::failure, {}, {}, "Dovecot reported success without a user name"};
                return Step{Step::Status::success, {}, printable(r.user), {}};
            default: {
                id_ = 0;
                std::string reason = "authentication failed";
                if (!r.reason.empty()) reason += ": " + printable(r.reason);
                return Step{r.temporary ? Step::Status::temporary : Step::Status::failure, {}, {}, reason};
            }
        }
    }

    std::shared_ptr<Core> core_;
    Peer peer_;
    SecurityOptions options_;
    bool started_ = false;
    unsigned long id_ = 0;
    std::uint64_t generation_ = 0;
};

class DovecotBackend final : public Backend {
public:
    DovecotBackend(const Settings& settings, asio::any_io_executor io, std::string path)
        : core_(std::make_shared<Core>(settings, std::move(io), std::move(path))),
          options_(parse_security_options(settings.security_options)),
          tls_options_(parse_security_options(tls_options_text(settings))) {}
    ~DovecotBackend() override { core_->close(); }

    std::vector<std::string> mechanisms(bool tls) const override {
        return core_->mechanisms(tls ? tls_options_ : options_);
    }

    std::unique_ptr<Authentication> begin(const Peer& peer) override {
        return std::make_unique<DovecotAuthentication>(core_, peer, peer.tls ? tls_options_ : options_);
    }

private:
    std::shared_ptr<Core> core_;
    SecurityOptions options_, tls_options_;
};

}  // namespace

std::shared_ptr<Backend> make_dovecot_backend(const Settings& settings, asio::any_io_executor io) {
    std::string path = settings.path;
    if (path.rfind("unix:", 0) == 0) path = path.substr(5);
    if (path.empty()) throw std::runtime_error("smtpd_sasl_path: empty; the Dovecot auth socket is needed");
    if (path.rfind("inet:", 0) == 0)
        throw std::runtime_error("smtpd_sasl_path: \"" + settings.path + "\": only unix sockets are supported");
    if (path.size() >= sizeof(sockaddr_un::sun_path))
        throw std::runtime_error("smtpd_sasl_path: \"" + path + "\" is too long for a unix socket");
    if (settings.timeout.count() <= 0) throw std::runtime_error("SASL: timeout must be positive");
    auto backend = std::make_shared<DovecotBackend>(settings, std::move(io), path);
    backend->mechanisms(false);  // connect now, so the first EHLO can offer AUTH
    return backend;
}

}  // namespace mta::sasl
