#!/usr/bin/env python3
"""test_aggregator_sim_it.py - hvs-aggregator on the simulator's messy data, end to end.

Real redis-server, real hvs-devbroker, the real executables. One simulated stream (duplicates,
reordering, late batches, gaps, clock skew, meter replacements, broken records) is aggregated
three times, each run with its own consumer group, Redis database and output topics:
  A  one instance, undisturbed;
  B  killed with SIGKILL at random moments (several times), restarted each time on its state;
  C  two instances in one group: the second joins mid-stream, then the first leaves
     (cooperative-sticky hand-off of every partition).
The final aggregates (latest revision per window) must be identical across A, B and C, and equal
to an independent offline recomputation from the same readings (offline_aggregate.py).

usage: test_aggregator_sim_it.py BUILD_DIR SOURCE_DIR
"""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

BUILD, SRC = sys.argv[1], sys.argv[2]
sys.path.insert(0, f"{SRC}/tests/support")
from hvs_harness import Harness, control, free_port, http_get  # noqa: E402
SIM = f"{BUILD}/bin/hvs-simulator"
AGG = f"{BUILD}/bin/hvs-aggregator"
HVSCTL = f"{BUILD}/bin/hvsctl"
OFFLINE = f"{SRC}/tests/aggregator/offline_aggregate.py"
SIM_ARGS = ["--buildings", "4", "--apartments-per-building", "8", "--start", "2024-11-25T00:00:00Z",
            "--days", "6", "--seed", "5", "--publish-topology", "false", "--late-batch-rate", "0.05",
            "--gap-rate", "0.02", "--meter-replacement-rate", "2"]
failures = []
tmp = tempfile.mkdtemp(prefix="hvs-aggsim-")
H = Harness(BUILD, tmp)


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if not cond:
        failures.append(msg)


def tail(env, topic):
    out = subprocess.run([HVSCTL, "tail", topic, "--from-beginning", "--max", "100000000"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def final(msgs):
    out = {}
    for m in msgs:
        v = m["value"]
        key = f'{v["building_id"]}/{v["apartment_id"] or "-"}/{v["window_size_ms"]}/{v["window_start"]}'
        if key not in out or v["revision"] >= out[key]["revision"]:
            out[key] = v
    return out


def comparable(v):
    v = dict(v)
    for k in ("revision", "emitted_at"):
        v.pop(k, None)
    v["flags"] = sorted(f for f in v["flags"] if f != "late_data")
    return v


def metric(port, name):
    """A metric's value (0 when absent or the member does not answer). The counters restart with
    each process, so a restarted member counts only the readings it consumed itself."""
    status, body = http_get(port, "/metrics")
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def caught_up(port):
    """The member is assigned partitions and has consumed everything in them."""
    if http_get(port, "/readyz")[0] != 200:
        return False
    status, body = http_get(port, "/metrics")
    for line in body.splitlines():
        if line.startswith("hvs_aggregator_consumer_lag_messages "):
            return float(line.split()[1]) == 0
    return False


def input_ends(env):
    """The readings topic's end offset per partition."""
    ends = {}
    for m in tail(env, "readings.raw"):
        ends[m["partition"]] = max(ends.get(m["partition"], 0), m["offset"] + 1)
    return ends


def applied_everything(env, ends):
    """The stage's stored offsets (hvs:stage:aggregator:<P>, written with its state) reached
    every input partition's end: a member caught up on its own assignment while a departed
    member's partitions are still being handed over is not done."""
    for p, end in ends.items():
        out = subprocess.run(["redis-cli", "-u", env["HVS_REDIS_URL"], "HGET", f"hvs:stage:aggregator:{p}",
                              "o:readings.raw"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
        if not out.strip().isdigit() or int(out) < end:
            return False
    return True


restarts = 0


def wait_caught_up(env, topic, members, ends, timeout_s=180):
    """Until every member is caught up, the stage applied every input and `topic` stopped
    growing; returns its message count. A member that exits (the worker's stall watchdog:
    messages wait, none arrive) is restarted on its state, as Kubernetes would, and counted."""
    global restarts
    deadline = time.time() + timeout_s
    last = -1
    while time.time() < deadline:
        for i, m in enumerate(members):
            if m.p.poll() is not None:
                restarts += 1
                time.sleep(3.5)
                members[i] = Aggregator(m.env, f"{m.name}-restart{restarts}", m.batch)
        if all(caught_up(m.port) for m in members) and applied_everything(env, ends):
            n = len(tail(env, topic))
            if n == last and n > 0:
                return n
            last = n
            time.sleep(1.0)
        else:
            last = -1
            time.sleep(0.3)
    return -1


class Aggregator:
    def __init__(self, env, name, batch):
        self.env, self.name, self.batch = env, name, batch
        self.port = free_port()
        self.log = f"{tmp}/{name}.log"
        self.p = subprocess.Popen([AGG, "--batch", str(batch)], env=dict(env, HVS_HTTP_PORT=str(self.port),
                                                                         HVS_LOG_LEVEL="info",
                                                                         HVS_AGG_STALL_TIMEOUT="8s"),
                                  stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        H.procs.append(self.p)  # stopped at the end whatever happens

    def said(self, text):
        return sum(text in line for line in open(self.log))


def run_env(base, group, db, prefix):
    env = dict(base, HVS_KAFKA_GROUP=group, HVS_REDIS_URL=f'{base["HVS_REDIS_URL"]}/{db}')
    if prefix:
        env["HVS_TOPIC_AGGREGATES_HOURLY"] = f"{prefix}.hourly"
        env["HVS_TOPIC_AGGREGATES_15M"] = f"{prefix}.15m"
    return env


def main():
    bootstrap, ctl, redis_url = H.start_services()
    base = dict(os.environ, HVS_KAFKA_BROKERS=bootstrap, HVS_REDIS_URL=redis_url,
                HVS_KAFKA_FETCH_WAIT_MAX_MS="10", HVS_HTTP_PORT="-1", HVS_LOG_LEVEL="warn",
                HVS_KAFKA_SESSION_TIMEOUT_MS="3000",
                HVS_KAFKA_HEARTBEAT_INTERVAL_MS="300")
    for prefix in ("b", "c"):
        for size in ("hourly", "15m"):
            control(ctl, f"topic create {prefix}.{size} 12")
    sim = subprocess.run([SIM, "--out", "kafka"] + SIM_ARGS, env=base, stderr=subprocess.PIPE, text=True)
    check(sim.returncode == 0, "simulator to Kafka")
    with open(f"{tmp}/readings.jsonl", "w") as f:
        subprocess.run([SIM, "--out", "jsonl"] + SIM_ARGS, env=base, stdout=f, stderr=subprocess.DEVNULL,
                       check=True)

    ends = input_ends(base)
    # A: undisturbed, large batches
    env_a = run_env(base, "agg-a", 0, None)
    a = Aggregator(env_a, "a", 5000)
    members = [a]
    na = wait_caught_up(env_a, "aggregates.hourly", members, ends)
    a = members[0]
    a.p.send_signal(signal.SIGTERM)
    check(a.p.wait(30) == 0 and na > 0, f"A: {na} hourly messages, clean exit")

    # B: small batches, SIGKILL at random points of the stream (after a random number of
    # readings consumed, from the member's /metrics), restarted each time on its stored state
    env_b = run_env(base, "agg-b", 1, "b")
    rnd = random.Random(int(os.environ.get("HVS_TEST_SEED", "7")))
    total = sum(1 for _ in open(f"{tmp}/readings.jsonl"))
    progress = []
    for k in range(5):
        target = rnd.uniform(0.05, 0.2) * total  # this member's share before it dies
        b = Aggregator(env_b, f"b{k}", 20)
        deadline = time.time() + 60
        while time.time() < deadline and b.p.poll() is None and metric(b.port, "hvs_aggregator_readings_total") < target:
            time.sleep(0.01)
        b.p.kill()
        b.p.wait()
        progress.append(len(tail(env_b, "b.hourly")))
        # Like a crash-looping pod, come back after the dead member's session (3 s) expired:
        # joining while it still holds its partitions can leave the mock's group without fetches.
        time.sleep(3.5)
    b = Aggregator(env_b, "b-final", 20)
    members = [b]
    nb = wait_caught_up(env_b, "b.hourly", members, ends)
    b = members[0]
    b.p.send_signal(signal.SIGTERM)
    check(b.p.wait(30) == 0 and nb > 0, f"B: killed with {progress} hourly messages out, then {nb}")
    check(sum(0 < p < nb for p in progress) >= 3, "B: at least three kills landed mid-stream")

    # C: two members in one group: the second joins mid-stream, then the first leaves
    env_c = run_env(base, "agg-c", 2, "c")
    # The first member takes batches of 4 (the second 20): with batches of 20 a fast first member
    # once read the whole stream (13 789 readings) before the mock group's join let the second in.
    c1 = Aggregator(env_c, "c1", 4)
    # the second joins as soon as the first is reading (a fixed wait let a fast first member read
    # the whole stream before the hand-off; the group's join still takes seconds)
    deadline = time.time() + 30
    while time.time() < deadline and metric(c1.port, "hvs_aggregator_readings_total") == 0:
        time.sleep(0.01)
    c2 = Aggregator(env_c, "c2", 20)
    # the output at the hand-off: counted as soon as the first member gives partitions up (a
    # fixed wait let a fast member finish the stream before it was counted)
    deadline = time.time() + 20
    while time.time() < deadline and c1.said("revoked") == 0:
        time.sleep(0.05)
    read_at_handoff = metric(c1.port, "hvs_aggregator_readings_total")
    mid = len(tail(env_c, "c.hourly"))
    # the first leaves once the hand-off is over: the second holds partitions. (Leaving while the
    # group still rebalances, as a fixed 2 s wait did once under ASan, gets the first member's
    # last commits refused - REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION - and it exits counting
    # them as a shutdown incomplete: design §12.)
    deadline = time.time() + 30
    while time.time() < deadline and c2.said("partitions assigned") == 0:
        time.sleep(0.05)
    time.sleep(1.0)
    c1.p.send_signal(signal.SIGTERM)
    check(c1.p.wait(30) == 0, "C: first member left cleanly")
    members = [c2]
    nc = wait_caught_up(env_c, "c.hourly", members, ends)
    c2 = members[0]
    c2.p.send_signal(signal.SIGTERM)
    check(c2.p.wait(30) == 0 and nc > 0, f"C: second member finished, {nc} hourly messages")
    check(c1.said("revoked") > 0 and 0 < read_at_handoff < total and mid < nc,
          f"C: partitions moved mid-stream ({c1.said('revoked')} revoked from the first after "
          f"it read {read_at_handoff:.0f} of {total} readings; {mid} of {nc} out at the hand-off)")

    fa = final(tail(env_a, "aggregates.hourly") + tail(env_a, "aggregates.15m"))
    fb = final(tail(env_b, "b.hourly") + tail(env_b, "b.15m"))
    fc = final(tail(env_c, "c.hourly") + tail(env_c, "c.15m"))
    revisions = sum(1 for v in fa.values() if v["revision"] > 0)
    check(len(fa) > 4 * 9 * 24 * 4 and revisions > 0, f"A: {len(fa)} windows, {revisions} revised")
    for name, other in (("B (killed)", fb), ("C (rebalanced)", fc)):
        same_keys = set(other) == set(fa)
        diff = [k for k in fa if k in other and comparable(fa[k]) != comparable(other[k])]
        check(same_keys and not diff,
              f"{name} = A: {len(other)} windows, {len(set(fa) ^ set(other))} keys differ, {len(diff)} values differ")
        for k in diff[:3]:
            print("   ", k, comparable(fa[k]), comparable(other[k]))

    print(f"     {restarts} stalled member(s) restarted")

    # Independent recomputation
    keys = sorted(k for k in fa)
    with open(f"{tmp}/keys.json", "w") as f:
        json.dump(keys, f)
    exp = json.loads(subprocess.run([sys.executable, OFFLINE, f"{tmp}/readings.jsonl", f"{tmp}/keys.json"],
                                    stdout=subprocess.PIPE, check=True, text=True).stdout)
    print(f"     offline: {exp['refused']} refused, {exp['too_late']} too late")
    bad = []
    fields = ("heating_kwh", "hot_water_litres", "room_temp_mean_c", "room_temp_min_c", "room_temp_max_c",
              "setpoint_mean_c", "comfort_gap_mean_c", "uncounted_kwh")
    room_fields = ("temp_mean_c", "temp_min_c", "temp_max_c", "temp_std_c", "setpoint_mean_c", "valve_mean_pct")
    rooms_compared, rooms_changed, rooms_valve = [0], [0], [0]
    for k in keys:
        e, got = exp["windows"].get(k), fa[k]
        if e is None:
            bad.append((k, "offline has no such window"))
            continue
        for f in fields:
            x, y = e.get(f), got.get(f)
            if (x is None) != (y is None) or (x is not None and abs(x - y) > 1e-6 * max(1.0, abs(x))):
                bad.append((k, f, x, y))
        for f in ("readings_seen", "quality") + (("reporting_apartments",) if k.split("/")[1] == "-" else ()):
            if e.get(f) != got.get(f):
                bad.append((k, f, e.get(f), got.get(f)))
        if e["flags"] != sorted(x for x in got["flags"] if x != "late_data"):
            bad.append((k, "flags", e["flags"], got["flags"]))
        er, gr = e.get("rooms", []), got.get("rooms", [])
        if [x["room"] for x in er] != [x["room"] for x in gr]:
            bad.append((k, "rooms", [x["room"] for x in er], [x["room"] for x in gr]))
            continue
        rooms_compared[0] += len(er)
        for x, y in zip(er, gr):
            for f in room_fields:
                if (x[f] is None) != (y[f] is None) or (x[f] is not None and abs(x[f] - y[f]) > 1e-6 * max(1.0, abs(x[f]))):
                    bad.append((k, x["room"], f, x[f], y[f]))
            for f in ("readings_seen", "temp_changes"):
                if x[f] != y[f]:
                    bad.append((k, x["room"], f, x[f], y[f]))
            rooms_changed[0] += y["temp_changes"] > 0
            rooms_valve[0] += y["valve_mean_pct"] is not None
    check(not bad, f"offline recomputation: {len(keys) - len({b[0] for b in bad})} of {len(keys)} windows equal")
    check(rooms_compared[0] > 1000 and 0 < rooms_changed[0] < rooms_compared[0] and rooms_valve[0] > 0,
          f"rooms compared: {rooms_compared[0]} room-windows, {rooms_changed[0]} with temperature changes, "
          f"{rooms_valve[0]} with a valve mean")
    for b in bad[:8]:
        print("   ", b)
    heat = sum(v["heating_kwh"] or 0 for k, v in fa.items() if k.split("/")[1] == "-" and v["window_size_ms"] == 3600000)
    check(heat > 0, f"building heat in the hourly windows: {heat:.0f} kWh")
    # Coverage: every apartment has an hourly window for every hour from its first to 3 h before the end.
    end = max(v["window_end"] for v in fa.values())
    firsts = {}
    for k, v in fa.items():
        b, apt, size, ws = k.split("/")
        if apt != "-" and int(size) == 3600000:
            firsts.setdefault((b, apt), []).append(int(ws))
    holes = 0
    for (b, apt), starts in firsts.items():
        s = set(starts)
        h = min(starts)
        while h < end - 3 * 3600000:
            holes += h not in s
            h += 3600000
    check(holes == 0 and len(firsts) >= 30, f"{len(firsts)} apartments, {holes} missing hours")


try:
    main()
finally:
    H.stop_all()
    if failures:
        print(f"{len(failures)} failed; logs in {tmp}")
    else:
        subprocess.run(["rm", "-rf", tmp])
sys.exit(1 if failures else 0)
