// admin_listener: ferryd's operations endpoint, on its own address (--admin-listen, or a
// socket named "admin" from systemd), never the public port. HTTP/1.1 with keep-alive:
//   GET /metrics  the Prometheus text format (metrics.hpp)
//   GET /healthz  200 while the process runs
//   GET /readyz   200 while it serves; 503 while draining, in maintenance, or when the root is
//                 unusable
//   POST /maint, DELETE /maint  enter, leave maintenance (the agent says "maint", agent.hpp);
//                 GET /maint answers "on" or "off"
// It runs on the main thread's io_context, beside the signal handling, so a scrape never
// takes time from an I/O thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <spdlog/logger.h>
#include <string>

namespace ferry::server {

namespace asio = boost::asio;

class admin_listener {
public:
    struct probes {
        std::function<std::string()> metrics;                ///< the /metrics body
        std::function<std::optional<std::string>()> unready; ///< why /readyz fails, if it does
        std::function<bool()> maintenance;                   ///< in maintenance?
        std::function<void(bool)> set_maintenance;           ///< POST (true), DELETE (false)
    };

    /// Serves `acceptor` (bound and listening) once start() is called.
    admin_listener(asio::io_context& ctx, asio::ip::tcp::acceptor acceptor, probes p,
                   spdlog::logger& log);
    admin_listener(const admin_listener&) = delete;
    admin_listener& operator=(const admin_listener&) = delete;

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    void start();
    /// Closes the listener and every admin connection (the server stops).
    void stop();

    /// Admin connections served at once. When all are taken, a new one replaces the oldest
    /// that waits between two requests (a scraper's kept-alive connection reconnects), or is
    /// closed if every one is in the middle of a request.
    static constexpr std::size_t max_connections = 64;
    /// Of them, connections from one address: one host cannot take them all.
    static constexpr std::size_t max_per_address = 8;

private:
    struct open_connection {
        asio::ip::tcp::socket* socket;
        asio::ip::address peer;
        bool between_requests = false; ///< waiting for a request's first byte
    };

    asio::awaitable<void> accept_loop();
    asio::awaitable<void> serve(asio::ip::tcp::socket socket, std::uint64_t id);
    /// Makes room for a connection from `peer`; false if there is none.
    bool admit(const asio::ip::address& peer);

    asio::io_context& ctx_;
    asio::ip::tcp::acceptor acceptor_;
    probes probes_;
    spdlog::logger& log_;
    std::map<std::uint64_t, open_connection> open_; ///< by id: oldest first
    std::uint64_t next_id_ = 0;
};

} // namespace ferry::server
