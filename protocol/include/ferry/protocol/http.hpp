// http: the pure parts of HTTP/1.1 that ferryd and ferry share: dates, byte ranges and
// Content-Range, conditional requests, Repr-Digest, request targets, media types. No sockets,
// no parser state: every function maps text to a decision, and is table-tested
// (tests/protocol/http_test.cpp). Message framing (request and response parsing) is Beast's,
// in the server and the client.
#pragma once

#include "ferry/protocol/messages.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::protocol::http {

// ---- dates (RFC 9110 section 5.6.7) ---------------------------------------------------------

/// IMF-fixdate, as every date ferryd sends: "Sun, 06 Nov 1994 08:49:37 GMT". `unix_seconds`
/// before 1970 or after 9999 is clamped to those years' ends.
std::string format_http_date(std::int64_t unix_seconds);

/// Seconds since 1970 of an HTTP-date in any of the three forms a recipient must accept
/// (IMF-fixdate, RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT", asctime "Sun Nov  6 08:49:37
/// 1994"); nullopt for anything else (a bad day of week is tolerated, a bad day of month is
/// not). Two-digit RFC 850 years 70..99 are 1970..1999, 00..69 are 2000..2069.
std::optional<std::int64_t> parse_http_date(std::string_view text);

// ---- byte ranges (RFC 9110 section 14) ------------------------------------------------------

/// Bytes [first, last] of a representation, both inclusive as in HTTP.
struct byte_range {
    std::uint64_t first = 0;
    std::uint64_t last = 0;
    std::uint64_t length() const noexcept { return last - first + 1; }
    bool operator==(const byte_range&) const = default;
};

/// At most this many parts in a multipart/byteranges answer; a request for more (after
/// overlapping and adjacent ranges are merged) gets the whole representation instead.
inline constexpr std::size_t max_range_parts = 16;

/// What a GET with `Range` gets (docs/http.md, ranges):
/// - whole: 200 with the whole representation: no Range header, a unit other than `bytes`, a
///   syntactically invalid header, more than max_range_parts parts, or ranges that overlap so
///   much that together they ask for more bytes than the representation has (the Apache
///   "Range DoS" class): the header is ignored, as RFC 9110 allows;
/// - partial: 206 with `ranges` (1 .. max_range_parts), each clamped to the size, sorted by
///   first byte, overlapping and adjacent ones merged; one range is a single part, several a
///   multipart/byteranges body;
/// - unsatisfiable: 416 with `Content-Range: bytes */SIZE`: syntactically valid, but no range
///   overlaps the representation (every first byte at or past the size, or a suffix of 0).
/// Numbers too large for 64 bits never wrap: a first byte so large is past any size, a last byte
/// or suffix so large reaches the end.
struct range_decision {
    enum class kind { whole, partial, unsatisfiable };
    kind what = kind::whole;
    std::vector<byte_range> ranges; ///< partial only
};
range_decision evaluate_range(std::string_view range_header, std::uint64_t size);

/// "bytes FIRST-LAST/SIZE".
std::string format_content_range(byte_range r, std::uint64_t size);
/// "bytes */SIZE", the Content-Range of a 416.
std::string format_unsatisfied_range(std::uint64_t size);

/// A Content-Range of a 206 as a client reads it: "bytes FIRST-LAST/SIZE" or
/// "bytes FIRST-LAST/*". nullopt when malformed, when FIRST > LAST, or when LAST >= SIZE.
struct content_range {
    byte_range range;
    std::optional<std::uint64_t> complete_length; ///< nullopt for "*"
    bool operator==(const content_range&) const = default;
};
std::optional<content_range> parse_content_range(std::string_view text);

// ---- conditional requests (RFC 9110 section 13) --------------------------------------------

/// What a server knows about the representation to judge conditions by.
struct validators {
    std::string_view etag;          ///< a strong entity-tag, with its quotes: "\"abc\""
    std::int64_t last_modified = 0; ///< seconds since 1970
    /// False when the representation changed within the second before the answer (RFC 9110
    /// section 8.8.2.2): a date cannot then tell two versions apart, so If-Range by date does
    /// not hold (the whole representation is sent).
    bool last_modified_is_strong = true;
};

/// The conditional header fields of a request, as received (absent: nullopt).
struct conditions {
    std::optional<std::string_view> if_match = std::nullopt;
    std::optional<std::string_view> if_none_match = std::nullopt;
    std::optional<std::string_view> if_modified_since = std::nullopt;
    std::optional<std::string_view> if_unmodified_since = std::nullopt;
};

enum class precondition {
    proceed,      ///< answer normally
    not_modified, ///< 304
    failed,       ///< 412
};

/// RFC 9110 section 13.2.2, for GET and HEAD, in its order: If-Match (strong comparison, `*`
/// matches) else If-Unmodified-Since, then If-None-Match (weak comparison, `*` matches) else
/// If-Modified-Since. A date that does not parse is ignored; a malformed entity-tag list
/// matches nothing.
precondition evaluate_preconditions(const conditions& c, const validators& v);

/// If-Range (RFC 9110 section 13.1.5): true when the Range may be honoured. An entity-tag
/// must match strongly (a weak one never does); a date must equal Last-Modified exactly, and
/// only when that date is strong (validators::last_modified_is_strong).
/// Anything else (malformed) is false: the whole representation is sent.
bool if_range_holds(std::string_view if_range, const validators& v);

// ---- Repr-Digest (RFC 9530) -----------------------------------------------------------------

/// "sha-256=:BASE64:".
std::string format_repr_digest(const sha256_digest& digest);
/// The sha-256 member of a Repr-Digest dictionary ("sha-512=:...:, sha-256=:...:" included);
/// nullopt when there is none or it is not 32 bytes of valid base64.
std::optional<sha256_digest> parse_repr_digest(std::string_view text);
/// True when a Want-Repr-Digest dictionary asks for sha-256 with a preference above 0.
bool wants_sha256(std::string_view want_repr_digest);

// ---- request targets (RFC 9112 section 3.2) -------------------------------------------------

/// A request target as ferryd reads it: origin-form ("/a%20b/c?q") or absolute-form
/// ("http://host:port/a?q": the authority is ignored, never fetched). The query is dropped.
/// Each segment is percent-decoded exactly once; a decoded `/` or NUL, an invalid escape
/// ("%G0", "%4"), a target that is neither form, or a decoded path that is not UTF-8 is an
/// error. The result is the path without its leading `/`, in the form the Ferry protocol's
/// requests carry (`..`, dot and empty segments are left for the path resolver, so both
/// protocols resolve the same way).
struct decoded_target {
    bool ok = false;
    std::string path;            ///< relative to the root, "" for "/"
    bool trailing_slash = false; ///< the target's path ended with '/' (a directory's URL)
    std::string error;           ///< when !ok: why, one line ("an encoded '/' (%2F) in a segment")
};
decoded_target decode_target(std::string_view target);

/// `path` percent-encoded for a URL path or a Location: every byte but the unreserved ones
/// (RFC 3986 ALPHA DIGIT - . _ ~), `/` and the sub-delims that are safe in a path is %XX.
/// A result never starts with "//" (a leading run of slashes collapses to one), so a
/// Location built from it cannot name another host.
std::string encode_path(std::string_view path);

// ---- content negotiation -------------------------------------------------------------------

/// The media type for a file name, by its extension (case-insensitive); text types carry
/// "; charset=utf-8". Unknown: "application/octet-stream".
std::string_view content_type_for(std::string_view name);

/// True when an Accept field prefers application/json to text/html (q-values honoured; an
/// absent or empty field, or "*/*", prefers HTML).
bool prefers_json(std::string_view accept);

} // namespace ferry::protocol::http
