#include "ferry/server/digest_service.hpp"

#include "ferry/server/path_resolver.hpp"
#include "ferry/transport/unique_fd.hpp"
#include "ferry/transport/sha256.hpp"

#include <algorithm>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <cerrno>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

namespace ferry::server {

using transport::error_code;

digest_service::digest_service(unsigned threads, std::size_t cache_entries)
    : pool_(threads), cache_entries_(cache_entries) {}

digest_service::~digest_service() {
    join();
}

void digest_service::join() {
    pool_.join();
    blocking_pool_.join();
}

void digest_service::stop() noexcept {
    std::lock_guard lock{mutex_};
    stopping_ = true;
    for (auto& [id, e] : entries_)
        if (e.stop)
            e.stop->store(true);
}

/// A waiter's cancellation handler: it stops waiting (runs on the waiter's thread).
struct digest_service::cancel_waiter {
    digest_service* self;
    protocol::file_identity id;
    std::uint64_t number;
    void operator()(asio::cancellation_type type) const {
        if (type != asio::cancellation_type::none)
            self->cancel(id, number);
    }
};

asio::awaitable<digest_outcome> digest_service::digest(int fd, const protocol::file_identity& id) {
    // Keeps the caller's io_context alive while it waits for the pool.
    auto guard = asio::make_work_guard(co_await asio::this_coro::executor);
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(digest_outcome)>(
        [this, &guard](auto h, int f, protocol::file_identity i) {
            auto slot = asio::get_associated_cancellation_slot(h);
            start(waiter{handler{std::move(h)}, std::move(guard), slot}, f, i);
        },
        asio::use_awaitable, fd, id);
}

std::optional<protocol::sha256_digest> digest_service::cached(const protocol::file_identity& id) {
    const std::lock_guard lock{mutex_};
    const auto it = entries_.find(id);
    if (it == entries_.end() || !it->second.result || it->second.result->ec)
        return std::nullopt;
    return it->second.result->digest;
}

void digest_service::complete(waiter w, const digest_outcome& outcome) {
    auto ex = w.guard.get_executor();
    // Posted, never run inline: a cancellation completes a waiter from inside its own slot's
    // handler, which only the waiter's thread may clear, after the handler returned.
    asio::post(ex, [w = std::move(w), outcome]() mutable {
        if (w.slot.is_connected())
            w.slot.clear();
        std::move(w.h)(outcome);
    });
}

void digest_service::start(waiter w, int fd, protocol::file_identity id) {
    std::unique_lock lock{mutex_};
    auto [it, inserted] = entries_.try_emplace(id);
    if (it->second.result) { // cached
        ++hits_;
        auto outcome = *it->second.result;
        lock.unlock();
        complete(std::move(w), outcome);
        return;
    }
    w.number = ++next_waiter_;
    if (w.slot.is_connected())
        w.slot.emplace<cancel_waiter>(this, id, w.number);
    it->second.waiters.push_back(std::move(w));
    if (!inserted) {
        ++shared_;
        return; // a computation is running: wait for it
    }
    auto stop = std::make_shared<std::atomic<bool>>(stopping_.load());
    it->second.stop = stop;
    lock.unlock();

    unique_fd copy{::fcntl(fd, F_DUPFD_CLOEXEC, 0)};
    if (!copy) {
        finish(id, stop, {error_code{errno, boost::system::generic_category()}, {}});
        return;
    }
    ++computations_;
    asio::post(pool_, [this, id, stop, f = std::make_shared<unique_fd>(std::move(copy))] {
        struct stat before {};
        digest_outcome outcome;
        if (::fstat(f->get(), &before) != 0 || make_identity(before) != id) {
            outcome.ec = error_code{ESTALE, boost::system::generic_category()};
        } else {
            outcome = transport::sha256_of(f->get(), static_cast<std::uint64_t>(before.st_size),
                                           stop.get());
            struct stat after {};
            if (!outcome.ec && (::fstat(f->get(), &after) != 0 || make_identity(after) != id))
                outcome.ec = error_code{ESTALE, boost::system::generic_category()};
        }
        if (outcome.ec == asio::error::operation_aborted)
            ++abandoned_;
        finish(id, stop, outcome);
        ++finished_;
    });
}

void digest_service::cancel(const protocol::file_identity& id, std::uint64_t number) {
    std::optional<waiter> leaving;
    {
        std::lock_guard lock{mutex_};
        auto it = entries_.find(id);
        if (it == entries_.end())
            return;
        auto& waiters = it->second.waiters;
        auto w = std::find_if(waiters.begin(), waiters.end(),
                              [number](const waiter& x) { return x.number == number; });
        if (w == waiters.end())
            return; // already completing
        leaving.emplace(std::move(*w));
        waiters.erase(w);
        if (waiters.empty() && !it->second.result) {
            it->second.stop->store(true); // nobody waits: the computation stops
            entries_.erase(it);
        }
    }
    complete(std::move(*leaving), {asio::error::operation_aborted, {}});
}

void digest_service::finish(const protocol::file_identity& id, const stop_flag& stop,
                            digest_outcome outcome) {
    std::list<waiter> waiters;
    {
        std::lock_guard lock{mutex_};
        auto it = entries_.find(id);
        if (it == entries_.end() || it->second.stop != stop)
            return; // abandoned: its waiters left (another computation may have begun since)
        waiters = std::move(it->second.waiters);
        if (outcome.ec || cache_entries_ == 0) {
            entries_.erase(it); // failures are not cached: the next request tries again
        } else {
            it->second.result = outcome;
            it->second.waiters.clear();
            it->second.stop.reset();
            done_order_.push_back(id);
            while (done_order_.size() > cache_entries_) {
                entries_.erase(done_order_.front());
                done_order_.pop_front();
            }
        }
    }
    for (auto& w : waiters)
        complete(std::move(w), outcome);
}

} // namespace ferry::server
