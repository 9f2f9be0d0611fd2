#!/usr/bin/env bash
# Netstack throughput and memory (issue #3, acceptance 4 and 5): a client namespace whose TUN leads to
# a userspace stack that terminates each TCP flow and relays it to iperf3 -s on the namespace's
# loopback. Ours (netstack-bench: TunDevice with TSO/checksum offloads, transparent Stack, NIO relay)
# vs Go sing-box 1.12.12 tun inbound, stack gvisor and system, with a direct outbound, in one run;
# plus the kernel's own veth between two namespaces. Root only.
#
#   bench/netstack.sh [seconds] [idle-flows]      (defaults 8 and 10000)
#   ROUNDS=5 bench/netstack.sh 5 10000            (throughput rounds, alternating the stacks)
#   CLIENT_CC=cubic bench/netstack.sh             (the iperf3 sender's congestion control, iperf3 -C;
#                                                  default: the machine's, net.ipv4.tcp_congestion_control)
#
# Per proxy: iperf3 single stream up (client → server) and down (-R), Gbit/s; the proxy's CPU seconds
# per GB moved (utime+stime); its peak RSS (VmHWM); then N idle TCP flows held open through it and
# its RSS growth per flow. With ROUNDS=N (default 1) the throughput runs (ours, gvisor, veth; the
# system stack only in round 1) repeat N times in turn, and a summary gives each one's median and the
# median of the per-round ratios: on a shared 2-CPU machine one pair of runs swings by ±20 %. Idle
# flows and RSS are measured in round 1. Needs: swift build -c release --product netstack-bench --static-swift-stdlib
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib/netstack-ns.sh
T=${1:-8}
FLOWS=${2:-10000}
ROUNDS=${ROUNDS:-1}
ROUND=1
OURS=${NETSTACK_BENCH:-.build/release/netstack-bench}
GO=${SINGBOX_GO:-.peers/bin/sing-box-go}
MTU=${NETSTACK_MTU:-1500}
CLIENT_CC=${CLIENT_CC:-}
CC_OPT=()
[ -z "$CLIENT_CC" ] || CC_OPT=(-C "$CLIENT_CC")
[ -x "$OURS" ] || { echo "missing $OURS (swift build -c release --product netstack-bench --static-swift-stdlib)"; exit 1; }
[ -x "$GO" ] || { echo "missing $GO (scripts/install-test-deps.sh)"; exit 1; }
ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d)
NS=nsb$$
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    ip netns del "${NS}a" 2>/dev/null || true
    ip netns del "${NS}b" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }
in_ns() { ip netns exec "$NS" "$@"; }

# iperf3 client run → "gbit bytes" (received side).
iperf() {
    in_ns iperf3 -c 198.18.0.2 -p 5201 -t "$T" "${CC_OPT[@]}" -J "$@" | iperf_result
}

# measure NAME PID: the proxy (PID: `ip netns exec` execs it, so this is the proxy itself) runs in $NS and owns TUN bt0; prints one result line.
measure() {
    local name=$1 pid=$2
    route_through_tun "$NS" "$MTU"
    sleep 1
    local idle c0 c1 c2 up down upb downb
    idle=$(rss_kb "$pid")
    c0=$(cpu_ticks "$pid"); read -r up upb < <(iperf)
    c1=$(cpu_ticks "$pid"); read -r down downb < <(iperf -R)
    c2=$(cpu_ticks "$pid")
    local hwm; hwm=$(hwm_kb "$pid")
    echo "$ROUND $name $up $down" >> "$WORK/rounds"
    if [ "$ROUND" -gt 1 ]; then
        printf '%-8s up %6.2f Gbit/s  down %6.2f Gbit/s  (round %d)\n' "$name" "$up" "$down" "$ROUND"
        return
    fi
    # Idle flows: server on loopback, client through the TUN.
    local before after held
    before=$(rss_kb "$pid")
    ip netns exec "$NS" python3 bench/idle_flows.py serve 7000 >/dev/null 2>&1 & PIDS+=($!)
    sleep 0.5
    ip netns exec "$NS" python3 bench/idle_flows.py connect 198.18.0.2 7000 "$FLOWS" > "$WORK/held" 2>&1 & local client=$!
    PIDS+=($client)
    for _ in $(seq 600); do grep -q held "$WORK/held" && break; kill -0 $client 2>/dev/null || break; sleep 0.1; done
    sleep 2
    after=$(rss_kb "$pid")
    held=$(grep -o 'held.*' "$WORK/held" || echo "held 0 ($(tail -1 "$WORK/held"))")
    python3 - "$name" "$up" "$(cpu_per_gb "$((c1 - c0))" "$upb")" "$down" "$(cpu_per_gb "$((c2 - c1))" "$downb")" "$idle" "$hwm" "$before" "$after" "$FLOWS" "$held" <<'PY'
import sys
name, up, up_cpu, down, down_cpu, idle, hwm, before, after, flows, held = sys.argv[1:]
import re
count = int(re.match(r'held (\d+)', held).group(1)) or 1
per_flow = (int(after) - int(before)) * 1024 / count
print(f'{name:8} up {float(up):6.2f} Gbit/s ({up_cpu} CPU-s/GB)  down {float(down):6.2f} Gbit/s ({down_cpu} CPU-s/GB)  '
      f'idle RSS {int(idle) / 1024:.1f} MiB, peak {int(hwm) / 1024:.1f} MiB; idle flows: +{per_flow / 1024:.1f} KiB/flow ({held})')
PY
}

setup_ns() {
    ns_with_server "$NS"
    PIDS+=("$SERVER_PID")
    sleep 0.3
}

stop_proxy() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    PIDS=()
    ip netns del "$NS" 2>/dev/null || true
    sleep 0.5
}

echo "netstack bench: ${T}s per iperf3 run, MTU $MTU, $FLOWS idle flows, sender congestion control ${CLIENT_CC:-$(cat /proc/sys/net/ipv4/tcp_congestion_control) (machine default)}; $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"

one_round() {
    # Ours.
    setup_ns
    ip netns exec "$NS" "$OURS" tun bt0 --relay 127.0.0.1 --mtu "$MTU" > "$WORK/ours.log" 2>&1 & pid=$!
    PIDS+=($pid)
    measure ours $pid
    stop_proxy $pid
    sed -n 's/^packets/  ours: packets/p' "$WORK/ours.log"

    # Go sing-box, gvisor and system stacks.
    local stacks="gvisor system"
    if [ "$ROUND" -gt 1 ]; then stacks=gvisor; fi
    for stack in $stacks; do
        cat > "$WORK/go-$stack.json" <<JSON
{"log":{"level":"error"},
 "inbounds":[{"type":"tun","tag":"tun-in","interface_name":"bt0","address":["172.19.0.1/30"],"mtu":$MTU,"auto_route":false,"stack":"$stack"}],
 "outbounds":[{"type":"direct","tag":"direct"}],
 "route":{"rules":[{"ip_cidr":["198.18.0.0/16"],"action":"route","outbound":"direct","override_address":"127.0.0.1"}]}}
JSON
        setup_ns
        ip netns exec "$NS" "$GO" run -c "$WORK/go-$stack.json" --disable-color > "$WORK/go-$stack.log" 2>&1 & pid=$!
        PIDS+=($pid)
        measure "go-$stack" $pid
        stop_proxy $pid
    done

    # The kernel's own veth between two namespaces.
    ip netns del "${NS}a" 2>/dev/null || true; ip netns del "${NS}b" 2>/dev/null || true
    ip netns add "${NS}a"; ip netns add "${NS}b"
    ip -n "${NS}a" link add v0 type veth peer name v1 netns "${NS}b"
    ip -n "${NS}a" addr add 10.201.0.1/24 dev v0; ip -n "${NS}a" link set v0 up
    ip -n "${NS}b" addr add 10.201.0.2/24 dev v1; ip -n "${NS}b" link set v1 up
    ip netns exec "${NS}b" iperf3 -s -B 10.201.0.2 -p 5201 >/dev/null 2>&1 & local vserver=$!
    sleep 0.3
    local veth bytes
    read -r veth bytes < <(ip netns exec "${NS}a" iperf3 -c 10.201.0.2 -p 5201 -t "$T" "${CC_OPT[@]}" -J | iperf_result)
    kill "$vserver" 2>/dev/null || true; wait "$vserver" 2>/dev/null || true
    ip netns del "${NS}a"; ip netns del "${NS}b"
    echo "$ROUND veth $veth 0" >> "$WORK/rounds"
    echo "kernel   veth $veth Gbit/s"
}

for ROUND in $(seq "$ROUNDS"); do
    if [ "$ROUNDS" -gt 1 ]; then echo "-- round $ROUND of $ROUNDS (load $(cut -d' ' -f1 /proc/loadavg))"; fi
    one_round
done

[ "$ROUNDS" -gt 1 ] || exit 0
python3 - "$WORK/rounds" <<'PY'
import statistics, sys, collections
runs = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    r, name, up, down = line.split()
    runs[int(r)][name] = (float(up), float(down))
def med(xs): return statistics.median(xs) if xs else float('nan')
print(f'summary over {len(runs)} rounds (median; per-round values in brackets)')
for name in ['ours', 'go-gvisor', 'go-system', 'veth']:
    ups = [v[name][0] for v in runs.values() if name in v]
    downs = [v[name][1] for v in runs.values() if name in v and v[name][1] > 0]
    if not ups: continue
    line = f'  {name:9} up {med(ups):6.2f} Gbit/s [{" ".join(f"{u:.2f}" for u in ups)}]'
    if downs: line += f'  down {med(downs):6.2f} Gbit/s [{" ".join(f"{d:.2f}" for d in downs)}]'
    print(line)
def ratios(a, i, b, j):
    return [v[a][i] / v[b][j] for v in runs.values() if a in v and b in v and v[b][j] > 0]
# veth runs one direction: both of ours are set against it.
for label, a, i, b, j in [('ours / gvisor up', 'ours', 0, 'go-gvisor', 0), ('ours / gvisor down', 'ours', 1, 'go-gvisor', 1),
                          ('ours up / veth', 'ours', 0, 'veth', 0), ('ours down / veth', 'ours', 1, 'veth', 0)]:
    rs = ratios(a, i, b, j)
    if rs: print(f'  {label:20} {med(rs):5.2f}x [{" ".join(f"{x:.2f}" for x in rs)}]')
PY
