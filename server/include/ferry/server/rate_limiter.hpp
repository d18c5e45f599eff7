// rate_limiter: a token bucket for --rate-limit (bytes per second, per connection).
#pragma once

#include "ferry/transport/asio.hpp"

#include <algorithm>
#include <cstdint>

namespace ferry::server {

/// Refills at `rate` bytes/s up to a burst of a tenth of a second's worth (at least 4 KiB, at
/// most 1 MiB). A rate of 0 means unlimited. Not thread-safe: one per connection.
///
/// Bytes are allowed in pieces of at least min_piece() (a fiftieth of a second's worth, at
/// least 16 KiB, at most the burst), except a last piece that is all the sender still wants:
/// a limited transfer then costs a few system calls and one timer wait per piece, never a
/// loop of tiny sends.
class rate_limiter {
public:
    explicit rate_limiter(std::uint64_t rate,
                          transport::clock::time_point now = transport::clock::now())
        : rate_(rate), burst_(std::clamp<std::uint64_t>(rate / 10, 4096, 1 << 20)),
          min_piece_(std::min<std::uint64_t>(burst_, std::max<std::uint64_t>(rate / 50, 16384))),
          tokens_(static_cast<double>(burst_)), last_(now) {}

    bool unlimited() const noexcept { return rate_ == 0; }
    std::uint64_t burst() const noexcept { return burst_; }
    std::uint64_t min_piece() const noexcept { return min_piece_; }

    /// How many of `want` bytes may be sent at `now`: 0, or at least min(want, min_piece()).
    /// When 0, `wait` says how long until that many may.
    std::uint64_t allowance(std::uint64_t want, transport::clock::time_point now,
                            transport::clock::duration& wait) noexcept {
        if (unlimited() || want == 0)
            return want;
        refill(now);
        const auto piece = static_cast<double>(std::min(want, min_piece_));
        if (tokens_ >= piece)
            return std::min(want, static_cast<std::uint64_t>(tokens_));
        const double seconds = (piece - tokens_) / static_cast<double>(rate_);
        // Rounded up, so the wait is never a hair too short and the bucket full enough after it.
        wait =
            std::chrono::ceil<transport::clock::duration>(std::chrono::duration<double>(seconds));
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
    std::uint64_t min_piece_;
    double tokens_;
    transport::clock::time_point last_;
};

} // namespace ferry::server
