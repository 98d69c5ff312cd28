// Mailbox mapping and delivery; see delivery.h.
#include "delivery.h"

#include <pwd.h>
#include <sys/fsuid.h>
#include <sysexits.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "maildir.h"
#include "recipient.h"

namespace maildir {

namespace {

// Switch this thread's file-system identity for the scope; restores on exit.
class FsIdentity {
public:
    FsIdentity(bool wanted, uid_t uid, gid_t gid) {
        if (!wanted || ::geteuid() != 0) return;
        // Group first: once fsuid is not root we may no longer change fsgid.
        old_gid_ = static_cast<gid_t>(::setfsgid(gid));
        old_uid_ = static_cast<uid_t>(::setfsuid(uid));
        ok_ = static_cast<uid_t>(::setfsuid(uid)) == uid &&
              static_cast<gid_t>(::setfsgid(gid)) == gid;
        active_ = true;
    }
    ~FsIdentity() {
        if (!active_) return;
        ::setfsuid(old_uid_);
        ::setfsgid(old_gid_);
    }
    FsIdentity(const FsIdentity&) = delete;
    FsIdentity& operator=(const FsIdentity&) = delete;
    bool ok() const { return !active_ || ok_; }

private:
    bool active_ = false;
    bool ok_ = false;
    uid_t old_uid_ = 0;
    gid_t old_gid_ = 0;
};

Resolution found(Target t) {
    Resolution r;
    r.status = Status::delivered;
    r.target = std::move(t);
    return r;
}

Resolution refused(Status s, std::string detail) {
    Resolution r;
    r.status = s;
    r.detail = std::move(detail);
    return r;
}

// getpwnam_r: nullopt when the user does not exist; throws-free errno on lookup failure.
struct PwLookup {
    bool found = false;
    bool failed = false;  // NSS error: temporary
    std::string home;
    uid_t uid = 0;
    gid_t gid = 0;
};

PwLookup lookup_user(const std::string& name) {
    PwLookup out;
    long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buf(hint > 0 ? static_cast<std::size_t>(hint) : 16384);
    struct passwd pw;
    struct passwd* res = nullptr;
    int rc;
    while ((rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res)) == ERANGE &&
           buf.size() < (1u << 20))
        buf.resize(buf.size() * 2);
    if (rc != 0 && rc != ENOENT && rc != ESRCH && rc != EBADF && rc != EPERM) {
        out.failed = true;
        return out;
    }
    if (!res) return out;
    out.found = true;
    out.home = pw.pw_dir ? pw.pw_dir : "";
    out.uid = pw.pw_uid;
    out.gid = pw.pw_gid;
    return out;
}

bool domain_listed(const std::vector<std::string>& domains, const std::string& domain) {
    for (const auto& d : domains)
        if (d == domain) return true;
    return false;
}

}  // namespace

std::string_view status_name(Status s) {
    switch (s) {
        case Status::delivered: return "delivered";
        case Status::unknown_user: return "unknown_user";
        case Status::unknown_domain: return "unknown_domain";
        case Status::bad_address: return "bad_address";
        case Status::over_quota: return "over_quota";
        case Status::too_big: return "too_big";
        case Status::temp_fail: return "temp_fail";
    }
    return "temp_fail";
}

Resolution resolve(const State& state, const proto::smtp::Address& rcpt) {
    const Settings& s = state.settings;
    std::string domain = lower(rcpt.domain);
    std::string local = lower(rcpt.local);
    auto split = split_extension(rcpt.local, s.recipient_delimiter);
    std::string user = lower(split.user);
    std::string folder;
    if (split.has_delimiter && !split.extension.empty()) {
        // The extension keeps its case: Maildir++ folder names are case-sensitive.
        if (!safe_folder(split.extension))
            return refused(Status::bad_address, "unsafe address extension");
        folder = "." + split.extension;
    }

    if (s.mode == Mode::system) {
        if (!s.local_domains.empty() && !domain_listed(s.local_domains, domain))
            return refused(Status::unknown_domain, "domain not served here");
        // The whole local part first (a user may have the delimiter in its name).
        for (int attempt = 0; attempt < 2; ++attempt) {
            const std::string& name = attempt == 0 ? local : user;
            if (attempt == 1 && !split.has_delimiter) break;
            if (!safe_component(name)) {
                if (attempt == 0 && split.has_delimiter) continue;
                return refused(Status::bad_address, "unsafe local part");
            }
            auto pw = lookup_user(name);
            if (pw.failed) return refused(Status::temp_fail, "user lookup failed");
            if (!pw.found) continue;
            if (pw.home.empty() || pw.home.front() != '/')
                return refused(Status::temp_fail, "user has no home directory");
            Target t;
            t.maildir = (pw.home == "/" ? "" : pw.home) + "/" + s.home_maildir;
            t.folder = attempt == 0 ? "" : folder;
            t.mailbox = name;
            t.uid = pw.uid;
            t.gid = pw.gid;
            t.switch_ids = true;
            return found(std::move(t));
        }
        return refused(Status::unknown_user, "no such user");
    }

    if (!state.virtual_domain_set.contains(domain))
        return refused(Status::unknown_domain, "domain not served here");
    if (!safe_component(domain)) return refused(Status::bad_address, "unsafe domain");
    for (int attempt = 0; attempt < 2; ++attempt) {
        const std::string& name = attempt == 0 ? local : user;
        if (attempt == 1 && !split.has_delimiter) break;
        if (!state.virtual_mailboxes.contains(name + "@" + domain)) continue;
        if (!safe_component(name)) return refused(Status::bad_address, "unsafe local part");
        Target t;
        t.maildir = s.virtual_base + "/" + domain + "/" + name;
        t.folder = attempt == 0 ? "" : folder;
        t.mailbox = name + "@" + domain;
        t.uid = s.virtual_uid;
        t.gid = s.virtual_gid;
        t.switch_ids = s.virtual_switch_ids;
        t.create_below = s.virtual_base;
        return found(std::move(t));
    }
    // An unsafe local part is refused as such even when unlisted, for the logs.
    if (!safe_component(local)) return refused(Status::bad_address, "unsafe local part");
    return refused(Status::unknown_user, "no such mailbox");
}

std::string trace_headers(const Envelope& e) {
    std::string out = "Return-Path: <";
    out += e.sender;
    out += ">\nDelivered-To: ";
    out += e.recipient;
    out += "\n";
    return out;
}

Outcome deliver(const State& state, const Target& target, const Envelope& envelope,
                std::string_view message) {
    return deliver_prepared(state, target, trace_headers(envelope), message);
}

Outcome deliver_prepared(const State& state, const Target& target, std::string_view prefix,
                         std::string_view message) {
    Outcome out;
    FsIdentity as_owner(target.switch_ids, target.uid, target.gid);
    if (!as_owner.ok()) {
        out.detail = "cannot switch to the mailbox owner";
        return out;
    }
    WriteOptions options;
    options.hostname = state.settings.hostname;
    options.quota = state.settings.quota;
    options.tmp_max_age = state.settings.tmp_max_age;
    options.create_below = target.create_below;
    auto w = maildir::deliver(target.maildir, target.folder, prefix, message,
                              options);
    switch (w.status) {
        case WriteResult::Status::ok:
            out.status = Status::delivered;
            out.file = std::move(w.file);
            break;
        case WriteResult::Status::over_quota:
            out.status = Status::over_quota;
            out.detail = std::move(w.error);
            break;
        case WriteResult::Status::failed:
            out.status = Status::temp_fail;
            out.detail = std::move(w.error);
            out.error_number = w.error_number;
            break;
    }
    return out;
}

SmtpReply to_reply(const Outcome& o) {
    switch (o.status) {
        case Status::delivered: {
            // The file's unique name (without ",S=..."): Postfix logs the
            // reply, so an operator can find the message from its log line.
            std::string_view name = o.file;
            if (auto slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
            name = name.substr(0, name.find(','));
            if (name.empty()) return {250, "2.0.0", "Delivered"};
            return {250, "2.0.0", "Delivered as " + std::string(name)};
        }
        case Status::unknown_user: return {550, "5.1.1", "No such user here"};
        case Status::unknown_domain: return {550, "5.1.2", "Domain not served here"};
        case Status::bad_address: return {550, "5.1.3", "Recipient address refused: " + o.detail};
        case Status::over_quota: return {552, "5.2.2", "Mailbox full"};
        case Status::too_big: return {552, "5.3.4", "Message too big"};
        case Status::temp_fail:
            // The reason class only; paths and errno text stay in our log.
            if (o.error_number == ENOSPC || o.error_number == EDQUOT)
                return {452, "4.3.1", "Insufficient system storage, try again later"};
            return {451, "4.3.0", "Temporary delivery failure, try again later"};
    }
    return {451, "4.3.0", "Temporary delivery failure, try again later"};
}

int to_exit_code(Status s) {
    switch (s) {
        case Status::delivered: return EX_OK;
        case Status::unknown_user: return EX_NOUSER;
        case Status::unknown_domain: return EX_NOHOST;
        case Status::bad_address: return EX_DATAERR;
        case Status::over_quota: return EX_CANTCREAT;
        case Status::too_big: return EX_DATAERR;
        case Status::temp_fail: return EX_TEMPFAIL;
    }
    return EX_TEMPFAIL;
}

}  // namespace maildir
