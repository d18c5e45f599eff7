// Big-endian field reader and writer over byte spans; internal to ferry_protocol.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace ferry::protocol::detail {

/// Reads fixed-width big-endian fields; every read checks the remaining length first.
class reader {
public:
    explicit reader(std::span<const std::byte> in) noexcept : in_(in) {}

    std::size_t remaining() const noexcept { return in_.size() - pos_; }

    bool u8(std::uint8_t& v) noexcept { return uint(v); }
    bool u16(std::uint16_t& v) noexcept { return uint(v); }
    bool u32(std::uint32_t& v) noexcept { return uint(v); }
    bool u64(std::uint64_t& v) noexcept { return uint(v); }
    bool i64(std::int64_t& v) noexcept {
        std::uint64_t u = 0;
        if (!uint(u))
            return false;
        v = static_cast<std::int64_t>(u); // two's complement, as on the wire
        return true;
    }
    bool bytes(std::span<std::byte> out) noexcept {
        if (remaining() < out.size())
            return false;
        std::memcpy(out.data(), in_.data() + pos_, out.size());
        pos_ += out.size();
        return true;
    }
    /// A view of the next n bytes, or false if fewer remain.
    bool view(std::size_t n, std::string_view& out) noexcept {
        if (remaining() < n)
            return false;
        out = {reinterpret_cast<const char*>(in_.data() + pos_), n};
        pos_ += n;
        return true;
    }
    std::span<const std::byte> rest() const noexcept { return in_.subspan(pos_); }

private:
    template <class U>
    bool uint(U& v) noexcept {
        if (remaining() < sizeof(U))
            return false;
        U r = 0;
        for (std::size_t i = 0; i < sizeof(U); ++i)
            r = static_cast<U>((std::uint64_t{r} << 8U) |
                               std::to_integer<std::uint64_t>(in_[pos_ + i]));
        v = r;
        pos_ += sizeof(U);
        return true;
    }

    std::span<const std::byte> in_;
    std::size_t pos_ = 0;
};

/// Writes fixed-width big-endian fields. The caller sized `out` with encoded_size().
class writer {
public:
    explicit writer(std::span<std::byte> out) noexcept : out_(out) {}

    void u8(std::uint8_t v) noexcept { uint(v); }
    void u16(std::uint16_t v) noexcept { uint(v); }
    void u32(std::uint32_t v) noexcept { uint(v); }
    void u64(std::uint64_t v) noexcept { uint(v); }
    void i64(std::int64_t v) noexcept { uint(static_cast<std::uint64_t>(v)); }
    void bytes(std::span<const std::byte> in) noexcept {
        std::memcpy(out_.data() + pos_, in.data(), in.size());
        pos_ += in.size();
    }
    void text(std::string_view s) noexcept { bytes(std::as_bytes(std::span{s.data(), s.size()})); }
    std::size_t written() const noexcept { return pos_; }

private:
    template <class U>
    void uint(U v) noexcept {
        for (std::size_t i = 0; i < sizeof(U); ++i)
            out_[pos_ + i] =
                static_cast<std::byte>((std::uint64_t{v} >> (8U * (sizeof(U) - 1 - i))) & 0xFFU);
        pos_ += sizeof(U);
    }

    std::span<std::byte> out_;
    std::size_t pos_ = 0;
};

} // namespace ferry::protocol::detail
