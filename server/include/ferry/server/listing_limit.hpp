// listing_limit: the cap on directory listings in progress at once, server-wide
// (--max-listings), shared by both fronts: an HTTP listing holds its sorted entries while it
// is sent, and every listing reads the directory on the small listing pool, so their number
// is what bounds that memory and that pool's queue. Over the cap a listing is refused with
// `busy` (HTTP: 503 with Retry-After); the connection stays open.
#pragma once

#include <atomic>
#include <cstddef>
#include <utility>

namespace ferry::server {

class listing_limit;

/// A listing's place under the cap, given back on destruction; empty when the cap was reached.
class listing_slot {
public:
    listing_slot() = default;
    listing_slot(listing_slot&& o) noexcept : limit_(std::exchange(o.limit_, nullptr)) {}
    listing_slot& operator=(listing_slot&&) = delete;
    listing_slot(const listing_slot&) = delete;
    ~listing_slot();
    explicit operator bool() const noexcept { return limit_ != nullptr; }

private:
    friend class listing_limit;
    explicit listing_slot(listing_limit* limit) noexcept : limit_(limit) {}
    listing_limit* limit_ = nullptr;
};

/// Counts listings in progress against a maximum. Thread-safe (one atomic counter).
class listing_limit {
public:
    explicit listing_limit(std::size_t max) noexcept : max_(max) {}

    /// A slot for one listing, or an empty one when `max` listings are in progress.
    listing_slot try_acquire() noexcept {
        auto n = active_.load(std::memory_order_relaxed);
        do {
            if (n >= max_)
                return {};
        } while (!active_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
        return listing_slot{this};
    }
    std::size_t active() const noexcept { return active_.load(std::memory_order_relaxed); }

private:
    friend class listing_slot;
    const std::size_t max_;
    std::atomic<std::size_t> active_{0};
};

inline listing_slot::~listing_slot() {
    if (limit_)
        limit_->active_.fetch_sub(1, std::memory_order_relaxed);
}

} // namespace ferry::server
