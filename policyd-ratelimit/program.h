// policyd-ratelimit as a proto::daemon::Program: its configuration keys (each
// read once, with default and bounds), the decider they make, and the
// operator command `show|reset RULE KEY...`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "daemon/program.h"
#include "decider.h"

namespace ratelimit {

// Read the rules and the other keys of this program, load the overrides
// file. Throws proto::config::ConfigError naming the key.
std::shared_ptr<Settings> read_settings(proto::config::Reader& reader);

class RateLimitProgram final : public proto::daemon::Program {
public:
    RateLimitProgram();
    const proto::daemon::ProgramInfo& info() const override { return info_; }
    std::shared_ptr<proto::policy::Decider> configure(proto::config::Reader& reader,
                                                      proto::daemon::Runtime& rt) override;
    int command(const std::vector<std::string>& args, proto::daemon::Runtime& rt) override;

private:
    proto::daemon::ProgramInfo info_;
    std::shared_ptr<Settings> settings_;  // the last configuration read
};

}  // namespace ratelimit
