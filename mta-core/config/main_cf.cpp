// main.cf reader (postconf(5) syntax). See config.h.
#include <fstream>
#include <sstream>

#include "config.h"
#include "logical_lines.h"

namespace mta::config {

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError("open " + path + ": cannot read the file");
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad()) throw ConfigError("read " + path + ": I/O error");
    return std::move(buf).str();
}

}  // namespace

MainCf parse_main_cf(std::string_view text, const std::string& file) {
    MainCf cf;
    cf.path = file;
    for (auto& ll : detail::logical_lines(text, file, &cf.warnings)) {
        std::string where = file + ", line " + std::to_string(ll.line) + ": ";
        // split_nameval(3): the name ends at whitespace or '='.
        std::string_view s = ll.text;
        std::size_t n = 0;
        while (n < s.size() && !detail::is_space(s[n]) && s[n] != '=') ++n;
        std::string_view name = s.substr(0, n);
        std::string_view rest = s.substr(n);
        while (!rest.empty() && detail::is_space(rest.front())) rest.remove_prefix(1);
        if (name.empty()) throw ConfigError(where + "missing attribute name: \"" + ll.text + "\"");
        if (rest.empty() || rest.front() != '=')
            throw ConfigError(where + "missing '=' after attribute name: \"" + ll.text + "\"");
        rest.remove_prefix(1);
        std::string value(detail::trim(rest));
        auto it = cf.params.find(name);
        if (it != cf.params.end()) {
            cf.warnings.push_back(where + "overriding earlier entry: " + std::string(name) + "=" +
                                  it->second.value);
            it->second = RawParam{std::move(value), file, ll.line};
        } else {
            cf.params.emplace(std::string(name), RawParam{std::move(value), file, ll.line});
        }
    }
    return cf;
}

MainCf load_main_cf(const std::string& path) { return parse_main_cf(read_file(path), path); }

std::vector<MasterEntry> load_master_cf(const std::string& path) {
    return parse_master_cf(read_file(path), path);
}

}  // namespace mta::config
