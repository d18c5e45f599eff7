#include "ferry/server/digest_service.hpp"

#include "ferry/server/path_resolver.hpp"
#include "ferry/server/unique_fd.hpp"
#include "ferry/transport/sha256.hpp"

#include <boost/asio/dispatch.hpp>
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
}

asio::awaitable<digest_outcome> digest_service::digest(int fd, const protocol::file_identity& id) {
    // Keeps the caller's io_context alive while it waits for the pool.
    auto guard = asio::make_work_guard(co_await asio::this_coro::executor);
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(digest_outcome)>(
        [this, &guard](auto h, int f, protocol::file_identity i) {
            start(waiter{handler{std::move(h)}, std::move(guard)}, f, i);
        },
        asio::use_awaitable, fd, id);
}

void digest_service::complete(waiter w, const digest_outcome& outcome) {
    auto ex = w.guard.get_executor();
    asio::dispatch(ex, [w = std::move(w), outcome]() mutable { std::move(w.h)(outcome); });
}

void digest_service::start(waiter w, int fd, protocol::file_identity id) {
    std::unique_lock lock{mutex_};
    auto [it, inserted] = entries_.try_emplace(id);
    if (it->second.result) { // cached
        auto outcome = *it->second.result;
        lock.unlock();
        complete(std::move(w), outcome);
        return;
    }
    it->second.waiters.push_back(std::move(w));
    if (!inserted)
        return; // a computation is running: wait for it
    lock.unlock();

    unique_fd copy{::fcntl(fd, F_DUPFD_CLOEXEC, 0)};
    if (!copy) {
        finish(id, {error_code{errno, boost::system::generic_category()}, {}});
        return;
    }
    ++computations_;
    asio::post(pool_, [this, id, f = std::make_shared<unique_fd>(std::move(copy))] {
        struct stat before {};
        digest_outcome outcome;
        if (::fstat(f->get(), &before) != 0 || make_identity(before) != id) {
            outcome.ec = error_code{ESTALE, boost::system::generic_category()};
        } else {
            outcome = transport::sha256_of(f->get(), static_cast<std::uint64_t>(before.st_size));
            struct stat after {};
            if (!outcome.ec && (::fstat(f->get(), &after) != 0 || make_identity(after) != id))
                outcome.ec = error_code{ESTALE, boost::system::generic_category()};
        }
        finish(id, outcome);
    });
}

void digest_service::finish(const protocol::file_identity& id, digest_outcome outcome) {
    std::vector<waiter> waiters;
    {
        std::lock_guard lock{mutex_};
        auto it = entries_.find(id);
        waiters = std::move(it->second.waiters);
        if (outcome.ec || cache_entries_ == 0) {
            entries_.erase(it); // failures are not cached: the next request tries again
        } else {
            it->second.result = outcome;
            it->second.waiters.clear();
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
