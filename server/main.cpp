// ferryd: the Ferry file-serving daemon. All logic lives in ferry_server.
#include "ferry/server/config.hpp"
#include "ferry/server/log_file_sink.hpp"
#include "ferry/server/server.hpp"
#include "ferry/server/systemd.hpp"

#include <csignal>
#include <iostream>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
    using namespace ferry::server;
    // sendfile(2) has no MSG_NOSIGNAL: a peer that closes mid-body must give EPIPE, not kill us.
    std::signal(SIGPIPE, SIG_IGN);
    // A SIGHUP (a reload) that comes while ferryd starts must not end it: ignored until the
    // server handles it, once serving.
    std::signal(SIGHUP, SIG_IGN);
    try {
        auto cli = parse_command_line(argc, argv);
        if (!cli.config)
            return cli.exit_code;
        const auto& cfg = *cli.config;
        const auto level = spdlog::level::from_str(cfg.log_level); // checked by the parser
        // Under systemd, stderr may be the journal: it timestamps lines itself and reads each
        // line's priority from a `<N>` prefix.
        spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
        if (stderr_is_journal()) {
            sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
            sink->set_formatter(journal_formatter());
        }
        auto make = [&](const char* name, spdlog::sink_ptr s) {
            auto l = std::make_shared<spdlog::logger>(name, std::move(s));
            l->set_level(level);
            return l;
        };
        // A dedicated access log records every request whatever --log-level says, each line
        // flushed as written; SIGHUP reopens it. Without one, access lines are info lines of
        // the main log.
        auto access_file =
            cfg.access_log ? std::make_shared<log_file_sink>(cfg.access_log->string()) : nullptr;
        // JSON lines are the whole line (each carries its time): a sink of their own, so the
        // other loggers' lines keep their pattern.
        const bool json = cfg.access_format == access_log_format::json;
        spdlog::sink_ptr access_sink = access_file;
        if (!access_sink && json)
            access_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        if (!access_sink)
            access_sink = sink;
        if (json)
            access_sink->set_pattern("%v");
        auto access = make("access", access_sink);
        if (access_file)
            access->set_level(spdlog::level::info);
        server_loggers loggers{make("server", sink), make("session", sink), access, {}, {}};
        loggers.reopen = [access_file] {
            if (access_file)
                access_file->reopen();
            return access_file != nullptr;
        };
        loggers.set_level = [l = loggers, dedicated = access_file != nullptr](auto to) {
            l.server->set_level(to);
            l.session->set_level(to);
            if (!dedicated)
                l.access->set_level(to);
        };
        spdlog::set_default_logger(loggers.server);
        server s{cfg, loggers, take_inherited_sockets()};
        s.reload_from([args = cli.args] { return reread_config(args); });
        return s.run();
    } catch (const config_error& e) {
        std::cerr << "ferryd: " << e.what() << " (see ferryd --help)\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "ferryd: " << e.what() << "\n";
        return 1;
    }
}
