# Sourced by bench/netstack.sh and bench/netstack-ab.sh: the one topology both measure on. A client
# namespace whose TUN bt0 (owned by the proxy under test) leads to 198.18.0.0/16, and iperf3 -s on
# the namespace's loopback, which the proxy relays each flow to.

# ns_with_server NS: a fresh namespace NS with lo up and iperf3 -s on 127.0.0.1:5201; the server's
# pid in SERVER_PID (a job of the calling shell, so its clean-up can kill it).
ns_with_server() {
    ip netns del "$1" 2>/dev/null || true
    ip netns add "$1"
    ip -n "$1" link set lo up
    ip netns exec "$1" iperf3 -s -B 127.0.0.1 -p 5201 >/dev/null 2>&1 &
    SERVER_PID=$!
}

# route_through_tun NS MTU: waits up to 10 s for the proxy's bt0 in NS, then brings it up with MTU,
# 172.19.0.1/30 (a proxy that set the address itself is fine) and the route to 198.18.0.0/16.
route_through_tun() {
    for _ in $(seq 100); do ip -n "$1" link show bt0 >/dev/null 2>&1 && break; sleep 0.1; done
    ip -n "$1" link set bt0 mtu "$2" up
    ip -n "$1" addr add 172.19.0.1/30 dev bt0 2>/dev/null || true
    ip -n "$1" route add 198.18.0.0/16 dev bt0
}

# iperf_result: iperf3 -J output on stdin -> "Gbit/s bytes" of what the receiver got ("0 0" if the
# run failed).
iperf_result() {
    python3 -c 'import json, sys
try:
    r = json.load(sys.stdin)["end"]["sum_received"]; print("%.2f" % (r["bits_per_second"] / 1e9), r["bytes"])
except Exception:
    print(0, 0)'
}

# cpu_ticks PID: the process's user + system CPU time so far, in clock ticks.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# cpu_per_gb TICKS BYTES: CPU seconds per GB moved, two decimals ("n/a" if nothing moved).
cpu_per_gb() {
    awk -v ticks="$1" -v bytes="$2" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (bytes > 0) printf "%.2f\n", ticks / hz / (bytes / 1e9); else print "n/a" }'
}
