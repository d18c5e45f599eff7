#include "ferry/protocol/messages.hpp"

#include "ferry/protocol/errc.hpp"
#include "wire.hpp"

namespace ferry::protocol {
namespace {

using detail::reader;
using detail::writer;

constexpr std::uint8_t flag_bit0 = 0x01;
constexpr std::uint16_t critical_extension = 0x8000;

// ---- field rules shared by encode and decode --------------------------------------------

std::error_code check_path(std::string_view path) noexcept {
    if (path.size() > max_path_size)
        return protocol_errc::path_too_long;
    if (path.find('\0') != std::string_view::npos || !is_valid_utf8(path))
        return protocol_errc::bad_path;
    return {};
}

std::error_code check_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > max_name_size || name == "." || name == ".." ||
        name.find_first_of(std::string_view{"/\0", 2}) != std::string_view::npos ||
        !is_valid_utf8(name))
        return protocol_errc::bad_name;
    return {};
}

std::error_code check_text(std::string_view text) noexcept {
    if (text.size() > max_text_size || !is_valid_utf8(text))
        return protocol_errc::bad_text;
    return {};
}

/// offset and offset+length must be valid file offsets (length == to_end means "to the end").
std::error_code check_request_range(std::uint64_t offset, std::uint64_t length) noexcept {
    if (offset > max_offset || (length != to_end && length > max_offset - offset))
        return protocol_errc::range_overflow;
    return {};
}

std::error_code check_kind(file_kind k) noexcept {
    switch (k) {
    case file_kind::regular:
    case file_kind::directory:
    case file_kind::symlink:
    case file_kind::other:
        return {};
    }
    return protocol_errc::bad_kind;
}

/// A trailer or LIST_END reports how a transfer ended: ok, changed or internal_error.
std::error_code check_end_status(status s) noexcept {
    if (s == status::ok || s == status::changed || s == status::internal_error)
        return {};
    return protocol_errc::bad_status;
}

std::error_code check_header(const get_header& m) noexcept {
    if (m.size > max_offset || m.offset > m.size || m.length > m.size - m.offset)
        return protocol_errc::bad_range;
    return {};
}

/// The extension area: TLVs (tag u16, length u16, value) up to the end of the payload.
/// Version 1 defines none: unknown ones are skipped unless their critical bit is set.
std::error_code check_extensions(reader& in) noexcept {
    while (in.remaining() > 0) {
        std::uint16_t tag = 0;
        std::uint16_t length = 0;
        std::string_view value;
        if (!in.u16(tag) || !in.u16(length) || !in.view(length, value))
            return protocol_errc::bad_extension;
        if ((tag & critical_extension) != 0)
            return protocol_errc::unknown_critical_extension;
    }
    return {};
}

std::error_code read_string(reader& in, std::size_t length, std::string& out) {
    std::string_view v;
    if (!in.view(length, v))
        return protocol_errc::truncated;
    out.assign(v);
    return {};
}

// ---- encoding skeleton -------------------------------------------------------------------

/// Validates, checks the buffer and writes header + payload via `body(writer&)`.
template <class Message, class Check, class Body>
std::error_code encode_frame(const Message& m, std::span<std::byte> out, Check check,
                             Body body) noexcept {
    if (auto ec = check(); ec)
        return ec;
    const std::size_t size = encoded_size(m);
    if (size > max_frame_size)
        return protocol_errc::frame_too_large;
    if (out.size() < size)
        return std::make_error_code(std::errc::no_buffer_space);
    encode_frame_header(Message::type, size - frame_header_size, out.first<frame_header_size>());
    writer w{out.subspan(frame_header_size, size - frame_header_size)};
    body(w);
    return {};
}

constexpr std::size_t get_request_fixed = 1 + 8 + 8 + 32 + 2;
constexpr std::size_t stat_request_fixed = 1 + 2;
constexpr std::size_t list_request_fixed = 1 + 2;
constexpr std::size_t error_fixed = 2 + 1 + 4 + 2;
constexpr std::size_t get_header_fixed = 32 + 8 + 8 + 8 + 8;
constexpr std::size_t get_trailer_fixed = 2;
constexpr std::size_t stat_reply_fixed = 1 + 1 + 32 + 8 + 8;
constexpr std::size_t list_entries_fixed = 2;
constexpr std::size_t list_entry_fixed = 1 + 8 + 8 + 1;
constexpr std::size_t list_end_fixed = 2 + 8;

} // namespace

// ---- sizes -----------------------------------------------------------------------------------

std::size_t encoded_size(const list_entry& e) noexcept {
    return list_entry_fixed + e.name.size();
}

std::size_t encoded_size(const get_request& m) noexcept {
    return frame_header_size + get_request_fixed + m.path.size();
}
std::size_t encoded_size(const stat_request& m) noexcept {
    return frame_header_size + stat_request_fixed + m.path.size();
}
std::size_t encoded_size(const list_request& m) noexcept {
    return frame_header_size + list_request_fixed + m.path.size();
}
std::size_t encoded_size(const error_reply& m) noexcept {
    return frame_header_size + error_fixed + m.message.size();
}
std::size_t encoded_size(const get_header&) noexcept {
    return frame_header_size + get_header_fixed;
}
std::size_t encoded_size(const get_trailer&) noexcept {
    return frame_header_size + get_trailer_fixed;
}
std::size_t encoded_size(const stat_reply& m) noexcept {
    return frame_header_size + stat_reply_fixed + (m.sha256 ? 32 : 0);
}
std::size_t encoded_size(const list_entries& m) noexcept {
    std::size_t size = frame_header_size + list_entries_fixed;
    for (const auto& e : m.entries)
        size += encoded_size(e);
    return size;
}
std::size_t encoded_size(const list_end&) noexcept {
    return frame_header_size + list_end_fixed;
}

// ---- GET ------------------------------------------------------------------------------------

std::error_code encode(const get_request& m, std::span<std::byte> out) noexcept {
    return encode_frame(
        m, out,
        [&] {
            if (auto ec = check_path(m.path); ec)
                return ec;
            return check_request_range(m.offset, m.length);
        },
        [&](writer& w) {
            w.u8(m.if_identity ? flag_bit0 : 0);
            w.u64(m.offset);
            w.u64(m.length);
            w.bytes(m.if_identity ? *m.if_identity : file_identity{});
            w.u16(static_cast<std::uint16_t>(m.path.size()));
            w.text(m.path);
        });
}

std::error_code decode(std::span<const std::byte> payload, get_request& out) {
    reader in{payload};
    std::uint8_t flags = 0;
    file_identity identity{};
    std::uint16_t path_size = 0;
    if (!in.u8(flags) || !in.u64(out.offset) || !in.u64(out.length) || !in.bytes(identity) ||
        !in.u16(path_size))
        return protocol_errc::truncated;
    if ((flags & ~flag_bit0) != 0)
        return protocol_errc::reserved_bits_set;
    if (path_size > max_path_size)
        return protocol_errc::path_too_long;
    if (auto ec = read_string(in, path_size, out.path); ec)
        return ec;
    if (auto ec = check_path(out.path); ec)
        return ec;
    if (auto ec = check_request_range(out.offset, out.length); ec)
        return ec;
    out.if_identity.reset();
    if ((flags & flag_bit0) != 0)
        out.if_identity = identity;
    return check_extensions(in);
}

std::error_code encode(const get_header& m, std::span<std::byte> out) noexcept {
    return encode_frame(
        m, out, [&] { return check_header(m); },
        [&](writer& w) {
            w.bytes(m.identity);
            w.u64(m.size);
            w.i64(m.mtime_ns);
            w.u64(m.offset);
            w.u64(m.length);
        });
}

std::error_code decode(std::span<const std::byte> payload, get_header& out) {
    reader in{payload};
    if (!in.bytes(out.identity) || !in.u64(out.size) || !in.i64(out.mtime_ns) ||
        !in.u64(out.offset) || !in.u64(out.length))
        return protocol_errc::truncated;
    if (auto ec = check_header(out); ec)
        return ec;
    return check_extensions(in);
}

std::error_code encode(const get_trailer& m, std::span<std::byte> out) noexcept {
    return encode_frame(
        m, out, [&] { return check_end_status(m.code); },
        [&](writer& w) { w.u16(static_cast<std::uint16_t>(m.code)); });
}

std::error_code decode(std::span<const std::byte> payload, get_trailer& out) {
    reader in{payload};
    std::uint16_t code = 0;
    if (!in.u16(code))
        return protocol_errc::truncated;
    out.code = static_cast<status>(code);
    if (auto ec = check_end_status(out.code); ec)
        return ec;
    return check_extensions(in);
}

// ---- STAT -----------------------------------------------------------------------------------

std::error_code encode(const stat_request& m, std::span<std::byte> out) noexcept {
    return encode_frame(
        m, out, [&] { return check_path(m.path); },
        [&](writer& w) {
            w.u8(m.want_sha256 ? flag_bit0 : 0);
            w.u16(static_cast<std::uint16_t>(m.path.size()));
            w.text(m.path);
        });
}

std::error_code decode(std::span<const std::byte> payload, stat_request& out) {
    reader in{payload};
    std::uint8_t flags = 0;
    std::uint16_t path_size = 0;
    if (!in.u8(flags) || !in.u16(path_size))
        return protocol_errc::truncated;
    if ((flags & ~flag_bit0) != 0)
        return protocol_errc::reserved_bits_set;
    if (path_size > max_path_size)
        return protocol_errc::path_too_long;
    if (auto ec = read_string(in, path_size, out.path); ec)
        return ec;
    if (auto ec = check_path(out.path); ec)
        return ec;
    out.want_sha256 = (flags & flag_bit0) != 0;
    return check_extensions(in);
}

std::error_code encode(const stat_reply& m, std::span<std::byte> out) noexcept {
    return encode_frame(
        m, out, [&] { return check_kind(m.kind); },
        [&](writer& w) {
            w.u8(static_cast<std::uint8_t>(m.kind));
            w.u8(m.sha256 ? flag_bit0 : 0);
            w.bytes(m.identity);
            w.u64(m.size);
            w.i64(m.mtime_ns);
            if (m.sha256)
                w.bytes(*m.sha256);
        });
}

std::error_code decode(std::span<const std::byte> payload, stat_reply& out) {
    reader in{payload};
    std::uint8_t kind = 0;
    std::uint8_t flags = 0;
    if (!in.u8(kind) || !in.u8(flags) || !in.bytes(out.identity) || !in.u64(out.size) ||
        !in.i64(out.mtime_ns))
        return protocol_errc::truncated;
    out.kind = static_cast<file_kind>(kind);
    if (auto ec = check_kind(out.kind); ec)
        return ec;
    if ((flags & ~flag_bit0) != 0)
        return protocol_errc::reserved_bits_set;
    out.sha256.reset();
    if ((flags & flag_bit0) != 0) {
        sha256_digest digest{};
        if (!in.bytes(digest))
            return protocol_errc::truncated;
        out.sha256 = digest;
    }
    return check_extensions(in);
}

// ---- LIST -----------------------------------------------------------------------------------

std::error_code encode(const list_request& m, std::span<std::byte> out) noexcept {
    return encode_frame(
        m, out, [&] { return check_path(m.path); },
        [&](writer& w) {
            w.u8(0);
            w.u16(static_cast<std::uint16_t>(m.path.size()));
            w.text(m.path);
        });
}

std::error_code decode(std::span<const std::byte> payload, list_request& out) {
    reader in{payload};
    std::uint8_t flags = 0;
    std::uint16_t path_size = 0;
    if (!in.u8(flags) || !in.u16(path_size))
        return protocol_errc::truncated;
    if (flags != 0)
        return protocol_errc::reserved_bits_set;
    if (path_size > max_path_size)
        return protocol_errc::path_too_long;
    if (auto ec = read_string(in, path_size, out.path); ec)
        return ec;
    if (auto ec = check_path(out.path); ec)
        return ec;
    return check_extensions(in);
}

std::error_code encode(const list_entries& m, std::span<std::byte> out) noexcept {
    return encode_frame(
        m, out,
        [&]() -> std::error_code {
            for (const auto& e : m.entries) {
                if (auto ec = check_name(e.name); ec)
                    return ec;
                if (auto ec = check_kind(e.kind); ec)
                    return ec;
            }
            return {};
        },
        [&](writer& w) {
            w.u16(static_cast<std::uint16_t>(m.entries.size()));
            for (const auto& e : m.entries) {
                w.u8(static_cast<std::uint8_t>(e.kind));
                w.u64(e.size);
                w.i64(e.mtime_ns);
                w.u8(static_cast<std::uint8_t>(e.name.size()));
                w.text(e.name);
            }
        });
}

std::error_code decode(std::span<const std::byte> payload, list_entries& out) {
    reader in{payload};
    std::uint16_t count = 0;
    if (!in.u16(count))
        return protocol_errc::truncated;
    // Each entry takes at least list_entry_fixed + 1 bytes: a count the payload cannot
    // hold is refused before anything is reserved.
    if (count > in.remaining() / (list_entry_fixed + 1))
        return protocol_errc::truncated;
    out.entries.clear();
    out.entries.reserve(count);
    for (std::uint16_t i = 0; i < count; ++i) {
        list_entry e;
        std::uint8_t kind = 0;
        std::uint8_t name_size = 0;
        if (!in.u8(kind) || !in.u64(e.size) || !in.i64(e.mtime_ns) || !in.u8(name_size))
            return protocol_errc::truncated;
        e.kind = static_cast<file_kind>(kind);
        if (auto ec = check_kind(e.kind); ec)
            return ec;
        if (auto ec = read_string(in, name_size, e.name); ec)
            return ec;
        if (auto ec = check_name(e.name); ec)
            return ec;
        out.entries.push_back(std::move(e));
    }
    return check_extensions(in);
}

std::error_code encode(const list_end& m, std::span<std::byte> out) noexcept {
    return encode_frame(
        m, out, [&] { return check_end_status(m.code); },
        [&](writer& w) {
            w.u16(static_cast<std::uint16_t>(m.code));
            w.u64(m.entry_count);
        });
}

std::error_code decode(std::span<const std::byte> payload, list_end& out) {
    reader in{payload};
    std::uint16_t code = 0;
    if (!in.u16(code) || !in.u64(out.entry_count))
        return protocol_errc::truncated;
    out.code = static_cast<status>(code);
    if (auto ec = check_end_status(out.code); ec)
        return ec;
    return check_extensions(in);
}

// ---- ERROR ----------------------------------------------------------------------------------

std::error_code encode(const error_reply& m, std::span<std::byte> out) noexcept {
    return encode_frame(
        m, out,
        [&]() -> std::error_code {
            if (m.code == status::ok)
                return protocol_errc::bad_status;
            return check_text(m.message);
        },
        [&](writer& w) {
            w.u16(static_cast<std::uint16_t>(m.code));
            w.u8(m.closing ? flag_bit0 : 0);
            w.u32(m.retry_after_ms);
            w.u16(static_cast<std::uint16_t>(m.message.size()));
            w.text(m.message);
        });
}

std::error_code decode(std::span<const std::byte> payload, error_reply& out) {
    reader in{payload};
    std::uint16_t code = 0;
    std::uint8_t flags = 0;
    std::uint16_t text_size = 0;
    if (!in.u16(code) || !in.u8(flags) || !in.u32(out.retry_after_ms) || !in.u16(text_size))
        return protocol_errc::truncated;
    // Statuses a newer peer defines are kept as they are: the client reports them as failures.
    out.code = static_cast<status>(code);
    if (out.code == status::ok)
        return protocol_errc::bad_status;
    if ((flags & ~flag_bit0) != 0)
        return protocol_errc::reserved_bits_set;
    out.closing = (flags & flag_bit0) != 0;
    if (text_size > max_text_size)
        return protocol_errc::bad_text;
    if (auto ec = read_string(in, text_size, out.message); ec)
        return ec;
    if (auto ec = check_text(out.message); ec)
        return ec;
    return check_extensions(in);
}

// ---- helpers ---------------------------------------------------------------------------------

bool is_valid_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t n = 0;  // continuation bytes
        unsigned lo = 0x80; // allowed range of the second byte
        unsigned hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c == 0xE0) {
            n = 2;
            lo = 0xA0; // no overlong 3-byte forms
        } else if (c == 0xED) {
            n = 2;
            hi = 0x9F; // no UTF-16 surrogates
        } else if (c >= 0xE1 && c <= 0xEF) {
            n = 2;
        } else if (c == 0xF0) {
            n = 3;
            lo = 0x90; // no overlong 4-byte forms
        } else if (c >= 0xF1 && c <= 0xF3) {
            n = 3;
        } else if (c == 0xF4) {
            n = 3;
            hi = 0x8F; // nothing above U+10FFFF
        } else {
            return false; // 0x80..0xC1, 0xF5..0xFF
        }
        if (s.size() - i <= n)
            return false;
        for (std::size_t k = 1; k <= n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            const unsigned min = k == 1 ? lo : 0x80;
            const unsigned max = k == 1 ? hi : 0xBF;
            if (cc < min || cc > max)
                return false;
        }
        i += n + 1;
    }
    return true;
}

status status_for(std::error_code e) noexcept {
    if (e == protocol_errc::unsupported_version)
        return status::unsupported_version;
    if (e == protocol_errc::frame_too_large || e == protocol_errc::path_too_long)
        return status::too_large;
    return status::bad_request;
}

} // namespace ferry::protocol
