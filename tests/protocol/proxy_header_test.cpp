// Table tests of the PROXY protocol header parser (protocol/proxy_header.hpp): versions 1 and
// 2, every malformed case, and a grind over every split point. No sockets.
#include "ferry/protocol/proxy_header.hpp"

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace proxy = ferry::protocol::proxy;
using outcome = proxy::parse_result::outcome;

namespace {

std::vector<std::byte> bytes(std::string_view s) {
    std::vector<std::byte> out;
    for (const char c : s)
        out.push_back(static_cast<std::byte>(c));
    return out;
}

/// Parses from an exact-size heap buffer, so that ASan sees any read past the end.
proxy::parse_result parse(std::span<const std::byte> b) {
    std::vector<std::byte> exact(b.begin(), b.end());
    return proxy::parse(exact);
}

proxy::endpoint v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d,
                   std::uint16_t port) {
    proxy::endpoint e;
    e.bytes = {a, b, c, d};
    e.port = port;
    return e;
}

proxy::endpoint v6(std::initializer_list<std::uint16_t> groups, std::uint16_t port) {
    proxy::endpoint e;
    e.v6 = true;
    std::size_t i = 0;
    for (const auto g : groups) {
        e.bytes[i++] = static_cast<std::uint8_t>(g >> 8);
        e.bytes[i++] = static_cast<std::uint8_t>(g & 0xFF);
    }
    e.port = port;
    return e;
}

constexpr char v2_sig[] = "\r\n\r\n\0\r\nQUIT\n";

/// A v2 header: signature, version/command, family/protocol, then `payload` with its length.
std::vector<std::byte> v2(std::uint8_t version_command, std::uint8_t family_protocol,
                          const std::vector<std::uint8_t>& payload) {
    std::vector<std::byte> out = bytes(std::string_view{v2_sig, 12});
    out.push_back(std::byte{version_command});
    out.push_back(std::byte{family_protocol});
    out.push_back(static_cast<std::byte>(payload.size() >> 8));
    out.push_back(static_cast<std::byte>(payload.size() & 0xFF));
    for (const auto b : payload)
        out.push_back(std::byte{b});
    return out;
}

const std::vector<std::uint8_t> v4_payload{203, 0, 113, 7, 192, 0, 2, 1, 0x10, 0x92, 0x1E, 0x61};

std::vector<std::uint8_t> v6_payload() {
    std::vector<std::uint8_t> p(36, 0);
    p[0] = 0x20; // 2001:db8::7
    p[1] = 0x01;
    p[2] = 0x0d;
    p[3] = 0xb8;
    p[15] = 0x07;
    p[31] = 0x01; // ::1
    p[32] = 0x10; // 4242
    p[33] = 0x92;
    p[34] = 0x1E; // 7777
    p[35] = 0x61;
    return p;
}

/// Every prefix of a valid header needs more; the whole, with the client's bytes after it,
/// gives `want` and takes exactly the header.
void expect_header(const std::vector<std::byte>& h, const proxy::header& want) {
    for (std::size_t k = 0; k < h.size(); ++k)
        EXPECT_EQ(parse(std::span{h}.first(k)).what, outcome::need_more) << "prefix " << k;
    auto with_request = h;
    for (const auto b : bytes("GET / HTTP/1.1\r\n\r\n"))
        with_request.push_back(b);
    for (const auto& input : {h, with_request}) {
        const auto r = parse(input);
        ASSERT_EQ(r.what, outcome::complete) << r.error;
        EXPECT_EQ(r.consumed, h.size());
        EXPECT_EQ(r.value, want);
    }
}

/// Every prefix of a malformed header needs more or is invalid with the same reason; once
/// invalid, it stays so; the whole is invalid.
void expect_invalid(const std::vector<std::byte>& h, std::string_view why_contains) {
    const auto whole = parse(h);
    ASSERT_EQ(whole.what, outcome::invalid);
    EXPECT_NE(whole.error.find(why_contains), std::string_view::npos) << whole.error;
    bool seen_invalid = false;
    for (std::size_t k = 1; k <= h.size(); ++k) {
        const auto r = parse(std::span{h}.first(k));
        if (seen_invalid) {
            EXPECT_EQ(r.what, outcome::invalid) << "prefix " << k;
        }
        if (r.what == outcome::invalid) {
            seen_invalid = true;
            EXPECT_EQ(r.error, whole.error) << "prefix " << k;
        } else {
            EXPECT_EQ(r.what, outcome::need_more) << "prefix " << k;
        }
    }
}

proxy::header proxied(unsigned version, proxy::endpoint src, proxy::endpoint dst) {
    return {version, src, dst};
}

} // namespace

TEST(ProxyHeader, EmptyNeedsMore) {
    EXPECT_EQ(proxy::parse({}).what, outcome::need_more);
}

TEST(ProxyHeader, V1Tcp4) {
    expect_header(bytes("PROXY TCP4 203.0.113.7 192.0.2.1 4242 7777\r\n"),
                  proxied(1, v4(203, 0, 113, 7, 4242), v4(192, 0, 2, 1, 7777)));
    expect_header(bytes("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"),
                  proxied(1, v4(0, 0, 0, 0, 0), v4(255, 255, 255, 255, 65535)));
}

TEST(ProxyHeader, V1Tcp6) {
    expect_header(bytes("PROXY TCP6 2001:db8::7 ::1 4242 7777\r\n"),
                  proxied(1, v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 7}, 4242),
                          v6({0, 0, 0, 0, 0, 0, 0, 1}, 7777)));
    expect_header(bytes("PROXY TCP6 1:2:3:4:5:6:7:8 ::ffff:192.0.2.1 1 2\r\n"),
                  proxied(1, v6({1, 2, 3, 4, 5, 6, 7, 8}, 1),
                          v6({0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201}, 2)));
    expect_header(
        bytes("PROXY TCP6 FE80:: 1:2:3:4:5:6:7:: 1 2\r\n"),
        proxied(1, v6({0xfe80, 0, 0, 0, 0, 0, 0, 0}, 1), v6({1, 2, 3, 4, 5, 6, 7, 0}, 2)));
}

TEST(ProxyHeader, V1LongestLinesFit) {
    const std::string addresses = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                                  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    const auto all = v6({0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff}, 65535);
    expect_header(bytes("PROXY TCP6 " + addresses), proxied(1, all, all));
    // The spec's bound: the longest TCP6 line, said with UNKNOWN.
    ASSERT_EQ(("PROXY UNKNOWN " + addresses).size(), proxy::max_v1_length);
    expect_header(bytes("PROXY UNKNOWN " + addresses),
                  proxy::header{1, std::nullopt, std::nullopt});
}

TEST(ProxyHeader, V1UnknownKeepsThePeer) {
    expect_header(bytes("PROXY UNKNOWN\r\n"), proxy::header{1, std::nullopt, std::nullopt});
    expect_header(bytes("PROXY UNKNOWN ffff::1 ::1 1 2\r\n"),
                  proxy::header{1, std::nullopt, std::nullopt});
}

TEST(ProxyHeader, V2ProxyIpv4) {
    expect_header(v2(0x21, 0x11, v4_payload),
                  proxied(2, v4(203, 0, 113, 7, 4242), v4(192, 0, 2, 1, 7777)));
}

TEST(ProxyHeader, V2ProxyIpv6WithTlvsSkipped) {
    auto payload = v6_payload();
    // PP2_TYPE_AUTHORITY "example.org", then PP2_TYPE_NOOP with three bytes.
    for (const std::uint8_t b :
         std::vector<std::uint8_t>{0x02, 0,   11,  'e', 'x',  'a', 'm', 'p', 'l', 'e',
                                   '.',  'o', 'r', 'g', 0x04, 0,   3,   0,   0,   0})
        payload.push_back(b);
    expect_header(v2(0x21, 0x21, payload), proxied(2, v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 7}, 4242),
                                                   v6({0, 0, 0, 0, 0, 0, 0, 1}, 7777)));
}

TEST(ProxyHeader, V2LocalKeepsThePeer) {
    expect_header(v2(0x20, 0x00, {}), proxy::header{2, std::nullopt, std::nullopt});
    // LOCAL with addresses (some proxies send them): ignored.
    expect_header(v2(0x20, 0x11, v4_payload), proxy::header{2, std::nullopt, std::nullopt});
}

TEST(ProxyHeader, V2OtherFamiliesKeepThePeer) {
    expect_header(v2(0x21, 0x00, {}), proxy::header{2, std::nullopt, std::nullopt});
    expect_header(v2(0x21, 0x12, v4_payload), proxy::header{2, std::nullopt, std::nullopt});
    expect_header(v2(0x21, 0x31, std::vector<std::uint8_t>(216, 0)),
                  proxy::header{2, std::nullopt, std::nullopt});
}

TEST(ProxyHeader, V1Malformed) {
    const std::vector<std::pair<std::string, std::string>> rows{
        {"GET / HTTP/1.1\r\n\r\n", "not a PROXY"},
        {"PROXY", ""}, // a prefix: below, needs more
        {"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY"},
        {"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol"},
        {"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "protocol"},
        {"PROXY UNKNOWNX\r\n", "protocol"},
        {"PROXY \r\n", "protocol"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "line feed"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "carriage return"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "six fields"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "port"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", "port"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "port"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "port"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "port"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 +2\r\n", "port"},
        {"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "IPv4"},
        {"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n", "IPv4"},
        {"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "IPv4"},
        {"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", "IPv4"},
        {"PROXY TCP4 1.2.3.4  1 2\r\n", "IPv4"},
        {"PROXY TCP4 ::1 ::1 1 2\r\n", "IPv4"},
        {"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "IPv6"},
        {"PROXY TCP6 1::2::3 ::1 1 2\r\n", "IPv6"},
        {"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "IPv6"},
        {"PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", "IPv6"},
        {"PROXY TCP6 1:2:3:4:5:6:7:8:: ::1 1 2\r\n", "IPv6"},
        {"PROXY TCP6 12345::1 ::1 1 2\r\n", "IPv6"},
        {"PROXY TCP6 g::1 ::1 1 2\r\n", "IPv6"},
        {"PROXY TCP6 :1::1 ::1 1 2\r\n", "IPv6"},
        {"PROXY TCP6 ::1.2.3.4:1 ::1 1 2\r\n", "IPv6"},
        {"PROXY TCP6 1.2.3.4:: ::1 1 2\r\n", "IPv6"},
        {"PROXY TCP6 ::ffff:1.2.3.4.5 ::1 1 2\r\n", "IPv6"},
        {"PROXY TCP6 [::1] ::1 1 2\r\n", "IPv6"},
        {"PROXY UNKNOWN" + std::string(93, ' ') + "\r\n", "107"},
        {"PROXY UNKNOWN" + std::string(200, ' '), "107"},
    };
    for (const auto& [text, why] : rows) {
        SCOPED_TRACE(text);
        if (why.empty())
            EXPECT_EQ(parse(bytes(text)).what, outcome::need_more);
        else
            expect_invalid(bytes(text), why);
    }
}

TEST(ProxyHeader, V1LongLineIsRefusedWithoutItsEnd) {
    // 106 bytes without a CR cannot be the start of a line of at most 107.
    EXPECT_EQ(parse(bytes("PROXY UNKNOWN" + std::string(92, ' '))).what, outcome::need_more);
    EXPECT_EQ(parse(bytes("PROXY UNKNOWN" + std::string(93, ' '))).what, outcome::invalid);
    expect_header(bytes("PROXY UNKNOWN" + std::string(92, ' ') + "\r\n"),
                  proxy::header{1, std::nullopt, std::nullopt});
}

TEST(ProxyHeader, V2Malformed) {
    auto bad_signature = v2(0x21, 0x11, v4_payload);
    bad_signature[11] = std::byte{0x0B};
    expect_invalid(bad_signature, "not a PROXY");
    expect_invalid(v2(0x11, 0x11, v4_payload), "version");
    expect_invalid(v2(0x31, 0x11, v4_payload), "version");
    expect_invalid(v2(0x22, 0x11, v4_payload), "command");
    expect_invalid(v2(0x21, 0x41, v4_payload), "family");
    expect_invalid(v2(0x21, 0x13, v4_payload), "family");
    expect_invalid(v2(0x21, 0x11, std::vector<std::uint8_t>(11, 0)), "shorter");
    expect_invalid(v2(0x21, 0x21, std::vector<std::uint8_t>(35, 0)), "shorter");
    expect_invalid(v2(0x21, 0x31, std::vector<std::uint8_t>(215, 0)), "shorter");
    // A length over the bound is refused at the fixed part, before any wait for the rest.
    auto huge = v2(0x21, 0x11, v4_payload);
    huge[14] = std::byte{0x08};
    huge[15] = std::byte{0x01};
    EXPECT_EQ(parse(std::span{huge}.first(proxy::v2_fixed_length)).what, outcome::invalid);
    expect_invalid(huge, "2048");
    // At the bound: accepted.
    auto largest = v4_payload;
    largest.resize(proxy::max_v2_payload, 0);
    EXPECT_EQ(parse(v2(0x21, 0x11, largest)).consumed, proxy::max_header_length);
}
