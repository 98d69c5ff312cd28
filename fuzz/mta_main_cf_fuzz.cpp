// Fuzz main.cf: any text either parses or throws ConfigError naming the file;
// every parameter expands or throws ConfigError naming where it was set;
// postconf -n output reads back without error and prints no more (a name
// that was used only by an unprinted parameter is dropped the second time).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/config.h"

using namespace mta::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    MainCf cf;
    try {
        cf = parse_main_cf(text, "fuzz");
    } catch (const ConfigError& e) {
        if (std::string_view(e.what()).substr(0, 4) != "fuzz") std::abort();
        return 0;
    }
    Settings s(cf, std::vector<std::string>{"policy-spf"});
    for (const auto& [name, p] : cf.params) {
        try {
            s.str(name);
            s.list(name);
        } catch (const ConfigError& e) {
            if (std::string_view(e.what()).substr(0, 4) != "fuzz") std::abort();
        }
        try {
            s.time(name);
        } catch (const ConfigError&) {
        }
        try {
            s.integer(name, -1000, 1000);
        } catch (const ConfigError&) {
        }
        try {
            s.boolean(name);
        } catch (const ConfigError&) {
        }
    }
    try {
        s.validate();
    } catch (const ConfigError&) {
    }
    s.ignored_notes();
    try {
        s.check_values();
    } catch (const ConfigError&) {
    }
    std::string printed = s.print_non_default();
    Settings again(parse_main_cf(printed, "fuzz"), std::vector<std::string>{"policy-spf"});
    if (again.print_non_default().size() > printed.size()) std::abort();
    return 0;
}
