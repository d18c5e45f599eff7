// http_listing: a directory listing as the HTTP front answers it (docs/http.md, directories):
// read on the listing pool with the LIST rules, then rendered as nginx's JSON or as HTML.
#pragma once

#include "serve.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::server {

/// A listing shows at most this many entries, and says so when there are more.
inline constexpr std::size_t max_listed = 100'000;

struct listing {
    std::vector<protocol::list_entry> entries; ///< directories first, then by name (bytewise)
    bool truncated = false;                    ///< there were more than max_listed
    int error = 0;                             ///< readdir's errno, 0: read to the end
};

/// Reads up to max_listed entries of `dir` that next_listed shows, sorted. Blocking: call it
/// on the listing pool.
listing read_listing(const dir_ptr& dir, const path_resolver& resolver);

/// nginx's `autoindex_format json` array, so one client reads both servers:
/// [{"name":..,"type":"file"|"directory"|"other","mtime":IMF-fixdate,"size":N (files only)}].
std::string render_listing_json(const listing& l);

/// A page a person can use without JavaScript: a table of links (`./NAME`, percent-encoded),
/// sizes (human-readable, exact bytes in a title) and dates, a `../` link except at the root
/// (`path` ""), every name HTML-escaped. `path`: the directory, relative to the root.
std::string render_listing_html(const listing& l, std::string_view path);

} // namespace ferry::server
