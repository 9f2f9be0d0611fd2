#!/usr/bin/env bash
# The `resolved` service, ours vs Go sing-box 1.12.12, side by side in one run, each alone in a
# network namespace of its own (so each binds the real 127.0.0.53:53) on one private system bus:
#   (a) stub QPS for cached names: dnsperf, SECONDS s, 8 clients, 20 names cycled (all cached after
#       the first pass) against 127.0.0.53; dnsmasq on 127.0.0.2 is the upstream
#   (b) ResolveHostname calls/s over D-Bus: python3-dbus, CALLS sequential calls for one cached name
#   (c) RSS after the runs, CPU seconds each process spent
# Go's service exports no Properties interface and its ResolveHostname may fail or hang
# (shared/PEERS.md): a Go column reads "fail" then. Build first with
# `swift build -c release --product sing-box --static-swift-stdlib`. Not part of the test suite.
#   bench/resolved.sh [SECONDS=10] [CALLS=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-10}
CALLS=${2:-2000}
OURS=${SINGBOX_OURS:-.build/release/sing-box}
GO=${SINGBOX_GO:-.peers/bin/sing-box-go}
[ -x "$OURS" ] || { echo "missing $OURS: swift build -c release --product sing-box --static-swift-stdlib" >&2; exit 1; }
[ -x "$GO" ] || { echo "missing $GO: scripts/install-test-deps.sh" >&2; exit 1; }
command -v dnsperf >/dev/null || { echo "missing dnsperf (apt-get install dnsperf)" >&2; exit 1; }
WORK=$(mktemp -d)
NS=rsvbench$$
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cpu_seconds() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/t}' "/proc/$1/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

# A private system bus whose policy lets root own org.freedesktop.resolve1.
cat > "$WORK/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=$WORK/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><deny own="*"/><deny send_type="method_call"/>
<allow send_requested_reply="true" send_type="method_return"/><allow send_requested_reply="true" send_type="error"/>
<allow receive_type="method_call"/><allow receive_type="method_return"/><allow receive_type="error"/><allow receive_type="signal"/>
<allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/></policy>
<include>$PWD/systemd/org.freedesktop.resolve1.conf</include></busconfig>
XML
dbus-daemon --config-file="$WORK/bus.conf" --nofork --nopidfile 2>"$WORK/bus.log" & PIDS+=($!)
for _ in $(seq 100); do [ -S "$WORK/bus" ] && break; sleep 0.05; done
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$WORK/bus

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add 127.0.0.2/8 dev lo 2>/dev/null || true
: > "$WORK/names"
: > "$WORK/dnsmasq.args"
for i in $(seq 1 20); do
    echo "host$i.bench.example A" >> "$WORK/names"
    echo "--address=/host$i.bench.example/198.51.100.$i" >> "$WORK/dnsmasq.args"
done
# dnsmasq gives its own records TTL 0 (never cached) unless --local-ttl says otherwise.
ip netns exec "$NS" dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.2 --port=53 --local-ttl=600 \
    $(cat "$WORK/dnsmasq.args") 2>"$WORK/dnsmasq.log" & PIDS+=($!)
sleep 0.5

cat > "$WORK/config.json" <<JSON
{"log":{"level":"warn"},
 "dns":{"servers":[{"type":"udp","tag":"upstream","server":"127.0.0.2"}]},
 "services":[{"type":"resolved","tag":"resolved"}]}
JSON

cat > "$WORK/calls.py" <<'PY'
import sys, time, dbus
bus = dbus.SystemBus()
manager = dbus.Interface(bus.get_object("org.freedesktop.resolve1", "/org/freedesktop/resolve1"), "org.freedesktop.resolve1.Manager")
n = int(sys.argv[1])
manager.ResolveHostname(0, "host1.bench.example", 2, dbus.UInt64(0), timeout=5)
start = time.monotonic()
for _ in range(n):
    manager.ResolveHostname(0, "host1.bench.example", 2, dbus.UInt64(0), timeout=5)
print("%.0f" % (n / (time.monotonic() - start)))
PY

declare -A RESULT
run() {  # name binary
    local name=$1 binary=$2 pid
    ip netns exec "$NS" env SING_BOX_RESOLVED_DIRECTORY="$WORK/run-$name" "$binary" run -c "$WORK/config.json" 2>"$WORK/$name.log" & pid=$!
    PIDS+=($pid)
    for _ in $(seq 100); do ip netns exec "$NS" kdig @127.0.0.53 host1.bench.example +short +timeout=1 +retry=0 2>/dev/null | grep -q 198.51 && break; sleep 0.1; done
    # Warm the cache: one pass over the names.
    ip netns exec "$NS" dnsperf -s 127.0.0.53 -d "$WORK/names" -n 1 >/dev/null 2>&1 || true
    RESULT[$name.qps]=$(ip netns exec "$NS" dnsperf -s 127.0.0.53 -d "$WORK/names" -l "$SECONDS_RUN" -c 8 -q 200 2>&1 \
        | awk '/Queries per second/ {printf "%.0f", $4}')
    RESULT[$name.lost]=$(ip netns exec "$NS" dnsperf -s 127.0.0.53 -d "$WORK/names" -l 2 -c 8 -q 200 2>&1 \
        | awk '/Queries lost/ {print $3}')
    RESULT[$name.calls]=$(timeout 60 ip netns exec "$NS" /usr/bin/python3 "$WORK/calls.py" "$CALLS" 2>"$WORK/$name.calls.err" || echo fail)
    RESULT[$name.rss]=$(rss_mib $pid)
    RESULT[$name.cpu]=$(cpu_seconds $pid)
    kill -TERM $pid; wait $pid 2>/dev/null || true
}

run ours "$OURS"
run go "$GO"

ratio() { python3 -c "
try: print('%.2f' % (float('$1') / float('$2')))
except Exception: print('n/a')"; }
printf "%-40s %10s %10s %8s\n" "resolved service, netns, 127.0.0.53" "ours" "go" "ours/go"
printf "%-40s %10s %10s %8s\n" "stub QPS, cached (dnsperf -c 8, ${SECONDS_RUN}s)" "${RESULT[ours.qps]}" "${RESULT[go.qps]}" "$(ratio "${RESULT[ours.qps]}" "${RESULT[go.qps]}")"
printf "%-40s %10s %10s\n" "queries lost in a 2 s run" "${RESULT[ours.lost]}" "${RESULT[go.lost]}"
printf "%-40s %10s %10s %8s\n" "ResolveHostname calls/s (sequential)" "${RESULT[ours.calls]}" "${RESULT[go.calls]}" "$(ratio "${RESULT[ours.calls]}" "${RESULT[go.calls]}")"
printf "%-40s %10s %10s\n" "RSS after runs, MiB" "${RESULT[ours.rss]}" "${RESULT[go.rss]}"
printf "%-40s %10s %10s\n" "CPU seconds" "${RESULT[ours.cpu]}" "${RESULT[go.cpu]}"
[ -s "$WORK/go.calls.err" ] && { echo "go ResolveHostname:"; tail -2 "$WORK/go.calls.err"; } || true
