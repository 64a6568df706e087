#!/usr/bin/env bash
# Plots one simulated building's week: outdoor temperature, global irradiance and the building's
# hourly heating power, from hvs-simulator's own outputs (--weather-out and the JSON lines).
#   scripts/plot-week.sh [OUT.png]   (default docs/simulator-week.png)
# Settings by environment (not HVS_*: those belong to the workers):
#   PLOT_BUILDING (bldg_002, the old poorly insulated block), PLOT_START (2025-01-23: grey cold
#   days, then a cold and sunny spell), PLOT_SEED (7). Needs gnuplot (apt-get install gnuplot-nox)
#   and a build in build/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/docs/simulator-week.png}
building=${PLOT_BUILDING:-bldg_002}
start=${PLOT_START:-2025-01-23}
seed=${PLOT_SEED:-7}
sim=$root/build/bin/hvs-simulator
[ -x "$sim" ] || { echo "plot-week: build first ($sim missing)" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot-week: needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Ten days of warm-up so the rooms and the counters have settled, then the plotted week.
from=$(date -u -d "$start -10 days" +%Y-%m-%dT00:00:00Z)
"$sim" --out jsonl --clean --seed "$seed" --start "$from" --days 17 --buildings 3 \
  --apartments-per-building 50 --weather-out "$tmp/weather.jsonl" --topology-out "$tmp/topo.jsonl" \
  > "$tmp/readings.jsonl" 2> "$tmp/sim.log"

# Hourly heating power (kW = kWh per hour): each counter increase is spread evenly over the
# interval since that apartment's previous report, so change-based reporting does not alias.
python3 - "$tmp" "$building" "$start" <<'EOF'
import json, sys, collections, datetime as dt
tmp, building, start = sys.argv[1:]
t0 = dt.datetime.fromisoformat(start + "T00:00:00+00:00").timestamp()
t1 = t0 + 7 * 86400
def ts(s): return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
kwh = collections.defaultdict(float)
last = {}
for line in open(f"{tmp}/readings.jsonl"):
    r = json.loads(line)
    if r["building_id"] != building: continue
    t = ts(r["timestamp_str"])
    for x in r["readings"]:
        if x["sensor_type"] != "heating_energy_kwh": continue
        prev = last.get(r["apartment_id"])
        last[r["apartment_id"]] = (t, x["value"])
        if prev is None or t <= prev[0]: continue
        dv, a = x["value"] - prev[1], prev[0]
        while a < t:
            b = min(t, (a // 3600 + 1) * 3600)
            kwh[int(a // 3600)] += dv * (b - a) / (t - prev[0])
            a = b
with open(f"{tmp}/week.dat", "w") as f:
    f.write("# hours_since_start temperature_c ghi_w_m2 heating_kw\n")
    for line in open(f"{tmp}/weather.jsonl"):
        w = json.loads(line)
        t = ts(w["time"])
        if w["building_id"] != building or not (t0 <= t < t1): continue
        f.write(f"{(t - t0) / 3600:.0f} {w['temperature_c']} {w['shortwave_radiation']} "
                f"{kwh.get(int(t // 3600), 0.0):.2f}\n")
for line in open(f"{tmp}/topo.jsonl"):
    b = json.loads(line)
    if b["building_id"] == building:
        open(f"{tmp}/title", "w").write(
            f"{building}: {b['archetype'].replace('_', ' ')}, {len(b['apartments'])} flats, "
            f"{b['heated_area_m2']:.0f} m2, {b['holiday_region']}")
EOF

mkdir -p "$(dirname "$out")"
gnuplot <<EOF
set terminal pngcairo size 1200,800 font "sans,10" noenhanced
set output "$out"
set multiplot layout 3,1 title "$(cat "$tmp/title") - week from $start (hvs-simulator --seed $seed)"
set grid
set xrange [0:168]
set xtics 24
set format x ""
set lmargin 10
set ylabel "outdoor (degC)"
plot "$tmp/week.dat" using 1:2 with lines lw 2 lc rgb "#1f77b4" notitle
set ylabel "irradiance (W/m2)"
plot "$tmp/week.dat" using 1:3 with filledcurves y1=0 lc rgb "#ffbf00" notitle
set ylabel "heating (kW)"
set xlabel "hours since $start 00:00 UTC"
set format x "%g"
plot "$tmp/week.dat" using 1:4 with steps lw 1.5 lc rgb "#d62728" notitle
unset multiplot
EOF
echo "plot-week: wrote $out"
