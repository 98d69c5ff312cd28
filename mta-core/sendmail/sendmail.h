// The sendmail command (also mailq and newaliases): Postfix's sendmail(1)
// for mta-core. Not setgid: a message goes to the maildrop through the
// setgid helper mta-core-postdrop, found in command_directory.
#pragma once

namespace mta::sendmail {

int sendmail_main(int argc, char** argv);

}  // namespace mta::sendmail
