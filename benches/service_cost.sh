#!/usr/bin/env bash
# One service call's cost to the client, blocking against async (default
# transport, and reqwest), side by side in one run against one
# globus-auth-dev-server (release build, pinned to the last core; the
# client pinned to core 0). For each mode: instructions per call
# (callgrind: the difference between 220 and 20 calls, so that start-up and
# the warm-up call cancel out), futex calls per call (strace, the same
# difference), and CPU time per call (median of 3 runs of CALLS calls), then
# the CPU time per call with 64 tasks (threads for blocking) of 1,000 calls.
#
#   benches/service_cost.sh            # CALLS=5000 by default
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${CALLS:-5000}
last_core=$(( $(nproc) - 1 ))

cargo build -q --release -p globus-app-dev-server
bench=$(cargo bench -q -p globus-app-benches --bench service_cost --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*service_cost[^"]*\)".*/\1/p' | tail -1)
[ -x "$bench" ] || { echo "service_cost binary not found" >&2; exit 1; }

log=$(mktemp)
taskset -c "$last_core" target/release/globus-auth-dev-server --client-secret bench-secret > "$log" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q 'GLOBUS_CLIENT_SECRET' "$log" && break; sleep 0.1; done
GLOBUS_APP_BENCH_AUTH_URL=$(sed -n 's/.*export GLOBUS_SDK_SERVICE_URL_AUTH=//p' "$log")
GLOBUS_APP_BENCH_SERVICES_URL=$(sed -n 's/.*export GLOBUS_SDK_SERVICE_URL_TRANSFER=//p' "$log")
export GLOBUS_APP_BENCH_AUTH_URL GLOBUS_APP_BENCH_SERVICES_URL

client() { taskset -c 0 "$@"; }
instructions() { # mode calls
  client valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bench" "$1" "$2" 2>&1 >/dev/null \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
futexes() { # mode calls
  local out; out=$(mktemp)
  client strace -f -c -e trace=futex -o "$out" "$bench" "$1" "$2" > /dev/null
  awk '$NF == "futex" {print $4}' "$out"; rm -f "$out"
}

printf '| mode | instructions per call | futex calls per call | CPU µs per call (1 task) | CPU µs per call (64 tasks x 1,000) |\n|---|---|---|---|---|\n'
declare -A ins cpu
for mode in blocking async reqwest; do
  small=$(instructions "$mode" 20); large=$(instructions "$mode" 220)
  ins[$mode]=$(( (large - small) / 200 ))
  f_small=$(futexes "$mode" 20); f_large=$(futexes "$mode" 220)
  futex=$(python3 -c "print(f'{(${f_large:-0} - ${f_small:-0}) / 200:.2f}')")
  cpu[$mode]=$(for _ in 1 2 3; do client "$bench" "$mode" "$calls" 1 | sed -n 's/.*cpu_ns_per_call=\([0-9]*\).*/\1/p'; done | sort -n | sed -n 2p)
  many=$(client "$bench" "$mode" 1000 64 | sed -n 's/.*cpu_ns_per_call=\([0-9]*\).*/\1/p')
  printf '| %s | %s | %s | %s | %s |\n' "$mode" "${ins[$mode]}" "$futex" \
    "$(python3 -c "print(f'{${cpu[$mode]} / 1000:.1f}')")" "$(python3 -c "print(f'{$many / 1000:.1f}')")"
done
for mode in async reqwest; do
  echo "$mode / blocking: instructions $(python3 -c "print(f'{${ins[$mode]} / ${ins[blocking]}:.2f}')")x, CPU $(python3 -c "print(f'{${cpu[$mode]} / ${cpu[blocking]}:.2f}')")x"
done
