#include "ferry/server/session_registry.hpp"

#include <algorithm>
#include <optional>
#include <vector>

namespace ferry::server {

session_registry::~session_registry() {
    // Normally empty: a parked connection's wait is work, so its io_context ran until it ended.
    // If it was stopped instead, a wait still in a connection's memory is destroyed with the
    // io_context, later: such a connection is closed but not freed.
    all_.clear_and_dispose([](connection* c) {
        if (!c->wait_memory.in_use()) {
            delete c;
            return;
        }
        transport::error_code ignored;
        c->socket.close(ignored);
    });
}

connection& session_registry::add(stream_socket socket, std::uint64_t id, std::uint16_t port,
                                  connection_slot slot, std::uint64_t rate_limit) {
    auto* c = new connection{std::move(socket), id, port, std::move(slot), rate_limit};
    all_.push_back(*c);
    ++size_;
    return *c;
}

void session_registry::remove(connection& c) noexcept {
    --size_;
    delete &c; // the hooks unlink themselves
}

void session_registry::park(connection& c, wait kind, transport::clock::duration timeout) {
    c.timed_out = false;
    c.deadline = transport::clock::now() + timeout;
    parked_[static_cast<std::size_t>(kind)].push_back(c);
    if (!sweeper_armed_ || c.deadline < sweeper_.expiry())
        arm(c.deadline);
}

std::size_t session_registry::parked() const noexcept {
    return parked_[0].size() + parked_[1].size();
}

std::size_t session_registry::parked_in_place() const noexcept {
    std::size_t n = 0;
    for (const auto& list : parked_)
        for (const auto& c : list)
            if (c.wait_memory.in_use())
                ++n;
    return n;
}

void session_registry::arm(transport::clock::time_point at) {
    sweeper_armed_ = true;
    sweeper_.expires_at(at); // a wait already pending completes with operation_aborted
    sweeper_.async_wait([this](const transport::error_code& ec) {
        if (!ec)
            sweep();
    });
}

void session_registry::wake_first(parked_list& list) noexcept {
    auto& c = list.front();
    list.pop_front();
    transport::error_code ignored;
    c.socket.cancel(ignored); // its wait completes, with operation_aborted
}

void session_registry::sweep() {
    sweeper_armed_ = false;
    const auto now = transport::clock::now();
    std::optional<transport::clock::time_point> next;
    for (auto& list : parked_) {
        while (!list.empty() && list.front().deadline <= now) {
            list.front().timed_out = true;
            wake_first(list);
        }
        if (!list.empty() && (!next || list.front().deadline < *next))
            next = list.front().deadline;
    }
    if (next)
        arm(*next);
}

void session_registry::wake_parked() {
    for (auto& list : parked_) {
        while (!list.empty())
            wake_first(list);
    }
    if (sweeper_armed_) {
        sweeper_armed_ = false;
        sweeper_.cancel();
    }
}

void session_registry::drain(transport::clock::duration idle) {
    draining_ = true;
    // Every parked connection may still send a request within `idle`: a segmented download's
    // next chunk, or the first one of a connection opened just before the drain. Deadlines
    // capped at one instant stay in order, and later parks come after them.
    const auto latest = transport::clock::now() + idle;
    for (auto& list : parked_) {
        for (auto& c : list)
            c.deadline = std::min(c.deadline, latest);
        if (!list.empty() && (!sweeper_armed_ || list.front().deadline < sweeper_.expiry()))
            arm(list.front().deadline);
    }
    // Nobody parked: a sweep still armed for connections that have closed since would keep the
    // io_context, and so the drain, alive until their old deadline (--idle-timeout, 60 s).
    if (parked() == 0 && sweeper_armed_) {
        sweeper_armed_ = false;
        sweeper_.cancel();
    }
}

void session_registry::cancel_all() {
    draining_ = true;
    cancelling_ = true;
    wake_parked();
    // Cancelled operations complete later, through the io_context; collect first all the same.
    std::vector<connection*> all;
    for (auto& c : all_)
        if (c.busy)
            all.push_back(&c);
    for (auto* c : all)
        c->signal.emit(asio::cancellation_type::terminal);
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
