#include "ferry/server/metrics.hpp"

#include "ferry/protocol/frame.hpp"
#include "ferry/protocol/status.hpp"

#include <algorithm>
#include <iterator>
#include <spdlog/fmt/fmt.h>

namespace ferry::server {

namespace {

constexpr std::size_t ferry_statuses = 12;
constexpr std::size_t aborted_index = ferry_statuses;
/// The HTTP statuses ferryd sends (docs/http.md); anything else counts as "other".
constexpr std::array<unsigned, 20> http_statuses{200, 204, 206, 301, 304, 400, 403, 404, 405, 408,
                                                 412, 413, 414, 416, 417, 431, 500, 501, 503, 505};
constexpr std::size_t http_first = aborted_index + 1;
constexpr std::size_t other_index = http_first + http_statuses.size();
static_assert(other_index + 1 == metric_status::count);

constexpr std::array<std::string_view, 20> http_labels{
    "200", "204", "206", "301", "304", "400", "403", "404", "405", "408",
    "412", "413", "414", "416", "417", "431", "500", "501", "503", "505"};

} // namespace

std::size_t metric_status::ferry(std::uint16_t status) noexcept {
    return status < ferry_statuses ? status : other_index;
}

std::size_t metric_status::aborted() noexcept { return aborted_index; }

std::size_t metric_status::http(unsigned status) noexcept {
    const auto it = std::find(http_statuses.begin(), http_statuses.end(), status);
    return it == http_statuses.end()
               ? other_index
               : http_first + static_cast<std::size_t>(it - http_statuses.begin());
}

std::string_view metric_status::label(std::size_t index) noexcept {
    if (index < ferry_statuses)
        return protocol::status_text(static_cast<protocol::status>(index));
    if (index == aborted_index)
        return "aborted";
    if (index < other_index)
        return http_labels[index - http_first];
    return "other";
}

void thread_metrics::request(metric_protocol p, metric_method m, std::size_t status,
                             std::uint64_t bytes, clock_duration took) noexcept {
    const auto pi = static_cast<std::size_t>(p);
    requests[pi][static_cast<std::size_t>(m)][status].add();
    body_bytes[pi].add(bytes);
    const double seconds = std::chrono::duration<double>(took).count();
    const auto bucket = static_cast<std::size_t>(
        std::lower_bound(duration_buckets.begin(), duration_buckets.end(), seconds) -
        duration_buckets.begin());
    durations[pi].buckets[bucket].add();
    durations[pi].sum_ns.add(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()));
}

} // namespace ferry::server

namespace ferry::server {

namespace {

/// Appends one metric family: its HELP and TYPE lines.
void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

template <class F>
std::uint64_t total(const std::vector<const thread_metrics*>& threads, F f) {
    std::uint64_t n = 0;
    for (const auto* t : threads)
        n += f(*t).value();
    return n;
}

constexpr std::array<std::string_view, 2> protocol_labels{"ferry", "http"};
constexpr std::array<std::string_view, 5> method_labels{"GET", "HEAD", "STAT", "LIST", "other"};

} // namespace

std::string render_metrics(const std::vector<const thread_metrics*>& threads,
                           const server_metrics& s) {
    std::string out;
    out.reserve(16 * 1024);
    auto line = [&out](std::string_view name, auto value) {
        fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
    };
    family(out, "ferry_build_info", "gauge", "Version of ferryd and of the Ferry protocol.");
    fmt::format_to(std::back_inserter(out), "ferry_build_info{{version=\"{}\",protocol=\"{}\"}} 1\n",
                   FERRY_VERSION, int{protocol::version});
    family(out, "process_start_time_seconds", "gauge", "When ferryd started, since the epoch.");
    line("process_start_time_seconds", fmt::format("{:.3f}", s.start_time));

    family(out, "ferry_connections", "gauge",
           "Open client connections: busy (a request is being served) or idle (kept alive, "
           "waiting for a request).");
    // Each gauge is a difference of two counters: the ends are read before the starts, so that
    // an end never counts without its start (the difference can only be high, by what started
    // between the two reads, and is clamped at 0 all the same).
    auto difference = [](std::uint64_t started, std::uint64_t ended) {
        return started > ended ? started - ended : 0;
    };
    const auto closed = total(threads, [](auto& t) -> auto& { return t.closed; });
    const auto accepted = total(threads, [](auto& t) -> auto& { return t.accepted; });
    const auto busy_ended = total(threads, [](auto& t) -> auto& { return t.busy_ended; });
    const auto busy = difference(
        total(threads, [](auto& t) -> auto& { return t.busy_started; }), busy_ended);
    const auto open = difference(accepted, closed);
    fmt::format_to(std::back_inserter(out), "ferry_connections{{state=\"busy\"}} {}\n", busy);
    fmt::format_to(std::back_inserter(out), "ferry_connections{{state=\"idle\"}} {}\n",
                   open > busy ? open - busy : 0);
    family(out, "ferry_connections_max", "gauge", "The --max-connections limit.");
    line("ferry_connections_max", s.max_connections);
    family(out, "ferry_connections_accepted_total", "counter",
           "Connections admitted (under every connection limit).");
    line("ferry_connections_accepted_total", accepted);
    family(out, "ferry_connections_refused_total", "counter",
           "Connections refused with busy, by the limit they hit.");
    constexpr std::array<std::string_view, 2> reasons{"max_connections",
                                                      "max_connections_per_ip"};
    for (std::size_t r = 0; r < reasons.size(); ++r)
        fmt::format_to(std::back_inserter(out), "ferry_connections_refused_total{{reason=\"{}\"}} {}\n",
                       reasons[r], total(threads, [r](auto& t) -> auto& { return t.refused[r]; }));
    family(out, "ferry_connections_rate_limited", "gauge",
           "Open connections whose transfers are held to --rate-limit.");
    const auto limited_closed =
        total(threads, [](auto& t) -> auto& { return t.rate_limited_closed; });
    line("ferry_connections_rate_limited",
         difference(total(threads, [](auto& t) -> auto& { return t.rate_limited_opened; }),
                    limited_closed));

    family(out, "ferry_requests_total", "counter",
           "Requests answered, by protocol, method and status (the Ferry status text, the HTTP "
           "status code, or aborted when the connection broke mid-answer).");
    for (std::size_t p = 0; p < protocol_labels.size(); ++p)
        for (std::size_t m = 0; m < method_labels.size(); ++m)
            for (std::size_t st = 0; st < metric_status::count; ++st) {
                const auto n =
                    total(threads, [&](auto& t) -> auto& { return t.requests[p][m][st]; });
                if (n != 0)
                    fmt::format_to(std::back_inserter(out),
                                   "ferry_requests_total{{protocol=\"{}\",method=\"{}\","
                                   "status=\"{}\"}} {}\n",
                                   protocol_labels[p], method_labels[m], metric_status::label(st),
                                   n);
            }
    family(out, "ferry_sent_bytes_total", "counter",
           "Body bytes sent: files, and HTTP listing pages (not headers or frames).");
    for (std::size_t p = 0; p < protocol_labels.size(); ++p)
        fmt::format_to(std::back_inserter(out), "ferry_sent_bytes_total{{protocol=\"{}\"}} {}\n",
                       protocol_labels[p],
                       total(threads, [p](auto& t) -> auto& { return t.body_bytes[p]; }));
    family(out, "ferry_request_duration_seconds", "histogram",
           "Time from a request's arrival to the end of its answer.");
    for (std::size_t p = 0; p < protocol_labels.size(); ++p) {
        std::uint64_t cumulative = 0;
        for (std::size_t b = 0; b <= duration_buckets.size(); ++b) {
            cumulative +=
                total(threads, [&](auto& t) -> auto& { return t.durations[p].buckets[b]; });
            if (b < duration_buckets.size())
                fmt::format_to(std::back_inserter(out),
                               "ferry_request_duration_seconds_bucket{{protocol=\"{}\",le=\"{}\"}} "
                               "{}\n",
                               protocol_labels[p], duration_buckets[b], cumulative);
            else
                fmt::format_to(std::back_inserter(out),
                               "ferry_request_duration_seconds_bucket{{protocol=\"{}\",le=\"+Inf\"}} "
                               "{}\n",
                               protocol_labels[p], cumulative);
        }
        const auto ns = total(threads, [p](auto& t) -> auto& { return t.durations[p].sum_ns; });
        fmt::format_to(std::back_inserter(out),
                       "ferry_request_duration_seconds_sum{{protocol=\"{}\"}} {:.9f}\n"
                       "ferry_request_duration_seconds_count{{protocol=\"{}\"}} {}\n",
                       protocol_labels[p], static_cast<double>(ns) / 1e9, protocol_labels[p],
                       cumulative);
    }

    family(out, "ferry_listings", "gauge", "Directory listings in progress (--max-listings).");
    line("ferry_listings", s.listings_active);
    family(out, "ferry_digest_requests_total", "counter",
           "SHA-256 digests asked for, by outcome: hit (cached), shared (joined a running "
           "computation), miss (a computation started).");
    fmt::format_to(std::back_inserter(out),
                   "ferry_digest_requests_total{{result=\"hit\"}} {}\n"
                   "ferry_digest_requests_total{{result=\"shared\"}} {}\n"
                   "ferry_digest_requests_total{{result=\"miss\"}} {}\n",
                   s.digest_hits, s.digest_shared, s.digest_computations);
    family(out, "ferry_digest_queue", "gauge", "Digest computations queued or running.");
    line("ferry_digest_queue", s.digest_running);
    family(out, "ferry_draining", "gauge",
           "1 once a SIGTERM/SIGINT started the drain (not accepting; /readyz answers 503).");
    line("ferry_draining", s.draining ? 1 : 0);
    family(out, "ferry_config_reloads_total", "counter",
           "SIGHUP reloads of the configuration, by result (failed: the old settings stayed).");
    fmt::format_to(std::back_inserter(out),
                   "ferry_config_reloads_total{{result=\"ok\"}} {}\n"
                   "ferry_config_reloads_total{{result=\"failed\"}} {}\n",
                   s.reloads_ok, s.reloads_failed);
    return out;
}

} // namespace ferry::server
