// spawn(8) for master.cf "spawn" entries: a policy server that speaks on
// stdin/stdout (policyd-spf from Debian, ...) is run once per connection to
// unix:private/NAME, as its user=, with at most maxproc processes (a maxproc
// of 0 still gets a bound) and NAME_time_limit of run time.
//
// Privileges: the rest of mta-core runs as mail_owner, which cannot start a
// command as another user. So, as Postfix's master does, a small process
// that keeps root is forked before privileges are dropped; it only accepts on
// the spawn sockets, forks, drops to user= and execs. It takes new settings
// from the main process over a pipe on reload and exits when the pipe
// closes (when mta-core stops, however it stops).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "instance.h"

namespace mta {

class SpawnSupervisor {
public:
    virtual ~SpawnSupervisor() = default;
    virtual void update(const std::vector<SpawnService>& services) = 0;
    virtual void stop() = 0;
};

// Null when there are no spawn services. Must run before privileges are
// dropped (it forks the privileged helper). Throws std::system_error.
std::unique_ptr<SpawnSupervisor> start_spawn(const std::string& queue_directory,
                                             const std::string& mail_owner,
                                             const std::vector<SpawnService>& services);

}  // namespace mta
