#!/usr/bin/env bash
# The test command (README): installs what is missing, builds with -Werror (-DHVS_WERROR=ON on
# every build below; the option is off for users), runs every test
# against real services (each test starts its own redis-server and hvs-devbroker on free
# ports), then builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs the
# unit and integration tests under them. Benchmarks (ctest label "bench") are not run here:
# `ctest --test-dir build -L bench -V`.
#   SKIP_SANITIZE=1  skip the sanitizer pass (quicker local runs). Not an HVS_* name: every
#   program rejects HVS_* variables it does not know.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
jobs=$(nproc)

echo "== build (RelWithDebInfo, -Werror) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHVS_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
echo "== tests =="
ctest --test-dir build -LE 'bench|mock_flaky' --output-on-failure -j 2

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
  ctest --test-dir build-asan -L 'unit|integration' -LE mock_flaky --output-on-failure -j 2
fi
