// listing: what `ferry ls` prints, written as the entries arrive so that a huge directory is
// listed in bounded memory. Names are escaped for the terminal; --json keeps them exact.
#pragma once

#include "ferry/protocol/messages.hpp"

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace ferry::client {

/// "file", "directory", "symlink", "other".
std::string kind_name(protocol::file_kind k);
/// "2024-05-01T12:00:00Z" (UTC, whole seconds).
std::string iso_time(std::int64_t ns);

/// Prints a listing to `out`, sorted by name while it holds at most `sort_limit` entries. Past
/// that, what it holds is printed in the server's order, and so is every later entry, and
/// `err` is told once. Text: one line per entry ("- 12 2024-... name"); JSON: one array,
/// streamed, valid even when the listing fails midway (finish() closes it).
class listing_writer {
public:
    static constexpr std::size_t default_sort_limit = 100'000;

    listing_writer(std::ostream& out, std::ostream& err, bool json,
                   std::size_t sort_limit = default_sort_limit)
        : out_(out), err_(err), json_(json), sort_limit_(sort_limit) {}

    /// One batch of entries (moved from).
    void add(std::vector<protocol::list_entry>& batch);
    /// Prints what is still held (sorted) and closes the JSON array.
    void finish();

    /// Entries held for sorting right now (at most sort_limit).
    std::size_t held() const noexcept { return held_.size(); }
    /// True once the listing outgrew sort_limit and is printed as it arrives.
    bool streaming() const noexcept { return streaming_; }

private:
    void print(const protocol::list_entry& e);

    std::ostream& out_;
    std::ostream& err_;
    bool json_;
    std::size_t sort_limit_;
    std::vector<protocol::list_entry> held_;
    bool streaming_ = false;
    bool first_ = true;
};

} // namespace ferry::client
