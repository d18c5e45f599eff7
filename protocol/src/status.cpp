#include "ferry/protocol/status.hpp"

namespace ferry::protocol {

std::string_view status_text(status s) noexcept {
    switch (s) {
    case status::ok:
        return "ok";
    case status::not_found:
        return "not found";
    case status::forbidden:
        return "forbidden";
    case status::not_regular_file:
        return "not a regular file";
    case status::bad_request:
        return "bad request";
    case status::range_not_satisfiable:
        return "range not satisfiable";
    case status::changed:
        return "changed";
    case status::busy:
        return "busy";
    case status::shutting_down:
        return "shutting down";
    case status::too_large:
        return "too large";
    case status::unsupported_version:
        return "unsupported version";
    case status::internal_error:
        return "internal error";
    }
    return "unknown status";
}

} // namespace ferry::protocol
