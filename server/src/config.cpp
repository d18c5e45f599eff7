#include "ferry/server/config.hpp"

#include "ferry/protocol/frame.hpp"

#include <boost/program_options.hpp>
#include <cmath>
#include <fstream>
#include <iostream>
#include <thread>

namespace ferry::server {
namespace po = boost::program_options;

boost::asio::ip::tcp::endpoint parse_listen_address(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon + 1 == text.size())
        throw config_error("--listen " + text +
                           ": expected HOST:PORT, e.g. 127.0.0.1:7878 or [::1]:7878");
    std::string host = text.substr(0, colon);
    const std::string port_text = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    else if (host.find(':') != std::string::npos)
        throw config_error("--listen " + text +
                           ": put an IPv6 address in brackets, e.g. [::1]:7878");
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(host, ec);
    if (ec)
        throw config_error("--listen " + text + ": '" + host + "' is not an IP address literal");
    unsigned long port = 0;
    std::size_t used = 0;
    try {
        port = std::stoul(port_text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != port_text.size() || port > 65535)
        throw config_error("--listen " + text + ": port must be a number from 0 to 65535");
    return {address, static_cast<unsigned short>(port)};
}

namespace {

std::chrono::milliseconds seconds_option(const po::variables_map& vm, const char* name) {
    const double s = vm[name].as<double>();
    if (!(s > 0) || s > 1e6)
        throw config_error(std::string{"--"} + name + " must be a number of seconds above 0");
    return std::chrono::milliseconds{static_cast<std::int64_t>(std::llround(s * 1000))};
}

symlink_policy parse_symlinks(const std::string& s) {
    if (s == "deny")
        return symlink_policy::deny;
    if (s == "inside")
        return symlink_policy::inside;
    if (s == "follow")
        return symlink_policy::follow;
    throw config_error("--symlinks " + s + ": expected deny, inside or follow");
}

dotfile_policy parse_dotfiles(const std::string& s) {
    if (s == "deny")
        return dotfile_policy::deny;
    if (s == "allow")
        return dotfile_policy::allow;
    throw config_error("--dotfiles " + s + ": expected deny or allow");
}

} // namespace

command_line parse_command_line(int argc, const char* const* argv) {
    po::options_description general{"General"};
    general.add_options()("help,h", "show this help and exit")("version",
                                                               "show the version and exit")(
        "config", po::value<std::string>(),
        "read options from this INI file (the command line wins)");
    po::options_description serving{"Serving (also valid as keys in the --config file)"};
    serving.add_options()("root", po::value<std::string>()->default_value("."),
                          "directory to serve")(
        "listen", po::value<std::vector<std::string>>(),
        "address to listen on, HOST:PORT; repeatable; IPv6 in brackets ([::1]:7878); port 0 "
        "picks a free port (default 127.0.0.1:7878)")(
        "port-file", po::value<std::string>(),
        "write the bound port of each --listen, one per line, once serving")(
        "threads", po::value<unsigned>()->default_value(0),
        "I/O threads, one io_context each (0: one per core)")(
        "symlinks", po::value<std::string>()->default_value("inside"), "deny | inside | follow")(
        "dotfiles", po::value<std::string>()->default_value("deny"),
        "deny | allow: serve, STAT and list names starting with '.' (.git, .env)")(
        "max-connections", po::value<std::size_t>()->default_value(10000),
        "connections served at once; more get 'busy'")(
        "max-connections-per-ip", po::value<std::size_t>()->default_value(0),
        "connections per client address (0: no limit)")(
        "busy-retry-after", po::value<double>()->default_value(1.0),
        "seconds a 'busy' reply tells the client to wait")(
        "request-timeout", po::value<double>()->default_value(10.0),
        "seconds for a complete request frame to arrive")(
        "progress-timeout", po::value<double>()->default_value(30.0),
        "seconds a client may accept no bytes before the transfer is aborted")(
        "idle-timeout", po::value<double>()->default_value(60.0),
        "seconds an idle keep-alive connection is kept")(
        "drain-timeout", po::value<double>()->default_value(30.0),
        "seconds transfers may run on after SIGTERM/SIGINT")(
        "rate-limit", po::value<std::uint64_t>()->default_value(0),
        "bytes per second per connection (0: unlimited)")(
        "digest-threads", po::value<unsigned>()->default_value(2),
        "threads computing SHA-256 digests and directory listings")(
        "digest-cache-entries", po::value<std::size_t>()->default_value(4096),
        "digests kept, by file identity")("log-level",
                                          po::value<std::string>()->default_value("info"),
                                          "trace | debug | info | warn | error | off")(
        "access-log", po::value<std::string>(),
        "write the access log (one line per request) to this file instead of the main log");
    po::options_description all;
    all.add(general).add(serving);

    po::variables_map vm;
    try {
        // No guessing: "--port 0" must not become "--port-file 0".
        po::store(po::parse_command_line(argc, argv, all,
                                         po::command_line_style::default_style &
                                             ~po::command_line_style::allow_guessing),
                  vm);
        if (vm.count("config")) {
            const auto file = vm["config"].as<std::string>();
            std::ifstream in{file};
            if (!in)
                throw config_error("--config " + file + ": cannot open the file");
            po::store(po::parse_config_file(in, serving), vm); // earlier stores win
        }
        po::notify(vm);
    } catch (const po::error& e) {
        throw config_error(e.what());
    }

    if (vm.count("help")) {
        std::cout << "Usage: ferryd [--root DIR] [--listen HOST:PORT]... [options]\n"
                     "Serves DIR to Ferry clients (protocol "
                  << int{protocol::version} << ").\n\n"
                  << all;
        return {std::nullopt, 0};
    }
    if (vm.count("version")) {
        std::cout << "ferryd " FERRY_VERSION " (protocol " << int{protocol::version} << ")\n";
        return {std::nullopt, 0};
    }

    server_config c;
    c.root = vm["root"].as<std::string>();
    if (vm.count("listen"))
        for (const auto& l : vm["listen"].as<std::vector<std::string>>())
            c.listen.push_back(parse_listen_address(l));
    else
        c.listen.push_back(parse_listen_address("127.0.0.1:7878"));
    if (vm.count("port-file"))
        c.port_file = vm["port-file"].as<std::string>();
    c.threads = vm["threads"].as<unsigned>();
    if (c.threads == 0)
        c.threads = std::max(1U, std::thread::hardware_concurrency());
    if (c.threads > 1024)
        throw config_error("--threads must be at most 1024");
    c.symlinks = parse_symlinks(vm["symlinks"].as<std::string>());
    c.dotfiles = parse_dotfiles(vm["dotfiles"].as<std::string>());
    c.max_connections = vm["max-connections"].as<std::size_t>();
    if (c.max_connections == 0)
        throw config_error("--max-connections must be at least 1");
    c.max_connections_per_ip = vm["max-connections-per-ip"].as<std::size_t>();
    c.busy_retry_after = seconds_option(vm, "busy-retry-after");
    c.request_timeout = seconds_option(vm, "request-timeout");
    c.progress_timeout = seconds_option(vm, "progress-timeout");
    c.idle_timeout = seconds_option(vm, "idle-timeout");
    c.drain_timeout = seconds_option(vm, "drain-timeout");
    c.rate_limit = vm["rate-limit"].as<std::uint64_t>();
    c.digest_threads = std::max(1U, vm["digest-threads"].as<unsigned>());
    c.digest_cache_entries = vm["digest-cache-entries"].as<std::size_t>();
    c.log_level = vm["log-level"].as<std::string>();
    if (vm.count("access-log"))
        c.access_log = vm["access-log"].as<std::string>();
    return {std::move(c), 0};
}

} // namespace ferry::server
