// ferryd under a service manager, without one running: sd_notify to a socket of the test's own,
// socket activation through systemd-socket-activate (and tests/support/socket_supervisor.py,
// which restarts ferryd the way `systemctl restart` does), the journal's line format (label:
// integration).
#include "support/process.hpp"
#include "support/test_client.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <netinet/in.h>
#include <poll.h>
#include <regex>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>

namespace ferry::test {
namespace {

using namespace std::chrono_literals;

std::string file_or_empty(const std::filesystem::path& p) {
    return std::filesystem::exists(p) ? read_file(p) : std::string{};
}

/// `ferryd --root ROOT --port-file DIR/port --threads 2 EXTRA...`, with `env` (NAME=VALUE) set.
std::vector<std::string> ferryd_command(const std::filesystem::path& root, const temp_dir& dir,
                                        std::vector<std::string> env,
                                        const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"/usr/bin/env"};
    args.insert(args.end(), env.begin(), env.end());
    args.insert(args.end(), {bin("ferryd"), "--root", root.string(), "--port-file",
                             (dir / "port").string(), "--threads", "2"});
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

/// The ports of a port file, once it exists (bounded).
std::vector<std::uint16_t> wait_for_ports(const std::filesystem::path& file, child_process& p,
                                          const std::filesystem::path& log) {
    EXPECT_TRUE(eventually([&] {
        return std::filesystem::exists(file) || p.wait_exit(0ms).has_value();
    })) << file_or_empty(log);
    std::vector<std::uint16_t> ports;
    std::istringstream in{file_or_empty(file)};
    for (unsigned port; in >> port;)
        ports.push_back(static_cast<std::uint16_t>(port));
    return ports;
}


/// systemd-socket-activate listening on 127.0.0.1 at one free port per name (--fdname), which
/// runs `command` at the first connection. It cannot take port 0: a port taken between
/// free_port() and its bind makes it exit, and the next attempt takes other ports.
class socket_activation {
public:
    socket_activation(const std::vector<std::string>& names,
                      const std::vector<std::string>& command, const std::filesystem::path& log)
        : log_(log) {
        for (int attempt = 0; attempt < 10; ++attempt) {
            ports_.clear();
            std::vector<std::string> args{"/usr/bin/systemd-socket-activate"};
            std::string fdnames;
            for (const auto& n : names) {
                ports_.push_back(free_port());
                args.push_back("--listen=127.0.0.1:" + std::to_string(ports_.back()));
                fdnames += (fdnames.empty() ? "" : ":") + n;
            }
            args.push_back("--fdname=" + fdnames);
            args.insert(args.end(), command.begin(), command.end());
            std::filesystem::remove(log);
            process_.emplace(args, log);
            // It says "Listening on ADDR as FD." for each socket once it listens.
            const auto listening = [&] {
                const auto text = file_or_empty(log);
                std::size_t n = 0;
                for (auto at = text.find("Listening on "); at != std::string::npos;
                     at = text.find("Listening on ", at + 1))
                    ++n;
                return n == names.size();
            };
            if (eventually([&] { return listening() || process_->wait_exit(0ms).has_value(); }) &&
                listening() && process_->running())
                return;
            process_.reset();
        }
        throw std::runtime_error("systemd-socket-activate did not listen: " + file_or_empty(log));
    }
    socket_activation(const socket_activation&) = delete;
    socket_activation& operator=(const socket_activation&) = delete;
    /// After a failure too, SIGTERM first: a supervisor stops its ferryd before it exits (a
    /// SIGKILL would leave that ferryd running).
    ~socket_activation() {
        if (process_ && process_->running() && !process_->wait_exit(0ms)) {
            process_->signal(SIGTERM);
            (void)process_->wait_exit(60s);
        }
    }
    std::uint16_t port(std::size_t i = 0) const { return ports_.at(i); }
    child_process& process() { return *process_; }
    std::string log() const { return file_or_empty(log_); }

private:
    std::filesystem::path log_;
    std::vector<std::uint16_t> ports_;
    std::optional<child_process> process_;
};

bool has_systemd_socket_activate() {
    return std::filesystem::exists("/usr/bin/systemd-socket-activate");
}

// ---- sd_notify ----------------------------------------------------------------------------------

/// A unix datagram socket at DIR/notify: what systemd listens on for NOTIFY_SOCKET.
class notify_socket {
public:
    explicit notify_socket(const std::filesystem::path& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        if (path.string().size() >= sizeof a.sun_path)
            throw std::runtime_error("socket path too long: " + path.string());
        std::strcpy(a.sun_path, path.c_str());
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("cannot bind " + path.string());
    }
    notify_socket(const notify_socket&) = delete;
    notify_socket& operator=(const notify_socket&) = delete;
    ~notify_socket() { ::close(fd_); }

    /// The messages received until one contains `what` (bounded); all of them, joined by "|".
    std::string read_until(const std::string& what, std::chrono::milliseconds limit = 30s) {
        std::string seen;
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0)
                continue;
            char buf[4096];
            const auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0)
                continue;
            const std::string message{buf, static_cast<std::size_t>(n)};
            seen += message + "|";
            if (message.find(what) != std::string::npos)
                return seen;
        }
        return seen + "<timeout>";
    }

private:
    std::filesystem::path path_;
    int fd_ = -1;
};

TEST(FerrydSystemd, NotifiesReadyThenStoppingWhileItDrains) {
    temp_dir root;
    temp_dir run_dir;
    write_file(root / "big", make_content(16 << 20, 22));
    notify_socket systemd{run_dir / "notify"};
    child_process ferryd{
        ferryd_command(root.path(), run_dir, {"NOTIFY_SOCKET=" + (run_dir / "notify").string()},
                       {"--listen", "127.0.0.1:0", "--log-level", "warn", "--rate-limit",
                        std::to_string(1 << 20), "--drain-timeout", "2.5"}),
        run_dir / "log"};
    const auto ready = systemd.read_until("READY=1");
    // READY=1 comes once the port file is written: a unit ordered after ferryd can connect.
    ASSERT_TRUE(std::filesystem::exists(run_dir / "port")) << ready;
    const auto port = read_file(run_dir / "port");
    EXPECT_NE(ready.find("READY=1\nSTATUS=serving " + root.path().string() +
                         " on 2 thread(s), port(s) " + port.substr(0, port.find('\n')) + "|"),
              std::string::npos)
        << ready;
    // A transfer the drain waits for: 16 MiB at 1 MiB/s outlasts the 2.5 s drain.
    auto c = test_client::connect(static_cast<std::uint16_t>(std::stoul(port)));
    c.send(fp::get_request{"big", 0, fp::to_end, std::nullopt});
    (void)c.read<fp::get_header>();
    ferryd.signal(SIGTERM);
    // STOPPING=1 at once, the count again each second, then the drain deadline and the end.
    const auto stopped = systemd.read_until("STATUS=stopped");
    const std::string draining = "STATUS=draining: 1 connection(s) left|";
    EXPECT_EQ(stopped.find("STOPPING=1\n" + draining), 0U) << stopped;
    const auto update = stopped.find(draining, 1);
    EXPECT_NE(update, std::string::npos) << stopped;
    const auto cancelling = stopped.find("STATUS=cancelling: 1 connection(s) left|");
    EXPECT_NE(cancelling, std::string::npos) << stopped;
    EXPECT_LT(update, cancelling) << stopped;
    EXPECT_EQ(stopped.substr(stopped.size() - std::min(stopped.size(), std::size_t{15})),
              "STATUS=stopped|")
        << stopped;
    EXPECT_EQ(ferryd.wait_exit(30s), 0) << read_file(run_dir / "log");
}

// ---- the journal's line format ------------------------------------------------------------------

TEST(FerrydSystemd, LinesToTheJournalCarryThePriorityAndNoTimestamp) {
    temp_dir root;
    const std::regex timestamp{R"(\[20[0-9][0-9]-[0-9][0-9]-[0-9][0-9] )"};
    for (const bool journal : {true, false}) {
        SCOPED_TRACE(journal ? "JOURNAL_STREAM names stderr" : "JOURNAL_STREAM names another file");
        temp_dir run_dir;
        const auto log = run_dir / "log";
        write_file(log, "");
        struct stat st {};
        ASSERT_EQ(::stat((journal ? log : root.path()).c_str(), &st), 0);
        const auto stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
        child_process ferryd{ferryd_command(root.path(), run_dir, {"JOURNAL_STREAM=" + stream},
                                            {"--listen", "127.0.0.1:0", "--log-level", "info"}),
                             log};
        ASSERT_FALSE(wait_for_ports(run_dir / "port", ferryd, log).empty());
        ferryd.signal(SIGTERM);
        ASSERT_EQ(ferryd.wait_exit(30s), 0) << read_file(log);
        const auto text = read_file(log);
        if (journal) {
            EXPECT_EQ(
                text.rfind("<6>[server] serving " + root.path().string() + " on 2 thread(s)", 0),
                0U)
                << text;
            EXPECT_NE(text.find("\n<6>[server] received signal 15: not accepting"),
                      std::string::npos)
                << text;
            EXPECT_NE(text.find("\n<6>[server] stopped\n"), std::string::npos) << text;
            EXPECT_FALSE(std::regex_search(text, timestamp)) << text;
            EXPECT_EQ(text.find('\x1b'), std::string::npos) << text; // no colour codes
        } else {
            EXPECT_TRUE(std::regex_search(text, timestamp)) << text;
            EXPECT_NE(text.find("] [server] [info] serving "), std::string::npos) << text;
            EXPECT_EQ(text.find("<6>"), std::string::npos) << text;
        }
    }
}

// ---- socket activation --------------------------------------------------------------------------

TEST(FerrydSystemd, ServesTheSocketsSystemdPassesInsteadOfListen) {
    if (!has_systemd_socket_activate())
        GTEST_SKIP() << "systemd-socket-activate is not installed";
    temp_dir root;
    temp_dir run_dir;
    write_file(root / "hello.txt", "hello");
    socket_activation systemd{{"ferry", "admin"},
                              ferryd_command(root.path(), run_dir, {},
                                             {"--listen", "127.0.0.1:0", "--log-level", "info"}),
                              run_dir / "log"};
    // systemd-socket-activate starts ferryd at the first connection, which waits in the
    // backlog meanwhile.
    auto c = test_client::connect(systemd.port(0));
    EXPECT_EQ(c.get("hello.txt").body, "hello") << systemd.log();
    // The port file names the inherited ports (not one of --listen's): the service's, then the
    // admin listener's, on the socket named admin.
    EXPECT_EQ(file_or_empty(run_dir / "port"),
              std::to_string(systemd.port(0)) + "\n" + std::to_string(systemd.port(1)) + "\n");
    EXPECT_EQ(http(systemd.port(1), "GET", "/healthz").status, 200);
    EXPECT_EQ(http(systemd.port(1), "GET", "/readyz").body, "ready\n");
    const auto log = systemd.log();
    EXPECT_NE(log.find("serving the socket(s) systemd passed, 127.0.0.1:" +
                       std::to_string(systemd.port(0)) + ", instead of the listen addresses"),
              std::string::npos)
        << log;
    EXPECT_TRUE(std::regex_search(log, std::regex{"\\[info\\] admin listener \\([^)]*\\) on port " +
                                                   std::to_string(systemd.port(1)) + "\n"}))
        << log;
    // systemd-socket-activate exec'd ferryd: its PID is ferryd's.
    systemd.process().signal(SIGTERM);
    EXPECT_TRUE(c.wait_closed());
    EXPECT_EQ(systemd.process().wait_exit(30s), 0) << systemd.log();
}

TEST(FerrydSystemd, AnswersAgentChecksOnTheSocketNamedAgentInsteadOfAgentListen) {
    if (!has_systemd_socket_activate())
        GTEST_SKIP() << "systemd-socket-activate is not installed";
    temp_dir root;
    temp_dir run_dir;
    write_file(root / "hello.txt", "hello");
    // The agent's socket before the admin's: the port file keeps its order all the same.
    socket_activation systemd{{"ferry", "agent", "admin"},
                              ferryd_command(root.path(), run_dir, {},
                                             {"--listen", "127.0.0.1:0", "--agent-listen",
                                              "127.0.0.1:0", "--log-level", "info"}),
                              run_dir / "log"};
    // The agent check is the first connection: it starts ferryd, and waits in the backlog.
    EXPECT_EQ(agent_check(systemd.port(1)), "ready 100%\n") << systemd.log();
    // The port file: the service's port, the admin listener's, then the agent's (the inherited
    // one, not a port of --agent-listen's).
    EXPECT_EQ(file_or_empty(run_dir / "port"), std::to_string(systemd.port(0)) + "\n" +
                                                   std::to_string(systemd.port(2)) + "\n" +
                                                   std::to_string(systemd.port(1)) + "\n");
    auto c = test_client::connect(systemd.port(0));
    EXPECT_EQ(c.get("hello.txt").body, "hello") << systemd.log();
    const auto log = systemd.log();
    EXPECT_NE(log.find("serving the socket(s) systemd passed, 127.0.0.1:" +
                       std::to_string(systemd.port(0)) + ", instead of the listen addresses"),
              std::string::npos)
        << log;
    EXPECT_NE(
        log.find("HAProxy agent-check responder on port " + std::to_string(systemd.port(1)) + "\n"),
        std::string::npos)
        << log;
    // systemd-socket-activate exec'd ferryd: its PID is ferryd's.
    systemd.process().signal(SIGTERM);
    EXPECT_TRUE(c.wait_closed());
    EXPECT_EQ(systemd.process().wait_exit(30s), 0) << systemd.log();
}

TEST(FerrydSystemd, AnInheritedDescriptorThatIsNotAListeningSocketIsRefused) {
    temp_dir root;
    temp_dir run_dir;
    write_file(run_dir / "file", "");
    // LISTEN_PID must be ferryd's own PID: the shell's, which exec keeps.
    struct passed {
        std::string fd3;     // a redirection of the shell's
        std::string message; // what ferryd says
    };
    for (const auto& [fd3, message] :
         {passed{"3<" + (run_dir / "file").string(),
                 "ferryd: inherited descriptor 3 (unknown) is not a listening TCP socket: check "
                 "ListenStream= in the socket unit\n"},
          passed{"3<&-", "ferryd: cannot take the inherited sockets (LISTEN_FDS=1): Bad file "
                         "descriptor\n"}}) {
        SCOPED_TRACE(fd3);
        auto r =
            run({"/bin/sh", "-c",
                 "LISTEN_FDS=1 LISTEN_PID=$$ exec \"$0\" --root \"$1\" --listen 127.0.0.1:0 " + fd3,
                 bin("ferryd"), root.path().string()});
        EXPECT_EQ(r.code, 1) << r.output;
        EXPECT_EQ(r.output, message);
    }
    // Sockets passed to another process (LISTEN_PID) are not ferryd's: it binds --listen.
    child_process ferryd{{"/bin/sh", "-c",
                          "LISTEN_FDS=1 LISTEN_PID=1 exec \"$0\" --root \"$1\" --listen "
                          "127.0.0.1:0 --port-file \"$2\" 3<&-",
                          bin("ferryd"), root.path().string(), (run_dir / "port").string()},
                         run_dir / "log"};
    EXPECT_EQ(wait_for_ports(run_dir / "port", ferryd, run_dir / "log").size(), 1U);
    ferryd.signal(SIGTERM);
    EXPECT_EQ(ferryd.wait_exit(30s), 0) << file_or_empty(run_dir / "log");
}

TEST(FerrydSystemd, TheUnitsAreNotifyAndSocketActivated) {
    const auto service = read_file(FERRY_SOURCE_DIR "/config/ferryd.service");
    const auto socket = read_file(FERRY_SOURCE_DIR "/config/ferryd.socket");
    EXPECT_NE(service.find("\nType=notify\nNotifyAccess=main\n"), std::string::npos);
    EXPECT_NE(service.find("\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n"),
              std::string::npos); // sd_notify's socket is AF_UNIX
    EXPECT_NE(service.find("\nAlso=ferryd.socket\n"), std::string::npos);
    // The socket listens where the shipped ferryd.conf says ferryd does.
    EXPECT_NE(read_file(FERRY_SOURCE_DIR "/config/ferryd.conf").find("\nlisten = 127.0.0.1:7878\n"),
              std::string::npos);
    EXPECT_NE(socket.find("\nListenStream=127.0.0.1:7878\n"), std::string::npos);
    EXPECT_NE(socket.find("\nFileDescriptorName=ferry\n"), std::string::npos);
    EXPECT_NE(socket.find("\nService=ferryd.service\n"), std::string::npos);
    // systemd-analyze verify: both units load, with ExecStart= the ferryd built here.
    temp_dir units;
    write_file(units / "ferryd.socket", socket);
    write_file(units / "ferryd.service",
               std::regex_replace(service, std::regex{"ExecStart=/usr/bin/ferryd"},
                                  "ExecStart=" + bin("ferryd")));
    auto r = run({"/bin/sh", "-c",
                  "command -v systemd-analyze >/dev/null || exit 127; cd \"$0\" && "
                  "systemd-analyze verify --man=no ./ferryd.socket ./ferryd.service",
                  units.path().string()});
    if (r.code == 127)
        GTEST_SKIP() << "systemd-analyze is not installed: the units are not verified";
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(r.output, "") << r.output;
}

// ---- restarts on a held socket ------------------------------------------------------------------

/// The supervisor's record: the PIDs it started, and the exit code of each that exited.
struct supervised {
    std::vector<int> started;
    std::map<int, int> exited;
};
supervised read_pids(const std::filesystem::path& file) {
    supervised s;
    std::istringstream in{file_or_empty(file)};
    std::string what;
    int pid = 0;
    while (in >> what >> pid) {
        if (what == "started")
            s.started.push_back(pid);
        else if (int code = 0; in >> code)
            s.exited[pid] = code;
    }
    return s;
}

/// `ferry get -j4 SCHEME://` of 64 MiB served at 4 x 2 MiB/s by ferryd under socket activation,
/// restarted `restarts` times mid-download the way `systemctl restart` does: each ferryd
/// drains for at most 1.5 s (the transfers still running then are cut and ferry retries them),
/// the next one starts on the same socket. The download completes byte-identical, every ferryd
/// exits 0, and more than one served it.
void download_across_restarts(const std::string& scheme, unsigned restarts) {
    if (!has_systemd_socket_activate())
        GTEST_SKIP() << "systemd-socket-activate is not installed";
    temp_dir root;
    temp_dir run_dir;
    temp_dir work;
    const std::size_t size = 64 << 20;
    const auto content = make_content(size, 21);
    write_file(root / "big", content);
    std::vector<std::string> command{FERRY_SOURCE_DIR "/tests/support/socket_supervisor.py",
                                     run_dir.path().string(), bin("ferryd")};
    for (const auto& a : {"--root", root.path().c_str(), "--threads", "2", "--rate-limit",
                          "2097152", "--drain-timeout", "1.5", "--log-level", "info"})
        command.emplace_back(a);
    socket_activation systemd{{"ferry"}, command, run_dir / "activate.log"};
    const auto out = work / "big";
    const auto started = std::chrono::steady_clock::now();
    child_process ferry{{bin("ferry"), "get",
                         scheme + "://127.0.0.1:" + std::to_string(systemd.port()) + "/big", "-o",
                         out.string(), "-j", "4", "--chunk-size", "1048576", "--quiet"},
                        work / "ferry.log"};
    const auto pids = [&] { return read_pids(run_dir / "pids"); };
    const auto served = [&](int pid) {
        return file_or_empty(run_dir / (std::to_string(pid) + ".log")).find(" GET ") !=
               std::string::npos;
    };
    for (unsigned i = 0; i < restarts && ferry.running() && !ferry.wait_exit(0ms); ++i) {
        // Once the ferryd started last has served something, restart it.
        ASSERT_TRUE(eventually([&] {
            const auto s = pids();
            return s.started.size() == i + 1 && served(s.started.back());
        })) << systemd.log();
        std::this_thread::sleep_for(500ms); // pacing the restarts: ferryd serves a while
        systemd.process().signal(SIGUSR1);
        ASSERT_TRUE(eventually([&] { return pids().started.size() == i + 2; }, 60s))
            << systemd.log();
    }
    const auto code = ferry.wait_exit(120s);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(code, 0) << file_or_empty(work / "ferry.log");
    ASSERT_TRUE(std::filesystem::exists(out)) << file_or_empty(work / "ferry.log");
    EXPECT_TRUE(read_file(out) == content) << "the bytes differ";
    systemd.process().signal(SIGTERM);
    EXPECT_EQ(systemd.process().wait_exit(60s), 0) << systemd.log();
    const auto s = pids();
    std::size_t serving = 0;
    std::size_t cut = 0;
    for (const int pid : s.started) {
        const auto log = file_or_empty(run_dir / (std::to_string(pid) + ".log"));
        EXPECT_EQ(s.exited.count(pid) ? s.exited.at(pid) : -1000, 0)
            << "ferryd " << pid << ": " << log;
        serving += served(pid) ? 1U : 0U;
        cut += log.find("drain timeout: cancelling") != std::string::npos ? 1U : 0U;
    }
    EXPECT_GE(serving, 2U) << "the restarts did not happen mid-download";
    // The first restart comes early in the download: transfers are still running at the drain
    // deadline and are cut, so ferry's retries on the next ferryd are exercised too.
    EXPECT_GE(cut, 1U) << "no drain was cut short";
    std::printf("%s: 64 MiB across %zu ferryd processes (%zu served, %zu drains cut short) in "
                "%.1f s\n",
                scheme.c_str(), s.started.size(), serving, cut, took.count());
}

TEST(FerrydSystemd, RestartsOnAHeldSocketLoseNoDownload) {
    download_across_restarts("ferry", 3);
}

TEST(FerrydSystemd, RestartsOnAHeldSocketLoseNoHttpDownload) {
    download_across_restarts("http", 3);
}

} // namespace
} // namespace ferry::test
