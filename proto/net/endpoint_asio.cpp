#include "net/endpoint_asio.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/socket_base.hpp>
#include <system_error>

namespace proto::net {

namespace asio = boost::asio;
using Protocol = asio::generic::stream_protocol;

Protocol::endpoint to_asio(const Endpoint& where) {
    if (where.kind == Endpoint::Kind::unix_socket)
        return Protocol::endpoint(asio::local::stream_protocol::endpoint(where.path));
    std::string host = where.host;
    if (host == "localhost") host = "127.0.0.1";
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec)
        throw std::system_error(EINVAL, std::generic_category(),
                                where.to_string() + ": host must be a numeric address");
    return Protocol::endpoint(asio::ip::tcp::endpoint(addr, where.port));
}

Protocol::endpoint resolve_for_connect(const Endpoint& where) {
    if (where.kind == Endpoint::Kind::unix_socket || where.host == "localhost")
        return to_asio(where);
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(where.host, ec);
    if (!ec) return Protocol::endpoint(asio::ip::tcp::endpoint(addr, where.port));
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    int rc = ::getaddrinfo(where.host.c_str(), nullptr, &hints, &found);
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, &::freeaddrinfo);
    if (rc != 0 || found == nullptr)
        throw std::system_error(EHOSTUNREACH, std::generic_category(),
                                where.to_string() + ": " + (rc != 0 ? ::gai_strerror(rc) : "no address"));
    asio::ip::tcp::endpoint ep;
    if (found->ai_family == AF_INET6) {
        const auto* sa = reinterpret_cast<const sockaddr_in6*>(found->ai_addr);
        asio::ip::address_v6::bytes_type bytes;
        std::memcpy(bytes.data(), &sa->sin6_addr, bytes.size());
        ep = asio::ip::tcp::endpoint(asio::ip::address_v6(bytes, sa->sin6_scope_id), where.port);
    } else {
        const auto* sa = reinterpret_cast<const sockaddr_in*>(found->ai_addr);
        asio::ip::address_v4::bytes_type bytes;
        std::memcpy(bytes.data(), &sa->sin_addr, bytes.size());
        ep = asio::ip::tcp::endpoint(asio::ip::address_v4(bytes), where.port);
    }
    return Protocol::endpoint(ep);
}

void bind_acceptor(Acceptor& acceptor, const Endpoint& where, unsigned unix_mode) {
    auto ep = to_asio(where);
    if (where.kind == Endpoint::Kind::unix_socket) {
        struct stat st {};
        // Remove only a stale socket, never a regular file someone put there.
        if (::lstat(where.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
            ::unlink(where.path.c_str());
    }
    boost::system::error_code ec;
    acceptor.open(ep.protocol(), ec);
    if (!ec && where.kind == Endpoint::Kind::inet)
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::system_error(ec.value(), std::system_category(), where.to_string());
    if (where.kind == Endpoint::Kind::unix_socket && unix_mode != 0)
        ::chmod(where.path.c_str(), unix_mode);
}

}  // namespace proto::net
