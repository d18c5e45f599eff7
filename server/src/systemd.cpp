#include "ferry/server/systemd.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <spdlog/pattern_formatter.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <system_error>
#include <systemd/sd-daemon.h>
#include <unistd.h>

namespace ferry::server {

using transport::use_nothrow;

inherited_sockets take_inherited_sockets() {
    const char* passed = std::getenv("LISTEN_FDS");
    const std::string count = passed ? passed : "";
    char** names = nullptr;
    const int n = ::sd_listen_fds_with_names(1, &names);
    if (n < 0) // e.g. EBADF: a descriptor LISTEN_FDS counts is not open
        throw std::system_error(-n, std::generic_category(),
                                "cannot take the inherited sockets (LISTEN_FDS=" + count + ")");
    inherited_sockets sockets;
    std::string bad;
    for (int i = 0; i < n; ++i) {
        const int fd = SD_LISTEN_FDS_START + i;
        const std::string name = names ? names[i] : "unknown";
        if (bad.empty() && ::sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0)
            bad = "inherited descriptor " + std::to_string(fd) + " (" + name +
                  ") is not a listening TCP socket: check ListenStream= in the socket unit";
        if (name == "admin")
            sockets.admin = fd;
        else if (name == "agent")
            sockets.agent = fd;
        else
            sockets.data.push_back(fd);
    }
    if (names) {
        for (int i = 0; i < n; ++i)
            std::free(names[i]);
        std::free(names);
    }
    if (!bad.empty())
        throw std::runtime_error(bad);
    return sockets;
}

asio::ip::tcp::acceptor adopt_listener(asio::io_context& ctx, int fd) {
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0)
        throw std::system_error(errno, std::generic_category(),
                                "inherited descriptor " + std::to_string(fd));
    const int copy = ::dup(fd);
    if (copy < 0)
        throw std::system_error(errno, std::generic_category(),
                                "cannot duplicate inherited descriptor " + std::to_string(fd));
    ::fcntl(copy, F_SETFD, FD_CLOEXEC);
    asio::ip::tcp::acceptor a{ctx};
    transport::error_code ec;
    a.assign(local.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), copy, ec);
    if (ec) {
        ::close(copy);
        throw std::system_error(ec, "inherited descriptor " + std::to_string(fd));
    }
    return a;
}

namespace {

void notify(const std::string& state) {
    ::sd_notify(0, state.c_str()); // < 0: cannot tell; 0: not under systemd. Neither is fatal.
}

} // namespace

void notify_ready(const std::string& status) {
    notify("READY=1\nSTATUS=" + status);
}

void notify_stopping(const std::string& status) {
    notify("STOPPING=1\nSTATUS=" + status);
}

void notify_status(const std::string& status) {
    notify("STATUS=" + status);
}

asio::awaitable<void> report_drain(const connection_limits& limits) {
    asio::steady_timer tick{co_await asio::this_coro::executor};
    for (;;) {
        tick.expires_after(std::chrono::seconds(1));
        if (auto [ec] = co_await tick.async_wait(use_nothrow); ec)
            co_return; // the drain is over
        notify_status("draining: " + std::to_string(limits.active()) + " connection(s) left");
    }
}

bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    struct stat st {};
    if (!stream || ::fstat(STDERR_FILENO, &st) != 0)
        return false;
    unsigned long long dev = 0, ino = 0;
    char end = 0;
    return std::sscanf(stream, "%llu:%llu%c", &dev, &ino, &end) == 2 && dev == st.st_dev &&
           ino == st.st_ino;
}

namespace {

/// `%*`: the line's syslog priority prefix, `<N>` (sd-daemon.h's SD_ERR and friends).
class priority_flag : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        const char* prefix = SD_DEBUG;
        switch (msg.level) {
        case spdlog::level::critical:
            prefix = SD_CRIT;
            break;
        case spdlog::level::err:
            prefix = SD_ERR;
            break;
        case spdlog::level::warn:
            prefix = SD_WARNING;
            break;
        case spdlog::level::info:
            prefix = SD_INFO;
            break;
        default: // trace, debug
            break;
        }
        dest.append(prefix, prefix + std::strlen(prefix));
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<priority_flag>();
    }
};

} // namespace

std::unique_ptr<spdlog::formatter> journal_formatter() {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    f->add_flag<priority_flag>('*').set_pattern("%*[%n] %v");
    return f;
}

} // namespace ferry::server
