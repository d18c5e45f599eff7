#include "ferry/client/listing.hpp"

#include "ferry/protocol/text.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace ferry::client {

namespace fp = ferry::protocol;

std::string kind_name(fp::file_kind k) {
    switch (k) {
    case fp::file_kind::regular:
        return "file";
    case fp::file_kind::directory:
        return "directory";
    case fp::file_kind::symlink:
        return "symlink";
    case fp::file_kind::other:
        return "other";
    }
    return "unknown";
}

std::string iso_time(std::int64_t ns) {
    const std::time_t s = static_cast<std::time_t>(std::floor(static_cast<double>(ns) / 1e9));
    std::tm tm{};
    ::gmtime_r(&s, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

void listing_writer::add(std::vector<fp::list_entry>& batch) {
    if (streaming_) {
        for (const auto& e : batch)
            print(e);
        return;
    }
    if (held_.size() + batch.size() <= sort_limit_) {
        held_.insert(held_.end(), std::make_move_iterator(batch.begin()),
                     std::make_move_iterator(batch.end()));
        return;
    }
    // Too many to sort in bounded memory: from here on, the server's order.
    err_ << "ferry: more than " << sort_limit_
         << " entries: listed in the server's order, not sorted\n";
    streaming_ = true;
    for (const auto& e : held_)
        print(e);
    held_.clear();
    held_.shrink_to_fit();
    for (const auto& e : batch)
        print(e);
}

void listing_writer::finish() {
    std::sort(held_.begin(), held_.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& e : held_)
        print(e);
    held_.clear();
    if (json_)
        out_ << (first_ ? "[]\n" : "\n]\n");
    out_.flush();
}

void listing_writer::print(const fp::list_entry& e) {
    if (json_) {
        const nlohmann::json j{{"name", e.name},
                               {"kind", kind_name(e.kind)},
                               {"size", e.size},
                               {"mtime_ns", e.mtime_ns}};
        out_ << (first_ ? "[\n  " : ",\n  ")
             << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        first_ = false;
        return;
    }
    const char type = e.kind == fp::file_kind::directory ? 'd'
                      : e.kind == fp::file_kind::symlink ? 'l'
                      : e.kind == fp::file_kind::regular ? '-'
                                                         : '?';
    out_ << fmt::format("{} {:>14} {} {}{}\n", type, e.size, iso_time(e.mtime_ns),
                        fp::escape_for_terminal(e.name),
                        e.kind == fp::file_kind::directory ? "/" : "");
}

} // namespace ferry::client
