// redirect_chain: the HTTP redirects one request follows (docs/client.md, HTTP URLs).
#pragma once

#include "ferry/client/connection.hpp"
#include "ferry/client/url.hpp"

#include <string>
#include <vector>

namespace ferry::client {

/// The most redirects one request follows (curl -L follows 50, wget 20, browsers about 20).
inline constexpr unsigned max_redirects = 10;

/// The URLs one request went through, redirect by redirect. Not thread-safe.
class redirect_chain {
public:
    explicit redirect_chain(const url& start) : seen_{start.str()} {}

    /// `f` is a failure of kind redirect, the answer to a request for `u` (with `directory`,
    /// for u's path and '/': a listing). Returns no failure
    /// and sets `u` to the URL its Location names (resolve_url), or returns a protocol failure
    /// saying why that redirect is not followed: a Location that is not an http:// URL, a URL
    /// already seen (the loop, named), or more than max_redirects.
    failure follow(url& u, const failure& f, bool directory = false);

    /// Whether any redirect was followed.
    bool redirected() const noexcept { return seen_.size() > 1; }

private:
    std::vector<std::string> seen_;
};

} // namespace ferry::client
