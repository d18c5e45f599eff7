// Test helpers for the protocol library: hex, exact-size encoding, decoding by frame type.
#pragma once

#include "ferry/protocol/errc.hpp"
#include "ferry/protocol/frame.hpp"
#include "ferry/protocol/messages.hpp"

#include <cctype>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

namespace ferry::test {

namespace fp = ferry::protocol;

using bytes = std::vector<std::byte>;

/// Every message type of protocol v1.
using any_message =
    std::variant<fp::get_request, fp::stat_request, fp::list_request, fp::error_reply,
                 fp::get_header, fp::get_trailer, fp::stat_reply, fp::list_entries, fp::list_end>;

/// Encodes into a heap buffer of exactly encoded_size() bytes, so ASan sees any overrun.
template <class Message>
bytes encode_exact(const Message& m) {
    bytes out(fp::encoded_size(m));
    if (auto ec = fp::encode(m, out); ec)
        throw std::system_error(ec, "encode");
    return out;
}

inline bytes encode_exact(const any_message& m) {
    return std::visit([](const auto& v) { return encode_exact(v); }, m);
}

/// Parses "fe 46 52 ..." (whitespace ignored).
inline bytes from_hex(std::string_view text) {
    bytes out;
    int high = -1;
    for (char c : text) {
        if (std::isspace(static_cast<unsigned char>(c)))
            continue;
        int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                                                            : -1;
        if (v < 0)
            throw std::invalid_argument("bad hex digit");
        if (high < 0) {
            high = v;
        } else {
            out.push_back(static_cast<std::byte>(high * 16 + v));
            high = -1;
        }
    }
    if (high >= 0)
        throw std::invalid_argument("odd number of hex digits");
    return out;
}

inline std::string to_hex(std::span<const std::byte> b) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i > 0)
            out += (i % 16 == 0) ? '\n' : ' ';
        const auto v = static_cast<unsigned>(b[i]);
        out += digits[v >> 4U];
        out += digits[v & 0xFU];
    }
    return out;
}

inline bytes to_bytes(std::string_view s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    return {p, p + s.size()};
}

/// Decodes one frame's payload as the message its type names.
struct decoded {
    std::error_code error;
    any_message message;
};

inline decoded decode_any(const fp::frame& f) {
    auto as = [&f]<class M>(M m) {
        decoded d;
        d.error = fp::decode(f.payload, m);
        d.message = std::move(m);
        return d;
    };
    switch (f.type) {
    case fp::frame_type::get_request:
        return as(fp::get_request{});
    case fp::frame_type::stat_request:
        return as(fp::stat_request{});
    case fp::frame_type::list_request:
        return as(fp::list_request{});
    case fp::frame_type::error:
        return as(fp::error_reply{});
    case fp::frame_type::get_header:
        return as(fp::get_header{});
    case fp::frame_type::get_trailer:
        return as(fp::get_trailer{});
    case fp::frame_type::stat_reply:
        return as(fp::stat_reply{});
    case fp::frame_type::list_entries:
        return as(fp::list_entries{});
    case fp::frame_type::list_end:
        return as(fp::list_end{});
    }
    throw std::logic_error("decode_frame returned an unknown type");
}

/// decode_frame + decode_any over a complete buffer: the first error either step reports.
inline decoded decode_whole(std::span<const std::byte> buffer) {
    auto r = fp::decode_frame(buffer);
    if (r.state == fp::decode_result::kind::error)
        return {r.error, {}};
    if (r.state == fp::decode_result::kind::need_more)
        return {fp::protocol_errc::truncated, {}};
    if (r.value.size != buffer.size())
        throw std::logic_error("buffer holds more than one frame");
    return decode_any(r.value);
}

} // namespace ferry::test
