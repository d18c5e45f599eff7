#include "ferry/transport/frame_io.hpp"

#include <cstring>

namespace ferry::transport {

std::span<std::byte> frame_buffer::prepare(std::size_t n) {
    if (storage_.size() - end_ < n) {
        // Move the unconsumed bytes to the front before growing.
        const std::size_t used = end_ - begin_;
        if (begin_ > 0 && used > 0)
            std::memmove(storage_.data(), storage_.data() + begin_, used);
        begin_ = 0;
        end_ = used;
        if (storage_.size() - end_ < n)
            storage_.resize(end_ + n);
    }
    return {storage_.data() + end_, storage_.size() - end_};
}

void frame_buffer::consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_)
        begin_ = end_ = 0;
}

void frame_buffer::release() noexcept {
    if (empty()) {
        std::vector<std::byte>{}.swap(storage_);
        begin_ = end_ = 0;
    }
}

} // namespace ferry::transport
