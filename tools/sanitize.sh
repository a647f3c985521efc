#!/usr/bin/env bash
# The bug-finding run: builds everything with clang under AddressSanitizer and
# UndefinedBehaviorSanitizer (build-san/), runs the whole test suite there,
# then runs each libFuzzer target in tests/fuzz for a bounded time.
#
#   tools/sanitize.sh [--fuzz-seconds N] [--no-tests] [--no-fuzz]
#
# A crash the fuzzers find is left in build-san/fuzz/crashes/; copy it into
# tests/fuzz/regressions/TARGET/ so every build replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_seconds=60
run_tests=1
run_fuzz=1
while [ $# -gt 0 ]; do
  case "$1" in
    --fuzz-seconds) fuzz_seconds="$2"; shift 2 ;;
    --no-tests) run_tests=0; shift ;;
    --no-fuzz) run_fuzz=0; shift ;;
    *) echo "usage: $0 [--fuzz-seconds N] [--no-tests] [--no-fuzz]" >&2; exit 2 ;;
  esac
done

tools/install-deps.sh --sanitize
build=build-san
# -O1 keeps the build and the run fast enough for CI; -g1 gives line numbers
# in reports without the cost of full debug info.
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DTAILOR_FUZZ=ON -DTAILOR_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

# Children (tailord started by the tests) inherit these. Leak checking stays
# on: a leak fails the process that leaked at its exit.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

if [ "$run_tests" = 1 ]; then
  echo "sanitize: the whole test suite under ASan + UBSan"
  ctest --test-dir "$build" --output-on-failure -j2 --timeout 900
fi

[ "$run_fuzz" = 1 ] || exit 0
mkdir -p "$build/fuzz/crashes"
summary=()
failed=0
for seeds in "$build"/fuzz/*.seeds; do
  target=$(basename "$seeds" .seeds)
  work="$build/fuzz/corpus-$target"  # new inputs land here, not in the checked-in corpus
  rm -rf "$work" && mkdir -p "$work"
  dirs=()
  while IFS= read -r p; do [ -n "$p" ] && [ -e "$p" ] && dirs+=("$p"); done <"$seeds"
  echo "sanitize: fuzzing $target for ${fuzz_seconds}s (seeds: ${#dirs[@]} paths)"
  log="$build/fuzz/$target.log"
  set +e
  "$build/bin/tailor_fuzz_$target" -max_total_time="$fuzz_seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz/crashes/$target-" "$work" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  inputs=$(find "$work" -type f | wc -l)
  if [ "$rc" -ne 0 ]; then
    failed=1
    echo "sanitize: $target FAILED (exit $rc); the input is in $build/fuzz/crashes/:"
    grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -20 || true
  fi
  summary+=("$(printf '%-10s %12s %10s %10s %s' "$target" "${execs:-?}" "${rate:-?}" "$inputs" \
    "$([ "$rc" -eq 0 ] && echo clean || echo "CRASH (exit $rc)")")")
done
echo
printf '%-10s %12s %10s %10s %s\n' target executions "per s" "new inputs" result
printf '%s\n' "${summary[@]}"
exit "$failed"
