// http_response: one HTTP/1.1 response as ferry reads it, parsed by Beast's basic_parser
// without Beast's field container: the status line, the first value of each field ferry acts
// on, and (for a JSON listing) the body. A load test reads millions of heads; Beast's
// container allocated and indexed every field of each (a third of `ferry bench`'s time against
// nginx, docs/benchmarks.md), when ferry looks at nine of them.
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::client {

namespace bhttp = boost::beast::http;

class http_response final : public bhttp::basic_parser<false> {
public:
    /// The fields kept. Of a field sent more than once, the first value counts (as Beast's
    /// fields[] returns it); Content-Length and Connection are the parser's own
    /// (content_length(), keep_alive()), which refuses conflicting lengths.
    enum class field {
        etag,
        last_modified,
        date,
        content_range,
        content_type,
        location,
        retry_after,
        transfer_encoding,
        repr_digest,
    };
    static constexpr std::size_t field_count = 9;

    /// Keeps the status line's reason and the fields' values in `text` (cleared first), which
    /// the caller reuses from response to response: a parse allocates nothing once it is large
    /// enough. With `keep_body`, a body is kept in body() (its size bounded by body_limit()).
    explicit http_response(std::string& text, bool keep_body = false);

    unsigned status() const noexcept { return status_; }
    std::string_view reason() const noexcept { return view(reason_); }
    /// The field's first value; empty when absent (has() tells an empty value apart).
    std::string_view operator[](field f) const noexcept {
        return view(fields_[static_cast<std::size_t>(f)]);
    }
    bool has(field f) const noexcept { return fields_[static_cast<std::size_t>(f)].present; }
    const std::string& body() const noexcept { return body_; }

private:
    struct span {
        std::uint32_t offset = 0;
        std::uint32_t size = 0;
        bool present = false;
    };
    std::string_view view(span s) const noexcept { return {text_.data() + s.offset, s.size}; }
    span keep(std::string_view value);

    void on_request_impl(bhttp::verb, boost::beast::string_view, boost::beast::string_view, int,
                         boost::beast::error_code&) override {}
    void on_response_impl(int code, boost::beast::string_view reason, int version,
                          boost::beast::error_code& ec) override;
    void on_field_impl(bhttp::field name, boost::beast::string_view name_text, boost::beast::string_view value,
                       boost::beast::error_code& ec) override;
    void on_header_impl(boost::beast::error_code&) override {}
    void on_body_init_impl(const boost::optional<std::uint64_t>&,
                           boost::beast::error_code&) override {}
    std::size_t on_body_impl(boost::beast::string_view body, boost::beast::error_code& ec) override;
    void on_chunk_header_impl(std::uint64_t, boost::beast::string_view,
                              boost::beast::error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                                   boost::beast::error_code& ec) override;
    void on_finish_impl(boost::beast::error_code&) override {}

    std::string& text_;
    bool keep_body_;
    unsigned status_ = 0;
    span reason_;
    span fields_[field_count];
    std::string body_;
};

} // namespace ferry::client
