#include "http_listing.hpp"

#include "ferry/protocol/http.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>
#include <iterator>
#include <nlohmann/json.hpp>

namespace ferry::server {

namespace fp = ferry::protocol;
namespace http = ferry::protocol::http;

namespace {

std::int64_t seconds_of(std::int64_t ns) noexcept {
    return ns >= 0 ? ns / 1'000'000'000 : (ns - 999'999'999) / 1'000'000'000;
}

/// Text made safe inside HTML element content and quoted attribute values.
void append_html_escaped(std::string& out, std::string_view text) {
    for (const char ch : text) {
        switch (ch) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            out += ch;
        }
    }
}

std::string human_size(std::uint64_t bytes) {
    static constexpr std::array<std::string_view, 6> units{"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024)
        return fmt::format("{} B", bytes);
    auto value = static_cast<double>(bytes);
    std::size_t unit = 0;
    while (value >= 1024 && unit + 1 < units.size()) {
        value /= 1024;
        ++unit;
    }
    return fmt::format("{:.1f} {}", value, units[unit]);
}

} // namespace

listing read_listing(const dir_ptr& dir, const path_resolver& resolver) {
    listing l;
    while (auto e = next_listed(dir.get(), resolver, l.error)) {
        if (l.entries.size() == max_listed) {
            l.truncated = true;
            break;
        }
        if (e->name.size() > fp::max_name_size) // NAME_MAX: cannot happen on Linux
            continue;
        l.entries.push_back(listed{e->size, e->mtime_ns, static_cast<std::uint32_t>(l.names.size()),
                                   static_cast<std::uint8_t>(e->name.size()), e->kind});
        l.names += e->name;
    }
    std::sort(l.entries.begin(), l.entries.end(), [&l](const listed& a, const listed& b) {
        const bool a_dir = a.kind == fp::file_kind::directory;
        const bool b_dir = b.kind == fp::file_kind::directory;
        return a_dir != b_dir ? a_dir : l.name_of(a) < l.name_of(b);
    });
    // Held while the body is sent, perhaps to a slow reader: not the growth's spare room.
    l.entries.shrink_to_fit();
    l.names.shrink_to_fit();
    return l;
}

listing_renderer::listing_renderer(const listing& l, listing_format format, std::string_view path)
    : l_(l), format_(format), path_(path) {}

bool listing_renderer::next(std::string& out, std::size_t piece) {
    const auto before = out.size();
    if (!started_) {
        start(out);
        started_ = true;
    }
    while (at_ < l_.entries.size() && out.size() - before < piece)
        row(out, l_.entries[at_++]);
    if (at_ < l_.entries.size())
        return true;
    end(out);
    return false;
}

void listing_renderer::start(std::string& out) const {
    if (format_ == listing_format::json) {
        out += '[';
        return;
    }
    // The path of a directory's URL keeps its slash ("sub/"); the root's is "".
    const std::string title = "/" + path_ + (path_.empty() || path_.ends_with('/') ? "" : "/");
    out += "<!DOCTYPE html>\n<html><head><meta charset=utf-8>"
           "<meta name=viewport content=\"width=device-width\"><title>Index of ";
    append_html_escaped(out, title);
    out += "</title><style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
           "table{border-collapse:collapse}td,th{padding:.2em 1em;text-align:left}"
           "td.s,th.s{text-align:right}tr:nth-child(even){background:#f4f4f4}"
           "a{text-decoration:none}a:hover{text-decoration:underline}</style></head><body>\n"
           "<h1>Index of ";
    append_html_escaped(out, title);
    out += "</h1>\n<table>\n<thead><tr><th>Name</th><th class=s>Size</th><th>Modified</th></tr>"
           "</thead>\n<tbody>\n";
    if (!path_.empty())
        out += "<tr><td><a href=\"../\">../</a></td><td class=s></td><td></td></tr>\n";
}

void listing_renderer::row(std::string& out, const listed& e) const {
    const auto name = l_.name_of(e);
    const auto modified = http::format_http_date(seconds_of(e.mtime_ns));
    if (format_ == listing_format::json) {
        // Byte for byte what nlohmann's dump() of the same array of objects gives.
        if (&e != l_.entries.data())
            out += ',';
        out += "{\"name\":";
        out += nlohmann::json(name).dump();
        out += e.kind == fp::file_kind::directory ? ",\"type\":\"directory\""
               : e.kind == fp::file_kind::regular ? ",\"type\":\"file\""
                                                  : ",\"type\":\"other\"";
        out += ",\"mtime\":\"";
        out += modified;
        out += '"';
        if (e.kind == fp::file_kind::regular)
            fmt::format_to(std::back_inserter(out), ",\"size\":{}", e.size);
        out += '}';
        return;
    }
    const bool dir = e.kind == fp::file_kind::directory;
    out += "<tr><td><a href=\"";
    // The href is relative ("./name"), so a name with a ':' is never read as a scheme.
    append_html_escaped(out, "./" + http::encode_path(name) + (dir ? "/" : ""));
    out += "\">";
    append_html_escaped(out, name);
    out += dir ? "/</a></td><td class=s></td>" : "</a></td>";
    if (!dir)
        fmt::format_to(std::back_inserter(out), "<td class=s title=\"{} bytes\">{}</td>", e.size,
                       human_size(e.size));
    out += "<td>";
    out += modified;
    out += "</td></tr>\n";
}

void listing_renderer::end(std::string& out) const {
    if (format_ == listing_format::json) {
        out += ']';
        return;
    }
    out += "</tbody>\n</table>\n";
    if (l_.truncated)
        fmt::format_to(std::back_inserter(out), "<p>Only the first {} entries are shown.</p>\n",
                       max_listed);
    out += "</body></html>\n";
}

} // namespace ferry::server
