#!/usr/bin/env python3
"""Interop tests: real HTTP clients from Debian against ferryd (and, to prove the harness, against
nginx started the same way). Python 3 standard library only.

    interop_test.py --server ferryd --ferryd build/dev/bin/ferryd --suite clients|raw|chromium
    interop_test.py --server nginx --suite clients|raw|chromium

Suites:
  clients   curl (whole files, -I validators, -r ranges and 416, -C - resume, keep-alive,
            Want-Repr-Digest, 503 + Retry-After when busy, --path-as-is traversal attempts with
            a secret beside the root),
            wget (-c resume, exit codes), aria2c (-x4 -s4 -k1M --checksum), urllib (GET, HEAD,
            Range, If-None-Match/If-Modified-Since -> 304, If-Match -> 412, If-Range, the JSON
            listing)
  raw       a table of malformed and hostile requests written on a raw socket, with the exact
            status each gets (docs/http.md): smuggling attempts, obs-fold, Host, versions,
            limits, methods, target decoding, ranges
  chromium  the directory listing loaded in headless Chromium, its DOM checked (links, names,
            escaping, UTF-8, sizes, dates, order, no dotfiles, links not made by script);
            exit 77 (a skipped CTest test) when Chromium is not installed or cannot start,
            saying so on stderr

Every case prints one line (PASS/FAIL/SKIP and its name); the exit status is 1 when one failed,
and the last lines name the failed cases. Every client runs with a timeout; every server is
stopped by its PID; the temp dir is removed at the end (kept with --keep, for a post-mortem).

Where nginx and ferryd answer differently, the table row carries both statuses and says why.
"""

import argparse
import base64
import email.utils
import hashlib
import html.parser
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servers import start_ferryd, start_nginx  # noqa: E402

CLIENT_LIMIT_S = 60  # per client run: generous, only to turn a hang into a failure
SOCKET_LIMIT_S = 10
SKIP = 77  # CTest SKIP_RETURN_CODE

EMPTY, ONE, SMALL, BIG = "empty.bin", "one.bin", "4k.bin", "big.bin"
ODD = "snow \u2603 <ferryx>&\"'.txt"  # spaces, UTF-8, and every HTML metacharacter
INNER = "sub/inner.bin"
REGULAR = [EMPTY, ONE, SMALL, BIG, ODD]  # the regular files in the root


class CaseFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CaseFailed(message)


def expect_eq(actual, expected, what):
    if actual != expected:
        raise CaseFailed(f"{what}: expected {shown(expected)}, got {shown(actual)}")


def shown(value):
    """A value for a failure line: long bytes by length and digest, not dumped."""
    if isinstance(value, bytes) and len(value) > 64:
        return f"{len(value)} bytes, sha256 {sha256(value)[:16]}..."
    return repr(value)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def quote(path):
    """The URL path of a name relative to the root (UTF-8, every reserved byte escaped)."""
    return "/" + urllib.parse.quote(path, safe="/")


# ---- the tree served ----------------------------------------------------------------------


class Tree:
    """TMP/root (served), TMP/secret.txt beside it (must never be served), TMP/work (client
    outputs). Files hold random bytes; the markers let every response be searched for them."""

    def __init__(self, base):
        self.base = base
        self.root = os.path.join(base, "root")
        self.work = os.path.join(base, "work")
        self.secret_marker = b"FERRY-SECRET-" + os.urandom(8).hex().encode()
        self.dotenv_marker = b"FERRY-DOTENV-" + os.urandom(8).hex().encode()
        os.makedirs(os.path.join(self.root, "sub"))
        os.makedirs(self.work)
        self.data = {
            EMPTY: b"",
            ONE: os.urandom(1),
            SMALL: os.urandom(4096),
            BIG: os.urandom(3 * 1024 * 1024 + 12345),  # 4 aria2 pieces of 1 MiB, the last short
            ODD: os.urandom(777),
            INNER: os.urandom(1000),
            "mut.bin": os.urandom(100),
        }
        for name, data in self.data.items():
            self.write(name, data)
        self.write(".env", b"TOKEN=" + self.dotenv_marker + b"\n")
        with open(os.path.join(base, "secret.txt"), "wb") as f:
            f.write(self.secret_marker + b"\n")
        os.symlink("4k.bin", os.path.join(self.root, "alias.bin"))  # inside the root
        os.symlink("../secret.txt", os.path.join(self.root, "escape.txt"))  # leaves the root
        os.symlink(os.path.join(self.root, "4k.bin"), os.path.join(self.root, "abs.bin"))
        # nginx's worker runs as nobody when the tests run as root.
        os.chmod(base, 0o755)

    def write(self, name, data):
        with open(os.path.join(self.root, name), "wb") as f:
            f.write(data)

    def mtime(self, name):
        return int(os.stat(os.path.join(self.root, name)).st_mtime)

    def leaked(self, blob):
        """What of the secrets a response carried, if anything."""
        return [m for m in (self.secret_marker, self.dotenv_marker) if m in blob]


# ---- running clients ----------------------------------------------------------------------


class Clients:
    def __init__(self, tree, server):
        self.tree = tree
        self.server = server
        home = os.path.join(tree.base, "home")  # no ~/.curlrc, ~/.wgetrc, ~/.aria2
        os.makedirs(home, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        self.env["HOME"] = home
        self.count = 0

    def run(self, args, check_rc=None):
        try:
            r = subprocess.run(args, capture_output=True, timeout=CLIENT_LIMIT_S, env=self.env,
                               cwd=self.tree.work, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CaseFailed(f"{args[0]} did not finish within {CLIENT_LIMIT_S} s: {args}")
        if check_rc is not None and r.returncode != check_rc:
            raise CaseFailed(f"{args[0]} exit {r.returncode}, expected {check_rc}: "
                             f"{r.stderr.decode(errors='replace').strip()[:500]}")
        return r

    def out(self, tag):
        self.count += 1
        return os.path.join(self.tree.work, f"{self.count}-{tag}")

    def curl(self, *args, check_rc=0):
        return self.run(["curl", "-q", "-sS", "--max-time", str(CLIENT_LIMIT_S - 10), *args],
                        check_rc)

    def curl_get(self, target, *extra, path_as_is=False):
        """GET target: (status, headers, body)."""
        body_file, head_file = self.out("body"), self.out("head")
        r = self.curl(*(["--path-as-is"] if path_as_is else []), *extra, "-D", head_file,
                      "-o", body_file, "-w", "%{http_code}", self.server.url(target))
        status, headers = parse_head(read(head_file))
        expect_eq(int(r.stdout), status, "curl %{http_code} vs the status line")
        return status, headers, read(body_file)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def parse_head(blob):
    """The last response head in a curl -D dump: (status, {lower-case name: [values]})."""
    text = blob.decode("latin-1")
    heads = [h for h in text.split("\r\n\r\n") if h.startswith("HTTP/")]
    check(heads, f"no response head in {text!r}")
    lines = heads[-1].split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status, headers


def header(headers, name):
    values = headers.get(name.lower(), [])
    check(len(values) == 1, f"expected exactly one {name} header, got {values}")
    return values[0]


# ---- the case runner ----------------------------------------------------------------------


class Runner:
    def __init__(self):
        self.passed, self.failed, self.skipped = [], [], []

    def case(self, name, fn, *args):
        try:
            fn(*args)
        except CaseFailed as e:
            self.failed.append(name)
            print(f"FAIL {name}: {e}", flush=True)
        except Exception:  # a harness error is a failure of this case, not of the run
            self.failed.append(name)
            print(f"FAIL {name}: {traceback.format_exc()}", flush=True)
        else:
            self.passed.append(name)
            print(f"PASS {name}", flush=True)

    def skip(self, name, why):
        self.skipped.append(name)
        print(f"SKIP {name}: {why}", flush=True)

    def summary(self, server):
        print(f"{server}: {len(self.passed)} passed, {len(self.failed)} failed, "
              f"{len(self.skipped)} skipped", flush=True)
        for name in self.failed:
            print(f"FAILED: {name}", flush=True)
        return 1 if self.failed else 0


# ---- suite: clients -------------------------------------------------------------------------


def whole_file_cases(run, c, tree):
    for name in REGULAR + [INNER]:
        def whole(name=name):
            status, _, body = c.curl_get(quote(name))
            expect_eq(status, 200, "status")
            expect_eq(sha256(body), sha256(tree.data[name]), "sha256 of the body")
        run.case(f"curl GET {name!r}", whole)

    for name in REGULAR:
        def head(name=name):
            head_file = c.out("head")
            r = c.curl("-I", "-D", head_file, "-o", c.out("body"), "-w", "%{http_code}",
                       c.server.url(quote(name)))
            expect_eq(r.stdout, b"200", "status")
            _, h = parse_head(read(head_file))
            expect_eq(header(h, "content-length"), str(len(tree.data[name])), "Content-Length")
            etag = header(h, "etag")
            check(etag.startswith('"') and etag.endswith('"') and len(etag) > 2,
                  f"ETag {etag!r} is not a strong entity-tag")
            expect_eq(header(h, "accept-ranges"), "bytes", "Accept-Ranges")
            expect_eq(header(h, "last-modified"),
                      email.utils.formatdate(tree.mtime(name), usegmt=True), "Last-Modified")
            want = "text/plain" if name.endswith(".txt") else "application/octet-stream"
            expect_eq(header(h, "content-type").split(";")[0], want, "Content-Type")
            # GET carries the same validators as HEAD.
            _, g, _ = c.curl_get(quote(name))
            for field in ("content-length", "etag", "last-modified", "content-type"):
                expect_eq(header(g, field), header(h, field), f"GET's {field} vs HEAD's")
        run.case(f"curl -I {name!r}: Content-Length, strong ETag, Accept-Ranges, "
                 f"Last-Modified, Content-Type", head)

    def etag_changes():
        _, before, _ = c.curl_get("/mut.bin")
        new = os.urandom(100)  # same size: only the ETag can tell the versions apart
        tree.write("mut.bin", new)
        t = tree.mtime("mut.bin") + 10
        os.utime(os.path.join(tree.root, "mut.bin"), (t, t))
        status, after, body = c.curl_get("/mut.bin")
        expect_eq(status, 200, "status")
        expect_eq(body, new, "the new content")
        check(header(after, "etag") != header(before, "etag"),
              f"ETag {header(after, 'etag')} did not change with the file")
    run.case("curl: a rewritten file (same size, new mtime) gets a new ETag", etag_changes)

    def repr_digest():
        status, h, body = c.curl_get(quote(BIG), "-H", "Want-Repr-Digest: sha-256=1")
        expect_eq(status, 200, "status")
        want = "sha-256=:" + base64.b64encode(hashlib.sha256(tree.data[BIG]).digest()).decode()
        expect_eq(header(h, "repr-digest"), want + ":", "Repr-Digest")
        expect_eq(sha256(body), sha256(tree.data[BIG]), "sha256 of the body")
    if c.server.name == "ferryd":
        run.case("curl -H 'Want-Repr-Digest: sha-256=1' -> Repr-Digest of the file", repr_digest)
    else:
        run.skip("curl Want-Repr-Digest", "nginx does not implement RFC 9530")

    def keep_alive():
        a, b = c.out("a"), c.out("b")
        r = c.curl("-w", "%{num_connects} ", c.server.url("/4k.bin"), "-o", a,
                   c.server.url(quote(BIG)), "-o", b)
        expect_eq(r.stdout.split(), [b"1", b"0"], "connections opened per transfer")
        expect_eq(sha256(read(a)), sha256(tree.data[SMALL]), "first body")
        expect_eq(sha256(read(b)), sha256(tree.data[BIG]), "second body")
    run.case("curl: two files on one keep-alive connection", keep_alive)

    def not_found():
        status, _, _ = c.curl_get("/no-such-file.bin")
        expect_eq(status, 404, "status")
    run.case("curl GET /no-such-file.bin -> 404", not_found)

    def query_ignored():
        status, _, body = c.curl_get("/4k.bin?x=1&y=%2F..%2F")
        expect_eq(status, 200, "status")
        expect_eq(body, tree.data[SMALL], "body")
    run.case("curl: the query is ignored", query_ignored)

    def redirect():
        r = c.curl("-o", c.out("body"), "-w", "%{http_code} %{redirect_url}", c.server.url("/sub"))
        status, location = r.stdout.decode().split(" ", 1)
        expect_eq(status, "301", "status")
        expect_eq(urllib.parse.urlsplit(location).path, "/sub/", "the redirect's path")
    run.case("curl GET /sub -> 301 to /sub/", redirect)


def range_cases(run, c, tree):
    size = len(tree.data[BIG])
    table = [  # (file, curl -r, first, last): 206 with bytes [first, last]
        (BIG, "0-99", 0, 99),
        (BIG, "-100", size - 100, size - 1),
        (BIG, "100-", 100, size - 1),
        (BIG, "1000-1999999", 1000, 1999999),
        (BIG, f"{size - 1}-", size - 1, size - 1),
        (BIG, f"{size - 10}-{size + 1000}", size - 10, size - 1),  # end clamped
        (SMALL, "0-0", 0, 0),
        (ONE, "-100", 0, 0),  # a suffix longer than the file is the whole file, as a 206
        (ODD, "5-9", 5, 9),
    ]
    for name, spec, first, last in table:
        def ranged(name=name, spec=spec, first=first, last=last):
            full = tree.data[name]
            status, h, body = c.curl_get(quote(name), "-r", spec)
            expect_eq(status, 206, "status")
            expect_eq(header(h, "content-range"), f"bytes {first}-{last}/{len(full)}",
                      "Content-Range")
            expect_eq(header(h, "content-length"), str(last - first + 1), "Content-Length")
            expect_eq(sha256(body), sha256(full[first:last + 1]), "sha256 of the slice")
        run.case(f"curl -r {spec} {name!r} -> 206 bytes {first}-{last}", ranged)

    # (file, curl -r, nginx's status): 416 with "bytes */SIZE" from ferryd. No range of an
    # empty file is satisfiable (RFC 9110 14.1.1); nginx applies ranges only to a non-empty
    # body and answers 200 with the empty file.
    for name, spec, nginx_status in [(BIG, f"{size}-", 416), (BIG, f"{size + 5}-{size + 10}", 416),
                                     (EMPTY, "0-0", 200), (EMPTY, "-5", 200)]:
        want = 416 if c.server.name == "ferryd" else nginx_status
        def unsatisfiable(name=name, spec=spec, want=want):
            status, h, body = c.curl_get(quote(name), "-r", spec)
            expect_eq(status, want, "status")
            if want == 416:
                expect_eq(header(h, "content-range"), f"bytes */{len(tree.data[name])}",
                          "Content-Range")
            else:
                expect_eq(body, tree.data[name], "body")
        run.case(f"curl -r {spec} {name!r} -> {want}", unsatisfiable)

    for name, have in [(BIG, 1000000), (BIG, 1), (SMALL, 4095), (ODD, 100)]:
        def resume(name=name, have=have):
            out = c.out("resume")
            with open(out, "wb") as f:
                f.write(tree.data[name][:have])
            r = c.curl("-C", "-", "-o", out, "-w", "%{http_code}", c.server.url(quote(name)))
            expect_eq(r.stdout, b"206", "status")
            expect_eq(sha256(read(out)), sha256(tree.data[name]), "sha256 after resuming")
        run.case(f"curl -C - {name!r} from {have} bytes -> identical", resume)

    def resume_complete():
        out = c.out("complete")
        with open(out, "wb") as f:
            f.write(tree.data[SMALL])
        r = c.curl("-C", "-", "-o", out, "-w", "%{http_code}", c.server.url("/4k.bin"))
        expect_eq(r.stdout, b"416", "status")  # nothing past the end: curl is done, exit 0
        expect_eq(read(out), tree.data[SMALL], "the file")
    run.case("curl -C - on a complete file -> 416, exit 0, file unchanged", resume_complete)


# Traversal attempts with curl --path-as-is: (target, ferryd status, nginx status, why they
# differ). No response may carry a byte of secret.txt (beside the root) or of .env.
TRAVERSAL = [
    # ferryd: `..` above the root is `forbidden` as in the Ferry protocol (protocol.md 3);
    # nginx refuses a URI that climbs above "/" as a bad request.
    ("/../secret.txt", 403, 400, "nginx: 400 for a URI above the root"),
    ("/%2e%2e/secret.txt", 403, 400, "nginx: 400 for a URI above the root"),
    ("/%2E%2E/secret.txt", 403, 400, "nginx: 400 for a URI above the root"),
    ("/sub/../../secret.txt", 403, 400, "nginx: 400 for a URI above the root"),
    ("/sub/%2e%2e/%2e%2e/secret.txt", 403, 400, "nginx: 400 for a URI above the root"),
    ("/..%2fsecret.txt", 400, 400, ""),  # an encoded '/' in a segment
    ("/sub%2f..%2f..%2fsecret.txt", 400, 400, ""),
    ("/.env", 403, 403, ""),  # dotfiles (nginx: the fixture's `location ~ /\.` deny)
    ("/%2eenv", 403, 403, ""),
    ("/sub/../.env", 403, 403, ""),
    ("/escape.txt", 403, 403, ""),  # a symlink that leaves the root
    ("/abs.bin", 403, 403, ""),  # an absolute symlink, even to a file inside
    # ferryd follows a relative symlink that stays inside; the nginx fixture has
    # `disable_symlinks on`, which refuses every symlink.
    ("/alias.bin", 200, 403, "nginx: disable_symlinks on refuses every symlink"),
    ("/sub/../4k.bin", 200, 200, ""),  # `..` that stays inside is fine
    ("/4k.bin%00", 400, 400, ""),  # NUL
    ("/4k.bin%zz", 400, 400, ""),  # an invalid escape
]


def traversal_cases(run, c, tree):
    for target, ferryd_status, nginx_status, _ in TRAVERSAL:
        want = ferryd_status if c.server.name == "ferryd" else nginx_status
        def attempt(target=target, want=want):
            status, h, body = c.curl_get(target, path_as_is=True)
            head = "\r\n".join(f"{k}: {v}" for k, vs in h.items() for v in vs).encode()
            expect_eq(tree.leaked(body + head), [], "secret bytes in the response")
            expect_eq(status, want, "status")
            if status == 200:
                expect_eq(body, tree.data[SMALL], "body")
        run.case(f"curl --path-as-is {target} -> {want}, nothing outside the root", attempt)


def wget_cases(run, c, tree):
    def whole(name):
        out = c.out("wget")
        c.run(["wget", "--no-config", "-q", "-O", out, c.server.url(quote(name))], 0)
        expect_eq(sha256(read(out)), sha256(tree.data[name]), "sha256")
    for name in (BIG, ODD, EMPTY):
        run.case(f"wget {name!r} -> exit 0, identical", whole, name)

    def resume():
        d = c.out("wget-dir")
        os.makedirs(d)
        with open(os.path.join(d, BIG), "wb") as f:
            f.write(tree.data[BIG][:777777])
        r = c.run(["wget", "--no-config", "-c", "-S", "-P", d, c.server.url(quote(BIG))], 0)
        check(b"HTTP/1.1 206" in r.stderr, "wget did not get a 206 (it did not resume)")
        expect_eq(sha256(read(os.path.join(d, BIG))), sha256(tree.data[BIG]),
                  "sha256 after resuming")
    run.case("wget -c resumes a partial file -> exit 0, identical", resume)

    def missing():
        c.run(["wget", "--no-config", "-q", "-O", c.out("wget"),
               c.server.url("/no-such-file.bin")], 8)  # 8: the server issued an error response
    run.case("wget a missing file -> exit 8", missing)


def aria2_cases(run, c, tree):
    def segmented(digest, want_rc):
        d = c.out("aria2")
        c.run(["aria2c", "--no-conf", "-q", "-x4", "-s4", "-k1M", f"--checksum=sha-256={digest}",
               "--file-allocation=none", "--allow-overwrite=true", "--auto-file-renaming=false",
               "--max-tries=1", "-d", d, "-o", "out.bin", c.server.url(quote(BIG))], want_rc)
        if want_rc == 0:
            expect_eq(sha256(read(os.path.join(d, "out.bin"))), sha256(tree.data[BIG]), "sha256")
    run.case("aria2c -x4 -s4 -k1M --checksum=sha-256=HEX -> exit 0, identical", segmented,
             sha256(tree.data[BIG]), 0)
    # The checksum is really checked: a wrong one is exit 32 (checksum validation failed).
    run.case("aria2c -x4 with a wrong --checksum -> exit 32", segmented, "0" * 64, 32)


def urllib_cases(run, c, tree):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = c.server.url(quote(BIG))

    def fetch(headers=None, method="GET", target_url=url):
        req = urllib.request.Request(target_url, headers=headers or {}, method=method)
        try:
            with opener.open(req, timeout=SOCKET_LIMIT_S) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.headers, e.read()

    def get():
        status, h, body = fetch()
        expect_eq(status, 200, "status")
        expect_eq(sha256(body), sha256(tree.data[BIG]), "sha256")
        expect_eq(h["Content-Length"], str(len(body)), "Content-Length")
        status, _, body = fetch(target_url=c.server.url(quote(ODD)))
        expect_eq((status, body), (200, tree.data[ODD]), "the UTF-8 name's status and body")
    run.case("urllib GET -> 200, identical", get)

    def head():
        status, h, body = fetch(method="HEAD")
        expect_eq((status, body), (200, b""), "status and body")
        expect_eq(h["Content-Length"], str(len(tree.data[BIG])), "Content-Length")
    run.case("urllib HEAD -> 200, Content-Length, no body", head)

    def ranged():
        status, h, body = fetch({"Range": "bytes=10-19"})
        expect_eq(status, 206, "status")
        expect_eq(h["Content-Range"], f"bytes 10-19/{len(tree.data[BIG])}", "Content-Range")
        expect_eq(body, tree.data[BIG][10:20], "body")
    run.case("urllib Range: bytes=10-19 -> 206", ranged)

    def conditional():
        _, h, _ = fetch(method="HEAD")
        etag, last_modified = h["ETag"], h["Last-Modified"]
        for name, headers, want in [
                ("If-None-Match: ETAG", {"If-None-Match": etag}, 304),
                ("If-None-Match: *", {"If-None-Match": "*"}, 304),
                ("If-None-Match: other", {"If-None-Match": '"other"'}, 200),
                ("If-Modified-Since: Last-Modified", {"If-Modified-Since": last_modified}, 304),
                ("If-Match: other", {"If-Match": '"other"'}, 412),
                ("If-Match: ETAG", {"If-Match": etag}, 200),
        ]:
            status, rh, body = fetch(headers)
            expect_eq(status, want, name)
            if want == 304:
                expect_eq(body, b"", f"{name}: the 304's body")
                expect_eq(rh["ETag"], etag, f"{name}: the 304's ETag")
    run.case("urllib If-None-Match/If-Modified-Since -> 304, If-Match -> 412", conditional)

    def if_range():
        _, h, _ = fetch(method="HEAD")
        status, _, body = fetch({"Range": "bytes=0-9", "If-Range": h["ETag"]})
        expect_eq((status, body), (206, tree.data[BIG][:10]), "If-Range: current ETag")
        status, _, body = fetch({"Range": "bytes=0-9", "If-Range": '"stale"'})
        expect_eq(status, 200, "If-Range: stale ETag -> the whole file")
        expect_eq(sha256(body), sha256(tree.data[BIG]), "the whole file")
    run.case("urllib If-Range: current ETag -> 206, stale -> 200 whole", if_range)

    def listing_json():
        status, h, body = fetch({"Accept": "application/json"}, target_url=c.server.url("/"))
        expect_eq(status, 200, "status")
        expect_eq(h["Content-Type"].split(";")[0].strip(), "application/json", "Content-Type")
        # nginx's autoindex_format json, which ferryd's JSON listing follows: an array of
        # {name, type, mtime (IMF-fixdate), size (files only)}.
        entries = {e["name"]: e for e in json.loads(body)}
        for name in REGULAR:
            expect_eq(entries.get(name), {
                "name": name, "type": "file", "size": len(tree.data[name]),
                "mtime": email.utils.formatdate(tree.mtime(name), usegmt=True)}, name)
        expect_eq(entries.get("sub", {}).get("type"), "directory", "the type of sub")
        check(".env" not in entries, "the JSON listing shows .env")
    run.case("urllib GET / with Accept: application/json -> a JSON listing", listing_json)


def busy_cases(run, tree, ferryd):
    """A second ferryd with --max-connections 1, its one connection held by a keep-alive
    client that has had its answer: curl gets 503 with Retry-After (docs/http.md)."""
    def busy():
        run_dir = os.path.join(tree.base, "run-busy")
        os.makedirs(run_dir)
        with start_ferryd(ferryd, tree.root, run_dir,
                          ["--max-connections", "1", "--busy-retry-after", "2.5"]) as small:
            holder = socket.create_connection(("127.0.0.1", small.port), timeout=SOCKET_LIMIT_S)
            with holder:
                holder.sendall(b"GET /one.bin HTTP/1.1\r\nHost: t\r\n\r\n")
                got = b""
                while not got.endswith(b"\r\n\r\n" + tree.data[ONE]):
                    chunk = holder.recv(4096)
                    check(chunk, "the holding connection closed")
                    got += chunk
                busy_c = Clients(tree, small)
                status, h, _ = busy_c.curl_get("/4k.bin")
                expect_eq(status, 503, "status while the one connection is taken")
                expect_eq(header(h, "retry-after"), "3", "Retry-After (2.5 s rounded up)")
    run.case("curl against ferryd --max-connections 1, taken -> 503, Retry-After: 3", busy)


def clients_suite(run, tree, server, ferryd=None):
    c = Clients(tree, server)
    if ferryd:
        busy_cases(run, tree, ferryd)
    else:
        run.skip("curl against a busy server", "the nginx fixture has no connection cap")
    whole_file_cases(run, c, tree)
    range_cases(run, c, tree)
    traversal_cases(run, c, tree)
    wget_cases(run, c, tree)
    aria2_cases(run, c, tree)
    urllib_cases(run, c, tree)


# ---- suite: raw -------------------------------------------------------------------------------

class Raw:
    """One row: the request's bytes, the statuses of every response on the connection in order
    (ferryd's, as docs/http.md lists them; nginx's where it differs, with why), and header
    fields ferryd's first response must carry exactly (nginx's when `nginx_headers` says so).
    After the request the client half-closes and parses everything the server sends until it
    closes: a smuggled request must not get a response of its own."""

    def __init__(self, name, request, ferryd, nginx=None, why="", headers=None,
                 nginx_headers=None):
        self.name, self.request, self.ferryd, self.why = name, request, ferryd, why
        self.nginx = ferryd if nginx is None else nginx
        self.headers = headers or {}
        self.nginx_headers = nginx_headers or {}

    def want(self, server):
        return self.ferryd if server == "ferryd" else self.nginx

    def fields(self, server):
        return self.headers if server == "ferryd" else self.nginx_headers


H = b"Host: t\r\n"
SMUGGLED = b"GET /4k.bin HTTP/1.1\r\nHost: t\r\n\r\n"
ALLOW = {"allow": "GET, HEAD"}
NGINX_09 = "nginx answers HTTP/0.9: the body without a status line"
RAW = [
    Raw("GET", b"GET /4k.bin HTTP/1.1\r\n" + H + b"\r\n", [200]),
    Raw("HTTP/1.0 without Host", b"GET /4k.bin HTTP/1.0\r\n\r\n", [200]),
    Raw("two pipelined GETs", b"GET /4k.bin HTTP/1.1\r\n" + H + b"\r\n" + SMUGGLED, [200, 200]),
    Raw("Connection: close ends the connection",
        b"GET /4k.bin HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n" + SMUGGLED, [200]),
    Raw("HTTP/1.0 keep-alive, then HTTP/1.0",
        b"GET /4k.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /4k.bin HTTP/1.0\r\n\r\n",
        [200, 200], headers={"connection": "keep-alive"},
        nginx_headers={"connection": "keep-alive"}),
    Raw("HTTP/1.0 closes after the answer",
        b"GET /4k.bin HTTP/1.0\r\n\r\nGET /4k.bin HTTP/1.0\r\n\r\n", [200]),
    Raw("absolute-form (host ignored, never fetched)",
        b"GET http://elsewhere.invalid/4k.bin HTTP/1.1\r\n" + H + b"\r\n", [200]),
    Raw("HTTP/1.1 without Host", b"GET /4k.bin HTTP/1.1\r\n\r\n", [400]),
    Raw("two Host fields", b"GET /4k.bin HTTP/1.1\r\n" + H + b"Host: u\r\n\r\n", [400]),
    Raw("HTTP/1.0 with two Host fields",
        b"GET /4k.bin HTTP/1.0\r\nHost: t\r\nHost: u\r\n\r\n", [400]),
    Raw("an empty Host", b"GET /4k.bin HTTP/1.1\r\nHost:\r\n\r\n", [200], [400],
        "nginx refuses an empty Host; RFC 9112 3.2 allows it when the target has no authority"),
    Raw("a Host with a space", b"GET /4k.bin HTTP/1.1\r\nHost: a b\r\n\r\n", [400]),
    Raw("obs-fold", b"GET /4k.bin HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n", [400]),
    # Smuggling. ferryd refuses any body on GET/HEAD; nginx reads and discards it, so there the
    # smuggled request is body and gets no response either.
    Raw("GET with a Content-Length body holding a request",
        b"GET /4k.bin HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(SMUGGLED)
        + SMUGGLED, [400], [200], "nginx discards a GET's body"),
    Raw("GET with Transfer-Encoding: chunked",
        b"GET /4k.bin HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        + SMUGGLED, [400], [200, 200],
        "nginx discards the chunked body, then answers the next request: legal pipelining"),
    Raw("Transfer-Encoding: gzip with Content-Length",
        b"GET /4k.bin HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
        % len(SMUGGLED) + SMUGGLED, [400], [501], "nginx: 501 for a coding it does not know"),
    Raw("Transfer-Encoding: chunked, gzip",
        b"GET /4k.bin HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"
        + SMUGGLED, [400], [501], "nginx: 501 for a coding it does not know"),
    Raw("HTTP/2.0", b"GET /4k.bin HTTP/2.0\r\n" + H + b"\r\n", [505]),
    Raw("HTTP/1.2", b"GET /4k.bin HTTP/1.2\r\n" + H + b"\r\n", [505], [200],
        "nginx serves a higher HTTP/1.x minor version as 1.1 (RFC 9110 allows both)"),
    Raw("HTTP/0.9-style request line", b"GET /4k.bin\r\n\r\n", [400], NGINX_09, NGINX_09),
    Raw("HTTX/1.1", b"GET /4k.bin HTTX/1.1\r\n" + H + b"\r\n", [400]),
    Raw("a 16 KiB target", b"GET /" + b"a" * 16384 + b" HTTP/1.1\r\n" + H + b"\r\n", [414]),
    # The resolver's limits (docs/http.md): answered, and the connection goes on.
    Raw("a 300-byte segment, then a GET",
        b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n" + H + b"\r\n" + SMUGGLED, [400, 200],
        [404, 200], "nginx: the name's ENAMETOOLONG reads as not found"),
    Raw("a 5,000-byte path, then a GET",
        b"GET /" + b"/".join([b"a" * 200] * 25) + b" HTTP/1.1\r\n" + H + b"\r\n" + SMUGGLED,
        [414, 200], [404, 200], "nginx: the path's ENAMETOOLONG reads as not found"),
    Raw("a 9 KiB header field",
        b"GET /4k.bin HTTP/1.1\r\n" + H + b"X-Long: " + b"a" * 9216 + b"\r\n\r\n", [431], [400],
        "nginx: 400 (Request Header Or Cookie Too Large)"),
    Raw("10 KiB of small header fields", b"GET /4k.bin HTTP/1.1\r\n" + H
        + b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 90) for i in range(100)) + b"\r\n", [431], [200],
        "nginx: each line fits its buffers (large_client_header_buffers 4 8k); ferryd's limit "
        "is 8 KiB for the whole head"),
    # nginx's 405 carries no Allow.
    Raw("POST", b"POST /4k.bin HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n", [405],
        headers=ALLOW),
    Raw("DELETE", b"DELETE /4k.bin HTTP/1.1\r\n" + H + b"\r\n", [405], headers=ALLOW),
    Raw("an unknown method", b"BREW /4k.bin HTTP/1.1\r\n" + H + b"\r\n", [405], headers=ALLOW),
    Raw("a lower-case method", b"get /4k.bin HTTP/1.1\r\n" + H + b"\r\n", [405], [400],
        "nginx: 400, a method must be upper case; methods are case-sensitive tokens, so ferryd "
        "sees an unknown one", headers=ALLOW),
    Raw("an encoded '/' in a segment", b"GET /sub%2finner.bin HTTP/1.1\r\n" + H + b"\r\n", [400],
        [200], "nginx decodes %2F into a separator and serves sub/inner.bin"),
    Raw("20 overlapping ranges (the Range DoS class) -> the whole file",
        b"GET /4k.bin HTTP/1.1\r\n" + H + b"Range: bytes=" + b",".join([b"0-"] * 20)
        + b"\r\n\r\n", [200], headers={"content-length": "4096"},
        nginx_headers={"content-length": "4096"}),
    Raw("two ranges -> multipart/byteranges",
        b"GET /4k.bin HTTP/1.1\r\n" + H + b"Range: bytes=0-0,2-2\r\n\r\n", [206],
        headers={"content-type": "multipart/byteranges"},
        nginx_headers={"content-type": "multipart/byteranges"}),
    Raw("a last byte too large for 64 bits reaches the end",
        b"GET /4k.bin HTTP/1.1\r\n" + H + b"Range: bytes=4000-99999999999999999999999\r\n\r\n",
        [206], [416], "nginx: 416 for a number that overflows",
        headers={"content-range": "bytes 4000-4095/4096"},
        nginx_headers={"content-range": "bytes */4096"}),
]


def exchange(port, request):
    """Writes `request`, half-closes, and reads until the server closes (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_LIMIT_S) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break  # a server that closes with unread bytes may reset: what came counts
            except socket.timeout:
                raise CaseFailed(f"the server did not close within {SOCKET_LIMIT_S} s of the "
                                 f"request; it sent {sum(map(len, chunks))} bytes")
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def parse_responses(blob, head_request=False):
    """[(status, {lower-case name: value}, body)] of every response in `blob`."""
    out = []
    while blob:
        end = blob.find(b"\r\n\r\n")
        check(end >= 0, f"an incomplete response head: {blob[:200]!r}")
        lines = blob[:end].decode("latin-1").split("\r\n")
        check(lines[0].startswith("HTTP/1.1 "), f"not an HTTP/1.1 status line: {lines[0]!r}")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        blob = blob[end + 4:]
        length = 0
        if not head_request and status not in (204, 304) and status >= 200:
            check("transfer-encoding" not in headers, "a chunked response (not expected here)")
            length = int(headers.get("content-length", "0"))
        check(len(blob) >= length, f"a body shorter ({len(blob)}) than its length ({length})")
        out.append((status, headers, blob[:length]))
        blob = blob[length:]
    return out


def raw_suite(run, tree, server):
    served = (tree.data[SMALL], tree.data[INNER])
    for row in RAW:
        want = row.want(server.name)
        if isinstance(want, str):
            run.skip(f"raw: {row.name}", want)
            continue
        def case(row=row, want=want):
            responses = parse_responses(exchange(server.port, row.request))
            expect_eq([s for s, _, _ in responses], want, "statuses on the connection")
            for status, _, body in responses:
                expect_eq(tree.leaked(body), [], "secret bytes in a body")
                if status == 200:
                    check(body in served, f"a 200's body is neither 4k.bin nor sub/inner.bin "
                          f"({len(body)} bytes)")
            for field, value in row.fields(server.name).items():
                got = responses[0][1].get(field, "")
                if field == "content-type":
                    got = got.split(";")[0]
                expect_eq(got, value, field)
        run.case(f"raw: {row.name} -> {' '.join(map(str, want))}", case)

    def head():
        responses = parse_responses(exchange(server.port, b"HEAD /4k.bin HTTP/1.1\r\n" + H
                                             + b"Connection: close\r\n\r\n"), head_request=True)
        expect_eq([(s, h.get("content-length"), b) for s, h, b in responses],
                  [(200, "4096", b"")], "HEAD: status, Content-Length, body")
    run.case("raw: HEAD -> 200 with Content-Length and no body", head)


# ---- suite: chromium --------------------------------------------------------------------------


class Anchors(html.parser.HTMLParser):
    """Collects <a href> (href, text) in order, the text after each anchor up to the next one
    (its row: size and date), and every tag name seen."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.anchors, self.tails, self.tags, self._href, self._text = [], [], set(), None, []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), []

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)
        elif self.tails:
            self.tails[-1] += data

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.anchors.append((self._href, "".join(self._text).strip()))
            self.tails.append("")
            self._href = None


def parse_anchors(text):
    p = Anchors()
    p.feed(text)
    p.close()
    return p


def row_facts(server, tree, name):
    """What a listing's row shows for a file: its size and modification time (ferryd: a
    human size and the IMF-fixdate; nginx: bytes and "04-Dec-2026 02:28", both in UTC)."""
    size, mtime = len(tree.data[name]), tree.mtime(name)
    if server == "nginx":
        return [str(size), time.strftime("%d-%b-%Y %H:%M", time.gmtime(mtime))]
    human = f"{size} B"
    value = size
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value /= 1024
        human = f"{value:.1f} {unit}"
    return [human, email.utils.formatdate(mtime, usegmt=True)]


def chromium_binary():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def dump_dom(chromium, profile, url):
    args = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", "--no-proxy-server",
            f"--user-data-dir={profile}", "--dump-dom", url]
    return subprocess.run(args, capture_output=True, timeout=CLIENT_LIMIT_S * 2,
                          stdin=subprocess.DEVNULL)


def chromium_suite(run, tree, server):
    """Returns SKIP when Chromium is missing or cannot start (it says so on stderr)."""
    chromium = chromium_binary()
    if not chromium:
        print("SKIP chromium: no chromium binary (Debian package `chromium`; scripts/deps "
              "installs it)", file=sys.stderr, flush=True)
        return SKIP
    profile = os.path.join(tree.base, "chromium-profile")
    try:
        probe = dump_dom(chromium, profile, "about:blank")
    except (OSError, subprocess.TimeoutExpired) as e:
        probe = None
        why = str(e)
    if probe is None or probe.returncode != 0 or b"<html" not in probe.stdout:
        if probe is not None:
            why = f"exit {probe.returncode}: {probe.stderr.decode(errors='replace')[-500:]}"
        print(f"SKIP chromium: {chromium} cannot start headless: {why}", file=sys.stderr,
              flush=True)
        return SKIP

    visible = REGULAR + ["sub/"]  # what a listing of / must link to, and nothing hidden

    def listing(url_path, expected):
        url = server.url(url_path)
        r = dump_dom(chromium, profile, url)
        expect_eq(r.returncode, 0, "chromium's exit status")
        dom = parse_anchors(r.stdout.decode("utf-8"))
        check("ferryx" not in dom.tags, "a file name became markup: <ferryx> is an element")
        links, rows = {}, {}
        for (href, text), tail in zip(dom.anchors, dom.tails):
            target = urllib.parse.unquote(urllib.parse.urlsplit(urllib.parse.urljoin(url, href))
                                          .path, errors="strict")
            links[target] = text
            rows[target] = " ".join(tail.split())
        for name in expected:
            target = url_path + name
            check(target in links, f"no link to {target!r} in the DOM; links: {sorted(links)}")
            expect_eq(links[target].rstrip("/"), name.rstrip("/"), f"the text of {target!r}")
            if not name.endswith("/"):
                for fact in row_facts(server.name, tree, url_path[1:] + name):
                    check(fact in rows[target], f"{fact!r} not in the row of {target!r}: "
                          f"{rows[target]!r}")
        for target in links:
            check("/." not in target, f"a dotfile is listed: {target!r}")
            check("secret" not in target, f"the secret is listed: {target!r}")
        files = [t for t in links if t.startswith(url_path) and t[len(url_path):] in expected
                 and not t.endswith("/")]
        order = [t for t in links if t in files]  # a dict keeps the DOM's order
        expect_eq(order, sorted(files, key=lambda t: t.encode()), "the order of the files")
        # The links are in the HTML the server sent: the listing works without JavaScript.
        req = urllib.request.Request(url, headers={"Accept": "text/html"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=SOCKET_LIMIT_S) as resp:
            expect_eq(resp.status, 200, "status")
            check(resp.headers["Content-Type"].startswith("text/html"),
                  f"Content-Type {resp.headers['Content-Type']!r}")
            served = parse_anchors(resp.read().decode("utf-8"))
        expect_eq([h for h, _ in served.anchors], [h for h, _ in dom.anchors],
                  "the links of the served HTML vs the DOM's")

    run.case("chromium: / lists every file and sub/ with escaped names, sorted, no dotfiles",
             listing, "/", visible)
    run.case("chromium: /sub/ lists inner.bin", listing, "/sub/", ["inner.bin"])
    return None


# ---- main ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", choices=["ferryd", "nginx"], required=True)
    ap.add_argument("--ferryd", help="the ferryd binary (with --server ferryd)")
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--suite", choices=["clients", "raw", "chromium"], required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    if args.server == "ferryd" and not args.ferryd:
        ap.error("--server ferryd needs --ferryd PATH")
    for tool in {"clients": ["curl", "wget", "aria2c"]}.get(args.suite, []):
        if not shutil.which(tool):
            print(f"interop: {tool} is not installed (scripts/deps installs it)", file=sys.stderr)
            return 1

    os.umask(0o022)  # the tree must be readable by nginx's worker (nobody, under root)
    base = tempfile.mkdtemp(prefix=f"ferry-interop-{args.server}-{args.suite}-")
    run = Runner()
    try:
        tree = Tree(base)
        run_dir = os.path.join(base, "run")
        os.makedirs(run_dir)
        if args.server == "ferryd":
            server_cm = start_ferryd(args.ferryd, tree.root, run_dir)
        else:
            # The listing in a browser is HTML; the clients suite reads nginx's JSON listing.
            server_cm = start_nginx(tree.root, run_dir, nginx=args.nginx,
                                    autoindex_format="html" if args.suite == "chromium"
                                    else "json")
        with server_cm as server:
            print(f"interop: {args.suite} against {server.name} (pid {server.pid}) on "
                  f"127.0.0.1:{server.port}, tree in {base}", flush=True)
            suite = {"clients": clients_suite, "raw": raw_suite,
                     "chromium": chromium_suite}[args.suite]
            extra = {"ferryd": args.ferryd} if args.suite == "clients" else {}
            if suite(run, tree, server, **extra) == SKIP:
                return SKIP
            if run.failed:
                print(f"--- {server.name} log ---\n{server.log()[-4000:]}--- end ---", flush=True)
            if not server.running():
                run.failed.append(f"{server.name} is still running after the suite")
                print(f"FAIL {server.name} exited during the suite: {server.log()[-4000:]}",
                      flush=True)
        return run.summary(server.name)
    finally:
        if args.keep:
            print(f"interop: kept {base}", flush=True)
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
