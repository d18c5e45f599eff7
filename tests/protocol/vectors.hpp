// The valid test vectors of docs/protocol.md, as messages. vectors_test checks that the doc's
// bytes and these messages encode and decode into each other, and that both list the same names.
#pragma once

#include "support/protocol_helpers.hpp"

#include <string>
#include <utility>
#include <vector>

namespace ferry::test {

inline fp::file_identity sample_identity() {
    fp::file_identity id{};
    for (std::size_t i = 0; i < id.size(); ++i)
        id[i] = static_cast<std::byte>(i + 1);
    return id;
}

/// SHA-256 of the empty string.
inline fp::sha256_digest empty_sha256() {
    auto b = from_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    fp::sha256_digest d{};
    std::copy(b.begin(), b.end(), d.begin());
    return d;
}

inline std::vector<std::pair<std::string, any_message>> valid_vectors() {
    using namespace fp;
    constexpr std::int64_t mtime = 1700000000123456789;
    return {
        {"get_whole_file", get_request{"docs/readme.txt", 0, to_end, std::nullopt}},
        {"get_range_if_identity", get_request{"data/big.bin", 1048576, 65536, sample_identity()}},
        {"stat_with_sha256", stat_request{"a.txt", true}},
        {"list_root", list_request{""}},
        {"error_not_found", error_reply{status::not_found, false, 0, "not found: nope.txt"}},
        {"error_busy", error_reply{status::busy, true, 250, "busy: too many connections"}},
        {"error_unsupported_version",
         error_reply{status::unsupported_version, true, 0,
                     "unsupported version 2; this server speaks version 1"}},
        {"get_header_range", get_header{sample_identity(), 5000000, mtime, 1048576, 65536}},
        {"get_trailer_ok", get_trailer{status::ok}},
        {"get_trailer_changed", get_trailer{status::changed}},
        {"stat_reply_empty_file",
         stat_reply{file_kind::regular, sample_identity(), 0, mtime, empty_sha256()}},
        {"stat_reply_directory",
         stat_reply{file_kind::directory, sample_identity(), 4096, -1, std::nullopt}},
        {"list_entries_three", list_entries{{{"a.txt", file_kind::regular, 5, mtime},
                                             {"sub", file_kind::directory, 4096, mtime},
                                             {"caf\xc3\xa9.txt", file_kind::regular, 0, 0}}}},
        {"list_end_ok", list_end{status::ok, 3}},
    };
}

} // namespace ferry::test
