// main() of every test binary: GoogleTest's own, except that a skip is a
// failure. A test here never passes by not running: a fixture that cannot
// start what it needs (Redis, DNS, Postfix, a namespace) fails with the
// reason, and a GTEST_SKIP() anywhere, or the skip GoogleTest records for
// every test of a suite whose SetUpTestSuite() failed, fails the run.
//
// Why the printer is wrapped: gtest_discover_tests gives every test CTest's
// skip pattern "[  SKIPPED ]", which cannot be taken away, and CTest reports
// a test whose output matches it as skipped, whatever the exit status. So a
// skipped test is printed as "[  FAILED  ]" (with the word "skipped" and the
// reason), the summary lists it among the failures, and the exit status is 1.
// (Turning the skip into a gtest failure from a listener is not possible:
// reporting a failure from inside OnTestPartResult deadlocks GoogleTest.)

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace {

using ::testing::TestEventListener;
using ::testing::TestInfo;
using ::testing::UnitTest;

class SkipIsFailurePrinter : public TestEventListener {
public:
    explicit SkipIsFailurePrinter(TestEventListener* inner) : inner_(inner) {}

    void OnTestProgramStart(const UnitTest& u) override { inner_->OnTestProgramStart(u); }
    void OnTestIterationStart(const UnitTest& u, int i) override { inner_->OnTestIterationStart(u, i); }
    void OnEnvironmentsSetUpStart(const UnitTest& u) override { inner_->OnEnvironmentsSetUpStart(u); }
    void OnEnvironmentsSetUpEnd(const UnitTest& u) override { inner_->OnEnvironmentsSetUpEnd(u); }
    void OnTestSuiteStart(const ::testing::TestSuite& s) override { inner_->OnTestSuiteStart(s); }
    void OnTestStart(const TestInfo& t) override { inner_->OnTestStart(t); }
    void OnTestPartResult(const ::testing::TestPartResult& r) override { inner_->OnTestPartResult(r); }
    void OnTestEnd(const TestInfo& t) override {
        if (!t.result()->Skipped()) return inner_->OnTestEnd(t);
        std::string name = std::string(t.test_suite_name()) + "." + t.name();
        skipped_.push_back(name);
        std::printf("[  FAILED  ] %s (skipped: a skipped test counts as failed here)\n", name.c_str());
        std::fflush(stdout);
    }
    void OnTestSuiteEnd(const ::testing::TestSuite& s) override { inner_->OnTestSuiteEnd(s); }
    void OnEnvironmentsTearDownStart(const UnitTest& u) override { inner_->OnEnvironmentsTearDownStart(u); }
    void OnEnvironmentsTearDownEnd(const UnitTest& u) override { inner_->OnEnvironmentsTearDownEnd(u); }
    void OnTestIterationEnd(const UnitTest& u, int i) override {
        if (skipped_.empty()) return inner_->OnTestIterationEnd(u, i);
        // GoogleTest's own summary would list these as "[  SKIPPED ]".
        std::printf("[==========] %d tests ran.\n[  PASSED  ] %d tests.\n", u.test_to_run_count(),
                    u.successful_test_count());
        for (const auto& name : skipped_)
            std::printf("[  FAILED  ] %s (skipped: a skipped test counts as failed here)\n", name.c_str());
        for (int i = 0; i < u.total_test_suite_count(); ++i) {
            const auto* suite = u.GetTestSuite(i);
            for (int j = 0; j < suite->total_test_count(); ++j) {
                const auto* t = suite->GetTestInfo(j);
                if (t->should_run() && t->result()->Failed())
                    std::printf("[  FAILED  ] %s.%s\n", suite->name(), t->name());
            }
            if (suite->ad_hoc_test_result().Failed())
                std::printf("[  FAILED  ] %s: SetUpTestSuite or TearDownTestSuite\n", suite->name());
        }
        std::fflush(stdout);
    }
    void OnTestProgramEnd(const UnitTest& u) override { inner_->OnTestProgramEnd(u); }

private:
    std::unique_ptr<TestEventListener> inner_;
    std::vector<std::string> skipped_;
};

}  // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    auto& listeners = UnitTest::GetInstance()->listeners();
    listeners.Append(new SkipIsFailurePrinter(listeners.Release(listeners.default_result_printer())));
    int status = RUN_ALL_TESTS();
    if (UnitTest::GetInstance()->skipped_test_count() > 0) return 1;
    return status;
}
