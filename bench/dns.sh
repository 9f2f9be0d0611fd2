#!/usr/bin/env bash
# Cached DNS QPS through hijack-dns: ours vs Go sing-box 1.12.12, side by side in one run
# (shared/ANCHORS.md: Go 40.4 k QPS). Each box has a `direct` inbound whose flows a route rule hands
# to `hijack-dns`, and one udp DNS server (a local dnsmasq). dnsperf asks a small set of names over
# and over, so after the first round every answer comes from the box's cache (dnsmasq answers A and
# AAAA with a TTL of an hour: an empty answer has TTL 0 and is never cached, by Go either). Reports
# QPS, lost queries, the box's CPU seconds (and per query), peak RSS, and the ratios ours/Go. On a
# shared 2-core machine dnsperf competes for the CPU: CPU per query is the steadier comparison.
#   bench/dns.sh [seconds] [clients]   (builds nothing: uses .build/release/sing-box, else debug;
#   SINGBOX_OURS=path and SINGBOX_GO=path pick other binaries, e.g. an older build to compare with)
# PIN=1 bench/dns.sh …: the box runs on CPU 1 only, dnsperf and dnsmasq on CPU 0, for both sides alike.
# By default everything floats (the honest whole-machine comparison, where a box that needs less CPU
# leaves more to dnsperf); pinned, each box gets exactly one core of its own, so QPS shows what one
# core of the box serves while dnsperf no longer steals from it (Go may then use only that core too).
# The load average before each side runs is printed: other tenants' work skews any single run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
CLIENTS=${2:-4}
PIN=${PIN:-0}
BOX_CPU=(); CLIENT_CPU=()
if [ "$PIN" = 1 ]; then BOX_CPU=(taskset -c 1); CLIENT_CPU=(taskset -c 0); fi
OURS=${SINGBOX_OURS:-.build/release/sing-box}
[ -x "$OURS" ] || OURS=.build/debug/sing-box
GO=${SINGBOX_GO:-.peers/bin/sing-box-go}
command -v dnsperf >/dev/null || { echo "dnsperf missing: run scripts/install-test-deps.sh"; exit 1; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UPSTREAM=$(free_port)
${CLIENT_CPU[@]+"${CLIENT_CPU[@]}"} dnsmasq --no-resolv --no-hosts --address=/#/10.1.1.1 --address=/#/fd00::1 --local-ttl=3600 --port="$UPSTREAM" --listen-address=127.0.0.1 \
    --bind-interfaces --keep-in-foreground --pid-file= >/dev/null 2>&1 & PIDS+=($!)
# 100 names, A and AAAA: 200 cache entries.
for i in $(seq 1 100); do echo "host$i.bench.example A"; echo "host$i.bench.example AAAA"; done > "$WORK/queries"
sleep 0.5

RESULTS=()
measure() {  # name binary
    local name=$1 binary=$2 port pid
    port=$(free_port)
    cat > "$WORK/$name.json" <<JSON
{"log":{"level":"warn"},
 "dns":{"servers":[{"type":"udp","tag":"up","server":"127.0.0.1","server_port":$UPSTREAM}]},
 "inbounds":[{"type":"direct","tag":"dns-in","listen":"127.0.0.1","listen_port":$port}],
 "outbounds":[{"type":"direct","tag":"direct"}],
 "route":{"rules":[{"inbound":"dns-in","action":"hijack-dns"}]}}
JSON
    ${BOX_CPU[@]+"${BOX_CPU[@]}"} "$binary" run -c "$WORK/$name.json" --disable-color 2>"$WORK/$name.log" & pid=$!
    PIDS+=($pid)
    sleep 1
    # Warm the cache with one pass.
    ${CLIENT_CPU[@]+"${CLIENT_CPU[@]}"} dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries" -n 1 >/dev/null 2>&1 || true
    local before after out load
    load=$(cut -d' ' -f1 /proc/loadavg)
    before=$(awk '{print $14+$15}' /proc/$pid/stat)
    out=$(${CLIENT_CPU[@]+"${CLIENT_CPU[@]}"} dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries" -l "$SECONDS_PER_RUN" -c "$CLIENTS" -q 500 2>&1)
    after=$(awk '{print $14+$15}' /proc/$pid/stat)
    local rss
    rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
    kill -TERM $pid; wait $pid || true
    local qps lost completed
    qps=$(echo "$out" | awk '/Queries per second/ {print $4}')
    lost=$(echo "$out" | awk '/Queries lost/ {print $3}')
    completed=$(echo "$out" | awk '/Queries completed/ {print $3}')
    local cpu per
    cpu=$(python3 -c "print(f'{($after - $before) / $(getconf CLK_TCK):.2f}')")
    per=$(python3 -c "print(f'{($after - $before) / $(getconf CLK_TCK) / max($completed, 1) * 1e6:.1f}')")
    printf '%-5s %10.0f QPS  lost %-6s  CPU %6s s (%s us/query)  peak RSS %6d KiB  load %s\n' "$name" "$qps" "$lost" "$cpu" "$per" "$rss" "$load"
    RESULTS+=("$qps $per")
}

echo "cached DNS through hijack-dns, ${SECONDS_PER_RUN}s, ${CLIENTS} dnsperf clients, binary: $OURS$([ "$PIN" = 1 ] && echo ', pinned: box on CPU 1, dnsperf on CPU 0')"
measure ours "$OURS"
if [ -x "$GO" ]; then
    measure go "$GO"
    python3 - "${RESULTS[0]}" "${RESULTS[1]}" <<'PY'
import sys
ours_qps, ours_cpu = map(float, sys.argv[1].split())
go_qps, go_cpu = map(float, sys.argv[2].split())
print(f"ratio ours/go: {ours_qps / go_qps:.2f}x QPS, {go_cpu / ours_cpu:.2f}x less CPU per query")
PY
fi
