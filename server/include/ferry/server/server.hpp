// server: ferryd's threads, listeners and lifecycle.
//
// One io_context per I/O thread, each with its own listening sockets on the same addresses
// (SO_REUSEPORT: the kernel spreads connections) and its own session_registry, so nothing on
// the hot path is shared between threads. A small worker pool (digest_service) runs blocking
// work. The main thread waits for signals: the first SIGINT/SIGTERM drains, a second one, or
// the drain timeout, cancels what is left; SIGHUP rereads the configuration and reopens the
// log files. It also serves the admin listener (/metrics, /healthz, /readyz, /maint) and the
// HAProxy agent-check responder.
// docs/architecture.md tells the whole story.
#pragma once

#include "ferry/server/admin.hpp"
#include "ferry/server/agent.hpp"
#include "ferry/server/config.hpp"
#include "ferry/server/metrics.hpp"
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
    /// Reopens the log files (SIGHUP, after logrotate renamed them); false if there are none
    /// (the logs go to stderr). May throw.
    std::function<bool()> reopen;
    /// Sets the level of every logger but a dedicated access log's (a reload).
    std::function<void(spdlog::level::level_enum)> set_level;
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

    /// Where SIGHUP reads the configuration again (reread_config); without one, SIGHUP only
    /// reopens the log files.
    void reload_from(std::function<server_config()> reread) { reread_ = std::move(reread); }


    /// Writes the port file, serves until a signal and the drain that follows end, and returns
    /// the exit status (0).
    int run();

private:
    /// An I/O thread: its event loop, listeners and connections, the configuration they use
    /// (replaced by a reload, on this thread) and its own metrics.
    struct worker {
        worker(server& s, std::shared_ptr<const server_config> c);
        asio::io_context ctx{1};
        std::vector<asio::ip::tcp::acceptor> acceptors;
        session_registry registry{ctx};
        std::shared_ptr<const server_config> config;
        thread_metrics metrics;
        session_context session;
        std::thread thread;
    };

    asio::awaitable<void> accept_loop(worker& w, asio::ip::tcp::acceptor& acceptor);
    /// --proxy-protocol: the PROXY header names the client, then it is admitted.
    asio::awaitable<void> accept_proxied(worker& w, stream_socket socket, std::uint64_t id,
                                         asio::ip::tcp::endpoint proxy);
    /// Starts a session for `client`, or refuses it (busy) over a connection limit.
    void admit(worker& w, stream_socket socket, std::uint64_t id,
               const asio::ip::tcp::endpoint& client);
    asio::awaitable<void> supervise(asio::io_context& main, asio::signal_set& signals);
    asio::awaitable<void> on_hangup(asio::signal_set& hangup);
    /// The admin listener: systemd's socket named admin, else --admin-listen, else none.
    void open_admin_listener(std::optional<int> inherited);
    /// The agent-check responder: systemd's socket named agent, else --agent-listen, else none.
    void open_agent_responder(std::optional<int> inherited);
    /// Rereads the configuration and applies what may change while running.
    void reload();
    /// Runs as `config.user` from now on, if one is set and the process runs as root: once the
    /// ports, the root, the log files and the port file are open, before any request is read.
    /// Throws std::system_error on failure.
    void drop_privileges();
    std::string metrics_text() const;
    void write_port_file() const;

    /// The running configuration (the main thread's copy; each worker holds its own pointer).
    std::shared_ptr<const server_config> config_;
    server_loggers log_;
    path_resolver resolver_;
    digest_service digests_;
    small_file_cache small_files_;
    connection_limits limits_;
    listing_limit listings_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<std::uint16_t> ports_;
    std::atomic<std::uint64_t> next_session_id_{1};
    std::function<server_config()> reread_;
    asio::io_context main_{1}; ///< signals, reloads and the admin listener
    std::unique_ptr<admin_listener> admin_;
    std::unique_ptr<agent_responder> agent_;
    // The main thread's own state.
    bool draining_ = false;
    bool maintenance_ = false; ///< POST /maint: the agent says "maint", /readyz 503
    std::uint64_t reloads_ok_ = 0;
    std::uint64_t reloads_failed_ = 0;
    double start_time_ = 0;
};

} // namespace ferry::server
