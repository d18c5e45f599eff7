// serve: what both fronts of a connection share. The Ferry front (ferry_front.cpp) and the
// HTTP front (http_front.cpp) only decode requests and encode answers; resolving and opening
// (path_resolver), sending a byte range (file_sender), listing a directory, digests and the
// ways a connection ends are here, called the same way by both.
#pragma once

#include "ferry/protocol/messages.hpp"
#include "ferry/server/session.hpp"

#include <cstdint>
#include <dirent.h>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace ferry::server {

/// `[address]:port` of a connection's peer, for logs.
std::string peer_of(const connection& c);

/// One answered request, as the access log and the metrics see it.
struct access_record {
    metric_protocol protocol;
    metric_method kind;
    std::string_view version; ///< "FERRY", "HTTP/1.1"
    std::string_view method;  ///< as the client sent it (escaped when written)
    std::string_view path;    ///< as the client sent it (escaped when written)
    /// The range served, [first, end) of a file of `size` bytes.
    struct byte_range {
        std::uint64_t first, end, size;
    };
    std::optional<byte_range> range;
    std::uint64_t count = 0;      ///< body bytes, or the entries of a Ferry LIST
    std::uint64_t body_bytes = 0; ///< body bytes sent (what the metrics add up)
    std::string_view status;      ///< "ok", "206", "aborted"
    std::size_t status_index;     ///< metric_status's index of it
    transport::clock::time_point started;
};

/// Counts an answered request in the thread's metrics and writes its access line (text or
/// JSON, --access-log-format), escaping everything the client sent.
void record_request(const session_context& ctx, const connection& c, const access_record& r);

/// The JSON access line of `r`: one object, every string escaped (for tests).
std::string access_json(const connection& c, const access_record& r,
                        std::chrono::system_clock::time_point now);

/// A network outcome as a session's close reason ("closed by peer", "request timeout").
std::string describe(const transport::error_code& ec);

/// Closes after an error answer: stop sending, then read and discard what the peer still sends
/// (for at most a second and 64 KiB), so the close does not reset the connection and destroy
/// the answer before the peer reads it.
asio::awaitable<void> lingering_close(stream_socket& socket);

/// Holds TCP_CORK on a socket for its lifetime; uncorking flushes what is queued. A no-op on
/// sockets that are not TCP.
class tcp_cork {
public:
    explicit tcp_cork(stream_socket& s);
    tcp_cork(const tcp_cork&) = delete;
    tcp_cork& operator=(const tcp_cork&) = delete;
    ~tcp_cork();

private:
    int fd_;
};

/// Bodies up to this size are read into memory and leave with their header (and trailer) in
/// one send: a 4 KiB file costs two system calls (pread, send) where sendfile under TCP_CORK
/// costs five (cork, send, sendfile, send, uncork), and copying 16 KiB costs less than one.
inline constexpr std::uint64_t small_body = 16 * 1024;

/// Reads `out.size()` bytes of `fd` from `offset` (page cache, on the I/O thread, the same
/// trade-off as sendfile). Returns the bytes read (fewer: the file ended), or -errno.
std::int64_t read_at(int fd, std::span<std::byte> out, std::uint64_t offset) noexcept;

/// Requests a connection may have served back to back without its coroutine ever waiting (a
/// pipelining client: reads and writes complete at once) before it lets the thread's other
/// connections, and a cancellation, run.
inline constexpr unsigned requests_between_yields = 16;

/// Lets the rest of the thread's work run: resumes after what is queued now.
asio::awaitable<void> yield_to_others();

/// The whole contents of `file` (opened for reading, `file.st` its version) when it is small
/// (at most small_body bytes) and settled enough to be kept in ctx.small_files: read, checked
/// to be still the version `file.st` describes, and offered to the cache. Null otherwise: then
/// read the bytes from the descriptor as usual. Find a version first with
/// ctx.small_files.find(file.st), which needs no readable descriptor at all.
std::shared_ptr<const std::string> keep_small_file(const session_context& ctx,
                                                   const resolved& file);

/// Completes when the peer has closed (or reset) the connection while its request is served.
/// Bytes of a pipelined request mean it still waits: then it only ends when cancelled.
asio::awaitable<void> peer_gone(stream_socket& socket);

/// The file's digest, or operation_aborted once nobody waits for it: the peer closed, or the
/// session was cancelled. Either way the digest service stops hashing if nobody else waits.
asio::awaitable<digest_outcome> digest_for_peer(stream_socket& socket, const session_context& ctx,
                                                int fd, const protocol::file_identity& id);

/// A directory being read; shared with the listing pool's tasks.
using dir_ptr = std::shared_ptr<DIR>;

/// Takes over `dir`'s descriptor (a directory from path_resolver::open_directory); null if it
/// cannot be read.
dir_ptr open_dir_stream(resolved& dir);

/// The next entry of `dir` a listing shows (blocking: call it on the listing pool). Leaves out
/// `.` and `..`, names that are not UTF-8 (no request could name them, docs/protocol.md 6),
/// those `resolver` does not list (dotfiles under --dotfiles=deny) and entries removed since
/// readdir. nullopt at the end; then `error` holds readdir's errno (0: the end).
std::optional<protocol::list_entry> next_listed(DIR* dir, const path_resolver& resolver,
                                                int& error);

// ---- the two fronts: each serves a connection's requests while they arrive back to back, and
// returns why the connection ended, or nothing when it is idle and should be parked again.

asio::awaitable<std::optional<std::string>> serve_ferry(connection& c, const session_context& ctx);
asio::awaitable<std::optional<std::string>> serve_http(connection& c, const session_context& ctx);

/// A busy refusal in each protocol (the connection is then closed by the caller).
asio::awaitable<void> refuse_busy_ferry(stream_socket& socket, const session_context& ctx);
asio::awaitable<void> refuse_busy_http(stream_socket& socket, const session_context& ctx);

} // namespace ferry::server
