// The milter settings of one smtpd listener (Postfix's MILTER_README and
// postconf(5): smtpd_milters, non_smtpd_milters, milter_*), read once per
// configuration into typed values.
//
// A milter element is an address, or a group with per-milter settings:
//   inet:host:port   unix:/path   { inet:host:port, connect_timeout=10s,
//   command_timeout=10s, content_timeout=60s, default_action=accept,
//   protocol=6 }
// as Postfix 3.0+ accepts them.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "milter/codec.h"
#include "net/address.h"

namespace mta::config {
class Settings;
}

namespace mta::milter {

// milter_default_action: what a milter that cannot be reached or misbehaves
// stands for (postconf(5)).
enum class DefaultAction { accept, reject, tempfail, quarantine, shutdown };

struct MilterSpec {
    std::string name;  // the address as configured, for logs ("inet:127.0.0.1:8891")
    proto::net::Endpoint endpoint;
    std::chrono::milliseconds connect_timeout{30000};
    std::chrono::milliseconds command_timeout{30000};
    std::chrono::milliseconds content_timeout{300000};
    DefaultAction default_action = DefaultAction::tempfail;
    std::uint32_t protocol = proto::milter::kProtocolVersion;
};

struct MilterSettings {
    std::vector<MilterSpec> smtpd;
    // non_smtpd_milters: run by pickup on local mail (pickup/local_milters.h).
    std::vector<MilterSpec> non_smtpd;
    // Macro names per SMFIM_* stage (proto::milter::MacroStage order), as
    // milter_*_macros configure them; a filter may replace a stage's list
    // in its negotiation reply.
    std::array<std::vector<std::string>, proto::milter::kMacroStages> macros;
    std::vector<std::string> unknown_command_macros;
    std::string daemon_name;  // milter_macro_daemon_name
    std::string v;            // milter_macro_v
    std::size_t message_size_limit = 10240000;  // bounds a replaced body
};

// Throws config::ConfigError naming the parameter and the bad element.
// queue_dir: relative unix: paths are under it, as Postfix reads them.
MilterSettings read_milter_settings(const config::Settings& s, const std::string& queue_dir);

DefaultAction parse_default_action(const std::string& text, const std::string& what);
std::string_view default_action_name(DefaultAction a);

}  // namespace mta::milter
