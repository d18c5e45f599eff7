// ferry bench: a load generator for ferryd. N connections (closed loop), or requests at a fixed
// rate (open loop, latency measured from each request's intended start, so a slow server cannot
// hide its queueing: no coordinated omission). Spread over one io_context per core.
#pragma once

#include "ferry/client/connection.hpp"
#include "ferry/client/histogram.hpp"
#include "ferry/client/url.hpp"

#include <array>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ferry::client {

struct bench_options {
    std::vector<url> targets; ///< requested round-robin
    unsigned connections = 10;
    double duration = 10;                  ///< seconds (ignored when requests is set)
    std::optional<std::uint64_t> requests; ///< stop after this many
    double rate = 0;                       ///< requests/s for an open loop; 0 = closed loop
    double warmup = 0;                     ///< seconds whose results are discarded
    double ramp_up = 0;                    ///< seconds over which connections are opened
    bool verify = false;                   ///< hash every body and compare with the server's digest
    std::uint64_t slow_read = 0;   ///< read bodies at this many bytes/s (0: as fast as possible)
    std::uint64_t abort_after = 0; ///< disconnect after this many body bytes (0: never)
    bool idle = false;             ///< connect and send nothing
    unsigned threads = 0;          ///< 0: one per core
    timeouts limits;
};

/// Why a request failed.
enum class bench_error {
    refused,
    reset,
    timeout,
    busy,
    bad_status,
    short_body,
    digest_mismatch,
    other
};
inline constexpr std::size_t bench_error_count = 8;
const char* name_of(bench_error e);

struct bench_report {
    double seconds = 0;
    std::uint64_t requests = 0;
    std::uint64_t bytes = 0;
    std::uint64_t aborted = 0;   ///< --abort-after disconnects (not errors)
    std::uint64_t connected = 0; ///< --idle: connections still open at the end
    std::array<std::uint64_t, bench_error_count> errors{};
    histogram connect, first_byte, last_byte; ///< microseconds
    std::vector<std::string> warnings;

    std::uint64_t error_total() const noexcept;
    std::string text() const;
    nlohmann::json json() const;
};

/// The measured window [from, to) of a run and what falls inside it: body bytes by the time
/// they were received (a transfer straddling an edge contributes the bytes received inside),
/// requests and errors by the time they ended. Pure: the bench loop feeds it clock readings.
class bench_window {
public:
    bench_window(clock::time_point from, clock::time_point to) noexcept : from_(from), to_(to) {}

    bool contains(clock::time_point t) const noexcept { return from_ <= t && t < to_; }
    /// True from the window's end on: transfers still running are cut.
    bool over(clock::time_point t) const noexcept { return t >= to_; }
    /// `n` body bytes received at `t`: the count of them inside the window (n or 0).
    std::uint64_t bytes_inside(clock::time_point t, std::uint64_t n) const noexcept {
        return contains(t) ? n : 0;
    }
    /// The window's length as measured by a run that stopped at `finished`: [from, min(finished,
    /// to)), 0 if it stopped before the window began.
    double seconds(clock::time_point finished) const noexcept;

    clock::time_point from() const noexcept { return from_; }
    clock::time_point to() const noexcept { return to_; }

private:
    clock::time_point from_;
    clock::time_point to_;
};

/// Runs the benchmark (blocking) and returns the merged report. Raises RLIMIT_NOFILE as far as
/// the hard limit allows and warns when the connections may exceed it or the ephemeral ports.
bench_report run_bench(const bench_options& o);

} // namespace ferry::client
