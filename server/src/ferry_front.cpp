// The Ferry front: decodes Ferry protocol requests (docs/protocol.md) into the serve
// operations of serve.hpp and encodes their answers as frames.
#include "ferry/protocol/errc.hpp"
#include "ferry/protocol/text.hpp"
#include "ferry/server/offload.hpp"
#include "ferry/transport/frame_io.hpp"
#include "ferry/transport/with_timeout.hpp"
#include "serve.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/this_coro.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <vector>

namespace ferry::server {

namespace fp = ferry::protocol;
using transport::clock;
using transport::error_code;
using transport::frame_buffer;
using transport::write_frame;

namespace {

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
    co_return co_await write_frame(socket, reply, ctx.config->progress_timeout);
}

/// A GET whose body is at most small_body bytes and not rate-limited: header, body and trailer
/// in one buffer. The body comes from `bytes` (the whole version the header describes, from
/// the small-file cache) or is read before anything is sent: a file that shrank is answered
/// with ERROR `changed` (the connection stays open), a file that changed while it was read gets
/// the trailer `changed`; a read error is an ERROR, the stream intact.
asio::awaitable<exchange> serve_small(stream_socket& socket, const session_context& ctx,
                                      const resolved& file, const std::string* bytes,
                                      const fp::get_header& header, exchange x) {
    const auto header_size = fp::encoded_size(header);
    const auto trailer_size = fp::encoded_size(fp::get_trailer{});
    const auto length = static_cast<std::size_t>(header.length);
    auto buf = std::make_unique_for_overwrite<std::byte[]>(header_size + length + trailer_size);
    const std::span out{buf.get(), header_size + length + trailer_size};
    auto body = out.subspan(header_size, length);
    if (bytes) { // that very version: nothing to read, nothing that could have changed
        std::memcpy(body.data(), bytes->data() + header.offset, length);
        x.status = fp::status::ok;
    } else {
        const auto got = read_at(file.fd.get(), body, header.offset);
        if (got < 0) {
            x.status = fp::status::internal_error;
            x.keep_open = !co_await send_error(socket, ctx, x.status,
                                               std::string{"internal error: reading the file: "} +
                                                   std::strerror(static_cast<int>(-got)));
            co_return x;
        }
        if (static_cast<std::size_t>(got) < length) {
            x.status = fp::status::changed;
            x.keep_open = !co_await send_error(socket, ctx, x.status,
                                               "changed: the file shrank while it was read; retry");
            co_return x;
        }
        struct stat after {};
        const bool unchanged =
            ::fstat(file.fd.get(), &after) == 0 && make_identity(after) == header.identity;
        x.status = unchanged ? fp::status::ok : fp::status::changed;
    }
    x.bytes = length;
    (void)fp::encode(header, out.first(header_size));
    (void)fp::encode(fp::get_trailer{x.status}, out.last(trailer_size));
    x.keep_open = !co_await transport::write_all(socket, out, ctx.config->progress_timeout);
    if (!x.keep_open)
        x.status = fp::status::internal_error;
    co_return x;
}

asio::awaitable<exchange> serve_get(stream_socket& socket, const session_context& ctx,
                                    const fp::get_request& req, rate_limiter& limiter) {
    exchange x;
    // A small file whose version is in memory is neither opened nor read.
    auto file = ctx.resolver.find_file(req.path);
    auto bytes = file.status == fp::status::ok && limiter.unlimited() &&
                         static_cast<std::uint64_t>(file.st.st_size) <= small_body
                     ? ctx.small_files.find(file.st)
                     : nullptr;
    if (file.status == fp::status::ok && !bytes) {
        file = ctx.resolver.open_readable(std::move(file));
        if (file.status == fp::status::ok && limiter.unlimited())
            bytes = keep_small_file(ctx, file);
    }
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
        co_return co_await serve_small(socket, ctx, file, bytes.get(), header, std::move(x));

    // Header, body and trailer leave corked, as few segments as the kernel can make of them.
    const tcp_cork cork{socket};
    std::array<std::byte, 128> buf;
    const auto header_size = fp::encoded_size(header);
    (void)fp::encode(header, buf);
    if (co_await transport::write_all(socket, std::span{buf}.first(header_size),
                                      ctx.config->progress_timeout)) {
        x.status = fp::status::internal_error;
        x.keep_open = false;
        co_return x;
    }

    auto sent = co_await send_file_range(socket, file.fd.get(), req.offset, length,
                                         ctx.config->progress_timeout, limiter);
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
        !co_await write_frame(socket, fp::get_trailer{x.status}, ctx.config->progress_timeout);
    co_return x;
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
    x.keep_open = !co_await write_frame(socket, reply, ctx.config->progress_timeout);
    co_return x;
}

// ---- LIST -----------------------------------------------------------------------------------

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
        auto e = next_listed(dir.get(), resolver, b.error);
        if (!e) {
            b.done = true;
            break;
        }
        size += fp::encoded_size(*e);
        b.frame.entries.push_back(std::move(*e));
    }
    return b;
}

asio::awaitable<exchange> serve_list(stream_socket& socket, const session_context& ctx,
                                     const fp::list_request& req, const asio::ip::address& peer) {
    exchange x;
    auto target = ctx.resolver.open_directory(req.path);
    if (target.status != fp::status::ok) {
        x.status = target.status;
        x.keep_open =
            !co_await send_error(socket, ctx, target.status, target.reason + ": " + req.path);
        co_return x;
    }
    const auto slot = ctx.listings.try_acquire(peer); // held until LIST_END (--max-listings)
    if (!slot) {
        x.status = fp::status::busy;
        x.keep_open = !co_await send_error(
            socket, ctx, x.status, "busy: too many directory listings at once; retry later", false,
            static_cast<std::uint32_t>(ctx.config->busy_retry_after.count()));
        co_return x;
    }
    const dir_ptr dir = open_dir_stream(target);
    if (!dir) {
        x.status = fp::status::internal_error;
        x.keep_open = !co_await send_error(socket, ctx, x.status,
                                           "internal error: cannot read directory " + req.path);
        co_return x;
    }
    // Directory reads may block on the disk: they run on the worker pool, a frame's worth at a
    // time, so a huge directory never stalls this thread. (The function is a named local: GCC 12
    // destroys some temporaries of a co_await expression twice.)
    const auto next_batch = [dir, &resolver = ctx.resolver] { return read_batch(dir, resolver); };
    for (;;) {
        auto batch = co_await offload(ctx.digests.pool().get_executor(), next_batch);
        if (!batch.frame.entries.empty()) {
            x.bytes += batch.frame.entries.size();
            if (co_await write_frame(socket, batch.frame, ctx.config->progress_timeout)) {
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
        !co_await write_frame(socket, fp::list_end{x.status, x.bytes}, ctx.config->progress_timeout);
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
        x = co_await serve_list(socket, ctx, list, c.slot.address());
    }
    const auto kind = type == fp::frame_type::get_request    ? metric_method::get
                      : type == fp::frame_type::stat_request ? metric_method::stat
                                                             : metric_method::list;
    std::optional<access_record::byte_range> range;
    if (x.range)
        range = access_record::byte_range{(*x.range)[0], (*x.range)[1], (*x.range)[2]};
    record_request(
        ctx, c,
        {metric_protocol::ferry, kind, "FERRY", method_name(type), path, range, x.bytes,
         kind == metric_method::get ? x.bytes : 0,
         x.keep_open ? fp::status_text(x.status) : std::string_view{"aborted"},
         x.keep_open ? metric_status::ferry(static_cast<std::uint16_t>(x.status))
                     : metric_status::aborted(),
         started});
    co_return x;
}

} // namespace

/// Serves requests on `c` while they arrive back to back. Returns the reason the connection
/// ended, or nothing when it is idle again (nothing buffered) and should be parked.
asio::awaitable<std::optional<std::string>> serve_ferry(connection& c, const session_context& ctx) {
    // Cleanup I/O after a cancellation must still run (bounded by its own timeouts).
    co_await asio::this_coro::throw_if_cancelled(false);
    auto cancel_state = co_await asio::this_coro::cancellation_state;
    frame_buffer buffer;
    std::string why;
    bool linger = false; // an ERROR was sent before closing: close gently
    unsigned in_a_row = 0;
    for (;;) {
        // While draining, requests are served as they come (a segmented download's next
        // chunk). Past the drain deadline (cancelled), requests still buffered are refused: the
        // client retries elsewhere or later.
        if (cancel_state.cancelled() != asio::cancellation_type::none) {
            why = "server shutting down";
            co_await send_error(c.socket, ctx, fp::status::shutting_down,
                                "shutting down: the server is stopping", true,
                                static_cast<std::uint32_t>(ctx.config->busy_retry_after.count()));
            linger = true;
            break;
        }
        auto r = co_await transport::read_frame(c.socket, buffer, ctx.config->request_timeout);
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
        if (++in_a_row % requests_between_yields == 0) // pipelined: let the others run too
            co_await yield_to_others();
    }
    c.slot.release();
    if (linger)
        co_await lingering_close(c.socket);
    co_return why;
}

asio::awaitable<void> refuse_busy_ferry(stream_socket& socket, const session_context& ctx) {
    co_await send_error(socket, ctx, fp::status::busy, "busy: too many connections; retry later",
                        true, static_cast<std::uint32_t>(ctx.config->busy_retry_after.count()));
}

} // namespace ferry::server
