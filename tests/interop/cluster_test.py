#!/usr/bin/env python3
"""Scale-out (label integration): a real HAProxy in front of three ferryd, configured from
config/haproxy.cfg by scripts/cluster.py, all on 127.0.0.1, every process stopped by its PID.

  - the configuration is valid (haproxy -c);
  - over HTTP the same path always lands on the same node, and different paths spread;
  - `ferry get -j4` through HAProxy, HTTP and the Ferry protocol, is byte-identical;
  - maintenance of one node (POST /maint on its admin listener, seen by HAProxy's agent check)
    makes HAProxy stop sending it requests, and DELETE /maint brings it back.

    cluster_test.py --ferryd PATH --ferry PATH [--haproxy PATH]
"""

import argparse
import collections
import filecmp
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import cluster  # noqa: E402  (scripts/cluster.py)

AGENT_WAIT_S = 20  # the agent checks every 2 s; generous for a loaded machine


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def get(c, path):
    """One request, once HAProxy has released the previous one: hash-balance-factor 150 sends
    a request elsewhere while its node has more than 1.5 times the average of the open streams,
    and at a load of one, the stream of the request before may still count."""
    check(eventually(lambda: c.sessions() == 0, 10), "HAProxy still has streams open")
    with urllib.request.urlopen(c.url(path), timeout=30) as r:
        return r.status, r.read()


def served(node, method="GET"):
    """{path: count} of the requests this node answered, from its JSON access log."""
    counts = collections.Counter()
    try:
        with open(node.access_log) as f:
            for line in f:
                entry = json.loads(line)
                if entry["method"] == method:
                    counts[entry["path"]] += 1
    except FileNotFoundError:
        pass
    return counts


def eventually(predicate, limit_s=AGENT_WAIT_S):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def admin(node, method, path):
    req = urllib.request.Request(f"http://127.0.0.1:{node.admin}{path}", method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


def test_config_is_valid(args, work):
    r = subprocess.run([args.haproxy, "-c", "-f", cluster.TEMPLATE], capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0, f"haproxy -c -f config/haproxy.cfg: {r.stdout}{r.stderr}")


def test_cluster(args, work):
    root = os.path.join(work, "root")
    os.mkdir(root)
    files = {"a.bin": os.urandom(300 * 1024), "big.bin": os.urandom(8 << 20)}
    for i in range(12):
        files[f"f{i}.txt"] = os.urandom(1000 + i)
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    run_dir = os.path.join(work, "run")
    os.mkdir(run_dir)
    with cluster.start_cluster(args.ferryd, root, run_dir, n=3, haproxy=args.haproxy,
                               ferryd_args=["--threads", "1"]) as c:
        try:
            cluster_checks(args, work, c, files)
        except BaseException:
            sys.stderr.write(f"--- haproxy.cfg ---\n{open(c.cfg).read()}--- haproxy log ---\n"
                             f"{cluster._read(c.haproxy_log)}--- status ---\n{c.status()}\n")
            for n in c.nodes:
                sys.stderr.write(f"--- {n.name} log ---\n{cluster._read(n.log_path)}")
            raise


def cluster_checks(args, work, c, files):
    # The same path, again and again: one node answers all of it.
    for _ in range(12):
        status, body = get(c, "/a.bin")
        check(status == 200 and body == files["a.bin"], "GET /a.bin through HAProxy")
    # A node writes its access line once the answer is sent: wait until all 12 are there.
    eventually(lambda: sum(served(n)["/a.bin"] for n in c.nodes) >= 12, 10)
    by_node = {n.name: served(n)["/a.bin"] for n in c.nodes}
    check(sorted(by_node.values()) == [0, 0, 12], f"/a.bin went to more than one node: {by_node}")
    home = next(n for n in c.nodes if by_node[n.name] == 12)

    # Different paths spread over the nodes, each path on one node only.
    for _ in range(2):
        for i in range(12):
            status, body = get(c, f"/f{i}.txt")
            check(status == 200 and body == files[f"f{i}.txt"], f"GET /f{i}.txt")
    owners = collections.defaultdict(set)
    for n in c.nodes:
        for path, count in served(n).items():
            owners[path].add(n.name)
    check(all(len(o) == 1 for o in owners.values()), f"a path on several nodes: {dict(owners)}")
    used = {next(iter(owners[f"/f{i}.txt"])) for i in range(12)}
    check(len(used) > 1, f"12 paths all went to {used}")
    print(f"ok: /a.bin always on {home.name}; 12 paths over {sorted(used)}")

    # HAProxy names the client in a PROXY v2 header: the node logs the client's own port, not
    # the port of HAProxy's connection to it.
    check(eventually(lambda: c.sessions() == 0, 10), "HAProxy still has streams open")
    with socket.create_connection(("127.0.0.1", c.port), timeout=30) as s:
        client_port = s.getsockname()[1]
        s.sendall(b"GET /a.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
    clients = [json.loads(line)["client"] for line in open(home.access_log)]
    check(eventually(lambda: f"127.0.0.1:{client_port}" in
                     [json.loads(line)["client"] for line in open(home.access_log)], 10),
          f"the client 127.0.0.1:{client_port} is not in {home.name}'s log: {clients[-3:]}")
    print(f"ok: {home.name} logged the client's own address, 127.0.0.1:{client_port}")

    # Segmented downloads through HAProxy, both protocols, byte-identical.
    for scheme in ("http", "ferry"):
        out = os.path.join(work, "out-" + scheme)
        os.mkdir(out)
        r = subprocess.run([args.ferry, "get", "-j4", f"{scheme}://127.0.0.1:{c.port}/big.bin"],
                           cwd=out, capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f"ferry get -j4 {scheme}: exit {r.returncode}: {r.stderr}")
        check(filecmp.cmp(os.path.join(out, "big.bin"), os.path.join(work, "root", "big.bin"),
                          shallow=False), f"ferry get -j4 {scheme}: the bytes differ")
    print("ok: ferry get -j4 through HAProxy (http, ferry) is byte-identical")

    # Maintenance of the node that holds /a.bin: once the agent said so, HAProxy sends it
    # nothing, and /a.bin moves to another node.
    check(admin(home, "POST", "/maint") == "maintenance on\n", "POST /maint")
    key = ("ferry_http", home.name)
    check(eventually(lambda: c.status().get(key, "").startswith("MAINT")),
          f"HAProxy did not put {home.name} in maintenance: {c.status()}")
    before = sum(served(home).values())
    for _ in range(6):
        status, body = get(c, "/a.bin")
        check(status == 200 and body == files["a.bin"], "GET /a.bin during maintenance")
    for i in range(12):
        check(get(c, f"/f{i}.txt")[0] == 200, f"GET /f{i}.txt during maintenance")
    check(sum(served(home).values()) == before,
          f"{home.name} in maintenance still got requests: {served(home)}")
    print(f"ok: {home.name} in maintenance ({c.status()[key]}) gets no request")

    check(admin(home, "DELETE", "/maint") == "maintenance off\n", "DELETE /maint")
    check(eventually(lambda: c.status().get(key) == "UP"),
          f"{home.name} did not come back: {c.status()}")
    # (UP may show a moment before the node is back on the hash ring: ask until it is.)
    check(eventually(lambda: get(c, "/a.bin")[0] == 200 and served(home)["/a.bin"] > 12),
          f"/a.bin did not return to {home.name}: {c.status()}")
    print(f"ok: {home.name} back in service, /a.bin on it again")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ferryd", required=True)
    parser.add_argument("--ferry", required=True)
    parser.add_argument("--haproxy", default="/usr/sbin/haproxy")
    args = parser.parse_args()
    if not os.access(args.haproxy, os.X_OK):
        print(f"FAIL: {args.haproxy} is missing: scripts/deps installs haproxy")
        return 1
    failed = 0
    for test in (test_config_is_valid, test_cluster):
        with tempfile.TemporaryDirectory(prefix="ferry-cluster-test-") as work:
            try:
                test(args, work)
                print(f"PASS {test.__name__}")
            except (Failure, OSError, RuntimeError, subprocess.TimeoutExpired) as e:
                failed += 1
                print(f"FAIL {test.__name__}: {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
