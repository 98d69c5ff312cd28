// The LMTP server; see lmtp_server.h.
#include "lmtp_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <array>
#include <charconv>
#include <map>

#include "daemon/log.h"
#include "daemon/metrics.h"
#include "delivery.h"
#include "net/stream_server.h"
#include "smtp/command.h"
#include "smtp/data.h"
#include "smtp/reply.h"

namespace maildir {

namespace asio = boost::asio;
namespace smtp = proto::smtp;
namespace log = proto::log;
using Protocol = asio::generic::stream_protocol;
using SteadyClock = std::chrono::steady_clock;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

using proto::net::StreamConnection;

struct Recipient {
    smtp::Address address;
    std::string text;  // as sent, for Delivered-To and logs
    Target target;
};

std::string reply_text(int code, std::string_view enhanced, std::string_view text) {
    return smtp::format_reply(code, enhanced, text);
}

}  // namespace

struct LmtpServer::Impl : std::enable_shared_from_this<LmtpServer::Impl> {
    Impl(asio::io_context& io, const proto::policy::ServerOptions& o, proto::metrics::Registry& r,
         StateSource s, unsigned workers)
        : io(io),
          options(o),
          registry(r),
          state_source(std::move(s)),
          pool(workers),
          protocol_errors(r.counter("lmtp_protocol_errors_total",
                                    "Commands refused as malformed or out of sequence")),
          messages(r.counter("lmtp_messages_total", "Messages received (DATA completed)")),
          write_latency(r.histogram("maildir_delivery_seconds",
                                    "Time to write and fsync one recipient's copy")) {}

    asio::io_context& io;
    proto::policy::ServerOptions options;
    proto::metrics::Registry& registry;
    StateSource state_source;
    asio::thread_pool pool;
    std::unique_ptr<proto::net::StreamServer> streams;  // set right after construction
    std::map<Status, proto::metrics::Counter*> by_status;

    proto::metrics::Counter& protocol_errors;
    proto::metrics::Counter& messages;
    proto::metrics::Histogram& write_latency;

    proto::metrics::Counter& recipients(Status s) {
        auto it = by_status.find(s);
        if (it != by_status.end()) return *it->second;
        auto& c = registry.counter("maildir_recipients_total",
                                   "Recipients by final status (refused at RCPT or after DATA)",
                                   {{"status", std::string(status_name(s))}});
        by_status.emplace(s, &c);
        return c;
    }

    // Run f on the worker pool and resume on the I/O thread with its result.
    template <class R, class F>
    asio::awaitable<R> on_pool(F f) {
        return asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
            [this, f = std::move(f)](auto handler) mutable {
                asio::post(pool, [this, f = std::move(f), handler = std::move(handler)]() mutable {
                    R result{};
                    try {
                        result = f();
                    } catch (const std::exception& e) {
                        log::error(std::string("delivery worker: ") + e.what());
                    }
                    asio::post(io, [result = std::move(result), handler = std::move(handler)]() mutable {
                        std::move(handler)(std::move(result));
                    });
                });
            },
            asio::use_awaitable);
    }

    // Deliveries in progress are never timed out: their fsyncs finish, and
    // the idle timeout applies again once the replies are sent.
    static proto::net::StreamServerOptions stream_options(const proto::policy::ServerOptions& o) {
        return {o.max_connections, o.idle_timeout, std::chrono::milliseconds(0), o.unix_mode,
                o.read_timeout};
    }

    void start() {
        std::weak_ptr<Impl> weak = weak_from_this();
        proto::net::StreamServerProtocol protocol;
        protocol.metric_prefix = "lmtp";
        protocol.name = "LMTP";
        // Tell the client to come back rather than leaving it guessing.
        protocol.refusal = reply_text(421, "4.3.2", "Too many connections, try again later");
        // RFC 5321 3.8: a server may close with 421 at any time.
        protocol.eviction_notice = reply_text(421, "4.3.2", "Too many connections, closing an idle one");
        protocol.shutdown_notice = reply_text(421, "4.3.2", "Service shutting down, try again later");
        protocol.serve = [weak](std::shared_ptr<StreamConnection> c) {
            return serve(weak.lock(), std::move(c));
        };
        streams = std::make_unique<proto::net::StreamServer>(io, stream_options(options), registry,
                                                             std::move(protocol));
    }

    // A static coroutine holding self: the connection keeps this alive.
    static asio::awaitable<void> serve(std::shared_ptr<Impl> self,
                                       std::shared_ptr<StreamConnection> c) {
        if (self) co_await self->session(*c);
    }

    void log_recipient(std::string_view event, const std::string& sender, const std::string& rcpt,
                       const std::string& mailbox, Status status, const SmtpReply& reply,
                       std::string_view detail, std::size_t size, SteadyClock::duration took) {
        if (!options.log_decisions) return;
        std::string code = std::to_string(reply.code) + " " + std::string(reply.enhanced);
        std::string size_text = std::to_string(size);
        std::string ms = log::millis(took);
        log::event(status == Status::delivered ? log::Level::info : log::Level::warning, event,
                   {{"from", sender},
                    {"to", rcpt},
                    {"mailbox", mailbox},
                    {"status", status_name(status)},
                    {"reply", code},
                    {"detail", detail},
                    {"size", size_text, true},
                    {"latency_ms", ms, true}});
    }

    asio::awaitable<void> session(StreamConnection& connection) {
        auto* c = &connection;
        auto buf = std::make_unique<std::array<char, 16384>>();
        std::string in, out;
        smtp::CommandReader reader;
        std::shared_ptr<const State> state = state_source();
        bool greeted = false;
        bool have_mail = false;
        std::string sender;
        std::vector<Recipient> rcpts;
        std::size_t errors = 0;
        bool quit = false;

        auto flush = [&]() -> asio::awaitable<bool> {
            if (out.empty()) co_return true;
            auto [ec, n] = co_await asio::async_write(c->socket, asio::buffer(out), use_nothrow);
            out.clear();
            co_return !ec;
        };
        // Replies are flushed only when no further command is buffered
        // (RFC 2920: a pipelined group gets its replies together).
        auto read_more = [&]() -> asio::awaitable<std::size_t> {
            if (!co_await flush()) co_return 0;
            c->idle(options.idle_timeout);
            auto [ec, n] = co_await c->socket.async_read_some(asio::buffer(*buf), use_nothrow);
            if (ec) co_return 0;
            c->touch();  // eviction picks the one idle longest
            co_return n;
        };
        // A transaction runs from an accepted MAIL to RSET or the replies
        // after DATA: never evicted, and a drain lets it finish.
        auto reset = [&] {
            have_mail = false;
            c->in_transaction = false;
            sender.clear();
            rcpts.clear();
        };
        auto error = [&](int code, std::string_view enhanced, std::string_view text) {
            protocol_errors.inc();
            out += reply_text(code, enhanced, text);
            if (++errors >= state->settings.max_errors) {
                out += reply_text(421, "4.7.0", "Too many errors, closing connection");
                quit = true;
            }
        };

        out = reply_text(220, "", state->settings.hostname + " LMTP ready");
        while (!c->closed && !quit && !(streams->draining() && !c->in_transaction)) {
            auto fed = reader.feed(in);
            in.erase(0, fed.consumed);
            if (fed.status == smtp::CommandReader::Status::need_more) {
                std::size_t n = co_await read_more();
                if (n == 0) break;
                in.append(buf->data(), n);
                continue;
            }
            auto parsed = reader.take();
            if (!parsed.command) {
                error(parsed.error.code, parsed.error.enhanced, parsed.error.text);
                continue;
            }
            smtp::Command& cmd = *parsed.command;
            switch (cmd.verb) {
                case smtp::Verb::lhlo: {
                    reset();
                    greeted = true;
                    state = state_source();
                    smtp::Reply r{250, "", {state->settings.hostname, "PIPELINING", "8BITMIME",
                                            "ENHANCEDSTATUSCODES",
                                            "SIZE " + std::to_string(state->settings.message_size_limit)}};
                    out += smtp::format_reply(r);
                    break;
                }
                case smtp::Verb::helo:
                case smtp::Verb::ehlo:
                    error(500, "5.5.1", "This is an LMTP server: use LHLO");
                    break;
                case smtp::Verb::mail: {
                    if (!greeted) { error(503, "5.5.1", "Send LHLO first"); break; }
                    if (have_mail) { error(503, "5.5.1", "Nested MAIL command"); break; }
                    state = state_source();  // a transaction uses one configuration
                    bool ok = true;
                    for (const auto& p : cmd.params) {
                        if (p.keyword == "SIZE") {
                            std::size_t declared = 0;
                            auto r = std::from_chars(p.value.data(), p.value.data() + p.value.size(), declared);
                            if (!p.has_value || r.ec != std::errc() || r.ptr != p.value.data() + p.value.size()) {
                                error(501, "5.5.4", "Bad SIZE parameter");
                                ok = false;
                            } else if (declared > state->settings.message_size_limit) {
                                out += reply_text(552, "5.3.4", "Message size exceeds fixed limit");
                                ok = false;
                            }
                        } else if (p.keyword == "BODY") {
                            if (p.value != "7BIT" && p.value != "8BITMIME" && p.value != "7bit" &&
                                p.value != "8bitmime") {
                                error(501, "5.5.4", "Bad BODY parameter");
                                ok = false;
                            }
                        } else {
                            error(555, "5.5.4", "Unsupported parameter " + p.keyword);
                            ok = false;
                        }
                        if (!ok) break;
                    }
                    if (!ok) break;
                    have_mail = true;
                    c->in_transaction = true;
                    sender = cmd.path.to_string();
                    out += reply_text(250, "2.1.0", "Sender OK");
                    break;
                }
                case smtp::Verb::rcpt: {
                    if (!have_mail) { error(503, "5.5.1", "Need MAIL command first"); break; }
                    if (!cmd.params.empty()) {
                        error(555, "5.5.4", "Unsupported parameter " + cmd.params.front().keyword);
                        break;
                    }
                    if (rcpts.size() >= state->settings.max_recipients) {
                        out += reply_text(452, "4.5.3", "Too many recipients");
                        break;
                    }
                    Resolution res;
                    if (state->settings.mode == Mode::system) {
                        // getpwnam may ask NSS (LDAP, sssd): not on the I/O thread.
                        // The job is built outside the co_await expression: g++ 12
                        // destroys a capturing lambda temporary inside one twice.
                        auto lookup = on_pool<Resolution>(
                            [st = state, a = cmd.path] { return resolve(*st, a); });
                        c->busy = true;
                        res = co_await std::move(lookup);
                        c->busy = false;
                    } else {
                        res = resolve(*state, cmd.path);
                    }
                    std::string text = cmd.path.to_string();
                    if (res.status != Status::delivered) {
                        Outcome o;
                        o.status = res.status;
                        o.detail = res.detail;
                        auto reply = to_reply(o);
                        recipients(res.status).inc();
                        log_recipient("recipient refused", sender, text, "", res.status, reply,
                                      res.detail, 0, {});
                        out += reply_text(reply.code, reply.enhanced, reply.text);
                        break;
                    }
                    rcpts.push_back(Recipient{std::move(cmd.path), std::move(text), std::move(res.target)});
                    out += reply_text(250, "2.1.5", "Recipient OK");
                    break;
                }
                case smtp::Verb::data: {
                    if (!have_mail) { error(503, "5.5.1", "Need MAIL command first"); break; }
                    if (rcpts.empty()) { error(503, "5.5.1", "No valid recipients"); break; }
                    out += reply_text(354, "", "End data with <CR><LF>.<CR><LF>");
                    smtp::DataReader data(state->settings.message_size_limit);
                    auto dr = data.feed(in);
                    in.erase(0, dr.consumed);
                    while (!dr.done) {
                        std::size_t n = co_await read_more();
                        if (n == 0) break;
                        std::string_view chunk(buf->data(), n);
                        dr = data.feed(chunk);
                        if (dr.done) in.assign(chunk.substr(dr.consumed));
                    }
                    if (!dr.done) {
                        quit = true;  // connection lost mid-message: nothing was acknowledged
                        break;
                    }
                    messages.inc();
                    if (data.too_big()) {
                        Outcome o;
                        o.status = Status::too_big;
                        auto reply = to_reply(o);
                        for (const auto& r : rcpts) {
                            recipients(Status::too_big).inc();
                            log_recipient("delivery", sender, r.text, r.target.mailbox,
                                          Status::too_big, reply, "", data.size(), {});
                            out += reply_text(reply.code, reply.enhanced, reply.text);
                        }
                        reset();
                        break;
                    }
                    struct Done {
                        std::vector<Outcome> outcomes;
                        std::vector<SteadyClock::duration> took;
                    };
                    std::string body = data.take();
                    auto job = on_pool<Done>([&, st = state] {
                        Done d;
                        for (const auto& r : rcpts) {
                            auto started = SteadyClock::now();
                            try {
                                d.outcomes.push_back(
                                    deliver(*st, r.target, Envelope{sender, r.text}, body));
                            } catch (const std::exception& e) {
                                Outcome o;
                                o.detail = e.what();
                                d.outcomes.push_back(std::move(o));
                            }
                            d.took.push_back(SteadyClock::now() - started);
                        }
                        return d;
                    });
                    c->busy = true;
                    Done done = co_await std::move(job);  // see the RCPT case on g++ 12
                    c->busy = false;
                    done.outcomes.resize(rcpts.size());  // a failed job: all temporary
                    done.took.resize(rcpts.size());
                    for (std::size_t i = 0; i < rcpts.size(); ++i) {
                        const Outcome& o = done.outcomes[i];
                        auto reply = to_reply(o);
                        recipients(o.status).inc();
                        write_latency.observe(std::chrono::duration<double>(done.took[i]).count());
                        log_recipient("delivery", sender, rcpts[i].text, rcpts[i].target.mailbox,
                                      o.status, reply,
                                      o.status == Status::delivered ? std::string_view(o.file)
                                                                    : std::string_view(o.detail),
                                      body.size(), done.took[i]);
                        out += reply_text(reply.code, reply.enhanced, reply.text);
                    }
                    reset();
                    break;
                }
                case smtp::Verb::rset:
                    reset();
                    out += reply_text(250, "2.0.0", "OK");
                    break;
                case smtp::Verb::noop:
                    out += reply_text(250, "2.0.0", "OK");
                    break;
                case smtp::Verb::quit:
                    out += reply_text(221, "2.0.0", "Bye");
                    quit = true;
                    break;
                case smtp::Verb::vrfy:
                    // No user enumeration (RFC 5321 3.5.3 allows 252).
                    out += reply_text(252, "2.5.2", "Send some mail, I'll try my best");
                    break;
                default:
                    error(502, "5.5.1", "Command not implemented");
                    break;
            }
        }
        if (!c->closed && streams->draining() && !quit)
            out += reply_text(421, "4.3.2", "Service shutting down, try again later");
        co_await flush();
    }
};

LmtpServer::LmtpServer(asio::io_context& io, const proto::policy::ServerOptions& options,
                       proto::metrics::Registry& registry, StateSource state, unsigned workers)
    : impl_(std::make_shared<Impl>(io, options, registry, std::move(state), workers)) {
    impl_->start();
}

LmtpServer::~LmtpServer() {
    impl_->streams.reset();
    // Jobs in flight finish their fsyncs; their replies are lost with the
    // connection, so the client retries (a duplicate at worst, never a loss).
    impl_->pool.join();
}

void LmtpServer::listen(const proto::net::Endpoint& where) { impl_->streams->listen(where); }

// The stream server keeps the unix_mode its sockets were made with.
void LmtpServer::update_options(const proto::policy::ServerOptions& options) {
    impl_->options = options;
    impl_->streams->update_options(Impl::stream_options(options));
}

// Connections outside a transaction get 421 and close now; a transaction in
// progress (even mid-DATA) is read to its end, delivered and answered, then
// 421 and close; one still unfinished at the timeout gets 421 and is closed.
void LmtpServer::drain(std::chrono::milliseconds timeout, std::function<void()> on_drained) {
    impl_->streams->drain(timeout, std::move(on_drained));
}

std::size_t LmtpServer::connections() const { return impl_->streams->connections(); }

}  // namespace maildir
