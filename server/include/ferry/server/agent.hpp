// agent_responder: the HAProxy agent-check responder, on its own address (--agent-listen; the
// admin listener speaks HTTP, an agent check does not). HAProxy connects, reads one line and
// the connection closes:
//   "ready NN%\n"  serving; NN is the weight (a percentage of the server line's weight) from
//                  the connections in use (agent_line)
//   "drain\n"      draining after SIGTERM/SIGINT: no new connections, the old ones finish
//   "maint\n"      in maintenance (POST /maint on the admin listener)
// It runs on the main thread's io_context, beside the admin listener.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <spdlog/logger.h>
#include <string>
#include <vector>

namespace ferry::server {

namespace asio = boost::asio;

/// What the agent reports: the state of the server and its load.
struct agent_state {
    bool maintenance = false;
    bool draining = false;
    std::size_t active_connections = 0;
    std::size_t max_connections = 1;
};

/// The line an agent check reads, '\n' included. Maintenance wins over a drain. The weight is
/// 100 - 100 * active / max, at least 1% (0% would mean drain) and at most 100%.
std::string agent_line(const agent_state& s);

class agent_responder {
public:
    /// Serves `acceptor` (bound and listening) once start() is called; `state` is asked at
    /// every connection.
    agent_responder(asio::io_context& ctx, asio::ip::tcp::acceptor acceptor,
                    std::function<agent_state()> state, spdlog::logger& log);
    agent_responder(const agent_responder&) = delete;
    agent_responder& operator=(const agent_responder&) = delete;

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    void start();
    /// Closes the listener and every agent connection (the server stops).
    void stop();

    /// Agent connections open at once (each lives until the peer closes, or a second); more are
    /// closed unanswered.
    static constexpr std::size_t max_connections = 64;

private:
    asio::awaitable<void> accept_loop();
    asio::awaitable<void> answer(asio::ip::tcp::socket socket);

    asio::io_context& ctx_;
    asio::ip::tcp::acceptor acceptor_;
    std::function<agent_state()> state_;
    spdlog::logger& log_;
    std::vector<asio::ip::tcp::socket*> open_;
};

} // namespace ferry::server
