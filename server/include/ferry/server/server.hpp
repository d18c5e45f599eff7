// server: ferryd's threads, listeners and lifecycle.
//
// One io_context per I/O thread, each with its own listening sockets on the same addresses
// (SO_REUSEPORT: the kernel spreads connections) and its own session_registry, so nothing on
// the hot path is shared between threads. A small worker pool (digest_service) runs blocking
// work. The main thread only waits for signals: the first SIGINT/SIGTERM drains, a second
// one, or the drain timeout, cancels what is left; SIGHUP reopens the log files.
// docs/architecture.md tells the whole story.
#pragma once

#include "ferry/server/config.hpp"
#include "ferry/server/digest_service.hpp"
#include "ferry/server/path_resolver.hpp"
#include "ferry/server/session.hpp"
#include "ferry/server/session_registry.hpp"
#include "ferry/server/systemd.hpp"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <spdlog/logger.h>
#include <thread>
#include <vector>

namespace ferry::server {

struct server_loggers {
    std::shared_ptr<spdlog::logger> server;  ///< start, stop, faults
    std::shared_ptr<spdlog::logger> session; ///< connection open/close
    std::shared_ptr<spdlog::logger> access;  ///< one line per request
    /// Reopens the log files (SIGHUP, after logrotate renamed them); may throw.
    std::function<void()> reopen;
};

class server {
public:
    /// Opens the root and binds every --listen address, or, given sockets systemd passed
    /// (take_inherited_sockets(), systemd.hpp), serves those instead and takes them over. Throws
    /// std::system_error (or config_error) on failure; nothing is served until run().
    server(server_config config, server_loggers loggers, inherited_sockets inherited = {});
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server();

    /// The bound port of each --listen address (or inherited socket), in order.
    const std::vector<std::uint16_t>& ports() const noexcept { return ports_; }

    /// Writes the port file, serves until a signal and the drain that follows end, and returns
    /// the exit status (0).
    int run();

private:
    struct worker {
        asio::io_context ctx{1};
        std::vector<asio::ip::tcp::acceptor> acceptors;
        session_registry registry{ctx};
        std::thread thread;
    };

    asio::awaitable<void> accept_loop(worker& w, asio::ip::tcp::acceptor& acceptor);
    asio::awaitable<void> supervise(asio::io_context& main, asio::signal_set& signals);
    asio::awaitable<void> reopen_logs_on_hangup(asio::signal_set& hangup);
    void write_port_file() const;

    server_config config_;
    server_loggers log_;
    path_resolver resolver_;
    digest_service digests_;
    small_file_cache small_files_;
    connection_limits limits_;
    listing_limit listings_;
    session_context session_ctx_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<std::uint16_t> ports_;
    std::atomic<std::uint64_t> next_session_id_{1};
};

} // namespace ferry::server
