#!/usr/bin/env bash
# SOCKS5 relay, ours vs Go sing-box 1.12.12, side by side in one run (shared/ANCHORS.md).
# Both run the same config: a `mixed` inbound on 127.0.0.1 and a `direct` outbound.
#   (a) throughput: a python client pushes GIB GiB through one SOCKS5 CONNECT to a local sink,
#       which confirms the byte count after EOF (so the figure includes the relay's drain)
#   (b) 1,000 short connections: SOCKS5 handshake, 64-byte answer, close — sequential, wall time
#   (c) idle RSS after start, RSS after the runs, and CPU seconds each process spent
# Build first with `swift build -c release --product sing-box --static-swift-stdlib` (as
# scripts/run-example.sh does; debug builds are not comparable);
# the script refuses a missing release binary. Not part of the test suite.
#   bench/socks.sh [GiB=4] [connections=1000]
set -euo pipefail
cd "$(dirname "$0")/.."
GIB=${1:-4}
CONNS=${2:-1000}
OURS=${SINGBOX_OURS:-.build/release/sing-box}
GO=${SINGBOX_GO:-.peers/bin/sing-box-go}
[ -x "$OURS" ] || { echo "missing $OURS: swift build -c release --product sing-box" >&2; exit 1; }
[ -x "$GO" ] || { echo "missing $GO: scripts/install-test-deps.sh" >&2; exit 1; }
TOOLS=bench/socks_tools.py
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_seconds() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/t}' "/proc/$1/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
wait_port() { for _ in $(seq 100); do python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1)).close()" 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

SINK=$(free_port); REPLY=$(free_port)
python3 "$TOOLS" sink "$SINK" & PIDS+=($!)
python3 "$TOOLS" reply "$REPLY" & PIDS+=($!)
wait_port "$SINK"; wait_port "$REPLY"

declare -A RESULT
run() {  # name binary
    local name=$1 binary=$2 port pid
    port=$(free_port)
    cat > "$WORK/$name.json" <<JSON
{"log":{"level":"warn"},"inbounds":[{"type":"mixed","tag":"in","listen":"127.0.0.1","listen_port":$port}],
 "outbounds":[{"type":"direct","tag":"out"}]}
JSON
    "$binary" run -c "$WORK/$name.json" 2>"$WORK/$name.log" & pid=$!
    PIDS+=($pid)
    wait_port "$port"
    sleep 1
    RESULT[$name.idle_rss]=$(rss_mib $pid)
    RESULT[$name.gbits]=$(python3 "$TOOLS" push "$port" "$SINK" $((GIB << 30)))
    RESULT[$name.short]=$(python3 "$TOOLS" short "$port" "$REPLY" "$CONNS")
    RESULT[$name.rss]=$(rss_mib $pid)
    RESULT[$name.cpu]=$(cpu_seconds $pid)
    kill -TERM $pid; wait $pid 2>/dev/null || true
}

run ours "$OURS"
run go "$GO"

ratio() { python3 -c "a,b=float('$1'),float('$2'); print('%.2f' % (a/b) if b else 'n/a')"; }
printf "%-34s %10s %10s %8s\n" "mixed → direct, 127.0.0.1" "ours" "go" "ours/go"
printf "%-34s %10s %10s %8s\n" "(a) SOCKS5 relay, ${GIB} GiB, Gbit/s" "${RESULT[ours.gbits]}" "${RESULT[go.gbits]}" "$(ratio ${RESULT[ours.gbits]} ${RESULT[go.gbits]})"
printf "%-34s %10s %10s %8s\n" "(b) ${CONNS} short connections, s" "${RESULT[ours.short]}" "${RESULT[go.short]}" "$(ratio ${RESULT[ours.short]} ${RESULT[go.short]})"
printf "%-34s %10s %10s %8s\n" "(c) idle RSS, MiB" "${RESULT[ours.idle_rss]}" "${RESULT[go.idle_rss]}" "$(ratio ${RESULT[ours.idle_rss]} ${RESULT[go.idle_rss]})"
printf "%-34s %10s %10s %8s\n" "    RSS after the runs, MiB" "${RESULT[ours.rss]}" "${RESULT[go.rss]}" "$(ratio ${RESULT[ours.rss]} ${RESULT[go.rss]})"
printf "%-34s %10s %10s %8s\n" "    CPU seconds, whole run" "${RESULT[ours.cpu]}" "${RESULT[go.cpu]}" "$(ratio ${RESULT[ours.cpu]} ${RESULT[go.cpu]})"
