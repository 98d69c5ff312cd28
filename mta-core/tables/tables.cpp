// Lookup tables and access(5) search orders. See tables.h.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tables/tables.h"

#include <pcre2.h>
#include <pwd.h>
#include <regex.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "config/logical_lines.h"
#include "net/address.h"

namespace mta::tables {

using config::ConfigError;
namespace detail = config::detail;

namespace {

std::string fold(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string at(const std::string& file, int line) { return file + ", line " + std::to_string(line) + ": "; }

// ------------------------------------------------------------ indexed

// texthash, hash, lmdb (source file), inline, and the aliases(5) flavour.
class IndexedTable final : public Table {
public:
    explicit IndexedTable(std::string spec) : spec_(std::move(spec)) {}
    std::optional<std::string> lookup(std::string_view key) const override {
        auto it = map_.find(fold(key));
        if (it == map_.end()) return std::nullopt;
        return it->second;
    }
    bool is_pattern() const override { return false; }
    const std::string& spec() const override { return spec_; }
    std::vector<std::string> warnings() const override { return warnings_; }

    // First definition wins, with a warning, as postmap -w... does by default.
    void add(std::string key, std::string value, const std::string& where) {
        std::string k = fold(key);
        if (map_.contains(k)) {
            warnings_.push_back(where + "duplicate entry: \"" + k + "\"");
            return;
        }
        map_.emplace(std::move(k), std::move(value));
    }

private:
    std::string spec_;
    std::map<std::string, std::string, std::less<>> map_;
    std::vector<std::string> warnings_;
};

void load_access_source(IndexedTable& t, std::string_view text, const std::string& file) {
    for (auto& ll : detail::logical_lines(text, file, nullptr)) {
        std::string_view s = detail::trim(ll.text);
        std::size_t n = 0;
        while (n < s.size() && !detail::is_space(s[n])) ++n;
        std::string_view key = s.substr(0, n);
        std::string_view value = detail::trim(s.substr(n));
        if (value.empty())
            throw ConfigError(at(file, ll.line) + "expected format: key whitespace value: \"" +
                              std::string(s) + "\"");
        t.add(std::string(key), std::string(value), at(file, ll.line));
    }
}

void load_aliases_source(IndexedTable& t, std::string_view text, const std::string& file) {
    for (auto& ll : detail::logical_lines(text, file, nullptr)) {
        std::string_view s = detail::trim(ll.text);
        // The name ends at the first ':' outside double quotes.
        bool quoted = false;
        std::size_t colon = std::string_view::npos;
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] == '\\' && i + 1 < s.size()) {
                ++i;
            } else if (s[i] == '"') {
                quoted = !quoted;
            } else if (s[i] == ':' && !quoted) {
                colon = i;
                break;
            }
        }
        if (colon == std::string_view::npos)
            throw ConfigError(at(file, ll.line) + "expected format: name: value: \"" + std::string(s) + "\"");
        std::string_view name = detail::trim(s.substr(0, colon));
        if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
        std::string_view value = detail::trim(s.substr(colon + 1));
        if (name.empty() || value.empty())
            throw ConfigError(at(file, ll.line) + "expected format: name: value: \"" + std::string(s) + "\"");
        t.add(std::string(name), std::string(value), at(file, ll.line));
    }
}

// ------------------------------------------------------------- static

class StaticTable final : public Table {
public:
    StaticTable(std::string spec, std::string value) : spec_(std::move(spec)), value_(std::move(value)) {}
    std::optional<std::string> lookup(std::string_view) const override { return value_; }
    bool is_pattern() const override { return false; }
    const std::string& spec() const override { return spec_; }

private:
    std::string spec_, value_;
};

// ------------------------------------------------------ unix:passwd.byname

// The default local_recipient_maps reads the password file (getpwnam_r).
class PasswdTable final : public Table {
public:
    explicit PasswdTable(std::string spec) : spec_(std::move(spec)) {}
    std::optional<std::string> lookup(std::string_view key) const override {
        if (key.empty() || key.find('\0') != std::string_view::npos) return std::nullopt;
        std::string name = fold(key);
        long size = sysconf(_SC_GETPW_R_SIZE_MAX);
        std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
        struct passwd pw {};
        struct passwd* result = nullptr;
        int rc;
        while ((rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &result)) == ERANGE &&
               buf.size() < (1u << 20))
            buf.resize(buf.size() * 2);
        if (rc != 0 || result == nullptr) return std::nullopt;
        // dict_unix's result: the passwd(5) line.
        return std::string(pw.pw_name) + ":" + pw.pw_passwd + ":" + std::to_string(pw.pw_uid) + ":" +
               std::to_string(pw.pw_gid) + ":" + pw.pw_gecos + ":" + pw.pw_dir + ":" + pw.pw_shell;
    }
    bool is_pattern() const override { return false; }
    const std::string& spec() const override { return spec_; }

private:
    std::string spec_;
};

// -------------------------------------------------------- pattern rules

// Rules of a pcre, regexp or cidr table, with if/endif nesting resolved to
// jumps: an "if" that does not match skips to just after its "endif".
template <class Pattern>
struct Rules {
    struct Rule {
        enum class Kind { match, if_, endif } kind = Kind::match;
        Pattern pattern;
        std::string result;
        std::size_t skip_to = 0;  // if_: index after the matching endif
    };
    std::vector<Rule> rules;

    void close(const std::string& file, int last_line) {
        std::vector<std::size_t> stack;
        for (std::size_t i = 0; i < rules.size(); ++i) {
            if (rules[i].kind == Rule::Kind::if_) stack.push_back(i);
            if (rules[i].kind == Rule::Kind::endif) {
                if (stack.empty()) throw ConfigError(at(file, last_line) + "\"endif\" without \"if\"");
                rules[stack.back()].skip_to = i + 1;
                stack.pop_back();
            }
        }
        if (!stack.empty()) throw ConfigError(at(file, last_line) + "\"if\" has no matching \"endif\"");
    }

    // match(pattern, key, captures) -> bool
    template <class Match>
    std::optional<std::string> find(std::string_view key, Match&& match) const {
        std::size_t i = 0;
        while (i < rules.size()) {
            const Rule& r = rules[i];
            if (r.kind == Rule::Kind::endif) {
                ++i;
                continue;
            }
            std::optional<std::string> result = match(r.pattern, key, r.result);
            if (r.kind == Rule::Kind::if_) {
                i = result ? i + 1 : r.skip_to;
                continue;
            }
            if (result) return result;
            ++i;
        }
        return std::nullopt;
    }
};

// Result text with $1..$9 (also ${n}, $(n), and $$ for "$"): checked at load
// time against the number of capture groups, as Postfix's prescan does.
struct Template {
    struct Piece {
        std::string text;
        int group = -1;  // -1: literal
    };
    std::vector<Piece> pieces;
    int max_group = 0;

    static Template parse(std::string_view s, const std::string& where) {
        Template t;
        std::string lit;
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] != '$') {
                lit += s[i];
                continue;
            }
            if (i + 1 < s.size() && s[i + 1] == '$') {
                lit += '$';
                ++i;
                continue;
            }
            std::size_t j = i + 1;
            std::string_view digits;
            if (j < s.size() && (s[j] == '{' || s[j] == '(')) {
                char close = s[j] == '{' ? '}' : ')';
                std::size_t e = s.find(close, j);
                if (e == std::string_view::npos)
                    throw ConfigError(where + "unterminated $" + s[j] + " in result \"" + std::string(s) + "\"");
                digits = s.substr(j + 1, e - j - 1);
                j = e + 1;
            } else {
                std::size_t start = j;
                while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
                digits = s.substr(start, j - start);
            }
            if (digits.empty() || digits.size() > 2 ||
                digits.find_first_not_of("0123456789") != std::string_view::npos)
                throw ConfigError(where + "non-numeric replacement index in \"" + std::string(s) + "\"");
            int n = std::stoi(std::string(digits));
            if (!lit.empty()) t.pieces.push_back({std::move(lit), -1});
            lit.clear();
            t.pieces.push_back({{}, n});
            t.max_group = std::max(t.max_group, n);
            i = j - 1;
        }
        if (!lit.empty()) t.pieces.push_back({std::move(lit), -1});
        return t;
    }

    template <class Group>
    std::string expand(Group&& group) const {
        std::string out;
        for (const auto& p : pieces) out += p.group < 0 ? p.text : group(p.group);
        return out;
    }
};

// A pattern line: [!]/pattern/flags [result], or "if [!]/pattern/flags",
// or "endif". Delimiter: the first character (usually '/'); a backslash
// escapes it inside the pattern.
struct PatternLine {
    enum class Kind { match, if_, endif } kind = PatternLine::Kind::match;
    bool negate = false;
    std::string pattern, flags;
    std::string rest;  // after the flags, trimmed: the result (or, for regexp, "!/p2/ result")
};

std::string_view take_pattern(std::string_view s, std::string& pattern, std::string& flags,
                              const std::string& where) {
    if (s.empty()) throw ConfigError(where + "missing pattern");
    char delim = s.front();
    if (detail::is_space(delim) || delim == '\\' || (delim >= '0' && delim <= '9') ||
        (delim >= 'a' && delim <= 'z') || (delim >= 'A' && delim <= 'Z'))
        throw ConfigError(where + "bad pattern delimiter in \"" + std::string(s) + "\"");
    std::size_t i = 1;
    for (; i < s.size() && s[i] != delim; ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            if (s[i + 1] != delim) pattern += s[i];
            ++i;
        }
        pattern += s[i];
    }
    if (i >= s.size()) throw ConfigError(where + "no closing pattern delimiter in \"" + std::string(s) + "\"");
    ++i;
    while (i < s.size() && !detail::is_space(s[i]) && s[i] != '!') flags += s[i++];
    return s.substr(i);
}

PatternLine parse_pattern_line(std::string_view text, const std::string& where) {
    PatternLine pl;
    std::string_view s = detail::trim(text);
    auto keyword = [&](std::string_view kw) {
        return s.size() >= kw.size() && fold(s.substr(0, kw.size())) == kw &&
               (s.size() == kw.size() || detail::is_space(s[kw.size()]));
    };
    if (keyword("endif")) {
        if (!detail::trim(s.substr(5)).empty()) throw ConfigError(where + "text after \"endif\"");
        pl.kind = PatternLine::Kind::endif;
        return pl;
    }
    if (keyword("if")) {
        pl.kind = PatternLine::Kind::if_;
        s = detail::trim(s.substr(2));
    }
    if (!s.empty() && s.front() == '!') {
        pl.negate = true;
        s = detail::trim(s.substr(1));
    }
    std::string_view rest = take_pattern(s, pl.pattern, pl.flags, where);
    pl.rest = std::string(detail::trim(rest));
    if (pl.kind == PatternLine::Kind::if_ && !pl.rest.empty())
        throw ConfigError(where + "text after \"if\" pattern: \"" + pl.rest + "\"");
    return pl;
}

// --------------------------------------------------------------- pcre

struct PcreCode {
    std::shared_ptr<pcre2_code> code;
    bool negate = false;
    Template result;
};

class PcreTable final : public Table {
public:
    PcreTable(std::string_view text, const std::string& file, std::string spec) : spec_(std::move(spec)) {
        int last = 0;
        int depth = 0;
        for (auto& ll : detail::logical_lines(text, file, nullptr)) {
            std::string where = at(file, ll.line);
            last = ll.line;
            PatternLine pl = parse_pattern_line(ll.text, where);
            Rules<PcreCode>::Rule r;
            if (pl.kind == PatternLine::Kind::endif) {
                if (depth-- == 0) throw ConfigError(where + "\"endif\" without \"if\"");
                r.kind = Rules<PcreCode>::Rule::Kind::endif;
                rules_.rules.push_back(std::move(r));
                continue;
            }
            uint32_t options = PCRE2_CASELESS;
            for (char f : pl.flags) {
                switch (f) {
                    case 'i': options ^= PCRE2_CASELESS; break;
                    case 'm': options ^= PCRE2_MULTILINE; break;
                    case 's': options ^= PCRE2_DOTALL; break;
                    case 'x': options ^= PCRE2_EXTENDED; break;
                    case 'A': options ^= PCRE2_ANCHORED; break;
                    case 'E': options ^= PCRE2_DOLLAR_ENDONLY; break;
                    case 'U': options ^= PCRE2_UNGREEDY; break;
                    case 'X': break;  // PCRE_EXTRA: always on in PCRE2
                    default: throw ConfigError(where + "unknown pcre flag '" + std::string(1, f) + "'");
                }
            }
            int err = 0;
            PCRE2_SIZE offset = 0;
            pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pl.pattern.data()), pl.pattern.size(),
                                             options, &err, &offset, nullptr);
            if (!code) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(err, msg, sizeof msg);
                throw ConfigError(where + "error in pattern \"" + pl.pattern + "\" at offset " +
                                  std::to_string(offset) + ": " + reinterpret_cast<char*>(msg));
            }
            r.pattern.code.reset(code, pcre2_code_free);
            r.pattern.negate = pl.negate;
            if (pl.kind == PatternLine::Kind::if_) {
                ++depth;
                r.kind = Rules<PcreCode>::Rule::Kind::if_;
                rules_.rules.push_back(std::move(r));
                continue;
            }
            if (pl.rest.empty()) throw ConfigError(where + "no result after pattern \"" + pl.pattern + "\"");
            r.pattern.result = Template::parse(pl.rest, where);
            uint32_t groups = 0;
            pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &groups);
            if (r.pattern.result.max_group > 0 && pl.negate)
                throw ConfigError(where + "$number in result of a negated pattern");
            if (static_cast<uint32_t>(r.pattern.result.max_group) > groups)
                throw ConfigError(where + "out-of-range replacement index $" +
                                  std::to_string(r.pattern.result.max_group) + " (pattern has " +
                                  std::to_string(groups) + " groups)");
            rules_.rules.push_back(std::move(r));
        }
        rules_.close(file, last);
    }

    std::optional<std::string> lookup(std::string_view key) const override {
        return rules_.find(key, [](const PcreCode& p, std::string_view k,
                                   const std::string&) -> std::optional<std::string> {
            std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
                pcre2_match_data_create_from_pattern(p.code.get(), nullptr), pcre2_match_data_free);
            if (!md) return std::nullopt;
            int rc = pcre2_match(p.code.get(), reinterpret_cast<PCRE2_SPTR>(k.data()), k.size(), 0, 0,
                                 md.get(), nullptr);
            bool matched = rc >= 0;  // errors (match limit) count as no match
            if (matched == p.negate) return std::nullopt;
            if (p.negate) return p.result.expand([](int) { return std::string(); });
            PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
            uint32_t pairs = pcre2_get_ovector_count(md.get());
            return p.result.expand([&](int n) {
                if (static_cast<uint32_t>(n) >= pairs || n >= rc || ov[2 * n] == PCRE2_UNSET) return std::string();
                return std::string(k.substr(ov[2 * n], ov[2 * n + 1] - ov[2 * n]));
            });
        });
    }
    bool is_pattern() const override { return true; }
    const std::string& spec() const override { return spec_; }

private:
    std::string spec_;
    Rules<PcreCode> rules_;
};

// ------------------------------------------------------------- regexp

struct PosixRegex {
    std::shared_ptr<regex_t> re;
    static PosixRegex compile(const std::string& pattern, const std::string& flags, const std::string& where) {
        int cflags = REG_EXTENDED | REG_ICASE;
        for (char f : flags) {
            switch (f) {
                case 'i': cflags ^= REG_ICASE; break;
                case 'x': cflags ^= REG_EXTENDED; break;
                case 'm': cflags ^= REG_NEWLINE; break;
                default: throw ConfigError(where + "unknown regexp flag '" + std::string(1, f) + "'");
            }
        }
        if (pattern.find('\0') != std::string::npos) throw ConfigError(where + "NUL in pattern");
        auto* re = new regex_t;
        int rc = regcomp(re, pattern.c_str(), cflags);
        if (rc != 0) {
            char msg[256];
            regerror(rc, re, msg, sizeof msg);
            delete re;
            throw ConfigError(where + "error in pattern \"" + pattern + "\": " + msg);
        }
        return PosixRegex{std::shared_ptr<regex_t>(re, [](regex_t* r) {
            regfree(r);
            delete r;
        })};
    }
};

struct RegexpRule {
    PosixRegex first;
    bool negate = false;
    std::optional<PosixRegex> unless;  // "/p1/!/p2/": p1 matches and p2 does not
    Template result;
};

class RegexpTable final : public Table {
public:
    RegexpTable(std::string_view text, const std::string& file, std::string spec) : spec_(std::move(spec)) {
        int last = 0;
        int depth = 0;
        using Kind = Rules<RegexpRule>::Rule::Kind;
        for (auto& ll : detail::logical_lines(text, file, nullptr)) {
            std::string where = at(file, ll.line);
            last = ll.line;
            PatternLine pl = parse_pattern_line(ll.text, where);
            Rules<RegexpRule>::Rule r;
            if (pl.kind == PatternLine::Kind::endif) {
                if (depth-- == 0) throw ConfigError(where + "\"endif\" without \"if\"");
                r.kind = Kind::endif;
                rules_.rules.push_back(std::move(r));
                continue;
            }
            r.pattern.first = PosixRegex::compile(pl.pattern, pl.flags, where);
            r.pattern.negate = pl.negate;
            if (pl.kind == PatternLine::Kind::if_) {
                ++depth;
                r.kind = Kind::if_;
                rules_.rules.push_back(std::move(r));
                continue;
            }
            std::string_view rest = pl.rest;
            if (!rest.empty() && rest.front() == '!' && !pl.negate) {
                std::string p2, f2;
                rest = detail::trim(take_pattern(rest.substr(1), p2, f2, where));
                r.pattern.unless = PosixRegex::compile(p2, f2, where);
            }
            if (rest.empty()) throw ConfigError(where + "no result after pattern \"" + pl.pattern + "\"");
            r.pattern.result = Template::parse(rest, where);
            if (r.pattern.result.max_group > 0 && (pl.negate || r.pattern.unless))
                throw ConfigError(where + "$number in result of a negated pattern");
            if (static_cast<std::size_t>(r.pattern.result.max_group) > r.pattern.first.re->re_nsub)
                throw ConfigError(where + "out-of-range replacement index $" +
                                  std::to_string(r.pattern.result.max_group));
            rules_.rules.push_back(std::move(r));
        }
        rules_.close(file, last);
    }

    std::optional<std::string> lookup(std::string_view key) const override {
        if (key.find('\0') != std::string_view::npos) return std::nullopt;
        std::string k(key);
        return rules_.find(k, [&](const RegexpRule& p, std::string_view,
                                  const std::string&) -> std::optional<std::string> {
            regmatch_t m[10];
            bool matched = regexec(p.first.re.get(), k.c_str(), 10, m, 0) == 0;
            if (matched == p.negate) return std::nullopt;
            if (p.unless && regexec(p.unless->re.get(), k.c_str(), 0, nullptr, 0) == 0) return std::nullopt;
            return p.result.expand([&](int n) {
                if (p.negate || n > 9 || m[n].rm_so < 0) return std::string();
                return k.substr(m[n].rm_so, m[n].rm_eo - m[n].rm_so);
            });
        });
    }
    bool is_pattern() const override { return true; }
    const std::string& spec() const override { return spec_; }

private:
    std::string spec_;
    Rules<RegexpRule> rules_;
};

// --------------------------------------------------------------- cidr

struct CidrPattern {
    proto::net::Cidr cidr;
    bool negate = false;
    std::string result;
};

class CidrTable final : public Table {
public:
    CidrTable(std::string_view text, const std::string& file, std::string spec) : spec_(std::move(spec)) {
        int last = 0;
        int depth = 0;
        using Kind = Rules<CidrPattern>::Rule::Kind;
        for (auto& ll : detail::logical_lines(text, file, nullptr)) {
            std::string where = at(file, ll.line);
            last = ll.line;
            std::string_view s = detail::trim(ll.text);
            Rules<CidrPattern>::Rule r;
            auto word_end = [](std::string_view v) {
                std::size_t n = 0;
                while (n < v.size() && !detail::is_space(v[n])) ++n;
                return n;
            };
            std::size_t n = word_end(s);
            std::string first = fold(s.substr(0, n));
            if (first == "endif") {
                if (!detail::trim(s.substr(n)).empty()) throw ConfigError(where + "text after \"endif\"");
                if (depth-- == 0) throw ConfigError(where + "\"endif\" without \"if\"");
                r.kind = Kind::endif;
                rules_.rules.push_back(std::move(r));
                continue;
            }
            bool is_if = first == "if";
            if (is_if) {
                s = detail::trim(s.substr(n));
                n = word_end(s);
            }
            std::string_view net = s.substr(0, n);
            std::string_view rest = detail::trim(s.substr(n));
            if (!net.empty() && net.front() == '!') {
                r.pattern.negate = true;
                net.remove_prefix(1);
            }
            auto cidr = proto::net::Cidr::parse(net);
            if (!cidr) throw ConfigError(where + "bad net/mask pattern: \"" + std::string(net) + "\"");
            // Cidr::parse masks the host bits; Postfix refuses them (a typo
            // such as 192.0.2.1/24 would otherwise widen a rule silently).
            std::string_view host = net.substr(0, net.find('/'));
            if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
            auto written = proto::net::IpAddress::parse(host);
            if (!written || !(*written == cidr->network))
                throw ConfigError(where + "non-null host address bits in \"" + std::string(net) +
                                  "\", perhaps you should use \"" + cidr->to_string() + "\" instead");
            r.pattern.cidr = *cidr;
            if (is_if) {
                if (!rest.empty()) throw ConfigError(where + "text after \"if\" pattern");
                ++depth;
                r.kind = Kind::if_;
            } else {
                if (rest.empty()) throw ConfigError(where + "no result after \"" + std::string(net) + "\"");
                r.pattern.result = std::string(rest);
            }
            rules_.rules.push_back(std::move(r));
        }
        rules_.close(file, last);
    }

    std::optional<std::string> lookup(std::string_view key) const override {
        auto ip = proto::net::IpAddress::parse(key);
        if (!ip) return std::nullopt;
        return rules_.find(key, [&](const CidrPattern& p, std::string_view,
                                    const std::string&) -> std::optional<std::string> {
            bool in = p.cidr.network.v6 == ip->v6 && p.cidr.contains(*ip);
            if (in == p.negate) return std::nullopt;
            return p.result;
        });
    }
    bool is_pattern() const override { return true; }
    const std::string& spec() const override { return spec_; }

private:
    std::string spec_;
    Rules<CidrPattern> rules_;
};

std::string read_source(const std::string& path, std::string_view spec) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError(std::string(spec) + ": open " + path + ": " + std::strerror(errno));
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad()) throw ConfigError(std::string(spec) + ": read " + path + ": I/O error");
    return std::move(buf).str();
}

}  // namespace

std::shared_ptr<Table> parse_table(std::string_view type, std::string_view text, Flavour flavour,
                                   const std::string& name) {
    if (type == "texthash" || type == "hash" || type == "lmdb") {
        auto t = std::make_shared<IndexedTable>(std::string(type) + ":" + name);
        if (flavour == Flavour::aliases) {
            load_aliases_source(*t, text, name);
        } else {
            load_access_source(*t, text, name);
        }
        return t;
    }
    std::string spec = std::string(type) + ":" + name;
    if (type == "pcre") return std::make_shared<PcreTable>(text, name, spec);
    if (type == "regexp") return std::make_shared<RegexpTable>(text, name, spec);
    if (type == "cidr") return std::make_shared<CidrTable>(text, name, spec);
    throw ConfigError(spec + ": unsupported table type \"" + std::string(type) + "\"");
}

std::shared_ptr<Table> open_table(std::string_view spec_in, Flavour flavour, const std::string& config_dir) {
    std::string spec(detail::trim(spec_in));
    std::string_view s = spec;
    if (s.starts_with("proxy:")) s.remove_prefix(6);
    std::size_t colon = s.find(':');
    if (colon == std::string_view::npos || colon == 0)
        throw ConfigError(spec + ": expected a table as type:name");
    std::string_view type = s.substr(0, colon);
    std::string_view name = s.substr(colon + 1);
    if (type == "static") {
        std::string value(name);
        if (!value.empty() && value.front() == '{' && !detail::strip_braces(value, value))
            throw ConfigError(spec + ": unbalanced '{' in static value");
        return std::make_shared<StaticTable>(spec, value);
    }
    if (type == "inline") {
        std::string inner;
        if (!detail::strip_braces(name, inner))
            throw ConfigError(spec + ": expected inline:{ name=value, ... }");
        auto t = std::make_shared<IndexedTable>(spec);
        for (auto& item : config::split_list(inner)) {
            std::string text = item;
            if (text.front() == '{' && !detail::strip_braces(item, text))
                throw ConfigError(spec + ": unbalanced '{' in \"" + item + "\"");
            auto nv = config::split_nameval(text);
            if (!nv) throw ConfigError(spec + ": expected name=value, got \"" + text + "\"");
            t->add(nv->first, nv->second, spec + ": ");
        }
        return t;
    }
    if (type == "unix") {
        if (name != "passwd.byname")
            throw ConfigError(spec + ": unsupported unix: table (only unix:passwd.byname)");
        return std::make_shared<PasswdTable>(spec);
    }
    if (type != "texthash" && type != "hash" && type != "lmdb" && type != "pcre" && type != "regexp" &&
        type != "cidr")
        throw ConfigError(spec + ": unsupported table type \"" + std::string(type) +
                          "\" (supported: inline, static, texthash, hash, lmdb, cidr, pcre, regexp, "
                          "unix:passwd.byname; convert other tables to a texthash source file)");
    if (name.empty()) throw ConfigError(spec + ": missing file name");
    std::string path(name);
    if (path.front() != '/') path = config_dir + "/" + path;
    auto t = parse_table(type, read_source(path, spec), flavour, path);
    // Report the spec as written.
    struct Named final : Table {
        std::shared_ptr<Table> inner;
        std::string spec_;
        std::optional<std::string> lookup(std::string_view key) const override { return inner->lookup(key); }
        bool is_pattern() const override { return inner->is_pattern(); }
        const std::string& spec() const override { return spec_; }
        std::vector<std::string> warnings() const override { return inner->warnings(); }
    };
    auto named = std::make_shared<Named>();
    named->inner = std::move(t);
    named->spec_ = spec;
    return named;
}

// ----------------------------------------------------- access(5) orders

namespace {

// Domain then parents: "a.b.c", then "b.c", "c" (parent style) or ".b.c",
// ".c" (dot style), as smtpd_check.c's check_domain_access walks them.
std::optional<std::string> walk_domain(const Table& t, std::string_view domain, bool parent) {
    if (domain.empty()) return std::nullopt;
    std::string_view name = domain;
    for (;;) {
        if (auto v = t.lookup(name)) return v;
        std::size_t dot = name.find('.', 1);
        if (dot == std::string_view::npos) return std::nullopt;
        name = name.substr(parent ? dot + 1 : dot);
        if (name.empty() || name == ".") return std::nullopt;
    }
}

}  // namespace

std::optional<std::string> lookup_address(const Table& table, std::string_view address,
                                          std::string_view recipient_delimiter, bool parent_matches_subdomains) {
    if (table.is_pattern()) return table.lookup(address);
    std::size_t at_sign = address.rfind('@');
    std::string_view local = at_sign == std::string_view::npos ? address : address.substr(0, at_sign);
    std::string_view domain = at_sign == std::string_view::npos ? std::string_view{} : address.substr(at_sign + 1);
    // The extension starts at the first delimiter character after the first
    // character of the local part.
    std::string_view bare_local = local;
    if (!recipient_delimiter.empty() && local.size() > 1) {
        std::size_t d = local.find_first_of(recipient_delimiter, 1);
        if (d != std::string_view::npos) bare_local = local.substr(0, d);
    }
    bool has_ext = bare_local.size() != local.size();

    if (auto v = table.lookup(address)) return v;
    if (has_ext) {
        std::string bare = std::string(bare_local) + (at_sign == std::string_view::npos ? "" : "@" + std::string(domain));
        if (auto v = table.lookup(bare)) return v;
    }
    if (at_sign != std::string_view::npos) {
        if (auto v = walk_domain(table, domain, parent_matches_subdomains)) return v;
    }
    if (auto v = table.lookup(std::string(local) + "@")) return v;
    if (has_ext) {
        if (auto v = table.lookup(std::string(bare_local) + "@")) return v;
    }
    return std::nullopt;
}

std::optional<std::string> lookup_domain(const Table& table, std::string_view domain,
                                         bool parent_matches_subdomains) {
    if (table.is_pattern()) return table.lookup(domain);
    return walk_domain(table, domain, parent_matches_subdomains);
}

std::optional<std::string> lookup_client_address(const Table& table, std::string_view ip) {
    if (table.is_pattern()) return table.lookup(ip);
    char delim = ip.find(':') != std::string_view::npos ? ':' : '.';
    std::string_view name = ip;
    while (!name.empty()) {
        if (auto v = table.lookup(name)) return v;
        std::size_t cut = name.rfind(delim);
        if (cut == std::string_view::npos) break;
        name = name.substr(0, cut);
    }
    return std::nullopt;
}

}  // namespace mta::tables
