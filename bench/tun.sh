#!/usr/bin/env bash
# The whole-LAN tun gateway: ours vs Go sing-box 1.12.12 (tun stack gvisor and system), same config,
# side by side in one run (shared/ANCHORS.md). Namespaces lan ↔ gw ↔ srv (veth); the gateway runs in gw
# with `tun` + `auto_route` (LAN traffic is forwarded into the TUN, so the userspace stack carries it)
# and `route.auto_detect_interface`. Per contender: iperf3 single-stream TCP up and down, UDP at a
# fixed offered rate (loss %), new TCP connections per second, gateway CPU seconds and peak RSS over
# those tests, and, on a freshly started gateway, the RSS cost of 10,000 idle TCP flows held through the TUN.
#   bench/tun.sh [seconds]   (root; uses .build/release/sing-box, else debug)
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-5}
UDP_RATE=${UDP_RATE:-400M}
IDLE_FLOWS=${IDLE_FLOWS:-10000}
OURS=$(pwd)/.build/release/sing-box
[ -x "$OURS" ] || OURS=$(pwd)/.build/debug/sing-box
GO=$(realpath "${SINGBOX_GO:-.peers/bin/sing-box-go}")
S=b$$
L=sbl$S; G=sbg$S; R=sbs$S
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$L" 2>/dev/null || true; ip netns del "$G" 2>/dev/null || true; ip netns del "$R" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Topology (the same as Tests/GatewayTests/Topology.swift).
ip netns add "$L"; ip netns add "$G"; ip netns add "$R"
ip link add "gl$S" netns "$L" type veth peer name "gl$S" netns "$G"
ip link add "gs$S" netns "$G" type veth peer name "gs$S" netns "$R"
for ns in "$L" "$G" "$R"; do ip -n "$ns" link set lo up; done
ip netns exec "$G" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$R" sysctl -qw net.core.somaxconn=65535
ip -n "$L" addr add 10.77.1.2/24 dev "gl$S"; ip -n "$L" link set "gl$S" up; ip -n "$L" route add default via 10.77.1.1
ip -n "$G" addr add 10.77.1.1/24 dev "gl$S"; ip -n "$G" addr add 10.77.2.1/24 dev "gs$S"
ip -n "$G" link set "gl$S" up; ip -n "$G" link set "gs$S" up; ip -n "$G" route add default via 10.77.2.2
ip -n "$R" addr add 10.77.2.2/24 dev "gs$S"; ip -n "$R" link set "gs$S" up
ip -n "$R" addr add 10.77.9.1/32 dev lo; ip -n "$R" route add 10.77.0.0/16 via 10.77.2.1

# Servers on srv: iperf3, a connect-rate server (answers one byte and closes), an idle-flow holder.
cat > "$WORK/servers.py" <<'PY'
import selectors, socket, threading
def rate():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.77.9.1", 7001)); s.listen(4096)
    while True:
        c, _ = s.accept(); c.sendall(b"x"); c.close()
def hold():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.77.9.1", 7002)); s.listen(65535)
    held = []
    while True:
        c, _ = s.accept(); held.append(c)
threading.Thread(target=rate, daemon=True).start()
hold()
PY
ip netns exec "$R" iperf3 -s -B 10.77.9.1 -p 5201 >/dev/null 2>&1 & PIDS+=($!)

cat > "$WORK/clients.py" <<'PY'
import socket, sys, threading, time, selectors
mode = sys.argv[1]
if mode == "rate":
    seconds, threads = float(sys.argv[2]), 4
    count = [0] * threads
    end = time.time() + seconds
    def worker(i):
        while time.time() < end:
            try:
                c = socket.create_connection(("10.77.9.1", 7001), timeout=5); c.recv(1); c.close(); count[i] += 1
            except OSError:
                pass
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    [t.start() for t in ts]; [t.join() for t in ts]
    print(f"{sum(count) / seconds:.0f}")
elif mode == "idle":
    # Up to 256 connects in flight; gives up on the rest after 60 s (a gateway out of descriptors).
    n = int(sys.argv[2]); held = []; sel = selectors.DefaultSelector(); pending = 0
    deadline = time.time() + 60
    for i in range(n):
        if time.time() > deadline: break
        try:
            s = socket.socket(); s.setblocking(False)
        except OSError:
            break
        s.connect_ex(("10.77.9.1", 7002)); sel.register(s, selectors.EVENT_WRITE); held.append(s); pending += 1
        while pending >= 256 and time.time() < deadline:
            for key, _ in sel.select(timeout=1): sel.unregister(key.fileobj); pending -= 1
    while pending and time.time() < deadline:
        events = sel.select(timeout=1)
        for key, _ in events: sel.unregister(key.fileobj); pending -= 1
    ok = sum(1 for s in held if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 and s not in [k.fileobj for k in sel.get_map().values()])
    print(ok, flush=True)
    sys.stdin.readline()   # hold until told
PY

cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }
gbits() { python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]; print("%.2f" % (d["sum_received"]["bits_per_second"]/1e9))'; }
udp() { python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]["sum"]; print("%.0f %.2f" % (d["bits_per_second"]*(100-d["lost_percent"])/100/1e6, d["lost_percent"]))'; }

RESULTS=$WORK/results
set +e  # a failed measurement prints zeros instead of ending the run
measure() {  # name binary stack
    local name=$1 binary=$2 stack=$3 pid
    cat > "$WORK/$name.json" <<JSON
{"log":{"level":"warn"},
 "inbounds":[{"type":"tun","tag":"tun-in","interface_name":"sbtun0","stack":"$stack",
   "address":["172.19.0.1/30"],"auto_route":true}],
 "outbounds":[{"type":"direct","tag":"direct"}],
 "route":{"final":"direct","auto_detect_interface":true}}
JSON
    # Fresh servers per contender: the holder keeps every accepted socket until it is killed.
    ip netns exec "$R" sh -c "ulimit -n \$(ulimit -Hn); exec python3 $WORK/servers.py" & local servers=$!
    PIDS+=($servers)
    ip netns exec "$G" "$binary" run -c "$WORK/$name.json" --disable-color 2>"$WORK/$name.log" & pid=$!
    PIDS+=($pid)
    sleep 2
    local idle c0 up down u conn c1 base flows after
    idle=$(rss $pid)
    c0=$(cpu $pid)
    up=$(ip netns exec "$L" iperf3 -c 10.77.9.1 -t "$T" -J | gbits || echo 0)
    down=$(ip netns exec "$L" iperf3 -c 10.77.9.1 -t "$T" -R -J | gbits || echo 0)
    u=$(ip netns exec "$L" iperf3 -c 10.77.9.1 -t "$T" -u -b "$UDP_RATE" -l 1400 -J | udp || echo "0 100")
    conn=$(ip netns exec "$L" python3 "$WORK/clients.py" rate "$T" || echo 0)
    c1=$(cpu $pid)
    local peak; peak=$(hwm $pid)
    # Idle flows on a fresh gateway: a Go heap grown by the throughput tests would hide their cost.
    kill -TERM $pid; wait $pid 2>/dev/null || true
    ip netns exec "$G" "$binary" run -c "$WORK/$name.json" --disable-color 2>>"$WORK/$name.log" & pid=$!
    PIDS+=($pid)
    sleep 2
    base=$(rss $pid)
    mkfifo "$WORK/$name.fifo"
    (ip netns exec "$L" sh -c "ulimit -n $(ulimit -Hn); exec python3 $WORK/clients.py idle $IDLE_FLOWS" < "$WORK/$name.fifo" > "$WORK/$name.idle") & local holder=$!
    exec 9>"$WORK/$name.fifo"
    for _ in $(seq 1 150); do [ -s "$WORK/$name.idle" ] && break; sleep 0.5; done
    sleep 2
    flows=$(cat "$WORK/$name.idle" 2>/dev/null || echo 0)
    after=$(rss $pid)
    echo >&9; exec 9>&-; wait $holder 2>/dev/null || true
    kill -TERM $pid; wait $pid 2>/dev/null || true
    kill -9 $servers; wait $servers 2>/dev/null || true
    local tck; tck=$(getconf CLK_TCK)
    python3 - "$name" "$up" "$down" $u "$conn" "$c0" "$c1" "$tck" "$idle" "$peak" "$base" "$after" "$flows" "$T" <<'PY' | tee -a "$RESULTS"
import sys
name, up, down, udp_mbit, loss, conn, c0, c1, tck, idle, peak, base, after, flows, t = sys.argv[1:]
cpu = (int(c1) - int(c0)) / int(tck)
flows = int(flows or 0)
per = (int(after) - int(base)) / flows if flows else 0
print(f"{name:10s} up {float(up):6.2f} Gbit/s  down {float(down):6.2f} Gbit/s  udp {float(udp_mbit):5.0f} Mbit/s ({float(loss):.1f}% loss)"
      f"  {int(float(conn)):5d} conn/s  cpu {cpu:6.1f} s  idle {int(idle)/1024:5.1f} MiB  peak {int(peak)/1024:6.1f} MiB"
      f"  {flows} idle flows: +{(int(after)-int(base))/1024:6.1f} MiB ({per:5.1f} KB/flow)")
PY
}

echo "tun gateway, lan → gw (tun, auto_route) → srv, ${T}s per test, UDP offered ${UDP_RATE}bit/s; ours: $OURS"
measure ours "$OURS" gvisor
if [ -x "$GO" ]; then
    measure go-gvisor "$GO" gvisor
    measure go-system "$GO" system
    python3 - "$RESULTS" <<'PY'
import re, sys
rows = {}
pattern = re.compile(r"up +(?P<up>[\d.]+) Gbit/s +down +(?P<down>[\d.]+) Gbit/s +udp +(?P<udp>[\d.]+) Mbit/s.*?"
                     r"(?P<conn>\d+) conn/s +cpu +(?P<cpu>[\d.]+) s .*peak +(?P<peak>[\d.]+) MiB.*\( *(?P<perflow>[\d.]+) KB/flow\)")
for line in open(sys.argv[1]):
    match = pattern.search(line)
    if match: rows[line.split()[0]] = {k: float(v) for k, v in match.groupdict().items()}
o = rows.get("ours", {})
for other in ("go-gvisor", "go-system"):
    g = rows.get(other)
    if not g or "ours" not in rows: continue
    r = lambda a, b: a / b if b else float("inf")
    print(f"ours/{other}: up x{r(o['up'], g['up']):.2f}  down x{r(o['down'], g['down']):.2f}  udp x{r(o['udp'], g['udp']):.2f}"
          f"  conn/s x{r(o['conn'], g['conn']):.2f}  cpu x{r(o['cpu'], g['cpu']):.2f}  peak RSS x{r(o['peak'], g['peak']):.2f}"
          f"  KB/idle flow x{r(o['perflow'], g['perflow']):.2f}")
PY
fi
