// nginx_process: a real nginx serving a directory on 127.0.0.1, for ferry's HTTP tests. A temp
// conf (autoindex as JSON, no access log, pid and logs in its own temp dir), a port picked by
// binding 0 and closing it (retried when nginx then fails to bind it), ready once it accepts a
// connection; stopped by its PID when destroyed. Tests skip when /usr/sbin/nginx is missing.
#pragma once

#include "support/process.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace ferry::test {

inline constexpr const char* nginx_binary = "/usr/sbin/nginx";

inline bool nginx_available() {
    return ::access(nginx_binary, X_OK) == 0;
}

class nginx_process {
public:
    /// Serves `root`; `extra` is added to the server block (e.g. "limit_rate 1m;").
    explicit nginx_process(const std::filesystem::path& root, const std::string& extra = "") {
        for (int attempt = 0; attempt < 5; ++attempt) {
            port_ = free_port();
            write_file(dir_ / "nginx.conf", conf(root, extra));
            process_.emplace(std::vector<std::string>{nginx_binary, "-e",
                                                      (dir_ / "error.log").string(), "-c",
                                                      (dir_ / "nginx.conf").string(), "-p",
                                                      dir_.path().string()},
                             dir_ / "out.log");
            if (wait_ready())
                return;
            process_.reset(); // killed by its PID
            if (log().find("Address already in use") == std::string::npos)
                break; // not a port taken meanwhile: retrying would not help
        }
        throw std::runtime_error("nginx did not start: " + log());
    }
    nginx_process(const nginx_process&) = delete;
    nginx_process& operator=(const nginx_process&) = delete;
    ~nginx_process() {
        if (::testing::Test::HasFailure())
            std::fprintf(stderr, "--- nginx log ---\n%s--- end of nginx log ---\n", log().c_str());
        if (process_) {
            process_->signal(SIGQUIT); // graceful: the master stops its workers
            if (!process_->wait_exit(std::chrono::seconds(10)))
                process_->signal(SIGKILL);
        }
    }

    std::uint16_t port() const noexcept { return port_; }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + "/" + path;
    }
    std::string log() const {
        std::string s;
        for (const char* f : {"out.log", "error.log"})
            if (std::filesystem::exists(dir_ / f))
                s += read_file(dir_ / f);
        return s;
    }

private:
    static std::uint16_t free_port() {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("cannot find a free port");
        ::close(fd);
        return ntohs(a.sin_port);
    }

    std::string conf(const std::filesystem::path& root, const std::string& extra) const {
        const auto d = dir_.path().string();
        // As root, nginx's workers would switch to nobody, who cannot read a 0700 temp dir.
        return std::string{::geteuid() == 0 ? "user root;\n" : ""} +
               "daemon off;\nworker_processes 2;\npid " + d + "/nginx.pid;\nerror_log " + d +
               "/error.log;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n"
               "  client_body_temp_path " +
               d + "/tmp;\n  proxy_temp_path " + d +
               "/tmp;\n"
               "  fastcgi_temp_path " +
               d + "/tmp;\n  uwsgi_temp_path " + d +
               "/tmp;\n"
               "  scgi_temp_path " +
               d + "/tmp;\n  server {\n    listen 127.0.0.1:" + std::to_string(port_) +
               ";\n    root " + root.string() +
               ";\n    autoindex on;\n    autoindex_format json;\n    " + extra + "\n  }\n}\n";
    }

    /// True once nginx accepts a connection; false if it exited (a bind failure).
    bool wait_ready() {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (std::chrono::steady_clock::now() < deadline) {
            if (process_->wait_exit(std::chrono::milliseconds(0)))
                return false;
            const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(port_);
            const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
            ::close(fd);
            if (up)
                return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10)); // polling for the port
        }
        return false;
    }

    temp_dir dir_;
    std::uint16_t port_ = 0;
    std::optional<child_process> process_;
};

} // namespace ferry::test
