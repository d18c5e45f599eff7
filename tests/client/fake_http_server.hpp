// fake_http_server: a scripted HTTP/1.1 server on 127.0.0.1:0 for the client's tests, in the
// style of fake_server: it reads each request head and sends back whatever bytes the test's
// handler returns (a lying Content-Range, a body past its length, chunked framing, hostile
// header values), then keeps the connection or closes it. Blocking sockets, one thread per
// connection (fake_listener); stopped and joined when destroyed.
#pragma once

#include "client/fake_server.hpp"

#include <string>

namespace ferry::test {

class fake_http_server {
public:
    struct reply {
        std::string bytes;  ///< sent in one write (head and body together)
        bool close = false; ///< close the connection after it
    };
    /// The reply to one request head ("GET /f HTTP/1.1\r\nHost: ...\r\n\r\n").
    using handler = std::function<reply(const std::string& head)>;

    explicit fake_http_server(handler h) : handler_(std::move(h)) {}

    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(listener_.port()) + "/" + path;
    }

private:
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
    fake_listener listener_{[this](int fd) { serve(fd); }}; ///< last: joined before the rest goes
};

} // namespace ferry::test
