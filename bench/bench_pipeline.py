#!/usr/bin/python3
"""bench_pipeline.py - the whole pipeline at once on one stream, on this machine.

simulator -> aggregator -> features -> scorer -> alerter, with hvs-weather, hvs-forecaster and
hvs-refresher running too, all against one hvs-devbroker and one redis-server:

  1. setup (not timed): --history-days of a fleet (--buildings x --apartments) through
     aggregator, weather and features, then hvs-trainer (the demo's short settings) until its
     model versions are out, so the scorer and forecaster serve trained models;
  2. catch-up (timed): the next --catchup-hours of the same fleet published as fast as the
     simulator goes while every stage runs; per stage: the messages it consumed, its busy time
     (first to last change of its input counter), its rate and its CPU seconds; the pipeline's
     drain time (first record of the phase appended -> every stage caught up: consumer lag 0
     and counters still), from which the fleet this machine keeps up with in real time follows:
     apartments x hours x 3600 / drain seconds (and a tenth of that with 10x catch-up headroom);
  3. live (timed): --live-hours more at --speed simulated seconds per wall second (starting at
     a UTC midnight, so the previous day's alert lists are made live); latency per
     apartment-hour from Kafka's append timestamps: the hour's last reading -> its aggregate
     (this includes waiting for the event-time watermark: out-of-orderness plus the window's
     grace, in simulated time divided by the speed) -> its feature vector -> its score; and the
     alert lists made in the phase, from the moment every partition's inputs had passed the
     day's end by the alerter's lag (2 h) to each listed alert; p50/p99.

usage: bench_pipeline.py BUILD_DIR [--buildings 20] [--apartments 50] [--history-days 10]
                                   [--catchup-hours 48] [--live-hours 3] [--speed 360]
Prints its figures; exits non-zero only when a phase does not complete.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
from hvs_harness import Harness, cpu_seconds, free_port, http_get, metric_sum, metrics, peak_rss_mb  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("--buildings", type=int, default=20)
ap.add_argument("--apartments", type=int, default=50)
ap.add_argument("--history-days", type=int, default=10)
ap.add_argument("--catchup-hours", type=int, default=48)
ap.add_argument("--live-hours", type=float, default=3)
ap.add_argument("--speed", type=int, default=360)
args = ap.parse_args()
BIN = f"{args.build}/bin"
T0 = 1733011200  # 2024-12-01T00:00:00Z
tmp = tempfile.mkdtemp(prefix="hvs-bench-pipeline-")
H = Harness(args.build, tmp)
STAGES = ["aggregator", "features", "scorer", "alerter", "forecaster", "refresher"]


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def spawn(name, argv, env):
    return H.spawn(argv, f"{name}.log", env)


def tail(env, topic):
    """The topic's records, streamed (undecodable ones - the simulator's broken records, printed
    as {"error", "reason"} - skipped)."""
    p = subprocess.Popen([f"{BIN}/hvsctl", "tail", topic, "--from-beginning", "--max", "100000000"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        if line.strip():
            m = json.loads(line)
            if "value" in m:
                yield m
    p.wait()


def quantile(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def simulate(env, weather_port, start, days, speed):
    """One simulator run serving weather on its clock; returns (process, summary line)."""
    argv = [f"{BIN}/hvs-simulator", "--out", "kafka", "--buildings", str(args.buildings),
            "--apartments-per-building", str(args.apartments), "--start", iso(start), "--days", f"{days:.6f}",
            "--speed", str(speed), "--seed", "11", "--serve-weather", str(weather_port)]
    return spawn(f"simulator-{start}", argv, dict(env, HVS_LOG_LEVEL="info"))


def wait_summary(p, start, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in open(f"{tmp}/simulator-{start}.log"):
            if '"summary"' in line:
                m = re.search(r"delivered=(\d+)", line)
                return {"delivered": int(m.group(1)) if m else "?"}
        if p.poll() is not None:
            break
        time.sleep(0.2)
    sys.exit(f"simulator run from {iso(start)} did not finish; log in {tmp}")


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def ready(port):
    return http_get(port, "/readyz")[0] == 200


def caught_up(ports):
    """Every stage assigned its partitions (/readyz) and lag 0."""
    for s in STAGES:
        if not ready(ports[s]):
            return False
        text = metrics(ports[s])
        if metric_sum(text, f"hvs_{s}_consumer_lag_messages") != 0 or not text:
            return False
    return True


def main():
    bootstrap, _, redis_url = H.start_services()
    rport = int(redis_url.rsplit(":", 1)[1])
    env = dict(os.environ, HVS_KAFKA_BROKERS=bootstrap, HVS_REDIS_URL=redis_url,
               HVS_KAFKA_FETCH_WAIT_MAX_MS="10", HVS_LOG_LEVEL="warn", HVS_HTTP_PORT="-1", OMP_WAIT_POLICY="PASSIVE")
    subprocess.run([f"{BIN}/hvsctl", "topics", "create"], env=env, check=True, stdout=subprocess.DEVNULL)
    wport = free_port()
    napts = args.buildings * args.apartments

    # 1. setup: history, the front half, a trained model set
    t_hist = T0
    t_catch = T0 + args.history_days * 86400
    t_live = t_catch + args.catchup_hours * 3600
    ports = {s: free_port() for s in STAGES + ["trainer"]}
    workers = {}

    def start_worker(s, extra=()):
        workers[s] = spawn(s, [f"{BIN}/hvs-{s}", *extra], dict(env, HVS_HTTP_PORT=str(ports[s])))

    sim = simulate(env, wport, t_hist, args.history_days, "max")
    spawn("weather", [f"{BIN}/hvs-weather", "--url", f"http://127.0.0.1:{wport}", "--clock-url",
                      f"http://127.0.0.1:{wport}/v1/status", "--poll-interval", "1s", "--spread", "0", "--past-days", "8",
                      "--topology-wait", "60s"], env)
    start_worker("aggregator")
    start_worker("features")
    t = time.time()
    s1 = wait_summary(sim, t_hist, 900)
    while time.time() - t < 900:
        if all(metric_sum(metrics(ports[s]), f"hvs_{s}_consumer_lag_messages") == 0 for s in ("aggregator", "features")):
            break
        time.sleep(1)
    workers["trainer"] = spawn("trainer", [f"{BIN}/hvs-trainer", "--window", f"{args.history_days}d", "--folds", "1",
                                           "--fold-days", "2", "--min-train-days", "7", "--mature-days", "1d",
                                           "--rounds", "100", "--eta", "0.1", "--nthread", "2", "--per-hour", "2"],
                               dict(env, HVS_HTTP_PORT=str(ports["trainer"])))
    last, same = -1, 0
    for _ in range(900):
        n = metric_sum(metrics(ports["trainer"]), "hvs_trainer_runs_total")
        same = same + 1 if n and n == last else 0
        if same >= 5:
            break
        last = n
        time.sleep(1)
    text = metrics(ports["trainer"])
    versions = metric_sum(text, "hvs_trainer_versions_total")
    trained = ", ".join(f"{metric_sum(text, f'hvs_trainer_{k}_total'):.0f} {k}" for k in ("runs", "rejected", "skipped"))
    stop(workers.pop("trainer"))
    print(f"setup: {napts} apartments ({args.buildings} buildings), {args.history_days} days of history "
          f"({s1.get('delivered', '?')} records) through aggregator, weather, features; trainer: {versions:.0f} "
          f"model versions ({trained})", flush=True)
    for s in ("scorer", "alerter", "forecaster", "refresher"):
        start_worker(s)
    deadline = time.time() + 300
    while time.time() < deadline and not caught_up(ports):
        time.sleep(0.5)
    stop(sim)

    # 2. catch-up: every stage at once on a burst of the stream
    before = {s: (metric_sum(metrics(ports[s]), in_metric(s)), cpu_seconds(workers[s].pid)) for s in STAGES}
    samples = {s: [] for s in STAGES}
    t_start = time.time()
    sim = simulate(env, wport, t_catch, args.catchup_hours / 24, "max")
    still = 0
    while time.time() - t_start < 1800:
        now = time.time()
        for s in STAGES:
            samples[s].append((now, metric_sum(metrics(ports[s]), in_metric(s))))
        done = sim.poll() is not None or any('"summary"' in l for l in open(f"{tmp}/simulator-{t_catch}.log"))
        moving = any(len(v) > 1 and v[-1][1] != v[-2][1] for v in samples.values())
        still = still + 1 if done and not moving and caught_up(ports) else 0
        if still >= 6:
            break
        time.sleep(0.5)
    else:
        sys.exit(f"catch-up did not drain in 30 min; logs in {tmp}")
    t_end = samples["aggregator"][-7][0]  # the last sample before the still ones
    drain = t_end - t_start
    s2 = wait_summary(sim, t_catch, 60)
    stop(sim)
    print(f"catch-up: {args.catchup_hours} h of {napts} apartments ({s2.get('delivered', '?')} records) drained "
          f"in {drain:.1f} s by all stages at once", flush=True)
    print(f"  {'stage':<11} {'consumed':>9} {'busy s':>7} {'msgs/s':>8} {'CPU s':>6} {'peak RSS MB':>11} "
          f"{'MB per 1 000 apartments':>23}")
    for s in STAGES:
        v = samples[s]
        n = v[-1][1] - before[s][0]
        changes = [t for (t, c), (_, c0) in zip(v[1:], v[:-1]) if c != c0]
        busy = (changes[-1] - v[0][0]) if changes else 0.0
        cpu = cpu_seconds(workers[s].pid) - before[s][1]
        rss = peak_rss_mb(workers[s].pid)
        print(f"  {s:<11} {n:>9.0f} {busy:>7.1f} {n / busy if busy else 0:>8.0f} {cpu:>6.2f} {rss:>11.1f} "
              f"{rss / napts * 1000:>23.1f}")
    info = subprocess.run(["redis-cli", "-p", str(rport), "info", "memory"], stdout=subprocess.PIPE, text=True).stdout
    used = next((int(l.split(":")[1]) for l in info.splitlines() if l.startswith("used_memory:")), 0)
    print(f"Redis: {used / 1e6:.1f} MB of state for {napts} apartments = {used / napts / 1e3:.1f} KB per apartment "
          f"across all stages", flush=True)
    by_stage, kinds = redis_by_stage(rport)
    print("  by stage (MEMORY USAGE of its keys, KB per apartment): " +
          ", ".join(f"{k} {v / napts / 1e3:.2f}" for k, v in sorted(by_stage.items(), key=lambda kv: -kv[1])),
          flush=True)
    print("  largest key kinds (KB per apartment): " +
          ", ".join(f"{k} {v / napts / 1e3:.2f}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:10]),
          flush=True)
    rt = napts * args.catchup_hours * 3600 / drain
    print(f"fleet in real time on this machine: {rt:,.0f} apartments; with 10x catch-up headroom: "
          f"{rt / 10:,.0f} apartments", flush=True)

    # 3. live: latency per apartment-hour
    wall_live_ms = time.time() * 1000
    sim = simulate(env, wport, t_live, args.live_hours / 24, args.speed)
    wait_summary(sim, t_live, 3600)
    deadline = time.time() + 120
    time.sleep(3)
    while time.time() < deadline and not caught_up(ports):
        time.sleep(0.5)
    time.sleep(3)
    stop(sim)
    lo_ms, hi_ms = t_live * 1000, (t_live + args.live_hours * 3600) * 1000
    last_read = {}
    for m in tail(env, "readings.raw"):
        v = m["value"]
        ts = v.get("timestamp")
        if isinstance(ts, (int, float)) and lo_ms <= ts < hi_ms and v.get("apartment_id"):
            k = (v["apartment_id"], ts - ts % 3600000)
            last_read[k] = max(last_read.get(k, 0), m["timestamp"])

    def first(topic, hour_field, pred=lambda v: True):
        out = {}
        for m in tail(env, topic):
            v = m["value"]
            if v.get("apartment_id") and pred(v):
                k = (v["apartment_id"], v[hour_field])
                out[k] = min(out.get(k, m["timestamp"]), m["timestamp"])
        return out

    agg = first("aggregates.hourly", "window_start")
    vec = first("features.hourly", "target_hour")
    score = first("scores.anomaly", "hour")
    hops = {"reading -> aggregate": [], "aggregate -> vector": [], "vector -> score": [], "reading -> score": []}
    for k, tr in last_read.items():
        if k in agg:
            hops["reading -> aggregate"].append(agg[k] - tr)
        if k in agg and k in vec:
            hops["aggregate -> vector"].append(vec[k] - agg[k])
        if k in vec and k in score:
            hops["vector -> score"].append(score[k] - vec[k])
        if k in score:
            hops["reading -> score"].append(score[k] - tr)
    # Alerts. The daily list of UTC day D is made once both inputs of every partition have
    # passed D's last hour by the alerter's lag (2 h): the live phase starts at a midnight, so
    # the list of the day before it is made live. Its latency runs from the moment the last
    # partition's inputs passed that point (the first score and the first apartment aggregate
    # of each partition whose hour ends at or after midnight + lag: Kafka append times, the
    # latest over partitions) to the list's alerts appended on `alerts`.
    lag_ms = 2 * 3600 * 1000
    need = lo_ms + lag_ms - 3600 * 1000  # an hour starting here ends at midnight + lag
    passed = {}
    for topic, hour_field in (("scores.anomaly", "hour"), ("aggregates.hourly", "window_start")):
        for m in tail(env, topic):
            v = m["value"]
            if v.get("apartment_id") and v.get(hour_field, 0) >= need:
                k = (topic, m["partition"])
                passed[k] = min(passed.get(k, m["timestamp"]), m["timestamp"])
    parts = {p for (_, p) in passed}
    ready = [max(passed.get((t, p), float("inf")) for t in ("scores.anomaly", "aggregates.hourly"))
             for p in parts]
    t_ready = max(ready) if ready else float("inf")
    listed, critical = {}, 0
    for m in tail(env, "alerts"):
        v = m["value"]
        if m["timestamp"] < wall_live_ms or not v.get("apartment_id"):
            continue
        if v.get("rank") is not None and v["alert_id"] not in listed:
            listed[v["alert_id"]] = m["timestamp"]
        critical += v.get("severity") == "CRITICAL"
    alerts = [t - t_ready for t in listed.values()] if t_ready != float("inf") else []
    print(f"live: {args.live_hours} h at {args.speed}x ({len(last_read)} apartment-hours with readings); "
          f"latency from Kafka append times, ms (the watermark waits out-of-orderness + grace / speed):")
    for name, v in hops.items():
        print(f"  {name:<22} n={len(v):>6}  p50 {quantile(v, 0.5):>8.0f}  p99 {quantile(v, 0.99):>8.0f}")
    print(f"  {'day closed -> listed':<22} n={len(alerts):>6}  p50 {quantile(alerts, 0.5):>8.0f}  "
          f"p99 {quantile(alerts, 0.99):>8.0f}  (the list of the day before the live phase, from the "
          f"last of {len(parts)} partitions passing its end + 2 h; {critical} CRITICAL records meanwhile)")
    if not hops["reading -> score"]:
        sys.exit(f"no apartment-hour of the live phase was scored; logs in {tmp}")


def redis_by_stage(rport):
    """Bytes of Redis's keys by the stage that owns them (the namespace after "hvs:" and the
    building tag: "hvs:{B}:sc:a:apt" -> sc, "hvs:stage:scorer:3" -> stage), and by key kind (its
    first two parts: sc:a, stage:scorer)."""
    keys = subprocess.run(["redis-cli", "-p", str(rport), "--scan"], stdout=subprocess.PIPE,
                          text=True).stdout.split("\n")
    keys = [k for k in keys if k]  # ids hold no control characters: one key per line
    quoted = (k.replace("\\", "\\\\").replace('"', '\\"') for k in keys)
    cmds = "".join(f'MEMORY USAGE "{q}" SAMPLES 0\n' for q in quoted)
    out = subprocess.run(["redis-cli", "-p", str(rport)], input=cmds, stdout=subprocess.PIPE,
                         text=True).stdout.split("\n")
    by, kinds = {}, {}
    for k, n in zip(keys, out):
        rest = re.sub(r"^hvs:(\{[^}]*\}:)?", "", k)
        ns = rest.split(":", 1)[0]
        kind = ":".join(rest.split(":")[:2])
        b = int(n) if n.strip().isdigit() else 0
        by[ns] = by.get(ns, 0) + b
        kinds[kind] = kinds.get(kind, 0) + b
    return by, kinds


def in_metric(s):
    return "hvs_aggregator_readings_total" if s == "aggregator" else f"hvs_{s}_inputs_total"


if __name__ == "__main__":
    try:
        main()
    finally:
        H.stop_all()
