#include "ferry/client/cli.hpp"

#include "ferry/client/bench.hpp"
#include "ferry/client/download_state.hpp"
#include "ferry/client/downloader.hpp"
#include "ferry/client/exit_code.hpp"
#include "ferry/client/input_list.hpp"
#include "ferry/client/listing.hpp"
#include "ferry/client/redirect.hpp"
#include "ferry/protocol/frame.hpp"
#include "ferry/protocol/text.hpp"
#include "ferry/transport/strict_option.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/program_options.hpp>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace ferry::client {
namespace po = boost::program_options;
namespace stdfs = std::filesystem;
using transport::strict;
using transport::strict_value;

namespace {

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

constexpr const char* overview =
    "Usage: ferry COMMAND [options]\n"
    "\n"
    "Commands:\n"
    "  get URL... [-o OUT]   download files (verified, resumable, segmented)\n"
    "  ls URL                list a directory\n"
    "  stat URL [--sha256]   show a file's metadata (and digest)\n"
    "  bench URL... -c N     load-test a server (closed loop, or --rate for an open loop)\n"
    "\n"
    "URLs look like ferry://HOST:PORT/path (IPv6: ferry://[::1]:7878/path; default port 7878)\n"
    "or http://HOST[:PORT]/path for any HTTP/1.1 server (default port 80; redirects followed;\n"
    "no https://).\n"
    "Run 'ferry COMMAND --help' for a command's options. Exit codes: 0 ok, 1 failure, 2 usage,\n"
    "3 not found, 4 forbidden, 5 network/timeout, 6 integrity, 7 busy, 8 local I/O, 9 file "
    "exists.\n";

/// The longest duration any option accepts (11.5 days): far beyond any real timeout or run,
/// far below what a clock::duration holds.
constexpr double max_seconds = 1e6;

/// A duration option's seconds, checked: above 0 (at least 0 with `zero_ok`) and at most
/// max_seconds. The error names the option.
clock::duration checked_seconds(const char* option, double s, bool zero_ok = false) {
    if (s > max_seconds || (!zero_ok && !(s > 0)))
        throw usage_error(fmt::format("--{} must be {} 0 and at most {} seconds (got {})", option,
                                      zero_ok ? "at least" : "above", max_seconds, s));
    // Rounded up: a duration above 0 never becomes 0 (which would time out every wait at once).
    return std::chrono::ceil<clock::duration>(std::chrono::duration<double>(s));
}

/// An integer option, checked against [lo, hi]. The error names the option.
template <class T>
void check_range(const char* option, T value, T lo, T hi) {
    if (value < lo || value > hi)
        throw usage_error(
            fmt::format("--{} must be between {} and {} (got {})", option, lo, hi, value));
}

/// The options every command shares, as read; timeouts() checks and converts the durations.
struct common_values {
    double connect = 10; ///< seconds
    double stall = 30;   ///< seconds
    unsigned retries = 5;
    bool quiet = false;
    bool json = false;

    timeouts checked_timeouts() const {
        return {checked_seconds("connect-timeout", connect),
                checked_seconds("stall-timeout", stall)};
    }
};

/// The shared options a command offers: --retries only where the command retries, --quiet
/// only where it prints more than its answer. An option a command does not offer is refused.
po::options_description common_options(common_values& c, bool retries, bool quiet) {
    po::options_description d{"Common options"};
    d.add_options()("help,h", "show this help")("connect-timeout", strict_value(&c.connect),
                                                "seconds to establish a connection")(
        "stall-timeout", strict_value(&c.stall),
        retries ? "seconds without data before a connection counts as stalled and is retried"
                : "seconds without data before a connection counts as stalled (a failure)");
    if (retries)
        d.add_options()("retries", strict_value(&c.retries),
                        "retries after network errors, 'busy' and stalls (at most 1000)");
    if (quiet)
        d.add_options()("quiet,q", po::bool_switch(&c.quiet),
                        "no progress bar or summary lines (errors still go to stderr)");
    d.add_options()("json", po::bool_switch(&c.json), "print a machine-readable result on stdout");
    return d;
}

/// True if `option` was on the command line (not merely its default).
bool given(const po::variables_map& vm, const char* option) {
    return vm.count(option) && !vm[option].defaulted();
}

/// Parses a command's options and its URL operands (`max_urls`, -1: any number), which are
/// required. Returns nullopt after printing the command's --help.
std::optional<po::variables_map> parse_command(const std::string& command,
                                               const std::vector<std::string>& args,
                                               const po::options_description& visible,
                                               int max_urls) {
    po::options_description all;
    all.add(visible);
    const po::value_semantic* url =
        max_urls == 1 ? static_cast<const po::value_semantic*>(po::value<std::string>())
                      : po::value<std::vector<std::string>>();
    all.add_options()("url", url, "");
    po::positional_options_description positional;
    positional.add("url", max_urls);
    po::variables_map vm;
    try {
        // No guessing: an abbreviation is an unknown option, not a different one.
        po::store(po::command_line_parser(args)
                      .options(all)
                      .positional(positional)
                      .style(po::command_line_style::default_style &
                             ~po::command_line_style::allow_guessing)
                      .run(),
                  vm);
        if (vm.count("help")) {
            std::cout << visible;
            return std::nullopt;
        }
        po::notify(vm);
    } catch (const po::error& e) {
        throw usage_error(e.what());
    }
    if (!vm.count("url") && !vm.count("input-file")) // (get -i FILE names them in FILE)
        throw usage_error(command + " needs " + (max_urls == 1 ? "a URL" : "at least one URL"));
    return vm;
}

url parse_url_arg(const std::string& text) {
    std::string error;
    auto u = parse_url(text, error);
    if (!u)
        throw usage_error(text + ": " + error);
    return *u;
}

/// Runs `body` on a fresh io_context and returns its result.
template <class T>
T run_async(asio::awaitable<T> body) {
    asio::io_context ctx{1};
    std::optional<T> result;
    std::exception_ptr error;
    asio::co_spawn(ctx, std::move(body), [&](std::exception_ptr e, T value) {
        error = e;
        result = std::move(value);
    });
    ctx.run();
    if (error)
        std::rethrow_exception(error);
    return std::move(*result);
}

/// Prints one line to stderr, escaped: it may quote a server's text or a path from a URL.
void say(const std::string& line) {
    std::cerr << fp::escape_for_terminal(line) << "\n";
}

void report_failure(const std::string& what, const failure& f) {
    say("ferry: " + what + ": " + f.message());
}

// ---- stat -----------------------------------------------------------------------------------

/// The URL an HTTP redirect leads to, when one was followed ("" otherwise).
std::string redirected_to(const redirect_chain& redirects, const url& u) {
    return redirects.redirected() ? u.str() : "";
}

asio::awaitable<int> stat_command(url u, bool sha256, bool json, timeouts t) {
    const auto asked = u.str();
    connection_pool pool{t};
    redirect_chain redirects{u};
    fp::stat_reply st;
    failure f;
    do {
        auto [of, conn] = co_await pool.take(u);
        f = of;
        if (!f)
            f = co_await conn->stat(u.path, sha256, st);
        pool.give_back(u, std::move(conn));
    } while (f.what == failure::kind::redirect && !(f = redirects.follow(u, f)));
    if (f) {
        report_failure(asked, f);
        co_return static_cast<int>(code_for(f));
    }
    const auto location = redirected_to(redirects, u);
    if (json) {
        nlohmann::json j{{"url", asked},
                         {"kind", kind_name(st.kind)},
                         {"size", st.size},
                         {"mtime_ns", st.mtime_ns},
                         {"identity", to_hex(st.identity)}};
        if (st.sha256)
            j["sha256"] = to_hex(*st.sha256);
        if (!location.empty())
            j["location"] = location;
        std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
        if (!location.empty())
            std::cout << "location: " << fp::escape_for_terminal(location) << "\n";
        std::cout << "path:     " << (u.path.empty() ? "/" : fp::escape_for_terminal(u.path))
                  << "\n"
                  << "kind:     " << kind_name(st.kind) << "\n"
                  << "size:     " << st.size << " (" << human_bytes(static_cast<double>(st.size))
                  << ")\n"
                  << "modified: " << iso_time(st.mtime_ns) << "\n"
                  << "identity: " << to_hex(st.identity) << "\n";
        if (st.sha256)
            std::cout << "sha256:   " << to_hex(*st.sha256) << "\n";
        else if (sha256 && st.kind == fp::file_kind::regular) // HTTP without Repr-Digest
            std::cout << "sha256:   (the server offers no digest)\n";
    }
    co_return 0;
}

// ---- ls -------------------------------------------------------------------------------------

asio::awaitable<int> ls_command(url u, bool json, timeouts t) {
    const auto asked = u.str();
    connection_pool pool{t};
    redirect_chain redirects{u};
    listing_writer writer{std::cout, std::cerr, json};
    failure f;
    do { // an HTTP listing comes whole, so nothing is written before a redirect
        auto [of, conn] = co_await pool.take(u);
        f = of;
        if (!f)
            f = co_await conn->list(u.path, [&writer](auto& batch) { writer.add(batch); });
        pool.give_back(u, std::move(conn));
    } while (f.what == failure::kind::redirect && !(f = redirects.follow(u, f, true)));
    if (f && !writer.streaming()) {
        report_failure(asked, f);
        co_return static_cast<int>(code_for(f));
    }
    writer.finish(); // a streamed listing that failed midway still ends as a valid JSON array
    if (f) {
        report_failure(asked, f);
        co_return static_cast<int>(code_for(f));
    }
    co_return 0;
}

// ---- get ------------------------------------------------------------------------------------

struct get_job {
    std::vector<url> urls;
    std::vector<get_options> options; ///< per URL (the output differs)
    unsigned parallel = 4;
};

asio::awaitable<void> get_lane(const get_job& job, std::size_t& next,
                               std::vector<file_result>& results, connection_pool& pool,
                               progress& bar) {
    while (next < job.urls.size()) {
        const auto i = next++;
        results[i] = co_await download_file(job.urls[i], job.options[i], pool, bar, i);
        bar.done(i); // whatever the outcome: its line comes with the summary
    }
}

asio::awaitable<std::vector<file_result>> get_all(const get_job& job, timeouts t, progress& bar) {
    connection_pool pool{t};
    std::vector<file_result> results(job.urls.size());
    std::size_t next = 0;
    auto ex = co_await asio::this_coro::executor;
    using op_type =
        decltype(asio::co_spawn(ex, get_lane(job, next, results, pool, bar), asio::deferred));
    std::vector<op_type> lanes;
    for (unsigned i = 0; i < std::min<std::size_t>(job.parallel, job.urls.size()); ++i)
        lanes.push_back(
            asio::co_spawn(ex, get_lane(job, next, results, pool, bar), asio::deferred));
    auto [order, errors] = co_await asio::experimental::make_parallel_group(std::move(lanes))
                               .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    for (auto& e : errors)
        if (e)
            std::rethrow_exception(e);
    co_return results;
}

/// One download `get` was asked for: its URL, the same file elsewhere, the output's name.
struct wanted_file {
    url u;
    std::vector<url> mirrors;
    std::string out; ///< an input file's out=, or empty
};

/// `get -i FILE`: the downloads FILE ('-': standard input) lists, in input_list's format.
std::vector<wanted_file> read_input_file(const std::string& name) {
    constexpr std::size_t most = 16 << 20;
    const std::string shown = name == "-" ? "standard input" : name;
    int fd = STDIN_FILENO;
    if (name != "-" && (fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC)) < 0)
        throw usage_error(fmt::format("-i {}: {}", shown, std::strerror(errno)));
    std::string text;
    char block[65536];
    for (;;) {
        const ssize_t n = ::read(fd, block, sizeof block);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || text.size() + static_cast<std::size_t>(n) > most) {
            const int error = n < 0 ? errno : 0;
            if (fd != STDIN_FILENO)
                ::close(fd);
            if (n < 0)
                throw usage_error(fmt::format("-i {}: {}", shown, std::strerror(error)));
            if (n > 0)
                throw usage_error(fmt::format("-i {}: larger than {} MiB", shown, most >> 20));
            break;
        }
        text.append(block, static_cast<std::size_t>(n));
    }
    std::string error;
    auto entries = parse_input_list(text, error);
    if (!error.empty())
        throw usage_error(fmt::format("-i {}:{}", shown, error));
    std::vector<wanted_file> files;
    for (auto& e : entries) {
        std::vector<url> urls;
        for (const auto& t : e.urls) {
            auto u = parse_url(t, error);
            if (!u)
                throw usage_error(fmt::format("-i {}:{}: {}: {}", shown, e.line, t, error));
            urls.push_back(std::move(*u));
        }
        files.push_back({urls.front(), {urls.begin() + 1, urls.end()}, std::move(e.out)});
    }
    if (files.empty())
        throw usage_error(fmt::format("-i {}: no URL in it", shown));
    return files;
}

int get_command(const std::vector<std::string>& args) {
    common_values common;
    std::string output, sha256, input_file;
    std::vector<std::string> mirror_args;
    unsigned connections = 0, parallel = 4;
    std::uint64_t chunk = 4 << 20;
    bool no_verify = false, no_resume = false, force = false, skip_existing = false;
    std::uint64_t speed_limit = 0;
    double speed_time = 30, digest_timeout = 600;
    po::options_description d{"ferry get URL... [options]"};
    d.add_options()("output,o", po::value<std::string>(&output),
                    "output file ('-' for standard output); with several URLs, an existing "
                    "directory (default: the URL's base name in the current directory)")(
        "connections,j", strict_value(&connections),
        "connections per file, at most 64 (0: 1 below 32 MiB, 4 from there on)")(
        "parallel", strict_value(&parallel), "files downloaded at the same time")(
        "sha256", po::value<std::string>(&sha256),
        "check against this hex SHA-256 instead of the server's")(
        "no-verify", po::bool_switch(&no_verify), "do not verify the SHA-256")(
        "mirror", po::value<std::vector<std::string>>(&mirror_args),
        "URL of the same file on another server (repeatable): chunks come from all of them; "
        "each must report the URL's size and SHA-256")(
        "input-file,i", po::value<std::string>(&input_file),
        "download the files FILE lists ('-': standard input): a URL a line, then its mirrors; "
        "an indented out=NAME line names its output (aria2's format)")(
        "no-resume", po::bool_switch(&no_resume), "ignore a partial download and start over")(
        "force", po::bool_switch(&force),
        "replace an existing output file")("skip-existing", po::bool_switch(&skip_existing),
                                           "leave an existing output file and succeed")(
        "chunk-size", strict_value(&chunk),
        "bytes per request of a segmented download (4 KiB to 1 GiB)")(
        "speed-limit", strict_value(&speed_limit),
        "bytes/s: a transfer slower than this over --speed-time counts as stalled (0: off)")(
        "speed-time", strict_value(&speed_time), "seconds over which --speed-limit is measured")(
        "digest-timeout", strict_value(&digest_timeout),
        "seconds the server may take to send the SHA-256 (it hashes the whole file first)");
    d.add(common_options(common, true, true));
    const auto parsed = parse_command("get", args, d, -1);
    if (!parsed)
        return 0;
    const auto& vm = *parsed;
    auto t = common.checked_timeouts();
    const auto retries = common.retries;
    const bool quiet = common.quiet, json = common.json;
    check_range<unsigned>("retries", retries, 0, 1000);
    check_range<unsigned>("connections", connections, 0, 64);
    check_range<unsigned>("parallel", parallel, 1, 1000);
    check_range<std::uint64_t>("chunk-size", chunk, 4096, 1 << 30);
    if (force && skip_existing)
        throw usage_error("--force and --skip-existing contradict each other");
    if (no_verify && !sha256.empty())
        throw usage_error("--no-verify and --sha256 contradict each other");
    if (output == "-")
        for (const char* o : {"connections", "chunk-size", "no-resume", "force", "skip-existing"})
            if (given(vm, o))
                throw usage_error(fmt::format(
                    "--{} means nothing with -o - (one connection, in order, nothing kept)", o));
    t.speed_limit = speed_limit;
    t.speed_time = checked_seconds("speed-time", speed_time);
    const auto digest_wait = checked_seconds("digest-timeout", digest_timeout);
    std::vector<wanted_file> files;
    if (vm.count("url"))
        for (const auto& text : vm["url"].as<std::vector<std::string>>())
            files.push_back({parse_url_arg(text), {}, {}});
    if (vm.count("input-file")) {
        if (input_file.empty())
            throw usage_error("-i needs a file name ('-' for standard input)");
        auto listed = read_input_file(input_file);
        files.insert(files.end(), listed.begin(), listed.end());
    }
    // An input file may list one URL or many: it is read like several URLs either way.
    const bool several = files.size() > 1 || !input_file.empty();
    if (several && !sha256.empty())
        throw usage_error("--sha256 applies to a single URL");
    if (!mirror_args.empty()) {
        if (several)
            throw usage_error("--mirror applies to a single URL (in an input file, the mirrors "
                              "go on the URL's line)");
        for (const auto& text : mirror_args)
            files.front().mirrors.push_back(parse_url_arg(text));
    }
    for (const auto& f : files) {
        if (f.mirrors.empty())
            continue;
        if (output == "-")
            throw usage_error("--mirror means nothing with -o - (one connection, in order)");
        if (no_verify)
            throw usage_error("--mirror needs the SHA-256 (it shows the sources hold the same "
                              "file); drop --no-verify");
    }
    if (several && !output.empty() && (output == "-" || !stdfs::is_directory(output)))
        throw usage_error(
            "with several URLs or -i, -o must name an existing directory");
    get_job job;
    job.parallel = parallel;
    std::optional<fp::sha256_digest> expected;
    if (!sha256.empty()) {
        fp::sha256_digest d256{};
        if (!from_hex(sha256, d256))
            throw usage_error("--sha256 must be 64 hex digits");
        expected = d256;
    }
    const bool bars = !quiet && !json && ::isatty(STDERR_FILENO) && output != "-";
    progress bar{bars};
    // Two downloads never write one file: each name, with the URL that writes it and its spelling.
    std::map<stdfs::path, std::pair<const url*, std::string>> outputs;
    for (const auto& f : files)
        job.urls.push_back(f.u);
    for (std::size_t i = 0; i < files.size(); ++i) {
        const auto& u = job.urls[i];
        get_options o;
        const auto base =
            files[i].out.empty() ? stdfs::path(u.path).filename().string() : files[i].out;
        o.output = several && !output.empty() ? (stdfs::path(output) / base).string()
                   : files[i].out.empty()     ? output
                                              : base;
        const auto target = stdfs::absolute(o.output.empty() ? base : o.output).lexically_normal();
        // OUT and the names ferry writes beside it: `m` and `m.part` must not meet either.
        if (o.output != "-" && !base.empty())
            for (const char* suffix : {"", ".part", ".part.state", ".part.state.tmp"})
                if (const auto [at, added] = outputs.emplace(
                        target.string() + suffix,
                        std::pair{&u, (o.output.empty() ? base : o.output) + suffix});
                    !added)
                    throw usage_error(at->second.first->str() + " and " + u.str() +
                                      " would both write " + at->second.second +
                                      "; download them separately, each with its own -o");
        o.connections = connections;
        o.verify = !no_verify;
        o.expected = expected;
        o.resume = !no_resume;
        o.force = force;
        o.skip_existing = skip_existing;
        o.retries = retries;
        o.chunk = chunk;
        o.limits = t;
        o.digest_timeout = digest_wait;
        o.mirrors = files[i].mirrors;
        job.options.push_back(o);
        bar.add(base, 0, 0);
    }
    auto results = run_async(get_all(job, t, bar));

    int code = 0;
    auto arr = nlohmann::json::array();
    for (const auto& r : results) {
        if (r.code != exit_code::ok) {
            say("ferry: " + r.url + ": " + r.error);
            if (code == 0)
                code = static_cast<int>(r.code);
        } else if (!quiet && !json) {
            const double rate = r.seconds > 0 ? static_cast<double>(r.fetched) / r.seconds : 0;
            say(r.skipped ? fmt::format("ferry: {} exists, skipped", r.output)
                          : fmt::format(
                                "ferry: saved {} ({}{} in {:.2f} s, {}/s, {} connection{}{}{})",
                                r.output == "-" ? "standard output" : r.output,
                                human_bytes(static_cast<double>(r.size)),
                                r.resumed ? fmt::format(", {} fetched after a resume",
                                                        human_bytes(static_cast<double>(r.fetched)))
                                          : "",
                                r.seconds, human_bytes(rate), r.connections,
                                r.connections == 1 ? "" : "s",
                                r.restarted ? ", restarted after a change" : "",
                                r.sha256.empty() ? ", not verified" : ", sha256 ok"));
        }
        arr.push_back({{"url", r.url},
                       {"output", r.output},
                       {"exit_code", static_cast<int>(r.code)},
                       {"error", r.error},
                       {"size", r.size},
                       {"fetched", r.fetched},
                       {"seconds", r.seconds},
                       {"connections", r.connections},
                       {"resumed", r.resumed},
                       {"restarted", r.restarted},
                       {"skipped", r.skipped},
                       {"sha256", r.sha256}});
    }
    if (json)
        std::cout << arr.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return code;
}

int bench_command(const std::vector<std::string>& args) {
    common_values common;
    bench_options o;
    std::string list;
    po::options_description d{"ferry bench URL [PATH or URL...] [options]"};
    d.add_options()("connections,c", strict_value(&o.connections),
                    "concurrent connections (at most 1000000)")(
        "duration,d", strict_value(&o.duration), "seconds to run (after the warm-up)")(
        "requests,n", strict_value<std::uint64_t>(), "stop after this many requests instead")(
        "rate", strict_value(&o.rate),
        "open loop: start this many requests per second, latency measured from each intended "
        "start")("warmup", strict_value(&o.warmup), "seconds run before measuring")(
        "ramp-up", strict_value(&o.ramp_up), "seconds over which the connections are opened")(
        "list", po::value<std::string>(&list), "file with more paths (or URLs), one per line")(
        "verify", po::bool_switch(&o.verify),
        "hash every body as it streams and compare with the server's SHA-256")(
        "slow-read", strict_value(&o.slow_read), "hostile: read bodies at this many bytes/s")(
        "abort-after", strict_value(&o.abort_after),
        "hostile: disconnect after this many body bytes")(
        "idle", po::bool_switch(&o.idle), "hostile: connect and send nothing for the duration")(
        "threads", strict_value(&o.threads), "client threads, at most 1024 (0: one per core)");
    d.add(common_options(common, false, true)); // bench never retries: it counts errors
    const auto parsed = parse_command("bench", args, d, -1);
    if (!parsed)
        return 0;
    const auto& vm = *parsed;
    o.limits = common.checked_timeouts();
    const bool quiet = common.quiet, json = common.json;
    if (vm.count("requests")) {
        o.requests = vm["requests"].as<strict<std::uint64_t>>().value;
        check_range<std::uint64_t>("requests", *o.requests, 1, UINT64_MAX);
        if (given(vm, "duration"))
            throw usage_error("--duration and --requests contradict each other");
    }
    check_range<unsigned>("connections", o.connections, 1, 1'000'000);
    check_range<unsigned>("threads", o.threads, 0, 1024);
    (void)checked_seconds("duration", o.duration);
    (void)checked_seconds("warmup", o.warmup, true);
    (void)checked_seconds("ramp-up", o.ramp_up, true);
    if (o.rate > 1e9)
        throw usage_error(fmt::format("--rate must be at most 1e9 requests/s (got {})", o.rate));
    if (o.idle)
        for (const char* opt : {"requests", "rate", "verify", "slow-read", "abort-after"})
            if (given(vm, opt))
                throw usage_error(fmt::format(
                    "--{} means nothing with --idle (it connects and sends nothing)", opt));
    auto add = [&](const std::string& text) {
        if (text.find("://") != std::string::npos || o.targets.empty()) {
            o.targets.push_back(parse_url_arg(text));
            return;
        }
        url more = o.targets.front(); // a bare path: same server as the first URL
        more.path = text.front() == '/' ? text.substr(1) : text;
        o.targets.push_back(more);
    };
    for (const auto& text : vm["url"].as<std::vector<std::string>>())
        add(text);
    if (!list.empty()) {
        std::ifstream in{list};
        if (!in)
            throw usage_error("--list " + list + ": cannot read the file");
        for (std::string line; std::getline(in, line);)
            if (!line.empty() && line.front() != '#')
                add(line);
    }
    for (const auto& u : o.targets)
        if (u.origin() != o.targets.front().origin())
            throw usage_error("every URL must name the same server as the first");
    if (!quiet && !json)
        std::cerr << fmt::format(
            "ferry bench: {} connection(s), {}, {} target(s) on {}\n", o.connections,
            o.requests ? fmt::format("{} requests", *o.requests) : fmt::format("{} s", o.duration),
            o.targets.size(), o.targets.front().origin());
    const auto report = run_bench(o);
    if (json)
        std::cout << report.json().dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                  << "\n";
    else
        std::cout << report.text();
    return report.error_total() == 0 ? 0 : static_cast<int>(exit_code::failure);
}

int single_url_command(const std::string& name, const std::vector<std::string>& args) {
    common_values common;
    bool sha256 = false;
    po::options_description d{"ferry " + name + " URL [options]"};
    if (name == "stat")
        d.add_options()("sha256", po::bool_switch(&sha256),
                        "also show the file's SHA-256 (computed by the server)");
    // One request, not retried; the answer is all it prints.
    d.add(common_options(common, false, false));
    const auto parsed = parse_command(name, args, d, 1);
    if (!parsed)
        return 0;
    const auto& vm = *parsed;
    const auto t = common.checked_timeouts();
    const bool json = common.json;
    const auto u = parse_url_arg(vm["url"].as<std::string>());
    return name == "stat" ? run_async(stat_command(u, sha256, json, t))
                          : run_async(ls_command(u, json, t));
}

} // namespace

int run_cli(int argc, const char* const* argv) {
    std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
    try {
        if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
            std::cout << overview;
            return args.empty() ? static_cast<int>(exit_code::usage) : 0;
        }
        if (args[0] == "--version") {
            std::cout << "ferry " FERRY_VERSION " (protocol " << int{fp::version} << ")\n";
            return 0;
        }
        const std::string command = args[0];
        args.erase(args.begin());
        if (command == "get")
            return get_command(args);
        if (command == "bench")
            return bench_command(args);
        if (command == "ls" || command == "stat")
            return single_url_command(command, args);
        throw usage_error("unknown command '" + command + "'");
    } catch (const usage_error& e) {
        say("ferry: " + std::string{e.what()} + " (see ferry --help)");
        return static_cast<int>(exit_code::usage);
    } catch (const std::exception& e) {
        say("ferry: " + std::string{e.what()});
        return static_cast<int>(exit_code::failure);
    }
}

} // namespace ferry::client
