// smtpd_sasl_type = cyrus: Cyrus SASL's libsasl2, as Postfix's
// xsasl_cyrus_server.c uses it (read, not copied): sasl_server_init with the
// application name (smtpd_sasl_path, so smtpd.conf decides pwcheck_method,
// saslauthd_path, mech_list, auxprop...), sasl_set_path for
// cyrus_sasl_config_path, one sasl_conn_t per AUTH with the peer's
// "addr;port" pairs, security properties with no security layer (max_ssf 0),
// SASL_NOUSER reported as SASL_BADAUTH, and FAIL/NOMEM/TRYAGAIN/UNAVAIL as
// temporary failures.
//
// Threads: libsasl2 keeps global state and its plugins (saslauthd's client,
// sasldb) block, so every sasl_* call, sasl_server_init and sasl_dispose
// included, runs on one worker thread owned by the library object; the
// caller's coroutine resumes on its own executor. A call that does not
// return within Settings::timeout gives the caller a temporary failure; the
// exchange is then unusable and later steps fail at once.
//
// Limits: libsasl2 is initialised once per process and never re-initialised
// (sasl_done and a second sasl_server_init are not reliable across plugins),
// so a second backend must name the same application and config path, and
// edits of smtpd.conf need a restart. SASL security layers are never
// negotiated (as Postfix). With cyrus_sasl_config_path empty, Debian's
// Postfix location /etc/postfix/sasl is used when it holds APP.conf, else
// libsasl2's built-in search path.
#include <sasl/sasl.h>
#include <sasl/saslutil.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>

#include "maillog.h"
#include "sasl/backends.h"
#include "sasl/offload.h"

namespace mta::sasl {

namespace asio = boost::asio;

namespace {

// libsasl2's diagnostics, graded as Postfix's xsasl_cyrus_log does. Called
// on the worker only.
int log_callback(void*, int priority, const char* message) {
    if (message == nullptr) return SASL_OK;
    switch (priority) {
        case SASL_LOG_ERR:
        case SASL_LOG_FAIL:
            maillog::line("smtpd", "warning: SASL authentication failure: " + maillog::printable(message));
            break;
        case SASL_LOG_WARN:
            maillog::line("smtpd", "warning: SASL authentication problem: " + maillog::printable(message));
            break;
        case SASL_LOG_NOTE:
            maillog::line("smtpd", "info: SASL authentication info: " + maillog::printable(message));
            break;
        default:
            break;  // debug and trace levels may echo protocol data
    }
    return SASL_OK;
}

using callback_fn = int (*)();
sasl_callback_t global_callbacks[] = {
    {SASL_CB_LOG, reinterpret_cast<callback_fn>(reinterpret_cast<void (*)()>(&log_callback)), nullptr},
    {SASL_CB_LIST_END, nullptr, nullptr},
};

unsigned security_flags(const SecurityOptions& o) {
    unsigned flags = 0;
    if (o.noplaintext) flags |= SASL_SEC_NOPLAINTEXT;
    if (o.noactive) flags |= SASL_SEC_NOACTIVE;
    if (o.nodictionary) flags |= SASL_SEC_NODICTIONARY;
    if (o.forward_secrecy) flags |= SASL_SEC_FORWARD_SECRECY;
    if (o.noanonymous) flags |= SASL_SEC_NOANONYMOUS;
    if (o.mutual_auth) flags |= SASL_SEC_MUTUAL_AUTH;
    return flags;
}

bool readable(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

// The process-wide library state and its worker thread.
class Library {
public:
    static std::shared_ptr<Library> acquire(const std::string& application, const std::string& config_path) {
        static std::mutex mutex;
        static std::shared_ptr<Library> instance;
        std::lock_guard lock(mutex);
        if (instance) {
            if (instance->application_ != application || instance->config_path_ != config_path)
                throw std::runtime_error(
                    "SASL: libsasl2 is already initialised for application \"" + instance->application_ +
                    "\" with cyrus_sasl_config_path \"" + instance->config_path_ +
                    "\"; changing smtpd_sasl_path or cyrus_sasl_config_path needs a restart");
            return instance;
        }
        auto library = std::shared_ptr<Library>(new Library(application, config_path));
        library->init();
        instance = library;
        return instance;
    }

    asio::any_io_executor worker() { return pool_.get_executor(); }

    // Run f on the worker and wait for it (configuration time only); after
    // the timeout, nullopt (f still runs, later: it must own its data).
    template <class F>
    auto run_sync(F f, std::chrono::milliseconds timeout) -> std::optional<decltype(f())> {
        auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
        auto future = task->get_future();
        asio::post(pool_, [task] { (*task)(); });
        if (future.wait_for(timeout) != std::future_status::ready) return std::nullopt;
        return future.get();
    }

    // What sasl_listmech offers for these properties. The answer depends
    // only on smtpd.conf, read once per process, so it is kept.
    std::vector<std::string> mechanisms(const std::string& service, const std::string& realm, unsigned flags,
                                        std::chrono::milliseconds timeout) {
        std::string key = service + "\n" + realm + "\n" + std::to_string(flags);
        {
            std::lock_guard lock(cache_mutex_);
            if (auto it = cache_.find(key); it != cache_.end()) return it->second;
        }
        auto listed = run_sync(
            [service, realm, flags]() -> std::pair<std::string, std::string> {
                sasl_conn_t* conn = nullptr;
                int rc = sasl_server_new(service.c_str(), nullptr, realm.empty() ? nullptr : realm.c_str(), nullptr,
                                         nullptr, nullptr, 0, &conn);
                if (rc != SASL_OK)
                    return {std::string("SASL per-connection initialisation: ") + sasl_errstring(rc, nullptr, nullptr),
                            {}};
                sasl_security_properties_t props{};
                props.security_flags = flags;
                rc = sasl_setprop(conn, SASL_SEC_PROPS, &props);
                const char* result = nullptr;
                int count = 0;
                if (rc == SASL_OK) rc = sasl_listmech(conn, nullptr, "", " ", "", &result, nullptr, &count);
                std::string text = (rc == SASL_OK && result != nullptr) ? std::string(result) : std::string();
                sasl_dispose(&conn);
                return {{}, text};
            },
            timeout);
        if (!listed) throw std::runtime_error("SASL: libsasl2 is busy (a password check is stuck?); try again");
        if (!listed->first.empty()) throw std::runtime_error(listed->first);
        std::vector<std::string> names;
        const std::string& text = listed->second;
        std::size_t pos = 0;
        while (pos < text.size()) {
            auto end = text.find(' ', pos);
            if (end == std::string::npos) end = text.size();
            if (end > pos) names.push_back(text.substr(pos, end - pos));
            pos = end + 1;
        }
        std::lock_guard lock(cache_mutex_);
        cache_[key] = names;
        return names;
    }

private:
    Library(std::string application, std::string config_path)
        : application_(std::move(application)), config_path_(std::move(config_path)) {}

    void init() {
        if (application_.empty() || application_.find('/') != std::string::npos)
            throw std::runtime_error("smtpd_sasl_path: \"" + application_ +
                                     "\" is not a Cyrus SASL application name (such as smtpd)");
        path_ = config_path_;
        if (!path_.empty()) {
            // libsasl2 silently runs without a config file it cannot read;
            // Postfix's operators expect to hear about it.
            bool found = false;
            std::size_t pos = 0;
            while (pos <= path_.size()) {
                auto end = path_.find(':', pos);
                if (end == std::string::npos) end = path_.size();
                if (readable(path_.substr(pos, end - pos) + "/" + application_ + ".conf")) found = true;
                pos = end + 1;
            }
            if (!found)
                throw std::runtime_error("cyrus_sasl_config_path: no readable " + application_ + ".conf in " +
                                         path_);
        } else if (readable("/etc/postfix/sasl/" + application_ + ".conf")) {
            path_ = "/etc/postfix/sasl";
        }
        auto error = run_sync([this]() -> std::string {
            int major = 0;
            sasl_version_info(nullptr, nullptr, &major, nullptr, nullptr, nullptr);
            if (major != SASL_VERSION_MAJOR)
                return "libsasl2 run-time major version " + std::to_string(major) + " differs from " +
                       std::to_string(SASL_VERSION_MAJOR);
            if (!path_.empty() && sasl_set_path(SASL_PATH_TYPE_CONFIG, path_.data()) != SASL_OK)
                return "cannot set the Cyrus SASL configuration path \"" + path_ + "\"";
            int rc = sasl_server_init(global_callbacks, application_.c_str());
            if (rc != SASL_OK) return std::string("per-process initialisation failed: ") + sasl_errstring(rc, nullptr, nullptr);
            return {};
        }, std::chrono::hours(1));
        if (!error) throw std::runtime_error("SASL: libsasl2 initialisation did not finish");
        if (!error->empty()) throw std::runtime_error("SASL: " + *error);
    }

    std::string application_, config_path_;
    std::string path_;  // handed to sasl_set_path, which keeps the pointer
    std::mutex cache_mutex_;
    std::map<std::string, std::vector<std::string>> cache_;
    asio::thread_pool pool_{1};
};

// Worker-side state of one exchange; only the worker touches conn.
struct Conversation {
    sasl_conn_t* conn = nullptr;
    std::atomic<bool> broken{false};  // a call timed out: the conn may still be in use
};

std::string address_port(const std::string& address, const std::string& port) {
    if (address.empty() || port.empty()) return {};
    return address + ";" + port;
}

class CyrusAuthentication final : public Authentication {
public:
    CyrusAuthentication(std::shared_ptr<Library> library, const Settings& settings, const Peer& peer,
                        unsigned flags)
        : library_(std::move(library)),
          service_(settings.service),
          realm_(settings.local_domain),
          local_(address_port(peer.server_address, peer.server_port)),
          remote_(address_port(peer.client_address, peer.client_port)),
          flags_(flags),
          timeout_(settings.timeout),
          state_(std::make_shared<Conversation>()) {}

    ~CyrusAuthentication() override {
        // sasl_dispose on the worker, after any call still running there.
        asio::post(library_->worker(), [state = state_] {
            if (state->conn) sasl_dispose(&state->conn);
        });
    }

private:
    // A plain function (not a coroutine): the job runs on the worker, the
    // result (nullopt after the deadline) comes back on home.
    template <class F>
    auto submit(asio::any_io_executor home, F job) {
        auto guarded = [state = state_, job = std::move(job)]() mutable -> std::optional<Step> {
            if (state->broken) return Step{Step::Status::temporary, {}, {}, "earlier libsasl2 call timed out"};
            return job();
        };
        return offload(library_->worker(), std::move(home), timeout_, std::optional<Step>(), std::move(guarded));
    }

    Step finish(std::optional<Step> step) {
        if (step) return std::move(*step);
        // The call is still running on the worker: this exchange is over.
        state_->broken = true;
        return Step{Step::Status::temporary, {}, {},
                    "no answer from libsasl2 within " + std::to_string(timeout_.count()) +
                        "ms (is the password backend, such as saslauthd, stuck?)"};
    }

public:
    asio::awaitable<Step> start(std::string mechanism, std::optional<std::string> initial_response) override {
        if (started_) co_return Step{Step::Status::failure, {}, {}, "AUTH exchange already started"};
        started_ = true;
        auto home = co_await asio::this_coro::executor;
        auto job = [state = state_, service = service_, realm = realm_, local = local_, remote = remote_,
                    flags = flags_, mechanism = std::move(mechanism),
                    initial = std::move(initial_response)]() -> Step {
            if (!state->conn) {
                int rc = sasl_server_new(service.c_str(), nullptr, realm.empty() ? nullptr : realm.c_str(),
                                         local.empty() ? nullptr : local.c_str(),
                                         remote.empty() ? nullptr : remote.c_str(), nullptr, 0, &state->conn);
                if (rc != SASL_OK) {
                    state->conn = nullptr;
                    return Step{Step::Status::temporary, {}, {},
                                std::string("SASL per-connection initialisation: ") +
                                    sasl_errstring(rc, nullptr, nullptr)};
                }
                sasl_security_properties_t props{};
                props.min_ssf = 0;
                props.max_ssf = 0;  // no SASL security layer (as Postfix)
                props.security_flags = flags;
                rc = sasl_setprop(state->conn, SASL_SEC_PROPS, &props);
                if (rc != SASL_OK)
                    return Step{Step::Status::temporary, {}, {},
                                std::string("SASL per-connection security setup: ") +
                                    sasl_errstring(rc, nullptr, nullptr)};
            }
            const char* out = nullptr;
            unsigned out_length = 0;
            int rc = sasl_server_start(state->conn, mechanism.c_str(), initial ? initial->data() : nullptr,
                                       initial ? static_cast<unsigned>(initial->size()) : 0, &out, &out_length);
            return outcome(*state, rc, out, out_length);
        };
        auto op = submit(home, std::move(job));
        auto step = co_await std::move(op);
        co_return finish(std::move(step));
    }

    asio::awaitable<Step> next(std::string response) override {
        if (!started_) co_return Step{Step::Status::failure, {}, {}, "AUTH exchange not started"};
        if (state_->broken) co_return Step{Step::Status::temporary, {}, {}, "earlier libsasl2 call timed out"};
        auto home = co_await asio::this_coro::executor;
        auto job = [state = state_, response = std::move(response)]() -> Step {
            if (!state->conn) return Step{Step::Status::failure, {}, {}, "no SASL exchange in progress"};
            const char* out = nullptr;
            unsigned out_length = 0;
            int rc = sasl_server_step(state->conn, response.data(), static_cast<unsigned>(response.size()), &out,
                                      &out_length);
            return outcome(*state, rc, out, out_length);
        };
        auto op = submit(home, std::move(job));
        auto step = co_await std::move(op);
        co_return finish(std::move(step));
    }

private:
    static Step outcome(Conversation& state, int rc, const char* out, unsigned out_length) {
        if (rc == SASL_CONTINUE)
            return Step{Step::Status::challenge, out ? std::string(out, out_length) : std::string(), {}, {}};
        if (rc == SASL_OK) {
            const void* name = nullptr;
            if (sasl_getprop(state.conn, SASL_USERNAME, &name) != SASL_OK || name == nullptr)
                return Step{Step::Status::failure, {}, {}, "libsasl2 reported success without a user name"};
            return Step{Step::Status::success, {}, printable(static_cast<const char*>(name)), {}};
        }
        // Privacy: do not tell "no such user" from "wrong password" (as Postfix).
        if (rc == SASL_NOUSER) rc = SASL_BADAUTH;
        std::string reason = sasl_errstring(rc, nullptr, nullptr);
        const char* detail = sasl_errdetail(state.conn);
        if (detail != nullptr && *detail != 0 && rc != SASL_BADAUTH) reason += " (" + printable(detail) + ")";
        switch (rc) {
            case SASL_FAIL:
            case SASL_NOMEM:
            case SASL_TRYAGAIN:
            case SASL_UNAVAIL:
                return Step{Step::Status::temporary, {}, {}, reason};
            default:
                return Step{Step::Status::failure, {}, {}, reason};
        }
    }

    std::shared_ptr<Library> library_;
    std::string service_, realm_, local_, remote_;
    unsigned flags_;
    std::chrono::milliseconds timeout_;
    std::shared_ptr<Conversation> state_;
    bool started_ = false;
};

class CyrusBackend final : public Backend {
public:
    CyrusBackend(const Settings& settings, asio::any_io_executor)
        : settings_(settings),
          library_(Library::acquire(settings.path, settings.cyrus_config_path)),
          flags_(security_flags(parse_security_options(settings.security_options))),
          tls_flags_(security_flags(parse_security_options(tls_options_text(settings)))) {
        // sasl_listmech on a throwaway conn: what EHLO advertises (mech_list
        // from smtpd.conf, filtered by the options).
        mechanisms_ = library_->mechanisms(settings.service, settings.local_domain, flags_, settings.timeout);
        tls_mechanisms_ = library_->mechanisms(settings.service, settings.local_domain, tls_flags_, settings.timeout);
    }

    std::vector<std::string> mechanisms(bool tls) const override { return tls ? tls_mechanisms_ : mechanisms_; }

    std::unique_ptr<Authentication> begin(const Peer& peer) override {
        return std::make_unique<CyrusAuthentication>(library_, settings_, peer, peer.tls ? tls_flags_ : flags_);
    }

private:
    Settings settings_;
    std::shared_ptr<Library> library_;
    unsigned flags_, tls_flags_;
    std::vector<std::string> mechanisms_, tls_mechanisms_;
};

}  // namespace

std::shared_ptr<Backend> make_cyrus_backend(const Settings& settings, asio::any_io_executor io) {
    return std::make_shared<CyrusBackend>(settings, std::move(io));
}

}  // namespace mta::sasl
