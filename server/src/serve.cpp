#include "serve.hpp"

#include "ferry/protocol/text.hpp"

#include "ferry/transport/with_timeout.hpp"

#include <array>
#include <nlohmann/json.hpp>
#include <spdlog/fmt/chrono.h>
#include <ctime>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ferry::server {

namespace fp = ferry::protocol;
using transport::clock;
using transport::error_code;
using transport::use_nothrow;
using transport::with_timeout;

void record_request(const session_context& ctx, const connection& c, const access_record& r) {
    const auto took = clock::now() - r.started;
    ctx.metrics.request(r.protocol, r.kind, r.status_index, r.body_bytes, took);
    if (!ctx.access.should_log(spdlog::level::info)) // no formatting when the log is off
        return;
    if (ctx.config->access_format == access_log_format::json) {
        ctx.access.info(access_json(c, r, std::chrono::system_clock::now()));
        return;
    }
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
    const auto range = r.range ? fmt::format("{}-{}/{}", r.range->first, r.range->end, r.range->size)
                               : std::string{"-"};
    ctx.access.info("[conn {}] {} {} {} \"{}\" {} {} {} {:.3f}ms", c.id, peer_of(c), r.version,
                    fp::escape_for_log(r.method), fp::escape_for_log(r.path), range, r.count,
                    r.status, static_cast<double>(micros) / 1000.0);
}

std::string access_json(const connection& c, const access_record& r,
                        std::chrono::system_clock::time_point now) {
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                            transport::clock::now() - r.started)
                            .count();
    const auto since_epoch =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    const auto seconds = static_cast<std::time_t>(since_epoch / 1000);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    nlohmann::ordered_json line{
        {"time", fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", utc, since_epoch % 1000)},
        {"conn", c.id},
        {"client", peer_of(c)},
        {"protocol", r.version},
        {"method", r.method},
        {"path", r.path},
        {"range", r.range ? nlohmann::ordered_json(fmt::format("{}-{}/{}", r.range->first, r.range->end,
                                                       r.range->size))
                          : nlohmann::ordered_json(nullptr)},
        {"bytes", r.count},
        {"status", r.status},
        {"duration_ms", static_cast<double>(micros) / 1000.0},
    };
    // ASCII only: every control and non-ASCII character is a \u escape, and bytes that are not
    // UTF-8 become U+FFFD, so a line is always valid JSON and never a terminal sequence.
    return line.dump(-1, ' ', true, nlohmann::ordered_json::error_handler_t::replace);
}

std::string peer_of(const connection& c) {
    return peer_name(c.slot.address(), c.port);
}

std::string describe(const error_code& ec) {
    if (ec == asio::error::eof)
        return "closed by peer";
    if (ec == asio::error::timed_out)
        return "request timeout";
    if (ec == asio::error::operation_aborted)
        return "cancelled";
    return ec.message();
}

asio::awaitable<void> lingering_close(stream_socket& socket) {
    error_code ignored;
    socket.shutdown(stream_socket::shutdown_send, ignored);
    std::array<std::byte, 512> sink;
    std::size_t discarded = 0;
    const auto deadline = clock::now() + std::chrono::seconds(1);
    while (discarded < 64 * 1024) {
        const auto left = deadline - clock::now();
        if (left <= clock::duration::zero())
            break;
        auto [ec, n] =
            co_await with_timeout(socket.async_read_some(asio::buffer(sink), asio::deferred), left);
        if (ec)
            break;
        discarded += n;
    }
    socket.close(ignored);
}

tcp_cork::tcp_cork(stream_socket& s) : fd_(s.native_handle()) {
    const int on = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

tcp_cork::~tcp_cork() {
    const int off = 0;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
}

asio::awaitable<void> yield_to_others() {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

std::shared_ptr<const std::string> keep_small_file(const session_context& ctx,
                                                   const resolved& file) {
    const auto size = static_cast<std::uint64_t>(file.st.st_size);
    const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    if (size > small_body || ctx.config->small_file_cache == 0 ||
        !ctx.small_files.settled(file.st, now_ns))
        return nullptr;
    auto bytes = std::make_shared<std::string>(size, '\0');
    struct stat after {};
    if (read_at(file.fd.get(), std::as_writable_bytes(std::span{*bytes}), 0) !=
            static_cast<std::int64_t>(size) ||
        ::fstat(file.fd.get(), &after) != 0 || make_identity(after) != make_identity(file.st) ||
        after.st_ctim.tv_sec != file.st.st_ctim.tv_sec ||
        after.st_ctim.tv_nsec != file.st.st_ctim.tv_nsec)
        return nullptr; // changed while read: served from the descriptor, as it is
    std::shared_ptr<const std::string> kept = std::move(bytes);
    ctx.small_files.offer(file.st, kept, now_ns);
    return kept;
}

std::int64_t read_at(int fd, std::span<std::byte> out, std::uint64_t offset) noexcept {
    std::size_t got = 0;
    while (got < out.size()) {
        const auto n =
            ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(offset + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        got += static_cast<std::size_t>(n);
    }
    return static_cast<std::int64_t>(got);
}

asio::awaitable<void> peer_gone(stream_socket& socket) {
    for (;;) {
        auto [ec] = co_await socket.async_wait(stream_socket::wait_read, use_nothrow);
        if (ec)
            co_return; // cancelled: the answer is ready
        char next = 0;
        const auto n = ::recv(socket.native_handle(), &next, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            co_return;
        if (n > 0)
            break;
    }
    asio::steady_timer never{socket.get_executor(), clock::time_point::max()};
    co_await never.async_wait(use_nothrow);
}

asio::awaitable<digest_outcome> digest_for_peer(stream_socket& socket, const session_context& ctx,
                                                int fd, const fp::file_identity& id) {
    using namespace asio::experimental::awaitable_operators;
    // Named locals: GCC 12 destroys some temporaries of a co_await expression twice.
    auto digesting = ctx.digests.digest(fd, id);
    auto watching = peer_gone(socket);
    auto first = co_await (std::move(digesting) || std::move(watching));
    if (first.index() == 0)
        co_return std::get<0>(std::move(first));
    co_return digest_outcome{asio::error::operation_aborted, {}};
}

dir_ptr open_dir_stream(resolved& dir) {
    dir_ptr d{::fdopendir(dir.fd.get()), [](DIR* p) {
                  if (p)
                      ::closedir(p);
              }};
    if (d)
        (void)dir.fd.release(); // the DIR owns the descriptor now
    return d;
}

std::optional<fp::list_entry> next_listed(DIR* dir, const path_resolver& resolver, int& error) {
    for (;;) {
        errno = 0;
        const dirent* d = ::readdir(dir);
        if (d == nullptr) {
            error = errno;
            return std::nullopt;
        }
        const std::string_view name{d->d_name};
        if (name == "." || name == ".." || !fp::is_valid_utf8(name))
            continue; // non-UTF-8 names could not be requested anyway (docs/protocol.md 6)
        if (!resolver.lists(name))
            continue; // nor could dotfiles under --dotfiles=deny
        struct stat st {};
        if (::fstatat(::dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; // removed since readdir
        return fp::list_entry{std::string{name}, kind_of(st),
                              static_cast<std::uint64_t>(st.st_size), mtime_ns(st)};
    }
}

} // namespace ferry::server
