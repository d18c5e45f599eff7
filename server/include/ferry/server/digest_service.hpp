// digest_service: SHA-256 of files, computed off the I/O threads on a small worker pool, cached
// by file identity, and shared: concurrent requests for one file wait on one computation, which
// stops when nobody waits for it any more. A second pool runs other blocking work (directory
// listings, via offload()), so a long digest never holds a listing.
#pragma once

#include "ferry/protocol/messages.hpp"
#include "ferry/transport/asio.hpp"
#include "ferry/transport/sha256.hpp"

#include <atomic>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
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
    ///
    /// Cancellation (terminal, partial or total: the wait simply ends): completes at once with
    /// `operation_aborted`; if nobody else waits for the same file, the computation stops
    /// before its next 1 MiB block.
    asio::awaitable<digest_outcome> digest(int fd, const protocol::file_identity& id);

    /// The digest of the file version `id` if it is cached (computed and unchanged), without
    /// starting a computation: for answers that only mention a digest the server already has
    /// (HTTP's Repr-Digest). Thread-safe; takes the service's lock briefly.
    std::optional<protocol::sha256_digest> cached(const protocol::file_identity& id);

    /// The pool for other blocking work (directory listings): not the digests' threads.
    asio::thread_pool& pool() noexcept { return blocking_pool_; }

    /// How many digests were started (not served from the cache or shared).
    std::uint64_t computations() const noexcept { return computations_.load(); }
    /// Requests answered from the cache, and requests that joined a computation running.
    std::uint64_t hits() const noexcept { return hits_.load(); }
    std::uint64_t shared() const noexcept { return shared_.load(); }
    /// Computations queued or running now.
    std::uint64_t running() const noexcept {
        const auto done = finished_.load(); // first: never more finished than started
        return computations_.load() - done;
    }
    /// How many of them stopped early because nobody waited for them any more.
    std::uint64_t abandoned() const noexcept { return abandoned_.load(); }

    /// Stops every computation before its next block (shutdown: nobody will wait any more).
    void stop() noexcept;

    /// Waits for running work to finish and stops the pools.
    void join();

private:
    using handler = asio::any_completion_handler<void(digest_outcome)>;
    struct waiter {
        handler h;
        asio::executor_work_guard<asio::any_io_executor> guard;
        asio::cancellation_slot slot; ///< the waiter's, cleared on its own thread
        std::uint64_t number = 0;     ///< identifies it for cancellation
    };
    using stop_flag = std::shared_ptr<std::atomic<bool>>;
    struct entry {
        std::optional<digest_outcome> result;
        std::list<waiter> waiters; ///< (a list: a waiter cannot be move-assigned)
        stop_flag stop;            ///< of the running computation: set when its last waiter leaves
    };
    struct cancel_waiter;

    void start(waiter w, int fd, protocol::file_identity id);
    void cancel(const protocol::file_identity& id, std::uint64_t number);
    void finish(const protocol::file_identity& id, const stop_flag& stop, digest_outcome outcome);
    static void complete(waiter w, const digest_outcome& outcome);

    asio::thread_pool pool_;
    asio::thread_pool blocking_pool_{2};
    std::size_t cache_entries_;
    std::mutex mutex_;
    std::map<protocol::file_identity, entry> entries_;
    std::deque<protocol::file_identity> done_order_; ///< completed entries, oldest first
    std::atomic<std::uint64_t> computations_{0};
    std::atomic<std::uint64_t> abandoned_{0};
    std::atomic<std::uint64_t> finished_{0};
    std::atomic<std::uint64_t> hits_{0};
    std::atomic<std::uint64_t> shared_{0};
    std::atomic<bool> stopping_{false};
    std::uint64_t next_waiter_ = 0; ///< under mutex_
};

} // namespace ferry::server
