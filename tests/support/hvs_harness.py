"""hvs_harness.py - what the Python tests and benchmarks share (the C ones have hvs_test.h):
start a redis-server and an hvs-devbroker on free ports, read a worker's /metrics, a process's
CPU seconds and peak memory, and stop what was started.

Every process started through Harness.spawn (the services included) is stopped by
Harness.stop_all, which a script calls in a `finally`. Debian's /usr/bin/python3 only needs
the standard library for this module.
"""
import os
import socket
import subprocess
import time
import urllib.request


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def control(addr, line):
    """One command on the devbroker's control channel; its one-line answer."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s:
        s.sendall((line + "\n").encode())
        return s.recv(200).decode()


def http_get(port, path, timeout=2):
    """(status, body) of GET http://127.0.0.1:port/path; (0, "") when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (OSError, ValueError):
        return 0, ""


def metrics(port):
    """The worker's /metrics text ("" when it does not answer)."""
    return http_get(port, "/metrics")[1]


def metric_sum(text, name):
    """A metric's value summed over its labels in a /metrics text (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def cpu_seconds(pid):
    """utime + stime of a process, all its threads (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def peak_rss_mb(pid):
    """Peak resident memory of a process (VmHWM), MB; NaN when unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class Harness:
    """Services and processes of one script run, all in the scratch directory `tmp`."""

    def __init__(self, build, tmp):
        self.build, self.tmp, self.procs = build, tmp, []

    def spawn(self, argv, log, env=None, **kw):
        """Start a process, its stdout and stderr to tmp/log; stopped by stop_all."""
        p = subprocess.Popen(argv, env=env, stdout=open(os.path.join(self.tmp, log), "w"),
                             stderr=subprocess.STDOUT, **kw)
        self.procs.append(p)
        return p

    def start_services(self):
        """A redis-server and an hvs-devbroker; returns (bootstrap, control address, redis URL)."""
        port = free_port()
        self.spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", self.tmp], "redis.log")
        broker = subprocess.Popen([f"{self.build}/bin/hvs-devbroker"], stdout=subprocess.PIPE,
                                  stderr=open(os.path.join(self.tmp, "broker.log"), "w"), text=True)
        self.procs.append(broker)
        bootstrap = broker.stdout.readline().strip()
        ctl = broker.stdout.readline().split()[1]
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        return bootstrap, ctl, f"redis://127.0.0.1:{port}"

    def stop_all(self):
        """SIGTERM to every process still running, SIGKILL to those still there after 10 s."""
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
