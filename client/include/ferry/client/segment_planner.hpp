// segment_planner: splits a download into byte ranges for N connections and rebalances them.
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

/// Each worker owns a segment and asks for it a chunk at a time (one GET each). A worker whose
/// segment is used up takes a range given back after a failure, or else splits the largest
/// remaining segment of another worker in two and takes the tail: so the last part of a file is
/// not left to one slow connection. Single-threaded.
class segment_planner {
public:
    /// `missing`: the ranges still to fetch. `chunk`: the most one GET asks for.
    segment_planner(const std::vector<byte_range>& missing, unsigned workers, std::uint64_t chunk);

    /// The next chunk for `worker`, or nullopt when nothing is left to hand out.
    std::optional<byte_range> next(unsigned worker);
    /// A chunk that failed, to be fetched again by whoever asks next.
    void give_back(byte_range r) { returned_.push_back(r); }

private:
    struct segment {
        std::uint64_t pos = 0;
        std::uint64_t end = 0;
    };
    std::vector<segment> segments_;
    std::vector<byte_range> queue_; ///< ranges not yet given to any segment
    std::vector<byte_range> returned_;
    std::uint64_t chunk_;
};

} // namespace ferry::client
