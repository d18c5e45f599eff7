#include "ferry/client/http_connection.hpp"

#include "ferry/client/http_response.hpp"

#include "ferry/protocol/http.hpp"
#include "ferry/protocol/text.hpp"
#include "ferry/transport/sha256.hpp"
#include "ferry/transport/with_timeout.hpp"

#include <boost/asio/write.hpp>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

namespace ferry::client {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace http = ferry::protocol::http;
using transport::use_nothrow;

namespace {

/// Bytes asked of the socket per read of a head: a small file's head and body arrive in one
/// system call (larger bodies are read straight into the caller's buffer). Not 64 KiB: 10,000
/// bench connections would touch 640 MiB for it.
constexpr std::size_t read_size = 16 * 1024;

/// Bytes that cannot begin an HTTP/1.x answer: not a prefix of "HTTP/1.". (Beast waits for the
/// whole head before it judges the status line, so a peer that sends a little garbage and
/// closes would otherwise look like a cut connection, retried as a network error.)
bool not_http(const beast::flat_buffer& b) {
    const std::string_view got{static_cast<const char*>(b.data().data()),
                               std::min<std::size_t>(b.size(), 7)};
    return !got.empty() && std::string_view{"HTTP/1."}.substr(0, got.size()) != got;
}

bool strong_etag(std::string_view etag) {
    return !etag.empty() && !etag.starts_with("W/");
}

/// The validator book: the If-Range text (a strong ETag or a Last-Modified date) behind each
/// identity this thread has seen, so a GET that must match an identity (a resume, a segment)
/// knows what to send. Filled by every response; one per thread, so no locks (a download runs
/// on one thread; each bench thread has its own). Bounded: it forgets everything when full.
class validator_book {
public:
    void remember(const fp::file_identity& id, std::string_view validator) {
        if (id == fp::file_identity{} || validator.empty())
            return;
        if (auto it = book_.find(id); it != book_.end())
            return;
        if (book_.size() >= 4096)
            book_.clear();
        book_.emplace(id, std::string{validator});
    }
    const std::string* find(const fp::file_identity& id) const {
        const auto it = book_.find(id);
        return it == book_.end() ? nullptr : &it->second;
    }

private:
    std::map<fp::file_identity, std::string> book_;
};

thread_local validator_book book;

/// What a response's head says about the representation.
struct representation {
    fp::file_identity identity{};
    std::string_view validator; ///< for If-Range: the strong ETag, else Last-Modified
    std::int64_t mtime_ns = 0;
};

using field = http_response::field;

/// http::parse_http_date, remembering the last date parsed: a load test reads the same
/// Last-Modified, and the same Date for a second, in every response.
class date_memo {
public:
    std::optional<std::int64_t> parse(std::string_view text) {
        if (text != text_) {
            text_ = text;
            seconds_ = http::parse_http_date(text);
        }
        return seconds_;
    }

private:
    std::string text_;
    std::optional<std::int64_t> seconds_;
};

representation represented(const http_response& head, std::uint64_t size) {
    representation r;
    const auto etag = head[field::etag];
    const auto stated = head[field::last_modified];
    // Last-Modified tells two versions apart only when it is at least a second older than the
    // answer's Date (RFC 9110 8.8.2.2): within that second a rewrite keeps its date.
    thread_local date_memo last_stated, last_answered;
    const auto stated_s = last_stated.parse(stated);
    const auto answered_s = last_answered.parse(head[field::date]);
    const auto modified =
        stated_s && answered_s && *stated_s < *answered_s ? stated : std::string_view{};
    // The same validators as the last response on this thread (a load test, segments of one
    // file): the same identity, without hashing again.
    thread_local std::string last_etag, last_modified;
    thread_local std::uint64_t last_size = 0;
    thread_local fp::file_identity last_identity{};
    if (etag != last_etag || modified != last_modified || size != last_size) {
        last_identity = http_identity(etag, modified, size);
        last_etag = etag;
        last_modified = modified;
        last_size = size;
    }
    r.identity = last_identity;
    r.validator = strong_etag(etag) ? etag : modified;
    if (stated_s && *stated_s < INT64_MAX / 1'000'000'000 && *stated_s > INT64_MIN / 1'000'000'000)
        r.mtime_ns = *stated_s * 1'000'000'000;
    book.remember(r.identity, r.validator);
    return r;
}

/// A failure for an HTTP status that is not the answer asked for.
failure server_failure(const http_response& head, unsigned code, const std::string& path) {
    failure f;
    f.what = failure::kind::server;
    f.error.code = status_for_http(code);
    f.error.message = std::string{fp::status_text(f.error.code)} + ": " +
                      (path.empty() ? std::string{"/"} : path) + " (HTTP " + std::to_string(code) +
                      " " + std::string{head.reason()} + ")";
    if (const auto s = protocol::parse_unsigned(head[field::retry_after], 86400))
        f.error.retry_after_ms = static_cast<std::uint32_t>(*s * 1000);
    return f;
}

/// The target of `path` (decoded, relative to the root) on the wire.
std::string target_of(const std::string& path) {
    return "/" + http::encode_path(path);
}

bool is_redirect(unsigned code) {
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

failure redirect_to(const http_response& head, unsigned code) {
    return failure::redirect("HTTP " + std::to_string(code) + " " +
                                 std::string{head.reason()},
                             std::string{head[field::location]});
}

} // namespace

fp::status status_for_http(unsigned code) noexcept {
    switch (code) {
    case 401:
    case 403:
        return fp::status::forbidden;
    case 404:
    case 410:
        return fp::status::not_found;
    case 412:
        return fp::status::changed;
    case 413:
    case 414:
    case 431:
        return fp::status::too_large;
    case 416:
        return fp::status::range_not_satisfiable;
    case 429:
    case 503:
        return fp::status::busy;
    case 505:
        return fp::status::unsupported_version;
    default:
        return code >= 500 ? fp::status::internal_error : fp::status::bad_request;
    }
}

fp::file_identity http_identity(std::string_view etag, std::string_view last_modified,
                                std::uint64_t size) {
    std::string text;
    if (strong_etag(etag))
        text = "etag " + std::string{etag};
    else if (!last_modified.empty())
        text = "last-modified " + std::string{last_modified} + " " + std::to_string(size);
    else
        return {};
    transport::sha256_stream h;
    h.update(std::as_bytes(std::span{text}));
    return h.finish();
}

http_connection::http_connection(socket_type socket, timeouts t, const url& u)
    : connection(std::move(socket), t), base_(u),
      host_(u.port == default_http_port
                ? (u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host)
                : u.authority()) {}

std::string http_connection::request_head(std::string_view method,
                                          const std::string& target) const {
    std::string r;
    r.reserve(128 + target.size());
    r.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ");
    r.append(host_).append("\r\n");
    if (name_client_)
        r.append("User-Agent: ferry/" FERRY_VERSION "\r\n");
    return r;
}

std::size_t http_connection::send_now(const std::string& request) {
    std::size_t sent = 0;
    for (;;) {
        const auto n = ::send(socket_.native_handle(), request.data() + sent, request.size() - sent,
                              MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
            sent += static_cast<std::size_t>(n);
        else if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || sent == request.size())
            return sent;
    }
}

asio::awaitable<failure> http_connection::send_rest(const std::string& request, std::size_t sent) {
    // with_timeout, not the watchdog: async_write is several writes, and the watchdog cancels
    // only the one pending when it fires; the cancellation slot reaches every one. (Rare: a
    // request larger than the socket buffer.)
    auto [ec, n] = co_await transport::with_timeout(
        asio::async_write(socket_, asio::buffer(request.data() + sent, request.size() - sent),
                          asio::deferred),
        timeouts_.stall);
    if (ec) {
        reusable_ = false;
        co_return failure::network(ec);
    }
    co_return failure{};
}

asio::awaitable<failure> http_connection::read_response(http_response& p, bool whole) {
    // Interim answers first (RFC 9110 15.2): 100 Continue, 103 Early Hints and the like are
    // skipped, a bounded number of them, each within the head limit and the stall timeout.
    for (unsigned count = 0;; ++count) {
        bool interim = false;
        if (auto f = co_await parse(p, whole, &interim); f || !interim)
            co_return f;
        if (count == max_interim) {
            reusable_ = false;
            co_return failure::invalid("more than " + std::to_string(max_interim) +
                                       " interim (1xx) responses before the answer");
        }
        std::string text;
        http_response head{text};
        if (auto f = co_await parse(head, false, nullptr); f)
            co_return f;
        if (head.status() == 101) {
            reusable_ = false;
            co_return failure::invalid("101 Switching Protocols to a request that asked for no "
                                       "upgrade");
        }
    }
}

asio::awaitable<failure> http_connection::parse(http_response& p, bool whole, bool* interim) {
    p.header_limit(max_head_size);
    // Beast bounds the head only within one put(): complete lines are consumed read by read, so
    // a head that trickles in line by line is counted here.
    std::size_t head_consumed = 0;
    for (;;) {
        // "HTTP/1.1 1", ten bytes, tells an interim answer: not p's to parse.
        if (interim && buffer_.size() >= 10) {
            const auto* b = static_cast<const char*>(buffer_.data().data());
            if (std::string_view{b, 7} == "HTTP/1." && b[8] == ' ' && b[9] == '1') {
                *interim = true;
                co_return failure{};
            }
            interim = nullptr; // the answer is p's
        }
        if (!interim && buffer_.size() > 0) {
            beast::error_code ec;
            const bool in_head = !p.is_header_done();
            const auto n = p.put(buffer_.data(), ec);
            buffer_.consume(n);
            if (in_head)
                head_consumed += n;
            if (ec && ec != bhttp::error::need_more) {
                reusable_ = false;
                co_return failure::invalid("an invalid HTTP response: " + ec.message());
            }
            if (whole ? p.is_done() : p.is_header_done()) {
                keep_alive_ = p.keep_alive();
                co_return failure{};
            }
            if (!ec && n > 0)
                continue; // a body part consumed; more may follow from the same buffer
        }
        if (buffer_.size() + (p.is_header_done() ? 0 : head_consumed) >= max_head_size) {
            reusable_ = false;
            co_return failure::invalid("a response head above " +
                                       std::to_string(max_head_size / 1024) + " KiB");
        }
        // Straight to the asynchronous read, here and not in a coroutine of its own (a waiting
        // connection's every frame is a cache miss when it resumes): a response is never there
        // the moment its request left, and Asio tries the read once before it waits anyway.
        const auto space = buffer_.prepare(std::min(read_size, max_head_size - buffer_.size()));
        watch(timeouts_.stall);
        auto [ec, n] = co_await socket_.async_read_some(space, use_nothrow);
        ec = unwatch(ec);
        buffer_.commit(n);
        if (!ec)
            continue;
        reusable_ = false;
        if (ec == asio::error::eof && whole && p.is_header_done()) {
            beast::error_code body_ec;
            p.put_eof(body_ec); // a body that ends with the connection
            if (!body_ec && p.is_done()) {
                keep_alive_ = false;
                co_return failure{};
            }
        }
        if (ec == asio::error::eof && !p.is_header_done() && not_http(buffer_))
            co_return failure::invalid("an invalid HTTP response: it does not start with HTTP/1.");
        co_return failure::network(ec); // a head cut short: a network error
    }
}

asio::awaitable<failure> http_connection::stat(const std::string& path, bool want_sha256,
                                               fp::stat_reply& out) {
    out = {};
    const auto target = target_of(path);
    auto request = request_head("HEAD", target);
    if (want_sha256)
        request += "Want-Repr-Digest: sha-256=10\r\n";
    request += "\r\n";
    if (const auto sent = send_now(request); sent < request.size())
        if (auto f = co_await send_rest(request, sent); f)
            co_return f;
    http_response head{head_text_};
    head.skip(true); // a HEAD: no body, whatever Content-Length says
    if (auto f = co_await read_response(head, false); f)
        co_return f;
    if (!keep_alive_ || buffer_.size() > 0) // a HEAD's answer ends with its head
        reusable_ = false;
    const unsigned code = head.status();
    if (code == 200 && path.empty()) { // the root: always a directory
        out.kind = fp::file_kind::directory;
        co_return failure{};
    }
    if (code == 200) {
        const auto length = head.content_length();
        if (!length)
            co_return failure::invalid("a 200 to HEAD without Content-Length");
        if (*length > fp::max_offset)
            co_return failure::invalid("a file size above 2^63 - 1 (" + std::to_string(*length) +
                                       ")");
        const auto r = represented(head, *length);
        out.kind = fp::file_kind::regular;
        out.size = *length;
        out.mtime_ns = r.mtime_ns;
        out.identity = r.identity;
        if (want_sha256)
            if (const auto digest = head[field::repr_digest]; !digest.empty())
                out.sha256 = http::parse_repr_digest(digest);
        co_return failure{};
    }
    if (is_redirect(code)) {
        // ferryd's and nginx's answer to a directory named without its '/': the same URL and '/'.
        auto asked = base_;
        asked.path = path;
        std::string ignored;
        const auto to = resolve_url(asked, head[field::location], ignored);
        if (to && to->trailing_slash && to->origin() == asked.origin() && to->path == path) {
            out.kind = fp::file_kind::directory;
            co_return failure{};
        }
        co_return redirect_to(head, code);
    }
    reusable_ = false;
    co_return server_failure(head, code, path);
}

asio::awaitable<failure> http_connection::list(const std::string& path, list_sink sink) {
    auto request = request_head("GET", target_of(path) + (path.empty() ? "" : "/"));
    request += "Accept: application/json\r\n\r\n";
    if (const auto sent = send_now(request); sent < request.size())
        if (auto f = co_await send_rest(request, sent); f)
            co_return f;
    http_response response{head_text_, true};
    response.body_limit(max_listing_size);
    response.eager(true);
    if (auto f = co_await read_response(response, true); f)
        co_return f;
    if (!keep_alive_ || buffer_.size() > 0)
        reusable_ = false;
    const unsigned code = response.status();
    if (is_redirect(code))
        co_return redirect_to(response, code);
    if (code != 200)
        co_return server_failure(response, code, path);
    const auto type = response[field::content_type];
    if (type.starts_with("text/html"))
        co_return failure::invalid("an HTML listing; ferry ls needs JSON (nginx: "
                                   "autoindex_format json)");
    const auto json = nlohmann::json::parse(response.body(), nullptr, false);
    if (json.is_discarded() || !json.is_array())
        co_return failure::invalid("a listing that is not a JSON array (Content-Type " +
                                   std::string{type} + ")");
    std::vector<fp::list_entry> entries;
    entries.reserve(json.size());
    for (const auto& item : json) {
        const auto name = item.is_object() ? item.find("name") : item.end();
        if (!item.is_object() || name == item.end() || !name->is_string())
            co_return failure::invalid("a listed entry without a name");
        fp::list_entry e;
        e.name = name->get<std::string>();
        if (e.name.empty() || e.name == "." || e.name == ".." ||
            e.name.size() > fp::max_name_size || e.name.find('/') != std::string::npos ||
            e.name.find('\0') != std::string::npos || !fp::is_valid_utf8(e.name))
            co_return failure::invalid("a listed name that is not a plain file name");
        const auto kind = item.value("type", std::string{});
        e.kind = kind == "file"        ? fp::file_kind::regular
                 : kind == "directory" ? fp::file_kind::directory
                                       : fp::file_kind::other;
        if (const auto size = item.find("size"); size != item.end()) {
            if (!size->is_number_unsigned() || size->get<std::uint64_t>() > fp::max_offset)
                co_return failure::invalid("a listed size that is not a number up to 2^63 - 1");
            e.size = size->get<std::uint64_t>();
        }
        if (const auto mtime = item.find("mtime"); mtime != item.end() && mtime->is_string())
            if (const auto s = http::parse_http_date(mtime->get<std::string>());
                s && *s < INT64_MAX / 1'000'000'000 && *s > INT64_MIN / 1'000'000'000)
                e.mtime_ns = *s * 1'000'000'000;
        entries.push_back(std::move(e));
    }
    sink(entries);
    co_return failure{};
}

asio::awaitable<failure> http_connection::start_get(const fp::get_request& request,
                                                    fp::get_header& out) {
    const bool ranged = request.offset > 0 || request.length != fp::to_end;
    const bool unversioned = request.if_identity && *request.if_identity == fp::file_identity{};
    std::string text; // a request of its own (Range, If-Range); a plain GET's is kept
    if (!ranged && !request.if_identity) { // a plain GET, as a load test repeats it
        if (request.path != plain_get_path_ || plain_get_.empty()) {
            plain_get_ = request_head("GET", target_of(request.path)) + "\r\n";
            plain_get_path_ = request.path;
        }
    } else {
        text = request_head("GET", target_of(request.path));
        if (ranged) {
            text += "Range: bytes=" + std::to_string(request.offset) + "-";
            if (request.length <= fp::max_offset - request.offset)
                text += std::to_string(request.offset + request.length - 1);
            text += "\r\n";
        }
        if (request.if_identity && !unversioned) {
            const auto* validator = book.find(*request.if_identity);
            if (!validator) // not seen by this process: the file cannot be the one expected
                co_return failure{failure::kind::server,
                                  {},
                                  {},
                                  {fp::status::changed, false, 0,
                                   "the file's validator is unknown; starting over"},
                                  {}};
            text += "If-Range: " + *validator + "\r\n";
        } else if (unversioned && request.offset > 0) {
            co_return failure::invalid("no ETag or settled Last-Modified, so a piece of the file "
                                       "cannot be tied to one version (resume and segments are "
                                       "impossible)");
        }
        text += "\r\n";
    }
    const auto& request_text = text.empty() ? plain_get_ : text;
    if (const auto sent = send_now(request_text); sent < request_text.size())
        if (auto f = co_await send_rest(request_text, sent); f)
            co_return f;
    http_response head{head_text_};
    if (auto f = co_await read_response(head, false); f)
        co_return f;
    co_return take_get_head(head, request, out);
}

failure http_connection::take_get_head(const http_response& head, const fp::get_request& request,
                                       fp::get_header& out) {
    const bool ranged = request.offset > 0 || request.length != fp::to_end;
    const bool unversioned = request.if_identity && *request.if_identity == fp::file_identity{};
    const unsigned code = head.status();
    if (is_redirect(code)) {
        // Its body is skipped when it came whole with the head; else the connection goes.
        const auto length = head.content_length();
        if (!head.has(field::transfer_encoding) && length &&
            *length <= buffer_.size() && keep_alive_)
            buffer_.consume(static_cast<std::size_t>(*length));
        else
            reusable_ = false;
        return redirect_to(head, code);
    }
    if (code != 200 && code != 206) {
        reusable_ = false; // its body is not read
        return server_failure(head, code, request.path);
    }
    // The body must be framed by Content-Length alone: anything else could end anywhere.
    const auto length = head.content_length();
    if (head.has(field::transfer_encoding) || !length) {
        reusable_ = false;
        return failure::invalid(
            head.has(field::transfer_encoding)
                ? "a file body with Transfer-Encoding (" +
                      std::string{head[field::transfer_encoding]} +
                      "); ferry needs Content-Length"
                : "a file body without Content-Length");
    }
    out = {};
    if (code == 200) {
        const auto r = represented(head, *length);
        if (request.if_identity && !unversioned && r.identity != *request.if_identity) {
            reusable_ = false; // If-Range did not hold: the file changed
            return failure{failure::kind::server,
                              {},
                              {},
                              {fp::status::changed, false, 0,
                               "the file changed on the server (its validator differs)"},
                              {}};
        }
        // A 200 to a ranged request is the whole file: taken only where that is what the
        // request covers (from byte 0, the whole length), never appended elsewhere.
        if (ranged && (request.offset > 0 || *length > request.length)) {
            reusable_ = false;
            return failure::invalid("the whole file (200) to a request for bytes " +
                                       std::to_string(request.offset) +
                                       "-: the server ignores Range; use -j 1 --chunk-size "
                                       "above the file's size, with no partial download");
        }
        out.identity = r.identity;
        out.size = *length;
        out.mtime_ns = r.mtime_ns;
        out.offset = 0;
        out.length = *length;
    } else {
        const auto range = http::parse_content_range(head[field::content_range]);
        if (!range || !range->complete_length) {
            reusable_ = false;
            return failure::invalid("a 206 without a valid Content-Range (" +
                                       std::string{head[field::content_range]} + ")");
        }
        const auto size = *range->complete_length;
        const auto end = request.length > size - std::min(size, request.offset)
                             ? size
                             : request.offset + request.length;
        if (request.offset >= size || range->range.first != request.offset ||
            range->range.last != end - 1 || *length != range->range.length() ||
            size > fp::max_offset) {
            reusable_ = false;
            return failure::invalid(
                "Content-Range " + std::string{head[field::content_range]} +
                " (Content-Length " + std::to_string(*length) + ") to a request for bytes " +
                std::to_string(request.offset) + "-" + std::to_string(end - 1));
        }
        auto r = represented(head, size);
        if (r.identity == fp::file_identity{} && request.if_identity)
            r.identity = *request.if_identity; // a 206 that names no validator
        if (request.if_identity && r.identity != *request.if_identity) {
            reusable_ = false;
            return failure::invalid("a 206 for another version of the file than If-Range "
                                       "named");
        }
        out.identity = r.identity;
        out.size = size;
        out.mtime_ns = r.mtime_ns;
        out.offset = request.offset;
        out.length = *length;
    }
    // A body that came whole with the head needs no look past it on the socket (below).
    body_in_head_read_ = buffer_.size() >= out.length;
    start_body(out.length);
    return failure{};
}

std::size_t http_connection::take_buffered(std::span<std::byte> out) {
    const auto n = std::min(out.size(), buffer_.size());
    if (n > 0) {
        std::memcpy(out.data(), buffer_.data().data(), n);
        buffer_.consume(n);
    }
    return n;
}

asio::awaitable<failure> http_connection::finish_get() {
    // Nothing may follow the body: the server sends nothing unasked on a kept-alive connection.
    // Bytes sent with the body arrive with it; past a body read from the socket, a peek looks
    // (one system call, spared to small bodies that came whole with their head: bytes after
    // those fail the next response's parse instead).
    std::byte probe;
    const auto n = buffer_.size() > 0 ? 1
                   : body_in_head_read_
                       ? -1
                       : ::recv(socket_.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
        reusable_ = false;
        co_return failure::invalid("bytes past the body's Content-Length");
    }
    if (n == 0 || !keep_alive_) // closed by the server, or to be closed
        reusable_ = false;
    co_return failure{};
}

} // namespace ferry::client
