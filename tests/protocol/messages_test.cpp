// Message encode/decode: round trips, every truncation, limits, malformed fields.
#include "protocol/vectors.hpp"

#include <gtest/gtest.h>

namespace ferry::test {
namespace {

using e = fp::protocol_errc;

/// The payload of a whole encoded frame.
bytes payload_of(const bytes& frame) {
    return {frame.begin() + fp::frame_header_size, frame.end()};
}

/// Re-frames `payload` under the header of `frame` (fixing the length field).
bytes reframe(const bytes& frame, const bytes& payload) {
    bytes out(fp::frame_header_size + payload.size());
    fp::encode_frame_header(
        static_cast<fp::frame_type>(frame[5]), payload.size(),
        std::span<std::byte, fp::frame_header_size>{out.data(), fp::frame_header_size});
    std::copy(payload.begin(), payload.end(), out.begin() + fp::frame_header_size);
    return out;
}

std::error_code decode_frame_bytes(const bytes& frame) {
    return decode_whole(frame).error;
}

TEST(Messages, EveryStrictPrefixOfEveryPayloadIsRejected) {
    // No vector carries extensions, so cutting any byte off a payload removes a field.
    for (const auto& [name, message] : valid_vectors()) {
        SCOPED_TRACE(name);
        const bytes frame = encode_exact(message);
        const bytes payload = payload_of(frame);
        for (std::size_t n = 0; n < payload.size(); ++n) {
            bytes cut(payload.begin(), payload.begin() + static_cast<std::ptrdiff_t>(n));
            auto ec = decode_frame_bytes(reframe(frame, cut));
            EXPECT_TRUE(ec) << "a payload cut to " << n << " bytes decoded";
        }
    }
}

TEST(Messages, ExtensionsAreSkippedUnlessCritical) {
    for (const auto& [name, message] : valid_vectors()) {
        SCOPED_TRACE(name);
        const bytes frame = encode_exact(message);
        bytes payload = payload_of(frame);
        // tag 0x0001, length 2, value aa bb; then tag 0x7fff, empty
        for (int b : {0x00, 0x01, 0x00, 0x02, 0xaa, 0xbb, 0x7f, 0xff, 0x00, 0x00})
            payload.push_back(static_cast<std::byte>(b));
        auto d = decode_whole(reframe(frame, payload));
        ASSERT_FALSE(d.error) << d.error.message();
        EXPECT_TRUE(d.message == message);

        bytes critical = payload_of(frame);
        for (int b : {0x80, 0x01, 0x00, 0x00})
            critical.push_back(static_cast<std::byte>(b));
        EXPECT_EQ(decode_frame_bytes(reframe(frame, critical)), e::unknown_critical_extension);

        for (std::size_t extra = 1; extra <= 5; ++extra) {
            bytes broken = payload_of(frame);
            // A TLV whose header or value is cut short: 00 01 00 02 aa (5 bytes) and prefixes.
            const int tlv[] = {0x00, 0x01, 0x00, 0x02, 0xaa};
            for (std::size_t k = 0; k < extra; ++k)
                broken.push_back(static_cast<std::byte>(tlv[k]));
            EXPECT_EQ(decode_frame_bytes(reframe(frame, broken)), e::bad_extension) << extra;
        }
    }
}

TEST(Messages, PathLimitIsExactly4096Bytes) {
    fp::get_request ok{std::string(fp::max_path_size, 'a'), 0, fp::to_end, std::nullopt};
    auto frame = encode_exact(ok);
    EXPECT_FALSE(decode_frame_bytes(frame));

    fp::get_request too_long = ok;
    too_long.path += 'a';
    bytes out(fp::encoded_size(too_long));
    EXPECT_EQ(fp::encode(too_long, out), e::path_too_long);

    // A hostile length field: 0x1001 announced, refused before the bytes are even looked at.
    bytes payload = payload_of(frame);
    payload[49] = std::byte{0x10};
    payload[50] = std::byte{0x01};
    EXPECT_EQ(decode_frame_bytes(reframe(frame, payload)), e::path_too_long);
    payload[49] = std::byte{0xFF};
    payload[50] = std::byte{0xFF};
    EXPECT_EQ(decode_frame_bytes(reframe(frame, payload)), e::path_too_long);
}

/// The encoder refuses to produce a request with `path`, and the decoder refuses it when a
/// peer sends it anyway (the path is the last field of every request frame).
template <class Request>
void expect_path_refused(const std::string& path) {
    Request m{};
    m.path = path;
    bytes out(fp::encoded_size(m));
    EXPECT_EQ(fp::encode(m, out), e::bad_path);
    Request good{};
    good.path = std::string(path.size(), 'x');
    auto frame = encode_exact(good);
    const auto raw = to_bytes(path);
    std::copy(raw.begin(), raw.end(), frame.end() - static_cast<std::ptrdiff_t>(raw.size()));
    EXPECT_EQ(decode_frame_bytes(frame), e::bad_path);
}

TEST(Messages, PathsMustBeUtf8WithoutNul) {
    const std::vector<std::string> bad{
        std::string("a\0b", 3),
        std::string(1, '\0'),
        "\x80",             // lone continuation byte
        "\xC0\xAF",         // overlong '/'
        "\xC1\xBF",         // overlong
        "\xE0\x80\xAF",     // overlong 3-byte
        "\xED\xA0\x80",     // UTF-16 surrogate
        "\xF0\x80\x80\xAF", // overlong 4-byte
        "\xF4\x90\x80\x80", // above U+10FFFF
        "\xF5\x80\x80\x80",
        "\xFF",
        "\xFE",
        "\xE2\x82", // truncated sequence
        "ok\xC3",   // truncated at the end
        "\xC3\x28", // bad continuation
    };
    for (const auto& path : bad) {
        SCOPED_TRACE(to_hex(to_bytes(path)));
        EXPECT_FALSE(fp::is_valid_utf8(path) && path.find('\0') == std::string::npos);
        expect_path_refused<fp::get_request>(path);
        expect_path_refused<fp::stat_request>(path);
        expect_path_refused<fp::list_request>(path);
    }
    for (std::string ok : {"", "a/b/c", "caf\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC",
                           "\xF0\x9F\x98\x80", "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF", "\x7F"}) {
        EXPECT_TRUE(fp::is_valid_utf8(ok)) << to_hex(to_bytes(ok));
        EXPECT_FALSE(decode_frame_bytes(encode_exact(fp::stat_request{ok, false})));
    }
}

TEST(Messages, RequestRangesMustFitSignedFileOffsets) {
    struct row {
        std::uint64_t offset, length;
        bool ok;
    };
    const std::uint64_t max = fp::max_offset;
    const row rows[] = {
        {0, fp::to_end, true},
        {max, fp::to_end, true},
        {max, 0, true},
        {0, max, true},
        {1, max - 1, true},
        {max - 5, 5, true},
        {max + 1, fp::to_end, false},
        {max, 1, false},
        {1, max, false},
        {0, max + 1, false},
        {max - 5, 6, false},
        {UINT64_MAX, 0, false},
        {UINT64_MAX, UINT64_MAX - 1, false},
        {2, UINT64_MAX - 1, false},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(std::to_string(r.offset) + "+" + std::to_string(r.length));
        fp::get_request m{"f", r.offset, r.length, std::nullopt};
        bytes out(fp::encoded_size(m));
        EXPECT_EQ(!fp::encode(m, out), r.ok);
        // Write the fields by hand to check the decoder against a hostile peer.
        auto frame = encode_exact(fp::get_request{"f", 0, 0, std::nullopt});
        for (int i = 0; i < 8; ++i) {
            frame[9 + static_cast<std::size_t>(i)] =
                static_cast<std::byte>(r.offset >> (56 - 8 * i));
            frame[17 + static_cast<std::size_t>(i)] =
                static_cast<std::byte>(r.length >> (56 - 8 * i));
        }
        auto ec = decode_frame_bytes(frame);
        EXPECT_EQ(ec, r.ok ? std::error_code{} : make_error_code(e::range_overflow));
    }
}

TEST(Messages, ReplyRangesMustLieInsideTheFile) {
    EXPECT_FALSE(decode_frame_bytes(encode_exact(fp::get_header{{}, 10, 0, 10, 0})));
    EXPECT_FALSE(decode_frame_bytes(encode_exact(fp::get_header{{}, 10, 0, 0, 10})));
    EXPECT_FALSE(decode_frame_bytes(encode_exact(fp::get_header{{}, 0, 0, 0, 0})));
    for (const auto& h : {fp::get_header{{}, 10, 0, 11, 0}, fp::get_header{{}, 10, 0, 5, 6},
                          fp::get_header{{}, 10, 0, 1, UINT64_MAX},
                          fp::get_header{{}, fp::max_offset + 1, 0, 0, 0}}) {
        bytes out(fp::encoded_size(h));
        EXPECT_EQ(fp::encode(h, out), e::bad_range);
        auto frame = encode_exact(fp::get_header{{}, 0, 0, 0, 0});
        for (int i = 0; i < 8; ++i) {
            frame[40 + static_cast<std::size_t>(i)] =
                static_cast<std::byte>(h.size >> (56 - 8 * i));
            frame[56 + static_cast<std::size_t>(i)] =
                static_cast<std::byte>(h.offset >> (56 - 8 * i));
            frame[64 + static_cast<std::size_t>(i)] =
                static_cast<std::byte>(h.length >> (56 - 8 * i));
        }
        EXPECT_EQ(decode_frame_bytes(frame), e::bad_range);
    }
}

TEST(Messages, ReservedFlagBitsAreRejected) {
    // The flags byte is the first payload byte of GET, STAT and LIST requests.
    for (const auto& m :
         {any_message{fp::get_request{"f", 0, fp::to_end, std::nullopt}},
          any_message{fp::stat_request{"f", false}}, any_message{fp::list_request{"d"}}}) {
        auto frame = encode_exact(m);
        const int first_reserved = std::holds_alternative<fp::list_request>(m) ? 0 : 1;
        for (int bit = first_reserved; bit < 8; ++bit) {
            auto b = frame;
            b[8] |= static_cast<std::byte>(1U << static_cast<unsigned>(bit));
            EXPECT_EQ(decode_frame_bytes(b), e::reserved_bits_set) << bit;
        }
    }
    auto err = encode_exact(fp::error_reply{fp::status::busy, false, 0, ""});
    err[10] = std::byte{0x02}; // ERROR flags
    EXPECT_EQ(decode_frame_bytes(err), e::reserved_bits_set);
    auto st = encode_exact(fp::stat_reply{});
    st[9] = std::byte{0x04}; // STAT_REPLY flags
    EXPECT_EQ(decode_frame_bytes(st), e::reserved_bits_set);
}

TEST(Messages, ListNamesAreSinglePathComponents) {
    const std::vector<std::string> bad{
        "", ".", "..", "a/b", "/", std::string("a\0b", 3), "\xFF", std::string(256, 'n')};
    for (const auto& name : bad) {
        fp::list_entries m{{{name, fp::file_kind::regular, 0, 0}}};
        bytes out(fp::encoded_size(m));
        EXPECT_EQ(fp::encode(m, out), e::bad_name) << to_hex(to_bytes(name));
    }
    fp::list_entries longest{{{std::string(255, 'n'), fp::file_kind::other, 1, 2}}};
    EXPECT_FALSE(decode_frame_bytes(encode_exact(longest)));

    // A peer that sends "." or a slash anyway.
    auto frame = encode_exact(fp::list_entries{{{"ab", fp::file_kind::regular, 0, 0}}});
    auto dot = frame;
    dot[frame.size() - 2] = std::byte{'.'};
    dot[frame.size() - 1] = std::byte{'.'};
    EXPECT_EQ(decode_frame_bytes(dot), e::bad_name);
    auto slash = frame;
    slash[frame.size() - 1] = std::byte{'/'};
    EXPECT_EQ(decode_frame_bytes(slash), e::bad_name);
    auto empty = encode_exact(fp::list_entries{{{"a", fp::file_kind::regular, 0, 0}}});
    empty[empty.size() - 2] = std::byte{0}; // name_len 0, the name byte becomes an extension
    EXPECT_EQ(decode_frame_bytes(empty), e::bad_name);
}

TEST(Messages, EntryCountBeyondThePayloadIsRefusedWithoutReserving) {
    auto frame = encode_exact(fp::list_entries{});
    frame[8] = std::byte{0xFF};
    frame[9] = std::byte{0xFF};
    EXPECT_EQ(decode_frame_bytes(frame), e::truncated);
}

TEST(Messages, FileKindsAndStatusesAreChecked) {
    auto st = encode_exact(fp::stat_reply{});
    for (int k : {0, 5, 255}) {
        st[8] = static_cast<std::byte>(k);
        EXPECT_EQ(decode_frame_bytes(st), e::bad_kind) << k;
    }
    auto trailer = encode_exact(fp::get_trailer{fp::status::ok});
    for (std::uint16_t s = 0; s <= fp::max_status_value + 1; ++s) {
        trailer[9] = static_cast<std::byte>(s);
        const bool ok = s == 0 || s == 6 || s == 11; // ok, changed, internal_error
        EXPECT_EQ(decode_frame_bytes(trailer),
                  ok ? std::error_code{} : make_error_code(e::bad_status))
            << s;
    }
    auto end = encode_exact(fp::list_end{fp::status::ok, 0});
    end[9] = std::byte{4};
    EXPECT_EQ(decode_frame_bytes(end), e::bad_status);

    // ERROR never carries ok, but keeps statuses a newer server may define.
    auto err = encode_exact(fp::error_reply{fp::status::busy, false, 0, "x"});
    err[9] = std::byte{0};
    EXPECT_EQ(decode_frame_bytes(err), e::bad_status);
    err[9] = std::byte{200};
    auto d = decode_whole(err);
    ASSERT_FALSE(d.error);
    auto code = std::get<fp::error_reply>(d.message).code;
    EXPECT_EQ(static_cast<int>(code), 200);
    EXPECT_EQ(fp::status_text(code), "unknown status");
    bytes out(fp::encoded_size(fp::error_reply{fp::status::ok, false, 0, ""}));
    EXPECT_EQ(fp::encode(fp::error_reply{fp::status::ok, false, 0, ""}, out), e::bad_status);
}

TEST(Messages, ErrorTextIsBoundedUtf8) {
    fp::error_reply longest{fp::status::internal_error, true, 0,
                            std::string(fp::max_text_size, 't')};
    EXPECT_FALSE(decode_frame_bytes(encode_exact(longest)));
    auto too_long = longest;
    too_long.message += 't';
    bytes out(fp::encoded_size(too_long));
    EXPECT_EQ(fp::encode(too_long, out), e::bad_text);
    auto frame = encode_exact(fp::error_reply{fp::status::busy, false, 0, "ab"});
    frame[frame.size() - 1] = std::byte{0xFF};
    EXPECT_EQ(decode_frame_bytes(frame), e::bad_text);
    frame[15] = std::byte{0x04}; // text_len 0x0402 > 1024
    EXPECT_EQ(decode_frame_bytes(frame), e::bad_text);
}

TEST(Messages, EncodeNeverWritesPastTheBufferItIsGiven) {
    for (const auto& [name, message] : valid_vectors()) {
        std::visit(
            [&, n = name](const auto& m) {
                const std::size_t size = fp::encoded_size(m);
                bytes small(size - 1);
                EXPECT_EQ(fp::encode(m, small), std::errc::no_buffer_space) << n;
            },
            message);
    }
}

TEST(Messages, ListEntriesBeyondOneFrameAreRefusedByTheEncoder) {
    fp::list_entries m;
    // 18 + 255 bytes per entry; 241 entries exceed 64 KiB.
    for (int i = 0; i < 241; ++i)
        m.entries.push_back({std::string(255, 'a'), fp::file_kind::regular, 0, 0});
    ASSERT_GT(fp::encoded_size(m), fp::max_frame_size);
    bytes out(fp::encoded_size(m));
    EXPECT_EQ(fp::encode(m, out), e::frame_too_large);
}

TEST(Messages, DecodeErrorsMapToTheStatusAServerReplies) {
    EXPECT_EQ(fp::status_for(e::unsupported_version), fp::status::unsupported_version);
    EXPECT_EQ(fp::status_for(e::frame_too_large), fp::status::too_large);
    EXPECT_EQ(fp::status_for(e::path_too_long), fp::status::too_large);
    EXPECT_EQ(fp::status_for(e::bad_magic), fp::status::bad_request);
    EXPECT_EQ(fp::status_for(e::bad_path), fp::status::bad_request);
    EXPECT_EQ(fp::status_text(fp::status::not_regular_file), "not a regular file");
    EXPECT_EQ(make_error_code(e::bad_magic).message(), "bad magic: not a Ferry frame");
    EXPECT_STREQ(make_error_code(e::bad_magic).category().name(), "ferry.protocol");
}

} // namespace
} // namespace ferry::test
