// mta-core-postdrop, the setgid helper: see sendmail/postdrop.h.
#include "sendmail/postdrop.h"

int main(int argc, char** argv) { return mta::sendmail::postdrop_main(argc, argv); }
