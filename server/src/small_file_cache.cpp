#include "ferry/server/small_file_cache.hpp"

namespace ferry::server {
namespace {

constexpr std::int64_t second = 1'000'000'000;

bool same_time(const struct timespec& a, const struct timespec& b) noexcept {
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/// `t` is at `limit_ns` or earlier, compared without multiplying t's seconds (a file may be
/// stamped in the year 2400, past what nanoseconds in 64 bits reach).
bool at_or_before(const struct timespec& t, std::int64_t limit_ns) noexcept {
    const auto limit_s = limit_ns / second;
    return t.tv_sec < limit_s || (t.tv_sec == limit_s && t.tv_nsec <= limit_ns % second);
}

} // namespace

bool small_file_cache::settled(const struct stat& st, std::int64_t now_ns) const noexcept {
    return at_or_before(st.st_mtim, now_ns - settle_) && at_or_before(st.st_ctim, now_ns - settle_);
}

std::shared_ptr<const std::string> small_file_cache::find(const struct stat& st) {
    const key k{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
    const std::lock_guard lock{mutex_};
    const auto it = index_.find(k);
    if (it == index_.end())
        return nullptr;
    const auto& e = *it->second;
    if (e.size != st.st_size || !same_time(e.mtime, st.st_mtim) || !same_time(e.ctime, st.st_ctim))
        return nullptr; // another version: offer replaces it
    order_.splice(order_.begin(), order_, it->second);
    return e.bytes;
}

void small_file_cache::offer(const struct stat& st, std::shared_ptr<const std::string> bytes,
                             std::int64_t now_ns) {
    // An empty file saves nothing; the rest pay for their bookkeeping too.
    if (!bytes || bytes->empty() || bytes->size() != static_cast<std::size_t>(st.st_size) ||
        cost(*bytes) > budget_ || !settled(st, now_ns))
        return;
    const key k{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
    const std::lock_guard lock{mutex_};
    if (const auto it = index_.find(k); it != index_.end()) {
        used_ -= cost(*it->second->bytes);
        order_.erase(it->second);
        index_.erase(it);
    }
    while (used_ + cost(*bytes) > budget_ && !order_.empty()) {
        used_ -= cost(*order_.back().bytes);
        index_.erase(order_.back().k);
        order_.pop_back();
    }
    used_ += cost(*bytes);
    order_.push_front({k, st.st_size, st.st_mtim, st.st_ctim, std::move(bytes)});
    index_.emplace(k, order_.begin());
}

std::size_t small_file_cache::size_in_bytes() const {
    const std::lock_guard lock{mutex_};
    return used_;
}

} // namespace ferry::server
