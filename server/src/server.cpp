#include "ferry/server/server.hpp"

#include "ferry/protocol/text.hpp"
#include "ferry/server/session.hpp"
#include "ferry/server/systemd.hpp"
#include "ferry/transport/asio.hpp"
#include "accept_next.hpp"
#include "task_done.hpp"

#include <algorithm>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <fstream>
#include <spdlog/fmt/ranges.h>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

namespace ferry::server {

using transport::error_code;
using transport::use_nothrow;

namespace {

asio::ip::tcp::acceptor make_acceptor(asio::io_context& ctx, const asio::ip::tcp::endpoint& at,
                                      bool first) {
    const auto where = at.address().to_string() + ":" + std::to_string(at.port());
    auto fail = [&](const error_code& ec) {
        return std::system_error(ec, "cannot listen on " + where);
    };
    error_code ec;
    if (first && at.port() != 0) {
        // SO_REUSEPORT would let a second ferryd join this port and silently take half the
        // connections: bind once without it to find out whether someone is there already.
        asio::ip::tcp::acceptor probe{ctx, at.protocol()};
        if (at.address().is_v6())
            probe.set_option(asio::ip::v6_only(true));
        probe.set_option(asio::socket_base::reuse_address(true));
        if (probe.bind(at, ec); ec)
            throw fail(ec);
    }
    asio::ip::tcp::acceptor a{ctx, at.protocol()};
    a.set_option(asio::socket_base::reuse_address(true));
    const int one = 1;
    if (::setsockopt(a.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        throw fail(error_code{errno, boost::system::system_category()});
    if (at.address().is_v6())
        a.set_option(asio::ip::v6_only(true));
    if (a.bind(at, ec); ec)
        throw fail(ec);
    a.listen(asio::socket_base::max_listen_connections);
    return a;
}

/// A listener of the main thread (admin, agent) on `at`, named by its `option` in errors: one
/// socket, no SO_REUSEPORT (a second ferryd on the same address is an error).
asio::ip::tcp::acceptor main_thread_listener(asio::io_context& ctx,
                                             const asio::ip::tcp::endpoint& at, const char* option) {
    asio::ip::tcp::acceptor a{ctx, at.protocol()};
    a.set_option(asio::socket_base::reuse_address(true));
    if (at.address().is_v6())
        a.set_option(asio::ip::v6_only(true));
    error_code ec;
    if (a.bind(at, ec); ec)
        throw std::system_error(ec, "cannot listen on " + at.address().to_string() + ":" +
                                        std::to_string(at.port()) + " (" + option + ")");
    a.listen();
    return a;
}

/// The listener of a main-thread role (admin, agent): systemd's socket of that name, adopted
/// and `inherited` closed, wins over the role's `option` (bound to `at`); neither: none.
std::optional<asio::ip::tcp::acceptor>
adopt_or_listen(asio::io_context& ctx, std::optional<int> inherited,
                const std::optional<asio::ip::tcp::endpoint>& at, const char* option) {
    if (inherited) {
        auto a = adopt_listener(ctx, *inherited);
        ::close(*inherited);
        return a;
    }
    if (at)
        return main_thread_listener(ctx, *at, option);
    return std::nullopt;
}

} // namespace

server::worker::worker(server& s, std::shared_ptr<const server_config> c)
    : config(std::move(c)), session{config.get(),     s.resolver_,     s.digests_,
                                    s.small_files_,   *s.log_.session, *s.log_.access,
                                    s.listings_,      metrics} {}

server::server(server_config config, server_loggers loggers, inherited_sockets inherited)
    : config_(std::make_shared<const server_config>(std::move(config))),
      log_(std::move(loggers)), resolver_(config_->root, config_->symlinks, config_->dotfiles),
      digests_(config_->digest_threads, config_->digest_cache_entries),
      small_files_(config_->small_file_cache),
      limits_(config_->max_connections, config_->max_connections_per_ip),
      listings_(config_->max_listings) {
    for (unsigned i = 0; i < config_->threads; ++i)
        workers_.push_back(std::make_unique<worker>(*this, config_));
    open_admin_listener(inherited.admin);
    open_agent_responder(inherited.agent);
    if (!inherited.data.empty()) {
        // systemd holds the sockets (and their backlog) across restarts: they replace --listen.
        std::vector<std::string> where;
        for (const int fd : inherited.data) {
            for (auto& w : workers_)
                w->acceptors.push_back(adopt_listener(w->ctx, fd));
            ::close(fd); // the workers hold their own duplicates
            const auto at = workers_.front()->acceptors.back().local_endpoint();
            where.push_back(at.address().to_string() + ":" + std::to_string(at.port()));
            ports_.push_back(at.port());
        }
        log_.server->info("serving the socket(s) systemd passed, {}, instead of the listen "
                          "addresses",
                          fmt::join(where, " "));
        return;
    }
    for (auto endpoint : config_->listen) {
        // The first thread's listener picks the port (maybe 0 = any); the others join it.
        for (auto& w : workers_) {
            w->acceptors.push_back(make_acceptor(w->ctx, endpoint, w == workers_.front()));
            endpoint.port(w->acceptors.back().local_endpoint().port());
        }
        ports_.push_back(endpoint.port());
    }
}

void server::open_admin_listener(std::optional<int> inherited) {
    start_time_ =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto a = adopt_or_listen(main_, inherited, config_->admin_listen, "admin-listen");
    if (!a)
        return;
    admin_ = std::make_unique<admin_listener>(
        main_, std::move(*a),
        admin_listener::probes{[this] { return metrics_text(); },
                               [this]() -> std::optional<std::string> {
                                   if (draining_)
                                       return "draining: not accepting connections";
                                   if (maintenance_)
                                       return "maintenance";
                                   if (auto why = resolver_.root_problem())
                                       return "root unusable: " + *why;
                                   return std::nullopt;
                               },
                               [this] { return maintenance_; },
                               [this](bool on) {
                                   if (on != maintenance_)
                                       log_.server->info("maintenance {} (admin listener)",
                                                         on ? "on" : "off");
                                   maintenance_ = on;
                               }},
        *log_.server);
}

void server::open_agent_responder(std::optional<int> inherited) {
    auto a = adopt_or_listen(main_, inherited, config_->agent_listen, "agent-listen");
    if (!a)
        return;
    agent_ = std::make_unique<agent_responder>(
        main_, std::move(*a),
        [this] {
            return agent_state{maintenance_, draining_, limits_.active(), limits_.max_total()};
        },
        *log_.server);
}

server::~server() {
    for (auto& w : workers_)
        if (w->thread.joinable())
            w->thread.join();
}

void server::write_port_file() const {
    if (!config_->port_file)
        return;
    // Written whole and renamed into place, so a reader never sees a partial file.
    const auto tmp = config_->port_file->string() + ".tmp";
    {
        std::ofstream out{tmp, std::ios::trunc};
        for (auto p : ports_)
            out << p << '\n';
        if (admin_) // after them: the listen ports keep their lines
            out << admin_->port() << '\n';
        if (agent_)
            out << agent_->port() << '\n';
        if (!out.flush())
            throw std::system_error(errno, std::generic_category(), "cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), config_->port_file->c_str()) != 0)
        throw std::system_error(errno, std::generic_category(),
                                "cannot write " + config_->port_file->string());
}

asio::awaitable<void> server::accept_loop(worker& w, asio::ip::tcp::acceptor& acceptor) {
    for (;;) {
        // A connection accepted just before the drain closed the listener is served (drained)
        // like the others, not dropped: under socket activation it would otherwise have waited
        // in the backlog for the next ferryd.
        auto accepted = co_await accept_next(acceptor, w.ctx.get_executor(), *log_.server, "");
        if (!accepted)
            co_return;
        auto& socket = *accepted;
        error_code ignored;
        socket.set_option(asio::ip::tcp::no_delay(true), ignored);
        const auto peer = socket.remote_endpoint(ignored);
        const auto id = next_session_id_.fetch_add(1, std::memory_order_relaxed);
        if (!w.config->proxy_protocol) {
            admit(w, stream_socket{std::move(socket)}, id, peer);
            continue;
        }
        const auto& trusted = w.config->trusted_proxies;
        if (std::none_of(trusted.begin(), trusted.end(),
                         [&](const ip_network& n) { return n.contains(peer.address()); })) {
            w.session.log.warn("[conn {}] {} refused: not a trusted proxy", id,
                               peer_name(peer.address(), peer.port()));
            socket.close(ignored);
            continue;
        }
        asio::co_spawn(w.ctx, accept_proxied(w, stream_socket{std::move(socket)}, id, peer),
                       task_done{"PROXY header", log_.server.get()});
    }
}

asio::awaitable<void> server::accept_proxied(worker& w, stream_socket socket, std::uint64_t id,
                                             asio::ip::tcp::endpoint proxy) {
    // Outside the registry: bounded by the request timeout, so a drain waits for it at most that.
    const auto client = co_await receive_proxy_header(socket, proxy, id, w.session);
    if (client)
        admit(w, std::move(socket), id, *client);
}

void server::admit(worker& w, stream_socket socket, std::uint64_t id,
                   const asio::ip::tcp::endpoint& client) {
    bool per_address = false;
    if (const auto refused = limits_.try_acquire(client.address(), per_address);
        refused != connection_limits::refusal::none) {
        w.metrics.refused[refused == connection_limits::refusal::max_connections ? 0 : 1].add();
        asio::co_spawn(w.ctx,
                       refuse_busy(std::move(socket), w.session,
                                   {id, peer_name(client.address(), client.port())}),
                       task_done{"refusal", log_.server.get()});
        return;
    }
    start_session(std::move(socket), id, client.port(),
                  connection_slot{limits_, client.address(), per_address}, w.registry, w.session);
}

asio::awaitable<void> server::supervise(asio::io_context& main, asio::signal_set& signals) {
    using namespace asio::experimental::awaitable_operators;
    auto [ec, signo] = co_await signals.async_wait(use_nothrow);
    if (ec)
        co_return; // every worker ended by itself
    draining_ = true;
    log_.server->info("received signal {}: not accepting; draining transfers for up to {} s", signo,
                      static_cast<double>(config_->drain_timeout.count()) / 1000.0);
    notify_stopping("draining: " + std::to_string(limits_.active()) + " connection(s) left");
    const auto idle = drain_idle_timeout(*config_);
    for (auto& w : workers_)
        asio::post(w->ctx, [&w = *w, idle] {
            for (auto& a : w.acceptors) {
                error_code ignored;
                a.close(ignored);
            }
            w.registry.drain(idle);
        });
    asio::steady_timer drain_timer{main, config_->drain_timeout};
    auto which = co_await (signals.async_wait(use_nothrow) || drain_timer.async_wait(use_nothrow) ||
                           report_drain(limits_));
    // Either wait failing, or the report ending, means the supervisor itself was cancelled:
    // everything drained.
    if (which.index() == 2)
        co_return;
    if (which.index() == 0) {
        if (std::get<0>(std::get<0>(which)))
            co_return;
        log_.server->info("second signal: stopping now");
    } else {
        if (std::get<0>(std::get<1>(which)))
            co_return;
        log_.server->info("drain timeout: cancelling the remaining transfers");
    }
    notify_status("cancelling: " + std::to_string(limits_.active()) + " connection(s) left");
    for (auto& w : workers_)
        asio::post(w->ctx, [&w = *w] { w.registry.cancel_all(); });
}

asio::awaitable<void> server::on_hangup(asio::signal_set& hangup) {
    for (;;) {
        auto [ec, signo] = co_await hangup.async_wait(use_nothrow);
        if (ec)
            co_return; // the server stopped
        log_.server->info("received signal {}: reloading the configuration", signo);
        reload();
        try {
            if (log_.reopen && log_.reopen())
                log_.server->info("log files reopened");
        } catch (const std::exception& e) {
            log_.server->error("cannot reopen the log files (the lines go on to the file open "
                               "so far): {}",
                               e.what());
        }
    }
}

void server::reload() {
    if (!reread_)
        return;
    server_config next;
    try {
        next = reread_();
    } catch (const std::exception& e) {
        ++reloads_failed_;
        log_.server->error("configuration not reloaded: {}; the running settings stay",
                           protocol::escape_for_log(e.what()));
        return;
    }
    std::vector<std::string> kept;
    next = reloadable_part(*config_, std::move(next), kept);
    if (!kept.empty())
        log_.server->warn("configuration: {} changed; only a restart applies that, the running "
                          "value stays",
                          fmt::join(kept, ", "));
    const auto changes = describe_changes(*config_, next);
    auto shared = std::make_shared<const server_config>(std::move(next));
    limits_.set_limits(shared->max_connections, shared->max_connections_per_ip);
    listings_.set_max(shared->max_listings);

    // Each thread takes the new settings between two steps of its sessions; connections keep
    // their rate limit, and a transfer in flight is not touched.
    for (auto& w : workers_)
        asio::post(w->ctx, [&w = *w, shared] {
            using wait = session_registry::wait;
            if (!w.registry.draining()) { // (draining: the short drain timeouts stay)
                if (shared->request_timeout < w.config->request_timeout)
                    w.registry.shorten(wait::first_request, shared->request_timeout);
                if (shared->idle_timeout < w.config->idle_timeout)
                    w.registry.shorten(wait::keep_alive, shared->idle_timeout);
            }
            w.config = shared;
            w.session.config = shared.get();
        });
    // The line is written at the more verbose of the two levels, so that it is seen whether
    // the level goes up or down.
    const auto level = spdlog::level::from_str(shared->log_level);
    const bool more_verbose = level < log_.server->level();
    if (more_verbose && log_.set_level)
        log_.set_level(level);
    log_.server->info("configuration reloaded: {}{}", changes,
                      draining_ && shared->drain_timeout != config_->drain_timeout
                          ? " (the drain in progress keeps its deadline)"
                          : "");
    if (!more_verbose && log_.set_level)
        log_.set_level(level);
    config_ = std::move(shared);
    ++reloads_ok_;
}

std::string server::metrics_text() const {
    std::vector<const thread_metrics*> threads;
    for (const auto& w : workers_)
        threads.push_back(&w->metrics);
    server_metrics s;
    s.max_connections = limits_.max_total();
    s.listings_active = listings_.active();
    s.digest_hits = digests_.hits();
    s.digest_shared = digests_.shared();
    s.digest_computations = digests_.computations();
    s.digest_running = digests_.running();
    s.draining = draining_;
    s.reloads_ok = reloads_ok_;
    s.reloads_failed = reloads_failed_;
    s.start_time = start_time_;
    return render_metrics(threads, s);
}

int server::run() {
    auto& main = main_;
    for (auto& w : workers_)
        for (auto& a : w->acceptors)
            asio::co_spawn(w->ctx, accept_loop(*w, a), task_done{"accept loop", log_.server.get()});
    // Signals are caught before anyone can learn the port: a SIGTERM right after the port file
    // appears already drains.
    asio::signal_set signals{main, SIGINT, SIGTERM};
    asio::signal_set hangup{main, SIGHUP};
    write_port_file(); // as the user that started ferryd, like the ports and the log files
    try {
        drop_privileges(); // before any request is read
    } catch (...) {
        if (config_->port_file) // nobody is to connect to a ferryd that did not start
            std::filesystem::remove(*config_->port_file);
        throw;
    }
    const auto serving =
        fmt::format("serving {} on {} thread(s), port(s) {}", config_->root.string(),
                    workers_.size(), fmt::join(ports_, ","));
    log_.server->info("{}", serving);
    notify_ready(serving);

    if (admin_) {
        admin_->start();
        log_.server->info("admin listener (/metrics, /healthz, /readyz, /maint) on port {}",
                          admin_->port());
    }
    if (agent_) {
        agent_->start();
        log_.server->info("HAProxy agent-check responder on port {}", agent_->port());
    }
    asio::co_spawn(main, on_hangup(hangup), task_done{"reloader", log_.server.get()});
    asio::cancellation_signal stop_supervisor;
    asio::co_spawn(main, supervise(main, signals),
                   asio::bind_cancellation_slot(stop_supervisor.slot(),
                                                task_done{"supervisor", log_.server.get()}));
    std::size_t finished = 0;
    for (auto& w : workers_)
        w->thread = std::thread([&main, &finished, &stop_supervisor, &hangup, &w = *w, this] {
            w.ctx.run();
            asio::post(main, [&] {
                if (++finished == workers_.size()) {
                    stop_supervisor.emit(asio::cancellation_type::terminal);
                    hangup.cancel();
                    if (admin_)
                        admin_->stop();
                    if (agent_)
                        agent_->stop();
                }
            });
        });
    main.run();
    signals.cancel();
    for (auto& w : workers_)
        w->thread.join();
    digests_.stop(); // (nobody waits for a digest any more)
    digests_.join();
    log_.server->info("stopped");
    notify_status("stopped");
    return 0;
}

} // namespace ferry::server
