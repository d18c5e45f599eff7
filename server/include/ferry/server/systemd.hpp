// systemd: what ferryd does for its service manager, through libsystemd. Everything here is a
// no-op outside systemd: without NOTIFY_SOCKET no notification is sent, without LISTEN_FDS no
// socket is inherited, without JOURNAL_STREAM the log keeps its own format.
//
// - Type=notify: READY=1 once serving, STOPPING=1 on the drain, STATUS= lines for
//   `systemctl status` (sd_notify(3)).
// - Socket activation: the listening sockets systemd holds (ferryd.socket) replace --listen,
//   so `systemctl restart` never refuses a connection (sd_listen_fds_with_names(3)); the one
//   named `admin` replaces --admin-listen, the one named `agent` --agent-listen.
// - The journal: when stderr is journald's stream, each line starts with its syslog priority
//   (`<6>`) and carries no timestamp of its own (sd-daemon(3)).
// docs/operations.md, "Socket activation and restarts", tells the whole story.
#pragma once

#include "ferry/server/session_registry.hpp"
#include "ferry/transport/asio.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <optional>
#include <spdlog/formatter.h>
#include <string>
#include <vector>

namespace ferry::server {

/// The sockets the service manager passed (LISTEN_FDS), by name (FileDescriptorName=).
struct inherited_sockets {
    std::vector<int> data;    ///< listening TCP sockets to serve (any name but `admin`, `agent`)
    std::optional<int> admin; ///< the socket named `admin`: the admin listener, not a data one
    std::optional<int> agent; ///< the socket named `agent`: the HAProxy agent-check responder
};

/// Takes the sockets passed to this process (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES) and unsets
/// those variables; none passed: every field empty. Throws std::runtime_error naming the
/// descriptor when one is not a listening TCP socket (or not open at all).
inherited_sockets take_inherited_sockets();

/// A listener of `ctx` on a dup() of the inherited listening socket `fd`: every I/O thread
/// accepts from the one queue of the socket. Closing it leaves `fd` (and the socket) open.
/// Throws std::system_error.
asio::ip::tcp::acceptor adopt_listener(asio::io_context& ctx, int fd);

/// sd_notify(3): "READY=1", "STOPPING=1" and STATUS= lines; no-op without NOTIFY_SOCKET. A
/// failure to send is ignored (systemd cannot be told). Callable from any thread.
void notify_ready(const std::string& status);
void notify_stopping(const std::string& status);
void notify_status(const std::string& status);

/// Reports "draining: N connection(s) left" (STATUS=) every second, until cancelled.
asio::awaitable<void> report_drain(const connection_limits& limits);

/// Whether stderr is the journal's stream (JOURNAL_STREAM names stderr's device and inode).
bool stderr_is_journal();

/// The journal's line format: `<6>[server] message`, the syslog priority of the level first
/// (trace and debug 7, info 6, warn 4, error 3, critical 2) and no timestamp.
std::unique_ptr<spdlog::formatter> journal_formatter();

} // namespace ferry::server
