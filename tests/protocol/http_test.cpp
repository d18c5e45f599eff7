// Table tests of the pure HTTP functions (protocol/http.hpp): no sockets.
#include "ferry/protocol/http.hpp"

#include <gtest/gtest.h>
#include <optional>
#include <string>
#include <vector>

namespace http = ferry::protocol::http;
using http::byte_range;
using kind = http::range_decision::kind;

TEST(HttpDate, FormatsImfFixdate) {
    EXPECT_EQ(http::format_http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
    EXPECT_EQ(http::format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    EXPECT_EQ(http::format_http_date(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
    EXPECT_EQ(http::format_http_date(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
    EXPECT_EQ(http::format_http_date(INT64_MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
}

TEST(HttpDate, ParsesTheThreeFormsAndRefusesTheRest) {
    const std::vector<std::pair<std::string, std::optional<std::int64_t>>> rows{
        {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},
        {"Sun Nov  6 08:49:37 1994", 784111777},
        {"Sun Nov 16 08:49:37 1994", 784111777 + 10 * 86400},
        {"Mon, 06 Nov 1994 08:49:37 GMT", 784111777}, // a wrong weekday is tolerated
        {"  Sun, 06 Nov 1994 08:49:37 GMT ", 784111777},
        {"Thursday, 01-Jan-70 00:00:00 GMT", 0},
        {"Saturday, 01-Jan-00 00:00:00 GMT", 946684800},
        {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400},
        {"Sun, 06 Nov 1994 08:49:60 GMT", 784111777 + 22}, // a leap second counts as :59
        {"Wed, 29 Feb 2023 00:00:00 GMT", std::nullopt},
        {"Sun, 31 Nov 1994 08:49:37 GMT", std::nullopt},
        {"Sun, 06 Nov 1994 24:00:00 GMT", std::nullopt},
        {"Sun, 06 Nov 1994 08:49:37 UTC", std::nullopt},
        {"Sun, 06 nov 1994 08:49:37 GMT", std::nullopt},
        {"Sun, 6 Nov 1994 08:49:37 GMT", std::nullopt},
        {"784111777", std::nullopt},
        {"", std::nullopt},
        {"Sun, 06 Nov 1994 08:49:37 GMT garbage", std::nullopt},
    };
    for (const auto& [text, want] : rows)
        EXPECT_EQ(http::parse_http_date(text), want) << text;
}

TEST(HttpDate, RoundTrips) {
    for (std::int64_t t : {0LL, 1LL, 86399LL, 784111777LL, 1733300000LL, 4102444800LL})
        EXPECT_EQ(http::parse_http_date(http::format_http_date(t)), t);
}

namespace {
http::range_decision partial(std::vector<byte_range> r) {
    return {kind::partial, std::move(r)};
}
http::range_decision whole() {
    return {kind::whole, {}};
}
http::range_decision unsatisfiable() {
    return {kind::unsatisfiable, {}};
}
bool same(const http::range_decision& a, const http::range_decision& b) {
    return a.what == b.what && a.ranges == b.ranges;
}
} // namespace

TEST(HttpRange, SingleRangesAreClampedAndSuffixesCounted) {
    struct row {
        std::string header;
        std::uint64_t size;
        http::range_decision want;
    };
    const std::vector<row> rows{
        {"bytes=0-99", 1000, partial({{0, 99}})},
        {"bytes=100-", 1000, partial({{100, 999}})},
        {"bytes=-100", 1000, partial({{900, 999}})},
        {"bytes=-5000", 1000, partial({{0, 999}})},
        {"bytes=990-2000", 1000, partial({{990, 999}})},
        {"bytes=999-999", 1000, partial({{999, 999}})},
        {"BYTES = 0-0", 1000, partial({{0, 0}})},
        {"bytes= 0-0 ", 1000, partial({{0, 0}})},
        {"bytes=1000-", 1000, unsatisfiable()},
        {"bytes=1000-2000", 1000, unsatisfiable()},
        {"bytes=-0", 1000, unsatisfiable()},
        {"bytes=0-", 0, unsatisfiable()},
        {"bytes=-1", 0, unsatisfiable()},
        // Numbers past 64 bits: a first byte past any file, a last byte or suffix to the end.
        {"bytes=99999999999999999999-", 1000, unsatisfiable()},
        {"bytes=0-99999999999999999999", 1000, partial({{0, 999}})},
        {"bytes=-99999999999999999999", 1000, partial({{0, 999}})},
        {"bytes=18446744073709551615-18446744073709551615", 1000, unsatisfiable()},
        // Invalid: ignored, the whole file.
        {"", 1000, whole()},
        {"bytes", 1000, whole()},
        {"bytes=", 1000, whole()},
        {"bytes=,", 1000, whole()},
        {"bytes=5-4", 1000, whole()},
        {"bytes=a-b", 1000, whole()},
        {"bytes=-", 1000, whole()},
        {"bytes=0-1-2", 1000, whole()},
        {"bytes=+1-2", 1000, whole()},
        {"bytes=0x10-", 1000, whole()},
        {"bytes=1 -2", 1000, whole()},
        {"items=0-5", 1000, whole()},
        {"bytes=0-5,x", 1000, whole()},
    };
    for (const auto& r : rows) {
        const auto got = http::evaluate_range(r.header, r.size);
        EXPECT_TRUE(same(got, r.want)) << r.header << " of " << r.size;
    }
}

TEST(HttpRange, SeveralRangesAreSortedMergedAndCapped) {
    struct row {
        std::string header;
        std::uint64_t size;
        http::range_decision want;
    };
    std::string seventeen = "bytes=";
    for (int i = 0; i < 17; ++i)
        seventeen += std::to_string(i * 10) + "-" + std::to_string(i * 10) + ",";
    std::string sixteen = "bytes=";
    std::vector<byte_range> sixteen_parts;
    for (std::uint64_t i = 0; i < 16; ++i) {
        sixteen += std::to_string(i * 10) + "-" + std::to_string(i * 10) + ", ";
        sixteen_parts.push_back({i * 10, i * 10});
    }
    const std::vector<row> rows{
        {"bytes=0-0,-1", 1000, partial({{0, 0}, {999, 999}})},
        {"bytes=500-599,0-99", 1000, partial({{0, 99}, {500, 599}})},
        {"bytes=0-9,10-19", 1000, partial({{0, 19}})}, // adjacent: merged
        {"bytes=0-9,5-14", 1000, partial({{0, 14}})},  // overlapping: merged
        {"bytes=0-9,,20-29", 1000, partial({{0, 9}, {20, 29}})},
        {"bytes=0-9,2000-", 1000, partial({{0, 9}})}, // the unsatisfiable one dropped
        {"bytes=2000-,3000-", 1000, unsatisfiable()},
        {"bytes=0-,0-", 1000, whole()}, // asks for more than the file
        {"bytes=0-599,400-999", 1000, whole()},
        {"bytes=0-499,500-999", 1000, partial({{0, 999}})}, // exactly the file: fine
        {seventeen, 1000, whole()},
        {sixteen, 1000, partial(sixteen_parts)},
    };
    for (const auto& r : rows) {
        const auto got = http::evaluate_range(r.header, r.size);
        EXPECT_TRUE(same(got, r.want)) << r.header << " of " << r.size;
    }
}

TEST(HttpRange, ThousandsOfRangesAreCheapAndIgnored) {
    std::string header = "bytes=";
    for (int i = 0; i < 2000; ++i)
        header += std::to_string(2 * i) + "-" + std::to_string(2 * i) + ",";
    EXPECT_TRUE(same(http::evaluate_range(header, 1 << 20), whole()));
    // The same range repeated merges into one part.
    std::string repeated = "bytes=";
    for (int i = 0; i < 2000; ++i)
        repeated += "0-0,";
    EXPECT_TRUE(same(http::evaluate_range(repeated, 1 << 20), partial({{0, 0}})));
}

TEST(HttpContentRange, FormatsAndParses) {
    EXPECT_EQ(http::format_content_range({0, 99}, 1000), "bytes 0-99/1000");
    EXPECT_EQ(http::format_unsatisfied_range(1000), "bytes */1000");
    using cr = http::content_range;
    const std::vector<std::pair<std::string, std::optional<cr>>> rows{
        {"bytes 0-99/1000", cr{{0, 99}, 1000}},
        {"Bytes 999-999/1000", cr{{999, 999}, 1000}},
        {"bytes 0-99/*", cr{{0, 99}, std::nullopt}},
        {"bytes 0-9223372036854775806/9223372036854775807",
         cr{{0, 9223372036854775806ULL}, 9223372036854775807ULL}},
        {"bytes 0-1000/1000", std::nullopt},
        {"bytes 5-4/1000", std::nullopt},
        {"bytes */1000", std::nullopt},
        {"bytes 0-99", std::nullopt},
        {"bytes=0-99/1000", std::nullopt},
        {"bytes -1-99/1000", std::nullopt},
        {"bytes 0-99/1000x", std::nullopt},
        {"bytes 0-99/99999999999999999999", std::nullopt},
        {"bytes 0-18446744073709551616/18446744073709551617", std::nullopt},
        {"", std::nullopt},
    };
    for (const auto& [text, want] : rows)
        EXPECT_EQ(http::parse_content_range(text), want) << text;
}

TEST(HttpConditions, FollowRfc9110Order) {
    const std::string etag = "\"abc-1\"";
    const http::validators v{etag, 784111777};
    const std::string at = "Sun, 06 Nov 1994 08:49:37 GMT";
    const std::string before = "Sun, 06 Nov 1994 08:49:36 GMT";
    const std::string after = "Sun, 06 Nov 1994 08:49:38 GMT";
    using P = http::precondition;
    struct row {
        http::conditions c;
        P want;
        const char* what;
    };
    const std::vector<row> rows{
        {{}, P::proceed, "no conditions"},
        {{.if_match = "\"abc-1\""}, P::proceed, "If-Match matches"},
        {{.if_match = "\"x\", \"abc-1\""}, P::proceed, "If-Match matches in a list"},
        {{.if_match = "*"}, P::proceed, "If-Match *"},
        {{.if_match = "\"x\""}, P::failed, "If-Match does not match"},
        {{.if_match = "W/\"abc-1\""}, P::failed, "If-Match compares strongly"},
        {{.if_match = "abc-1"}, P::failed, "If-Match malformed"},
        {{.if_unmodified_since = at}, P::proceed, "not modified since"},
        {{.if_unmodified_since = before}, P::failed, "modified since"},
        {{.if_unmodified_since = "garbage"}, P::proceed, "bad date ignored"},
        {{.if_match = "\"abc-1\"", .if_unmodified_since = before},
         P::proceed,
         "If-Match wins over If-Unmodified-Since"},
        {{.if_none_match = "\"abc-1\""}, P::not_modified, "If-None-Match matches"},
        {{.if_none_match = "W/\"abc-1\""}, P::not_modified, "If-None-Match compares weakly"},
        {{.if_none_match = "*"}, P::not_modified, "If-None-Match *"},
        {{.if_none_match = "\"x\""}, P::proceed, "If-None-Match does not match"},
        {{.if_none_match = "abc-1"}, P::proceed, "If-None-Match malformed"},
        {{.if_modified_since = at}, P::not_modified, "If-Modified-Since same"},
        {{.if_modified_since = after}, P::not_modified, "If-Modified-Since later"},
        {{.if_modified_since = before}, P::proceed, "If-Modified-Since earlier"},
        {{.if_none_match = "\"x\"", .if_modified_since = at},
         P::proceed,
         "If-None-Match wins over If-Modified-Since"},
        {{.if_match = "\"x\"", .if_none_match = "\"abc-1\""}, P::failed, "412 before 304"},
    };
    for (const auto& r : rows)
        EXPECT_EQ(http::evaluate_preconditions(r.c, v), r.want) << r.what;
}

TEST(HttpConditions, IfRangeMatchesStrongTagsAndExactDates) {
    const std::string etag = "\"abc-1\"";
    const http::validators v{etag, 784111777};
    EXPECT_TRUE(http::if_range_holds("\"abc-1\"", v));
    EXPECT_TRUE(http::if_range_holds(" \"abc-1\" ", v));
    EXPECT_FALSE(http::if_range_holds("W/\"abc-1\"", v));
    EXPECT_FALSE(http::if_range_holds("\"abc-2\"", v));
    EXPECT_FALSE(http::if_range_holds("\"abc-1\", \"x\"", v));
    EXPECT_TRUE(http::if_range_holds("Sun, 06 Nov 1994 08:49:37 GMT", v));
    EXPECT_FALSE(http::if_range_holds("Sun, 06 Nov 1994 08:49:38 GMT", v));
    EXPECT_FALSE(http::if_range_holds("", v));
    EXPECT_FALSE(http::if_range_holds("garbage", v));
    // A file changed within the last second: its date cannot tell two versions apart.
    const http::validators fresh{etag, 784111777, false};
    EXPECT_FALSE(http::if_range_holds("Sun, 06 Nov 1994 08:49:37 GMT", fresh));
    EXPECT_TRUE(http::if_range_holds("\"abc-1\"", fresh));
}

TEST(HttpReprDigest, FormatsAndParsesSha256) {
    // SHA-256 of the empty string.
    ferry::protocol::sha256_digest empty{};
    const unsigned char bytes[] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
                                   0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
                                   0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    for (std::size_t i = 0; i < empty.size(); ++i)
        empty[i] = static_cast<std::byte>(bytes[i]);
    const std::string text = "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:";
    EXPECT_EQ(http::format_repr_digest(empty), text);
    EXPECT_EQ(http::parse_repr_digest(text), empty);
    EXPECT_EQ(http::parse_repr_digest("sha-512=:AAAA:, " + text), empty);
    EXPECT_EQ(http::parse_repr_digest(text + ";x=1"), empty);
    EXPECT_EQ(http::parse_repr_digest("sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU:"),
              empty); // padding left out
    EXPECT_EQ(http::parse_repr_digest("sha-512=:AAAA:"), std::nullopt);
    EXPECT_EQ(http::parse_repr_digest("sha-256=:AAAA:"), std::nullopt);
    EXPECT_EQ(http::parse_repr_digest("sha-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
              std::nullopt);
    EXPECT_EQ(http::parse_repr_digest("sha-256=:47DEQpj8HBSa-_TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"),
              std::nullopt);
    EXPECT_EQ(http::parse_repr_digest("sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=:"),
              std::nullopt); // non-zero trailing bits
    EXPECT_EQ(http::parse_repr_digest(""), std::nullopt);
}

TEST(HttpReprDigest, WantReprDigestAsksForSha256WithAPositivePreference) {
    EXPECT_TRUE(http::wants_sha256("sha-256=10"));
    EXPECT_TRUE(http::wants_sha256("sha-512=3, sha-256=1"));
    EXPECT_FALSE(http::wants_sha256("sha-256=0"));
    EXPECT_FALSE(http::wants_sha256("sha-512=10"));
    EXPECT_FALSE(http::wants_sha256("sha-256=x"));
    EXPECT_FALSE(http::wants_sha256("sha-256=11"));
    EXPECT_FALSE(http::wants_sha256(""));
}

TEST(HttpTarget, DecodesEachSegmentOnce) {
    struct row {
        std::string target;
        bool ok;
        std::string path;
        bool slash;
    };
    const std::vector<row> rows{
        {"/", true, "", true},
        {"/a/b.txt", true, "a/b.txt", false},
        {"/dir/", true, "dir/", true},
        {"/a%20b/c%2Bd", true, "a b/c+d", false},
        {"/caf%C3%A9", true, "caf\xC3\xA9", false},
        {"/%2541", true, "%41", false}, // decoded once, not twice
        {"/a?x=/../..", true, "a", false},
        {"/a/?q", true, "a/", true},
        {"//etc/passwd", true, "etc/passwd", false},
        {"/../etc/passwd", true, "../etc/passwd", false}, // the resolver refuses it
        {"/%2e%2e/x", true, "../x", false},
        {"http://example.com/a/b", true, "a/b", false},
        {"HTTP://example.com:8080/a", true, "a", false},
        {"http://example.com", true, "", true},
        {"http://example.com?x", true, "", true},
        {"/a%2Fb", false, "", false},
        {"/a%2fb", false, "", false},
        {"/a%00b", false, "", false},
        {"/a%G1", false, "", false},
        {"/a%4", false, "", false},
        {"/a%", false, "", false},
        {"/%C0%AF", false, "", false}, // an overlong '/': not UTF-8
        {"/%FF", false, "", false},
        {"*", false, "", false},
        {"example.com:443", false, "", false},
        {"a/b", false, "", false},
        {"", false, "", false},
        {"/a#frag", false, "", false},
    };
    for (const auto& r : rows) {
        const auto d = http::decode_target(r.target);
        EXPECT_EQ(d.ok, r.ok) << r.target;
        if (r.ok) {
            EXPECT_EQ(d.path, r.path) << r.target;
            EXPECT_EQ(d.trailing_slash, r.slash) << r.target;
        } else {
            EXPECT_FALSE(d.error.empty()) << r.target;
        }
    }
}

TEST(HttpTarget, EncodePathRoundTripsAndNeverStartsWithTwoSlashes) {
    EXPECT_EQ(http::encode_path("/a b/c+d/"), "/a%20b/c+d/");
    EXPECT_EQ(http::encode_path("/<b>&\"x'.txt"), "/%3Cb%3E%26%22x%27.txt");
    EXPECT_EQ(http::encode_path("//evil.example/"), "/evil.example/");
    EXPECT_EQ(http::encode_path("///x"), "/x");
    EXPECT_EQ(http::encode_path("/caf\xC3\xA9?#%"), "/caf%C3%A9%3F%23%25");
    for (std::string name : {"a b", "caf\xC3\xA9", "%41", "x?y#z", "<&>"}) {
        const auto d = http::decode_target(http::encode_path("/" + name));
        EXPECT_TRUE(d.ok) << name;
        EXPECT_EQ(d.path, name);
    }
}

TEST(HttpMedia, ContentTypesByExtension) {
    EXPECT_EQ(http::content_type_for("index.html"), "text/html; charset=utf-8");
    EXPECT_EQ(http::content_type_for("dir/A.PNG"), "image/png");
    EXPECT_EQ(http::content_type_for("x.tar.gz"), "application/gzip");
    EXPECT_EQ(http::content_type_for("notes.txt"), "text/plain; charset=utf-8");
    EXPECT_EQ(http::content_type_for("blob"), "application/octet-stream");
    EXPECT_EQ(http::content_type_for(".bashrc"), "application/octet-stream");
    EXPECT_EQ(http::content_type_for("d.x/blob"), "application/octet-stream");
}

TEST(HttpMedia, AcceptPrefersJsonOnlyWhenItRanksHigher) {
    EXPECT_TRUE(http::prefers_json("application/json"));
    EXPECT_TRUE(http::prefers_json("application/json, text/html;q=0.5"));
    EXPECT_TRUE(http::prefers_json("application/*"));
    EXPECT_FALSE(http::prefers_json(""));
    EXPECT_FALSE(http::prefers_json("*/*"));
    EXPECT_FALSE(
        http::prefers_json("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
    EXPECT_FALSE(http::prefers_json("application/json;q=0.5, text/html"));
    EXPECT_FALSE(http::prefers_json("application/json;q=0"));
    EXPECT_TRUE(http::prefers_json("text/html;q=0.1, application/json;q=0.2"));
}
