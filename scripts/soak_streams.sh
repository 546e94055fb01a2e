#!/usr/bin/env bash
# Soak: N stream connections (ticker + book of a symbol each, N/5 per
# exchange kind) against a local `exwatch sim`
# for a while, sampling exwatch's resident memory (VmRSS) and CPU time from
# /proc, and its live heap (`exwatch_heap_allocated_bytes`, what the
# allocator handed out and got no free for), every INTERVAL seconds. Prints
# one CSV line per sample and a summary: RSS and heap first/last/max, CPU
# seconds per second, and CPU per 1,000 messages/s (messages counted by
# exwatch's own metrics). A leak grows the heap; allocator retention grows
# RSS only.
#
#   scripts/soak_streams.sh [connections=50] [seconds=3600] [interval=60]
#
# Uses target/release/exwatch (cargo build --release --features heap-stats
# first; without the feature the heap column stays empty). Everything on
# 127.0.0.1.
# Environment: BIN (the binary), PORT (the simulator's; +1 its streams, +10
# metrics), FEEDS (default `"ticker", "book"`, e.g. FEEDS='"ticker"'),
# KEEP=1 keeps the temporary directory (config, logs, journal).
set -euo pipefail
N=${1:-50}
SECS=${2:-3600}
EVERY=${3:-60}
BIN=${BIN:-target/release/exwatch}
DIR=$(mktemp -d)
PORT=${PORT:-19900}
MPORT=$((PORT + 10))
FEEDS=${FEEDS:-'"ticker", "book"'}
kinds=(binance bybit okx coinbase kraken)
{
  echo "[instance]"; echo "name = \"soak\""
  echo "[journal]"; echo "path = \"$DIR/journal.jsonl\""; echo "samples = false"
  echo "[metrics]"; echo "listen = \"127.0.0.1:$MPORT\""
  for k in "${kinds[@]}"; do
    echo "[[exchanges]]"; echo "name = \"$k\""; echo "kind = \"$k\""
    for i in $(seq 1 $((N / ${#kinds[@]}))); do
      # One symbol per connection (one subscription per feed and symbol on
      # an exchange), in the exchange's spelling; the simulator serves any.
      case $k in
        binance | bybit) sym="X${i}USDT" ;;
        okx) sym="X${i}-USDT" ;;
        coinbase) sym="X${i}-USD" ;;
        kraken) sym="X${i}/USD" ;;
      esac
      echo "[[exchanges.streams]]"; echo "name = \"$k-ws$i\""
      echo "url = \"ws://127.0.0.1:$((PORT + 1))/$k/ws\""
      echo "symbols = [\"$sym\"]"
      echo "feeds = [$FEEDS]"
    done
  done
} > "$DIR/soak.toml"
"$BIN" sim --listen "127.0.0.1:$PORT" > "$DIR/sim.log" 2>&1 &
SIM=$!
sleep 1
"$BIN" run --headless -c "$DIR/soak.toml" > /dev/null 2> "$DIR/run.log" &
RUN=$!
trap 'kill $RUN $SIM 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $DIR" >&2 || rm -rf "$DIR"' EXIT
TCK=$(getconf CLK_TCK)
msgs() {
  curl -s "http://127.0.0.1:$MPORT/metrics" \
    | awk '/^exwatch_stream_messages_total\{.*stream="ws:/ {s += $NF} END {printf "%d", s}'
}
heap() {
  curl -s "http://127.0.0.1:$MPORT/metrics" \
    | awk '/^exwatch_heap_allocated_bytes / {printf "%d", $NF / 1024}'
}
cpu() { awk -v t="$TCK" '{printf "%.2f", ($14 + $15) / t}' "/proc/$RUN/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$RUN/status"; }
sleep 5
echo "elapsed_s,rss_kib,cpu_s,data_msgs,heap_kib"
t0=$(date +%s); c0=$(cpu); m0=$(msgs); first=$(rss); max=$first
h0=$(heap); hmax=${h0:-0}
while :; do
  now=$(date +%s); e=$((now - t0))
  r=$(rss); c=$(cpu); m=$(msgs); h=$(heap)
  [ "$r" -gt "$max" ] && max=$r
  [ "${h:-0}" -gt "$hmax" ] && hmax=$h
  echo "$e,$r,$c,$m,$h"
  [ "$e" -ge "$SECS" ] && break
  sleep "$EVERY"
done
awk -v c0="$c0" -v c="$c" -v m0="$m0" -v m="$m" -v e="$e" -v f="$first" -v r="$r" -v x="$max" -v n="$N" \
  -v h0="${h0:-0}" -v h="${h:-0}" -v hx="$hmax" 'BEGIN {
  cps = (c - c0) / e; mps = (m - m0) / e;
  printf "connections %d, %d s: RSS %d KiB at start, %d KiB at end, %d KiB max; heap %d KiB at start, %d KiB at end, %d KiB max; CPU %.3f s/s; %.0f data msgs/s; CPU per 1,000 msgs/s: %.1f%% of a core\n",
    n, e, f, r, x, h0, h, hx, cps, mps, (mps > 0 ? 100 * cps * 1000 / mps : 0)
}'
