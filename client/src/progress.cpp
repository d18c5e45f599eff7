#include "ferry/client/progress.hpp"

#include "ferry/protocol/text.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace ferry::client {

std::string human_bytes(double bytes) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        ++u;
    }
    return u == 0 ? fmt::format("{:.0f} {}", bytes, units[u])
                  : fmt::format("{:.1f} {}", bytes, units[u]);
}

namespace {

/// Code points in UTF-8 `s` (continuation bytes not counted).
std::size_t columns(std::string_view s) {
    return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U;
    }));
}

/// The first `n` code points of `s`.
std::string_view first_columns(std::string_view s, std::size_t n) {
    std::size_t i = 0;
    for (std::size_t seen = 0; i < s.size(); ++i)
        if ((static_cast<unsigned char>(s[i]) & 0xC0U) != 0x80U && seen++ == n)
            break;
    return s.substr(0, i);
}

/// `name` in exactly `width` columns: cut with an ellipsis, or padded.
std::string fit_name(std::string_view name, std::size_t width) {
    if (width == 0)
        return {};
    const auto n = columns(name);
    if (n <= width)
        return std::string{name} + std::string(width - n, ' ');
    return std::string{first_columns(name, width - 1)} + "\u2026";
}

} // namespace

std::string render_line(std::size_t width, std::string_view name, std::uint64_t done,
                        std::uint64_t total, double rate) {
    const double fraction =
        total ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 0.0;
    const std::string percent = fmt::format("{:3.0f}%", std::floor(fraction * 100));
    const std::string sizes = fmt::format("{}/{}", human_bytes(static_cast<double>(done)),
                                          human_bytes(static_cast<double>(total)));
    const std::string speed = human_bytes(rate) + "/s";
    std::string eta = "--:--";
    if (rate > 0 && total > done) {
        const auto left = static_cast<long long>(static_cast<double>(total - done) / rate);
        eta = left >= 100 * 3600 ? "99:59:59" : fmt::format("{:02}:{:02}", left / 60, left % 60);
    }
    // The fields after the name, fewest first as the width shrinks.
    const std::vector<std::string> tails[] = {
        {percent, sizes, speed, eta}, {percent, sizes, speed}, {percent, sizes}, {percent}, {}};
    for (const auto& fields : tails) {
        std::string tail;
        for (const auto& f : fields)
            tail += " " + f;
        const std::size_t min_name = std::min<std::size_t>(columns(name), 8);
        if (width < min_name + columns(tail))
            continue;
        const std::size_t room = width - columns(tail);
        // The name gets up to 40 columns (or a third of a wide line), the bar what is left
        // (at least 10 columns, or none).
        std::size_t name_width =
            std::min({columns(name), room, std::max<std::size_t>(40, width / 3)});
        std::string bar;
        if (room >= name_width + 13) {
            const std::size_t bar_width = std::min<std::size_t>(room - name_width - 3, 50);
            const auto filled = static_cast<std::size_t>(fraction * static_cast<double>(bar_width));
            bar = " [" + std::string(filled, '#') + std::string(bar_width - filled, '.') + "]";
        } else {
            name_width = std::min(columns(name), room);
        }
        return fit_name(name, name_width) + bar + tail;
    }
    return fit_name(name, width);
}

std::size_t terminal_width(int fd) {
    winsize ws{};
    if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

std::size_t progress::add(std::string name, std::uint64_t total, std::uint64_t already) {
    files_.push_back({std::move(name), total, already, already});
    return files_.size() - 1;
}

void progress::set_total(std::size_t id, std::uint64_t total, std::uint64_t already) {
    auto& f = files_.at(id);
    f.total = total;
    f.done = f.start_done = already;
    f.start = transport::clock::now();
    draw(false);
}

void progress::advance(std::size_t id, std::uint64_t bytes) {
    files_.at(id).done += bytes;
    draw(false);
}

void progress::done(std::size_t id) {
    files_.at(id).finished = true;
    draw(true);
}

void progress::note(const std::string& line) {
    erase();
    std::fprintf(stderr, "%s\n", protocol::escape_for_terminal(line).c_str());
    draw(true);
}

void progress::erase() {
    if (!bars_ || drawn_lines_ == 0)
        return;
    // Up to the first bar line and clear to the end of the screen.
    std::fprintf(stderr, "\x1b[%zuA\r\x1b[J", drawn_lines_);
    drawn_lines_ = 0;
}

void progress::draw(bool force) {
    if (!bars_)
        return;
    const auto now = transport::clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(200))
        return;
    last_draw_ = now;
    erase();
    // Read at every redraw (one ioctl): a resized terminal is fitted at the next one. One column
    // is left free, so that no terminal wraps a full line.
    const auto width = std::max<std::size_t>(terminal_width(STDERR_FILENO), 2) - 1;
    for (const auto& f : files_) {
        if (f.finished)
            continue;
        const double seconds = std::chrono::duration<double>(now - f.start).count();
        const double rate = seconds > 0 && f.done >= f.start_done
                                ? static_cast<double>(f.done - f.start_done) / seconds
                                : 0;
        const auto line =
            render_line(width, protocol::escape_for_terminal(f.name), f.done, f.total, rate);
        std::fprintf(stderr, "%s\n", line.c_str());
        ++drawn_lines_;
    }
    std::fflush(stderr);
}

} // namespace ferry::client
