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

segment_planner::segment_planner(const std::vector<byte_range>& missing, unsigned workers,
                                 std::uint64_t chunk)
    : segments_(std::max(workers, 1U)), queue_(missing), chunk_(std::max<std::uint64_t>(chunk, 1)) {
    // Deal the missing bytes out in equal shares: split the queue's ranges at share boundaries.
    std::uint64_t total = 0;
    for (const auto& r : missing)
        total += r.size();
    const std::uint64_t share = (total + segments_.size() - 1) / segments_.size();
    std::vector<byte_range> pieces;
    for (auto r : missing) {
        while (r.size() > share && share > 0) {
            pieces.push_back({r.begin, r.begin + share});
            r.begin += share;
        }
        if (r.size() > 0)
            pieces.push_back(r);
    }
    queue_ = std::move(pieces);
    std::reverse(queue_.begin(), queue_.end()); // pop_back hands them out in file order
}

std::optional<byte_range> segment_planner::next(unsigned worker) {
    auto& mine = segments_.at(worker);
    if (mine.pos >= mine.end) {
        if (!returned_.empty()) {
            auto r = returned_.back();
            returned_.pop_back();
            mine = {r.begin, r.end};
        } else if (!queue_.empty()) {
            mine = {queue_.back().begin, queue_.back().end};
            queue_.pop_back();
        } else {
            // Steal the tail half of the largest remaining segment, if it is worth a GET.
            auto victim = std::max_element(
                segments_.begin(), segments_.end(), [](const segment& a, const segment& b) {
                    return a.end - std::min(a.pos, a.end) < b.end - std::min(b.pos, b.end);
                });
            const std::uint64_t left = victim->end - std::min(victim->pos, victim->end);
            if (left < 2)
                return std::nullopt;
            const std::uint64_t mid = victim->pos + left / 2;
            mine = {mid, victim->end};
            victim->end = mid;
        }
    }
    const byte_range r{mine.pos, std::min(mine.end, mine.pos + chunk_)};
    mine.pos = r.end;
    return r;
}

} // namespace ferry::client
