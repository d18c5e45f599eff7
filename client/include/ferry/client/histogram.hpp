// histogram: latencies in a log-linear histogram (HdrHistogram style): exact below 32, then 16
// buckets per power of two, so a value's bucket edge is at most 1/16 (6.25%) above it, in a fixed
// 15 KiB whatever the count.
#pragma once

#include <array>
#include <cstdint>

namespace ferry::client {

class histogram {
public:
    /// Records a value (any unit; ferry bench uses microseconds).
    void record(std::uint64_t value) noexcept;
    void merge(const histogram& other) noexcept;

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t max() const noexcept { return max_; }
    /// The value at or below which `p` percent of the recorded values lie (upper bucket edge,
    /// capped at max()); 0 when empty.
    std::uint64_t percentile(double p) const noexcept;

private:
    static constexpr unsigned sub_bits = 5;
    static constexpr unsigned sub_count = 1U << sub_bits;
    static constexpr unsigned bucket_count = (64 - sub_bits + 1) * sub_count;
    static unsigned index_of(std::uint64_t v) noexcept;
    static std::uint64_t upper_edge(unsigned index) noexcept;

    std::array<std::uint64_t, bucket_count> counts_{};
    std::uint64_t count_ = 0;
    std::uint64_t max_ = 0;
};

} // namespace ferry::client
