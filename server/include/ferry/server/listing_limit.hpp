// listing_limit: the cap on directory listings in progress at once, server-wide
// (--max-listings), shared by both fronts: an HTTP listing holds its sorted entries while it
// is sent, and every listing reads the directory on the small listing pool, so their number
// is what bounds that memory and that pool's queue. One client address may hold at most a
// quarter of the slots (at least one): a client reading slowly, but never slowly enough for
// the progress timeout, holds a slot for as long as it likes, and without that share a few
// connections of one host could keep every listing busy. Over either cap a listing is refused
// with `busy` (HTTP: 503 with Retry-After); the connection stays open.
#pragma once

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <map>
#include <mutex>
#include <utility>

namespace ferry::server {

namespace asio = boost::asio;

class listing_limit;

/// A listing's place under the cap, given back on destruction; empty when a cap was reached.
class listing_slot {
public:
    listing_slot() = default;
    listing_slot(listing_slot&& o) noexcept
        : limit_(std::exchange(o.limit_, nullptr)), peer_(o.peer_) {}
    listing_slot& operator=(listing_slot&&) = delete;
    listing_slot(const listing_slot&) = delete;
    ~listing_slot();
    explicit operator bool() const noexcept { return limit_ != nullptr; }

private:
    friend class listing_limit;
    listing_slot(listing_limit* limit, const asio::ip::address& peer) noexcept
        : limit_(limit), peer_(peer) {}
    listing_limit* limit_ = nullptr;
    asio::ip::address peer_;
};

/// Counts listings in progress against a maximum, in all and per client address.
/// Thread-safe (a mutex: listings are few, and each costs a directory read).
class listing_limit {
public:
    explicit listing_limit(std::size_t max) noexcept
        : max_(max), max_per_address_(std::max<std::size_t>(1, max / 4)) {}

    /// A slot for one listing for `peer`, or an empty one when `max` listings are in progress
    /// or `peer` holds its share of them.
    listing_slot try_acquire(const asio::ip::address& peer) {
        const std::lock_guard lock{mutex_};
        if (active_ >= max_)
            return {};
        auto& mine = per_address_[peer];
        if (mine >= max_per_address_)
            return {};
        ++mine;
        ++active_;
        return listing_slot{this, peer};
    }
    std::size_t active() const {
        const std::lock_guard lock{mutex_};
        return active_;
    }
    std::size_t max_per_address() const {
        const std::lock_guard lock{mutex_};
        return max_per_address_;
    }
    /// A new cap (a reload): listings in progress keep their slots.
    void set_max(std::size_t max) {
        const std::lock_guard lock{mutex_};
        max_ = max;
        max_per_address_ = std::max<std::size_t>(1, max / 4);
    }

private:
    friend class listing_slot;
    void release(const asio::ip::address& peer) noexcept {
        const std::lock_guard lock{mutex_};
        --active_;
        if (const auto it = per_address_.find(peer); it != per_address_.end() && --it->second == 0)
            per_address_.erase(it);
    }

    std::size_t max_;
    std::size_t max_per_address_;
    mutable std::mutex mutex_;
    std::size_t active_ = 0;
    std::map<asio::ip::address, std::size_t> per_address_;
};

inline listing_slot::~listing_slot() {
    if (limit_)
        limit_->release(peer_);
}

} // namespace ferry::server
