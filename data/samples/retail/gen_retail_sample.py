#!/usr/bin/env python3
"""gen_retail_sample.py - a small, deterministic set of shops for the retail profile
(data/profiles/profiles.ini; seed 003: daily sales): the tills' cumulative sales counters, read
once a day, as the Reading JSON lines `hvsctl ingest` and the aggregator take.

A shop is a Building (no heated area), a till an Apartment whose meter is a cumulative counter
`sales_eur` (a till's grand total, in EUR, read at midnight UTC when the day is closed). A
till's day of sales follows the shop's size, the weekday (Friday and Saturday busy, Sunday
closed), the weather (cold and wet days keep shoppers home) and a little chance; the counter
shows cents, so a day's sales are the difference of two midnight readings.

Usage: gen_retail_sample.py [--shops N] [--tills N] [--days N] [--start YYYY-MM-DD]
                            [--readings FILE] [--topology FILE] [--daily FILE] [--weather FILE]
  --daily FILE    also writes "shop,day_epoch_ms,eur" lines: each shop's sales per UTC day,
                  summed here from its tills (what the aggregator's hours must add up to).
  --weather FILE  also writes the shops' hourly temperature as `hvsctl weather import` CSV.
Readings are written in event-time order, one a day per till from --start to two days after the
last summed day (the last day's hours close once the watermark passes its end). Defaults:
3 shops x 2 tills x 91 days from 2025-01-06 (a Monday), seed fixed: the same arguments give
the same bytes.
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
DAY_MS = 24 * HOUR_MS
# a weekday's share of an average day's sales (Monday first): Sunday closed
WEEKDAY = [0.90, 0.85, 0.90, 0.95, 1.25, 1.45, 0.0]


def temperature(h):
    """Outdoor degC of hour h: a winter's cold spells over the weeks and a daily cycle."""
    return 3.0 - 6.0 * math.sin(h * math.pi / (24 * 19.0)) + 3.5 * math.sin((h % 24 - 9) * math.pi / 12)


def day_mean_temperature(day):
    return sum(temperature(day * 24 + h) for h in range(24)) / 24.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shops", type=int, default=3)
    ap.add_argument("--tills", type=int, default=2)
    add_common_args(ap, 91)
    ap.add_argument("--daily", default=None)
    a = ap.parse_args()
    rng = random.Random(20250106)
    start, t0 = start_of(a)
    topo, daily, lines = [], {}, []
    for s in range(a.shops):
        shop = "shop_%02d" % (s + 1)
        size = 2500.0 * (1 + s)  # an average day's sales per till, EUR
        tills = ["till_%02d" % (k + 1) for k in range(a.tills)]
        topo.append({
            "building_id": shop, "archetype": "retail", "commissioning_date": t0 - 400 * DAY_MS,
            "latitude": 48.14 + 0.05 * s, "longitude": 11.58, "heated_area_m2": None,
            "holiday_region": "DE-BY",
            "apartments": [{"apartment_id": t} for t in tills]})
        shop_eur = [0.0] * a.days
        for k, till in enumerate(tills):
            counter = 50000.0 + 1234.56 * (s + k)  # a till in use: any start value
            # two readings more than summed days: the last day's end, and one past it
            for d in range(a.days + 2):
                ts = t0 + d * DAY_MS
                lines.append(reading(ts, shop, till, shop + "-" + till,
                                     [("sales_eur", round(counter, 2))]))
                wd = (start + dt.timedelta(days=d)).weekday()
                cold = max(0.0, 4.0 - day_mean_temperature(d))  # K below 4 degC
                eur = size * WEEKDAY[wd] * (1.0 - 0.02 * cold) * math.exp(rng.gauss(0.0, 0.06))
                nxt = round(counter + eur, 2)
                if d < a.days:
                    shop_eur[d] += nxt - round(counter, 2)
                counter = nxt
        daily[shop] = shop_eur
    write_outputs(a, lines, topo, start, (a.days + 2) * 24, temperature)
    if a.daily:
        with open(a.daily, "w") as f:
            for shop, v in daily.items():
                for d, eur in enumerate(v):
                    f.write("%s,%d,%.2f\n" % (shop, t0 + d * DAY_MS, eur))


if __name__ == "__main__":
    main()
