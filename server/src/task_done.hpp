// task_done: the completion handler of a co_spawned task that is not a session (accept loops,
// refusals, the supervisor, the admin and agent listeners): logs what ended it, if anything.
#pragma once

#include <exception>
#include <spdlog/logger.h>

namespace ferry::server {

struct task_done {
    const char* what;
    spdlog::logger* log;
    void operator()(std::exception_ptr e) const {
        if (!e)
            return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log->error("{} failed: {}", what, ex.what());
        }
    }
};

} // namespace ferry::server
