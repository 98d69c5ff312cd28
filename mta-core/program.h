// mta-core as a proto/daemon Program: the common lifecycle (flags, check,
// bind, serve, SIGHUP reload, SIGTERM drain) with Postfix's main.cf and
// master.cf as its configuration, and the queue subcommands.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "daemon/program.h"

namespace mta {

struct Instance;

class MtaProgram final : public proto::daemon::Program {
public:
    MtaProgram();
    ~MtaProgram() override;
    const proto::daemon::ProgramInfo& info() const override { return info_; }
    std::shared_ptr<proto::policy::Decider> configure(proto::config::Reader& reader,
                                                      proto::daemon::Runtime& rt) override;
    int command(const std::vector<std::string>& args, proto::daemon::Runtime& rt) override;
    std::unique_ptr<proto::daemon::Service> make_service(
        proto::daemon::Runtime& rt, const proto::policy::ServerOptions& options) override;
    void commit() override;

private:
    proto::daemon::ProgramInfo info_;
    std::shared_ptr<Instance> pending_;
    std::shared_ptr<Instance> current_;
    class SmtpService;
    SmtpService* service_ = nullptr;
};

// The queue subcommands (list, show, flush, delete, hold, release) on the
// queue in queue_directory; also what sendmail -bp and -q run.
int queue_command(const std::vector<std::string>& args, const std::string& queue_directory);

}  // namespace mta
