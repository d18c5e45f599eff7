// log_file_sink: a log file that SIGHUP can reopen (logrotate renames it, then ferryd reopens
// the name, creating a new file), flushed after every line.
#pragma once

#include <memory>
#include <mutex>
#include <spdlog/details/file_helper.h>
#include <spdlog/sinks/base_sink.h>
#include <string>

namespace ferry::server {

/// Appends to `path` (created if missing). Every line is flushed as it is written, so a line is
/// in the file when the request it records has been answered, and a crash loses nothing.
/// reopen() opens `path` again: after a rename, the new name gets the next lines. Thread-safe.
class log_file_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    /// Throws spdlog::spdlog_ex if the file cannot be opened.
    explicit log_file_sink(const std::string& path)
        : path_(path), file_(std::make_unique<spdlog::details::file_helper>()) {
        file_->open(path_, false);
    }

    /// Opens the file by its name again. Throws spdlog::spdlog_ex if that fails (ferryd may no
    /// longer create files there, after --user): then the lines go on to the file open so far
    /// (renamed, maybe), never nowhere.
    void reopen() {
        auto next = std::make_unique<spdlog::details::file_helper>();
        next->open(path_, false);
        std::lock_guard lock{mutex_};
        file_ = std::move(next);
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t line;
        formatter_->format(msg, line);
        file_->write(line);
        file_->flush();
    }
    void flush_() override { file_->flush(); }

private:
    std::string path_;
    std::unique_ptr<spdlog::details::file_helper> file_;
};

} // namespace ferry::server
