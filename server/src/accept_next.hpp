// accept_next: the next connection of a listener, for every accept loop (the workers', the
// admin listener's, the agent's).
#pragma once

#include "ferry/transport/asio.hpp"

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <optional>
#include <spdlog/logger.h>
#include <string_view>

namespace ferry::server {

/// The next connection `acceptor` accepts, as a socket on `ex`, or nullopt once it is closed. A
/// connection accepted just before it closed is returned like any other (the caller decides
/// whether to serve it). A failure (out of descriptors or memory) is logged as "`who`accept
/// failed: ...", and accepting goes on after a pause instead of spinning.
template <class Executor>
asio::awaitable<std::optional<asio::basic_stream_socket<asio::ip::tcp, Executor>>>
accept_next(asio::ip::tcp::acceptor& acceptor, const Executor& ex, spdlog::logger& log,
            std::string_view who) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(ex, transport::use_nothrow);
        if (ec == asio::error::operation_aborted || (ec && !acceptor.is_open()))
            co_return std::nullopt;
        if (!ec)
            co_return std::move(socket);
        log.warn("{}accept failed: {}", who, ec.message());
        asio::steady_timer pause{acceptor.get_executor(), std::chrono::milliseconds(100)};
        co_await pause.async_wait(transport::use_nothrow);
    }
}

} // namespace ferry::server
