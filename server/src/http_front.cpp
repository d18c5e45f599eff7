// The HTTP/1.1 front (docs/http.md): Beast parses a request's head (bounded), the checks Beast
// does not make refuse what could smuggle or confuse, and the request becomes the same serve
// operations as a Ferry request (path_resolver, send_file_range, directory listing, digests);
// only the answers are encoded differently.
#include "ferry/protocol/http.hpp"
#include "ferry/protocol/text.hpp"
#include "ferry/server/offload.hpp"
#include "ferry/transport/frame_io.hpp"
#include "ferry/transport/with_timeout.hpp"
#include "http_listing.hpp"
#include "serve.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fmt/format.h>
#include <random>
#include <spdlog/spdlog.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <tuple>
#include <vector>

namespace ferry::server {

namespace fp = ferry::protocol;
namespace http = ferry::protocol::http;
namespace bhttp = boost::beast::http;
using transport::clock;
using transport::error_code;
using transport::with_timeout;

namespace {

/// The longest request head (request line and fields) ferryd reads: longer is 414 (the request
/// line alone is longer) or 431.
constexpr std::size_t header_limit = 8 * 1024;
/// The read buffer: a whole head plus what a pipelining client sent after it.
constexpr std::size_t read_buffer_limit = 2 * header_limit;

using request = bhttp::request<bhttp::empty_body>;

// ---- the one status table -------------------------------------------------------------------

/// The HTTP status of a serve outcome (docs/http.md, statuses).
unsigned http_status(fp::status s) noexcept {
    switch (s) {
    case fp::status::ok:
        return 200;
    case fp::status::not_found:
        return 404;
    case fp::status::forbidden:
        return 403;
    case fp::status::not_regular_file:
        return 403; // a FIFO, socket or device: it exists, but is never served
    case fp::status::bad_request:
        return 400;
    case fp::status::range_not_satisfiable:
        return 416;
    case fp::status::changed:
        return 412;
    case fp::status::busy:
    case fp::status::shutting_down:
        return 503;
    case fp::status::too_large:
        return 414;
    case fp::status::unsupported_version:
        return 505;
    case fp::status::internal_error:
        break;
    }
    return 500;
}

std::string_view reason_phrase(unsigned status) noexcept {
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 412:
        return "Precondition Failed";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Internal Server Error";
    }
}

// ---- writing a head -------------------------------------------------------------------------

/// IMF-fixdate of now, formatted once a second per thread.
std::string_view date_now() {
    thread_local std::time_t cached_at = -1;
    thread_local std::string cached;
    const std::time_t now = std::time(nullptr);
    if (now != cached_at) {
        cached_at = now;
        cached = http::format_http_date(now);
    }
    return cached;
}

/// Starts a response head in `out` (cleared): status line, Date, Server.
void start_head(std::string& out, unsigned status) {
    out.clear();
    fmt::format_to(std::back_inserter(out),
                   "HTTP/1.1 {} {}\r\nDate: {}\r\nServer: ferryd/" FERRY_VERSION "\r\n", status,
                   reason_phrase(status), date_now());
}

void add_field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
}

void add_length(std::string& out, std::uint64_t length) {
    fmt::format_to(std::back_inserter(out), "Content-Length: {}\r\n", length);
}

/// How the connection goes on after an answer.
enum class persistence {
    keep_alive,    ///< HTTP/1.1 default: nothing to say
    keep_alive_10, ///< HTTP/1.0 that asked for keep-alive: say yes
    close,
};

void end_head(std::string& out, persistence p) {
    if (p == persistence::close)
        out.append("Connection: close\r\n");
    else if (p == persistence::keep_alive_10)
        out.append("Connection: keep-alive\r\n");
    out.append("\r\n");
}

std::span<const std::byte> bytes_of(std::string_view s) noexcept {
    return std::as_bytes(std::span{s.data(), s.size()});
}

// ---- the request ---------------------------------------------------------------------------

/// One request and what is known about answering it.
struct exchange {
    unsigned status = 0;
    std::uint64_t bytes = 0;               ///< body bytes sent
    bool keep_open = true;                 ///< false: broken, or closed after the answer
    bool cut = false;                      ///< cut short with a reset: no lingering close
    std::optional<http::byte_range> range; ///< a single 206 range (for the access log)
    std::uint64_t size = 0;
};

/// What a session needs of one parsed request.
struct request_context {
    stream_socket& socket;
    const session_context& ctx;
    connection& c;
    const request& req;
    bool head = false; ///< HEAD: no body
    persistence after = persistence::keep_alive;
    std::string& out; ///< the head being written (the connection's buffer)
};

/// A short text/plain answer (escaped, one line), then the connection goes on or closes.
asio::awaitable<exchange> answer_text(request_context& r, unsigned status, std::string_view text,
                                      std::string_view extra_fields = {}) {
    exchange x;
    x.status = status;
    const std::string body = fp::escape_for_terminal(text) + "\n";
    start_head(r.out, status);
    r.out.append(extra_fields);
    add_field(r.out, "Content-Type", "text/plain; charset=utf-8");
    add_length(r.out, body.size());
    end_head(r.out, r.after);
    if (!r.head) {
        r.out.append(body);
        x.bytes = body.size();
    }
    x.keep_open =
        !co_await transport::write_all(r.socket, bytes_of(r.out), r.ctx.config->progress_timeout) &&
        r.after != persistence::close;
    co_return x;
}

std::optional<std::string_view> field_of(const request& req, bhttp::field f) {
    const auto it = req.find(f);
    if (it == req.end())
        return std::nullopt;
    return std::string_view{it->value().data(), it->value().size()};
}

/// A Host value: a reg-name, an IPv4 or bracketed IPv6 literal, and an optional port (RFC 3986
/// authority without userinfo). Empty is allowed (RFC 9112 3.2).
bool valid_host(std::string_view host) noexcept {
    static constexpr std::string_view allowed = "-._~!$&'()*+,;=:[]%";
    return std::all_of(host.begin(), host.end(), [](char ch) {
        const auto u = static_cast<unsigned char>(ch);
        return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
               allowed.find(ch) != std::string_view::npos;
    });
}

/// A field line continued on the next (obs-fold, RFC 9112 5.2): refused, never unfolded.
bool has_obs_fold(std::string_view head) noexcept {
    for (auto at = head.find('\n'); at != std::string_view::npos && at + 1 < head.size();
         at = head.find('\n', at + 1))
        if (head[at + 1] == ' ' || head[at + 1] == '\t')
            return true;
    return false;
}

/// The ETag of a file version: its identity, so any change of inode, size or mtime changes it
/// (docs/http.md): "\"<inode hex>-<size hex>-<mtime ns hex>\"".
void format_etag(std::string& out, const struct stat& st) {
    out.clear();
    fmt::format_to(std::back_inserter(out), "\"{:x}-{:x}-{:x}\"",
                   static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size),
                   static_cast<std::uint64_t>(mtime_ns(st)));
}

std::string_view last_segment(std::string_view path) noexcept {
    const auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// ---- files ---------------------------------------------------------------------------------

/// A multipart/byteranges boundary: random per thread, never in a part's header.
const std::string& boundary() {
    thread_local const std::string b = [] {
        std::random_device rd;
        return fmt::format("ferryd-{:08x}{:08x}", rd(), rd());
    }();
    return b;
}

/// The head of one part of a multipart/byteranges body.
std::string part_head(std::string_view type, http::byte_range range, std::uint64_t size) {
    return fmt::format("\r\n--{}\r\nContent-Type: {}\r\nContent-Range: {}\r\n\r\n", boundary(),
                       type, http::format_content_range(range, size));
}

std::string multipart_end() {
    return fmt::format("\r\n--{}--\r\n", boundary());
}

/// Sends the head in r.out, then `length` bytes of the file from `offset`: from `bytes` (the
/// whole file, from the small-file cache) or read from `fd` in one send when small and not
/// rate-limited, else corked with sendfile. A file that shrank cuts the connection.
asio::awaitable<exchange> send_with_body(request_context& r, int fd, const std::string* bytes,
                                         std::uint64_t offset, std::uint64_t length, exchange x) {
    const auto timeout = r.ctx.config->progress_timeout;
    if (r.head || length == 0) {
        x.keep_open = !co_await transport::write_all(r.socket, bytes_of(r.out), timeout) &&
                      r.after != persistence::close;
        co_return x;
    }
    if (bytes && r.c.limiter.unlimited()) {
        r.out.append(*bytes, static_cast<std::size_t>(offset), static_cast<std::size_t>(length));
        x.bytes = length;
        x.keep_open = !co_await transport::write_all(r.socket, bytes_of(r.out), timeout) &&
                      r.after != persistence::close;
        co_return x;
    }
    if (length <= small_body && r.c.limiter.unlimited()) {
        const auto head_size = r.out.size();
        r.out.resize(head_size + length);
        const auto got =
            read_at(fd, std::as_writable_bytes(std::span{r.out}).subspan(head_size), offset);
        if (got != static_cast<std::int64_t>(length)) { // shrank, or a read error
            x.keep_open = false;
            x.status = 500;
            x.cut = true;
            reset_on_close(r.socket);
            co_return x;
        }
        x.bytes = length;
        x.keep_open = !co_await transport::write_all(r.socket, bytes_of(r.out), timeout) &&
                      r.after != persistence::close;
        co_return x;
    }
    const tcp_cork cork{r.socket};
    if (co_await transport::write_all(r.socket, bytes_of(r.out), timeout)) {
        x.keep_open = false;
        co_return x;
    }
    auto sent = co_await send_file_range(r.socket, fd, offset, length, timeout, r.c.limiter);
    x.bytes = sent.from_file;
    if (sent.ec || sent.truncated) {
        // Mid-body: the stream ends with a reset, as on the Ferry side.
        x.keep_open = false;
        x.cut = true;
        reset_on_close(r.socket);
        co_return x;
    }
    x.keep_open = r.after != persistence::close;
    co_return x;
}

asio::awaitable<exchange> send_multipart(request_context& r, int fd, std::string_view type,
                                         const std::vector<http::byte_range>& ranges,
                                         std::uint64_t size, exchange x) {
    const auto timeout = r.ctx.config->progress_timeout;
    std::vector<std::string> heads;
    heads.reserve(ranges.size());
    std::uint64_t total = multipart_end().size();
    for (const auto& range : ranges) {
        heads.push_back(part_head(type, range, size));
        total += heads.back().size() + range.length();
    }
    add_field(r.out, "Content-Type", "multipart/byteranges; boundary=" + boundary());
    add_length(r.out, total);
    end_head(r.out, r.after);
    const tcp_cork cork{r.socket};
    if (co_await transport::write_all(r.socket, bytes_of(r.out), timeout)) {
        x.keep_open = false;
        co_return x;
    }
    for (std::size_t i = 0; i < ranges.size(); ++i) {
        if (co_await transport::write_all(r.socket, bytes_of(heads[i]), timeout)) {
            x.keep_open = false;
            co_return x;
        }
        auto sent = co_await send_file_range(r.socket, fd, ranges[i].first, ranges[i].length(),
                                             timeout, r.c.limiter);
        x.bytes += sent.from_file;
        if (sent.ec || sent.truncated) {
            x.keep_open = false;
            x.cut = true;
            reset_on_close(r.socket);
            co_return x;
        }
    }
    x.keep_open = !co_await transport::write_all(r.socket, bytes_of(multipart_end()), timeout) &&
                  r.after != persistence::close;
    co_return x;
}

/// GET or HEAD of a regular file found by find_file (docs/http.md, files).
asio::awaitable<exchange> serve_file(request_context& r, resolved& file, std::string_view path) {
    exchange x;
    const auto size = static_cast<std::uint64_t>(file.st.st_size);
    x.size = size;
    // A small file whose version is in memory is neither opened nor read; any other is opened
    // now, so a file this server may not read is refused whatever the method.
    auto bytes =
        size <= small_body && r.c.limiter.unlimited() ? r.ctx.small_files.find(file.st) : nullptr;
    bool readable = false;
    const auto open_readable = [&] {
        if (!readable)
            file = r.ctx.resolver.open_readable(std::move(file));
        readable = true;
        return file.status == fp::status::ok;
    };
    if (!bytes) {
        if (!open_readable())
            co_return co_await answer_text(r, http_status(file.status),
                                           file.reason + ": /" + std::string{path});
        if (!r.head && r.c.limiter.unlimited())
            bytes = keep_small_file(r.ctx, file);
    }
    std::string etag;
    format_etag(etag, file.st);
    const std::int64_t modified = file.st.st_mtim.tv_sec;
    // Last-Modified is a strong validator only for a file unchanged in the last second.
    const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const http::validators v{etag, modified, mtime_ns(file.st) + 1'000'000'000 <= now_ns};
    const http::conditions cond{field_of(r.req, bhttp::field::if_match),
                                field_of(r.req, bhttp::field::if_none_match),
                                field_of(r.req, bhttp::field::if_modified_since),
                                field_of(r.req, bhttp::field::if_unmodified_since)};
    const auto modified_text = http::format_http_date(modified);
    switch (http::evaluate_preconditions(cond, v)) {
    case http::precondition::not_modified:
        x.status = 304;
        start_head(r.out, 304);
        add_field(r.out, "ETag", etag);
        add_field(r.out, "Last-Modified", modified_text);
        end_head(r.out, r.after);
        x.keep_open = !co_await transport::write_all(r.socket, bytes_of(r.out),
                                                     r.ctx.config->progress_timeout) &&
                      r.after != persistence::close;
        co_return x;
    case http::precondition::failed:
        co_return co_await answer_text(r, 412, "precondition failed: " + std::string{path});
    case http::precondition::proceed:
        break;
    }

    // Range applies to GET only (RFC 9110 14.2); If-Range that does not hold: the whole file.
    http::range_decision ranges;
    if (!r.head) {
        if (const auto range = field_of(r.req, bhttp::field::range)) {
            const auto if_range = field_of(r.req, bhttp::field::if_range);
            if (!if_range || http::if_range_holds(*if_range, v))
                ranges = http::evaluate_range(*range, size);
        }
    }
    if (ranges.what == http::range_decision::kind::unsatisfiable)
        co_return co_await answer_text(r, 416,
                                       "range not satisfiable: " + std::string{path} + " has " +
                                           std::to_string(size) + " bytes",
                                       "Content-Range: " + http::format_unsatisfied_range(size) +
                                           "\r\n");

    // Repr-Digest: cached, or computed when asked for (then waiting, unless the peer leaves).
    std::optional<fp::sha256_digest> digest;
    const auto identity = make_identity(file.st);
    const auto want_it = r.req.find("Want-Repr-Digest");
    if (want_it != r.req.end() &&
        http::wants_sha256({want_it->value().data(), want_it->value().size()})) {
        if (!open_readable())
            co_return co_await answer_text(r, http_status(file.status),
                                           file.reason + ": /" + std::string{path});
        auto d = co_await digest_for_peer(r.socket, r.ctx, file.fd.get(), identity);
        if (d.ec == asio::error::operation_aborted) {
            x.status = 500;
            x.keep_open = false; // nobody waits for the answer any more
            co_return x;
        }
        if (d.ec)
            co_return co_await answer_text(
                r, d.ec.value() == ESTALE ? 412 : 500,
                d.ec.value() == ESTALE
                    ? "changed: " + std::string{path} + " changed while its digest was computed"
                    : "internal error: reading " + std::string{path} + ": " + d.ec.message());
        digest = d.digest;
    } else {
        digest = r.ctx.digests.cached(identity);
    }

    const auto type = http::content_type_for(last_segment(path));
    const bool partial = ranges.what == http::range_decision::kind::partial;
    x.status = partial ? 206 : 200;
    start_head(r.out, x.status);
    add_field(r.out, "Last-Modified", modified_text);
    add_field(r.out, "ETag", etag);
    add_field(r.out, "Accept-Ranges", "bytes");
    if (digest)
        add_field(r.out, "Repr-Digest", http::format_repr_digest(*digest));
    if (partial && ranges.ranges.size() > 1) {
        if (!open_readable())
            co_return co_await answer_text(r, http_status(file.status),
                                           file.reason + ": /" + std::string{path});
        co_return co_await send_multipart(r, file.fd.get(), type, ranges.ranges, size,
                                          std::move(x));
    }
    std::uint64_t first = 0;
    std::uint64_t length = size;
    if (partial) {
        first = ranges.ranges.front().first;
        length = ranges.ranges.front().length();
        x.range = ranges.ranges.front();
        add_field(r.out, "Content-Range", http::format_content_range(ranges.ranges.front(), size));
    }
    add_field(r.out, "Content-Type", type);
    add_length(r.out, length);
    end_head(r.out, r.after);
    co_return co_await send_with_body(r, file.fd.get(), bytes.get(), first, length, std::move(x));
}

// ---- directories ----------------------------------------------------------------------------

/// A listing's body is rendered and sent a piece of about this size at a time: what it holds
/// of its text (besides its entries) however slowly the client reads.
constexpr std::size_t listing_piece = 64 * 1024;

/// The Retry-After of a busy answer: --busy-retry-after in whole seconds, rounded up.
std::int64_t retry_after_seconds(const server_config& config) {
    return (config.busy_retry_after.count() + 999) / 1000;
}

/// The head of a listing's 200 in r.out: a GET's and a HEAD's alike.
void listing_head(request_context& r, bool json, bool chunked) {
    start_head(r.out, 200);
    add_field(r.out, "Content-Type", json ? "application/json" : "text/html; charset=utf-8");
    add_field(r.out, "Vary", "Accept");
    if (chunked)
        add_field(r.out, "Transfer-Encoding", "chunked");
    end_head(r.out, r.after);
}

/// Sends the head in r.out, then the body a piece at a time (the first piece with the head):
/// as chunks, or as it is when the connection's close ends it. Each write has the progress
/// timeout; a write that fails, or cancellation, cuts the connection mid-body.
asio::awaitable<exchange> send_listing(request_context& r, listing_renderer& body, bool chunked,
                                       exchange x) {
    const auto timeout = r.ctx.config->progress_timeout;
    auto cancel_state = co_await asio::this_coro::cancellation_state;
    for (bool more = true; more;) {
        const auto at = r.out.size();
        more = body.next(r.out, listing_piece);
        const auto n = r.out.size() - at;
        if (chunked && n > 0) {
            r.out.insert(at, fmt::format("{:x}\r\n", n));
            r.out += "\r\n";
        }
        if (chunked && !more)
            r.out += "0\r\n\r\n"; // the last chunk, no trailer
        if (co_await transport::write_all(r.socket, bytes_of(r.out), timeout) ||
            (more && cancel_state.cancelled() != asio::cancellation_type::none)) {
            x.keep_open = false;
            x.cut = true;
            reset_on_close(r.socket);
            co_return x;
        }
        x.bytes += n;
        r.out.clear();
    }
    x.keep_open = r.after != persistence::close;
    co_return x;
}

/// GET or HEAD of a directory (docs/http.md, directories).
asio::awaitable<exchange> serve_directory(request_context& r, std::string_view path,
                                          bool trailing_slash) {
    if (!trailing_slash && !path.empty()) {
        // A directory's URL ends with '/', so its relative links resolve inside it.
        const auto location = http::encode_path("/" + std::string{path} + "/");
        co_return co_await answer_text(r, 301, "moved to " + location,
                                       "Location: " + location + "\r\n");
    }
    auto dir = r.ctx.resolver.open_directory(path);
    if (dir.status != fp::status::ok)
        co_return co_await answer_text(r, http_status(dir.status),
                                       dir.reason + ": /" + std::string{path});
    const auto accept = field_of(r.req, bhttp::field::accept);
    const bool json = http::prefers_json(accept.value_or(std::string_view{}));
    // HTTP/1.1 gets the body chunked; HTTP/1.0 has no chunks: there the connection's close ends
    // the body (RFC 9112 6.3), so the connection closes after it whatever the request asked.
    const bool chunked = r.req.version() == 11;
    exchange x;
    x.status = 200;
    if (r.head) {
        // The head needs the open directory only: nothing is read, no listing slot taken.
        if (!chunked)
            r.after = persistence::close;
        listing_head(r, json, chunked);
        x.keep_open = !co_await transport::write_all(r.socket, bytes_of(r.out),
                                                     r.ctx.config->progress_timeout) &&
                      r.after != persistence::close;
        co_return x;
    }
    const auto slot = r.ctx.listings.try_acquire(r.c.slot.address()); // until the body is sent
    if (!slot)
        co_return co_await answer_text(
            r, 503, "busy: too many directory listings at once; retry later",
            fmt::format("Retry-After: {}\r\n", retry_after_seconds(*r.ctx.config)));
    const dir_ptr stream = open_dir_stream(dir);
    if (!stream)
        co_return co_await answer_text(
            r, 500, "internal error: cannot read directory /" + std::string{path});
    // Directory reads may block on the disk: they run on the listing pool. (The function is a
    // named local: GCC 12 destroys some temporaries of a co_await expression twice.)
    const auto read = [stream, &resolver = r.ctx.resolver] {
        return read_listing(stream, resolver);
    };
    const auto l = co_await offload(r.ctx.digests.pool().get_executor(), read);
    if (l.error != 0)
        co_return co_await answer_text(r, 500,
                                       "internal error: reading directory /" + std::string{path} +
                                           ": " + std::strerror(l.error));
    listing_renderer body{l, json ? listing_format::json : listing_format::html, path};
    if (!chunked)
        r.after = persistence::close;
    listing_head(r, json, chunked);
    co_return co_await send_listing(r, body, chunked, std::move(x));
}

/// Answers a GET or HEAD whose head passed every check.
asio::awaitable<exchange> serve_target(request_context& r, const http::decoded_target& t) {
    auto file = r.ctx.resolver.find_file(t.path);
    if (file.status == fp::status::ok) {
        if (t.trailing_slash) // "file.txt/" names nothing
            co_return co_await answer_text(r, 404, "not found: /" + t.path + "/");
        co_return co_await serve_file(r, file, t.path);
    }
    if (file.status == fp::status::not_regular_file) {
        auto probe = r.ctx.resolver.stat_path(t.path);
        if (probe.status == fp::status::ok && S_ISDIR(probe.st.st_mode))
            co_return co_await serve_directory(r, t.path, t.trailing_slash || t.path.empty());
    }
    co_return co_await answer_text(r, http_status(file.status), file.reason + ": /" + t.path);
}

// ---- reading a head -------------------------------------------------------------------------

/// The status for a head Beast refused: over the limit in the request line (414) or in the
/// fields (431); a well-formed version other than 1.0 and 1.1 (505); else 400. `rest`: the
/// bytes Beast did not take.
unsigned refusal_status(const boost::beast::error_code& ec, bool start_line_done,
                        std::string_view rest) noexcept {
    if (ec == bhttp::error::header_limit)
        return start_line_done ? 431 : 414;
    if (ec == bhttp::error::bad_version && !start_line_done) {
        const auto line = rest.substr(0, rest.find("\r\n"));
        const auto digit = [](char ch) { return ch >= '0' && ch <= '9'; };
        const auto n = line.size();
        if (n >= 9 && line[n - 9] == ' ' && line.substr(n - 8, 5) == "HTTP/" &&
            digit(line[n - 3]) && line[n - 2] == '.' && digit(line[n - 1]))
            return 505;
    }
    return 400;
}

/// How reading a request head ended.
struct head_read {
    error_code net;                 ///< EOF, timeout, reset, cancellation
    boost::beast::error_code parse; ///< Beast refused the head
    bool obs_fold = false;          ///< the head folds a field line
    bool partial = false;           ///< net error after some bytes of the head
    unsigned status = 0;            ///< for parse errors: 400, 414 or 431
};

/// Reads one request head into `parser`, taking its bytes from `buffer` (what stays there is
/// the next pipelined request's). The whole head has `timeout` (slowloris).
asio::awaitable<head_read> read_head(stream_socket& socket, boost::beast::flat_buffer& buffer,
                                     bhttp::request_parser<bhttp::empty_body>& parser,
                                     clock::duration timeout) {
    head_read h;
    const auto deadline = clock::now() + timeout;
    bool start_line_done = false; // Beast takes the request line's bytes once it parsed them
    // Beast applies its header limit to what one put() sees, not to the whole head: the head's
    // size is counted here, across reads (a head of many small fields is 431 too).
    std::size_t taken = 0;
    bool line_ended = false; // the bytes taken so far end with '\n': a fold may start the next
    const auto refuse_size = [&] {
        h.parse = bhttp::error::header_limit;
        h.status = start_line_done ? 431 : 414;
    };
    for (;;) {
        if (buffer.size() > 0) {
            boost::beast::error_code ec;
            const auto data = buffer.data();
            const auto n = parser.put(data, ec);
            const std::string_view part{static_cast<const char*>(data.data()), n};
            if (n > 0) {
                h.obs_fold = h.obs_fold || has_obs_fold(part) ||
                             (line_ended && (part.front() == ' ' || part.front() == '\t'));
                line_ended = part.back() == '\n';
            }
            taken += n;
            buffer.consume(n);
            start_line_done = start_line_done || n > 0;
            if (!ec && parser.is_header_done()) {
                if (taken > header_limit)
                    refuse_size();
                co_return h;
            }
            if (ec && ec != bhttp::error::need_more) {
                h.parse = ec;
                h.status =
                    refusal_status(ec, start_line_done,
                                   {static_cast<const char*>(buffer.data().data()), buffer.size()});
                co_return h;
            }
            if (taken + buffer.size() > header_limit) { // all of it is head so far
                refuse_size();
                co_return h;
            }
            if (!ec && n > 0)
                continue;
        }
        const auto room = buffer.max_size() - buffer.size();
        if (room == 0) { // cannot happen while header_limit < the buffer: refuse anyway
            h.parse = bhttp::error::header_limit;
            h.status = 431;
            co_return h;
        }
        const auto left = deadline - clock::now();
        if (left <= clock::duration::zero()) {
            h.net = asio::error::timed_out;
            h.partial = buffer.size() > 0;
            co_return h;
        }
        const auto space = buffer.prepare(std::min<std::size_t>(room, 4096));
        auto [ec, n] = transport::detail::try_receive(
            socket, {static_cast<std::byte*>(space.data()), space.size()});
        if (!ec && n == 0)
            std::tie(ec, n) =
                co_await with_timeout(socket.async_read_some(space, asio::deferred), left);
        if (ec) {
            h.net = ec;
            h.partial = buffer.size() > 0;
            co_return h;
        }
        buffer.commit(n);
    }
}

std::string_view version_text(unsigned version) noexcept {
    return version == 10 ? "HTTP/1.0" : version == 11 ? "HTTP/1.1" : "HTTP/?";
}

/// The checks Beast does not make (docs/http.md; Beast already refused versions other than
/// 1.0 and 1.1): 0 when the head may be served, else the status and why. Every refusal closes
/// the connection.
unsigned check_head(const request& req, bool obs_fold, std::string& why) {
    if (obs_fold) {
        why = "bad request: a folded header field (obs-fold)";
        return 400;
    }
    if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
        why = "method not allowed: only GET and HEAD";
        return 405;
    }
    if (req.count(bhttp::field::transfer_encoding) > 0) {
        why = "bad request: a GET or HEAD with Transfer-Encoding";
        return 400;
    }
    for (auto it = req.find(bhttp::field::content_length);
         it != req.end() && it->name() == bhttp::field::content_length; ++it)
        if (it->value() != "0") {
            why = "bad request: a GET or HEAD with a body";
            return 400;
        }
    const auto hosts = req.count(bhttp::field::host);
    if ((req.version() == 11 && hosts != 1) || hosts > 1) {
        why = "bad request: HTTP/1.1 needs exactly one Host";
        return 400;
    }
    if (hosts == 1) {
        const auto host = req[bhttp::field::host];
        if (!valid_host({host.data(), host.size()})) {
            why = "bad request: an invalid Host";
            return 400;
        }
    }
    return 0;
}

void log_access(const session_context& ctx, const connection& c, const request* req,
                std::string_view target, const exchange& x, clock::time_point started) {
    const auto method =
        req ? std::string_view{req->method_string().data(), req->method_string().size()}
            : std::string_view{"-"};
    const auto kind = method == "GET"    ? metric_method::get
                      : method == "HEAD" ? metric_method::head
                                         : metric_method::other;
    std::optional<access_record::byte_range> range;
    if (x.range)
        range = access_record::byte_range{x.range->first, x.range->last + 1, x.size};
    const auto status = fmt::format_int(x.status);
    record_request(ctx, c,
                   {metric_protocol::http, kind, version_text(req ? req->version() : 11), method,
                    target, range, x.bytes, x.bytes, {status.data(), status.size()},
                    x.cut ? metric_status::aborted() : metric_status::http(x.status), started});
}

} // namespace

asio::awaitable<std::optional<std::string>> serve_http(connection& c, const session_context& ctx) {
    // Cleanup I/O after a cancellation must still run (bounded by its own timeouts).
    co_await asio::this_coro::throw_if_cancelled(false);
    auto cancel_state = co_await asio::this_coro::cancellation_state;
    boost::beast::flat_buffer buffer{read_buffer_limit};
    std::string out;
    out.reserve(512 + small_body);
    std::string why;
    bool linger = false; // an error answer was sent before closing: close gently
    unsigned in_a_row = 0;
    for (;;) {
        if (cancel_state.cancelled() != asio::cancellation_type::none) {
            why = "server shutting down";
            break;
        }
        bhttp::request_parser<bhttp::empty_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(header_limit));
        auto h = co_await read_head(c.socket, buffer, parser, ctx.config->request_timeout);
        if (h.net) {
            why = h.net == asio::error::eof && h.partial ? "closed mid-request" : describe(h.net);
            break;
        }
        ++c.requests;
        const auto started = clock::now();
        const auto& req = parser.get();
        request_context r{c.socket,           ctx, c, req, req.method() == bhttp::verb::head,
                          persistence::close, out};
        std::string refusal;
        unsigned status = h.parse ? h.status : check_head(req, h.obs_fold, refusal);
        const std::string_view target{req.target().data(), req.target().size()};
        http::decoded_target t;
        if (status == 0) {
            t = http::decode_target(target);
            if (!t.ok) {
                status = 400;
                refusal = "bad request: " + t.error;
            }
        }
        exchange x;
        if (status != 0) {
            if (h.parse)
                refusal = status == 414   ? "URI too long"
                          : status == 431 ? "request header fields too large"
                          : status == 505 ? "HTTP version not supported: this server speaks "
                                            "HTTP/1.0 and HTTP/1.1"
                                          : "bad request: " + h.parse.message();
            if (ctx.log.should_log(spdlog::level::warn))
                ctx.log.warn("[conn {}] {} {}", c.id, peer_of(c), fp::escape_for_log(refusal));
            r.head = !h.parse && req.method() == bhttp::verb::head;
            x = co_await answer_text(r, status, refusal,
                                     status == 405 ? std::string_view{"Allow: GET, HEAD\r\n"} : "");
            x.keep_open = false;
            log_access(ctx, c, h.parse ? nullptr : &req, h.parse ? "" : target, x, started);
            why = "protocol error: " + refusal;
            linger = true;
            break;
        }
        // While draining, a connection is still answered, as the Ferry front's are (a segmented
        // download finishes on the connections it has); idle, it closes after the drain's short
        // idle timeout (session.cpp, park). Connection: close here would end such a download,
        // its client refused a new connection by the closed listener.
        const bool keep_alive = req.keep_alive();
        r.after = !keep_alive           ? persistence::close
                  : req.version() == 10 ? persistence::keep_alive_10
                                        : persistence::keep_alive;
        x = co_await serve_target(r, t);
        log_access(ctx, c, &req, target, x, started);
        if (!x.keep_open) {
            // (r.after: an HTTP/1.0 listing closes the connection whatever the request asked)
            const bool closing = r.after == persistence::close;
            why = closing && !x.cut ? "closed after the answer" : "aborted during an answer";
            linger = closing && !x.cut;
            break;
        }
        if (buffer.size() == 0)
            co_return std::nullopt; // idle: park it, and this frame and its buffers are freed
        if (++in_a_row % requests_between_yields == 0) // pipelined: let the others run too
            co_await yield_to_others();
    }
    c.slot.release();
    if (linger)
        co_await lingering_close(c.socket);
    co_return why;
}

asio::awaitable<void> refuse_busy_http(stream_socket& socket, const session_context& ctx) {
    std::string out;
    start_head(out, 503);
    const auto seconds = retry_after_seconds(*ctx.config);
    const std::string_view body = "busy: too many connections; retry later\n";
    fmt::format_to(std::back_inserter(out),
                   "Retry-After: {}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                   "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                   seconds, body.size(), body);
    co_await transport::write_all(socket, bytes_of(out), ctx.config->progress_timeout);
}

} // namespace ferry::server
