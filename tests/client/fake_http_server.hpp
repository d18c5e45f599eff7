// fake_http_server: a scripted HTTP/1.1 server on 127.0.0.1:0 for the client's tests, in the
// style of fake_server: it reads each request head and sends back whatever bytes the test's
// handler returns (a lying Content-Range, a body past its length, chunked framing, hostile
// header values), then keeps the connection or closes it. Blocking sockets, one thread per
// connection; stopped and joined when destroyed.
#pragma once

#include <arpa/inet.h>
#include <atomic>
#include <functional>
#include <mutex>
#include <netinet/in.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace ferry::test {

class fake_http_server {
public:
    struct reply {
        std::string bytes;  ///< sent in one write (head and body together)
        bool close = false; ///< close the connection after it
    };
    /// The reply to one request head ("GET /f HTTP/1.1\r\nHost: ...\r\n\r\n").
    using handler = std::function<reply(const std::string& head)>;

    explicit fake_http_server(handler h) : handler_(std::move(h)) {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
            ::listen(listener_, 16) != 0 ||
            ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("fake_http_server: cannot listen");
        port_ = ntohs(a.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    fake_http_server(const fake_http_server&) = delete;
    fake_http_server& operator=(const fake_http_server&) = delete;
    ~fake_http_server() {
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

    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + "/" + path;
    }

private:
    void accept_loop() {
        while (!stopping_) {
            const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0)
                return;
            std::lock_guard lock{mutex_};
            connections_.push_back(fd);
            threads_.emplace_back([this, fd] { serve(fd); });
        }
    }

    void serve(int fd) {
        std::string in;
        char chunk[4096];
        for (;;) {
            if (const auto end = in.find("\r\n\r\n"); end != std::string::npos) {
                const auto r = handler_(in.substr(0, end + 4));
                in.erase(0, end + 4);
                for (std::size_t sent = 0; sent < r.bytes.size();) {
                    const auto n =
                        ::send(fd, r.bytes.data() + sent, r.bytes.size() - sent, MSG_NOSIGNAL);
                    if (n <= 0)
                        return;
                    sent += static_cast<std::size_t>(n);
                }
                if (r.close) {
                    ::shutdown(fd, SHUT_RDWR);
                    return;
                }
                continue;
            }
            const auto n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n <= 0)
                return;
            in.append(chunk, static_cast<std::size_t>(n));
        }
    }

    handler handler_;
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::thread acceptor_;
    std::mutex mutex_;
    std::vector<int> connections_;
    std::vector<std::thread> threads_;
};

} // namespace ferry::test
