// proxy_header: the PROXY protocol header a load balancer sends before the client's bytes
// (HAProxy's proxy-protocol.txt, versions 1 and 2), parsed without I/O: the caller hands over
// the bytes received so far and learns whether they hold a header, need more, or are not one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace ferry::protocol::proxy {

/// The longest version 1 line, "PROXY TCP6 <39> <39> 65535 65535\r\n" (the spec's bound).
inline constexpr std::size_t max_v1_length = 107;
/// The fixed part of a version 2 header: signature, version/command, family/protocol, length.
inline constexpr std::size_t v2_fixed_length = 16;
/// The most address and TLV bytes a version 2 header may announce: far above what proxies send
/// (36 bytes of IPv6 addresses and a few TLVs), so a length above it is an error, not a wait.
inline constexpr std::size_t max_v2_payload = 2048;
/// No header is longer: the most a reader needs to look at.
inline constexpr std::size_t max_header_length = v2_fixed_length + max_v2_payload;

/// An IPv4 or IPv6 address and a TCP port, as the header carries them.
struct endpoint {
    bool v6 = false;
    std::array<std::uint8_t, 16> bytes{}; ///< network order; IPv4 uses the first 4
    std::uint16_t port = 0;
    bool operator==(const endpoint&) const = default;
};

/// A parsed header.
struct header {
    unsigned version = 0; ///< 1 or 2
    /// The client's address and port (the connection the proxy accepted); nullopt when the
    /// header says to keep the real peer: v1 UNKNOWN, v2 LOCAL (the proxy's own health checks),
    /// or a v2 PROXY header over something else than TCP over IPv4/IPv6 (UNSPEC, UNIX, UDP).
    std::optional<endpoint> source;
    std::optional<endpoint> destination; ///< the address the client connected to (same rule)
    bool operator==(const header&) const = default;
};

/// What parse() found in the bytes so far.
struct parse_result {
    enum class outcome {
        need_more, ///< a correct beginning: every byte so far belongs to the header
        complete,  ///< `header` holds it; it took the first `consumed` bytes
        invalid,   ///< not a valid header: `error` says why (the connection is to be closed)
    } what = outcome::need_more;
    header value;
    std::size_t consumed = 0; ///< complete: the header's length; the rest is the client's
    std::string_view error;   ///< invalid: a static, one-line reason
};

/// Parses a PROXY header, version 1 or 2 (told apart by the first byte), at the start of
/// `received`. Strict: any byte that cannot begin or continue a valid header makes it invalid
/// at once (a request without a header is refused with its first bytes, not after a timeout):
/// a wrong signature, a version other than 2 or a command other than LOCAL/PROXY, an undefined
/// family or protocol, a length above max_v2_payload or shorter than its addresses; a v1 line
/// longer than max_v1_length or with a lone CR or LF, an unknown protocol word, an address that
/// is not a strict literal of its family (no leading zeros in IPv4), a port that is not a
/// decimal number 0..65535 without leading zeros, a missing or extra field. TLVs are skipped
/// unread. Pure: no allocation, no state; feeding a prefix gives need_more.
parse_result parse(std::span<const std::byte> received) noexcept;

} // namespace ferry::protocol::proxy
