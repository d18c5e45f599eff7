// progress: what a download shows while it runs: on a terminal a bar per file (bytes, percent,
// rate, ETA) a few times a second; off a terminal nothing until the summary line.
#pragma once

#include "ferry/transport/asio.hpp"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace ferry::client {

class progress {
public:
    /// `bars`: draw bars (stderr is a terminal and not --quiet).
    explicit progress(bool bars) : bars_(bars) {}

    std::size_t add(std::string name, std::uint64_t total, std::uint64_t already);
    void set_total(std::size_t id, std::uint64_t total, std::uint64_t already);
    void advance(std::size_t id, std::uint64_t bytes);
    void done(std::size_t id);
    /// A message line that must not be overwritten by the bars.
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

} // namespace ferry::client
