// Unit tests of ferryd's parts: path_resolver, normalize, session_registry,
// connection_limits, rate_limiter, config parsing, and the transport's with_timeout and
// frame_buffer.
#include "ferry/server/agent.hpp"
#include "ferry/server/config.hpp"
#include "ferry/server/listing_limit.hpp"
#include "ferry/server/path_resolver.hpp"
#include "ferry/server/rate_limiter.hpp"
#include "ferry/server/session_registry.hpp"
#include "ferry/server/small_file_cache.hpp"
#include "ferry/transport/frame_io.hpp"
#include "ferry/transport/with_timeout.hpp"
#include "support/temp_dir.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <deque>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

namespace ferry::test {
namespace {

namespace fs = ferry::server;
namespace asio = boost::asio;
using fp_status = ferry::protocol::status;
using ferry::transport::error_code;
using ferry::transport::use_nothrow;

// ---- path_resolver --------------------------------------------------------------------------

TEST(AgentLine, MaintenanceWinsOverDrainAndTheWeightFollowsTheLoad) {
    using ferry::server::agent_line;
    using ferry::server::agent_state;
    EXPECT_EQ(agent_line({true, true, 0, 4}), "maint\n");
    EXPECT_EQ(agent_line({false, true, 0, 4}), "drain\n");
    EXPECT_EQ(agent_line({false, false, 0, 4}), "ready 100%\n");
    EXPECT_EQ(agent_line({false, false, 2, 4}), "ready 50%\n");
    EXPECT_EQ(agent_line({false, false, 1, 3}), "ready 67%\n");
    // Full, or over a limit a reload lowered: 1%, never 0% (which would mean drain).
    EXPECT_EQ(agent_line({false, false, 4, 4}), "ready 1%\n");
    EXPECT_EQ(agent_line({false, false, 9, 4}), "ready 1%\n");
    EXPECT_EQ(agent_line({false, false, 0, 0}), "ready 100%\n");
}

TEST(Normalize, DotSegmentsAreRemovedLexicallyAndMayNotClimbAboveTheRoot) {
    struct row {
        std::string in;
        fp_status status;
        std::string out;
        bool dotfile = false;
    };
    const std::vector<row> rows{
        {"", fp_status::ok, "."},
        {"a", fp_status::ok, "a"},
        {"a//b", fp_status::ok, "a/b"},
        {"a//b/", fp_status::ok, "a/b"},
        {"./hello.txt", fp_status::ok, "hello.txt"},
        {"a/./b", fp_status::ok, "a/b"},
        {"./a/./b/.", fp_status::ok, "a/b"},
        {"a/../b", fp_status::ok, "b"},
        {"nope/../hello.txt", fp_status::ok, "hello.txt"},
        {"a/b/../../c", fp_status::ok, "c"},
        {"a/b/../..", fp_status::ok, "."},
        {"a/..", fp_status::ok, "."},
        {"../x", fp_status::forbidden, ""},
        {"a/../../x", fp_status::forbidden, ""},
        {"..", fp_status::forbidden, ""},
        {"./..", fp_status::forbidden, ""},
        {"/a", fp_status::bad_request, ""},
        {"//a", fp_status::bad_request, ""},
        {".env", fp_status::ok, ".env", true},
        {"a/.git/config", fp_status::ok, "a/.git/config", true},
        {"dir/.hidden", fp_status::ok, "dir/.hidden", true},
        {"..b/c", fp_status::ok, "..b/c", true},
        {".env/../a", fp_status::ok, "a"},
        {"a./b", fp_status::ok, "a./b"},
        {std::string(255, 'a'), fp_status::ok, std::string(255, 'a')},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(r.in);
        const auto n = fs::normalize(r.in);
        EXPECT_EQ(n.status, r.status) << n.reason;
        if (n.status == fp_status::ok) {
            EXPECT_EQ(n.path, r.out);
            EXPECT_EQ(n.dotfile, r.dotfile);
        }
    }
    EXPECT_EQ(fs::normalize("a/../../x").reason, "forbidden: the path leaves the served root");
    EXPECT_EQ(fs::normalize("/a").reason,
              "bad request: the path must be relative to the served root");
}

TEST(Normalize, OverlongSegmentsAndPathsGetAccurateReasons) {
    const auto segment = fs::normalize("dir/" + std::string(256, 'a'));
    EXPECT_EQ(segment.status, fp_status::bad_request);
    EXPECT_EQ(segment.reason, "bad request: a path segment is longer than 255 bytes");
    // 4,096 bytes, the protocol's maximum, every segment short: one byte more than PATH_MAX
    // leaves room for (it counts the NUL).
    std::string longest;
    while (longest.size() < 4094)
        longest += "a/";
    longest += "bb";
    ASSERT_EQ(longest.size(), 4096U);
    const auto path = fs::normalize(longest);
    EXPECT_EQ(path.status, fp_status::too_large);
    EXPECT_EQ(path.reason, "too large: the path is 4096 bytes without its empty and dot "
                           "segments; this server resolves at most 4095");
    longest.pop_back();
    EXPECT_EQ(fs::normalize(longest).status, fp_status::ok); // 4,095 bytes
    longest = "./" + longest.substr(2) + "/";
    EXPECT_EQ(fs::normalize(longest).status, fp_status::ok) << "dot segments do not count";
}

struct ResolverTest : ::testing::Test {
    temp_dir outside;
    temp_dir root;
    void SetUp() override {
        write_file(outside / "secret", "secret");
        write_file(root / "file.txt", "content");
        write_file(root / "dir/nested.txt", "nested");
        write_file(root / "dir/sub/deep.txt", "deep");
        std::filesystem::create_symlink("dir/sub", root / "sublink");
        std::filesystem::create_symlink("file.txt", root / "link_inside");
        std::filesystem::create_symlink("dir", root / "dirlink_inside");
        std::filesystem::create_symlink(outside / "secret", root / "link_absolute_out");
        std::filesystem::create_symlink("../" + outside.path().filename().string() + "/secret",
                                        root / "link_relative_out");
        std::filesystem::create_symlink("dir/../..", root / "link_up");
        std::filesystem::create_symlink("/proc/self/root/etc/hostname", root / "magic");
        std::filesystem::create_symlink("loop", root / "loop");
        std::filesystem::create_symlink("nowhere", root / "dangling");
        ::mkfifo((root / "fifo").c_str(), 0600);
        ::mknod((root / "null").c_str(), S_IFCHR | 0600, makedev(1, 3));
        sock_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        const auto path = (root / "socket").string();
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        ASSERT_EQ(::bind(sock_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    }
    void TearDown() override { ::close(sock_); }
    int sock_ = -1;
};

/// A file version as fstat would describe it.
struct stat version(std::uint64_t ino, std::int64_t size, std::int64_t mtime_s,
                    std::int64_t ctime_s) {
    struct stat st {};
    st.st_dev = 1;
    st.st_ino = ino;
    st.st_size = size;
    st.st_mtim.tv_sec = mtime_s;
    st.st_ctim.tv_sec = ctime_s;
    return st;
}

std::shared_ptr<const std::string> bytes(std::size_t n, char c) {
    return std::make_shared<const std::string>(n, c);
}

TEST(SmallFileCache, KeepsOnlySettledVersionsAndAnswersOnlyForThatExactVersion) {
    constexpr std::int64_t second = 1'000'000'000;
    fs::small_file_cache cache{4096}; // settles in 3 s
    const auto v = version(7, 10, 100, 100);
    cache.offer(v, bytes(10, 'a'), 102 * second + second / 2); // 2.5 s old: not kept yet
    EXPECT_EQ(cache.find(v), nullptr);
    cache.offer(v, bytes(10, 'a'), 103 * second);
    ASSERT_NE(cache.find(v), nullptr);
    EXPECT_EQ(*cache.find(v), std::string(10, 'a'));
    // Any other size, mtime or ctime of the same inode is another version.
    EXPECT_EQ(cache.find(version(7, 11, 100, 100)), nullptr);
    EXPECT_EQ(cache.find(version(7, 10, 99, 100)), nullptr);
    EXPECT_EQ(cache.find(version(7, 10, 100, 150)), nullptr);
    EXPECT_EQ(cache.find(version(8, 10, 100, 100)), nullptr);
    // Bytes that are not the whole version are refused; so is an empty file (nothing saved).
    cache.offer(version(9, 10, 100, 100), bytes(9, 'b'), 200 * second);
    EXPECT_EQ(cache.find(version(9, 10, 100, 100)), nullptr);
    cache.offer(version(10, 0, 100, 100), bytes(0, 'b'), 200 * second);
    EXPECT_EQ(cache.find(version(10, 0, 100, 100)), nullptr);
    // A newer version of the inode replaces the old one.
    const auto v2 = version(7, 10, 150, 150);
    cache.offer(v2, bytes(10, 'c'), 200 * second);
    EXPECT_EQ(*cache.find(v2), std::string(10, 'c'));
    EXPECT_EQ(cache.find(v), nullptr);
    EXPECT_EQ(cache.size_in_bytes(), fs::small_file_cache::cost(std::string(10, 'c')));
    // A file stamped in the year 2400 (past 64-bit nanoseconds) is judged without overflow.
    auto future = version(11, 10, 13'569'465'600, 150);
    cache.offer(future, bytes(10, 'd'), 200 * second);
    EXPECT_EQ(cache.find(future), nullptr);
}

TEST(SmallFileCache, StaysWithinItsBudgetCountingBookkeepingAndDroppingTheLeastRecentlyUsed) {
    constexpr std::int64_t now = 1000LL * 1'000'000'000;
    const auto each = fs::small_file_cache::cost(std::string(100, 'x'));
    fs::small_file_cache cache{3 * each};
    for (std::uint64_t ino = 1; ino <= 3; ++ino)
        cache.offer(version(ino, 100, 1, 1), bytes(100, 'x'), now);
    EXPECT_EQ(cache.size_in_bytes(), 3 * each);
    ASSERT_NE(cache.find(version(1, 100, 1, 1)), nullptr);    // 1 is now the most recent
    cache.offer(version(4, 100, 1, 1), bytes(100, 'y'), now); // 2 goes
    EXPECT_EQ(cache.size_in_bytes(), 3 * each);
    EXPECT_EQ(cache.find(version(2, 100, 1, 1)), nullptr);
    EXPECT_NE(cache.find(version(1, 100, 1, 1)), nullptr);
    EXPECT_NE(cache.find(version(3, 100, 1, 1)), nullptr);
    EXPECT_NE(cache.find(version(4, 100, 1, 1)), nullptr);
    const auto too_big = static_cast<std::int64_t>(3 * each - 255); // costs one byte too many
    cache.offer(version(5, too_big, 1, 1), bytes(static_cast<std::size_t>(too_big), 'z'), now);
    EXPECT_EQ(cache.find(version(5, too_big, 1, 1)), nullptr);
    EXPECT_EQ(cache.size_in_bytes(), 3 * each);

    fs::small_file_cache none{0};
    none.offer(version(1, 1, 1, 1), bytes(1, 'x'), now);
    EXPECT_EQ(none.find(version(1, 1, 1, 1)), nullptr);
}

TEST_F(ResolverTest, HostileNamesNeverOpenAnythingOutsideTheRoot) {
    fs::path_resolver r{root.path(), fs::symlink_policy::inside};
    struct row {
        std::string path;
        fp_status status;
    };
    const std::vector<row> rows{
        {"file.txt", fp_status::ok},
        {"dir/nested.txt", fp_status::ok},
        {"link_inside", fp_status::ok},
        {"dirlink_inside/nested.txt", fp_status::ok},
        {"dir/../file.txt", fp_status::ok},
        {"nope/../file.txt", fp_status::ok},
        {"dir/nested.txt/../../file.txt", fp_status::ok},
        {"dirlink_inside/../file.txt", fp_status::ok},
        {"sublink/deep.txt", fp_status::ok},
        // Lexical: `sublink/..` is the root, not dir/ (where the kernel would take it).
        {"sublink/../file.txt", fp_status::ok},
        {"sublink/../nested.txt", fp_status::not_found},
        {"../" + outside.path().filename().string() + "/secret", fp_status::forbidden},
        {"..", fp_status::forbidden},
        {"dir/../../etc/passwd", fp_status::forbidden},
        {"link_absolute_out", fp_status::forbidden},
        {"link_relative_out", fp_status::forbidden},
        {"link_up/etc/passwd", fp_status::forbidden},
        {"magic", fp_status::forbidden},
        {"loop", fp_status::forbidden},
        {"dangling", fp_status::not_found},
        {"/etc/passwd", fp_status::bad_request},
        {"missing", fp_status::not_found},
        {"file.txt/x", fp_status::not_found},
        {"fifo", fp_status::not_regular_file},
        {"null", fp_status::not_regular_file},
        {"socket", fp_status::not_regular_file},
        {"dir", fp_status::not_regular_file},
        {"", fp_status::not_regular_file},
        {std::string(256, 'a'), fp_status::bad_request},
        {std::string(4000, '/') + "file.txt", fp_status::bad_request},
        {"./file.txt", fp_status::ok},
        {"dir//nested.txt/", fp_status::ok},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.path.substr(0, 80));
        if (row.path == "null" &&
            !std::filesystem::exists(std::filesystem::symlink_status(root / "null")))
            continue; // creating a device node needs root (CAP_MKNOD)
        auto f = r.open_file(row.path);
        EXPECT_EQ(f.status, row.status) << f.reason;
        EXPECT_EQ(static_cast<bool>(f.fd), row.status == fp_status::ok);
        if (f.status == fp_status::ok) {
            EXPECT_TRUE(S_ISREG(f.st.st_mode));
        }
    }
}

TEST_F(ResolverTest, DenyRefusesEverySymlinkFollowFollowsThem) {
    fs::path_resolver deny{root.path(), fs::symlink_policy::deny};
    EXPECT_EQ(deny.open_file("link_inside").status, fp_status::forbidden);
    EXPECT_EQ(deny.open_file("dirlink_inside/nested.txt").status, fp_status::forbidden);
    EXPECT_EQ(deny.open_file("file.txt").status, fp_status::ok);
    fs::path_resolver follow{root.path(), fs::symlink_policy::follow};
    EXPECT_EQ(follow.open_file("link_absolute_out").status, fp_status::ok);
    EXPECT_EQ(follow.open_file("magic").status, fp_status::forbidden); // never magic links
    EXPECT_EQ(follow.open_file("../x").status, fp_status::forbidden);
}

TEST_F(ResolverTest, OverlongNamesAreRefusedWithAnAccurateReason) {
    fs::path_resolver r{root.path(), fs::symlink_policy::inside};
    auto segment = r.open_file("dir/" + std::string(256, 'a'));
    EXPECT_EQ(segment.status, fp_status::bad_request);
    EXPECT_EQ(segment.reason, "bad request: a path segment is longer than 255 bytes");
    EXPECT_EQ(r.open_file(std::string(255, 'a')).status, fp_status::not_found);
    std::string longest;
    while (longest.size() < 4092)
        longest += "dir/";
    longest += "abcd"; // 4,096 bytes: legal in the protocol, one too many for the kernel
    auto path = r.stat_path(longest);
    EXPECT_EQ(path.status, fp_status::too_large);
    EXPECT_NE(path.reason.find("the path is 4096 bytes"), std::string::npos) << path.reason;
    // One byte shorter reaches the kernel, which looks it up (dir/dir does not exist).
    EXPECT_EQ(r.stat_path(longest.substr(0, 4095)).status, fp_status::not_found);
}

TEST_F(ResolverTest, DotfilesAreRefusedByNameUnlessAllowed) {
    write_file(root / ".env", "SECRET=1");
    write_file(root / ".git/config", "[core]");
    write_file(root / "dir/.hidden", "hidden");
    fs::path_resolver deny{root.path(), fs::symlink_policy::inside};
    for (const auto* path : {".env", ".git/config", "dir/.hidden", ".missing", "dir/../.env",
                             "./.env", "nope/.git/config"}) {
        SCOPED_TRACE(path);
        const auto f = deny.open_file(path);
        EXPECT_EQ(f.status, fp_status::forbidden); // the same answer whether it exists or not
        EXPECT_EQ(f.reason, "forbidden: dotfiles are not served");
        EXPECT_FALSE(f.fd);
        EXPECT_EQ(deny.stat_path(path).status, fp_status::forbidden);
    }
    EXPECT_EQ(deny.open_directory(".git").status, fp_status::forbidden);
    EXPECT_EQ(deny.open_file(".env/../file.txt").status, fp_status::ok); // names file.txt
    EXPECT_FALSE(deny.lists(".env"));
    EXPECT_TRUE(deny.lists("file.txt"));
    EXPECT_TRUE(deny.lists("a.b"));

    fs::path_resolver allow{root.path(), fs::symlink_policy::inside, fs::dotfile_policy::allow};
    EXPECT_EQ(allow.open_file(".env").status, fp_status::ok);
    EXPECT_EQ(allow.open_file(".git/config").status, fp_status::ok);
    EXPECT_EQ(allow.open_file("dir/.hidden").status, fp_status::ok);
    EXPECT_EQ(allow.open_directory(".git").status, fp_status::ok);
    EXPECT_EQ(allow.open_file(".missing").status, fp_status::not_found);
    EXPECT_TRUE(allow.lists(".env"));
}

TEST_F(ResolverTest, DirectoriesAndStat) {
    fs::path_resolver r{root.path(), fs::symlink_policy::inside};
    EXPECT_EQ(r.open_directory("").status, fp_status::ok);
    EXPECT_EQ(r.open_directory("dir").status, fp_status::ok);
    EXPECT_EQ(r.open_directory("file.txt").status, fp_status::not_regular_file);
    EXPECT_EQ(r.open_directory("..").status, fp_status::forbidden);
    auto s = r.stat_path("fifo"); // stat never opens the FIFO for reading
    EXPECT_EQ(s.status, fp_status::ok);
    EXPECT_EQ(fs::kind_of(s.st), ferry::protocol::file_kind::other);
    EXPECT_EQ(fs::kind_of(r.stat_path("dir").st), ferry::protocol::file_kind::directory);
}

TEST_F(ResolverTest, IdentityChangesWithTheFile) {
    fs::path_resolver r{root.path(), fs::symlink_policy::inside};
    const auto a = fs::make_identity(r.open_file("file.txt").st);
    EXPECT_EQ(a, fs::make_identity(r.open_file("link_inside").st));
    write_file(root / "file.txt", "content+");
    EXPECT_NE(a, fs::make_identity(r.open_file("file.txt").st));
}

TEST(PathResolver, AMissingRootFailsAtStartUp) {
    EXPECT_THROW(fs::path_resolver("/nonexistent/ferry-root", fs::symlink_policy::inside),
                 std::system_error);
}

// ---- session_registry and connection_limits -------------------------------------------------

TEST(ListingLimit, OneAddressHoldsAQuarterOfTheSlotsAndAllOfThemAreBounded) {
    fs::listing_limit limit{8}; // 2 per address
    const auto a = asio::ip::make_address("10.0.0.1");
    const auto b = asio::ip::make_address("::1");
    EXPECT_EQ(limit.max_per_address(), 2U);
    std::deque<fs::listing_slot> held;
    held.push_back(limit.try_acquire(a));
    held.push_back(limit.try_acquire(a));
    EXPECT_FALSE(limit.try_acquire(a)); // a's share
    for (int i = 0; i < 2; ++i)
        held.push_back(limit.try_acquire(b));
    for (const char* other : {"10.0.0.2", "10.0.0.3"})
        for (int i = 0; i < 2; ++i)
            held.push_back(limit.try_acquire(asio::ip::make_address(other)));
    for (const auto& s : held)
        EXPECT_TRUE(s);
    EXPECT_EQ(limit.active(), 8U);
    EXPECT_FALSE(limit.try_acquire(asio::ip::make_address("10.0.0.4"))); // all of them
    held.pop_front();                                                    // one of a's ends
    EXPECT_EQ(limit.active(), 7U);
    EXPECT_FALSE(limit.try_acquire(b)); // b still holds its share
    EXPECT_TRUE(limit.try_acquire(a));  // a may again (and gives it back at once)
    EXPECT_EQ(limit.active(), 7U);
    EXPECT_EQ(fs::listing_limit{1}.max_per_address(), 1U); // at least one
}

TEST(ConnectionLimits, CountsAreExactAndSayWhichLimitRefused) {
    using refusal = fs::connection_limits::refusal;
    fs::connection_limits limits{3, 2};
    const auto a = asio::ip::make_address("10.0.0.1");
    const auto b = asio::ip::make_address("::1");
    bool counted = false;
    EXPECT_EQ(limits.try_acquire(a, counted), refusal::none);
    EXPECT_TRUE(counted);
    EXPECT_EQ(limits.try_acquire(a, counted), refusal::none);
    EXPECT_EQ(limits.try_acquire(a, counted), refusal::max_connections_per_ip);
    EXPECT_EQ(limits.try_acquire(b, counted), refusal::none);
    EXPECT_EQ(limits.try_acquire(b, counted), refusal::max_connections);
    EXPECT_EQ(limits.active(), 3U);
    limits.release(a, true);
    EXPECT_EQ(limits.try_acquire(b, counted), refusal::none);
    EXPECT_EQ(limits.try_acquire(a, counted), refusal::max_connections);
    { fs::connection_slot slot{limits, b, true}; }
    EXPECT_EQ(limits.active(), 2U);
}

TEST(ConnectionLimits, NewLimitsApplyToTheConnectionsThatComeNext) {
    using refusal = fs::connection_limits::refusal;
    fs::connection_limits limits{10, 0};
    const auto a = asio::ip::make_address("10.0.0.1");
    bool counted = true;
    EXPECT_EQ(limits.try_acquire(a, counted), refusal::none);
    EXPECT_FALSE(counted); // no per-address cap: not counted per address
    limits.set_limits(10, 1);
    EXPECT_EQ(limits.try_acquire(a, counted), refusal::none); // the first one is not counted
    EXPECT_TRUE(counted);
    EXPECT_EQ(limits.try_acquire(a, counted), refusal::max_connections_per_ip);
    limits.release(a, false); // the first one leaves: the count of a stays exact
    EXPECT_EQ(limits.try_acquire(a, counted), refusal::max_connections_per_ip);
    limits.release(a, true);
    EXPECT_EQ(limits.try_acquire(a, counted), refusal::none);
    limits.set_limits(1, 0);
    EXPECT_EQ(limits.try_acquire(a, counted), refusal::max_connections);
    EXPECT_EQ(limits.active(), 1U);
}

asio::awaitable<void> wait_forever(bool& finished, error_code& result) {
    asio::steady_timer t{co_await asio::this_coro::executor, std::chrono::hours(1)};
    auto [ec] = co_await t.async_wait(use_nothrow);
    result = ec;
    finished = true;
}

/// A registry with connections over socket pairs (the test keeps the other ends open in
/// `peers`: a parked wait would see their close as readable).
struct SessionRegistryTest : ::testing::Test {
    asio::io_context ctx;
    fs::connection_limits limits{10, 0};
    fs::session_registry registry{ctx}; // its connections hold slots of `limits`
    std::vector<fs::stream_socket> peers;
    std::vector<std::pair<std::uint64_t, bool>> ended; ///< (id, timed out), as waits end

    fs::connection& add(std::uint64_t id) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            throw std::system_error(errno, std::generic_category(), "socketpair");
        const asio::generic::stream_protocol unix_stream{AF_UNIX, 0};
        fs::stream_socket ours{ctx, unix_stream, sv[0]};
        peers.emplace_back(ctx, unix_stream, sv[1]);
        bool counted = false;
        EXPECT_EQ(limits.try_acquire({}, counted), fs::connection_limits::refusal::none);
        return registry.add(std::move(ours), id, 0, fs::connection_slot{limits, {}, counted}, 0);
    }

    /// Parks `c` and records how its wait ends in `ended`.
    void park(fs::connection& c, fs::session_registry::wait kind,
              std::chrono::milliseconds timeout) {
        registry.park(c, kind, timeout);
        c.socket.async_wait(fs::stream_socket::wait_read, [this, &c](const error_code& ec) {
            EXPECT_EQ(ec, asio::error::operation_aborted);
            fs::session_registry::unpark(c);
            ended.emplace_back(c.id, c.timed_out);
        });
    }
};

TEST_F(SessionRegistryTest, OneTimerTimesOutParkedConnectionsInDeadlineOrder) {
    using wait = fs::session_registry::wait;
    // Keep-alive waits are longer than first-request ones here; the lists interleave.
    park(add(1), wait::keep_alive, std::chrono::milliseconds(300));
    park(add(2), wait::first_request, std::chrono::milliseconds(100));
    park(add(3), wait::keep_alive, std::chrono::milliseconds(300));
    park(add(4), wait::first_request, std::chrono::milliseconds(100));
    EXPECT_EQ(registry.parked(), 4U);
    EXPECT_EQ(limits.active(), 4U);
    ctx.run_for(std::chrono::seconds(10)); // returns early: nothing is left waiting
    const std::vector<std::pair<std::uint64_t, bool>> expected{
        {2, true}, {4, true}, {1, true}, {3, true}};
    EXPECT_EQ(ended, expected);
    EXPECT_EQ(registry.parked(), 0U);
    EXPECT_EQ(registry.size(), 4U); // timing out is the owner's to finish
    EXPECT_TRUE(ctx.stopped());
}

TEST_F(SessionRegistryTest, ADrainLeavesNoTimerBehindOnceNothingIsParked) {
    using wait = fs::session_registry::wait;
    // A connection parked with a long timeout is woken by its request, served and closed: the
    // sweeper stays armed for its old deadline.
    auto& c = add(1);
    registry.park(c, wait::keep_alive, std::chrono::hours(1));
    bool woken = false;
    c.socket.async_wait(fs::stream_socket::wait_read, [&](const error_code&) {
        fs::session_registry::unpark(c);
        woken = true;
    });
    const char byte = 'x';
    ASSERT_EQ(::send(peers.back().native_handle(), &byte, 1, 0), 1);
    while (!woken)
        ctx.run_one_for(std::chrono::seconds(5));
    registry.remove(c);
    // Draining with nothing parked: the io_context has nothing left and stops at once (so a
    // drained server exits at once, not an hour later).
    registry.drain(std::chrono::milliseconds(100));
    const auto started = std::chrono::steady_clock::now();
    ctx.run_for(std::chrono::seconds(5));
    EXPECT_TRUE(ctx.stopped());
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(4));
}

TEST_F(SessionRegistryTest, AShorterTimeoutAppliesToTheParkedAndTheNextConnections) {
    using wait = fs::session_registry::wait;
    // A reload shortened the keep-alive timeout from 30 s to 50 ms: the connection parked
    // before it and the one parked after it both time out within 50 ms, not in 30 s.
    park(add(1), wait::keep_alive, std::chrono::seconds(30));
    registry.shorten(wait::keep_alive, std::chrono::milliseconds(50));
    park(add(2), wait::keep_alive, std::chrono::milliseconds(50));
    park(add(3), wait::first_request, std::chrono::seconds(30)); // another list: untouched
    const auto started = std::chrono::steady_clock::now();
    while (ended.size() < 2 && std::chrono::steady_clock::now() - started < std::chrono::seconds(5))
        ctx.run_one_for(std::chrono::seconds(1));
    const std::vector<std::pair<std::uint64_t, bool>> expected{{1, true}, {2, true}};
    EXPECT_EQ(ended, expected);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(4));
    registry.cancel_all();
    ctx.run_for(std::chrono::seconds(5));
}

TEST_F(SessionRegistryTest, DrainShortensEveryParkedWaitAndCancelAllStopsBusyOnes) {
    using wait = fs::session_registry::wait;
    auto& fresh = add(1);
    park(fresh, wait::first_request, std::chrono::hours(1));
    auto& kept = add(3);
    park(kept, wait::keep_alive, std::chrono::hours(1));
    auto& busy = add(2);
    busy.busy = true;
    bool busy_done = false;
    error_code busy_ec;
    asio::co_spawn(ctx, wait_forever(busy_done, busy_ec),
                   asio::bind_cancellation_slot(busy.signal.slot(), [](std::exception_ptr) {}));
    ctx.poll();
    EXPECT_EQ(registry.size(), 3U);
    registry.drain(std::chrono::milliseconds(100));
    ctx.poll();
    EXPECT_TRUE(registry.draining());
    // Nobody is woken at once: a request may still come on either (a connection opened just
    // before the drain sends its first one after it) ...
    EXPECT_TRUE(ended.empty());
    EXPECT_EQ(registry.parked(), 2U);
    // ... and both time out after the drain's short idle timeout, not in an hour.
    const auto started = std::chrono::steady_clock::now();
    while (ended.size() < 2 &&
           std::chrono::steady_clock::now() - started < std::chrono::seconds(10))
        ctx.run_one_for(std::chrono::seconds(1));
    const std::vector<std::pair<std::uint64_t, bool>> expected{{1, true}, {3, true}};
    EXPECT_EQ(ended, expected);
    EXPECT_FALSE(busy_done); // busy connections finish their answer
    registry.cancel_all();
    ctx.run_for(std::chrono::seconds(5));
    EXPECT_TRUE(busy_done);
    EXPECT_EQ(busy_ec, asio::error::operation_aborted);
    registry.remove(fresh);
    registry.remove(kept);
    registry.remove(busy);
    EXPECT_EQ(registry.size(), 0U);
    EXPECT_EQ(limits.active(), 0U); // the slots went with the connections
}

// ---- rate_limiter ---------------------------------------------------------------------------

TEST(RateLimiter, ABucketOfATenthOfASecond) {
    using namespace std::chrono;
    const auto t0 = ferry::transport::clock::now();
    fs::rate_limiter limiter{1'000'000, t0}; // 1 MB/s: burst 100,000 bytes, pieces >= 20,000
    EXPECT_EQ(limiter.burst(), 100'000U);
    EXPECT_EQ(limiter.min_piece(), 20'000U);
    ferry::transport::clock::duration wait{};
    EXPECT_EQ(limiter.allowance(1'000'000, t0, wait), 100'000U);
    limiter.consume(100'000);
    // An empty bucket waits for a whole piece (20 ms), not for one byte.
    EXPECT_EQ(limiter.allowance(1'000'000, t0, wait), 0U);
    EXPECT_GE(wait, milliseconds(20));
    EXPECT_LE(wait, milliseconds(21));
    EXPECT_EQ(limiter.allowance(1'000'000, t0 + milliseconds(10), wait), 0U); // half a piece
    EXPECT_EQ(limiter.allowance(1'000'000, t0 + milliseconds(50), wait), 50'000U);
    EXPECT_EQ(limiter.allowance(1'000'000, t0 + seconds(10), wait),
              100'000U); // capped at the burst
    fs::rate_limiter unlimited{0};
    EXPECT_EQ(unlimited.allowance(123456789, t0, wait), 123456789U);
}

TEST(RateLimiter, PiecesAreNeverTinyAndTheLongRunRateIsExact) {
    using namespace std::chrono;
    using ferry::transport::clock;
    for (const std::uint64_t rate : {1'000U, 100'000U, 1'000'000U, 8'000'000U, 200'000'000U}) {
        SCOPED_TRACE(rate);
        const auto t0 = clock::now();
        fs::rate_limiter limiter{rate, t0};
        EXPECT_GE(limiter.min_piece(), std::min<std::uint64_t>(16384, limiter.burst()));
        // A sender that always wants 4 MiB, sleeps exactly as long as it is told, and sends
        // whatever it is allowed at once: the schedule of pieces the limiter makes.
        const std::uint64_t total = std::max<std::uint64_t>(rate * 20, 4 << 20); // >= 20 s
        std::uint64_t sent = 0;
        std::size_t waits = 0;
        auto now = t0;
        while (sent < total) {
            clock::duration wait{};
            const auto want = std::min<std::uint64_t>(total - sent, 4 << 20);
            const auto n = limiter.allowance(want, now, wait);
            if (n == 0) {
                ASSERT_GT(wait, clock::duration::zero());
                now += wait;
                ++waits;
                // Each wait is long enough: the next allowance is not 0 again.
                ASSERT_NE(limiter.allowance(want, now, wait), 0U);
                continue;
            }
            if (n != want) { // only the last piece may be below the minimum
                ASSERT_GE(n, limiter.min_piece()) << "at byte " << sent;
            }
            limiter.consume(n);
            sent += n;
        }
        // (total - burst) bytes at `rate`: exact to within 2 %.
        const double expected =
            static_cast<double>(total - limiter.burst()) / static_cast<double>(rate);
        const double took = duration<double>(now - t0).count();
        EXPECT_NEAR(took, expected, expected * 0.02);
        // One wait per piece at most: pieces of min_piece() bytes, never a flurry of tiny ones.
        EXPECT_LE(static_cast<double>(waits),
                  took * static_cast<double>(rate) / static_cast<double>(limiter.min_piece()) + 2);
    }
}

// ---- transport ------------------------------------------------------------------------------

asio::awaitable<void> read_with_timeout(asio::local::stream_protocol::socket& s,
                                        std::chrono::milliseconds timeout, error_code& out) {
    std::array<char, 16> buf;
    auto [ec, n] = co_await ferry::transport::with_timeout(
        s.async_read_some(asio::buffer(buf), asio::deferred), timeout);
    out = ec;
}

TEST(WithTimeout, ATimerBranchBecomesTimedOutAndCancellationStaysAborted) {
    asio::io_context ctx;
    asio::local::stream_protocol::socket a{ctx}, b{ctx};
    asio::local::connect_pair(a, b);
    error_code ec;
    asio::co_spawn(ctx, read_with_timeout(a, std::chrono::milliseconds(50), ec),
                   [](std::exception_ptr) {});
    ctx.run_for(std::chrono::seconds(10));
    EXPECT_EQ(ec, asio::error::timed_out);

    // The operation wins when it completes first.
    ctx.restart();
    asio::write(b, asio::buffer("x", 1));
    asio::co_spawn(ctx, read_with_timeout(a, std::chrono::seconds(10), ec),
                   [](std::exception_ptr) {});
    ctx.run_for(std::chrono::seconds(10));
    EXPECT_FALSE(ec);

    // The caller's own cancellation is not a timeout.
    ctx.restart();
    asio::cancellation_signal cancel;
    asio::co_spawn(ctx, read_with_timeout(a, std::chrono::seconds(10), ec),
                   asio::bind_cancellation_slot(cancel.slot(), [](std::exception_ptr) {}));
    ctx.poll();
    cancel.emit(asio::cancellation_type::terminal);
    ctx.run_for(std::chrono::seconds(10));
    EXPECT_EQ(ec, asio::error::operation_aborted);
}

TEST(FrameBuffer, HoldsNoMemoryWhenIdle) {
    ferry::transport::frame_buffer b;
    EXPECT_TRUE(b.empty());
    auto space = b.prepare(100);
    EXPECT_GE(space.size(), 100U);
    space[0] = std::byte{1};
    space[1] = std::byte{2};
    b.commit(2);
    b.consume(1);
    EXPECT_EQ(b.data().size(), 1U);
    EXPECT_EQ(b.data()[0], std::byte{2});
    b.release(); // not empty: kept
    EXPECT_EQ(b.data().size(), 1U);
    b.consume(1);
    b.release();
    EXPECT_TRUE(b.empty());
    EXPECT_GE(b.prepare(10).size(), 10U);
}

// ---- config ---------------------------------------------------------------------------------

fs::command_line parse(std::vector<std::string> args) {
    std::vector<const char*> argv{"ferryd"};
    for (auto& a : args)
        argv.push_back(a.c_str());
    return fs::parse_command_line(static_cast<int>(argv.size()), argv.data());
}

TEST(Config, DefaultsAndListenAddresses) {
    auto c = *parse({"/srv/files"}).config;
    EXPECT_EQ(c.root, "/srv/files");
    ASSERT_EQ(c.listen.size(), 1U);
    EXPECT_EQ(c.listen[0].port(), 7878);
    EXPECT_EQ(c.listen[0].address().to_string(), "127.0.0.1");
    EXPECT_EQ(c.symlinks, fs::symlink_policy::inside);
    EXPECT_EQ(c.dotfiles, fs::dotfile_policy::deny);
    EXPECT_EQ(parse({"/srv/files", "--dotfiles=allow"}).config->dotfiles,
              fs::dotfile_policy::allow);
    EXPECT_EQ(c.drain_timeout, std::chrono::seconds(30));
    EXPECT_EQ(c.max_listings, 32U);
    EXPECT_EQ(parse({"/srv/files", "--max-listings", "1"}).config->max_listings, 1U);
    auto v6 = fs::parse_listen_address("[::1]:0");
    EXPECT_TRUE(v6.address().is_v6());
    EXPECT_EQ(v6.port(), 0);
    for (const auto* bad : {"127.0.0.1", "127.0.0.1:", "::1:80", "[::1]", "localhost:80",
                            "1.2.3.4:65536", "1.2.3.4:x"})
        EXPECT_THROW(fs::parse_listen_address(bad), fs::config_error) << bad;
}

TEST(Config, TrustedProxyNetworksAreStrictAndMatchByPrefix) {
    const auto addr = [](const char* a) { return asio::ip::make_address(a); };
    const auto ten = fs::parse_ip_network("10.0.0.0/8");
    EXPECT_TRUE(ten.contains(addr("10.255.1.2")));
    EXPECT_FALSE(ten.contains(addr("11.0.0.1")));
    EXPECT_TRUE(ten.contains(addr("::ffff:10.1.2.3"))); // IPv4-mapped counts as IPv4
    EXPECT_FALSE(ten.contains(addr("::1")));
    const auto one = fs::parse_ip_network("127.0.0.1/32");
    EXPECT_TRUE(one.contains(addr("127.0.0.1")));
    EXPECT_FALSE(one.contains(addr("127.0.0.2")));
    EXPECT_TRUE(fs::parse_ip_network("0.0.0.0/0").contains(addr("203.0.113.7")));
    EXPECT_FALSE(fs::parse_ip_network("0.0.0.0/0").contains(addr("2001:db8::1")));
    const auto doc = fs::parse_ip_network("2001:db8::/33");
    EXPECT_TRUE(doc.contains(addr("2001:db8:7fff::1")));
    EXPECT_FALSE(doc.contains(addr("2001:db8:8000::1")));
    EXPECT_TRUE(fs::parse_ip_network("::1/128").contains(addr("::1")));
    EXPECT_FALSE(fs::parse_ip_network("::1/128").contains(addr("127.0.0.1")));
    EXPECT_TRUE(fs::parse_ip_network("10.0.0.4/31").contains(addr("10.0.0.5")));
    for (const auto* bad :
         {"10.0.0.1/8", "10.0.0.0", "10.0.0.0/33", "10.0.0.0/08", "::1/129", "localhost/32",
          "10.0.0.0/", "/8", "10.0.0.0/8/8", "fe80::1%lo/128", "2001:db8::1/32", " 10.0.0.0/8"})
        EXPECT_THROW(fs::parse_ip_network(bad), fs::config_error) << bad;
}

TEST(Config, TheCommandLineOverridesTheConfigFile) {
    temp_dir d;
    write_file(d / "ferryd.conf",
               "root = /srv\nlisten = 127.0.0.1:9000\nthreads = 3\n# comment\nrate-limit = 1000\n");
    auto c = *parse({"--config", (d / "ferryd.conf").string(), "--threads", "5"}).config;
    EXPECT_EQ(c.root, "/srv");
    EXPECT_EQ(c.listen.at(0).port(), 9000);
    EXPECT_EQ(c.threads, 5U);
    EXPECT_EQ(c.rate_limit, 1000U);
    write_file(d / "bad.conf", "no-such-key = 1\n");
    EXPECT_THROW(parse({"--config", (d / "bad.conf").string()}), fs::config_error);
    EXPECT_THROW(parse({"--config", (d / "missing.conf").string()}), fs::config_error);
    // The argument DIR is the command line's root: it wins over the file's too.
    EXPECT_EQ(parse({"--config", (d / "ferryd.conf").string(), "/data"}).config->root, "/data");
}

TEST(Config, TheExampleFileSetsEveryOptionButTheRootToItsDefault) {
    const std::string example = FERRY_SOURCE_DIR "/config/ferryd.conf";
    EXPECT_EQ(*parse({"--config", example}).config, *parse({"/srv/ferry"}).config);
    EXPECT_THROW(parse({"--config", example, "--no-such-key"}), fs::config_error);
}

TEST(Config, BadValuesAreClearErrors) {
    // Each is refused with a message naming the option (a root is given: its absence is an
    // error of its own).
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"--symlinks", "sometimes"},
          {"--dotfiles", "yes"},
          {"--request-timeout", "0"},
          {"--max-connections", "0"},
          {"--threads", "x"},
          {"--threads", "-1"},
          {"--threads", "1025"},
          {"--max-connections", "-5"},
          {"--max-connections-per-ip", "-1"},
          {"--max-listings", "0"},
          {"--max-listings", "-1"},
          {"--rate-limit", "-1"},
          {"--rate-limit", "18446744073709551616"},
          {"--digest-threads", "0"},
          {"--digest-cache-entries", "+5"},
          {"--request-timeout", "-1"},
          {"--idle-timeout", "1e300"},
          {"--drain-timeout", "inf"},
          {"--busy-retry-after", "nan"},
          {"--progress-timeout", " 3"},
          {"--listen", "127.0.0.1:-1"},
          {"--listen", "127.0.0.1: 80"},
          {"--log-level", "loud"}}) {
        try {
            (void)parse({"/srv", args[0], args[1]});
            ADD_FAILURE() << args[0] << " " << args[1] << " was accepted";
        } catch (const fs::config_error& e) {
            EXPECT_NE(std::string{e.what()}.find(args[0]), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(parse({"/srv", "--bogus"}), fs::config_error);
    EXPECT_THROW(parse({"/srv", "--thread", "4"}), fs::config_error); // not guessed as --threads
    EXPECT_EQ(parse({"/srv", "--request-timeout", "0.25"}).config->request_timeout,
              std::chrono::milliseconds(250));
    // A timeout above 0 never rounds down to 0 ms.
    EXPECT_EQ(parse({"/srv", "--progress-timeout", "0.0004"}).config->progress_timeout,
              std::chrono::milliseconds(1));
    EXPECT_EQ(parse({"/srv", "--threads", "1024", "--rate-limit", "18446744073709551615"})
                  .config->rate_limit,
              UINT64_MAX);
}

TEST(Config, TheRootIsRequiredAndGivenOnce) {
    try {
        (void)parse({});
        ADD_FAILURE() << "no root was accepted";
    } catch (const fs::config_error& e) {
        EXPECT_EQ(std::string{e.what()}, "no root directory: give one, e.g. ferryd /srv/files");
    }
    EXPECT_EQ(parse({"--root", "/srv/a"}).config->root, "/srv/a");
    EXPECT_EQ(parse({"--root", "/srv/a", "/srv/a/"}).config->root, "/srv/a");
    EXPECT_THROW(parse({"--root", "/srv/a", "/srv/b"}), fs::config_error);
    EXPECT_THROW(parse({"/srv/a", "/srv/b"}), fs::config_error);
    EXPECT_THROW(parse({"--root", ""}), fs::config_error);
}

} // namespace
} // namespace ferry::test
