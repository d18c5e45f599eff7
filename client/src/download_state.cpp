#include "ferry/client/download_state.hpp"

#include <cerrno>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace ferry::client {

std::string to_hex(std::span<const std::byte> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(bytes.size() * 2);
    for (auto b : bytes) {
        s += digits[std::to_integer<unsigned>(b) >> 4U];
        s += digits[std::to_integer<unsigned>(b) & 0xFU];
    }
    return s;
}

bool from_hex(std::string_view text, std::span<std::byte> out) {
    if (text.size() != out.size() * 2)
        return false;
    auto nibble = [](char c) {
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
               : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                      : -1;
    };
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int hi = nibble(text[2 * i]);
        const int lo = nibble(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = static_cast<std::byte>(hi * 16 + lo);
    }
    return true;
}

std::optional<download_state> download_state::load(const output_dir& dir, const std::string& name,
                                                   std::string& warning, local_error& error) {
    local_error failed;
    if (!dir.status(name, failed) && !failed)
        return std::nullopt; // no partial download
    bool created = false;
    const auto fd =
        failed ? unique_fd{} : dir.open_ours(name, O_RDONLY, false, created, failed);
    std::string text;
    if (fd) {
        char buffer[4096];
        for (ssize_t n; (n = ::read(fd.get(), buffer, sizeof buffer)) != 0;) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                failed = local("cannot read", dir.shown(name), errno);
                break;
            }
            text.append(buffer, static_cast<std::size_t>(n));
        }
    }
    if (failed.code == exit_code::exists) {
        error = failed;
        return std::nullopt;
    }
    try {
        if (failed)
            throw std::runtime_error(failed.message);
        const auto j = nlohmann::json::parse(text);
        // Format 2 is format 1 with the sources' SHA-256, so a ferry that knows only format 1
        // does not resume a .part it could not check.
        const int format = j.at("format").get<int>();
        if (format != 1 && format != 2)
            throw std::runtime_error("unknown format");
        download_state s;
        s.url = j.at("url").get<std::string>();
        if (!from_hex(j.at("identity").get<std::string>(), s.identity))
            throw std::runtime_error("bad identity");
        s.size = j.at("size").get<std::uint64_t>();
        if (format == 2 && !from_hex(j.at("sha256").get<std::string>(), s.sha256.emplace()))
            throw std::runtime_error("bad sha256");
        for (const auto& r : j.at("done")) {
            const byte_range range{r.at(0).get<std::uint64_t>(), r.at(1).get<std::uint64_t>()};
            if (range.begin > range.end || range.end > s.size)
                throw std::runtime_error("range outside the file");
            s.done.insert(range);
        }
        return s;
    } catch (const std::exception& e) {
        warning = "ignoring the unreadable resume state " + dir.shown(name).string() + " (" +
                  e.what() + "); starting over";
        return std::nullopt;
    }
}

local_error download_state::save(const output_dir& dir, const std::string& name) const {
    nlohmann::json j;
    j["format"] = sha256 ? 2 : 1;
    j["url"] = url;
    j["identity"] = to_hex(identity);
    j["size"] = size;
    if (sha256)
        j["sha256"] = to_hex(*sha256);
    auto done_json = nlohmann::json::array();
    for (const auto& r : done.ranges())
        done_json.push_back({r.begin, r.end});
    j["done"] = done_json;
    return dir.write_atomically(name, j.dump() + "\n");
}

} // namespace ferry::client
