#!/usr/bin/env bash
# WireGuard throughput, one run side by side (shared/ANCHORS.md: wireguard-go ↔ wireguard-go ~0.6 Gbit/s here):
#   wg-go   : wireguard-go ↔ wireguard-go, iperf3 over the kernel TUN of namespace A
#   ours    : our sing-box wireguard endpoint (A) ↔ wireguard-go (B)
#   go      : Go sing-box 1.12.12's wireguard endpoint (A) ↔ wireguard-go (B)
# For the two sing-boxes iperf3 in A connects to a `direct` inbound on 127.0.0.1 that forwards to B's tunnel
# address; the route sends it into the endpoint (inbound → router → endpoint netstack → sealed UDP).
# Reports Gbit/s up (A→B) and down (-R), CPU seconds of side A's process per GB, and its peak RSS.
#   bench/wireguard.sh [seconds]    (root; uses .build/release/sing-box, else debug)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-5}
OURS=${OURS:-.build/release/sing-box}
[ -x "$OURS" ] || OURS=.build/debug/sing-box
GO=${SINGBOX_GO:-.peers/bin/sing-box-go}
TAG=$$
A=wgbA$TAG; B=wgbB$TAG
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.3
    ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

KA=$(wg genkey); PA=$(echo "$KA" | wg pubkey)
KB=$(wg genkey); PB=$(echo "$KB" | wg pubkey)
echo "$KA" > "$WORK/a.key"; echo "$KB" > "$WORK/b.key"

netns_up() {
    ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true
    ip netns add $A; ip netns add $B
    ip -n $A link add veth0 type veth peer name veth0 netns $B
    ip -n $A addr add 10.253.0.1/24 dev veth0; ip -n $B addr add 10.253.0.2/24 dev veth0
    for n in $A $B; do ip -n $n link set veth0 up; ip -n $n link set lo up; done
}

wggo() {  # namespace iface key peerpub address peer-address port peer-port; sets WGPID
    local ns=$1 ifc=$2 key=$3 pub=$4 addr=$5 peeraddr=$6 port=$7 peerport=$8
    WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error ip netns exec $ns wireguard-go -f $ifc >/dev/null 2>&1 & PIDS+=($!)
    WGPID=$!
    for _ in $(seq 50); do ip netns exec $ns wg show $ifc >/dev/null 2>&1 && break; sleep 0.1; done
    ip netns exec $ns wg set $ifc private-key "$key" listen-port $port peer "$pub" allowed-ips 10.80.0.0/24 \
        endpoint "$peeraddr:$peerport"
    ip -n $ns addr add "$addr/24" dev $ifc; ip -n $ns link set $ifc up
}

cpu_of() { awk '{print $14+$15}' /proc/$1/stat; }
rss_of() { awk '/VmHWM/ {print $2}' /proc/$1/status; }

# iperf3 from A to `target:port`; prints "gbits bytes".
run_iperf() {  # target port extra
    ip netns exec $A iperf3 -c "$1" -p "$2" -t "$SECONDS_PER_RUN" -J $3 > "$WORK/iperf.json" || true
    python3 - "$WORK/iperf.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))["end"]["sum_received"]
    print(f"{r['bits_per_second']/1e9:.3f} {r['bytes']}")
except Exception:
    print("0 0")
PY
}

report() {  # name pid target port
    local name=$1 pid=$2 target=$3 port=$4 line
    for dir in up down; do
        local extra=""; [ $dir = down ] && extra="-R"
        local before after result
        before=$(cpu_of "$pid")
        result=$(run_iperf "$target" "$port" "$extra")
        after=$(cpu_of "$pid")
        python3 - "$name" "$dir" $result "$before" "$after" "$(getconf CLK_TCK)" "$(rss_of "$pid")" <<'PY' | tee -a "$WORK/summary"
import sys
name, d, gbits, nbytes, before, after, tck, rss = sys.argv[1:9]
gb = int(nbytes) / 1e9
cpu = (int(after) - int(before)) / int(tck)
print(f"{name:6s} {d:4s} {float(gbits):6.3f} Gbit/s  {cpu/gb if gb else 0:6.2f} CPU-s/GB (side A)  {cpu:5.2f} CPU-s  RSS {int(rss)/1024:6.1f} MiB")
PY
    done
}

box_config() {  # A-side sing-box: direct inbound 127.0.0.1:5202 → B's iperf3, through the endpoint
    cat <<JSON
{"log":{"level":"warn"},
 "inbounds":[{"type":"direct","tag":"in","listen":"127.0.0.1","listen_port":5202,"network":"tcp",
              "override_address":"10.80.0.2","override_port":5201}],
 "endpoints":[{"type":"wireguard","tag":"wg","listen_port":51820,"address":["10.80.0.1/32"],"private_key":"$KA","mtu":1420,
   "peers":[{"address":"10.253.0.2","port":51820,"public_key":"$PB","allowed_ips":["10.80.0.0/24"]}]}],
 "route":{"final":"wg"}}
JSON
}

echo "WireGuard, iperf3 TCP ${SECONDS_PER_RUN}s per direction; ours: $OURS"

# 1. wireguard-go ↔ wireguard-go.
netns_up
wggo $A wgba$TAG "$WORK/a.key" "$PB" 10.80.0.1 10.253.0.2 51820 51820; PA_GO=$WGPID
wggo $B wgbb$TAG "$WORK/b.key" "$PA" 10.80.0.2 10.253.0.1 51820 51820
ip netns exec $B iperf3 -s -B 10.80.0.2 -p 5201 >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5
report wg-go "$PA_GO" 10.80.0.2 5201

# 2./3. a sing-box endpoint in A ↔ wireguard-go in B.
for pair in "ours:$OURS" "go:$GO"; do
    name=${pair%%:*}; binary=${pair#*:}
    [ -x "$binary" ] || { echo "$name: missing $binary"; continue; }
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; PIDS=(); sleep 0.3
    netns_up
    wggo $B wgbb$TAG "$WORK/b.key" "$PA" 10.80.0.2 10.253.0.1 51820 51820
    ip netns exec $B iperf3 -s -B 10.80.0.2 -p 5201 >/dev/null 2>&1 & PIDS+=($!)
    box_config > "$WORK/$name.json"
    ip netns exec $A "$binary" run -c "$WORK/$name.json" > "$WORK/$name.log" 2>&1 & PIDS+=($!)
    BOX=$!
    sleep 1.5
    # `ip netns exec` execs the binary in place: $BOX is the box itself.
    report "$name" "$BOX" 127.0.0.1 5202
done

python3 - "$WORK/summary" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split(); rows[(f[0], f[1])] = float(f[2])
for d in ("up", "down"):
    base = rows.get(("wg-go", d))
    if not base: continue
    for name in ("ours", "go"):
        if (name, d) in rows:
            print(f"ratio {name}/wg-go {d}: {rows[(name, d)] / base:.2f}x")
PY
