#include "ferry/server/digest_service.hpp"

#include "ferry/server/path_resolver.hpp"
#include "ferry/server/unique_fd.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <cerrno>
#include <fcntl.h>
#include <memory>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ferry::server {

using transport::error_code;

digest_outcome sha256_of(int fd, std::uint64_t length) {
    digest_outcome out;
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
        out.ec = error_code{ENOMEM, boost::system::generic_category()};
        return out;
    }
    constexpr std::size_t block = 1 << 20;
    auto buffer = std::make_unique<unsigned char[]>(block);
    std::uint64_t done = 0;
    while (done < length) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(block, length - done));
        const ssize_t n = ::pread(fd, buffer.get(), want, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            // n == 0: the file is shorter than its identity says, so it changed.
            out.ec = n == 0 ? error_code{ESTALE, boost::system::generic_category()}
                            : error_code{errno, boost::system::generic_category()};
            return out;
        }
        EVP_DigestUpdate(ctx.get(), buffer.get(), static_cast<std::size_t>(n));
        done += static_cast<std::uint64_t>(n);
    }
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.digest.data()), &size);
    return out;
}

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
            outcome = sha256_of(f->get(), static_cast<std::uint64_t>(before.st_size));
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
