#include "ferry/client/url.hpp"

#include "ferry/protocol/messages.hpp"

#include <algorithm>

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
    u.path = normal_path(u.path);
    if (u.path.size() > protocol::max_path_size || !protocol::is_valid_utf8(u.path) ||
        u.path.find('\0') != std::string::npos) {
        error = "the path must be UTF-8 without NUL, at most 4096 bytes";
        return std::nullopt;
    }
    return u;
}

} // namespace ferry::client
