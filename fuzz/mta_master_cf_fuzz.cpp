// Fuzz master.cf: any text either parses or throws ConfigError naming the
// file; every parsed entry has its eight fields, and settings for each
// service can be built (or refused with ConfigError).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/config.h"

using namespace mta::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::vector<MasterEntry> entries;
    try {
        entries = parse_master_cf(text, "fuzz");
    } catch (const ConfigError& e) {
        if (std::string_view(e.what()).substr(0, 4) != "fuzz") std::abort();
        return 0;
    }
    Settings s(parse_main_cf("myhostname = h.example\n", "main.cf"), entries);
    for (const auto& e : entries) {
        if (e.service.empty() || e.type.empty() || e.command.empty() || e.line < 1) std::abort();
        for (const auto& [n, v] : e.overrides)
            if (n.empty()) std::abort();
        try {
            Settings svc = s.with_service(e);
            svc.validate();
            for (const auto& [n, v] : e.overrides) svc.str(n);
        } catch (const ConfigError&) {
        }
    }
    return 0;
}
