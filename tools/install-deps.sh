#!/usr/bin/env bash
# Installs the Debian packages Tailor builds and runs with, skipping those
# already present. Safe to run again. --sanitize: also what tools/sanitize.sh
# needs (clang with its sanitizer and fuzzer runtimes).
set -euo pipefail
packages=(
  build-essential cmake pkg-config ccache
  liblua5.4-dev libyaml-cpp-dev libeigen3-dev libzmq3-dev libsodium-dev cppzmq-dev libsqlite3-dev
  libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libxgboost-dev
  libcpp-httplib-dev  # tailord's optional HTTP listener: /metrics, /healthz, /readyz
  sqlite3 python3 python3-zmq
  python3-venv python3-setuptools python3-wheel  # the client package installs into a venv offline (tests)
  python3-prometheus-client  # tests parse /metrics with the reference parser
  python3-jsonschema         # tests check real messages against docs/schema/
  chromium  # tests/integration/report_test.cc renders `tailor report`'s HTML headless
  systemd   # systemd-analyze verifies the installed unit (tests/integration/ops_test.cc)
)
# tools/sanitize.sh: ASan + UBSan, libFuzzer, symbolized reports.
if [ "${1:-}" = "--sanitize" ]; then
  packages+=(clang libclang-rt-14-dev llvm-14)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
