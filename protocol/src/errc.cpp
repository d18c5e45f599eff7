#include "ferry/protocol/errc.hpp"

namespace ferry::protocol {
namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "ferry.protocol"; }

    std::string message(int value) const override {
        switch (static_cast<protocol_errc>(value)) {
        case protocol_errc::bad_magic:
            return "bad magic: not a Ferry frame";
        case protocol_errc::unsupported_version:
            return "unsupported protocol version";
        case protocol_errc::unknown_frame_type:
            return "unknown frame type";
        case protocol_errc::frame_too_large:
            return "frame too large";
        case protocol_errc::truncated:
            return "truncated payload";
        case protocol_errc::reserved_bits_set:
            return "reserved flag bits set";
        case protocol_errc::bad_extension:
            return "malformed extension area";
        case protocol_errc::unknown_critical_extension:
            return "unknown critical extension";
        case protocol_errc::path_too_long:
            return "path too long";
        case protocol_errc::bad_path:
            return "path is not valid UTF-8 or contains NUL";
        case protocol_errc::bad_name:
            return "invalid entry name";
        case protocol_errc::bad_text:
            return "invalid message text";
        case protocol_errc::range_overflow:
            return "offset plus length overflows a 63-bit file offset";
        case protocol_errc::bad_range:
            return "reply range lies outside the file";
        case protocol_errc::bad_status:
            return "status value not allowed here";
        case protocol_errc::bad_kind:
            return "unknown file kind";
        }
        return "unknown protocol error";
    }
};

} // namespace

const std::error_category& protocol_category() noexcept {
    static const category instance;
    return instance;
}

} // namespace ferry::protocol
