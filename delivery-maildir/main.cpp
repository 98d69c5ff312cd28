// delivery-maildir: Maildir delivery as an LMTP server, or, with "deliver"
// as the first argument, as a delivery command for Postfix (lda.h).
// All logic is in delivery_lib.
#include <string_view>

#include "daemon/program.h"
#include "lda.h"
#include "program.h"

int main(int argc, char** argv) {
    if (argc > 1 && std::string_view(argv[1]) == "deliver")
        return maildir::lda_main(argc - 1, argv + 1);
    maildir::DeliveryProgram program;
    return proto::daemon::run(argc, argv, program);
}
