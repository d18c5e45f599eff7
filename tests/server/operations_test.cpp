// Operating ferryd (label: integration): the admin listener's /metrics (checked by promtool),
// /healthz and /readyz; SIGHUP reloading the configuration; the JSON access log; --user.
#include "support/process.hpp"
#include "support/test_client.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <grp.h>
#include <netinet/in.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <pwd.h>
#include <regex>
#include <thread>

namespace ferry::test {
namespace {

using fp::status;

/// The value of one sample line of a /metrics text (`name{labels}`), or -1 if absent.
double sample(const std::string& metrics, const std::string& series) {
    std::istringstream in{metrics};
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(series + " ", 0) == 0)
            return std::stod(line.substr(series.size() + 1));
    return -1;
}

std::string find_promtool() {
    for (const char* p : {"/usr/bin/promtool", "/usr/local/bin/promtool"})
        if (::access(p, X_OK) == 0)
            return p;
    return {};
}

TEST(Operations, MetricsCountWhatWasServedAndPassPromtool) {
    temp_dir root;
    write_file(root / "f", std::string(100000, 'x'));
    ferryd_process server{root.path(), {"--admin-listen", "127.0.0.1:0"}};
    const auto admin = server.port(1); // the port file's last line
    ASSERT_NE(admin, server.port());

    auto ferry = test_client::connect(server.port());
    EXPECT_EQ(ferry.get("f").body.size(), 100000U);
    ferry.send(fp::stat_request{"missing", false});
    EXPECT_EQ(ferry.read_error().code, status::not_found);
    EXPECT_EQ(http(server.port(), "GET", "/f").status, 200);
    EXPECT_EQ(http(server.port(), "GET", "/missing").status, 404);

    const auto m = http(admin, "GET", "/metrics");
    ASSERT_EQ(m.status, 200) << m.head;
    EXPECT_NE(m.head.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"),
              std::string::npos)
        << m.head;
    EXPECT_EQ(sample(m.body, R"(ferry_requests_total{protocol="ferry",method="GET",status="ok"})"),
              1);
    EXPECT_EQ(
        sample(m.body, R"(ferry_requests_total{protocol="ferry",method="STAT",status="not found"})"),
        1);
    EXPECT_EQ(sample(m.body, R"(ferry_requests_total{protocol="http",method="GET",status="200"})"),
              1);
    EXPECT_EQ(sample(m.body, R"(ferry_requests_total{protocol="http",method="GET",status="404"})"),
              1);
    EXPECT_EQ(sample(m.body, R"(ferry_sent_bytes_total{protocol="ferry"})"), 100000);
    EXPECT_EQ(sample(m.body, R"(ferry_request_duration_seconds_count{protocol="ferry"})"), 2);
    EXPECT_EQ(sample(m.body, R"(ferry_request_duration_seconds_bucket{protocol="http",le="+Inf"})"),
              2);
    EXPECT_EQ(sample(m.body, "ferry_connections_accepted_total"), 3);
    EXPECT_EQ(sample(m.body, R"(ferry_connections{state="idle"})"), 1); // the Ferry client's
    EXPECT_EQ(sample(m.body, "ferry_draining"), 0);
    EXPECT_NE(m.body.find("ferry_build_info{version=\"" FERRY_VERSION "\",protocol=\"1\"} 1\n"),
              std::string::npos);

    const auto promtool = find_promtool();
    ASSERT_FALSE(promtool.empty()) << "promtool is missing: scripts/deps installs prometheus";
    temp_dir d;
    write_file(d / "metrics", m.body);
    auto check = run({"/bin/sh", "-c", promtool + " check metrics < " + (d / "metrics").string()});
    EXPECT_EQ(check.code, 0) << check.output;

    EXPECT_EQ(http(admin, "GET", "/healthz").status, 200);
    EXPECT_EQ(http(admin, "GET", "/readyz").body, "ready\n");
    EXPECT_EQ(http(admin, "GET", "/other").status, 404);
    const auto post = http(admin, "POST", "/metrics");
    EXPECT_EQ(post.status, 405);
    EXPECT_NE(post.head.find("\r\nAllow: GET, HEAD"), std::string::npos);
    // The admin port is not the file server: no file is served there.
    EXPECT_EQ(http(admin, "GET", "/f").status, 404);
    ferry.close();
    EXPECT_EQ(server.stop(), 0);
}

TEST(Operations, ARealPrometheusScrapesTheMetrics) {
    const std::string prometheus = "/usr/bin/prometheus";
    ASSERT_EQ(::access(prometheus.c_str(), X_OK), 0) << "scripts/deps installs prometheus";
    temp_dir root;
    write_file(root / "f", "x");
    ferryd_process server{root.path(), {"--admin-listen", "127.0.0.1:0"}};
    auto c = test_client::connect(server.port());
    EXPECT_EQ(c.get("f").body, "x");
    c.close();
    temp_dir p;
    write_file(p / "prometheus.yml", "global: {scrape_interval: 1s}\n"
                                     "scrape_configs:\n"
                                     "  - job_name: ferryd\n"
                                     "    static_configs: [{targets: ['127.0.0.1:" +
                                         std::to_string(server.port(1)) + "']}]\n");
    const auto web = free_port();
    child_process prom{{prometheus, "--config.file=" + (p / "prometheus.yml").string(),
                        "--storage.tsdb.path=" + (p / "data").string(),
                        "--web.listen-address=127.0.0.1:" + std::to_string(web)},
                       p / "log"};
    // Prometheus has scraped ferryd once the query finds the request counted there.
    const std::string query = "/api/v1/query?query=ferry_requests_total%7Bprotocol%3D%22ferry%22%2C"
                              "method%3D%22GET%22%2Cstatus%3D%22ok%22%7D";
    std::string body;
    const bool scraped = eventually(
        [&] {
            try {
                body = http(web, "GET", query).body;
            } catch (const std::exception&) {
                return false; // not listening yet
            }
            return body.find("\"value\":[") != std::string::npos;
        },
        std::chrono::seconds(60));
    EXPECT_TRUE(scraped) << body << read_file(p / "log");
    EXPECT_NE(body.find("\"job\":\"ferryd\""), std::string::npos) << body;
    EXPECT_NE(body.find(",\"1\"]"), std::string::npos) << body; // the one GET
    prom.signal(SIGTERM);
    EXPECT_TRUE(prom.wait_exit(std::chrono::seconds(30)));
    EXPECT_EQ(server.stop(), 0);
}

TEST(Operations, ReadyzIs503WhileDrainingAndHealthzStays200) {
    temp_dir root;
    write_file(root / "big", std::string(4 << 20, 'x'));
    // A rate-limited transfer keeps the drain going for a while.
    ferryd_process server{root.path(),
                          {"--admin-listen", "127.0.0.1:0", "--rate-limit", "262144"}};
    const auto admin = server.port(1);
    auto busy = test_client::connect(server.port());
    busy.send(fp::get_request{"big", 0, fp::to_end, std::nullopt});
    (void)busy.read<fp::get_header>();
    EXPECT_EQ(sample(http(admin, "GET", "/metrics").body, "ferry_connections_rate_limited"), 1);
    server.process().signal(SIGTERM);
    EXPECT_TRUE(eventually([&] { return http(admin, "GET", "/readyz").status == 503; }));
    const auto ready = http(admin, "GET", "/readyz");
    EXPECT_EQ(ready.body, "draining: not accepting connections\n");
    EXPECT_EQ(http(admin, "GET", "/healthz").status, 200);
    EXPECT_EQ(sample(http(admin, "GET", "/metrics").body, "ferry_draining"), 1);
    busy.close();
    EXPECT_EQ(server.process().wait_exit(std::chrono::seconds(30)), 0);
}

TEST(Operations, ReadyzIs503WhenTheRootIsGone) {
    temp_dir parent;
    const auto root = parent / "root";
    std::filesystem::create_directory(root);
    ferryd_process server{root, {"--admin-listen", "127.0.0.1:0"}};
    EXPECT_EQ(http(server.port(1), "GET", "/readyz").status, 200);
    std::filesystem::remove(root);
    const auto ready = http(server.port(1), "GET", "/readyz");
    EXPECT_EQ(ready.status, 503);
    EXPECT_EQ(ready.body, "root unusable: the root directory was deleted\n");
    EXPECT_EQ(server.stop(), 0);
}

TEST(Operations, IdleAdminConnectionsCannotLockTheScraperOut) {
    temp_dir root;
    ferryd_process server{root.path(), {"--admin-listen", "127.0.0.1:0"}};
    const auto admin = server.port(1);
    // Someone on this host holds admin connections open, sending nothing: each newcomer
    // replaces the oldest of them, so a scrape is always answered.
    std::vector<test_client> idle;
    for (int i = 0; i < 20; ++i)
        idle.push_back(test_client::connect(admin));
    EXPECT_EQ(http(admin, "GET", "/healthz").status, 200);
    EXPECT_EQ(http(admin, "GET", "/metrics").status, 200);
    EXPECT_TRUE(idle.front().wait_closed()); // the oldest made room
    EXPECT_EQ(server.stop(), 0);
}

TEST(Operations, TheAgentSaysReadyWithAWeightFromTheLoadThenMaintThenDrain) {
    temp_dir root;
    write_file(root / "big", std::string(4 << 20, 'x'));
    write_file(root / "small", "x");
    ferryd_process server{root.path(),
                          {"--admin-listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0",
                           "--max-connections", "4", "--rate-limit", "262144"}};
    const auto admin = server.port(1);
    const auto agent = server.port(2); // the port file: listen, admin, agent
    EXPECT_EQ(agent_check(agent), "ready 100%\n");

    // Two idle connections of four: half the weight.
    auto a = test_client::connect(server.port());
    auto b = test_client::connect(server.port());
    EXPECT_TRUE(eventually([&] { return agent_check(agent) == "ready 50%\n"; }))
        << agent_check(agent);

    // Maintenance, on demand: the agent says maint and /readyz fails until it is cleared.
    EXPECT_EQ(http(admin, "GET", "/maint").body, "off\n");
    const auto on = http(admin, "POST", "/maint");
    EXPECT_EQ(on.status, 200);
    EXPECT_EQ(on.body, "maintenance on\n");
    EXPECT_EQ(agent_check(agent), "maint\n");
    EXPECT_EQ(http(admin, "GET", "/maint").body, "on\n");
    const auto ready = http(admin, "GET", "/readyz");
    EXPECT_EQ(ready.status, 503);
    EXPECT_EQ(ready.body, "maintenance\n");
    EXPECT_EQ(http(admin, "GET", "/healthz").status, 200);
    // Files are still served: maintenance only asks the balancer to stop sending work.
    EXPECT_EQ(http(server.port(), "GET", "/small").body, "x");
    const auto put = http(admin, "PUT", "/maint");
    EXPECT_EQ(put.status, 405);
    EXPECT_NE(put.head.find("\r\nAllow: GET, HEAD, POST, DELETE"), std::string::npos) << put.head;
    EXPECT_EQ(http(admin, "DELETE", "/maint").body, "maintenance off\n");
    EXPECT_EQ(http(admin, "GET", "/readyz").status, 200);
    a.close();
    b.close();
    EXPECT_TRUE(eventually([&] { return agent_check(agent) == "ready 100%\n"; }));

    // Draining (a rate-limited transfer keeps it going): drain.
    auto busy = test_client::connect(server.port());
    busy.send(fp::get_request{"big", 0, fp::to_end, std::nullopt});
    (void)busy.read<fp::get_header>();
    server.process().signal(SIGTERM);
    EXPECT_TRUE(eventually([&] { return agent_check(agent) == "drain\n"; }));
    // Maintenance wins over the drain.
    EXPECT_EQ(http(admin, "POST", "/maint").status, 200);
    EXPECT_EQ(agent_check(agent), "maint\n");
    busy.close();
    EXPECT_EQ(server.process().wait_exit(std::chrono::seconds(30)), 0);
}

TEST(Operations, TheAgentListenerIsNeverAListenOrAdminAddress) {
    temp_dir root;
    auto same = run({bin("ferryd"), root.path().string(), "--admin-listen", "127.0.0.1:9878",
                     "--agent-listen", "127.0.0.1:9878", "--check-config"});
    EXPECT_EQ(same.code, 2);
    EXPECT_NE(same.output.find("--agent-listen must differ from every listen address and from "
                               "--admin-listen"),
              std::string::npos)
        << same.output;
    auto bad = run({bin("ferryd"), root.path().string(), "--agent-listen", "nowhere"});
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.output.find("--agent-listen nowhere"), std::string::npos) << bad.output;
}

TEST(Operations, TheAdminListenerIsNeverAListenAddress) {
    temp_dir root;
    auto same = run({bin("ferryd"), root.path().string(), "--listen", "127.0.0.1:7878",
                     "--admin-listen", "127.0.0.1:7878", "--check-config"});
    EXPECT_EQ(same.code, 2);
    EXPECT_NE(same.output.find("--admin-listen must differ from every listen address"),
              std::string::npos)
        << same.output;
    auto bad = run({bin("ferryd"), root.path().string(), "--admin-listen", "localhost:9"});
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.output.find("--admin-listen localhost:9: 'localhost' is not an IP address"),
              std::string::npos)
        << bad.output;
}

/// The reload counters of a /metrics text: (ok, failed).
std::pair<double, double> reloads(std::uint16_t admin) {
    const auto m = http(admin, "GET", "/metrics").body;
    return {sample(m, R"(ferry_config_reloads_total{result="ok"})"),
            sample(m, R"(ferry_config_reloads_total{result="failed"})")};
}

TEST(Operations, SighupReloadsTheLimitsAndRefusesAnInvalidFileKeepingTheOldSettings) {
    temp_dir root;
    temp_dir etc;
    write_file(root / "f", "x");
    const auto conf = etc / "ferryd.conf";
    write_file(conf, "max-connections-per-ip = 1\n");
    ferryd_process server{root.path(), {"--config", conf.string(), "--admin-listen", "127.0.0.1:0"}};
    const auto admin = server.port(1);
    auto admitted = [](test_client& c) {
        c.send(fp::stat_request{"f", false});
        auto d = c.read_frame();
        return std::holds_alternative<fp::stat_reply>(d.message);
    };
    auto first = test_client::connect(server.port());
    ASSERT_TRUE(admitted(first));
    auto second = test_client::connect(server.port());
    EXPECT_EQ(second.read_error().code, status::busy); // one per address

    // A valid file: the next connections get the new cap; the open one is untouched.
    write_file(conf, "# three now\nmax-connections-per-ip = 3\nrate-limit = 1000000\n");
    server.process().signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return reloads(admin).first == 1; }));
    auto third = test_client::connect(server.port());
    EXPECT_TRUE(admitted(third));
    EXPECT_TRUE(admitted(first));
    // The rate limit applies to connections opened from now on: `third` has it, `first` not.
    EXPECT_EQ(sample(http(admin, "GET", "/metrics").body, "ferry_connections_rate_limited"), 1);

    // An invalid file: refused, naming the file and the line; the cap of 3 stays.
    write_file(conf, "max-connections-per-ip = 5\nrate-limit = fast\n");
    server.process().signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return reloads(admin).second == 1; }));
    EXPECT_EQ(reloads(admin).first, 1);
    EXPECT_NE(server.log().find("configuration not reloaded: " + conf.string() + ":2: "),
              std::string::npos)
        << server.log();
    auto fourth = test_client::connect(server.port()); // 3 of 3: first, third, fourth
    EXPECT_TRUE(admitted(fourth));
    auto fifth = test_client::connect(server.port());
    EXPECT_EQ(fifth.read_error().code, status::busy);
    EXPECT_EQ(sample(http(admin, "GET", "/metrics").body,
                     R"(ferry_connections_refused_total{reason="max_connections_per_ip"})"),
              2);

    // What only a restart applies is kept, and said.
    write_file(conf, "max-connections-per-ip = 3\nthreads = 7\n");
    server.process().signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return reloads(admin).first == 2; }));
    EXPECT_NE(server.log().find("configuration: threads changed; only a restart applies that"),
              std::string::npos)
        << server.log();
    EXPECT_TRUE(admitted(first));
    first.close();
    third.close();
    fourth.close();
    EXPECT_EQ(server.stop(), 0);
}

TEST(Operations, AShorterRequestTimeoutAppliesToWaitingConnectionsAtOnce) {
    temp_dir root;
    temp_dir etc;
    const auto conf = etc / "ferryd.conf";
    write_file(conf, "request-timeout = 60\nthreads = 1\n");
    ferryd_process server{root.path(), {"--config", conf.string(), "--admin-listen", "127.0.0.1:0"}};
    auto before = test_client::connect(server.port()); // sends nothing
    write_file(conf, "request-timeout = 0.5\nthreads = 1\n"); // fighting a slowloris
    server.process().signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return reloads(server.port(1)).first == 1; }));
    auto after = test_client::connect(server.port());
    const auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(after.wait_closed());  // in half a second, not behind `before`'s minute
    EXPECT_TRUE(before.wait_closed()); // and so does the one that was waiting already
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
    EXPECT_EQ(server.stop(), 0);
}

TEST(Operations, SighupChangesTheLogLevel) {
    temp_dir root;
    temp_dir etc;
    write_file(root / "f", "x");
    const auto conf = etc / "ferryd.conf";
    write_file(conf, "threads = 1\n");
    // ferryd_process sets --log-level warn on the command line, which wins over the file:
    // start it by hand, with the level in the file only.
    temp_dir run_dir;
    child_process p{{bin("ferryd"), root.path().string(), "--config", conf.string(), "--listen",
                     "127.0.0.1:0", "--port-file", (run_dir / "port").string()},
                    run_dir / "log"};
    ASSERT_TRUE(eventually([&] { return std::filesystem::exists(run_dir / "port"); }));
    const auto port = static_cast<std::uint16_t>(std::stoul(read_file(run_dir / "port")));
    auto count = [&](const std::string& what) {
        const auto log = read_file(run_dir / "log");
        std::size_t n = 0;
        for (auto at = log.find(what); at != std::string::npos; at = log.find(what, at + 1))
            ++n;
        return n;
    };
    {
        auto c = test_client::connect(port);
        EXPECT_EQ(c.get("f").body, "x");
    }
    ASSERT_TRUE(eventually([&] { return count("FERRY GET \"f\"") == 1; }));
    write_file(conf, "threads = 1\nlog-level = warn\n");
    p.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return count("configuration reloaded: log-level info -> warn"); }))
        << read_file(run_dir / "log");
    {
        auto c = test_client::connect(port);
        EXPECT_EQ(c.get("f").body, "x");
        c.close();
    }
    // An access line would follow the request at once; the next info line never comes.
    write_file(conf, "threads = 1\nlog-level = info\n");
    p.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return count("configuration reloaded: log-level warn -> info"); }))
        << read_file(run_dir / "log");
    EXPECT_EQ(count("FERRY GET \"f\""), 1U) << read_file(run_dir / "log");
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(std::chrono::seconds(30)), 0);
}

TEST(Operations, TheJsonAccessLogIsOneEscapedObjectPerLine) {
    temp_dir root;
    temp_dir logs;
    write_file(root / "f", "hello");
    const auto log = logs / "access.json";
    ferryd_process server{root.path(),
                          {"--access-log", log.string(), "--access-log-format", "json"}};
    auto c = test_client::connect(server.port());
    EXPECT_EQ(c.get("f", 1, 3).body, "ell");
    const std::string hostile = "a\n\"}\x1b[31m\\";
    c.send(fp::stat_request{hostile, false});
    EXPECT_EQ(c.read_error().code, status::not_found);
    EXPECT_EQ(http(server.port(), "GET", "/f\xff%0a").status, 400); // not UTF-8
    ASSERT_TRUE(eventually([&] {
        const auto text = std::filesystem::exists(log) ? read_file(log) : "";
        return std::count(text.begin(), text.end(), '\n') == 3;
    }));
    const auto text = read_file(log);
    for (const char c8 : text) { // ASCII only, no control character but the line ends
        const auto ch = static_cast<unsigned char>(c8);
        EXPECT_TRUE((ch >= 0x20 && ch < 0x7f) || ch == '\n') << int{ch};
    }
    // A line is written once its answer was sent: the three requests' lines may come in any
    // order. Put them in the order of the requests.
    std::vector<nlohmann::json> lines;
    std::istringstream in{text};
    for (std::string line; std::getline(in, line);)
        lines.push_back(nlohmann::json::parse(line));
    ASSERT_EQ(lines.size(), 3U);
    auto rank = [](const nlohmann::json& j) {
        return j["protocol"] == "HTTP/1.1" ? 2 : j["method"] == "GET" ? 0 : 1;
    };
    std::sort(lines.begin(), lines.end(),
              [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
    EXPECT_EQ(lines[0]["protocol"], "FERRY");
    EXPECT_EQ(lines[0]["method"], "GET");
    EXPECT_EQ(lines[0]["path"], "f");
    EXPECT_EQ(lines[0]["range"], "1-4/5");
    EXPECT_EQ(lines[0]["bytes"], 3);
    EXPECT_EQ(lines[0]["status"], "ok");
    EXPECT_TRUE(lines[0]["duration_ms"].is_number());
    EXPECT_TRUE(std::regex_match(lines[0]["time"].get<std::string>(),
                                 std::regex{R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"}));
    EXPECT_TRUE(std::regex_match(lines[0]["client"].get<std::string>(),
                                 std::regex{R"(127\.0\.0\.1:\d+)"}));
    EXPECT_EQ(lines[1]["path"], hostile); // every byte kept, escaped
    EXPECT_EQ(lines[1]["status"], "not found");
    EXPECT_TRUE(lines[1]["range"].is_null());
    EXPECT_EQ(lines[2]["protocol"], "HTTP/1.1");
    EXPECT_EQ(lines[2]["path"], "/f\xef\xbf\xbd%0a"); // the byte that is not UTF-8: U+FFFD
    EXPECT_EQ(lines[2]["status"], "400");
    EXPECT_EQ(lines[0]["conn"], lines[1]["conn"]);
    c.close();
    EXPECT_EQ(server.stop(), 0);
}

/// The Uid: or Gid: line of /proc/PID/status: real, effective, saved, file system.
std::string status_line(pid_t pid, const std::string& key) {
    std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key + ":", 0) == 0)
            return line;
    return {};
}

TEST(Operations, UserDropsPrivilegesOnceThePortsAreBound) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root";
    const passwd* nobody = ::getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    temp_dir root;
    std::filesystem::permissions(root.path(), std::filesystem::perms{0755});
    write_file(root / "f", "x");
    ferryd_process server{root.path(), {"--user", "nobody"}};
    // A request is read only once the privileges are dropped.
    auto c = test_client::connect(server.port());
    EXPECT_EQ(c.get("f").body, "x");
    const auto uid = std::to_string(nobody->pw_uid);
    const auto gid = std::to_string(nobody->pw_gid);
    const auto pid = server.process().pid();
    EXPECT_EQ(status_line(pid, "Uid"), "Uid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid);
    EXPECT_EQ(status_line(pid, "Gid"), "Gid:\t" + gid + "\t" + gid + "\t" + gid + "\t" + gid);
    // nobody's groups only (root's group 0 is gone).
    const auto groups = status_line(pid, "Groups");
    EXPECT_EQ(groups.find("\t0 "), std::string::npos) << groups;
    EXPECT_EQ(groups.find(" 0 "), std::string::npos) << groups;
    c.close();
    EXPECT_EQ(server.stop(), 0);

    // The access log was opened as root, in a directory only root may write: after logrotate
    // renamed it, nobody cannot create the new file, and the lines go on to the renamed one.
    temp_dir logs;
    std::filesystem::permissions(logs.path(), std::filesystem::perms{0755});
    const auto log = logs / "access.log";
    ferryd_process logged{root.path(), {"--user", "nobody", "--access-log", log.string()}};
    auto d = test_client::connect(logged.port());
    EXPECT_EQ(d.get("f").body, "x");
    ASSERT_TRUE(eventually([&] { return read_file(log).find("GET \"f\"") != std::string::npos; }));
    std::filesystem::rename(log, logs / "access.log.1");
    logged.process().signal(SIGHUP);
    ASSERT_TRUE(eventually([&] {
        return logged.log().find("cannot reopen the log files") != std::string::npos;
    })) << logged.log();
    EXPECT_EQ(d.get("f").body, "x");
    EXPECT_TRUE(eventually([&] {
        const auto text = read_file(logs / "access.log.1");
        return std::count(text.begin(), text.end(), '\n') == 2;
    })) << read_file(logs / "access.log.1");
    EXPECT_FALSE(std::filesystem::exists(log));
    d.close();
    EXPECT_EQ(logged.stop(), 0);

    // A root the user cannot read is refused at start, not answered "forbidden" forever.
    temp_dir secret;
    auto unreadable = run({bin("ferryd"), secret.path().string(), "--listen", "127.0.0.1:0",
                           "--user", "nobody"});
    EXPECT_EQ(unreadable.code, 1);
    EXPECT_NE(unreadable.output.find("--user nobody: cannot read the root"), std::string::npos)
        << unreadable.output;

    auto as_root = run({bin("ferryd"), root.path().string(), "--listen", "127.0.0.1:0", "--user",
                        "root"});
    EXPECT_EQ(as_root.code, 1);
    EXPECT_NE(as_root.output.find("--user root: that is root"), std::string::npos)
        << as_root.output;
    auto unknown = run({bin("ferryd"), root.path().string(), "--listen", "127.0.0.1:0", "--user",
                        "no-such-user-here"});
    EXPECT_EQ(unknown.code, 1);
    EXPECT_NE(unknown.output.find("--user no-such-user-here: no such user"), std::string::npos)
        << unknown.output;
}

} // namespace
} // namespace ferry::test
