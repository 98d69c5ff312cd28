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

// The generic endpoint to connect to (same resolution rules).
boost::asio::generic::stream_protocol::endpoint to_asio(const Endpoint& where);

}  // namespace proto::net
