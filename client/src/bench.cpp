#include "ferry/client/bench.hpp"

#include "ferry/client/download_state.hpp"
#include "ferry/client/progress.hpp"
#include "ferry/client/retry_policy.hpp"
#include "ferry/protocol/text.hpp"
#include "ferry/transport/sha256.hpp"

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <thread>

namespace ferry::client {

const char* name_of(bench_error e) {
    switch (e) {
    case bench_error::refused:
        return "refused";
    case bench_error::reset:
        return "reset";
    case bench_error::timeout:
        return "timeout";
    case bench_error::busy:
        return "busy";
    case bench_error::bad_status:
        return "bad status";
    case bench_error::short_body:
        return "short body";
    case bench_error::digest_mismatch:
        return "digest mismatch";
    case bench_error::other:
        return "other";
    }
    return "?";
}

std::uint64_t bench_report::error_total() const noexcept {
    std::uint64_t n = 0;
    for (auto e : errors)
        n += e;
    return n;
}

std::string bench_report::text() const {
    std::string s;
    const double rps = seconds > 0 ? static_cast<double>(requests) / seconds : 0;
    const double mibs = seconds > 0 ? static_cast<double>(bytes) / seconds / (1 << 20) : 0;
    s += fmt::format("requests    {:>12}  {:.1f}/s\n", requests, rps);
    s += fmt::format("bytes       {:>12}  {:.1f} MiB/s\n", bytes, mibs);
    s += fmt::format("duration    {:>12.2f}  s\n", seconds);
    s += fmt::format("errors      {:>12}", error_total());
    for (std::size_t i = 0; i < bench_error_count; ++i)
        if (errors[i])
            s += fmt::format("  {} {}", name_of(static_cast<bench_error>(i)), errors[i]);
    s += "\n";
    if (aborted)
        s += fmt::format("aborted     {:>12}  (--abort-after)\n", aborted);
    if (connected)
        s += fmt::format("held open   {:>12}  (--idle)\n", connected);
    s += "latency ms      p50      p90      p99    p99.9      max\n";
    auto row = [&](const char* name, const histogram& h) {
        if (h.count() == 0)
            return;
        auto ms = [](std::uint64_t us) { return static_cast<double>(us) / 1000.0; };
        s += fmt::format("{:<10} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f}\n", name,
                         ms(h.percentile(50)), ms(h.percentile(90)), ms(h.percentile(99)),
                         ms(h.percentile(99.9)), ms(h.max()));
    };
    row("connect", connect);
    row("first byte", first_byte);
    row("last byte", last_byte);
    for (const auto& w : warnings)
        s += "warning: " + fp::escape_for_terminal(w) + "\n"; // may quote a server's text
    return s;
}

nlohmann::json bench_report::json() const {
    auto lat = [](const histogram& h) {
        auto ms = [](std::uint64_t us) { return static_cast<double>(us) / 1000.0; };
        return nlohmann::json{{"count", h.count()},
                              {"p50_ms", ms(h.percentile(50))},
                              {"p90_ms", ms(h.percentile(90))},
                              {"p99_ms", ms(h.percentile(99))},
                              {"p99_9_ms", ms(h.percentile(99.9))},
                              {"max_ms", ms(h.max())}};
    };
    nlohmann::json errs;
    for (std::size_t i = 0; i < bench_error_count; ++i)
        errs[name_of(static_cast<bench_error>(i))] = errors[i];
    return {{"seconds", seconds},
            {"requests", requests},
            {"bytes", bytes},
            {"requests_per_second", seconds > 0 ? static_cast<double>(requests) / seconds : 0},
            {"mib_per_second", seconds > 0 ? static_cast<double>(bytes) / seconds / (1 << 20) : 0},
            {"errors", errs},
            {"error_total", error_total()},
            {"aborted", aborted},
            {"held_open", connected},
            {"latency",
             {{"connect", lat(connect)},
              {"first_byte", lat(first_byte)},
              {"last_byte", lat(last_byte)}}},
            {"warnings", warnings}};
}

double bench_window::seconds(clock::time_point finished) const noexcept {
    const auto end = std::min(finished, to_);
    return end > from_ ? std::chrono::duration<double>(end - from_).count() : 0.0;
}

namespace {

using transport::use_nothrow;

/// What all threads share: the schedule and the stop conditions.
struct shared_plan {
    const bench_options& o;
    clock::time_point start;
    clock::time_point measure_from; ///< end of the warm-up
    clock::time_point end;
    std::atomic<std::uint64_t> issued{0};
    std::vector<std::optional<fp::sha256_digest>> digests; ///< per target, for --verify

    /// The next request: its intended start, or nullopt when the run is over.
    std::optional<clock::time_point> next() {
        if (!o.requests && o.rate <= 0) { // closed loop for a duration: no count to share
            const auto now = clock::now();
            return now < end ? std::optional{now} : std::nullopt;
        }
        const auto n = issued.fetch_add(1, std::memory_order_relaxed);
        if (o.requests && n >= *o.requests)
            return std::nullopt;
        if (o.rate > 0) {
            const double after = static_cast<double>(n) / o.rate;
            if (after > 1e9) // beyond any run, and before a duration_cast could overflow
                return std::nullopt;
            const auto at = start + std::chrono::duration_cast<clock::duration>(
                                        std::chrono::duration<double>(after));
            if (!o.requests && at >= end)
                return std::nullopt;
            return at;
        }
        const auto now = clock::now();
        if (!o.requests && now >= end)
            return std::nullopt;
        return now;
    }
};

bench_error classify(const failure& f, bool in_body) {
    if (f.what == failure::kind::redirect)
        return bench_error::bad_status; // a load test does not follow redirects
    if (f.what == failure::kind::server)
        return f.error.code == fp::status::busy || f.error.code == fp::status::shutting_down
                   ? bench_error::busy
                   : bench_error::bad_status;
    if (f.what == failure::kind::network) {
        if (f.net == asio::error::connection_refused)
            return bench_error::refused;
        if (f.net == asio::error::timed_out)
            return bench_error::timeout;
        if (in_body && f.net == asio::error::eof)
            return bench_error::short_body;
        if (f.net == asio::error::connection_reset || f.net == asio::error::eof ||
            f.net == asio::error::broken_pipe)
            return bench_error::reset;
    }
    return bench_error::other;
}

std::uint64_t micros(clock::duration d) {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

asio::awaitable<void> wait_until(clock::time_point t) {
    if (t <= clock::now())
        co_return;
    asio::steady_timer timer{co_await asio::this_coro::executor, t};
    co_await timer.async_wait(use_nothrow);
}

/// What the clients of one thread share: their report, and the connection each one has a
/// request running on, so that the window's end can cut them.
struct lane {
    bench_report stats;
    std::vector<connection*> running; ///< per client of the thread; null between requests
    /// Where the bodies of all the thread's clients go when nobody looks at them (no --verify):
    /// one buffer that stays in cache, instead of one per client (16 KiB each for small files,
    /// 160 MiB at 10,000 connections).
    std::unique_ptr<std::byte[]> discard = std::make_unique_for_overwrite<std::byte[]>(64 * 1024);
};

/// With --duration: at the window's end, closes the connections of the requests still running,
/// so their reads end at once instead of after as long as a large body takes.
asio::awaitable<void> cut_at_end(shared_plan& plan, lane& l) {
    co_await wait_until(plan.end);
    for (auto* c : l.running)
        if (c)
            c->close();
}

/// One simulated client. Coroutine parameters by value except the shared state, which
/// outlives the io_context run. Counts into `l` what falls inside the measured window.
asio::awaitable<void> bench_client(shared_plan& plan, lane& l, unsigned index, std::size_t slot,
                                   clock::duration start_delay) {
    const auto& o = plan.o;
    auto& stats = l.stats;
    co_await wait_until(plan.start + start_delay);
    const bench_window window{plan.measure_from, plan.end};
    std::unique_ptr<connection> conn;
    // With --verify, a buffer of the client's own: the reactor may complete another client's
    // read into a shared one before this coroutine hashes it. Uninitialised, and 64 KiB only once
    // reads fill 16 KiB: 10,000 clients of small files zeroed 640 MiB before (a fifth of the
    // run's time at 10,000 connections, in memset). Without --verify, the lane's.
    std::unique_ptr<std::byte[]> own;
    std::byte* scratch = l.discard.get();
    std::size_t scratch_size = 64 * 1024;
    std::uint64_t target = index;
    // Reconnects back off as every retry does; the run's end (or --requests) ends them.
    retry_policy reconnect{std::numeric_limits<unsigned>::max()};
    for (;;) {
        if (!conn) {
            const auto t0 = clock::now();
            if (window.over(t0))
                co_return;
            auto [f, c] = co_await connection::open(o.targets[0], o.limits);
            if (f) {
                // With --requests, a failed connection is one of them: a server that refuses
                // everything ends the run instead of holding it forever.
                if (o.requests && !plan.next())
                    co_return;
                const auto now = clock::now();
                if (window.contains(now))
                    ++stats.errors[static_cast<std::size_t>(classify(f, false))];
                const auto wait = reconnect.next(f);
                if (!wait)
                    co_return;
                co_await wait_until(std::min(now + *wait, plan.end));
                continue;
            }
            reconnect.reset();
            if (window.contains(t0))
                stats.connect.record(micros(clock::now() - t0));
            conn = std::move(c);
            conn->name_client(false); // the request wrk sends: Host alone
            if (o.idle) { // hold the connection, send nothing, see whether the server drops it
                std::byte one;
                auto [ec, n] = co_await transport::with_timeout(
                    conn->socket().async_read_some(asio::buffer(&one, 1), asio::deferred),
                    std::max(plan.end - clock::now(), clock::duration::zero()));
                if (ec == asio::error::timed_out)
                    ++stats.connected;
                else
                    ++stats.errors[static_cast<std::size_t>(bench_error::reset)];
                co_return;
            }
        }
        const auto intended = plan.next();
        if (!intended)
            break;
        if (o.verify && !own) { // at the first request, so --idle costs none
            scratch_size = 16 * 1024;
            own = std::make_unique_for_overwrite<std::byte[]>(scratch_size);
            scratch = own.get();
        }
        co_await wait_until(*intended);
        const auto& u = o.targets[target++ % o.targets.size()];
        const auto t0 = *intended;
        fp::get_header header;
        const fp::get_request request{u.path, 0, fp::to_end, std::nullopt};
        l.running[slot] = conn.get();
        auto f = co_await conn->start_get(request, header);
        const auto first = clock::now();
        bool in_body = true;
        bool aborted = false;
        std::uint64_t got = 0;
        std::optional<transport::sha256_stream> hash;
        if (o.verify)
            hash.emplace();
        while (!f && got < header.length) { // the whole body: no read to learn that it ended
            std::size_t want = scratch_size;
            if (o.abort_after)
                want = static_cast<std::size_t>(std::min<std::uint64_t>(want, o.abort_after - got));
            if (o.slow_read)
                want = static_cast<std::size_t>(
                    std::min<std::uint64_t>(want, std::max<std::uint64_t>(o.slow_read / 10, 1)));
            auto n = conn->take_body({scratch, want}); // what came with the head: no wait
            if (n == 0) {
                auto [rf, read] = co_await conn->read_body({scratch, want});
                if (rf) {
                    f = rf;
                    break;
                }
                if (read == 0)
                    break; // the connection says the body ended
                n = read;
            }
            got += n;
            stats.bytes += window.bytes_inside(clock::now(), n);
            if (hash)
                hash->update({scratch, n});
            if (own && n == scratch_size && scratch_size < 64 * 1024) { // large: read more at once
                scratch_size = 64 * 1024;
                own = std::make_unique_for_overwrite<std::byte[]>(scratch_size);
                scratch = own.get();
            }
            if (o.abort_after && got >= o.abort_after && got < header.length) {
                aborted = true;
                break;
            }
            if (o.slow_read)
                co_await wait_until(
                    clock::now() +
                    std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(
                        static_cast<double>(n) / static_cast<double>(o.slow_read))));
        }
        if (!f && !aborted) {
            in_body = false;
            f = co_await conn->finish_get();
        }
        l.running[slot] = nullptr;
        const auto last = clock::now();
        const bool measured = window.contains(last); // requests count where they end
        if (aborted) {
            if (measured)
                ++stats.aborted;
            conn.reset();
            continue;
        }
        if (f) {
            if (window.over(last))
                co_return; // cut at the window's end: not an error
            if (measured)
                ++stats.errors[static_cast<std::size_t>(classify(f, in_body && got > 0))];
            if (!conn->reusable())
                conn.reset();
            continue;
        }
        if (!conn->reusable())
            conn.reset(); // the server ends the connection after this answer (HTTP keep-alive)
        if (hash) {
            const auto& expected = plan.digests[(target - 1) % o.targets.size()];
            if (!expected || hash->finish() != *expected) {
                if (measured)
                    ++stats.errors[static_cast<std::size_t>(bench_error::digest_mismatch)];
                continue;
            }
        }
        if (measured) {
            ++stats.requests;
            stats.first_byte.record(micros(first - t0));
            stats.last_byte.record(micros(last - t0));
        }
    }
}

/// The server's digest of every target, for --verify (a coroutine, not a capturing lambda:
/// GCC 12 mishandles those).
asio::awaitable<void> fetch_digests(shared_plan& plan, bench_report& report) {
    for (const auto& u : plan.o.targets) {
        auto [f, c] = co_await connection::open(u, plan.o.limits);
        fp::stat_reply st;
        if (!f)
            f = co_await c->stat(u.path, true, st);
        plan.digests.push_back(f ? std::nullopt : st.sha256);
        if (f)
            report.warnings.push_back("no digest for " + u.str() + ": " + f.message());
        else if (!st.sha256) // HTTP without Repr-Digest: every request counts as unverified
            report.warnings.push_back("no digest for " + u.str() +
                                      ": the server offers none (Repr-Digest); --verify fails");
    }
}

void raise_fd_limit(std::vector<std::string>& warnings, std::uint64_t wanted) {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
    if (lim.rlim_cur < wanted)
        warnings.push_back(
            fmt::format("RLIMIT_NOFILE is {} (hard limit): fewer than the {} descriptors needed",
                        lim.rlim_cur, wanted));
}

void check_ephemeral_ports(std::vector<std::string>& warnings, unsigned connections) {
    std::ifstream in{"/proc/sys/net/ipv4/ip_local_port_range"};
    unsigned lo = 0, hi = 0;
    if (in >> lo >> hi && hi >= lo && connections > hi - lo + 1)
        warnings.push_back(fmt::format(
            "{} connections exceed the {} ephemeral ports ({}-{}) of one source address",
            connections, hi - lo + 1, lo, hi));
}

} // namespace

bench_report run_bench(const bench_options& o) {
    bench_report total;
    raise_fd_limit(total.warnings, o.connections + 64);
    check_ephemeral_ports(total.warnings, o.connections);
    const unsigned threads =
        std::max(1U, std::min(o.threads ? o.threads : std::thread::hardware_concurrency(),
                              std::max(o.connections, 1U)));
    const auto start = clock::now() + std::chrono::milliseconds(20);
    auto seconds = [](double s) {
        return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
    };
    shared_plan plan{o,  start, start + seconds(o.warmup), start + seconds(o.warmup + o.duration),
                     {}, {}};
    if (o.requests)
        plan.end = clock::time_point::max();

    if (o.verify) { // the digests, once, before the clock starts
        asio::io_context ctx;
        asio::co_spawn(ctx, fetch_digests(plan, total), [](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e);
        });
        ctx.run();
        plan.start = plan.measure_from = clock::now();
        plan.measure_from += seconds(o.warmup);
        plan.end = o.requests ? clock::time_point::max() : plan.measure_from + seconds(o.duration);
    }

    std::vector<lane> lanes(threads);
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
        lanes[t].running.resize((o.connections - t + threads - 1) / threads);
        pool.emplace_back([&, t] {
            asio::io_context ctx{1};
            for (unsigned c = t; c < o.connections; c += threads) {
                const auto delay = o.ramp_up > 0
                                       ? seconds(o.ramp_up * c / std::max(o.connections, 1U))
                                       : clock::duration::zero();
                asio::co_spawn(
                    ctx, bench_client(plan, lanes[t], c, c / threads, delay),
                    [&](std::exception_ptr e) {
                        if (e)
                            ++lanes[t].stats.errors[static_cast<std::size_t>(bench_error::other)];
                    });
            }
            if (!o.requests)
                asio::co_spawn(ctx, cut_at_end(plan, lanes[t]), [](std::exception_ptr e) {
                    if (e)
                        std::rethrow_exception(e);
                });
            ctx.run();
        });
    }
    for (auto& th : pool)
        th.join();
    const auto finished = clock::now();
    for (auto& l : lanes) {
        const auto& s = l.stats;
        total.requests += s.requests;
        total.bytes += s.bytes;
        total.aborted += s.aborted;
        total.connected += s.connected;
        for (std::size_t i = 0; i < bench_error_count; ++i)
            total.errors[i] += s.errors[i];
        total.connect.merge(s.connect);
        total.first_byte.merge(s.first_byte);
        total.last_byte.merge(s.last_byte);
    }
    total.seconds = bench_window{plan.measure_from, plan.end}.seconds(finished);
    return total;
}

} // namespace ferry::client
