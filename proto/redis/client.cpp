// Redis client implementation: one multiplexed, pipelined connection driven
// by Asio coroutines, with hiredis as the RESP codec.
//
// How a call travels:
//   1. command() formats the request with redisFormatSdsCommandArgv and appends
//      it to write_buffer; a slot pointing at the caller's PendingCall is
//      pushed on the FIFO `pending`. Both happen together, so the order of
//      bytes on the wire and the order of slots always agree.
//   2. Requests are written in batches: at once when write_batch of them are
//      buffered, else by a flush posted once per turn of the event loop. A
//      flush first tries a plain non-blocking write (a loaded Redis socket
//      takes it whole); only a remainder goes to async_write, and while that
//      is in flight new requests accumulate for the next one.
//   3. The connection coroutine (run) reads, feeds hiredis' redisReader, and
//      pops one slot per reply. Reply objects are built directly as Reply
//      trees through redisReplyObjectFunctions, so no second conversion.
//   4. The caller waits on a steady_timer that expires at its deadline; a
//      reply (or a failure) is delivered by cancelling that timer. One timer
//      per call is both the deadline and the wake-up, which keeps a call at a
//      few small allocations (measured: see tests/proto/redis_test.cpp).
//   5. A caller whose deadline passes leaves its slot in the FIFO (nulled),
//      so later replies still match their callers; the late reply is dropped.
//
// Connection loss fails every queued call with Failure::disconnected and the
// run coroutine reconnects: at once if the lost connection had lived a while
// (a server restart), otherwise after an exponential backoff
// (backoff_min..backoff_max). While backing off, a call whose deadline ends
// before the next attempt fails at once instead of waiting for nothing;
// other calls queue and go out, after AUTH and SELECT, on the next connection.
//
// Limits: hiredis 0.14 has no maxelements/maxbulklen, so the reply builder
// refuses arrays over max_reply_elements and the connection refuses more than
// max_unparsed_bytes of an incomplete reply (Redis' own proto-max-bulk-len is
// 512 MiB). Nesting is bounded by hiredis (7 levels). Violations are protocol
// failures that reset the connection.
//
// Security: error texts name the URL only through Url::to_string(), which
// redacts the password.

#include "redis/client.h"
#include "redis/reply_reader.h"
#include "redis/router.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstdlib>
#include <deque>
#include <stdexcept>
#include <utility>

namespace proto::redis {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Bounds that hiredis 0.14 does not enforce itself (see header comment).
constexpr std::size_t max_unparsed_bytes = 512u << 20;
constexpr std::size_t read_chunk = 64u << 10;
// A connection that lived at least this long was healthy; losing it is
// probably a server restart, so reconnect at once without backing off.
constexpr auto healthy_connection_age = std::chrono::seconds(1);
constexpr milliseconds max_deadline = std::chrono::hours(24);

Result failure_result(Failure failure, std::string error) {
    Result result;
    result.failure = failure;
    result.error = std::move(error);
    return result;
}

// ---- Request formatting ------------------------------------------------------
// RESP bytes from hiredis, freed with redisFreeSdsCommand. The sds variant
// formats the length prefixes with hiredis's own formatter, not sprintf (a
// few percent of a busy daemon's CPU).
struct FormattedCommand {
    char* data = nullptr;
    int length = -1;

    FormattedCommand() = default;
    FormattedCommand(FormattedCommand&& other) noexcept
        : data(std::exchange(other.data, nullptr)), length(std::exchange(other.length, -1)) {}
    FormattedCommand& operator=(FormattedCommand&& other) noexcept {
        std::swap(data, other.data);
        std::swap(length, other.length);
        return *this;
    }
    ~FormattedCommand() {
        if (data) redisFreeSdsCommand(data);
    }
    bool ok() const { return data && length >= 0; }
};

FormattedCommand format_command(const std::vector<std::string>& args) {
    FormattedCommand formatted;
    if (args.empty()) return formatted;
    // Small commands (nearly all) need no heap for the argument tables.
    constexpr std::size_t inline_args = 16;
    std::array<const char*, inline_args> inline_pointers;
    std::array<std::size_t, inline_args> inline_lengths;
    std::vector<const char*> heap_pointers;
    std::vector<std::size_t> heap_lengths;
    const char** pointers = inline_pointers.data();
    std::size_t* lengths = inline_lengths.data();
    if (args.size() > inline_args) {
        heap_pointers.resize(args.size());
        heap_lengths.resize(args.size());
        pointers = heap_pointers.data();
        lengths = heap_lengths.data();
    }
    for (std::size_t i = 0; i < args.size(); ++i) {
        pointers[i] = args[i].data();
        lengths[i] = args[i].size();
    }
    formatted.length = redisFormatSdsCommandArgv(&formatted.data, static_cast<int>(args.size()),
                                                 pointers, lengths);
    return formatted;
}

}  // namespace

struct Client::Impl : std::enable_shared_from_this<Impl> {
    enum class State { idle, connecting, connected, backing_off, stopped };
    struct PendingCall;

    Impl(asio::any_io_executor ex, Url url_in, ClientOptions options_in)
        : executor(std::move(ex)),
          url(std::move(url_in)),
          options(options_in),
          url_text(url.to_string()),
          socket(executor),
          resolver(executor),
          backoff_timer(executor),
          connect_timer(executor),
          read_buffer(read_chunk) {
        if (url.tls.enabled) setup_tls();
    }

    asio::any_io_executor executor;
    Url url;
    ClientOptions options;
    std::string url_text;  // redacted, for error texts

    asio::generic::stream_protocol::socket socket;
    // TLS (Url::tls): a context built once, a stream over `socket` per
    // connection. Shared so a write still in flight on a lost connection
    // keeps its stream alive.
    using TlsStream = asio::ssl::stream<asio::generic::stream_protocol::socket&>;
    std::unique_ptr<asio::ssl::context> tls_context;
    std::string tls_setup_error;
    std::shared_ptr<TlsStream> tls;
    asio::ip::tcp::resolver resolver;
    asio::steady_timer backoff_timer;
    asio::steady_timer connect_timer;  // bounds resolve + connect + AUTH/SELECT

    State state = State::idle;
    steady_clock::time_point next_attempt_at{};
    // Bumped on every connection attempt and on stop(); completion handlers
    // of an older connection compare it and stand down.
    std::uint64_t generation = 0;
    bool attempt_timed_out = false;
    std::string write_error;

    ReaderPtr reader;
    std::vector<char> read_buffer;
    std::string write_buffer;    // requests not yet handed to the socket
    std::string writing_buffer;  // the batch async_write is sending
    bool write_in_flight = false;
    bool flush_posted = false;
    std::size_t unflushed = 0;  // commands buffered since the last flush

    // FIFO of callers in request order; nullptr marks a caller that gave up.
    // front_seq is the sequence number of pending.front(), so a caller finds
    // its own slot in O(1) to abandon it.
    std::deque<PendingCall*> pending;
    std::uint64_t front_seq = 0;

    ClientStats counters;

    std::optional<Result> refuse(milliseconds deadline) const;
    void enqueue(FormattedCommand& request, PendingCall& call, bool asking = false);
    void abandon(const PendingCall& call);
    void complete(PendingCall& call, Reply&& reply);
    void fail_all(Failure failure, const std::string& why);
    void schedule_flush();
    void flush();
    void stop();

    asio::awaitable<void> run(std::shared_ptr<Impl> self);
    asio::awaitable<void> back_off(milliseconds delay);
    asio::awaitable<std::string> connect_once();
    asio::awaitable<std::string> connect_and_handshake();
    asio::awaitable<error_code> read_more();
    asio::awaitable<std::pair<error_code, std::size_t>> read_some();
    void setup_tls();
    asio::awaitable<std::string> tls_handshake();
    asio::awaitable<std::pair<Failure, std::string>> read_replies();

    static asio::awaitable<Result> call(std::shared_ptr<Impl> self, FormattedCommand request,
                                        milliseconds deadline, bool asking = false);

    metrics_sink::Sink* sink = nullptr;
    // What made the last connection attempt fail, for counters.
    enum class Cause { connect, auth, tls } cause = Cause::connect;
};

// One caller waiting for its reply. Lives in the caller's coroutine frame.
struct Client::Impl::PendingCall {
    explicit PendingCall(Client::Impl& owner_in) : owner(owner_in), wake(owner_in.executor) {}
    // A frame destroyed while still queued (e.g. its io_context is torn down)
    // must not leave a dangling slot behind.
    ~PendingCall() {
        if (!done) owner.abandon(*this);
    }
    PendingCall(const PendingCall&) = delete;
    PendingCall& operator=(const PendingCall&) = delete;

    Client::Impl& owner;
    asio::steady_timer wake;  // expires at the deadline; cancelled to deliver early
    std::uint64_t seq = 0;
    bool done = false;
    Result result;
};

namespace {

std::string describe(milliseconds duration) { return std::to_string(duration.count()) + " ms"; }

}  // namespace

// ---- TLS -----------------------------------------------------------------------------

// Errors name the file and OpenSSL's reason, never a key's content.
void Client::Impl::setup_tls() {
    try {
        auto context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
        context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                             asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                             asio::ssl::context::no_tlsv1_1);
        context->set_verify_mode(asio::ssl::verify_peer);
        const TlsSettings& settings = url.tls;
        std::string step;
        try {
            step = settings.ca_file.empty() ? "the system's CA store" : "CA file " + settings.ca_file;
            if (settings.ca_file.empty())
                context->set_default_verify_paths();
            else
                context->load_verify_file(settings.ca_file);
            if (!settings.cert_file.empty()) {
                step = "certificate file " + settings.cert_file;
                context->use_certificate_chain_file(settings.cert_file);
                step = "key file " + settings.key_file;
                context->use_private_key_file(settings.key_file, asio::ssl::context::pem);
            }
        } catch (const std::exception& e) {
            tls_setup_error = "cannot load " + step + ": " + e.what();
            return;
        }
        tls_context = std::move(context);
    } catch (const std::exception& e) {
        tls_setup_error = e.what();
    }
}

// ---- Call path -------------------------------------------------------------------

std::optional<Result> Client::Impl::refuse(milliseconds deadline) const {
    if (state == State::stopped)
        return failure_result(Failure::disconnected, url_text + ": client stopped");
    if (deadline <= milliseconds::zero())
        return failure_result(Failure::timeout, url_text + ": deadline already passed");
    // A full queue means Redis is not keeping up (or is stopped); waiting
    // longer would only grow memory, so fail at once.
    if (pending.size() >= options.max_pending)
        return failure_result(Failure::timeout, url_text + ": too many calls pending");
    if (state == State::backing_off) {
        auto now = steady_clock::now();
        if (now + deadline < next_attempt_at) {
            auto wait = std::chrono::duration_cast<milliseconds>(next_attempt_at - now);
            return failure_result(Failure::disconnected,
                                  url_text + ": not connected, next attempt in " + describe(wait));
        }
    }
    return std::nullopt;
}

void Client::Impl::enqueue(FormattedCommand& request, PendingCall& call, bool asking) {
    if (asking) {
        // "*1\r\n$6\r\nASKING\r\n" right before the command; its +OK is
        // matched to an empty slot and dropped.
        write_buffer.append("*1\r\n$6\r\nASKING\r\n");
        pending.push_back(nullptr);
    }
    write_buffer.append(request.data, static_cast<std::size_t>(request.length));
    call.seq = front_seq + pending.size();
    pending.push_back(&call);
    if (++unflushed >= options.write_batch) {
        flush();
        return;
    }
    schedule_flush();
}

void Client::Impl::abandon(const PendingCall& call) {
    if (call.seq >= front_seq && call.seq - front_seq < pending.size())
        pending[call.seq - front_seq] = nullptr;
}

void Client::Impl::complete(PendingCall& call, Reply&& reply) {
    call.done = true;
    call.result.reply = std::move(reply);
    call.wake.cancel();
}

void Client::Impl::fail_all(Failure failure, const std::string& why) {
    // Requests not yet written belong to the dead connection's FIFO too.
    write_buffer.clear();
    std::deque<PendingCall*> failed;
    failed.swap(pending);
    front_seq += failed.size();
    for (PendingCall* call : failed) {
        if (!call) continue;
        call->done = true;
        call->result = failure_result(failure, why);
        call->wake.cancel();
    }
}

void Client::Impl::schedule_flush() {
    if (flush_posted || write_in_flight || state != State::connected) return;
    // Posting lets every caller that runs in this turn of the loop add its
    // request first, so one write carries them all.
    flush_posted = true;
    asio::post(executor, [self = shared_from_this()] {
        self->flush_posted = false;
        self->flush();
    });
}

void Client::Impl::flush() {
    if (write_in_flight || state != State::connected || write_buffer.empty()) return;
    unflushed = 0;
    error_code ec;
    // Over TLS every write goes through the stream's engine, asynchronously.
    std::size_t written = tls ? 0 : socket.write_some(asio::buffer(write_buffer), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
        written = 0;
    }
    if (ec) {
        // The reader sees the closed socket and tears down.
        write_error = "write failed: " + ec.message();
        socket.close(ec);
        return;
    }
    if (written == write_buffer.size()) {
        write_buffer.clear();
        return;
    }
    write_buffer.erase(0, written);
    write_in_flight = true;
    writing_buffer.swap(write_buffer);
    write_buffer.clear();
    auto on_written = [self = shared_from_this(), gen = generation, stream = tls](error_code ec, std::size_t) {
                          (void)stream;
                          self->write_in_flight = false;
                          self->writing_buffer.clear();
                          if (ec && gen == self->generation) {
                              // The reader sees the closed socket and tears down.
                              self->write_error = "write failed: " + ec.message();
                              error_code ignored;
                              self->socket.close(ignored);
                              return;
                          }
                          // Either more was queued meanwhile, or this was the
                          // last write of an old connection and a new one waits.
                          self->flush();
                      };
    if (tls)
        asio::async_write(*tls, asio::buffer(writing_buffer), std::move(on_written));
    else
        asio::async_write(socket, asio::buffer(writing_buffer), std::move(on_written));
}

asio::awaitable<Result> Client::Impl::call(std::shared_ptr<Impl> self, FormattedCommand request,
                                           milliseconds deadline, bool asking) {
    // Clamped so time point arithmetic cannot overflow on "forever" deadlines.
    deadline = std::min(deadline, max_deadline);
    ++self->counters.calls;
    if (auto refused = self->refuse(deadline)) {
        ++self->counters.failures;
        co_return std::move(*refused);
    }
    if (!request.ok()) {
        ++self->counters.failures;
        co_return failure_result(Failure::protocol, "cannot format an empty command");
    }
    PendingCall call(*self);
    call.wake.expires_after(deadline);
    self->enqueue(request, call, asking);
    co_await call.wake.async_wait(use_tuple);
    if (!call.done) {
        // Deadline (or cancellation by the caller): the slot stays queued so
        // FIFO matching stays right; PendingCall's destructor nulls it.
        ++self->counters.failures;
        co_return failure_result(Failure::timeout,
                                 self->url_text + ": no reply within " + describe(deadline));
    }
    if (call.result.failure != Failure::none) ++self->counters.failures;
    co_return std::move(call.result);
}

// ---- Connection lifecycle ----------------------------------------------------------

asio::awaitable<void> Client::Impl::run(std::shared_ptr<Impl> self) {
    (void)self;  // keeps this Impl alive while the loop runs
    milliseconds backoff = options.backoff_min;
    bool connected_before = false;
    while (state != State::stopped) {
        state = State::connecting;
        std::string error = co_await connect_once();
        if (state == State::stopped) break;
        if (!error.empty()) {
            if (cause == Cause::auth) ++counters.auth_failures;
            if (cause == Cause::tls) ++counters.tls_failures;
            if (sink)
                sink->connect_error(cause == Cause::auth ? "auth" : cause == Cause::tls ? "tls" : "connect",
                                    error);
            fail_all(Failure::disconnected, error);
            co_await back_off(backoff);
            backoff = std::min(backoff * 2, options.backoff_max);
            continue;
        }
        if (connected_before) ++counters.reconnects;
        connected_before = true;
        const auto connected_at = steady_clock::now();
        state = State::connected;
        write_error.clear();
        error_code ignored_error;
        socket.non_blocking(true, ignored_error);  // flush() writes without blocking
        flush();  // requests queued while connecting

        auto [failure, why] = co_await read_replies();
        if (state == State::stopped) break;  // stop() already failed the calls
        ++generation;
        error_code ignored;
        socket.close(ignored);
        state = State::connecting;
        fail_all(failure, url_text + ": " + why);
        if (steady_clock::now() - connected_at >= healthy_connection_age) {
            backoff = options.backoff_min;
        } else {
            // Died young (e.g. a server that accepts and drops): back off so
            // we do not spin on it.
            co_await back_off(backoff);
            backoff = std::min(backoff * 2, options.backoff_max);
        }
    }
    // stop() may have raced a connection attempt that went on to succeed.
    error_code ignored;
    socket.close(ignored);
}

asio::awaitable<void> Client::Impl::back_off(milliseconds delay) {
    if (state == State::stopped) co_return;
    state = State::backing_off;
    next_attempt_at = steady_clock::now() + delay;
    backoff_timer.expires_at(next_attempt_at);
    co_await backoff_timer.async_wait(use_tuple);
}

asio::awaitable<std::string> Client::Impl::connect_once() {
    const std::uint64_t gen = ++generation;
    attempt_timed_out = false;
    cause = Cause::connect;
    reader = make_reader();
    // One watchdog bounds the whole attempt, handshake included, by closing
    // the socket: every pending operation then completes with an error.
    connect_timer.expires_after(options.connect_timeout);
    connect_timer.async_wait([self = shared_from_this(), gen](error_code ec) {
        if (ec || gen != self->generation || self->state != State::connecting) return;
        self->attempt_timed_out = true;
        self->resolver.cancel();
        error_code ignored;
        self->socket.close(ignored);
    });
    std::string error = co_await connect_and_handshake();
    connect_timer.cancel();
    if (error.empty()) co_return error;
    if (attempt_timed_out) error = "connect timed out after " + describe(options.connect_timeout);
    co_return url_text + ": " + error;
}

asio::awaitable<std::string> Client::Impl::connect_and_handshake() {
    using Endpoint = asio::generic::stream_protocol::endpoint;
    std::vector<Endpoint> endpoints;
    if (url.unix_socket) {
        try {
            endpoints.emplace_back(asio::local::stream_protocol::endpoint(url.path));
        } catch (const std::exception& e) {
            co_return "bad socket path: " + std::string(e.what());
        }
    } else {
        error_code ec;
        auto address = asio::ip::make_address(url.host, ec);
        if (!ec) {
            endpoints.emplace_back(asio::ip::tcp::endpoint(address, url.port));
        } else {
            auto [resolve_error, results] =
                co_await resolver.async_resolve(url.host, std::to_string(url.port), use_tuple);
            if (resolve_error) co_return "cannot resolve " + url.host + ": " + resolve_error.message();
            for (const auto& entry : results) endpoints.emplace_back(entry.endpoint());
        }
    }

    error_code connect_error = asio::error::host_not_found;
    bool connected = false;
    for (const Endpoint& endpoint : endpoints) {
        if (attempt_timed_out || state == State::stopped) break;
        error_code ignored;
        socket.close(ignored);
        socket.open(endpoint.protocol(), connect_error);
        if (connect_error) continue;
        std::tie(connect_error) = co_await socket.async_connect(endpoint, use_tuple);
        if (!connect_error) {
            connected = true;
            break;
        }
    }
    if (!connected) co_return "connect failed: " + connect_error.message();
    if (!url.unix_socket) {
        // Pipelined small requests must not wait for Nagle.
        error_code ignored;
        socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    tls.reset();
    if (url.tls.enabled) {
        std::string tls_error = co_await tls_handshake();
        if (!tls_error.empty()) co_return tls_error;
    }

    // AUTH and SELECT go first, before any queued call is written.
    std::vector<std::vector<std::string>> handshake;
    if (!url.password.empty()) {
        if (url.username.empty())
            handshake.push_back({"AUTH", url.password});
        else
            handshake.push_back({"AUTH", url.username, url.password});
    }
    if (url.db != 0) handshake.push_back({"SELECT", std::to_string(url.db)});
    if (handshake.empty()) co_return std::string();

    std::string request;
    for (const auto& command : handshake) {
        FormattedCommand formatted = format_command(command);
        if (!formatted.ok()) co_return "cannot format handshake";
        request.append(formatted.data, static_cast<std::size_t>(formatted.length));
    }
    error_code write_error_code;
    if (tls) {
        auto [tls_error, tls_written] = co_await asio::async_write(*tls, asio::buffer(request), use_tuple);
        (void)tls_written;
        write_error_code = tls_error;
    } else {
        auto [plain_error, plain_written] = co_await asio::async_write(socket, asio::buffer(request), use_tuple);
        (void)plain_written;
        write_error_code = plain_error;
    }
    if (write_error_code) co_return "handshake write failed: " + write_error_code.message();

    for (std::size_t answered = 0; answered < handshake.size();) {
        void* object = nullptr;
        if (redisReaderGetReply(reader.get(), &object) != REDIS_OK)
            co_return "protocol error in handshake: " + std::string(reader->errstr);
        if (!object) {
            if (error_code ec = co_await read_more()) co_return "handshake read failed: " + ec.message();
            continue;
        }
        std::unique_ptr<Reply> reply(static_cast<Reply*>(object));
        // Redis' error texts do not echo the password.
        if (reply->is_error()) {
            if (handshake[answered][0] == "AUTH") cause = Cause::auth;
            co_return handshake[answered][0] + " failed: " + reply->str;
        }
        ++answered;
    }
    co_return std::string();
}

asio::awaitable<std::string> Client::Impl::tls_handshake() {
    if (!tls_context) {
        cause = Cause::tls;
        co_return "TLS setup failed: " + tls_setup_error;
    }
    tls = std::make_shared<TlsStream>(socket, *tls_context);
    const std::string& name = url.tls.server_name.empty() ? url.host : url.tls.server_name;
    // SNI, and the name the certificate must carry (an IP address is
    // checked against the certificate's IP entries).
    SSL_set_tlsext_host_name(tls->native_handle(), name.c_str());
    tls->set_verify_callback(asio::ssl::host_name_verification(name));
    auto [handshake_error] = co_await tls->async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (!handshake_error) co_return std::string();
    cause = Cause::tls;
    std::string why = handshake_error.message();
    long verify = SSL_get_verify_result(tls->native_handle());
    if (verify != X509_V_OK) why += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
    co_return "TLS handshake failed: " + why;
}

asio::awaitable<std::pair<error_code, std::size_t>> Client::Impl::read_some() {
    if (tls) {
        auto [ec, bytes] = co_await tls->async_read_some(asio::buffer(read_buffer), use_tuple);
        co_return std::pair(ec, bytes);
    }
    auto [ec, bytes] = co_await socket.async_read_some(asio::buffer(read_buffer), use_tuple);
    co_return std::pair(ec, bytes);
}

asio::awaitable<error_code> Client::Impl::read_more() {
    auto [ec, bytes] = co_await read_some();
    if (ec) co_return ec;
    if (redisReaderFeed(reader.get(), read_buffer.data(), bytes) != REDIS_OK)
        co_return asio::error::no_memory;
    co_return error_code();
}

asio::awaitable<std::pair<Failure, std::string>> Client::Impl::read_replies() {
    for (;;) {
        for (;;) {
            void* object = nullptr;
            if (redisReaderGetReply(reader.get(), &object) != REDIS_OK)
                co_return std::pair(Failure::protocol, "protocol error: " + std::string(reader->errstr));
            if (!object) break;
            std::unique_ptr<Reply> reply(static_cast<Reply*>(object));
            if (pending.empty()) {
                // E.g. "-ERR max number of clients reached" sent on accept.
                co_return std::pair(Failure::protocol, "reply without a request: " +
                                                           (reply->str.empty() ? "(not a string)" : reply->str));
            }
            PendingCall* call = pending.front();
            pending.pop_front();
            ++front_seq;
            if (call) complete(*call, std::move(*reply));  // else: its caller gave up
        }
        auto [ec, bytes] = co_await read_some();
        if (ec) {
            if (!write_error.empty()) co_return std::pair(Failure::disconnected, write_error);
            if (ec == asio::error::eof) co_return std::pair(Failure::disconnected, std::string("connection closed by server"));
            co_return std::pair(Failure::disconnected, "read failed: " + ec.message());
        }
        if (redisReaderFeed(reader.get(), read_buffer.data(), bytes) != REDIS_OK)
            co_return std::pair(Failure::protocol, "protocol error: " + std::string(reader->errstr));
        if (reader->len - reader->pos > max_unparsed_bytes)
            co_return std::pair(Failure::protocol, std::string("reply larger than the client's limit"));
    }
}

void Client::Impl::stop() {
    if (state == State::stopped) return;
    state = State::stopped;
    ++generation;
    error_code ignored;
    socket.close(ignored);
    resolver.cancel();
    backoff_timer.cancel();
    connect_timer.cancel();
    fail_all(Failure::disconnected, url_text + ": client stopped");
}

// ---- Public surface -----------------------------------------------------------------

Script::Script(std::string source_in) : source(std::move(source_in)) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_length = 0;
    if (EVP_Digest(source.data(), source.size(), digest, &digest_length, EVP_sha1(), nullptr) != 1)
        throw std::runtime_error("SHA1 of Lua script failed");
    static const char hex[] = "0123456789abcdef";
    sha1.reserve(digest_length * 2);
    for (unsigned int i = 0; i < digest_length; ++i) {
        sha1 += hex[digest[i] >> 4];
        sha1 += hex[digest[i] & 15];
    }
}

Client::Client(asio::any_io_executor ex, Url url, ClientOptions options)
    : impl_(std::make_shared<Impl>(ex, url, options)) {
    if (url.topology != Url::Topology::single) router_ = make_router(ex, std::move(url), options);
}

Client::~Client() {
    impl_->stop();
    if (router_) router_stop(*router_);
}

void Client::start() {
    if (router_) {
        router_start(*router_);
        return;
    }
    if (impl_->state != Impl::State::idle) return;
    impl_->state = Impl::State::connecting;
    asio::co_spawn(impl_->executor, impl_->run(impl_), asio::detached);
}

void Client::stop() {
    impl_->stop();
    if (router_) router_stop(*router_);
}

void Client::set_metrics(metrics_sink::Sink* sink) {
    impl_->sink = sink;
    if (router_) router_set_metrics(*router_, sink);
}

asio::awaitable<Result> Client::command_asking(std::vector<std::string> args, milliseconds deadline) {
    return Impl::call(impl_, format_command(args), deadline, true);
}

// Formats now (the arguments are not needed after this) and returns the
// waiting coroutine, so a command costs one coroutine frame.
asio::awaitable<Result> Client::command(std::vector<std::string> args, milliseconds deadline) {
    if (router_) return router_command(router_, std::move(args), deadline);
    return Impl::call(impl_, format_command(args), deadline);
}

asio::awaitable<Result> Client::eval(const Script& script, std::vector<std::string> keys,
                                     std::vector<std::string> args, milliseconds deadline) {
    if (router_) {
        std::shared_ptr<Router> router = router_;
        co_return co_await router_eval(router, script, std::move(keys), std::move(args), deadline);
    }
    const auto started = steady_clock::now();
    std::shared_ptr<Impl> impl = impl_;
    std::vector<std::string> argv;
    argv.reserve(3 + keys.size() + args.size());
    argv.push_back("EVALSHA");
    argv.push_back(script.sha1);
    argv.push_back(std::to_string(keys.size()));
    for (auto& key : keys) argv.push_back(std::move(key));
    for (auto& arg : args) argv.push_back(std::move(arg));

    Result result = co_await Impl::call(impl, format_command(argv), deadline);
    if (result.failure != Failure::none || !result.reply.is_error() ||
        !result.reply.str.starts_with("NOSCRIPT"))
        co_return result;

    // The server lost its script cache (restart, SCRIPT FLUSH, failover):
    // EVAL runs the script and caches it again, within what is left.
    auto left = deadline - std::chrono::duration_cast<milliseconds>(steady_clock::now() - started);
    argv[0] = "EVAL";
    argv[1] = script.source;
    co_return co_await Impl::call(impl, format_command(argv), left);
}

bool Client::connected() const {
    if (router_) return router_connected(*router_);
    return impl_->state == Impl::State::connected;
}

ClientStats Client::stats() const {
    if (router_) return router_stats(*router_);
    ClientStats stats = impl_->counters;
    stats.connected = connected();
    return stats;
}

const Url& Client::url() const { return impl_->url; }

Reply command_sync(const Url& url, const std::vector<std::string>& args, milliseconds timeout) {
    asio::io_context context;
    ClientOptions options;
    options.connect_timeout = timeout;
    // The first failed attempt fails the call, so no retry is ever awaited.
    options.backoff_min = options.backoff_max = timeout;
    Client client(context.get_executor(), url, options);
    client.start();
    std::optional<Result> result;
    std::exception_ptr error;
    asio::co_spawn(context, client.command(args, timeout),
                   [&](std::exception_ptr e, Result r) {
                       error = e;
                       result = std::move(r);
                       client.stop();
                   });
    context.run();
    if (error) std::rethrow_exception(error);
    if (!result) throw std::runtime_error(url.to_string() + ": command did not complete");
    if (result->failure != Failure::none) throw std::runtime_error(result->error);
    return std::move(result->reply);
}

}  // namespace proto::redis
