#include "ferry/protocol/http.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <limits>
#include <span>

namespace ferry::protocol::http {

namespace {

constexpr std::array<const char*, 7> weekdays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

/// Optional whitespace (RFC 9110 section 5.6.3): spaces and tabs.
std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

/// The elements of a comma-separated list (RFC 9110 section 5.6.1), trimmed, empty ones
/// dropped, as a recipient must accept them.
std::vector<std::string_view> list_elements(std::string_view s) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto comma = s.find(',');
        const auto element = trim(s.substr(0, comma));
        if (!element.empty())
            out.push_back(element);
        if (comma == std::string_view::npos)
            return out;
        s.remove_prefix(comma + 1);
    }
}

/// Digits only, at least one. Saturates at UINT64_MAX instead of wrapping.
std::optional<std::uint64_t> saturating_number(std::string_view s) noexcept {
    if (s.empty() || !std::all_of(s.begin(), s.end(), is_digit))
        return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return UINT64_MAX;
        v = v * 10 + d;
    }
    return v;
}

/// Digits only, at least one, no overflow.
std::optional<std::uint64_t> exact_number(std::string_view s) noexcept {
    auto v = saturating_number(s);
    if (v && *v == UINT64_MAX && s != "18446744073709551615")
        return std::nullopt;
    return v;
}

std::optional<int> two_digits(std::string_view s) noexcept {
    if (s.size() != 2 || !is_digit(s[0]) || !is_digit(s[1]))
        return std::nullopt;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

std::optional<int> month_of(std::string_view s) noexcept {
    for (std::size_t i = 0; i < months.size(); ++i)
        if (s == months[i])
            return static_cast<int>(i) + 1;
    return std::nullopt;
}

/// "HH:MM:SS" as seconds into the day (a leap second counts as the one before it).
std::optional<int> time_of_day(std::string_view s) noexcept {
    if (s.size() != 8 || s[2] != ':' || s[5] != ':')
        return std::nullopt;
    const auto h = two_digits(s.substr(0, 2));
    const auto m = two_digits(s.substr(3, 2));
    const auto sec = two_digits(s.substr(6, 2));
    if (!h || !m || !sec || *h > 23 || *m > 59 || *sec > 60)
        return std::nullopt;
    return *h * 3600 + *m * 60 + std::min(*sec, 59);
}

std::optional<std::int64_t> to_unix(int year, int month, int day, int seconds) noexcept {
    using namespace std::chrono;
    const year_month_day ymd{std::chrono::year{year},
                             std::chrono::month{static_cast<unsigned>(month)},
                             std::chrono::day{static_cast<unsigned>(day)}};
    if (!ymd.ok())
        return std::nullopt;
    return static_cast<std::int64_t>(sys_days{ymd}.time_since_epoch().count()) * 86400 + seconds;
}

std::optional<int> four_digit_year(std::string_view s) noexcept {
    if (s.size() != 4 || !std::all_of(s.begin(), s.end(), is_digit))
        return std::nullopt;
    return (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
}

/// "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<std::int64_t> parse_imf_fixdate(std::string_view s) noexcept {
    if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[25] != ' ' || s.substr(26) != "GMT")
        return std::nullopt;
    const auto day = two_digits(s.substr(5, 2));
    const auto month = month_of(s.substr(8, 3));
    const auto year = four_digit_year(s.substr(12, 4));
    const auto time = time_of_day(s.substr(17, 8));
    if (!day || !month || !year || !time)
        return std::nullopt;
    return to_unix(*year, *month, *day, *time);
}

/// "Sunday, 06-Nov-94 08:49:37 GMT"
std::optional<std::int64_t> parse_rfc850(std::string_view s) noexcept {
    const auto comma = s.find(", ");
    if (comma == std::string_view::npos || comma < 6 || comma > 9)
        return std::nullopt;
    s.remove_prefix(comma + 2);
    if (s.size() != 22 || s[2] != '-' || s[6] != '-' || s[9] != ' ' || s[18] != ' ' ||
        s.substr(19) != "GMT")
        return std::nullopt;
    const auto day = two_digits(s.substr(0, 2));
    const auto month = month_of(s.substr(3, 3));
    const auto yy = two_digits(s.substr(7, 2));
    const auto time = time_of_day(s.substr(10, 8));
    if (!day || !month || !yy || !time)
        return std::nullopt;
    return to_unix(*yy < 70 ? 2000 + *yy : 1900 + *yy, *month, *day, *time);
}

/// "Sun Nov  6 08:49:37 1994"
std::optional<std::int64_t> parse_asctime(std::string_view s) noexcept {
    if (s.size() != 24 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ')
        return std::nullopt;
    const auto month = month_of(s.substr(4, 3));
    std::optional<int> day;
    if (s[8] == ' ' && is_digit(s[9]))
        day = s[9] - '0';
    else
        day = two_digits(s.substr(8, 2));
    const auto time = time_of_day(s.substr(11, 8));
    const auto year = four_digit_year(s.substr(20, 4));
    if (!month || !day || !time || !year)
        return std::nullopt;
    return to_unix(*year, *month, *day, *time);
}

// ---- entity-tags ----

struct entity_tag {
    bool weak = false;
    std::string_view opaque; ///< with its quotes
};

/// One entity-tag, exactly (RFC 9110 section 8.8.3).
std::optional<entity_tag> parse_entity_tag(std::string_view s) noexcept {
    entity_tag t;
    if (s.starts_with("W/")) {
        t.weak = true;
        s.remove_prefix(2);
    }
    if (s.size() < 2 || s.front() != '"' || s.back() != '"')
        return std::nullopt;
    for (char c : s.substr(1, s.size() - 2)) {
        const auto u = static_cast<unsigned char>(c);
        if (!(u == 0x21 || (u >= 0x23 && u <= 0x7E) || u >= 0x80))
            return std::nullopt;
    }
    t.opaque = s;
    return t;
}

/// Whether an If-Match / If-None-Match value matches `etag` (always strong, ours). `*`
/// matches any current representation; a malformed list matches nothing.
bool list_matches(std::string_view value, std::string_view etag, bool strong) {
    value = trim(value);
    if (value == "*")
        return true;
    const auto elements = list_elements(value);
    std::vector<entity_tag> tags;
    for (auto e : elements) {
        auto t = parse_entity_tag(e);
        if (!t)
            return false;
        tags.push_back(*t);
    }
    return std::any_of(tags.begin(), tags.end(), [&](const entity_tag& t) {
        return (!strong || !t.weak) && t.opaque == etag;
    });
}

// ---- base64 (RFC 4648 section 4, as Structured Fields byte sequences use it) ----

constexpr std::string_view base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(std::span<const std::byte> in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const auto v = std::to_integer<unsigned>(in[i]) << 16 |
                       std::to_integer<unsigned>(in[i + 1]) << 8 |
                       std::to_integer<unsigned>(in[i + 2]);
        for (int shift = 18; shift >= 0; shift -= 6)
            out += base64_alphabet[(v >> shift) & 63U];
    }
    if (const auto rest = in.size() - i; rest > 0) {
        auto v = std::to_integer<unsigned>(in[i]) << 16;
        if (rest == 2)
            v |= std::to_integer<unsigned>(in[i + 1]) << 8;
        out += base64_alphabet[(v >> 18) & 63U];
        out += base64_alphabet[(v >> 12) & 63U];
        out += rest == 2 ? base64_alphabet[(v >> 6) & 63U] : '=';
        out += '=';
    }
    return out;
}

/// Strict base64 of exactly 32 bytes: 43 symbols and one '=' (the padding may be left out).
std::optional<sha256_digest> unbase64_digest(std::string_view s) noexcept {
    if (s.size() == 44 && s.back() == '=')
        s.remove_suffix(1);
    if (s.size() != 43)
        return std::nullopt;
    sha256_digest out{};
    unsigned acc = 0;
    int bits = 0;
    std::size_t n = 0;
    for (char c : s) {
        const auto pos = base64_alphabet.find(c);
        if (pos == std::string_view::npos)
            return std::nullopt;
        acc = (acc << 6) | static_cast<unsigned>(pos);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = static_cast<std::byte>((acc >> bits) & 0xFFU);
        }
    }
    if ((acc & ((1U << bits) - 1)) != 0) // the last symbol's unused bits must be zero
        return std::nullopt;
    return out;
}

/// The members of a Structured Fields dictionary as (key, value-with-parameters) pairs; good
/// enough for the byte sequences and integers Repr-Digest and Want-Repr-Digest carry (neither
/// contains a comma).
std::vector<std::pair<std::string_view, std::string_view>> dictionary(std::string_view s) {
    std::vector<std::pair<std::string_view, std::string_view>> out;
    for (auto member : list_elements(s)) {
        const auto eq = member.find('=');
        if (eq == std::string_view::npos)
            out.emplace_back(member, std::string_view{});
        else
            out.emplace_back(member.substr(0, eq), member.substr(eq + 1));
    }
    return out;
}

/// Percent-decodes one path segment; false on an invalid escape, an encoded '/' or NUL.
bool decode_segment(std::string_view raw, std::string& out, std::string& error) {
    const auto hex = [](char c) -> int {
        if (is_digit(c))
            return c - '0';
        c = lower(c);
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] != '%') {
            out += raw[i];
            continue;
        }
        if (i + 3 > raw.size()) {
            error = "an incomplete percent-escape in the target";
            return false;
        }
        const int h = hex(raw[i + 1]);
        const int l = hex(raw[i + 2]);
        if (h < 0 || l < 0) {
            error = "an invalid percent-escape in the target";
            return false;
        }
        const auto c = static_cast<char>(h * 16 + l);
        if (c == '/') {
            error = "an encoded '/' (%2F) in a path segment";
            return false;
        }
        if (c == '\0') {
            error = "an encoded NUL (%00) in the target";
            return false;
        }
        out += c;
        i += 2;
    }
    return true;
}

struct media_range {
    std::string_view type;
    double q = 1;
};

std::vector<media_range> parse_accept(std::string_view accept) {
    std::vector<media_range> out;
    for (auto element : list_elements(accept)) {
        media_range m;
        const auto semi = element.find(';');
        m.type = trim(element.substr(0, semi));
        if (semi != std::string_view::npos) {
            auto params = element.substr(semi + 1);
            for (;;) {
                const auto next = params.find(';');
                const auto p = trim(params.substr(0, next));
                if (p.size() >= 2 && lower(p[0]) == 'q' && p[1] == '=') {
                    double q = 0;
                    const std::string text{p.substr(2)};
                    if (std::sscanf(text.c_str(), "%lf", &q) == 1 && q >= 0 && q <= 1)
                        m.q = q;
                    else
                        m.q = 0;
                }
                if (next == std::string_view::npos)
                    break;
                params.remove_prefix(next + 1);
            }
        }
        out.push_back(m);
    }
    return out;
}

/// The q the most specific matching range gives `type` ("a/b"); 0 when none matches.
double quality(const std::vector<media_range>& ranges, std::string_view type) {
    const auto major = type.substr(0, type.find('/') + 1); // "a/"
    int best = -1;
    double q = 0;
    for (const auto& m : ranges) {
        int specificity = -1;
        if (iequals(m.type, type))
            specificity = 2;
        else if (m.type.size() == major.size() + 1 && istarts_with(m.type, major) &&
                 m.type.back() == '*')
            specificity = 1;
        else if (m.type == "*/*")
            specificity = 0;
        if (specificity > best) {
            best = specificity;
            q = m.q;
        }
    }
    return q;
}

} // namespace

// ---- dates ----

std::string format_http_date(std::int64_t unix_seconds) {
    using namespace std::chrono;
    constexpr std::int64_t first = 0;           // 1970-01-01T00:00:00Z
    constexpr std::int64_t last = 253402300799; // 9999-12-31T23:59:59Z
    unix_seconds = std::clamp(unix_seconds, first, last);
    const auto days = unix_seconds / 86400;
    const auto rest = unix_seconds % 86400;
    const sys_days d{std::chrono::days{days}};
    const year_month_day ymd{d};
    const weekday wd{d};
    // By hand: every answer carries one or two of these, and snprintf showed in profiles.
    const auto digits = [](std::string& out, unsigned value, int width) {
        char buf[4];
        for (int i = width - 1; i >= 0; --i, value /= 10)
            buf[i] = static_cast<char>('0' + value % 10);
        out.append(buf, static_cast<std::size_t>(width));
    };
    std::string out;
    out.reserve(29);
    out.append(weekdays[wd.c_encoding()]).append(", ");
    digits(out, static_cast<unsigned>(ymd.day()), 2);
    out.append(" ").append(months[static_cast<unsigned>(ymd.month()) - 1]).append(" ");
    digits(out, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
    out += ' ';
    digits(out, static_cast<unsigned>(rest / 3600), 2);
    out += ':';
    digits(out, static_cast<unsigned>(rest / 60 % 60), 2);
    out += ':';
    digits(out, static_cast<unsigned>(rest % 60), 2);
    out.append(" GMT");
    return out;
}

std::optional<std::int64_t> parse_http_date(std::string_view text) {
    text = trim(text);
    if (auto t = parse_imf_fixdate(text))
        return t;
    if (auto t = parse_rfc850(text))
        return t;
    return parse_asctime(text);
}

// ---- ranges ----

range_decision evaluate_range(std::string_view range_header, std::uint64_t size) {
    range_decision whole;
    const auto eq = range_header.find('=');
    if (eq == std::string_view::npos || !iequals(trim(range_header.substr(0, eq)), "bytes"))
        return whole; // another unit (or none): ignored
    const auto specs = list_elements(range_header.substr(eq + 1));
    if (specs.empty())
        return whole;
    std::vector<byte_range> ranges;
    std::uint64_t sum = 0;
    for (auto spec : specs) {
        const auto dash = spec.find('-');
        if (dash == std::string_view::npos)
            return whole;
        const auto first_text = spec.substr(0, dash);
        const auto last_text = spec.substr(dash + 1);
        byte_range r;
        if (first_text.empty()) { // suffix-range: the last N bytes
            const auto suffix = saturating_number(last_text);
            if (!suffix)
                return whole;
            if (*suffix == 0 || size == 0)
                continue; // unsatisfiable
            r = {size - std::min(*suffix, size), size - 1};
        } else {
            const auto first = saturating_number(first_text);
            if (!first)
                return whole;
            std::uint64_t last = UINT64_MAX;
            if (!last_text.empty()) {
                const auto l = saturating_number(last_text);
                if (!l || *l < *first)
                    return whole; // an invalid range-spec: the whole header is invalid
                last = *l;
            }
            if (*first >= size)
                continue; // unsatisfiable
            r = {*first, std::min(last, size - 1)};
        }
        sum = r.length() > UINT64_MAX - sum ? UINT64_MAX : sum + r.length();
        ranges.push_back(r);
    }
    if (ranges.empty())
        return {range_decision::kind::unsatisfiable, {}};
    if (sum > size)
        return whole; // overlapping ranges asking for more than the file: ignored
    std::sort(ranges.begin(), ranges.end(),
              [](const byte_range& a, const byte_range& b) { return a.first < b.first; });
    std::vector<byte_range> merged;
    for (const auto& r : ranges) {
        if (!merged.empty() && r.first <= merged.back().last + 1)
            merged.back().last = std::max(merged.back().last, r.last);
        else
            merged.push_back(r);
    }
    if (merged.size() > max_range_parts)
        return whole;
    return {range_decision::kind::partial, std::move(merged)};
}

std::string format_content_range(byte_range r, std::uint64_t size) {
    return "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) + "/" +
           std::to_string(size);
}

std::string format_unsatisfied_range(std::uint64_t size) {
    return "bytes */" + std::to_string(size);
}

std::optional<content_range> parse_content_range(std::string_view text) {
    text = trim(text);
    if (!istarts_with(text, "bytes "))
        return std::nullopt;
    text.remove_prefix(6);
    const auto dash = text.find('-');
    const auto slash = text.find('/');
    if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash)
        return std::nullopt;
    const auto first = exact_number(text.substr(0, dash));
    const auto last = exact_number(text.substr(dash + 1, slash - dash - 1));
    if (!first || !last || *first > *last)
        return std::nullopt;
    content_range out{{*first, *last}, std::nullopt};
    const auto complete = text.substr(slash + 1);
    if (complete != "*") {
        const auto n = exact_number(complete);
        if (!n || *last >= *n)
            return std::nullopt;
        out.complete_length = *n;
    }
    return out;
}

// ---- conditional requests ----

precondition evaluate_preconditions(const conditions& c, const validators& v) {
    if (c.if_match) {
        if (!list_matches(*c.if_match, v.etag, true))
            return precondition::failed;
    } else if (c.if_unmodified_since) {
        const auto date = parse_http_date(*c.if_unmodified_since);
        if (date && v.last_modified > *date)
            return precondition::failed;
    }
    if (c.if_none_match) {
        if (list_matches(*c.if_none_match, v.etag, false))
            return precondition::not_modified;
    } else if (c.if_modified_since) {
        const auto date = parse_http_date(*c.if_modified_since);
        if (date && v.last_modified <= *date)
            return precondition::not_modified;
    }
    return precondition::proceed;
}

bool if_range_holds(std::string_view if_range, const validators& v) {
    if_range = trim(if_range);
    if (if_range.starts_with("W/"))
        return false;
    if (if_range.starts_with('"')) {
        const auto tag = parse_entity_tag(if_range);
        return tag && tag->opaque == v.etag;
    }
    const auto date = parse_http_date(if_range);
    return date && *date == v.last_modified && v.last_modified_is_strong;
}

// ---- Repr-Digest ----

std::string format_repr_digest(const sha256_digest& digest) {
    return "sha-256=:" + base64(digest) + ":";
}

std::optional<sha256_digest> parse_repr_digest(std::string_view text) {
    for (auto [key, value] : dictionary(text)) {
        if (key != "sha-256")
            continue;
        value = value.substr(0, value.find(';')); // parameters do not matter here
        if (value.size() < 2 || value.front() != ':' || value.back() != ':')
            return std::nullopt;
        return unbase64_digest(value.substr(1, value.size() - 2));
    }
    return std::nullopt;
}

bool wants_sha256(std::string_view want_repr_digest) {
    for (auto [key, value] : dictionary(want_repr_digest)) {
        if (key != "sha-256")
            continue;
        const auto preference = exact_number(value.substr(0, value.find(';')));
        return preference && *preference > 0 && *preference <= 10;
    }
    return false;
}

// ---- request targets ----

decoded_target decode_target(std::string_view target) {
    decoded_target out;
    if (istarts_with(target, "http://") || istarts_with(target, "https://")) {
        target.remove_prefix(target.find("//") + 2);
        const auto path_start = target.find_first_of("/?");
        target = path_start == std::string_view::npos ? std::string_view{"/"}
                 : target[path_start] == '?'          ? std::string_view{"/"}
                                                      : target.substr(path_start);
    } else if (!target.starts_with('/')) {
        out.error = "the target is neither a path (/...) nor an absolute http:// URL";
        return out;
    }
    target = target.substr(0, target.find('?')); // the query is not used
    for (char c : target) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7F || c == '#') {
            out.error = "a character a request target may not hold";
            return out;
        }
    }
    out.trailing_slash = target.ends_with('/');
    while (target.starts_with('/'))
        target.remove_prefix(1);
    for (bool first = true;; first = false) {
        const auto slash = target.find('/');
        if (!first)
            out.path += '/';
        if (!decode_segment(target.substr(0, slash), out.path, out.error))
            return out;
        if (slash == std::string_view::npos)
            break;
        target.remove_prefix(slash + 1);
    }
    if (!is_valid_utf8(out.path)) {
        out.error = "the decoded path is not UTF-8";
        return out;
    }
    out.ok = true;
    return out;
}

std::string encode_path(std::string_view path) {
    static constexpr std::string_view safe = "-._~!$()*+,;=:@/";
    std::string out;
    out.reserve(path.size());
    while (path.starts_with("//"))
        path.remove_prefix(1);
    for (char c : path) {
        const auto u = static_cast<unsigned char>(c);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
            safe.find(c) != std::string_view::npos) {
            out += c;
        } else {
            static constexpr char hex[] = "0123456789ABCDEF";
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 15U];
        }
    }
    return out;
}

// ---- content negotiation ----

std::string_view content_type_for(std::string_view name) {
    struct entry {
        std::string_view extension;
        std::string_view type;
    };
    static constexpr entry table[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"txt", "text/plain; charset=utf-8"},
        {"md", "text/markdown; charset=utf-8"},
        {"csv", "text/csv; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"xml", "application/xml"},
        {"pdf", "application/pdf"},
        {"wasm", "application/wasm"},
        {"zip", "application/zip"},
        {"gz", "application/gzip"},
        {"tgz", "application/gzip"},
        {"tar", "application/x-tar"},
        {"xz", "application/x-xz"},
        {"zst", "application/zstd"},
        {"bz2", "application/x-bzip2"},
        {"deb", "application/vnd.debian.binary-package"},
        {"iso", "application/x-iso9660-image"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"avif", "image/avif"},
        {"svg", "image/svg+xml"},
        {"ico", "image/vnd.microsoft.icon"},
        {"mp4", "video/mp4"},
        {"webm", "video/webm"},
        {"mp3", "audio/mpeg"},
        {"ogg", "audio/ogg"},
        {"flac", "audio/flac"},
        {"wav", "audio/wav"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
    };
    const auto base = name.substr(name.rfind('/') + 1);
    const auto dot = base.rfind('.');
    if (dot != std::string_view::npos && dot > 0) {
        const auto extension = base.substr(dot + 1);
        for (const auto& e : table)
            if (iequals(extension, e.extension))
                return e.type;
    }
    return "application/octet-stream";
}

bool prefers_json(std::string_view accept) {
    const auto ranges = parse_accept(accept);
    return quality(ranges, "application/json") > quality(ranges, "text/html");
}

} // namespace ferry::protocol::http
