// docs/protocol.md is normative: its test vectors are read from the doc itself, so the doc and
// the code cannot drift apart.
#include "protocol/vectors.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <regex>
#include <sstream>

namespace ferry::test {
namespace {

struct doc_vector {
    bytes data;
    std::string error; // empty for valid vectors, else the protocol_errc name
};

/// Reads lines of the form
///   Vector `name`:                       followed by a ``` block of hex, or
///   Malformed `name` (error `errc`):     followed by a ``` block of hex.
std::map<std::string, doc_vector> read_doc_vectors() {
    std::ifstream in{FERRY_PROTOCOL_DOC};
    if (!in)
        throw std::runtime_error("cannot open " FERRY_PROTOCOL_DOC);
    const std::regex head{R"(^(Vector|Malformed) `([a-z0-9_]+)`(?: \(error `([a-z_]+)`\))?:$)"};
    std::map<std::string, doc_vector> out;
    std::string line;
    while (std::getline(in, line)) {
        std::smatch m;
        if (!std::regex_match(line, m, head))
            continue;
        // Copy the matches out: `line` is reused below.
        const std::string what = m[1], name = m[2], error = m[3];
        const bool names_error = m[3].matched;
        std::string fence;
        std::getline(in, fence);
        if (fence.rfind("```", 0) != 0)
            throw std::runtime_error("vector " + name + " is not followed by a ``` block");
        std::string hex;
        while (std::getline(in, line) && line.rfind("```", 0) != 0)
            hex += line + "\n";
        if (what == "Malformed" && !names_error)
            throw std::runtime_error("malformed vector " + name + " names no error");
        if (!out.emplace(name, doc_vector{from_hex(hex), error}).second)
            throw std::runtime_error("duplicate vector " + name);
    }
    return out;
}

const std::map<std::string, fp::protocol_errc>& errc_by_name() {
    using e = fp::protocol_errc;
    static const std::map<std::string, e> names{
        {"bad_magic", e::bad_magic},
        {"unsupported_version", e::unsupported_version},
        {"unknown_frame_type", e::unknown_frame_type},
        {"frame_too_large", e::frame_too_large},
        {"truncated", e::truncated},
        {"reserved_bits_set", e::reserved_bits_set},
        {"bad_extension", e::bad_extension},
        {"unknown_critical_extension", e::unknown_critical_extension},
        {"path_too_long", e::path_too_long},
        {"bad_path", e::bad_path},
        {"bad_name", e::bad_name},
        {"bad_text", e::bad_text},
        {"range_overflow", e::range_overflow},
        {"bad_range", e::bad_range},
        {"bad_status", e::bad_status},
        {"bad_kind", e::bad_kind},
    };
    return names;
}

TEST(ProtocolDocVectors, EveryValidVectorEncodesToTheDocBytesAndBack) {
    const auto doc = read_doc_vectors();
    for (const auto& [name, message] : valid_vectors()) {
        SCOPED_TRACE(name);
        auto it = doc.find(name);
        if (it == doc.end()) {
            ADD_FAILURE() << "docs/protocol.md lacks Vector `" << name << "`; its bytes are:\n"
                          << to_hex(encode_exact(message));
            continue;
        }
        ASSERT_TRUE(it->second.error.empty()) << name << " is listed as malformed in the doc";
        EXPECT_EQ(to_hex(encode_exact(message)), to_hex(it->second.data));
        auto d = decode_whole(it->second.data);
        ASSERT_FALSE(d.error) << d.error.message();
        EXPECT_TRUE(d.message == message);
    }
}

TEST(ProtocolDocVectors, TheDocHasNoValidVectorTheTestsDoNotKnow) {
    std::map<std::string, int> known;
    for (const auto& v : valid_vectors())
        known[v.first] = 1;
    for (const auto& [name, v] : read_doc_vectors())
        if (v.error.empty()) {
            EXPECT_TRUE(known.count(name))
                << "Vector `" << name << "` has no message in vectors.hpp";
        }
}

TEST(ProtocolDocVectors, EveryMalformedVectorFailsWithTheErrorTheDocNames) {
    int count = 0;
    for (const auto& [name, v] : read_doc_vectors()) {
        if (v.error.empty())
            continue;
        SCOPED_TRACE(name);
        ++count;
        auto e = errc_by_name().find(v.error);
        ASSERT_NE(e, errc_by_name().end()) << "unknown error name " << v.error;
        EXPECT_EQ(decode_whole(v.data).error, make_error_code(e->second));
    }
    EXPECT_GE(count, 10);
}

} // namespace
} // namespace ferry::test
