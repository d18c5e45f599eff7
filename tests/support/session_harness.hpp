// Runs ferryd sessions in-process over socket pairs: the server side on an io_context thread,
// the test side a blocking test_client. No ports, no processes.
#pragma once

#include "ferry/server/digest_service.hpp"
#include "ferry/server/path_resolver.hpp"
#include "ferry/server/session.hpp"
#include "support/temp_dir.hpp"
#include "support/test_client.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <csignal>
#include <future>
#include <gtest/gtest.h>
#include <memory>
#include <mutex>
#include <optional>
#include <spdlog/sinks/base_sink.h>
#include <string_view>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <thread>

namespace ferry::test {

namespace fs = ferry::server;
namespace asio = boost::asio;

/// Short timeouts so timeout tests finish quickly; each test may change them before start().
inline fs::server_config test_config(const std::filesystem::path& root) {
    fs::server_config c;
    c.root = root;
    c.request_timeout = std::chrono::milliseconds(2000);
    c.progress_timeout = std::chrono::milliseconds(2000);
    c.idle_timeout = std::chrono::milliseconds(2000);
    c.digest_threads = 2;
    return c;
}

/// Fails the test when a session logs an error: a session that threw.
class failing_sink : public spdlog::sinks::base_sink<std::mutex> {
protected:
    void sink_it_(const spdlog::details::log_msg& m) override {
        if (m.level >= spdlog::level::err)
            ADD_FAILURE() << "a session logged an error: "
                          << std::string_view{m.payload.data(), m.payload.size()};
    }
    void flush_() override {}
};

class session_harness {
public:
    temp_dir root;
    fs::server_config config = test_config(root.path());
    /// How old a small file's version must be before the small-file cache keeps it.
    std::chrono::nanoseconds small_file_settle = std::chrono::seconds(3);

    /// Starts the io_context thread (after the test has adjusted `config`).
    void start() {
        // As in ferryd's main: sendfile to a closed peer must give EPIPE, not kill the tests.
        std::signal(SIGPIPE, SIG_IGN);
        resolver_ =
            std::make_unique<fs::path_resolver>(config.root, config.symlinks, config.dotfiles);
        digests_ = std::make_unique<fs::digest_service>(config.digest_threads,
                                                        config.digest_cache_entries);
        limits_ = std::make_unique<fs::connection_limits>(config.max_connections,
                                                          config.max_connections_per_ip);
        small_files_ =
            std::make_unique<fs::small_file_cache>(config.small_file_cache, small_file_settle);
        listings_ = std::make_unique<fs::listing_limit>(config.max_listings);
        session_ctx_.emplace(fs::session_context{&config, *resolver_, *digests_, *small_files_,
                                                 *log_, *log_, *listings_, metrics_});
        thread_ = std::thread([this] { ctx_.run(); });
    }

    ~session_harness() {
        if (!thread_.joinable())
            return;
        asio::post(ctx_, [this] { registry_.cancel_all(); });
        guard_.reset();
        auto done = std::async(std::launch::async, [this] { thread_.join(); });
        if (done.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
            ADD_FAILURE() << "sessions did not stop within 20 s of cancellation";
            ctx_.stop();
        }
        done.wait();
        digests_->join();
    }

    /// A new session; returns the client end.
    test_client connect() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            throw std::runtime_error("socketpair failed");
        const std::uint64_t id = ++next_id_;
        asio::post(ctx_, [this, fd = sv[0], id] {
            fs::stream_socket socket{ctx_, asio::generic::stream_protocol(AF_UNIX, 0), fd};
            fs::start_session(std::move(socket), id, 0,
                              fs::connection_slot{*limits_, asio::ip::address{}}, registry_,
                              *session_ctx_);
        });
        return test_client{sv[1]};
    }

    /// Runs `f` on the session thread and waits for it.
    template <class F>
    void on_server(F f) {
        std::promise<void> done;
        asio::post(ctx_, [&] {
            f();
            done.set_value();
        });
        done.get_future().wait();
    }
    fs::session_registry& registry() { return registry_; }
    fs::digest_service& digests() { return *digests_; }
    fs::small_file_cache& small_files() { return *small_files_; }
    fs::listing_limit& listings() { return *listings_; }
    std::size_t sessions() {
        std::size_t n = 0;
        on_server([&] { n = registry_.size(); });
        return n;
    }

private:
    asio::io_context ctx_{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(ctx_);
    std::unique_ptr<fs::path_resolver> resolver_;
    std::unique_ptr<fs::digest_service> digests_;
    std::unique_ptr<fs::small_file_cache> small_files_;
    std::unique_ptr<fs::connection_limits> limits_;
    std::unique_ptr<fs::listing_limit> listings_;
    fs::session_registry registry_{ctx_}; // its connections hold slots of limits_
    std::shared_ptr<spdlog::logger> log_ =
        std::make_shared<spdlog::logger>("test", std::make_shared<failing_sink>());
    fs::thread_metrics metrics_;
    std::optional<fs::session_context> session_ctx_;
    std::uint64_t next_id_ = 0;
    std::thread thread_;
};

} // namespace ferry::test
