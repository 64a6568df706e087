#!/usr/bin/env python3
"""gen_ev_sample.py - a small, deterministic EV-charging site for the ev_charging profile
(data/profiles/profiles.ini; seed 002): readings of the chargers' energy counters, as the
Reading JSON lines `hvsctl ingest` and the aggregator take.

A site is a Building (no heated area), a charger an Apartment whose meter is a cumulative
counter `charger_energy_kwh`. Sessions arrive by a daily and weekly pattern (commuters on
working days at 7-9 and 17-19, shoppers through the day, fewer and later on weekends, more in
cold weeks: --weather writes that temperature), each delivers 7-60 kWh at the charger's power (AC 22 kW or DC 150 kW, a car
taking 11 kW on AC and up to 100 kW on DC) from its arrival on; the car stays plugged in until
it is charged (a charger is occupied for a session's whole length). A charger's two counters,
energy (`charger_energy_kwh`) and minutes occupied (`charger_busy_min`), are read every hour on
the hour; an hour's energy or occupied minutes are the difference between its end's and its
start's value.

Usage: gen_ev_sample.py [--sites N] [--chargers N] [--days N] [--start YYYY-MM-DD]
                        [--readings FILE] [--topology FILE] [--hourly FILE]
                        [--weather FILE]
  --hourly FILE  also writes "site,hour_epoch_ms,kwh,busy_min" lines: each site's energy and
                 its chargers' minutes in use per hour, summed here from the sessions (what the
                 aggregator must find again; occupancy = busy_min / (60 x chargers)).
  --weather FILE also writes the sites' hourly temperature as `hvsctl weather import` CSV.
Readings are written in event-time order. Defaults: 2 sites x 10 chargers x 56 days from
2025-01-06 (a Monday), seed fixed: the same arguments give the same bytes.
"""
import argparse
import datetime as dt
import math
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sample_io import add_common_args, reading, start_of, write_outputs  # noqa: E402

HOUR_MS = 3600 * 1000


def temperature(h):
    """Outdoor degC of hour h: a winter's cold spells over the weeks and a daily cycle."""
    return 2.0 - 5.0 * math.sin(h * math.pi / (24 * 17.0)) + 3.5 * math.sin((h % 24 - 9) * math.pi / 12)


def arrivals_per_hour(hour, weekday, day):
    """Expected session starts at one charger in an hour of local time (UTC here)."""
    if weekday < 5:
        base = {7: 0.35, 8: 0.45, 9: 0.25, 12: 0.15, 13: 0.15, 17: 0.35, 18: 0.4, 19: 0.2}
        rate = base.get(hour, 0.06 if 6 <= hour <= 21 else 0.01)
    else:
        rate = 0.2 if 10 <= hour <= 17 else (0.06 if 8 <= hour <= 21 else 0.01)
    # cold weeks: batteries hold less, drivers charge more often
    return rate * (1.0 + 0.03 * max(0.0, 5.0 - temperature(day * 24 + hour)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=2)
    ap.add_argument("--chargers", type=int, default=10)
    add_common_args(ap, 56)
    ap.add_argument("--hourly", default=None)
    a = ap.parse_args()
    rng = random.Random(20250106)
    start, t0 = start_of(a)
    hours = a.days * 24
    topo, hourly, lines = [], {}, []
    if True:
        for s in range(a.sites):
            site = "site_ev_%02d" % (s + 1)
            chargers = []
            for c in range(a.chargers):
                dc = c < max(1, a.chargers // 5)  # a fifth of them DC fast chargers
                chargers.append(("chg_%02d" % (c + 1), 150.0 if dc else 22.0))
            topo.append({
                "building_id": site, "archetype": "ev_charging", "commissioning_date": t0 - 400 * 24 * HOUR_MS,
                "latitude": 47.37 + 0.1 * s, "longitude": 8.54, "heated_area_m2": None,
                "holiday_region": "CH-ZH",
                "apartments": [{"apartment_id": cid} for cid, _ in chargers]})
            site_kwh, site_busy = [0.0] * hours, [0.0] * hours
            for cid, power in chargers:
                per_hour = [0.0] * (hours + 4)
                busy = [0.0] * (hours + 4)  # minutes of the hour a car is plugged in
                busy_until = 0.0  # hours since t0
                for h in range(hours):
                    day, hod = h // 24, h % 24
                    wd = (start + dt.timedelta(days=day)).weekday()
                    lam = arrivals_per_hour(hod, wd, day) * (1.6 if power > 100 else 1.0)
                    if rng.random() >= 1 - math.exp(-lam):
                        continue
                    arrive = h + rng.random()
                    if arrive < busy_until:
                        continue  # occupied: the driver goes elsewhere
                    kwh = rng.uniform(7, 60)
                    rate = min(power, 11.0 if power <= 22 else rng.uniform(50, 100))
                    end = arrive + kwh / rate
                    busy_until = end + 0.05
                    t = arrive
                    while t < busy_until - 1e-12:  # plugged in until it leaves
                        hh = int(t)
                        nxt = min(busy_until, hh + 1)
                        if hh < len(busy):
                            busy[hh] += (nxt - t) * 60.0
                        t = nxt
                    # spread the energy over the hours the session covers
                    t = arrive
                    while t < end - 1e-12:
                        hh = int(t)
                        nxt = min(end, hh + 1)
                        if hh < len(per_hour):
                            per_hour[hh] += (nxt - t) * rate
                        t = nxt
                counter = 1000.0 + 137.0 * (len(cid) + s)  # a used meter: any start value
                minutes = 5000.0 + 11.0 * s  # its busy-minutes counter, likewise
                # one hour more than summed: the watermark must pass the last summed hour's
                # end (plus the aggregator's grace) for that window to close
                for h in range(hours + 2):
                    ts = t0 + h * HOUR_MS
                    lines.append(reading(ts, site, cid, cid + "-meter",
                                         [("charger_energy_kwh", round(counter, 3)),
                                          ("charger_busy_min", round(minutes, 3))]))
                    # the counters show 3 decimals: the hour's energy is the rounded difference
                    nxt = round(counter + per_hour[h], 3)
                    nxt_min = round(minutes + busy[h], 3)
                    if h < hours:
                        site_kwh[h] += nxt - round(counter, 3)
                        site_busy[h] += nxt_min - round(minutes, 3)
                    counter, minutes = nxt, nxt_min
            hourly[site] = (site_kwh, site_busy)
    write_outputs(a, lines, topo, start, hours + 2, temperature)
    if a.hourly:
        with open(a.hourly, "w") as f:
            for site, (kwh, busy) in hourly.items():
                for h in range(hours):
                    f.write("%s,%d,%.3f,%.3f\n" % (site, t0 + h * HOUR_MS, kwh[h], busy[h]))


if __name__ == "__main__":
    main()
