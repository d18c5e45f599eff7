// start_session: one client connection, from its first byte to its close.
#pragma once

#include "ferry/server/config.hpp"
#include "ferry/server/digest_service.hpp"
#include "ferry/server/file_sender.hpp"
#include "ferry/server/listing_limit.hpp"
#include "ferry/server/metrics.hpp"
#include "ferry/server/path_resolver.hpp"
#include "ferry/server/session_registry.hpp"
#include "ferry/server/small_file_cache.hpp"
#include "ferry/transport/asio.hpp"

#include <cstdint>
#include <optional>
#include <spdlog/logger.h>
#include <string>

namespace ferry::server {

/// What every session of an I/O thread shares. All references outlive the sessions.
struct session_context {
    /// The running configuration. A reload (SIGHUP) points it at a new one, on this thread,
    /// between two steps of a session: read it where it is used, never keep a reference.
    const server_config* config;
    const path_resolver& resolver;
    digest_service& digests;
    small_file_cache& small_files;
    spdlog::logger& log;    ///< "session": open/close lines, warnings
    spdlog::logger& access; ///< one line per request
    listing_limit& listings; ///< --max-listings, server-wide
    thread_metrics& metrics; ///< this thread's
};

/// Identifies a refused connection in logs: `[conn <id>] <peer>`.
struct session_info {
    std::uint64_t id = 0;
    std::string peer;
};

/// --proxy-protocol, on a connection from a trusted proxy: reads the PROXY header (v1 or v2)
/// that must come first, within the request timeout, taking exactly its bytes (what follows is
/// the client's request). Returns the client's address and port the header carries (`proxy`
/// itself for LOCAL or UNKNOWN: the proxy's own health checks), or nullopt when the header is
/// malformed, late, or the peer closed first: then it has logged why (`[conn <id>] <proxy>
/// closed: ...`) and the caller closes the socket. Never throws for network outcomes.
asio::awaitable<std::optional<asio::ip::tcp::endpoint>>
receive_proxy_header(stream_socket& socket, asio::ip::tcp::endpoint proxy, std::uint64_t id,
                     const session_context& ctx);

/// Starts serving a new connection: registers it in `registry` and parks it until its first
/// request arrives. From then on a coroutine serves requests while they arrive back to back and
/// the connection is parked again, without a coroutine, whenever it is idle; it ends when the
/// peer closes, on a timeout or a protocol error, or when the registry drains or cancels it.
/// Never throws for network or protocol outcomes. `slot` is given back before the socket
/// closes. The socket is made non-blocking. `ctx` must outlive the connection.
void start_session(stream_socket socket, std::uint64_t id, std::uint16_t port,
                   connection_slot slot, session_registry& registry, const session_context& ctx);

/// How long a kept-alive connection may stay idle once the server drains (at most a second, at
/// most --idle-timeout): a client between two requests of one download goes on, an idle one
/// lets the server stop.
transport::clock::duration drain_idle_timeout(const server_config& config);

/// `address:port`, or `[address]:port` for IPv6: how logs name a peer.
std::string peer_name(const asio::ip::address& address, std::uint16_t port);

/// Tells a client it is over a connection limit (ERROR busy, closing) and closes.
asio::awaitable<void> refuse_busy(stream_socket socket, const session_context& ctx,
                                  session_info info);

} // namespace ferry::server
