#!/usr/bin/env bash
# Long fuzz run of the netstack (issue #3, acceptance 3): COUNT random and mutated packets through the
# IPv4/IPv6/TCP/UDP/ICMP/virtio-net parsers, the GSO segmenter and a transparent Stack's input path,
# checking no crash, no hang (slowest packet < 1 s), bounded flow table, buffered bytes and RSS.
# The default test suite runs the same loops short (NetstackWireTests/FuzzTests, NetstackTests/StackFuzzTests).
#   scripts/fuzz-netstack.sh [COUNT] [SEED]      (default 10000000, 1; release build of netstack-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-10000000}
SEED=${2:-1}
BIN=.build/release/netstack-bench
if [ ! -x "$BIN" ]; then
    swift build -c release --product netstack-bench --static-swift-stdlib
fi
exec /usr/bin/time -f "fuzz: %e s wall, %M KiB max RSS" "$BIN" fuzz "$COUNT" "$SEED"
