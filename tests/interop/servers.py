"""Servers for the interop tests: ferryd and nginx, each started on 127.0.0.1 in a temp dir and
stopped by its PID (never by name). Python 3 standard library only.

    with start_ferryd(ferryd_path, root, run_dir) as server: ... server.port ...
    with start_nginx(root, run_dir) as server: ...
"""

import contextlib
import os
import signal
import socket
import subprocess
import time

START_LIMIT_S = 30  # generous: a Debug+ASan ferryd starts in well under a second
STOP_LIMIT_S = 15


class Server:
    """A started server: `name`, `port`, `pid`, `log_path`; `log()` reads what it wrote."""

    def __init__(self, name, process, port, log_path):
        self.name = name
        self.process = process
        self.port = port
        self.pid = process.pid
        self.log_path = log_path

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def running(self):
        return self.process.poll() is None

    def stop(self):
        """SIGTERM to this server's PID, then SIGKILL to the same PID if it outlives the limit.
        Returns the exit status."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                return self.process.wait(STOP_LIMIT_S)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                return self.process.wait(STOP_LIMIT_S)
        return self.process.returncode


def _wait_until(predicate, process, what, log_path):
    deadline = time.monotonic() + START_LIMIT_S
    while not predicate():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited at start-up (status {process.returncode}): "
                               + _read(log_path))
        if time.monotonic() > deadline:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(STOP_LIMIT_S)
            raise RuntimeError(f"{what} did not start within {START_LIMIT_S} s: " + _read(log_path))
        time.sleep(0.01)  # polling for the port file / the listener, as ferryd_process does


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


@contextlib.contextmanager
def start_ferryd(ferryd, root, run_dir, extra=()):
    """ferryd on 127.0.0.1 port 0, its port read from --port-file (one port per line)."""
    port_file = os.path.join(run_dir, "ferryd.port")
    args = [ferryd, "--root", root, "--listen", "127.0.0.1:0", "--port-file", port_file,
            "--log-level", os.environ.get("FERRYD_LOG", "warn"), "--drain-timeout", "2", *extra]
    with start_with_port_file(args, port_file, os.path.join(run_dir, "ferryd.log")) as server:
        yield server


@contextlib.contextmanager
def start_with_port_file(args, port_file, log_path):
    """Runs `args` (a ferryd command line, possibly behind a wrapper such as setpriv, whose
    --port-file is `port_file`) and waits for its first port; stdout and stderr go to log_path."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        _wait_until(lambda: os.path.exists(port_file) and _read(port_file).endswith("\n"),
                    process, "ferryd", log_path)
        port = int(_read(port_file).splitlines()[0])
        server = Server("ferryd", process, port, log_path)
    except BaseException:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(STOP_LIMIT_S)
        raise
    try:
        yield server
    finally:
        server.stop()


def _free_port():
    """A port that was free a moment ago: bind port 0, read it, close. Another process may take
    it before nginx binds it: start_nginx retries."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_conf(run_dir, root, port, autoindex_format="json"):
    # A minimal static server, plus what makes nginx comparable with ferryd's defaults:
    # - dotfiles are denied (ferryd --dotfiles deny) and symbolic links are not followed (ferryd
    #   follows only those that stay inside the root; the one case where that differs, a
    #   relative link inside the root, says so in its table row), so the same traversal table
    #   holds for both;
    # - `charset utf-8`: without it nginx's HTML listing declares no charset and a browser
    #   shows UTF-8 names as windows-1252 (the Chromium suite catches exactly that);
    # - the MIME types, so Content-Type is by extension as ferryd's is;
    # - temp paths in the run dir: Debian's (/var/lib/nginx) are not writable unless root.
    return f"""daemon off;
master_process on;
worker_processes 1;
pid {run_dir}/nginx.pid;
error_log {run_dir}/error.log;
events {{}}
http {{
    access_log off;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    charset utf-8;
    client_body_temp_path {run_dir}/body;
    proxy_temp_path {run_dir}/proxy;
    fastcgi_temp_path {run_dir}/fastcgi;
    uwsgi_temp_path {run_dir}/uwsgi;
    scgi_temp_path {run_dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        autoindex on;
        autoindex_format {autoindex_format};
        disable_symlinks on;
        location ~ /\\. {{ deny all; }}
    }}
}}
"""


@contextlib.contextmanager
def start_nginx(root, run_dir, autoindex_format="json", nginx="/usr/sbin/nginx", attempts=5):
    """nginx (master + 1 worker, not daemonised) on 127.0.0.1:PORT, PORT found by binding port 0
    and closing it; a start that loses the port to another process is retried on a new one.
    When run as root the worker runs as nobody: `root` and its parents must be world-readable."""
    conf = os.path.join(run_dir, "nginx.conf")
    log_path = os.path.join(run_dir, "error.log")
    pid_file = os.path.join(run_dir, "nginx.pid")
    for attempt in range(attempts):
        port = _free_port()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pid_file)
        with open(conf, "w") as f:
            f.write(nginx_conf(run_dir, root, port, autoindex_format))
        with open(log_path, "ab") as log:
            process = subprocess.Popen([nginx, "-p", run_dir, "-c", conf, "-e", log_path],
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            # nginx writes its pid file after it has bound its listeners: a connection could
            # reach another process that took the port, the pid file cannot.
            _wait_until(lambda: _read(pid_file).strip() == str(process.pid), process, "nginx",
                        log_path)
        except RuntimeError:
            if attempt + 1 < attempts and "Address already in use" in _read(log_path):
                continue
            raise
        server = Server("nginx", process, port, log_path)
        try:
            yield server
        finally:
            server.stop()
        return
