// bench_window: what a bench run counts. Bytes by when they arrived, requests by when they
// ended, the window's length by when the run stopped.
#include "ferry/client/bench.hpp"

#include <gtest/gtest.h>

namespace ferry::test {
namespace {

namespace fc = ferry::client;
using namespace std::chrono_literals;

TEST(BenchWindow, BytesCountWhereTheyArrivedAndAStraddlingTransferContributesItsInsidePart) {
    const fc::clock::time_point a{10s}, b{20s};
    const fc::bench_window w{a, b};
    // A transfer of 64 KiB reads from 8 s to 24 s, one read per second: only the reads at
    // 10 s .. 19 s count (the window is [a, b): a read at exactly b is outside).
    std::uint64_t counted = 0;
    for (auto t = 8s; t <= 24s; t += 1s)
        counted += w.bytes_inside(fc::clock::time_point{t}, 65536);
    EXPECT_EQ(counted, 10U * 65536);
    EXPECT_EQ(w.bytes_inside(a, 7), 7U);
    EXPECT_EQ(w.bytes_inside(b, 7), 0U);
    EXPECT_EQ(w.bytes_inside(b - 1ns, 7), 7U);
    EXPECT_EQ(w.bytes_inside(a - 1ns, 7), 0U);
}

TEST(BenchWindow, RequestsCountWhereTheyEnd) {
    const fc::bench_window w{fc::clock::time_point{1s}, fc::clock::time_point{3s}};
    EXPECT_FALSE(w.contains(fc::clock::time_point{999ms})); // ended in the warm-up
    EXPECT_TRUE(w.contains(fc::clock::time_point{1s}));
    EXPECT_TRUE(w.contains(fc::clock::time_point{2999ms}));
    EXPECT_FALSE(w.contains(fc::clock::time_point{3s})); // ended after the window: cut
    EXPECT_FALSE(w.over(fc::clock::time_point{2999ms}));
    EXPECT_TRUE(w.over(fc::clock::time_point{3s}));
}

TEST(BenchWindow, SecondsAreTheLengthMeasured) {
    const fc::bench_window w{fc::clock::time_point{1s}, fc::clock::time_point{3s}};
    EXPECT_DOUBLE_EQ(w.seconds(fc::clock::time_point{7s}), 2.0);     // ran past the end: 2 s
    EXPECT_DOUBLE_EQ(w.seconds(fc::clock::time_point{2500ms}), 1.5); // stopped early
    EXPECT_DOUBLE_EQ(w.seconds(fc::clock::time_point{500ms}), 0.0);  // never reached it
    // --requests: no end; the length is up to the last request.
    const fc::bench_window open{fc::clock::time_point{1s}, fc::clock::time_point::max()};
    EXPECT_DOUBLE_EQ(open.seconds(fc::clock::time_point{4s}), 3.0);
    EXPECT_FALSE(open.over(fc::clock::time_point{100h}));
}

} // namespace
} // namespace ferry::test
