// download_state: the sidecar file (OUT.part.state, JSON) that makes a resume safe: which server
// file version the .part holds and which byte ranges of it are complete and durable.
#pragma once

#include "ferry/client/output_dir.hpp"
#include "ferry/client/segment_planner.hpp"
#include "ferry/protocol/messages.hpp"

#include <optional>
#include <string>

namespace ferry::client {

struct download_state {
    std::string url; ///< for messages: a resume matches the identity, whatever URL spelled it
    protocol::file_identity identity{};
    std::uint64_t size = 0;
    range_set done; ///< fdatasync'ed before they are recorded here
    /// --mirror: the SHA-256 the sources agreed on. The .part holds bytes from several servers,
    /// each with its own identity: it is resumed only where it will be checked against this.
    std::optional<protocol::sha256_digest> sha256;

    /// The state `name` in `dir`; nullopt if there is none. A file that cannot be read or parsed
    /// is treated as absent (and `warning` says so): the download starts over rather than
    /// trusting it. Something ferry did not create there (a symlink, a hard link, ...) is
    /// refused: nullopt and `error` (see output_dir::open_ours).
    static std::optional<download_state> load(const output_dir& dir, const std::string& name,
                                              std::string& warning, local_error& error);
    /// Writes `name` in `dir` atomically (output_dir::write_atomically).
    local_error save(const output_dir& dir, const std::string& name) const;
};

std::string to_hex(std::span<const std::byte> bytes);
/// Parses 2*N hex digits into `out`; false if `text` is anything else.
bool from_hex(std::string_view text, std::span<std::byte> out);

} // namespace ferry::client
