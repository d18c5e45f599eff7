#include "ferry/client/http_response.hpp"

#include <boost/beast/core/string.hpp>
#include <utility>

namespace ferry::client {

namespace {

using kept_field = http_response::field;

/// The fields kept, by Beast's name for them.
constexpr std::pair<bhttp::field, kept_field> known[] = {
    {bhttp::field::etag, kept_field::etag},
    {bhttp::field::last_modified, kept_field::last_modified},
    {bhttp::field::date, kept_field::date},
    {bhttp::field::content_range, kept_field::content_range},
    {bhttp::field::content_type, kept_field::content_type},
    {bhttp::field::location, kept_field::location},
    {bhttp::field::retry_after, kept_field::retry_after},
    {bhttp::field::transfer_encoding, kept_field::transfer_encoding},
};

/// The index of the kept field a header is, or field_count.
std::size_t kept(bhttp::field name, boost::beast::string_view text) {
    if (name == bhttp::field::unknown) // RFC 9530 is younger than Beast's table
        return boost::beast::iequals(text, "Repr-Digest")
                   ? static_cast<std::size_t>(kept_field::repr_digest)
                   : http_response::field_count;
    for (const auto& [beast_name, field] : known)
        if (beast_name == name)
            return static_cast<std::size_t>(field);
    return http_response::field_count;
}

} // namespace

http_response::http_response(std::string& text, bool keep_body)
    : text_(text), keep_body_(keep_body) {
    text_.clear();
    // A body that is not kept is read by the caller, however large (a chunk of --chunk-size, a
    // whole file): Beast's default limit for responses, 8 MiB, would refuse its head.
    if (!keep_body)
        body_limit(boost::none);
}

http_response::span http_response::keep(std::string_view value) {
    // The head is bounded (header_limit, at most 64 KiB): offsets fit 32 bits.
    span s{static_cast<std::uint32_t>(text_.size()), static_cast<std::uint32_t>(value.size()),
           true};
    text_.append(value);
    return s;
}

void http_response::on_response_impl(int code, boost::beast::string_view reason, int,
                                     boost::beast::error_code&) {
    status_ = static_cast<unsigned>(code);
    reason_ = keep(reason);
}

void http_response::on_field_impl(bhttp::field name, boost::beast::string_view name_text,
                                  boost::beast::string_view value, boost::beast::error_code&) {
    if (const auto i = kept(name, name_text); i < field_count && !fields_[i].present)
        fields_[i] = keep(value);
}

std::size_t http_response::on_body_impl(boost::beast::string_view body,
                                        boost::beast::error_code&) {
    if (keep_body_)
        body_.append(body.data(), body.size());
    return body.size();
}

std::size_t http_response::on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                                              boost::beast::error_code& ec) {
    return on_body_impl(body, ec);
}

} // namespace ferry::client
