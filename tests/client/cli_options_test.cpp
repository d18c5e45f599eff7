// run_cli in-process: every bad number and every meaningless option is exit 2 naming the
// option, before anything is contacted (nothing listens on the URL's port: a command line let
// through would end in exit 5).
#include "bad_options.hpp"
#include "ferry/client/cli.hpp"

#include <gtest/gtest.h>

namespace ferry::test {
namespace {

/// Runs `ferry args...` in this process; returns the exit code and what went to stderr (what
/// went to stdout is dropped).
std::pair<int, std::string> run_ferry(const std::vector<std::string>& args) {
    std::vector<const char*> argv{"ferry"};
    for (const auto& a : args)
        argv.push_back(a.c_str());
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    const int code = ferry::client::run_cli(static_cast<int>(argv.size()), argv.data());
    (void)testing::internal::GetCapturedStdout();
    return {code, testing::internal::GetCapturedStderr()};
}

TEST(CliOptions, EveryBadNumberIsAUsageErrorNamingTheOption) {
    const auto table = bad_numbers(false);
    EXPECT_GT(table.size(), 100U);
    for (const auto& b : table) {
        const auto [code, err] = run_ferry(b.args);
        EXPECT_EQ(code, 2) << quoted(b.args) << ": " << err;
        EXPECT_NE(err.find(b.option), std::string::npos) << quoted(b.args) << ": " << err;
    }
}

TEST(CliOptions, AnOptionThatMeansNothingForTheCommandIsAUsageError) {
    for (const auto& b : meaningless_options()) {
        const auto [code, err] = run_ferry(b.args);
        EXPECT_EQ(code, 2) << quoted(b.args) << ": " << err;
        EXPECT_NE(err.find(b.option), std::string::npos) << quoted(b.args) << ": " << err;
    }
}

TEST(CliOptions, BoundaryValuesAreAccepted) {
    // Accepted values reach the network: port 1 refuses at once (exit 5), never exit 2.
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"stat", nowhere, "--connect-timeout", "1000000"},
          {"ls", nowhere, "--stall-timeout", "0.001", "--json"},
          {"get", nowhere, "-o", "out-never", "--retries", "0", "-j", "64", "--chunk-size",
           "1073741824", "--parallel", "1000"},
          {"bench", nowhere, "-n", "1", "-c", "1", "--threads", "1024", "--rate", "1e9", "--warmup",
           "0", "--json"}}) {
        const auto [code, err] = run_ferry(args);
        EXPECT_EQ(code, args[0] == "bench" ? 1 : 5) << quoted(args) << ": " << err;
    }
}

} // namespace
} // namespace ferry::test
