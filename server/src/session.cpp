#include "ferry/server/session.hpp"

#include "ferry/protocol/errc.hpp"
#include "ferry/protocol/text.hpp"
#include "ferry/server/offload.hpp"
#include "ferry/transport/frame_io.hpp"
#include "ferry/transport/with_timeout.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <span>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <vector>

namespace ferry::server {

namespace fp = ferry::protocol;
using transport::clock;
using transport::error_code;
using transport::frame_buffer;
using transport::use_nothrow;
using transport::with_timeout;
using transport::write_frame;

namespace {

std::string peer_of(const connection& c) {
    return peer_name(c.slot.address(), c.port);
}

/// How one request ended, for the access log and for the session loop.
struct exchange {
    fp::status status = fp::status::ok;
    std::uint64_t bytes = 0; ///< body bytes (GET) or entries (LIST) sent
    bool keep_open = true;   ///< false: the connection is broken or must close
    /// GET: the range served, [begin, end) of a file of `size` bytes (for the access log).
    std::optional<std::array<std::uint64_t, 3>> range;
};

/// Cuts `text` to the protocol's limit without splitting a UTF-8 sequence.
std::string bounded_text(std::string text) {
    if (text.size() <= fp::max_text_size)
        return text;
    std::size_t cut = fp::max_text_size;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U)
        --cut;
    text.resize(cut);
    return text;
}

/// Sends ERROR `status` with `text`, escaped here for every caller: it often quotes the
/// request's path, and nothing a peer sent goes back to a terminal raw.
asio::awaitable<error_code> send_error(stream_socket& socket, const session_context& ctx,
                                       fp::status status, const std::string& text,
                                       bool closing = false, std::uint32_t retry_after_ms = 0) {
    fp::error_reply reply{status, closing, retry_after_ms,
                          bounded_text(fp::escape_for_terminal(text))};
    co_return co_await write_frame(socket, reply, ctx.config.progress_timeout);
}

/// Closes after an ERROR: stop sending, then read and discard what the peer still sends (for at
/// most a second and 64 KiB), so the close does not reset the connection and destroy the
/// ERROR before the peer reads it.
asio::awaitable<void> lingering_close(stream_socket& socket) {
    error_code ignored;
    socket.shutdown(stream_socket::shutdown_send, ignored);
    std::array<std::byte, 512> sink;
    std::size_t discarded = 0;
    const auto deadline = clock::now() + std::chrono::seconds(1);
    while (discarded < 64 * 1024) {
        const auto left = deadline - clock::now();
        if (left <= clock::duration::zero())
            break;
        auto [ec, n] =
            co_await with_timeout(socket.async_read_some(asio::buffer(sink), asio::deferred), left);
        if (ec)
            break;
        discarded += n;
    }
    socket.close(ignored);
}

std::string describe(const error_code& ec) {
    if (ec == asio::error::eof)
        return "closed by peer";
    if (ec == asio::error::timed_out)
        return "request timeout";
    if (ec == asio::error::operation_aborted)
        return "cancelled";
    return ec.message();
}

// ---- GET ------------------------------------------------------------------------------------

/// Holds TCP_CORK on a socket for its lifetime; uncorking flushes what is queued. A no-op on
/// sockets that are not TCP.
class tcp_cork {
public:
    explicit tcp_cork(stream_socket& s) : fd_(s.native_handle()) { set(1); }
    tcp_cork(const tcp_cork&) = delete;
    tcp_cork& operator=(const tcp_cork&) = delete;
    ~tcp_cork() { set(0); }

private:
    void set(int on) const noexcept { ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on); }
    int fd_;
};

/// Bodies up to this size are read into memory and leave with their header and trailer in one
/// send: a 4 KiB file costs two system calls (pread, send) where sendfile under TCP_CORK costs
/// five (cork, send, sendfile, send, uncork), and copying 16 KiB costs less than one of them.
constexpr std::uint64_t small_body = 16 * 1024;

/// A GET whose body is at most small_body bytes and not rate-limited: header, body and trailer
/// in one buffer. The body is read before anything is sent: a file that shrank is answered
/// with ERROR `changed` (the connection stays open), a file that changed while it was read gets
/// the trailer `changed`; a read error is an ERROR, the stream intact.
asio::awaitable<exchange> serve_small(stream_socket& socket, const session_context& ctx,
                                      const resolved& file, const fp::get_header& header,
                                      exchange x) {
    const auto header_size = fp::encoded_size(header);
    const auto trailer_size = fp::encoded_size(fp::get_trailer{});
    const auto length = static_cast<std::size_t>(header.length);
    auto buf = std::make_unique_for_overwrite<std::byte[]>(header_size + length + trailer_size);
    const std::span out{buf.get(), header_size + length + trailer_size};
    auto body = out.subspan(header_size, length);
    std::size_t got = 0;
    while (got < length) {
        const auto n = ::pread(file.fd.get(), body.data() + got, length - got,
                               static_cast<off_t>(header.offset + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            x.status = fp::status::internal_error;
            x.keep_open = !co_await send_error(socket, ctx, x.status,
                                               std::string{"internal error: reading the file: "} +
                                                   std::strerror(errno));
            co_return x;
        }
        if (n == 0)
            break;
        got += static_cast<std::size_t>(n);
    }
    if (got < length) {
        x.status = fp::status::changed;
        x.keep_open = !co_await send_error(socket, ctx, x.status,
                                           "changed: the file shrank while it was read; retry");
        co_return x;
    }
    struct stat after {};
    const bool unchanged =
        ::fstat(file.fd.get(), &after) == 0 && make_identity(after) == header.identity;
    x.status = unchanged ? fp::status::ok : fp::status::changed;
    x.bytes = got;
    (void)fp::encode(header, out.first(header_size));
    (void)fp::encode(fp::get_trailer{x.status}, out.last(trailer_size));
    x.keep_open = !co_await transport::write_all(socket, out, ctx.config.progress_timeout);
    if (!x.keep_open)
        x.status = fp::status::internal_error;
    co_return x;
}

asio::awaitable<exchange> serve_get(stream_socket& socket, const session_context& ctx,
                                    const fp::get_request& req, rate_limiter& limiter) {
    exchange x;
    auto file = ctx.resolver.open_file(req.path);
    if (file.status != fp::status::ok) {
        x.status = file.status;
        x.keep_open = !co_await send_error(socket, ctx, file.status, file.reason + ": " + req.path);
        co_return x;
    }
    const auto size = static_cast<std::uint64_t>(file.st.st_size);
    const auto identity = make_identity(file.st);
    if (req.if_identity && *req.if_identity != identity) {
        x.status = fp::status::changed;
        x.keep_open = !co_await send_error(socket, ctx, x.status,
                                           "changed: " + req.path + " is not the expected version");
        co_return x;
    }
    if (req.offset > size) {
        x.status = fp::status::range_not_satisfiable;
        x.keep_open = !co_await send_error(socket, ctx, x.status,
                                           "range not satisfiable: offset " +
                                               std::to_string(req.offset) + " is beyond the " +
                                               std::to_string(size) + "-byte file " + req.path);
        co_return x;
    }
    const std::uint64_t length = std::min(req.length, size - req.offset);
    x.range = {req.offset, req.offset + length, size};
    fp::get_header header{identity, size, mtime_ns(file.st), req.offset, length};
    if (length <= small_body && limiter.unlimited())
        co_return co_await serve_small(socket, ctx, file, header, std::move(x));

    // Header, body and trailer leave corked, as few segments as the kernel can make of them.
    const tcp_cork cork{socket};
    std::array<std::byte, 128> buf;
    const auto header_size = fp::encoded_size(header);
    (void)fp::encode(header, buf);
    if (co_await transport::write_all(socket, std::span{buf}.first(header_size),
                                      ctx.config.progress_timeout)) {
        x.status = fp::status::internal_error;
        x.keep_open = false;
        co_return x;
    }

    auto sent = co_await send_file_range(socket, file.fd.get(), req.offset, length,
                                         ctx.config.progress_timeout, limiter);
    x.bytes = sent.from_file;
    if (sent.ec || sent.truncated) {
        // The peer stalled or went away, shutdown cancelled us, or the file shrank: the stream
        // is mid-body and ends with a reset, what is still queued for the peer dropped.
        x.status = sent.truncated && !sent.ec ? fp::status::changed : fp::status::internal_error;
        x.keep_open = false;
        reset_on_close(socket);
        co_return x;
    }
    // Unchanged means: the file still has the size and mtime it had when the header went out.
    struct stat after {};
    const bool unchanged = ::fstat(file.fd.get(), &after) == 0 && make_identity(after) == identity;
    x.status = unchanged ? fp::status::ok : fp::status::changed;
    x.keep_open =
        !co_await write_frame(socket, fp::get_trailer{x.status}, ctx.config.progress_timeout);
    co_return x;
}

// ---- STAT -----------------------------------------------------------------------------------

/// Completes when the peer has closed (or reset) the connection while its request is served.
/// Bytes of a pipelined request mean it still waits: then it only ends when cancelled.
asio::awaitable<void> peer_gone(stream_socket& socket) {
    for (;;) {
        auto [ec] = co_await socket.async_wait(stream_socket::wait_read, use_nothrow);
        if (ec)
            co_return; // cancelled: the answer is ready
        char next = 0;
        const auto n = ::recv(socket.native_handle(), &next, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            co_return;
        if (n > 0)
            break;
    }
    asio::steady_timer never{socket.get_executor(), clock::time_point::max()};
    co_await never.async_wait(use_nothrow);
}

/// The file's digest, or operation_aborted once nobody waits for it: the peer closed, or the
/// session was cancelled. Either way the digest service stops hashing if nobody else waits.
asio::awaitable<digest_outcome> digest_for_peer(stream_socket& socket, const session_context& ctx,
                                                int fd, const fp::file_identity& id) {
    using namespace asio::experimental::awaitable_operators;
    // Named locals: GCC 12 destroys some temporaries of a co_await expression twice.
    auto digesting = ctx.digests.digest(fd, id);
    auto watching = peer_gone(socket);
    auto first = co_await (std::move(digesting) || std::move(watching));
    if (first.index() == 0)
        co_return std::get<0>(std::move(first));
    co_return digest_outcome{asio::error::operation_aborted, {}};
}

asio::awaitable<exchange> serve_stat(stream_socket& socket, const session_context& ctx,
                                     const fp::stat_request& req) {
    exchange x;
    // A digest needs a readable descriptor; anything else only an O_PATH one.
    auto target = req.want_sha256 ? ctx.resolver.open_file(req.path) : resolved{};
    if (!req.want_sha256 || target.status == fp::status::not_regular_file)
        target = ctx.resolver.stat_path(req.path);
    if (target.status != fp::status::ok) {
        x.status = target.status;
        x.keep_open =
            !co_await send_error(socket, ctx, target.status, target.reason + ": " + req.path);
        co_return x;
    }
    fp::stat_reply reply{kind_of(target.st), make_identity(target.st),
                         static_cast<std::uint64_t>(target.st.st_size), mtime_ns(target.st),
                         std::nullopt};
    if (req.want_sha256 && S_ISREG(target.st.st_mode)) {
        auto d = co_await digest_for_peer(socket, ctx, target.fd.get(), reply.identity);
        if (d.ec == asio::error::operation_aborted) {
            x.status = fp::status::internal_error;
            x.keep_open = false; // nobody is waiting for the answer any more
            co_return x;
        }
        if (d.ec) {
            x.status = d.ec.value() == ESTALE ? fp::status::changed : fp::status::internal_error;
            x.keep_open = !co_await send_error(
                socket, ctx, x.status,
                x.status == fp::status::changed
                    ? "changed: " + req.path + " changed while its digest was computed; retry"
                    : "internal error: reading " + req.path + ": " + d.ec.message());
            co_return x;
        }
        reply.sha256 = d.digest;
    }
    x.keep_open = !co_await write_frame(socket, reply, ctx.config.progress_timeout);
    co_return x;
}

// ---- LIST -----------------------------------------------------------------------------------

using dir_ptr = std::shared_ptr<DIR>;

/// Reads the next entries of `dir` that fit in one LIST_ENTRIES frame (blocking: runs on the
/// worker pool), leaving out those `resolver` does not list (dotfiles under --dotfiles=deny).
/// `done` is set at the end of the directory.
struct list_batch {
    fp::list_entries frame;
    bool done = false;
    int error = 0;
};

list_batch read_batch(const dir_ptr& dir, const path_resolver& resolver) {
    list_batch b;
    std::size_t size = fp::encoded_size(b.frame);
    // Stop while a largest-possible entry still fits, so no entry is ever read and dropped.
    const std::size_t largest_entry =
        fp::encoded_size(fp::list_entry{std::string(fp::max_name_size, 'x')});
    while (size + largest_entry <= fp::max_frame_size) {
        errno = 0;
        const dirent* d = ::readdir(dir.get());
        if (d == nullptr) {
            b.error = errno;
            b.done = true;
            break;
        }
        const std::string_view name{d->d_name};
        if (name == "." || name == ".." || !fp::is_valid_utf8(name))
            continue; // non-UTF-8 names could not be requested anyway (docs/protocol.md 6)
        if (!resolver.lists(name))
            continue; // nor could dotfiles under --dotfiles=deny
        struct stat st {};
        if (::fstatat(::dirfd(dir.get()), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; // removed since readdir
        fp::list_entry e{std::string{name}, kind_of(st), static_cast<std::uint64_t>(st.st_size),
                         mtime_ns(st)};
        size += fp::encoded_size(e);
        b.frame.entries.push_back(std::move(e));
    }
    return b;
}

asio::awaitable<exchange> serve_list(stream_socket& socket, const session_context& ctx,
                                     const fp::list_request& req) {
    exchange x;
    auto target = ctx.resolver.open_directory(req.path);
    if (target.status != fp::status::ok) {
        x.status = target.status;
        x.keep_open =
            !co_await send_error(socket, ctx, target.status, target.reason + ": " + req.path);
        co_return x;
    }
    dir_ptr dir{::fdopendir(target.fd.get()), [](DIR* d) {
                    if (d)
                        ::closedir(d);
                }};
    if (!dir) {
        x.status = fp::status::internal_error;
        x.keep_open = !co_await send_error(socket, ctx, x.status,
                                           "internal error: cannot read directory " + req.path);
        co_return x;
    }
    (void)target.fd.release(); // the DIR owns the descriptor now
    // Directory reads may block on the disk: they run on the worker pool, a frame's worth at a
    // time, so a huge directory never stalls this thread. (The function is a named local: GCC 12
    // destroys some temporaries of a co_await expression twice.)
    const auto next_batch = [dir, &resolver = ctx.resolver] { return read_batch(dir, resolver); };
    for (;;) {
        auto batch = co_await offload(ctx.digests.pool().get_executor(), next_batch);
        if (!batch.frame.entries.empty()) {
            x.bytes += batch.frame.entries.size();
            if (co_await write_frame(socket, batch.frame, ctx.config.progress_timeout)) {
                x.keep_open = false;
                co_return x;
            }
        }
        if (batch.done) {
            x.status = batch.error == 0 ? fp::status::ok : fp::status::internal_error;
            break;
        }
    }
    x.keep_open =
        !co_await write_frame(socket, fp::list_end{x.status, x.bytes}, ctx.config.progress_timeout);
    co_return x;
}

// ---- dispatch -------------------------------------------------------------------------------

const char* method_name(fp::frame_type t) {
    switch (t) {
    case fp::frame_type::get_request:
        return "GET";
    case fp::frame_type::stat_request:
        return "STAT";
    case fp::frame_type::list_request:
        return "LIST";
    default:
        return "?";
    }
}

/// Decodes one request frame (then frees its bytes), answers it and writes its access-log line.
asio::awaitable<exchange> serve_request(connection& c, const session_context& ctx,
                                        const fp::frame& frame, frame_buffer& buffer) {
    auto& socket = c.socket;
    const auto started = clock::now();
    const auto type = frame.type;
    exchange x;
    std::string_view path; // of the decoded message, which lives to the end of this function
    std::error_code bad;
    fp::get_request get;
    fp::stat_request stat;
    fp::list_request list;
    switch (type) {
    case fp::frame_type::get_request:
        bad = fp::decode(frame.payload, get);
        path = get.path;
        break;
    case fp::frame_type::stat_request:
        bad = fp::decode(frame.payload, stat);
        path = stat.path;
        break;
    default:
        bad = fp::decode(frame.payload, list);
        path = list.path;
        break;
    }
    buffer.consume(frame.size); // the message copied what it needs
    if (bad) {
        x.status = fp::status_for(bad);
        x.keep_open = !co_await send_error(
            socket, ctx, x.status, std::string{fp::status_text(x.status)} + ": " + bad.message());
    } else if (type == fp::frame_type::get_request) {
        x = co_await serve_get(socket, ctx, get, c.limiter);
    } else if (type == fp::frame_type::stat_request) {
        x = co_await serve_stat(socket, ctx, stat);
    } else {
        x = co_await serve_list(socket, ctx, list);
    }
    if (ctx.access.should_log(spdlog::level::info)) { // no formatting when the log is off
        const auto micros =
            std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - started).count();
        const auto range =
            x.range ? fmt::format("{}-{}/{}", (*x.range)[0], (*x.range)[1], (*x.range)[2])
                    : std::string{"-"};
        ctx.access.info("[conn {}] {} {} \"{}\" {} {} {} {:.3f}ms", c.id, peer_of(c),
                        method_name(type), fp::escape_for_log(path), range, x.bytes,
                        x.keep_open ? fp::status_text(x.status) : std::string_view{"aborted"},
                        static_cast<double>(micros) / 1000.0);
    }
    co_return x;
}

void park(connection& c, session_registry& registry, const session_context& ctx);

/// Closes `c` (if its coroutine did not) and logs its end.
void finish(connection& c, session_registry& registry, const session_context& ctx,
            std::string_view why) {
    c.slot.release(); // before the close, so a client that saw the close may connect again
    error_code ignored;
    c.socket.close(ignored);
    if (ctx.log.should_log(spdlog::level::info)) { // no formatting when the log is off
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - c.opened).count();
        ctx.log.info("[conn {}] {} closed: {}; {} requests in {} ms", c.id, peer_of(c), why,
                     c.requests, ms);
    }
    registry.remove(c);
}

/// Serves requests on `c` while they arrive back to back. Returns the reason the connection
/// ended, or nothing when it is idle again (nothing buffered) and should be parked.
asio::awaitable<std::optional<std::string>> serve_connection(connection& c,
                                                             const session_context& ctx) {
    // Cleanup I/O after a cancellation must still run (bounded by its own timeouts).
    co_await asio::this_coro::throw_if_cancelled(false);
    auto cancel_state = co_await asio::this_coro::cancellation_state;
    const auto& cfg = ctx.config;
    frame_buffer buffer;
    std::string why;
    bool linger = false; // an ERROR was sent before closing: close gently
    for (;;) {
        // While draining, requests are served as they come (a segmented download's next
        // chunk). Past the drain deadline (cancelled), requests still buffered are refused: the
        // client retries elsewhere or later.
        if (cancel_state.cancelled() != asio::cancellation_type::none) {
            why = "server shutting down";
            co_await send_error(c.socket, ctx, fp::status::shutting_down,
                                "shutting down: the server is stopping", true,
                                static_cast<std::uint32_t>(cfg.busy_retry_after.count()));
            linger = true;
            break;
        }
        auto r = co_await transport::read_frame(c.socket, buffer, cfg.request_timeout);
        if (r.net) {
            why = r.net == asio::error::eof && !buffer.empty() ? "closed mid-request"
                                                               : describe(r.net);
            break;
        }
        if (r.protocol) {
            const auto status = fp::status_for(r.protocol);
            std::string text = std::string{fp::status_text(status)} + ": " + r.protocol.message();
            if (r.protocol == fp::protocol_errc::unsupported_version)
                text = "unsupported version " + std::to_string(r.seen_version) +
                       "; this server speaks version " + std::to_string(fp::version);
            why = "protocol error: " + r.protocol.message();
            ctx.log.warn("[conn {}] {} {}", c.id, peer_of(c), why);
            co_await send_error(c.socket, ctx, status, text, true);
            linger = true;
            break;
        }
        if (!fp::is_request(r.frame.type)) {
            why = "protocol error: a reply frame sent by the client";
            ctx.log.warn("[conn {}] {} {}", c.id, peer_of(c), why);
            co_await send_error(c.socket, ctx, fp::status::bad_request,
                                "bad request: frame type is not a request", true);
            linger = true;
            break;
        }
        ++c.requests;
        const exchange x = co_await serve_request(c, ctx, r.frame, buffer);
        if (!x.keep_open) {
            why = "aborted during an answer";
            break;
        }
        if (buffer.empty())
            co_return std::nullopt; // idle: park it, and this frame and buffer are freed
    }
    c.slot.release();
    if (linger)
        co_await lingering_close(c.socket);
    co_return why;
}

/// The completion of a connection's coroutine: park it again or finish it.
struct served {
    connection* c;
    session_registry* registry;
    const session_context* ctx;
    void operator()(std::exception_ptr e, std::optional<std::string> why) const {
        c->busy = false;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                ctx->log.error("[conn {}] session failed: {}", c->id,
                               fp::escape_for_log(ex.what()));
            }
            finish(*c, *registry, *ctx, "internal error");
        } else if (why) {
            finish(*c, *registry, *ctx, *why);
        } else {
            park(*c, *registry, *ctx);
        }
    }
};

/// The end of a parked connection's wait: a request's first bytes, the peer's close, a
/// timeout, or shutdown.
struct woken {
    connection* c;
    session_registry* registry;
    const session_context* ctx;
    using allocator_type = handler_allocator<void>;
    allocator_type get_allocator() const noexcept { return allocator_type{c->wait_memory}; }

    void operator()(const error_code& ec) const {
        session_registry::unpark(*c);
        if (c->timed_out)
            return finish(*c, *registry, *ctx,
                          registry->draining() ? "idle while draining"
                          : c->requests == 0   ? "request timeout"
                                               : "idle timeout");
        if (registry->cancelling()) // past the drain: no more answers, not even a refusal
            return finish(*c, *registry, *ctx, "cancelled");
        if (ec)
            return finish(*c, *registry, *ctx, describe(ec));
        // Readable. End of file shows up as readable too.
        c->busy = true;
        asio::co_spawn(c->socket.get_executor(), serve_connection(*c, *ctx),
                       asio::bind_cancellation_slot(c->signal.slot(), served{c, registry, ctx}));
    }
};

void park(connection& c, session_registry& registry, const session_context& ctx) {
    // The first request has the request timeout; later ones the idle keep-alive timeout; while
    // draining, neither is longer than the short drain_idle_timeout.
    if (c.requests == 0)
        registry.park(c, session_registry::wait::first_request,
                      registry.draining() ? std::min(drain_idle_timeout(ctx.config),
                                                     clock::duration{ctx.config.request_timeout})
                                          : clock::duration{ctx.config.request_timeout});
    else
        registry.park(c, session_registry::wait::keep_alive,
                      registry.draining() ? drain_idle_timeout(ctx.config)
                                          : clock::duration{ctx.config.idle_timeout});
    c.socket.async_wait(stream_socket::wait_read, woken{&c, &registry, &ctx});
}

} // namespace

transport::clock::duration drain_idle_timeout(const server_config& config) {
    return std::min<transport::clock::duration>(config.idle_timeout, std::chrono::seconds(1));
}

std::string peer_name(const asio::ip::address& address, std::uint16_t port) {
    return address.is_v6() ? "[" + address.to_string() + "]:" + std::to_string(port)
                           : address.to_string() + ":" + std::to_string(port);
}

void start_session(stream_socket socket, std::uint64_t id, std::uint16_t port, connection_slot slot,
                   session_registry& registry, const session_context& ctx) {
    error_code ignored;
    socket.native_non_blocking(true, ignored);
    auto& c = registry.add(std::move(socket), id, port, std::move(slot), ctx.config.rate_limit);
    if (ctx.log.should_log(spdlog::level::debug))
        ctx.log.debug("[conn {}] {} open", c.id, peer_of(c));
    park(c, registry, ctx);
}

asio::awaitable<void> refuse_busy(stream_socket socket, session_context ctx, session_info info) {
    co_await asio::this_coro::throw_if_cancelled(false);
    ctx.log.warn("[conn {}] {} refused: busy (connection limit)", info.id, info.peer);
    co_await send_error(socket, ctx, fp::status::busy, "busy: too many connections; retry later",
                        true, static_cast<std::uint32_t>(ctx.config.busy_retry_after.count()));
    co_await lingering_close(socket);
}

} // namespace ferry::server
