#!/usr/bin/env bash
# A/B of two netstack builds (or option sets) on bench/netstack.sh's topology: single-stream iperf3
# uploads through each in turn, A B A B …, so both see the same drift of a shared machine. Root only.
#
#   bench/netstack-ab.sh PAIRS 'A command' 'B command' [iperf3 options]
#   bench/netstack-ab.sh 8 '.build/release/netstack-bench' '/tmp/old-netstack-bench'
#   bench/netstack-ab.sh 6 'nb --batch 64' 'nb --batch 16' -R      (download: iperf3 -R)
#   T=8 bench/netstack-ab.sh …                                      (seconds per run, default 5)
#
# A command is a netstack-bench binary and its `tun` options (the TUN name and relay are added). Prints
# each run's Gbit/s and the proxy's CPU seconds per GB, then each side's median and how many pairs B won.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib/netstack-ns.sh
[ $# -ge 3 ] || { sed -n 2,12p "$0"; exit 2; }
PAIRS=$1; A=$2; B=$3; shift 3
IPERF_ARGS=("$@")
T=${T:-5}
NS=nsab$$
PIDS=()
RUNS=$(mktemp)
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -f "$RUNS"
}
trap cleanup EXIT

# run COMMAND: sets GBIT and CPU_PER_GB (in this shell, so `cleanup` sees the processes in PIDS)
run() {
    local command=$1
    ns_with_server "$NS"
    local words
    read -r -a words <<< "$command"
    ip netns exec "$NS" "${words[0]}" tun bt0 --relay 127.0.0.1 "${words[@]:1}" >/dev/null 2>&1 & local proxy=$!
    PIDS=("$SERVER_PID" "$proxy")
    route_through_tun "$NS" 1500
    sleep 0.5
    local c0 c1 result
    c0=$(cpu_ticks "$proxy")
    result=$(ip netns exec "$NS" iperf3 -c 198.18.0.2 -p 5201 -t "$T" "${IPERF_ARGS[@]}" -J 2>/dev/null | iperf_result || true)
    c1=$(cpu_ticks "$proxy")
    kill "$SERVER_PID" "$proxy" 2>/dev/null || true
    wait "$SERVER_PID" "$proxy" 2>/dev/null || true
    PIDS=()
    ip netns del "$NS"
    local bytes
    read -r GBIT bytes <<< "${result:-0 0}"
    CPU_PER_GB=$(cpu_per_gb "$((c1 - c0))" "$bytes")
}

for i in $(seq "$PAIRS"); do
    run "$A"; ga=$GBIT; ca=$CPU_PER_GB
    run "$B"; gb=$GBIT; cb=$CPU_PER_GB
    printf 'pair %2d  A %6s Gbit/s (%s CPU-s/GB)  B %6s Gbit/s (%s CPU-s/GB)\n' "$i" "$ga" "$ca" "$gb" "$cb"
    echo "$ga $gb" >> "$RUNS"
done
python3 - "$RUNS" "$A" "$B" <<'PY'
import statistics, sys
pairs = [tuple(map(float, line.split())) for line in open(sys.argv[1])]
a = [p[0] for p in pairs]; b = [p[1] for p in pairs]
print(f'A {statistics.median(a):.2f} Gbit/s median  ({sys.argv[2]})')
print(f'B {statistics.median(b):.2f} Gbit/s median  ({sys.argv[3]})')
print(f'B/A {statistics.median(b) / statistics.median(a):.3f}; B won {sum(y > x for x, y in pairs)} of {len(pairs)} pairs')
PY
