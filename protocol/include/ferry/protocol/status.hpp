// Request outcomes carried in ERROR, GET_TRAILER and LIST_END frames. Pure C++20.
#pragma once

#include <cstdint>
#include <string_view>

namespace ferry::protocol {

/// The outcome of a request (docs/protocol.md, "Statuses"). The numeric values are wire values.
enum class status : std::uint16_t {
    ok = 0,        ///< Success.
    not_found = 1, ///< The path does not exist under the served root.
    forbidden = 2, ///< The path exists but may not be served (outside the root, denied symlink,
                   ///< permissions).
    not_regular_file = 3, ///< GET of something that is not a regular file; LIST of a non-directory.
    bad_request = 4,      ///< The request is malformed or its path is not acceptable.
    range_not_satisfiable = 5, ///< The requested offset lies beyond the end of the file.
    changed = 6,       ///< The file is not the expected version, or changed while it was sent.
    busy = 7,          ///< The server is at a connection limit; retry after the hint.
    shutting_down = 8, ///< The server is stopping and takes no new requests.
    too_large = 9,     ///< A frame or a path exceeds a protocol limit.
    unsupported_version = 10, ///< The server does not speak the frame's protocol version.
    internal_error = 11,      ///< The server failed (I/O error, out of resources).
};

/// The largest status value this version defines.
inline constexpr std::uint16_t max_status_value = 11;

/// A short human-readable text for a status ("not found"); "unknown status" for values a
/// newer peer may send.
std::string_view status_text(status s) noexcept;

/// True for values this version defines.
constexpr bool is_known(status s) noexcept {
    return static_cast<std::uint16_t>(s) <= max_status_value;
}

} // namespace ferry::protocol
