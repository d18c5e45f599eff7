#include "ferry/protocol/proxy_header.hpp"

#include <algorithm>
#include <string_view>

namespace ferry::protocol::proxy {

namespace {

using outcome = parse_result::outcome;

constexpr std::string_view v1_signature = "PROXY ";
constexpr std::array<std::uint8_t, 12> v2_signature{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

parse_result invalid(std::string_view why) {
    parse_result r;
    r.what = outcome::invalid;
    r.error = why;
    return r;
}

parse_result complete(header h, std::size_t consumed) {
    parse_result r;
    r.what = outcome::complete;
    r.value = h;
    r.consumed = consumed;
    return r;
}

std::uint8_t byte_at(std::span<const std::byte> b, std::size_t i) {
    return static_cast<std::uint8_t>(b[i]);
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

int hex_value(char c) {
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/// A decimal number 0..max without sign, leading zeros or anything else.
std::optional<unsigned> parse_decimal(std::string_view s, unsigned max) {
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0'))
        return std::nullopt;
    unsigned v = 0;
    for (const char c : s) {
        if (!is_digit(c))
            return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > max)
        return std::nullopt;
    return v;
}

/// A dotted quad "a.b.c.d" into out[0..4).
bool parse_ipv4(std::string_view s, std::uint8_t* out) {
    for (int part = 0; part < 4; ++part) {
        const auto dot = part < 3 ? s.find('.') : s.size();
        if (dot == std::string_view::npos || dot > 3)
            return false;
        const auto v = parse_decimal(s.substr(0, dot), 255);
        if (!v)
            return false;
        out[part] = static_cast<std::uint8_t>(*v);
        s.remove_prefix(part < 3 ? dot + 1 : dot);
    }
    return s.empty();
}

/// Groups of an IPv6 text, one side of "::": up to `room` 16-bit groups, the last of which may
/// be a dotted quad (two groups) when `v4_tail_allowed`. Returns the number of groups, or -1.
int parse_ipv6_groups(std::string_view s, std::uint8_t* out, int room, bool v4_tail_allowed) {
    if (s.empty())
        return 0;
    int groups = 0;
    for (;;) {
        const auto colon = s.find(':');
        const auto group = s.substr(0, colon);
        if (colon == std::string_view::npos && v4_tail_allowed &&
            group.find('.') != std::string_view::npos) {
            if (groups + 2 > room || !parse_ipv4(group, out + 2 * groups))
                return -1;
            return groups + 2;
        }
        if (group.empty() || group.size() > 4 || groups + 1 > room)
            return -1;
        unsigned v = 0;
        for (const char c : group) {
            const int h = hex_value(c);
            if (h < 0)
                return -1;
            v = v * 16 + static_cast<unsigned>(h);
        }
        out[2 * groups] = static_cast<std::uint8_t>(v >> 8);
        out[2 * groups + 1] = static_cast<std::uint8_t>(v & 0xFF);
        ++groups;
        if (colon == std::string_view::npos)
            return groups;
        s.remove_prefix(colon + 1);
    }
}

/// An IPv6 literal (RFC 4291 2.2: eight groups, one "::", an IPv4 tail) into out[0..16).
bool parse_ipv6(std::string_view s, std::uint8_t* out) {
    const auto gap = s.find("::");
    if (gap == std::string_view::npos)
        return parse_ipv6_groups(s, out, 8, true) == 8;
    const auto tail = s.substr(gap + 2);
    if (tail.find("::") != std::string_view::npos)
        return false;
    std::array<std::uint8_t, 16> after{};
    const int head_groups = parse_ipv6_groups(s.substr(0, gap), out, 7, false);
    if (head_groups < 0)
        return false;
    const int tail_groups = parse_ipv6_groups(tail, after.data(), 7 - head_groups, true);
    if (tail_groups < 0)
        return false;
    const auto zeros = static_cast<std::size_t>(8 - head_groups - tail_groups) * 2;
    const auto head = static_cast<std::size_t>(head_groups) * 2;
    std::fill_n(out + head, zeros, std::uint8_t{0});
    std::copy_n(after.begin(), static_cast<std::size_t>(tail_groups) * 2, out + head + zeros);
    return true;
}

/// The next space-separated field of a v1 line (exactly one space between fields).
std::string_view next_field(std::string_view& line) {
    const auto space = line.find(' ');
    const auto field = line.substr(0, space);
    line.remove_prefix(space == std::string_view::npos ? line.size() : space + 1);
    return field;
}

/// A v1 line without its CRLF: "PROXY TCP4 SRC DST SPORT DPORT", or "PROXY UNKNOWN[ ...]".
parse_result parse_v1_line(std::string_view line, std::size_t consumed) {
    header h;
    h.version = 1;
    line.remove_prefix(v1_signature.size());
    const auto family = next_field(line);
    if (family == "UNKNOWN") // whatever follows is to be ignored (the spec)
        return complete(h, consumed);
    const bool v6 = family == "TCP6";
    if (!v6 && family != "TCP4")
        return invalid("v1: the protocol is not TCP4, TCP6 or UNKNOWN");
    const auto source = next_field(line);
    const auto destination = next_field(line);
    const auto source_port = next_field(line);
    const auto destination_port = line;
    if (destination_port.find(' ') != std::string_view::npos)
        return invalid("v1: more than six fields");
    endpoint src{v6, {}, 0};
    endpoint dst{v6, {}, 0};
    if (!(v6 ? parse_ipv6(source, src.bytes.data()) : parse_ipv4(source, src.bytes.data())) ||
        !(v6 ? parse_ipv6(destination, dst.bytes.data())
             : parse_ipv4(destination, dst.bytes.data())))
        return invalid(v6 ? "v1: an address is not an IPv6 literal"
                          : "v1: an address is not an IPv4 literal");
    const auto sport = parse_decimal(source_port, 65535);
    const auto dport = parse_decimal(destination_port, 65535);
    if (!sport || !dport)
        return invalid("v1: a port is not a decimal number from 0 to 65535");
    src.port = static_cast<std::uint16_t>(*sport);
    dst.port = static_cast<std::uint16_t>(*dport);
    h.source = src;
    h.destination = dst;
    return complete(h, consumed);
}

parse_result parse_v1(std::span<const std::byte> b) {
    const auto n = b.size();
    for (std::size_t i = 0; i < std::min(n, v1_signature.size()); ++i)
        if (byte_at(b, i) != static_cast<std::uint8_t>(v1_signature[i]))
            return invalid("not a PROXY protocol header");
    for (std::size_t i = 0; i < n && i < max_v1_length; ++i) {
        const auto c = byte_at(b, i);
        if (c == '\n')
            return invalid("v1: a line feed without a carriage return");
        if (c != '\r')
            continue;
        if (i + 1 >= max_v1_length)
            return invalid("v1: the line is longer than 107 bytes");
        if (i + 1 == n)
            return {};
        if (byte_at(b, i + 1) != '\n')
            return invalid("v1: a carriage return without a line feed");
        // Each byte, up to here, is a char the parser reads as text.
        std::string_view line{reinterpret_cast<const char*>(b.data()), i};
        return parse_v1_line(line, i + 2);
    }
    if (n >= max_v1_length - 1)
        return invalid("v1: the line is longer than 107 bytes");
    return {};
}

endpoint v2_endpoint(std::span<const std::byte> address, bool v6, std::size_t port_at) {
    endpoint e;
    e.v6 = v6;
    const std::size_t size = v6 ? 16 : 4;
    for (std::size_t i = 0; i < size; ++i)
        e.bytes[i] = byte_at(address, i);
    e.port =
        static_cast<std::uint16_t>(byte_at(address, port_at) << 8 | byte_at(address, port_at + 1));
    return e;
}

parse_result parse_v2(std::span<const std::byte> b) {
    const auto n = b.size();
    for (std::size_t i = 0; i < std::min(n, v2_signature.size()); ++i)
        if (byte_at(b, i) != v2_signature[i])
            return invalid("not a PROXY protocol header");
    if (n > 12) {
        const auto version_command = byte_at(b, 12);
        if (version_command >> 4 != 2)
            return invalid("v2: the version is not 2");
        if ((version_command & 0x0F) > 1)
            return invalid("v2: the command is neither LOCAL nor PROXY");
    }
    if (n > 13) {
        const auto family_protocol = byte_at(b, 13);
        if (family_protocol >> 4 > 3 || (family_protocol & 0x0F) > 2)
            return invalid("v2: an undefined address family or protocol");
    }
    if (n < v2_fixed_length)
        return {};
    const std::size_t length = std::size_t{byte_at(b, 14)} << 8 | byte_at(b, 15);
    if (length > max_v2_payload)
        return invalid("v2: the announced length is above 2048 bytes");
    if (n < v2_fixed_length + length)
        return {};
    header h;
    h.version = 2;
    const auto consumed = v2_fixed_length + length;
    const auto payload = b.subspan(v2_fixed_length, length);
    const bool local = (byte_at(b, 12) & 0x0F) == 0;
    const std::size_t family = byte_at(b, 13) >> 4;
    const bool stream = (byte_at(b, 13) & 0x0F) == 1;
    // The address block's size by family: UNSPEC 0, INET 12, INET6 36, UNIX 216.
    constexpr std::array<std::size_t, 4> address_size{0, 12, 36, 216};
    if (local)
        return complete(h, consumed); // the proxy's own connection: the addresses mean nothing
    if (length < address_size[family])
        return invalid("v2: the length is shorter than the addresses of its family");
    if ((family == 1 || family == 2) && stream) {
        const bool v6 = family == 2;
        const std::size_t size = v6 ? 16 : 4;
        h.source = v2_endpoint(payload, v6, 2 * size);
        h.destination = v2_endpoint(payload.subspan(size), v6, size + 2);
    }
    return complete(h, consumed);
}

} // namespace

parse_result parse(std::span<const std::byte> received) noexcept {
    if (received.empty())
        return {};
    if (byte_at(received, 0) == v2_signature[0])
        return parse_v2(received);
    return parse_v1(received);
}

} // namespace ferry::protocol::proxy
