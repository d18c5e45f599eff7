// digest_service: SHA-256 of files, computed off the I/O threads on a small worker pool, cached
// by file identity, and shared: concurrent requests for one file wait on one computation.
// The pool also runs other blocking work (directory listings, via offload()).
#pragma once

#include "ferry/protocol/messages.hpp"
#include "ferry/transport/asio.hpp"
#include "ferry/transport/sha256.hpp"

#include <atomic>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace ferry::server {

namespace asio = boost::asio;

/// A digest, or why there is none (ESTALE: the file changed while it was read; a read error).
using digest_outcome = transport::sha256_result;

class digest_service {
public:
    digest_service(unsigned threads, std::size_t cache_entries);
    digest_service(const digest_service&) = delete;
    digest_service& operator=(const digest_service&) = delete;
    ~digest_service();

    /// The SHA-256 of the open regular file `fd`, whose identity is `id` (the service reads a
    /// duplicate of `fd`; the caller may close its own at once). Completes on the caller's
    /// executor. If the file no longer matches `id` when reading ends, ec is
    /// `errc::stale_file_handle` and nothing is cached. Thread-safe.
    asio::awaitable<digest_outcome> digest(int fd, const protocol::file_identity& id);

    /// The pool for blocking work.
    asio::thread_pool& pool() noexcept { return pool_; }

    /// How many digests were computed (not served from the cache or shared).
    std::uint64_t computations() const noexcept { return computations_.load(); }

    /// Waits for running work to finish and stops the pool.
    void join();

private:
    using handler = asio::any_completion_handler<void(digest_outcome)>;
    struct waiter {
        handler h;
        asio::executor_work_guard<asio::any_io_executor> guard;
    };
    struct entry {
        std::optional<digest_outcome> result;
        std::vector<waiter> waiters;
    };

    void start(waiter w, int fd, protocol::file_identity id);
    void finish(const protocol::file_identity& id, digest_outcome outcome);
    static void complete(waiter w, const digest_outcome& outcome);

    asio::thread_pool pool_;
    std::size_t cache_entries_;
    std::mutex mutex_;
    std::map<protocol::file_identity, entry> entries_;
    std::deque<protocol::file_identity> done_order_; ///< completed entries, oldest first
    std::atomic<std::uint64_t> computations_{0};
};

} // namespace ferry::server
