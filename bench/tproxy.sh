#!/usr/bin/env bash
# Transparent gateway throughput: ours vs Go sing-box 1.12.12 with the same `tproxy` config, side by
# side in one run (shared/ANCHORS.md). Namespaces lan ↔ gw ↔ srv; nftables in gw sends LAN TCP and
# UDP to the tproxy inbound (fwmark 1 → local table); iperf3 runs lan → srv. Reports Gbit/s, the
# proxy's CPU seconds per GB and its peak RSS for TCP up, TCP down and UDP (offered 1 Gbit/s).
#   bench/tproxy.sh [seconds]      (builds nothing: uses .build/release/sing-box, else debug)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-5}
OURS=$PWD/.build/release/sing-box
[ -x "$OURS" ] || OURS=$PWD/.build/debug/sing-box
GO=${SINGBOX_GO:-$PWD/.peers/bin/sing-box-go}
S=sbtpb$$
LAN=$S-lan GW=$S-gw SRV=$S-srv
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for n in "$LAN" "$GW" "$SRV"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

for n in "$LAN" "$GW" "$SRV"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip -n "$LAN" link add lan0 type veth peer name gw0 netns "$GW"
ip -n "$GW" link add gw1 type veth peer name srv0 netns "$SRV"
ip -n "$LAN" addr add 10.78.1.2/24 dev lan0; ip -n "$LAN" link set lan0 up
ip -n "$LAN" route add default via 10.78.1.1
ip -n "$GW" addr add 10.78.1.1/24 dev gw0; ip -n "$GW" addr add 10.78.2.1/24 dev gw1
ip -n "$GW" link set gw0 up; ip -n "$GW" link set gw1 up
ip netns exec "$GW" sysctl -qw net.ipv4.ip_forward=1
ip -n "$SRV" addr add 10.78.2.2/24 dev srv0; ip -n "$SRV" link set srv0 up
ip -n "$SRV" route add default via 10.78.2.1
cat > "$WORK/tproxy.nft" <<NFT
table inet sbbench {
    chain prerouting {
        type filter hook prerouting priority mangle; policy accept;
        iifname "gw0" meta l4proto { tcp, udp } tproxy ip to :7893 meta mark set 1 accept
    }
}
NFT
ip netns exec "$GW" nft -f "$WORK/tproxy.nft"
ip -n "$GW" rule add fwmark 1 lookup 100
ip -n "$GW" route add local 0.0.0.0/0 dev lo table 100
cat > "$WORK/config.json" <<JSON
{"log": {"level": "warn"},
 "inbounds": [{"type": "tproxy", "tag": "tproxy-in", "listen": "0.0.0.0", "listen_port": 7893}],
 "outbounds": [{"type": "direct", "tag": "direct"}],
 "route": {"rules": [{"inbound": "tproxy-in", "action": "sniff"}], "final": "direct"}}
JSON
ip netns exec "$SRV" iperf3 -s -B 10.78.2.2 >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5

measure() {  # name binary
    local name=$1 binary=$2 pid mode args before after json peak
    ip netns exec "$GW" "$binary" run -c "$WORK/config.json" --disable-color 2>"$WORK/$name.log" & pid=$!
    PIDS+=($pid)
    sleep 1
    for mode in "tcp-up" "tcp-down" "udp"; do
        case $mode in
            tcp-up) args=() ;;
            tcp-down) args=(-R) ;;
            udp) args=(-u -b 1G -l 1400) ;;
        esac
        before=$(awk '{print $14+$15}' /proc/$pid/stat)
        json=$(ip netns exec "$LAN" iperf3 -c 10.78.2.2 -t "$SECONDS_PER_RUN" -J "${args[@]}" || echo '{}')
        after=$(awk '{print $14+$15}' /proc/$pid/stat)
        peak=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
        python3 - "$name" "$mode" "$before" "$after" "$(getconf CLK_TCK)" "$peak" "$json" <<'PY'
import json, sys
name, mode, before, after, tck, peak, raw = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
end = json.loads(raw).get("end", {})
r = end.get("sum_received") or end.get("sum") or {}
bits = r.get("bits_per_second", 0)
gb = r.get("bytes", 0) / 1e9
lost = f"  loss {r.get('lost_percent', 0):.2f}%" if mode == "udp" else ""
cpu = (after - before) / tck
print(f"{name:5s} {mode:8s} {bits / 1e9:6.2f} Gbit/s  {cpu / gb if gb else 0:6.2f} CPU-s/GB  peak RSS {peak / 1024:5.1f} MiB{lost}")
PY
    done
    kill -TERM $pid; wait $pid || true
}

echo "tproxy gateway lan -> gw -> srv, ${SECONDS_PER_RUN}s each, ours: $OURS"
measure ours "$OURS"
[ -x "$GO" ] && measure go "$GO"
