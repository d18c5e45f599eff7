#include "ferry/server/config.hpp"

#include "ferry/protocol/frame.hpp"
#include "ferry/protocol/text.hpp"
#include "ferry/transport/strict_option.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cmath>
#include <fstream>
#include <iostream>
#include <spdlog/fmt/fmt.h>
#include <spdlog/common.h>
#include <thread>

namespace ferry::server {
namespace po = boost::program_options;

boost::asio::ip::tcp::endpoint parse_listen_address(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon + 1 == text.size())
        throw config_error(text + ": expected HOST:PORT, e.g. 127.0.0.1:7878 or [::1]:7878");
    std::string host = text.substr(0, colon);
    const std::string port_text = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    else if (host.find(':') != std::string::npos)
        throw config_error(text + ": put an IPv6 address in brackets, e.g. [::1]:7878");
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(host, ec);
    if (ec)
        throw config_error(text + ": '" + host + "' is not an IP address literal");
    const auto port = protocol::parse_unsigned(port_text, 65535);
    if (!port)
        throw config_error(text + ": port must be a number from 0 to 65535");
    return {address, static_cast<unsigned short>(*port)};
}

namespace {

/// An address's bytes, an IPv4 address in the first four.
boost::asio::ip::address_v6::bytes_type address_bytes(const boost::asio::ip::address& a) {
    if (a.is_v6())
        return a.to_v6().to_bytes();
    boost::asio::ip::address_v6::bytes_type out{};
    const auto v4 = a.to_v4().to_bytes();
    std::copy(v4.begin(), v4.end(), out.begin());
    return out;
}

bool bit_set(const boost::asio::ip::address_v6::bytes_type& b, unsigned i) {
    return (b[i / 8] & (0x80U >> (i % 8))) != 0;
}

} // namespace

ip_network parse_ip_network(const std::string& text) {
    const auto slash = text.find('/');
    if (slash == std::string::npos)
        throw config_error(text + ": expected ADDRESS/PREFIX, e.g. 10.0.0.0/8 or ::1/128");
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address(text.substr(0, slash), ec);
    if (ec || text.find('%') != std::string::npos)
        throw config_error(text + ": '" + text.substr(0, slash) + "' is not an IP address literal");
    const unsigned bits = address.is_v6() ? 128 : 32;
    const auto prefix_text = text.substr(slash + 1);
    const auto prefix = protocol::parse_unsigned(prefix_text, bits);
    if (!prefix || (prefix_text.size() > 1 && prefix_text[0] == '0'))
        throw config_error(text + ": the prefix length must be a number from 0 to " +
                           std::to_string(bits));
    const auto bytes = address_bytes(address);
    for (auto i = static_cast<unsigned>(*prefix); i < bits; ++i)
        if (bit_set(bytes, i))
            throw config_error(text + ": bits are set past the prefix length; write the network "
                                      "with them cleared, e.g. 10.0.0.0/8");
    return {address, static_cast<unsigned>(*prefix)};
}

bool ip_network::contains(const boost::asio::ip::address& a) const {
    auto candidate = a;
    if (candidate.is_v6() && candidate.to_v6().is_v4_mapped())
        candidate = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, candidate.to_v6());
    if (candidate.is_v4() != address.is_v4())
        return false;
    const auto want = address_bytes(address);
    const auto got = address_bytes(candidate);
    for (unsigned i = 0; i < prefix; ++i)
        if (bit_set(want, i) != bit_set(got, i))
            return false;
    return true;
}

namespace {

using transport::strict;
using transport::strict_value;

/// How a message names an option: "--threads" on the command line, "threads" in a file.
struct option_names {
    const char* prefix;
    std::string operator()(const char* name) const { return prefix + std::string{name}; }
};

template <class T>
T number(const po::variables_map& vm, const char* name) {
    return vm[name].as<strict<T>>().value;
}

std::chrono::milliseconds seconds_option(const po::variables_map& vm, const char* name,
                                         const option_names& opt) {
    const double s = number<double>(vm, name);
    if (!(s > 0) || s > 1e6)
        throw config_error(opt(name) + " must be a number of seconds above 0 and at most 1000000");
    // Rounded up: a duration above 0 never becomes 0 ms (which would abort every wait at once).
    return std::chrono::milliseconds{static_cast<std::int64_t>(std::ceil(s * 1000))};
}

dotfile_policy parse_dotfiles(const std::string& s, const option_names& opt) {
    if (s == "deny")
        return dotfile_policy::deny;
    if (s == "allow")
        return dotfile_policy::allow;
    throw config_error(opt("dotfiles") + " " + s + ": expected deny or allow");
}

symlink_policy parse_symlinks(const std::string& s, const option_names& opt) {
    if (s == "deny")
        return symlink_policy::deny;
    if (s == "inside")
        return symlink_policy::inside;
    if (s == "follow")
        return symlink_policy::follow;
    throw config_error(opt("symlinks") + " " + s + ": expected deny, inside or follow");
}

/// The options valid both on the command line and as keys of the --config file.
po::options_description serving_options() {
    po::options_description serving{"Serving (also valid as keys in the --config file)"};
    serving.add_options()("root", po::value<std::string>(),
                          "directory to serve (or give it as the argument DIR)")(
        "listen", po::value<std::vector<std::string>>(),
        "address to listen on, HOST:PORT; repeatable; IPv6 in brackets ([::1]:7878); port 0 "
        "picks a free port (default 127.0.0.1:7878)")(
        "port-file", po::value<std::string>(),
        "write the bound port of each --listen, one per line, once serving")(
        "threads", strict_value<unsigned>()->default_value({0}),
        "I/O threads, one io_context each (0: one per core; at most 1024)")(
        "symlinks", po::value<std::string>()->default_value("inside"), "deny | inside | follow")(
        "dotfiles", po::value<std::string>()->default_value("deny"),
        "deny | allow: serve, STAT and list names starting with '.' (.git, .env)")(
        "max-connections", strict_value<std::size_t>()->default_value({10000}),
        "connections served at once; more get 'busy'")(
        "max-connections-per-ip", strict_value<std::size_t>()->default_value({0}),
        "connections per client address (0: no limit)")(
        "max-listings", strict_value<std::size_t>()->default_value({32}),
        "directory listings in progress at once (HTTP and Ferry LIST; a quarter per client "
        "address); more get 'busy'")("busy-retry-after",
                                     strict_value<double>()->default_value({1.0}),
                                     "seconds a 'busy' reply tells the client to wait")(
        "request-timeout", strict_value<double>()->default_value({10.0}),
        "seconds for a complete request frame to arrive")(
        "progress-timeout", strict_value<double>()->default_value({30.0}),
        "seconds a client may accept no bytes before the transfer is aborted")(
        "idle-timeout", strict_value<double>()->default_value({60.0}),
        "seconds an idle keep-alive connection is kept")(
        "drain-timeout", strict_value<double>()->default_value({30.0}),
        "seconds transfers may run on after SIGTERM/SIGINT")(
        "rate-limit", strict_value<std::uint64_t>()->default_value({0}),
        "bytes per second per connection (0: unlimited)")(
        "digest-threads", strict_value<unsigned>()->default_value({2}),
        "threads computing SHA-256 digests (at least 1; listings have their own)")(
        "digest-cache-entries", strict_value<std::size_t>()->default_value({4096}),
        "digests kept, by file identity")(
        "small-file-cache", strict_value<std::size_t>()->default_value({16 << 20}),
        "bytes of small files (up to 16 KiB each) kept in memory, by version (0: none)")(
        "log-level", po::value<std::string>()->default_value("info"),
        "trace | debug | info | warn | error | off")(
        "access-log", po::value<std::string>(),
        "write the access log (one line per request) to this file instead of the main log")(
        "access-log-format", po::value<std::string>()->default_value("text"),
        "text | json: access lines as text, or one JSON object per line")(
        "admin-listen", po::value<std::string>(),
        "serve /metrics (Prometheus), /healthz and /readyz on this HOST:PORT (off by default; "
        "never the public port)")(
        "agent-listen", po::value<std::string>(),
        "answer HAProxy agent checks on this HOST:PORT: 'ready NN%', 'drain' or 'maint' (off "
        "by default)")(
        "user", po::value<std::string>(),
        "when started as root: run as this user (and its groups) once the ports are bound")(
        "proxy-protocol", po::bool_switch(),
        "every listener expects a PROXY protocol header (v1 or v2) first, from a "
        "--trusted-proxy; its client address is the connection's")(
        "trusted-proxy", po::value<std::vector<std::string>>(),
        "ADDRESS/PREFIX of load balancers allowed to send a PROXY header (10.0.0.0/8, "
        "::1/128); repeatable; required with --proxy-protocol");
    return serving;
}

/// The configuration `vm` describes, every value checked; the root is left empty if none is
/// given (the caller decides whether that is an error).
server_config to_config(const po::variables_map& vm, const option_names& opt) {
    server_config c;
    if (vm.count("root"))
        c.root = vm["root"].as<std::string>();
    if (vm.count("listen"))
        for (const auto& l : vm["listen"].as<std::vector<std::string>>()) {
            try {
                c.listen.push_back(parse_listen_address(l));
            } catch (const config_error& e) {
                throw config_error(opt("listen") + " " + e.what());
            }
        }
    else
        c.listen.push_back(parse_listen_address("127.0.0.1:7878"));
    if (vm.count("port-file"))
        c.port_file = vm["port-file"].as<std::string>();
    c.threads = number<unsigned>(vm, "threads");
    if (c.threads > 1024)
        throw config_error(opt("threads") + " must be at most 1024");
    if (c.threads == 0)
        c.threads = std::max(1U, std::thread::hardware_concurrency());
    c.symlinks = parse_symlinks(vm["symlinks"].as<std::string>(), opt);
    c.dotfiles = parse_dotfiles(vm["dotfiles"].as<std::string>(), opt);
    c.max_connections = number<std::size_t>(vm, "max-connections");
    if (c.max_connections == 0)
        throw config_error(opt("max-connections") + " must be at least 1");
    c.max_connections_per_ip = number<std::size_t>(vm, "max-connections-per-ip");
    c.max_listings = number<std::size_t>(vm, "max-listings");
    if (c.max_listings == 0)
        throw config_error(opt("max-listings") + " must be at least 1");
    c.busy_retry_after = seconds_option(vm, "busy-retry-after", opt);
    c.request_timeout = seconds_option(vm, "request-timeout", opt);
    c.progress_timeout = seconds_option(vm, "progress-timeout", opt);
    c.idle_timeout = seconds_option(vm, "idle-timeout", opt);
    c.drain_timeout = seconds_option(vm, "drain-timeout", opt);
    c.rate_limit = number<std::uint64_t>(vm, "rate-limit");
    c.digest_threads = number<unsigned>(vm, "digest-threads");
    if (c.digest_threads == 0)
        throw config_error(opt("digest-threads") + " must be at least 1");
    c.digest_cache_entries = number<std::size_t>(vm, "digest-cache-entries");
    c.small_file_cache = number<std::size_t>(vm, "small-file-cache");
    c.log_level = vm["log-level"].as<std::string>();
    if (spdlog::level::from_str(c.log_level) == spdlog::level::off && c.log_level != "off")
        throw config_error(opt("log-level") + " " + c.log_level +
                           ": expected trace, debug, info, warn, error or off");
    if (vm.count("access-log"))
        c.access_log = vm["access-log"].as<std::string>();
    const auto& format = vm["access-log-format"].as<std::string>();
    if (format == "json")
        c.access_format = access_log_format::json;
    else if (format != "text")
        throw config_error(opt("access-log-format") + " " + format + ": expected text or json");
    if (vm.count("admin-listen")) {
        try {
            c.admin_listen = parse_listen_address(vm["admin-listen"].as<std::string>());
        } catch (const config_error& e) {
            throw config_error(opt("admin-listen") + " " + e.what());
        }
        for (const auto& l : c.listen)
            if (l.port() != 0 && l == *c.admin_listen)
                throw config_error(opt("admin-listen") +
                                   " must differ from every listen address: metrics are not "
                                   "for the public port");
    }
    if (vm.count("agent-listen")) {
        try {
            c.agent_listen = parse_listen_address(vm["agent-listen"].as<std::string>());
        } catch (const config_error& e) {
            throw config_error(opt("agent-listen") + " " + e.what());
        }
        auto others = c.listen;
        if (c.admin_listen)
            others.push_back(*c.admin_listen);
        for (const auto& l : others)
            if (l.port() != 0 && l == *c.agent_listen)
                throw config_error(opt("agent-listen") +
                                   " must differ from every listen address and from " +
                                   opt("admin-listen"));
    }
    if (vm.count("user")) {
        c.user = vm["user"].as<std::string>();
        if (c.user->empty())
            throw config_error(opt("user") + " must name a user");
    }
    c.proxy_protocol = vm["proxy-protocol"].as<bool>();
    if (vm.count("trusted-proxy"))
        for (const auto& t : vm["trusted-proxy"].as<std::vector<std::string>>()) {
            try {
                c.trusted_proxies.push_back(parse_ip_network(t));
            } catch (const config_error& e) {
                throw config_error(opt("trusted-proxy") + " " + e.what());
            }
        }
    return c;
}

std::string trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string_view::npos)
        return {};
    return std::string{s.substr(first, s.find_last_not_of(" \t\r") - first + 1)};
}

/// Reads an INI file of `key = value` lines (`#` starts a comment, as does `;` at the start of
/// a line; no sections), checking each line as it goes so that an error names FILE:LINE: an
/// unknown key, a value its option refuses, a key given twice that takes one value.
po::parsed_options read_config_file(const std::string& file, const po::options_description& desc) {
    std::ifstream in{file};
    if (!in)
        throw config_error("--config " + file + ": cannot open the file");
    po::parsed_options parsed{&desc};
    std::string line;
    for (unsigned number = 1; std::getline(in, line); ++number) {
        const auto where = file + ":" + std::to_string(number) + ": ";
        const auto text = trim(line.substr(0, line.find('#')));
        if (text.empty() || text.front() == ';')
            continue;
        if (text.front() == '[')
            throw config_error(where + "sections are not used (" + text + ")");
        const auto equals = text.find('=');
        if (equals == std::string::npos)
            throw config_error(where + "expected KEY = VALUE, not '" + text + "'");
        const auto key = trim(text.substr(0, equals));
        if (!desc.find_nothrow(key, false))
            throw config_error(where + "unknown option '" + key + "'");
        po::option o{key, {trim(text.substr(equals + 1))}};
        o.original_tokens = {text};
        parsed.options.push_back(o);
        // Check this line as the whole file will be: with the earlier lines of the same key.
        po::parsed_options same_key{&desc};
        for (const auto& earlier : parsed.options)
            if (earlier.string_key == key)
                same_key.options.push_back(earlier);
        try {
            po::variables_map vm;
            po::store(same_key, vm);
            po::notify(vm);
            (void)to_config(vm, option_names{""});
        } catch (const po::error& e) {
            throw config_error(where + e.what());
        } catch (const config_error& e) {
            throw config_error(where + e.what());
        }
    }
    if (in.bad())
        throw config_error("--config " + file + ": cannot read the file");
    return parsed;
}

/// The root must name an existing directory (what --check-config checks; the server opens it).
void check_root(const std::filesystem::path& root) {
    std::error_code ec;
    const auto status = std::filesystem::status(root, ec);
    if (ec)
        throw config_error("root " + root.string() + ": " + ec.message());
    if (!std::filesystem::is_directory(status))
        throw config_error("root " + root.string() + ": not a directory");
}

} // namespace

namespace {

/// Every option ferryd takes, grouped as --help shows them.
struct option_set {
    po::options_description general{"General"};
    po::options_description serving = serving_options();
    po::options_description all;
    po::options_description with_argument;
    po::positional_options_description positional;

    option_set() {
        general.add_options()("help,h", "show this help and exit")("version",
                                                                   "show the version and exit")(
            "config", po::value<std::string>(),
            "read options from this INI file (the command line wins); SIGHUP reads it again")(
            "check-config", "check the options, the --config file, the root and the listen "
                            "addresses, then exit: 0 if all is well, 2 with the error; binds "
                            "nothing");
        all.add(general).add(serving);
        with_argument.add(all);
        with_argument.add_options()("root-argument", po::value<std::string>(), "");
        positional.add("root-argument", 1);
    }
};

po::variables_map store_command_line(const std::vector<std::string>& args, const option_set& o) {
    po::variables_map vm;
    try {
        // No guessing: "--port 0" must not become "--port-file 0".
        po::store(po::command_line_parser(args)
                      .options(o.with_argument)
                      .positional(o.positional)
                      .style(po::command_line_style::default_style &
                             ~po::command_line_style::allow_guessing)
                      .run(),
                  vm);
    } catch (const po::error& e) {
        throw config_error(e.what());
    }
    return vm;
}

/// The configuration of a command line stored in `vm`, with its --config file read.
server_config configure(po::variables_map& vm, const option_set& o) {
    try {
        // The argument DIR is the command line's root, so it wins over the file's.
        if (vm.count("root-argument")) {
            const std::filesystem::path argument = vm["root-argument"].as<std::string>();
            const std::filesystem::path option =
                vm.count("root") ? vm["root"].as<std::string>() : "";
            if (!option.empty() &&
                (option / "").lexically_normal() != (argument / "").lexically_normal())
                throw config_error("two roots: --root " + option.string() + " and the argument " +
                                   argument.string() + "; give one");
            po::parsed_options root{&o.all};
            root.options.push_back(po::option{"root", {argument.string()}});
            po::store(root, vm);
        }
        if (vm.count("config"))
            po::store(read_config_file(vm["config"].as<std::string>(), o.serving), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw config_error(e.what());
    }
    server_config c = to_config(vm, option_names{"--"});
    // Checked on the whole configuration, not per line of the file: the two may be apart.
    if (c.proxy_protocol && c.trusted_proxies.empty())
        throw config_error("--proxy-protocol needs --trusted-proxy: name the load balancers' "
                           "addresses, e.g. --trusted-proxy 10.0.0.0/8");
    if (c.root.empty())
        throw config_error("no root directory: give one, e.g. ferryd /srv/files");
    return c;
}

} // namespace

command_line parse_command_line(int argc, const char* const* argv) {
    const option_set o;
    std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
    auto vm = store_command_line(args, o);
    if (vm.count("help")) {
        std::cout
            << "Usage: ferryd [options] DIR\n"
               "       ferryd --config FILE [options] [DIR]\n"
               "Serves the directory DIR (or --root DIR, or root in the --config file) to "
               "Ferry clients\n(protocol "
            << int{protocol::version}
            << ") and HTTP/1.1 clients on the same port. There is no default: without a root, "
            << "ferryd refuses to start.\n\n"
            << o.all;
        return {std::nullopt, 0, {}};
    }
    if (vm.count("version")) {
        std::cout << "ferryd " FERRY_VERSION " (protocol " << int{protocol::version} << ")\n";
        return {std::nullopt, 0, {}};
    }
    server_config c = configure(vm, o);
    if (vm.count("check-config")) {
        check_root(c.root);
        std::cout << "ferryd: configuration ok\n";
        return {std::nullopt, 0, {}};
    }
    return {std::move(c), 0, std::move(args)};
}

server_config reread_config(const std::vector<std::string>& args) {
    const option_set o;
    auto vm = store_command_line(args, o);
    server_config c = configure(vm, o);
    check_root(c.root);
    return c;
}

server_config reloadable_part(const server_config& running, server_config next,
                              std::vector<std::string>& kept) {
    auto keep = [&](auto member, const char* name) {
        if (!(running.*member == next.*member)) {
            kept.emplace_back(name);
            next.*member = running.*member;
        }
    };
    keep(&server_config::root, "root");
    keep(&server_config::listen, "listen");
    keep(&server_config::port_file, "port-file");
    keep(&server_config::threads, "threads");
    keep(&server_config::symlinks, "symlinks");
    keep(&server_config::dotfiles, "dotfiles");
    keep(&server_config::digest_threads, "digest-threads");
    keep(&server_config::digest_cache_entries, "digest-cache-entries");
    keep(&server_config::small_file_cache, "small-file-cache");
    keep(&server_config::access_log, "access-log");
    keep(&server_config::access_format, "access-log-format");
    keep(&server_config::admin_listen, "admin-listen");
    keep(&server_config::agent_listen, "agent-listen");
    keep(&server_config::user, "user");
    keep(&server_config::proxy_protocol, "proxy-protocol");
    return next;
}

std::string describe_changes(const server_config& a, const server_config& b) {
    std::string out;
    auto seconds = [](std::chrono::milliseconds d) {
        return fmt::format("{}", static_cast<double>(d.count()) / 1000.0);
    };
    auto change = [&out](const char* name, const std::string& from, const std::string& to) {
        if (from == to)
            return;
        if (!out.empty())
            out += ", ";
        out += fmt::format("{} {} -> {}", name, from, to);
    };
    change("max-connections", std::to_string(a.max_connections),
           std::to_string(b.max_connections));
    change("max-connections-per-ip", std::to_string(a.max_connections_per_ip),
           std::to_string(b.max_connections_per_ip));
    change("max-listings", std::to_string(a.max_listings), std::to_string(b.max_listings));
    change("busy-retry-after", seconds(a.busy_retry_after), seconds(b.busy_retry_after));
    change("request-timeout", seconds(a.request_timeout), seconds(b.request_timeout));
    change("progress-timeout", seconds(a.progress_timeout), seconds(b.progress_timeout));
    change("idle-timeout", seconds(a.idle_timeout), seconds(b.idle_timeout));
    change("drain-timeout", seconds(a.drain_timeout), seconds(b.drain_timeout));
    change("rate-limit", std::to_string(a.rate_limit), std::to_string(b.rate_limit));
    change("log-level", a.log_level, b.log_level);
    auto networks = [](const std::vector<ip_network>& list) {
        std::string text;
        for (const auto& n : list)
            text +=
                (text.empty() ? "" : ",") + n.address.to_string() + "/" + std::to_string(n.prefix);
        return text.empty() ? std::string{"none"} : text;
    };
    change("trusted-proxy", networks(a.trusted_proxies), networks(b.trusted_proxies));
    return out.empty() ? "nothing changed" : out;
}

} // namespace ferry::server
