#!/usr/bin/python3
"""side_by_side.py - hvs-aggregator against its Python peer (aggregator_peer.py), same stream.

Starts its own redis-server and hvs-devbroker, makes ONE messy stream with the simulator (the
same arguments as bench_aggregator: 10 buildings x 20 flats x 14 days from 2024-12-01, seed 3),
puts it on readings.raw as Avro (`hvs-simulator --out kafka`) and the same records as JSON lines
on peer.readings (`--out jsonl`, produced keyed by building), then runs C, Python, C, Python, ...
each run with a fresh consumer group, its own Redis database and its own output topics.

Each run is measured the same way from outside, end to end: from the worker's first record
consumed (C: its /metrics hvs_aggregator_readings_total > 0; Python: the peer's line "peer:
first batch consumed") until the group's committed offsets of the input topic reach the topic's
end offsets (polled with a confluent_kafka Consumer of that group.id, `committed()`); both
commit only after their outputs were acknowledged and their state written. Over that interval:
the worker's CPU seconds (utime + stime of /proc/<pid>/stat, all threads) and, at the end, its
peak RSS (VmHWM). "readings" = the sensor values inside the records (the simulator's values=).

Then the first C run's and the first Python run's hourly outputs (last revision per window) are
compared: heating_kwh per apartment-hour and building-hour present in both must agree within
1 % (sum over all of them, and per window for >= 99 % of windows). Exit 1 only on a real failure
(disagreement, a run that does not finish), never on the speed ratios.

    side_by_side.py BUILD_DIR [--runs 3] [--buildings 10] [--apartments 20] [--days 14]
                    [--seed 3] [--batch 5000]
"""
import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "support"))
from hvs_harness import Harness, control, cpu_seconds, free_port, peak_rss_mb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
failures = []
H = None  # the run's Harness (its services and workers)


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if not cond:
        failures.append(msg)


def metric(port, name):
    """A metric's value from the worker's /metrics (None when it does not answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
            c.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    out = {}
    for line in data.decode(errors="replace").splitlines():
        for n in name if isinstance(name, (list, tuple)) else [name]:
            if line.startswith(n + " "):
                out[n] = float(line.split()[1])
    return out if isinstance(name, (list, tuple)) else out.get(name, 0.0)


class Offsets:
    """Has the group committed the input topic up to its end?"""

    def __init__(self, brokers, group, topic, ends):
        self.c = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})
        self.tps = [TopicPartition(topic, p) for p, end in ends.items() if end > 0]
        self.ends = ends

    def done(self):
        try:
            got = self.c.committed(self.tps, timeout=5)
        except Exception:          # the coordinator not yet known: not done
            return False
        return all(tp.offset >= self.ends[tp.partition] for tp in got)

    def close(self):
        self.c.close()


def end_offsets(brokers, topic, nparts):
    c = Consumer({"bootstrap.servers": brokers, "group.id": "side-by-side-ends"})
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(nparts)}
    c.close()
    return ends


def wait_done(p, offsets, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if offsets.done():
            return True
        if p.poll() is not None:
            return offsets.done()
        time.sleep(0.02)
    return False


def run_c(a, env, i, ends):
    port = free_port()
    group = f"c-run-{i}"
    renv = dict(env, HVS_KAFKA_GROUP=group, HVS_REDIS_URL=f"{env['HVS_REDIS_URL']}/{i}",
                HVS_HTTP_PORT=str(port), HVS_TOPIC_AGGREGATES_HOURLY=f"c{i}.hourly",
                HVS_TOPIC_AGGREGATES_15M=f"c{i}.15m", HVS_LOG_LEVEL="warn")
    offsets = Offsets(env["HVS_KAFKA_BROKERS"], group, "readings.raw", ends)
    log = open(f"{a.tmp}/c{i}.log", "w")
    p = subprocess.Popen([f"{a.build}/bin/hvs-aggregator", "--batch", str(a.batch)], env=renv,
                         stdout=log, stderr=subprocess.STDOUT)
    H.procs.append(p)
    t0 = cpu0 = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        if (metric(port, "hvs_aggregator_readings_total") or 0) > 0:
            t0, cpu0 = time.monotonic(), cpu_seconds(p.pid)
            break
        time.sleep(0.005)
    ok = t0 is not None and wait_done(p, offsets, a.timeout)
    t1 = time.monotonic()
    res = None
    if ok:
        res = {"wall": t1 - t0, "cpu": cpu_seconds(p.pid) - cpu0, "rss": peak_rss_mb(p.pid)}
        phases = ("poll", "process", "publish_wait", "state_write", "commit")
        m = metric(port, [f'hvs_aggregator_phase_seconds_total{{phase="{x}"}}' for x in phases])
        res["phases"] = {x: m.get(f'hvs_aggregator_phase_seconds_total{{phase="{x}"}}', 0.0) for x in phases}
    offsets.close()
    p.send_signal(signal.SIGTERM)
    p.wait(30)
    return res


def run_py(a, env, i, ends):
    group = f"py-run-{i}"
    offsets = Offsets(env["HVS_KAFKA_BROKERS"], group, "peer.readings", ends)
    p = subprocess.Popen([PY, f"{HERE}/aggregator_peer.py", "--brokers", env["HVS_KAFKA_BROKERS"],
                          "--redis", f"{env['HVS_REDIS_URL']}/{i}", "--group", group, "--input", "peer.readings",
                          "--output", f"p{i}.hourly", "--dlq", f"p{i}.dlq", "--batch", str(a.batch)],
                         stdout=subprocess.PIPE, stderr=open(f"{a.tmp}/p{i}.log", "w"), text=True)
    H.procs.append(p)
    started = {}
    lines = []

    def reader():
        for line in p.stdout:
            if "first batch consumed" in line and "t" not in started:
                started["t"], started["cpu"] = time.monotonic(), cpu_seconds(p.pid)
            lines.append(line.strip())
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None and "t" not in started:
        time.sleep(0.005)
    ok = "t" in started and wait_done(p, offsets, a.timeout)
    t1 = time.monotonic()
    res = None
    if ok:
        res = {"wall": t1 - started["t"], "cpu": cpu_seconds(p.pid) - started["cpu"], "rss": peak_rss_mb(p.pid)}
    offsets.close()
    p.send_signal(signal.SIGTERM)
    p.wait(30)
    th.join(5)
    if res:
        res["summary"] = lines[-1] if lines else ""
    return res


def read_json_topic(brokers, topic, nparts):
    ends = end_offsets(brokers, topic, nparts)
    c = Consumer({"bootstrap.servers": brokers, "group.id": f"reader-{topic}", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in range(nparts)])
    want, out = sum(ends.values()), []
    deadline = time.monotonic() + 120
    while len(out) < want and time.monotonic() < deadline:
        for m in c.consume(10000, 1.0):
            if not m.error():
                out.append(json.loads(m.value()))
    c.close()
    return out


def final(values):
    """Last revision per (building, apartment or '-', window_start) of the hourly windows."""
    out = {}
    for v in values:
        if v.get("window_size_ms") != 3600000:
            continue
        k = (v["building_id"], v["apartment_id"] or "-", v["window_start"])
        if k not in out or v["revision"] >= out[k]["revision"]:
            out[k] = v
    return out


def compare(fc, fp):
    """heating_kwh of the windows in both: (sum C, sum Python, windows within 1 %, windows)."""
    both = sorted(set(fc) & set(fp))
    sc = sp = 0.0
    agree = 0
    worst = []
    for k in both:
        x, y = fc[k]["heating_kwh"], fp[k]["heating_kwh"]
        sc += x or 0.0
        sp += y or 0.0
        if (x is None) == (y is None) and (x is None or abs(x - y) <= 0.01 * max(abs(x), 0.01)):
            agree += 1
        else:
            worst.append((k, x, y))
    return sc, sp, agree, len(both), worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=3, help="runs of each, alternating")
    ap.add_argument("--buildings", type=int, default=10)
    ap.add_argument("--apartments", type=int, default=20)
    ap.add_argument("--days", type=float, default=14)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--timeout", type=float, default=600, help="longest one run may take (s)")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    a.tmp = tempfile.mkdtemp(prefix="hvs-side-")
    atexit.register(lambda: failures or shutil.rmtree(a.tmp, ignore_errors=True))
    if 2 * a.runs > 15:
        sys.exit("at most 7 runs of each (one Redis database per run)")

    global H
    H = Harness(a.build, a.tmp)
    brokers, ctl, redis_url = H.start_services()
    nparts = 12
    env = dict(os.environ, HVS_KAFKA_BROKERS=brokers, HVS_REDIS_URL=redis_url,
               HVS_KAFKA_FETCH_WAIT_MAX_MS="10", HVS_HTTP_PORT="-1", HVS_LOG_LEVEL="warn")
    control(ctl, f"topic create peer.readings {nparts}")
    for i in range(1, 2 * a.runs + 1):
        for t in (f"c{i}.hourly", f"c{i}.15m", f"p{i}.hourly", f"p{i}.dlq"):
            control(ctl, f"topic create {t} {nparts}")

    sim_args = ["--seed", str(a.seed), "--start", "2024-12-01T00:00:00Z", "--days", f"{a.days:g}",
                "--buildings", str(a.buildings), "--apartments-per-building", str(a.apartments),
                "--publish-topology", "false"]
    sim = subprocess.run([f"{a.build}/bin/hvs-simulator", "--out", "kafka"] + sim_args,
                         env=dict(env, HVS_LOG_LEVEL="info"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    summary = [line for line in sim.stderr.splitlines() if "records=" in line]
    check(sim.returncode == 0 and summary, "simulator to readings.raw (Avro)")
    if failures:
        print(sim.stderr[-2000:])
        return
    s = summary[-1]
    # delivered = records + duplicates: the messages on the topic, all of them counted
    records = int(s.split("delivered=")[1].split()[0])
    values = int(s.split("values=")[1].split()[0])
    jsonl = f"{a.tmp}/readings.jsonl"
    with open(jsonl, "w") as f:
        subprocess.run([f"{a.build}/bin/hvs-simulator", "--out", "jsonl"] + sim_args, env=env, stdout=f,
                       stderr=subprocess.DEVNULL, check=True)
    prod = Producer({"bootstrap.servers": brokers, "linger.ms": 5, "compression.type": "lz4",
                     "partitioner": "murmur2_random", "queue.buffering.max.messages": 1000000})
    lines = 0
    with open(jsonl, "rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            try:
                key = json.loads(line).get("building_id")
                key = key.encode() if isinstance(key, str) else None
            except (ValueError, AttributeError):
                key = None
            prod.produce("peer.readings", value=line, key=key)
            lines += 1
            if lines % 50000 == 0:
                prod.poll(0)
    check(prod.flush(60) == 0, f"{lines} JSON lines on peer.readings")
    ends_c = end_offsets(brokers, "readings.raw", nparts)
    ends_p = end_offsets(brokers, "peer.readings", nparts)
    check(sum(ends_c.values()) == records and lines == records,
          f"the same stream twice: {records} records ({values} readings) as Avro and as JSON")

    results = {"C": [], "Python": []}
    for r in range(a.runs):
        for kind, fn, ends in (("C", run_c, ends_c), ("Python", run_py, ends_p)):
            i = 2 * r + (1 if kind == "C" else 2)
            res = fn(a, env, i, ends)
            check(res is not None, f"{kind} run {r + 1} finished")
            if res is None:
                return
            res["rate"] = values / res["wall"]
            res["cpu100k"] = res["cpu"] / values * 1e5
            results[kind].append(res)
            extra = ""
            if "phases" in res:
                extra = " phases(s): " + " ".join(f"{k} {v:.2f}" for k, v in res["phases"].items())
            print(f"     {kind:6s} run {r + 1}: {res['wall']:.2f} s = {res['rate'] / 1e3:.0f} k readings/s, "
                  f"CPU {res['cpu']:.2f} s = {res['cpu100k']:.3f} CPU-s/100k, peak RSS {res['rss']:.0f} MB{extra}"
                  f"{' ' + res['summary'] if res.get('summary') else ''}",
                  flush=True)

    med = {k: {f: statistics.median(x[f] for x in v) for f in ("wall", "rate", "cpu100k", "rss")}
           for k, v in results.items()}
    print(f"\nstream: {records} records, {values} readings (sensor values: the rates count these), "
          f"{a.buildings} x {a.apartments} x {a.days:g} days, seed {a.seed}; medians of {a.runs} runs each")
    print("| worker | wall readings/s | CPU-s per 100 k readings | peak RSS MB |")
    print("| --- | --- | --- | --- |")
    for k in ("C", "Python"):
        print(f"| {k} | {med[k]['rate'] / 1e3:.0f} k | {med[k]['cpu100k']:.3f} | {med[k]['rss']:.0f} |")
    print(f"| C/Python | {med['C']['rate'] / med['Python']['rate']:.2f}x wall rate | "
          f"{med['Python']['cpu100k'] / med['C']['cpu100k']:.2f}x CPU efficiency | "
          f"{med['C']['rss'] / med['Python']['rss']:.2f}x RSS |\n", flush=True)

    # the outputs: the first C run against the first Python run
    out = subprocess.run([f"{a.build}/bin/hvsctl", "tail", "c1.hourly", "--from-beginning", "--max", "100000000"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    fc = final(json.loads(line)["value"] for line in out.splitlines() if line.strip())
    fp = final(read_json_topic(brokers, "p2.hourly", nparts))
    for label, sel in (("apartment-hours", lambda k: k[1] != "-"), ("building-hours", lambda k: k[1] == "-")):
        c = {k: v for k, v in fc.items() if sel(k)}
        p = {k: v for k, v in fp.items() if sel(k)}
        sc, sp, agree, n, worst = compare(c, p)
        rel = abs(sc - sp) / max(abs(sc), 1e-9)
        check(n > 0 and rel <= 0.01 and agree >= 0.99 * n,
              f"{label}: {n} in both (C {len(c)}, Python {len(p)}); heating_kwh sum C {sc:.1f}, "
              f"Python {sp:.1f} ({100 * rel:.3f} % apart); {agree} of {n} "
              f"({100 * agree / max(n, 1):.2f} %) within 1 %")
        for w in worst[:5]:
            print("    ", w)
        only_c, only_p = sorted(set(c) - set(p)), sorted(set(p) - set(c))
        if only_c or only_p:
            last = max(k[2] for k in fc)
            print(f"     only in C: {len(only_c)} ({sum(k[2] >= last - 3 * 3600000 for k in only_c)} of them in the "
                  f"stream's last 3 hours), e.g. {only_c[:2]}; only in Python: {len(only_p)}, e.g. {only_p[:2]}")


if __name__ == "__main__":
    try:
        main()
    finally:
        if H:
            H.stop_all()
    # the logs (broker, each run) are kept for a failure, removed after a success
    if failures:
        print(f"{len(failures)} failed; logs in /tmp/hvs-side-*")
    else:
        print("all ok")
    sys.exit(1 if failures else 0)
