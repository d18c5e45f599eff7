// small_file_cache: the bytes of small files recently served, shared by all worker threads.
//
// The path is still resolved for every request (openat2 beneath the root, then fstat: the
// confinement and the answer's metadata never come from a cache); only the file's contents are
// reused, and only for the exact version fstat just saw: device, inode, size, mtime and ctime.
// A version is kept only once it has settled (mtime and ctime at least three seconds old: more
// than the coarsest timestamps of the file systems Linux writes, FAT's two seconds, plus the
// kernel's coarse clock lagging this one by a tick), so any
// later write gives the file a new mtime, and a write in progress when it was read would have
// left a recent one. Not covered: writes through a shared mapping (mmap), which the kernel
// stamps only when a page is first dirtied, and a network file system whose server's clock
// lags this one's: serve such files with --small-file-cache 0. A hit spares the re-open, the read
// and two closes (docs/benchmarks.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <sys/stat.h>
#include <unordered_map>

namespace ferry::server {

class small_file_cache {
public:
    /// What an entry counts against the budget: its bytes and its bookkeeping (list and map
    /// nodes, the string, the shared_ptr's control block).
    static std::size_t cost(const std::string& bytes) noexcept { return bytes.size() + 256; }

    /// Keeps at most `budget` bytes (contents plus bookkeeping, see cost; least recently used
    /// out first); 0 keeps none.
    /// A version is kept once its mtime and ctime are `settle` old (tests shorten it).
    explicit small_file_cache(std::size_t budget,
                              std::chrono::nanoseconds settle = std::chrono::seconds(3))
        : budget_(budget), settle_(settle.count()) {}

    /// The whole contents of the version `st` describes, or null.
    std::shared_ptr<const std::string> find(const struct stat& st);

    /// Offers the whole contents of the version `st` describes (read after that fstat). Kept
    /// only if the version has settled at `now_ns` (realtime) and fits the budget.
    void offer(const struct stat& st, std::shared_ptr<const std::string> bytes,
               std::int64_t now_ns);

    /// Whether offer would keep a version like `st` at `now_ns`.
    bool settled(const struct stat& st, std::int64_t now_ns) const noexcept;

    std::size_t size_in_bytes() const;

private:
    struct key {
        std::uint64_t dev;
        std::uint64_t ino;
        bool operator==(const key&) const = default;
    };
    struct key_hash {
        std::size_t operator()(const key& k) const noexcept {
            return std::hash<std::uint64_t>{}(k.ino * 0x9E3779B97F4A7C15ULL ^ k.dev);
        }
    };
    struct entry {
        key k;
        std::int64_t size;
        struct timespec mtime;
        struct timespec ctime;
        std::shared_ptr<const std::string> bytes;
    };
    using lru = std::list<entry>; // most recently used first

    mutable std::mutex mutex_;
    std::size_t budget_;
    std::int64_t settle_; ///< ns
    std::size_t used_ = 0;
    lru order_;
    std::unordered_map<key, lru::iterator, key_hash> index_;
};

} // namespace ferry::server
