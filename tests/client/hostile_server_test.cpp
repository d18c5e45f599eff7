// The real ferry binary against servers that lie: a scripted fake_server (hostile texts and
// names, impossible sizes, a digest that never comes) and a real ferryd that trickles
// (label: integration).
#include "client/fake_http_server.hpp"
#include "client/fake_server.hpp"
#include "support/process.hpp"

#include <algorithm>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ferry::test {
namespace {

/// A name and a text no terminal should see raw: clear screen, line breaks, a C1 CSI.
const std::string hostile = "evil\x1b[2J\nforged line\r\xC2\x9B"
                            "31mred\x07";

struct split_result {
    int code = -1;
    std::string out; ///< standard output
    std::string err; ///< standard error
};

/// Runs ferry with `args` in `cwd`, standard output and standard error apart.
split_result ferry_split(const std::filesystem::path& cwd, std::vector<std::string> args) {
    temp_dir capture;
    std::vector<std::string> argv{"/bin/sh",
                                  "-c",
                                  "err=$0; cd \"$1\" && shift && exec \"$@\" 2>\"$err\"",
                                  (capture / "err").string(),
                                  cwd.string(),
                                  bin("ferry")};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv, std::chrono::seconds(120));
    return {r.code, r.output,
            std::filesystem::exists(capture / "err") ? read_file(capture / "err") : ""};
}

/// No control character but the line ends, no ESC, no C1 control (as UTF-8 or as a byte).
void expect_terminal_safe(const std::string& text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        ASSERT_TRUE(c >= 0x20 || c == '\n') << "byte " << int{c} << " at " << i << " in: " << text;
        ASSERT_NE(c, 0x7F) << text;
        ASSERT_FALSE(c == 0xC2 && i + 1 < text.size() &&
                     static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                     static_cast<unsigned char>(text[i + 1]) <= 0x9F)
            << text;
    }
    // "forged line" never starts a line of its own.
    EXPECT_EQ(text.find("\nforged line"), std::string::npos) << text;
}

bool empty_dir(const std::filesystem::path& d) {
    return std::filesystem::is_empty(d);
}

bytes error_frame(fp::status code, const std::string& text) {
    return encode_exact(fp::error_reply{code, false, 0, text});
}

fp::stat_reply regular(std::uint64_t size, bool with_sha) {
    fp::stat_reply st;
    st.kind = fp::file_kind::regular;
    st.identity[0] = std::byte{7};
    st.size = size;
    if (with_sha)
        st.sha256 = fp::sha256_digest{};
    return st;
}

/// GET_HEADER (claiming `size`), the body (zeros) and an ok trailer for `request`.
bytes get_reply(const fp::get_request& request, std::uint64_t size, std::uint64_t real_size) {
    const std::uint64_t length = std::min(request.length, real_size - request.offset);
    fp::get_header h;
    h.identity[0] = std::byte{7};
    h.size = size;
    h.offset = request.offset;
    h.length = length;
    return concat({encode_exact(h), bytes(length), encode_exact(fp::get_trailer{})});
}

struct HostileServer : ::testing::Test {
    temp_dir work;
};

TEST_F(HostileServer, ErrorTextsNeverReachTheTerminalRawAndJsonKeepsThem) {
    fake_server server{
        [](const any_message&) { return error_frame(fp::status::forbidden, hostile); }};
    for (const auto& command : {"get", "stat", "ls"}) {
        SCOPED_TRACE(command);
        auto r = ferry_split(work.path(), {command, server.url("a%0Ab%1B[2Jc")});
        EXPECT_EQ(r.code, 4) << r.err;
        expect_terminal_safe(r.out);
        expect_terminal_safe(r.err);
        EXPECT_NE(r.err.find("evil\\x1b[2J\\nforged line\\r"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("a\\nb\\x1b[2Jc"), std::string::npos) << r.err; // the URL's path
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err; // one line
    }
    auto r = ferry_split(work.path(), {"get", "--json", server.url("x")});
    EXPECT_EQ(r.code, 4);
    expect_terminal_safe(r.err);
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at(0).at("error").get<std::string>(), hostile); // exact
    EXPECT_TRUE(empty_dir(work.path()));
}

TEST_F(HostileServer, ListedNamesAreEscapedOneLineEachAndExactInJson) {
    fake_server server{[](const any_message& m) -> bytes {
        if (!std::holds_alternative<fp::list_request>(m))
            return error_frame(fp::status::bad_request, "no");
        fp::list_entries batch;
        batch.entries = {{hostile, fp::file_kind::regular, 5, 0},
                         {"plain", fp::file_kind::directory, 0, 0}};
        return concat({encode_exact(batch), encode_exact(fp::list_end{fp::status::ok, 2})});
    }};
    auto r = ferry_split(work.path(), {"ls", server.url("")});
    ASSERT_EQ(r.code, 0) << r.err;
    expect_terminal_safe(r.out);
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
    EXPECT_NE(r.out.find("evil\\x1b[2J\\nforged line\\r\\u{9b}31mred\\x07"), std::string::npos)
        << r.out;
    auto j = ferry_split(work.path(), {"ls", "--json", server.url("")});
    ASSERT_EQ(j.code, 0) << j.err;
    const auto names = nlohmann::json::parse(j.out);
    ASSERT_EQ(names.size(), 2U);
    EXPECT_EQ(names.at(0).at("name").get<std::string>(), hostile);
}

/// Runs `ferry get` of a file from `server` (plus `extra`) and checks it failed as a protocol
/// error with `message`, leaving nothing behind.
void expect_protocol_error(const temp_dir& work, const fake_server& server,
                           const std::string& message, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"get", server.url("f.bin")};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = ferry_split(work.path(), args);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("ferry: " + server.url("f.bin") + ": the server sent " + message),
              std::string::npos)
        << r.err;
    EXPECT_TRUE(empty_dir(work.path())) << "files left behind";
}

TEST_F(HostileServer, AStatSizeAbove2To63IsAProtocolErrorAndCreatesNothing) {
    fake_server server{[](const any_message& m) -> bytes {
        if (std::holds_alternative<fp::stat_request>(m))
            return encode_exact(regular(std::uint64_t{1} << 63, false));
        return error_frame(fp::status::bad_request, "unexpected");
    }};
    expect_protocol_error(work, server, "a file size above 2^63 - 1 (9223372036854775808)");
    auto r = ferry_split(work.path(), {"stat", server.url("f.bin")});
    EXPECT_EQ(r.code, 1) << r.err;
}

TEST_F(HostileServer, ASizeBeyondTheFreeSpaceFailsBeforeAnyBodyAndLeavesNothing) {
    // 2^62 bytes passes every protocol check, and no disk here holds it: the reservation
    // fails, and neither the .part nor its state may stay behind.
    fake_server server{[](const any_message& m) -> bytes {
        if (std::holds_alternative<fp::stat_request>(m))
            return encode_exact(regular(std::uint64_t{1} << 62, false));
        return error_frame(fp::status::bad_request, "unexpected");
    }};
    auto r = ferry_split(work.path(), {"get", "--no-verify", server.url("f.bin")});
    EXPECT_EQ(r.code, 8) << r.err;
    EXPECT_NE(r.err.find("cannot reserve 4611686018427387904 bytes for f.bin.part"),
              std::string::npos)
        << r.err;
    EXPECT_TRUE(empty_dir(work.path())) << "files left behind";
}

TEST_F(HostileServer, AStatWithoutTheDigestAskedForIsAProtocolError) {
    fake_server server{[](const any_message& m) -> bytes {
        if (std::holds_alternative<fp::stat_request>(m))
            return encode_exact(regular(1000, false)); // never a digest, even when asked
        if (const auto* g = std::get_if<fp::get_request>(&m))
            return get_reply(*g, 1000, 1000);
        return error_frame(fp::status::bad_request, "unexpected");
    }};
    expect_protocol_error(work, server, "no SHA-256 in a STAT that asked for it");
    auto r = ferry_split(work.path(), {"stat", "--sha256", server.url("f.bin")});
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("the server sent no SHA-256"), std::string::npos) << r.err;
}

TEST_F(HostileServer, AGetHeaderSizeThatDisagreesWithStatIsAProtocolError) {
    fake_server server{[](const any_message& m) -> bytes {
        if (std::holds_alternative<fp::stat_request>(m))
            return encode_exact(regular(1000, true));
        if (const auto* g = std::get_if<fp::get_request>(&m))
            return get_reply(*g, 5000, 1000); // the same identity, five times the size
        return error_frame(fp::status::bad_request, "unexpected");
    }};
    expect_protocol_error(work, server,
                          "a GET_HEADER size (5000) that disagrees with its STAT (1000)",
                          {"--no-verify"});
}

TEST_F(HostileServer, AListedSizeAbove2To63IsAProtocolError) {
    fake_server server{[](const any_message&) -> bytes {
        fp::list_entries batch;
        batch.entries = {{"huge", fp::file_kind::regular, UINT64_MAX, 0}};
        return concat({encode_exact(batch), encode_exact(fp::list_end{fp::status::ok, 1})});
    }};
    auto r = ferry_split(work.path(), {"ls", server.url("")});
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("the server sent a listed size above 2^63 - 1"), std::string::npos)
        << r.err;
    EXPECT_EQ(r.out, "");
}

TEST_F(HostileServer, TheDigestWaitIsBoundedByDigestTimeout) {
    fake_server server{[](const any_message& m) -> bytes {
        if (const auto* s = std::get_if<fp::stat_request>(&m))
            return s->want_sha256 ? bytes{} : encode_exact(regular(1000, false)); // never hashes
        if (const auto* g = std::get_if<fp::get_request>(&m))
            return get_reply(*g, 1000, 1000);
        return error_frame(fp::status::bad_request, "unexpected");
    }};
    const auto started = std::chrono::steady_clock::now();
    auto r = ferry_split(work.path(), {"get", server.url("f.bin"), "--digest-timeout", "0.2"});
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30)); // not an hour
    EXPECT_EQ(r.code, 5) << r.err;
    EXPECT_NE(r.err.find("the server did not send the SHA-256 within --digest-timeout 0.2 s (the "
                         "partial download is kept; rerun to resume)"),
              std::string::npos)
        << r.err;
    EXPECT_TRUE(std::filesystem::exists(work / "f.bin.part"));
    EXPECT_FALSE(std::filesystem::exists(work / "f.bin"));
    auto bad = ferry_split(work.path(), {"get", server.url("f.bin"), "--digest-timeout", "-1"});
    EXPECT_EQ(bad.code, 2) << bad.err;
}

TEST_F(HostileServer, ATrickleBelowSpeedLimitIsAStall) {
    temp_dir root;
    write_file(root / "slow.bin", std::string(1 << 20, 's'));
    ferryd_process server{root.path(), {"--rate-limit", "2000"}};
    const auto started = std::chrono::steady_clock::now();
    auto r = ferry_split(work.path(),
                         {"get", "ferry://127.0.0.1:" + std::to_string(server.port()) + "/slow.bin",
                          "--speed-limit", "100000", "--speed-time", "1", "--retries", "0"});
    EXPECT_LT(std::chrono::steady_clock::now() - started,
              std::chrono::seconds(30)); // not 30 s stall
    EXPECT_EQ(r.code, 5) << r.err;
    EXPECT_NE(r.err.find("too slow: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("below --speed-limit 100000 bytes/s"), std::string::npos) << r.err;
    EXPECT_TRUE(std::filesystem::exists(work / "slow.bin.part"));
    EXPECT_FALSE(std::filesystem::exists(work / "slow.bin"));
}

TEST_F(HostileServer, AHugeDirectoryListsCompletelyAndSorted) {
    temp_dir root;
    constexpr int count = 50'000;
    for (int i = 0; i < count; ++i)
        write_file(root / ("f" + std::to_string(count - i)), ""); // not created in order
    ferryd_process server{root.path()};
    const auto u = "ferry://127.0.0.1:" + std::to_string(server.port()) + "/";
    auto r = ferry_split(work.path(), {"ls", u});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    std::vector<std::string> names;
    std::istringstream in{r.out};
    for (std::string line; std::getline(in, line);)
        names.push_back(line.substr(line.rfind(' ') + 1));
    ASSERT_EQ(names.size(), static_cast<std::size_t>(count));
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
    auto j = ferry_split(work.path(), {"ls", "--json", u});
    ASSERT_EQ(j.code, 0) << j.err;
    EXPECT_EQ(nlohmann::json::parse(j.out).size(), static_cast<std::size_t>(count));
}

// ---- HTTP servers that lie -------------------------------------------------------------------

/// The "Range: bytes=A-B" of a request head: {A, B}, or nullopt without one.
std::optional<std::pair<std::uint64_t, std::uint64_t>> range_of(const std::string& head) {
    const auto at = head.find("Range: bytes=");
    if (at == std::string::npos)
        return std::nullopt;
    std::uint64_t a = 0, b = 0;
    if (std::sscanf(head.c_str() + at, "Range: bytes=%lu-%lu", &a, &b) != 2)
        return std::nullopt;
    return std::pair{a, b};
}

/// HEAD of a file of `size` bytes with a strong ETag; GET answered by `get`.
fake_http_server::handler
http_file(std::uint64_t size, std::function<fake_http_server::reply(const std::string&)> get) {
    return [size, get](const std::string& head) -> fake_http_server::reply {
        if (head.starts_with("HEAD "))
            return {"HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size) +
                    "\r\nETag: \"v1\"\r\n\r\n"};
        return get(head);
    };
}

std::string partial_head(std::uint64_t first, std::uint64_t last, std::uint64_t size,
                         std::uint64_t length) {
    return "HTTP/1.1 206 Partial Content\r\nETag: \"v1\"\r\nContent-Range: bytes " +
           std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(size) +
           "\r\nContent-Length: " + std::to_string(length) + "\r\n";
}

TEST_F(HostileServer, HttpBodiesFramedAnyWayButContentLengthAreProtocolErrors) {
    const std::string body(100, 'x');
    const std::vector<std::pair<std::string, std::string>> cases{
        {"Content-Length and chunked", partial_head(0, 99, 100, 100) +
                                           "Transfer-Encoding: chunked\r\n\r\n64\r\n" + body +
                                           "\r\n0\r\n\r\n"},
        {"chunked alone", "HTTP/1.1 206 Partial Content\r\nETag: \"v1\"\r\nContent-Range: bytes "
                          "0-99/100\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" +
                              body + "\r\n0\r\n\r\n"},
        {"a body past its length", partial_head(0, 99, 100, 100) + "\r\n" + body + "0123456789"},
        {"a Content-Range that starts elsewhere",
         partial_head(1, 99, 100, 99) + "\r\n" + body.substr(1)},
        {"a Content-Range of another size", partial_head(0, 99, 200, 100) + "\r\n" + body},
        {"a Content-Length other than the range",
         partial_head(0, 99, 100, 90) + "\r\n" + body.substr(10)},
    };
    for (const auto& [name, answer] : cases) {
        SCOPED_TRACE(name);
        fake_http_server server{
            http_file(100, [&](const std::string&) { return fake_http_server::reply{answer}; })};
        auto r = ferry_split(work.path(), {"get", server.url("f.bin"), "--retries", "0"});
        EXPECT_EQ(r.code, 1) << r.err;
        EXPECT_NE(r.err.find("the server sent "), std::string::npos) << r.err;
        EXPECT_TRUE(empty_dir(work.path())) << r.err; // no file, no .part
    }
}

TEST_F(HostileServer, AnAnswerTooShortToBeHttpIsAProtocolErrorNotRetried) {
    fake_http_server server{[](const std::string&) {
        return fake_http_server::reply{"BAD\r\n", true};
    }};
    auto r = ferry_split(work.path(), {"get", server.url("f.bin"), "--retries", "3"});
    EXPECT_EQ(r.code, 1) << r.err; // not 5: a network error would be retried, then resumable
    EXPECT_NE(r.err.find("an invalid HTTP response"), std::string::npos) << r.err;
    EXPECT_TRUE(empty_dir(work.path())) << r.err;
}

TEST_F(HostileServer, AnHttpBodyCutShortIsANetworkErrorAndNeverPublished) {
    fake_http_server server{http_file(100, [](const std::string&) {
        return fake_http_server::reply{
            partial_head(0, 99, 100, 100) + "\r\n" + std::string(50, 'x'), true};
    })};
    auto r = ferry_split(work.path(), {"get", server.url("f.bin"), "--retries", "0"});
    EXPECT_EQ(r.code, 5) << r.err;
    EXPECT_NE(r.err.find("the server closed the connection"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(work / "f.bin"));
}

/// A server that stops sending, in the head or in the middle of the body, is a stall: the
/// wait ends after --stall-timeout (the connection's watchdog), a network error that keeps the
/// .part, and a load test counts it as a timeout. The fake server keeps the connection open.
TEST_F(HostileServer, AnHttpServerThatStopsSendingIsAStallInTheHeadAndInTheBody) {
    const std::uint64_t size = 1 << 20;
    fake_http_server body_stall{http_file(size, [&](const std::string&) {
        return fake_http_server::reply{partial_head(0, size - 1, size, size) + "\r\n" +
                                       std::string(size / 2, 'x')};
    })};
    auto started = std::chrono::steady_clock::now();
    auto r = ferry_split(work.path(), {"get", body_stall.url("f.bin"), "--stall-timeout", "0.3",
                                       "--retries", "0", "-j", "1"});
    EXPECT_EQ(r.code, 5) << r.err;
    EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
    EXPECT_TRUE(std::filesystem::exists(work / "f.bin.part"));
    EXPECT_FALSE(std::filesystem::exists(work / "f.bin"));

    fake_http_server head_stall{[](const std::string&) { return fake_http_server::reply{}; }};
    started = std::chrono::steady_clock::now();
    auto st =
        ferry_split(work.path(), {"stat", head_stall.url("f.bin"), "--stall-timeout", "0.3"});
    EXPECT_EQ(st.code, 5) << st.err;
    EXPECT_NE(st.err.find("timed out"), std::string::npos) << st.err;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));

    auto b = ferry_split(work.path(), {"bench", head_stall.url("f.bin"), "-c", "2", "-n", "4",
                                       "--stall-timeout", "0.3", "--json"});
    EXPECT_EQ(b.code, 1) << b.err;
    const auto j = nlohmann::json::parse(b.out);
    EXPECT_EQ(j["errors"]["timeout"], 4) << b.out;
    EXPECT_EQ(j["requests"], 0) << b.out;
}

/// A head that never ends, in complete lines (Beast bounds only what one parse call is given,
/// and each read's complete lines are consumed): refused once 64 KiB of it came, at once, not
/// after a stall and not never (a line a second would reset every stall timeout).
TEST_F(HostileServer, AnHttpHeadThatNeverEndsIsRefusedAt64KiB) {
    std::string endless = "HTTP/1.1 200 OK\r\n";
    while (endless.size() < 80 * 1024)
        endless += "X-Padding: yyyyyyyyyy\r\n";
    fake_http_server server{
        [&](const std::string&) { return fake_http_server::reply{endless}; }};
    const auto started = std::chrono::steady_clock::now();
    auto r = ferry_split(work.path(), {"stat", server.url("f.bin"), "--stall-timeout", "30"});
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("a response head above 64 KiB"), std::string::npos) << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

/// ferry get names itself (User-Agent), as curl and wget do; ferry bench sends what wrk sends,
/// the request line and Host alone, so its ratio against wrk is the load generator's and not
/// the server's work on a longer request.
TEST_F(HostileServer, FerryNamesItselfAndItsLoadTestSendsWrksRequest) {
    std::mutex heads_mutex;
    std::vector<std::string> heads;
    fake_http_server server{http_file(4, [&](const std::string& head) {
        const std::lock_guard lock{heads_mutex};
        heads.push_back(head);
        return fake_http_server::reply{"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: 4\r\n\r\nabcd"};
    })};
    auto g = ferry_split(work.path(), {"get", server.url("f.bin"), "-q"});
    ASSERT_EQ(g.code, 0) << g.err;
    EXPECT_EQ(read_file(work / "f.bin"), "abcd");
    const auto host = server.url("").substr(std::string{"http://"}.size());
    {
        const std::lock_guard lock{heads_mutex};
        ASSERT_EQ(heads.size(), 1U);
        EXPECT_TRUE(heads[0].starts_with("GET /f.bin HTTP/1.1\r\nHost: " +
                                         host.substr(0, host.size() - 1) +
                                         "\r\nUser-Agent: ferry/" FERRY_VERSION "\r\n"))
            << heads[0]; // (then Range and If-Range)
        heads.clear();
    }
    auto b = ferry_split(work.path(), {"bench", server.url("f.bin"), "-c", "1", "-n", "3"});
    ASSERT_EQ(b.code, 0) << b.err;
    const std::lock_guard lock{heads_mutex};
    ASSERT_EQ(heads.size(), 3U);
    for (const auto& head : heads)
        EXPECT_EQ(head, "GET /f.bin HTTP/1.1\r\nHost: " + host.substr(0, host.size() - 1) +
                            "\r\n\r\n");
}

/// A resume sends If-Range; a 200 to it (a server that ignores ranges) is never appended to the
/// .part, and the .part keeps exactly what the first run fetched.
TEST_F(HostileServer, AnHttp200ToARangedResumeNeverTouchesThePart) {
    constexpr std::uint64_t half = 1 << 20;
    const auto first = make_content(2 * half, 51);
    std::atomic<int> phase{1};
    std::mutex heads_mutex;
    std::vector<std::string> heads;
    fake_http_server server{http_file(2 * half, [&](const std::string& head) {
        {
            std::lock_guard lock{heads_mutex};
            heads.push_back(head);
        }
        const auto range = range_of(head);
        if (phase == 2 || !range) // the whole file, other bytes, the same ETag
            return fake_http_server::reply{
                "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: " + std::to_string(2 * half) +
                "\r\n\r\n" + make_content(2 * half, 52)};
        if (range->first == 0)
            return fake_http_server::reply{partial_head(0, half - 1, 2 * half, half) + "\r\n" +
                                           first.substr(0, half)};
        return fake_http_server::reply{partial_head(half, 2 * half - 1, 2 * half, half) + "\r\n" +
                                           first.substr(half, 10),
                                       true}; // cut: the first run ends with half the file
    })};
    const std::vector<std::string> get{"get",          server.url("f.bin"),  "-j",        "1",
                                       "--chunk-size", std::to_string(half), "--retries", "0"};
    auto cut = ferry_split(work.path(), get);
    ASSERT_EQ(cut.code, 5) << cut.err;
    ASSERT_EQ(read_file(work / "f.bin.part").substr(0, half), first.substr(0, half));
    phase = 2;
    heads.clear();
    auto r = ferry_split(work.path(), get);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("the server ignores Range"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(work / "f.bin"));
    const auto part = read_file(work / "f.bin.part");
    EXPECT_EQ(part.substr(0, half), first.substr(0, half)); // untouched
    ASSERT_EQ(heads.size(), 1U);
    EXPECT_NE(heads[0].find("Range: bytes=1048576-2097151\r\n"), std::string::npos) << heads[0];
    EXPECT_NE(heads[0].find("If-Range: \"v1\"\r\n"), std::string::npos) << heads[0];
}

TEST_F(HostileServer, HttpHeaderValuesReachTheTerminalEscaped) {
    fake_http_server server{[](const std::string& head) {
        if (head.starts_with("HEAD /dir "))
            return fake_http_server::reply{"HTTP/1.1 301 Moved\r\nLocation: https://elsewhere/\xC2\x9B"
                                           "31mred\r\nContent-Length: 0\r\n\r\n"};
        return fake_http_server::reply{"HTTP/1.1 404 Not \xC2\x9B"
                                       "31mFound\r\nContent-Length: 0\r\n\r\n"};
    }};
    for (const auto& command : {"get", "stat"}) {
        SCOPED_TRACE(command);
        auto r = ferry_split(work.path(), {command, server.url("f.bin")});
        EXPECT_EQ(r.code, 3) << r.err;
        expect_terminal_safe(r.err);
        EXPECT_NE(r.err.find("(HTTP 404 Not \\u{9b}31mFound)"), std::string::npos) << r.err;
    }
    auto r = ferry_split(work.path(), {"stat", server.url("dir")});
    EXPECT_EQ(r.code, 1) << r.err;
    expect_terminal_safe(r.err);
    EXPECT_NE(r.err.find("a redirect (HTTP 301 Moved) to https://elsewhere/\\u{9b}31mred: ferry "
                         "does not follow https://"),
              std::string::npos)
        << r.err;
    EXPECT_TRUE(empty_dir(work.path()));
}

/// A server with neither ETag nor Last-Modified, or with a Last-Modified as fresh as its answer
/// (a rewrite within that second keeps the date): nothing tells two versions apart, so the file
/// comes in one GET on one connection, whatever -j and --chunk-size say.
TEST_F(HostileServer, AnHttpFileWithoutValidatorsComesInOneRequest) {
    const auto content = make_content(10000, 53);
    const std::string now = "Fri, 04 Dec 2026 04:50:00 GMT";
    for (const std::string& validators :
         {std::string{}, "Last-Modified: " + now + "\r\nDate: " + now + "\r\n"}) {
        SCOPED_TRACE(validators);
        std::filesystem::remove(work / "f.bin");
        std::mutex heads_mutex;
        std::vector<std::string> gets;
        fake_http_server server{[&](const std::string& head) {
            if (head.starts_with("HEAD "))
                return fake_http_server::reply{"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n" +
                                               validators + "\r\n"};
            std::lock_guard lock{heads_mutex};
            gets.push_back(head);
            const auto range = range_of(head);
            if (!range || range->first != 0 || range->second != 9999)
                return fake_http_server::reply{
                    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"};
            return fake_http_server::reply{
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9999/10000\r\n" +
                validators + "Content-Length: 10000\r\n\r\n" + content};
        }};
        auto r = ferry_split(work.path(), {"get", server.url("f.bin"), "-j", "4", "--chunk-size",
                                           "4096", "--json"});
        ASSERT_EQ(r.code, 0) << r.err;
        EXPECT_EQ(read_file(work / "f.bin"), content);
        EXPECT_EQ(nlohmann::json::parse(r.out).at(0).at("connections"), 1);
        EXPECT_NE(r.err.find("no ETag, nor a Last-Modified a second older than its answer: one "
                             "connection, no resume"),
                  std::string::npos)
            << r.err;
        ASSERT_EQ(gets.size(), 1U);
        EXPECT_EQ(gets[0].find("If-Range"), std::string::npos) << gets[0];
    }
}

/// RFC 9530's Repr-Digest value for `content`'s SHA-256, as `sha256sum` computes it.
std::string repr_digest_of(const std::filesystem::path& file) {
    const auto hex = run({"/usr/bin/sha256sum", file.string()}, std::chrono::seconds(30)).output.substr(0, 64);
    std::string raw;
    for (std::size_t i = 0; i < hex.size(); i += 2)
        raw += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string b64;
    for (std::size_t i = 0; i < raw.size(); i += 3) {
        std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(raw[i])) << 16;
        if (i + 1 < raw.size())
            n |= static_cast<std::uint32_t>(static_cast<unsigned char>(raw[i + 1])) << 8;
        if (i + 2 < raw.size())
            n |= static_cast<unsigned char>(raw[i + 2]);
        b64 += alphabet[(n >> 18) & 63];
        b64 += alphabet[(n >> 12) & 63];
        b64 += i + 1 < raw.size() ? alphabet[(n >> 6) & 63] : '=';
        b64 += i + 2 < raw.size() ? alphabet[n & 63] : '=';
    }
    return "sha-256=:" + b64 + ":";
}

TEST_F(HostileServer, AMirrorThatNamesNoVersionIsLeftOutBeforeAnyRange) {
    // An HTTP server with the right SHA-256 but no ETag nor Last-Modified cannot tie a range to
    // one version of the file: it is left out up front, whether it is the URL or a --mirror.
    temp_dir root;
    const auto content = make_content(300000, 54);
    write_file(root / "f.bin", content);
    const auto digest = repr_digest_of(root / "f.bin");
    ferryd_process versioned{root.path()};
    std::mutex gets_mutex;
    unsigned gets = 0;
    fake_http_server plain{[&](const std::string& head) {
        if (head.starts_with("HEAD "))
            return fake_http_server::reply{"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n"
                                           "Repr-Digest: " +
                                           digest + "\r\n\r\n"};
        std::lock_guard lock{gets_mutex};
        ++gets;
        return fake_http_server::reply{"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" +
                                       content};
    }};
    const auto ferry_url = "ferry://127.0.0.1:" + std::to_string(versioned.port()) + "/f.bin";
    const std::string plain_url = plain.url("f.bin");
    for (const auto& [url, mirror] : {std::pair{ferry_url, plain_url},
                                      std::pair{plain_url, ferry_url}}) {
        SCOPED_TRACE(url);
        std::filesystem::remove(work / "f.bin");
        auto r = ferry_split(work.path(), {"get", url, "--mirror", mirror, "-j", "4",
                                           "--chunk-size", "65536"});
        ASSERT_EQ(r.code, 0) << r.err;
        EXPECT_TRUE(read_file(work / "f.bin") == content);
        EXPECT_NE(r.err.find(plain_url + ": the server sends no ETag, nor a Last-Modified a second older "
                             "than its answer, so its ranges cannot be tied to one version; "
                             "going on without it"),
                  std::string::npos)
            << r.err;
        std::lock_guard lock{gets_mutex};
        EXPECT_EQ(gets, 0U);
    }
}

// ---- HTTP redirects and interim answers --------------------------------------------------------

/// `content` served at `path` (ETag "v1"): HEAD, a plain GET, or a GET of one range; nullopt
/// for a request of another path.
std::optional<fake_http_server::reply> file_at(const std::string& head, const std::string& path,
                                               const std::string& content) {
    const auto size = content.size();
    if (head.starts_with("HEAD " + path + " "))
        return fake_http_server::reply{"HTTP/1.1 200 OK\r\nContent-Length: " +
                                       std::to_string(size) + "\r\nETag: \"v1\"\r\n\r\n"};
    if (!head.starts_with("GET " + path + " "))
        return std::nullopt;
    const auto range = range_of(head);
    if (!range)
        return fake_http_server::reply{"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: " +
                                       std::to_string(size) + "\r\n\r\n" + content};
    const auto last = std::min<std::uint64_t>(range->second, size - 1);
    return fake_http_server::reply{partial_head(range->first, last, size, last - range->first + 1) +
                                   "\r\n" + content.substr(range->first, last - range->first + 1)};
}

/// The request target of a request head ("GET /a HTTP/1.1..." is "/a").
std::string target_in(const std::string& head) {
    const auto start = head.find(' ') + 1;
    return head.substr(start, head.find(' ', start) - start);
}

fake_http_server::reply redirect(unsigned code, const std::string& location) {
    const std::string body = "moved\n"; // a body the client must skip to use the connection on
    return {"HTTP/1.1 " + std::to_string(code) + " Elsewhere\r\nLocation: " + location +
            "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body};
}

/// The request heads a fake server saw, from its threads.
struct request_log {
    std::mutex mutex;
    std::vector<std::string> heads;
    void add(const std::string& head) {
        std::lock_guard lock{mutex};
        heads.push_back(head.substr(0, head.find("\r\n")));
    }
    std::size_t count(const std::string& prefix) {
        std::lock_guard lock{mutex};
        return static_cast<std::size_t>(std::count_if(
            heads.begin(), heads.end(), [&](const auto& h) { return h.starts_with(prefix); }));
    }
};

/// Relative, absolute-path, dot-segment and chained Locations of every redirect status, for
/// get (to a file and to standard output), stat and ls; the redirect's body is skipped and the
/// connection serves on.
TEST_F(HostileServer, HttpRedirectsAreFollowedWhateverTheirForm) {
    const auto content = make_content(100000, 54);
    fake_http_server server{[&](const std::string& head) {
        if (auto file = file_at(head, "/files/real.bin", content))
            return *file;
        const auto target = target_in(head);
        if (target == "/a/relative")
            return redirect(302, "../files/real.bin");
        if (target == "/absolute")
            return redirect(301, "/files/./real.bin");
        if (target == "/chain")
            return redirect(303, "a/relative");
        if (target == "/temporary")
            return redirect(307, "chain");
        if (target == "/permanent")
            return redirect(308, "temporary#fragment");
        if (target == "/old-dir/") // relative to the listing's URL, "/old-dir/"
            return redirect(301, "moved/");
        if (target == "/old-dir/moved/") {
            const std::string listing = R"([{"name":"real.bin","type":"file","size":100000}])";
            return fake_http_server::reply{
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                std::to_string(listing.size()) + "\r\n\r\n" + listing};
        }
        return fake_http_server::reply{"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"};
    }};
    for (const std::string path : {"a/relative", "absolute", "chain", "temporary", "permanent"}) {
        SCOPED_TRACE(path);
        std::filesystem::remove(work / "out");
        auto r = ferry_split(work.path(), {"get", server.url(path), "-o", "out", "--retries", "0",
                                           "--chunk-size", "16384", "-j", "3"});
        ASSERT_EQ(r.code, 0) << r.err;
        EXPECT_TRUE(read_file(work / "out") == content);
        auto piped = ferry_split(work.path(), {"get", server.url(path), "-o", "-", "--no-verify"});
        ASSERT_EQ(piped.code, 0) << piped.err;
        EXPECT_TRUE(piped.out == content);
    }
    auto st = ferry_split(work.path(), {"stat", server.url("permanent"), "--json"});
    ASSERT_EQ(st.code, 0) << st.err;
    const auto j = nlohmann::json::parse(st.out);
    EXPECT_EQ(j.at("url"), server.url("permanent"));
    EXPECT_EQ(j.at("size"), 100000);
    EXPECT_EQ(j.at("kind"), "file");
    EXPECT_NE(j.at("location").get<std::string>().find("/files/real.bin"), std::string::npos);
    auto ls = ferry_split(work.path(), {"ls", server.url("old-dir"), "--json"});
    ASSERT_EQ(ls.code, 0) << ls.err;
    EXPECT_EQ(nlohmann::json::parse(ls.out).at(0).at("name"), "real.bin");
}

/// stat resolves the final URL once: a 307 to another origin, and every segment of a -j4
/// download goes to that origin, on connections of its own; the first server sees one HEAD.
TEST_F(HostileServer, AnHttpRedirectToAnotherOriginCarriesTheWholeSegmentedDownload) {
    const auto content = make_content(3 << 20, 55);
    request_log first_log, second_log;
    fake_http_server second{[&](const std::string& head) {
        second_log.add(head);
        if (auto file = file_at(head, "/mirror/f.bin", content))
            return *file;
        return fake_http_server::reply{"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"};
    }};
    fake_http_server first{[&](const std::string& head) {
        first_log.add(head);
        return redirect(307, second.url("mirror/f.bin"));
    }};
    auto r = ferry_split(work.path(), {"get", first.url("f.bin"), "-j", "4", "--chunk-size",
                                       "262144", "--retries", "0", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(read_file(work / "f.bin") == content); // named after the URL asked for
    EXPECT_EQ(nlohmann::json::parse(r.out).at(0).at("connections"), 4);
    EXPECT_EQ(first_log.heads, std::vector<std::string>{"HEAD /f.bin HTTP/1.1"});
    EXPECT_EQ(second_log.count("GET /mirror/f.bin "), 12U); // 3 MiB in 256 KiB segments
    EXPECT_EQ(second_log.count("GET "), 12U);
    EXPECT_FALSE(std::filesystem::exists(work / "f.bin.part"));
}

/// Redirects that are not followed: a loop (named), more than 10, https:// and other schemes,
/// a Location that is not a URL (escaped), a redirect to a segment: exit 1, nothing written.
TEST_F(HostileServer, HttpRedirectsThatCannotBeFollowedAreProtocolErrorsThatWriteNothing) {
    fake_http_server server{[](const std::string& head) {
        const auto target = target_in(head);
        if (target == "/ping")
            return redirect(302, "pong");
        if (target == "/pong")
            return redirect(301, "/ping");
        if (target.starts_with("/n/"))
            return redirect(302, std::to_string(std::stoi(target.substr(3)) + 1));
        if (target == "/tls")
            return redirect(301, "https://example.org/f");
        if (target == "/ftp")
            return redirect(301, "ftp://example.org/f");
        if (target == "/query")
            return redirect(302, "/f?token=1");
        if (target == "/hostile")
            return redirect(302, "/a b\xC2\x9B" "31m"); // (Beast refuses a C0 control already)
        if (target == "/none")
            return fake_http_server::reply{"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"};
        if (target == "/segment" && head.starts_with("HEAD "))
            return fake_http_server::reply{
                "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nETag: \"v1\"\r\n\r\n"};
        return redirect(302, "/segment-elsewhere");
    }};
    const auto base = server.url("");
    const std::vector<std::pair<std::string, std::string>> cases{
        {"ping", "a redirect loop: " + base + "ping -> " + base + "pong -> " + base + "ping"},
        {"n/1", "more than 10 redirects: " + base + "n/1 -> " + base + "n/2"},
        {"tls", "to https://example.org/f: ferry does not follow https:// (it speaks no TLS)"},
        {"ftp", "to ftp://example.org/f: ferry follows only http://"},
        {"query", "to /f?token=1: a URL with a query"},
        {"hostile", "to /a b\\u{9b}31m: not a URL"},
        {"none", "a redirect (HTTP 302 Found) without a Location"},
        {"segment", "a redirect (HTTP 302 Elsewhere) to /segment-elsewhere to a range request"},
    };
    for (const auto& [path, message] : cases) {
        for (const std::string command : {"get", "stat"}) {
            if (path == "segment" && command == "stat")
                continue;
            SCOPED_TRACE(path + " " + command);
            std::vector<std::string> args{command, server.url(path)};
            if (command == "get")
                args.insert(args.end(), {"--retries", "0"});
            auto r = ferry_split(work.path(), args);
            EXPECT_EQ(r.code, 1) << r.err;
            expect_terminal_safe(r.err);
            EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
            EXPECT_TRUE(empty_dir(work.path())) << r.err; // no file, no .part
        }
    }
}

/// 1xx interim answers (100 Continue, 103 Early Hints with its headers) are skipped before the
/// real answer; endless ones are an error, never a hang; 101 to a GET is an error.
TEST_F(HostileServer, HttpInterimAnswersAreSkippedBoundedAndNever101) {
    const auto content = make_content(50000, 56);
    const std::string hints = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
                              "Link: </style.css>; rel=preload\r\n\r\n";
    fake_http_server server{[&](const std::string& head) {
        const auto target = target_in(head);
        if (target == "/hinted.bin") {
            auto file = file_at(head, "/hinted.bin", content);
            return fake_http_server::reply{hints + file->bytes};
        }
        if (target == "/endless") {
            std::string many;
            for (int i = 0; i < 1000; ++i)
                many += "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n";
            return fake_http_server::reply{many}; // and then nothing, the connection kept open
        }
        return fake_http_server::reply{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n"
                                       "Connection: Upgrade\r\n\r\n"};
    }};
    auto r = ferry_split(work.path(), {"get", server.url("hinted.bin"), "-j", "2", "--chunk-size",
                                       "16384", "--no-verify"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(read_file(work / "hinted.bin") == content);
    auto st = ferry_split(work.path(), {"stat", server.url("hinted.bin")});
    ASSERT_EQ(st.code, 0) << st.err;
    EXPECT_NE(st.out.find("size:     50000"), std::string::npos) << st.out;
    std::filesystem::remove(work / "hinted.bin");
    for (const auto& [path, message] :
         std::vector<std::pair<std::string, std::string>>{
             {"endless", "more than 8 interim (1xx) responses before the answer"},
             {"upgrade", "101 Switching Protocols to a request that asked for no upgrade"}}) {
        for (const std::string command : {"get", "stat"}) {
            SCOPED_TRACE(path + " " + command);
            auto f = ferry_split(work.path(), {command, server.url(path), "--stall-timeout", "60"});
            EXPECT_EQ(f.code, 1) << f.err;
            EXPECT_NE(f.err.find(message), std::string::npos) << f.err;
            EXPECT_TRUE(empty_dir(work.path())) << f.err;
        }
    }
}

} // namespace
} // namespace ferry::test
