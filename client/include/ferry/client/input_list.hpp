// input_list: the file `ferry get -i FILE` reads, aria2's input-file format (a subset).
//
// One download per line: its URL, then, separated by tabs or spaces, the same file on other
// servers (--mirror). A line that starts with a tab or a space belongs to the download above
// it and holds `out=NAME`, the output's file name. Blank lines and lines starting with '#' are
// skipped. Pure: no I/O.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ferry::client {

struct input_entry {
    std::vector<std::string> urls; ///< the URL, then its mirrors, as written
    std::string out;               ///< `out=`: a plain file name, or empty
    unsigned line = 0;             ///< where the URL is, from 1
};

/// Parses `text`. On a bad line, returns nothing and sets `error` to "LINE: what is wrong".
std::vector<input_entry> parse_input_list(std::string_view text, std::string& error);

} // namespace ferry::client
