#!/usr/bin/env bash
# The run command (README): sets up and runs hvacstream locally on the embedded defaults.
#   1. installs the Debian packages it needs and builds (Release),
#   2. starts a redis-server and hvs-devbroker (in-memory Kafka, loopback only),
#   3. creates the pipeline's topics, ingests the sample meter data (good and bad lines),
#   4. runs hvs-simulator: 4 buildings, a week of history as fast as it goes, then two hours of
#      simulated time at 900x, faults and messy delivery included (labels in the run dir), with
#      its Open-Meteo-format weather server on the simulated clock,
#   5. runs hvs-aggregator on it (15-minute and hourly aggregates, state in the Redis),
#      hvs-weather polling the simulator's weather server (observed and forecast hours) and
#      hvs-features joining both into feature vectors,
#   6. shows what arrived on readings.raw, topology, the aggregate, weather and feature topics,
#      and what was dead-lettered, with reasons,
#   7. runs hvs-trainer on the aggregates and weather (a short window and two backtest days, so
#      ten days of history suffice): backtested, gated model versions on `models`, listed with
#      hvsctl model list,
#   8. runs hvs-scorer on the aggregates and feature vectors with those models: every
#      apartment-hour scored, and the three highest scores shown with their reasons,
#   9. runs hvs-forecaster (each building's next 72 hours, every hour) and hvs-refresher (the
#      next 1-3 hours every 15 minutes, corrected by the last hours' errors) and reads one
#      building's latest refresh from Redis as an app would,
#  10. runs hvs-alerter on the scores (a daily top-5 per team, hysteresis, benign patterns
#      suppressed) and hvs-technician answering the raised alerts from the simulator's ground
#      truth on alerts.feedback,
#  11. runs the flywheel for 8 weeks of simulated operation (the quality test's binary,
#      test_al_flywheel: the same code of every stage in one process, ~90 s; 4 buildings over
#      ten days give too few verdicts to learn from): precision@k per week as the verdicts
#      weigh the lists and the classifier is retrained weekly, against the same alerter without
#      feedback (skip it with --no-flywheel),
#  12. ends with today's list per team as a technician sees it (hvsctl alerts list) and what was
#      suppressed, with reasons.
# Services are stopped at the end; with --stay they keep running until Ctrl-C so you can use
# `hvsctl` against them (the exports to do so are printed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stay=0 flywheel=1
for arg in "$@"; do
  case $arg in
  --stay) stay=1 ;;
  --no-flywheel) flywheel=0 ;;
  *) echo "usage: scripts/demo.sh [--stay] [--no-flywheel]" >&2; exit 2 ;;
  esac
done

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
bin=build/bin
run_dir=$(mktemp -d /tmp/hvs-demo-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$run_dir" \
  --loglevel warning >"$run_dir/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

"$bin/hvs-devbroker" >"$run_dir/devbroker.out" 2>"$run_dir/devbroker.err" &
pids+=($!)
for _ in $(seq 100); do [ "$(wc -l <"$run_dir/devbroker.out")" -ge 2 ] && break; sleep 0.1; done
brokers=$(head -n 1 "$run_dir/devbroker.out")
control=$(sed -n 2p "$run_dir/devbroker.out" | awk '{print $2}')

export HVS_KAFKA_BROKERS="$brokers"
export HVS_REDIS_URL="redis://127.0.0.1:$redis_port"
export HVS_KAFKA_FETCH_WAIT_MAX_MS=10
echo "== hvacstream demo: Kafka (hvs-devbroker) at $brokers, control $control; Redis at $HVS_REDIS_URL"

hvsctl=$bin/hvsctl
echo "== hvsctl topics create"
"$hvsctl" topics create
echo "== hvsctl ingest tests/data/readings.sample.jsonl"
"$hvsctl" ingest tests/data/readings.sample.jsonl
agg_port=$(free_port)
fx_port=$(free_port)
weather_port=$(free_port)
metrics() { /usr/bin/python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:$1/metrics', timeout=2).read().decode())" 2>/dev/null || true; }
echo "== hvs-aggregator (metrics on http://127.0.0.1:$agg_port/metrics)"
HVS_HTTP_PORT=$agg_port HVS_LOG_LEVEL=warn "$bin/hvs-aggregator" >"$run_dir/aggregator.log" 2>&1 &
pids+=($!)
echo "== hvs-features (metrics on http://127.0.0.1:$fx_port/metrics)"
HVS_HTTP_PORT=$fx_port HVS_LOG_LEVEL=warn "$bin/hvs-features" >"$run_dir/features.log" 2>&1 &
pids+=($!)
echo "== hvs-weather polling the simulator's weather server on :$weather_port every second (simulated clock)"
HVS_HTTP_PORT=-1 HVS_LOG_LEVEL=error "$bin/hvs-weather" --url "http://127.0.0.1:$weather_port" \
  --clock-url "http://127.0.0.1:$weather_port/v1/status" --poll-interval 1s --spread 0 --past-days 8 \
  --topology-wait 60s >"$run_dir/weather.log" 2>&1 &
pids+=($!)
sim=$bin/hvs-simulator
echo "== hvs-simulator: 4 buildings, 10 days of history, then 2 hours at 900x (labels: $run_dir/labels.jsonl)"
# With --serve-weather it keeps answering (on its clock, now frozen) after the run, until stopped.
"$sim" --out kafka --buildings 4 --history-days 10 --days 10.0834 --speed 900 \
  --serve-weather "$weather_port" --labels-out "$run_dir/labels.jsonl" \
  --topology-out "$run_dir/topology.jsonl" 2>"$run_dir/simulator.log" &
pids+=($!)
for _ in $(seq 600); do grep -q '"summary"' "$run_dir/simulator.log" && break; sleep 0.2; done
grep '"summary"' "$run_dir/simulator.log" || { echo "simulator did not finish; its log:"; tail "$run_dir/simulator.log"; exit 1; }
echo "== ground truth: $(wc -l <"$run_dir/labels.jsonl") labels, e.g."
grep '"category":"fault"' "$run_dir/labels.jsonl" | head -n 3 || true
echo "== hvsctl tail readings.raw --max 3"
"$hvsctl" tail readings.raw --from-beginning --max 3
echo "== hvsctl tail topology --max 1"
"$hvsctl" tail topology --from-beginning --max 1
# The aggregator has seen everything when its consumer lag is 0 and it has published.
for _ in $(seq 300); do
  m=$(metrics "$agg_port")
  lag=$(echo "$m" | awk '/^hvs_aggregator_consumer_lag_messages /{print $2}')
  [ "$lag" = "0" ] && echo "$m" | grep -q '^hvs_aggregator_windows_total{size="1h"} [1-9]' && break
  sleep 0.2
done
sleep 1
echo "== aggregates: $(metrics "$agg_port" | awk '/^hvs_aggregator_windows_total|^hvs_aggregator_revisions_total/{printf "%s %s  ", $1, $2}')"
echo "== hvsctl tail aggregates.hourly --max 2 (one apartment-hour, one building-hour)"
"$hvsctl" tail aggregates.hourly --from-beginning --max 200 | grep -m1 '"apartment_id":"apt'
"$hvsctl" tail aggregates.hourly --from-beginning --max 200 | grep -m1 '"apartment_id":null'
echo "== weather.hourly: $("$hvsctl" tail weather.hourly --from-beginning --max 100000000 2>/dev/null | grep -c '"kind":"OBSERVED"') observed and $("$hvsctl" tail weather.hourly --from-beginning --max 100000000 2>/dev/null | grep -c '"kind":"FORECAST"') forecast hours, e.g."
"$hvsctl" tail weather.hourly --from-beginning --max 1
# The feature worker: vectors stop growing once the last hours' weather is in (or timed out).
last=-1
for _ in $(seq 100); do
  n=$(metrics "$fx_port" | awk '/^hvs_features_vectors_total /{print $2}')
  [ -n "$n" ] && [ "$n" = "$last" ] && [ "$n" != "0" ] && break
  last=${n:-0}
  sleep 1
done
echo "== features: $(metrics "$fx_port" | awk '/^hvs_features_vectors_total|^hvs_features_upgrades_total|^hvs_features_dq_alerts_total/{printf "%s %s  ", $1, $2}')"
echo "== one building-hour vector (feature: value), from features.hourly"
"$hvsctl" tail features.hourly --max 40 2>/dev/null | grep '"apartment_id":null' | grep -v 'missing_weather' | tail -n 1 |
  /usr/bin/python3 -c 'import json,sys
v=json.loads(sys.stdin.readline())["value"]
print("  building %s, target hour %s, as of %s, %s, target %s kWh, flags %s" % (v["building_id"], v["target_hour"], v["as_of"], v["feature_set_version"], v["target"], v["quality_flags"]))
print("  " + ", ".join("%s=%s" % (n, "null" if x is None else round(x, 3)) for n, x in zip(v["names"], v["values"]) if n in ("hour","is_holiday","use_lag_24","use_roll_24_mean","temperature_c","hdh","shortwave_radiation_wm2","weather_is_forecast","comfort_gap_c")))' || true
echo "== alerts (data quality)"
"$hvsctl" tail alerts --from-beginning --max 5 2>/dev/null | cut -c1-300 || true
echo "== hvsctl dlq show --max 10"
"$hvsctl" dlq show --max 10
tr_port=$(free_port)
echo "== hvs-trainer on the aggregates and weather (metrics on http://127.0.0.1:$tr_port/metrics)"
# Demo sizes: a 10-day window, two held-out days, 100 rounds on one thread. The defaults (200 days,
# 3 x 14 held-out days) need months of history.
OMP_WAIT_POLICY=PASSIVE HVS_HTTP_PORT=$tr_port HVS_LOG_LEVEL=warn "$bin/hvs-trainer" --window 10d \
  --folds 1 --fold-days 2 --min-train-days 7 --mature-days 1d --rounds 100 --eta 0.1 --nthread 1 \
  --per-hour 2 >"$run_dir/trainer.log" 2>&1 &
pids+=($!)
# Done when runs stop growing for a few seconds (every scope of the scheduled round has run).
last=-1 same=0
for _ in $(seq 300); do
  n=$(metrics "$tr_port" | awk '/^hvs_trainer_runs_total /{print $2}')
  if [ -n "$n" ] && [ "$n" != "0" ] && [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; fi
  [ "$same" -ge 5 ] && break
  last=${n:-0}
  sleep 1
done
echo "== trainer: $(metrics "$tr_port" | awk '/^hvs_trainer_runs_total|^hvs_trainer_versions_total|^hvs_trainer_rejected_total/{printf "%s %s  ", $1, $2}')"
echo "== hvsctl model list (name, version, status, held-out WAPE, the gate's reason)"
"$hvsctl" model list 2>/dev/null | /usr/bin/python3 -c 'import json,sys
for l in sys.stdin:
    v=json.loads(l); w=v.get("metrics",{}).get("wape")
    print("  %-48s v%d %-16s WAPE %-6s %s" % (v["name"], v["version"], v["status"], "-" if w is None else "%.3f" % w, v.get("decision_reason") or ""))' || true

sc_port=$(free_port)
echo "== hvs-scorer: every apartment-hour scored by rules, residual and classifier (metrics on http://127.0.0.1:$sc_port/metrics)"
HVS_HTTP_PORT=$sc_port HVS_LOG_LEVEL=warn "$bin/hvs-scorer" >"$run_dir/scorer.log" 2>&1 &
pids+=($!)
# Done when it has read every feature vector there is.
vectors=$(metrics "$fx_port" | awk '/^hvs_features_vectors_total /{print $2}')
for _ in $(seq 600); do
  n=$(metrics "$sc_port" | awk '/^hvs_scorer_inputs_total\{topic="features"\} /{print $2}')
  [ -n "$n" ] && [ "${n%.*}" -ge "${vectors%.*}" ] && break
  sleep 0.2
done
sleep 1
echo "== scorer: $(metrics "$sc_port" | awk '/^hvs_scorer_scores_total|^hvs_scorer_scores_by_strategy_total|^hvs_scorer_rules_fired_total|^hvs_scorer_drift_alerts_total/{printf "%s %s  ", $1, $2}')"
echo "== the three highest-scored apartment-hours (score, strategy, model, reasons), from scores.anomaly"
"$hvsctl" tail scores.anomaly --from-beginning --max 100000000 2>/dev/null | /usr/bin/python3 -c 'import json,sys
best={}
for l in sys.stdin:
    v=json.loads(l)["value"]; k=(v["apartment_id"], v["hour"])
    if k not in best or v["revision"] >= best[k]["revision"]: best[k]=v
for v in sorted(best.values(), key=lambda v: -v["score"])[:3]:
    print("  %s %s score %.2f %s %s:%d" % (v["apartment_id"], v["hour"], v["score"], v["strategy"], v["model_name"], v["model_version"]))
    for r in v["reasons"]: print("      - " + r)' || true

fc_port=$(free_port)
rf_port=$(free_port)
echo "== hvs-forecaster (72 h per building, every hour) and hvs-refresher (the next 1-3 h, every 15 min)"
HVS_HTTP_PORT=$fc_port HVS_LOG_LEVEL=warn "$bin/hvs-forecaster" >"$run_dir/forecaster.log" 2>&1 &
pids+=($!)
HVS_HTTP_PORT=$rf_port HVS_LOG_LEVEL=warn "$bin/hvs-refresher" >"$run_dir/refresher.log" 2>&1 &
pids+=($!)
# Done when the refreshes stop growing for a few seconds.
last=-1 same=0
for _ in $(seq 240); do
  n=$(metrics "$rf_port" | awk '/^hvs_refresher_refreshes_total /{print $2}')
  if [ -n "$n" ] && [ "$n" != "0" ] && [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; fi
  [ "$same" -ge 5 ] && break
  last=${n:-0}
  sleep 1
done
echo "== forecaster: $(metrics "$fc_port" | awk '/^hvs_forecaster_(forecasts|rules_forecasts|alerts)_total/{printf "%s %s  ", $1, $2}')"
echo "== refresher: $(metrics "$rf_port" | awk '/^hvs_refresher_(ticks|refreshes|reissued|flagged)_total/{printf "%s %s  ", $1, $2}')"
echo "== a building's latest refresh, as an app reads it from Redis (one GET of hvs:{B}:rf:latest)"
b=$("$hvsctl" tail forecasts.refreshed --from-beginning --max 1 2>/dev/null | /usr/bin/python3 -c 'import json,sys
for l in sys.stdin: print(json.loads(l)["value"]["building_id"])' || true)
if [ -n "$b" ]; then
  redis-cli -u "$HVS_REDIS_URL" GET "hvs:{$b}:rf:latest" | /usr/bin/python3 -c 'import json,sys,datetime
v=json.loads(sys.stdin.read()); t=lambda ms: datetime.datetime.utcfromtimestamp(ms/1000).strftime("%m-%d %H:%M")
print("  %s as of %s, %s on %s v%d (issued %s), flags %s" % (v["building_id"], t(v["issued_at"]), v["model"], v["baseline_model"], v["baseline_version"], t(v["baseline_issued_at"]), v["flags"] or "-"))
f=lambda x: "-" if x is None else "%.2f" % x
for p in v["points"]: print("    %s  %s kWh  [%s, %s]  correction %s" % (t(p[0]), f(p[2]), f(p[3]), f(p[4]), f(p[5])))' || true
fi

al_port=$(free_port)
tech_port=$(free_port)
echo "== hvs-alerter: a daily top-5 per team (metrics on http://127.0.0.1:$al_port/metrics)"
HVS_HTTP_PORT=$al_port HVS_LOG_LEVEL=warn "$bin/hvs-alerter" >"$run_dir/alerter.log" 2>&1 &
al_pid=$!
pids+=($al_pid)
echo "== hvs-technician: answers raised alerts from the ground truth (5 % mistakes, 20 % never answered)"
HVS_HTTP_PORT=$tech_port HVS_LOG_LEVEL=warn "$bin/hvs-technician" --labels "$run_dir/labels.jsonl" \
  >"$run_dir/technician.log" 2>&1 &
pids+=($!)
scores=$(metrics "$sc_port" | awk '/^hvs_scorer_scores_total /{print $2}')
for _ in $(seq 600); do
  n=$(metrics "$al_port" | awk '/^hvs_alerter_inputs_total\{topic="scores"\} /{print $2}')
  [ -n "$n" ] && [ "${n%.*}" -ge "${scores%.*}" ] && break
  sleep 0.2
done
sleep 3
kill -0 "$al_pid" 2>/dev/null || { echo "hvs-alerter exited; its log:"; tail -n 20 "$run_dir/alerter.log"; }
echo "== alerter: $(metrics "$al_port" | awk '/^hvs_alerter_(episodes_opened|raised|critical|lists|suppressed|feedback)_total/{printf "%s %s  ", $1, $2}')"
echo "== technician: $(metrics "$tech_port" | awk '/^hvs_technician_answered_total/{printf "%s %s  ", $1, $2}')"
if [ "$flywheel" = 1 ]; then
  echo "== the flywheel: 10 buildings x 20 flats, 8 weeks of the heating season in one process (build/tests/alerter/test_al_flywheel, ~90 s)"
  FLYWHEEL_TSV="$run_dir/flywheel.tsv" build/tests/alerter/test_al_flywheel >"$run_dir/flywheel.out" 2>"$run_dir/flywheel.err" ||
    echo "   test_al_flywheel failed; see its output:"
  sed -n '/^end of week/p;/^week /,/^(faults/p;/^precision@k, first/p;/^alerts on a fault/p' "$run_dir/flywheel.out" | cut -c1-220
  if command -v gnuplot >/dev/null && [ -s "$run_dir/flywheel.tsv" ]; then
    scripts/plot-flywheel.sh "$run_dir/flywheel.tsv" "$run_dir/flywheel.png" >/dev/null &&
      cp "$run_dir/flywheel.png" /tmp/hvs-demo-flywheel.png && echo "   plotted: /tmp/hvs-demo-flywheel.png"
  fi
fi
echo "== today's lists, as a technician sees them (hvsctl alerts list --date <latest day>)"
day=$("$hvsctl" alerts list --json 2>/dev/null | /usr/bin/python3 -c 'import json,sys
days=[json.loads(l).get("list_day") or 0 for l in sys.stdin]
import datetime; d=max(days) if days else 0
print(datetime.datetime.utcfromtimestamp(d/1000).strftime("%Y-%m-%d") if d else "")' || true)
"$hvsctl" alerts list ${day:+--date "$day"} || true
echo "== suppressed (benign patterns), with reasons"
"$hvsctl" alerts list --suppressed | head -n 8 || true

if [ "$stay" = 1 ]; then
  "$sim" --out kafka --buildings 4 --days 0 --speed realtime --serve-weather "$weather_port" \
    --labels-out "$run_dir/labels.live.jsonl" 2>"$run_dir/simulator.log" &
  pids+=($!)
  echo "== hvs-simulator keeps producing in real time; its weather (Open-Meteo format):"
  echo "   curl 'http://127.0.0.1:$weather_port/v1/forecast?latitude=47.37&longitude=8.54&hourly=temperature_2m,shortwave_radiation'"
  echo "== services keep running; in another shell:"
  echo "   export HVS_KAFKA_BROKERS=$brokers HVS_REDIS_URL=$HVS_REDIS_URL"
  echo "   $root/$hvsctl tail readings.raw --from-beginning --follow"
  echo "== Ctrl-C stops them"
  wait
fi
