// Reading and writing protocol frames over an Asio stream (TCP socket or a local socket pair).
#pragma once

#include "ferry/protocol/errc.hpp"
#include "ferry/protocol/frame.hpp"
#include "ferry/protocol/messages.hpp"
#include "ferry/transport/asio.hpp"
#include "ferry/transport/with_timeout.hpp"

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstddef>
#include <span>
#include <sys/socket.h>
#include <tuple>
#include <utility>
#include <vector>

namespace ferry::transport {

/// Bytes received but not yet consumed. Holds no memory until bytes arrive and gives it back
/// with release() when empty, so an idle connection costs nothing here.
class frame_buffer {
public:
    /// The unconsumed bytes.
    std::span<const std::byte> data() const noexcept {
        return {storage_.data() + begin_, end_ - begin_};
    }
    bool empty() const noexcept { return begin_ == end_; }
    /// Writable space for at least `n` more bytes after data(), compacting or growing.
    std::span<std::byte> prepare(std::size_t n);
    void commit(std::size_t n) noexcept { end_ += n; }
    void consume(std::size_t n) noexcept;
    /// Frees the storage if nothing is buffered.
    void release() noexcept;

private:
    std::vector<std::byte> storage_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

namespace detail {

/// A non-blocking attempt before any asynchronous machinery: most reads and writes on a busy
/// connection complete at once, and then cost one system call instead of an operation with a
/// timer. Returns the bytes moved, 0 with no error when the call would block, or an error.
template <class Stream>
std::pair<error_code, std::size_t> try_receive(Stream& stream, std::span<std::byte> into) {
    for (;;) {
        const ssize_t n = ::recv(stream.native_handle(), into.data(), into.size(), MSG_DONTWAIT);
        if (n > 0)
            return {error_code{}, static_cast<std::size_t>(n)};
        if (n == 0)
            return {error_code{asio::error::eof}, 0};
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return {error_code{}, 0};
        return {error_code{errno, boost::system::system_category()}, 0};
    }
}

template <class Stream>
std::pair<error_code, std::size_t> try_send(Stream& stream, std::span<const std::byte> from) {
    for (;;) {
        const ssize_t n =
            ::send(stream.native_handle(), from.data(), from.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0)
            return {error_code{}, static_cast<std::size_t>(n)};
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return {error_code{}, 0};
        return {error_code{errno, boost::system::system_category()}, 0};
    }
}

} // namespace detail

/// Writes all of `bytes`: at once if the socket takes them, else asynchronously, failing with
/// timed_out if the peer accepts nothing for `timeout`.
template <class Stream>
asio::awaitable<error_code> write_all(Stream& stream, std::span<const std::byte> bytes,
                                      clock::duration timeout) {
    auto [ec, n] = detail::try_send(stream, bytes);
    if (ec || n == bytes.size())
        co_return ec;
    auto [aec, an] = co_await with_timeout(
        asio::async_write(stream, asio::buffer(bytes.data() + n, bytes.size() - n), asio::deferred),
        timeout);
    co_return aec;
}

/// The outcome of read_frame: a network error, a protocol error (bad bytes) or a frame whose
/// payload lives in the frame_buffer until the caller consumes `frame.size` bytes.
struct read_result {
    error_code net;                ///< EOF, reset, timed_out, operation_aborted ...
    std::error_code protocol;      ///< the stream is not valid Ferry
    std::uint8_t seen_version = 0; ///< for an unsupported_version reply
    protocol::frame frame;         ///< valid when neither error is set
};

/// Reads until `buffer` holds one complete frame, for at most `timeout` in total (a peer that
/// trickles bytes cannot stretch it). Each read asks for at least `read_size` bytes: what
/// follows the frame (a body, the next frame) may come along in the same system call. Never
/// buffers more than one frame (64 KiB) plus one read. Cancellation is reported as
/// operation_aborted in `net`.
template <class Stream>
asio::awaitable<read_result> read_frame(Stream& stream, frame_buffer& buffer,
                                        clock::duration timeout, std::size_t read_size = 4096) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
        read_result r;
        auto d = protocol::decode_frame(buffer.data());
        if (d.state == protocol::decode_result::kind::frame) {
            r.frame = d.value;
            co_return r;
        }
        if (d.state == protocol::decode_result::kind::error) {
            r.protocol = d.error;
            r.seen_version = d.seen_version;
            co_return r;
        }
        const auto left = deadline - clock::now();
        if (left <= clock::duration::zero()) {
            r.net = asio::error::timed_out;
            co_return r;
        }
        auto space = buffer.prepare(std::max(d.need - buffer.data().size(), read_size));
        auto [ec, n] = detail::try_receive(stream, space);
        if (!ec && n == 0)
            std::tie(ec, n) = co_await with_timeout(
                stream.async_read_some(asio::buffer(space.data(), space.size()), asio::deferred),
                left);
        buffer.commit(n);
        if (ec) {
            r.net = ec;
            co_return r;
        }
    }
}

/// Encodes `message` and writes the whole frame, failing with timed_out if the peer accepts no
/// bytes for `timeout`. Small frames are encoded on the stack.
template <class Stream, class Message>
asio::awaitable<error_code> write_frame(Stream& stream, const Message& message,
                                        clock::duration timeout) {
    std::array<std::byte, 256> small;
    std::vector<std::byte> large;
    std::span<std::byte> out{small};
    if (protocol::encoded_size(message) > small.size()) {
        large.resize(protocol::encoded_size(message));
        out = large;
    }
    if (auto ec = protocol::encode(message, out); ec)
        co_return error_code{ec}; // a message that breaks a protocol rule: a caller bug
    co_return co_await write_all(stream, out.first(protocol::encoded_size(message)), timeout);
}

} // namespace ferry::transport
