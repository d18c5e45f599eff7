// download_state: the sidecar file (OUT.part.state, JSON) that makes a resume safe: which server
// file version the .part holds and which byte ranges of it are complete and durable.
#pragma once

#include "ferry/client/segment_planner.hpp"
#include "ferry/protocol/messages.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace ferry::client {

struct download_state {
    std::string url;
    protocol::file_identity identity{};
    std::uint64_t size = 0;
    range_set done; ///< fdatasync'ed before they are recorded here

    /// The state at `path`; nullopt if there is none. A file that cannot be parsed is treated as
    /// absent (and `warning` says so): the download starts over rather than trusting it.
    static std::optional<download_state> load(const std::filesystem::path& path,
                                              std::string& warning);
    /// Writes atomically: a temporary file, fsync, rename. Throws std::system_error.
    void save(const std::filesystem::path& path) const;
};

std::string to_hex(std::span<const std::byte> bytes);
/// Parses 2*N hex digits into `out`; false if `text` is anything else.
bool from_hex(std::string_view text, std::span<std::byte> out);

} // namespace ferry::client
