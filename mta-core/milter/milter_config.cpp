// See milter_config.h.
#include "milter/milter_config.h"

#include <sstream>

#include "config/config.h"

namespace mta::milter {

using config::ConfigError;

DefaultAction parse_default_action(const std::string& text, const std::string& what) {
    if (text == "accept") return DefaultAction::accept;
    if (text == "reject") return DefaultAction::reject;
    if (text == "tempfail") return DefaultAction::tempfail;
    if (text == "quarantine") return DefaultAction::quarantine;
    if (text == "shutdown") return DefaultAction::shutdown;
    throw ConfigError(what + ": bad default action \"" + text +
                      "\" (expected accept, reject, tempfail, quarantine or shutdown)");
}

std::string_view default_action_name(DefaultAction a) {
    switch (a) {
        case DefaultAction::accept: return "accept";
        case DefaultAction::reject: return "reject";
        case DefaultAction::tempfail: return "tempfail";
        case DefaultAction::quarantine: return "quarantine";
        case DefaultAction::shutdown: return "shutdown";
    }
    return "tempfail";
}

namespace {

std::chrono::milliseconds to_ms(std::chrono::seconds s) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(s);
}

std::uint32_t parse_protocol(const std::string& text, const std::string& what) {
    // Postfix accepts 2 to 6 (milter_protocol in postconf(5)); the client
    // speaks version 6 and offers what a lower version knows.
    if (text.size() == 1 && text[0] >= '2' && text[0] <= '6') return static_cast<std::uint32_t>(text[0] - '0');
    throw ConfigError(what + ": bad milter protocol version \"" + text + "\" (expected 2 to 6)");
}

std::vector<std::string> words(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string w; in >> w;) {
        // Lists may be separated by commas too (postconf(5) lists).
        std::size_t start = 0;
        while (start <= w.size()) {
            auto comma = w.find(',', start);
            std::string part = w.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            if (!part.empty()) out.push_back(part);
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
    }
    return out;
}

MilterSpec read_spec(const std::string& param, const std::string& element, const MilterSpec& defaults,
                     const std::string& queue_dir) {
    std::vector<std::string> items{element};
    if (auto g = config::parse_group(element)) items = g->items;
    if (items.empty()) throw ConfigError(param + ": empty { } group");
    MilterSpec spec = defaults;
    for (std::size_t i = 1; i < items.size(); ++i) {
        auto nv = config::split_nameval(items[i]);
        const std::string what = param + " " + items[0];
        if (!nv) throw ConfigError(what + ": expected name=value: " + items[i]);
        auto& [name, value] = *nv;
        auto time = [&] { return to_ms(config::parse_time(value, 's', what + " " + name)); };
        if (name == "connect_timeout") spec.connect_timeout = time();
        else if (name == "command_timeout") spec.command_timeout = time();
        else if (name == "content_timeout") spec.content_timeout = time();
        else if (name == "default_action") spec.default_action = parse_default_action(value, what);
        else if (name == "protocol") spec.protocol = parse_protocol(value, what);
        else throw ConfigError(what + ": unknown milter setting \"" + name + "\"");
    }
    spec.name = items[0];
    std::string address = items[0];
    // Postfix: a relative unix: path is under queue_directory.
    if (address.starts_with("unix:") && address.size() > 5 && address[5] != '/')
        address = "unix:" + queue_dir + "/" + address.substr(5);
    if (!address.starts_with("inet:") && !address.starts_with("unix:"))
        throw ConfigError(param + ": bad milter address \"" + items[0] + "\" (expected inet:host:port or unix:/path)");
    auto ep = proto::net::parse_endpoint(address);
    if (!ep.endpoint) throw ConfigError(param + ": bad milter address \"" + items[0] + "\": " + ep.error);
    if (ep.endpoint->kind == proto::net::Endpoint::Kind::inet && ep.endpoint->port == 0)
        throw ConfigError(param + ": bad milter address \"" + items[0] + "\": no port");
    spec.endpoint = *ep.endpoint;
    return spec;
}

}  // namespace

MilterSettings read_milter_settings(const config::Settings& s, const std::string& queue_dir) {
    MilterSettings m;
    MilterSpec defaults;
    defaults.connect_timeout = to_ms(s.time("milter_connect_timeout"));
    defaults.command_timeout = to_ms(s.time("milter_command_timeout"));
    defaults.content_timeout = to_ms(s.time("milter_content_timeout"));
    defaults.default_action = parse_default_action(s.str("milter_default_action"), "milter_default_action");
    defaults.protocol = parse_protocol(s.str("milter_protocol"), "milter_protocol");
    for (const auto& e : s.list("smtpd_milters")) m.smtpd.push_back(read_spec("smtpd_milters", e, defaults, queue_dir));
    for (const auto& e : s.list("non_smtpd_milters"))
        m.non_smtpd.push_back(read_spec("non_smtpd_milters", e, defaults, queue_dir));
    using proto::milter::MacroStage;
    auto set = [&](MacroStage stage, const char* param) {
        m.macros[static_cast<std::size_t>(stage)] = words(s.str(param));
    };
    set(MacroStage::connect, "milter_connect_macros");
    set(MacroStage::helo, "milter_helo_macros");
    set(MacroStage::envfrom, "milter_mail_macros");
    set(MacroStage::envrcpt, "milter_rcpt_macros");
    set(MacroStage::data, "milter_data_macros");
    set(MacroStage::eoh, "milter_end_of_header_macros");
    set(MacroStage::eom, "milter_end_of_data_macros");
    m.unknown_command_macros = words(s.str("milter_unknown_command_macros"));
    m.daemon_name = s.str("milter_macro_daemon_name");
    m.v = s.str("milter_macro_v");
    m.message_size_limit = static_cast<std::size_t>(s.integer("message_size_limit", 0, 1LL << 40));
    return m;
}

}  // namespace mta::milter
