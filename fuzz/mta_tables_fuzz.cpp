// Fuzz lookup table sources. The first byte picks the type; the rest is the
// file. A source either loads or throws ConfigError naming the file; a loaded
// table answers lookups in every access(5) search order without crashing.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tables/tables.h"

using namespace mta::tables;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    static const char* types[] = {"texthash", "hash", "pcre", "regexp", "cidr", "inline"};
    const char* type = types[data[0] % 6];
    Flavour flavour = (data[0] / 6) % 2 ? Flavour::aliases : Flavour::access;
    std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::shared_ptr<Table> table;
    try {
        if (std::string_view(type) == "inline") {
            table = open_table("inline:{" + std::string(text) + "}", flavour, "/");
        } else {
            table = parse_table(type, text, flavour, "fuzz");
        }
    } catch (const mta::config::ConfigError& e) {
        std::string_view what = e.what();
        if (what.find("fuzz") == std::string_view::npos && what.substr(0, 7) != "inline:") std::abort();
        return 0;
    }
    // Keys: the first line of the text, and a few fixed ones.
    std::string_view first = text.substr(0, text.find('\n'));
    for (std::string_view key : {first, std::string_view("user+ext@sub.example.com"), std::string_view("192.0.2.1"),
                                 std::string_view("2001:db8::1"), std::string_view("")}) {
        table->lookup(key);
        lookup_address(*table, key, "+-", true);
        lookup_address(*table, key, "", false);
        lookup_domain(*table, key, true);
        lookup_client_address(*table, key);
        Maps maps{table, table};
        std::string ext;
        lookup_mail_addr(maps, key, "+", true, &ext);
        lookup_mail_addr(maps, key, "", false);
    }
    return 0;
}
