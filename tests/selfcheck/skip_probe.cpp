// Not a test of the project: a binary whose only test skips itself, run by
// tests/selfcheck/CMakeLists.txt to prove that the suite's main() turns a
// skip into a failure.

#include <gtest/gtest.h>

TEST(SkipProbe, SkipsItself) { GTEST_SKIP() << "as a test whose fixture found nothing to run against"; }
