#include "ferry/server/session_registry.hpp"

#include <vector>

namespace ferry::server {

session_registry::entry& session_registry::add(std::uint64_t id) {
    auto& e = sessions_[id];
    e = std::make_unique<entry>();
    return *e;
}

void session_registry::remove(std::uint64_t id) noexcept {
    sessions_.erase(id);
}

void session_registry::drain() {
    draining_ = true;
    // Emitting may complete handlers inline that remove sessions: collect first.
    std::vector<entry*> idle;
    for (auto& [id, e] : sessions_)
        if (e->idle)
            idle.push_back(e.get());
    for (auto* e : idle)
        e->signal.emit(asio::cancellation_type::terminal);
}

void session_registry::cancel_all() {
    draining_ = true;
    std::vector<entry*> all;
    for (auto& [id, e] : sessions_)
        all.push_back(e.get());
    for (auto* e : all)
        e->signal.emit(asio::cancellation_type::terminal);
}

bool connection_limits::try_acquire(const asio::ip::address& peer) {
    if (total_.fetch_add(1) >= max_total_) {
        total_.fetch_sub(1);
        return false;
    }
    if (max_per_address_ == 0)
        return true;
    std::lock_guard lock{mutex_};
    auto& n = per_address_[peer];
    if (n >= max_per_address_) {
        if (n == 0)
            per_address_.erase(peer);
        total_.fetch_sub(1);
        return false;
    }
    ++n;
    return true;
}

void connection_limits::release(const asio::ip::address& peer) noexcept {
    if (max_per_address_ != 0) {
        std::lock_guard lock{mutex_};
        auto it = per_address_.find(peer);
        if (it != per_address_.end() && --it->second == 0)
            per_address_.erase(it);
    }
    total_.fetch_sub(1);
}

} // namespace ferry::server
