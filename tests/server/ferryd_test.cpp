// The real ferryd binary on 127.0.0.1:0 and [::1]:0 with a temporary root (label: integration).
#include "support/process.hpp"
#include "support/test_client.hpp"

#include <algorithm>
#include <fstream>
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <poll.h>
#include <regex>
#include <set>
#include <sstream>
#include <sys/resource.h>
#include <thread>

namespace ferry::test {
namespace {

using fp::status;

TEST(Ferryd, HelpVersionAndBadUsage) {
    auto help = run({bin("ferryd"), "--help"});
    EXPECT_EQ(help.code, 0);
    EXPECT_NE(help.output.find("--max-connections-per-ip"), std::string::npos);
    // config/ferryd.conf documents every option --help lists.
    const auto example = read_file(FERRY_SOURCE_DIR "/config/ferryd.conf");
    const std::regex option{R"(--([a-z][a-z-]+))"};
    int options = 0;
    for (std::sregex_iterator it{help.output.begin(), help.output.end(), option}, end; it != end;
         ++it) {
        const auto key = (*it)[1].str();
        if (key == "help" || key == "version" || key == "config" || key == "check-config")
            continue;
        ++options;
        EXPECT_TRUE(example.find("\n" + key + " = ") != std::string::npos ||
                    example.find("\n# " + key + " = ") != std::string::npos)
            << "config/ferryd.conf does not document " << key;
    }
    EXPECT_GE(options, 15);
    auto version = run({bin("ferryd"), "--version"});
    EXPECT_EQ(version.code, 0);
    EXPECT_NE(version.output.find("ferryd " FERRY_VERSION " (protocol 1)"), std::string::npos);
    auto bad = run({bin("ferryd"), "--no-such-option"});
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.output.find("no-such-option"), std::string::npos) << bad.output;
    auto no_root = run({bin("ferryd"), "--root", "/nonexistent/ferry", "--listen", "127.0.0.1:0"});
    EXPECT_EQ(no_root.code, 1);
    EXPECT_NE(no_root.output.find("cannot open root /nonexistent/ferry"), std::string::npos)
        << no_root.output;
}

TEST(Ferryd, AnAddressInUseIsAClearStartUpError) {
    temp_dir root;
    ferryd_process first{root.path()};
    auto second = run({bin("ferryd"), "--root", root.path().string(), "--listen",
                       "127.0.0.1:" + std::to_string(first.port()), "--threads", "1"});
    // Listeners use SO_REUSEPORT among ferryd's own threads, but a second server must not
    // silently join the port.
    EXPECT_EQ(second.code, 1) << second.output;
    EXPECT_NE(second.output.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())),
              std::string::npos)
        << second.output;
}

TEST(Ferryd, ServesALargeFileByteIdenticalOverIPv4AndIPv6) {
    temp_dir root;
    const std::size_t size = (100 << 20) + 12345; // > 100 MiB, odd-sized
    const auto content = make_content(size, 11);
    write_file(root / "big.bin", content);
    ferryd_process server{root.path(), {"--listen", "127.0.0.1:0", "--listen", "[::1]:0"}};
    for (bool v6 : {false, true}) {
        SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
        auto c = test_client::connect(server.port(v6 ? 1 : 0), v6);
        auto r = c.get("big.bin");
        EXPECT_EQ(r.header.size, size);
        EXPECT_EQ(r.trailer, status::ok);
        EXPECT_TRUE(r.body == content) << "body differs";
    }
    EXPECT_EQ(server.stop(), 0);
}

TEST(Ferryd, FiveHundredConcurrentClients) {
    temp_dir root;
    for (int i = 0; i < 10; ++i)
        write_file(root / ("f" + std::to_string(i)),
                   make_content(20000 + static_cast<std::size_t>(i), static_cast<unsigned>(i)));
    ferryd_process server{root.path()};
    std::vector<test_client> clients;
    for (int i = 0; i < 500; ++i)
        clients.push_back(test_client::connect(server.port()));
    // Every request is in flight before any answer is read: 500 sessions at once.
    for (std::size_t i = 0; i < clients.size(); ++i)
        clients[i].send(fp::get_request{"f" + std::to_string(i % 10), 0, fp::to_end, std::nullopt});
    for (std::size_t i = 0; i < clients.size(); ++i) {
        auto r = clients[i].read_get();
        ASSERT_EQ(r.trailer, status::ok);
        ASSERT_TRUE(r.body == make_content(20000 + i % 10, static_cast<unsigned>(i % 10))) << i;
    }
    EXPECT_EQ(server.stop(), 0);
}

TEST(Ferryd, ConnectionLimitsAreExact) {
    temp_dir root;
    write_file(root / "f", "x");
    ferryd_process server{root.path(),
                          {"--listen", "127.0.0.1:0", "--listen", "[::1]:0", "--max-connections",
                           "3", "--max-connections-per-ip", "2", "--busy-retry-after", "2.5"}};
    auto admitted = [](test_client& c) {
        c.send(fp::stat_request{"f", false});
        return c.read<fp::stat_reply>().size == 1;
    };
    auto a = test_client::connect(server.port());
    auto b = test_client::connect(server.port());
    ASSERT_TRUE(admitted(a));
    ASSERT_TRUE(admitted(b));
    auto c = test_client::connect(server.port()); // a third from 127.0.0.1: over the per-IP cap
    auto e = c.read_error();
    EXPECT_EQ(e.code, status::busy);
    EXPECT_TRUE(e.closing);
    EXPECT_EQ(e.retry_after_ms, 2500U);
    EXPECT_TRUE(c.wait_closed());
    auto v6 = test_client::connect(server.port(1), true); // another address: admitted
    ASSERT_TRUE(admitted(v6));
    auto v6b = test_client::connect(server.port(1), true); // the global cap of 3
    EXPECT_EQ(v6b.read_error().code, status::busy);
    // Give one back (shut down and wait for the server's close): the next one is admitted.
    ::shutdown(a.fd(), SHUT_WR);
    EXPECT_TRUE(a.wait_closed());
    auto d = test_client::connect(server.port());
    EXPECT_TRUE(admitted(d));
    EXPECT_EQ(server.stop(), 0);
}

TEST(Ferryd, HttpSharesThePortTheLimitsAndTheAccessLog) {
    temp_dir root;
    temp_dir logs;
    write_file(root / "f", "x");
    const auto access_log = logs / "access.log";
    ferryd_process server{root.path(),
                          {"--max-connections", "1", "--busy-retry-after", "2.5", "--access-log",
                           access_log.string()}};
    auto ferry = test_client::connect(server.port());
    ferry.send(fp::stat_request{"f", false});
    ASSERT_EQ(ferry.read<fp::stat_reply>().size, 1U);
    // Over the limit, an HTTP client gets an HTTP refusal, in whole seconds.
    auto refused = test_client::connect(server.port());
    const std::string get = "GET /f HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    refused.send_raw(std::as_bytes(std::span{get}));
    const auto refusal = read_until_closed(refused.fd());
    EXPECT_EQ(refusal.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0U) << refusal;
    EXPECT_NE(refusal.find("\r\nRetry-After: 3\r\n"), std::string::npos) << refusal;
    EXPECT_NE(refusal.find("\r\nConnection: close\r\n"), std::string::npos) << refusal;
    // Give the slot back: HTTP is then served on the same port.
    ::shutdown(ferry.fd(), SHUT_WR);
    EXPECT_TRUE(ferry.wait_closed());
    auto http = test_client::connect(server.port());
    const std::string last = "GET /f HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    http.send_raw(std::as_bytes(std::span{last}));
    const auto answer = read_until_closed(http.fd());
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << answer;
    EXPECT_EQ(answer.substr(answer.size() - 5), "\r\n\r\nx");
    EXPECT_EQ(server.stop(), 0);
    const auto log = read_file(access_log);
    EXPECT_NE(log.find(" FERRY STAT \"f\" - 0 ok "), std::string::npos) << log;
    EXPECT_NE(log.find(" HTTP/1.1 GET \"/f\" - 1 200 "), std::string::npos) << log;
}

TEST(Ferryd, SigtermDrainsTransfersInFlightThenExitsZero) {
    temp_dir root;
    const std::size_t size = 32 << 20;
    write_file(root / "big", make_content(size, 12));
    write_file(root / "small", "s");
    ferryd_process server{root.path(), {"--drain-timeout", "60"}};
    auto busy = test_client::connect(server.port());
    busy.set_receive_buffer(64 * 1024);
    busy.send(fp::get_request{"big", 0, fp::to_end, std::nullopt});
    (void)busy.read<fp::get_header>();
    auto first = busy.read_body(1 << 20);
    auto idle = test_client::connect(server.port());
    idle.send(fp::stat_request{"small", false});
    (void)idle.read<fp::stat_reply>();

    auto silent = test_client::connect(server.port()); // never sends a request
    server.process().signal(SIGTERM);
    // Closed once idle for the drain's idle timeout (eof) or, if it was not accepted yet, reset
    // with the listener; never left open.
    EXPECT_NE(silent.wait_ended(), "timeout");
    EXPECT_TRUE(idle.wait_closed()); // idle for the drain's idle timeout (1 s)
    // New connections are refused once the listeners are closed; the transfer goes on.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bool refused = false;
    while (!refused && std::chrono::steady_clock::now() < deadline) {
        try {
            auto late = test_client::connect(server.port());
        } catch (const std::runtime_error&) {
            refused = true;
        }
    }
    EXPECT_TRUE(refused);
    EXPECT_TRUE(server.process().running());
    // A connection that has been served is served while requests keep coming (this one is
    // sent before the transfer ends, so no idle time can come between), closed once idle.
    busy.send(fp::stat_request{"small", false});
    auto rest = busy.read_body(size - first.size());
    EXPECT_EQ(busy.read<fp::get_trailer>().code, status::ok);
    EXPECT_TRUE(first + rest == make_content(size, 12));
    EXPECT_EQ(busy.read<fp::stat_reply>().size, 1U);
    EXPECT_TRUE(busy.wait_closed());
    EXPECT_EQ(server.process().wait_exit(std::chrono::seconds(30)), 0);
}

TEST(Ferryd, DrainTimeoutAndASecondSignalCancelStuckTransfers) {
    temp_dir root;
    write_file(root / "big", make_content(64 << 20, 13));
    for (bool second_signal : {false, true}) {
        SCOPED_TRACE(second_signal ? "second signal" : "drain timeout");
        ferryd_process server{
            root.path(),
            {"--drain-timeout", second_signal ? "600" : "0.5", "--progress-timeout", "600"}};
        auto stuck = test_client::connect(server.port());
        stuck.set_receive_buffer(64 * 1024);
        stuck.send(fp::get_request{"big", 0, fp::to_end, std::nullopt});
        (void)stuck.read<fp::get_header>(); // and then never read again
        server.process().signal(SIGTERM);
        if (second_signal) {
            EXPECT_FALSE(server.process().wait_exit(std::chrono::milliseconds(300)));
            server.process().signal(SIGTERM);
        }
        EXPECT_EQ(server.process().wait_exit(std::chrono::seconds(30)), 0) << server.log();
    }
}

TEST(Ferryd, NoDescriptorLeakAfterThousandsOfAbortedTransfers) {
    temp_dir root;
    write_file(root / "big", make_content(4 << 20, 14));
    ferryd_process server{root.path()};
    // Everything ferryd keeps open (listeners, epoll, root) is open once it serves.
    const auto baseline = open_fds(server.process().pid());
    const auto settle = [&](std::size_t target) {
        // The server closes aborted connections asynchronously: poll (bounded) for the count.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        auto n = open_fds(server.process().pid());
        while (n > target && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            n = open_fds(server.process().pid());
        }
        return n;
    };
    for (int i = 0; i < 2000; ++i) {
        auto c = test_client::connect(server.port());
        c.send(fp::get_request{"big", 0, fp::to_end, std::nullopt});
        (void)c.read<fp::get_header>();
        if (i % 2 == 0)
            (void)c.read_body(1000);
        // close mid-body: the server sees a reset or EPIPE while sending
    }
    EXPECT_EQ(settle(baseline), baseline);
    EXPECT_EQ(server.stop(), 0);
}

TEST(Ferryd, RunningOutOfDescriptorsIsAnInternalErrorNotACrash) {
#ifdef FERRY_SANITIZE
    // UBSan's vptr check opens a pipe to probe memory (IsAccessibleMemoryRange) the first time
    // it meets a pair of types: at the descriptor limit that fails, and it reports a false
    // "invalid vptr" and aborts ferryd. The release preset runs this test.
    if (std::string_view{FERRY_SANITIZE}.find("undefined") != std::string_view::npos)
        GTEST_SKIP() << "UBSan itself needs descriptors at the limit";
#endif
    temp_dir root;
    write_file(root / "f", "content");
    ferryd_process server{root.path(), {"--threads", "1"}};
    const pid_t pid = server.process().pid();
    const auto idle_fds = open_fds(pid);
    {
        auto warm = test_client::connect(server.port()); // everything lazily created is created
        EXPECT_EQ(warm.get("f").body, "content");
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (open_fds(pid) > idle_fds && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10)); // the close is asynchronous
    rlimit old{};
    ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, nullptr, &old), 0);
    // Leave room for exactly one more descriptor, the next connection's socket: a descriptor's
    // number must be below the limit, and a new one takes the lowest free number.
    rlimit tight = old;
    tight.rlim_cur = static_cast<rlim_t>(lowest_free_fd(pid)) + 1;
    ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &tight, nullptr), 0);
    auto c = test_client::connect(server.port());
    c.send(fp::get_request{"f", 0, fp::to_end, std::nullopt});
    auto e = c.read_error(); // resolving the path needs a descriptor there is none of
    EXPECT_EQ(e.code, status::internal_error);
    EXPECT_FALSE(e.closing);
    ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &old, nullptr), 0);
    EXPECT_EQ(c.get("f").body, "content"); // the same connection recovers

    // Room for the O_PATH descriptor, none for the readable one opened from it.
    tight.rlim_cur = static_cast<rlim_t>(lowest_free_fd(pid)) + 1;
    ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &tight, nullptr), 0);
    c.send(fp::get_request{"f", 0, fp::to_end, std::nullopt});
    e = c.read_error();
    EXPECT_EQ(e.code, status::internal_error);
    EXPECT_FALSE(e.closing);
    ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &old, nullptr), 0);
    EXPECT_EQ(c.get("f").body, "content");
    EXPECT_EQ(server.stop(), 0);
}

TEST(Ferryd, ConfigFileAndAccessLog) {
    temp_dir root;
    temp_dir etc;
    write_file(root / "hello.txt", "hello");
    // The file's root is overridden by the command line's (ferryd_process passes --root).
    write_file(etc / "ferryd.conf", "root = /nonexistent\nlog-level = info\naccess-log = " +
                                        (etc / "access.log").string() + "\n");
    ferryd_process server{root.path(), {"--config", (etc / "ferryd.conf").string()}};
    auto c = test_client::connect(server.port());
    EXPECT_EQ(c.get("hello.txt").body, "hello");
    c.send(fp::get_request{"nope", 0, fp::to_end, std::nullopt});
    (void)c.read_error();
    c.close();
    EXPECT_EQ(server.stop(), 0);
    const auto log = read_file(etc / "access.log");
    EXPECT_NE(log.find("GET \"hello.txt\" 0-5/5 5 ok"), std::string::npos) << log;
    EXPECT_NE(log.find("GET \"nope\" - 0 not found"), std::string::npos) << log;
}

TEST(Ferryd, APathCannotForgeAnAccessLogLine) {
    temp_dir root;
    temp_dir logs;
    write_file(root / "hello.txt", "hello");
    const auto access_log = logs / "access.log";
    ferryd_process server{root.path(), {"--access-log", access_log.string()}};
    auto c = test_client::connect(server.port());
    const std::string forged = "a\n[conn 9] 127.0.0.1:1 GET \"x\" - 0 ok 0.1ms";
    c.send(fp::get_request{forged, 0, fp::to_end, std::nullopt});
    auto e = c.read_error();
    EXPECT_EQ(e.code, status::not_found);
    EXPECT_EQ(e.message.find('\n'), std::string::npos) << e.message;
    c.send(fp::stat_request{"b\rc\x1b[2J", false});
    EXPECT_EQ(c.read_error().message, "not found: b\\rc\\x1b[2J");
    EXPECT_EQ(c.get("hello.txt").body, "hello");
    c.close();
    EXPECT_EQ(server.stop(), 0); // the log is complete once ferryd has exited
    const auto log = read_file(access_log);
    // One line per request, each a whole access line; the forged one inside its quotes.
    const std::regex line{R"(\[[^\]]+\] \[access\] \[info\] \[conn 1\] 127\.0\.0\.1:[0-9]+ )"
                          R"(FERRY (GET|STAT) "([^"\\]|\\.)*" [^"]*\n)"};
    std::size_t lines = 0;
    for (std::sregex_iterator it{log.begin(), log.end(), line}, end; it != end; ++it)
        ++lines;
    EXPECT_EQ(lines, 3U) << log;
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 3) << log;
    EXPECT_NE(log.find(R"(GET "a\n[conn 9] 127.0.0.1:1 GET \"x\" - 0 ok 0.1ms" - 0 not found )"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find(R"(STAT "b\rc\x1b[2J" - 0 not found )"), std::string::npos) << log;
}

TEST(Ferryd, DotfilesOnlyWithDotfilesAllow) {
    temp_dir root;
    write_file(root / ".env", "SECRET=1");
    write_file(root / ".git/config", "[core]");
    write_file(root / "visible", "visible");
    for (bool allow : {false, true}) {
        SCOPED_TRACE(allow ? "--dotfiles=allow" : "default");
        ferryd_process server{root.path(), allow ? std::vector<std::string>{"--dotfiles=allow"}
                                                 : std::vector<std::string>{}};
        auto c = test_client::connect(server.port());
        if (allow) {
            EXPECT_EQ(c.get(".env").body, "SECRET=1");
            EXPECT_EQ(c.get(".git/config").body, "[core]");
        } else {
            c.send(fp::get_request{".git/config", 0, fp::to_end, std::nullopt});
            auto e = c.read_error();
            EXPECT_EQ(e.code, status::forbidden);
            EXPECT_EQ(e.message, "forbidden: dotfiles are not served: .git/config");
        }
        c.send(fp::list_request{""});
        auto listed = c.read<fp::list_entries>();
        EXPECT_EQ(c.read<fp::list_end>().entry_count, listed.entries.size());
        std::set<std::string> names;
        for (const auto& x : listed.entries)
            names.insert(x.name);
        const std::set<std::string> expected =
            allow ? std::set<std::string>{".env", ".git", "visible"}
                  : std::set<std::string>{"visible"};
        EXPECT_EQ(names, expected);
        c.close();
        EXPECT_EQ(server.stop(), 0);
    }
}

// ---- deployment defaults: the root, --check-config, config-file errors, the systemd unit ------

/// Writes `text` as DIR/ferryd.conf and returns its path.
std::string config_file(const temp_dir& dir, const std::string& text) {
    write_file(dir / "ferryd.conf", text);
    return (dir / "ferryd.conf").string();
}

TEST(FerrydDeployment, WithoutARootItRefusesToStart) {
    temp_dir etc;
    auto r = run({bin("ferryd"), "--listen", "127.0.0.1:0"});
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("ferryd: no root directory: give one, e.g. ferryd /srv/files"),
              std::string::npos)
        << r.output;
    // A config file without a root is no better.
    r = run({bin("ferryd"), "--config", config_file(etc, "threads = 1\n"), "--check-config"});
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("no root directory"), std::string::npos) << r.output;
}

TEST(FerrydDeployment, TheRootIsAnArgumentAndTwoDifferentRootsAreAnError) {
    temp_dir root;
    temp_dir other;
    temp_dir run_dir;
    write_file(root / "hello.txt", "hello");
    child_process p{{bin("ferryd"), root.path().string(), "--listen", "127.0.0.1:0", "--port-file",
                     (run_dir / "port").string(), "--log-level", "warn"},
                    run_dir / "log"};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!std::filesystem::exists(run_dir / "port")) {
        ASSERT_FALSE(p.wait_exit(std::chrono::milliseconds(0))) << read_file(run_dir / "log");
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "ferryd did not start";
        std::this_thread::sleep_for(std::chrono::milliseconds(10)); // polling for the port file
    }
    const auto port = static_cast<std::uint16_t>(std::stoul(read_file(run_dir / "port")));
    auto c = test_client::connect(port);
    EXPECT_EQ(c.get("hello.txt").body, "hello");
    c.close();
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(std::chrono::seconds(30)), 0);

    auto both = run({bin("ferryd"), "--root", root.path().string(), other.path().string(),
                     "--listen", "127.0.0.1:0"});
    EXPECT_EQ(both.code, 2) << both.output;
    EXPECT_NE(both.output.find("two roots"), std::string::npos) << both.output;
    auto same = run({bin("ferryd"), "--root", root.path().string(), root.path().string() + "/",
                     "--check-config"});
    EXPECT_EQ(same.code, 0) << same.output;
}

TEST(FerrydDeployment, ConfigFileErrorsNameTheFileAndTheLine) {
    temp_dir root;
    temp_dir etc;
    const std::string head = "# ferryd\nlisten = 127.0.0.1:0\n\n";
    struct bad_file {
        std::string line;    // the third line of the file after `head`
        std::string message; // what the error says after FILE:LINE
    };
    for (const auto& [line, message] :
         {bad_file{"rot = /srv", "unknown option 'rot'"},
          bad_file{"threads = -1", "the argument ('-1') for option 'threads' is invalid"},
          bad_file{"rate-limit = 1e3", "the argument ('1e3') for option 'rate-limit' is invalid"},
          bad_file{"request-timeout = 1e300", "request-timeout must be a number of seconds"},
          bad_file{"symlinks = sometimes", "symlinks sometimes: expected deny, inside or follow"},
          bad_file{"listen = ::1:80", "listen ::1:80: put an IPv6 address in brackets"},
          bad_file{"root", "expected KEY = VALUE"},
          bad_file{"[ferryd]", "sections are not used"}}) {
        const auto file = config_file(etc, head + "digest-threads = 2\n" + line + "\n");
        for (const bool check : {false, true}) {
            std::vector<std::string> args{bin("ferryd"), "--config", file, root.path().string()};
            if (check)
                args.push_back("--check-config");
            auto r = run(args);
            EXPECT_EQ(r.code, 2) << line << ": " << r.output;
            EXPECT_NE(r.output.find(file + ":5: " + message), std::string::npos)
                << line << ": " << r.output;
        }
    }
    // A key given twice that takes one value is named at its second line.
    auto twice = run({bin("ferryd"), "--config", config_file(etc, "threads = 1\nthreads = 2\n"),
                      root.path().string()});
    EXPECT_EQ(twice.code, 2);
    EXPECT_NE(twice.output.find(":2: option 'threads' cannot be specified more than once"),
              std::string::npos)
        << twice.output;
}

TEST(FerrydDeployment, CheckConfigValidatesTheShippedConfigAndNeverBinds) {
    temp_dir root;
    temp_dir scratch;
    const std::string shipped = FERRY_SOURCE_DIR "/config/ferryd.conf";
    for (const auto& args :
         {std::vector<std::string>{"--root", root.path().string()}, {root.path().string()}}) {
        std::vector<std::string> cmd{bin("ferryd"), "--check-config", "--config", shipped};
        cmd.insert(cmd.end(), args.begin(), args.end());
        auto r = run(cmd);
        EXPECT_EQ(r.code, 0) << r.output;
        EXPECT_EQ(r.output, "ferryd: configuration ok\n");
    }
    if (!std::filesystem::exists("/srv/ferry")) {
        auto r = run({bin("ferryd"), "--check-config", "--config", shipped});
        EXPECT_EQ(r.code, 2) << r.output;
        EXPECT_NE(r.output.find("root /srv/ferry: No such file or directory"), std::string::npos)
            << r.output;
    }
    write_file(scratch / "file", "x");
    auto not_dir = run({bin("ferryd"), "--check-config", (scratch / "file").string()});
    EXPECT_EQ(not_dir.code, 2);
    EXPECT_NE(not_dir.output.find("not a directory"), std::string::npos) << not_dir.output;
    auto bad_listen =
        run({bin("ferryd"), "--check-config", root.path().string(), "--listen", "localhost:1"});
    EXPECT_EQ(bad_listen.code, 2);
    EXPECT_NE(bad_listen.output.find("'localhost' is not an IP address literal"), std::string::npos)
        << bad_listen.output;
    // The port is taken, so binding it would fail (exit 1): the check binds nothing, and
    // writes no port file.
    ferryd_process server{root.path()};
    auto r = run({bin("ferryd"), "--check-config", root.path().string(), "--listen",
                  "127.0.0.1:" + std::to_string(server.port()), "--port-file",
                  (scratch / "port").string()});
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_FALSE(std::filesystem::exists(scratch / "port"));
    EXPECT_EQ(server.stop(), 0);
}

TEST(FerrydDeployment, BadNumbersAreErrorsNamingTheOption) {
    temp_dir root;
    for (const auto& [option, value] :
         std::vector<std::pair<std::string, std::string>>{{"--threads", "-1"},
                                                          {"--max-connections", "-5"},
                                                          {"--rate-limit", "-1"},
                                                          {"--request-timeout", "-1"},
                                                          {"--idle-timeout", "1e300"},
                                                          {"--digest-threads", "0"},
                                                          {"--digest-cache-entries", "4096x"}}) {
        auto r =
            run({bin("ferryd"), root.path().string(), "--listen", "127.0.0.1:0", option, value});
        EXPECT_EQ(r.code, 2) << option << " " << value << ": " << r.output;
        EXPECT_NE(r.output.find(option), std::string::npos) << r.output;
    }
}

TEST(FerrydDeployment, TheSystemdUnitIsUnprivilegedAndScoresOk) {
    const auto unit = read_file(FERRY_SOURCE_DIR "/config/ferryd.service");
    EXPECT_NE(unit.find("\nDynamicUser=yes\n"), std::string::npos);
    EXPECT_NE(unit.find("/srv/ferry"), std::string::npos);
    EXPECT_NE(read_file(FERRY_SOURCE_DIR "/config/ferryd.conf").find("\nroot = /srv/ferry\n"),
              std::string::npos);
    auto r = run({"/bin/sh", "-c",
                  "command -v systemd-analyze >/dev/null || exit 127; systemd-analyze security "
                  "--offline=true " FERRY_SOURCE_DIR "/config/ferryd.service"});
    if (r.code == 127)
        GTEST_SKIP() << "systemd-analyze is not installed: the unit's score is not checked";
    ASSERT_EQ(r.code, 0) << r.output;
    const std::regex overall{R"(Overall exposure level for ferryd\.service: ([0-9.]+) (\w+))"};
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, overall)) << r.output;
    EXPECT_LE(std::stod(m[1].str()), 3.0) << r.output;
    EXPECT_EQ(m[2].str(), "OK") << r.output;
}

/// CPU time (user + system) a process has used so far.
std::chrono::duration<double> cpu_time(pid_t pid) {
    std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
    std::string text{std::istreambuf_iterator<char>{in}, {}};
    // Fields after the command name (which may contain spaces) start after the last ')'.
    std::istringstream fields{text.substr(text.rfind(')') + 2)};
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
        if (i == 14)
            utime = std::stoull(field);
        if (i == 15)
            stime = std::stoull(field);
    }
    return std::chrono::duration<double>(static_cast<double>(utime + stime) /
                                         static_cast<double>(::sysconf(_SC_CLK_TCK)));
}

std::string sha256_hex(const std::string& s) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
    return to_hex(std::as_bytes(std::span{d}));
}

TEST(Ferryd, ARateLimitedTransferSleepsAndOthersAreAnsweredBesideIt) {
    temp_dir root;
    const std::size_t size = 24 << 20;
    const auto content = make_content(size, 15);
    write_file(root / "big", content);
    write_file(root / "small", "small");
    ferryd_process server{root.path(), {"--threads", "1", "--rate-limit", std::to_string(8 << 20)}};
    const pid_t pid = server.process().pid();
    auto probe = test_client::connect(server.port());
    EXPECT_EQ(probe.get("small").body, "small"); // everything lazily created is created

    const auto cpu_before = cpu_time(pid);
    const auto started = std::chrono::steady_clock::now();
    std::string body;
    status trailer = status::internal_error;
    std::thread transfer([&] {
        auto c = test_client::connect(server.port());
        auto r = c.get("big");
        body = std::move(r.body);
        trailer = r.trailer;
    });
    // A latency probe beside it, on the same I/O thread: a STAT and a small GET every 10 ms.
    std::vector<double> latencies;
    while (latencies.size() < 20 ||
           std::chrono::steady_clock::now() - started < std::chrono::milliseconds(2500)) {
        const auto t = std::chrono::steady_clock::now();
        probe.send(fp::stat_request{"small", false});
        EXPECT_EQ(probe.read<fp::stat_reply>().size, 5U);
        EXPECT_EQ(probe.get("small").body, "small");
        latencies.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t)
                .count());
        std::this_thread::sleep_for(std::chrono::milliseconds(10)); // pacing the probe
    }
    transfer.join();
    const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - started;
    const auto cpu = cpu_time(pid) - cpu_before;
    EXPECT_EQ(trailer, status::ok);
    EXPECT_TRUE(body == content);
    std::sort(latencies.begin(), latencies.end());
    const double p50 = latencies[latencies.size() / 2];
    const double worst = latencies.back();
    std::printf("rate-limited 24 MiB at 8 MiB/s: %.2f s wall, ferryd CPU %.3f s (%.1f%%); "
                "%zu probes, p50 %.2f ms, max %.2f ms\n",
                wall.count(), cpu.count(), 100.0 * cpu.count() / wall.count(), latencies.size(),
                p50, worst);
    // (24 MiB - 0.8 MiB burst) at 8 MiB/s: at least 2.9 s, whatever the machine.
    EXPECT_GE(wall.count(), 2.85);
    // A sleeping transfer costs little CPU (a spinning one took all of it); the probe's bound
    // only catches a thread that starves others (generous: sanitizers, a shared machine).
    EXPECT_LT(cpu.count() / wall.count(), 0.2);
    EXPECT_LT(worst, 200.0);
    EXPECT_EQ(server.stop(), 0);
}

/// Whether the first `chunks` 1 MiB chunks of `content` have begun to arrive in `part` (a
/// .part is allocated whole from the start, so its size says nothing).
bool chunks_begun(const std::filesystem::path& part, const std::string& content,
                  std::size_t chunks) {
    std::ifstream in{part, std::ios::binary};
    for (std::size_t at = 0; at < (chunks << 20); at += 1 << 20) {
        std::string head(4096, '\0');
        if (!in.seekg(static_cast<std::streamoff>(at)) || !in.read(head.data(), 4096) ||
            head != content.substr(at, 4096))
            return false;
    }
    return true;
}

/// SIGTERM midway through `ferry get -j4 SCHEME://`: new connections are refused, the download
/// completes on the connections it has, byte-identical, and ferryd exits 0. Returns the output.
std::filesystem::path segmented_download_across_sigterm(const temp_dir& work,
                                                        const std::string& scheme, unsigned seed) {
    temp_dir root;
    const std::size_t size = 24 << 20;
    const auto content = make_content(size, seed);
    write_file(root / "big", content);
    // 4 connections at 2 MiB/s each: about 3 s of 1 MiB requests.
    ferryd_process server{root.path(), {"--rate-limit", std::to_string(2 << 20)}};
    const auto out = work / "big";
    child_process ferry{{bin("ferry"), "get",
                         scheme + "://127.0.0.1:" + std::to_string(server.port()) + "/big", "-o",
                         out.string(), "-j", "4", "--chunk-size", "1048576", "--quiet"},
                        work / "ferry.log"};
    // Midway: the first 8 chunks have begun to arrive, so each of the 4 connections has asked
    // for something.
    EXPECT_TRUE(eventually([&] { return chunks_begun(out.string() + ".part", content, 8); }));
    EXPECT_FALSE(std::filesystem::exists(out)) << "the download was already over";
    server.process().signal(SIGTERM);
    // New connections are refused once the listeners are closed.
    EXPECT_TRUE(eventually([&] {
        try {
            auto late = test_client::connect(server.port());
            return false;
        } catch (const std::runtime_error&) {
            return true;
        }
    }));
    EXPECT_EQ(ferry.wait_exit(std::chrono::seconds(60)), 0) << read_file(work / "ferry.log");
    EXPECT_TRUE(std::filesystem::exists(out)) << read_file(work / "ferry.log");
    if (std::filesystem::exists(out)) {
        EXPECT_EQ(sha256_hex(read_file(out)), sha256_hex(content));
    }
    EXPECT_EQ(server.process().wait_exit(std::chrono::seconds(30)), 0);
    return out;
}

TEST(Ferryd, ASegmentedDownloadFinishesAcrossSigterm) {
    temp_dir work;
    segmented_download_across_sigterm(work, "ferry", 16);
}

/// The same over HTTP: ferryd's drain keeps answering the connections that exist (as the Ferry
/// front does), so `ferry get -j4 http://` completes on the connections it has although new
/// ones are refused, and ferryd exits 0.
TEST(Ferryd, ASegmentedHttpDownloadFinishesAcrossSigterm) {
    temp_dir work;
    const auto out = segmented_download_across_sigterm(work, "http", 18);
    EXPECT_FALSE(std::filesystem::exists(out.string() + ".part"));
}

/// A drain too short for the download: the transfers are cut, new connections refused, and
/// ferry fails with a network error (exit 5) keeping its .part; a rerun against a ferryd
/// restarted on the same root and port resumes it to identical bytes.
TEST(Ferryd, AnHttpDownloadCutByTheDrainDeadlineResumesFromAFreshFerryd) {
    temp_dir root;
    temp_dir work;
    const std::size_t size = 24 << 20;
    const auto content = make_content(size, 19);
    write_file(root / "big", content);
    auto server = std::make_unique<ferryd_process>(
        root.path(), std::vector<std::string>{"--rate-limit", std::to_string(2 << 20),
                                              "--drain-timeout", "0.5"});
    const auto port = server->port();
    const auto out = work / "big";
    const std::vector<std::string> get{bin("ferry"),
                                       "get",
                                       "http://127.0.0.1:" + std::to_string(port) + "/big",
                                       "-o",
                                       out.string(),
                                       "-j",
                                       "4",
                                       "--chunk-size",
                                       "1048576",
                                       "--retries",
                                       "2",
                                       "--quiet",
                                       "--json"};
    child_process ferry{get, work / "ferry.log"};
    ASSERT_TRUE(eventually([&] {
        std::ifstream part{out.string() + ".part", std::ios::binary};
        std::string head(4096, '\0');
        return part.seekg(4 << 20) && part.read(head.data(), 4096) &&
               head == content.substr(4 << 20, 4096);
    }));
    server->process().signal(SIGTERM);
    EXPECT_EQ(server->process().wait_exit(std::chrono::seconds(30)), 0);
    EXPECT_EQ(ferry.wait_exit(std::chrono::seconds(60)), 5) << read_file(work / "ferry.log");
    ASSERT_FALSE(std::filesystem::exists(out));
    ASSERT_TRUE(std::filesystem::exists(out.string() + ".part"));
    server.reset();
    ferryd_process again{root.path(), {"--listen", "127.0.0.1:" + std::to_string(port)}};
    child_process rerun{get, work / "rerun.log"};
    ASSERT_EQ(rerun.wait_exit(std::chrono::seconds(60)), 0) << read_file(work / "rerun.log");
    const auto log = read_file(work / "rerun.log"); // ferry get --json, indented by 2
    EXPECT_NE(log.find("\"resumed\": true"), std::string::npos) << log;
    EXPECT_EQ(log.find("\"fetched\": " + std::to_string(size) + ","), std::string::npos) << log;
    EXPECT_EQ(sha256_hex(read_file(out)), sha256_hex(content));
    EXPECT_FALSE(std::filesystem::exists(out.string() + ".part"));
}

TEST(Ferryd, AStalledTransferEndsWithAReset) {
    temp_dir root;
    write_file(root / "big", make_content(64 << 20, 17));
    ferryd_process server{root.path(), {"--progress-timeout", "0.3", "--threads", "1"}};
    const auto baseline = open_fds(server.process().pid());
    auto stuck = test_client::connect(server.port());
    stuck.set_receive_buffer(64 * 1024);
    stuck.send(fp::get_request{"big", 0, fp::to_end, std::nullopt});
    (void)stuck.read<fp::get_header>(); // and then reads nothing
    // The server gives up after the progress timeout and closes its socket.
    EXPECT_TRUE(eventually([&] { return open_fds(server.process().pid()) <= baseline; }));
    // Closed with a reset: what the kernel still held for us is dropped, and the client is
    // told the transfer was cut (a plain close would deliver it all, then an orderly EOF).
    std::string why;
    try {
        for (;;)
            (void)stuck.read_body(1);
    } catch (const connection_ended& e) {
        why = e.what();
    }
    EXPECT_EQ(why, "reset");
    EXPECT_EQ(server.stop(), 0);
}

TEST(Ferryd, TheAccessLogIsWrittenPerLineAndReopenedOnSighup) {
    temp_dir root;
    temp_dir logs;
    write_file(root / "hello.txt", "hello");
    const auto log = logs / "access.log";
    ferryd_process server{root.path(), {"--access-log", log.string()}};
    auto c = test_client::connect(server.port());
    EXPECT_EQ(c.get("hello.txt").body, "hello");
    // The line is in the file while ferryd runs, not only at exit.
    EXPECT_TRUE(eventually(
        [&] {
            return std::filesystem::exists(log) &&
                   read_file(log).find("GET \"hello.txt\"") != std::string::npos;
        },
        std::chrono::seconds(5)))
        << (std::filesystem::exists(log) ? read_file(log) : "no file");
    // logrotate: rename, then SIGHUP; the next line goes to a new file of the old name.
    std::filesystem::rename(log, logs / "access.log.1");
    server.process().signal(SIGHUP);
    EXPECT_TRUE(eventually([&] { return std::filesystem::exists(log); }, std::chrono::seconds(5)));
    EXPECT_EQ(c.get("hello.txt").body, "hello");
    EXPECT_TRUE(
        eventually([&] { return read_file(log).find("GET \"hello.txt\"") != std::string::npos; },
                   std::chrono::seconds(5)));
    EXPECT_TRUE(server.process().running());
    const auto rotated = read_file(logs / "access.log.1");
    EXPECT_EQ(std::count(rotated.begin(), rotated.end(), '\n'), 1) << rotated;
    c.close();
    EXPECT_EQ(server.stop(), 0);
}

TEST(Ferryd, ASecondSignalStopsADigestInProgress) {
    temp_dir root;
    {
        // 64 GiB of holes: hashing them takes far longer than the bound below.
        std::ofstream{root / "huge"};
        std::filesystem::resize_file(root / "huge", std::uintmax_t{64} << 30);
    }
    ferryd_process server{root.path(), {"--digest-threads", "1", "--drain-timeout", "600"}};
    auto c = test_client::connect(server.port());
    c.send(fp::stat_request{"huge", true});
    pollfd p{c.fd(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 300), 0); // hashing, no answer yet
    server.process().signal(SIGTERM);
    EXPECT_FALSE(server.process().wait_exit(std::chrono::milliseconds(300))); // still draining
    server.process().signal(SIGTERM);
    EXPECT_EQ(server.process().wait_exit(std::chrono::seconds(10)), 0);
}

/// The drain waits for connections, not for the deadlines of connections that have closed:
/// `systemctl restart` of a ferryd that has served and is idle is a quick stop, not one of
/// --idle-timeout (or --drain-timeout) while new connections wait for the next ferryd.
TEST(Ferryd, ADrainEndsAtOnceWhenEveryConnectionHasClosed) {
    temp_dir root;
    write_file(root / "small", "s");
    ferryd_process server{
        root.path(),
        {"--drain-timeout", "600", "--idle-timeout", "600", "--request-timeout", "600"}};
    const auto baseline = open_fds(server.process().pid());
    {
        auto c = test_client::connect(server.port());
        EXPECT_EQ(c.get("small").body, "s");
    } // closed while parked, waiting for its next request
    EXPECT_TRUE(eventually([&] { return open_fds(server.process().pid()) <= baseline; }));
    server.process().signal(SIGTERM);
    EXPECT_EQ(server.process().wait_exit(std::chrono::seconds(20)), 0) << server.log();
}

} // namespace
} // namespace ferry::test
