// SHA-256 of files and streams (OpenSSL), shared by the server's digest cache and the client's
// verification.
#pragma once

#include "ferry/protocol/messages.hpp"
#include "ferry/transport/asio.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

namespace ferry::transport {

/// A digest, or the error that prevented it (a read error; ESTALE: the file ended early).
struct sha256_result {
    error_code ec;
    protocol::sha256_digest digest{};
};

/// SHA-256 of the first `length` bytes of `fd`, read with pread in 1 MiB blocks. If `stop` is
/// given and becomes true, reading stops before the next block and ec is operation_aborted.
sha256_result sha256_of(int fd, std::uint64_t length, const std::atomic<bool>* stop = nullptr);

/// Incremental SHA-256.
class sha256_stream {
public:
    sha256_stream();
    sha256_stream(sha256_stream&&) noexcept;
    sha256_stream& operator=(sha256_stream&&) noexcept;
    ~sha256_stream();
    void update(std::span<const std::byte> data);
    protocol::sha256_digest finish();

private:
    struct state;
    std::unique_ptr<state> state_;
};

} // namespace ferry::transport
