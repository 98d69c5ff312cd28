// Listening and connecting addresses in Postfix notation, and IP networks.
//
//   inet:HOST:PORT   inet:[::1]:PORT   unix:/path
// A bare HOST:PORT or [v6]:PORT is read as inet:, a bare /path as unix:, as
// Postfix's check_policy_service accepts both forms.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proto::net {

struct Endpoint {
    enum class Kind { inet, unix_socket } kind = Kind::inet;
    std::string host;  // inet: name or literal, without brackets
    std::uint16_t port = 0;
    std::string path;  // unix

    // Postfix notation, e.g. "inet:[::1]:10023".
    std::string to_string() const;
    bool operator==(const Endpoint&) const = default;
};

struct EndpointParse {
    std::optional<Endpoint> endpoint;
    std::string error;
};
EndpointParse parse_endpoint(std::string_view text);

// An IPv4 or IPv6 address. IPv4-mapped IPv6 (::ffff:a.b.c.d) is read as IPv4,
// so one client has one identity whichever socket family it came through.
struct IpAddress {
    bool v6 = false;
    std::array<std::uint8_t, 16> bytes{};  // IPv4 uses the first 4

    static std::optional<IpAddress> parse(std::string_view text);
    std::string to_string() const;
    int bits() const { return v6 ? 128 : 32; }
    // The network of this address with prefix bits kept, the rest zeroed.
    IpAddress masked(int prefix) const;
    bool operator==(const IpAddress&) const = default;
};

struct Cidr {
    IpAddress network;
    int prefix = 0;

    // "a.b.c.d", "a.b.c.d/n", "v6", "v6/n", "[v6]/n" (Postfix style).
    static std::optional<Cidr> parse(std::string_view text);
    bool contains(const IpAddress& ip) const;
    std::string to_string() const;
};

class CidrList {
public:
    // Throws std::invalid_argument naming the bad entry.
    static CidrList parse(const std::vector<std::string>& entries);
    bool contains(const IpAddress& ip) const;
    bool contains(std::string_view ip_text) const;
    bool empty() const { return list_.empty(); }
    void add(const Cidr& c) { list_.push_back(c); }

private:
    std::vector<Cidr> list_;
};

}  // namespace proto::net
