// ferryd's configuration: every option, its default, and how the command line and the INI
// file (--config) are read. config/ferryd.conf documents the same keys.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ferry::server {

/// How symbolic links below the root are treated.
enum class symlink_policy {
    deny,   ///< no path may pass through a symlink
    inside, ///< symlinks are followed while they resolve beneath the root (the kernel checks)
    follow, ///< symlinks are followed anywhere; `..` in the request still may not leave the root
};

/// Whether dotfiles (a path segment or name starting with '.': `.git`, `.env`) are served.
enum class dotfile_policy {
    deny,  ///< not served, not STATed (forbidden) and not listed
    allow, ///< served like any other name
};

/// How access lines are written.
enum class access_log_format {
    text, ///< `[conn 7] 127.0.0.1:41234 FERRY GET "path" ...` (docs/operations.md)
    json, ///< one JSON object per line, every field escaped
};

/// An address block, "10.0.0.0/8" or "::1/128": the proxies trusted to send a PROXY header.
struct ip_network {
    boost::asio::ip::address address; ///< with no bits set past the prefix
    unsigned prefix = 0;              ///< 0..32 for IPv4, 0..128 for IPv6
    /// Whether `a` is inside (an IPv4-mapped IPv6 address counts as its IPv4 address).
    bool contains(const boost::asio::ip::address& a) const;
    bool operator==(const ip_network&) const = default;
};

struct server_config {
    std::filesystem::path root; ///< required: ferryd never serves a directory by default
    std::vector<boost::asio::ip::tcp::endpoint> listen; ///< default 127.0.0.1:7878
    std::optional<std::filesystem::path> port_file;
    unsigned threads = 0; ///< 0: one per core
    std::size_t max_connections = 10000;
    std::size_t max_connections_per_ip = 0; ///< 0: no per-address limit
    std::size_t max_listings = 32; ///< directory listings in progress at once (both protocols)
    std::chrono::milliseconds busy_retry_after{1000};
    std::chrono::milliseconds request_timeout{10000};
    std::chrono::milliseconds progress_timeout{30000};
    std::chrono::milliseconds idle_timeout{60000};
    std::chrono::milliseconds drain_timeout{30000};
    std::uint64_t rate_limit = 0; ///< bytes/s per connection; 0: unlimited
    symlink_policy symlinks = symlink_policy::inside;
    dotfile_policy dotfiles = dotfile_policy::deny;
    unsigned digest_threads = 2;
    std::size_t digest_cache_entries = 4096;
    std::size_t small_file_cache = 16 << 20; ///< bytes; 0: off
    std::string log_level = "info";
    std::optional<std::filesystem::path> access_log;
    access_log_format access_format = access_log_format::text;
    /// The admin listener (/metrics, /healthz, /readyz); none by default.
    std::optional<boost::asio::ip::tcp::endpoint> admin_listen;
    /// The HAProxy agent-check responder (agent.hpp); none by default.
    std::optional<boost::asio::ip::tcp::endpoint> agent_listen;
    /// The user to run as after binding, when started as root.
    std::optional<std::string> user;
    /// Every listener expects a PROXY protocol header (v1 or v2) first, from a trusted proxy.
    bool proxy_protocol = false;
    /// The proxies allowed to connect when proxy_protocol is on (required then; reloadable).
    std::vector<ip_network> trusted_proxies;

    bool operator==(const server_config&) const = default;
};

/// A configuration the user got wrong: the message says what and how to fix it.
struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Parses "HOST:PORT": an IPv4 literal, or an IPv6 literal in brackets ("[::1]:7878"). The
/// config_error's message starts with `text`.
boost::asio::ip::tcp::endpoint parse_listen_address(const std::string& text);

/// Parses "ADDRESS/PREFIX" strictly: an IP literal, a prefix length in range without leading
/// zeros, and no bits set past the prefix ("10.0.0.1/8" is an error: 10.0.0.0/8 was meant?).
/// The config_error's message starts with `text`.
ip_network parse_ip_network(const std::string& text);

/// What the command line asked for: a configuration to run, or an exit after --help, --version
/// or --check-config.
struct command_line {
    std::optional<server_config> config;
    int exit_code = 0;
    std::vector<std::string> args; ///< the arguments, for reread_config
};

/// Reads the command line and, if --config is given, that INI file (the command line wins).
/// The root is the argument DIR or --root (both given and different is an error), else the
/// file's `root`; there is no default. Numbers are read strictly ("-1" is an error, not a huge
/// count). Prints --help and --version itself; --check-config also checks that the root is a
/// directory, prints "ferryd: configuration ok" and returns exit code 0. Throws config_error
/// for anything invalid, whose message names FILE:LINE for an error in the file.
command_line parse_command_line(int argc, const char* const* argv);

/// Reads the configuration again from the same arguments (command_line::args) and the --config
/// file they name, read anew: what SIGHUP does. Throws config_error as parse_command_line does
/// (an error in the file names FILE:LINE); checks the root like --check-config.
server_config reread_config(const std::vector<std::string>& args);

/// The settings a running server can take from a reread configuration: limits, timeouts, the
/// rate limit and the log level. Returns `next` with every other setting (root, listeners,
/// threads, caches, log files...) put back to its value in `running`, and in `kept` the names
/// of those that differed, which only a restart applies.
server_config reloadable_part(const server_config& running, server_config next,
                              std::vector<std::string>& kept);

/// "rate-limit 0 -> 1048576, log-level info -> debug": the reloadable settings that differ.
std::string describe_changes(const server_config& before, const server_config& after);

} // namespace ferry::server
