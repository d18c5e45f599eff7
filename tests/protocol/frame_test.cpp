// decode_frame: incremental decoding ("need more"), early rejection, limits, pipelining.
#include "protocol/vectors.hpp"

#include <gtest/gtest.h>
#include <random>

namespace ferry::test {
namespace {

using kind = fp::decode_result::kind;

bytes header(std::uint8_t version, std::uint8_t type, std::uint16_t payload_size) {
    return {std::byte{0xFE},
            std::byte{'F'},
            std::byte{'R'},
            std::byte{'Y'},
            std::byte{version},
            std::byte{type},
            static_cast<std::byte>(payload_size >> 8U),
            static_cast<std::byte>(payload_size & 0xFFU)};
}

TEST(DecodeFrame, EmptyBufferNeedsAHeader) {
    auto r = fp::decode_frame({});
    EXPECT_EQ(r.state, kind::need_more);
    EXPECT_EQ(r.need, fp::frame_header_size);
}

// The grind test: every message, cut at every point, must ask for more (never fail, never
// return a frame early) and then decode to the same message once complete.
TEST(DecodeFrame, EveryVectorAtEverySplitNeedsMoreThenDecodes) {
    for (const auto& [name, message] : valid_vectors()) {
        SCOPED_TRACE(name);
        const bytes whole = encode_exact(message);
        for (std::size_t cut = 0; cut < whole.size(); ++cut) {
            bytes prefix(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut));
            auto r = fp::decode_frame(prefix);
            ASSERT_EQ(r.state, kind::need_more) << "cut at " << cut;
            ASSERT_GT(r.need, cut);
            ASSERT_LE(r.need, whole.size());
        }
        auto r = fp::decode_frame(whole);
        ASSERT_EQ(r.state, kind::frame);
        EXPECT_EQ(r.value.size, whole.size());
        auto d = decode_any(r.value);
        ASSERT_FALSE(d.error) << d.error.message();
        EXPECT_TRUE(d.message == message);
    }
}

TEST(DecodeFrame, PipelinedFramesDecodeOneAfterAnotherAtEverySplit) {
    bytes stream;
    const auto vectors = valid_vectors();
    for (const auto& v : vectors) {
        auto b = encode_exact(v.second);
        stream.insert(stream.end(), b.begin(), b.end());
    }
    // Deliver the stream in chunks of every size from 1 to 97 bytes, consuming frames as they
    // complete, the way a session reads from a socket.
    for (std::size_t chunk = 1; chunk < 98; ++chunk) {
        bytes buffer;
        std::size_t fed = 0;
        std::size_t seen = 0;
        while (fed < stream.size() || !buffer.empty()) {
            auto r = fp::decode_frame(buffer);
            ASSERT_NE(r.state, kind::error) << r.error.message();
            if (r.state == kind::frame) {
                ASSERT_LT(seen, vectors.size());
                auto d = decode_any(r.value);
                ASSERT_FALSE(d.error);
                EXPECT_TRUE(d.message == vectors[seen].second) << vectors[seen].first;
                ++seen;
                buffer.erase(buffer.begin(),
                             buffer.begin() + static_cast<std::ptrdiff_t>(r.value.size));
                continue;
            }
            ASSERT_LT(fed, stream.size()) << "decoder wants more than the stream holds";
            const std::size_t n = std::min(chunk, stream.size() - fed);
            buffer.insert(buffer.end(), stream.begin() + static_cast<std::ptrdiff_t>(fed),
                          stream.begin() + static_cast<std::ptrdiff_t>(fed + n));
            fed += n;
        }
        EXPECT_EQ(seen, vectors.size()) << "chunk " << chunk;
    }
}

TEST(DecodeFrame, BadMagicIsRefusedOnTheFirstWrongByte) {
    EXPECT_EQ(fp::decode_frame(to_bytes("G")).error, fp::protocol_errc::bad_magic);
    EXPECT_EQ(fp::decode_frame(to_bytes("GET / HTTP/1.1\r\n\r\n")).error,
              fp::protocol_errc::bad_magic);
    EXPECT_EQ(fp::decode_frame(bytes{std::byte{0x16}, std::byte{0x03}}).error,
              fp::protocol_errc::bad_magic);
    // A correct prefix of the magic is not an error yet.
    EXPECT_EQ(fp::decode_frame(bytes{std::byte{0xFE}, std::byte{'F'}}).state, kind::need_more);
    EXPECT_EQ(fp::decode_frame(bytes{std::byte{0xFE}, std::byte{'F'}, std::byte{'X'}}).error,
              fp::protocol_errc::bad_magic);
}

TEST(DecodeFrame, EveryOtherVersionIsUnsupportedAndReported) {
    for (int v = 0; v < 256; ++v) {
        if (v == fp::version)
            continue;
        auto b = header(static_cast<std::uint8_t>(v), 0x01, 0);
        b.resize(6); // the version is judged once the type is known
        auto r = fp::decode_frame(b);
        ASSERT_EQ(r.error, fp::protocol_errc::unsupported_version) << v;
        EXPECT_EQ(r.seen_version, v);
        // Even a type version 1 does not define: the version is the better explanation.
        b[5] = std::byte{0x7f};
        EXPECT_EQ(fp::decode_frame(b).error, fp::protocol_errc::unsupported_version) << v;
    }
}

TEST(DecodeFrame, AnErrorFrameOfAnyVersionIsReadable) {
    // A version-2 server refusing our version-1 request answers with its own version byte.
    auto b = encode_exact(fp::error_reply{fp::status::unsupported_version, true, 0,
                                          "unsupported version 1; this server speaks version 2"});
    b[4] = std::byte{2};
    auto r = fp::decode_frame(b);
    ASSERT_EQ(r.state, kind::frame);
    EXPECT_EQ(r.value.version, 2);
    auto d = decode_any(r.value);
    ASSERT_FALSE(d.error);
    EXPECT_EQ(std::get<fp::error_reply>(d.message).code, fp::status::unsupported_version);
}

TEST(DecodeFrame, EveryUndefinedTypeIsRefused) {
    for (int t = 0; t < 256; ++t) {
        auto r = fp::decode_frame(header(1, static_cast<std::uint8_t>(t), 0));
        const bool known = fp::is_known(static_cast<fp::frame_type>(t));
        EXPECT_EQ(r.state, known ? kind::frame : kind::error) << t; // an empty payload is complete
        EXPECT_EQ(r.error, known ? std::error_code{}
                                 : make_error_code(fp::protocol_errc::unknown_frame_type))
            << t;
    }
}

TEST(DecodeFrame, OversizeLengthIsRefusedFromTheHeaderAlone) {
    auto r = fp::decode_frame(header(1, 0x01, fp::max_payload_size + 1));
    EXPECT_EQ(r.error, fp::protocol_errc::frame_too_large);
    r = fp::decode_frame(header(1, 0x01, 0xFFFF));
    EXPECT_EQ(r.error, fp::protocol_errc::frame_too_large);
    // The largest legal frame is announced and then waited for.
    r = fp::decode_frame(header(1, 0x84, fp::max_payload_size));
    EXPECT_EQ(r.state, kind::need_more);
    EXPECT_EQ(r.need, fp::max_frame_size);
}

TEST(DecodeFrame, RandomBytesNeverCrashOrOverread) {
    std::mt19937 rng{20261124};
    const auto all = valid_vectors();
    for (int i = 0; i < 20000; ++i) {
        // Start with a valid header most of the time so the payload decoders get exercised.
        bytes b;
        if (i % 4 != 0) {
            b = encode_exact(all[static_cast<std::size_t>(i) % all.size()].second);
            const std::size_t flips = 1 + rng() % 4;
            for (std::size_t k = 0; k < flips; ++k)
                b[rng() % b.size()] = static_cast<std::byte>(rng());
        } else {
            b.resize(rng() % 64);
            for (auto& x : b)
                x = static_cast<std::byte>(rng());
        }
        auto r = fp::decode_frame(b);
        if (r.state == kind::frame)
            (void)decode_any(r.value); // any outcome but a crash or an ASan report is fine
    }
}

} // namespace
} // namespace ferry::test
