// metrics: what ferryd counts for its admin listener's /metrics (docs/operations.md lists every
// metric). Each I/O thread owns one thread_metrics and is its only writer, so counting a request
// is a few plain stores, never a locked instruction or a shared cache line; a scrape reads
// every thread's block and adds them up.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::server {

/// A number written by one thread and read by any: loads and stores, no read-modify-write
/// (only its owner changes it).
class owned_counter {
public:
    /// A release store: a reader that sees it sees the owner's earlier stores too (a
    /// connection's `closed` never shows before its `accepted`). Plain moves on x86.
    void add(std::uint64_t n = 1) noexcept {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_release);
    }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_acquire); }

private:
    std::atomic<std::uint64_t> value_{0};
};

/// The protocol label of a request.
enum class metric_protocol : std::uint8_t { ferry, http, count };
/// The method label: what the request asked for.
enum class metric_method : std::uint8_t { get, head, stat, list, other, count };

/// The answers a request can end with, as one small index: the Ferry statuses, the HTTP
/// statuses ferryd sends, and `aborted` (the connection broke mid-answer).
struct metric_status {
    /// Index of a Ferry status (its wire value 0-11), or of `aborted`.
    static std::size_t ferry(std::uint16_t status) noexcept;
    static std::size_t aborted() noexcept;
    /// Index of an HTTP status; one index for any status not in the list.
    static std::size_t http(unsigned status) noexcept;
    /// The label of an index: "ok", "not found", ..., "206", "aborted", "other".
    static std::string_view label(std::size_t index) noexcept;
    static constexpr std::size_t count = 12 + 1 + 21; ///< Ferry, aborted, HTTP and other
};

/// Upper bounds of the request-duration histogram's buckets, in seconds (+Inf is implied).
inline constexpr std::array<double, 16> duration_buckets{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

/// One I/O thread's counters. Aligned so that two threads' blocks never share a cache line.
struct alignas(64) thread_metrics {
    using clock_duration = std::chrono::steady_clock::duration;

    /// Counts a request that ended: its labels, the body bytes sent (file or listing text; 0
    /// for STAT and LIST entries) and how long it took.
    void request(metric_protocol p, metric_method m, std::size_t status, std::uint64_t body_bytes,
                 clock_duration took) noexcept;

    // Connections of this thread (the gauges are differences of two counters).
    owned_counter accepted;       ///< admitted and served
    owned_counter closed;         ///< of those, ended
    owned_counter busy_started;   ///< a coroutine started serving (the rest are idle, parked)
    owned_counter busy_ended;
    owned_counter rate_limited_opened; ///< connections opened under a --rate-limit
    owned_counter rate_limited_closed;
    std::array<owned_counter, 2> refused; ///< by reason: max-connections, max-connections-per-ip

    std::array<std::array<std::array<owned_counter, metric_status::count>,
                          static_cast<std::size_t>(metric_method::count)>,
               static_cast<std::size_t>(metric_protocol::count)>
        requests;
    std::array<owned_counter, static_cast<std::size_t>(metric_protocol::count)> body_bytes;
    struct histogram {
        std::array<owned_counter, duration_buckets.size() + 1> buckets; ///< not cumulative
        owned_counter sum_ns;
    };
    std::array<histogram, static_cast<std::size_t>(metric_protocol::count)> durations;
};

/// What a scrape reads besides the threads' counters.
struct server_metrics {
    std::size_t listings_active = 0;
    std::uint64_t digest_hits = 0;        ///< answered from the cache
    std::uint64_t digest_computations = 0; ///< digests started (the cache's misses)
    std::uint64_t digest_shared = 0;      ///< waits joined to a computation already running
    std::size_t digest_running = 0;       ///< computations queued or running
    bool draining = false;
    std::uint64_t reloads_ok = 0;
    std::uint64_t reloads_failed = 0;
    double start_time = 0; ///< seconds since the epoch
    std::size_t max_connections = 0;
};

/// The Prometheus text exposition format (version 0.0.4) of everything ferryd counts.
std::string render_metrics(const std::vector<const thread_metrics*>& threads,
                           const server_metrics& server);

} // namespace ferry::server
