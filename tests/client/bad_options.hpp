// Command lines ferry must refuse with exit 2 naming an option, before contacting anything:
// bad numbers, and options that mean nothing for their command. Shared by the in-process test
// of run_cli (every case) and the test of the real binary (one case per option).
#pragma once

#include <string>
#include <vector>

namespace ferry::test {

struct bad_command_line {
    std::vector<std::string> args;
    std::string option; ///< named on stderr
};

/// Port 1 of 127.0.0.1: nothing listens there, and a refused command line never gets that far.
inline const std::string nowhere = "ferry://127.0.0.1:1/f";

/// Bad values of every numeric option of every command; with `first_only`, one per option.
inline std::vector<bad_command_line> bad_numbers(bool first_only) {
    std::vector<bad_command_line> table;
    auto each = [&](const std::string& cmd, const std::string& option,
                    const std::vector<std::string>& values) {
        for (const auto& v : values) {
            table.push_back({{cmd, nowhere, "--" + option, v}, "--" + option});
            if (first_only)
                break;
        }
    };
    for (const char* cmd : {"get", "bench", "ls", "stat"}) {
        each(cmd, "connect-timeout", {"-1", "1e300", "0", "nan", "inf", "1000001", "abc"});
        each(cmd, "stall-timeout", {"1e300", "-0.5", "0", "x", ""});
    }
    each("get", "retries", {"-1", "4294967296", "1001", "1.5", "abc", " 3", "0x10"});
    each("get", "connections", {"-1", "65", "18446744073709551616", "two"});
    each("get", "parallel", {"-1", "0", "1001", "x"});
    each("get", "chunk-size", {"-1", "0", "4095", "1073741825", "18446744073709551615", "4k"});
    each("bench", "connections", {"-1", "0", "1000001", "4294967295", "x"});
    each("bench", "duration", {"-1", "0", "1e300", "inf", "nan", "x"});
    each("bench", "requests", {"-1", "0", "18446744073709551616", "1e3"});
    each("bench", "rate", {"-1", "1e300", "nan", "x"});
    each("bench", "warmup", {"-1", "1e300", "x"});
    each("bench", "ramp-up", {"-1", "1e300", "x"});
    each("bench", "slow-read", {"-1", "18446744073709551616", "1.5"});
    each("bench", "abort-after", {"-1", "18446744073709551616", "x"});
    each("bench", "threads", {"-1", "1025", "4294967296", "x"});
    // The short spellings name the long option.
    for (const std::string g : {"-1", " 3", "0x10", ""}) {
        table.push_back({{"get", nowhere, "-j", g}, "--connections"});
        table.push_back({{"bench", nowhere, "-c", g}, "--connections"});
        table.push_back({{"bench", nowhere, "-d", g}, "--duration"});
        table.push_back({{"bench", nowhere, "-n", g}, "--requests"});
        if (first_only)
            break;
    }
    return table;
}

/// Options that mean nothing for their command.
inline std::vector<bad_command_line> meaningless_options() {
    return {
        // ls and stat send one request, never retried, and print only their answer.
        {{"ls", nowhere, "--retries", "3"}, "--retries"},
        {{"stat", nowhere, "--retries", "3"}, "--retries"},
        {{"ls", nowhere, "--quiet"}, "--quiet"},
        {{"stat", nowhere, "-q"}, "-q"},
        // bench counts errors; it does not retry.
        {{"bench", nowhere, "--retries", "3"}, "--retries"},
        // Standard output: one connection, in order, nothing kept on disk.
        {{"get", nowhere, "-o", "-", "-j", "2"}, "--connections"},
        {{"get", nowhere, "-o", "-", "--chunk-size", "65536"}, "--chunk-size"},
        {{"get", nowhere, "-o", "-", "--no-resume"}, "--no-resume"},
        {{"get", nowhere, "-o", "-", "--force"}, "--force"},
        {{"get", nowhere, "-o", "-", "--skip-existing"}, "--skip-existing"},
        {{"get", nowhere, "--no-verify", "--sha256", std::string(64, 'a')}, "--no-verify"},
        // --idle sends no request.
        {{"bench", nowhere, "--idle", "-n", "5"}, "--requests"},
        {{"bench", nowhere, "--idle", "--rate", "10"}, "--rate"},
        {{"bench", nowhere, "--idle", "--verify"}, "--verify"},
        {{"bench", nowhere, "--idle", "--slow-read", "100"}, "--slow-read"},
        {{"bench", nowhere, "--idle", "--abort-after", "100"}, "--abort-after"},
        // A count or a duration, not both.
        {{"bench", nowhere, "-n", "5", "-d", "3"}, "--duration"},
    };
}

/// The command line, quoted, for failure messages.
inline std::string quoted(const std::vector<std::string>& args) {
    std::string line;
    for (const auto& a : args)
        line += " '" + a + "'";
    return line;
}

} // namespace ferry::test
