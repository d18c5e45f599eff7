// run_session over in-process socket pairs: what a client sees for every kind of request,
// malformed input, timeout and shutdown.
#include "support/session_harness.hpp"

#include <fcntl.h>
#include <fstream>
#include <openssl/sha.h>
#include <poll.h>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace ferry::test {
namespace {

using fp::status;

std::string sha256_hex(const std::string& s) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
    return to_hex(std::as_bytes(std::span{d}));
}

struct SessionTest : ::testing::Test {
    session_harness h;
};

TEST_F(SessionTest, IdleConnectionsAreParkedAndTheirWaitsAllocateNothing) {
    write_file(h.root / "s", "s");
    h.start();
    const auto fallbacks = fs::handler_memory::heap_fallbacks();
    std::vector<test_client> clients;
    for (int i = 0; i < 50; ++i) {
        clients.push_back(h.connect());
        clients.back().send(fp::stat_request{"s", false});
        EXPECT_EQ(clients.back().read<fp::stat_reply>().size, 1U);
    }
    // A connection is parked by its coroutine's completion, queued on the server thread after
    // the answer went out: give the queue a bounded number of turns (no sleeping).
    std::size_t parked = 0;
    std::size_t in_place = 0;
    for (int turn = 0; turn < 1000 && parked < 50; ++turn)
        h.on_server([&] {
            parked = h.registry().parked();
            in_place = h.registry().parked_in_place();
        });
    EXPECT_EQ(parked, 50U); // answered, idle: no coroutine, a wait in the connection's memory
    EXPECT_EQ(in_place, 50U);
    EXPECT_EQ(fs::handler_memory::heap_fallbacks(), fallbacks);
    EXPECT_EQ(clients.front().get("s").body, "s"); // a parked connection wakes for a request
}

TEST_F(SessionTest, WholeFilesOfAssortedSizesAreByteIdentical) {
    // Both sides of the 16 KiB boundary between one-send bodies and sendfile bodies.
    const std::size_t sizes[] = {0,     1,     2,          4095, 4096, 16384, 16385,
                                 65535, 65537, (1 << 20) + 3, 5 << 20};
    for (auto size : sizes)
        write_file(h.root / ("f" + std::to_string(size)), make_content(size));
    h.start();
    auto c = h.connect();
    for (auto size : sizes) { // one connection, keep-alive
        SCOPED_TRACE(size);
        auto r = c.get("f" + std::to_string(size));
        EXPECT_EQ(r.header.size, size);
        EXPECT_EQ(r.header.offset, 0U);
        EXPECT_EQ(r.header.length, size);
        EXPECT_EQ(r.trailer, status::ok);
        EXPECT_TRUE(r.body == make_content(size)) << "body differs";
    }
}

TEST_F(SessionTest, RangesAtTheEdges) {
    const auto content = make_content(1000);
    write_file(h.root / "f", content);
    write_file(h.root / "empty", "");
    h.start();
    auto c = h.connect();
    struct row {
        std::uint64_t offset, length, served_offset, served_length;
    };
    for (const row& r :
         {row{0, 0, 0, 0}, row{0, 1, 0, 1}, row{999, 1, 999, 1}, row{999, fp::to_end, 999, 1},
          row{1000, fp::to_end, 1000, 0}, row{1000, 5, 1000, 0}, row{10, 5000, 10, 990},
          row{500, 100, 500, 100}, row{0, fp::to_end, 0, 1000}}) {
        SCOPED_TRACE(std::to_string(r.offset) + "+" + std::to_string(r.length));
        auto g = c.get("f", r.offset, r.length);
        EXPECT_EQ(g.header.offset, r.served_offset);
        EXPECT_EQ(g.header.length, r.served_length);
        EXPECT_EQ(g.body, content.substr(static_cast<std::size_t>(r.served_offset),
                                         static_cast<std::size_t>(r.served_length)));
        EXPECT_EQ(g.trailer, status::ok);
    }
    c.send(fp::get_request{"f", 1001, 1, std::nullopt});
    auto e = c.read_error();
    EXPECT_EQ(e.code, status::range_not_satisfiable);
    EXPECT_FALSE(e.closing);
    auto g = c.get("empty");
    EXPECT_EQ(g.header.size, 0U);
    EXPECT_EQ(g.trailer, status::ok);
    c.send(fp::get_request{"empty", 1, fp::to_end, std::nullopt});
    EXPECT_EQ(c.read_error().code, status::range_not_satisfiable);
}

TEST_F(SessionTest, PipelinedRequestsAreAnsweredInOrder) {
    write_file(h.root / "a", make_content(300000, 1));
    write_file(h.root / "b", make_content(7, 2));
    h.start();
    auto c = h.connect();
    bytes all;
    for (const auto& m : {any_message{fp::get_request{"a", 0, fp::to_end, std::nullopt}},
                          any_message{fp::stat_request{"b", false}},
                          any_message{fp::get_request{"missing", 0, fp::to_end, std::nullopt}},
                          any_message{fp::get_request{"b", 0, fp::to_end, std::nullopt}}}) {
        auto b = encode_exact(m);
        all.insert(all.end(), b.begin(), b.end());
    }
    c.send_raw(all);
    EXPECT_TRUE(c.read_get().body == make_content(300000, 1));
    EXPECT_EQ(c.read<fp::stat_reply>().size, 7U);
    EXPECT_EQ(c.read_error().code, status::not_found);
    EXPECT_EQ(c.read_get().body, make_content(7, 2));
}

TEST_F(SessionTest, IdentityGuardsResume) {
    write_file(h.root / "f", make_content(100));
    h.start();
    auto c = h.connect();
    auto first = c.get("f", 0, 10);
    c.send(fp::get_request{"f", 10, fp::to_end, first.header.identity});
    auto rest = c.read_get();
    EXPECT_EQ(first.body + rest.body, make_content(100));
    EXPECT_EQ(rest.header.identity, first.header.identity);

    write_file(h.root / "f", make_content(100, 9)); // same size, new content and mtime
    struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 678}};
    ::utimensat(AT_FDCWD, (h.root / "f").c_str(), times, 0);
    c.send(fp::get_request{"f", 10, fp::to_end, first.header.identity});
    auto e = c.read_error();
    EXPECT_EQ(e.code, status::changed);
    EXPECT_FALSE(e.closing);
    EXPECT_EQ(c.get("f").body, make_content(100, 9)); // the connection still works
}

TEST_F(SessionTest, EveryRefusalHasItsStatusAndKeepsTheConnection) {
    write_file(h.root / "dir/inside.txt", "in");
    std::filesystem::create_symlink("/etc/hostname", h.root / "escape");
    std::filesystem::create_symlink("dir/inside.txt", h.root / "link");
    ::mkfifo((h.root / "fifo").c_str(), 0600);
    h.start();
    auto c = h.connect();
    struct row {
        std::string path;
        status expected;
    };
    for (const auto& r :
         {row{"missing", status::not_found}, row{"dir/missing", status::not_found},
          row{"dir/inside.txt/x", status::not_found}, row{"../outside", status::forbidden},
          row{"dir/../../x", status::forbidden}, row{"escape", status::forbidden},
          row{"dir", status::not_regular_file}, row{"", status::not_regular_file},
          row{"fifo", status::not_regular_file}, row{"/etc/hostname", status::bad_request},
          row{std::string(300, 'n'), status::bad_request}}) {
        SCOPED_TRACE(r.path);
        c.send(fp::get_request{r.path, 0, fp::to_end, std::nullopt});
        auto e = c.read_error();
        EXPECT_EQ(e.code, r.expected) << e.message;
        EXPECT_FALSE(e.closing);
        EXPECT_NE(e.message.find(std::string{fp::status_text(r.expected)}), std::string::npos)
            << e.message;
    }
    // Inside the root, symlinks and `..` work; repeated and trailing slashes are ignored.
    for (const auto* p : {"link", "dir/../dir/inside.txt", "dir//inside.txt", "./dir/inside.txt"})
        EXPECT_EQ(c.get(p).body, "in") << p;
}

TEST_F(SessionTest, SymlinkPolicies) {
    write_file(h.root / "real.txt", "real");
    std::filesystem::create_symlink("real.txt", h.root / "link");
    h.config.symlinks = fs::symlink_policy::deny;
    h.start();
    auto c = h.connect();
    c.send(fp::get_request{"link", 0, fp::to_end, std::nullopt});
    EXPECT_EQ(c.read_error().code, status::forbidden);
    EXPECT_EQ(c.get("real.txt").body, "real");
}

TEST_F(SessionTest, FollowPolicyFollowsOutsideButKeepsDotDotInside) {
    temp_dir outside;
    write_file(outside / "secret", "outside");
    std::filesystem::create_symlink(outside / "secret", h.root / "out");
    h.config.symlinks = fs::symlink_policy::follow;
    h.start();
    auto c = h.connect();
    EXPECT_EQ(c.get("out").body, "outside");
    c.send(fp::get_request{"../" + outside.path().filename().string() + "/secret", 0, fp::to_end,
                           std::nullopt});
    EXPECT_EQ(c.read_error().code, status::forbidden);
}

TEST_F(SessionTest, MalformedFramesGetTheirStatusThenTheConnectionCloses) {
    h.start();
    struct row {
        bytes data;
        status expected;
    };
    auto header = [](std::uint8_t version, std::uint8_t type, std::uint16_t size) {
        return bytes{std::byte{0xFE},
                     std::byte{'F'},
                     std::byte{'R'},
                     std::byte{'Y'},
                     std::byte{version},
                     std::byte{type},
                     static_cast<std::byte>(size >> 8U),
                     static_cast<std::byte>(size & 0xFFU)};
    };
    const row rows[] = {
        // 0xFE chose the Ferry front (an HTTP request goes to the HTTP front: http_test.cpp),
        // but the rest of the magic is wrong.
        {to_bytes("\xFE" "FRX\x01\x01\x00\x00"), status::bad_request},
        {header(2, 1, 0), status::unsupported_version},
        {header(1, 0x7f, 0), status::bad_request},
        {header(1, 1, 0xFFFF), status::too_large},
        {encode_exact(fp::get_trailer{status::ok}), status::bad_request}, // a reply type
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(to_hex(r.data));
        auto c = h.connect();
        c.send_raw(r.data);
        auto e = c.read_error();
        EXPECT_EQ(e.code, r.expected) << e.message;
        EXPECT_TRUE(e.closing);
        EXPECT_TRUE(c.wait_closed());
        if (r.expected == status::unsupported_version) {
            EXPECT_EQ(e.message, "unsupported version 2; this server speaks version 1");
        }
    }
}

TEST_F(SessionTest, BadFieldsInAWellFormedFrameKeepTheConnection) {
    write_file(h.root / "f", "x");
    h.start();
    auto c = h.connect();
    auto frame = encode_exact(fp::get_request{"f", 0, fp::to_end, std::nullopt});
    frame[8] = std::byte{0x80}; // reserved flag
    c.send_raw(frame);
    EXPECT_EQ(c.read_error().code, status::bad_request);
    // A 4097-byte path: too large, but the frame itself is fine.
    auto long_path =
        encode_exact(fp::get_request{std::string(4096, 'a'), 0, fp::to_end, std::nullopt});
    long_path[58] = std::byte{0x01}; // path_length 0x1001
    long_path[6] = std::byte{0x10};  // payload length grows by one byte ...
    long_path[7] = std::byte{0x34};
    long_path.push_back(std::byte{'a'}); // ... which is this one
    c.send_raw(long_path);
    auto e = c.read_error();
    EXPECT_EQ(e.code, status::too_large) << e.message;
    EXPECT_FALSE(e.closing);
    auto bad_utf8 = encode_exact(fp::stat_request{"ab", false});
    bad_utf8.back() = std::byte{0xFF};
    c.send_raw(bad_utf8);
    EXPECT_EQ(c.read_error().code, status::bad_request);
    auto nul = encode_exact(fp::get_request{"fx", 0, fp::to_end, std::nullopt});
    nul.back() = std::byte{0}; // "f\0": a NUL would truncate the path in a C API
    c.send_raw(nul);
    EXPECT_EQ(c.read_error().code, status::bad_request);
    EXPECT_EQ(c.get("f").body, "x");
}

TEST_F(SessionTest, RangesBeyondSignedOffsetsAreBadRequestsNotServed) {
    write_file(h.root / "f", "0123456789");
    h.start();
    auto c = h.connect();
    // A hostile client writes the fields itself: offset 2^63, then offset 1 + length 2^63-1.
    for (auto [offset, length] : {std::pair<std::uint64_t, std::uint64_t>{1ULL << 63, 1},
                                  std::pair<std::uint64_t, std::uint64_t>{1, INT64_MAX}}) {
        auto frame = encode_exact(fp::get_request{"f", 0, 0, std::nullopt});
        for (int i = 0; i < 8; ++i) {
            frame[9 + static_cast<std::size_t>(i)] = static_cast<std::byte>(offset >> (56 - 8 * i));
            frame[17 + static_cast<std::size_t>(i)] =
                static_cast<std::byte>(length >> (56 - 8 * i));
        }
        c.send_raw(frame);
        auto e = c.read_error();
        EXPECT_EQ(e.code, status::bad_request) << e.message;
        EXPECT_FALSE(e.closing);
    }
    EXPECT_EQ(c.get("f").body, "0123456789");
}

TEST_F(SessionTest, StatReportsKindsAndTheRightDigest) {
    const auto content = make_content(3 << 20);
    write_file(h.root / "f", content);
    std::filesystem::create_directory(h.root / "d");
    h.start();
    auto c = h.connect();
    c.send(fp::stat_request{"f", true});
    auto s = c.read<fp::stat_reply>();
    EXPECT_EQ(s.kind, fp::file_kind::regular);
    EXPECT_EQ(s.size, content.size());
    ASSERT_TRUE(s.sha256);
    EXPECT_EQ(to_hex(*s.sha256), sha256_hex(content));
    c.send(fp::stat_request{"f", false});
    auto plain = c.read<fp::stat_reply>();
    EXPECT_FALSE(plain.sha256);
    EXPECT_EQ(plain.identity, s.identity);
    c.send(fp::stat_request{"d", true});
    auto d = c.read<fp::stat_reply>();
    EXPECT_EQ(d.kind, fp::file_kind::directory);
    EXPECT_FALSE(d.sha256);
    c.send(fp::stat_request{"nope", true});
    EXPECT_EQ(c.read_error().code, status::not_found);
}

TEST_F(SessionTest, ConcurrentDigestRequestsShareOneComputation) {
    const auto content = make_content(8 << 20, 3);
    write_file(h.root / "f", content);
    h.start();
    std::vector<test_client> clients;
    for (int i = 0; i < 8; ++i)
        clients.push_back(h.connect());
    for (auto& c : clients)
        c.send(fp::stat_request{"f", true});
    for (auto& c : clients) {
        auto s = c.read<fp::stat_reply>();
        ASSERT_TRUE(s.sha256);
        EXPECT_EQ(to_hex(*s.sha256), sha256_hex(content));
    }
    EXPECT_EQ(h.digests().computations(), 1U);
    // Later requests come from the cache.
    clients[0].send(fp::stat_request{"f", true});
    (void)clients[0].read<fp::stat_reply>();
    EXPECT_EQ(h.digests().computations(), 1U);
}

TEST_F(SessionTest, DigestsNeitherHoldListingsNorOutliveTheirClients) {
    // Holes hash as slowly as data: two digests that take far longer than this test.
    for (const char* name : {"huge1", "huge2"}) {
        std::ofstream{h.root / name};
        std::filesystem::resize_file(h.root / name, std::uintmax_t{64} << 30);
    }
    write_file(h.root / "small", "small");
    h.config.digest_threads = 1;
    h.start();
    auto a = h.connect();
    auto b = h.connect();
    a.send(fp::stat_request{"huge1", true});
    b.send(fp::stat_request{"huge2", true});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (h.digests().computations() < 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10)); // polling a condition
    ASSERT_EQ(h.digests().computations(), 2U); // one hashing, one queued behind it
    // A listing is answered while both digests are still in progress.
    auto lister = h.connect();
    lister.send(fp::list_request{""});
    std::size_t listed = 0;
    for (;;) {
        auto d = lister.read_frame();
        if (auto* e = std::get_if<fp::list_entries>(&d.message)) {
            listed += e->entries.size();
            continue;
        }
        EXPECT_EQ(std::get<fp::list_end>(d.message).code, status::ok);
        break;
    }
    EXPECT_EQ(listed, 3U);
    pollfd waiting[] = {{a.fd(), POLLIN, 0}, {b.fd(), POLLIN, 0}};
    EXPECT_EQ(::poll(waiting, 2, 0), 0) << "a digest was already answered";
    // Nobody waits for them any more: both stop (the running one between two blocks, the
    // queued one before its first), and the single digest thread is free again.
    a.close();
    b.close();
    while (h.digests().abandoned() < 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10)); // polling a condition
    EXPECT_EQ(h.digests().abandoned(), 2U);
    auto c = h.connect();
    c.send(fp::stat_request{"small", true});
    EXPECT_EQ(to_hex(*c.read<fp::stat_reply>().sha256), sha256_hex("small"));
}

TEST_F(SessionTest, ListStreamsLargeDirectoriesCompletely) {
    std::set<std::string> names;
    for (int i = 0; i < 3000; ++i) {
        auto name = "file-" + std::to_string(i) + "-" + std::string(60, 'x');
        write_file(h.root / "big" / name, std::to_string(i));
        names.insert(name);
    }
    std::filesystem::create_directory(h.root / "big" / "subdir");
    names.insert("subdir");
    write_file(h.root / "big" /
                   "bad\xff"
                   "name",
               "not UTF-8: skipped");
    h.start();
    auto c = h.connect();
    c.send(fp::list_request{"big"});
    std::set<std::string> seen;
    int frames = 0;
    for (;;) {
        auto d = c.read_frame();
        ASSERT_FALSE(d.error);
        if (auto* e = std::get_if<fp::list_entries>(&d.message)) {
            ++frames;
            for (const auto& x : e->entries) {
                EXPECT_TRUE(seen.insert(x.name).second) << "listed twice: " << x.name;
                EXPECT_EQ(x.kind,
                          x.name == "subdir" ? fp::file_kind::directory : fp::file_kind::regular);
            }
            continue;
        }
        auto end = std::get<fp::list_end>(d.message);
        EXPECT_EQ(end.code, status::ok);
        EXPECT_EQ(end.entry_count, seen.size());
        break;
    }
    EXPECT_EQ(seen, names);
    EXPECT_GT(frames, 1);
    c.send(fp::list_request{"big/file-1-" + std::string(60, 'x')});
    EXPECT_EQ(c.read_error().code, status::not_regular_file);
    c.send(fp::list_request{""});
    auto root = c.read<fp::list_entries>();
    ASSERT_EQ(root.entries.size(), 1U);
    EXPECT_EQ(root.entries[0].name, "big");
    EXPECT_EQ(c.read<fp::list_end>().entry_count, 1U);
}

/// A control character of any kind: C0, DEL, or C1 (U+0080..U+009F, encoded C2 80..C2 9F).
bool has_control(std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto b = static_cast<unsigned char>(text[i]);
        if (b < 0x20 || b == 0x7F ||
            (b == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) <= 0x9F))
            return true;
    }
    return false;
}

TEST_F(SessionTest, PathsEchoedInErrorTextsAreEscaped) {
    write_file(h.root / "f", "0123456789");
    h.start();
    auto c = h.connect();
    const std::string forged = "a\n[conn 9] 127.0.0.1:1 GET \"x\" - 0 ok 0.1ms";
    c.send(fp::get_request{forged, 0, fp::to_end, std::nullopt});
    auto e = c.read_error();
    EXPECT_EQ(e.code, status::not_found);
    EXPECT_EQ(e.message, "not found: a\\n[conn 9] 127.0.0.1:1 GET \"x\" - 0 ok 0.1ms");
    // Every answer that echoes a path: GET, STAT and LIST refusals, a range, a version guard.
    const std::string hostile = "x\r\x1b[2J\xc2\x9b"
                                "31m\x7f\t";
    for (const auto& m :
         {any_message{fp::get_request{hostile, 0, fp::to_end, std::nullopt}},
          any_message{fp::stat_request{hostile, true}}, any_message{fp::list_request{hostile}},
          any_message{fp::get_request{"f", 11, fp::to_end, std::nullopt}},
          any_message{fp::get_request{"f", 0, fp::to_end, fp::file_identity{}}}}) {
        c.send_raw(encode_exact(m));
        e = c.read_error();
        EXPECT_FALSE(has_control(e.message)) << e.message;
        EXPECT_FALSE(e.closing);
    }
    c.send(fp::stat_request{hostile, false});
    EXPECT_EQ(c.read_error().message, "not found: x\\r\\x1b[2J\\u{9b}31m\\x7f\\t");
    EXPECT_EQ(c.get("f").body, "0123456789"); // the connection still works
}

TEST_F(SessionTest, DotSegmentsAreRemovedBeforeTheLookup) {
    write_file(h.root / "hello.txt", "hello");
    write_file(h.root / "a/b", "b");
    h.start();
    auto c = h.connect();
    for (const auto* path : {"nope/../hello.txt", "./hello.txt", "a/../hello.txt",
                             "a/./b/../../hello.txt", "a//b/../../hello.txt"}) {
        SCOPED_TRACE(path);
        EXPECT_EQ(c.get(path).body, "hello");
    }
    EXPECT_EQ(c.get("a/./b").body, "b");
    for (const auto* path : {"../x", "a/../../x", "a/b/../../.."}) {
        SCOPED_TRACE(path);
        c.send(fp::get_request{path, 0, fp::to_end, std::nullopt});
        auto e = c.read_error();
        EXPECT_EQ(e.code, status::forbidden);
        EXPECT_EQ(e.message, std::string{"forbidden: the path leaves the served root: "} + path);
    }
}

TEST_F(SessionTest, LegalButOverlongPathsGetAnAccurateAnswer) {
    h.start();
    auto c = h.connect();
    c.send(fp::stat_request{std::string(256, 'n'), false});
    auto e = c.read_error();
    EXPECT_EQ(e.code, status::bad_request);
    EXPECT_EQ(e.message.rfind("bad request: a path segment is longer than 255 bytes: nnn", 0), 0U)
        << e.message;
    EXPECT_FALSE(e.closing);
    std::string longest;
    while (longest.size() < 4095)
        longest += "a/";
    longest.back() = 'b'; // 4,096 bytes, the protocol's maximum
    ASSERT_EQ(longest.size(), fp::max_path_size);
    c.send(fp::get_request{longest, 0, fp::to_end, std::nullopt});
    e = c.read_error();
    EXPECT_EQ(e.code, status::too_large);
    EXPECT_EQ(e.message.rfind("too large: the path is 4096 bytes without its empty and dot "
                              "segments; this server resolves at most 4095: a/a/",
                              0),
              0U)
        << e.message;
    EXPECT_FALSE(e.closing);
    c.send(fp::list_request{longest.substr(0, 4095)}); // reaches the kernel: a/a does not exist
    EXPECT_EQ(c.read_error().code, status::not_found);
}

/// The names of a LIST of `path`, and checks that LIST_END counts them.
std::set<std::string> list_names(test_client& c, const std::string& path) {
    c.send(fp::list_request{path});
    std::set<std::string> names;
    for (;;) {
        auto d = c.read_frame();
        if (auto* e = std::get_if<fp::list_entries>(&d.message)) {
            for (const auto& x : e->entries)
                names.insert(x.name);
            continue;
        }
        auto end = std::get<fp::list_end>(d.message);
        EXPECT_EQ(end.code, status::ok);
        EXPECT_EQ(end.entry_count, names.size());
        return names;
    }
}

void write_dotfiles(const std::filesystem::path& root) {
    write_file(root / ".env", "SECRET=1");
    write_file(root / ".git/config", "[core]");
    write_file(root / "dir/.hidden", "hidden");
    write_file(root / "dir/shown", "shown");
    write_file(root / "visible", "visible");
}

TEST_F(SessionTest, DotfilesAreNeitherServedNorStatedNorListed) {
    write_dotfiles(h.root.path());
    h.start();
    auto c = h.connect();
    for (const auto* path : {".env", ".git/config", "dir/.hidden", ".absent", "dir/../.env"}) {
        SCOPED_TRACE(path);
        c.send(fp::get_request{path, 0, fp::to_end, std::nullopt});
        auto e = c.read_error();
        EXPECT_EQ(e.code, status::forbidden);
        EXPECT_EQ(e.message, std::string{"forbidden: dotfiles are not served: "} + path);
        EXPECT_FALSE(e.closing);
        c.send(fp::stat_request{path, true});
        EXPECT_EQ(c.read_error().code, status::forbidden);
    }
    c.send(fp::list_request{".git"});
    EXPECT_EQ(c.read_error().code, status::forbidden);
    EXPECT_EQ(list_names(c, ""), (std::set<std::string>{"dir", "visible"}));
    EXPECT_EQ(list_names(c, "dir"), (std::set<std::string>{"shown"}));
    EXPECT_EQ(c.get("dir/shown").body, "shown");
}

TEST_F(SessionTest, DotfilesAllowServesAndListsThem) {
    write_dotfiles(h.root.path());
    h.config.dotfiles = fs::dotfile_policy::allow;
    h.start();
    auto c = h.connect();
    EXPECT_EQ(c.get(".env").body, "SECRET=1");
    EXPECT_EQ(c.get(".git/config").body, "[core]");
    EXPECT_EQ(c.get("dir/.hidden").body, "hidden");
    c.send(fp::stat_request{".git", false});
    EXPECT_EQ(c.read<fp::stat_reply>().kind, fp::file_kind::directory);
    EXPECT_EQ(list_names(c, ""), (std::set<std::string>{".env", ".git", "dir", "visible"}));
    EXPECT_EQ(list_names(c, "dir"), (std::set<std::string>{".hidden", "shown"}));
}

TEST_F(SessionTest, RequestTimeoutClosesASlowlorisConnection) {
    h.config.request_timeout = std::chrono::milliseconds(300);
    h.config.idle_timeout = std::chrono::seconds(600); // so only the request timeout can close
    h.start();
    auto silent = h.connect(); // sends nothing at all
    auto trickle = h.connect();
    auto frame = encode_exact(fp::stat_request{"f", false});
    trickle.send_raw(std::span{frame}.first(5)); // part of a frame, never the rest
    EXPECT_TRUE(silent.wait_closed());
    EXPECT_TRUE(trickle.wait_closed());
}

TEST_F(SessionTest, IdleTimeoutClosesAKeptAliveConnection) {
    write_file(h.root / "f", "x");
    h.config.idle_timeout = std::chrono::milliseconds(300);
    h.config.request_timeout = std::chrono::seconds(600); // so only the idle timeout can close
    h.start();
    auto c = h.connect();
    EXPECT_EQ(c.get("f").body, "x");
    EXPECT_TRUE(c.wait_closed());
}

TEST_F(SessionTest, ProgressTimeoutAbortsAStuckReaderButNotASlowOne) {
    const auto content = make_content(16 << 20, 5);
    write_file(h.root / "big", content);
    h.config.progress_timeout = std::chrono::milliseconds(400);
    h.config.idle_timeout = std::chrono::seconds(600);
    h.config.request_timeout = std::chrono::seconds(600);
    h.start();
    // A reader that keeps reading, slowly: the whole transfer takes far longer than the
    // progress timeout, yet it completes, because the timeout is between writes.
    auto slow = h.connect();
    slow.set_receive_buffer(64 * 1024);
    slow.send(fp::get_request{"big", 0, 2 << 20, std::nullopt});
    auto header = slow.read<fp::get_header>();
    std::string body;
    const auto started = std::chrono::steady_clock::now();
    while (body.size() < header.length) {
        body += slow.read_body(std::min<std::uint64_t>(256 * 1024, header.length - body.size()));
        std::this_thread::sleep_for(std::chrono::milliseconds(100)); // a slow reader, by design
    }
    EXPECT_GT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(600));
    EXPECT_EQ(slow.read<fp::get_trailer>().code, status::ok);
    EXPECT_TRUE(body == content.substr(0, 2 << 20));

    slow.close();

    // A reader that stops reading: aborted, the connection closes long before 16 MiB arrive.
    auto stuck = h.connect();
    stuck.set_receive_buffer(64 * 1024);
    stuck.send(fp::get_request{"big", 0, fp::to_end, std::nullopt});
    (void)stuck.read<fp::get_header>();
    // Wait (bounded) until the server gives up on it, reading nothing meanwhile. The idle and
    // request timeouts are long, so only the progress timeout can end the session.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (h.sessions() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20)); // polling a condition, bounded
    EXPECT_EQ(h.sessions(), 0U);
    std::size_t received = 0;
    try {
        for (;;)
            received += stuck.read_body(1).size();
    } catch (const connection_ended&) {
    }
    EXPECT_LT(received, content.size());
}

TEST_F(SessionTest, TruncationDuringASendEndsTheConnectionAfterWhatTheFileHad) {
    const std::size_t size = 64 << 20;
    const auto content = make_content(size, 7);
    write_file(h.root / "big", content);
    h.start();
    auto c = h.connect();
    c.set_receive_buffer(64 * 1024);
    c.send(fp::get_request{"big", 0, fp::to_end, std::nullopt});
    auto header = c.read<fp::get_header>();
    ASSERT_EQ(header.length, size);
    auto body = c.read_body(1 << 20);
    ASSERT_EQ(::truncate((h.root / "big").c_str(), 2 << 20), 0);
    // The body stops where the file now ends, and the connection with it: no padding, no
    // trailer (it would have needed 62 MiB of zeros first).
    try {
        for (;;)
            body += c.read_body(1);
    } catch (const connection_ended&) {
    }
    EXPECT_LE(body.size(), std::size_t{2} << 20);
    EXPECT_TRUE(body == content.substr(0, body.size()));
    EXPECT_EQ(h.sessions(), 0U);
    // A retry sees the new size.
    auto retry = h.connect();
    EXPECT_EQ(retry.get("big").header.size, 2U << 20);
}

TEST_F(SessionTest, ModificationDuringASendEndsAsChanged) {
    const std::size_t size = 32 << 20;
    write_file(h.root / "big", make_content(size, 8));
    h.start();
    auto c = h.connect();
    c.set_receive_buffer(64 * 1024);
    c.send(fp::get_request{"big", 0, fp::to_end, std::nullopt});
    (void)c.read<fp::get_header>();
    auto first = c.read_body(1 << 20);
    struct timespec times[2] = {{0, UTIME_OMIT}, {1, 0}}; // a new mtime
    ASSERT_EQ(::utimensat(AT_FDCWD, (h.root / "big").c_str(), times, 0), 0);
    (void)c.read_body(size - first.size());
    EXPECT_EQ(c.read<fp::get_trailer>().code, status::changed);
}

TEST_F(SessionTest, RateLimitSlowsATransfer) {
    write_file(h.root / "f", make_content(2 << 20));
    h.config.rate_limit = 4 << 20; // 4 MiB/s, burst 0.4 MiB
    h.start();
    auto c = h.connect();
    const auto started = std::chrono::steady_clock::now();
    auto r = c.get("f");
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(r.body == make_content(2 << 20));
    // (2 MiB - 0.4 MiB burst) at 4 MiB/s takes at least 0.4 s: a lower bound cannot flake.
    EXPECT_GE(elapsed, std::chrono::milliseconds(390));
}

TEST_F(SessionTest, DrainServesEveryConnectionUntilIdle) {
    const std::size_t size = 8 << 20;
    write_file(h.root / "big", make_content(size, 4));
    write_file(h.root / "s", "s");
    h.start();
    auto fresh = h.connect();  // its first request comes after the drain began
    auto silent = h.connect(); // never sends a request
    auto idle = h.connect();
    auto busy = h.connect();
    busy.set_receive_buffer(64 * 1024);
    busy.send(fp::get_request{"big", 0, fp::to_end, std::nullopt});
    (void)busy.read<fp::get_header>();
    auto first = busy.read_body(1 << 20);
    // `idle` must be registered and waiting before the drain: a STAT round trip proves it.
    idle.send(fp::stat_request{"s", false});
    (void)idle.read<fp::stat_reply>();
    // (The harness starts sessions on the server's thread in order: all are registered now.)
    h.on_server([&] { h.registry().drain(std::chrono::milliseconds(500)); });

    // A connection opened before the drain is served (a segmented download opens its
    // connections first, then sends its GETs) ...
    fresh.send(fp::stat_request{"s", false});
    EXPECT_EQ(fresh.read<fp::stat_reply>().size, 1U);
    // ... and one that stays silent closes once idle for the drain's idle timeout.
    EXPECT_TRUE(silent.wait_closed());

    // The transfer finishes, and the connection answers its next request (the next chunk of
    // a segmented download) ...
    busy.send(fp::stat_request{"s", false}); // pipelined: no idle time before it
    auto rest = busy.read_body(size - first.size());
    EXPECT_EQ(busy.read<fp::get_trailer>().code, status::ok);
    EXPECT_TRUE(first + rest == make_content(size, 4));
    EXPECT_EQ(busy.read<fp::stat_reply>().size, 1U);
    // ... and closes once idle for the drain's short idle timeout; so does `idle`.
    EXPECT_TRUE(busy.wait_closed());
    EXPECT_TRUE(idle.wait_closed());
    EXPECT_TRUE(fresh.wait_closed());
    EXPECT_EQ(h.sessions(), 0U);
}

TEST_F(SessionTest, CancelAllStopsATransferMidBody) {
    write_file(h.root / "big", make_content(64 << 20, 6));
    h.start();
    auto idle = h.connect();
    idle.send(fp::stat_request{"big", false});
    (void)idle.read<fp::stat_reply>();
    auto c = h.connect();
    c.set_receive_buffer(64 * 1024);
    c.send(fp::get_request{"big", 0, fp::to_end, std::nullopt});
    (void)c.read<fp::get_header>();
    (void)c.read_body(1 << 20);
    h.on_server([&] { h.registry().cancel_all(); });
    // Past the drain nobody is answered, not even with shutting_down: the idle one just closes.
    EXPECT_THROW((void)idle.read_error(), connection_ended);
    std::size_t received = 0;
    try {
        for (;;)
            received += c.read_body(1).size();
    } catch (const connection_ended&) {
    }
    EXPECT_LT(received, std::size_t{63} << 20);
    EXPECT_EQ(h.sessions(), 0U);
}

} // namespace
} // namespace ferry::test
