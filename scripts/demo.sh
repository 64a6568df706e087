#!/usr/bin/env bash
# The run command (README): sets up and runs hvacstream locally on the embedded defaults.
#   1. installs the Debian packages it needs and builds (Release),
#   2. starts a redis-server and hvs-devbroker (in-memory Kafka, loopback only),
#   3. creates the pipeline's topics, ingests the sample meter data (good and bad lines),
#   4. runs hvs-simulator: 4 buildings, a week of history as fast as it goes, then two hours of
#      simulated time at 900x, faults and messy delivery included (labels in the run dir),
#   5. runs hvs-aggregator on it (15-minute and hourly aggregates, state in the Redis),
#   6. shows what arrived on readings.raw, topology and the aggregate topics, and what was
#      dead-lettered, with reasons.
# Services are stopped at the end; with --stay they keep running until Ctrl-C so you can use
# `hvsctl` against them (the exports to do so are printed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stay=0
[ "${1:-}" = "--stay" ] && stay=1

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
bin=build/workers
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

"$bin/devbroker/hvs-devbroker" >"$run_dir/devbroker.out" 2>"$run_dir/devbroker.err" &
pids+=($!)
for _ in $(seq 100); do [ "$(wc -l <"$run_dir/devbroker.out")" -ge 2 ] && break; sleep 0.1; done
brokers=$(head -n 1 "$run_dir/devbroker.out")
control=$(sed -n 2p "$run_dir/devbroker.out" | awk '{print $2}')

export HVS_KAFKA_BROKERS="$brokers"
export HVS_REDIS_URL="redis://127.0.0.1:$redis_port"
export HVS_KAFKA_FETCH_WAIT_MAX_MS=10
echo "== hvacstream demo: Kafka (hvs-devbroker) at $brokers, control $control; Redis at $HVS_REDIS_URL"

hvsctl=$bin/hvsctl/hvsctl
echo "== hvsctl topics create"
"$hvsctl" topics create
echo "== hvsctl ingest tests/data/readings.sample.jsonl"
"$hvsctl" ingest tests/data/readings.sample.jsonl
agg_port=$(free_port)
metrics() { /usr/bin/python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:$agg_port/metrics', timeout=2).read().decode())" 2>/dev/null || true; }
echo "== hvs-aggregator (metrics on http://127.0.0.1:$agg_port/metrics)"
HVS_HTTP_PORT=$agg_port HVS_LOG_LEVEL=warn "$bin/aggregator/hvs-aggregator" >"$run_dir/aggregator.log" 2>&1 &
pids+=($!)
sim=$bin/simulator/hvs-simulator
echo "== hvs-simulator: 4 buildings, 7 days of history, then 2 hours at 900x (labels: $run_dir/labels.jsonl)"
"$sim" --out kafka --buildings 4 --history-days 7 --days 7.0834 --speed 900 \
  --labels-out "$run_dir/labels.jsonl" --topology-out "$run_dir/topology.jsonl" \
  2> >(grep '"summary"' >&2)
echo "== ground truth: $(wc -l <"$run_dir/labels.jsonl") labels, e.g."
grep '"category":"fault"' "$run_dir/labels.jsonl" | head -n 3 || true
echo "== hvsctl tail readings.raw --max 3"
"$hvsctl" tail readings.raw --from-beginning --max 3
echo "== hvsctl tail topology --max 1"
"$hvsctl" tail topology --from-beginning --max 1
# The aggregator has seen everything when its consumer lag is 0 and it has published.
for _ in $(seq 300); do
  m=$(metrics)
  lag=$(echo "$m" | awk '/^hvs_aggregator_consumer_lag_messages /{print $2}')
  [ "$lag" = "0" ] && echo "$m" | grep -q '^hvs_aggregator_windows_total{size="1h"} [1-9]' && break
  sleep 0.2
done
sleep 1
echo "== aggregates: $(metrics | awk '/^hvs_aggregator_windows_total|^hvs_aggregator_revisions_total/{printf "%s %s  ", $1, $2}')"
echo "== hvsctl tail aggregates.hourly --max 2 (one apartment-hour, one building-hour)"
"$hvsctl" tail aggregates.hourly --from-beginning --max 200 | grep -m1 '"apartment_id":"apt'
"$hvsctl" tail aggregates.hourly --from-beginning --max 200 | grep -m1 '"apartment_id":null'
echo "== hvsctl dlq show --max 10"
"$hvsctl" dlq show --max 10

if [ "$stay" = 1 ]; then
  weather_port=$(free_port)
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
