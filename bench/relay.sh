#!/usr/bin/env bash
# Relay throughput: ours vs Go sing-box 1.12.12, side by side in one run (shared/ANCHORS.md).
# Each proxy runs a `direct` inbound forwarding to a local iperf3 server (a TCP port forward through
# inbound → router → direct outbound → relay). Reports Gbit/s and proxy CPU seconds per GB.
#   bench/relay.sh [seconds]       (builds nothing: uses .build/release/sing-box, else debug)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-5}
OURS=.build/release/sing-box
[ -x "$OURS" ] || OURS=.build/debug/sing-box
GO=${SINGBOX_GO:-.peers/bin/sing-box-go}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
IPERF_PORT=$(free_port)
iperf3 -s -p "$IPERF_PORT" -B 127.0.0.1 >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5

measure() {  # name binary
    local name=$1 binary=$2 port
    port=$(free_port)
    cat > "$WORK/$name.json" <<JSON
{"log":{"level":"warn"},"inbounds":[{"type":"direct","tag":"in","listen":"127.0.0.1","listen_port":$port,
 "network":"tcp","override_address":"127.0.0.1","override_port":$IPERF_PORT}],"outbounds":[{"type":"direct","tag":"out"}]}
JSON
    "$binary" run -c "$WORK/$name.json" --disable-color 2>"$WORK/$name.log" & local pid=$!
    PIDS+=($pid)
    sleep 1
    local before after json
    before=$(awk '{print $14+$15}' /proc/$pid/stat)
    json=$(iperf3 -c 127.0.0.1 -p "$port" -t "$SECONDS_PER_RUN" -J)
    after=$(awk '{print $14+$15}' /proc/$pid/stat)
    kill -TERM $pid; wait $pid || true
    python3 - "$name" "$before" "$after" "$(getconf CLK_TCK)" <<PY
import json, sys
name, before, after, tck = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = json.loads('''$json''')["end"]["sum_received"]
gbits = r["bits_per_second"] / 1e9
gb = r["bytes"] / 1e9
cpu = (after - before) / tck
print(f"{name:5s} {gbits:7.2f} Gbit/s  {cpu / gb if gb else 0:6.2f} CPU-s/GB  ({r['bytes']} bytes)")
PY
}

echo "relay through a direct inbound, ${SECONDS_PER_RUN}s each, binary: $OURS"
measure ours "$OURS"
[ -x "$GO" ] && measure go "$GO"
