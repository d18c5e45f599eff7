#include "ferry/client/progress.hpp"

#include <fmt/format.h>

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
    std::fprintf(stderr, "%s\n", line.c_str());
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
    for (const auto& f : files_) {
        if (f.finished)
            continue;
        const double seconds = std::chrono::duration<double>(now - f.start).count();
        const double rate = seconds > 0 ? static_cast<double>(f.done - f.start_done) / seconds : 0;
        const double fraction =
            f.total ? static_cast<double>(f.done) / static_cast<double>(f.total) : 0;
        const int width = 24;
        const int filled = static_cast<int>(fraction * width);
        std::string bar(static_cast<std::size_t>(filled), '#');
        bar.resize(width, '.');
        std::string eta = "--:--";
        if (rate > 0 && f.total >= f.done) {
            const auto left = static_cast<long long>(static_cast<double>(f.total - f.done) / rate);
            eta = fmt::format("{:02}:{:02}", left / 60, left % 60);
        }
        std::fprintf(stderr, "%-24.24s [%s] %5.1f%% %10s %10s/s ETA %s\n", f.name.c_str(),
                     bar.c_str(), fraction * 100, human_bytes(static_cast<double>(f.done)).c_str(),
                     human_bytes(rate).c_str(), eta.c_str());
        ++drawn_lines_;
    }
    std::fflush(stderr);
}

} // namespace ferry::client
