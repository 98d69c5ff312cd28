// One configuration of mta-core, built from main.cf and master.cf: the
// settings of each smtpd listener, the queue manager's routing, the tables
// and policy services they use, and the spawn services. Built whole at start
// and on each SIGHUP, without touching what runs; an invalid configuration
// throws config::ConfigError naming the file, line or parameter at fault.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "pickup/pickup.h"
#include "qmgr/qmgr.h"
#include "smtpd/server.h"

namespace proto::metrics {
class Registry;
}

namespace mta {

// A master.cf spawn(8) entry: a command run once per connection to
// unix:private/NAME, as user=, with stdin/stdout on the connection.
struct SpawnService {
    std::string name;
    std::string socket_path;
    std::string user;
    std::vector<std::string> argv;
    std::size_t max_processes = 0;
    std::chrono::seconds time_limit{1000};
};

struct Instance {
    std::string config_directory;
    std::string queue_directory;
    std::string mail_owner;
    std::string syslog_name;
    std::string maillog_file;
    std::string myhostname;
    std::string setgid_group;  // group of maildrop/ (local submission)
    std::vector<smtpd::Listener> listeners;
    std::vector<SpawnService> spawn;
    qmgr::Settings qmgr;
    pickup::Settings pickup;  // local submission (maildrop/)
    std::vector<std::string> warnings;  // unused parameters, ignored master.cf entries
    std::string print_config;           // postconf -n
};

// main_cf_path: DIR/main.cf; master.cf is read beside it. The executor is
// where policy clients run (not used with check_only).
std::shared_ptr<Instance> build_instance(const std::string& main_cf_path,
                                         boost::asio::any_io_executor executor, bool check_only,
                                         proto::metrics::Registry* metrics = nullptr);

}  // namespace mta
