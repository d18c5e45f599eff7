// rate_limiter: a token bucket for --rate-limit (bytes per second, per connection).
#pragma once

#include "ferry/transport/asio.hpp"

#include <algorithm>
#include <cstdint>

namespace ferry::server {

/// Refills at `rate` bytes/s up to a burst of a tenth of a second's worth (at least 4 KiB, at
/// most 1 MiB). A rate of 0 means unlimited. Not thread-safe: one per connection.
class rate_limiter {
public:
    explicit rate_limiter(std::uint64_t rate,
                          transport::clock::time_point now = transport::clock::now())
        : rate_(rate), burst_(std::clamp<std::uint64_t>(rate / 10, 4096, 1 << 20)),
          tokens_(static_cast<double>(burst_)), last_(now) {}

    bool unlimited() const noexcept { return rate_ == 0; }

    /// How many of `want` bytes may be sent at `now`; when 0, `wait` says how long until some may.
    std::uint64_t allowance(std::uint64_t want, transport::clock::time_point now,
                            transport::clock::duration& wait) noexcept {
        if (unlimited())
            return want;
        refill(now);
        const auto whole = static_cast<std::uint64_t>(tokens_);
        if (whole > 0)
            return std::min(want, whole);
        const double seconds = (1.0 - tokens_) / static_cast<double>(rate_);
        wait = std::chrono::duration_cast<transport::clock::duration>(
            std::chrono::duration<double>(seconds));
        return 0;
    }

    /// Takes `n` bytes from the bucket (after they were sent).
    void consume(std::uint64_t n) noexcept {
        if (!unlimited())
            tokens_ -= static_cast<double>(n);
    }

private:
    void refill(transport::clock::time_point now) noexcept {
        const std::chrono::duration<double> elapsed = now - last_;
        last_ = now;
        tokens_ = std::min(static_cast<double>(burst_),
                           tokens_ + elapsed.count() * static_cast<double>(rate_));
    }

    std::uint64_t rate_;
    std::uint64_t burst_;
    double tokens_;
    transport::clock::time_point last_;
};

} // namespace ferry::server
