// download_file: one file, safely (OUT.part + state, verify, fsync, rename) and fast
// (segments over several connections, rebalanced as they finish).
#pragma once

#include "ferry/client/connection.hpp"
#include "ferry/client/exit_code.hpp"
#include "ferry/client/progress.hpp"
#include "ferry/client/url.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry::client {

struct get_options {
    std::string output;                        ///< "" = the URL's base name; "-" = standard output
    unsigned connections = 0;                  ///< -j; 0 = automatic (see automatic_connections)
    bool verify = true;                        ///< compare with the server's SHA-256
    std::optional<fp::sha256_digest> expected; ///< --sha256: compare with this instead
    bool resume = true;                        ///< false: --no-resume
    bool force = false;                        ///< replace an existing output file
    bool skip_existing = false;                ///< leave an existing output file, succeed
    unsigned retries = 5;                      ///< per failure streak; also restarts after a change
    std::uint64_t chunk = 4 << 20;             ///< bytes per GET
    timeouts limits;
    /// --digest-timeout: how long the server may take to answer the STAT with SHA-256.
    clock::duration digest_timeout = std::chrono::seconds(600);
    /// --mirror: the same file on other servers. Every source must report the first URL's size
    /// and SHA-256 before any byte is written; chunks are then shared out among them.
    std::vector<url> mirrors;
};

/// -j when not given: 1 below 32 MiB, 4 from there on.
unsigned automatic_connections(std::uint64_t size);

/// Idle keep-alive connections per server, so several files reuse them. Single-threaded.
class connection_pool {
public:
    explicit connection_pool(timeouts t) : timeouts_(t) {}
    /// An idle connection to u's server, or a new one.
    asio::awaitable<std::pair<failure, std::unique_ptr<connection>>> take(const url& u);
    /// Keeps `c` for reuse if it is reusable.
    void give_back(const url& u, std::unique_ptr<connection> c);

private:
    timeouts timeouts_;
    std::multimap<std::string, std::unique_ptr<connection>> idle_;
};

struct file_result {
    std::string url;
    std::string output;
    exit_code code = exit_code::ok;
    std::string error; ///< one line when code != ok
    std::uint64_t size = 0;
    std::uint64_t fetched = 0; ///< body bytes received by this run (less than size after a resume)
    double seconds = 0;
    unsigned connections = 0;
    bool resumed = false;   ///< continued a partial download
    bool restarted = false; ///< the server's file changed: started over
    bool skipped = false;   ///< --skip-existing left an existing file
    std::string sha256;     ///< hex, when verified
};

/// Downloads `u` as `o` says. Never leaves a partial or unverified file under the output name;
/// on failure the .part and state stay for a rerun (except after a digest mismatch, which
/// discards them). `progress_id` is this file's line in `p`.
asio::awaitable<file_result> download_file(url u, get_options o, connection_pool& pool, progress& p,
                                           std::size_t progress_id);

} // namespace ferry::client
