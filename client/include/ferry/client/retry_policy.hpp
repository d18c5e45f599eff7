// retry_policy: when a failed request is tried again, and after how long. One policy for every
// loop that retries (the segment workers, the digest, standard output, STAT, bench's reconnects).
#pragma once

#include "ferry/client/connection.hpp"

#include <cstdint>
#include <optional>
#include <random>

namespace ferry::client {

/// Whether trying again can help: network failures (refused, reset, timed out, stalled) and the
/// server's busy, shutting_down and internal_error. Not: not_found, forbidden, changed (the
/// caller starts over), bad_request, protocol errors.
bool retryable(const failure& f) noexcept;

/// A streak of at most `attempts` retries. The n-th retry of a streak (n = 1, 2, ...) waits a
/// uniformly random time in [b/2, b] where b = min(200 ms * 2^(n-1), 10 s): 0.1-0.2 s,
/// 0.2-0.4 s, 0.4-0.8 s, 0.8-1.6 s, 1.6-3.2 s, 3.2-6.4 s, then 5-10 s. A server's retry-after
/// hint (busy, shutting_down) replaces that wait, capped at 60 s. reset() after a success
/// starts a new streak. Not thread-safe: one per loop.
class retry_policy {
public:
    static constexpr clock::duration first_backoff = std::chrono::milliseconds(200);
    static constexpr clock::duration max_backoff = std::chrono::seconds(10);
    static constexpr clock::duration max_retry_after = std::chrono::seconds(60);

    /// `seed` makes the jitter reproducible (tests); by default it comes from random_device.
    explicit retry_policy(unsigned attempts, std::optional<std::uint64_t> seed = std::nullopt);

    /// The wait before retrying after `f`, or nullopt to give up: `f` is not retryable, or the
    /// streak already used every attempt. Counts the attempt when it returns a wait.
    std::optional<clock::duration> next(const failure& f);
    /// After a success: the next failure starts a new streak.
    void reset() noexcept { used_ = 0; }
    /// Retries used in this streak.
    unsigned used() const noexcept { return used_; }
    unsigned attempts() const noexcept { return attempts_; }

private:
    unsigned attempts_;
    unsigned used_ = 0;
    std::mt19937_64 rng_;
};

} // namespace ferry::client
