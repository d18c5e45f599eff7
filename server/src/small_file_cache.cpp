#include "ferry/server/small_file_cache.hpp"

namespace ferry::server {
namespace {

std::int64_t ns_of(const struct timespec& t) noexcept {
    return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

} // namespace

bool small_file_cache::settled(const struct stat& st, std::int64_t now_ns) const noexcept {
    return ns_of(st.st_mtim) + settle_ <= now_ns && ns_of(st.st_ctim) + settle_ <= now_ns;
}

std::shared_ptr<const std::string> small_file_cache::find(const struct stat& st) {
    const key k{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
    const std::lock_guard lock{mutex_};
    const auto it = index_.find(k);
    if (it == index_.end())
        return nullptr;
    const auto& e = *it->second;
    if (e.size != st.st_size || e.mtime_ns != ns_of(st.st_mtim) || e.ctime_ns != ns_of(st.st_ctim))
        return nullptr; // another version: offer replaces it
    order_.splice(order_.begin(), order_, it->second);
    return e.bytes;
}

void small_file_cache::offer(const struct stat& st, std::shared_ptr<const std::string> bytes,
                             std::int64_t now_ns) {
    if (budget_ == 0 || !bytes || bytes->size() != static_cast<std::size_t>(st.st_size) ||
        bytes->size() > budget_ || !settled(st, now_ns))
        return;
    const key k{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
    const std::lock_guard lock{mutex_};
    if (const auto it = index_.find(k); it != index_.end()) {
        used_ -= it->second->bytes->size();
        order_.erase(it->second);
        index_.erase(it);
    }
    while (used_ + bytes->size() > budget_ && !order_.empty()) {
        used_ -= order_.back().bytes->size();
        index_.erase(order_.back().k);
        order_.pop_back();
    }
    used_ += bytes->size();
    order_.push_front({k, st.st_size, ns_of(st.st_mtim), ns_of(st.st_ctim), std::move(bytes)});
    index_.emplace(k, order_.begin());
}

std::size_t small_file_cache::size_in_bytes() const {
    const std::lock_guard lock{mutex_};
    return used_;
}

} // namespace ferry::server
