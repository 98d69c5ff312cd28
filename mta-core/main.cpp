// mta-core: all logic is in mta_core_lib; see program.h.
#include "program.h"

int main(int argc, char** argv) {
    mta::MtaProgram program;
    return proto::daemon::run(argc, argv, program);
}
