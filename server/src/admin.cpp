#include "ferry/server/admin.hpp"

#include "ferry/protocol/text.hpp"
#include "ferry/transport/asio.hpp"
#include "ferry/transport/with_timeout.hpp"
#include "accept_next.hpp"
#include "task_done.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <chrono>

namespace ferry::server {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using transport::use_nothrow;

namespace {

/// How long an admin client may take to send a request, or to read an answer, and how long an
/// idle keep-alive connection is kept.
constexpr auto admin_timeout = std::chrono::seconds(10);

struct answer {
    bhttp::status status;
    std::string content_type;
    std::string body;
    std::string_view allow = "GET, HEAD"; ///< the methods of the path, for a 405
};

constexpr std::string_view text = "text/plain; charset=utf-8";

answer route(bhttp::verb method, std::string_view target, const admin_listener::probes& probes) {
    // The absolute form (`GET http://host:port/metrics`, from a proxy) names the same path.
    for (std::string_view scheme : {"http://", "https://"})
        if (target.substr(0, scheme.size()) == scheme) {
            const auto slash = target.find('/', scheme.size());
            target = slash == std::string_view::npos ? "/" : target.substr(slash);
        }
    const auto path = target.substr(0, target.find('?'));
    const bool get = method == bhttp::verb::get || method == bhttp::verb::head;
    if (path == "/maint") {
        if (method == bhttp::verb::post || method == bhttp::verb::delete_) {
            probes.set_maintenance(method == bhttp::verb::post);
            return {bhttp::status::ok, std::string{text},
                    method == bhttp::verb::post ? "maintenance on\n" : "maintenance off\n"};
        }
        if (get)
            return {bhttp::status::ok, std::string{text}, probes.maintenance() ? "on\n" : "off\n"};
        return {bhttp::status::method_not_allowed, std::string{text},
                "method not allowed: GET, HEAD, POST or DELETE\n", "GET, HEAD, POST, DELETE"};
    }
    if (!get)
        return {bhttp::status::method_not_allowed, std::string{text},
                "method not allowed: GET or HEAD\n"};
    if (path == "/metrics")
        return {bhttp::status::ok, "text/plain; version=0.0.4; charset=utf-8", probes.metrics()};
    if (path == "/healthz")
        return {bhttp::status::ok, std::string{text}, "ok\n"};
    if (path == "/readyz") {
        if (auto why = probes.unready())
            return {bhttp::status::service_unavailable, std::string{text}, *why + "\n"};
        return {bhttp::status::ok, std::string{text}, "ready\n"};
    }
    return {bhttp::status::not_found, std::string{text},
            "not found: this is ferryd's admin listener (/metrics, /healthz, /readyz, /maint)\n"};
}

} // namespace

admin_listener::admin_listener(asio::io_context& ctx, asio::ip::tcp::acceptor acceptor, probes p,
                               spdlog::logger& log)
    : ctx_(ctx), acceptor_(std::move(acceptor)), probes_(std::move(p)), log_(log) {}

void admin_listener::start() {
    asio::co_spawn(ctx_, accept_loop(), task_done{"admin listener", &log_});
}

void admin_listener::stop() {
    transport::error_code ignored;
    acceptor_.close(ignored);
    for (auto& [id, c] : open_)
        c.socket->close(ignored);
}

bool admin_listener::admit(const asio::ip::address& peer) {
    const auto mine = static_cast<std::size_t>(std::count_if(
        open_.begin(), open_.end(), [&](const auto& o) { return o.second.peer == peer; }));
    if (mine < max_per_address && open_.size() < max_connections)
        return true;
    // Full, for this address or in all: the oldest connection (of this address, if that is
    // what is full) that waits between two requests makes room.
    const bool own = mine >= max_per_address;
    const auto idle = std::find_if(open_.begin(), open_.end(), [&](const auto& o) {
        return o.second.between_requests && (!own || o.second.peer == peer);
    });
    if (idle == open_.end())
        return false;
    transport::error_code ignored;
    idle->second.socket->close(ignored); // its coroutine ends and leaves open_
    idle->second.between_requests = false;
    idle->second.peer = asio::ip::address{}; // no longer counted as anyone's
    return true;
}

asio::awaitable<void> admin_listener::accept_loop() {
    for (;;) {
        auto accepted = co_await accept_next(acceptor_, acceptor_.get_executor(), log_, "admin listener: ");
        if (!accepted || !acceptor_.is_open())
            co_return; // (stopped: nothing more is answered)
        auto& socket = *accepted;
        transport::error_code ignored;
        const auto peer = socket.remote_endpoint(ignored).address();
        if (!admit(peer)) {
            socket.close(ignored);
            continue;
        }
        asio::co_spawn(ctx_, serve(std::move(socket), ++next_id_),
                       task_done{"admin connection", &log_});
    }
}

asio::awaitable<void> admin_listener::serve(asio::ip::tcp::socket socket, std::uint64_t id) {
    transport::error_code ignored;
    const auto peer = socket.remote_endpoint(ignored).address();
    beast::tcp_stream stream{std::move(socket)};
    auto& self = open_.emplace(id, open_connection{&stream.socket(), peer}).first->second;
    beast::flat_buffer buffer{16 * 1024};
    for (;;) {
        bhttp::request_parser<bhttp::empty_body> parser;
        parser.header_limit(8 * 1024);
        stream.expires_after(admin_timeout);
        if (buffer.size() == 0) { // nothing pipelined: wait for the next request's first byte
            self.between_requests = true;
            auto [wec] = co_await transport::with_timeout(
                stream.socket().async_wait(asio::socket_base::wait_read, asio::deferred),
                admin_timeout);
            self.between_requests = false;
            if (wec || !stream.socket().is_open())
                break;
        }
        auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, use_nothrow);
        if (ec) {
            if (ec != bhttp::error::end_of_stream && ec != asio::error::eof &&
                ec != beast::error::timeout && ec != asio::error::operation_aborted &&
                stream.socket().is_open()) {
                // A malformed request gets a 400, and the connection closes.
                bhttp::response<bhttp::string_body> bad{bhttp::status::bad_request, 11};
                bad.set(bhttp::field::content_type, "text/plain; charset=utf-8");
                bad.set(bhttp::field::connection, "close");
                bad.body() = "bad request: " + protocol::escape_for_log(ec.message()) + "\n";
                bad.prepare_payload();
                stream.expires_after(admin_timeout);
                co_await bhttp::async_write(stream, bad, use_nothrow);
            }
            break;
        }
        const auto& req = parser.get();
        const bool head = req.method() == bhttp::verb::head;
        auto a = route(req.method(), {req.target().data(), req.target().size()}, probes_);
        bhttp::response<bhttp::string_body> res{a.status, req.version()};
        res.set(bhttp::field::server, "ferryd/" FERRY_VERSION);
        res.set(bhttp::field::content_type, a.content_type);
        res.set(bhttp::field::cache_control, "no-store");
        if (a.status == bhttp::status::method_not_allowed)
            res.set(bhttp::field::allow, a.allow);
        res.body() = std::move(a.body);
        res.prepare_payload(); // Content-Length of the body, for HEAD too
        if (head)
            res.body().clear();
        res.keep_alive(req.keep_alive());
        stream.expires_after(admin_timeout);
        bhttp::serializer<false, bhttp::string_body> sr{res};
        if (head)
            sr.split(true);
        auto [wec, written] =
            head ? co_await bhttp::async_write_header(stream, sr, use_nothrow)
                 : co_await bhttp::async_write(stream, sr, use_nothrow);
        if (wec || !res.keep_alive())
            break;
    }
    // No timer of the stream may outlive it: a pending one would hold the io_context (and the
    // server's exit) until it expired.
    stream.expires_never();
    stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
    stream.socket().close(ignored);
    open_.erase(id);
}

} // namespace ferry::server
