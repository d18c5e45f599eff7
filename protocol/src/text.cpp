#include "ferry/protocol/text.hpp"

#include <charconv>
#include <cmath>

namespace ferry::protocol {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

void append_hex_byte(std::string& out, unsigned char b) {
    out += "\\x";
    out += hex_digits[b >> 4U];
    out += hex_digits[b & 0xFU];
}

/// The length of the valid UTF-8 sequence at the start of `s` (1..4), or 0 if there is none:
/// no overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629).
std::size_t utf8_sequence(std::string_view s) noexcept {
    const auto b0 = static_cast<unsigned char>(s[0]);
    if (b0 < 0x80)
        return 1;
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF; // the allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        n = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        n = 3;
        if (b0 == 0xE0)
            lo = 0xA0; // overlong
        if (b0 == 0xED)
            hi = 0x9F; // surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        n = 4;
        if (b0 == 0xF0)
            lo = 0x90; // overlong
        if (b0 == 0xF4)
            hi = 0x8F; // above U+10FFFF
    } else {
        return 0;
    }
    if (s.size() < n)
        return 0;
    for (std::size_t i = 1; i < n; ++i) {
        const auto b = static_cast<unsigned char>(s[i]);
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF))
            return 0;
    }
    return n;
}

std::string escape(std::string_view text, bool quote) {
    std::string out;
    out.reserve(text.size());
    while (!text.empty()) {
        const auto b = static_cast<unsigned char>(text[0]);
        const std::size_t n = utf8_sequence(text);
        if (n == 0) {
            append_hex_byte(out, b);
            text.remove_prefix(1);
            continue;
        }
        if (n == 1) {
            if (b == '\\')
                out += "\\\\";
            else if (quote && b == '"')
                out += "\\\"";
            else if (b == '\n')
                out += "\\n";
            else if (b == '\r')
                out += "\\r";
            else if (b == '\t')
                out += "\\t";
            else if (b < 0x20 || b == 0x7F)
                append_hex_byte(out, b);
            else
                out += static_cast<char>(b);
        } else if (n == 2 && b == 0xC2 && static_cast<unsigned char>(text[1]) <= 0x9F) {
            // C1 controls (U+0080..U+009F): CSI (U+009B) alone starts an escape sequence.
            const auto c = static_cast<unsigned char>(text[1]);
            out += "\\u{";
            out += hex_digits[c >> 4U];
            out += hex_digits[c & 0xFU];
            out += '}';
        } else {
            out.append(text.substr(0, n));
        }
        text.remove_prefix(n);
    }
    return out;
}

} // namespace

std::string escape_for_terminal(std::string_view text) {
    return escape(text, false);
}

std::string escape_for_log(std::string_view text) {
    return escape(text, true);
}

std::optional<std::uint64_t> parse_unsigned(std::string_view text, std::uint64_t max) noexcept {
    if (text.empty())
        return std::nullopt;
    for (const char c : text)
        if (c < '0' || c > '9')
            return std::nullopt;
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value > max)
        return std::nullopt;
    return value;
}

std::optional<double> parse_decimal(std::string_view text) noexcept {
    if (text.empty())
        return std::nullopt;
    // Digits, one point, an exponent: from_chars alone would take "inf", "nan" and a sign.
    for (const char c : text)
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'))
            return std::nullopt;
    if (text[0] < '0' || text[0] > '9') {
        if (text[0] != '.')
            return std::nullopt;
    }
    double value = 0;
    const auto [end, ec] =
        std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::general);
    if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value) || value < 0)
        return std::nullopt;
    return value;
}

} // namespace ferry::protocol
