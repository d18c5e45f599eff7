// background_hasher: SHA-256 of a file that is still being written, computed on a thread of its
// own as the written prefix grows, so verifying a download overlaps receiving it.
#pragma once

#include "ferry/transport/sha256.hpp"

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace ferry::client {

class background_hasher {
public:
    /// Hashes `fd` (read with pread from the page cache) as advance_to() allows.
    explicit background_hasher(int fd);
    background_hasher(const background_hasher&) = delete;
    background_hasher& operator=(const background_hasher&) = delete;
    ~background_hasher();

    /// Bytes [0, end) are written and final: they may be hashed.
    void advance_to(std::uint64_t end);
    /// Hashes up to `size` and returns the digest (or the read error). Blocks until done.
    transport::sha256_result finish(std::uint64_t size);

private:
    void run();

    int fd_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::uint64_t allowed_ = 0;
    std::uint64_t hashed_ = 0;
    bool stop_ = false;
    transport::error_code error_;
    transport::sha256_stream hash_;
    std::thread thread_;
};

} // namespace ferry::client
