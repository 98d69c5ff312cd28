// mta-core's configuration: Postfix's main.cf and master.cf, read as Postfix
// reads them, and the one table of every parameter mta-core knows.
//
// No I/O except load_main_cf/load_master_cf, which read one file each.
// References: postconf(5) (main.cf syntax, parameter defaults), master(5)
// (master.cf), Postfix's mail_params.h (one table of names and defaults),
// mac_expand(3) ($name, ${name}, ${name?text}, ${name:text} and the
// ${name?{text1}:{text2}} form of Postfix 3.0).
//
// Limits and known differences from Postfix:
// - Relational macros (${{$a} <level {b} ? {x} : {y}}, ==, !=, <, <=, >,
//   >=, and the *level forms) are evaluated, but mta-core has no
//   compatibility_level: the few Postfix defaults written that way are
//   stored as their value at level 3.6 (see default_differences()).
// - Service-specific parameters (NAME_time_limit, ...) are accepted for every
//   master.cf service, whatever its command; Postfix accepts each suffix only
//   for the commands that read it.
// - Input is the operator's own file, but it is still parsed without
//   recursion on its text; macro expansion is bounded (loop detection, a
//   nesting limit as mac_expand's, and a budget of expansions and output
//   size, so "a = $b$b$b..." chains cannot take exponential time).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mta::config {

// Every message names the file and line (or the master.cf service) and the
// parameter, as Postfix's fatal messages do.
class ConfigError : public std::runtime_error {
public:
    using runtime_error::runtime_error;
};

// ---------------------------------------------------------------- main.cf

struct RawParam {
    std::string value;  // continuation lines joined as Postfix joins them
    std::string file;
    int line = 0;       // first line of the logical line
};

struct MainCf {
    std::map<std::string, RawParam, std::less<>> params;
    std::string path;
    // Postfix's warnings while reading: "overriding earlier entry",
    // "logical line must not start with whitespace". Never fatal.
    std::vector<std::string> warnings;
};

// postconf(5) syntax: "name = value"; a line whose first non-blank character
// is '#' is a comment; a line that starts with whitespace continues the
// previous logical line; blank lines and comment lines do not end one. The
// last definition of a name wins (with a warning, as Postfix gives).
// Throws ConfigError ("FILE, line N: missing '=' after attribute name: ...").
MainCf parse_main_cf(std::string_view text, const std::string& file);
MainCf load_main_cf(const std::string& path);  // throws ConfigError if unreadable

// -------------------------------------------------------------- master.cf

struct MasterEntry {
    std::string service, type;
    std::string private_, unpriv, chroot, wakeup, maxproc;  // as written ("-" kept)
    std::string command;
    std::vector<std::string> args;  // after the -o options; "{ a b }" arrives as "a b"
    std::vector<std::pair<std::string, std::string>> overrides;  // -o name=value, in order
    std::string file;
    int line = 0;
};

// master(5): service type private unpriv chroot wakeup maxproc command args...
// Continuation lines start with whitespace; '#' comment lines; "{ text }"
// groups one argument with spaces; "-o name=value" and "-o { name = value }"
// are overrides (read until the first argument that is not an option, as the
// daemons' getopt does). Throws ConfigError naming file, line and field.
std::vector<MasterEntry> parse_master_cf(std::string_view text, const std::string& file);
std::vector<MasterEntry> load_master_cf(const std::string& path);

// ------------------------------------------------------- parameter table

enum class Support {
    supported,    // honoured with Postfix's meaning
    unsupported,  // Postfix has it, mta-core does not: an error with a hint
                  // (unless set to its default, which asks for nothing: an info line)
    ignored,      // meaningless here: accepted with one info line
};

// The syntax a value must have (postconf(5)); Settings::check_values
// checks explicitly set values against it.
enum class Kind { text, boolean, integer, time };

struct ParamInfo {
    std::string_view name, default_value;
    Support support = Support::supported;
    std::string_view hint;  // unsupported: what to use instead; ignored: why
    // The default is computed at run time from the host (myhostname,
    // mydomain, mynetworks, ...); the program supplies it with
    // Settings::set_computed_default. default_value is Postfix's fallback.
    bool computed = false;
    // Never expanded when read (Postfix's raw parameters): the program
    // expands it later with its own macros ($rbl_code, $client_address...).
    // Settings::str returns it unexpanded.
    bool raw = false;
    Kind kind = Kind::text;
    char time_unit = 0;  // Kind::time: the unit of a bare number ('s', or 'd' for maximal_queue_lifetime...)
};

const ParamInfo* find_param(std::string_view name);
std::span<const ParamInfo> parameter_table();

// Where mta-core's defaults differ from Debian's Postfix 3.7 `postconf -d`
// (the reference here): Postfix 3.9 defaults, TLS at 1.2, and the
// compatibility_level expressions stored as their value at level 3.6.
struct DefaultDifference {
    std::string_view name;
    std::string_view postfix_37;  // `postconf -d -h NAME` of Debian's 3.7
    std::string_view reason;
};
std::span<const DefaultDifference> default_differences();

// Service-specific parameter suffixes (postconf(5) "transport_xxx"):
// "time_limit" makes "policy-spf_time_limit" for a master.cf service
// "policy-spf". The default is Postfix's.
struct ServiceParam {
    std::string_view suffix, default_value;
};
std::span<const ServiceParam> service_parameter_table();

// ------------------------------------------------------------- lists

// Postfix list syntax (mystrtokq with "{}"): elements separated by commas
// and whitespace; "{ ... }" keeps one element with its braces and inner
// separators. An unclosed brace takes the rest of the text, as Postfix does.
// "a, b c,{ x, y = z }" -> ["a", "b", "c", "{ x, y = z }"].
std::vector<std::string> split_list(std::string_view text);

// One "{ ADDR, name=value, { name = value with spaces } }" element: its
// items with the outer braces removed; an inner "{ ... }" item loses its
// braces and outer whitespace. nullopt if element is not a braced group or
// its braces do not balance.
struct Group {
    std::vector<std::string> items;
};
std::optional<Group> parse_group(std::string_view element);

// "name = value" -> {"name", "value"} (whitespace around '=' removed);
// nullopt without '=' or with an empty name.
std::optional<std::pair<std::string, std::string>> split_nameval(std::string_view text);

// Postfix time values: a number and an optional unit s, m, h, d, w
// (default_unit when absent). Throws ConfigError naming what.
std::chrono::seconds parse_time(std::string_view text, char default_unit = 's',
                                std::string_view what = "time value");

// ------------------------------------------------------------- settings

// Effective settings: main.cf, then (for one master.cf service) its -o
// overrides, then the table's defaults. Values are expanded as mac_expand
// does; an undefined name expands to nothing.
class Settings {
public:
    // service_names: from master.cf, for service-specific parameters.
    Settings(MainCf main, std::vector<std::string> service_names);
    // Same, with the names and the -o values of every entry, so that a
    // parameter used only as $name in a master.cf override (Debian's
    // mua_*_restrictions pattern) is "used", as postconf counts it.
    Settings(MainCf main, const std::vector<MasterEntry>& master);

    // Settings for one service: these overrides win over main.cf. Throws
    // ConfigError naming a malformed or unsupported override.
    Settings with_overrides(const std::vector<std::pair<std::string, std::string>>& overrides,
                            const std::string& origin = "master.cf") const;
    // The same for one master.cf entry, with $service_name defined.
    Settings with_service(const MasterEntry& entry) const;

    // Defaults Postfix computes from the host (myhostname, mydomain,
    // mynetworks, config_directory, mail_version...).
    void set_computed_default(std::string_view name, std::string value);

    std::string raw(std::string_view name) const;  // unexpanded
    std::string str(std::string_view name) const;  // expanded; throws on a loop
    bool is_set(std::string_view name) const;      // explicitly in main.cf or an override
    // Where name was set: "FILE, line N", "master.cf service smtp", or "default".
    std::string origin(std::string_view name) const;

    long long integer(std::string_view name, long long min, long long max) const;
    // default_unit 0: the table's unit for name (postconf(5): "5" in
    // maximal_queue_lifetime is 5 days), else 's'.
    std::chrono::seconds time(std::string_view name, char default_unit = 0) const;
    bool boolean(std::string_view name) const;
    std::vector<std::string> list(std::string_view name) const;

    // Expand any text as a parameter value would be.
    std::string expand(std::string_view text) const;
    // The same with a program's own macros beside the parameters (Postfix's
    // smtpd expands default_rbl_reply with $rbl_code, $client_address...);
    // their values are inserted as they are, never expanded again.
    std::string expand(std::string_view text,
                       const std::map<std::string, std::string, std::less<>>& literals) const;

    // Checks every explicitly set parameter. Unsupported: throws ConfigError
    // naming all of them with hints. Unknown: returned as warnings, as Postfix
    // words them ("FILE: unused parameter: name=value").
    std::vector<std::string> validate() const;
    // Checks that every explicitly set parameter expands, and that those of
    // the table have the syntax of their Kind (yes/no, a number, a time), as
    // Postfix's daemons check them when they read them. Throws one
    // ConfigError naming each bad value with its file and line.
    void check_values() const;
    // Info lines for explicitly set parameters mta-core ignores.
    std::vector<std::string> ignored_notes() const;

    // postconf -n: explicitly set main.cf parameters that are known (table,
    // service-specific, or used as $name), sorted, "name = value\n", with
    // runs of whitespace written as one space.
    std::string print_non_default() const;

    const MainCf& main_cf() const { return main_; }

private:
    enum class Known { table, service, referenced, unknown };
    Known known(std::string_view name) const;
    const ServiceParam* service_param(std::string_view name) const;
    bool defined(std::string_view name) const;
    const std::string* explicit_value(std::string_view name) const;
    struct Expansion;  // the names being expanded and the work budget left
    void expand_into(std::string_view text, std::string& out, Expansion& x, int depth) const;
    std::string lookup_expanded(std::string_view name, Expansion& x, int depth, bool& defined) const;
    bool relational(std::string_view body, std::size_t& pos, Expansion& x, int depth) const;
    std::string where(std::string_view name) const;

    MainCf main_;
    std::vector<std::string> services_;
    // $names used in main.cf values and master.cf -o values (the table's
    // defaults are scanned once, statically).
    std::set<std::string, std::less<>> referenced_;
    bool commands_known_ = false;          // built from MasterEntry: suffixes per command
    std::vector<std::pair<std::string, std::string>> service_commands_;
    std::map<std::string, std::string, std::less<>> overrides_;
    std::string override_origin_;
    std::map<std::string, std::string, std::less<>> computed_;
    std::map<std::string, std::string, std::less<>> macros_;  // service_name
};

}  // namespace mta::config
