// ferry://HOST:PORT/path URLs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::client {

inline constexpr std::uint16_t default_port = 7878;

struct url {
    std::string host; ///< a name or an IP literal (without brackets)
    std::uint16_t port = default_port;
    std::string path; ///< decoded and normalised, relative to the served root: no leading '/'

    /// "ferry://host:port/path", IPv6 hosts in brackets.
    std::string authority() const;
    std::string str() const;
};

/// `path` without empty and `.` components (`./a//b/` is `a/b`), as the server reads it
/// (protocol.md, paths); `..` is left for the server to resolve.
std::string normal_path(std::string_view path);

/// Parses ferry://HOST[:PORT]/PATH. %XX escapes in the path are decoded, then the path is
/// normalised (normal_path), so messages and base names do not depend on its spelling. Returns
/// nullopt and sets `error` for anything else.
std::optional<url> parse_url(std::string_view text, std::string& error);

} // namespace ferry::client
