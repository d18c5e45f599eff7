// The real ferry binary against a real ferryd on 127.0.0.1:0 (label: integration).
#include "bad_options.hpp"
#include "support/process.hpp"
#include "support/test_client.hpp"

#include <algorithm>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>
#include <sys/stat.h>
#include <thread>

namespace ferry::test {
namespace {

std::string url_of(const ferryd_process& s, const std::string& path) {
    return "ferry://127.0.0.1:" + std::to_string(s.port()) + "/" + path;
}

/// Runs ferry with `args` in directory `cwd`.
run_result ferry(const std::filesystem::path& cwd, std::vector<std::string> args) {
    std::vector<std::string> argv{"/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", cwd.string(),
                                  bin("ferry")};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, std::chrono::seconds(120));
}

nlohmann::json json_of(const run_result& r) {
    const auto start = r.output.find('[');
    const auto end = r.output.rfind(']');
    if (start == std::string::npos || end == std::string::npos)
        throw std::runtime_error("no JSON in: " + r.output);
    return nlohmann::json::parse(r.output.substr(start, end - start + 1));
}

struct FerryCli : ::testing::Test {
    temp_dir root;
    temp_dir work;
};

TEST_F(FerryCli, DownloadsAreByteIdenticalSingleAndSegmented) {
    const std::size_t sizes[] = {0, 1, 65535, (3 << 20) + 7, 40 << 20};
    for (auto size : sizes)
        write_file(root / ("f" + std::to_string(size)), make_content(size, 21));
    ferryd_process server{root.path()};
    for (auto size : sizes) {
        for (const char* j : {"1", "4"}) {
            SCOPED_TRACE(std::to_string(size) + " bytes, -j " + j);
            const auto out = "out-" + std::to_string(size) + "-" + j;
            // Small chunks force many GETs per connection and idle connections to steal work.
            auto r = ferry(work.path(), {"get", url_of(server, "f" + std::to_string(size)), "-o",
                                         out, "-j", j, "--chunk-size", "65536"});
            ASSERT_EQ(r.code, 0) << r.output;
            EXPECT_TRUE(read_file(work / out) == make_content(size, 21));
            EXPECT_FALSE(std::filesystem::exists(work / (out + ".part")));
            EXPECT_FALSE(std::filesystem::exists(work / (out + ".part.state")));
            EXPECT_NE(r.output.find("sha256 ok"), std::string::npos) << r.output;
        }
    }
    // The default name is the URL's base name; -o - writes to standard output.
    auto r = ferry(work.path(), {"get", url_of(server, "f65535")});
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(read_file(work / "f65535") == make_content(65535, 21));
    auto piped = run({"/bin/sh", "-c", "\"$0\" get \"$1\" -o - --quiet > \"$2\"", bin("ferry"),
                      url_of(server, "f3145735"), (work / "piped").string()});
    ASSERT_EQ(piped.code, 0) << piped.output;
    EXPECT_TRUE(read_file(work / "piped") == make_content((3 << 20) + 7, 21));
}

TEST_F(FerryCli, SeveralFilesShareOneKeptAliveConnection) {
    for (int i = 0; i < 5; ++i)
        write_file(root / ("m" + std::to_string(i)),
                   make_content(1000 + static_cast<std::size_t>(i), 1));
    temp_dir logs;
    ferryd_process server{root.path(), {"--access-log", (logs / "access.log").string()}};
    std::vector<std::string> args{"get", "-o", ".", "--parallel", "1", "--no-verify", "--json"};
    for (int i = 0; i < 5; ++i)
        args.push_back(url_of(server, "m" + std::to_string(i)));
    auto r = ferry(work.path(), args);
    ASSERT_EQ(r.code, 0) << r.output;
    for (int i = 0; i < 5; ++i)
        EXPECT_TRUE(read_file(work / ("m" + std::to_string(i))) ==
                    make_content(1000 + static_cast<std::size_t>(i), 1));
    EXPECT_EQ(json_of(r).size(), 5U);
    ASSERT_EQ(server.stop(), 0);
    const auto log = read_file(logs / "access.log");
    std::set<std::string> connections;
    for (std::size_t at = log.find("[conn "); at != std::string::npos;
         at = log.find("[conn ", at + 1))
        connections.insert(log.substr(at, log.find(']', at) - at));
    EXPECT_EQ(connections.size(), 1U) << log;
}

/// Waits (bounded) until the state file of `out` records at least `bytes` done; returns them.
std::uint64_t wait_for_progress(const std::filesystem::path& state, std::uint64_t bytes) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        try {
            auto j = nlohmann::json::parse(read_file(state));
            std::uint64_t done = 0;
            for (const auto& r : j.at("done"))
                done += r.at(1).get<std::uint64_t>() - r.at(0).get<std::uint64_t>();
            if (done >= bytes)
                return done;
        } catch (const std::exception&) {
            // not written yet
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20)); // polling a file, bounded
    }
    throw std::runtime_error("no progress recorded in " + state.string());
}

std::uint64_t recorded_done(const std::filesystem::path& state) {
    return wait_for_progress(state, 0);
}

/// Starts `ferry get` of `path` into `out` in 1 MiB requests (plus `extra` options), waits until
/// at least `bytes` are recorded as durable, and SIGKILLs it.
void kill_mid_download(const ferryd_process& server, const std::string& path,
                       const std::filesystem::path& out, std::uint64_t bytes,
                       std::vector<std::string> extra = {}) {
    std::vector<std::string> args{bin("ferry"), "get",          url_of(server, path),    "-o",
                                  out.string(), "--chunk-size", std::to_string(1 << 20), "--quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    child_process client{args, out.string() + ".log"};
    wait_for_progress(out.string() + ".part.state", bytes);
    client.signal(SIGKILL);
    ASSERT_EQ(client.wait_exit(std::chrono::seconds(10)), 128 + SIGKILL);
}

TEST_F(FerryCli, KilledMidDownloadResumesFetchingOnlyTheRest) {
    const std::size_t size = 24 << 20;
    write_file(root / "big", make_content(size, 22));
    ferryd_process server{root.path(), {"--rate-limit", std::to_string(8 << 20)}};
    kill_mid_download(server, "big", work / "big", 4 << 20, {"-j", "2"});
    EXPECT_FALSE(std::filesystem::exists(work / "big"));
    const auto durable = recorded_done(work / "big.part.state");
    ASSERT_LT(durable, size);

    auto r = ferry(work.path(), {"get", url_of(server, "big"), "-o", "big", "--json"});
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(read_file(work / "big") == make_content(size, 22));
    auto j = json_of(r)[0];
    EXPECT_TRUE(j["resumed"].get<bool>());
    EXPECT_EQ(j["fetched"].get<std::uint64_t>(), size - durable); // only the rest
    EXPECT_FALSE(std::filesystem::exists(work / "big.part"));
    EXPECT_FALSE(std::filesystem::exists(work / "big.part.state"));
}

TEST_F(FerryCli, NoResumeStartsOverAfterAKill) {
    const std::size_t size = 16 << 20;
    write_file(root / "big", make_content(size, 28));
    ferryd_process server{root.path(), {"--rate-limit", std::to_string(8 << 20)}};
    kill_mid_download(server, "big", work / "big", 2 << 20);
    auto r =
        ferry(work.path(), {"get", url_of(server, "big"), "-o", "big", "--no-resume", "--json"});
    ASSERT_EQ(r.code, 0) << r.output;
    auto j = json_of(r)[0];
    EXPECT_FALSE(j["resumed"].get<bool>());
    EXPECT_EQ(j["fetched"].get<std::uint64_t>(), size); // everything again
    EXPECT_TRUE(read_file(work / "big") == make_content(size, 28));
}

TEST_F(FerryCli, ContinuesAcrossAServerRestart) {
    const std::size_t size = 24 << 20;
    write_file(root / "big", make_content(size, 23));
    auto server = std::make_unique<ferryd_process>(
        root.path(), std::vector<std::string>{"--rate-limit", std::to_string(8 << 20)});
    const auto port = server->port();
    child_process client{{bin("ferry"), "get", url_of(*server, "big"), "-o",
                          (work / "big").string(), "--retries", "20", "--chunk-size",
                          std::to_string(1 << 20), "--quiet", "--json"},
                         work / "client.log"};
    wait_for_progress(work / "big.part.state", 4 << 20);
    server->process().signal(SIGKILL); // a crash, not a drain
    ASSERT_TRUE(server->process().wait_exit(std::chrono::seconds(10)));
    server.reset();
    ferryd_process again{root.path(), {"--listen", "127.0.0.1:" + std::to_string(port)}};
    ASSERT_EQ(client.wait_exit(std::chrono::seconds(90)), 0) << read_file(work / "client.log");
    EXPECT_TRUE(read_file(work / "big") == make_content(size, 23));
}

TEST_F(FerryCli, AFileChangedBetweenAttemptsIsFetchedAfreshNeverSpliced) {
    const std::size_t size = 24 << 20;
    write_file(root / "big", make_content(size, 24));
    ferryd_process server{root.path(), {"--rate-limit", std::to_string(8 << 20)}};
    kill_mid_download(server, "big", work / "big", 2 << 20);
    write_file(root / "big", make_content(size, 25)); // same size, new content and mtime
    auto r = ferry(work.path(), {"get", url_of(server, "big"), "-o", "big", "--json"});
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(read_file(work / "big") == make_content(size, 25));
    EXPECT_TRUE(json_of(r)[0]["restarted"].get<bool>());
    EXPECT_NE(r.output.find("changed on the server"), std::string::npos) << r.output;
}

TEST_F(FerryCli, ADigestMismatchLeavesNoOutputAndNoPart) {
    // Inject a server fault: the file's bytes change but its identity (size, mtime) does not,
    // so ferryd's cached digest no longer matches what it sends.
    const auto path = root / "f";
    write_file(path, make_content(100000, 26));
    struct stat before {};
    ::stat(path.c_str(), &before);
    ferryd_process server{root.path()};
    auto primed = ferry(work.path(), {"stat", url_of(server, "f"), "--sha256"});
    ASSERT_EQ(primed.code, 0) << primed.output;
    {
        const int fd = ::open(path.c_str(), O_WRONLY);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::pwrite(fd, "CORRUPT", 7, 5000), 7);
        ::close(fd);
        const struct timespec times[2] = {before.st_atim, before.st_mtim};
        ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
    }
    auto r = ferry(work.path(), {"get", url_of(server, "f"), "-o", "f"});
    EXPECT_EQ(r.code, 6) << r.output;
    EXPECT_NE(r.output.find("SHA-256 mismatch"), std::string::npos) << r.output;
    EXPECT_FALSE(std::filesystem::exists(work / "f"));
    EXPECT_FALSE(std::filesystem::exists(work / "f.part"));
    // A digest the user gives is checked the same way.
    write_file(root / "g", "g");
    auto user = ferry(work.path(), {"get", url_of(server, "g"), "--sha256", std::string(64, '0')});
    EXPECT_EQ(user.code, 6) << user.output;
    EXPECT_FALSE(std::filesystem::exists(work / "g"));
}

TEST_F(FerryCli, ExistingOutputIsNeverTouchedUnlessAsked) {
    write_file(root / "f", "new");
    write_file(work / "f", "precious");
    ferryd_process server{root.path()};
    auto refused = ferry(work.path(), {"get", url_of(server, "f")});
    EXPECT_EQ(refused.code, 9) << refused.output;
    EXPECT_NE(refused.output.find("exists"), std::string::npos);
    EXPECT_EQ(read_file(work / "f"), "precious");
    auto skipped = ferry(work.path(), {"get", url_of(server, "f"), "--skip-existing"});
    EXPECT_EQ(skipped.code, 0) << skipped.output;
    EXPECT_EQ(read_file(work / "f"), "precious");
    auto forced = ferry(work.path(), {"get", url_of(server, "f"), "--force"});
    EXPECT_EQ(forced.code, 0) << forced.output;
    EXPECT_EQ(read_file(work / "f"), "new");
}

TEST_F(FerryCli, EachFailureHasItsExitCode) {
    write_file(root / "f", "x");
    std::filesystem::create_directory(root / "dir");
    ferryd_process server{root.path()};
    EXPECT_EQ(ferry(work.path(), {}).code, 2);
    EXPECT_EQ(ferry(work.path(), {"get", "https://example.org/x"}).code, 2); // no TLS
    EXPECT_EQ(ferry(work.path(), {"get", url_of(server, "f"), "--no-such-option"}).code, 2);
    // An abbreviation is not guessed: "--out" is not "--output".
    EXPECT_EQ(ferry(work.path(), {"get", url_of(server, "f"), "--out", "g"}).code, 2);
    EXPECT_FALSE(std::filesystem::exists(work / "g"));
    EXPECT_EQ(ferry(work.path(), {"frobnicate"}).code, 2);
    EXPECT_EQ(ferry(work.path(), {"get", url_of(server, "missing")}).code, 3);
    EXPECT_EQ(ferry(work.path(), {"get", url_of(server, "dir"), "-o", "d"}).code, 3);
    EXPECT_EQ(ferry(work.path(), {"ls", url_of(server, "f")}).code, 3);
    EXPECT_EQ(ferry(work.path(), {"get", url_of(server, "../etc/passwd"), "-o", "p"}).code, 4);
    auto missing_dir = ferry(work.path(), {"get", url_of(server, "f"), "-o", "no/such/dir/f"});
    EXPECT_EQ(missing_dir.code, 8) << missing_dir.output;
    EXPECT_NE(missing_dir.output.find("no/such/dir"), std::string::npos) << missing_dir.output;

    // Network: nothing listens on a port we just released.
    std::uint16_t dead_port = 0;
    {
        temp_dir other;
        ferryd_process gone{other.path()};
        dead_port = gone.port();
        ASSERT_EQ(gone.stop(), 0);
    }
    auto refused =
        ferry(work.path(),
              {"get", "ferry://127.0.0.1:" + std::to_string(dead_port) + "/f", "--retries", "1"});
    EXPECT_EQ(refused.code, 5) << refused.output;

    // Busy: the only connection slot is taken.
    ferryd_process tight{root.path(), {"--max-connections", "1", "--busy-retry-after", "0.05"}};
    auto holder = test_client::connect(tight.port());
    holder.send(fp::stat_request{"f", false});
    (void)holder.read<fp::stat_reply>();
    auto busy = ferry(work.path(), {"get", url_of(tight, "f"), "-o", "b", "--retries", "2"});
    EXPECT_EQ(busy.code, 7) << busy.output;
    EXPECT_NE(busy.output.find("busy"), std::string::npos) << busy.output;
}

/// wget CVE-2004-2014 class: whatever is planted at a name ferry writes, the file it points to
/// (or shares its inode with) outside the output directory stays byte-identical.
TEST_F(FerryCli, FilesPlantedAtTheOutputNamesAreNeverFollowed) {
    write_file(root / "f", make_content(100000, 40));
    ferryd_process server{root.path()};
    temp_dir outside;
    const auto victim = outside / "victim";
    auto plant = [&](const std::string& name, bool hard) {
        for (const auto* n : {"f", "f.part", "f.part.state", "f.part.state.tmp"})
            std::filesystem::remove(work / n);
        write_file(victim, "precious");
        if (hard)
            std::filesystem::create_hard_link(victim, work / name);
        else
            std::filesystem::create_symlink(victim, work / name);
    };
    for (const std::string name : {"f.part", "f.part.state", "f"}) {
        for (const bool hard : {false, true}) {
            for (const char* force : {"--no-resume", "--force"}) {
                SCOPED_TRACE(name + (hard ? " hard link, " : " symlink, ") + force);
                plant(name, hard);
                auto r = ferry(work.path(), {"get", url_of(server, "f"), force});
                // A regular file at f is an existing output: --force replaces (renames over) it.
                const bool existing_output = name == "f" && hard;
                const bool forced = force == std::string{"--force"};
                EXPECT_EQ(r.code, existing_output && forced ? 0 : 9) << r.output;
                if (!existing_output) {
                    EXPECT_NE(r.output.find(name + " is a"), std::string::npos) << r.output;
                }
                EXPECT_EQ(read_file(victim), "precious");
                if (name != "f") {
                    EXPECT_FALSE(
                        std::filesystem::exists(std::filesystem::symlink_status(work / "f")));
                }
                if (name != "f.part") { // what ferry created for this run is gone again
                    EXPECT_FALSE(std::filesystem::exists(work / "f.part"));
                }
            }
        }
    }
    // A stale state temporary (a crash) or a symlink planted there is unlinked, not followed.
    plant("f.part.state.tmp", false);
    auto r = ferry(work.path(), {"get", url_of(server, "f")});
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(read_file(victim), "precious");
    EXPECT_TRUE(read_file(work / "f") == make_content(100000, 40));
    EXPECT_FALSE(
        std::filesystem::exists(std::filesystem::symlink_status(work / "f.part.state.tmp")));
}

/// An output that cannot be written fails before any request (nothing listens on the port) and
/// leaves nothing behind.
TEST_F(FerryCli, AnUnwritableOutputFailsBeforeAnyRequest) {
    std::uint16_t dead_port = 0;
    {
        temp_dir other;
        ferryd_process gone{other.path()};
        dead_port = gone.port();
        ASSERT_EQ(gone.stop(), 0);
    }
    const auto url = "ferry://127.0.0.1:" + std::to_string(dead_port) + "/f";
    std::filesystem::create_directory(work / "dir");
    ASSERT_EQ(::mkfifo((work / "fifo").c_str(), 0600), 0);
    std::filesystem::create_symlink("dir", work / "link");
    struct expectation {
        std::vector<std::string> args;
        int code;
        std::string says;
    };
    const expectation cases[] = {
        {{"-o", "dir", "--force"}, 9, "dir is a directory"},
        {{"-o", "dir"}, 9, "dir is a directory"},
        {{"-o", "fifo", "--force"}, 9, "fifo is a fifo"},
        {{"-o", "link", "--force"}, 9, "link is a symbolic link"},
        {{"-o", "dir/"}, 2, "names a directory"},
        {{"-o", "missing/f"}, 8, "missing: No such file or directory"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.args[1]);
        std::vector<std::string> args{"get", url, "--retries", "0"};
        args.insert(args.end(), c.args.begin(), c.args.end());
        auto r = ferry(work.path(), args);
        EXPECT_EQ(r.code, c.code) << r.output;
        EXPECT_NE(r.output.find(c.says), std::string::npos) << r.output;
        EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    }
    std::set<std::string> left;
    for (const auto& e : std::filesystem::directory_iterator(work.path()))
        left.insert(e.path().filename().string());
    EXPECT_EQ(left, (std::set<std::string>{"dir", "fifo", "link"}));
    EXPECT_TRUE(std::filesystem::is_empty(work / "dir"));
}

TEST_F(FerryCli, AReadOnlyOutputDirectoryFailsBeforeAnyRequest) {
    // A read-only tmpfs in a private mount namespace (root bypasses permission bits; needs
    // root to mount; skipped where unavailable). Nothing listens on the URL's port.
    const auto dir = work / "ro";
    std::filesystem::create_directory(dir);
    auto probe = run({"/usr/bin/unshare", "-m", "/bin/sh", "-c",
                      "mount -t tmpfs -o ro,size=1m tmpfs \"$0\"", dir.string()});
    if (probe.code != 0)
        GTEST_SKIP() << "cannot mount a tmpfs here: " << probe.output;
    std::uint16_t dead_port = 0;
    {
        temp_dir other;
        ferryd_process gone{other.path()};
        dead_port = gone.port();
        ASSERT_EQ(gone.stop(), 0);
    }
    const std::string script = "mount -t tmpfs -o ro,size=1m tmpfs \"$0\" && "
                               "\"$1\" get \"$2\" -o \"$0/f\" --retries 0; echo \"code=$?\"; "
                               "echo \"left=$(ls -A \"$0\" | wc -l)\"";
    auto r = run({"/usr/bin/unshare", "-m", "/bin/sh", "-c", script, dir.string(), bin("ferry"),
                  "ferry://127.0.0.1:" + std::to_string(dead_port) + "/f"});
    EXPECT_NE(r.output.find("code=8"), std::string::npos) << r.output;
    EXPECT_NE(
        r.output.find("cannot create " + (dir / "f.part").string() + ": Read-only file system"),
        std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("left=0"), std::string::npos) << r.output;
}

TEST_F(FerryCli, TwoDownloadsOfOneOutputInOneCommandAreRefusedUpFront) {
    write_file(root / "a/m.bin", "aaaa");
    write_file(root / "b/m.bin", "bbbb");
    ferryd_process server{root.path()};
    auto same_base = ferry(
        work.path(), {"get", url_of(server, "a/m.bin"), url_of(server, "b/m.bin"), "-o", "."});
    EXPECT_EQ(same_base.code, 2) << same_base.output;
    EXPECT_NE(same_base.output.find(url_of(server, "a/m.bin") + " and " +
                                    url_of(server, "b/m.bin") + " would both write ./m.bin"),
              std::string::npos)
        << same_base.output;
    auto twice = ferry(work.path(), {"get", url_of(server, "a/m.bin"), url_of(server, "a//m.bin")});
    EXPECT_EQ(twice.code, 2) << twice.output;
    EXPECT_NE(twice.output.find("would both write m.bin"), std::string::npos) << twice.output;
    // One output may not be another's work file either: m.bin.part is where m.bin is written.
    write_file(root / "m.bin", "mmmm");
    write_file(root / "m.bin.part", "pppp");
    auto work_file = ferry(
        work.path(), {"get", "--force", url_of(server, "m.bin"), url_of(server, "m.bin.part")});
    EXPECT_EQ(work_file.code, 2) << work_file.output;
    EXPECT_NE(work_file.output.find("would both write m.bin.part"), std::string::npos)
        << work_file.output;
    EXPECT_TRUE(std::filesystem::is_empty(work.path()));
}

/// Connections that cannot be had (busy beyond --max-connections-per-ip) leave their chunks to
/// the connections that work, and the digest is asked on one of those: the download completes,
/// verified. (It used to fail with exit 7 once any one connection ran out of retries.)
TEST_F(FerryCli, ConnectionsThatCannotBeHadLeaveTheirChunksToTheOthers) {
    const std::size_t size = 6 << 20;
    write_file(root / "big", make_content(size, 51));
    ferryd_process server{root.path(),
                          {"--max-connections-per-ip", "2", "--rate-limit", std::to_string(2 << 20),
                           "--busy-retry-after", "0.1"}};
    auto r = ferry(work.path(), {"get", url_of(server, "big"), "-j", "4", "--chunk-size",
                                 std::to_string(1 << 20), "--retries", "1", "--json"});
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(json_of(r)[0]["sha256"].get<std::string>().size(), 64U) << r.output;
    EXPECT_TRUE(read_file(work / "big") == make_content(size, 51));
    EXPECT_NE(r.output.find("going on with fewer connections"), std::string::npos) << r.output;
}

/// Two processes on one output: the second refuses, naming the first, which completes intact
/// (it used to publish a file spliced from both with "sha256 ok").
TEST_F(FerryCli, ASecondFerryOnTheSameOutputRefusesNamingTheHolder) {
    const std::size_t size = 24 << 20;
    write_file(root / "big", make_content(size, 41));
    write_file(root / "other", make_content(size, 42));
    ferryd_process server{root.path(), {"--rate-limit", std::to_string(4 << 20)}};
    child_process first{{bin("ferry"), "get", url_of(server, "big"), "-o", (work / "out").string(),
                         "--chunk-size", std::to_string(1 << 20), "--quiet"},
                        work / "first.log"};
    wait_for_progress(work / "out.part.state", 1 << 20);
    // Stopped, it holds its lock (and cannot finish) however slowly the second one starts.
    first.signal(SIGSTOP);
    for (const char* extra : {"--no-resume", "--force"}) {
        SCOPED_TRACE(extra);
        auto second = ferry(work.path(), {"get", url_of(server, "other"), "-o", "out", extra});
        EXPECT_EQ(second.code, 7) << second.output;
        EXPECT_NE(second.output.find("out is being downloaded by another ferry (pid " +
                                     std::to_string(first.pid()) + ", it holds "),
                  std::string::npos)
            << second.output;
    }
    first.signal(SIGCONT);
    ASSERT_EQ(first.wait_exit(std::chrono::seconds(90)), 0) << read_file(work / "first.log");
    EXPECT_TRUE(read_file(work / "out") == make_content(size, 41));
    EXPECT_FALSE(std::filesystem::exists(work / "out.part"));
    EXPECT_FALSE(std::filesystem::exists(work / "out.part.state"));
}

/// The resume state matches the server's file (its identity), not the spelling of its URL.
TEST_F(FerryCli, ResumesWhateverTheUrlSpelling) {
    const std::size_t size = 16 << 20;
    write_file(root / "big", make_content(size, 43));
    ferryd_process server{root.path(), {"--rate-limit", std::to_string(8 << 20)}};
    kill_mid_download(server, "big", work / "big", 2 << 20);
    const auto durable = recorded_done(work / "big.part.state");
    ASSERT_LT(durable, size);
    const auto other_spelling = "ferry://localhost:" + std::to_string(server.port()) + "/.//./big";
    auto r = ferry(work.path(), {"get", other_spelling, "--json"});
    ASSERT_EQ(r.code, 0) << r.output;
    auto j = json_of(r)[0];
    EXPECT_TRUE(j["resumed"].get<bool>()) << r.output;
    EXPECT_FALSE(j["restarted"].get<bool>()) << r.output;
    EXPECT_EQ(j["fetched"].get<std::uint64_t>(), size - durable);
    EXPECT_EQ(j["url"], "ferry://localhost:" + std::to_string(server.port()) + "/big");
    EXPECT_TRUE(read_file(work / "big") == make_content(size, 43));
}

TEST_F(FerryCli, AStalledServerIsANetworkErrorAfterRetries) {
    // A listening socket that never answers: connects succeed, no byte ever comes.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd, 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    auto r =
        ferry(work.path(), {"get", "ferry://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/f",
                            "--stall-timeout", "0.3", "--retries", "1"});
    ::close(fd);
    EXPECT_EQ(r.code, 5) << r.output;
    EXPECT_NE(r.output.find("timed out"), std::string::npos) << r.output;
}

/// No room for the file: the space is reserved before any byte arrives, so the failure comes
/// first and leaves nothing (a .part of zeros is worth nothing); with room, a rerun succeeds.
TEST_F(FerryCli, NoSpaceForTheFileFailsUpFrontLeavesNothingAndARerunSucceeds) {
    // A 1 MiB tmpfs in a private mount namespace (needs root; skipped where unavailable).
    write_file(root / "big", make_content(4 << 20, 27));
    ferryd_process server{root.path()};
    const auto dir = work / "small";
    std::filesystem::create_directory(dir);
    auto probe = run({"/usr/bin/unshare", "-m", "/bin/sh", "-c",
                      "mount -t tmpfs -o size=1m tmpfs \"$0\"", dir.string()});
    if (probe.code != 0)
        GTEST_SKIP() << "cannot mount a tmpfs here: " << probe.output;
    const std::string script =
        "mount -t tmpfs -o size=1m tmpfs \"$0\" && cd \"$0\" && "
        "\"$1\" get \"$2\" -o big --quiet; echo \"first=$?\"; ls; "
        "mount -o remount,size=16m \"$0\" && \"$1\" get \"$2\" -o big --quiet; echo \"second=$?\"; "
        "sha256sum big; ls";
    auto r = run({"/usr/bin/unshare", "-m", "/bin/sh", "-c", script, dir.string(), bin("ferry"),
                  url_of(server, "big")});
    EXPECT_NE(r.output.find("first=8"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
    const auto first = r.output.find("first=8");
    const auto second = r.output.find("second=0");
    ASSERT_NE(second, std::string::npos) << r.output;
    ASSERT_LT(first, second) << r.output;
    // `ls` between the runs lists nothing: no big.part, no big.part.state.
    EXPECT_EQ(r.output.substr(first, second - first).find("big"), std::string::npos) << r.output;
    const auto served = run({"/usr/bin/sha256sum", (root / "big").string()}).output.substr(0, 64);
    EXPECT_NE(r.output.find(served + "  big"), std::string::npos) << r.output;
}

/// Whether an access log records at least one GET.
bool served_a_get(const std::filesystem::path& log) {
    return std::filesystem::exists(log) && read_file(log).find("GET") != std::string::npos;
}

TEST_F(FerryCli, ThreeMirrorsOneKilledMidwayStillGiveTheSameBytes) {
    const std::size_t size = 16 << 20;
    temp_dir roots[3], logs;
    std::vector<std::unique_ptr<ferryd_process>> servers;
    for (int i = 0; i < 3; ++i) {
        write_file(roots[i] / "big", make_content(size, 31));
        servers.push_back(std::make_unique<ferryd_process>(
            roots[i].path(),
            std::vector<std::string>{"--rate-limit", std::to_string(2 << 20), "--access-log",
                                     (logs / ("access" + std::to_string(i) + ".log")).string()}));
    }
    child_process client{{bin("ferry"), "get", url_of(*servers[0], "big"), "--mirror",
                          url_of(*servers[1], "big"), "--mirror", url_of(*servers[2], "big"),
                          "-o", (work / "big").string(), "-j", "3", "--chunk-size",
                          std::to_string(1 << 20), "--retries", "2"},
                         work / "client.log"};
    wait_for_progress(work / "big.part.state", 4 << 20); // under half of it
    servers[1]->process().signal(SIGKILL);               // a crash in the middle
    ASSERT_TRUE(servers[1]->process().wait_exit(std::chrono::seconds(10)));
    ASSERT_EQ(client.wait_exit(std::chrono::seconds(90)), 0) << read_file(work / "client.log");
    EXPECT_TRUE(read_file(work / "big") == make_content(size, 31));
    EXPECT_FALSE(std::filesystem::exists(work / "big.part"));
    const auto said = read_file(work / "client.log");
    // The connection on the dead one went on with another source at once.
    const auto killed = url_of(*servers[1], "big");
    EXPECT_NE(said.find(killed + ": "), std::string::npos) << said;
    EXPECT_TRUE(said.find("; going on with ") != std::string::npos ||
                said.find("dropping source " + killed) != std::string::npos)
        << said;
    EXPECT_NE(said.find("sha256 ok"), std::string::npos) << said;
    // Both survivors served chunks.
    ASSERT_EQ(servers[0]->stop(), 0);
    ASSERT_EQ(servers[2]->stop(), 0);
    EXPECT_TRUE(served_a_get(logs / "access0.log"));
    EXPECT_TRUE(served_a_get(logs / "access2.log"));
}

TEST_F(FerryCli, AMirrorFarSlowerThanTheOthersIsDroppedAndItsChunkGoesElsewhere) {
    // Three mirrors, one of them sending 64 KiB/s: its 1 MiB chunk alone would take 16 s. Once
    // it has fetched for 2 s at under 1/8 of the others' speed it is left aside, and the chunk
    // it held is fetched from the others: it serves nothing.
    const std::size_t size = 8 << 20;
    temp_dir roots[3];
    std::vector<std::unique_ptr<ferryd_process>> servers;
    for (int i = 0; i < 3; ++i) {
        write_file(roots[i] / "big", make_content(size, 35));
        servers.push_back(std::make_unique<ferryd_process>(
            roots[i].path(), i == 1 ? std::vector<std::string>{"--rate-limit", "65536"}
                                    : std::vector<std::string>{}));
    }
    const auto slow = url_of(*servers[1], "big");
    auto r = ferry(work.path(), {"get", url_of(*servers[0], "big"), "--mirror", slow, "--mirror",
                                 url_of(*servers[2], "big"), "-j", "3", "--chunk-size",
                                 std::to_string(1 << 20)});
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(read_file(work / "big") == make_content(size, 35));
    EXPECT_NE(r.output.find("leaving source " + slow + " aside: "), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("per connection, under 1/8 of"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(slow + " served 0 bytes (left aside: slow)"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("sha256 ok"), std::string::npos) << r.output;
}

TEST_F(FerryCli, AnInputFileListsDownloadsWithTheirMirrorsAndNames) {
    // aria2's format: a URL and its mirrors on one line, an indented out= naming the output.
    temp_dir other, logs, into;
    write_file(root / "a.bin", make_content(300000, 36));
    write_file(root / "b.bin", make_content(5000, 37));
    write_file(other / "a.bin", make_content(300000, 36));
    ferryd_process a{root.path()}, b{other.path(), {"--access-log", (logs / "b.log").string()}};
    const auto http_b = "http://127.0.0.1:" + std::to_string(b.port()) + "/a.bin";
    write_file(work / "list", "# two files\n" + url_of(a, "a.bin") + "\t" + http_b +
                                  "\n\tout=renamed.bin\n\n" + url_of(a, "b.bin") + "\n");
    auto r = ferry(work.path(), {"get", "-i", "list", "-o", into.path().string(), "-j", "2",
                                 "--chunk-size", "65536"});
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(read_file(into / "renamed.bin") == make_content(300000, 36));
    EXPECT_TRUE(read_file(into / "b.bin") == make_content(5000, 37));
    EXPECT_FALSE(std::filesystem::exists(into / "a.bin"));
    EXPECT_NE(r.output.find(http_b + " served "), std::string::npos) << r.output;
    ASSERT_EQ(b.stop(), 0);
    EXPECT_TRUE(served_a_get(logs / "b.log"));

    // Standard input, beside a URL on the command line.
    write_file(work / "one", url_of(a, "b.bin") + "\n out=from-stdin.bin\n");
    auto piped = run({"/bin/sh", "-c", "cd \"$0\" && exec \"$@\" < one", work.path().string(),
                      bin("ferry"), "get", url_of(a, "a.bin"), "-i", "-"},
                     std::chrono::seconds(60));
    ASSERT_EQ(piped.code, 0) << piped.output;
    EXPECT_TRUE(read_file(work / "from-stdin.bin") == make_content(5000, 37));
    EXPECT_TRUE(read_file(work / "a.bin") == make_content(300000, 36));

    // A bad line: exit 2, its file and line named, nothing downloaded.
    write_file(work / "bad", url_of(a, "b.bin") + "\n out=x\n" + "ferry://[bad/x\n");
    auto bad = ferry(work.path(), {"get", "-i", "bad", "-o", into.path().string(), "--force"});
    EXPECT_EQ(bad.code, 2) << bad.output;
    EXPECT_NE(bad.output.find("-i bad:3: ferry://[bad/x: "), std::string::npos) << bad.output;
    EXPECT_FALSE(std::filesystem::exists(into / "x"));
    for (const std::vector<std::string>& wrong :
         {std::vector<std::string>{"get", "-i", "missing"},
          {"get", "-i", "list", "-o", (work / "list").string()},
          {"get", "-i", "list", "--mirror", url_of(a, "a.bin")},
          {"get", "-i", "list", "--no-verify"},
          {"get", "-i", "/dev/null"},
          {"get", "-i", ""},
          {"get", "-i", "", "--mirror", url_of(a, "a.bin")}}) {
        const auto w = ferry(work.path(), wrong);
        EXPECT_EQ(w.code, 2) << wrong.back() << ": " << w.output;
    }
}

TEST_F(FerryCli, AMirroredPartResumesWhileTheUrlIsDownAndIsNeverPublishedUnchecked) {
    const std::size_t size = 8 << 20;
    const auto content = make_content(size, 38);
    temp_dir other;
    write_file(root / "big", content);
    write_file(other / "big", content);
    const std::vector<std::string> paced{"--rate-limit", std::to_string(1 << 20)};
    auto a = std::make_unique<ferryd_process>(root.path(), paced);
    ferryd_process b{other.path(), paced};
    const auto out = work / "big";
    const std::vector<std::string> mirrored{"--mirror", url_of(b, "big"), "-j", "2"};

    // A .part filled from two servers, whose own identities differ, records their SHA-256.
    kill_mid_download(*a, "big", out, 2 << 20, mirrored);
    const auto state = nlohmann::json::parse(read_file(work / "big.part.state"));
    ASSERT_TRUE(state.contains("sha256")) << state.dump();

    // Rerun with --no-verify and no mirror: not resumed (nothing would check the bytes another
    // server sent). Planted: bytes the mirror "sent" wrong, which a resume would publish.
    {
        const int fd = ::open((work / "big.part").c_str(), O_WRONLY);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::pwrite(fd, std::string(4096, 'X').data(), 4096, 0), 4096);
        ::close(fd);
    }
    auto unchecked = ferry(work.path(), {"get", url_of(*a, "big"), "--no-verify"});
    ASSERT_EQ(unchecked.code, 0) << unchecked.output;
    EXPECT_NE(unchecked.output.find("was filled from several servers (--mirror): --no-verify "
                                    "would leave it unchecked; starting over"),
              std::string::npos)
        << unchecked.output;
    EXPECT_TRUE(read_file(out) == content);

    // The URL's server is down on the rerun: the .part resumes from the mirror, matched by the
    // SHA-256 it recorded, not by the identity of a server that cannot answer.
    std::filesystem::remove(out);
    kill_mid_download(*a, "big", out, 2 << 20, mirrored);
    const auto url_a = url_of(*a, "big");
    ASSERT_EQ(a->stop(), 0);
    a.reset();
    auto resumed = ferry(work.path(), {"get", url_a, "--mirror", url_of(b, "big")});
    ASSERT_EQ(resumed.code, 0) << resumed.output;
    EXPECT_NE(resumed.output.find(url_a + ": "), std::string::npos) << resumed.output;
    EXPECT_NE(resumed.output.find("going on without it"), std::string::npos) << resumed.output;
    EXPECT_NE(resumed.output.find("fetched after a resume"), std::string::npos) << resumed.output;
    EXPECT_EQ(resumed.output.find("starting over"), std::string::npos) << resumed.output;
    EXPECT_NE(resumed.output.find("sha256 ok"), std::string::npos) << resumed.output;
    EXPECT_TRUE(read_file(out) == content);
}

TEST_F(FerryCli, ASlowMirrorLeftAsideIsAskedAgainWhenTheFastOneDies) {
    // The slow source (512 KiB/s a connection) is left aside for the fast one (8 MiB/s); the
    // fast one is then killed: the download goes back to the slow one instead of failing.
    const std::size_t size = 32 << 20;
    const auto content = make_content(size, 39);
    temp_dir other;
    write_file(root / "big", content);
    write_file(other / "big", content);
    ferryd_process slow{root.path(), {"--rate-limit", std::to_string(512 << 10)}};
    auto fast = std::make_unique<ferryd_process>(
        other.path(), std::vector<std::string>{"--rate-limit", std::to_string(8 << 20)});
    const auto slow_url = url_of(slow, "big");
    const auto log = work / "client.log";
    child_process client{{bin("ferry"), "get", slow_url, "--mirror", url_of(*fast, "big"), "-o",
                          (work / "big").string(), "-j", "2", "--chunk-size",
                          std::to_string(256 << 10), "--retries", "2"},
                         log};
    ASSERT_TRUE(eventually(
        [&] {
            return std::filesystem::exists(log) &&
                   read_file(log).find("leaving source " + slow_url + " aside") !=
                       std::string::npos;
        },
        std::chrono::seconds(30)))
        << read_file(log);
    fast->process().signal(SIGKILL);
    ASSERT_TRUE(fast->process().wait_exit(std::chrono::seconds(10)));
    ASSERT_EQ(client.wait_exit(std::chrono::seconds(90)), 0) << read_file(log);
    EXPECT_TRUE(read_file(work / "big") == content);
    const auto said = read_file(log);
    EXPECT_NE(said.find("no faster source is left: going back to " + slow_url), std::string::npos)
        << said;
    EXPECT_NE(said.find("sha256 ok"), std::string::npos) << said;
}

TEST_F(FerryCli, AMirrorSendingOtherBytesThanItsDigestSaysFailsTheWholeFileAndBlamesNoUrl) {
    // The mirror's bytes change in place, its identity (size, mtime) kept: its cached SHA-256
    // agrees with the URL's, but some of the chunks it sends are other bytes.
    temp_dir other;
    const std::size_t size = 1 << 20;
    write_file(root / "f", make_content(size, 40));
    const auto lying = other / "f";
    write_file(lying, make_content(size, 40));
    struct stat before {};
    ASSERT_EQ(::stat(lying.c_str(), &before), 0);
    ferryd_process a{root.path()}, b{other.path()};
    ASSERT_EQ(ferry(work.path(), {"stat", url_of(b, "f"), "--sha256"}).code, 0);
    {
        const std::string junk(size, 'X');
        const int fd = ::open(lying.c_str(), O_WRONLY);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::pwrite(fd, junk.data(), junk.size(), 0), static_cast<ssize_t>(size));
        ::close(fd);
        const struct timespec times[2] = {before.st_atim, before.st_mtim};
        ASSERT_EQ(::utimensat(AT_FDCWD, lying.c_str(), times, 0), 0);
    }
    auto r = ferry(work.path(), {"get", url_of(a, "f"), "--mirror", url_of(b, "f"), "-j", "2",
                                 "--chunk-size", "65536"});
    EXPECT_EQ(r.code, 6) << r.output;
    EXPECT_NE(r.output.find("SHA-256 mismatch: the sources agreed on "), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("one of them sent other bytes than it announced"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find(url_of(b, "f") + " served "), std::string::npos) << r.output;
    EXPECT_FALSE(std::filesystem::exists(work / "f"));
    EXPECT_FALSE(std::filesystem::exists(work / "f.part"));
    EXPECT_FALSE(std::filesystem::exists(work / "f.part.state"));
}

TEST_F(FerryCli, AMirrorWithAnotherFileIsRefusedBeforeAnyByteIsWritten) {
    temp_dir other;
    write_file(root / "f", make_content(100000, 32));
    write_file(other / "f", make_content(100000, 33)); // the same size, other bytes
    write_file(other / "g", make_content(99999, 32));  // another size
    ferryd_process a{root.path()}, b{other.path()};
    auto r = ferry(work.path(), {"get", url_of(a, "f"), "--mirror", url_of(b, "f")});
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("--mirror " + url_of(b, "f") + ": SHA-256 "), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("not the same file"), std::string::npos) << r.output;
    EXPECT_FALSE(std::filesystem::exists(work / "f"));
    EXPECT_FALSE(std::filesystem::exists(work / "f.part"));
    EXPECT_FALSE(std::filesystem::exists(work / "f.part.state"));
    auto sized = ferry(work.path(), {"get", url_of(a, "f"), "--mirror", url_of(b, "g")});
    EXPECT_EQ(sized.code, 2) << sized.output;
    EXPECT_NE(sized.output.find("--mirror " + url_of(b, "g") + ": size 99999 differs from " +
                                url_of(a, "f") + "'s 100000: not the same file"),
              std::string::npos)
        << sized.output;
    EXPECT_FALSE(std::filesystem::exists(work / "f"));
    EXPECT_FALSE(std::filesystem::exists(work / "f.part"));
}

TEST_F(FerryCli, AnHttpMirrorMixesWithFerryAndAnUnreachableOneIsDropped) {
    temp_dir other, logs;
    const std::size_t size = (1 << 20) + 3;
    write_file(root / "f", make_content(size, 34));
    write_file(other / "f", make_content(size, 34));
    ferryd_process a{root.path(), {"--access-log", (logs / "a.log").string()}};
    ferryd_process b{other.path(), {"--access-log", (logs / "b.log").string()}};
    const auto http = "http://127.0.0.1:" + std::to_string(b.port()) + "/f";
    auto r = ferry(work.path(), {"get", url_of(a, "f"), "--mirror", http, "--mirror",
                                 "ferry://127.0.0.1:1/f", "-j", "4", "--chunk-size", "65536"});
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(read_file(work / "f") == make_content(size, 34));
    EXPECT_NE(r.output.find("--mirror ferry://127.0.0.1:1/f"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("going on without it"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("sha256 ok"), std::string::npos) << r.output;
    ASSERT_EQ(a.stop(), 0);
    ASSERT_EQ(b.stop(), 0);
    EXPECT_TRUE(served_a_get(logs / "a.log"));
    EXPECT_TRUE(served_a_get(logs / "b.log"));
    // Options that cannot go with --mirror.
    for (const std::vector<std::string>& bad :
         {std::vector<std::string>{"--no-verify"}, {"-o", "-"}, {url_of(a, "f")}}) {
        std::vector<std::string> args{"get", url_of(a, "f"), "--mirror", http};
        args.insert(args.end(), bad.begin(), bad.end());
        EXPECT_EQ(ferry(work.path(), args).code, 2) << bad.front();
    }
}

TEST_F(FerryCli, LsAndStat) {
    write_file(root / "d/a.txt", "aaa");
    write_file(root / "d/b.bin", "");
    std::filesystem::create_directory(root / "d/sub");
    ferryd_process server{root.path()};
    auto ls = ferry(work.path(), {"ls", url_of(server, "d")});
    ASSERT_EQ(ls.code, 0) << ls.output;
    EXPECT_LT(ls.output.find("a.txt"), ls.output.find("b.bin")); // sorted by name
    EXPECT_NE(ls.output.find("sub/"), std::string::npos);
    auto json = ferry(work.path(), {"ls", url_of(server, "d"), "--json"});
    ASSERT_EQ(json.code, 0);
    auto entries = json_of(json);
    ASSERT_EQ(entries.size(), 3U);
    EXPECT_EQ(entries[0]["name"], "a.txt");
    EXPECT_EQ(entries[0]["size"], 3);
    EXPECT_EQ(entries[2]["kind"], "directory");
    auto st = ferry(work.path(), {"stat", url_of(server, "d/a.txt"), "--sha256"});
    ASSERT_EQ(st.code, 0) << st.output;
    EXPECT_NE(st.output.find("9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0"),
              std::string::npos)
        << st.output; // sha256("aaa")
    EXPECT_NE(st.output.find("size:     3"), std::string::npos);
    EXPECT_EQ(ferry(work.path(), {"--version"}).code, 0);
    for (const char* cmd : {"get", "ls", "stat"}) {
        auto help = ferry(work.path(), {cmd, "--help"});
        EXPECT_EQ(help.code, 0) << cmd;
        EXPECT_NE(help.output.find("--stall-timeout"), std::string::npos) << cmd;
    }
}

TEST_F(FerryCli, LsOverHttpReadsFerrydsChunkedListingWhole) {
    // Several thousand entries: a listing of many chunks (ferryd sends 64 KiB at a time).
    std::filesystem::create_directory(root / "d");
    for (int i = 0; i < 3000; ++i)
        write_file(root / "d" / ("entry-with-a-longish-name-" + std::to_string(i)), "x");
    ferryd_process server{root.path()};
    const auto url = "http://127.0.0.1:" + std::to_string(server.port()) + "/d";
    auto ls = ferry(work.path(), {"ls", url, "--json"});
    ASSERT_EQ(ls.code, 0) << ls.output.substr(0, 2000);
    const auto entries = json_of(ls);
    ASSERT_EQ(entries.size(), 3000U);
    std::set<std::string> names;
    for (const auto& e : entries)
        names.insert(e["name"].get<std::string>());
    EXPECT_EQ(names.size(), 3000U);
    EXPECT_EQ(names.count("entry-with-a-longish-name-2999"), 1U);
}

} // namespace
} // namespace ferry::test

namespace ferry::test {
namespace {

/// Every numeric option of every command is read strictly and bounded: a bad value is exit 2
/// naming the option, before anything is contacted (a value let through would end in exit 5).
/// One bad value per option here; CliOptions in client_tests runs every case in-process.
TEST_F(FerryCli, EveryNumericOptionRefusesBadNumbersNamingTheOption) {
    for (const auto& b : bad_numbers(true)) {
        auto r = ferry(work.path(), b.args);
        EXPECT_EQ(r.code, 2) << quoted(b.args) << ": " << r.output;
        EXPECT_NE(r.output.find(b.option), std::string::npos) << quoted(b.args) << ": " << r.output;
    }
    EXPECT_TRUE(std::filesystem::is_empty(work.path()));
}

/// An option that means nothing for a command is refused, not silently ignored.
TEST_F(FerryCli, OptionsThatMeanNothingForTheCommandAreRefused) {
    for (const auto& b : meaningless_options()) {
        auto r = ferry(work.path(), b.args);
        EXPECT_EQ(r.code, 2) << quoted(b.args) << ": " << r.output;
        EXPECT_NE(r.output.find(b.option), std::string::npos) << quoted(b.args) << ": " << r.output;
    }
    EXPECT_TRUE(std::filesystem::is_empty(work.path()));
}

/// CI runs ferry bench only briefly, as a correctness check: zero errors, sane numbers.
TEST_F(FerryCli, BenchRunsCleanlyAndReportsSaneNumbers) {
    write_file(root / "4k", make_content(4096, 31));
    write_file(root / "64k", make_content(65536, 32));
    write_file(work / "paths", "64k\n# a comment\n");
    ferryd_process server{root.path()};
    auto closed = ferry(work.path(), {"bench", url_of(server, "4k"), "--list", "paths", "-c", "8",
                                      "-n", "400", "--verify", "--json"});
    ASSERT_EQ(closed.code, 0) << closed.output;
    auto j = nlohmann::json::parse(closed.output.substr(closed.output.find('{')));
    EXPECT_EQ(j["requests"], 400);
    EXPECT_EQ(j["error_total"], 0);
    // Each body was whole: the total is k 64 KiB bodies and 400 - k 4 KiB ones, both files used.
    const auto bytes = j["bytes"].get<std::uint64_t>();
    EXPECT_EQ((bytes - 400 * 4096) % (65536 - 4096), 0U) << bytes;
    EXPECT_GT(bytes, 400U * 4096);
    EXPECT_LT(bytes, 400U * 65536);
    EXPECT_EQ(j["latency"]["last_byte"]["count"], 400);
    EXPECT_GT(j["latency"]["last_byte"]["max_ms"].get<double>(), 0);
    EXPECT_LE(j["latency"]["first_byte"]["p50_ms"].get<double>(),
              j["latency"]["last_byte"]["max_ms"].get<double>());

    // Open loop: 200 requests at 400/s take about half a second of schedule.
    auto open = ferry(work.path(), {"bench", url_of(server, "4k"), "-c", "4", "-n", "200", "--rate",
                                    "400", "--json"});
    ASSERT_EQ(open.code, 0) << open.output;
    auto o = nlohmann::json::parse(open.output.substr(open.output.find('{')));
    EXPECT_EQ(o["requests"], 200);
    EXPECT_GE(o["seconds"].get<double>(), 0.45);

    auto hostile = ferry(work.path(), {"bench", url_of(server, "64k"), "-c", "2", "-n", "20",
                                       "--abort-after", "1000", "--json"});
    ASSERT_EQ(hostile.code, 0) << hostile.output;
    auto h = nlohmann::json::parse(hostile.output.substr(hostile.output.find('{')));
    EXPECT_EQ(h["aborted"], 20);
    EXPECT_EQ(h["requests"], 0);

    auto idle = ferry(work.path(),
                      {"bench", url_of(server, "4k"), "-c", "5", "-d", "0.5", "--idle", "--json"});
    ASSERT_EQ(idle.code, 0) << idle.output;
    EXPECT_EQ(nlohmann::json::parse(idle.output.substr(idle.output.find('{')))["held_open"], 5);
}

nlohmann::json bench_json(const run_result& r) {
    const auto start = r.output.find('{');
    if (start == std::string::npos)
        throw std::runtime_error("no JSON in: " + r.output);
    return nlohmann::json::parse(r.output.substr(start));
}

/// A bench run with --duration reports what flowed inside its window: a rate-limited server
/// cannot be reported faster than its limit, and transfers still running at the end are cut
/// there (neither awaited nor counted whole nor errors).
TEST_F(FerryCli, BenchCountsOnlyTheBytesThatArriveInsideTheWindow) {
    constexpr std::uint64_t rate = 1 << 20; // bytes/s per connection
    constexpr int connections = 2;
    write_file(root / "big", make_content(32 << 20, 33)); // 32 s per request at the rate
    ferryd_process server{root.path(), {"--rate-limit", std::to_string(rate)}};
    const auto started = std::chrono::steady_clock::now();
    auto r = ferry(work.path(), {"bench", url_of(server, "big"), "-c", std::to_string(connections),
                                 "-d", "3", "--json"});
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_EQ(r.code, 0) << r.output;
    const auto j = bench_json(r);
    EXPECT_EQ(j["error_total"], 0) << r.output;
    EXPECT_EQ(j["requests"], 0) << r.output; // none could complete within 3 s
    const double mibs = j["mib_per_second"].get<double>();
    EXPECT_GT(mibs, 0) << r.output;
    // At most what could flow: R per connection, plus the limiter's initial burst (R / 10).
    EXPECT_LE(mibs, connections * static_cast<double>(rate) * 1.1 / (1 << 20)) << r.output;
    EXPECT_GT(j["seconds"].get<double>(), 2.9) << r.output;
    EXPECT_LE(j["seconds"].get<double>(), 3.0) << r.output;
    EXPECT_LT(took, std::chrono::seconds(15)); // cut at the end, not awaited (32 s)
}

TEST_F(FerryCli, BenchWithSmallFilesCountsTheRequestsCompletedInsideTheWindow) {
    constexpr int connections = 4;
    write_file(root / "4k", make_content(4096, 34));
    ferryd_process server{root.path()};
    auto r = ferry(work.path(), {"bench", url_of(server, "4k"), "-c", std::to_string(connections),
                                 "-d", "1", "--warmup", "0.2", "--json"});
    ASSERT_EQ(r.code, 0) << r.output;
    const auto j = bench_json(r);
    EXPECT_EQ(j["error_total"], 0) << r.output;
    const auto requests = j["requests"].get<std::uint64_t>();
    const auto bytes = j["bytes"].get<std::uint64_t>();
    const double seconds = j["seconds"].get<double>();
    EXPECT_GT(requests, 10U) << r.output;
    // A body may arrive inside the window and its trailer after it, or before the window and
    // its trailer inside it (counted then, its bytes not): at most one per connection each way.
    EXPECT_GE(bytes, (requests - connections) * 4096) << r.output;
    EXPECT_LE(bytes, (requests + connections) * 4096) << r.output;
    EXPECT_GT(seconds, 0.9) << r.output;
    EXPECT_LE(seconds, 1.0) << r.output;
    EXPECT_NEAR(j["requests_per_second"].get<double>(), static_cast<double>(requests) / seconds,
                1e-6 * static_cast<double>(requests))
        << r.output;
    EXPECT_EQ(j["latency"]["last_byte"]["count"], requests) << r.output;
}

TEST_F(FerryCli, BenchCountsErrorsByCause) {
    write_file(root / "f", "x");
    ferryd_process server{root.path()};
    auto missing =
        ferry(work.path(), {"bench", url_of(server, "missing"), "-c", "2", "-n", "10", "--json"});
    EXPECT_EQ(missing.code, 1) << missing.output;
    auto j = nlohmann::json::parse(missing.output.substr(missing.output.find('{')));
    EXPECT_EQ(j["errors"]["bad status"], 10);
    EXPECT_EQ(j["requests"], 0);
    // With a request timeout shorter than --idle, the server closes idle connections: counted.
    ferryd_process strict{root.path(), {"--request-timeout", "0.2"}};
    auto idle = ferry(work.path(),
                      {"bench", url_of(strict, "f"), "-c", "3", "-d", "1", "--idle", "--json"});
    auto i = nlohmann::json::parse(idle.output.substr(idle.output.find('{')));
    EXPECT_EQ(i["held_open"], 0);
    EXPECT_EQ(i["errors"]["reset"], 3);
    // Nothing listening: with --requests, every refused connection is one of them, and the run
    // ends (it used to retry forever).
    const auto gone = url_of(strict, "f");
    EXPECT_EQ(strict.stop(), 0);
    auto refused = ferry(work.path(), {"bench", gone, "-c", "2", "-n", "6", "--json"});
    EXPECT_EQ(refused.code, 1) << refused.output;
    auto r = nlohmann::json::parse(refused.output.substr(refused.output.find('{')));
    EXPECT_EQ(r["errors"]["refused"], 6);
    EXPECT_EQ(r["requests"], 0);
}

} // namespace
} // namespace ferry::test

// ---- http:// against a real nginx ------------------------------------------------------------

#include "support/nginx_process.hpp"

namespace ferry::test {
namespace {

struct FerryHttp : FerryCli {
    void SetUp() override {
        if (!nginx_available())
            GTEST_SKIP() << nginx_binary
                         << " is not installed: the http:// tests need a real nginx";
    }
};

/// sha256 in hex of `text`, as ferry stat prints it (computed by a ferryd over the file).
std::string hex_sha256_of(const temp_dir& root, const std::string& name) {
    ferryd_process server{root.path()};
    temp_dir scratch;
    auto st = ferry(scratch.path(), {"stat", url_of(server, name), "--sha256", "--json"});
    return nlohmann::json::parse(st.output.substr(st.output.find('{')))["sha256"];
}

TEST_F(FerryHttp, DownloadsFromNginxAreByteIdenticalSingleAndSegmented) {
    const std::size_t size = (5 << 20) + 11;
    write_file(root / "f", make_content(size, 41));
    write_file(root / "empty", "");
    nginx_process nginx{root.path()};
    auto one = ferry(work.path(), {"get", nginx.url("f"), "-o", "one", "-j", "1", "--json"});
    ASSERT_EQ(one.code, 0) << one.output;
    EXPECT_TRUE(read_file(work / "one") == make_content(size, 41));
    // nginx offers no digest: completed, said once, not a failure.
    EXPECT_NE(one.output.find("not verified: the server offers no digest"), std::string::npos)
        << one.output;
    EXPECT_EQ(json_of(one)[0]["sha256"], "");
    auto four = ferry(work.path(), {"get", nginx.url("f"), "-o", "four", "-j", "4", "--chunk-size",
                                    "65536", "--json"});
    ASSERT_EQ(four.code, 0) << four.output;
    EXPECT_TRUE(read_file(work / "four") == make_content(size, 41));
    EXPECT_EQ(json_of(four)[0]["connections"], 4);
    auto empty = ferry(work.path(), {"get", nginx.url("empty"), "-o", "empty"});
    ASSERT_EQ(empty.code, 0) << empty.output;
    EXPECT_EQ(read_file(work / "empty"), "");
    auto out = ferry(work.path(), {"get", nginx.url("f"), "-o", "-", "--quiet", "--no-verify"});
    ASSERT_EQ(out.code, 0);
    EXPECT_TRUE(out.output == make_content(size, 41)); // stdout and stderr share the log
    EXPECT_EQ(ferry(work.path(), {"get", nginx.url("missing"), "-o", "m"}).code, 3);
    EXPECT_FALSE(std::filesystem::exists(work / "m.part"));
}

TEST_F(FerryHttp, Sha256GivenIsCheckedAgainstNginx) {
    write_file(root / "f", make_content(300000, 42));
    const auto good = hex_sha256_of(root, "f");
    nginx_process nginx{root.path()};
    auto ok = ferry(work.path(), {"get", nginx.url("f"), "-o", "ok", "--sha256", good, "--json"});
    ASSERT_EQ(ok.code, 0) << ok.output;
    EXPECT_EQ(json_of(ok)[0]["sha256"], good);
    std::string bad = good;
    bad[0] = bad[0] == '0' ? '1' : '0';
    auto wrong = ferry(work.path(), {"get", nginx.url("f"), "-o", "bad", "--sha256", bad});
    EXPECT_EQ(wrong.code, 6) << wrong.output;
    EXPECT_FALSE(std::filesystem::exists(work / "bad"));
    EXPECT_FALSE(std::filesystem::exists(work / "bad.part"));
}

/// Starts `ferry get` of `url` into `out` in 1 MiB requests, waits until at least `bytes` are
/// durable, and SIGKILLs it.
void kill_http_download(const std::string& url, const std::filesystem::path& out,
                        std::uint64_t bytes) {
    child_process client{{bin("ferry"), "get", url, "-o", out.string(), "--chunk-size",
                          std::to_string(1 << 20), "-j", "1", "--quiet"},
                         out.string() + ".log"};
    wait_for_progress(out.string() + ".part.state", bytes);
    client.signal(SIGKILL);
    ASSERT_EQ(client.wait_exit(std::chrono::seconds(10)), 128 + SIGKILL);
}

TEST_F(FerryHttp, AKilledDownloadResumesWithIfRangeFetchingOnlyTheRest) {
    const std::size_t size = 8 << 20;
    write_file(root / "big", make_content(size, 43));
    nginx_process nginx{root.path(), "limit_rate 4m;"};
    kill_http_download(nginx.url("big"), work / "big", 2 << 20);
    const auto durable = recorded_done(work / "big.part.state");
    ASSERT_LT(durable, size);
    auto r = ferry(work.path(), {"get", nginx.url("big"), "-o", "big", "--json"});
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(read_file(work / "big") == make_content(size, 43));
    auto j = json_of(r)[0];
    EXPECT_TRUE(j["resumed"].get<bool>());
    EXPECT_EQ(j["fetched"].get<std::uint64_t>(), size - durable);
}

TEST_F(FerryHttp, AFileChangedOnNginxBetweenRunsIsFetchedAfreshNeverMixed) {
    const std::size_t size = 8 << 20;
    write_file(root / "big", make_content(size, 44));
    nginx_process nginx{root.path(), "limit_rate 4m;"};
    kill_http_download(nginx.url("big"), work / "big", 2 << 20);
    // Same size, new bytes and a new mtime (nginx's ETag and Last-Modified have 1 s steps).
    const auto before = std::filesystem::last_write_time(root / "big");
    write_file(root / "big", make_content(size, 45));
    std::filesystem::last_write_time(root / "big", before + std::chrono::seconds(10));
    auto r = ferry(work.path(), {"get", nginx.url("big"), "-o", "big", "--json"});
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(read_file(work / "big") == make_content(size, 45));
    EXPECT_TRUE(json_of(r)[0]["restarted"].get<bool>());
    EXPECT_NE(r.output.find("changed on the server"), std::string::npos) << r.output;
}

TEST_F(FerryHttp, StatAndLsAgainstNginx) {
    write_file(root / "d/a.txt", "aaa");
    write_file(root / "d/b.bin", "");
    std::filesystem::create_directory(root / "d/sub");
    nginx_process nginx{root.path()};
    auto st = ferry(work.path(), {"stat", nginx.url("d/a.txt"), "--json"});
    ASSERT_EQ(st.code, 0) << st.output;
    auto s = nlohmann::json::parse(st.output.substr(st.output.find('{')));
    EXPECT_EQ(s["kind"], "file");
    EXPECT_EQ(s["size"], 3);
    EXPECT_GT(s["mtime_ns"].get<std::int64_t>(), 0);
    EXPECT_FALSE(s.contains("sha256"));
    auto no_digest = ferry(work.path(), {"stat", nginx.url("d/a.txt"), "--sha256"});
    ASSERT_EQ(no_digest.code, 0) << no_digest.output;
    EXPECT_NE(no_digest.output.find("sha256:   (the server offers no digest)"), std::string::npos)
        << no_digest.output;
    auto dir = ferry(work.path(), {"stat", nginx.url("d"), "--json"});
    ASSERT_EQ(dir.code, 0) << dir.output;
    EXPECT_EQ(nlohmann::json::parse(dir.output.substr(dir.output.find('{')))["kind"], "directory");
    EXPECT_EQ(ferry(work.path(), {"stat", nginx.url("d/none")}).code, 3);

    auto ls = ferry(work.path(), {"ls", nginx.url("d"), "--json"});
    ASSERT_EQ(ls.code, 0) << ls.output;
    auto entries = json_of(ls);
    ASSERT_EQ(entries.size(), 3U);
    EXPECT_EQ(entries[0]["name"], "a.txt");
    EXPECT_EQ(entries[0]["size"], 3);
    EXPECT_EQ(entries[1]["name"], "b.bin");
    EXPECT_EQ(entries[2]["name"], "sub");
    EXPECT_EQ(entries[2]["kind"], "directory");
    EXPECT_EQ(ferry(work.path(), {"ls", nginx.url("")}).code, 0);
    EXPECT_EQ(ferry(work.path(), {"ls", "https://127.0.0.1/"}).code, 2);
}

TEST_F(FerryHttp, LsOfAnHtmlListingSaysItNeedsJson) {
    write_file(root / "d/a.txt", "aaa");
    nginx_process nginx{root.path(), "location /d/ { autoindex_format html; }"};
    auto ls = ferry(work.path(), {"ls", nginx.url("d")});
    EXPECT_EQ(ls.code, 1) << ls.output;
    EXPECT_NE(ls.output.find("ferry ls needs JSON (nginx: autoindex_format json)"),
              std::string::npos)
        << ls.output;
}

TEST_F(FerryHttp, BenchDrivesNginxOverKeepAlive) {
    write_file(root / "4k", make_content(4096, 46));
    nginx_process nginx{root.path()};
    auto r = ferry(work.path(), {"bench", nginx.url("4k"), "-c", "4", "-n", "300", "--json"});
    ASSERT_EQ(r.code, 0) << r.output;
    auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
    EXPECT_EQ(j["requests"], 300);
    EXPECT_EQ(j["error_total"], 0);
    EXPECT_EQ(j["bytes"], 300 * 4096);
    // nginx ends a connection after keepalive_requests answers, saying Connection: close:
    // the next request goes on a new connection, never counted as an error.
    nginx_process brief{root.path(), "keepalive_requests 10;"};
    auto k = ferry(work.path(), {"bench", brief.url("4k"), "-c", "2", "-n", "100", "--json"});
    ASSERT_EQ(k.code, 0) << k.output;
    auto kj = nlohmann::json::parse(k.output.substr(k.output.find('{')));
    EXPECT_EQ(kj["requests"], 100);
    EXPECT_EQ(kj["error_total"], 0);
    // --verify needs a digest nginx does not offer: it fails, saying so.
    auto v = ferry(work.path(), {"bench", nginx.url("4k"), "-c", "1", "-n", "5", "--verify"});
    EXPECT_EQ(v.code, 1) << v.output;
    EXPECT_NE(v.output.find("the server offers none (Repr-Digest)"), std::string::npos) << v.output;
}

/// nginx's `return 301 /path` (an absolute URL, absolute_redirect on) and a relative 307, with
/// their HTML bodies: followed by get -j4 and stat; a redirect to itself and to https:// are
/// exit 1 with nothing written.
TEST_F(FerryHttp, NginxRedirectsAreFollowed) {
    const std::size_t size = (3 << 20) + 5;
    std::filesystem::create_directories(root / "files");
    write_file(root / "files" / "f", make_content(size, 47));
    nginx_process nginx{root.path(), "location = /old { return 301 /files/f; }\n"
                                     "    location = /moved { return 307 files/f; }\n"
                                     "    location = /loop { return 302 /loop; }\n"
                                     "    location = /tls { return 301 https://$host/files/f; }"};
    for (const char* path : {"old", "moved"}) {
        SCOPED_TRACE(path);
        auto r = ferry(work.path(), {"get", nginx.url(path), "-o", "out", "-j", "4", "--chunk-size",
                                     "262144", "--force", "--json"});
        ASSERT_EQ(r.code, 0) << r.output;
        EXPECT_TRUE(read_file(work / "out") == make_content(size, 47));
        EXPECT_EQ(json_of(r)[0]["connections"], 4);
    }
    auto st = ferry(work.path(), {"stat", nginx.url("old")});
    ASSERT_EQ(st.code, 0) << st.output;
    EXPECT_NE(st.output.find("location: " + nginx.url("files/f")), std::string::npos) << st.output;
    EXPECT_NE(st.output.find("size:     " + std::to_string(size)), std::string::npos) << st.output;
    std::filesystem::remove(work / "out");
    auto loop = ferry(work.path(), {"get", nginx.url("loop")});
    EXPECT_EQ(loop.code, 1) << loop.output;
    EXPECT_NE(loop.output.find("a redirect loop: " + nginx.url("loop") + " -> " + nginx.url("loop")),
              std::string::npos)
        << loop.output;
    auto tls = ferry(work.path(), {"get", nginx.url("tls")});
    EXPECT_EQ(tls.code, 1) << tls.output;
    EXPECT_NE(tls.output.find("ferry does not follow https://"), std::string::npos) << tls.output;
    EXPECT_TRUE(std::filesystem::is_empty(work.path()));
}

} // namespace
} // namespace ferry::test
