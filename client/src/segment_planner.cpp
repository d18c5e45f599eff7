#include "ferry/client/segment_planner.hpp"

#include <algorithm>

namespace ferry::client {

void range_set::insert(byte_range r) {
    if (r.begin >= r.end)
        return;
    auto it =
        std::lower_bound(ranges_.begin(), ranges_.end(), r,
                         [](const byte_range& a, const byte_range& b) { return a.end < b.begin; });
    // `it` is the first range that touches or follows r: merge everything that touches.
    while (it != ranges_.end() && it->begin <= r.end) {
        r.begin = std::min(r.begin, it->begin);
        r.end = std::max(r.end, it->end);
        it = ranges_.erase(it);
    }
    ranges_.insert(it, r);
}

std::uint64_t range_set::total() const noexcept {
    std::uint64_t n = 0;
    for (const auto& r : ranges_)
        n += r.size();
    return n;
}

std::vector<byte_range> range_set::missing(std::uint64_t size) const {
    std::vector<byte_range> out;
    std::uint64_t pos = 0;
    for (const auto& r : ranges_) {
        if (r.begin >= size)
            break;
        if (r.begin > pos)
            out.push_back({pos, r.begin});
        pos = std::max(pos, r.end);
    }
    if (pos < size)
        out.push_back({pos, size});
    return out;
}

segment_planner::segment_planner(const std::vector<byte_range>& missing, std::uint64_t chunk)
    : queue_(missing.rbegin(), missing.rend()), chunk_(std::max<std::uint64_t>(chunk, 1)) {}

std::optional<byte_range> segment_planner::next() {
    while (!queue_.empty() && queue_.back().size() == 0)
        queue_.pop_back();
    if (queue_.empty())
        return std::nullopt;
    auto& front = queue_.back();
    const byte_range r{front.begin, std::min(front.end, front.begin + chunk_)};
    front.begin = r.end;
    return r;
}

void segment_planner::give_back(byte_range r) {
    if (r.size() > 0)
        queue_.push_back(r); // the back is the next in file order
}

} // namespace ferry::client
