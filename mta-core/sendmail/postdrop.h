// mta-core-postdrop: the setgid helper of local submission (Postfix's
// postdrop(1)). Installed setgid to setgid_group; the sendmail command runs
// it with one maildrop file on standard input:
//
//   mta-core-postdrop [-c CONFIG_DIR_OR_MAIN_CF]
//
// Security: everything it reads is the user's. It honours a configuration
// other than the default only as local_config.h allows, checks
// authorized_submit_users for the real uid, reads at most what a message
// within message_size_limit can make, parses the file strictly before
// writing a byte, and writes nowhere but a new file in maildrop/. It runs
// nothing else.
#pragma once

namespace mta::sendmail {

int postdrop_main(int argc, char** argv);

}  // namespace mta::sendmail
