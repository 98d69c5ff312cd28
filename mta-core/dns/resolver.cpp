#include "dns/resolver.h"

#include <ares.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <utility>

#include "dns/answers.h"
#include "dns/names.h"
#include "net/address.h"

namespace mta::dns {

namespace asio = boost::asio;
using restrictions::DnsAnswer;
using Status = DnsAnswer::Status;

namespace {

// RFC 1035 3.2.2 and RFC 3596.
constexpr int class_in = 1;
constexpr int type_a = 1;
constexpr int type_ptr = 12;
constexpr int type_mx = 15;
constexpr int type_txt = 16;
constexpr int type_aaaa = 28;

// Queries handed to c-ares at once; the rest wait in order.
constexpr std::size_t max_outstanding = 128;

// SO_RCVBUF asked for c-ares' sockets (the kernel caps it at rmem_max).
constexpr int receive_buffer_size = 1 << 20;

// One DNS query's outcome: the c-ares status and, on success, the answer.
struct Raw {
    int status = ARES_ENOTFOUND;
    std::vector<unsigned char> data;
};

struct Query {
    std::string name;
    int type;
};

Status to_status(Outcome o) {
    switch (o) {
    case Outcome::found: return DnsAnswer::found;
    case Outcome::not_found: return DnsAnswer::not_found;
    case Outcome::temporary: break;
    }
    return DnsAnswer::temporary;
}

Status status_of(int ares_status) { return to_status(outcome_of(ares_status)); }

void init_library() {
    static std::once_flag once;
    static int rc = ARES_SUCCESS;
    std::call_once(once, [] { rc = ares_library_init(ARES_LIB_INIT_ALL); });
    if (rc != ARES_SUCCESS)
        throw std::runtime_error(std::string("dns: ares_library_init: ") + ares_strerror(rc));
}

// The parsers of dns/answers.h over a Raw, with the restrictions' statuses.
Status parse_addresses(const Raw& raw, int type, std::vector<std::string>& out) {
    return to_status(mta::dns::parse_addresses(raw.status, raw.data.data(), raw.data.size(), type == type_aaaa, out));
}

Status parse_mx(const Raw& raw, std::vector<MxRecord>& out) {
    return to_status(mta::dns::parse_mx(raw.status, raw.data.data(), raw.data.size(), out));
}

Status parse_ptr(const Raw& raw, const proto::net::IpAddress& ip, std::vector<std::string>& out) {
    return to_status(mta::dns::parse_ptr(raw.status, raw.data.data(), raw.data.size(), ip.bytes, ip.v6, out));
}

// Both families' answers as one: found if either has addresses; otherwise a
// temporary failure of either is temporary.
DnsAnswer combine(Status a, Status b, std::vector<std::string> values) {
    DnsAnswer out;
    out.values = std::move(values);
    if (!out.values.empty()) out.status = DnsAnswer::found;
    else if (a == DnsAnswer::temporary || b == DnsAnswer::temporary) out.status = DnsAnswer::temporary;
    else out.status = DnsAnswer::not_found;
    return out;
}

}  // namespace

// The c-ares channel and the Asio objects that drive it. Owned by the
// resolver; handlers hold weak references so a late handler finds nothing.
class AresResolver::Impl : public std::enable_shared_from_this<Impl> {
public:
    Impl(asio::any_io_executor ex, Options options)
        : ex_(std::move(ex)), options_(std::move(options)), timer_(ex_), rng_(std::random_device{}()) {}

    ~Impl() { shutdown(); }

    void open() {
        init_library();
        ares_options opts{};
        opts.sock_state_cb = &Impl::on_sock_state;
        opts.sock_state_cb_data = this;
        opts.timeout = static_cast<int>(options_.timeout.count());
        opts.tries = options_.tries;
        // One UDP socket per server carries every query: a burst of answers
        // (hundreds of sessions checking at once) must not overflow the
        // default receive buffer, or answers are lost and wait for a retry.
        opts.socket_receive_buffer_size = receive_buffer_size;
        int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_RCVBUF;
        int rc = ares_init_options(&channel_, &opts, mask);
        if (rc != ARES_SUCCESS) {
            channel_ = nullptr;
            throw std::runtime_error(std::string("dns: ares_init_options: ") + ares_strerror(rc));
        }
        if (!options_.servers.empty()) {
            std::string csv;
            for (const auto& s : options_.servers) {
                if (!csv.empty()) csv += ',';
                csv += s;
            }
            rc = ares_set_servers_ports_csv(channel_, csv.c_str());
            if (rc != ARES_SUCCESS) {
                ares_destroy(channel_);
                channel_ = nullptr;
                throw std::runtime_error("dns: bad servers \"" + csv + "\": " + ares_strerror(rc));
            }
        }
    }

    void shutdown() {
        if (!channel_) return;
        auto* channel = channel_;
        channel_ = nullptr;
        ares_destroy(channel);  // completes every query sent with ARES_EDESTRUCTION
        auto waiting = std::move(waiting_);
        waiting_.clear();
        for (auto& w : waiting) w.pending->finish(Raw{ARES_EDESTRUCTION, {}});
        for (auto& [fd, w] : watches_) w->sd.release();
        watches_.clear();
        timer_.cancel();
    }

    const asio::any_io_executor& executor() const { return ex_; }
    std::mt19937& rng() { return rng_; }
    const Stats& stats() const { return *stats_; }

    // Send one query; done is called exactly once, possibly from inside this
    // call, with c-ares' result or ARES_ETIMEOUT at timeout * tries (the
    // deadline counts from here, time spent waiting for a slot included).
    void start(const std::string& name, int type, std::function<void(Raw)> done) {
        auto p = std::make_shared<Pending>(ex_, std::move(done), stats_);
        ++stats_->queries;
        ++stats_->in_flight;
        if (!channel_) {
            p->finish(Raw{ARES_EDESTRUCTION, {}});
            return;
        }
        p->timer.expires_after(options_.timeout * options_.tries);
        p->timer.async_wait([p](boost::system::error_code ec) {
            if (ec || p->finished) return;
            ++p->stats->deadline_expired;
            p->finish(Raw{ARES_ETIMEOUT, {}});
        });
        waiting_.push_back(Waiting{name, type, std::move(p)});
        pump();
    }

private:
    struct Pending {
        Pending(const asio::any_io_executor& ex, std::function<void(Raw)> d, std::shared_ptr<Stats> s)
            : timer(ex), done(std::move(d)), stats(std::move(s)) {}
        asio::steady_timer timer;
        std::function<void(Raw)> done;
        std::shared_ptr<Stats> stats;
        std::weak_ptr<Impl> owner;  // set while the query holds one of max_outstanding slots
        bool finished = false;

        void finish(Raw raw) {
            if (finished) return;
            finished = true;
            timer.cancel();
            // A query given up at its deadline frees its slot although c-ares
            // keeps it until its own timers end: a dead zone must not hold up
            // every other lookup.
            if (auto o = owner.lock()) {
                owner.reset();
                --o->outstanding_;
                o->post_pump();
            }
            --stats->in_flight;
            switch (status_of(raw.status)) {
            case DnsAnswer::found: ++stats->found; break;
            case DnsAnswer::not_found: ++stats->not_found; break;
            case DnsAnswer::temporary: ++stats->temporary; break;
            }
            auto d = std::move(done);
            d(std::move(raw));
        }
    };

    // A socket c-ares asked us to watch; c-ares owns the descriptor.
    struct Watch {
        explicit Watch(const asio::any_io_executor& ex) : sd(ex) {}
        asio::posix::stream_descriptor sd;
        bool want_read = false, want_write = false;
        bool read_pending = false, write_pending = false;
        std::uint64_t gen = 0;  // tells a reused descriptor number from the old one
    };

    struct Waiting {
        std::string name;
        int type;
        std::shared_ptr<Pending> pending;
    };

    // Hand waiting queries to c-ares while fewer than max_outstanding are
    // there. All queries share one UDP socket per server: an unbounded burst
    // overflows socket buffers (ours or the server's) and lost datagrams
    // cost a whole timeout each.
    void pump() {
        while (channel_ && outstanding_ < max_outstanding && !waiting_.empty()) {
            Waiting w = std::move(waiting_.front());
            waiting_.pop_front();
            if (w.pending->finished) continue;  // its deadline passed while it waited
            ++outstanding_;
            w.pending->owner = weak_from_this();
            ares_query(channel_, w.name.c_str(), class_in, w.type, &Impl::on_answer,
                       new std::shared_ptr<Pending>(std::move(w.pending)));
        }
        reschedule();
    }

    static void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
        std::unique_ptr<std::shared_ptr<Pending>> holder(static_cast<std::shared_ptr<Pending>*>(arg));
        Raw raw{status, {}};
        if (status == ARES_SUCCESS && abuf && alen > 0) raw.data.assign(abuf, abuf + alen);
        (*holder)->finish(std::move(raw));
    }

    // Send waiting queries from the executor, not from inside c-ares.
    void post_pump() {
        if (waiting_.empty() || pump_posted_ || !channel_) return;
        pump_posted_ = true;
        asio::post(ex_, [weak = weak_from_this()] {
            if (auto s = weak.lock()) {
                s->pump_posted_ = false;
                s->pump();
            }
        });
    }

    static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
        static_cast<Impl*>(data)->sock_state(fd, readable != 0, writable != 0);
    }

    void sock_state(int fd, bool readable, bool writable) {
        auto it = watches_.find(fd);
        if (!readable && !writable) {
            // c-ares is about to close it: stop watching, do not close.
            if (it != watches_.end()) {
                it->second->sd.release();
                watches_.erase(it);
            }
            return;
        }
        if (it == watches_.end()) {
            auto w = std::make_unique<Watch>(ex_);
            boost::system::error_code ec;
            w->sd.assign(fd, ec);
            if (ec) return;  // not watchable: the query ends at its deadline
            w->gen = ++next_gen_;
            it = watches_.emplace(fd, std::move(w)).first;
        }
        it->second->want_read = readable;
        it->second->want_write = writable;
        arm(fd);
    }

    void arm(int fd) {
        auto it = watches_.find(fd);
        if (it == watches_.end()) return;
        Watch& w = *it->second;
        if (w.want_read && !w.read_pending) {
            w.read_pending = true;
            w.sd.async_wait(asio::posix::stream_descriptor::wait_read,
                            [self = weak_from_this(), fd, gen = w.gen](boost::system::error_code ec) {
                                if (auto s = self.lock()) s->ready(fd, gen, false, ec);
                            });
        }
        if (w.want_write && !w.write_pending) {
            w.write_pending = true;
            w.sd.async_wait(asio::posix::stream_descriptor::wait_write,
                            [self = weak_from_this(), fd, gen = w.gen](boost::system::error_code ec) {
                                if (auto s = self.lock()) s->ready(fd, gen, true, ec);
                            });
        }
    }

    void ready(int fd, std::uint64_t gen, bool write, boost::system::error_code ec) {
        auto it = watches_.find(fd);
        if (it == watches_.end() || it->second->gen != gen || !channel_) return;
        Watch& w = *it->second;
        (write ? w.write_pending : w.read_pending) = false;
        if (ec == asio::error::operation_aborted) return;
        if (write ? w.want_write : w.want_read)
            ares_process_fd(channel_, write ? ARES_SOCKET_BAD : fd, write ? fd : ARES_SOCKET_BAD);
        // w may be gone now: c-ares may have closed the socket.
        arm(fd);
        reschedule();
    }

    // Follow c-ares' next timeout (a retry, the next server, a give-up).
    void reschedule() {
        if (!channel_) return;
        timeval tv{};
        timeval* next = ares_timeout(channel_, nullptr, &tv);
        std::uint64_t gen = ++timer_gen_;
        if (!next) {
            timer_.cancel();
            return;
        }
        timer_.expires_after(std::chrono::seconds(next->tv_sec) + std::chrono::microseconds(next->tv_usec));
        timer_.async_wait([self = weak_from_this(), gen](boost::system::error_code ec) {
            if (ec) return;
            auto s = self.lock();
            if (!s || s->timer_gen_ != gen || !s->channel_) return;
            ares_process_fd(s->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            s->reschedule();
        });
    }

    asio::any_io_executor ex_;
    Options options_;
    ares_channel channel_ = nullptr;
    std::map<int, std::unique_ptr<Watch>> watches_;
    std::deque<Waiting> waiting_;
    std::size_t outstanding_ = 0;  // queries sent and neither answered nor past their deadline
    bool pump_posted_ = false;
    std::uint64_t next_gen_ = 0;
    asio::steady_timer timer_;
    std::uint64_t timer_gen_ = 0;
    std::mt19937 rng_;
    std::shared_ptr<Stats> stats_ = std::make_shared<Stats>();
};

namespace {

// Send the queries in parallel and resume with all their results, in order.
// A plain function over async_initiate (no capturing lambda inside a
// coroutine's co_await). qs must not be empty.
auto query_all(std::shared_ptr<AresResolver::Impl> impl, std::vector<Query> qs) {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::vector<Raw>)>(
        [impl = std::move(impl), qs = std::move(qs)](auto handler) mutable {
            using Handler = decltype(handler);
            struct State {
                Handler handler;
                std::vector<Raw> results;
                std::size_t remaining;
            };
            auto st = std::make_shared<State>(State{std::move(handler), std::vector<Raw>(qs.size()), qs.size()});
            auto ex = impl->executor();
            for (std::size_t i = 0; i < qs.size(); ++i) {
                impl->start(qs[i].name, qs[i].type, [st, i, ex](Raw r) {
                    st->results[i] = std::move(r);
                    if (--st->remaining == 0)
                        asio::post(ex, [st] { std::move(st->handler)(std::move(st->results)); });
                });
            }
        },
        asio::use_awaitable);
}

// A and/or AAAA of a valid name.
asio::awaitable<DnsAnswer> lookup_addresses(std::shared_ptr<AresResolver::Impl> impl, std::string name,
                                            bool v4, bool v6) {
    std::vector<Query> qs;
    if (v4) qs.push_back(Query{name, type_a});
    if (v6) qs.push_back(Query{name, type_aaaa});
    auto op = query_all(std::move(impl), std::move(qs));
    std::vector<Raw> raws = co_await std::move(op);
    std::vector<std::string> values;
    Status first = parse_addresses(raws[0], v4 ? type_a : type_aaaa, values);
    Status second = DnsAnswer::not_found;
    if (raws.size() > 1) {
        std::vector<std::string> more;
        second = parse_addresses(raws[1], type_aaaa, more);
        for (auto& m : more)
            if (values.size() < max_answers) values.push_back(std::move(m));
    }
    co_return combine(first, second, std::move(values));
}

}  // namespace

// /etc/hosts: address -> first name, name -> addresses (names folded to
// lower case). Lines past 1 MiB are not read.
struct AresResolver::Hosts {
    std::map<std::string, std::string> name_of;
    std::map<std::string, std::vector<std::string>> addresses_of;

    static std::shared_ptr<const Hosts> load(const std::string& path) {
        auto h = std::make_shared<Hosts>();
        if (path.empty()) return h;
        std::ifstream in(path);
        std::string line;
        std::size_t total = 0;
        while (std::getline(in, line) && (total += line.size()) < (1u << 20)) {
            if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
            std::istringstream words(line);
            std::string address, name;
            if (!(words >> address)) continue;
            auto ip = proto::net::IpAddress::parse(address);
            if (!ip) continue;
            std::string canonical = ip->to_string();
            bool first = true;
            while (words >> name) {
                for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                if (!valid_query_name(name)) continue;
                if (first && !h->name_of.count(canonical)) h->name_of[canonical] = name;
                first = false;
                h->addresses_of[name].push_back(canonical);
            }
        }
        return h;
    }
};

AresResolver::AresResolver(asio::any_io_executor ex, Options options) {
    hosts_ = Hosts::load(options.hosts_file);
    if (options.timeout < std::chrono::milliseconds(1) || options.timeout > std::chrono::minutes(10))
        throw std::invalid_argument("dns: timeout must be between 1ms and 10min");
    if (options.tries < 1 || options.tries > 100) throw std::invalid_argument("dns: tries must be between 1 and 100");
    impl_ = std::make_shared<Impl>(std::move(ex), std::move(options));
    impl_->open();
}

AresResolver::~AresResolver() { impl_->shutdown(); }

AresResolver::Stats AresResolver::stats() const { return impl_->stats(); }

asio::awaitable<DnsAnswer> AresResolver::addresses(std::string name) {
    if (!valid_query_name(name)) co_return DnsAnswer{DnsAnswer::not_found, {}};
    std::string q(strip_root_dot(name));
    {
        std::string key = q;
        for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (auto it = hosts_->addresses_of.find(key); it != hosts_->addresses_of.end())
            co_return DnsAnswer{DnsAnswer::found, it->second};
    }
    auto op = lookup_addresses(impl_, std::move(q), true, true);
    DnsAnswer answer = co_await std::move(op);
    co_return answer;
}

asio::awaitable<std::vector<MxRecord>> AresResolver::mx(std::string domain, DnsAnswer::Status& status) {
    std::vector<MxRecord> records;
    if (!valid_query_name(domain)) {
        status = DnsAnswer::not_found;
        co_return records;
    }
    auto impl = impl_;
    std::vector<Query> qs;
    qs.push_back(Query{std::string(strip_root_dot(domain)), type_mx});
    auto op = query_all(impl, std::move(qs));
    std::vector<Raw> raws = co_await std::move(op);
    status = parse_mx(raws[0], records);
    // RFC 5321 5.1: lowest preference first, equal preferences in random order.
    std::shuffle(records.begin(), records.end(), impl->rng());
    std::stable_sort(records.begin(), records.end(),
                     [](const MxRecord& a, const MxRecord& b) { return a.preference < b.preference; });
    co_return records;
}

asio::awaitable<DnsAnswer> AresResolver::mail_exchangers(std::string domain) {
    DnsAnswer answer;
    auto op = mx(std::move(domain), answer.status);
    std::vector<MxRecord> records = co_await std::move(op);
    for (auto& r : records) answer.values.push_back(std::move(r.host));
    co_return answer;
}

asio::awaitable<DnsAnswer> AresResolver::ptr(std::string ip) {
    auto addr = proto::net::IpAddress::parse(ip);
    auto rev = reverse_name(ip);
    if (!addr || !rev) co_return DnsAnswer{DnsAnswer::not_found, {}};
    std::vector<Query> qs;
    qs.push_back(Query{*rev, type_ptr});
    auto op = query_all(impl_, std::move(qs));
    std::vector<Raw> raws = co_await std::move(op);
    DnsAnswer answer;
    answer.status = parse_ptr(raws[0], *addr, answer.values);
    co_return answer;
}

asio::awaitable<ClientNames> AresResolver::client_names(std::string ip) {
    ClientNames names;
    auto addr = proto::net::IpAddress::parse(ip);
    if (!addr) co_return names;
    // The hosts file first, as getnameinfo(3) reads it for Postfix.
    if (auto it = hosts_->name_of.find(addr->to_string()); it != hosts_->name_of.end()) {
        names.reverse_client_name = it->second;
        const auto& back = hosts_->addresses_of.at(it->second);
        if (std::find(back.begin(), back.end(), addr->to_string()) != back.end())
            names.client_name = it->second;
        co_return names;
    }
    auto impl = impl_;
    auto ptr_op = ptr(ip);
    DnsAnswer reverse = co_await std::move(ptr_op);
    if (reverse.status != DnsAnswer::found) {
        names.tempfail = reverse.status == DnsAnswer::temporary;
        co_return names;
    }
    // Postfix takes the first name the resolver gives.
    names.reverse_client_name = reverse.values.front();
    std::string name = names.reverse_client_name;
    auto fwd_op = lookup_addresses(impl, std::move(name), !addr->v6, addr->v6);
    DnsAnswer forward = co_await std::move(fwd_op);
    if (forward.status == DnsAnswer::temporary) {
        names.tempfail = true;
        co_return names;
    }
    if (std::any_of(forward.values.begin(), forward.values.end(), [&](const std::string& v) {
            auto a = proto::net::IpAddress::parse(v);
            return a && *a == *addr;
        }))
        names.client_name = names.reverse_client_name;
    co_return names;
}

asio::awaitable<DnsAnswer> AresResolver::text(std::string name) {
    if (!valid_query_name(name)) co_return DnsAnswer{DnsAnswer::not_found, {}};
    std::vector<Query> qs;
    qs.push_back(Query{std::string(strip_root_dot(name)), type_txt});
    auto op = query_all(impl_, std::move(qs));
    std::vector<Raw> raws = co_await std::move(op);
    DnsAnswer answer;
    answer.status = to_status(
        mta::dns::parse_txt(raws[0].status, raws[0].data.data(), raws[0].data.size(), answer.values));
    co_return answer;
}

}  // namespace mta::dns
