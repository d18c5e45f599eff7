"""Checks shared by install_test.py and deb_test.py: man pages, bash completion, and a download
from the installed ferryd with the installed ferry. Python 3 standard library only."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from servers import start_with_port_file  # noqa: E402

LIMIT_S = 60  # per command: generous, only to turn a hang into a failure
SKIP = 77  # CTest SKIP_RETURN_CODE
MAN_PAGES = ["man1/ferry.1", "man5/ferryd.conf.5", "man8/ferryd.8"]
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"


class Failure(Exception):
    pass


def run(args, timeout_s=LIMIT_S, **kwargs):
    """Runs a command with a time limit; its output comes back as text."""
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, **kwargs)


def expect(condition, what):
    if not condition:
        raise Failure(what)


def check_man_page(path):
    """groff finds nothing to warn about, and man renders the page."""
    r = run(["groff", "-man", "-ww", "-z", path])
    expect(r.returncode == 0 and r.stderr == "", f"groff -man -ww -z {path}: {r.stderr}")
    r = run(["man", "-l", path], env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "80"})
    expect(r.returncode == 0 and "SYNOPSIS" in r.stdout, f"man -l {path}: {r.stderr}")


def complete(script, command, line):
    """What bash completion offers for `line` (the word under the cursor is the last one; a
    trailing space starts an empty word), with `script` loaded as bash-completion loads it."""
    words = line.split(" ")
    program = (f'source {BASH_COMPLETION}; source "$1"; complete -p {command} >/dev/null || exit 3; '
               'shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; '
               'COMP_POINT=${#COMP_LINE}; func=$(complete -p "$1" | sed "s/.*-F \\([^ ]*\\).*/\\1/"); '
               '"$func" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"; '
               'printf "%s\\n" "${COMPREPLY[@]}"')
    r = run(["bash", "-c", program, "bash", script, *words])
    expect(r.returncode == 0, f"completion {script} for {line!r}: status {r.returncode}: {r.stderr}")
    return [w for w in r.stdout.splitlines() if w]


def check_completions(ferry_script, ferryd_script):
    cases = [
        (ferry_script, "ferry", "ferry g", ["get"]),
        (ferry_script, "ferry", "ferry ", ["bench", "get", "help", "ls", "stat"]),
        (ferry_script, "ferry", "ferry stat --sh", ["--sha256"]),
        (ferry_script, "ferry", "ferry get --no-r", ["--no-resume"]),
        (ferryd_script, "ferryd", "ferryd --symlinks ", ["deny", "follow", "inside"]),
        (ferryd_script, "ferryd", "ferryd --dotfiles ", ["allow", "deny"]),
        (ferryd_script, "ferryd", "ferryd --access-log-format ", ["json", "text"]),
        (ferryd_script, "ferryd", "ferryd --log-l", ["--log-level"]),
    ]
    for script, command, line, want in cases:
        got = sorted(complete(script, command, line))
        expect(got == want, f"completion for {line!r}: got {got}, want {want}")


def download_and_compare(server, ferry, name, expected, out_dir):
    """The installed ferry downloads `name` from `server`; the bytes must be `expected`."""
    out = os.path.join(out_dir, "downloaded")
    r = run([ferry, "get", f"ferry://127.0.0.1:{server.port}/{name}", "-o", out, "-q"])
    expect(r.returncode == 0, f"ferry get: status {r.returncode}: {r.stderr}\n{server.log()}")
    with open(out, "rb") as f:
        expect(f.read() == expected, "the downloaded file differs from the served one")


def stop(server):
    """SIGTERM by PID (then SIGKILL after a bounded wait): ferryd drains and exits 0."""
    status = server.stop()
    expect(status == 0, f"ferryd exited {status} after SIGTERM: {server.log()}")


def main(test, tool):
    """The command line of a test (TOOL, --build-dir, --keep), then test(args, work) in a
    fresh temp dir, removed afterwards unless --keep. Prints PASS or FAIL with the reason and
    exits 0, 1, or 77 for a skip."""
    parser = argparse.ArgumentParser()
    parser.add_argument(tool, required=True)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="ferry-" + os.path.basename(sys.argv[0]).split("_")[0] + "-")
    try:
        status = test(args, work)
    except (Failure, subprocess.TimeoutExpired, RuntimeError, OSError) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        status = 1
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if status != 1:
        print("PASS" if status == 0 else "SKIP (see above)")
    sys.exit(status)
