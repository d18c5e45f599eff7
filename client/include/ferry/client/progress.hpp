// progress: what a download shows while it runs: on a terminal a bar per file (bytes of the
// total, percent, rate, ETA) a few times a second, each line fitted to the terminal's width as it
// is now; off a terminal nothing until the summary line.
#pragma once

#include "ferry/transport/asio.hpp"

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::client {

class progress {
public:
    /// `bars`: draw bars (stderr is a terminal and not --quiet).
    explicit progress(bool bars) : bars_(bars) {}

    std::size_t add(std::string name, std::uint64_t total, std::uint64_t already);
    void set_total(std::size_t id, std::uint64_t total, std::uint64_t already);
    void advance(std::size_t id, std::uint64_t bytes);
    /// The file's bar goes, whatever the outcome (its summary or error line comes later).
    void done(std::size_t id);
    /// A message line that must not be overwritten by the bars; printed escaped
    /// (protocol::escape_for_terminal), since it may quote a server's text or a path.
    void note(const std::string& line);

private:
    struct file {
        std::string name;
        std::uint64_t total = 0;
        std::uint64_t done = 0;
        std::uint64_t start_done = 0;
        transport::clock::time_point start = transport::clock::now();
        bool finished = false;
    };
    void draw(bool force);
    void erase();

    bool bars_;
    std::vector<file> files_;
    std::size_t drawn_lines_ = 0;
    transport::clock::time_point last_draw_{};
};

/// "12.3 MiB"
std::string human_bytes(double bytes);

/// One progress line, at most `width` columns (counted as code points; `name` is already
/// escaped): "name [####....]  42% 1.2 MiB/3.0 MiB 512.0 KiB/s 00:04". The percent and the
/// bar never exceed 100 even when done > total; a long name is cut with "…"; on a narrow
/// terminal the bar, then the ETA, the rate and the sizes are dropped.
std::string render_line(std::size_t width, std::string_view name, std::uint64_t done,
                        std::uint64_t total, double rate);

/// Columns of the terminal on `fd` (TIOCGWINSZ), or 80 when it does not say.
std::size_t terminal_width(int fd);

} // namespace ferry::client
