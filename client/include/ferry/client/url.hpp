// ferry://HOST:PORT/path and http://HOST:PORT/path URLs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::client {

inline constexpr std::uint16_t default_port = 7878;
inline constexpr std::uint16_t default_http_port = 80;

/// The protocol a URL names: the Ferry protocol (ferry://) or HTTP/1.1 (http://).
enum class url_scheme { ferry, http };

struct url {
    url_scheme scheme = url_scheme::ferry;
    std::string host; ///< a name or an IP literal (without brackets)
    std::uint16_t port = default_port;
    std::string path; ///< decoded and normalised, relative to the served root: no leading '/'
    /// The path as written ended with '/' (HTTP's spelling of a directory; `path` drops it).
    bool trailing_slash = false;

    /// "host:port", IPv6 hosts in brackets.
    std::string authority() const;
    /// "ferry://host:port" or "http://host:port": what a kept-alive connection can serve.
    std::string origin() const;
    /// origin() + "/" + path (the path as decoded: for messages, not for the wire).
    std::string str() const;
};

/// `path` without empty and `.` components (`./a//b/` is `a/b`), as the server reads it
/// (protocol.md, paths); `..` is left for the server to resolve.
std::string normal_path(std::string_view path);

/// Parses ferry://HOST[:PORT]/PATH or http://HOST[:PORT]/PATH (https:// is refused: no TLS).
/// %XX escapes in the path are decoded, then the path is
/// normalised (normal_path), so messages and base names do not depend on its spelling. Returns
/// nullopt and sets `error` for anything else.
std::optional<url> parse_url(std::string_view text, std::string& error);

/// The http:// URL a redirect's Location names, resolved against the URL of the request it
/// answered (RFC 3986 5.2: absolute, scheme-relative `//host/p`, absolute-path `/p`, relative
/// `p` or `../p`, with dot segments removed; a fragment is dropped), then read as parse_url
/// reads a URL. Returns nullopt and sets `error` (why, as in "a redirect to X: " + error) for a
/// Location that is empty, holds a control character, space or bad %-escape, names another
/// scheme (https://: ferry speaks no TLS), credentials (user@host) or a query (`?`: a request
/// carries a path only), or that parse_url refuses. `reference` is a peer's text: escape it
/// where it is shown.
/// `directory`: the request was for base's path and '/' (a listing), which relative references
/// resolve against.
std::optional<url> resolve_url(const url& base, std::string_view reference, std::string& error,
                               bool directory = false);

} // namespace ferry::client
