// file_sender: streams a byte range of an open file to a socket with sendfile(2), zero-copy.
#pragma once

#include "ferry/server/rate_limiter.hpp"
#include "ferry/transport/asio.hpp"

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>

namespace ferry::server {

namespace asio = boost::asio;
/// A connection's socket: TCP or a local socket (tests), bound to its thread's io_context (an
/// io_context executor is 8 bytes where a polymorphic one is 56: this is in every connection).
using stream_socket =
    asio::basic_stream_socket<asio::generic::stream_protocol, asio::io_context::executor_type>;

struct send_result {
    transport::error_code ec;    ///< timed_out (no progress), a socket error, or operation_aborted
    std::uint64_t from_file = 0; ///< body bytes that came from the file
    bool truncated = false;      ///< the file ended early; the rest of the body was zero-filled
};

/// Sends exactly `length` bytes: the file's bytes from `offset` with sendfile (no copy into user
/// space), and, if the file shrinks meanwhile, zero bytes for the rest so the stream stays in
/// step (the caller then sends the trailer `changed`; docs/protocol.md 7.1).
///
/// The socket must be non-blocking. `progress_timeout` bounds each wait for the peer to accept
/// more bytes, never the whole transfer. Yields to other sessions between chunks, so one fast
/// reader cannot monopolise the thread. Reads come from the page cache on the I/O thread: a
/// cold file can stall the thread on disk reads, the accepted trade-off of sendfile.
asio::awaitable<send_result> send_file_range(stream_socket& socket, int file_fd,
                                             std::uint64_t offset, std::uint64_t length,
                                             transport::clock::duration progress_timeout,
                                             rate_limiter& limiter);

} // namespace ferry::server
