#!/usr/bin/env python3
"""What systemd does for a socket-activated service, for the tests: holds the listening sockets it
inherited (LISTEN_FDS, from systemd-socket-activate) and runs a command on them, restarting it
the way `systemctl restart` does.

    socket_supervisor.py RUN_DIR COMMAND [ARG...]

The command gets the sockets as fds 3.. with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (its own
pid). SIGUSR1: restart, as systemctl restart does: SIGTERM the command, wait until it has
exited (ferryd drains), start it again on the same sockets. SIGTERM: stop the command and exit.
The sockets stay open here throughout, so connections made while no command runs wait in their
backlog for the next one.

In RUN_DIR, `pids` gets a line `started PID` per start and `exited PID CODE` per exit (CODE:
the exit status, or -SIGNAL); PID.log is that command's stdout and stderr. Every wait is
bounded: a command that takes more than 60 s to stop is killed.
"""
import os
import signal
import sys
import time

STOP_LIMIT = 60.0


def record(run_dir, line):
    with open(os.path.join(run_dir, "pids"), "a") as f:
        f.write(line + "\n")


def start(run_dir, command):
    pid = os.fork()
    if pid == 0:
        try:
            os.environ["LISTEN_PID"] = str(os.getpid())
            log = os.open(os.path.join(run_dir, f"{os.getpid()}.log"),
                          os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(log)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            os.execv(command[0], command)
        finally:
            os._exit(127)
    record(run_dir, f"started {pid}")
    return pid


def reap(run_dir, pid, status):
    code = os.waitstatus_to_exitcode(status)
    record(run_dir, f"exited {pid} {code}")
    return code


def stop(run_dir, pid):
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_LIMIT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return reap(run_dir, pid, status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            return reap(run_dir, pid, status)
        time.sleep(0.01)  # polling waitpid: bounded by STOP_LIMIT


def main():
    run_dir, command = sys.argv[1], sys.argv[2:]
    n = int(os.environ.get("LISTEN_FDS", "0"))
    fds = list(range(3, 3 + n))
    for fd in fds:
        os.set_inheritable(fd, True)
    # Signals are taken synchronously, one at a time: a restart is never interrupted.
    wanted = {signal.SIGUSR1, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    child = start(run_dir, command)
    while True:
        info = signal.sigtimedwait(wanted, 1.0)
        if info is None:
            continue
        if info.si_signo == signal.SIGUSR1:
            stop(run_dir, child)
            child = start(run_dir, command)
        elif info.si_signo in (signal.SIGTERM, signal.SIGINT):
            return 0 if stop(run_dir, child) == 0 else 1
        elif info.si_signo == signal.SIGCHLD:
            done, status = os.waitpid(child, os.WNOHANG)
            if done == child:  # it ended by itself: so does the supervisor
                return 0 if reap(run_dir, child, status) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
