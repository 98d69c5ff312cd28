// policyd-greylist as a proto::daemon::Program: reads the settings, builds the
// decider on the shared Redis client, and runs the operator commands
//   show|allow|delete CLIENT_ADDRESS SENDER RECIPIENT [CLIENT_NAME]
//   show|allow|delete client CLIENT_ADDRESS [CLIENT_NAME]
// against the configured Redis (blocking, one command_sync per step; they run
// outside the daemon's event loop).
#pragma once

#include <iosfwd>
#include <memory>

#include "daemon/program.h"
#include "decider.h"
#include "settings.h"

namespace greylist {

class GreylistProgram final : public proto::daemon::Program {
public:
    GreylistProgram();
    const proto::daemon::ProgramInfo& info() const override { return info_; }
    std::shared_ptr<proto::policy::Decider> configure(proto::config::Reader& reader,
                                                      proto::daemon::Runtime& rt) override;
    int command(const std::vector<std::string>& args, proto::daemon::Runtime& rt) override;

    // The same, writing to the given streams (tests).
    int run_command(const std::vector<std::string>& args, proto::daemon::Runtime& rt,
                    std::ostream& out, std::ostream& err);

private:
    proto::daemon::ProgramInfo info_;
    std::shared_ptr<const ClientKeyer> keyer_;
    std::shared_ptr<DeciderMetrics> metrics_;
    std::shared_ptr<const Settings> settings_;  // the last configuration read
};

}  // namespace greylist
