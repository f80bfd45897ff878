#!/usr/bin/env bash
# Where the tracing CPU goes, per component, in microseconds per /chat:
# profiles the four services under `ragtrace bench` with tracing on and with
# tracing off, and charges each sample to a component
# (tools/tracing_profile.py). Needs perf (Debian's linux-perf) and a release
# build: cargo build --release -p ragtrace.
#
#   tools/profile_tracing.sh [out-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/profile}
hz=499
mkdir -p "$out"

profile() { # config -> $out/<config>.txt, and the requests in the window
  local config=$1 log="$out/bench-$1.log"
  ./target/release/ragtrace bench --config "$config" --duration 30 --open-duration 0 \
    --warmup 2s >"$log" 2>&1 &
  local bench=$!
  # The window is the closed loop's second 10 s (the bench prints its count
  # every 10 s).
  until grep -q "requests in 10 s" "$log"; do sleep 0.2; done
  local pids
  pids=$(pgrep -f "ragtrace serve" | paste -sd, -)
  perf record -q -F "$hz" --call-graph dwarf,16384 -p "$pids" -o "$out/$config.data" -- sleep 10
  wait "$bench"
  perf script --no-inline -i "$out/$config.data" -F comm,tid,ip,sym 2>/dev/null >"$out/$config.txt"
  local at10 at20
  at10=$(grep -o "[0-9]* requests in 10 s" "$log" | head -1 | cut -d' ' -f1)
  at20=$(grep -o "[0-9]* requests in 20 s" "$log" | head -1 | cut -d' ' -f1)
  echo $((at20 - at10))
}

all=$(profile all)
off=$(profile off)
echo "requests in the 10 s window: $all traced, $off untraced"
python3 tools/tracing_profile.py --hz "$hz" --requests "$all" \
  --against "$out/off.txt" --against-requests "$off" <"$out/all.txt"
