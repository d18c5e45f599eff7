#!/usr/bin/env python3
"""The Debian package: cpack builds ferry_VERSION_ARCH.deb in a temp dir; its files, conffile,
Depends and maintainer scripts are checked with dpkg-deb. Then, only as root and only when no
package named ferry is installed (CI: a throwaway machine), the package is installed, the
packaged ferryd is run as the unit runs it (plus --listen 127.0.0.1:0 --port-file) as an
unprivileged user and serves a file from /srv/ferry to the packaged ferry, and the package is
removed and purged: nothing of it stays. Otherwise that part is skipped (exit 77).

    deb_test.py --cpack CPACK --build-dir BUILD
"""

import glob
import os
import shlex
import shutil
import stat
import sys

import checks
from checks import expect, run, start_with_port_file

NOBODY = 65534
UNIT = "/usr/lib/systemd/system/ferryd.service"
CONF = "/etc/ferry/ferryd.conf"
SERVED = "/srv/ferry"
WANTS = "/etc/systemd/system/multi-user.target.wants/ferryd.service"
FILES = ["/usr/bin/ferryd", "/usr/bin/ferry", UNIT, CONF,
         "/usr/share/man/man1/ferry.1", "/usr/share/man/man5/ferryd.conf.5",
         "/usr/share/man/man8/ferryd.8", "/usr/share/bash-completion/completions/ferry",
         "/usr/share/bash-completion/completions/ferryd", "/usr/share/doc/ferry/README.md",
         "/usr/share/doc/ferry/operations.md"]
DEPENDS = ["libboost-program-options1.81.0", "libc6", "libfmt9", "libspdlog1.10", "libssl3",
           "libstdc++6"]


def build_package(cpack, build_dir, out_dir):
    r = run([cpack, "--config", os.path.join(build_dir, "CPackConfig.cmake"), "-B", out_dir],
            timeout_s=300)
    expect(r.returncode == 0, f"cpack: {r.stdout}{r.stderr}")
    debs = glob.glob(os.path.join(out_dir, "ferry_*.deb"))
    expect(len(debs) == 1, f"cpack made {debs}, not one ferry_VERSION_ARCH.deb")
    return debs[0]


def field(control, name):
    for line in control.splitlines():
        if line.startswith(name + ": "):
            return line.split(": ", 1)[1]
    return ""


def check_package(deb, work):
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    r = run(["dpkg-deb", "--info", deb])
    expect(r.returncode == 0, f"dpkg-deb --info: {r.stderr}")
    control = run(["dpkg-deb", "--field", deb]).stdout
    expect(field(control, "Package") == "ferry", f"not the package ferry:\n{control}")
    version = field(control, "Version")
    expect(os.path.basename(deb) == f"ferry_{version}_{arch}.deb", f"file name {deb}")
    depends = [d.split()[0] for d in field(control, "Depends").split(", ")]
    for d in DEPENDS:  # libspdlog1.10's shlibs name its virtual package libspdlog1.10-fmt9
        expect(any(p == d or p.startswith(d + "-") for p in depends),
               f"Depends lacks {d}: {field(control, 'Depends')}")

    contents = run(["dpkg-deb", "--contents", deb]).stdout
    listed = {line.split()[5].lstrip(".") for line in contents.splitlines()}
    for path in FILES:
        expect(path in listed, f"the package lacks {path}")
    expect(not any("/tests" in p or p.startswith("/usr/local") for p in listed),
           "the package holds tests or /usr/local files")

    scripts = os.path.join(work, "control")
    expect(run(["dpkg-deb", "--control", deb, scripts]).returncode == 0, "dpkg-deb --control")
    with open(os.path.join(scripts, "conffiles")) as f:
        expect(CONF in f.read().split(), "ferryd.conf is not a conffile")
    for script in ["postinst", "prerm", "postrm"]:
        path = os.path.join(scripts, script)
        expect(os.stat(path).st_mode & 0o111, f"{script} is not executable")
        r = run(["sh", "-n", path])
        expect(r.returncode == 0, f"sh -n {script}: {r.stderr}")

    tree = os.path.join(work, "tree")
    expect(run(["dpkg-deb", "--extract", deb, tree]).returncode == 0, "dpkg-deb --extract")
    with open(tree + UNIT) as f:
        expect("\nExecStart=/usr/bin/ferryd --config /etc/ferry/ferryd.conf\n" in f.read(),
               "the packaged unit does not start /usr/bin/ferryd with /etc/ferry/ferryd.conf")


def installed():
    r = run(["dpkg-query", "-W", "-f=${Status}", "ferry"])
    return r.returncode == 0 and "installed" in r.stdout.split() and "not-installed" not in r.stdout


def exec_start():
    with open(UNIT) as f:
        for line in f:
            if line.startswith("ExecStart="):
                return shlex.split(line.split("=", 1)[1])
    raise checks.Failure("the installed unit has no ExecStart=")


def serve_as_the_unit_does(work):
    """The unit's ExecStart, as nobody, on 127.0.0.1:0: the packaged ferry downloads a file put
    in /srv/ferry for the test (and removed after it)."""
    run_dir = os.path.join(work, "run")
    os.mkdir(run_dir)
    os.chown(run_dir, NOBODY, NOBODY)
    port_file = os.path.join(run_dir, "ferryd.port")
    served = os.path.join(SERVED, f"ferry-deb-test-{os.getpid()}.bin")
    content = os.urandom(200 * 1024)
    try:
        with open(served, "xb") as f:
            f.write(content)
        os.chmod(served, 0o644)
        args = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
                *exec_start(), "--listen", "127.0.0.1:0", "--port-file", port_file]
        with start_with_port_file(args, port_file, os.path.join(work, "ferryd.log")) as server:
            checks.download_and_compare(server, "/usr/bin/ferry", os.path.basename(served),
                                        content, work)
            checks.stop(server)
    finally:
        if os.path.exists(served):
            os.unlink(served)


def install_and_purge(deb, work):
    served_existed = os.path.exists(SERVED)
    r = run(["dpkg", "-i", deb], timeout_s=120)
    try:
        expect(r.returncode == 0, f"dpkg -i: {r.stdout}{r.stderr}")
        # Quiet without systemd: nothing but the line enabling the unit, as for any service.
        noise = [line for line in r.stderr.splitlines() if not line.startswith("Created symlink")]
        expect(noise == [], f"dpkg -i is not quiet: {r.stderr}")
        st = os.stat(SERVED)
        expect(stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o755,
               f"{SERVED} is not a root-owned 0755 directory")
        for path in FILES:
            expect(os.path.exists(path), f"dpkg -i did not install {path}")
        if shutil.which("deb-systemd-helper"):
            expect(os.path.islink(WANTS), "ferryd.service is not enabled")
        serve_as_the_unit_does(work)

        r = run(["dpkg", "-r", "ferry"], timeout_s=120)
        expect(r.returncode == 0, f"dpkg -r: {r.stdout}{r.stderr}")
        expect(not os.path.exists("/usr/bin/ferryd"), "dpkg -r left /usr/bin/ferryd")
        expect(os.path.exists(CONF), "dpkg -r removed the conffile")
        expect(os.path.isdir(SERVED), f"dpkg -r removed {SERVED}")
    finally:
        r = run(["dpkg", "--purge", "ferry"], timeout_s=120)
    expect(r.returncode == 0, f"dpkg --purge: {r.stdout}{r.stderr}")
    for path in ["/usr/bin/ferryd", "/usr/bin/ferry", UNIT, "/etc/ferry", WANTS]:
        expect(not os.path.lexists(path), f"dpkg --purge left {path}")
    if not served_existed:
        expect(not os.path.exists(SERVED), f"dpkg --purge left the empty {SERVED}")


def test(args, work):
    os.chmod(work, 0o755)  # the unprivileged ferryd reaches its port-file directory
    deb = build_package(args.cpack, args.build_dir, os.path.join(work, "package"))
    check_package(deb, work)
    print(f"package ok: {os.path.basename(deb)}")
    if os.geteuid() != 0:
        print("SKIP: not root: the package is not installed", file=sys.stderr)
        return checks.SKIP
    if installed():
        print("SKIP: a package named ferry is installed: not replaced", file=sys.stderr)
        return checks.SKIP
    install_and_purge(deb, work)
    return 0


if __name__ == "__main__":
    checks.main(test, "--cpack")
