// retry_policy: which failures retry, how long each retry waits, how many a streak gets.
#include "ferry/client/retry_policy.hpp"

#include <boost/asio/error.hpp>
#include <gtest/gtest.h>

namespace ferry::test {
namespace {

namespace fc = ferry::client;
namespace fp = ferry::protocol;
using namespace std::chrono_literals;

fc::failure reset() {
    return fc::failure::network(boost::asio::error::connection_reset);
}

fc::failure server(fp::status code, std::uint32_t retry_after_ms = 0) {
    fc::failure f;
    f.what = fc::failure::kind::server;
    f.error = {code, false, retry_after_ms, ""};
    return f;
}

TEST(RetryPolicy, BackoffDoublesFrom200MsToA10SecondCapWithJitterInTheUpperHalf) {
    // The bound b of the n-th retry; each wait lies in [b/2, b].
    const fc::clock::duration bounds[] = {200ms,  400ms, 800ms, 1600ms, 3200ms,
                                          6400ms, 10s,   10s,   10s};
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
        fc::retry_policy p{9, seed};
        for (unsigned n = 0; n < 9; ++n) {
            const auto wait = p.next(reset());
            ASSERT_TRUE(wait) << "retry " << n + 1;
            EXPECT_GE(*wait, bounds[n] / 2) << "retry " << n + 1 << ", seed " << seed;
            EXPECT_LE(*wait, bounds[n]) << "retry " << n + 1 << ", seed " << seed;
            EXPECT_EQ(p.used(), n + 1);
        }
    }
}

TEST(RetryPolicy, JitterSpreadsTheWaits) {
    fc::clock::duration lo = 1h, hi = 0s;
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
        fc::retry_policy p{1, seed};
        const auto wait = *p.next(reset());
        lo = std::min(lo, wait);
        hi = std::max(hi, wait);
    }
    EXPECT_LT(lo, 120ms); // near 100 ms
    EXPECT_GT(hi, 180ms); // near 200 ms
}

TEST(RetryPolicy, AStreakHasAttemptsRetriesAndResetStartsANewOne) {
    fc::retry_policy p{3, 1};
    EXPECT_EQ(p.attempts(), 3U);
    for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(p.next(reset()));
    EXPECT_FALSE(p.next(reset()));
    EXPECT_FALSE(p.next(reset()));
    p.reset();
    EXPECT_EQ(p.used(), 0U);
    const auto first = p.next(reset());
    ASSERT_TRUE(first);
    EXPECT_LE(*first, 200ms); // the streak starts again from the shortest wait
    fc::retry_policy none{0, 1};
    EXPECT_FALSE(none.next(reset()));
}

TEST(RetryPolicy, TheServersRetryAfterHintIsHonouredAndCapped) {
    fc::retry_policy p{5, 1};
    EXPECT_EQ(p.next(server(fp::status::busy, 1500)), fc::clock::duration{1500ms});
    EXPECT_EQ(p.next(server(fp::status::shutting_down, 250)), fc::clock::duration{250ms});
    EXPECT_EQ(p.next(server(fp::status::busy, 3'600'000)), fc::clock::duration{60s});
    EXPECT_EQ(p.used(), 3U);
    const auto no_hint = p.next(server(fp::status::busy)); // the 4th retry: 0.8-1.6 s
    ASSERT_TRUE(no_hint);
    EXPECT_GE(*no_hint, 800ms);
    EXPECT_LE(*no_hint, 1600ms);
}

TEST(RetryPolicy, FailuresThatCannotHealStopAtOnce) {
    for (auto code : {fp::status::not_found, fp::status::forbidden, fp::status::changed,
                      fp::status::bad_request, fp::status::not_regular_file}) {
        fc::retry_policy p{5, 1};
        EXPECT_FALSE(fc::retryable(server(code))) << fp::status_text(code);
        EXPECT_FALSE(p.next(server(code, 100))) << fp::status_text(code);
        EXPECT_EQ(p.used(), 0U);
    }
    fc::retry_policy p{5, 1};
    EXPECT_FALSE(p.next(fc::failure::protocol(std::make_error_code(std::errc::bad_message))));
    for (const auto& f :
         {reset(), fc::failure::network(boost::asio::error::timed_out),
          fc::failure::network(boost::asio::error::connection_refused), server(fp::status::busy),
          server(fp::status::shutting_down), server(fp::status::internal_error)})
        EXPECT_TRUE(fc::retryable(f)) << f.message();
}

} // namespace
} // namespace ferry::test
