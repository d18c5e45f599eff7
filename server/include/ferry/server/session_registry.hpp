// session_registry: the connections of one I/O thread: who is parked (idle, waiting for a
// request, with no coroutine), their timeouts, and graceful shutdown; and connection_limits:
// the global and per-address connection caps shared by all threads.
#pragma once

#include "ferry/server/file_sender.hpp"
#include "ferry/server/rate_limiter.hpp"
#include "ferry/transport/asio.hpp"

#include <array>
#include <atomic>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <new>
#include <utility>

namespace ferry::server {

namespace asio = boost::asio;

/// Global and per-address connection caps, shared by all I/O threads. The counts are exact:
/// a slot is taken before a session starts and given back before its socket closes.
class connection_limits {
public:
    /// Why a connection was not admitted.
    enum class refusal { none, max_connections, max_connections_per_ip };

    /// max_per_address 0: no per-address cap.
    connection_limits(std::size_t max_total, std::size_t max_per_address)
        : max_total_(max_total), max_per_address_(max_per_address) {}

    /// Takes a slot for a connection from `peer`, or says which limit refused it.
    /// `per_address` tells whether the slot counts against the peer's address (a cap was set).
    refusal try_acquire(const asio::ip::address& peer, bool& per_address);
    void release(const asio::ip::address& peer, bool per_address) noexcept;
    std::size_t active() const noexcept { return total_.load(); }
    std::size_t max_total() const noexcept { return max_total_.load(); }

    /// New caps (a reload) for the connections that come next; open ones keep their slots
    /// (a per-address cap set now counts only the connections that arrive from now on).
    void set_limits(std::size_t max_total, std::size_t max_per_address) noexcept {
        max_total_.store(max_total);
        max_per_address_.store(max_per_address);
    }

private:
    std::atomic<std::size_t> max_total_;
    std::atomic<std::size_t> max_per_address_;
    std::atomic<std::size_t> total_{0};
    std::mutex mutex_; // only taken when a per-address cap is set
    std::map<asio::ip::address, std::size_t> per_address_;
};

/// A taken connection slot, given back on destruction or release().
class connection_slot {
public:
    connection_slot(connection_limits& limits, asio::ip::address peer, bool per_address = false)
        : limits_(&limits), peer_(peer), per_address_(per_address) {}
    connection_slot(connection_slot&& o) noexcept
        : limits_(std::exchange(o.limits_, nullptr)), peer_(o.peer_),
          per_address_(o.per_address_) {}
    connection_slot& operator=(connection_slot&&) = delete;
    ~connection_slot() { release(); }
    const asio::ip::address& address() const noexcept { return peer_; }
    void release() noexcept {
        if (limits_)
            std::exchange(limits_, nullptr)->release(peer_, per_address_);
    }

private:
    connection_limits* limits_;
    asio::ip::address peer_;
    bool per_address_;
};

/// Room inside a connection for the state of its one pending wait, so that parking a
/// connection allocates nothing (Asio's custom-allocation pattern). Falls back to the heap if
/// an operation ever needs more.
class handler_memory {
public:
    handler_memory() = default;
    handler_memory(const handler_memory&) = delete;
    handler_memory& operator=(const handler_memory&) = delete;

    /// An operation's state is in the storage now (a parked wait, pending or completing).
    bool in_use() const noexcept { return in_use_; }
    /// Allocations that did not fit (process-wide): 0 unless the storage is too small.
    static std::size_t heap_fallbacks() noexcept { return heap_fallbacks_.load(); }

    void* allocate(std::size_t size) {
        if (!in_use_ && size <= sizeof storage_) {
            in_use_ = true;
            return &storage_;
        }
        heap_fallbacks_.fetch_add(1, std::memory_order_relaxed);
        return ::operator new(size);
    }
    void deallocate(void* p) noexcept {
        if (p == &storage_)
            in_use_ = false;
        else
            ::operator delete(p);
    }

private:
    // A parked wait's operation is 104 bytes with Boost 1.81 (tests check that it fits).
    alignas(std::max_align_t) unsigned char storage_[104];
    bool in_use_ = false;
    inline static std::atomic<std::size_t> heap_fallbacks_{0};
};

/// The allocator that hands out a handler_memory.
template <class T>
struct handler_allocator {
    using value_type = T;
    explicit handler_allocator(handler_memory& m) noexcept : memory(&m) {}
    template <class U>
    handler_allocator(const handler_allocator<U>& o) noexcept : memory(o.memory) {}
    T* allocate(std::size_t n) { return static_cast<T*>(memory->allocate(sizeof(T) * n)); }
    void deallocate(T* p, std::size_t) noexcept { memory->deallocate(p); }
    template <class U>
    bool operator==(const handler_allocator<U>& o) const noexcept {
        return memory == o.memory;
    }
    handler_memory* memory;
};

/// One client connection, from accept to close. A coroutine serves it while requests arrive;
/// between requests it is parked: this struct, a wait for readability on its socket whose state
/// lives in `wait_memory`, and a place in its registry's list of parked connections.
struct connection {
    using hook = boost::intrusive::list_member_hook<
        boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

    connection(stream_socket s, std::uint64_t id_, std::uint16_t port_, connection_slot slot_,
               std::uint64_t rate_limit)
        : socket(std::move(s)), id(id_), slot(std::move(slot_)), limiter(rate_limit),
          port(port_) {}

    stream_socket socket;
    std::uint64_t id;         ///< `[conn <id>] <address>:<port>` in the logs
    connection_slot slot;     ///< the client's address (a PROXY header's, behind a proxy);
                              ///< given back before the socket closes
    rate_limiter limiter;     ///< --rate-limit, across the connection's requests
    std::uint64_t requests = 0;
    transport::clock::time_point opened = transport::clock::now();
    transport::clock::time_point deadline{}; ///< parked: when the wait times out
    std::uint16_t port;                      ///< the peer's
    bool timed_out = false;                  ///< the sweeper ended the parked wait
    bool busy = false;                       ///< a coroutine is serving it
    /// The protocol its first byte chose (docs/http.md): kept for the connection's life.
    enum class front : std::uint8_t { unknown, ferry, http } protocol = front::unknown;
    asio::cancellation_signal signal;        ///< cancels that coroutine (only while busy)
    handler_memory wait_memory;
    hook all_hook;    ///< in the registry's list of every connection
    hook parked_hook; ///< in one of the registry's lists of parked connections
};

/// The connections of one io_context. Not thread-safe: used only from its own thread.
///
/// Parked connections wait in two first-in-first-out lists, one per timeout (the first
/// request's and keep-alive's); as every entry of a list has the same timeout, each list is in
/// deadline order and one timer, set for the earliest head, serves them all: no timer per
/// connection, no timer work per request.
///
/// Shutdown has two phases: drain() gives every parked connection a short idle timeout (each is
/// served while requests keep coming: a segmented download's connections, even one opened just
/// before the drain that has not sent its first request yet); cancel_all() closes every parked
/// connection and emits terminal cancellation to every busy session.
class session_registry {
public:
    enum class wait { first_request, keep_alive };

    explicit session_registry(asio::io_context& ctx) : sweeper_(ctx) {}
    session_registry(const session_registry&) = delete;
    session_registry& operator=(const session_registry&) = delete;
    ~session_registry();

    connection& add(stream_socket socket, std::uint64_t id, std::uint16_t port,
                    connection_slot slot, std::uint64_t rate_limit);
    /// Destroys the connection (closing its socket if still open).
    void remove(connection& c) noexcept;

    /// Lists `c` as parked until `timeout` from now; past it, the sweeper sets `c.timed_out`
    /// and cancels the socket's pending wait. The caller starts that wait.
    void park(connection& c, wait kind, transport::clock::duration timeout);
    /// Takes `c` off the parked lists (its wait completed).
    static void unpark(connection& c) noexcept { c.parked_hook.unlink(); }

    /// Starts the drain: every parked connection times out `idle` from now at the latest (the
    /// caller parks the ones that go idle from now on with that timeout too).
    void drain(transport::clock::duration idle);
    void cancel_all();
    /// A reload made the timeout of `kind` shorter: connections parked there time out within
    /// `timeout` from now at the latest, like those parked from now on (capping every deadline
    /// at one instant keeps the list in deadline order, which the sweeper relies on).
    void shorten(wait kind, transport::clock::duration timeout);

    bool draining() const noexcept { return draining_; }
    /// cancel_all() ran: connections still to be woken close at once.
    bool cancelling() const noexcept { return cancelling_; }
    std::size_t size() const noexcept { return size_; }
    std::size_t parked() const noexcept;
    /// Parked connections whose wait lives in their own handler_memory (for tests).
    std::size_t parked_in_place() const noexcept;

private:
    using all_list = boost::intrusive::list<
        connection, boost::intrusive::member_hook<connection, connection::hook, &connection::all_hook>,
        boost::intrusive::constant_time_size<false>>;
    using parked_list = boost::intrusive::list<
        connection,
        boost::intrusive::member_hook<connection, connection::hook, &connection::parked_hook>,
        boost::intrusive::constant_time_size<false>>;

    void arm(transport::clock::time_point at);
    void sweep();
    /// Stops the sweeper once draining leaves nothing parked.
    void settle_sweeper() noexcept;
    /// Takes the list's first connection off it and cancels its wait (the handler runs next).
    static void wake_first(parked_list& list) noexcept;
    /// Cancels every parked wait (their handlers run and see draining()).
    void wake_parked();

    all_list all_;
    std::size_t size_ = 0;
    std::array<parked_list, 2> parked_;
    asio::steady_timer sweeper_;
    bool sweeper_armed_ = false;
    bool draining_ = false;
    bool cancelling_ = false;
};

} // namespace ferry::server
