"""A local Ferry cluster: N ferryd serving one directory behind HAProxy, on 127.0.0.1.

scripts/cluster runs main(); tests/interop/cluster_test.py uses start_cluster(). The HAProxy
configuration is config/haproxy.cfg with this cluster's ports (render_haproxy_cfg): its server
lines are the pattern. Every process is stopped by its PID, never by name. Python 3 standard
library only.
"""

import argparse
import contextlib
import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(REPO, "config", "haproxy.cfg")
START_LIMIT_S = 30
STOP_LIMIT_S = 15


class Node:
    """One ferryd: `name` (n1...), its `port`, `admin` and `agent` ports, `access_log`."""

    def __init__(self, name, process, ports, access_log, log_path):
        self.name = name
        self.process = process
        self.pid = process.pid
        self.port, self.admin, self.agent = ports
        self.access_log = access_log
        self.log_path = log_path


def render_haproxy_cfg(template, front_port, stats_port, stats_socket, nodes):
    """config/haproxy.cfg with this cluster's addresses: the public and statistics ports, the
    runtime socket, and in each backend one server line per node, shaped like the template's
    first server line of that backend."""
    out = []
    pattern = None
    for line in template.splitlines():
        m = re.match(r"^(\s*)server \S+ \S+(.*)$", line)
        if m:
            if pattern is None:
                pattern = m
                for n in nodes:
                    rest = re.sub(r"\bagent-port \d+", f"agent-port {n.agent}", m.group(2))
                    rest = re.sub(r"(?<!-)\bport \d+", f"port {n.admin}", rest)
                    out.append(f"{m.group(1)}server {n.name} 127.0.0.1:{n.port}{rest}")
            continue
        pattern = None
        line = line.replace("bind 127.0.0.1:8080", f"bind 127.0.0.1:{front_port}")
        line = line.replace("bind 127.0.0.1:8404", f"bind 127.0.0.1:{stats_port}")
        line = re.sub(r"stats socket \S+", f"stats socket {stats_socket}", line)
        out.append(line)
    return "\n".join(out) + "\n"


def runtime_command(stats_socket, command):
    """One command to HAProxy's runtime API (the stats socket); its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(stats_socket)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def server_stats(stats_socket):
    """{(backend, server): row} from `show stat` (the CSV columns: status, scur...)."""
    text = runtime_command(stats_socket, "show stat").lstrip("# ")
    rows = csv.DictReader(io.StringIO(text))
    return {(r["pxname"], r["svname"]): r for r in rows
            if r.get("svname") not in (None, "FRONTEND", "BACKEND")}


def server_status(stats_socket):
    """{(backend, server): status}: UP, DOWN, MAINT, DRAIN, NOLB..."""
    return {k: r["status"] for k, r in server_stats(stats_socket).items()}


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _stop(process):
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            return process.wait(STOP_LIMIT_S)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            return process.wait(STOP_LIMIT_S)
    return process.returncode


def _start_ferryd(ferryd, root, run_dir, name, extra):
    port_file = os.path.join(run_dir, name + ".ports")
    access_log = os.path.join(run_dir, name + ".access.log")
    log_path = os.path.join(run_dir, name + ".log")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [ferryd, root, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
             "--agent-listen", "127.0.0.1:0", "--port-file", port_file,
             # HAProxy names each client in a PROXY v2 header (send-proxy-v2 in haproxy.cfg)
             "--proxy-protocol", "--trusted-proxy", "127.0.0.1/32",
             "--access-log", access_log, "--access-log-format", "json"] + list(extra),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_LIMIT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"ferryd {name} exited at start-up (status {process.returncode}): "
                               + _read(log_path))
        ports = _read(port_file).split()
        if len(ports) == 3:  # listen, admin, agent
            return Node(name, process, [int(p) for p in ports], access_log, log_path)
        if time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"ferryd {name} did not start within {START_LIMIT_S} s: "
                               + _read(log_path))
        time.sleep(0.05)


class Cluster:
    """A started cluster: `nodes`, `port` (HAProxy's public port), `stats_port`,
    `stats_socket`, `haproxy` (its process), `run_dir`, `cfg` (the configuration's path)."""

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def status(self):
        return server_status(self.stats_socket)

    def sessions(self):
        """Streams HAProxy has open to the servers, in all."""
        return sum(int(r["scur"] or 0) for r in server_stats(self.stats_socket).values())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start_cluster(ferryd, root, run_dir, n=3, port=0, stats_port=0, haproxy="/usr/sbin/haproxy",
                  ferryd_args=(), wait_up=True):
    """Starts n ferryd serving `root`, then HAProxy in front of them; stops them all (by PID)
    on leaving. With wait_up, returns once HAProxy sees every server UP."""
    c = Cluster()
    c.run_dir = run_dir
    c.nodes = []
    c.haproxy = None
    try:
        for i in range(1, n + 1):
            c.nodes.append(_start_ferryd(ferryd, root, run_dir, f"n{i}", ferryd_args))
        c.port = port or free_port()
        c.stats_port = stats_port or free_port()
        c.stats_socket = os.path.join(run_dir, "haproxy.sock")
        c.cfg = os.path.join(run_dir, "haproxy.cfg")
        with open(TEMPLATE) as f:
            template = f.read()
        with open(c.cfg, "w") as f:
            f.write(render_haproxy_cfg(template, c.port, c.stats_port, c.stats_socket, c.nodes))
        c.haproxy_log = os.path.join(run_dir, "haproxy.log")
        with open(c.haproxy_log, "ab") as log:
            c.haproxy = subprocess.Popen([haproxy, "-db", "-f", c.cfg], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_LIMIT_S
        while True:
            if c.haproxy.poll() is not None:
                raise RuntimeError("haproxy exited at start-up: " + _read(c.haproxy_log))
            try:
                states = c.status()
                if not wait_up or (states and all(s == "UP" for s in states.values())):
                    break
            except OSError:
                states = None  # not listening yet
            if time.monotonic() > deadline:
                raise RuntimeError(f"haproxy's servers not all UP within {START_LIMIT_S} s: "
                                   f"{states}\n" + _read(c.haproxy_log))
            time.sleep(0.1)
        yield c
    finally:
        if c.haproxy is not None:
            _stop(c.haproxy)
        for node in c.nodes:
            _stop(node.process)


def main():
    parser = argparse.ArgumentParser(
        prog="scripts/cluster",
        description="Serve DIR from N ferryd behind HAProxy on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("dir", help="the directory every ferryd serves")
    parser.add_argument("-n", type=int, default=3, help="how many ferryd (default 3)")
    parser.add_argument("--port", type=int, default=8080,
                        help="HAProxy's public port, both protocols (default 8080)")
    parser.add_argument("--stats-port", type=int, default=8404,
                        help="HAProxy's statistics page (default 8404)")
    parser.add_argument("--ferryd", required=True, help="the ferryd binary")
    parser.add_argument("--haproxy", default="/usr/sbin/haproxy")
    args = parser.parse_args()
    if args.n < 1:
        parser.error("-n must be at least 1")
    root = os.path.abspath(args.dir)
    if root == "/":
        parser.error("refusing to serve the whole file system (/); give a directory")

    def stop(signo, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    run_dir = tempfile.mkdtemp(prefix="ferry-cluster-")
    try:
        with start_cluster(args.ferryd, root, run_dir, args.n, args.port, args.stats_port,
                           args.haproxy) as c:
            sock = c.stats_socket
            print(f"serving {root} from {args.n} ferryd behind HAProxy, port {c.port}")
            for node in c.nodes:
                print(f"  {node.name}: pid {node.pid}, port {node.port}, admin {node.admin}, "
                      f"agent {node.agent}, access log {node.access_log}")
            print(f"""
  ferry get http://127.0.0.1:{c.port}/FILE       (HTTP: each path sticks to one node)
  ferry get -j4 ferry://127.0.0.1:{c.port}/FILE  (Ferry protocol: least connections)
  ferry bench http://127.0.0.1:{c.port}/FILE
  curl http://127.0.0.1:{c.port}/FILE
  HAProxy statistics: http://127.0.0.1:{c.stats_port}/
  maintenance of n1: curl -X POST http://127.0.0.1:{c.nodes[0].admin}/maint  (DELETE to end)
  the runtime API:   echo "set server ferry_http/n1 state drain" | socat stdio {sock}
                     python3 -c 'import socket as s; c=s.socket(s.AF_UNIX); c.connect("{sock}"); \
c.sendall(b"show servers state\\n"); print(c.makefile().read())'
  configuration and logs: {run_dir}
Ctrl-C stops everything.""", flush=True)
            while c.haproxy.poll() is None and all(n.process.poll() is None for n in c.nodes):
                time.sleep(0.5)
            print("a process ended by itself; stopping the others (logs in "
                  f"{run_dir})", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print(f"stopped (configuration and logs kept in {run_dir})", file=sys.stderr)
        return 0
    except RuntimeError as e:
        print(f"scripts/cluster: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
