#include "ferry/server/agent.hpp"

#include "ferry/transport/asio.hpp"
#include "ferry/transport/with_timeout.hpp"
#include "accept_next.hpp"
#include "task_done.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>

namespace ferry::server {

using transport::use_nothrow;

namespace {

/// How long a peer may take to read the line and close.
constexpr auto agent_timeout = std::chrono::seconds(1);

} // namespace

std::string agent_line(const agent_state& s) {
    if (s.maintenance)
        return "maint\n";
    if (s.draining)
        return "drain\n";
    const auto max = std::max<std::size_t>(s.max_connections, 1);
    const auto used = std::min(s.active_connections, max);
    const auto weight = std::max<std::size_t>(100 - 100 * used / max, 1);
    return "ready " + std::to_string(weight) + "%\n";
}

agent_responder::agent_responder(asio::io_context& ctx, asio::ip::tcp::acceptor acceptor,
                                 std::function<agent_state()> state, spdlog::logger& log)
    : ctx_(ctx), acceptor_(std::move(acceptor)), state_(std::move(state)), log_(log) {}

void agent_responder::start() {
    asio::co_spawn(ctx_, accept_loop(), task_done{"agent listener", &log_});
}

void agent_responder::stop() {
    transport::error_code ignored;
    acceptor_.close(ignored);
    for (auto* s : open_)
        s->close(ignored);
}

asio::awaitable<void> agent_responder::accept_loop() {
    for (;;) {
        auto accepted = co_await accept_next(acceptor_, acceptor_.get_executor(), log_, "agent listener: ");
        if (!accepted || !acceptor_.is_open())
            co_return; // (stopped: nothing more is answered)
        if (open_.size() >= max_connections) {
            transport::error_code ignored;
            accepted->close(ignored);
            continue;
        }
        asio::co_spawn(ctx_, answer(std::move(*accepted)), task_done{"agent check", &log_});
    }
}

asio::awaitable<void> agent_responder::answer(asio::ip::tcp::socket socket) {
    open_.push_back(&socket);
    // The state is read now, on the main thread, where the drain and maintenance flags live.
    const auto line = agent_line(state_());
    transport::error_code ignored;
    auto [wec, n] = co_await transport::with_timeout(
        asio::async_write(socket, asio::buffer(line), asio::deferred), agent_timeout);
    if (!wec && socket.is_open()) {
        // Closing with unread bytes (HAProxy's agent-send) would reset the connection and
        // could discard the line before the peer reads it: end the sending side, and read
        // until the peer closes, or for a second at most.
        socket.shutdown(asio::socket_base::shutdown_send, ignored);
        std::array<char, 512> discard;
        const auto deadline = transport::clock::now() + agent_timeout; // in all, not per read
        for (;;) {
            const auto left = deadline - transport::clock::now();
            if (left <= transport::clock::duration::zero())
                break;
            auto [rec, got] = co_await transport::with_timeout(
                socket.async_read_some(asio::buffer(discard), asio::deferred), left);
            if (rec || !socket.is_open())
                break;
        }
    }
    socket.close(ignored);
    open_.erase(std::find(open_.begin(), open_.end(), &socket));
}

} // namespace ferry::server
