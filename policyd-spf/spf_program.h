// The policyd-spf Program: its name and defaults, and configure(), which
// reads the options and returns a decider. The engine (worker threads and the
// DNS cache) is created once and kept across reloads; its sizes change only
// on restart.
#pragma once

#include <memory>

#include "daemon/program.h"
#include "spf_decider.h"

namespace spf {

class SpfProgram final : public proto::daemon::Program {
public:
    const proto::daemon::ProgramInfo& info() const override;
    std::shared_ptr<proto::policy::Decider> configure(proto::config::Reader& reader,
                                                      proto::daemon::Runtime& rt) override;

private:
    std::weak_ptr<Engine> engine_;
};

}  // namespace spf
