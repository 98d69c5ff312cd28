// The one lifecycle every program shares, written once:
//   parse flags and config -> validate -> bind -> serve
//   SIGHUP: re-read config and lists; an invalid one is refused, the old kept
//   SIGTERM/SIGINT: stop accepting, answer what is in flight, exit 0
//
// A program supplies a Program: its name and defaults, and configure(), which
// reads its own keys and returns the decider for them. Thin main.cpp files
// just call run(). A program that speaks another protocol (LMTP) supplies its
// own Service instead of a decider and keeps the same lifecycle.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "daemon/clock.h"
#include "daemon/config.h"
#include "policy/decider.h"
#include "policy/server.h"
#include "redis/client.h"

namespace boost::asio {
class io_context;
}

namespace proto::metrics {
class Registry;
}

namespace proto::daemon {

struct ProgramInfo {
    std::string name;            // "policyd-greylist"
    std::string summary;         // one line for --help
    std::string default_listen;  // "inet:127.0.0.1:10023"
    bool uses_redis = true;
    std::string commands_help;   // operator subcommands, for --help ("" if none)
    // The program reads --config itself, in its own language (mta-core:
    // Postfix's main.cf); the common JSON keys then come from flags only.
    bool own_config = false;
    // Program-specific flags without a value ("--print-config"), handed to
    // command() as its first argument.
    std::vector<std::string> command_flags;
    // false for a program with its own Service and no decider: no --milter.
    bool serves_milter = true;
};

// What configure() and commands get to work with.
struct Runtime {
    boost::asio::io_context& io;
    metrics::Registry& metrics;
    const Clock& clock;
    redis::Client* redis;  // null if the program does not use Redis, or in a command
    redis::Url redis_url;
    std::chrono::milliseconds redis_timeout;  // per-call deadline for deciders
    bool check_only = false;                  // --check-config: validate, touch nothing
    std::string config_path;                  // --config, for programs with own_config
    std::string run_as;  // set by configure(): the user to run as after binding
};

// A server for a protocol other than the policy protocol. run() still owns
// flags, config, metrics, privileges, SIGHUP and SIGTERM; the service owns its
// listeners and connections, with the same contract as policy::Server.
class Service {
public:
    virtual ~Service() = default;
    // Bind now; throws std::system_error naming the address.
    virtual void listen(const net::Endpoint& where) = 0;
    // Common options changed by a reload (not unix_mode).
    virtual void update_options(const policy::ServerOptions& options) = 0;
    // Stop accepting, finish work in flight, call on_drained once (at the
    // latest after timeout, closing the rest hard).
    virtual void drain(std::chrono::milliseconds timeout, std::function<void()> on_drained) = 0;
};

class Program {
public:
    virtual ~Program() = default;
    virtual const ProgramInfo& info() const = 0;

    // Read this program's keys (common keys are already consumed) and load the
    // files they name. Throw config::ConfigError on any problem. Runs at start
    // and at every SIGHUP; must not disturb the decider that is serving.
    virtual std::shared_ptr<policy::Decider> configure(config::Reader& reader, Runtime& rt) = 0;

    // Operator subcommand (the positional arguments), run after configure()
    // with rt.redis null; use redis::command_sync(rt.redis_url, ...). Returns
    // the exit status.
    virtual int command(const std::vector<std::string>& args, Runtime& rt);

    // Serve another protocol: called once, after the first configure(), with
    // the common server options. The default (nullptr) serves the policy
    // protocol with configure()'s decider; a program that returns a service
    // may return a null decider from configure().
    virtual std::unique_ptr<Service> make_service(Runtime& rt,
                                                  const policy::ServerOptions& options);

    // The configuration built by the last configure() passed every check
    // (including unknown keys) and takes effect now: at start and after each
    // accepted SIGHUP. Programs without a decider switch their state here.
    virtual void commit() {}
};

// Parse argv, run the program's lifecycle, return the exit status.
int run(int argc, char** argv, Program& program);

}  // namespace proto::daemon
