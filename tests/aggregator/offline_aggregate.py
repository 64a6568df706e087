#!/usr/bin/env python3
"""offline_aggregate.py - an independent recomputation of hvs-aggregator's output.

Reads the simulator's raw meter JSON lines (delivery order, messy modes on) and computes, from
the attribution rule as written in workers/aggregator/windows.h, every apartment's and
building's hourly aggregate and every building's 15-minute aggregate. It shares no code with the
worker: its own parsing and validation, its own per-building watermarks (newest event time of
the building) that decide "too late", its own window arithmetic.

    offline_aggregate.py READINGS.jsonl KEYS.json > EXPECTED.json

KEYS.json lists the windows to compute ("building/apartment|-/size_ms/window_start").
Output: {key: {heating_kwh, hot_water_litres, room_temp_mean_c, ..., quality, flags, rooms}}
(rooms: apartment windows only, as in schemas/Aggregate.avsc's RoomStats).
"""
import json
import math
import sys
from bisect import bisect_right
from datetime import datetime

S = 15 * 60000          # sampling interval
G = 375 * 60000         # silence threshold (6 h 15 min)
LMAX = 24 * 3600000     # longest interpolation
LCAP = 48 * 3600000     # longest counter interval examined for liveness
LATENESS = 48 * 3600000
RATE = {"heating_energy_kwh": 20.0, "hot_water_litres": 600.0}
RANGES = {"heating_energy_kwh": (0, 1e9), "hot_water_litres": (0, 1e10), "room_temp_c": (-30, 60),
          "setpoint_temp_c": (5, 35), "valve_position_pct": (0, 100), "humidity_pct": (0, 100)}
COUNTERS = ("heating_energy_kwh", "hot_water_litres")
ROOM_SENSORS = ("room_temp_c", "setpoint_temp_c", "valve_position_pct", "humidity_pct")


def parse_time(s):
    if not isinstance(s, str) or not (s.endswith("Z") or "+" in s[10:]):
        return None
    try:
        return int(round(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000))
    except ValueError:
        return None


def valid(rec):
    """The record's (building, apartment, t, values) or None when the worker would refuse it."""
    if not isinstance(rec, dict):
        return None
    b, a = rec.get("building_id"), rec.get("apartment_id")
    t = parse_time(rec.get("timestamp_str"))
    rd = rec.get("readings")
    if not b or not a or t is None or not isinstance(rd, list) or not 1 <= len(rd) <= 32:
        return None
    vals = []
    for x in rd:
        st, v = x.get("sensor_type"), x.get("value")
        if st not in RANGES or not isinstance(v, (int, float)) or isinstance(v, bool):
            return None
        if not math.isfinite(v) or not RANGES[st][0] <= v <= RANGES[st][1]:
            return None
        vals.append((st, x.get("room_name") or "", float(v)))
    return b, a, t, vals


class Apartment:
    def __init__(self):
        self.inst = []                # sorted instants
        self.series = {}              # (sensor, room) -> {t: v}

    def finish(self):
        self.inst = sorted(set(self.inst))
        self.pts = {k: sorted(v.items()) for k, v in self.series.items()}


def alive_end(inst, i):
    r = inst[i]
    if i + 1 == len(inst):
        return r + G
    nxt = inst[i + 1]
    return nxt if nxt - r <= G else min(nxt, r + S)


def alive_in(inst, frm, to):
    if not inst or to <= frm:
        return 0
    i = max(bisect_right(inst, frm) - 1, 0)
    total = 0
    while i < len(inst) and inst[i] < to:
        s0, s1 = max(inst[i], frm), min(alive_end(inst, i), to)
        total += max(0, s1 - s0)
        i += 1
    return total


def pair_alive(inst, sensor, ta, tb, d):
    if d > RATE[sensor] * S / 3.6e6:
        return False
    if tb - ta <= G:
        return True
    if tb - ta > LCAP:
        return False
    i = bisect_right(inst, ta) - 1
    if i < 0:
        return False
    while i + 1 < len(inst) and inst[i] < tb:
        if inst[i + 1] - inst[i] > G:
            return False
        i += 1
    return True


def counter(apt, sensor, ws, we):
    """(known, consumption, interpolated, flags, uncounted) of one counter in [ws, we);
    uncounted: what implausible jumps ending in (ws, we] refused."""
    pts = apt.pts.get((sensor, ""), [])
    if not pts or pts[0][0] >= we:
        return False, 0.0, False, set(), 0.0
    total, interp, flags, unc = 0.0, False, set(), 0.0
    for (ta, va), (tb, vb) in zip(pts, pts[1:]):
        if tb <= ws or ta >= we:
            continue
        cap = RATE[sensor] * max(tb - ta, S) / 3.6e6
        d, flag = vb - va, None
        if d < 0:
            flag = "meter_replaced" if vb <= cap else "counter_reset"
            d = vb if vb <= cap else 0.0
        elif d > cap:
            flag, d = "implausible_jump", 0.0
        if flag and ws < tb <= we:
            flags.add(flag)
            if flag == "implausible_jump":
                unc += vb - va
        alive = pair_alive(apt.inst, sensor, ta, tb, d)
        lo = max(ta, tb - S) if alive else max(ta, tb - LMAX)
        ov = min(tb, we) - max(lo, ws)
        if ov > 0 and d != 0:
            total += d * ov / (tb - lo)
        if ov > 0 and not alive and d > 0:
            interp = True
    last = pts[-1][0]
    if last < we:
        frm = max(last, ws)
        if alive_in(apt.inst, frm, we) < we - frm:
            return False, 0.0, interp, flags, unc
    return True, total, interp, flags, unc


def value_at(pts, t):
    i = bisect_right([p[0] for p in pts], t) - 1
    return pts[i][1] if i >= 0 else None


def apartment_window(apt, ws, we):
    inst = apt.inst
    if not inst or inst[0] >= we:
        return None
    w = {"use": {}, "interp": False, "flags": set(), "temp": [0.0, 0.0], "sp": [0.0, 0.0],
         "gap": [0.0, 0.0], "tmin": math.inf, "tmax": -math.inf, "covered": 0,
         "span": we - max(ws, inst[0]), "unc": 0.0}
    for sensor in COUNTERS:
        known, use, interp, flags, unc = counter(apt, sensor, ws, we)
        if sensor == "heating_energy_kwh":
            w["unc"] = unc
        if known:
            w["use"][sensor] = use
        w["interp"] |= interp
        w["flags"] |= flags
    rooms_t = {room: pts for (s, room), pts in apt.pts.items() if s == "room_temp_c"}
    rooms_s = {room: pts for (s, room), pts in apt.pts.items() if s == "setpoint_temp_c"}
    i = max(bisect_right(inst, ws) - 1, 0)
    while i < len(inst) and inst[i] < we:
        r = inst[i]
        s0, s1 = max(r, ws), min(alive_end(inst, i), we)
        i += 1
        if s1 <= s0:
            continue
        ln = s1 - s0
        w["covered"] += ln
        for room, pts in rooms_s.items():
            v = value_at(pts, r)
            if v is not None:
                w["sp"][0] += v * ln
                w["sp"][1] += ln
        for room, pts in rooms_t.items():
            v = value_at(pts, r)
            if v is None:
                continue
            w["temp"][0] += v * ln
            w["temp"][1] += ln
            w["tmin"], w["tmax"] = min(w["tmin"], v), max(w["tmax"], v)
            if room in rooms_s:
                sp = value_at(rooms_s[room], r)
                if sp is not None:
                    w["gap"][0] += (sp - v) * ln
                    w["gap"][1] += ln
    w["seen"] = bisect_right(inst, we) - bisect_right(inst, ws)
    w["rooms"] = rooms_window(apt, ws, we)
    if w["covered"] == 0 and not w["interp"]:
        w["quality"] = "SILENT"
    elif w["interp"]:
        w["quality"] = "INTERPOLATED"
    elif w["covered"] < w["span"] or w["unc"] > 0:
        w["quality"] = "PARTIAL"
    else:
        w["quality"] = "COMPLETE"
    return w


def rooms_window(apt, ws, we):
    """Per room, sorted by name: the room's gauges over the alive stretches (the same hold rule
    as the apartment's), its readings in [ws, we) and its temperature changes."""
    inst = apt.inst
    names = sorted({room for (s, room), pts in apt.pts.items()
                    if s in ROOM_SENSORS and pts and pts[0][0] < we}, key=lambda n: n.encode())
    out = []
    for room in names:
        held = {s: [] for s in ROOM_SENSORS[:3]}       # sensor -> [(value, length)]
        i = max(bisect_right(inst, ws) - 1, 0)
        while i < len(inst) and inst[i] < we:
            r = inst[i]
            s0, s1 = max(r, ws), min(alive_end(inst, i), we)
            i += 1
            if s1 <= s0:
                continue
            for sensor in held:
                v = value_at(apt.pts.get((sensor, room), []), r)
                if v is not None:
                    held[sensor].append((v, s1 - s0))

        def mean(sensor):
            ln = sum(x[1] for x in held[sensor])
            return sum(v * x for v, x in held[sensor]) / ln if ln else None
        temps = held["room_temp_c"]
        m = mean("room_temp_c")
        std = None
        if temps:   # two passes: mean first, then the weighted squared deviations
            std = math.sqrt(sum((v - m) ** 2 * x for v, x in temps) / sum(x for _, x in temps))
        times = set()
        for sensor in ROOM_SENSORS:
            times |= {t for t, _ in apt.pts.get((sensor, room), []) if ws <= t < we}
        tp = apt.pts.get(("room_temp_c", room), [])
        changes = sum(1 for j in range(1, len(tp)) if ws <= tp[j][0] < we and tp[j][1] != tp[j - 1][1])
        out.append({"room": room, "temp_mean_c": m,
                    "temp_min_c": min(v for v, _ in temps) if temps else None,
                    "temp_max_c": max(v for v, _ in temps) if temps else None,
                    "temp_std_c": std, "setpoint_mean_c": mean("setpoint_temp_c"),
                    "valve_mean_pct": mean("valve_position_pct"), "readings_seen": len(times),
                    "temp_changes": changes})
    return out


def render(w, building=None):
    def mean(p):
        return p[0] / p[1] if p[1] > 0 else None
    out = {"heating_kwh": w["use"].get("heating_energy_kwh"),
           "hot_water_litres": w["use"].get("hot_water_litres"),
           "room_temp_mean_c": mean(w["temp"]),
           "room_temp_min_c": w["tmin"] if w["temp"][1] > 0 else None,
           "room_temp_max_c": w["tmax"] if w["temp"][1] > 0 else None,
           "setpoint_mean_c": mean(w["sp"]), "comfort_gap_mean_c": mean(w["gap"]),
           "readings_seen": w["seen"], "quality": w["quality"], "flags": sorted(w["flags"]),
           "rooms": w.get("rooms", []),
           "uncounted_kwh": w["unc"] if w["unc"] > 0 else None}
    if building is not None:
        out["reporting_apartments"] = building
    return out


def building_window(apts, ws, we):
    parts = [w for w in (apartment_window(a, ws, we) for _, a in sorted(apts.items())) if w]
    if not parts:
        return None
    b = {"use": {}, "interp": False, "flags": set(), "temp": [0.0, 0.0], "sp": [0.0, 0.0],
         "gap": [0.0, 0.0], "tmin": math.inf, "tmax": -math.inf, "seen": 0, "unc": 0.0}
    reporting, quality = 0, "COMPLETE"
    for w in parts:
        for k, v in w["use"].items():
            b["use"][k] = b["use"].get(k, 0.0) + v
        for f in ("temp", "sp", "gap"):
            b[f][0] += w[f][0]
            b[f][1] += w[f][1]
        b["tmin"], b["tmax"] = min(b["tmin"], w["tmin"]), max(b["tmax"], w["tmax"])
        b["seen"] += w["seen"]
        b["flags"] |= w["flags"]
        b["interp"] |= w["interp"]
        b["unc"] += w["unc"]
        reporting += w["covered"] > 0
        if w["quality"] in ("PARTIAL", "SILENT"):
            quality = "PARTIAL"
        elif w["quality"] == "INTERPOLATED" and quality == "COMPLETE":
            quality = "INTERPOLATED"
    if reporting == 0 and not b["interp"]:
        quality = "SILENT"
    elif reporting < len(parts):
        quality = "PARTIAL"
    b["quality"] = quality
    return render(b, reporting)


def main():
    readings, keys = sys.argv[1], json.load(open(sys.argv[2]))
    fleet = {}                                    # building -> apartment -> Apartment
    wm = {}                                       # building -> newest event time seen
    refused = too_late = 0
    for line in open(readings, encoding="utf-8", errors="replace"):
        try:
            rec = valid(json.loads(line))
        except ValueError:
            rec = None
        if rec is None:
            refused += 1
            continue
        b, a, t, vals = rec
        if b in wm and t < wm[b] - LATENESS:
            too_late += 1
            continue
        apt = fleet.setdefault(b, {}).setdefault(a, Apartment())
        apt.inst.append(t)
        for sensor, room, v in vals:
            if sensor in COUNTERS:
                room = ""
            elif sensor not in ROOM_SENSORS:
                continue
            apt.series.setdefault((sensor, room), {}).setdefault(t, v)   # first value wins
        wm[b] = max(wm.get(b, t), t)
    for apts in fleet.values():
        for apt in apts.values():
            apt.finish()
    out = {}
    for key in keys:
        b, a, size, ws = key.split("/")
        size, ws = int(size), int(ws)
        apts = fleet.get(b, {})
        if a == "-":
            out[key] = building_window(apts, ws, ws + size)
        else:
            w = apartment_window(apts[a], ws, ws + size) if a in apts else None
            out[key] = render(w) if w else None
    json.dump({"windows": out, "refused": refused, "too_late": too_late}, sys.stdout)


if __name__ == "__main__":
    main()
