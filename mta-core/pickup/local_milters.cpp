// non_smtpd_milters for local mail; see local_milters.h.
#include "pickup/local_milters.h"

#include <strings.h>

#include <boost/asio/this_coro.hpp>
#include <algorithm>

#include "maillog.h"
#include "milter/chain.h"

namespace mta::pickup {

namespace asio = boost::asio;

asio::awaitable<LocalVerdict> run_local_milters(std::shared_ptr<const milter::MilterSettings> settings,
                                                queue::Envelope& envelope, std::string& content,
                                                std::string myhostname) {
    using Kind = milter::Outcome::Kind;
    LocalVerdict verdict;
    const std::string id = envelope.id;
    const std::string sender = envelope.sender;
    std::string current_rcpt;
    // Postfix's macros for local mail: the server's name, the queue id and
    // the envelope; nothing about a client (there is none).
    auto macros = [settings, id, sender, myhostname, &current_rcpt](std::string_view name) -> std::optional<std::string> {
        std::string_view n = name;
        if (n.size() > 2 && n.front() == '{' && n.back() == '}') n = n.substr(1, n.size() - 2);
        if (n == "j") return myhostname;
        if (n == "i") return id;
        if (n == "daemon_name") return settings->daemon_name;
        if (n == "v") return settings->v;
        if (n == "mail_addr") return sender;
        if (n == "rcpt_addr" && !current_rcpt.empty()) return current_rcpt;
        return std::nullopt;
    };
    asio::any_io_executor ex = co_await asio::this_coro::executor;
    milter::Chain chain(ex, settings, nullptr, macros, "localhost[127.0.0.1]");
    auto decided = [&](const milter::Outcome& o) {
        if (o.kind == Kind::proceed) return false;
        if (o.kind == Kind::discard) {
            verdict.kind = LocalVerdict::Kind::discard;
        } else {
            verdict.kind = o.kind == Kind::reject ? LocalVerdict::Kind::reject : LocalVerdict::Kind::tempfail;
            verdict.reply = o.reply;
        }
        return true;
    };
    proto::milter::Connect connect{"localhost", '4', 0, "127.0.0.1"};
    milter::Outcome o = co_await chain.connect(std::move(connect));
    if (!decided(o)) {
        std::string helo = "localhost";
        o = co_await chain.helo(std::move(helo));
    }
    if (!decided(o)) {
        proto::milter::Mail mail{"<" + sender + ">", {}};
        o = co_await chain.mail(std::move(mail));
    }
    if (!decided(o)) {
        for (const auto& r : envelope.recipients) {
            current_rcpt = r.address;
            proto::milter::Rcpt rcpt{"<" + r.address + ">", {}};
            milter::Outcome ro = co_await chain.rcpt(std::move(rcpt));
            if (ro.kind == Kind::reject || ro.kind == Kind::tempfail)
                maillog::line("cleanup", id + ": warning: milter " + maillog::printable(ro.milter) +
                                             ": ignoring a refusal of recipient <" + maillog::printable(r.address) +
                                             "> of local mail: " + maillog::printable(ro.reply));
        }
        current_rcpt.clear();
        o = co_await chain.data();
    }
    milter::EnvelopeEdits edits;
    if (!decided(o)) {
        o = co_await chain.message(content, edits);
        decided(o);
    }
    co_await chain.quit();
    if (verdict.kind != LocalVerdict::Kind::queue) co_return verdict;
    if (edits.sender) envelope.sender = *edits.sender;
    for (const auto& gone : edits.deleted)
        envelope.recipients.erase(std::remove_if(envelope.recipients.begin(), envelope.recipients.end(),
                                                 [&](const queue::Recipient& r) {
                                                     return ::strcasecmp(r.address.c_str(), gone.c_str()) == 0;
                                                 }),
                                  envelope.recipients.end());
    for (const auto& added : edits.added) envelope.recipients.push_back({added, added, false, 0});
    if (envelope.recipients.empty()) {
        verdict.kind = LocalVerdict::Kind::discard;  // every recipient deleted
        co_return verdict;
    }
    if (edits.quarantine) {
        verdict.kind = LocalVerdict::Kind::hold;
        verdict.hold_reason = *edits.quarantine;
    }
    co_return verdict;
}

}  // namespace mta::pickup
