#include "ferry/client/download_state.hpp"

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>
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

std::optional<download_state> download_state::load(const std::filesystem::path& path,
                                                   std::string& warning) {
    std::ifstream in{path};
    if (!in)
        return std::nullopt;
    try {
        const auto j = nlohmann::json::parse(in);
        if (j.at("format").get<int>() != 1)
            throw std::runtime_error("unknown format");
        download_state s;
        s.url = j.at("url").get<std::string>();
        if (!from_hex(j.at("identity").get<std::string>(), s.identity))
            throw std::runtime_error("bad identity");
        s.size = j.at("size").get<std::uint64_t>();
        for (const auto& r : j.at("done")) {
            const byte_range range{r.at(0).get<std::uint64_t>(), r.at(1).get<std::uint64_t>()};
            if (range.begin > range.end || range.end > s.size)
                throw std::runtime_error("range outside the file");
            s.done.insert(range);
        }
        return s;
    } catch (const std::exception& e) {
        warning = "ignoring the unreadable resume state " + path.string() + " (" + e.what() +
                  "); starting over";
        return std::nullopt;
    }
}

void download_state::save(const std::filesystem::path& path) const {
    nlohmann::json j;
    j["format"] = 1;
    j["url"] = url;
    j["identity"] = to_hex(identity);
    j["size"] = size;
    auto done_json = nlohmann::json::array();
    for (const auto& r : done.ranges())
        done_json.push_back({r.begin, r.end});
    j["done"] = done_json;
    const std::string text = j.dump() + "\n";
    const auto tmp = path.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "writing " + tmp);
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!ok)
        throw std::system_error(err, std::generic_category(), "writing " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        throw std::system_error(errno, std::generic_category(), "writing " + path.string());
    // The rename itself must survive a crash too.
    const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path{"."};
    if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

} // namespace ferry::client
