// The one place Asio is configured and its vocabulary named for Ferry: the `asio` namespace
// alias, error_code, and the non-throwing completion token.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>

namespace ferry::transport {

namespace asio = boost::asio;
using boost::system::error_code;
using clock = std::chrono::steady_clock;

/// Completion token for expected network outcomes: `auto [ec, n] = co_await op(use_nothrow)`.
/// EOF, reset, timeout and cancellation come back as values, never as exceptions.
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

} // namespace ferry::transport
