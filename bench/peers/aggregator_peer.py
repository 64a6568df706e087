#!/usr/bin/python3
"""aggregator_peer.py - an idiomatic Python peer of hvs-aggregator, for benchmarking it.

What a competent data engineer would write with Debian's python3-confluent-kafka (1.7, on
librdkafka 2.0) and python3-redis (4.3): hourly aggregates per apartment and per building from the
simulator's raw readings, event-time windows with a watermark, state in Redis, batched and
pipelined, commit after acknowledgement. It is not a port of the C worker: its own parsing,
its own incremental window arithmetic. It shares only the attribution rule (docs/design.md §4,
workers/aggregator/windows.h) so the hourly heating_kwh can be compared with the aggregator's.

    aggregator_peer.py --brokers HOST:PORT --redis redis://HOST:PORT/DB --group G \
        --input readings.jsonl --output peer.hourly [--batch 5000] [--idle-exit S]

Input: one JSON reading per message (the simulator's `--out jsonl` lines), keyed by building so
a building's records keep their order. Output: hourly aggregates as JSON on --output, keyed by
building_id: building_id, apartment_id (null for the building), window_start, window_end,
window_size_ms, revision, heating_kwh, hot_water_litres, readings_seen, room_temp_mean_c,
quality, flags, emitted_at (+ reporting_apartments for buildings). Records that fail validation,
and readings older than their building's watermark minus the lateness, go to --dlq as JSON
{"reason", "record"}.

The loop, per batch of `consumer.consume(num_messages=--batch)`:
  1. apply every record to the in-memory state of its building (loaded from Redis the first time
     the process sees the building, one pipelined read for the batch's new buildings);
  2. produce the windows the batch closed or revised (delivery callbacks count failures), then
     flush: every output acknowledged;
  3. write the batch's state changes to Redis in one MULTI/EXEC pipeline;
  4. commit the batch's offsets synchronously. A crash anywhere replays the batch on the stored
     state: samples are keyed by time, so a replayed reading changes nothing (at-least-once
     outputs, the same final values).

Semantics (defaults as workers/aggregator/main.c):
  - windows: one hour, UTC-aligned, [start, end); a building's watermark is the newest event time
    of the building (out-of-orderness 0); an hour is published when the watermark passes its end
    + 15 min grace (HVS_AGG_GRACE_HOURLY). Readings more than 48 h behind the watermark
    (HVS_AGG_LATENESS) are too late (dead letter).
  - heating_kwh / hot_water_litres: per pair of consecutive counter values (t_a, v_a), (t_b, v_b)
    the increase d = v_b - v_a (a drop: meter replacement when v_b is plausible since zero, else
    a counter reset = 0; a rise above 20 kW x max(gap, 15 min): implausible jump = 0) is put
    into (t_b - 15 min, t_b] when t_b - t_a <= 6 h 15 min and d fits one 15-minute interval,
    else spread linearly over (max(t_a, t_b - 24 h), t_b] (INTERPOLATED). Each pair's share per
    hour is kept; a value arriving between two stored ones takes the old pair's shares out and
    puts the two new pairs' in. Simpler than the C worker: liveness across a long gap is judged
    from the counter's own gap only (not from the apartment's other sensors), and the sampling
    interval and meter capacity are the defaults (no topology).
  - readings_seen: distinct instants in (start, end]; room_temp_mean_c: mean of the room
    temperature values stamped in [start, end) (a sample mean, not the C worker's time-weighted
    mean over alive time); quality: INTERPOLATED, else SILENT (nothing seen), else PARTIAL (an
    implausible jump), else COMPLETE.
  - an hour in which no apartment of the building sent anything and nothing was interpolated
    is not published (the C worker still publishes the hours in which an apartment counts as
    alive by its silence rule: up to 6 h 15 min after its last record).
  - late revisions: a reading within the lateness that changes an hour already published
    publishes that apartment-hour and its building-hour again with revision + 1 and the flag
    late_data (any change of the hour's accumulators, not a value hash as in the C worker).
  - no idle advance of the watermark: the last hours of a stream close only when later data
    comes (the C worker closes them after 30 s without input); no 15-minute windows, no rooms,
    no daily accounts or DATA_QUALITY alerts.

Redis keys (one hash per building and per apartment, hash-tagged by building):
  peer:{B}            wm, next (first unpublished hour), apts (JSON list), bh:<hour> (building
                      hour's revision)
  peer:{B}:<A>        s:<hour> the records of the hour as JSON [[t, heating|null,
                      hot water|null], ...] (the instants and counter values: dedupe and
                      pairing), h:<hour> the hour's accumulators (JSON)
A field per hour, rewritten when the batch changed it: a few fields per apartment and batch
instead of one per sample. State older than the lateness (+ 24 h of interpolation reach) is
deleted as the watermark moves; a counter's newest value before that stays in memory, and after
a restart it is found in the hours kept (devices send every counter at least every 6 h).
Duplicates are dropped per record: a record of an (apartment, instant) already seen is a copy.

It prints one line "peer: first batch consumed" (flushed) when it applies its first batch, and
"peer: idle, exiting" after --idle-exit seconds without input once it has read some (0 = run
until SIGTERM/SIGINT).
"""
import argparse
import json
import signal
import sys
import time
from bisect import bisect_left
from datetime import datetime

import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

H = 3600000
S = 15 * 60000
G = 375 * 60000
LMAX = 24 * 3600000
GRACE = 15 * 60000
LATENESS = 48 * 3600000
KEEP = LATENESS + LMAX + H           # how far behind the watermark state is kept
COUNTERS = {"heating_energy_kwh": 0, "hot_water_litres": 1}
RATE = (20.0, 600.0)                 # per counter: most it can grow per hour (20 kW, 600 l/h)
RANGES = {"heating_energy_kwh": (0, 1e9), "hot_water_litres": (0, 1e10), "room_temp_c": (-30, 60),
          "setpoint_temp_c": (5, 35), "valve_position_pct": (0, 100), "humidity_pct": (0, 100)}
# hour accumulators: [heat, water, seen, temp_sum, temp_n, interpolated, jump_kwh,
#                     meter_replaced, counter_reset, implausible_jump (counts), revision]
HEAT, WATER, SEEN, TSUM, TN, INTERP, UNC, FLAG0, FLAG1, FLAG2, REV = range(11)
FLAG_NAMES = ("meter_replaced", "counter_reset", "implausible_jump")


def new_acc():
    return [0.0, 0.0, 0, 0.0, 0, 0, 0.0, 0, 0, 0, -1]

running = True


def stop(*_):
    global running
    running = False


_ts_cache = {}


def parse_time(s):
    """Epoch ms of an ISO 8601 time with a zone, None when it is not one (cached: instants repeat
    across apartments)."""
    t = _ts_cache.get(s)
    if t is not None or s in _ts_cache:
        return t
    t = None
    if isinstance(s, str) and (s.endswith("Z") or "+" in s[10:]):
        try:
            t = int(round(datetime.fromisoformat(s).timestamp() * 1000))
        except ValueError:
            t = None
    if len(_ts_cache) > 200000:
        _ts_cache.clear()
    _ts_cache[s] = t
    return t


def validate(rec):
    """(building, apartment, t, readings) or (None, reason)."""
    if not isinstance(rec, dict):
        return None, "not an object"
    b, a = rec.get("building_id"), rec.get("apartment_id")
    if not isinstance(b, str) or not b or not isinstance(a, str) or not a:
        return None, "missing building_id or apartment_id"
    t = parse_time(rec.get("timestamp_str"))
    if t is None:
        return None, "bad timestamp_str"
    rd = rec.get("readings")
    if not isinstance(rd, list) or not 1 <= len(rd) <= 32:
        return None, "readings: 1..32 expected"
    for x in rd:
        try:
            st, v = x["sensor_type"], x["value"]
            lo, hi = RANGES[st]
        except (TypeError, KeyError):
            return None, f"reading {x!r}: sensor_type and value expected, a known sensor_type"
        if type(v) is not float and type(v) is not int or not lo <= v <= hi:   # NaN fails too
            return None, f"{st}: value {v!r} out of range"
    return (b, a, t, rd), None


class Apartment:
    __slots__ = ("cnt", "inst", "recs", "hours", "first", "last", "dh", "ds", "dels")

    def __init__(self):
        self.cnt = ([], [])        # per counter: sorted [(t, v)]
        self.inst = set()          # instants seen
        self.recs = {}             # hour -> [[t, heating, hot water]] of its records (Redis s:<hour>)
        self.hours = {}            # hour start -> accumulators
        self.first = None          # first instant
        self.last = None           # newest instant
        self.dh = set()            # hours whose accumulators changed in this batch
        self.ds = set()            # hours whose records changed in this batch
        self.dels = []             # Redis fields to delete this batch


class Building:
    __slots__ = ("id", "apts", "wm", "next", "brev", "revise", "dirty", "cut")

    def __init__(self, bid):
        self.id = bid
        self.apts = {}
        self.wm = None             # watermark: newest event time
        self.next = None           # first hour not yet published
        self.brev = {}             # hour -> revision of the published building window
        self.revise = set()        # (apartment, hour) published windows changed in this batch
        self.dirty = False
        self.cut = None            # the hour state was last evicted up to


def hour_acc(apt, h):
    acc = apt.hours.get(h)
    if acc is None:
        acc = apt.hours[h] = new_acc()
    return acc


class Peer:
    def __init__(self, args):
        self.args = args
        self.r = redis.Redis.from_url(args.redis)
        self.buildings = {}
        self.out = []              # (key, value) to produce this batch
        self.failed = []
        self.stats = {"records": 0, "readings": 0, "dead": 0, "windows": 0, "revisions": 0}
        self.producer = Producer({"bootstrap.servers": args.brokers, "enable.idempotence": True,
                                  "acks": "all", "compression.type": "lz4", "linger.ms": 5,
                                  "batch.num.messages": 10000, "client.id": "aggregator-peer"})
        self.consumer = Consumer({"bootstrap.servers": args.brokers, "group.id": args.group,
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                  "fetch.wait.max.ms": 10, "client.id": "aggregator-peer"})

    # ---- state -------------------------------------------------------------------------------
    def load(self, bids):
        """The state of buildings this process has not seen yet, from Redis (two round trips)."""
        p = self.r.pipeline(transaction=False)
        for b in bids:
            p.hgetall(f"peer:{{{b}}}")
        metas = p.execute()
        p = self.r.pipeline(transaction=False)
        want = []
        for b, meta in zip(bids, metas):
            bs = self.buildings[b] = Building(b)
            if not meta:
                continue
            meta = {k.decode(): v for k, v in meta.items()}
            bs.wm = int(meta["wm"]) if "wm" in meta else None
            bs.next = int(meta["next"]) if "next" in meta else None
            bs.brev = {int(k[3:]): int(v) for k, v in meta.items() if k.startswith("bh:")}
            for a in json.loads(meta.get("apts", "[]")):
                want.append((bs, a))
                p.hgetall(f"peer:{{{b}}}:{a}")
        for (bs, a), fields in zip(want, p.execute()):
            apt = bs.apts[a] = Apartment()
            for k, v in fields.items():
                k = k.decode()
                kind, _, rest = k.partition(":")
                if kind == "s":
                    rows = apt.recs[int(rest)] = json.loads(v)
                    for t, c0, c1 in rows:
                        apt.inst.add(t)
                        if c0 is not None:
                            apt.cnt[0].append((t, c0))
                        if c1 is not None:
                            apt.cnt[1].append((t, c1))
                elif kind == "h":
                    apt.hours[int(rest)] = json.loads(v)
            for c in apt.cnt:
                c.sort()
            if apt.inst:
                apt.first, apt.last = min(apt.inst), max(apt.inst)

    def write_state(self):
        p = self.r.pipeline(transaction=True)
        n = 0
        for bs in self.buildings.values():
            if not bs.dirty:
                continue
            bkey = f"peer:{{{bs.id}}}"
            meta = {"wm": bs.wm, "next": bs.next, "apts": json.dumps(sorted(bs.apts))}
            meta.update({f"bh:{h}": r for h, r in bs.brev.items()})
            p.hset(bkey, mapping=meta)
            stale = [f"bh:{h}" for h in bs.brev if h < bs.wm - KEEP]
            if stale:
                p.hdel(bkey, *stale)
                for f in stale:
                    del bs.brev[int(f[3:])]
            for a, apt in bs.apts.items():
                if apt.dels:
                    p.hdel(f"{bkey}:{a}", *apt.dels)
                    apt.dels = []
                if apt.dh or apt.ds:
                    fields = {f"h:{h}": json.dumps(apt.hours[h]) for h in apt.dh}
                    fields.update({f"s:{h}": json.dumps(apt.recs[h]) for h in apt.ds})
                    p.hset(f"{bkey}:{a}", mapping=fields)
                    apt.dh.clear()
                    apt.ds.clear()
                n += 1
            bs.dirty = False
        if n:
            p.execute()

    def evict(self, bs):
        """Forget what the lateness no longer lets change (kept: each counter's newest value
        before the cut, which the next value pairs with)."""
        cut = bs.wm - KEEP
        for apt in bs.apts.values():
            for i, c in enumerate(apt.cnt):
                k = bisect_left(c, (cut, -1.0)) - 1
                if k > 0:
                    del c[:k]
            old = [h for h in apt.recs if h < cut]
            for h in old:
                for row in apt.recs.pop(h):
                    apt.inst.discard(row[0])
                apt.ds.discard(h)
                apt.dels.append(f"s:{h}")
            old = [h for h in apt.hours if h < cut and h < bs.next]
            for h in old:
                del apt.hours[h]
                apt.dh.discard(h)
                apt.dels.append(f"h:{h}")

    # ---- applying readings -------------------------------------------------------------------
    def touch_hour(self, bs, a, apt, h):
        apt.dh.add(h)                      # written at the batch's end
        if bs.next is not None and h < bs.next:
            bs.revise.add((a, h))

    def spread(self, bs, a, apt, ci, lo, hi, d, interp, sign):
        """Add sign x d, spread linearly over (lo, hi], to the hours it reaches."""
        if d == 0 and not interp:
            return
        span = hi - lo
        h = (lo // H) * H
        while h < hi:
            ov = min(hi, h + H) - max(lo, h)
            if ov > 0:
                acc = hour_acc(apt, h)
                acc[ci] += sign * d * ov / span
                if interp and d > 0:
                    acc[INTERP] += sign
                self.touch_hour(bs, a, apt, h)
            h += H

    def pair(self, bs, a, apt, ci, ta, va, tb, vb, sign):
        """Apply (sign 1) or take back (-1) the increase between two consecutive values."""
        gap = tb - ta
        cap = RATE[ci] * max(gap, S) / 3.6e6
        d, flag = vb - va, None
        if d < 0:
            flag, d = (FLAG0, vb) if vb <= cap else (FLAG1, 0.0)
        elif d > cap:
            flag, d = FLAG2, 0.0
        if flag:
            acc = hour_acc(apt, ((tb - 1) // H) * H)       # the hour its end falls in
            acc[flag] += sign
            if flag == FLAG2 and ci == 0:
                acc[UNC] += sign * (vb - va)
            self.touch_hour(bs, a, apt, ((tb - 1) // H) * H)
        alive = gap <= G and d <= RATE[ci] * S / 3.6e6
        lo = max(ta, tb - S) if alive else max(ta, tb - LMAX)
        self.spread(bs, a, apt, ci, lo, tb, d, not alive, sign)

    def counter(self, bs, a, apt, ci, t, v):
        c = apt.cnt[ci]
        k = bisect_left(c, (t, -1.0))
        if k < len(c) and c[k][0] == t:
            return                                          # a duplicate: the first value wins
        if k == len(c) and c and c[-1][0] < t:              # in order: the usual case
            prev = c[-1]
            self.pair(bs, a, apt, ci, prev[0], prev[1], t, v, 1)
            c.append((t, v))
            return
        prev = c[k - 1] if k > 0 else None
        nxt = c[k] if k < len(c) else None
        if prev and nxt:
            self.pair(bs, a, apt, ci, prev[0], prev[1], nxt[0], nxt[1], -1)
        if prev:
            self.pair(bs, a, apt, ci, prev[0], prev[1], t, v, 1)
        if nxt:
            self.pair(bs, a, apt, ci, t, v, nxt[0], nxt[1], 1)
        c.insert(k, (t, v))

    def apply(self, bs, a, t, vals):
        apt = bs.apts.get(a)
        if apt is None:
            apt = bs.apts[a] = Apartment()
        if t in apt.inst:
            return                                          # a copy of a record already applied
        apt.inst.add(t)
        h = ((t - 1) // H) * H                              # seen counts (start, end]
        hour_acc(apt, h)[SEEN] += 1
        self.touch_hour(bs, a, apt, h)
        apt.first = t if apt.first is None or t < apt.first else apt.first
        apt.last = t if apt.last is None or t > apt.last else apt.last
        row = [t, None, None]
        tsum, tn = 0.0, 0
        for x in vals:
            st = x["sensor_type"]
            if st == "room_temp_c":
                tsum += x["value"]
                tn += 1
                continue
            ci = COUNTERS.get(st)
            if ci is not None and row[ci + 1] is None:      # the first value of the record wins
                v = row[ci + 1] = float(x["value"])
                self.counter(bs, a, apt, ci, t, v)
        h = (t // H) * H
        if tn:
            acc = hour_acc(apt, h)
            acc[TSUM] += tsum
            acc[TN] += tn
            self.touch_hour(bs, a, apt, h)
        recs = apt.recs.get(h)
        if recs is None:
            recs = apt.recs[h] = []
        recs.append(row)
        apt.ds.add(h)
        bs.dirty = True
        if bs.wm is None or t > bs.wm:
            bs.wm = t
            if bs.next is None:
                bs.next = (t // H) * H
            while bs.next + H + GRACE <= bs.wm:             # hours the watermark closed
                self.publish_hour(bs, bs.next, None)
                bs.next += H

    # ---- output ------------------------------------------------------------------------------
    def apartment_value(self, bs, a, apt, h, now):
        acc = apt.hours.get(h) or new_acc()
        we = h + H
        alive = apt.last is not None and apt.last + G >= we
        v = {"building_id": bs.id, "apartment_id": a, "window_start": h, "window_end": we,
             "window_size_ms": H, "revision": acc[REV] + 1}
        for ci, name in ((0, "heating_kwh"), (1, "hot_water_litres")):
            c = apt.cnt[ci]
            known = c and c[0][0] < we and (c[-1][0] >= we or alive)
            v[name] = round(acc[ci], 9) if known else None
        v["readings_seen"] = acc[SEEN]
        v["room_temp_mean_c"] = acc[TSUM] / acc[TN] if acc[TN] else None
        if acc[INTERP] > 0:
            q = "INTERPOLATED"
        elif acc[SEEN] == 0:
            q = "SILENT"
        elif acc[UNC] > 0:
            q = "PARTIAL"
        else:
            q = "COMPLETE"
        v["quality"] = q
        v["flags"] = [FLAG_NAMES[i] for i in range(3) if acc[FLAG0 + i] > 0]
        v["uncounted_kwh"] = acc[UNC] if acc[UNC] > 0 else None
        v["emitted_at"] = now
        return v, acc

    def publish_hour(self, bs, h, only):
        """The hour's apartment windows (all of the building's, or only those named, which
        were published before) and the building's window."""
        now = int(time.time() * 1000)
        total = {"heating_kwh": None, "hot_water_litres": None}
        seen = reporting = tn = 0
        tsum, unc, interp, partial = 0.0, 0.0, False, False
        flags = set()
        revised = only is not None
        outs = []
        for a, apt in bs.apts.items():
            if apt.first is None or apt.first >= h + H:
                continue
            v, acc = self.apartment_value(bs, a, apt, h, now)
            for k in total:
                if v[k] is not None:
                    total[k] = (total[k] or 0.0) + v[k]
            seen += acc[SEEN]
            reporting += acc[SEEN] > 0
            tsum += acc[TSUM]
            tn += acc[TN]
            unc += acc[UNC]
            interp |= v["quality"] == "INTERPOLATED"
            partial |= v["quality"] in ("PARTIAL", "SILENT")
            flags.update(v["flags"])
            if only is None or a in only:
                outs.append((a, apt, v))
        if seen == 0 and not interp and not revised:
            return                     # nobody alive: the hour is not published
        for a, apt, v in outs:
            acc = hour_acc(apt, h)
            if acc[REV] >= 0:
                v["flags"].append("late_data")
            acc[REV] += 1
            apt.dh.add(h)
            self.out.append((bs.id, v))
        rev = bs.brev.get(h, -1) + 1
        bs.brev[h] = rev
        q = "INTERPOLATED" if interp else "PARTIAL" if partial or reporting < len(bs.apts) else "COMPLETE"
        self.out.append((bs.id, dict(
            building_id=bs.id, apartment_id=None, window_start=h, window_end=h + H, window_size_ms=H,
            revision=rev, heating_kwh=total["heating_kwh"], hot_water_litres=total["hot_water_litres"],
            readings_seen=seen, room_temp_mean_c=tsum / tn if tn else None, quality=q,
            flags=sorted(flags | ({"late_data"} if revised else set())),
            uncounted_kwh=unc if unc > 0 else None, reporting_apartments=reporting, emitted_at=now)))
        self.stats["revisions" if revised else "windows"] += 1

    def end_batch(self):
        for bs in self.buildings.values():
            if bs.revise:
                by_hour = {}
                for a, h in bs.revise:
                    by_hour.setdefault(h, set()).add(a)
                for h in sorted(by_hour):
                    self.publish_hour(bs, h, by_hour[h])
                bs.revise.clear()
            cut = (bs.wm - KEEP) // H * H if bs.wm is not None else None
            if bs.dirty and cut != bs.cut:                  # once per hour of watermark
                bs.cut = cut
                self.evict(bs)

    def delivered(self, err, msg):
        if err is not None:
            self.failed.append(f"{msg.topic()}: {err}")

    # ---- the loop ----------------------------------------------------------------------------
    def run(self):
        args = self.args
        self.consumer.subscribe([args.input])
        first = True
        idle_since = time.monotonic()
        while running:
            msgs = self.consumer.consume(num_messages=args.batch, timeout=0.1)
            if not msgs:
                if args.idle_exit and not first and time.monotonic() - idle_since > args.idle_exit:
                    print("peer: idle, exiting", flush=True)
                    break
                continue
            idle_since = time.monotonic()
            if first:
                print("peer: first batch consumed", flush=True)
                first = False
            offsets = {}              # (topic, partition) -> next offset
            parsed = []
            new = set()
            for m in msgs:
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(m.error())
                offsets[(m.topic(), m.partition())] = m.offset() + 1
                raw = m.value()
                try:
                    rec, why = validate(json.loads(raw.decode()))
                except (ValueError, UnicodeDecodeError):
                    rec, why = None, "not JSON"
                if rec is None:
                    self.dead(m.key(), raw, why)
                    continue
                parsed.append((rec, m.key(), raw))
                if rec[0] not in self.buildings:
                    new.add(rec[0])
            if new:
                self.load(sorted(new))
            for (b, a, t, vals), key, raw in parsed:
                bs = self.buildings[b]
                if bs.wm is not None and t < bs.wm - LATENESS:
                    self.dead(key, raw, "too_late")
                    continue
                self.apply(bs, a, t, vals)
                self.stats["readings"] += len(vals)
            self.stats["records"] += len(msgs)
            self.end_batch()
            for key, v in self.out:
                self.produce(args.output, key, json.dumps(v))
            self.out.clear()
            # every output acknowledged before the state and the offsets claim it
            left = self.producer.flush(60)
            if left or self.failed:
                raise RuntimeError(f"outputs not acknowledged: {left} pending, {self.failed[:3]}")
            self.write_state()
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                 asynchronous=False)
        self.consumer.close()
        self.stats["main_thread_cpu_s"] = round(time.thread_time(), 2)      # vs librdkafka's threads
        self.stats["process_cpu_s"] = round(time.process_time(), 2)
        print("peer: " + " ".join(f"{k}={v}" for k, v in self.stats.items()), flush=True)

    def produce(self, topic, key, value):
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, on_delivery=self.delivered)
                return
            except BufferError:                 # local queue full: let it drain
                self.producer.poll(0.05)

    def dead(self, key, raw, reason):
        self.stats["dead"] += 1
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        self.produce(self.args.dlq, key, json.dumps({"reason": reason, "record": raw}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--redis", required=True, help="redis://host:port/db")
    ap.add_argument("--group", default="aggregator-peer")
    ap.add_argument("--input", default="peer.readings")
    ap.add_argument("--output", default="peer.hourly")
    ap.add_argument("--dlq", default="peer.dlq")
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--idle-exit", type=float, default=0)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        Peer(args).run()
    except (KafkaException, redis.RedisError, RuntimeError) as e:
        print(f"peer: failed: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
