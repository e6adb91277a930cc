#!/usr/bin/env bash
# The storage benchmark at full size, each engine in its own processes:
#   1. 1M messages (200 chats, 2,000 users) against SQLite in the same run: the ratios;
#   2. 5M messages, chatkeeper alone: that peak RSS stays flat as history grows (SQLite's
#      one-commit-per-message ingest would take most of an hour at that size).
# Prints both tables; keeps the JSON reports in target/bench/ (or $BENCH_OUT).
#   scripts/bench.sh                      # both runs
#   scripts/bench.sh --chats 50           # any `chatkeeper bench` option applies to both
#   BENCH_SIZES=1000000 scripts/bench.sh  # the 1M comparison only
# Takes about 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out="${BENCH_OUT:-target/bench}"
mkdir -p "$out"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
for messages in ${BENCH_SIZES:-1000000 5000000}; do
    report="$out/storage-$messages-$stamp.json"
    if [ "$messages" -le 1000000 ]; then
        ./target/release/chatkeeper bench --messages "$messages" --save "$report" "$@"
    else
        ./target/release/chatkeeper bench --messages "$messages" --no-sqlite --save "$report" "$@"
    fi
    echo "JSON report: $report"
done
