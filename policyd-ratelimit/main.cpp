// policyd-ratelimit: Postfix policy service enforcing rate limits shared in Redis.
#include "daemon/program.h"
#include "program.h"

int main(int argc, char** argv) {
    ratelimit::RateLimitProgram program;
    return proto::daemon::run(argc, argv, program);
}
