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
    bool truncated = false;      ///< the file ended before the range did: the body is short
};

/// Sends up to `length` bytes: the file's bytes from `offset` with sendfile (no copy into user
/// space). If the file shrinks meanwhile, it stops at the file's end with `truncated` set and
/// fewer bytes sent than promised: the stream is then broken, and the caller must close the
/// connection (docs/protocol.md 7.1). Nothing is ever padded.
///
/// The socket must be non-blocking. `progress_timeout` bounds each wait for the peer to accept
/// more bytes, never the whole transfer. Under a rate limit it sleeps on a timer between pieces
/// of at least `limiter.min_piece()` bytes, so a limited transfer costs CPU in proportion to its
/// bytes and other sessions of the thread run meanwhile. Yields to other sessions between
/// chunks, so one fast reader cannot monopolise the thread. Reads come from the page cache on
/// the I/O thread: a cold file can stall the thread on disk reads, the accepted trade-off of
/// sendfile.
asio::awaitable<send_result> send_file_range(stream_socket& socket, int file_fd,
                                             std::uint64_t offset, std::uint64_t length,
                                             transport::clock::duration progress_timeout,
                                             rate_limiter& limiter);

/// Makes the socket's close a reset (SO_LINGER {1, 0}): for a transfer cut short (a stalled
/// reader, the drain deadline, a file that shrank), so the kernel drops what is still queued
/// instead of keeping megabytes per dead connection, and the peer cannot mistake the end for a
/// clean close. A no-op on sockets that are not TCP.
void reset_on_close(stream_socket& socket) noexcept;

} // namespace ferry::server
