#!/usr/bin/env bash
# The storage benchmark at full size: 1M messages, 200 chats, 2,000 users, against SQLite in the
# same run (each engine in its own process). Prints the table; keeps the JSON in target/bench/.
#   scripts/bench.sh                      # 1M messages
#   scripts/bench.sh --messages 200000    # any `chatkeeper bench` option overrides
# Takes several minutes on 2 cores: SQLite's one-commit-per-message ingest is most of it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out="${BENCH_OUT:-target/bench}"
mkdir -p "$out"
report="$out/storage-$(date -u +%Y%m%dT%H%M%SZ).json"
./target/release/chatkeeper bench --messages 1000000 --save "$report" "$@"
echo "JSON report: $report"
