// A connection's life, in one place: accept -> (--proxy-protocol: a trusted proxy's PROXY
// header names the client, receive_proxy_header) -> admit the client (start_session, or
// refuse_busy over a limit) -> park until readable -> sniff the first byte (0xFE: the Ferry
// front, anything else: HTTP/1.1) -> that front serves requests while they arrive back to back
// (serve.hpp) -> park again when idle, or finish: close and log why.
#include "ferry/server/session.hpp"

#include "ferry/protocol/proxy_header.hpp"
#include "ferry/protocol/text.hpp"
#include "ferry/transport/with_timeout.hpp"
#include "serve.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <cerrno>
#include <chrono>
#include <optional>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

namespace ferry::server {

namespace fp = ferry::protocol;
using transport::clock;
using transport::error_code;
using transport::use_nothrow;
using transport::with_timeout;

namespace {

/// The first byte of every Ferry frame (docs/protocol.md 4): no HTTP request starts with it.
constexpr unsigned char ferry_first_byte = 0xFE;

/// Reads the first byte of a connection without taking it. nullopt: nothing there yet;
/// -1: the peer closed or the socket failed.
std::optional<int> sniff(stream_socket& socket) {
    unsigned char first = 0;
    const auto n = ::recv(socket.native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 1)
        return int{first};
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return std::nullopt;
    return -1;
}

void park(connection& c, session_registry& registry, const session_context& ctx);

/// Closes `c` (if its coroutine did not) and logs its end.
void finish(connection& c, session_registry& registry, const session_context& ctx,
            std::string_view why) {
    c.slot.release(); // before the close, so a client that saw the close may connect again
    ctx.metrics.closed.add();
    if (!c.limiter.unlimited())
        ctx.metrics.rate_limited_closed.add();
    error_code ignored;
    c.socket.close(ignored);
    if (ctx.log.should_log(spdlog::level::info)) { // no formatting when the log is off
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - c.opened).count();
        ctx.log.info("[conn {}] {} closed: {}; {} requests in {} ms", c.id, peer_of(c), why,
                     c.requests, ms);
    }
    registry.remove(c);
}

/// The completion of a connection's coroutine: park it again or finish it.
struct served {
    connection* c;
    session_registry* registry;
    const session_context* ctx;
    void operator()(std::exception_ptr e, std::optional<std::string> why) const {
        c->busy = false;
        ctx->metrics.busy_ended.add();
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                ctx->log.error("[conn {}] session failed: {}", c->id,
                               fp::escape_for_log(ex.what()));
            }
            finish(*c, *registry, *ctx, "internal error");
        } else if (why) {
            finish(*c, *registry, *ctx, *why);
        } else {
            park(*c, *registry, *ctx);
        }
    }
};

/// The end of a parked connection's wait: a request's first bytes, the peer's close, a
/// timeout, or shutdown.
struct woken {
    connection* c;
    session_registry* registry;
    const session_context* ctx;
    using allocator_type = handler_allocator<void>;
    allocator_type get_allocator() const noexcept { return allocator_type{c->wait_memory}; }

    void operator()(const error_code& ec) const {
        session_registry::unpark(*c);
        if (c->timed_out)
            return finish(*c, *registry, *ctx,
                          registry->draining() ? "idle while draining"
                          : c->requests == 0   ? "request timeout"
                                               : "idle timeout");
        if (registry->cancelling()) // past the drain: no more answers, not even a refusal
            return finish(*c, *registry, *ctx, "cancelled");
        if (ec)
            return finish(*c, *registry, *ctx, describe(ec));
        // Readable. End of file shows up as readable too. The first byte picks the front.
        if (c->protocol == connection::front::unknown) {
            const auto first = sniff(c->socket);
            if (!first)
                return park(*c, *registry, *ctx); // woken without data: wait on
            if (*first < 0)
                return finish(*c, *registry, *ctx, "closed by peer");
            c->protocol =
                *first == ferry_first_byte ? connection::front::ferry : connection::front::http;
        }
        c->busy = true;
        ctx->metrics.busy_started.add();
        auto handler = asio::bind_cancellation_slot(c->signal.slot(), served{c, registry, ctx});
        if (c->protocol == connection::front::ferry)
            asio::co_spawn(c->socket.get_executor(), serve_ferry(*c, *ctx), std::move(handler));
        else
            asio::co_spawn(c->socket.get_executor(), serve_http(*c, *ctx),
                           std::move(handler));
    }
};

void park(connection& c, session_registry& registry, const session_context& ctx) {
    // The first request has the request timeout; later ones the idle keep-alive timeout; while
    // draining, neither is longer than the short drain_idle_timeout.
    if (c.requests == 0)
        registry.park(c, session_registry::wait::first_request,
                      registry.draining() ? std::min(drain_idle_timeout(*ctx.config),
                                                     clock::duration{ctx.config->request_timeout})
                                          : clock::duration{ctx.config->request_timeout});
    else
        registry.park(c, session_registry::wait::keep_alive,
                      registry.draining() ? drain_idle_timeout(*ctx.config)
                                          : clock::duration{ctx.config->idle_timeout});
    c.socket.async_wait(stream_socket::wait_read, woken{&c, &registry, &ctx});
}

} // namespace

transport::clock::duration drain_idle_timeout(const server_config& config) {
    return std::min<transport::clock::duration>(config.idle_timeout, std::chrono::seconds(1));
}

std::string peer_name(const asio::ip::address& address, std::uint16_t port) {
    return address.is_v6() ? "[" + address.to_string() + "]:" + std::to_string(port)
                           : address.to_string() + ":" + std::to_string(port);
}

namespace {

/// The client a complete PROXY header names, or the proxy itself (LOCAL, UNKNOWN).
asio::ip::tcp::endpoint client_of(const fp::proxy::header& h,
                                  const asio::ip::tcp::endpoint& proxy) {
    if (!h.source)
        return proxy;
    const auto& s = *h.source;
    asio::ip::address address;
    if (s.v6) {
        const asio::ip::address_v6 v6{s.bytes};
        // A dual-stack proxy may name an IPv4 client as ::ffff:a.b.c.d: count it as a.b.c.d.
        address = v6.is_v4_mapped()
                      ? asio::ip::address{asio::ip::make_address_v4(asio::ip::v4_mapped, v6)}
                      : asio::ip::address{v6};
    } else {
        address = asio::ip::address_v4{{s.bytes[0], s.bytes[1], s.bytes[2], s.bytes[3]}};
    }
    return {address, s.port};
}

} // namespace

asio::awaitable<std::optional<asio::ip::tcp::endpoint>>
receive_proxy_header(stream_socket& socket, asio::ip::tcp::endpoint proxy, std::uint64_t id,
                     const session_context& ctx) {
    const auto closed = [&](spdlog::level::level_enum level, std::string_view why) {
        ctx.log.log(level, "[conn {}] {} closed: {}", id, peer_name(proxy.address(), proxy.port()),
                    why);
        return std::nullopt;
    };
    std::array<std::byte, fp::proxy::max_header_length> header;
    std::size_t taken = 0; // bytes read off the socket: all of them the header's
    const auto deadline = clock::now() + clock::duration{ctx.config->request_timeout};
    for (;;) {
        // Look without taking: the bytes after the header are the client's, for the sniff.
        auto [ec, n] = co_await with_timeout(
            socket.async_receive(asio::buffer(header.data() + taken, header.size() - taken),
                                 stream_socket::message_peek, asio::deferred),
            deadline - clock::now());
        if (ec == asio::error::timed_out)
            co_return closed(spdlog::level::warn, "no PROXY header within the request timeout");
        if (ec)
            co_return closed(spdlog::level::info,
                             describe(ec) + std::string{" before its PROXY header"});
        const auto parsed = fp::proxy::parse(std::span{header.data(), taken + n});
        using outcome = fp::proxy::parse_result::outcome;
        if (parsed.what == outcome::invalid)
            co_return closed(spdlog::level::warn,
                             "malformed PROXY header: " + std::string{parsed.error});
        // Take the header's bytes (they have arrived: the peek saw them). Needing more, every
        // byte seen is the header's: taking them all makes the next peek wait for new ones.
        const auto take = parsed.what == outcome::complete ? parsed.consumed - taken : n;
        error_code read_ec;
        socket.receive(asio::buffer(header.data() + taken, take), 0, read_ec);
        if (read_ec)
            co_return closed(spdlog::level::info, describe(read_ec));
        taken += take;
        if (parsed.what == outcome::complete)
            co_return client_of(parsed.value, proxy);
    }
}

void start_session(stream_socket socket, std::uint64_t id, std::uint16_t port, connection_slot slot,
                   session_registry& registry, const session_context& ctx) {
    error_code ignored;
    socket.native_non_blocking(true, ignored);
    auto& c = registry.add(std::move(socket), id, port, std::move(slot), ctx.config->rate_limit);
    ctx.metrics.accepted.add();
    if (!c.limiter.unlimited())
        ctx.metrics.rate_limited_opened.add();
    if (ctx.log.should_log(spdlog::level::debug))
        ctx.log.debug("[conn {}] {} open", c.id, peer_of(c));
    park(c, registry, ctx);
}

asio::awaitable<void> refuse_busy(stream_socket socket, const session_context& ctx,
                                  session_info info) {
    co_await asio::this_coro::throw_if_cancelled(false);
    ctx.log.warn("[conn {}] {} refused: busy (connection limit)", info.id, info.peer);
    // An HTTP client sends its request at once; a Ferry client may wait for nothing, or be
    // slow: after a second without a byte it gets the Ferry refusal, as before HTTP existed.
    auto [ec] = co_await with_timeout(socket.async_wait(stream_socket::wait_read, asio::deferred),
                                      std::chrono::seconds(1));
    const auto first = ec ? std::nullopt : sniff(socket);
    if (first && *first >= 0 && *first != ferry_first_byte)
        co_await refuse_busy_http(socket, ctx);
    else
        co_await refuse_busy_ferry(socket, ctx);
    co_await lingering_close(socket);
}

} // namespace ferry::server
