// The virtual_mailboxes file; see mailbox_list.h.
#include "mailbox_list.h"

#include "recipient.h"
#include "smtp/address.h"

namespace maildir {

std::unordered_set<std::string> parse_mailbox_list(std::string_view content,
                                                   const std::string& source) {
    std::unordered_set<std::string> out;
    std::size_t number = 0;
    while (!content.empty()) {
        ++number;
        auto nl = content.find('\n');
        std::string_view line = content.substr(0, nl);
        content = nl == std::string_view::npos ? std::string_view{} : content.substr(nl + 1);
        auto hash = line.find('#');
        if (hash != std::string_view::npos) line = line.substr(0, hash);
        auto start = line.find_first_not_of(" \t\r");
        if (start == std::string_view::npos) continue;
        auto end = line.find_first_of(" \t\r", start);
        std::string_view word = line.substr(start, end == std::string_view::npos ? end : end - start);
        std::string why;
        auto addr = proto::smtp::parse_mailbox(word, &why);
        if (addr && addr->local.empty()) why = "empty local part";  // "" is never deliverable
        if (!addr || addr->local.empty())
            throw std::invalid_argument(source + ":" + std::to_string(number) + ": \"" +
                                        std::string(word) + "\": " + why);
        out.insert(lower(addr->local) + "@" + lower(addr->domain));
    }
    return out;
}

}  // namespace maildir
