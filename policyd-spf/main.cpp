// policyd-spf: RFC 7208 SPF checks for Postfix (check_policy_service), a
// drop-in for postfix-policyd-spf-python. All logic is in spf_lib.
#include "daemon/program.h"
#include "spf_program.h"

int main(int argc, char** argv) {
    spf::SpfProgram program;
    return proto::daemon::run(argc, argv, program);
}
