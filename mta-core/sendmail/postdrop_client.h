// Running the setgid helper mta-core-postdrop from command_directory with
// one maildrop file on its standard input (as Postfix's sendmail runs
// postdrop). The helper writes its own diagnostics to standard error.
#pragma once

#include <string>

#include "sendmail/local_config.h"

namespace mta::sendmail {

// The helper's exit code (sysexits.h): 0 when the file is in the maildrop.
int run_postdrop(const LocalConfig& cfg, const std::string& file);

}  // namespace mta::sendmail
