// The queue manager: takes messages from active/, finds each recipient's
// nexthop, delivers with a bounded concurrency, marks recipients done,
// retries with backoff (minimal_backoff_time .. maximal_backoff_time), and
// bounces (an RFC 3464 report to the sender, never to the null sender) on a
// 5xx or after maximal_queue_lifetime.
//
// Runs on the I/O thread; the file-system work runs on the blocking pool.
// State is in the queue files, so a restart resumes where it stopped: every
// message in active/ is tried again at start.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "delivery/mx.h"
#include "delivery/smtp_client.h"

namespace mta::queue {
class QueueStore;
}
namespace proto::metrics {
class Registry;
}

namespace mta::qmgr {

// Where one recipient goes.
struct Route {
    enum class Kind { deliver, defer, bounce } kind = Kind::deliver;
    delivery::Nexthop nexthop;  // deliver
    std::string address;        // the address given to the nexthop
    std::string reason;         // defer/bounce: why ("mail for x loops back to myself")
};

struct Settings {
    std::function<Route(const std::string& recipient)> route;
    // A message with a FILTER action (access(5)): every recipient goes to the
    // filter's transport:destination, which hands the message back after it.
    std::function<Route(const std::string& filter, const std::string& recipient)> filter_route;
    // The smtp transport: the addresses of a destination (DNS, delivery/mx.h)
    // and how to talk to one of them (TLS policy, AUTH credentials).
    std::function<boost::asio::awaitable<delivery::Resolution>(delivery::Destination)> resolve;
    std::function<delivery::SessionOptions(const delivery::Nexthop&, const delivery::Target&)> smtp_session;
    std::size_t mx_session_limit = 2;  // smtp_mx_session_limit: servers talked to per attempt
    bool connection_cache = true;      // smtp_connection_cache_on_demand
    std::chrono::seconds connection_cache_time{2};  // smtp_connection_cache_time_limit
    std::string helo_name;  // myhostname
    std::string myorigin;
    std::chrono::seconds minimal_backoff{300};
    std::chrono::seconds maximal_backoff{4000};
    std::chrono::seconds maximal_queue_lifetime{5 * 86400};
    std::chrono::seconds bounce_queue_lifetime{5 * 86400};
    std::size_t bounce_size_limit = 50000;
    // delay_warning_time: after this long in the queue, the sender is told
    // once that the message is still being retried (0: never).
    std::chrono::seconds delay_warning_time{0};
    // notify_classes: "bounce" sends the postmaster (bounce_notice_recipient)
    // the header of each bounce; "2bounce" sends 2bounce_notice_recipient a
    // bounce that could not be returned. Empty: that class is off.
    std::string bounce_notice_recipient;
    std::string double_bounce_notice_recipient;
    std::size_t lmtp_line_length_limit = 998;
    // Deliveries at once: per destination (Postfix's
    // smtp_destination_concurrency_limit, and
    // default_destination_concurrency_limit for LMTP), and messages in
    // delivery in all (default_process_limit, what bounds Postfix's
    // delivery agents). A message waiting for a busy destination holds its
    // global slot (a known shortcut beside Postfix's scheduler).
    std::size_t concurrency = 20;
    std::size_t lmtp_concurrency = 20;
    std::size_t process_limit = 100;
    delivery::Timeouts timeouts;
};

class QueueManager {
public:
    QueueManager(boost::asio::any_io_executor io, boost::asio::any_io_executor blocking,
                 queue::QueueStore& store);
    ~QueueManager();

    void configure(Settings settings);  // at start and on reload
    void set_metrics(proto::metrics::Registry* metrics);
    // Recover after a crash or restart: drop incomplete files, schedule the rest.
    void start();
    void enqueue(const std::string& id);  // a new message in active/
    void flush();                          // retry every deferred message now
    void stop();
    std::size_t in_flight() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// An RFC 3464 delivery status notification, as the content of a new message
// from the null sender: failures (a bounce), or successes the sender asked
// for with NOTIFY=SUCCESS (RFC 3461 4.1). Exposed for tests.
struct Failure {
    std::string recipient;
    std::string original;
    std::string status;  // "5.1.1"
    std::string diagnostic;  // "smtp; 550 5.1.1 User unknown"
    std::string action = "failed";  // RFC 3464 2.3.3: failed, delayed, delivered, relayed
    std::string orcpt;              // the client's ORCPT ("rfc822;addr"), else empty
};
// RFC 3461 4.3, 4.4 and Postfix's bounce_size_limit: what of the original
// message goes back, and the envelope id to quote.
struct ReportOptions {
    std::string envid;
    bool headers_only = false;          // RET=HDRS
    std::size_t size_limit = 50000;     // bounce_size_limit: larger, and only the headers go back
};
std::string make_bounce(const std::string& myhostname, const std::string& queue_id,
                        const std::string& sender, const std::vector<Failure>& failures,
                        std::string_view original_message, std::int64_t arrival, bool delayed,
                        const ReportOptions& options = {});

}  // namespace mta::qmgr
