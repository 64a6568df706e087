"""sample_io.py - what the sample generators (ev_charging/, retail/) share: their common
arguments and how they write readings, topology and weather, in the formats `hvsctl ingest`,
`hvsctl topology load` and `hvsctl weather import` take."""
import datetime as dt
import json


def add_common_args(ap, days):
    """--days, --start, --readings, --topology, --weather (the generator adds its own)."""
    ap.add_argument("--days", type=int, default=days)
    ap.add_argument("--start", default="2025-01-06")
    ap.add_argument("--readings", default="readings.jsonl")
    ap.add_argument("--topology", default="topology.jsonl")
    ap.add_argument("--weather", default=None)


def start_of(a):
    """The --start day as an aware UTC datetime and as epoch ms."""
    start = dt.datetime.strptime(a.start, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    return start, int(start.timestamp() * 1000)


def reading(ts, building, apartment, device, values):
    """(sort key, Reading JSON line) of a device's counter values: [(sensor, value), ...]."""
    return (ts, building, apartment, json.dumps({
        "timestamp": ts, "building_id": building, "apartment_id": apartment, "device_id": device,
        "readings": [{"sensor_type": k, "value": v} for k, v in values]}, separators=(",", ":")))


def write_outputs(a, lines, topo, start, hours, temperature):
    """Readings in event-time order (a reading far behind the others would be too late), the
    topology, and with --weather each building's hourly temperature(h) for `hours` hours."""
    lines.sort()
    with open(a.readings, "w") as out:
        for line in lines:
            out.write(line[3] + "\n")
    with open(a.topology, "w") as f:
        for b in topo:
            f.write(json.dumps(b) + "\n")
    if a.weather:
        with open(a.weather, "w") as f:
            f.write("time,building_id,temperature_c\n")
            for b in topo:
                for h in range(hours):
                    t = start + dt.timedelta(hours=h)
                    f.write("%s,%s,%.1f\n" % (t.strftime("%Y-%m-%dT%H:%M:%SZ"), b["building_id"],
                                              temperature(h)))
