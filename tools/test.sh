#!/usr/bin/env bash
# Builds everything (tests included) and runs the whole test suite with ctest.
# The build is the one quickstart makes (Release), plus the tests, with
# warnings as errors: a green run proves the README's first command compiles.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTAILOR_BUILD_TESTS=ON -DTAILOR_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j2
