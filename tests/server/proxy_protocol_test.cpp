// ferryd behind a load balancer (label: integration): --proxy-protocol with --trusted-proxy.
// The test plays the proxy from 127.0.0.1 and sends v1 or v2 headers naming forged clients.
#include "support/process.hpp"
#include "support/test_client.hpp"

#include <chrono>
#include <gtest/gtest.h>
#include <string>
#include <thread>
#include <vector>

namespace ferry::test {
namespace {

using fp::status;

std::vector<std::byte> raw(std::string_view s) {
    const auto b = std::as_bytes(std::span{s});
    return {b.begin(), b.end()};
}

/// A v2 PROXY header (TCP over IPv4) from `a.b.c.d:port` to 127.0.0.1:7878.
std::vector<std::byte> v2_tcp4(std::array<std::uint8_t, 4> client, std::uint16_t port) {
    const std::string_view signature{"\r\n\r\n\0\r\nQUIT\n", 12};
    auto out = raw(signature);
    for (const std::uint8_t b :
         {std::uint8_t{0x21}, std::uint8_t{0x11}, std::uint8_t{0}, std::uint8_t{12}, client[0],
          client[1], client[2], client[3], std::uint8_t{127}, std::uint8_t{0}, std::uint8_t{0},
          std::uint8_t{1}, static_cast<std::uint8_t>(port >> 8),
          static_cast<std::uint8_t>(port & 0xFF), std::uint8_t{0x1E}, std::uint8_t{0xC6}})
        out.push_back(std::byte{b});
    return out;
}

/// A v2 LOCAL header: the proxy's own connection (a health check).
std::vector<std::byte> v2_local() {
    return raw(std::string_view{"\r\n\r\n\0\r\nQUIT\n\x20\0\0\0", 16});
}

std::string v1_tcp4(const std::string& client, std::uint16_t port) {
    return "PROXY TCP4 " + client + " 127.0.0.1 " + std::to_string(port) + " 7878\r\n";
}

const std::string get_f = "GET /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/// A ferryd behind a proxy on 127.0.0.1, its access log in a file.
struct proxied_server {
    temp_dir root;
    temp_dir logs;
    std::optional<ferryd_process> server;
    explicit proxied_server(std::vector<std::string> extra = {},
                            const std::string& trusted = "127.0.0.1/32") {
        write_file(root / "f", "x");
        std::vector<std::string> args{"--proxy-protocol",
                                      "--trusted-proxy",
                                      "::1/128",
                                      "--trusted-proxy",
                                      trusted,
                                      "--access-log",
                                      (logs / "access.log").string(),
                                      "--request-timeout",
                                      "3"};
        args.insert(args.end(), extra.begin(), extra.end());
        server.emplace(root.path(), args);
    }
    std::uint16_t port() const { return server->port(); }
    std::string access_log() const {
        return std::filesystem::exists(logs / "access.log") ? read_file(logs / "access.log")
                                                            : std::string{};
    }
    bool logged(const std::string& text) const {
        return eventually([&] { return server->log().find(text) != std::string::npos; });
    }
    bool access_logged(const std::string& text) const {
        return eventually([&] { return access_log().find(text) != std::string::npos; });
    }
};

TEST(FerrydProxyProtocol, V1HeaderNamesTheClientOfAnHttpRequest) {
    proxied_server s;
    auto c = test_client::connect(s.port());
    const auto header = v1_tcp4("203.0.113.7", 4242);
    // In two pieces: the server waits for the rest of the line.
    c.send_raw(raw(header.substr(0, 10)));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    c.send_raw(raw(header.substr(10) + get_f));
    const auto answer = read_until_closed(c.fd());
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << answer;
    EXPECT_TRUE(s.access_logged("203.0.113.7:4242 HTTP/1.1 GET \"/f\"")) << s.access_log();
    EXPECT_EQ(s.access_log().find("127.0.0.1"), std::string::npos) << s.access_log();
    EXPECT_EQ(s.server->stop(), 0);
}

TEST(FerrydProxyProtocol, V2HeaderNamesTheClientOfAFerryRequest) {
    proxied_server s;
    auto c = test_client::connect(s.port());
    // The header and the first frame in one write: the frame is the client's, not the header's.
    auto out = v2_tcp4({203, 0, 113, 7}, 4242);
    const auto frame = encode_exact(fp::get_request{"f", 0, fp::to_end, std::nullopt});
    out.insert(out.end(), frame.begin(), frame.end());
    c.send_raw(out);
    const auto got = c.read_get();
    EXPECT_EQ(got.body, "x");
    EXPECT_EQ(got.trailer, status::ok);
    EXPECT_TRUE(s.access_logged("203.0.113.7:4242 FERRY GET \"f\"")) << s.access_log();
    // Later requests on the connection keep the client's address.
    EXPECT_EQ(c.get("f").body, "x");
    c.close();
    EXPECT_EQ(s.server->stop(), 0);
    EXPECT_EQ(s.access_log().find("127.0.0.1"), std::string::npos) << s.access_log();
}

TEST(FerrydProxyProtocol, V2LocalKeepsTheProxysAddress) {
    proxied_server s;
    auto c = test_client::connect(s.port());
    auto out = v2_local();
    const auto request = raw(get_f);
    out.insert(out.end(), request.begin(), request.end());
    c.send_raw(out);
    const auto answer = read_until_closed(c.fd());
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << answer;
    EXPECT_TRUE(s.access_logged("127.0.0.1:")) << s.access_log();
    EXPECT_EQ(s.server->stop(), 0);
}

TEST(FerrydProxyProtocol, PerIpLimitCountsTheClientNotTheProxy) {
    proxied_server s{{"--max-connections-per-ip", "1", "--busy-retry-after", "2.5"}};
    auto connect_as = [&](std::array<std::uint8_t, 4> client, std::uint16_t port) {
        auto c = test_client::connect(s.port());
        c.send_raw(v2_tcp4(client, port));
        return c;
    };
    auto admitted = [](test_client& c) {
        c.send(fp::stat_request{"f", false});
        return c.read<fp::stat_reply>().size == 1;
    };
    auto a = connect_as({203, 0, 113, 7}, 4242);
    ASSERT_TRUE(admitted(a));
    auto b = connect_as({203, 0, 113, 8}, 4243); // another client, the same proxy: admitted
    ASSERT_TRUE(admitted(b));
    auto again = test_client::connect(s.port()); // the first client again, in v1: busy
    again.send_raw(raw(v1_tcp4("203.0.113.7", 4244)));
    const auto e = again.read_error();
    EXPECT_EQ(e.code, status::busy);
    EXPECT_EQ(e.retry_after_ms, 2500U);
    EXPECT_TRUE(again.wait_closed());
    EXPECT_TRUE(s.logged("203.0.113.7:4244 refused: busy (connection limit)")) << s.server->log();
    EXPECT_EQ(s.server->stop(), 0);
}

TEST(FerrydProxyProtocol, AnUntrustedProxyIsClosedWithoutAnAnswer) {
    proxied_server s{{}, "10.0.0.0/8"};
    auto c = test_client::connect(s.port());
    c.send_raw(raw(v1_tcp4("203.0.113.7", 4242) + get_f));
    EXPECT_EQ(read_until_closed(c.fd()), "");
    EXPECT_TRUE(s.logged("127.0.0.1:")) << s.server->log();
    EXPECT_TRUE(s.logged("refused: not a trusted proxy")) << s.server->log();
    EXPECT_EQ(s.access_log(), "");
    EXPECT_EQ(s.server->stop(), 0);
}

TEST(FerrydProxyProtocol, ARequestWithoutAHeaderIsClosed) {
    proxied_server s;
    auto c = test_client::connect(s.port());
    c.send_raw(raw(get_f));
    EXPECT_EQ(read_until_closed(c.fd()), "");
    EXPECT_TRUE(s.logged("closed: malformed PROXY header: not a PROXY protocol header"))
        << s.server->log();
    // A Ferry frame without a header too: closed (reset, as its bytes were not read), no answer.
    auto ferry = test_client::connect(s.port());
    ferry.send(fp::stat_request{"f", false});
    EXPECT_EQ(read_until_closed(ferry.fd()), "");
    EXPECT_TRUE(s.logged("[conn 2] 127.0.0.1:")) << s.server->log();
    EXPECT_EQ(s.access_log(), "");
    EXPECT_EQ(s.server->stop(), 0);
}

TEST(FerrydProxyProtocol, AMalformedOrLateHeaderIsClosed) {
    proxied_server s;
    auto c = test_client::connect(s.port());
    c.send_raw(raw("PROXY TCP4 203.0.113.300 127.0.0.1 4242 7878\r\n" + get_f));
    EXPECT_EQ(read_until_closed(c.fd()), "");
    EXPECT_TRUE(s.logged("closed: malformed PROXY header: v1: an address is not an IPv4 literal"))
        << s.server->log();
    auto bad_v2 = v2_tcp4({203, 0, 113, 7}, 4242);
    bad_v2[12] = std::byte{0x23}; // command 3
    auto c2 = test_client::connect(s.port());
    c2.send_raw(bad_v2);
    EXPECT_EQ(read_until_closed(c2.fd()), "");
    EXPECT_TRUE(s.logged("v2: the command is neither LOCAL nor PROXY")) << s.server->log();
    // Half a header, then nothing: closed at the request timeout (3 s).
    auto late = test_client::connect(s.port());
    late.send_raw(raw("PROXY TCP4 203.0.113.7"));
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(read_until_closed(late.fd()), "");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
    EXPECT_TRUE(s.logged("closed: no PROXY header within the request timeout")) << s.server->log();
    EXPECT_EQ(s.access_log(), "");
    EXPECT_EQ(s.server->stop(), 0);
}

TEST(FerrydProxyProtocol, OptionsAreCheckedStrictly) {
    temp_dir root;
    const auto r = root.path().string();
    auto without = run({bin("ferryd"), r, "--proxy-protocol", "--check-config"});
    EXPECT_EQ(without.code, 2);
    EXPECT_NE(without.output.find("--proxy-protocol needs --trusted-proxy"), std::string::npos)
        << without.output;
    for (const std::string bad : {"10.0.0.1/8", "10.0.0.0", "10.0.0.0/33", "10.0.0.0/08", "::1/129",
                                  "localhost/32", "10.0.0.0/-1", "10.0.0.0/8 "}) {
        auto b =
            run({bin("ferryd"), r, "--proxy-protocol", "--trusted-proxy", bad, "--check-config"});
        EXPECT_EQ(b.code, 2) << bad;
        EXPECT_NE(b.output.find("--trusted-proxy " + bad + ":"), std::string::npos) << b.output;
    }
    auto ok = run({bin("ferryd"), r, "--proxy-protocol", "--trusted-proxy", "10.0.0.0/8",
                   "--trusted-proxy", "::1/128", "--trusted-proxy", "0.0.0.0/0", "--check-config"});
    EXPECT_EQ(ok.code, 0) << ok.output;
    // In a --config file, the two may be lines apart.
    write_file(root / "ferryd.conf", "proxy-protocol = true\nlog-level = info\n"
                                     "trusted-proxy = 10.0.0.0/8\ntrusted-proxy = ::1/128\n");
    auto file =
        run({bin("ferryd"), r, "--config", (root / "ferryd.conf").string(), "--check-config"});
    EXPECT_EQ(file.code, 0) << file.output;
}

} // namespace
} // namespace ferry::test
