// Deferral notes; see defer_info.h.
#include "queue/defer_info.h"

#include <charconv>

#include "queue/queue_file.h"

namespace mta::queue {

std::string serialize(const DeferInfo& info) {
    std::string out = "next=" + std::to_string(info.next_attempt) + "\n";
    if (info.warned) out += "warned=1\n";
    for (const auto& [rcpt, reason] : info.reasons) {
        std::string cut = reason.substr(0, max_defer_reason);
        out += "rcpt=" + escape(rcpt) + " " + escape(cut) + "\n";
    }
    return out;
}

std::optional<DeferInfo> parse_defer_info(std::string_view text) {
    DeferInfo info;
    bool have_next = false;
    while (!text.empty()) {
        auto lf = text.find('\n');
        if (lf == std::string_view::npos) return std::nullopt;
        std::string_view line = text.substr(0, lf);
        text.remove_prefix(lf + 1);
        if (line.starts_with("next=")) {
            std::string_view v = line.substr(5);
            auto r = std::from_chars(v.data(), v.data() + v.size(), info.next_attempt);
            if (r.ec != std::errc() || r.ptr != v.data() + v.size()) return std::nullopt;
            have_next = true;
        } else if (line == "warned=1") {
            info.warned = true;
        } else if (line.starts_with("rcpt=")) {
            std::string_view v = line.substr(5);
            auto sp = v.find(' ');
            if (sp == std::string_view::npos || info.reasons.size() >= max_defer_reasons) return std::nullopt;
            auto rcpt = unescape(v.substr(0, sp));
            auto reason = unescape(v.substr(sp + 1));
            if (!rcpt || !reason || reason->size() > max_defer_reason) return std::nullopt;
            info.reasons.emplace_back(std::move(*rcpt), std::move(*reason));
        } else {
            return std::nullopt;
        }
    }
    if (!have_next) return std::nullopt;
    return info;
}

}  // namespace mta::queue
