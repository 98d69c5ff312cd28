// One connection from mta-core to one milter: connect, write packets, read
// replies, each under a deadline. What the replies mean is chain.h's job.
//
// Security: the milter is trusted to judge mail, not to be well-behaved.
// Every packet goes through proto::milter's PacketReader (at most the
// negotiated data size) and decoder; a read or connect that outlives its
// timeout closes the socket, so a hung milter costs one session at most
// the configured timeout and never blocks another session.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <chrono>
#include <string>

#include "milter/codec.h"
#include "milter/milter_config.h"

namespace mta::milter {

class Connection {
public:
    Connection(boost::asio::any_io_executor ex, const MilterSpec& spec);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Connect within connect_timeout. "" on success, else why not
    // (strerror-style, as Postfix words it).
    boost::asio::awaitable<std::string> connect();
    // Write one whole packet within timeout (a milter that stops reading
    // holds us no longer than one that stops answering). "" on success.
    boost::asio::awaitable<std::string> write(std::string packet, std::chrono::milliseconds timeout);
    // Read one packet within timeout and decode it. "" on success.
    boost::asio::awaitable<std::string> read(std::chrono::milliseconds timeout, proto::milter::Reply& reply);
    void set_max_data(std::size_t n) { reader_.set_max_data(n); }
    void close();
    bool is_open() const { return socket_.is_open(); }

private:
    const MilterSpec& spec_;
    boost::asio::generic::stream_protocol::socket socket_;
    proto::milter::PacketReader reader_;
    std::string in_;  // bytes read, not yet part of a packet
};

}  // namespace mta::milter
