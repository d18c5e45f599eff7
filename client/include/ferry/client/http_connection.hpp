// http_connection: the connection operations over HTTP/1.1 against any server (nginx, ferryd's
// HTTP front): STAT is a HEAD, GET a GET with Range and If-Range, LIST a GET of the directory
// asking for JSON. Response heads are parsed by Beast's basic_parser into an http_response
// (bounded); file bodies are read straight from the socket into the caller's buffer, never past
// Content-Length (docs/client.md, HTTP).
#pragma once

#include "ferry/client/connection.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::client {

class http_response;

/// The fp::status a failed HTTP response maps to (404 not_found, 403 forbidden, 416
/// range_not_satisfiable, 503 busy ...), so that exit codes match the Ferry protocol's.
fp::status status_for_http(unsigned code) noexcept;

/// The file identity derived from a response's validators: SHA-256 of "etag " + a strong ETag,
/// else of "last-modified " + Last-Modified + " " + size. All zeros (unversioned) when there is
/// neither: such a file cannot be resumed or fetched in pieces that are known to match.
fp::file_identity http_identity(std::string_view etag, std::string_view last_modified,
                                std::uint64_t size);

class http_connection final : public connection {
public:
    /// `u` gives the Host header (its authority, without the port when it is 80).
    http_connection(socket_type socket, timeouts t, const url& u);

    /// HEAD (with `Want-Repr-Digest: sha-256=10` when want_sha256). 200: a regular file (size
    /// from Content-Length, mtime from Last-Modified, sha256 from Repr-Digest when offered);
    /// a redirect to the same path plus "/": a directory; another redirect (301, 302, 303, 307,
    /// 308): a failure of kind redirect, for the caller to follow or not (as from list and
    /// start_get). Other statuses: server failures. Interim (1xx) answers are skipped.
    asio::awaitable<failure> stat(const std::string& path, bool want_sha256,
                                  fp::stat_reply& out) override;
    /// GET PATH/ with `Accept: application/json`: the JSON array nginx's `autoindex_format
    /// json` and ferryd send, bounded (max_listing_size), in one batch. HTML is refused.
    asio::awaitable<failure> list(const std::string& path, list_sink sink) override;
    /// GET with `Range: bytes=A-B` (none for a whole file from 0) and `If-Range` when the
    /// request has if_identity. A 206 must carry exactly the range asked (clamped to the size);
    /// a 200 to a ranged request is `changed` when the validator differs, and is only taken
    /// when it answers a request from byte 0 that covers the whole body.
    asio::awaitable<failure> start_get(const fp::get_request& request,
                                       fp::get_header& out) override;
    /// Nothing to read (HTTP/1.1 has no trailer here); bytes past the body are a protocol
    /// failure. Leaves the connection reusable when the response allows keep-alive.
    asio::awaitable<failure> finish_get() override;
    void name_client(bool name) override {
        name_client_ = name;
        plain_get_.clear(); // made again, with or without
    }

    /// The largest head a response may have, and the largest listing body.
    static constexpr std::size_t max_head_size = 64 * 1024;
    /// The most interim (1xx) responses skipped before an answer.
    static constexpr unsigned max_interim = 8;
    static constexpr std::size_t max_listing_size = 64 << 20;

private:
    std::size_t take_buffered(std::span<std::byte> out) override;
    /// Sends what of `request` the socket buffer takes now (nearly always all of it: then no
    /// coroutine is needed) and returns the count; send_rest writes the rest within the stall
    /// timeout.
    std::size_t send_now(const std::string& request);
    asio::awaitable<failure> send_rest(const std::string& request, std::size_t sent);
    std::string request_head(std::string_view method, const std::string& target) const;
    /// Skips interim (1xx) responses (at most max_interim; a 101 is a protocol failure), then
    /// parses the answer into `p`.
    asio::awaitable<failure> read_response(http_response& p, bool whole);
    /// Feeds buffer_ to `p` until its head is parsed (with `whole`, its body too), reading
    /// more as needed; sets keep_alive_. A malformed or oversized head is a protocol failure.
    /// With `interim`: an interim (1xx) answer is left in buffer_ and *interim set.
    asio::awaitable<failure> parse(http_response& p, bool whole, bool* interim);
    /// start_get's end: the response head to `request`, checked into `out`.
    failure take_get_head(const http_response& head, const fp::get_request& request,
                          fp::get_header& out);

    url base_; ///< the server's scheme, host and port: what a redirect is resolved against
    std::string host_;
    boost::beast::flat_buffer buffer_;
    std::string head_text_; ///< the parsed response's reason and fields (http_response), reused
    bool keep_alive_ = true;     ///< the last response allows another request
    bool name_client_ = true;    ///< requests carry User-Agent
    std::string plain_get_path_; ///< the last plain GET (no Range), kept to be sent again
    std::string plain_get_;
    bool body_in_head_read_ = false; ///< the current body was whole in buffer_ after its head
};

} // namespace ferry::client
