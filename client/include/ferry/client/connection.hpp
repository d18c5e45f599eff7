// connection: one client connection to a server (ferryd over the Ferry protocol, or any HTTP/1.1
// server), request by request.
#pragma once

#include "ferry/client/url.hpp"
#include "ferry/protocol/errc.hpp"
#include "ferry/protocol/messages.hpp"
#include "ferry/transport/asio.hpp"
#include "ferry/transport/frame_io.hpp"

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace ferry::client {

namespace asio = boost::asio;
namespace fp = ferry::protocol;
using transport::clock;
using transport::error_code;

/// Why a request failed: the network (reset, EOF, timeout), the server's bytes (protocol), the
/// server's answer (an ERROR frame), or an HTTP redirect elsewhere (which the caller may follow).
struct failure {
    enum class kind { none, network, protocol, server, redirect };
    kind what = kind::none;
    error_code net;
    std::error_code proto;
    fp::error_reply error;
    /// What exactly was wrong, when the error code alone does not say: a protocol failure's
    /// "... " after "the server sent ", or a network failure's whole line ("too slow: ...").
    std::string detail;

    explicit operator bool() const noexcept { return what != kind::none; }
    /// One line: "connection reset by peer", "not found: docs/x" ... The server's ERROR text is
    /// returned as sent: escape it (protocol::escape_for_terminal) where it is printed.
    std::string message() const;
    static failure network(error_code ec) { return {kind::network, ec, {}, {}, {}}; }
    static failure protocol(std::error_code ec) { return {kind::protocol, {}, ec, {}, {}}; }
    /// A reply that decodes but cannot be acted on: message() is "the server sent " + what.
    static failure invalid(std::string what) {
        return {kind::protocol, {}, fp::protocol_errc::bad_range, {}, std::move(what)};
    }
    /// An HTTP redirect (301, 302, 303, 307, 308): `detail` is its Location as sent (a peer's
    /// text: escape it where shown), error.message "HTTP 302 Found". Unfollowed, it counts as a
    /// protocol error (exit 1, never retried).
    static failure redirect(std::string status, std::string location) {
        return {kind::redirect,
                {},
                {},
                {fp::status::ok, false, 0, std::move(status)},
                std::move(location)};
    }
};

struct timeouts {
    clock::duration connect = std::chrono::seconds(10);
    /// No byte for this long while an answer is expected: the connection is stalled.
    clock::duration stall = std::chrono::seconds(30);
    /// --speed-limit / --speed-time: a body that arrives at fewer than speed_limit bytes/s on
    /// average over speed_time fails like a stall ("too slow"). 0: off.
    std::uint64_t speed_limit = 0;
    clock::duration speed_time = std::chrono::seconds(30);
};

/// One client connection to a server, request by request: the operations the downloader, the
/// CLI and the load generator use, whatever the wire. Two implementations: ferry_connection
/// (the Ferry protocol, below) and http_connection (HTTP/1.1, http_connection.hpp); open()
/// picks one by the URL's scheme. Not thread-safe: one coroutine uses it at a time.
class connection {
public:
    using socket_type = asio::generic::stream_protocol::socket;

    virtual ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Resolves and connects to u's host and port (every address in turn), within t.connect,
    /// and returns the connection that speaks u's scheme.
    static asio::awaitable<std::pair<failure, std::unique_ptr<connection>>> open(url u, timeouts t);

    /// STAT. On success `out` holds the reply, checked: a size above 2^63 - 1 is a protocol
    /// failure. A digest that was asked for: the Ferry protocol always has one (its absence is a
    /// protocol failure); over HTTP it is there only when the server offers Repr-Digest.
    virtual asio::awaitable<failure> stat(const std::string& path, bool want_sha256,
                                          fp::stat_reply& out) = 0;
    /// A batch of listed entries, as one LIST_ENTRIES frame (or one JSON listing) brought them
    /// (the callee may move from them).
    using list_sink = std::function<void(std::vector<fp::list_entry>&)>;
    /// LIST: hands each batch to `sink` as it arrives, checking every entry's size. Ferry: memory
    /// stays bounded by one frame, the total is checked against LIST_END's count; HTTP: one
    /// bounded JSON body.
    virtual asio::awaitable<failure> list(const std::string& path, list_sink sink) = 0;

    /// GET, first half: sends the request and reads GET_HEADER (HTTP: the response head),
    /// checking that the range is the one asked for (docs/protocol.md, client obligations;
    /// docs/client.md, HTTP URLs).
    virtual asio::awaitable<failure> start_get(const fp::get_request& request,
                                               fp::get_header& out) = 0;
    /// Reads up to out.size() body bytes (never more than the header announced and not yet
    /// read). Returns the count; 0 only at the end of the body. With timeouts::speed_limit, a
    /// body slower than that over timeouts::speed_time is a network failure ("too slow").
    asio::awaitable<std::pair<failure, std::size_t>> read_body(std::span<std::byte> out);
    /// The body bytes that arrived with the header, at most out.size(), without waiting: what
    /// read_body returns first (0 when none are left). A small file's body is all there, and
    /// a load test then needs no coroutine to take it.
    std::size_t take_body(std::span<std::byte> out);
    /// GET, last half: reads GET_TRAILER after the whole body; a trailer other than ok is a
    /// server failure (status changed or internal_error). HTTP has no trailer: bytes past the
    /// body are a protocol failure.
    virtual asio::awaitable<failure> finish_get() = 0;

    /// Whether HTTP requests name their client (`User-Agent: ferry/VERSION`, as curl's and
    /// wget's do; the default). ferry bench's do not, as wrk's do not: nginx examines every
    /// User-Agent it is sent (browser detection), a few per cent of its time per 4 KiB request,
    /// and a load generator's ratio against wrk must not depend on what its request asks of the
    /// server (docs/benchmarks.md). The Ferry protocol has no such field.
    virtual void name_client(bool) {}
    /// The timeouts from now on (a kept-alive connection put to a slower use: a digest).
    void set_timeouts(timeouts t) noexcept { timeouts_ = t; }
    /// False once a failure left the stream in an unknown state; such a connection is closed.
    bool reusable() const noexcept { return reusable_; }
    /// The socket itself, for load tests that misbehave on purpose (ferry bench --idle).
    socket_type& socket() noexcept { return socket_; }
    void close();

protected:
    connection(socket_type socket, timeouts t);

    /// Bounds the one operation on socket_ that follows (a single read or write: a composed
    /// operation of several, like async_write, takes with_timeout) by `wait`, in the manner of
    /// transport::with_timeout but for the cost of a clock read: the connection's one watchdog
    /// timer (the pattern of Asio's timeout examples) cancels the operation once the deadline
    /// has passed. A timer and a parallel group per read were a fifth of a load test's time at
    /// 1,000 connections (docs/benchmarks.md). Inline, not a coroutine around the operation:
    /// every frame a waiting connection holds is a cache miss when it resumes.
    ///     watch(d);
    ///     auto [ec, n] = co_await socket_.async_read_some(buffer, use_nothrow);
    ///     ec = unwatch(ec); // asio::error::timed_out if the watchdog cancelled it
    void watch(clock::duration wait);
    error_code unwatch(error_code ec) noexcept;

    /// Moves body bytes that arrived with the header (at most out.size()) into `out`.
    virtual std::size_t take_buffered(std::span<std::byte> out) = 0;
    /// A body of `length` bytes follows: read_body counts it down, in a fresh speed window.
    void start_body(std::uint64_t length);

    socket_type socket_;
    timeouts timeouts_;
    std::uint64_t body_left_ = 0;
    bool reusable_ = true;

private:
    /// At the end of a --speed-limit window: "too slow", or a new window.
    failure check_speed();

    /// What the watchdog timer's handler shares with the connection, which it may outlive.
    struct watchdog {
        explicit watchdog(socket_type& s) : socket(&s), timer(s.get_executor()) {}
        socket_type* socket; ///< null once the connection is gone
        asio::steady_timer timer;
        clock::time_point deadline = clock::time_point::max(); ///< of the running wait; max: none
        bool armed = false; ///< a timer wait is pending
        bool fired = false; ///< the running wait passed its deadline and was cancelled
    };
    /// Waits for the earliest of the timer's expiry and `w`'s deadline; at the deadline cancels
    /// the socket's operation, and otherwise waits again for the deadline set since.
    static void arm(const std::shared_ptr<watchdog>& w);
    std::shared_ptr<watchdog> watchdog_;

    /// The --speed-limit window: since when, and how many body bytes arrived in it.
    clock::time_point window_start_{};
    std::uint64_t window_bytes_ = 0;
};

/// The Ferry protocol v1 (docs/protocol.md), one frame at a time.
class ferry_connection final : public connection {
public:
    ferry_connection(socket_type socket, timeouts t) : connection(std::move(socket), t) {}

    asio::awaitable<failure> stat(const std::string& path, bool want_sha256,
                                  fp::stat_reply& out) override;
    asio::awaitable<failure> list(const std::string& path, list_sink sink) override;
    asio::awaitable<failure> start_get(const fp::get_request& request,
                                       fp::get_header& out) override;
    asio::awaitable<failure> finish_get() override;

private:
    std::size_t take_buffered(std::span<std::byte> out) override;
    template <class Message>
    asio::awaitable<failure> send(const Message& m);
    /// The next frame; a frame of another type than expected (or an ERROR) is a failure.
    template <class Message>
    asio::awaitable<failure> receive(Message& out);

    transport::frame_buffer buffer_;
};

} // namespace ferry::client
