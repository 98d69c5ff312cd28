// sendmail, mailq, newaliases: see sendmail/sendmail.h.
#include "sendmail/sendmail.h"

int main(int argc, char** argv) { return mta::sendmail::sendmail_main(argc, argv); }
