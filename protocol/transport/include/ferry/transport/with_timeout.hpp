// Per-operation timeouts: with_timeout(op, duration).
#pragma once

#include "ferry/transport/asio.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <tuple>

namespace ferry::transport {

/// Runs `op` (an awaitable started with use_nothrow) racing a timer of `timeout`.
///
/// Returns op's result if it completes first. If the timer fires first, op is cancelled and the
/// result is `asio::error::timed_out` (other values default-constructed). If the caller's own
/// cancellation stops both, the result carries `operation_aborted`: a cancelled wait is never
/// reported as a timeout. Both branches are non-throwing, so `||` cannot swallow an error.
template <class... Ts>
asio::awaitable<std::tuple<error_code, Ts...>>
with_timeout(asio::awaitable<std::tuple<error_code, Ts...>> op, clock::duration timeout) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer{co_await asio::this_coro::executor, timeout};
    auto result = co_await (std::move(op) || timer.async_wait(use_nothrow));
    if (result.index() == 0)
        co_return std::get<0>(std::move(result));
    auto [timer_ec] = std::get<1>(result);
    co_return std::tuple<error_code, Ts...>{
        timer_ec ? timer_ec : error_code{asio::error::timed_out}, Ts{}...};
}

} // namespace ferry::transport
