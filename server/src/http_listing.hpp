// http_listing: a directory listing as the HTTP front answers it (docs/http.md, directories):
// read on the listing pool with the LIST rules into a compact sorted form, then rendered as
// nginx's JSON or as HTML a piece at a time, so the whole text is never held in memory.
#pragma once

#include "serve.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::server {

/// A listing shows at most this many entries, and says so when there are more.
inline constexpr std::size_t max_listed = 100'000;

/// One listed entry; its name is in its listing's `names`.
struct listed {
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::uint32_t name_at = 0;  ///< offset in listing::names
    std::uint8_t name_size = 0; ///< 1..255 bytes (protocol::max_name_size)
    protocol::file_kind kind = protocol::file_kind::regular;
};
static_assert(sizeof(listed) == 24);

/// A directory's entries, compact: 24 bytes each plus the names, back to back in one string
/// (100,000 entries with 30-byte names: 5.4 MB; at most 100,000 x 279 bytes: 28 MB).
struct listing {
    std::vector<listed> entries; ///< directories first, then by name (bytewise)
    std::string names;
    bool truncated = false; ///< there were more than max_listed
    int error = 0;          ///< readdir's errno, 0: read to the end

    std::string_view name_of(const listed& e) const noexcept {
        return std::string_view{names}.substr(e.name_at, e.name_size);
    }
};

/// Reads up to max_listed entries of `dir` that next_listed shows, sorted. Blocking: call it
/// on the listing pool.
listing read_listing(const dir_ptr& dir, const path_resolver& resolver);

enum class listing_format {
    /// nginx's `autoindex_format json` array, so one client reads both servers:
    /// [{"name":..,"type":"file"|"directory"|"other","mtime":IMF-fixdate,"size":N (files)}].
    json,
    /// A page a person can use without JavaScript: a table of links (`./NAME`,
    /// percent-encoded), sizes (human-readable, exact bytes in a title) and dates, a `../` link
    /// except at the root, every name HTML-escaped.
    html,
};

/// Renders a listing's body a piece at a time. The listing must outlive the renderer.
class listing_renderer {
public:
    /// `path`: the directory, relative to the root ("" for the root): the page's title.
    listing_renderer(const listing& l, listing_format format, std::string_view path);

    /// Appends the next part of the body to `out`: whole entries (and the body's start or end)
    /// until `out` grew by at least `piece` bytes or the body is complete. Returns true while
    /// more follows; once it returned false, the whole body was appended.
    bool next(std::string& out, std::size_t piece);

private:
    void start(std::string& out) const;
    void row(std::string& out, const listed& e) const;
    void end(std::string& out) const;

    const listing& l_;
    listing_format format_;
    std::string path_;
    std::size_t at_ = 0; ///< the next entry to render
    bool started_ = false;
};

} // namespace ferry::server
