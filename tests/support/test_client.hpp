// A deliberately simple blocking Ferry client for tests: plain POSIX sockets, every wait bounded
// (a hung server fails the test in seconds instead of hanging CI). Independent of the product's
// client, so server tests do not trust the code they help test.
#pragma once

#include "support/protocol_helpers.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <span>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

namespace ferry::test {

/// The connection ended or timed out where the test expected more.
struct connection_ended : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class test_client {
public:
    /// Adopts a connected socket.
    explicit test_client(int fd, std::chrono::milliseconds limit = std::chrono::seconds(20))
        : fd_(fd), limit_(limit) {}
    /// Connects to 127.0.0.1:port (or ::1 when v6).
    static test_client connect(std::uint16_t port, bool v6 = false) {
        int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            throw std::runtime_error("socket failed");
        int rc = 0;
        if (v6) {
            sockaddr_in6 a{};
            a.sin6_family = AF_INET6;
            a.sin6_port = htons(port);
            a.sin6_addr = in6addr_loopback;
            rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        } else {
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        }
        if (rc != 0) {
            ::close(fd);
            throw std::runtime_error(std::string{"connect failed: "} + std::strerror(errno));
        }
        return test_client{fd};
    }
    test_client(test_client&& o) noexcept
        : fd_(std::exchange(o.fd_, -1)), limit_(o.limit_), in_(std::move(o.in_)) {}
    test_client(const test_client&) = delete;
    test_client& operator=(const test_client&) = delete;
    ~test_client() { close(); }

    int fd() const noexcept { return fd_; }
    void close() noexcept {
        if (fd_ >= 0)
            ::close(std::exchange(fd_, -1));
    }
    /// Sets a small receive buffer (before reading), so the server blocks sooner.
    void set_receive_buffer(int size) {
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }

    void send_raw(std::span<const std::byte> b) {
        std::size_t done = 0;
        while (done < b.size()) {
            const ssize_t n = ::send(fd_, b.data() + done, b.size() - done, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                throw connection_ended(std::string{"send failed: "} + std::strerror(errno));
            done += static_cast<std::size_t>(n);
        }
    }
    template <class Message>
    void send(const Message& m) {
        send_raw(encode_exact(m));
    }

    /// The next frame, decoded. Throws connection_ended on EOF or timeout.
    decoded read_frame() {
        for (;;) {
            auto r = fp::decode_frame(in_);
            if (r.state == fp::decode_result::kind::error)
                throw std::runtime_error("server sent a bad frame: " + r.error.message());
            if (r.state == fp::decode_result::kind::frame) {
                auto d = decode_any(r.value);
                in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(r.value.size));
                return d;
            }
            fill(r.need - in_.size());
        }
    }
    template <class Message>
    Message read() {
        auto d = read_frame();
        if (d.error)
            throw std::runtime_error("server sent an undecodable frame: " + d.error.message());
        if (auto* m = std::get_if<Message>(&d.message))
            return *m;
        if (auto* e = std::get_if<fp::error_reply>(&d.message))
            throw std::runtime_error("server answered ERROR " +
                                     std::string{fp::status_text(e->code)} + ": " + e->message);
        throw std::runtime_error("server sent an unexpected frame type");
    }
    /// Exactly n raw body bytes.
    std::string read_body(std::uint64_t n) {
        std::string out;
        out.reserve(static_cast<std::size_t>(n));
        while (out.size() < n) {
            if (in_.empty())
                fill(static_cast<std::size_t>(std::min<std::uint64_t>(n - out.size(), 1 << 20)));
            const auto take =
                std::min<std::size_t>(in_.size(), static_cast<std::size_t>(n - out.size()));
            out.append(reinterpret_cast<const char*>(in_.data()), take);
            in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(take));
        }
        return out;
    }

    /// A whole GET: header, body, trailer. Throws if the answer is an ERROR.
    struct get_result {
        fp::get_header header;
        std::string body;
        fp::status trailer;
    };
    get_result get(const std::string& path, std::uint64_t offset = 0,
                   std::uint64_t length = fp::to_end) {
        send(fp::get_request{path, offset, length, std::nullopt});
        return read_get();
    }
    get_result read_get() {
        get_result r;
        r.header = read<fp::get_header>();
        r.body = read_body(r.header.length);
        r.trailer = read<fp::get_trailer>().code;
        return r;
    }
    /// Expects an ERROR and returns it.
    fp::error_reply read_error() {
        auto d = read_frame();
        if (auto* e = std::get_if<fp::error_reply>(&d.message); e && !d.error)
            return *e;
        throw std::runtime_error("expected an ERROR frame");
    }
    /// True once the server has closed the connection (reads and discards until EOF).
    bool wait_closed() { return wait_ended() == "eof"; }
    /// Reads and discards until the connection ends; how it ended: "eof", "reset", "timeout"...
    std::string wait_ended() {
        try {
            for (;;) {
                in_.clear();
                fill(1);
            }
        } catch (const connection_ended& e) {
            return e.what();
        }
    }

private:
    /// Reads at least `at_least` more bytes into in_, or throws connection_ended.
    void fill(std::size_t at_least) {
        const auto deadline = std::chrono::steady_clock::now() + limit_;
        std::size_t got = 0;
        std::byte buf[65536];
        while (got < at_least) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                throw connection_ended("timeout");
            pollfd p{fd_, POLLIN, 0};
            const int pr = ::poll(&p, 1, static_cast<int>(left.count()));
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr == 0)
                throw connection_ended("timeout");
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0)
                throw connection_ended("eof");
            if (n < 0)
                throw connection_ended(errno == ECONNRESET ? "reset" : std::strerror(errno));
            in_.insert(in_.end(), buf, buf + n);
            got += static_cast<std::size_t>(n);
        }
    }

    int fd_;
    std::chrono::milliseconds limit_;
    bytes in_;
};

/// Everything a peer sends until it closes (or 20 s pass: then "<timeout>" ends the text).
inline std::string read_until_closed(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20000) <= 0)
            return out + "<timeout>";
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return out;
        out.append(buf, static_cast<std::size_t>(n));
    }
}

/// An HTTP/1.1 answer: status 0 if none came.
struct http_answer {
    int status = 0;
    std::string head;
    std::string body;
};

/// One HTTP/1.1 request to 127.0.0.1:port, answered and closed (Connection: close).
inline http_answer http(std::uint16_t port, const std::string& method, const std::string& target) {
    auto c = test_client::connect(port);
    const auto request =
        method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    c.send_raw(std::as_bytes(std::span{request}));
    const auto all = read_until_closed(c.fd());
    http_answer a;
    const auto end = all.find("\r\n\r\n");
    if (all.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos)
        return a;
    a.status = std::stoi(all.substr(9, 3));
    a.head = all.substr(0, end);
    a.body = all.substr(end + 4);
    return a;
}

/// The line the agent-check responder on 127.0.0.1:port writes before it closes.
inline std::string agent_check(std::uint16_t port) {
    auto c = test_client::connect(port);
    // HAProxy may send a line of its own (agent-send): the answer must still arrive whole.
    const std::string hello = "hello\n";
    c.send_raw(std::as_bytes(std::span{hello}));
    return read_until_closed(c.fd());
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller retries if it is taken since).
inline std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("cannot find a free port");
    ::close(fd);
    return ntohs(a.sin_port);
}

} // namespace ferry::test
