// delivery-maildir as a proto::daemon::Program: the LMTP service on the
// shared daemon lifecycle (flags, JSON config, SIGHUP, SIGTERM drain,
// metrics). configure() builds an immutable State; commit() swaps it in, so
// a transaction keeps the configuration it started with.
#pragma once

#include <memory>
#include <mutex>

#include "daemon/program.h"
#include "settings.h"

namespace maildir {

class DeliveryProgram final : public proto::daemon::Program {
public:
    DeliveryProgram();
    const proto::daemon::ProgramInfo& info() const override { return info_; }
    std::shared_ptr<proto::policy::Decider> configure(proto::config::Reader& reader,
                                                      proto::daemon::Runtime& rt) override;
    std::unique_ptr<proto::daemon::Service> make_service(
        proto::daemon::Runtime& rt, const proto::policy::ServerOptions& options) override;
    void commit() override;

    std::shared_ptr<const State> state() const;

private:
    proto::daemon::ProgramInfo info_;
    std::shared_ptr<const State> pending_;
    mutable std::mutex mutex_;  // state() is read from the I/O thread only, but cheap to guard
    std::shared_ptr<const State> current_;
};

}  // namespace maildir
