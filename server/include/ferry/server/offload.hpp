// offload: run a blocking function on the worker pool and resume the coroutine on its own
// executor afterwards. For work that may block on the disk (directory listings, digests).
#pragma once

#include "ferry/transport/asio.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <exception>
#include <type_traits>
#include <utility>

namespace ferry::server {

namespace asio = boost::asio;

/// Runs `f()` on `pool` and returns its result on the awaiting coroutine's executor. The
/// caller's io_context is kept alive meanwhile (a tracked work guard). An exception thrown by
/// `f` is rethrown in the caller. Not cancellable: `f` runs to completion.
template <class Executor, class F>
asio::awaitable<std::invoke_result_t<F>> offload(Executor pool, F f) {
    using result = std::invoke_result_t<F>;
    auto home = co_await asio::this_coro::executor;
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable),
                                            void(std::exception_ptr, result)>(
        [pool, home](auto handler, F fn) {
            asio::post(pool, [fn = std::move(fn), handler = std::move(handler),
                              guard = asio::make_work_guard(home)]() mutable {
                std::exception_ptr error;
                result value{};
                try {
                    value = fn();
                } catch (...) {
                    error = std::current_exception();
                }
                auto ex = guard.get_executor();
                asio::dispatch(ex, [handler = std::move(handler), error, value = std::move(value),
                                    guard = std::move(guard)]() mutable {
                    std::move(handler)(error, std::move(value));
                });
            });
        },
        asio::use_awaitable, std::move(f));
}

} // namespace ferry::server
