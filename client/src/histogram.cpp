#include "ferry/client/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace ferry::client {

unsigned histogram::index_of(std::uint64_t v) noexcept {
    if (v < sub_count)
        return static_cast<unsigned>(v);                                         // exact below 32
    const unsigned magnitude = 63U - static_cast<unsigned>(std::countl_zero(v)); // >= sub_bits
    const unsigned shift = magnitude - sub_bits + 1;
    const auto sub = static_cast<unsigned>(v >> shift); // in [sub_count/2, sub_count)
    return (shift - 1) * (sub_count / 2) + sub +
           sub_count / 2; // 32, 33, ... continue the exact range
}

std::uint64_t histogram::upper_edge(unsigned index) noexcept {
    if (index < sub_count)
        return index;
    const unsigned shift = (index - sub_count) / (sub_count / 2) + 1;
    const unsigned sub = (index - sub_count) % (sub_count / 2) + sub_count / 2;
    return ((static_cast<std::uint64_t>(sub) + 1) << shift) - 1;
}

void histogram::record(std::uint64_t value) noexcept {
    ++counts_[std::min<unsigned>(index_of(value), bucket_count - 1)];
    ++count_;
    max_ = std::max(max_, value);
}

void histogram::merge(const histogram& other) noexcept {
    for (unsigned i = 0; i < bucket_count; ++i)
        counts_[i] += other.counts_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
}

std::uint64_t histogram::percentile(double p) const noexcept {
    if (count_ == 0)
        return 0;
    const auto rank =
        static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
    std::uint64_t seen = 0;
    for (unsigned i = 0; i < bucket_count; ++i) {
        seen += counts_[i];
        if (seen >= std::max<std::uint64_t>(rank, 1))
            return std::min(upper_edge(i), max_);
    }
    return max_;
}

} // namespace ferry::client
