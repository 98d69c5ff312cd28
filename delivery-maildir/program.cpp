// delivery-maildir's Program; see program.h.
#include "program.h"

#include "lmtp_server.h"

namespace maildir {

DeliveryProgram::DeliveryProgram() {
    info_.name = "delivery-maildir";
    info_.summary = "crash-safe Maildir delivery over LMTP (RFC 2033) and as a delivery command";
    // RFC 2033 forbids port 25 for LMTP; 24 is what Dovecot and Cyrus use.
    info_.default_listen = "inet:127.0.0.1:24";
    info_.uses_redis = false;
    info_.serves_milter = false;
    info_.commands_help =
        "  deliver [--config FILE] [-f SENDER] [-a RECIPIENT]... [-d USER] [--] [RECIPIENT]...\n"
        "                      deliver one message from standard input (for Postfix's\n"
        "                      mailbox_command and pipe(8)); must be the first argument.\n"
        "                      Exit status: 0 delivered, 64 usage, 65 bad address or too\n"
        "                      big, 67 unknown user, 68 domain not served, 73 over quota,\n"
        "                      75 temporary failure.\n";
}

std::shared_ptr<proto::policy::Decider> DeliveryProgram::configure(proto::config::Reader& reader,
                                                                   proto::daemon::Runtime&) {
    pending_ = read_state(reader);
    return nullptr;
}

void DeliveryProgram::commit() {
    std::lock_guard lock(mutex_);
    current_ = pending_;
}

std::shared_ptr<const State> DeliveryProgram::state() const {
    std::lock_guard lock(mutex_);
    return current_;
}

std::unique_ptr<proto::daemon::Service> DeliveryProgram::make_service(
    proto::daemon::Runtime& rt, const proto::policy::ServerOptions& options) {
    // Worker count is fixed at start: a thread pool is not resized on reload.
    unsigned workers = state()->settings.delivery_workers;
    return std::make_unique<LmtpServer>(rt.io, options, rt.metrics, [this] { return state(); },
                                        workers);
}

}  // namespace maildir
