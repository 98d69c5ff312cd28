// Maillog lines; see maillog.h.
#include "maillog.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>
#include <mutex>
#include <system_error>

#include "daemon/log.h"

namespace mta::maillog {

namespace {

std::mutex g_mutex;
std::string g_name = "postfix";
std::string g_host = "localhost";
int g_fd = 2;

}  // namespace

void configure(std::string syslog_name, std::string hostname, std::string maillog_file) {
    int fd = 2;
    if (!maillog_file.empty() && maillog_file != "/dev/stderr") {
        fd = ::open(maillog_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
            throw std::system_error(errno, std::generic_category(), "maillog_file " + maillog_file);
    }
    std::lock_guard lock(g_mutex);
    if (g_fd != 2) ::close(g_fd);
    g_fd = fd;
    g_name = std::move(syslog_name);
    // syslog shows the short host name, as Postfix's lines do.
    g_host = hostname.substr(0, hostname.find('.'));
}

std::string printable(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) c = '?';
    }
    return out;
}

void line(std::string_view service, std::string_view text) {
    if (proto::log::format() == proto::log::Format::json) {
        std::string program;
        {
            std::lock_guard lock(g_mutex);
            program = g_name + "/" + std::string(service);
        }
        proto::log::event(proto::log::Level::info, text, {{"service", program}});
        return;
    }
    std::time_t now = std::time(nullptr);
    struct tm tm;
    ::localtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
    std::lock_guard lock(g_mutex);
    std::string out;
    out.reserve(64 + text.size());
    out += stamp;
    out += ' ';
    out += g_host;
    out += ' ';
    out += g_name;
    out += '/';
    out += service;
    out += '[';
    out += std::to_string(::getpid());
    out += "]: ";
    out += text;
    out += '\n';
    std::string_view rest = out;
    while (!rest.empty()) {
        ssize_t n = ::write(g_fd, rest.data(), rest.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace mta::maillog
