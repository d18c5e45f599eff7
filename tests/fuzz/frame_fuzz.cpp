// libFuzzer target: decode_frame and every message decoder over arbitrary bytes, consuming
// frames one after another as a session would. Built with clang only:
//   cmake -S . -B build/fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DFERRY_FUZZ=ON \
//         -DFERRY_PROTOCOL_ONLY=ON
//   build/fuzz/bin/frame_fuzz build/fuzz/corpus
// The corpus is seeded with the test vectors of docs/protocol.md (tests/fuzz/seed_corpus.py).
#include "support/protocol_helpers.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::byte> rest{reinterpret_cast<const std::byte*>(data), size};
    while (!rest.empty()) {
        auto r = ferry::protocol::decode_frame(rest);
        if (r.state != ferry::protocol::decode_result::kind::frame)
            break;
        (void)ferry::test::decode_any(r.value);
        rest = rest.subspan(r.value.size);
    }
    return 0;
}
