#!/usr/bin/env python3
"""Scale-out (label integration): a real HAProxy in front of three ferryd, configured from
config/haproxy.cfg by scripts/cluster.py, all on 127.0.0.1, every process stopped by its PID.

  - the configuration is valid (haproxy -c);
  - over HTTP the same path always lands on the same node, and different paths spread;
  - `ferry get -j4` through HAProxy, HTTP and the Ferry protocol, is byte-identical;
  - maintenance of one node (POST /maint on its admin listener, seen by HAProxy's agent check)
    makes HAProxy stop sending it requests, and DELETE /maint brings it back.

With --failover (ctest cluster_haproxy_failover), the nodes rate-limited to 1 MiB/s per
connection so that transfers are in flight:
  - a node SIGKILLed while `ferry get -j4` of 32 MiB and six 4 MiB downloads run costs zero
    failed downloads: every ferry exits 0 with the right bytes, HAProxy marks the node DOWN;
  - a node drained by SIGTERM (its agent says `drain`) finishes its transfer in flight, and of
    12 paths only its own move to other nodes; the others keep their node.

    cluster_test.py --ferryd PATH --ferry PATH [--haproxy PATH] [--failover]
"""

import argparse
import collections
import csv
import filecmp
import io
import json
import os
import signal
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


def get(c, path, open_streams=0):
    """One request, once HAProxy has released the previous one: hash-balance-factor 150 sends
    a request elsewhere while its node has more than 1.5 times the average of the open streams,
    and at a load of one, the stream of the request before may still count. `open_streams`:
    how many streams may stay open (transfers in flight that the caller started)."""
    check(eventually(lambda: c.sessions() <= open_streams, 10), "HAProxy still has streams open")
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


# --- Failover (cluster_haproxy_failover): a node killed, a node drained ---------------------

RATE = 1 << 20  # --rate-limit: 1 MiB/s per connection, so that transfers are still running


def write_files(root, files):
    os.mkdir(root)
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)


def with_cluster(args, work, root, ferryd_args, checks):
    run_dir = os.path.join(work, "run")
    os.mkdir(run_dir)
    with cluster.start_cluster(args.ferryd, root, run_dir, n=3, haproxy=args.haproxy,
                               ferryd_args=ferryd_args) as c:
        try:
            checks(c)
        except BaseException:
            sys.stderr.write(f"--- haproxy log ---\n{cluster._read(c.haproxy_log)}--- status ---\n"
                             f"{c.status()}\n")
            for n in c.nodes:
                sys.stderr.write(f"--- {n.name} log ---\n{cluster._read(n.log_path)}")
            raise


def streams(c, node):
    """Streams HAProxy has open to `node`, both backends."""
    rows = cluster.server_stats(c.stats_socket)
    return sum(int(rows[(b, node.name)]["scur"] or 0) for b in ("ferry_http", "ferry_tcp"))


def start_get(args, out, url, *options):
    """`ferry get` in the background: (process, output path, stderr path)."""
    os.makedirs(out, exist_ok=True)
    err = open(os.path.join(out, "stderr"), "wb")
    p = subprocess.Popen([args.ferry, "get", "-q", url, *options], cwd=out,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    err.close()
    return p, os.path.join(out, url.rsplit("/", 1)[1]), os.path.join(out, "stderr")


def finished(root, name, job, limit_s=90):
    """The download ended with status 0 and the bytes of root/name."""
    p, path, err = job
    try:
        code = p.wait(limit_s)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise Failure(f"ferry get {name} still running after {limit_s} s")
    check(code == 0, f"ferry get {name}: exit {code}: {cluster._read(err)}")
    check(filecmp.cmp(path, os.path.join(root, name), shallow=False),
          f"ferry get {name}: the bytes differ")


def admin_state(c, node, backend="ferry_http"):
    """srv_admin_state from `show servers state` (0x08: forced drain, from the agent)."""
    lines = cluster.runtime_command(c.stats_socket, f"show servers state {backend}").splitlines()
    names = lines[1].lstrip("# ").split()
    for line in lines[2:]:
        row = dict(zip(names, line.split()))
        if row.get("srv_name") == node.name:
            return int(row["srv_admin_state"])
    raise Failure(f"{backend}/{node.name} not in show servers state")


def owner(c, path, open_streams=0):
    """The node that answers a GET of `path` now (from the access logs)."""
    before = {n.name: served(n)[path] for n in c.nodes}
    check(eventually(lambda: c.sessions() <= open_streams, 10), "HAProxy still has streams open")
    req = urllib.request.Request(c.url(path), headers={"Range": "bytes=0-0"})
    with urllib.request.urlopen(req, timeout=30) as r:
        check(r.status == 206 and len(r.read()) == 1, f"GET {path} bytes=0-0: {r.status}")
    grew = []
    check(eventually(lambda: grew.extend(n.name for n in c.nodes
                                         if served(n)[path] > before[n.name]) or grew, 5),
          f"no node logged GET {path}")
    return grew[0]


def test_backend_killed(args, work):
    """`ferry get -j4` of a 32 MiB file and six 4 MiB downloads at once, through HAProxy, at
    1 MiB/s per connection; a node serving some of them is SIGKILLed after 2 s. Every download
    retries (HAProxy answers 502/503 or cuts the stream; ferry resumes, HAProxy redispatches to
    a live node) and ends with exit 0 and the right bytes; HAProxy marks the node DOWN."""
    root = os.path.join(work, "root")
    files = {"big.bin": os.urandom(32 << 20)}
    for i in range(6):
        files[f"g{i}.bin"] = os.urandom(4 << 20)
    write_files(root, files)

    def checks(c):
        jobs = {"big.bin": start_get(args, os.path.join(work, "out-big"), c.url("/big.bin"),
                                     "-j4", "--retries", "20")}
        for i in range(6):
            jobs[f"g{i}.bin"] = start_get(args, os.path.join(work, f"out-g{i}"),
                                          c.url(f"/g{i}.bin"), "--retries", "20")
        # Each ferry starts (HEAD, then its ranges): wait for the streams, then about 1 s more,
        # a quarter through the 4 MiB files (4 s each), an eighth through big.bin.
        check(eventually(lambda: c.sessions() >= 7, 20),
              f"the downloads did not start: {c.sessions()} streams")
        time.sleep(1)
        load = {n.name: streams(c, n) for n in c.nodes}
        check(sum(1 for v in load.values() if v) >= 2, f"the downloads are not spread: {load}")
        victim = max(c.nodes, key=lambda n: load[n.name])
        running = sum(1 for p, _, _ in jobs.values() if p.poll() is None)
        check(running == len(jobs), f"only {running} of {len(jobs)} downloads still running")
        os.kill(victim.pid, signal.SIGKILL)
        victim.process.wait(10)
        print(f"SIGKILL {victim.name} with {load[victim.name]} streams on it (streams: {load})")
        for name, job in jobs.items():
            finished(root, name, job)
        key = ("ferry_http", victim.name)
        check(eventually(lambda: c.status().get(key, "").startswith("DOWN")),
              f"HAProxy did not mark {victim.name} DOWN: {c.status()}")
        text = cluster.runtime_command(c.stats_socket, "show stat").lstrip("# ")
        be = next(r for r in csv.DictReader(io.StringIO(text))
                  if r["pxname"] == "ferry_http" and r["svname"] == "BACKEND")
        print(f"ok: {victim.name} killed mid-run: 7 downloads, 0 failed, all byte-identical; "
              f"HAProxy marked it {c.status()[key]} (ferry_http: "
              + ", ".join(f"{k} {be[k]}" for k in ("econ", "eresp", "wretr", "wredis",
                                                   "hrsp_5xx")) + ")")

    with_cluster(args, work, root, ["--threads", "1", "--rate-limit", str(RATE)], checks)


def test_drain(args, work):
    """A 4 MiB download at 512 KiB/s from node X; X gets SIGTERM (--drain-timeout 60): its
    agent says `drain`, HAProxy stops sending it requests, the download finishes from X, and of
    12 paths only X's move: the others keep their node."""
    root = os.path.join(work, "root")
    files = {"d.bin": os.urandom(4 << 20)}  # one request (the default --chunk-size): 8 s
    for i in range(12):
        files[f"p{i}.txt"] = os.urandom(2000 + i)
    write_files(root, files)

    def checks(c):
        paths = [f"/p{i}.txt" for i in range(12)]
        before = {p: owner(c, p) for p in paths}
        x_name = owner(c, "/d.bin")
        x = next(n for n in c.nodes if n.name == x_name)
        check(eventually(lambda: c.sessions() == 0, 10), "HAProxy still has streams open")
        job = start_get(args, os.path.join(work, "out-d"), c.url("/d.bin"))
        check(eventually(lambda: streams(c, x) == 1, 15),
              f"the download is not on {x.name}: {[streams(c, n) for n in c.nodes]}")
        time.sleep(1)
        os.kill(x.pid, signal.SIGTERM)
        key = ("ferry_http", x.name)
        # The agent's `drain` puts the server in forced drain (admin state bit 0x08: off the
        # hash ring, its streams go on); /readyz 503 soon marks it DOWN too, which does not cut
        # its streams either.
        check(eventually(lambda: admin_state(c, x) & 0x08),
              f"HAProxy did not see {x.name}'s drain: {c.status()}")
        seen = f"admin state {admin_state(c, x):#x}, {c.status()[key]}"
        check(job[0].poll() is None, "the download ended before the checks")
        after = {p: owner(c, p, open_streams=1) for p in paths}
        check(job[0].poll() is None, "the download ended before the checks were done")
        moved = {p: (before[p], after[p]) for p in paths if before[p] != after[p]}
        check(all(before[p] == x.name for p in moved),
              f"paths not on {x.name} moved: {moved}")
        check(all(after[p] != x.name for p in paths), f"{x.name} draining got a request: {after}")
        mine = [p for p in paths if before[p] == x.name]
        check(mine, f"none of the 12 paths was on {x.name}: {before}")
        finished(root, "d.bin", job)
        check(x.process.wait(30) == 0, f"{x.name} exit status {x.process.returncode}")
        full = [e for e in (json.loads(line) for line in open(x.access_log))
                if e["path"] == "/d.bin" and e["bytes"] == len(files["d.bin"])]
        check(len(full) == 1, f"{x.name} did not send the whole of /d.bin while draining")
        print(f"ok: {x.name} drained ({seen}): its transfer finished from it, byte-identical; "
              f"its {len(mine)} of 12 paths moved, the other {12 - len(mine)} kept their node")

    with_cluster(args, work, root, ["--threads", "1", "--rate-limit", str(RATE // 2),
                                    "--drain-timeout", "60"], checks)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ferryd", required=True)
    parser.add_argument("--ferry", required=True)
    parser.add_argument("--haproxy", default="/usr/sbin/haproxy")
    parser.add_argument("--failover", action="store_true",
                        help="run the failover tests (a node killed, a node drained) instead")
    args = parser.parse_args()
    args.ferry = os.path.abspath(args.ferry)  # `ferry get` runs in its output directory
    if not os.access(args.haproxy, os.X_OK):
        print(f"FAIL: {args.haproxy} is missing: scripts/deps installs haproxy")
        return 1
    failed = 0
    tests = (test_backend_killed, test_drain) if args.failover else (test_config_is_valid,
                                                                      test_cluster)
    for test in tests:
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
