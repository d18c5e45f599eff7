#include "ferry/client/downloader.hpp"

#include "ferry/client/background_hasher.hpp"
#include "ferry/client/download_state.hpp"
#include "ferry/client/output_dir.hpp"
#include "ferry/client/redirect.hpp"
#include "ferry/client/retry_policy.hpp"
#include "ferry/client/segment_planner.hpp"
#include "ferry/transport/sha256.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <future>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace ferry::client {

namespace stdfs = std::filesystem;
using transport::use_nothrow;

exit_code code_for(const failure& f) {
    switch (f.what) {
    case failure::kind::none:
        return exit_code::ok;
    case failure::kind::network:
        return exit_code::network;
    case failure::kind::protocol:
    case failure::kind::redirect:
        return exit_code::failure;
    case failure::kind::server:
        break;
    }
    switch (f.error.code) {
    case fp::status::not_found:
    case fp::status::not_regular_file:
        return exit_code::not_found;
    case fp::status::forbidden:
        return exit_code::forbidden;
    case fp::status::busy:
    case fp::status::shutting_down:
        return exit_code::busy;
    case fp::status::changed:
        return exit_code::integrity;
    case fp::status::bad_request:
    case fp::status::too_large:
    case fp::status::range_not_satisfiable:
        return exit_code::usage;
    default:
        return exit_code::failure;
    }
}

unsigned automatic_connections(std::uint64_t size) {
    return size < (32U << 20) ? 1 : 4;
}

asio::awaitable<std::pair<failure, std::unique_ptr<connection>>>
connection_pool::take(const url& u) {
    if (auto it = idle_.find(u.origin()); it != idle_.end()) {
        auto c = std::move(it->second);
        idle_.erase(it);
        co_return std::pair{failure{}, std::move(c)};
    }
    co_return co_await connection::open(u, timeouts_);
}

void connection_pool::give_back(const url& u, std::unique_ptr<connection> c) {
    if (c && c->reusable())
        idle_.emplace(u.origin(), std::move(c));
}

namespace {

const std::string not_verified = "not verified: the server offers no digest (use --sha256)";

asio::awaitable<void> sleep_for(clock::duration d) {
    asio::steady_timer t{co_await asio::this_coro::executor, d};
    co_await t.async_wait(use_nothrow);
}

/// One server holding the file (the URL, or a --mirror) and what its STAT said.
struct source {
    url u;
    fp::file_identity identity{}; ///< its own: each server has its own inode and mtime
    bool dropped = false;         ///< failed for good: never asked again
    bool benched = false;         ///< far slower than the others: asked again if they all fail
    bool failing = false;         ///< its last chunk failed: its past speed is no reference
    std::uint64_t served = 0;     ///< bytes of completed chunks

    // Its speed per connection: the bytes received over the time its connections spent
    // fetching (a chunk in flight counts, so a source that stalls shows as slow).
    std::uint64_t received = 0;
    clock::duration busy{};
    unsigned fetching = 0; ///< its connections fetching now
    clock::time_point since = clock::now();

    bool live() const noexcept { return !dropped && !benched; }
    /// Adds the time since the last call, once per connection fetching.
    void account(clock::time_point now) {
        busy += static_cast<int>(fetching) * (now - since);
        since = now;
    }
    double speed() const {
        const double seconds = std::chrono::duration<double>(busy).count();
        return seconds > 0 ? static_cast<double>(received) / seconds : 0;
    }
};

/// Mirrors: a source this many times slower per connection than the fastest is benched, once it
/// has fetched for `judged_after` and the fastest has `measured_after` or `measured_bytes`.
constexpr double slow_factor = 8;
constexpr clock::duration judged_after = std::chrono::seconds(2);
constexpr clock::duration measured_after = std::chrono::seconds(1);
constexpr std::uint64_t measured_bytes = 1 << 20;

/// Everything one attempt at a file shares between its workers (one thread: no locks).
struct job {
    job(url u_, const get_options& o_, connection_pool& pool_, progress& bar_, std::size_t bar_id_,
        int fd_, const output_dir& dir_, stdfs::path part_, std::string state_name_,
        download_state state_, segment_planner planner_, unsigned workers)
        : u(std::move(u_)), o(o_), pool(pool_), bar(bar_), bar_id(bar_id_), fd(fd_), dir(dir_),
          part(std::move(part_)), state_name(std::move(state_name_)), state(std::move(state_)),
          planner(std::move(planner_)), active(workers, nullptr), active_source(workers, 0) {}

    url u;
    const get_options& o;
    connection_pool& pool;
    progress& bar;
    std::size_t bar_id;
    int fd = -1;
    const output_dir& dir;
    stdfs::path part; ///< for messages
    std::string state_name;
    download_state state;
    segment_planner planner;
    std::vector<connection*> active; ///< per worker, while it fetches
    std::vector<source> sources;     ///< [0] the URL; more with --mirror
    std::vector<std::size_t> active_source; ///< per worker: the source of its active connection
    unsigned workers_left = 0;       ///< workers still running
    failure fatal;                   ///< a failure that ends this run
    std::string fatal_source;        ///< mirrors: the --mirror whose failure it is
    asio::steady_timer* watch = nullptr; ///< mirrors: the speed watch's timer, while it runs
    failure digest_failure;          ///< the server's digest could not be had
    local_error io;                  ///< a local write failure that ends this run
    bool changed = false;            ///< the server's file changed: start over
    bool stop = false;
    std::uint64_t fetched = 0;
    clock::time_point last_checkpoint = clock::now();
    std::optional<fp::stat_reply> digest; ///< the server's STAT with SHA-256
    /// Verification runs beside the download: it hashes the completed prefix of the .part.
    std::unique_ptr<background_hasher> hasher;

    /// Records a completed chunk and lets the hasher at the prefix that is now complete.
    void completed(byte_range r) {
        state.done.insert(r);
        fetched += r.size();
        if (hasher && !state.done.ranges().empty() && state.done.ranges().front().begin == 0)
            hasher->advance_to(state.done.ranges().front().end);
    }

    bool mirrored() const noexcept { return sources.size() > 1; }

    /// The first source in use from `from` on, round-robin; sources.size() if none is.
    std::size_t live_from(std::size_t from) const noexcept {
        for (std::size_t k = 0; k < sources.size(); ++k)
            if (const auto at = (from + k) % sources.size(); sources[at].live())
                return at;
        return sources.size();
    }

    /// "URL" for the first source, "--mirror URL" for the others: how messages name them.
    std::string name_of(std::size_t s) const {
        return (s == 0 ? "" : "--mirror ") + sources[s].u.str();
    }

    /// Mirrors: source `s` failed with `f` for good (a changed file, a failure retrying cannot
    /// help, a connection out of retries on it): it is dropped, and its connections go on with
    /// the others. With none left in use the benched ones are asked again; with none at all the
    /// run fails with `f`, named after its source.
    void drop(std::size_t s, failure f) {
        auto& src = sources[s];
        if (src.dropped)
            return;
        src.dropped = true;
        const bool moved_on =
            f.what == failure::kind::server && f.error.code == fp::status::changed;
        bar.note("ferry: dropping source " + src.u.str() + ": " +
                 (moved_on ? "the file changed on the server" : f.message()));
        close_connections_of(s);
        if (live_from(0) < sources.size())
            return;
        bool benched = false;
        for (auto& other : sources)
            if (!other.dropped && other.benched) {
                other.benched = false;
                benched = true;
                bar.note("ferry: no faster source is left: going back to " + other.u.str());
            }
        if (benched)
            return;
        fatal = f;
        if (s != 0)
            fatal_source = name_of(s); // the run's error names the source
        halt();
    }

    /// Mirrors, once a second: benches the sources far slower than the fastest (never the last
    /// one in use) and closes their connections, whose chunks go back to the queue.
    void judge_speeds() {
        const auto now = clock::now();
        const source* best = nullptr;
        for (auto& src : sources) {
            src.account(now);
            if (src.live() && !src.failing &&
                (src.busy >= measured_after || src.received >= measured_bytes) &&
                (!best || src.speed() > best->speed()))
                best = &src;
        }
        for (std::size_t k = 0; best && k < sources.size(); ++k) {
            auto& src = sources[k];
            if (&src == best || !src.live() || src.busy < judged_after ||
                src.speed() * slow_factor >= best->speed())
                continue;
            src.benched = true;
            bar.note(fmt::format("ferry: leaving source {} aside: {}/s per connection, under 1/{} "
                                 "of {}'s {}/s; its chunks go to the others",
                                 src.u.str(), human_bytes(src.speed()), slow_factor,
                                 best->u.str(), human_bytes(best->speed())));
        }
        for (std::size_t k = 0; k < sources.size(); ++k)
            if (!sources[k].live()) // also a connection that was opening when it was left
                close_connections_of(k);
    }

    void close_connections_of(std::size_t s) {
        for (std::size_t w = 0; w < active.size(); ++w)
            if (active[w] && active_source[w] == s)
                active[w]->close(); // wakes the worker: its chunk goes back to the queue
    }

    /// A worker ends: the last one stops the speed watch.
    void worker_done() {
        if (--workers_left == 0 && watch)
            watch->cancel();
    }

    void halt() {
        stop = true;
        if (watch)
            watch->cancel();
        for (auto* c : active)
            if (c)
                c->close(); // wakes a worker blocked in a read
    }

    /// Makes the completed ranges durable, then records them: a snapshot of the state is
    /// synced and saved on a thread of its own, so the download goes on meanwhile (an
    /// fdatasync of a second's worth of data takes as long as the disk needs). At most one runs.
    void checkpoint_in_background() {
        if (syncing.valid()) {
            if (syncing.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
                return;
            collect();
        }
        syncing = std::async(std::launch::async, [this, snapshot = state] {
            return make_durable(fd, part, dir, state_name, snapshot);
        });
        last_checkpoint = clock::now();
    }

    /// The same, now, after any checkpoint still running (the last one of a run).
    void checkpoint() {
        if (syncing.valid())
            collect();
        if (auto e = make_durable(fd, part, dir, state_name, state); e && !io)
            io = e;
        last_checkpoint = clock::now();
    }

    static local_error make_durable(int fd_, const stdfs::path& part_, const output_dir& dir_,
                                    const std::string& name, const download_state& snapshot) {
        if (::fdatasync(fd_) != 0)
            return local("syncing", part_, errno);
        return snapshot.save(dir_, name);
    }

    void collect() {
        if (auto e = syncing.get(); e && !io) {
            io = e;
            halt();
        }
    }

    std::future<local_error> syncing;
};

/// One GET of `r` into the .part file.
asio::awaitable<failure> fetch(job& j, source& src, connection& c, byte_range r,
                               std::vector<std::byte>& buffer) {
    fp::get_header header;
    const fp::get_request request{src.u.path, r.begin, r.size(), src.identity};
    if (auto f = co_await c.start_get(request, header); f.what == failure::kind::redirect)
        co_return failure::invalid(f.message() + " to a range request of " + src.u.str() +
                                   ", which its HEAD had resolved");
    else if (f)
        co_return f;
    if (header.size != j.state.size) // the same identity, another size: nothing here is sound
        co_return failure::invalid("a GET_HEADER size (" + std::to_string(header.size) +
                                   ") that disagrees with its STAT (" +
                                   std::to_string(j.state.size) + ")");
    std::uint64_t at = r.begin;
    for (;;) {
        auto [f, n] = co_await c.read_body(buffer);
        if (f)
            co_return f;
        if (n == 0)
            break;
        for (std::size_t written = 0; written < n;) {
            const ssize_t w = ::pwrite(j.fd, buffer.data() + written, n - written,
                                       static_cast<off_t>(at + written));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                j.io = local("writing", j.part, w < 0 ? errno : EIO);
                j.halt();
                co_return failure{};
            }
            written += static_cast<std::size_t>(w);
        }
        at += n;
        j.bar.advance(j.bar_id, n);
        src.received += n;
    }
    co_return co_await c.finish_get();
}

/// One connection's life: chunk after chunk from the shared queue, starting with `first`.
asio::awaitable<void> run_worker(job& j, unsigned id, std::optional<byte_range> first) {
    struct counted { // however the worker ends (an exception too), it is counted out once
        job& j;
        ~counted() { j.worker_done(); }
    } guard{j};
    std::unique_ptr<connection> conn;
    std::vector<std::byte> buffer(1 << 20);
    retry_policy retry{j.o.retries};
    std::size_t s = id % j.sources.size(); // mirrors: the connections spread round-robin
    while (!j.stop) {
        auto r = first ? std::exchange(first, std::nullopt) : j.planner.next();
        if (!r)
            break;
        for (;;) {
            if (j.stop) {
                co_return;
            }
            if (!j.sources[s].live()) { // go on with the next source in use
                if (conn)
                    j.pool.give_back(j.sources[s].u, std::move(conn));
                s = j.live_from(s + 1);
                if (s == j.sources.size()) {
                    j.planner.give_back(*r);
                    co_return; // (the last drop halted the run)
                }
                retry.reset();
            }
            auto& src = j.sources[s];
            failure f;
            j.active_source[id] = s;
            if (!conn) {
                auto opened = co_await j.pool.take(src.u);
                f = opened.first;
                conn = std::move(opened.second);
            }
            if (!f && src.live()) {
                j.active[id] = conn.get();
                src.account(clock::now());
                ++src.fetching;
                f = co_await fetch(j, src, *conn, *r, buffer);
                src.account(clock::now());
                --src.fetching;
                j.active[id] = nullptr;
                if (j.stop)
                    co_return;
            } else if (!f) {
                continue; // left aside while this connection opened
            }
            if (!f) {
                j.completed(*r);
                src.served += r->size();
                src.failing = false;
                retry.reset();
                if (clock::now() - j.last_checkpoint > std::chrono::seconds(1))
                    j.checkpoint_in_background();
                break;
            }
            if (conn && !conn->reusable())
                conn.reset();
            if (j.mirrored()) {
                // The chunk goes back to the queue, for whichever connection is free first.
                j.planner.give_back(*r);
                if (!src.live())
                    break; // left aside or dropped meanwhile: not this connection's failure
                src.failing = true;
                const bool changed =
                    f.what == failure::kind::server && f.error.code == fp::status::changed;
                const auto wait = changed ? std::nullopt : retry.next(f);
                if (!wait) {
                    j.drop(s, f);
                    break;
                }
                const auto next = j.live_from(s + 1);
                if (next != s) {
                    // Another source takes over, at once after a first failure; this one rests.
                    j.bar.note("ferry: " + src.u.str() + ": " + f.message() +
                               "; going on with " + j.sources[next].u.str());
                    conn.reset();
                    s = next;
                } else {
                    j.bar.note("ferry: " + src.u.str() + ": " + f.message() + "; retrying (" +
                               std::to_string(retry.used()) + "/" +
                               std::to_string(retry.attempts()) + ")");
                }
                if (next == s || retry.used() > 1) // a streak: every source failed in turn
                    co_await sleep_for(*wait);
                break;
            }
            if (f.what == failure::kind::server && f.error.code == fp::status::changed) {
                j.changed = true;
                j.halt();
                co_return;
            }
            const auto wait = retry.next(f);
            if (!wait && retryable(f) && j.workers_left > 1) {
                // Out of retries while other connections go on (refused during a server's drain,
                // busy beyond a per-address limit): leave the chunk to them, as aria2 does.
                j.planner.give_back(*r);
                j.bar.note("ferry: " + j.u.str() + ": " + f.message() +
                           "; going on with fewer connections");
                co_return;
            }
            if (!wait) {
                j.fatal = f;
                j.halt();
                co_return;
            }
            j.bar.note("ferry: " + j.u.str() + ": " + f.message() + "; retrying (" +
                       std::to_string(retry.used()) + "/" + std::to_string(retry.attempts()) + ")");
            co_await sleep_for(*wait);
        }
    }
    j.pool.give_back(j.sources[s].u, std::move(conn));
}

/// Mirrors: judges the sources' speeds once a second while the workers run.
asio::awaitable<void> watch_speeds(job& j) {
    asio::steady_timer timer{co_await asio::this_coro::executor};
    j.watch = &timer;
    struct forget { // however it ends, nothing cancels the timer once it is gone
        job& j;
        ~forget() { j.watch = nullptr; }
    } guard{j};
    while (!j.stop && j.workers_left > 0) {
        timer.expires_after(std::chrono::seconds(1));
        co_await timer.async_wait(use_nothrow);
        if (!j.stop && j.workers_left > 0)
            j.judge_speeds();
    }
}

/// The server's digest, fetched on its own connection while the body downloads. Hashing a large
/// file takes the server a while before it answers, so this connection waits up to
/// --digest-timeout, not the stall timeout. Past it, the download stops (the .part is kept); a
/// retryable failure is retried, another one is judged after the join.
asio::awaitable<void> fetch_digest(job& j) {
    timeouts patient = j.o.limits;
    patient.stall = j.o.digest_timeout;
    for (retry_policy retry{j.o.retries};;) {
        auto [f, conn] = co_await connection::open(j.u, patient);
        fp::stat_reply reply;
        if (!f)
            f = co_await conn->stat(j.u.path, true, reply);
        if (!f) {
            j.digest = reply;
            co_return;
        }
        if (j.stop)
            co_return;
        if (f.what == failure::kind::server && f.error.code == fp::status::changed) {
            j.changed = true; // the file changed while the server hashed it: start over
            j.halt();
            co_return;
        }
        if (f.what == failure::kind::network && f.net == asio::error::timed_out) {
            f.detail = fmt::format("the server did not send the SHA-256 within --digest-timeout "
                                   "{:g} s",
                                   std::chrono::duration<double>(j.o.digest_timeout).count());
            j.digest_failure = f;
            j.halt();
            co_return;
        }
        const auto wait = retry.next(f);
        if (!wait) {
            j.digest_failure = f;
            co_return;
        }
        co_await sleep_for(*wait);
    }
}

/// An HTTP server that sends neither ETag nor Last-Modified: nothing ties bytes to one version.
bool unversioned(const fp::file_identity& id) {
    return id == fp::file_identity{};
}

/// The state describes the server's file as it is now: the same identity (device, inode, size,
/// mtime) and size, whatever URL spelling (`./f`, `a//f`, another host name) wrote it.
bool same_file(const download_state& s, const fp::stat_reply& st) {
    return s.identity == st.identity && s.size == st.size && !unversioned(st.identity);
}

/// Whether the partial download `s` may be resumed as the file the server now describes as
/// `st`, this run checking the whole file against `expected` (the sources' SHA-256 with
/// --mirror, or --sha256's) or, if `verify`, against the server's. A .part filled from
/// several servers (--mirror) holds bytes no single identity vouches for: it is resumed only
/// when it will be checked against the SHA-256 its sources agreed on.
bool resumable(const download_state& s, const fp::stat_reply& st,
               const std::optional<fp::sha256_digest>& expected, bool verify) {
    if (!s.sha256)
        return same_file(s, st);
    if (s.size != st.size)
        return false;
    if (expected)
        return *expected == *s.sha256;
    return verify && same_file(s, st);
}

/// Before any request: OUT can be written, and nothing ferry did not create is at its names.
/// Opens OUT.part (creating it if absent) and locks it for the whole download, so a second
/// ferry on the same output refuses instead of splicing. An empty descriptor if `r` says why
/// not (or that --skip-existing left OUT).
unique_fd prepare_output(const output_dir& dir, const std::string& out, const std::string& part,
                         const get_options& o, file_result& r, bool& created, inode_claim& claim) {
    auto fail = [&r](const local_error& e) {
        r.code = e.code;
        r.error = e.message;
        return unique_fd{};
    };
    for (int attempt = 0;; ++attempt) {
        local_error e;
        if (const auto st = dir.status(out, e)) {
            if (o.skip_existing) {
                r.skipped = true;
                return {};
            }
            if (!S_ISREG(st->st_mode))
                return fail({exit_code::exists, dir.shown(out).string() + " is " +
                                                    not_ours(*st).value_or("in the way") +
                                                    "; ferry writes only a regular file there"});
            if (!o.force)
                return fail(
                    {exit_code::exists,
                     dir.shown(out).string() +
                         " exists; use --force to replace it or --skip-existing to keep it"});
        }
        if (e)
            return fail(e);
        if (const auto st = dir.status(part, e); st && inode_claim::claimed(*st))
            return fail(
                {exit_code::busy, dir.shown(out).string() +
                                      " is being downloaded by this command under another name (" +
                                      dir.shown(part).string() + " is the same file)"});
        if (e)
            return fail(e);
        auto fd = dir.open_ours(part, O_RDWR, true, created, e);
        if (!fd)
            return fail(e);
        bool stale = false;
        if (e = dir.lock(fd.get(), part, out, stale, claim); e)
            return fail(e);
        if (!stale)
            return fd;
        // Another ferry renamed or removed the .part before we had the lock: look again.
        if (attempt == 3)
            return fail({exit_code::busy, dir.shown(part).string() +
                                              " keeps being replaced; is another ferry running?"});
    }
}

/// What one source said to a STAT with the SHA-256 (after its redirects): `u` is where it
/// answered.
struct source_answer {
    url u;
    fp::stat_reply st;
    failure f;
};

asio::awaitable<void> ask_source(source_answer& a, timeouts patient, unsigned retries) {
    redirect_chain redirects{a.u};
    for (retry_policy retry{retries};;) {
        auto [of, conn] = co_await connection::open(a.u, patient);
        a.f = of;
        if (!a.f)
            a.f = co_await conn->stat(a.u.path, true, a.st);
        if (a.f.what == failure::kind::redirect && !(a.f = redirects.follow(a.u, a.f)))
            continue;
        const auto wait = a.f ? retry.next(a.f) : std::nullopt;
        if (!wait)
            break;
        co_await sleep_for(*wait);
    }
    if (!a.f && a.st.kind != fp::file_kind::regular) {
        a.f.what = failure::kind::server;
        a.f.error = {fp::status::not_regular_file, false, 0, "not a regular file: " + a.u.path};
    }
}

/// --mirror: asks every source (the URL first) for its size and SHA-256 before any byte is
/// written, all at once (each server hashes the file before it answers). Fills `live` with the
/// sources that agree with the first that answered (one that cannot be reached is left out
/// with a note) and `digest` with their SHA-256. False, with r's code and error set, when a
/// source disagrees, offers no digest or fails otherwise, or when none can be reached.
asio::awaitable<bool> check_sources(url u, get_options o, progress& bar, file_result& r,
                                    std::vector<source>& live, fp::sha256_digest& digest,
                                    std::uint64_t& size) {
    timeouts patient = o.limits;
    patient.stall = o.digest_timeout; // the server hashes the whole file before it answers
    std::vector<source_answer> answers{{u, {}, {}}};
    for (const auto& m : o.mirrors)
        answers.push_back({m, {}, {}});
    {
        auto ex = co_await asio::this_coro::executor;
        using op_type =
            decltype(asio::co_spawn(ex, ask_source(answers[0], patient, 0), asio::deferred));
        std::vector<op_type> ops;
        for (auto& a : answers)
            ops.push_back(
                asio::co_spawn(ex, ask_source(a, patient, std::min(o.retries, 2U)), asio::deferred));
        auto [order, errors] = co_await asio::experimental::make_parallel_group(std::move(ops))
                                   .async_wait(asio::experimental::wait_for_all(),
                                               asio::use_awaitable);
        for (auto& e : errors)
            if (e)
                std::rethrow_exception(e);
    }
    std::string first;
    failure unreachable;
    for (std::size_t i = 0; i < answers.size(); ++i) {
        const auto& [s, st, f] = answers[i];
        const std::string name = i == 0 ? s.str() : "--mirror " + s.str();
        if (f && retryable(f)) {
            bar.note("ferry: " + name + ": " + f.message() + "; going on without it");
            if (!unreachable)
                unreachable = f;
            continue;
        }
        if (f) {
            r.code = code_for(f);
            r.error = name + ": " + f.message();
            co_return false;
        }
        if (!st.sha256) {
            r.code = exit_code::usage;
            r.error = name +
                      ": the server offers no SHA-256, so nothing shows it holds the same file; "
                      "a mirror must offer one";
            co_return false;
        }
        if (live.empty()) {
            first = s.str();
            size = st.size;
            digest = *st.sha256;
        } else if (st.size != size) {
            r.code = exit_code::usage;
            r.error = fmt::format("{}: size {} differs from {}'s {}: not the same file", name,
                                  st.size, first, size);
            co_return false;
        } else if (*st.sha256 != digest) {
            r.code = exit_code::usage;
            r.error = fmt::format("{}: SHA-256 {} differs from {}'s {}: not the same file", name,
                                  to_hex(*st.sha256), first, to_hex(digest));
            co_return false;
        }
        live.push_back({s, st.identity});
    }
    if (live.empty()) {
        r.code = code_for(unreachable);
        r.error = "no source could be reached: " + unreachable.message();
        co_return false;
    }
    // A server that names no version of the file (HTTP without an ETag or a settled
    // Last-Modified) cannot serve a range tied to one version: it is left out while another can.
    const auto versioned = [](const source& src) { return !unversioned(src.identity); };
    if (std::any_of(live.begin(), live.end(), versioned)) {
        for (const auto& src : live)
            if (!versioned(src))
                bar.note("ferry: " + src.u.str() +
                         ": the server sends no ETag, nor a Last-Modified a second older than "
                         "its answer, so its ranges cannot be tied to one version; going on "
                         "without it");
        std::erase_if(live, [&](const source& src) { return !versioned(src); });
    } else if (live.size() > 1) {
        bar.note("ferry: no source sends an ETag or a settled Last-Modified: one connection to " +
                 live.front().u.str() + ", the others unused");
        live.resize(1);
    }
    co_return true;
}

/// -o - : one connection, in order, hashed as it streams; resumes by offset on network errors.
asio::awaitable<file_result> download_to_stdout(url u, get_options o, connection_pool& pool,
                                                progress& bar, file_result r) {
    r.connections = 1; // in order, so one
    const bool verify = o.verify || o.expected;
    transport::sha256_stream hash;
    std::uint64_t written = 0;
    std::optional<fp::file_identity> identity;
    std::uint64_t size = 0;
    std::vector<std::byte> buffer(1 << 20);
    retry_policy retry{o.retries};
    redirect_chain redirects{u};
    for (;;) {
        const auto written_before = written;
        auto [f, conn] = co_await pool.take(u);
        fp::get_header header;
        const fp::get_request request{u.path, written, fp::to_end, identity};
        if (!f)
            f = co_await conn->start_get(request, header);
        if (f.what == failure::kind::redirect && !identity) { // resolved before the first byte
            pool.give_back(u, std::move(conn));
            if (f = redirects.follow(u, f); !f)
                continue;
        }
        while (!f) {
            identity = header.identity;
            size = header.size;
            auto [rf, n] = co_await conn->read_body(buffer);
            if (rf) {
                f = rf;
                break;
            }
            if (n == 0) {
                f = co_await conn->finish_get();
                break;
            }
            for (std::size_t done = 0; done < n;) {
                const ssize_t w = ::write(STDOUT_FILENO, buffer.data() + done, n - done);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    r.code = exit_code::local_io;
                    r.error = std::string{"writing to standard output: "} + std::strerror(errno);
                    co_return r;
                }
                done += static_cast<std::size_t>(w);
            }
            if (verify)
                hash.update({buffer.data(), n});
            written += n;
            r.fetched += n;
        }
        if (!f) {
            pool.give_back(u, std::move(conn));
            break;
        }
        if (written > written_before)
            retry.reset(); // progress: a new failure streak
        const auto wait = retry.next(f);
        if (!wait) {
            r.code = code_for(f);
            r.error = f.message();
            co_return r;
        }
        co_await sleep_for(*wait);
    }
    r.size = size;
    const auto digest = hash.finish();
    std::optional<fp::sha256_digest> expected = o.expected;
    if (!expected && o.verify) {
        auto [f, conn] = co_await pool.take(u);
        fp::stat_reply st;
        if (!f)
            f = co_await conn->stat(u.path, true, st);
        if (!f && !st.sha256 && st.identity == *identity) {
            bar.note("ferry: " + u.str() + ": " + not_verified); // HTTP without Repr-Digest
            co_return r;
        }
        if (f || !st.sha256 || st.identity != *identity) {
            r.code = f ? code_for(f) : exit_code::integrity;
            r.error =
                f ? f.message() : "the file changed on the server; the output cannot be verified";
            co_return r;
        }
        pool.give_back(u, std::move(conn));
        expected = st.sha256;
    }
    if (expected && *expected != digest) {
        r.code = exit_code::integrity;
        r.error = "SHA-256 mismatch: the data written to standard output is corrupt";
        co_return r;
    }
    if (expected)
        r.sha256 = to_hex(digest);
    co_return r;
}

} // namespace

asio::awaitable<file_result> download_file(url u, get_options o, connection_pool& pool,
                                           progress& bar, std::size_t bar_id) {
    const auto started = clock::now();
    file_result r;
    r.url = u.str();
    const auto name = stdfs::path(u.path).filename().string();
    r.output = o.output.empty() ? name : o.output;
    auto finish = [&](file_result& res) -> file_result& {
        res.seconds = std::chrono::duration<double>(clock::now() - started).count();
        return res;
    };
    if (r.output == "-") {
        r = co_await download_to_stdout(u, o, pool, bar, r);
        co_return finish(r);
    }
    const stdfs::path out = r.output;
    const auto leaf = out.filename().string();
    if (leaf.empty() || leaf == "." || leaf == "..") {
        r.code = exit_code::usage;
        r.error = r.output == name ? "the URL names no file; use -o to name the output"
                                   : r.output + " names a directory; -o names the output file";
        co_return finish(r);
    }
    // Every name is opened relative to the output directory, none follows a symlink.
    output_dir dir;
    if (auto e = output_dir::open(out, dir); e) {
        r.code = e.code;
        r.error = e.message;
        co_return finish(r);
    }
    const std::string part_name = leaf + ".part";
    const std::string state_name = leaf + ".part.state";
    const stdfs::path part = dir.shown(part_name);
    bool created = false;
    inode_claim claim; // (declared first: it outlives the descriptor and its lock)
    const auto part_fd = prepare_output(dir, leaf, part_name, o, r, created, claim);
    if (!part_fd)
        co_return finish(r);
    const int fd = part_fd.get();
    // A .part this run created (or emptied, to start afresh) is removed again if the run fails
    // before its state is recorded.
    struct new_part {
        const output_dir& dir;
        const std::string& name;
        bool remove;
        ~new_part() {
            if (remove)
                dir.remove(name);
        }
    } cleanup{dir, part_name, created};
    // --mirror: every source agrees on the size and SHA-256 before any byte is written. The
    // SHA-256 they agree on is what the whole file is checked against.
    std::vector<source> mirrored;
    std::uint64_t agreed_size = 0;
    if (!o.mirrors.empty()) {
        fp::sha256_digest agreed{};
        if (!co_await check_sources(u, o, bar, r, mirrored, agreed, agreed_size))
            co_return finish(r);
        if (o.expected && *o.expected != agreed) {
            r.code = exit_code::integrity;
            r.error = "the sources' SHA-256 " + to_hex(agreed) + " is not the one given (--sha256)";
            co_return finish(r);
        }
        o.expected = agreed;
        u = mirrored.front().u; // the URL, unless it could not be reached
    }
    // Loaded even with --no-resume: a state file ferry did not create is refused either way.
    std::string warning;
    local_error refused;
    auto saved = download_state::load(dir, state_name, warning, refused);
    if (refused) {
        r.code = refused.code;
        r.error = refused.message;
        co_return finish(r);
    }
    if (!o.resume)
        saved.reset();
    else if (!warning.empty())
        bar.note("ferry: " + warning);

    redirect_chain redirects{u};
    const auto expected_given = o.expected; // --sha256, or the sources' SHA-256
    for (unsigned restart = 0;; ++restart) {
        o.expected = expected_given; // (a resumed state's SHA-256 applies to that state only)
        // What is the file now? A STAT on a pooled connection (retried like everything else),
        // following HTTP redirects: from here on `u` is the URL that answered, which every
        // segment, the digest and a restart ask (docs/client.md, redirects).
        fp::stat_reply st;
        failure f;
        for (retry_policy retry{o.retries};;) {
            auto [of, conn] = co_await pool.take(u);
            f = of;
            if (!f)
                f = co_await conn->stat(u.path, false, st);
            if (!f || f.what == failure::kind::redirect)
                pool.give_back(u, std::move(conn));
            if (f.what == failure::kind::redirect && !(f = redirects.follow(u, f)))
                continue;
            const auto wait = f ? retry.next(f) : std::nullopt;
            if (!wait)
                break;
            co_await sleep_for(*wait);
        }
        if (!f && st.kind != fp::file_kind::regular) {
            f.what = failure::kind::server;
            f.error = {fp::status::not_regular_file, false, 0, "not a regular file: " + u.path};
        }
        if (f) {
            r.code = code_for(f);
            r.error = f.message();
            co_return finish(r);
        }
        r.size = st.size;
        if (!mirrored.empty() && st.size != agreed_size) {
            r.code = exit_code::integrity;
            r.error = fmt::format("the file's size changed from {} to {} since the sources were "
                                  "compared; rerun",
                                  agreed_size, st.size);
            co_return finish(r);
        }

        // The resume state, if it describes this very version of the file.
        download_state state;
        const bool have_part = !created;
        if (restart > 0)
            saved.reset();
        if (saved && have_part && resumable(*saved, st, o.expected, o.verify)) {
            state = std::move(*saved);
            state.url = u.str(); // this spelling from now on; the identity is what matched
            state.identity = st.identity; // (the same, unless the SHA-256 is what matched)
            if (state.sha256 && !o.expected)
                o.expected = state.sha256; // what the sources that filled it agreed on
            r.resumed = state.done.total() > 0;
        } else {
            if (saved && have_part && saved->done.total() > 0) {
                bar.note("ferry: " +
                         (saved->sha256 && !o.verify && !o.expected
                              ? part.string() + " was filled from several servers (--mirror): "
                                                "--no-verify would leave it unchecked"
                          : saved->url == u.str()
                              ? u.str() + " changed on the server since the partial download"
                              : part.string() + " holds a partial download of another file (" +
                                    saved->url + ")") +
                         "; starting over");
                r.restarted = true;
            }
            state = {u.str(), st.identity, st.size, {}, {}};
        }
        if (!mirrored.empty())
            state.sha256 = o.expected; // the sources' SHA-256
        const bool fresh = state.done.total() == 0;

        if (fresh) {
            // Nothing of an old .part is kept. Its state goes first (it must never describe
            // bytes the truncated .part no longer has); then the space is reserved, and if that
            // fails (a size beyond the free space), nothing is left behind.
            dir.remove(state_name);
            cleanup.remove = true;
            if (::ftruncate(fd, 0) != 0) {
                r.code = exit_code::local_io;
                r.error = local("cannot truncate", part, errno).message;
                co_return finish(r);
            }
            if (st.size > 0 && ::fallocate(fd, 0, 0, static_cast<off_t>(st.size)) != 0 &&
                errno != EOPNOTSUPP) {
                r.code = exit_code::local_io;
                r.error =
                    local("cannot reserve " + std::to_string(st.size) + " bytes for", part, errno)
                        .message;
                co_return finish(r);
            }
        }
        if (auto e = state.save(dir, state_name); e) { // the identity is on disk before any byte
            r.code = e.code;
            r.error = e.message;
            co_return finish(r);
        }
        cleanup.remove = false; // the .part and its state stay together from here on

        const auto missing = state.done.missing(st.size);
        std::uint64_t missing_bytes = 0;
        for (const auto& m : missing)
            missing_bytes += m.size();
        // Unversioned: one GET of the whole file (pieces could come from different versions).
        const auto chunk = unversioned(st.identity) ? std::max<std::uint64_t>(st.size, 1) : o.chunk;
        if (unversioned(st.identity))
            bar.note("ferry: " + u.str() +
                     ": the server sends no ETag, nor a Last-Modified a second older than its answer: "
                     "one connection, no resume");
        // With mirrors, at least one connection per source unless -j says otherwise.
        const unsigned wanted =
            o.connections ? o.connections
                          : std::max(automatic_connections(st.size),
                                     static_cast<unsigned>(std::max<std::size_t>(mirrored.size(), 1)));
        const unsigned workers = static_cast<unsigned>(std::max<std::uint64_t>(
            1, std::min<std::uint64_t>(wanted, (missing_bytes + chunk - 1) / chunk)));
        r.connections = workers;
        bar.set_total(bar_id, st.size, state.done.total());

        job j{u,
              o,
              pool,
              bar,
              bar_id,
              fd,
              dir,
              part,
              state_name,
              std::move(state),
              segment_planner{missing, chunk},
              workers};
        j.sources.push_back({u, st.identity});
        for (std::size_t k = 1; k < mirrored.size(); ++k)
            j.sources.push_back(mirrored[k]);
        if (o.verify || o.expected) {
            // Verification runs beside the download, hashing the prefix that is complete.
            j.hasher = std::make_unique<background_hasher>(fd);
            if (!j.state.done.ranges().empty() && j.state.done.ranges().front().begin == 0)
                j.hasher->advance_to(
                    j.state.done.ranges().front().end); // resumed: hash what is there
        }

        // The workers, and the digest on a connection of its own, as children joined here.
        auto ex = co_await asio::this_coro::executor;
        using op_type = decltype(asio::co_spawn(ex, run_worker(j, 0, {}), asio::deferred));
        std::vector<op_type> ops;
        j.workers_left = missing_bytes > 0 ? workers : 0;
        // Each worker is handed its first chunk now: the first one to start could otherwise take
        // every chunk before the others start (a fast pooled connection need not suspend), and
        // a mirror would never be asked.
        for (unsigned w = 0; w < j.workers_left; ++w)
            ops.push_back(asio::co_spawn(ex, run_worker(j, w, j.planner.next()), asio::deferred));
        const bool need_digest = o.verify && !o.expected;
        if (need_digest)
            ops.push_back(asio::co_spawn(ex, fetch_digest(j), asio::deferred));
        if (j.mirrored() && j.workers_left > 0)
            ops.push_back(asio::co_spawn(ex, watch_speeds(j), asio::deferred));
        if (!ops.empty()) {
            auto [order, errors] =
                co_await asio::experimental::make_parallel_group(std::move(ops))
                    .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
            for (auto& e : errors)
                if (e)
                    std::rethrow_exception(e);
        }
        if (need_digest && !j.digest && !j.stop && retryable(j.digest_failure)) {
            // The digest's own connection could not be had (refused while the server drains,
            // busy beyond a per-address limit): ask once more, on a connection the body used.
            auto [asked, conn] = co_await pool.take(u);
            fp::stat_reply reply;
            if (!asked) {
                timeouts patient = o.limits;
                patient.stall = o.digest_timeout;
                conn->set_timeouts(patient);
                asked = co_await conn->stat(u.path, true, reply);
            }
            if (!asked) {
                j.digest = reply;
                conn->set_timeouts(o.limits);
                pool.give_back(u, std::move(conn));
            }
        }
        r.fetched += j.fetched;
        if (j.mirrored())
            for (const auto& src : j.sources)
                bar.note(fmt::format("ferry: {} served {} bytes{}", src.u.str(), src.served,
                                     src.dropped   ? " (dropped)"
                                     : src.benched ? " (left aside: slow)"
                                                   : ""));
        if (j.syncing.valid())
            j.collect(); // no checkpoint may still be writing the state below

        if (!j.io && !j.changed)
            j.checkpoint(); // keep what arrived, whatever happens next
        if (j.io) {
            r.code = j.io.code;
            r.error = j.io.message + " (the partial download is kept; rerun to resume)";
            co_return finish(r);
        }
        if (!j.changed && need_digest && j.digest && j.digest->identity != j.state.identity)
            j.changed = true; // the digest describes another version
        if (j.changed) {
            if (restart >= o.retries) {
                r.code = exit_code::integrity;
                r.error = "the file kept changing on the server while it was downloaded";
                co_return finish(r);
            }
            bar.note("ferry: " + u.str() +
                     " changed on the server during the download; starting over");
            r.restarted = true;
            dir.remove(state_name);
            continue;
        }
        if (!j.fatal && need_digest && !j.changed && !j.digest)
            j.fatal = j.digest_failure ? j.digest_failure
                                       : failure::protocol(fp::protocol_errc::truncated);
        if (j.fatal && j.fatal.what == failure::kind::protocol && fresh && !j.mirrored()) {
            // (With mirrors the others' chunks are kept: the whole file is checked anyway.)
            dir.remove(part_name); // what a server that sends invalid data sent is not kept
            dir.remove(state_name);
        }
        if (j.fatal) {
            r.code = code_for(j.fatal);
            r.error = (j.fatal_source.empty() ? "" : j.fatal_source + ": ") + j.fatal.message();
            if (r.code == exit_code::network || r.code == exit_code::busy)
                r.error += " (the partial download is kept; rerun to resume)";
            co_return finish(r);
        }

        // Complete: durable, verified, then published under the final name.
        if (::fsync(fd) != 0) {
            r.code = exit_code::local_io;
            r.error = local("syncing", part, errno).message;
            co_return finish(r);
        }
        if (need_digest && !j.digest->sha256) // HTTP without Repr-Digest: said once, not failed
            bar.note("ferry: " + u.str() + ": " + not_verified);
        if (o.expected || (need_digest && j.digest->sha256)) {
            const auto expected = o.expected ? *o.expected : *j.digest->sha256;
            const auto got = j.hasher->finish(st.size); // mostly done while downloading
            if (got.ec || got.digest != expected) {
                // A corrupt .part must not be resumed: discard it.
                dir.remove(part_name);
                dir.remove(state_name);
                r.code = exit_code::integrity;
                r.error = got.ec ? local("reading back", part, got.ec.value()).message
                           : j.mirrored()
                               ? "SHA-256 mismatch: the sources agreed on " + to_hex(expected) +
                                     ", their bytes hash to " + to_hex(got.digest) +
                                     ": one of them sent other bytes than it announced (see the "
                                     "bytes each served); the download was discarded"
                               : "SHA-256 mismatch for " + u.str() + ": expected " +
                                     to_hex(expected) + ", got " + to_hex(got.digest) +
                                     "; the download was discarded";
                co_return finish(r);
            }
            r.sha256 = to_hex(got.digest);
        }
        // Published only if OUT.part is still the file written and verified here (a program
        // that replaced it must not have its file published with this one's "sha256 ok"). The
        // state goes first: a finished download must not remove the state of a ferry that
        // starts on the same output the moment the rename is done.
        if (!dir.names(part_name, fd)) {
            r.code = exit_code::busy;
            r.error = part.string() + " was replaced or removed while ferry wrote it; nothing " +
                      "was published (is another program writing there?)";
            co_return finish(r);
        }
        dir.remove(state_name);
        if (!dir.rename(part_name, leaf, o.force)) {
            const int err = errno;
            (void)j.state.save(dir, state_name); // kept for a rerun, as before
            r.code = err == EEXIST ? exit_code::exists : exit_code::local_io;
            r.error = err == EEXIST
                          ? dir.shown(leaf).string() +
                                " appeared meanwhile; the download is kept as " + part.string()
                          : local("cannot rename " + part.string() + " to", out, err).message;
            co_return finish(r);
        }
        dir.sync(); // the rename itself is durable
        bar.done(bar_id);
        co_return finish(r);
    }
}

} // namespace ferry::client
