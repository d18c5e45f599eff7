// The HTTP/1.1 front over in-process socket pairs (docs/http.md): a table of malformed and
// hostile requests with the exact status each gets, files, ranges, conditionals, HEAD,
// keep-alive and pipelining, drain, Repr-Digest and listings.
#include "ferry/protocol/http.hpp"
#include "ferry/transport/sha256.hpp"
#include "support/session_harness.hpp"

#include <algorithm>
#include <ctime>
#include <fcntl.h>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ferry::test {
namespace {

namespace http = ferry::protocol::http;

/// One HTTP response as a raw-socket client reads it.
struct response {
    std::string status_line;
    int status = 0;
    std::multimap<std::string, std::string> fields; ///< names lower-cased
    std::string body;
    std::vector<std::size_t> chunks; ///< a chunked body: each chunk's size, in order

    std::string field(const std::string& name) const {
        const auto it = fields.find(name);
        return it == fields.end() ? std::string{"<absent>"} : it->second;
    }
    bool has(const std::string& name) const { return fields.count(name) > 0; }
};

/// A raw HTTP/1.1 client on a test_client's socket: sends bytes, reads responses (by their
/// Content-Length, as chunks, or to the connection's end), and tells how the connection ends.
class http_client {
public:
    explicit http_client(test_client c) : c_(std::move(c)) {}

    void send(const std::string& text) { c_.send_raw(std::as_bytes(std::span{text})); }

    /// The next response; `head`: the request was HEAD (or the answer a 304): no body. A body
    /// with neither Content-Length nor chunks is read until the connection ends (then `ended`
    /// tells how: "eof" for a body read whole).
    response read(bool head = false) {
        std::size_t end;
        while ((end = in_.find("\r\n\r\n")) == std::string::npos)
            fill();
        response r;
        const std::string head_text = in_.substr(0, end);
        in_.erase(0, end + 4);
        std::size_t at = head_text.find("\r\n");
        r.status_line = head_text.substr(0, at);
        r.status = std::stoi(r.status_line.substr(9, 3));
        while (at != std::string::npos) {
            const auto next = head_text.find("\r\n", at + 2);
            const auto line = head_text.substr(at + 2, next == std::string::npos ? std::string::npos
                                                                                 : next - at - 2);
            const auto colon = line.find(':');
            std::string name = line.substr(0, colon);
            for (auto& ch : name)
                ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            auto value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ')
                value.erase(0, 1);
            r.fields.emplace(name, value);
            at = next;
        }
        if (head || r.status == 304)
            return r;
        if (r.has("content-length")) {
            r.body = take(std::stoull(r.field("content-length")));
        } else if (r.field("transfer-encoding") == "chunked") {
            read_chunks(r);
        } else {
            ended = wait_ended();
            r.body = std::exchange(in_, {});
        }
        return r;
    }
    std::string ended; ///< how a body delimited by the connection's end ended

    /// Reads a chunked body strictly (RFC 9112 7.1: hex sizes without extensions, no trailer).
    void read_chunks(response& r) {
        for (;;) {
            std::size_t end;
            while ((end = in_.find("\r\n")) == std::string::npos)
                fill();
            const auto line = in_.substr(0, end);
            in_.erase(0, end + 2);
            ASSERT_FALSE(line.empty());
            ASSERT_EQ(line.find_first_not_of("0123456789abcdef"), std::string::npos) << line;
            const auto size = std::stoull(line, nullptr, 16);
            if (size == 0) {
                ASSERT_EQ(take(2), "\r\n"); // no trailer fields
                return;
            }
            r.chunks.push_back(size);
            r.body += take(size);
            ASSERT_EQ(take(2), "\r\n");
        }
    }

    /// Reads until the connection ends: "eof", "reset" or "timeout" (and nothing was left).
    std::string wait_ended() {
        try {
            for (;;)
                fill();
        } catch (const connection_ended& e) {
            return e.what();
        }
    }
    const std::string& leftover() const { return in_; }
    /// Exactly n more bytes (of a body being received).
    std::string take(std::size_t n) {
        while (in_.size() < n)
            fill();
        auto out = in_.substr(0, n);
        in_.erase(0, n);
        return out;
    }
    void set_receive_buffer(int size) { c_.set_receive_buffer(size); }

private:
    void fill() {
        pollfd p{c_.fd(), POLLIN, 0};
        if (::poll(&p, 1, 20000) <= 0)
            throw connection_ended("timeout");
        char buf[65536];
        const auto n = ::recv(c_.fd(), buf, sizeof buf, 0);
        if (n == 0)
            throw connection_ended("eof");
        if (n < 0)
            throw connection_ended(errno == ECONNRESET ? "reset" : std::strerror(errno));
        in_.append(buf, static_cast<std::size_t>(n));
    }

    test_client c_;
    std::string in_;
};

std::string get(const std::string& target, const std::string& fields = "") {
    return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + fields + "\r\n";
}

struct HttpTest : ::testing::Test {
    session_harness h;
    std::string data = make_content(100'000);

    void SetUp() override {
        write_file(h.root / "hello.txt", "hello\n");
        write_file(h.root / "data.bin", data);
        write_file(h.root / ".env", "secret");
        std::filesystem::create_directory(h.root / "sub");
        write_file(h.root / "sub" / "inner.txt", "inner");
        std::filesystem::create_directory(h.root / "sub" / "deeper");
    }
    http_client connect() { return http_client{h.connect()}; }
    /// One request on a new connection.
    response ask(const std::string& request, bool head = false) {
        auto c = connect();
        c.send(request);
        return c.read(head);
    }
};

// ---- the malformed and hostile: exact status, and the connection closes after it ---------

struct refusal_case {
    const char* name;
    std::string request;
    int status;
};

TEST_F(HttpTest, MalformedAndHostileRequestsGetTheirStatusAndClose) {
    h.start();
    const std::string long_target = "/" + std::string(9 * 1024, 'a');
    const std::string long_field = "X-Long: " + std::string(9 * 1024, 'b') + "\r\n";
    const refusal_case cases[] = {
        {"body by Content-Length (smuggling)", get("/hello.txt", "Content-Length: 5\r\n") + "hello",
         400},
        {"chunked body (smuggling)",
         get("/hello.txt", "Transfer-Encoding: chunked\r\n") + "0\r\n\r\n", 400},
        {"gzip and Content-Length",
         get("/hello.txt", "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n") + "abc", 400},
        {"chunked, gzip", get("/hello.txt", "Transfer-Encoding: chunked, gzip\r\n") + "x", 400},
        {"obs-fold", get("/hello.txt", "X-Folded: a\r\n b\r\n"), 400},
        {"two Hosts", get("/hello.txt", "Host: other\r\n"), 400},
        {"no Host in 1.1", "GET /hello.txt HTTP/1.1\r\n\r\n", 400},
        {"an invalid Host", "GET /hello.txt HTTP/1.1\r\nHost: a b/c\r\n\r\n", 400},
        {"HTTP/2.0", "GET /hello.txt HTTP/2.0\r\nHost: test\r\n\r\n", 505},
        {"HTTP/0.9-style", "GET /hello.txt\r\n\r\n", 400},
        {"garbage", "HELLO THERE\r\n\r\n", 400},
        {"a 9 KiB target", get(long_target), 414},
        {"a 9 KiB header field", get("/hello.txt", long_field), 431},
        {"an encoded slash", get("/sub%2Finner.txt"), 400},
        {"an encoded NUL", get("/hello.txt%00"), 400},
        {"an invalid escape", get("/%G1"), 400},
        {"a truncated escape", get("/hello%2"), 400},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto conn = connect();
        conn.send(c.request);
        const auto r = conn.read();
        EXPECT_EQ(r.status, c.status) << r.status_line;
        EXPECT_EQ(r.field("connection"), "close");
        EXPECT_EQ(r.field("content-type"), "text/plain; charset=utf-8");
        EXPECT_EQ(r.body.back(), '\n');
        EXPECT_EQ(r.body.find('\n'), r.body.size() - 1); // one line
        EXPECT_EQ(conn.wait_ended(), "eof");
    }
}

TEST_F(HttpTest, MethodsOtherThanGetAndHeadAre405WithAllow) {
    h.start();
    for (const std::string method : {"PUT", "POST", "DELETE", "OPTIONS", "PATCH", "TRACE"}) {
        SCOPED_TRACE(method);
        auto conn = connect();
        conn.send(method + " /hello.txt HTTP/1.1\r\nHost: test\r\n\r\n");
        const auto r = conn.read();
        EXPECT_EQ(r.status_line, "HTTP/1.1 405 Method Not Allowed");
        EXPECT_EQ(r.field("allow"), "GET, HEAD");
        EXPECT_EQ(r.field("connection"), "close");
        EXPECT_EQ(conn.wait_ended(), "eof");
    }
}

TEST_F(HttpTest, TheResolverDecidesAsForTheFerryProtocol) {
    h.start();
    struct path_case {
        std::string target;
        int status;
    };
    const path_case cases[] = {
        {"/../etc/passwd", 403},
        {"/%2e%2e/etc/passwd", 403},
        {"/%2e%2e/", 403},
        {"/sub/../../x", 403},
        {"/.env", 403},
        {"/sub/../.env", 403},
        {"/nope", 404},
        {"/sub/nope.txt", 404},
        {"/hello.txt/", 404},
        {"/sub/../hello.txt", 200},
        {"/hello.txt?x=1&y=../../z", 200},
        {"/%68ello.txt", 200},
        {"http://elsewhere.example/hello.txt", 200},
        {"/" + std::string(300, 'n'), 400}, // a segment longer than NAME_MAX
    };
    auto conn = connect(); // all on one connection: none of these closes it
    for (const auto& c : cases) {
        SCOPED_TRACE(c.target);
        conn.send(get(c.target));
        const auto r = conn.read();
        EXPECT_EQ(r.status, c.status) << r.status_line << " " << r.body;
        EXPECT_FALSE(r.has("connection"));
        if (c.status == 200) {
            EXPECT_EQ(r.body, "hello\n");
        }
    }
}

// ---- files ---------------------------------------------------------------------------------

TEST_F(HttpTest, AFileComesWithItsValidatorsAndTypeAndIdenticalBytes) {
    h.start();
    struct stat st {};
    ASSERT_EQ(::stat((h.root / "data.bin").c_str(), &st), 0);
    const auto r = ask(get("/data.bin"));
    EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
    EXPECT_EQ(r.body, data);
    EXPECT_EQ(r.field("content-length"), "100000");
    EXPECT_EQ(r.field("content-type"), "application/octet-stream");
    EXPECT_EQ(r.field("accept-ranges"), "bytes");
    EXPECT_EQ(r.field("server"), "ferryd/" FERRY_VERSION);
    EXPECT_EQ(r.field("last-modified"), http::format_http_date(st.st_mtim.tv_sec));
    EXPECT_EQ(r.field("etag"),
              fmt::format("\"{:x}-{:x}-{:x}\"", st.st_ino, st.st_size,
                          st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec));
    EXPECT_TRUE(http::parse_http_date(r.field("date")).has_value());
    EXPECT_FALSE(r.has("repr-digest")); // not computed yet, and not asked for

    const auto text = ask(get("/hello.txt"));
    EXPECT_EQ(text.field("content-type"), "text/plain; charset=utf-8");
    EXPECT_EQ(text.body, "hello\n");
}

TEST_F(HttpTest, AFileThatShrinksWhileSentCutsTheConnection) {
    const std::size_t size = 32 << 20;
    const auto content = make_content(size, 7);
    write_file(h.root / "big", content);
    h.start();
    auto conn = connect();
    conn.set_receive_buffer(64 * 1024);
    conn.send(get("/big"));
    const auto head = conn.read(true);
    ASSERT_EQ(head.field("content-length"), std::to_string(size));
    auto body = conn.take(1 << 20);
    ASSERT_EQ(::truncate((h.root / "big").c_str(), 2 << 20), 0);
    conn.wait_ended();
    body += conn.leftover();
    // What the file had, never padding, and the connection ends short of Content-Length.
    EXPECT_LE(body.size(), std::size_t{2} << 20);
    EXPECT_TRUE(body == content.substr(0, body.size()));
    EXPECT_EQ(h.sessions(), 0U);
}

TEST_F(HttpTest, ASmallFileIsServedFromMemoryOnlyInTheVersionThatWasRead) {
    h.small_file_settle = std::chrono::nanoseconds{0}; // kept at once, not after a second
    const std::string first = "the first version of the file\n";
    const std::string second = "THE SECOND VERSION OF THE FILE\n";
    ASSERT_EQ(first.size() + 1, second.size());
    write_file(h.root / "small.txt", first + "!");
    h.start();
    auto conn = connect();
    conn.send(get("/small.txt"));
    EXPECT_EQ(conn.read().body, first + "!");
    EXPECT_EQ(h.small_files().size_in_bytes(), fs::small_file_cache::cost(first + "!")); // kept
    conn.send(get("/small.txt", "Range: bytes=4-8\r\n"));         // a slice of what is kept
    const auto slice = conn.read();
    EXPECT_EQ(slice.status, 206);
    EXPECT_EQ(slice.body, "first");

    // Rewritten in place with the same size and its old mtime put back: only the ctime tells,
    // and the new bytes are served.
    struct stat before {};
    ASSERT_EQ(::stat((h.root / "small.txt").c_str(), &before), 0);
    write_file(h.root / "small.txt", second);
    const struct timespec times[2] = {before.st_atim, before.st_mtim};
    ASSERT_EQ(::utimensat(AT_FDCWD, (h.root / "small.txt").c_str(), times, 0), 0);
    conn.send(get("/small.txt"));
    EXPECT_EQ(conn.read().body, second);

    // Replaced by another file (a new inode) of the same size: the new bytes.
    write_file(h.root / "other.txt", first + "?");
    std::filesystem::rename(h.root / "other.txt", h.root / "small.txt");
    conn.send(get("/small.txt"));
    EXPECT_EQ(conn.read().body, first + "?");
    // Its path is resolved every time: removed, it is gone, whatever is kept.
    std::filesystem::remove(h.root / "small.txt");
    conn.send(get("/small.txt"));
    EXPECT_EQ(conn.read().status, 404);
}

TEST_F(HttpTest, HeadSendsTheSameHeadWithoutABody) {
    h.start();
    auto conn = connect();
    conn.send("HEAD /data.bin HTTP/1.1\r\nHost: test\r\n\r\n");
    const auto r = conn.read(true);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.field("content-length"), "100000");
    // The next answer starts right after the head: no body bytes came in between.
    conn.send(get("/hello.txt"));
    EXPECT_EQ(conn.read().body, "hello\n");
}

TEST_F(HttpTest, ASingleRangeIsThatSliceOfTheFile) {
    h.start();
    const auto r = ask(get("/data.bin", "Range: bytes=1000-20999\r\n"));
    EXPECT_EQ(r.status_line, "HTTP/1.1 206 Partial Content");
    EXPECT_EQ(r.field("content-range"), "bytes 1000-20999/100000");
    EXPECT_EQ(r.body, data.substr(1000, 20000));
    const auto suffix = ask(get("/data.bin", "Range: bytes=-10\r\n"));
    EXPECT_EQ(suffix.status, 206);
    EXPECT_EQ(suffix.body, data.substr(99990));
    const auto small = ask(get("/data.bin", "Range: bytes=5-9\r\n"));
    EXPECT_EQ(small.body, data.substr(5, 5));
}

TEST_F(HttpTest, SeveralRangesAreAMultipartBodyWhosePartsAreTheSlices) {
    h.start();
    const auto r = ask(get("/data.bin", "Range: bytes=0-9,50000-69999,-5\r\n"));
    EXPECT_EQ(r.status, 206);
    const auto type = r.field("content-type");
    const std::string prefix = "multipart/byteranges; boundary=";
    ASSERT_EQ(type.rfind(prefix, 0), 0U) << type;
    const auto boundary = type.substr(prefix.size());
    std::string expected;
    for (auto [first, last] :
         {std::pair<std::size_t, std::size_t>{0, 9}, {50000, 69999}, {99995, 99999}})
        expected += "\r\n--" + boundary +
                    "\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes " +
                    std::to_string(first) + "-" + std::to_string(last) + "/100000\r\n\r\n" +
                    data.substr(first, last - first + 1);
    expected += "\r\n--" + boundary + "--\r\n";
    EXPECT_EQ(r.body, expected); // and Content-Length was right, or read() would not be here
}

TEST_F(HttpTest, UnsatisfiableRangesAre416AndInvalidOnesAreIgnored) {
    h.start();
    auto conn = connect();
    conn.send(get("/data.bin", "Range: bytes=100000-\r\n"));
    const auto r = conn.read();
    EXPECT_EQ(r.status_line, "HTTP/1.1 416 Range Not Satisfiable");
    EXPECT_EQ(r.field("content-range"), "bytes */100000");
    conn.send(get("/data.bin", "Range: bytes=abc\r\n")); // the connection goes on
    const auto ignored = conn.read();
    EXPECT_EQ(ignored.status, 200);
    EXPECT_EQ(ignored.body, data);
}

TEST_F(HttpTest, IfRangeThatNoLongerHoldsGetsTheWholeFile) {
    h.start();
    const auto etag = ask(get("/hello.txt")).field("etag");
    const auto fresh =
        ask(get("/data.bin",
                "Range: bytes=0-0\r\nIf-Range: " + ask(get("/data.bin")).field("etag") + "\r\n"));
    EXPECT_EQ(fresh.status, 206);
    const auto stale = ask(get("/data.bin", "Range: bytes=0-0\r\nIf-Range: " + etag + "\r\n"));
    EXPECT_EQ(stale.status, 200);
    EXPECT_EQ(stale.body, data);
}

TEST_F(HttpTest, IfRangeByDateHoldsOnlyForAFileUnchangedForASecond) {
    const auto set_mtime = [&](const char* name, std::time_t when) {
        const timespec times[2] = {{0, UTIME_OMIT}, {when, 0}};
        ASSERT_EQ(::utimensat(AT_FDCWD, (h.root / name).c_str(), times, 0), 0);
    };
    write_file(h.root / "old.bin", data);
    set_mtime("old.bin", 784111777);
    // Changed "now" (a future mtime stands for it without racing the clock): within its second
    // a date cannot tell two versions apart.
    write_file(h.root / "new.bin", data);
    set_mtime("new.bin", std::time(nullptr) + 3600);
    h.start();
    const auto settled = ask(get("/old.bin", "Range: bytes=0-0\r\nIf-Range: Sun, 06 Nov 1994 "
                                             "08:49:37 GMT\r\n"));
    EXPECT_EQ(settled.status, 206);
    EXPECT_EQ(settled.body, data.substr(0, 1));
    const auto date = ask(get("/new.bin")).field("last-modified");
    const auto fresh = ask(get("/new.bin", "Range: bytes=0-0\r\nIf-Range: " + date + "\r\n"));
    EXPECT_EQ(fresh.status, 200);
    EXPECT_EQ(fresh.body, data);
}

TEST_F(HttpTest, ConditionalsGive304And412) {
    h.start();
    const auto first = ask(get("/hello.txt"));
    auto conn = connect();
    conn.send(get("/hello.txt", "If-None-Match: " + first.field("etag") + "\r\n"));
    const auto not_modified = conn.read();
    EXPECT_EQ(not_modified.status_line, "HTTP/1.1 304 Not Modified");
    EXPECT_EQ(not_modified.field("etag"), first.field("etag"));
    EXPECT_EQ(not_modified.field("last-modified"), first.field("last-modified"));
    EXPECT_FALSE(not_modified.has("content-length"));
    conn.send(get("/hello.txt", "If-Modified-Since: " + first.field("last-modified") + "\r\n"));
    EXPECT_EQ(conn.read().status, 304);
    conn.send(get("/hello.txt", "If-Match: \"something-else\"\r\n"));
    EXPECT_EQ(conn.read().status_line, "HTTP/1.1 412 Precondition Failed");
    conn.send(get("/hello.txt", "If-Match: " + first.field("etag") + "\r\n"));
    EXPECT_EQ(conn.read().body, "hello\n");
}

TEST_F(HttpTest, ReprDigestIsTheFilesSha256WhenAskedForAndThenWhenCached) {
    h.start();
    const int fd = ::open((h.root / "data.bin").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const auto expected = http::format_repr_digest(transport::sha256_of(fd, data.size()).digest);
    ::close(fd);
    const auto asked = ask(get("/data.bin", "Want-Repr-Digest: sha-256=1\r\n"));
    EXPECT_EQ(asked.field("repr-digest"), expected);
    EXPECT_EQ(asked.body, data);
    // Cached now: every answer carries it, a 206 too (the digest of the whole file).
    const auto range = ask(get("/data.bin", "Range: bytes=0-9\r\n"));
    EXPECT_EQ(range.status, 206);
    EXPECT_EQ(range.field("repr-digest"), expected);
    const auto head = ask("HEAD /data.bin HTTP/1.1\r\nHost: test\r\n\r\n", true);
    EXPECT_EQ(head.field("repr-digest"), expected);
}

// ---- connections ---------------------------------------------------------------------------

TEST_F(HttpTest, PipelinedRequestsAreAnsweredInOrder) {
    h.start();
    auto conn = connect();
    conn.send(get("/data.bin") + get("/hello.txt") + "HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n" +
              get("/data.bin", "Range: bytes=7-8\r\n"));
    EXPECT_EQ(conn.read().body, data);
    EXPECT_EQ(conn.read().body, "hello\n");
    EXPECT_EQ(conn.read(true).field("content-length"), "6");
    EXPECT_EQ(conn.read().body, data.substr(7, 2));
    conn.send(get("/hello.txt")); // and the connection is still usable after a pause
    EXPECT_EQ(conn.read().body, "hello\n");
}

TEST_F(HttpTest, ConnectionCloseAndHttp10CloseAfterTheAnswer) {
    h.start();
    {
        auto conn = connect();
        conn.send(get("/hello.txt", "Connection: close\r\n") + get("/hello.txt"));
        const auto r = conn.read();
        EXPECT_EQ(r.field("connection"), "close");
        EXPECT_EQ(r.body, "hello\n");
        EXPECT_EQ(conn.wait_ended(), "eof"); // the second request is not answered
        EXPECT_EQ(conn.leftover(), "");
    }
    {
        auto conn = connect();
        conn.send("GET /hello.txt HTTP/1.0\r\n\r\n"); // 1.0 needs no Host
        const auto r = conn.read();
        EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
        EXPECT_EQ(r.field("connection"), "close");
        EXPECT_EQ(conn.wait_ended(), "eof");
    }
    {
        auto conn = connect();
        conn.send("GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        EXPECT_EQ(conn.read().field("connection"), "keep-alive");
        conn.send("GET /hello.txt HTTP/1.0\r\n\r\n");
        EXPECT_EQ(conn.read().body, "hello\n");
        EXPECT_EQ(conn.wait_ended(), "eof");
    }
}

TEST_F(HttpTest, AHeadThatDoesNotArriveWholeInTheRequestTimeoutCloses) {
    h.config.request_timeout = std::chrono::milliseconds(300);
    h.start();
    auto conn = connect();
    conn.send(get("/hello.txt")); // a first request: the slow head is the second
    EXPECT_EQ(conn.read().body, "hello\n");
    conn.send("GET /hello.txt HTTP/1.1\r\nHost: te"); // ... and never the rest
    EXPECT_EQ(conn.wait_ended(), "eof");
    EXPECT_EQ(conn.leftover(), ""); // closed without an answer
}

TEST_F(HttpTest, AnEmptyBodyByContentLengthZeroIsNoBody) {
    h.start();
    auto conn = connect();
    conn.send(get("/hello.txt", "Content-Length: 0\r\n") + get("/hello.txt"));
    EXPECT_EQ(conn.read().body, "hello\n");
    EXPECT_EQ(conn.read().body, "hello\n");
}

/// As the Ferry front: a connection that exists is answered while draining (the next segments
/// of a download, which could not reconnect), and closes once idle for the drain's idle timeout.
TEST_F(HttpTest, WhileDrainingAConnectionIsAnsweredUntilIdle) {
    h.start();
    auto conn = connect();
    conn.send(get("/hello.txt"));
    EXPECT_FALSE(conn.read().has("connection"));
    h.on_server([&] { h.registry().drain(std::chrono::milliseconds(5000)); });
    for (int i = 0; i < 2; ++i) {
        conn.send(get("/hello.txt"));
        const auto r = conn.read();
        EXPECT_FALSE(r.has("connection"));
        EXPECT_EQ(r.body, "hello\n");
    }
    EXPECT_EQ(conn.wait_ended(), "eof"); // idle: closed after the drain's idle timeout (1 s)
    EXPECT_EQ(conn.leftover(), "");
}

TEST_F(HttpTest, TheFerryProtocolStillWorksBesideIt) {
    h.start();
    auto ferry = h.connect();
    EXPECT_EQ(ferry.get("hello.txt").body, "hello\n");
    EXPECT_EQ(ask(get("/hello.txt")).body, "hello\n");
}

// ---- directories ---------------------------------------------------------------------------

TEST_F(HttpTest, ADirectoryWithoutItsSlashRedirects) {
    h.start();
    auto conn = connect();
    conn.send(get("/sub?q=1"));
    const auto r = conn.read();
    EXPECT_EQ(r.status_line, "HTTP/1.1 301 Moved Permanently");
    EXPECT_EQ(r.field("location"), "/sub/");
    // A target that starts with "//" never makes a Location naming another host.
    conn.send(get("//sub"));
    const auto twice = conn.read();
    EXPECT_EQ(twice.status, 301);
    EXPECT_EQ(twice.field("location").rfind("//", 0), std::string::npos) << twice.field("location");
}

TEST_F(HttpTest, AJsonListingIsNginxsFormat) {
    write_file(h.root / "sub" / "<b>&\"x.txt", "12345");
    write_file(h.root / "sub" / ".hidden", "h");
    h.start();
    const auto r = ask(get("/sub/", "Accept: application/json\r\n"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.field("content-type"), "application/json");
    const auto j = nlohmann::json::parse(r.body);
    ASSERT_EQ(j.size(), 3U); // no dotfile
    EXPECT_EQ(j[0]["name"], "deeper");
    EXPECT_EQ(j[0]["type"], "directory");
    EXPECT_FALSE(j[0].contains("size"));
    EXPECT_EQ(j[1]["name"], "<b>&\"x.txt");
    EXPECT_EQ(j[1]["type"], "file");
    EXPECT_EQ(j[1]["size"], 5);
    EXPECT_EQ(j[2]["name"], "inner.txt");
    struct stat st {};
    ASSERT_EQ(::stat((h.root / "sub" / "inner.txt").c_str(), &st), 0);
    EXPECT_EQ(j[2]["mtime"], http::format_http_date(st.st_mtim.tv_sec));
}

TEST_F(HttpTest, AnHtmlListingEscapesNamesAndEncodesLinks) {
    write_file(h.root / "sub" / "<b>&\"x.txt", "12345");
    h.start();
    const auto r = ask(get("/sub/"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.field("content-type"), "text/html; charset=utf-8");
    EXPECT_NE(r.body.find("<meta charset=utf-8>"), std::string::npos);
    EXPECT_NE(r.body.find("<a href=\"../\">"), std::string::npos);
    EXPECT_NE(r.body.find("&lt;b&gt;&amp;&quot;x.txt</a>"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("href=\"./%3Cb%3E%26%22x.txt\""), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("<b>"), std::string::npos);
    EXPECT_EQ(r.body.find("<script"), std::string::npos);
    EXPECT_NE(r.body.find("title=\"5 bytes\""), std::string::npos);
    // Directories first, then by name.
    EXPECT_LT(r.body.find("deeper/"), r.body.find("x.txt"));
    EXPECT_LT(r.body.find("x.txt"), r.body.find("inner.txt"));
    const auto root = ask(get("/"));
    EXPECT_EQ(root.body.find("href=\"../\""), std::string::npos); // none at the root
    EXPECT_NE(root.body.find("href=\"./sub/\""), std::string::npos);
}

// ---- large listings: streamed, bounded, capped ------------------------------------------------

/// One entry of a directory the tests make: plain ASCII names, so the expected page needs no
/// escaping.
struct made_entry {
    std::string name;
    bool dir = false;
    std::uint64_t size = 0;
    std::int64_t mtime = 0; ///< seconds
};

/// Makes `files` files (names of varied length, `name_pad` more characters each, sizes under
/// 1 KiB, distinct fixed mtimes) and `dirs` directories in `dir`, created in no sorted order;
/// returns them sorted as a listing shows them: directories first, then by name.
std::vector<made_entry> make_directory(const std::filesystem::path& dir, int files, int dirs,
                                       std::size_t name_pad = 0) {
    std::filesystem::create_directory(dir);
    std::vector<made_entry> made;
    for (int i = 0; i < files; ++i) {
        const int n = (i * 7919) % files; // a permutation: not created in order
        made_entry e{"f" + std::to_string(n) +
                         std::string(static_cast<std::size_t>(n % 13) + name_pad, 'x') + ".dat",
                     false, static_cast<std::uint64_t>(n % 1000), 1'600'000'000 + n};
        write_file(dir / e.name, std::string(e.size, 'a'));
        made.push_back(std::move(e));
    }
    for (int i = 0; i < dirs; ++i) {
        made_entry e{"D" + std::to_string(dirs - i), true, 0, 1'500'000'000 + i};
        std::filesystem::create_directory(dir / e.name);
        made.push_back(std::move(e));
    }
    for (const auto& e : made) {
        const timespec times[2] = {{e.mtime, 0}, {e.mtime, 0}};
        EXPECT_EQ(::utimensat(AT_FDCWD, (dir / e.name).c_str(), times, 0), 0);
    }
    std::sort(made.begin(), made.end(), [](const auto& a, const auto& b) {
        return a.dir != b.dir ? a.dir : a.name < b.name;
    });
    return made;
}

/// The HTML page of a listing of /`path`/ with `entries`, written out here on its own: the exact
/// bytes a client gets.
std::string expected_html(const std::string& path, const std::vector<made_entry>& entries) {
    std::string page =
        "<!DOCTYPE html>\n<html><head><meta charset=utf-8><meta name=viewport "
        "content=\"width=device-width\"><title>Index of /" +
        path +
        "/</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse}td,th{padding:.2em 1em;text-align:left}"
        "td.s,th.s{text-align:right}tr:nth-child(even){background:#f4f4f4}"
        "a{text-decoration:none}a:hover{text-decoration:underline}</style></head><body>\n"
        "<h1>Index of /" +
        path +
        "/</h1>\n<table>\n<thead><tr><th>Name</th><th class=s>Size</th>"
        "<th>Modified</th></tr></thead>\n<tbody>\n"
        "<tr><td><a href=\"../\">../</a></td><td class=s></td><td></td></tr>\n";
    for (const auto& e : entries) {
        const auto date = http::format_http_date(e.mtime);
        if (e.dir)
            page += "<tr><td><a href=\"./" + e.name + "/\">" + e.name +
                    "/</a></td><td class=s></td><td>" + date + "</td></tr>\n";
        else
            page += "<tr><td><a href=\"./" + e.name + "\">" + e.name +
                    "</a></td><td class=s title=\"" + std::to_string(e.size) + " bytes\">" +
                    std::to_string(e.size) + " B</td><td>" + date + "</td></tr>\n";
    }
    return page + "</tbody>\n</table>\n</body></html>\n";
}

/// nginx's autoindex JSON of `entries`, as nlohmann dumps it.
std::string expected_json(const std::vector<made_entry>& entries) {
    auto array = nlohmann::ordered_json::array();
    for (const auto& e : entries) {
        nlohmann::ordered_json j{{"name", e.name},
                                 {"type", e.dir ? "directory" : "file"},
                                 {"mtime", http::format_http_date(e.mtime)}};
        if (!e.dir)
            j["size"] = e.size;
        array.push_back(std::move(j));
    }
    return array.dump();
}

/// The bound on one chunk of a listing: a 64 KiB piece plus the one row that crossed it.
constexpr std::size_t max_listing_chunk = 64 * 1024 + 1024;

TEST_F(HttpTest, ALargeListingArrivesChunkedInBoundedPiecesByteIdenticalAndSorted) {
    const auto entries = make_directory(h.root / "big", 3000, 20);
    h.start();
    auto conn = connect();
    conn.send(get("/big/") + get("/big/", "Accept: application/json\r\n") + get("/hello.txt"));
    for (const auto& [r, expected] : {std::pair{conn.read(), expected_html("big", entries)},
                                      std::pair{conn.read(), expected_json(entries)}}) {
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.field("transfer-encoding"), "chunked");
        EXPECT_FALSE(r.has("content-length"));
        EXPECT_FALSE(r.has("connection"));
        EXPECT_TRUE(r.body == expected) << r.body.size() << " bytes, expected " << expected.size();
        EXPECT_GE(r.chunks.size(), 4U); // never the whole body in one piece
        for (const auto n : r.chunks)
            EXPECT_LE(n, max_listing_chunk);
    }
    EXPECT_EQ(conn.read().body, "hello\n"); // the connection goes on after the last chunk
}

TEST_F(HttpTest, AnHttp10ListingEndsWithTheConnection) {
    const auto entries = make_directory(h.root / "big", 1000, 5);
    h.start();
    auto conn = connect();
    // Even asked to keep the connection: a body without length ends with it.
    conn.send("GET /big/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + get("/hello.txt"));
    const auto r = conn.read();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.field("connection"), "close");
    EXPECT_FALSE(r.has("content-length"));
    EXPECT_FALSE(r.has("transfer-encoding"));
    EXPECT_EQ(conn.ended, "eof"); // a close, not a reset: the body is whole
    EXPECT_TRUE(r.body == expected_html("big", entries)) << r.body.size();
}

TEST_F(HttpTest, AHeadOfADirectoryReadsNothingYetAnswersAsAGetWould) {
    make_directory(h.root / "big", 100, 2);
    h.config.max_listings = 1;
    h.start();
    auto conn = connect();
    response get_head;
    {
        // The one listing slot is taken: a GET must wait, but a HEAD reads nothing, so needs none.
        const auto taken = h.listings().try_acquire(asio::ip::make_address("192.0.2.1"));
        ASSERT_TRUE(taken);
        conn.send(get("/big/") + "HEAD /big/ HTTP/1.1\r\nHost: test\r\n\r\n");
        EXPECT_EQ(conn.read().status, 503);
        get_head = conn.read(true);
        EXPECT_EQ(get_head.status, 200);
        EXPECT_EQ(get_head.field("transfer-encoding"), "chunked");
        EXPECT_FALSE(get_head.has("content-length"));
        // The next answer starts right after the head: no body bytes came in between.
        conn.send(get("/hello.txt"));
        EXPECT_EQ(conn.read().body, "hello\n");
    }
    conn.send(get("/big/"));
    auto full = conn.read();
    EXPECT_EQ(full.status, 200);
    get_head.fields.erase("date");
    full.fields.erase("date");
    EXPECT_EQ(get_head.fields, full.fields); // the same head as the GET's
    // HTTP/1.0: the head says what the GET's says (Connection: close), and closes.
    auto old = connect();
    old.send("HEAD /big/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const auto r10 = old.read(true);
    EXPECT_EQ(r10.status, 200);
    EXPECT_EQ(r10.field("connection"), "close");
    EXPECT_FALSE(r10.has("transfer-encoding"));
    EXPECT_EQ(old.wait_ended(), "eof");
    EXPECT_EQ(old.leftover(), "");
}

TEST_F(HttpTest, OverTheListingCapHttpAndFerryListingsAreBusyAndTheConnectionGoesOn) {
    h.config.max_listings = 1;
    h.start();
    auto conn = connect();
    auto ferry = h.connect();
    {
        const auto taken = h.listings().try_acquire(asio::ip::make_address("192.0.2.1"));
        conn.send(get("/sub/") + get("/hello.txt"));
        const auto r = conn.read();
        EXPECT_EQ(r.status, 503);
        EXPECT_EQ(r.field("retry-after"), "1");
        EXPECT_FALSE(r.has("connection"));
        EXPECT_EQ(conn.read().body, "hello\n");
        // The Ferry protocol's LIST shares the cap: ERROR busy, the connection kept.
        ferry.send(fp::list_request{"sub"});
        const auto e = ferry.read_error();
        EXPECT_EQ(e.code, fp::status::busy);
        EXPECT_FALSE(e.closing);
        EXPECT_EQ(e.retry_after_ms, 1000U);
        EXPECT_EQ(ferry.get("hello.txt").body, "hello\n");
    }
    // The slot is free again: a listing is served, and frees it when it ends.
    conn.send(get("/sub/") + get("/hello.txt"));
    EXPECT_EQ(conn.read().status, 200);
    EXPECT_EQ(conn.read().body, "hello\n"); // answered after the listing had ended
    EXPECT_EQ(h.listings().active(), 0U);
    ferry.send(fp::list_request{"sub"});
    ferry.send(fp::get_request{"hello.txt", 0, fp::to_end, std::nullopt});
    for (;;) {
        auto d = ferry.read_frame();
        if (auto* end = std::get_if<fp::list_end>(&d.message)) {
            EXPECT_EQ(end->code, fp::status::ok);
            break;
        }
        ASSERT_TRUE(std::holds_alternative<fp::list_entries>(d.message));
    }
    EXPECT_EQ(ferry.read_get().body, "hello\n");
    EXPECT_EQ(h.listings().active(), 0U);
}

TEST_F(HttpTest, AListingWhoseClientLeavesMidwayFreesItsSlot) {
    // Long names: a body of megabytes, more than the socket holds, so the server must wait.
    make_directory(h.root / "big", 4000, 0, 200);
    h.config.max_listings = 1;
    h.start();
    std::optional<http_client> stalled{connect()};
    stalled->set_receive_buffer(16 * 1024);
    stalled->send(get("/big/"));
    EXPECT_EQ(stalled->read(true).status, 200); // its head: the listing has its slot
    EXPECT_EQ(h.listings().active(), 1U);
    auto other = connect();
    other.send(get("/sub/"));
    EXPECT_EQ(other.read().status, 503);
    stalled.reset(); // the client goes away without reading on
    // Bounded wait for the server to see the close (its pending write fails).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (h.listings().active() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10)); // polling a condition
    EXPECT_EQ(h.listings().active(), 0U);
    other.send(get("/sub/"));
    EXPECT_EQ(other.read().status, 200);
}

TEST_F(HttpTest, AListingToAReaderThatStallsIsCutAfterTheProgressTimeout) {
    make_directory(h.root / "big", 4000, 0, 200);
    h.config.progress_timeout = std::chrono::milliseconds(300);
    h.start();
    auto stalled = connect();
    stalled.set_receive_buffer(16 * 1024);
    stalled.send(get("/big/"));
    EXPECT_EQ(stalled.read(true).status, 200);
    // Bounded wait for the progress timeout to end the listing, reading nothing meanwhile.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (h.listings().active() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10)); // polling a condition
    EXPECT_EQ(h.listings().active(), 0U);
    stalled.wait_ended();
    // Cut short: what was queued, never the last chunk.
    EXPECT_LT(stalled.leftover().size(), 1'000'000U);
    EXPECT_FALSE(stalled.leftover().ends_with("\r\n0\r\n\r\n"));
}

TEST_F(HttpTest, WhileDrainingAListingIsAnsweredWholeAndTheConnectionGoesOnUntilIdle) {
    const auto entries = make_directory(h.root / "big", 1000, 5);
    h.start();
    auto conn = connect();
    h.on_server([&] { h.registry().drain(std::chrono::milliseconds(5000)); });
    conn.send(get("/big/") + get("/hello.txt"));
    const auto r = conn.read();
    EXPECT_FALSE(r.has("connection"));
    EXPECT_EQ(r.field("transfer-encoding"), "chunked");
    EXPECT_TRUE(r.body == expected_html("big", entries));
    EXPECT_EQ(conn.read().body, "hello\n"); // the pipelined request is answered too
    EXPECT_EQ(conn.wait_ended(), "eof");     // then idle: closed after the drain's idle timeout
    EXPECT_EQ(conn.leftover(), "");
}

} // namespace
} // namespace ferry::test
