// A temporary directory removed with everything in it when the test ends, and file helpers.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace ferry::test {

class temp_dir {
public:
    temp_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-test-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr)
            throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const noexcept { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

/// Deterministic pseudo-random content (seeded by size and salt), so failures reproduce.
inline std::string make_content(std::size_t size, unsigned salt = 0) {
    std::mt19937_64 rng{size * 7919 + salt};
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; i += 8) {
        const auto v = rng();
        for (std::size_t k = 0; k < 8 && i + k < size; ++k)
            s[i + k] = static_cast<char>((v >> (8 * k)) & 0xFF);
    }
    return s;
}

inline void write_file(const std::filesystem::path& p, const std::string& content) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out{p, std::ios::binary | std::ios::trunc};
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out)
        throw std::runtime_error("cannot write " + p.string());
}

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream in{p, std::ios::binary};
    if (!in)
        throw std::runtime_error("cannot read " + p.string());
    // One read of the size, not a byte at a time: 64 MiB took seconds that way under ASan.
    std::string s(std::filesystem::file_size(p), '\0');
    in.read(s.data(), static_cast<std::streamsize>(s.size()));
    s.resize(static_cast<std::size_t>(in.gcount()));
    return s;
}

} // namespace ferry::test
