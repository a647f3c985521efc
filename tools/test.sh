#!/usr/bin/env bash
# Builds everything (tests included) and runs the whole test suite with ctest;
# then the bug-finding run (tools/sanitize.sh): the suite again under ASan +
# UBSan, and every fuzz target for a bounded time.
#
#   tools/test.sh [--quick]      --quick: the Release suite only
#
# The first build is the one quickstart makes (Release), plus the tests, with
# warnings as errors: a green run proves the README's first command compiles.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTAILOR_BUILD_TESTS=ON -DTAILOR_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j2
[ "$quick" = 1 ] && exit 0
tools/sanitize.sh --fuzz-seconds "${TAILOR_FUZZ_SECONDS:-60}"
