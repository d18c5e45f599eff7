#include "ferry/client/background_hasher.hpp"

#include <cerrno>
#include <memory>
#include <unistd.h>

namespace ferry::client {

background_hasher::background_hasher(int fd) : fd_(fd), thread_([this] { run(); }) {}

background_hasher::~background_hasher() {
    {
        std::lock_guard lock{mutex_};
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void background_hasher::advance_to(std::uint64_t end) {
    {
        std::lock_guard lock{mutex_};
        if (end <= allowed_)
            return;
        allowed_ = end;
    }
    cv_.notify_all();
}

transport::sha256_result background_hasher::finish(std::uint64_t size) {
    advance_to(size);
    std::unique_lock lock{mutex_};
    cv_.wait(lock, [&] { return hashed_ >= size || error_; });
    if (error_)
        return {error_, {}};
    stop_ = true;
    cv_.notify_all();
    return {{}, hash_.finish()};
}

void background_hasher::run() {
    constexpr std::size_t block = 1 << 20;
    auto buffer = std::make_unique<std::byte[]>(block);
    std::unique_lock lock{mutex_};
    for (;;) {
        cv_.wait(lock, [&] { return stop_ || hashed_ < allowed_; });
        if (stop_)
            return;
        const std::uint64_t at = hashed_;
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(block, allowed_ - at));
        lock.unlock();
        ssize_t n = 0;
        do {
            n = ::pread(fd_, buffer.get(), want, static_cast<off_t>(at));
        } while (n < 0 && errno == EINTR);
        const int err = n < 0 ? errno : n == 0 ? ESTALE : 0;
        if (n > 0)
            hash_.update({buffer.get(), static_cast<std::size_t>(
                                            n)}); // only this thread touches hash_ until finish
        lock.lock();
        if (err) {
            error_ = transport::error_code{err, boost::system::generic_category()};
            cv_.notify_all();
            return;
        }
        hashed_ += static_cast<std::uint64_t>(n);
        cv_.notify_all();
    }
}

} // namespace ferry::client
