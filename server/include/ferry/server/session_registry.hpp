// session_registry: the sessions of one I/O thread, for graceful shutdown; and
// connection_limits: the global and per-address connection caps shared by all threads.
#pragma once

#include <atomic>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace ferry::server {

namespace asio = boost::asio;

/// The sessions of one io_context. Not thread-safe: used only from its own thread.
///
/// Each session registers and gets an entry with a cancellation signal (bound to the
/// session's co_spawn) and an idle flag. Shutdown has two phases: drain() makes idle sessions
/// stop now and busy ones stop after their current answer; cancel_all() stops everyone.
class session_registry {
public:
    struct entry {
        asio::cancellation_signal signal;
        bool idle = false;
    };

    entry& add(std::uint64_t id);
    void remove(std::uint64_t id) noexcept;

    /// Phase one: no new requests. Emits terminal cancellation to idle sessions (they are
    /// waiting for a request); busy ones see draining() after their answer.
    void drain();
    /// Phase two: emits terminal cancellation to every session.
    void cancel_all();

    bool draining() const noexcept { return draining_; }
    std::size_t size() const noexcept { return sessions_.size(); }

private:
    std::unordered_map<std::uint64_t, std::unique_ptr<entry>> sessions_;
    bool draining_ = false;
};

/// Global and per-address connection caps, shared by all I/O threads. The counts are exact:
/// a slot is taken before a session starts and given back before its socket closes.
class connection_limits {
public:
    /// max_per_address 0: no per-address cap.
    connection_limits(std::size_t max_total, std::size_t max_per_address)
        : max_total_(max_total), max_per_address_(max_per_address) {}

    /// Takes a slot for a connection from `peer`, or returns false at a limit.
    bool try_acquire(const asio::ip::address& peer);
    void release(const asio::ip::address& peer) noexcept;
    std::size_t active() const noexcept { return total_.load(); }

private:
    const std::size_t max_total_;
    const std::size_t max_per_address_;
    std::atomic<std::size_t> total_{0};
    std::mutex mutex_; // only taken when a per-address cap is set
    std::map<asio::ip::address, std::size_t> per_address_;
};

/// A taken connection slot, given back on destruction or release().
class connection_slot {
public:
    connection_slot(connection_limits& limits, asio::ip::address peer)
        : limits_(&limits), peer_(peer) {}
    connection_slot(connection_slot&& o) noexcept
        : limits_(std::exchange(o.limits_, nullptr)), peer_(o.peer_) {}
    connection_slot& operator=(connection_slot&&) = delete;
    ~connection_slot() { release(); }
    void release() noexcept {
        if (limits_)
            std::exchange(limits_, nullptr)->release(peer_);
    }

private:
    connection_limits* limits_;
    asio::ip::address peer_;
};

} // namespace ferry::server
