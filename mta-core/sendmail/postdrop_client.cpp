// Running the postdrop helper; see postdrop_client.h.
#include "sendmail/postdrop_client.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "sendmail/sysexits.h"

namespace mta::sendmail {

namespace {

int report(int code, const std::string& text) {
    std::fprintf(stderr, "sendmail: fatal: %s\n", text.c_str());
    return code;
}

}  // namespace

int run_postdrop(const LocalConfig& cfg, const std::string& file) {
    std::string helper = cfg.command_directory + "/mta-core-postdrop";
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return report(exit_code::temp_fail, std::string("pipe: ") + std::strerror(errno));
    pid_t pid = ::fork();
    if (pid < 0) return report(exit_code::temp_fail, std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        ::dup2(pipefd[0], 0);
        std::vector<std::string> args{"mta-core-postdrop", "-c", cfg.main_cf};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(helper.c_str(), argv.data());
        std::fprintf(stderr, "sendmail: fatal: execute %s: %s\n", helper.c_str(), std::strerror(errno));
        ::_exit(exit_code::os_file);
    }
    ::close(pipefd[0]);
    ::signal(SIGPIPE, SIG_IGN);
    for (std::size_t done = 0; done < file.size();) {
        ssize_t n = ::write(pipefd[1], file.data() + done, file.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // the helper refused early; its status says why
        done += static_cast<std::size_t>(n);
    }
    ::close(pipefd[1]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return report(exit_code::software, helper + " was killed by signal " + std::to_string(WTERMSIG(status)));
}

}  // namespace mta::sendmail
