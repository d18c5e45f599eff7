// Errors the protocol library reports while decoding or encoding. Pure C++20.
#pragma once

#include <string>
#include <system_error>

namespace ferry::protocol {

/// Why a frame or message could not be decoded (or encoded). Value 0 is never used: a
/// default-constructed std::error_code means success.
enum class protocol_errc {
    bad_magic = 1,              ///< The first bytes of a frame are not the Ferry magic.
    unsupported_version,        ///< The frame's version byte is not one this library speaks.
    unknown_frame_type,         ///< The frame type is not defined by this version.
    frame_too_large,            ///< The header announces a payload above the frame limit.
    truncated,                  ///< The payload ends before a field it must contain.
    reserved_bits_set,          ///< A flag bit this version reserves (must be zero) is set.
    bad_extension,              ///< The extension area is not a well-formed list of TLVs.
    unknown_critical_extension, ///< A critical extension this version does not understand.
    path_too_long,              ///< A path is longer than max_path_size bytes.
    bad_path,                   ///< A path is not valid UTF-8 or contains a NUL byte.
    bad_name, ///< A listed name is empty, too long, ".", "..", has '/' or NUL, or is not UTF-8.
    bad_text, ///< A message text is too long or not valid UTF-8.
    range_overflow, ///< offset (+ length) does not fit a signed 64-bit file offset.
    bad_range,      ///< A reply's range lies outside the file size it reports.
    bad_status,     ///< A status value is not allowed where it appears.
    bad_kind,       ///< A file kind value is not defined by this version.
};

const std::error_category& protocol_category() noexcept;

inline std::error_code make_error_code(protocol_errc e) noexcept {
    return {static_cast<int>(e), protocol_category()};
}

} // namespace ferry::protocol

template <>
struct std::is_error_code_enum<ferry::protocol::protocol_errc> : std::true_type {};
