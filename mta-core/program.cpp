// mta-core's Program; see program.h.
#include "program.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <ctime>
#include <fstream>
#include <iostream>

#include "daemon/log.h"
#include "instance.h"
#include "maillog.h"
#include "pickup/pickup.h"
#include "qmgr/qmgr.h"
#include "queue/queue_store.h"
#include "smtpd/anvil.h"
#include "smtpd/server.h"
#include "spawn.h"

namespace mta {

namespace asio = boost::asio;

namespace {

constexpr const char* kDefaultConfig = "/etc/mailpolicy/mta-core/main.cf";

std::string pid_file(const std::string& queue_directory) { return queue_directory + "/pid/master.pid"; }

void chown_tree(const std::string& path, const std::string& user) {
    struct passwd* pw = ::getpwnam(user.c_str());
    if (!pw || ::geteuid() != 0) return;
    if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0)
        proto::log::warning("chown " + path + ": " + std::strerror(errno));
}

}  // namespace

// The running server: listeners, queue, queue manager, spawn services.
constexpr std::size_t kFileSystemThreads = 32;

class MtaProgram::SmtpService final : public proto::daemon::Service {
public:
    SmtpService(proto::daemon::Runtime& rt, std::shared_ptr<Instance> inst)
        : io_(rt.io),
          // The spawn helper is forked first, while this process has one thread.
          spawn_(prepare_and_spawn(*inst)),
          store_(inst->queue_directory),
          // The file-system pool: its threads mostly wait in fsync. The
          // journal commits the fsyncs that wait together as one (ext4's
          // jbd2), so how many sessions' messages reach the disk per
          // commit is bounded by how many threads wait: Postfix gets the
          // same from one cleanup process per session.
          pool_(kFileSystemThreads),
          qmgr_(rt.io.get_executor(), pool_.get_executor(), store_),
          services_{&store_, pool_.get_executor(), {}, &rt.metrics, &anvil_},
          server_(rt.io, rt.metrics, services_), flush_signal_(rt.io, SIGUSR1) {
        store_.prepare();
        prepare_maildrop(*inst);
        for (const char* sub : {"", "/incoming", "/active", "/hold", "/corrupt", "/defer"})
            chown_tree(inst->queue_directory + sub, inst->mail_owner);
        ::mkdir((inst->queue_directory + "/pid").c_str(), 0755);
        {
            std::ofstream pid(pid_file(inst->queue_directory));
            pid << ::getpid() << "\n";
        }
        services_.queued = [this](const std::string& id) { qmgr_.enqueue(id); };
        qmgr_.configure(inst->qmgr);
        qmgr_.set_metrics(&rt.metrics);
        server_.listen(inst->listeners);
        qmgr_.start();
        pickup_ = std::make_shared<pickup::Pickup>(
            rt.io.get_executor(), pool_.get_executor(), store_,
            [this](const std::string& id) { qmgr_.enqueue(id); });
        pickup_->configure(inst->pickup);
        pickup_->start();
        wait_flush();
    }

    void update(const std::shared_ptr<Instance>& inst) {
        qmgr_.configure(inst->qmgr);
        pickup_->configure(inst->pickup);
        server_.update(inst->listeners);
        if (spawn_) spawn_->update(inst->spawn);
    }

    void listen(const proto::net::Endpoint&) override {}
    void update_options(const proto::policy::ServerOptions&) override {}
    void drain(std::chrono::milliseconds timeout, std::function<void()> on_drained) override {
        flush_signal_.cancel();
        pickup_->stop();
        server_.drain(timeout, [this, on_drained = std::move(on_drained)] {
            qmgr_.stop();
            if (spawn_) spawn_->stop();
            on_drained();
        });
    }
    ~SmtpService() override { pool_.join(); }

private:
    static std::unique_ptr<SpawnSupervisor> prepare_and_spawn(const Instance& inst) {
        if (::mkdir(inst.queue_directory.c_str(), 0755) != 0 && errno != EEXIST)
            throw std::system_error(errno, std::generic_category(), "mkdir " + inst.queue_directory);
        return start_spawn(inst.queue_directory, inst.mail_owner, inst.spawn);
    }

    // maildrop/: mode 1730, mail_owner and setgid_group (maildrop_writer.h).
    // Submitters must be able to search the queue directory to reach it,
    // as in Postfix (queue_directory 0755); a umask of 077 would hide it.
    // Modes are set while root still owns what it made (before the chown
    // to mail_owner): the systemd unit gives root no CAP_FOWNER.
    static void prepare_maildrop(const Instance& inst) {
        auto ensure_mode = [](const std::string& path, mode_t want, mode_t mask) {
            struct stat st;
            if (::stat(path.c_str(), &st) != 0 || (st.st_mode & mask) == want) return;
            if (::chmod(path.c_str(), (st.st_mode & 07777 & ~mask) | want) != 0)
                proto::log::warning("chmod " + path + ": " + std::strerror(errno) +
                                    "; local users cannot submit mail until it is fixed by hand");
        };
        ensure_mode(inst.queue_directory, 0011, 0011);
        std::string dir = inst.queue_directory + "/maildrop";
        if (::mkdir(dir.c_str(), 01730) != 0 && errno != EEXIST)
            throw std::system_error(errno, std::generic_category(), "mkdir " + dir);
        ensure_mode(dir, 01730, 07777);
        if (::geteuid() == 0) {
            struct passwd* pw = ::getpwnam(inst.mail_owner.c_str());
            struct group* gr = ::getgrnam(inst.setgid_group.c_str());
            if (!gr)
                proto::log::warning("setgid_group " + inst.setgid_group +
                                    ": no such group; only root can submit with sendmail");
            if (pw && ::chown(dir.c_str(), pw->pw_uid, gr ? gr->gr_gid : pw->pw_gid) != 0)
                proto::log::warning("chown " + dir + ": " + std::strerror(errno));
        }
    }

    void wait_flush() {
        flush_signal_.async_wait([this](boost::system::error_code ec, int) {
            if (ec) return;
            maillog::line("qmgr", "flush requested");
            qmgr_.flush();
            wait_flush();
        });
    }

    asio::io_context& io_;
    std::unique_ptr<SpawnSupervisor> spawn_;
    queue::QueueStore store_;
    asio::thread_pool pool_;
    qmgr::QueueManager qmgr_;
    smtpd::Anvil anvil_;
    smtpd::SessionServices services_;
    smtpd::SmtpServer server_;
    std::shared_ptr<pickup::Pickup> pickup_;
    asio::signal_set flush_signal_;
};

MtaProgram::MtaProgram() {
    info_.name = "mta-core";
    info_.summary = "an SMTP server configured with Postfix's main.cf and master.cf";
    info_.default_listen = "";
    info_.uses_redis = false;
    info_.own_config = true;
    info_.serves_milter = false;  // its milters are clients, from main.cf (smtpd_milters)
    info_.command_flags = {"--print-config", "--print-defaults"};
    info_.commands_help =
        "  --print-config      print the non-default main.cf settings (as postconf -n)\n"
        "  --print-defaults    print every parameter mta-core knows with its default (as postconf -d),\n"
        "                      and those Postfix has that mta-core does not do, with what to use\n"
        "  queue list          list the queue (as postqueue -p), with why and until when\n"
        "                      deferred mail waits, then the shape of the queue\n"
        "  queue shape         messages by recipient domain and age in minutes (as qshape)\n"
        "  queue show ID       print one queued message with its envelope\n"
        "  queue flush         ask the running server to retry deferred mail now\n"
        "  queue delete ID|ALL remove messages (as postsuper -d)\n"
        "  queue hold ID|ALL   put messages on hold (as postsuper -h)\n"
        "  queue release ID|ALL release held messages (as postsuper -H)\n";
}

MtaProgram::~MtaProgram() = default;

std::shared_ptr<proto::policy::Decider> MtaProgram::configure(proto::config::Reader&,
                                                              proto::daemon::Runtime& rt) {
    std::string path = rt.config_path.empty() ? kDefaultConfig : rt.config_path;
    try {
        pending_ = build_instance(path, rt.io.get_executor(), rt.check_only, &rt.metrics);
    } catch (const config::ConfigError& e) {
        throw proto::config::ConfigError(e.what());
    }
    for (const auto& w : pending_->warnings) proto::log::warning(w);
    if (::geteuid() == 0) rt.run_as = pending_->mail_owner;
    return nullptr;
}

void MtaProgram::commit() {
    current_ = pending_;
    try {
        maillog::configure(current_->syslog_name, current_->myhostname, current_->maillog_file);
    } catch (const std::exception& e) {
        proto::log::error(e.what());
    }
    if (service_) service_->update(current_);
}

std::unique_ptr<proto::daemon::Service> MtaProgram::make_service(proto::daemon::Runtime& rt,
                                                                 const proto::policy::ServerOptions&) {
    auto s = std::make_unique<SmtpService>(rt, current_);
    service_ = s.get();
    proto::log::event(proto::log::Level::info, "listening",
                      {{"listeners", std::to_string(current_->listeners.size())},
                       {"queue_directory", current_->queue_directory}});
    return s;
}

int queue_command(const std::vector<std::string>& args, const std::string& queue_directory) {
    queue::QueueStore store(queue_directory);
    std::string verb = args.size() > 1 ? args[1] : "";
    auto each_id = [&](const std::string& which, queue::Place from, auto fn) {
        std::vector<std::string> ids;
        if (which == "ALL") ids = store.list(from);
        else ids.push_back(which);
        int rc = 0;
        std::size_t n = 0;
        for (const auto& id : ids) {
            if (!queue::valid_id(id)) {
                std::fprintf(stderr, "mta-core: bad queue id \"%s\"\n", id.c_str());
                return 1;
            }
            int err = fn(id);
            if (err) {
                std::fprintf(stderr, "mta-core: %s: %s\n", id.c_str(), std::strerror(err));
                rc = 1;
            } else {
                ++n;
            }
        }
        return rc ? rc : (n == 0 && which != "ALL" ? 1 : 0);
    };
    auto signal_flush = [&] {
        std::ifstream in(pid_file(queue_directory));
        long pid = 0;
        if (in >> pid && pid > 1 && ::kill(static_cast<pid_t>(pid), SIGUSR1) == 0) return true;
        return false;
    };
    // qshape(1)'s table: messages by recipient domain and age in minutes.
    auto shape = [&]() {
        static constexpr int limits[] = {5, 10, 20, 40, 80, 160, 320, 640, 1280};
        constexpr std::size_t buckets = std::size(limits) + 1;
        std::map<std::string, std::array<std::size_t, buckets + 1>> rows;  // [0]: total
        std::array<std::size_t, buckets + 1> total{};
        const std::time_t now = std::time(nullptr);
        for (auto place : {queue::Place::active, queue::Place::hold}) {
            for (const auto& id : store.list(place)) {
                std::string err;
                auto m = store.load(place, id, &err);
                if (!m) continue;
                const long minutes = static_cast<long>((now - m->envelope.arrival) / 60);
                std::size_t b = 0;
                while (b < std::size(limits) && minutes >= limits[b]) ++b;
                std::set<std::string> domains;
                for (const auto& r : m->envelope.recipients) {
                    if (r.done) continue;
                    auto at = r.address.rfind('@');
                    domains.insert(maillog::printable(at == std::string::npos ? "" : r.address.substr(at + 1)));
                }
                for (const auto& d : domains) {
                    auto& row = rows[d];
                    ++row[0];
                    ++row[b + 1];
                }
                ++total[0];
                ++total[b + 1];
            }
        }
        std::printf("%30s %5s", "", "T");
        for (int l : limits) std::printf(" %5d", l);
        std::printf(" %5s\n", "1280+");
        auto print_row = [&](const std::string& name, const std::array<std::size_t, buckets + 1>& row) {
            std::printf("%30s", name.substr(0, 30).c_str());
            for (std::size_t v : row) std::printf(" %5zu", v);
            std::printf("\n");
        };
        print_row("TOTAL", total);
        for (const auto& [domain, row] : rows) print_row(domain, row);
    };
    if (verb == "list") {
        std::size_t count = 0, bytes = 0;
        std::printf("-Queue ID-    --Size-- ----Arrival Time---- -Sender/Recipient-------\n");
        auto when_text = [](std::time_t t) {
            char when[32];
            struct tm tm;
            ::localtime_r(&t, &tm);
            std::strftime(when, sizeof when, "%a %b %e %H:%M:%S", &tm);
            return std::string(when);
        };
        for (auto place : {queue::Place::active, queue::Place::hold}) {
            for (const auto& id : store.list(place)) {
                std::string err;
                auto m = store.load(place, id, &err);
                if (!m) continue;
                std::printf("%-12s%c %8zu %20s  %s\n", id.c_str(), place == queue::Place::hold ? '!' : ' ',
                            m->content.size(), when_text(m->envelope.arrival).c_str(),
                            maillog::printable(m->envelope.sender).c_str());
                // As postqueue -p: each reason in parentheses above the
                // recipients it holds back; then when the next try is due.
                auto info = place == queue::Place::active ? store.read_defer_info(id) : std::nullopt;
                std::vector<std::string> printed;
                if (info) {
                    std::vector<std::string> order;
                    for (const auto& [rcpt, reason] : info->reasons)
                        if (std::find(order.begin(), order.end(), reason) == order.end()) order.push_back(reason);
                    for (const auto& reason : order) {
                        std::printf("(%s)\n", maillog::printable(reason).c_str());
                        for (const auto& r : m->envelope.recipients) {
                            if (r.done) continue;
                            bool held = std::any_of(info->reasons.begin(), info->reasons.end(), [&](const auto& p) {
                                return p.first == r.address && p.second == reason;
                            });
                            if (!held) continue;
                            std::printf("%44s%s\n", "", maillog::printable(r.address).c_str());
                            printed.push_back(r.address);
                        }
                    }
                }
                for (const auto& r : m->envelope.recipients)
                    if (!r.done && std::find(printed.begin(), printed.end(), r.address) == printed.end())
                        std::printf("%44s%s\n", "", maillog::printable(r.address).c_str());
                if (info)
                    std::printf("%44s(next attempt %s)\n", "",
                                when_text(static_cast<std::time_t>(info->next_attempt)).c_str());
                std::printf("\n");
                ++count;
                bytes += m->content.size();
            }
        }
        if (count == 0) {
            std::printf("Mail queue is empty\n");
        } else {
            std::printf("-- %zu Kbytes in %zu Request%s.\n\n", (bytes + 1023) / 1024, count, count == 1 ? "" : "s");
            shape();
        }
        return 0;
    }
    if (verb == "shape" && args.size() == 2) {
        shape();
        return 0;
    }
    if (verb == "show" && args.size() == 3) {
        for (auto place : {queue::Place::active, queue::Place::hold}) {
            std::string err;
            if (auto m = store.load(place, args[2], &err)) {
                std::fputs(queue::serialize(m->envelope).c_str(), stdout);
                std::fwrite(m->content.data(), 1, m->content.size(), stdout);
                return 0;
            }
        }
        std::fprintf(stderr, "mta-core: %s: no such message in the queue\n", args[2].c_str());
        return 1;
    }
    if (verb == "flush" && args.size() == 2) {
        if (!signal_flush()) {
            std::fprintf(stderr, "mta-core: no running mta-core for %s (nothing to flush)\n",
                         queue_directory.c_str());
            return 1;
        }
        return 0;
    }
    if (verb == "delete" && args.size() == 3) {
        int rc = each_id(args[2], queue::Place::active, [&](const std::string& id) {
            int e = store.remove(queue::Place::active, id);
            if (e == ENOENT) e = store.remove(queue::Place::hold, id);
            if (!e) std::printf("%s: removed\n", id.c_str());
            return e;
        });
        if (args[2] == "ALL")
            for (const auto& id : store.list(queue::Place::hold)) store.remove(queue::Place::hold, id);
        return rc;
    }
    if (verb == "hold" && args.size() == 3)
        return each_id(args[2], queue::Place::active, [&](const std::string& id) {
            int e = store.move(id, queue::Place::active, queue::Place::hold);
            if (!e) std::printf("%s: placed on hold\n", id.c_str());
            return e;
        });
    if (verb == "release" && args.size() == 3) {
        int rc = each_id(args[2], queue::Place::hold, [&](const std::string& id) {
            int e = store.move(id, queue::Place::hold, queue::Place::active);
            if (!e) std::printf("%s: released from hold\n", id.c_str());
            return e;
        });
        signal_flush();
        return rc;
    }
    std::fprintf(stderr, "mta-core: usage: mta-core [--config FILE] queue list|shape|show ID|flush|"
                         "delete ID|ALL|hold ID|ALL|release ID|ALL\n");
    return 2;
}

int MtaProgram::command(const std::vector<std::string>& args, proto::daemon::Runtime&) {
    if (args.empty()) return 2;
    if (args[0] == "--print-config") {
        std::fputs(pending_->print_config.c_str(), stdout);
        return 0;
    }
    if (args[0] == "--print-defaults") {
        for (const auto& p : config::parameter_table()) {
            switch (p.support) {
                case config::Support::supported:
                    std::printf("%.*s = %.*s\n", static_cast<int>(p.name.size()), p.name.data(),
                                static_cast<int>(p.default_value.size()), p.default_value.data());
                    break;
                case config::Support::ignored:
                    std::printf("# %.*s: ignored (%.*s)\n", static_cast<int>(p.name.size()), p.name.data(),
                                static_cast<int>(p.hint.size()), p.hint.data());
                    break;
                case config::Support::unsupported:
                    std::printf("# %.*s: not supported; %.*s\n", static_cast<int>(p.name.size()), p.name.data(),
                                static_cast<int>(p.hint.size()), p.hint.data());
                    break;
            }
        }
        return 0;
    }
    if (args[0] == "queue") return queue_command(args, pending_->queue_directory);
    std::fprintf(stderr, "mta-core: unknown command \"%s\" (see --help)\n", args[0].c_str());
    return 2;
}

}  // namespace mta
