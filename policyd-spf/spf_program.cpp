// policyd-spf Program (see spf_program.h).
#include "spf_program.h"

#include "daemon/log.h"
#include "libspf2_checker.h"

namespace spf {

const proto::daemon::ProgramInfo& SpfProgram::info() const {
    static const proto::daemon::ProgramInfo info{
        "policyd-spf", "RFC 7208 SPF policy service for Postfix", "inet:127.0.0.1:10034", false,
        ""};
    return info;
}

std::shared_ptr<proto::policy::Decider> SpfProgram::configure(proto::config::Reader& reader,
                                                              proto::daemon::Runtime& rt) {
    Options options = read_options(reader);
    EngineOptions engine_options = read_engine_options(reader);
    if (rt.check_only) return std::make_shared<SpfDecider>(options, nullptr, rt.metrics, rt.clock);
    // The decider owns the engine; the weak pointer lets a reload reuse it
    // (threads and cache survive) while the old decider finishes.
    auto engine = engine_.lock();
    if (!engine) {
        Libspf2Options lo;
        lo.cache_entries = engine_options.dns_cache_entries;
        engine = std::make_shared<Engine>(std::make_shared<Libspf2Checker>(lo), engine_options);
        engine_ = engine;
    }
    return std::make_shared<SpfDecider>(options, engine, rt.metrics, rt.clock);
}

}  // namespace spf
