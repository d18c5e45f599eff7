#!/usr/bin/env python3
"""`cmake --install` into a temp prefix: every file in its place, the unit naming the installed
ferryd, man pages groff finds clean, completions that load and complete, and the installed
ferryd serving a file the installed ferry downloads byte for byte.

    install_test.py --cmake CMAKE --build-dir BUILD

Nothing is written outside the temp dir (the prefix is not /usr, so the configuration goes to
PREFIX/etc, not /etc); ferryd binds 127.0.0.1 port 0 and is stopped by its PID.
"""

import os

import checks
from checks import expect, run, start_with_port_file


def install(cmake, build_dir, prefix):
    env = {k: v for k, v in os.environ.items() if k != "DESTDIR"}
    r = run([cmake, "--install", build_dir, "--prefix", prefix], env=env)
    expect(r.returncode == 0, f"cmake --install: {r.stdout}{r.stderr}")
    for line in r.stdout.splitlines():
        if line.startswith("-- Installing: ") or line.startswith("-- Up-to-date: "):
            path = line.split(": ", 1)[1]
            expect(path.startswith(prefix + "/"), f"installed outside the prefix: {path}")


def check_files(prefix):
    expected = ["bin/ferryd", "bin/ferry", "lib/systemd/system/ferryd.service",
                "etc/ferry/ferryd.conf", "share/bash-completion/completions/ferry",
                "share/bash-completion/completions/ferryd", "share/doc/ferry/README.md",
                "share/doc/ferry/operations.md", "share/doc/ferry/protocol.md"]
    expected += ["share/man/" + page for page in checks.MAN_PAGES]
    for path in expected:
        expect(os.path.isfile(os.path.join(prefix, path)), f"not installed: {path}")
    for binary in ["bin/ferryd", "bin/ferry"]:
        expect(os.access(os.path.join(prefix, binary), os.X_OK), f"not executable: {binary}")
    expect(not os.path.exists(os.path.join(prefix, "tests")), "tests were installed")


def check_unit(prefix):
    with open(os.path.join(prefix, "lib/systemd/system/ferryd.service")) as f:
        unit = f.read()
    want = f"ExecStart={prefix}/bin/ferryd --config {prefix}/etc/ferry/ferryd.conf"
    lines = unit.splitlines()
    expect(any(line.startswith(want) for line in lines),
           f"the installed unit does not start the installed ferryd ({want}):\n{unit}")
    expect(f"man:ferryd(8) file://{prefix}/share/doc/ferry/operations.md" in unit,
           "the unit's Documentation= does not name the installed docs")


def test(args, work):
    prefix = os.path.join(work, "prefix")
    install(args.cmake, args.build_dir, prefix)
    check_files(prefix)
    check_unit(prefix)
    for page in checks.MAN_PAGES:
        checks.check_man_page(os.path.join(prefix, "share/man", page))
    completions = os.path.join(prefix, "share/bash-completion/completions")
    checks.check_completions(os.path.join(completions, "ferry"),
                             os.path.join(completions, "ferryd"))

    ferryd, ferry = os.path.join(prefix, "bin/ferryd"), os.path.join(prefix, "bin/ferry")
    root = os.path.join(work, "root")
    os.mkdir(root)
    content = os.urandom(300 * 1024)
    with open(os.path.join(root, "file.bin"), "wb") as f:
        f.write(content)
    # The installed configuration is valid (its root replaced: /srv/ferry may not exist).
    r = run([ferryd, "--config", os.path.join(prefix, "etc/ferry/ferryd.conf"),
             "--check-config", root])
    expect(r.returncode == 0, f"ferryd --check-config on the installed file: {r.stderr}")

    port_file = os.path.join(work, "ferryd.port")
    with start_with_port_file([ferryd, root, "--listen", "127.0.0.1:0", "--port-file",
                               port_file, "--drain-timeout", "5"],
                              port_file, os.path.join(work, "ferryd.log")) as server:
        checks.download_and_compare(server, ferry, "file.bin", content, work)
        checks.stop(server)
    return 0


if __name__ == "__main__":
    checks.main(test, "--cmake")
