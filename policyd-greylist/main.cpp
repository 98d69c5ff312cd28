// policyd-greylist: greylisting policy service for Postfix, state in Redis.
// All logic is in greylist_lib; see program.h and README.md (policyd-greylist).
#include "daemon/program.h"
#include "program.h"

int main(int argc, char** argv) {
    greylist::GreylistProgram program;
    return proto::daemon::run(argc, argv, program);
}
