// Bridges Postfix-notation endpoints to Asio's generic stream sockets, so TCP
// and unix listeners and clients share one code path.
#pragma once

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>

#include "net/address.h"

namespace proto::net {

using StreamProtocol = boost::asio::generic::stream_protocol;
using Acceptor = boost::asio::basic_socket_acceptor<StreamProtocol>;

// Resolve (numeric hosts and "localhost" only: listeners never wait on DNS)
// and bind+listen. For unix sockets a stale socket file is removed first and
// the mode is applied. Throws std::system_error naming the address.
void bind_acceptor(Acceptor& acceptor, const Endpoint& where,
                   unsigned unix_mode);

// The generic endpoint for a numeric host or "localhost" (same rules).
boost::asio::generic::stream_protocol::endpoint to_asio(const Endpoint& where);

// The endpoint a client connects to: as to_asio, and a host name is looked up
// with the system resolver (getaddrinfo: /etc/hosts, then DNS) at each call,
// so a peer known by name (a container's service name) is found again after
// it moved. Blocks for the lookup; the first address returned is used.
// Throws std::system_error naming the address when the name does not resolve.
boost::asio::generic::stream_protocol::endpoint resolve_for_connect(const Endpoint& where);

}  // namespace proto::net
