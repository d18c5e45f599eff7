// Frame layout and the incremental frame decoder (docs/protocol.md, "Frames"). Pure C++20.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

namespace ferry::protocol {

/// The four bytes every frame starts with: 0xFE 'F' 'R' 'Y'.
inline constexpr std::array<std::byte, 4> magic{std::byte{0xFE}, std::byte{'F'}, std::byte{'R'},
                                                std::byte{'Y'}};
/// The protocol version this library speaks.
inline constexpr std::uint8_t version = 1;
inline constexpr std::size_t frame_header_size = 8;
/// No frame (header + payload) is larger; file bodies are not frames.
inline constexpr std::size_t max_frame_size = 65536;
inline constexpr std::size_t max_payload_size = max_frame_size - frame_header_size;

enum class frame_type : std::uint8_t {
    get_request = 0x01,
    stat_request = 0x02,
    list_request = 0x03,
    error = 0x80,
    get_header = 0x81,
    get_trailer = 0x82,
    stat_reply = 0x83,
    list_entries = 0x84,
    list_end = 0x85,
};

/// True for the types this version defines.
bool is_known(frame_type t) noexcept;
/// True for the client-to-server types.
constexpr bool is_request(frame_type t) noexcept {
    return static_cast<std::uint8_t>(t) < 0x80;
}

/// One decoded frame. `payload` points into the caller's buffer.
struct frame {
    frame_type type{};
    /// 1, except for an ERROR frame from a peer of another version (its layout is frozen).
    std::uint8_t version = protocol::version;
    std::span<const std::byte> payload;
    /// Bytes the frame occupies in the buffer (header + payload): what the caller consumes.
    std::size_t size = 0;
};

/// What decode_frame found at the start of a buffer.
struct decode_result {
    enum class kind { need_more, frame, error };
    kind state = kind::need_more;
    /// need_more: the buffer must hold at least this many bytes before a call can progress.
    std::size_t need = frame_header_size;
    frame value;           ///< Valid when state == frame.
    std::error_code error; ///< Valid when state == error.
    /// The version byte seen, once 5 bytes are buffered (for an "unsupported version" reply).
    std::uint8_t seen_version = 0;
};

/// Decodes the frame at the start of `buffered`, which holds the bytes received so far.
///
/// Never reads past `buffered` and never allocates. Reports an error as soon as the bytes
/// already buffered prove the stream bad: a wrong magic byte at once, a wrong version or
/// unknown type or oversize length from the header alone, before any payload arrives. On
/// need_more the caller reads more and calls again with the larger buffer. Errors:
/// bad_magic, unsupported_version (a version other than 1, from the sixth byte on, except for
/// ERROR frames, which every version can read), unknown_frame_type, frame_too_large. After an
/// error the stream cannot be re-synchronised.
decode_result decode_frame(std::span<const std::byte> buffered) noexcept;

/// Writes a frame header for a payload of `payload_size` bytes (at most max_payload_size)
/// into the first frame_header_size bytes of `out`.
void encode_frame_header(frame_type type, std::size_t payload_size,
                         std::span<std::byte, frame_header_size> out) noexcept;

} // namespace ferry::protocol
