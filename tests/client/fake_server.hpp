// fake_server: a scripted Ferry server on 127.0.0.1:0 for the client's tests: it decodes each
// request and sends back whatever bytes the test's handler returns (hostile texts, impossible
// sizes, or nothing at all). Blocking sockets, one thread per connection; stopped and joined
// when destroyed.
#pragma once

#include "support/protocol_helpers.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <functional>
#include <mutex>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace ferry::test {

/// A listener on 127.0.0.1:0 that hands each connection to `serve` on a thread of its own;
/// stops accepting, wakes every connection and joins the threads when destroyed.
class fake_listener {
public:
    explicit fake_listener(std::function<void(int fd)> serve) : serve_(std::move(serve)) {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
            ::listen(listener_, 16) != 0 ||
            ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("fake_listener: cannot listen");
        port_ = ntohs(a.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    fake_listener(const fake_listener&) = delete;
    fake_listener& operator=(const fake_listener&) = delete;
    ~fake_listener() {
        stopping_ = true;
        ::shutdown(listener_, SHUT_RDWR); // wakes accept()
        acceptor_.join();
        {
            std::lock_guard lock{mutex_};
            for (int fd : connections_)
                ::shutdown(fd, SHUT_RDWR); // wakes recv()
        }
        for (auto& t : threads_)
            t.join();
        for (int fd : connections_)
            ::close(fd);
        ::close(listener_);
    }

    std::uint16_t port() const noexcept { return port_; }

private:
    void accept_loop() {
        while (!stopping_) {
            const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0)
                return;
            std::lock_guard lock{mutex_};
            connections_.push_back(fd);
            threads_.emplace_back([this, fd] { serve_(fd); });
        }
    }

    std::function<void(int fd)> serve_;
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::thread acceptor_;
    std::mutex mutex_;
    std::vector<int> connections_;
    std::vector<std::thread> threads_;
};

class fake_server {
public:
    /// The reply to one request: bytes to send (several frames, a body), or none (no answer).
    using handler = std::function<bytes(const any_message& request)>;

    explicit fake_server(handler h) : handler_(std::move(h)) {}

    std::uint16_t port() const noexcept { return listener_.port(); }
    std::string url(const std::string& path) const {
        return "ferry://127.0.0.1:" + std::to_string(port()) + "/" + path;
    }

private:
    void serve(int fd) {
        bytes in;
        std::byte chunk[4096];
        for (;;) {
            auto r = fp::decode_frame(in);
            if (r.state == fp::decode_result::kind::error)
                return;
            if (r.state == fp::decode_result::kind::frame) {
                const auto request = decode_any(r.value);
                const auto size = r.value.size;
                const auto reply = handler_(request.message);
                in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(size));
                for (std::size_t sent = 0; sent < reply.size();) {
                    const auto n =
                        ::send(fd, reply.data() + sent, reply.size() - sent, MSG_NOSIGNAL);
                    if (n <= 0)
                        return;
                    sent += static_cast<std::size_t>(n);
                }
                continue;
            }
            const auto n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n <= 0)
                return;
            in.insert(in.end(), chunk, chunk + n);
        }
    }

    handler handler_;
    fake_listener listener_{[this](int fd) { serve(fd); }}; ///< last: joined before the rest goes
};

/// Frames one after the other.
inline bytes concat(std::initializer_list<bytes> parts) {
    bytes out;
    for (const auto& p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

} // namespace ferry::test
