#include "http_listing.hpp"

#include "ferry/protocol/http.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>
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
        l.entries.push_back(std::move(*e));
    }
    std::sort(l.entries.begin(), l.entries.end(), [](const auto& a, const auto& b) {
        const bool a_dir = a.kind == fp::file_kind::directory;
        const bool b_dir = b.kind == fp::file_kind::directory;
        return a_dir != b_dir ? a_dir : a.name < b.name;
    });
    return l;
}

std::string render_listing_json(const listing& l) {
    auto array = nlohmann::ordered_json::array();
    for (const auto& e : l.entries) {
        nlohmann::ordered_json j{{"name", e.name},
                                 {"type", e.kind == fp::file_kind::directory ? "directory"
                                          : e.kind == fp::file_kind::regular ? "file"
                                                                             : "other"},
                                 {"mtime", http::format_http_date(seconds_of(e.mtime_ns))}};
        if (e.kind == fp::file_kind::regular)
            j["size"] = e.size;
        array.push_back(std::move(j));
    }
    return array.dump();
}

std::string render_listing_html(const listing& l, std::string_view path) {
    std::string out;
    out.reserve(1024 + l.entries.size() * 200);
    const std::string title = "/" + std::string{path} + (path.empty() ? "" : "/");
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
    if (!path.empty())
        out += "<tr><td><a href=\"../\">../</a></td><td class=s></td><td></td></tr>\n";
    for (const auto& e : l.entries) {
        const bool dir = e.kind == fp::file_kind::directory;
        out += "<tr><td><a href=\"";
        // The href is relative ("./name"), so a name with a ':' is never read as a scheme.
        append_html_escaped(out, "./" + http::encode_path(e.name) + (dir ? "/" : ""));
        out += "\">";
        append_html_escaped(out, e.name);
        out += dir ? "/</a></td><td class=s></td>" : "</a></td>";
        if (!dir)
            out +=
                fmt::format("<td class=s title=\"{} bytes\">{}</td>", e.size, human_size(e.size));
        out += "<td>";
        out += http::format_http_date(seconds_of(e.mtime_ns));
        out += "</td></tr>\n";
    }
    out += "</tbody>\n</table>\n";
    if (l.truncated)
        out += fmt::format("<p>Only the first {} entries are shown.</p>\n", max_listed);
    out += "</body></html>\n";
    return out;
}

} // namespace ferry::server
