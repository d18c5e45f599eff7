// ferry's exit codes (docs/client.md): distinct per kind of failure, so scripts can react.
#pragma once

#include "ferry/client/connection.hpp"

namespace ferry::client {

enum class exit_code : int {
    ok = 0,
    failure = 1,   ///< anything else: a server fault, invalid data from the server
    usage = 2,     ///< bad command line
    not_found = 3, ///< no such file, or not a file (GET) / not a directory (ls)
    forbidden = 4, ///< the server refuses the path
    network = 5,   ///< connection refused, reset, timed out, stalled, retries exhausted
    integrity = 6, ///< the digest does not match, or the file kept changing
    busy = 7,      ///< the server stayed busy (or was shutting down) through every retry
    local_io = 8,  ///< writing locally failed: disk full, permission denied, missing directory
    exists = 9,    ///< the output file exists (see --force, --skip-existing)
};

/// The exit code for a failed request.
exit_code code_for(const failure& f);

} // namespace ferry::client
