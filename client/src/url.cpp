#include "ferry/client/url.hpp"

#include "ferry/protocol/http.hpp"
#include "ferry/protocol/messages.hpp"

#include <algorithm>
#include <cctype>

namespace ferry::client {

std::string url::authority() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string url::origin() const {
    return (scheme == url_scheme::http ? "http://" : "ferry://") + authority();
}

std::string url::str() const {
    return origin() + "/" + path;
}

std::string normal_path(std::string_view path) {
    std::string normal;
    for (std::size_t at = 0; at <= path.size();) {
        const auto end = std::min(path.find('/', at), path.size());
        const auto part = path.substr(at, end - at);
        if (!part.empty() && part != ".")
            normal.append(normal.empty() ? "" : "/").append(part);
        at = end + 1;
    }
    return normal;
}

std::optional<url> parse_url(std::string_view text, std::string& error) {
    url u;
    if (text.starts_with("ferry://")) {
        text.remove_prefix(8);
    } else if (text.starts_with("http://")) {
        text.remove_prefix(7);
        u.scheme = url_scheme::http;
        u.port = default_http_port;
    } else if (text.starts_with("https://")) {
        error = "https:// is not supported (ferry speaks no TLS); use http:// or ferry://";
        return std::nullopt;
    } else {
        error = "expected a URL of the form ferry://HOST:PORT/PATH or http://HOST[:PORT]/PATH";
        return std::nullopt;
    }
    const auto slash = text.find('/');
    std::string_view authority = text.substr(0, slash);
    std::string_view path =
        slash == std::string_view::npos ? std::string_view{} : text.substr(slash + 1);
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            error = "unterminated IPv6 address (expected [ADDRESS])";
            return std::nullopt;
        }
        u.host = std::string{authority.substr(1, close - 1)};
        authority.remove_prefix(close + 1);
        if (!authority.empty()) {
            if (authority.front() != ':') {
                error = "expected :PORT after the IPv6 address";
                return std::nullopt;
            }
            port = authority.substr(1);
        }
    } else {
        const auto colon = authority.find(':');
        u.host = std::string{authority.substr(0, colon)};
        if (colon != std::string_view::npos)
            port = authority.substr(colon + 1);
    }
    if (u.host.empty()) {
        error = "the URL names no host";
        return std::nullopt;
    }
    if (!port.empty() || authority.ends_with(':')) {
        unsigned value = 0;
        for (char c : port) {
            if (c < '0' || c > '9' || value > 65535) {
                value = 70000;
                break;
            }
            value = value * 10 + static_cast<unsigned>(c - '0');
        }
        if (port.empty() || value == 0 || value > 65535) {
            error = "the port must be a number from 1 to 65535";
            return std::nullopt;
        }
        u.port = static_cast<std::uint16_t>(value);
    }
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] != '%') {
            u.path += path[i];
            continue;
        }
        auto hex = [](char c) {
            return c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : -1;
        };
        if (i + 2 >= path.size() || hex(path[i + 1]) < 0 || hex(path[i + 2]) < 0) {
            error = "bad %-escape in the path";
            return std::nullopt;
        }
        u.path += static_cast<char>(hex(path[i + 1]) * 16 + hex(path[i + 2]));
        i += 2;
    }
    u.trailing_slash = path.ends_with('/');
    u.path = normal_path(u.path);
    if (u.path.size() > protocol::max_path_size || !protocol::is_valid_utf8(u.path) ||
        u.path.find('\0') != std::string::npos) {
        error = "the path must be UTF-8 without NUL, at most 4096 bytes";
        return std::nullopt;
    }
    return u;
}

namespace {

/// RFC 3986 5.2.4: `path` without its "." and ".." segments ("/a/b/../c/./d" is "/a/c/d").
std::string remove_dot_segments(std::string_view in) {
    std::string out;
    while (!in.empty()) {
        if (in.starts_with("../") || in.starts_with("./")) {
            in.remove_prefix(in.find('/') + 1);
        } else if (in.starts_with("/./") || in == "/.") {
            in = in.size() == 2 ? std::string_view{"/"} : in.substr(2);
        } else if (in.starts_with("/../") || in == "/..") {
            in = in.size() == 3 ? std::string_view{"/"} : in.substr(3);
            const auto last = out.rfind('/');
            out.erase(last == std::string::npos ? 0 : last);
        } else if (in == "." || in == "..") {
            in = {};
        } else {
            const auto end = std::min(in.find('/', 1), in.size());
            out.append(in.substr(0, end));
            in.remove_prefix(end);
        }
    }
    return out;
}

/// A URI reference's parts (RFC 3986 3 and 4.1), without its fragment.
struct reference_parts {
    std::optional<std::string> scheme; ///< lower case
    std::optional<std::string_view> authority;
    std::string_view path;
    bool query = false;
};

reference_parts split_reference(std::string_view r) {
    reference_parts p;
    // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"
    const auto colon = r.find(':');
    const auto scheme_end =
        r.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
    if (colon != std::string_view::npos && colon == scheme_end && colon > 0 &&
        std::isalpha(static_cast<unsigned char>(r[0]))) {
        std::string scheme{r.substr(0, colon)};
        for (auto& c : scheme)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        p.scheme = std::move(scheme);
        r.remove_prefix(colon + 1);
    }
    if (r.starts_with("//")) {
        const auto end = std::min(r.find_first_of("/?", 2), r.size());
        p.authority = r.substr(2, end - 2);
        r.remove_prefix(end);
    }
    const auto query = r.find('?');
    p.query = query != std::string_view::npos;
    p.path = r.substr(0, query);
    return p;
}

} // namespace

std::optional<url> resolve_url(const url& base, std::string_view reference, std::string& error,
                               bool directory) {
    if (reference.empty()) {
        error = "no Location";
        return std::nullopt;
    }
    reference = reference.substr(0, reference.find('#')); // a fragment never reaches a server
    for (std::size_t i = 0; i < reference.size(); ++i) {
        const auto c = static_cast<unsigned char>(reference[i]);
        const auto hex = [&](std::size_t at) {
            return at < reference.size() &&
                   std::isxdigit(static_cast<unsigned char>(reference[at])) != 0;
        };
        if (c <= 0x20 || c == 0x7F || (c == '%' && !(hex(i + 1) && hex(i + 2)))) {
            error = "not a URL (a control character, a space or a bad %-escape)";
            return std::nullopt;
        }
    }
    const auto r = split_reference(reference);
    if (r.scheme && *r.scheme != "http") {
        error = *r.scheme == "https" ? "ferry does not follow https:// (it speaks no TLS)"
                                     : "ferry follows only http://";
        return std::nullopt;
    }
    if (r.query) {
        error = "a URL with a query (?...), which ferry cannot request";
        return std::nullopt;
    }
    // RFC 3986 5.2.2, the base being the request's own URL (its path as sent, no query).
    const std::string base_path = "/" + protocol::http::encode_path(base.path) +
                                  (directory && !base.path.empty() ? "/" : "");
    std::string authority = base.authority();
    std::string path;
    if (r.scheme || r.authority) {
        if (!r.authority || r.authority->empty()) {
            error = "a URL without a host";
            return std::nullopt;
        }
        authority = std::string{*r.authority};
        path = remove_dot_segments(r.path);
    } else if (r.path.empty()) {
        path = base_path;
    } else if (r.path.starts_with('/')) {
        path = remove_dot_segments(r.path);
    } else { // merged with the base path's directory (5.2.3)
        path = remove_dot_segments(base_path.substr(0, base_path.rfind('/') + 1) +
                                   std::string{r.path});
    }
    if (authority.find('@') != std::string::npos) {
        error = "a URL with credentials (user@host), which ferry does not send";
        return std::nullopt;
    }
    std::string parse_error;
    auto u =
        parse_url("http://" + authority + (path.starts_with('/') ? "" : "/") + path, parse_error);
    if (!u)
        error = "not a URL ferry can follow (" + parse_error + ")";
    return u;
}

} // namespace ferry::client
