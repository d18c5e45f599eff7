#include "ferry/protocol/frame.hpp"

#include "ferry/protocol/errc.hpp"
#include "wire.hpp"

#include <algorithm>

namespace ferry::protocol {

bool is_known(frame_type t) noexcept {
    switch (t) {
    case frame_type::get_request:
    case frame_type::stat_request:
    case frame_type::list_request:
    case frame_type::error:
    case frame_type::get_header:
    case frame_type::get_trailer:
    case frame_type::stat_reply:
    case frame_type::list_entries:
    case frame_type::list_end:
        return true;
    }
    return false;
}

decode_result decode_frame(std::span<const std::byte> buffered) noexcept {
    decode_result r;
    auto fail = [&r](protocol_errc e) {
        r.state = decode_result::kind::error;
        r.error = e;
        return r;
    };
    // Check the magic byte by byte so garbage (an HTTP request, a TLS hello) is refused
    // on its first byte instead of after a full header.
    const std::size_t have_magic = std::min(buffered.size(), magic.size());
    if (!std::equal(buffered.begin(), buffered.begin() + static_cast<std::ptrdiff_t>(have_magic),
                    magic.begin()))
        return fail(protocol_errc::bad_magic);
    if (buffered.size() > magic.size())
        r.seen_version = static_cast<std::uint8_t>(buffered[4]);
    if (buffered.size() > 5) {
        const auto type = static_cast<frame_type>(buffered[5]);
        // ERROR keeps the version-1 layout in every version, so a peer of another version can
        // still say why it refuses us (docs/protocol.md, 7.9).
        if (r.seen_version != version && type != frame_type::error)
            return fail(protocol_errc::unsupported_version);
        if (!is_known(type))
            return fail(protocol_errc::unknown_frame_type);
    }
    if (buffered.size() < frame_header_size)
        return r; // need_more, need = frame_header_size

    detail::reader in{buffered.subspan(6, 2)};
    std::uint16_t payload_size = 0;
    in.u16(payload_size);
    if (payload_size > max_payload_size)
        return fail(protocol_errc::frame_too_large);
    const std::size_t total = frame_header_size + payload_size;
    if (buffered.size() < total) {
        r.need = total;
        return r;
    }
    r.state = decode_result::kind::frame;
    r.need = total;
    r.value = {static_cast<frame_type>(buffered[5]), r.seen_version,
               buffered.subspan(frame_header_size, payload_size), total};
    return r;
}

void encode_frame_header(frame_type type, std::size_t payload_size,
                         std::span<std::byte, frame_header_size> out) noexcept {
    detail::writer w{out};
    w.bytes(magic);
    w.u8(version);
    w.u8(static_cast<std::uint8_t>(type));
    w.u16(static_cast<std::uint16_t>(payload_size));
}

} // namespace ferry::protocol
