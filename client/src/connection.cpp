#include "ferry/client/connection.hpp"

#include "ferry/client/http_connection.hpp"
#include "ferry/protocol/errc.hpp"
#include "ferry/transport/with_timeout.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <cstring>
#include <fmt/format.h>

namespace ferry::client {

using transport::use_nothrow;
using transport::with_timeout;

namespace {
/// Replies are read in reads of up to 64 KiB: a small file's header, body and trailer arrive
/// in one system call.
constexpr std::size_t read_size = 64 * 1024;
} // namespace

std::string failure::message() const {
    switch (what) {
    case kind::none:
        return "ok";
    case kind::network:
        if (!detail.empty())
            return detail;
        if (net == asio::error::timed_out)
            return "timed out (no data from the server)";
        if (net == asio::error::eof)
            return "the server closed the connection";
        return net.message();
    case kind::protocol:
        if (!detail.empty())
            return "the server sent " + detail;
        return "the server sent invalid data: " + proto.message();
    case kind::server:
        return error.message.empty() ? std::string{fp::status_text(error.code)} : error.message;
    case kind::redirect:
        return "a redirect (" + error.message + ") to " + detail;
    }
    return "unknown failure";
}

asio::awaitable<std::pair<failure, std::unique_ptr<connection>>> connection::open(url u,
                                                                                  timeouts t) {
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::resolver resolver{ex};
    auto [rec, results] = co_await with_timeout(
        resolver.async_resolve(u.host, std::to_string(u.port), asio::deferred), t.connect);
    if (rec)
        co_return std::pair{failure::network(rec), nullptr};
    asio::ip::tcp::socket tcp{ex};
    auto [cec, endpoint] =
        co_await with_timeout(asio::async_connect(tcp, results, asio::deferred), t.connect);
    if (cec)
        co_return std::pair{failure::network(cec), nullptr};
    (void)endpoint;
    error_code ignored;
    tcp.set_option(asio::ip::tcp::no_delay(true), ignored);
    std::unique_ptr<connection> c;
    if (u.scheme == url_scheme::http)
        c = std::make_unique<http_connection>(socket_type{std::move(tcp)}, t, u);
    else
        c = std::make_unique<ferry_connection>(socket_type{std::move(tcp)}, t);
    co_return std::pair{failure{}, std::move(c)};
}

connection::connection(socket_type socket, timeouts t)
    : socket_(std::move(socket)), timeouts_(t), watchdog_(std::make_shared<watchdog>(socket_)) {}

connection::~connection() {
    watchdog_->socket = nullptr; // a handler already queued must not touch the socket
    watchdog_->timer.cancel();   // nor keep the io_context running until the expiry
}

void connection::watch(clock::duration wait) {
    auto& w = *watchdog_;
    w.deadline = clock::now() + wait;
    w.fired = false;
    if (!w.armed || w.deadline < w.timer.expiry())
        arm(watchdog_);
}

error_code connection::unwatch(error_code ec) noexcept {
    watchdog_->deadline = clock::time_point::max();
    return watchdog_->fired && ec == asio::error::operation_aborted ? asio::error::timed_out : ec;
}

void connection::arm(const std::shared_ptr<watchdog>& w) {
    w->armed = true;
    w->timer.expires_at(w->deadline); // cancels a later wait: its handler sees operation_aborted
    w->timer.async_wait([w](error_code ec) {
        if (ec || !w->socket)
            return; // re-armed earlier, or the connection is gone
        w->armed = false;
        if (w->deadline == clock::time_point::max())
            return; // no wait running: the next one arms the timer again
        if (clock::now() < w->deadline) {
            arm(w); // the running wait began after this timer was set
            return;
        }
        w->fired = true;
        error_code ignored;
        w->socket->cancel(ignored);
    });
}

void connection::close() {
    error_code ignored;
    socket_.close(ignored);
    reusable_ = false;
}

template <class Message>
asio::awaitable<failure> ferry_connection::send(const Message& m) {
    if (auto ec = co_await transport::write_frame(socket_, m, timeouts_.stall); ec) {
        reusable_ = false;
        co_return failure::network(ec);
    }
    co_return failure{};
}

template <class Message>
asio::awaitable<failure> ferry_connection::receive(Message& out) {
    auto r = co_await transport::read_frame(socket_, buffer_, timeouts_.stall, read_size);
    if (r.net) {
        reusable_ = false;
        co_return failure::network(r.net);
    }
    if (r.protocol) {
        reusable_ = false;
        co_return failure::protocol(r.protocol);
    }
    failure f;
    if (r.frame.type == fp::frame_type::error) {
        f.what = failure::kind::server;
        if (auto ec = fp::decode(r.frame.payload, f.error); ec)
            f = failure::protocol(ec);
        else if (f.error.closing)
            reusable_ = false;
    } else if (r.frame.type != Message::type) {
        f = failure::protocol(fp::protocol_errc::unknown_frame_type); // out of sequence
    } else if (auto ec = fp::decode(r.frame.payload, out); ec) {
        f = failure::protocol(ec);
    }
    if (f.what == failure::kind::protocol)
        reusable_ = false;
    buffer_.consume(r.frame.size);
    co_return f;
}

asio::awaitable<failure> ferry_connection::stat(const std::string& path, bool want_sha256,
                                                fp::stat_reply& out) {
    // Named, not a temporary: GCC 12 destroys braced temporaries in a co_await expression twice.
    const fp::stat_request request{path, want_sha256};
    if (auto f = co_await send(request); f)
        co_return f;
    if (auto f = co_await receive(out); f)
        co_return f;
    // Checked here, before anyone acts on it: the size becomes an off_t and a fallocate length.
    if (out.size > fp::max_offset)
        co_return failure::invalid("a file size above 2^63 - 1 (" + std::to_string(out.size) + ")");
    if (want_sha256 && out.kind == fp::file_kind::regular && !out.sha256)
        co_return failure::invalid("no SHA-256 in a STAT that asked for it");
    co_return failure{};
}

asio::awaitable<failure> ferry_connection::list(const std::string& path, list_sink sink) {
    const fp::list_request request{path};
    if (auto f = co_await send(request); f)
        co_return f;
    std::uint64_t received = 0;
    for (;;) {
        auto r = co_await transport::read_frame(socket_, buffer_, timeouts_.stall, read_size);
        if (r.net || r.protocol) {
            reusable_ = false;
            co_return r.net ? failure::network(r.net) : failure::protocol(r.protocol);
        }
        if (r.frame.type == fp::frame_type::list_entries) {
            fp::list_entries batch;
            auto ec = fp::decode(r.frame.payload, batch);
            buffer_.consume(r.frame.size);
            if (ec) {
                reusable_ = false;
                co_return failure::protocol(ec);
            }
            for (const auto& e : batch.entries)
                if (e.size > fp::max_offset) {
                    reusable_ = false;
                    co_return failure::invalid("a listed size above 2^63 - 1 (" +
                                               std::to_string(e.size) + ")");
                }
            received += batch.entries.size();
            sink(batch.entries);
            continue;
        }
        fp::list_end end;
        auto f = co_await receive(end); // the frame is still buffered: decodes it, or the ERROR
        if (f)
            co_return f;
        if (end.code != fp::status::ok)
            co_return failure{
                failure::kind::server,
                {},
                {},
                {end.code, false, 0,
                 "the listing ended early: " + std::string{fp::status_text(end.code)}},
                {}};
        if (end.entry_count != received) {
            reusable_ = false;
            co_return failure::protocol(fp::protocol_errc::truncated);
        }
        co_return failure{};
    }
}

asio::awaitable<failure> ferry_connection::start_get(const fp::get_request& request,
                                                     fp::get_header& out) {
    if (auto f = co_await send(request); f)
        co_return f;
    if (auto f = co_await receive(out); f)
        co_return f;
    const std::uint64_t available = out.size >= request.offset ? out.size - request.offset : 0;
    if (out.offset != request.offset || out.length != std::min(request.length, available) ||
        (request.if_identity && *request.if_identity != out.identity)) {
        reusable_ = false;
        co_return failure::protocol(fp::protocol_errc::bad_range);
    }
    start_body(out.length);
    co_return failure{};
}

std::size_t ferry_connection::take_buffered(std::span<std::byte> out) {
    const auto n = std::min(out.size(), buffer_.data().size());
    if (n > 0) {
        std::memcpy(out.data(), buffer_.data().data(), n);
        buffer_.consume(n);
    }
    return n;
}

void connection::start_body(std::uint64_t length) {
    body_left_ = length;
    window_start_ = clock::now();
    window_bytes_ = 0;
}

std::size_t connection::take_body(std::span<std::byte> out) {
    const auto n = take_buffered(
        out.first(static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), body_left_))));
    body_left_ -= n;
    window_bytes_ += n;
    return n;
}

asio::awaitable<std::pair<failure, std::size_t>> connection::read_body(std::span<std::byte> out) {
    if (body_left_ == 0)
        co_return std::pair{failure{}, std::size_t{0}};
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), body_left_));
    // Bytes that arrived with the header come first.
    if (const auto n = take_body(out.first(want)); n > 0)
        co_return std::pair{failure{}, n};
    for (;;) {
        auto [ec, n] = transport::detail::try_receive(socket_, out.first(want));
        // A read waits for the stall timeout, or only until the speed window closes.
        auto wait = timeouts_.stall;
        bool window_bound = false;
        const auto window_end = window_start_ + timeouts_.speed_time;
        if (!ec && n == 0 && timeouts_.speed_limit > 0) {
            const auto left =
                std::max<clock::duration>(window_end - clock::now(), std::chrono::milliseconds(1));
            window_bound = left < wait;
            wait = std::min(wait, left);
        }
        if (!ec && n == 0) {
            watch(wait);
            std::tie(ec, n) =
                co_await socket_.async_read_some(asio::buffer(out.data(), want), use_nothrow);
            ec = unwatch(ec);
        }
        if (ec == asio::error::timed_out && window_bound)
            ec = {}; // judged below, with n == 0
        if (ec) {
            reusable_ = false;
            co_return std::pair{failure::network(ec), std::size_t{0}};
        }
        body_left_ -= n;
        window_bytes_ += n;
        if (auto f = check_speed(); f)
            co_return std::pair{f, std::size_t{0}};
        if (n > 0)
            co_return std::pair{failure{}, n};
    }
}

failure connection::check_speed() {
    if (timeouts_.speed_limit == 0)
        return {};
    const auto now = clock::now();
    if (now < window_start_ + timeouts_.speed_time)
        return {};
    const double seconds = std::chrono::duration<double>(now - window_start_).count();
    const double rate = static_cast<double>(window_bytes_) / seconds;
    if (rate < static_cast<double>(timeouts_.speed_limit)) {
        reusable_ = false;
        auto f = failure::network(asio::error::timed_out);
        f.detail = fmt::format("too slow: {:.0f} bytes/s over the last {:.1f} s, below "
                               "--speed-limit {} bytes/s",
                               rate, seconds, timeouts_.speed_limit);
        return f;
    }
    window_start_ = now; // fast enough: a new window
    window_bytes_ = 0;
    return {};
}

asio::awaitable<failure> ferry_connection::finish_get() {
    fp::get_trailer trailer;
    if (auto f = co_await receive(trailer); f)
        co_return f;
    if (trailer.code != fp::status::ok)
        co_return failure{failure::kind::server,
                          {},
                          {},
                          {trailer.code, false, 0,
                           trailer.code == fp::status::changed
                               ? "the file changed on the server while it was sent"
                               : "the server failed while sending the file"},
                          {}};
    co_return failure{};
}

} // namespace ferry::client
