// Runs a real binary (ferryd, ferry) as a child process: bounded waits, stopped by its PID.
#pragma once

#include "support/temp_dir.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <gtest/gtest.h>
#include <optional>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace ferry::test {

inline std::string bin(const std::string& name) {
    return std::string{FERRY_BIN_DIR} + "/" + name;
}

class child_process {
public:
    /// Starts `args[0]` with `args`; stdout and stderr go to `log` (appended).
    child_process(const std::vector<std::string>& args, const std::filesystem::path& log) {
        std::vector<char*> argv;
        for (const auto& a : args)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                         0644);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0)
            throw std::runtime_error("cannot start " + args[0]);
    }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process() {
        if (running()) {
            ::kill(pid_, SIGKILL);
            wait_exit(std::chrono::seconds(10));
        }
    }

    pid_t pid() const noexcept { return pid_; }
    bool running() const noexcept { return pid_ > 0 && !status_; }
    void signal(int sig) const { ::kill(pid_, sig); }

    /// The exit code (128 + signal if killed), or nullopt if still running after `limit`.
    std::optional<int> wait_exit(std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!status_) {
            int st = 0;
            const pid_t r = ::waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                break;
            }
            if (std::chrono::steady_clock::now() >= deadline)
                return std::nullopt;
            std::this_thread::sleep_for(std::chrono::milliseconds(5)); // polling waitpid
        }
        return status_;
    }

private:
    pid_t pid_ = -1;
    std::optional<int> status_;
};

/// Polls `done` every 10 ms for at most `limit`; returns its last value.
template <class F>
bool eventually(F done, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10)); // polling a condition
    }
    return true;
}

/// Runs a command to completion (bounded) and returns its exit code and output.
struct run_result {
    int code = -1;
    std::string output;
};
inline run_result run(const std::vector<std::string>& args,
                      std::chrono::seconds limit = std::chrono::seconds(60)) {
    temp_dir d;
    child_process p{args, d / "out"};
    auto code = p.wait_exit(limit);
    if (!code)
        throw std::runtime_error(args[0] + " did not finish in time");
    return {*code, std::filesystem::exists(d / "out") ? read_file(d / "out") : std::string{}};
}

/// A ferryd serving `root` on 127.0.0.1:0 (plus `extra` options), ready once its port file
/// exists; stopped by its PID when destroyed.
class ferryd_process {
public:
    /// Logs at warn, or at $FERRYD_LOG (e.g. FERRYD_LOG=debug) when chasing a failure.
    ferryd_process(const std::filesystem::path& root, std::vector<std::string> extra = {}) {
        std::vector<std::string> args{bin("ferryd"),
                                      "--root",
                                      root.string(),
                                      "--port-file",
                                      (dir_ / "port").string(),
                                      "--log-level",
                                      std::getenv("FERRYD_LOG") ? std::getenv("FERRYD_LOG")
                                                                : "warn"};
        bool has_listen = false;
        for (const auto& e : extra)
            has_listen = has_listen || e == "--listen";
        if (!has_listen)
            args.insert(args.end(), {"--listen", "127.0.0.1:0"});
        args.insert(args.end(), extra.begin(), extra.end());
        process_.emplace(args, dir_ / "log");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!std::filesystem::exists(dir_ / "port")) {
            if (!process_->running() || process_->wait_exit(std::chrono::milliseconds(0)))
                throw std::runtime_error("ferryd exited at start-up: " + log());
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error("ferryd did not start within 30 s: " + log());
            std::this_thread::sleep_for(std::chrono::milliseconds(10)); // polling for the port file
        }
        const auto text = read_file(dir_ / "port");
        std::size_t pos = 0;
        while (pos < text.size()) {
            const auto nl = text.find('\n', pos);
            ports_.push_back(static_cast<std::uint16_t>(std::stoul(text.substr(pos, nl - pos))));
            pos = nl + 1;
        }
    }
    ferryd_process(const ferryd_process&) = delete;
    ferryd_process& operator=(const ferryd_process&) = delete;
    /// A failing test shows what the server logged.
    ~ferryd_process() {
        if (std::uncaught_exceptions() > 0 || ::testing::Test::HasFailure())
            std::fprintf(stderr, "--- ferryd log ---\n%s--- end of ferryd log ---\n",
                         log().c_str());
    }
    std::uint16_t port(std::size_t i = 0) const { return ports_.at(i); }
    child_process& process() { return *process_; }
    std::string log() const {
        return std::filesystem::exists(dir_ / "log") ? read_file(dir_ / "log") : std::string{};
    }
    /// SIGTERM, then the exit code (bounded).
    std::optional<int> stop(std::chrono::seconds limit = std::chrono::seconds(30)) {
        process_->signal(SIGTERM);
        return process_->wait_exit(limit);
    }

private:
    temp_dir dir_;
    std::optional<child_process> process_;
    std::vector<std::uint16_t> ports_;
};

/// Open descriptors of a process.
inline std::size_t open_fds(pid_t pid) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
        ++n;
    return n;
}

/// The lowest descriptor number a process does not use: the one its next open gets.
inline int lowest_free_fd(pid_t pid) {
    std::vector<bool> used;
    for (const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
        const auto fd = std::stoul(e.path().filename().string());
        if (fd >= used.size())
            used.resize(fd + 1);
        used[fd] = true;
    }
    std::size_t fd = 0;
    while (fd < used.size() && used[fd])
        ++fd;
    return static_cast<int>(fd);
}

} // namespace ferry::test
