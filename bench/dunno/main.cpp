// bench-dunno: answers DUNNO to every request through the full proto/ server
// (parser, limits, decider call, metrics, decision log), so benchmarks measure
// the core's own ceiling against a do-nothing reference server.
#include "daemon/program.h"

namespace {

class DunnoDecider final : public proto::policy::Decider {
public:
    boost::asio::awaitable<proto::policy::Decision> decide(const proto::policy::Request&) override {
        co_return proto::policy::Decision{proto::policy::Action::dunno(), "benchmark"};
    }
};

class DunnoProgram final : public proto::daemon::Program {
public:
    const proto::daemon::ProgramInfo& info() const override { return info_; }
    std::shared_ptr<proto::policy::Decider> configure(proto::config::Reader&,
                                                      proto::daemon::Runtime&) override {
        return std::make_shared<DunnoDecider>();
    }

private:
    proto::daemon::ProgramInfo info_{"bench-dunno", "answers DUNNO to every policy request",
                                     "inet:127.0.0.1:10040", false, ""};
};

}  // namespace

int main(int argc, char** argv) {
    DunnoProgram program;
    return proto::daemon::run(argc, argv, program);
}
