// The messages of protocol v1 (docs/protocol.md, "Messages"): plain structs with
// encode/decode over byte spans. Pure C++20: no I/O, no allocation beyond the strings and
// vectors the decoded structs own.
#pragma once

#include "ferry/protocol/frame.hpp"
#include "ferry/protocol/status.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace ferry::protocol {

inline constexpr std::size_t max_path_size = 4096; ///< bytes of a request path
inline constexpr std::size_t max_name_size = 255;  ///< bytes of one listed name
inline constexpr std::size_t max_text_size = 1024; ///< bytes of an ERROR message text
/// The length value meaning "from offset to the end of the file".
inline constexpr std::uint64_t to_end = UINT64_MAX;
/// The largest file offset or size (file offsets are signed 64-bit on every platform).
inline constexpr std::uint64_t max_offset = INT64_MAX;

/// Opaque version stamp of a file: equal while the file is unchanged (ferryd derives it from
/// device, inode, size and mtime). Clients compare it byte for byte and never interpret it.
using file_identity = std::array<std::byte, 32>;
using sha256_digest = std::array<std::byte, 32>;

enum class file_kind : std::uint8_t { regular = 1, directory = 2, symlink = 3, other = 4 };

/// GET: a byte range of one file. The reply is GET_HEADER, exactly header.length body bytes and
/// GET_TRAILER; or ERROR.
struct get_request {
    static constexpr frame_type type = frame_type::get_request;
    std::string path;
    std::uint64_t offset = 0;
    std::uint64_t length = to_end;
    /// When set, the server answers `changed` unless the file has exactly this identity.
    std::optional<file_identity> if_identity;
    bool operator==(const get_request&) const = default;
};

/// STAT: metadata of one path, optionally with the SHA-256 of a regular file.
struct stat_request {
    static constexpr frame_type type = frame_type::stat_request;
    std::string path;
    bool want_sha256 = false;
    bool operator==(const stat_request&) const = default;
};

/// LIST: the entries of one directory ("" is the served root). The reply is zero or more
/// LIST_ENTRIES frames and one LIST_END; or ERROR.
struct list_request {
    static constexpr frame_type type = frame_type::list_request;
    std::string path;
    bool operator==(const list_request&) const = default;
};

/// ERROR: the request failed (or, before any request, the connection is refused).
struct error_reply {
    static constexpr frame_type type = frame_type::error;
    status code = status::internal_error; ///< never ok; values unknown to this version are kept
    bool closing = false;                 ///< the server closes the connection after this frame
    std::uint32_t retry_after_ms = 0;     ///< busy / shutting_down: when to retry; 0 = no hint
    std::string message;                  ///< one line for a human, at most max_text_size bytes
    bool operator==(const error_reply&) const = default;
};

/// GET_HEADER: the file and the exact range whose `length` raw bytes follow this frame.
struct get_header {
    static constexpr frame_type type = frame_type::get_header;
    file_identity identity{};
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    bool operator==(const get_header&) const = default;
};

/// GET_TRAILER: follows the body. ok: the body is the file's bytes, unchanged while sent.
/// changed / internal_error: the body must be discarded.
struct get_trailer {
    static constexpr frame_type type = frame_type::get_trailer;
    status code = status::ok;
    bool operator==(const get_trailer&) const = default;
};

struct stat_reply {
    static constexpr frame_type type = frame_type::stat_reply;
    file_kind kind = file_kind::regular;
    file_identity identity{};
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::optional<sha256_digest> sha256; ///< only for regular files, only when asked
    bool operator==(const stat_reply&) const = default;
};

struct list_entry {
    std::string name; ///< one path component: 1..255 bytes of UTF-8, no '/', no NUL, not . or ..
    file_kind kind = file_kind::regular;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    bool operator==(const list_entry&) const = default;
};

/// LIST_ENTRIES: some entries of the listed directory, in no particular order.
struct list_entries {
    static constexpr frame_type type = frame_type::list_entries;
    std::vector<list_entry> entries;
    bool operator==(const list_entries&) const = default;
};

/// LIST_END: ends a listing. entry_count is the number of entries sent in all LIST_ENTRIES
/// frames of this reply, so a client can tell a complete listing from a cut one.
struct list_end {
    static constexpr frame_type type = frame_type::list_end;
    status code = status::ok;
    std::uint64_t entry_count = 0;
    bool operator==(const list_end&) const = default;
};

/// Bytes one list_entry adds to a LIST_ENTRIES payload (servers fill frames up to
/// max_payload_size with it).
std::size_t encoded_size(const list_entry& e) noexcept;

/// Frame size (header + payload) of a message; encode() writes exactly this many bytes.
std::size_t encoded_size(const get_request& m) noexcept;
std::size_t encoded_size(const stat_request& m) noexcept;
std::size_t encoded_size(const list_request& m) noexcept;
std::size_t encoded_size(const error_reply& m) noexcept;
std::size_t encoded_size(const get_header& m) noexcept;
std::size_t encoded_size(const get_trailer& m) noexcept;
std::size_t encoded_size(const stat_reply& m) noexcept;
std::size_t encoded_size(const list_entries& m) noexcept;
std::size_t encoded_size(const list_end& m) noexcept;

/// Writes the whole frame (header + payload) into the first encoded_size(m) bytes of `out`.
/// Validates first and writes nothing on error: the same rules decode() enforces (path_too_long,
/// bad_path, bad_name, bad_text, range_overflow, bad_range, bad_status, frame_too_large), and
/// out.size() < encoded_size(m) gives std::errc::no_buffer_space.
std::error_code encode(const get_request& m, std::span<std::byte> out) noexcept;
std::error_code encode(const stat_request& m, std::span<std::byte> out) noexcept;
std::error_code encode(const list_request& m, std::span<std::byte> out) noexcept;
std::error_code encode(const error_reply& m, std::span<std::byte> out) noexcept;
std::error_code encode(const get_header& m, std::span<std::byte> out) noexcept;
std::error_code encode(const get_trailer& m, std::span<std::byte> out) noexcept;
std::error_code encode(const stat_reply& m, std::span<std::byte> out) noexcept;
std::error_code encode(const list_entries& m, std::span<std::byte> out) noexcept;
std::error_code encode(const list_end& m, std::span<std::byte> out) noexcept;

/// Decodes the payload of a frame of the message's type (frame::payload from decode_frame).
/// Leaves `out` unspecified on error. Errors: truncated, reserved_bits_set, bad_extension,
/// unknown_critical_extension and the field rules above.
std::error_code decode(std::span<const std::byte> payload, get_request& out);
std::error_code decode(std::span<const std::byte> payload, stat_request& out);
std::error_code decode(std::span<const std::byte> payload, list_request& out);
std::error_code decode(std::span<const std::byte> payload, error_reply& out);
std::error_code decode(std::span<const std::byte> payload, get_header& out);
std::error_code decode(std::span<const std::byte> payload, get_trailer& out);
std::error_code decode(std::span<const std::byte> payload, stat_reply& out);
std::error_code decode(std::span<const std::byte> payload, list_entries& out);
std::error_code decode(std::span<const std::byte> payload, list_end& out);

/// True if `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s) noexcept;

/// The status a server replies with when a request frame fails to decode with `e`.
status status_for(std::error_code e) noexcept;

} // namespace ferry::protocol
