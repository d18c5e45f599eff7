#include "ferry/client/input_list.hpp"

#include <fmt/format.h>

namespace ferry::client {

namespace {

constexpr std::string_view blanks = " \t";

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    for (std::size_t at = line.find_first_not_of(blanks); at != std::string_view::npos;
         at = line.find_first_not_of(blanks, at)) {
        const auto end = std::min(line.find_first_of(blanks, at), line.size());
        out.push_back(line.substr(at, end - at));
        at = end;
    }
    return out;
}

/// Why `name` cannot be an output's file name, or empty.
std::string bad_name(std::string_view name) {
    if (name.empty() || name == "." || name == "..")
        return "out= needs a file name";
    if (name == "-")
        return "out=- would be standard output; name a file (-o - takes one URL)";
    if (name.find('/') != std::string_view::npos)
        return "out= takes a file name, without '/' (-o names the directory)";
    for (const char c : name)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return "out= holds a control character";
    return {};
}

} // namespace

std::vector<input_entry> parse_input_list(std::string_view text, std::string& error) {
    std::vector<input_entry> entries;
    unsigned number = 0;
    while (!text.empty()) {
        const auto end = std::min(text.find('\n'), text.size());
        auto line = text.substr(0, end);
        text.remove_prefix(std::min(end + 1, text.size()));
        ++number;
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        const auto fields = words(line);
        if (fields.empty() || fields.front().front() == '#')
            continue;
        if (blanks.find(line.front()) == std::string_view::npos) {
            entries.push_back({{fields.begin(), fields.end()}, {}, number});
            continue;
        }
        // An option of the download above.
        const auto fail = [&](std::string what) {
            error = fmt::format("{}: {}", number, what);
            return std::vector<input_entry>{};
        };
        if (entries.empty())
            return fail("an option line (it starts with a blank) before any URL");
        for (const auto field : fields) {
            const auto eq = field.find('=');
            const auto key = field.substr(0, eq);
            if (eq == std::string_view::npos || key != "out")
                return fail("only out=NAME is understood on an option line, not '" +
                            std::string(key) + "'");
            if (!entries.back().out.empty())
                return fail("a second out= for the URL of line " +
                            std::to_string(entries.back().line));
            const auto name = field.substr(eq + 1);
            if (auto why = bad_name(name); !why.empty())
                return fail(why);
            entries.back().out = name;
        }
    }
    return entries;
}

} // namespace ferry::client
