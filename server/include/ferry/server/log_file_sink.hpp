// log_file_sink: a log file that SIGHUP can reopen (logrotate renames it, then ferryd reopens
// the name, creating a new file), flushed after every line.
#pragma once

#include <mutex>
#include <spdlog/details/file_helper.h>
#include <spdlog/sinks/base_sink.h>
#include <string>

namespace ferry::server {

/// Appends to `path` (created if missing). Every line is flushed as it is written, so a line is
/// in the file when the request it records has been answered, and a crash loses nothing.
/// reopen() closes the file and opens `path` again: after a rename, the new name gets the next
/// lines. Thread-safe.
class log_file_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    /// Throws spdlog::spdlog_ex if the file cannot be opened.
    explicit log_file_sink(const std::string& path) { file_.open(path, false); }

    /// Reopens the file by its name. Throws spdlog::spdlog_ex if that fails (the sink then
    /// has no file until a later reopen succeeds; lines meanwhile are lost).
    void reopen() {
        std::lock_guard lock{mutex_};
        open_ = false;
        file_.reopen(false);
        open_ = true;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        if (!open_)
            return;
        spdlog::memory_buf_t line;
        formatter_->format(msg, line);
        file_.write(line);
        file_.flush();
    }
    void flush_() override {
        if (open_)
            file_.flush();
    }

private:
    spdlog::details::file_helper file_;
    bool open_ = true; ///< false after a failed reopen
};

} // namespace ferry::server
