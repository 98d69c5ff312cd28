// The greylisting decider: policy request in, decision out.
//
// Acts at protocol_state RCPT, and at DATA (smtpd_data_restrictions: the
// recipient if Postfix sent one, i.e. a single-recipient message, else an
// empty recipient, one triplet per client and sender); every other stage gets
// DUNNO. Order: client whitelist, recipient whitelist, then one store call
// (auto-whitelisted client, triplet). A store failure answers on_store_error
// within the Redis client's deadline, is counted and logged (at most once a
// second, so an outage does not flood the log).
//
// Per request: no allocation beyond the triplet strings and the store call.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "client_key.h"
#include "daemon/clock.h"
#include "policy/decider.h"
#include "settings.h"
#include "store.h"

namespace proto::metrics {
class Registry;
class Counter;
}  // namespace proto::metrics

namespace greylist {

// Counters shared by successive deciders (they live in the registry).
struct DeciderMetrics {
    explicit DeciderMetrics(proto::metrics::Registry& registry);
    proto::metrics::Counter* verdicts[5];
    proto::metrics::Counter& whitelisted_client;
    proto::metrics::Counter& whitelisted_recipient;
    proto::metrics::Counter& skipped;
    proto::metrics::Counter& store_errors;
    proto::metrics::Counter& dry_run_defers;
    proto::metrics::Counter& clients_auto_whitelisted;
};

class GreylistDecider final : public proto::policy::Decider {
public:
    GreylistDecider(std::shared_ptr<const Settings> settings, std::shared_ptr<GreylistStore> store,
                    std::shared_ptr<const ClientKeyer> keyer, const proto::Clock& clock,
                    std::shared_ptr<DeciderMetrics> metrics);

    boost::asio::awaitable<proto::policy::Decision> decide(
        const proto::policy::Request& request) override;

private:
    proto::policy::Decision defer(std::int64_t seconds, std::string_view recipient,
                                  std::string reason);
    proto::policy::Decision store_failed(const std::string& error);
    bool new_instance(std::string_view instance);

    std::shared_ptr<const Settings> settings_;
    std::shared_ptr<GreylistStore> store_;
    std::shared_ptr<const ClientKeyer> keyer_;
    const proto::Clock& clock_;
    std::shared_ptr<DeciderMetrics> metrics_;
    // Recent message instances that got an X-Greylist header, so a message
    // with several recipients gets one header (postgrey keeps 20 too).
    std::array<std::string, 20> instances_;
    std::size_t next_instance_ = 0;
};

}  // namespace greylist
