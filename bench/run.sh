#!/usr/bin/env bash
# Side-by-side benchmark: netaccess as a peer of ../shared/bench (nginx on 127.0.0.1 only).
#   bench/run.sh [--workloads W1,W3] [--peers reqwest,qt6-cpp,pyqt6] [--repeat 3] [--out FILE] [harness args...]
# Builds bench/peer in release (or takes NETACCESS_PEER=/abs/path/to/binary), then runs the shared harness with --peer netaccess=<that binary>.
# Defaults: W1,W3; peers reqwest, qt6-cpp, pyqt6 (+ netaccess); 3 iterations;
# results in bench/results/<date>-<workloads>.md (+ .jsonl). Needs ../shared/bench/setup.sh done.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SHARED="${SHARED_BENCH:-$(cd "$ROOT/../shared/bench" && pwd)}"

WORKLOADS=W1,W3
PEERS=reqwest,qt6-cpp,pyqt6
REPEAT=3
OUT=""
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --workloads) WORKLOADS="$2"; shift 2 ;;
    --peers) PEERS="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) EXTRA+=("$1"); shift ;;
  esac
done
[ -n "$OUT" ] || OUT="$HERE/results/$(date +%Y%m%d-%H%M%S)-${WORKLOADS//,/}.md"
mkdir -p "$(dirname "$OUT")"
OUT="$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")"

if [ -n "${NETACCESS_PEER:-}" ]; then   # a prebuilt peer (e.g. from a snapshot of a commit)
  PEER_BIN="$NETACCESS_PEER"
else
  (cd "$ROOT" && cargo build --release -p netaccess-bench-peer)
  PEER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/netaccess-bench-peer"
fi
[ -x "$PEER_BIN" ] || { echo "bench/run.sh: $PEER_BIN not built" >&2; exit 1; }

echo "bench/run.sh: $WORKLOADS x {$PEERS,netaccess} x $REPEAT -> $OUT" >&2
exec "$SHARED/run.sh" --workloads "$WORKLOADS" --peers "$PEERS" \
  --peer "netaccess=$PEER_BIN" --repeat "$REPEAT" --out "$OUT" "${EXTRA[@]}"
