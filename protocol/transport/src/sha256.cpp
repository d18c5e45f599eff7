#include "ferry/transport/sha256.hpp"

#include <boost/asio/error.hpp>
#include <cerrno>
#include <openssl/evp.h>
#include <stdexcept>
#include <unistd.h>

namespace ferry::transport {

struct sha256_stream::state {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
};

sha256_stream::sha256_stream() : state_(std::make_unique<state>()) {
    if (!state_->ctx || EVP_DigestInit_ex(state_->ctx.get(), EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("OpenSSL cannot initialise SHA-256");
}
sha256_stream::sha256_stream(sha256_stream&&) noexcept = default;
sha256_stream& sha256_stream::operator=(sha256_stream&&) noexcept = default;
sha256_stream::~sha256_stream() = default;

void sha256_stream::update(std::span<const std::byte> data) {
    EVP_DigestUpdate(state_->ctx.get(), data.data(), data.size());
}

protocol::sha256_digest sha256_stream::finish() {
    protocol::sha256_digest d{};
    unsigned int size = 0;
    EVP_DigestFinal_ex(state_->ctx.get(), reinterpret_cast<unsigned char*>(d.data()), &size);
    return d;
}

sha256_result sha256_of(int fd, std::uint64_t length, const std::atomic<bool>* stop) {
    sha256_result out;
    sha256_stream hash;
    constexpr std::size_t block = 1 << 20;
    auto buffer = std::make_unique<std::byte[]>(block);
    std::uint64_t done = 0;
    while (done < length) {
        if (stop != nullptr && stop->load(std::memory_order_relaxed)) {
            out.ec = boost::asio::error::operation_aborted;
            return out;
        }
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(block, length - done));
        const ssize_t n = ::pread(fd, buffer.get(), want, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            // n == 0: the file is shorter than it should be, so it changed.
            out.ec = error_code{n == 0 ? ESTALE : errno, boost::system::generic_category()};
            return out;
        }
        hash.update({buffer.get(), static_cast<std::size_t>(n)});
        done += static_cast<std::uint64_t>(n);
    }
    out.digest = hash.finish();
    return out;
}

} // namespace ferry::transport
