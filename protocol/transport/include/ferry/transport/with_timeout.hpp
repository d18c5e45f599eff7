// Per-operation timeouts: with_timeout(op, duration).
#pragma once

#include "ferry/transport/asio.hpp"

#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <tuple>
#include <utility>

namespace ferry::transport {

namespace detail {

/// The values an operation completes with: void(error_code, Ts...) -> std::tuple<error_code,
/// Ts...>.
template <class Op>
struct op_result;
template <class... Ts, class... Rest>
struct op_result<asio::deferred_async_operation<void(error_code, Ts...), Rest...>> {
    using type = std::tuple<error_code, Ts...>;
};
template <class Op>
using op_result_t = typename op_result<Op>::type;

/// The operation's values from the group's (order, error_code, Ts..., timer error_code).
template <class Result, class Group, std::size_t... I>
Result operation_values(Group& g, std::index_sequence<I...>) {
    return Result{std::move(std::get<1 + I>(g))...};
}

} // namespace detail

/// Runs `op`, an operation started with asio::deferred (`socket.async_read_some(buf,
/// asio::deferred)`), racing a timer of `timeout`. No coroutine frames are created for the race:
/// both are plain operations of one parallel group.
///
/// Returns op's values if it completes first. If the timer fires first, op is cancelled and the
/// result is `asio::error::timed_out` (other values default-constructed). If the caller's own
/// cancellation stops both, the result carries `operation_aborted`: a cancelled wait is never
/// reported as a timeout.
template <class Op>
asio::awaitable<detail::op_result_t<Op>> with_timeout(Op op, clock::duration timeout) {
    using result = detail::op_result_t<Op>;
    asio::steady_timer timer{co_await asio::this_coro::executor, timeout};
    auto group = co_await asio::experimental::make_parallel_group(std::move(op),
                                                                  timer.async_wait(asio::deferred))
                     .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    if (std::get<0>(group)[0] == 0)
        co_return detail::operation_values<result>(
            group, std::make_index_sequence<std::tuple_size_v<result>>{});
    const error_code timer_ec = std::get<std::tuple_size_v<decltype(group)> - 1>(group);
    result r{};
    std::get<0>(r) = timer_ec ? timer_ec : error_code{asio::error::timed_out};
    co_return r;
}

} // namespace ferry::transport
