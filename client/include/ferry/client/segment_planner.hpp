// segment_planner: hands out a download's missing bytes as chunks, in file order, to N connections.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace ferry::client {

/// [begin, end)
struct byte_range {
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
    std::uint64_t size() const noexcept { return end - begin; }
    bool operator==(const byte_range&) const = default;
};

/// A set of disjoint, sorted, merged ranges.
class range_set {
public:
    void insert(byte_range r);
    const std::vector<byte_range>& ranges() const noexcept { return ranges_; }
    std::uint64_t total() const noexcept;
    /// What [0, size) holds that this set does not.
    std::vector<byte_range> missing(std::uint64_t size) const;

private:
    std::vector<byte_range> ranges_;
};

/// Every connection asks for the next chunk of the file, in file order (one GET each; a
/// connection retries its own chunk after a failure). In file order, the completed prefix grows
/// while the download runs (at most one chunk per connection is in flight), so it can be hashed
/// meanwhile, and no connection is ever left holding a large share: the slowest one delays the
/// end by at most one chunk. Single-threaded.
class segment_planner {
public:
    /// `missing`: the ranges still to fetch, in order. `chunk`: the most one GET asks for.
    segment_planner(const std::vector<byte_range>& missing, std::uint64_t chunk);

    /// The next chunk, or nullopt when nothing is left to hand out.
    std::optional<byte_range> next();
    /// Hands `r` (a chunk next() gave and that was not fetched) out again, before anything else:
    /// a connection that gives up leaves its chunk to the others.
    void give_back(byte_range r);

private:
    std::vector<byte_range> queue_; ///< reversed: the back is the next in file order
    std::uint64_t chunk_;
};

} // namespace ferry::client
