// text: peer-controlled text made safe to show, and numbers read strictly. Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::protocol {

/// `text` (bytes from a peer: names, paths, ERROR texts) made safe for a terminal: always one
/// line, never a control sequence. Valid UTF-8 other than the characters below passes through
/// unchanged. Escaped: `\` as `\\`; C0 controls and DEL as `\n`, `\r`, `\t` or `\xHH`; C1
/// controls (U+0080..U+009F) as `\u{HH}`; every byte of an invalid UTF-8 sequence as `\xHH`.
/// The result is valid UTF-8 and unambiguous (the original can be recovered).
std::string escape_for_terminal(std::string_view text);

/// The same, and `"` as `\"`, so the result can stand between double quotes in a log line
/// whose fields are separated by spaces (the access log quotes paths).
std::string escape_for_log(std::string_view text);

/// A non-negative decimal integer, strictly: digits only (no sign, no space, no `0x`, no
/// suffix), at least one, and at most `max`. nullopt otherwise ("-1" is not 2^64 - 1).
std::optional<std::uint64_t> parse_unsigned(std::string_view text,
                                            std::uint64_t max = UINT64_MAX) noexcept;

/// A non-negative finite decimal number such as "10", "0.25" or "1e3", strictly: no sign, no
/// space, no `inf`/`nan`, no hex. nullopt otherwise.
std::optional<double> parse_decimal(std::string_view text) noexcept;

} // namespace ferry::protocol
