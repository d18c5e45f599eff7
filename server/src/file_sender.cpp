#include "ferry/server/file_sender.hpp"

#include "ferry/transport/with_timeout.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <cerrno>
#include <sys/sendfile.h>
#include <sys/socket.h>

namespace ferry::server {

using transport::clock;
using transport::error_code;
using transport::use_nothrow;
using transport::with_timeout;

namespace {

constexpr std::uint64_t max_chunk = 4 << 20;    // bytes per sendfile call
constexpr std::uint64_t yield_every = 16 << 20; // bytes sent before letting others run

/// Waits until the peer can take more bytes, for at most `timeout`.
asio::awaitable<error_code> wait_writable(stream_socket& socket, clock::duration timeout) {
    auto [ec] = co_await with_timeout(socket.async_wait(stream_socket::wait_write, asio::deferred),
                                      timeout);
    co_return ec;
}

} // namespace

asio::awaitable<send_result> send_file_range(stream_socket& socket, int file_fd,
                                             std::uint64_t offset, std::uint64_t length,
                                             clock::duration progress_timeout,
                                             rate_limiter& limiter) {
    send_result r;
    auto off = static_cast<off_t>(offset);
    std::uint64_t since_yield = 0;
    auto cancel_state = co_await asio::this_coro::cancellation_state;
    while (r.from_file < length) {
        // A cancellation that arrived while no operation was pending (during a yield) is only
        // recorded in the state: honour it here.
        if (cancel_state.cancelled() != asio::cancellation_type::none) {
            r.ec = asio::error::operation_aborted;
            co_return r;
        }
        clock::duration wait{};
        const std::uint64_t allowed =
            limiter.allowance(std::min(length - r.from_file, max_chunk), clock::now(), wait);
        if (allowed == 0) {
            asio::steady_timer timer{socket.get_executor(), wait};
            auto [ec] = co_await timer.async_wait(use_nothrow);
            if (ec) {
                r.ec = ec;
                co_return r;
            }
            continue;
        }
        const ssize_t n = ::sendfile(socket.native_handle(), file_fd, &off, allowed);
        if (n > 0) {
            const auto sent = static_cast<std::uint64_t>(n);
            r.from_file += sent;
            limiter.consume(sent);
            since_yield += sent;
            if (since_yield >= yield_every) {
                since_yield = 0;
                co_await asio::post(socket.get_executor(), asio::use_awaitable);
            }
            continue;
        }
        if (n == 0) { // end of file before the promised range: the file shrank
            r.truncated = true;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            r.ec = error_code{errno, boost::system::system_category()};
            co_return r;
        }
        since_yield = 0; // waiting lets others run
        if (auto ec = co_await wait_writable(socket, progress_timeout); ec) {
            r.ec = ec;
            co_return r;
        }
    }
    co_return r;
}

void reset_on_close(stream_socket& socket) noexcept {
    const ::linger reset{1, 0};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
}

} // namespace ferry::server
