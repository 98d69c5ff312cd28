// Fuzz the recipient -> Maildir mapping in virtual mode. The fuzzed address
// is also put on the mailbox list, so the path-building branch is reached;
// whatever it is, an accepted recipient must map to exactly
// BASE/<domain>/<local part> with two safe components, and a folder must be
// one safe Maildir++ name.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "delivery.h"
#include "recipient.h"
#include "smtp/address.h"

namespace {

bool safe_path_below(const std::string& path, const std::string& base, int components) {
    if (!path.starts_with(base + "/")) return false;
    std::string_view rest(path);
    rest.remove_prefix(base.size() + 1);
    for (int i = 0; i < components; ++i) {
        auto slash = rest.find('/');
        std::string_view part = rest.substr(0, slash);
        if (!maildir::safe_component(part)) return false;
        if ((slash == std::string_view::npos) != (i == components - 1)) return false;
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto addr = proto::smtp::parse_mailbox(input);
    if (!addr) return 0;
    maildir::State state;
    state.settings.mode = maildir::Mode::virtual_mailbox;
    state.settings.virtual_base = "/var/vmail";
    state.settings.recipient_delimiter = "+-";
    std::string local = maildir::lower(addr->local), domain = maildir::lower(addr->domain);
    auto split = maildir::split_extension(addr->local, "+-");
    state.virtual_mailboxes = {local + "@" + domain, maildir::lower(split.user) + "@" + domain};
    state.virtual_domain_set = {domain};
    auto r = maildir::resolve(state, *addr);
    if (r.status != maildir::Status::delivered) return 0;
    if (!safe_path_below(r.target.maildir, "/var/vmail", 2)) std::abort();
    if (!r.target.folder.empty() &&
        (r.target.folder[0] != '.' || !maildir::safe_folder(std::string_view(r.target.folder).substr(1))))
        std::abort();
    return 0;
}
