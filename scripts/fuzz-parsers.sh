#!/usr/bin/env bash
# Long fuzz run of the stream parsers: COUNT random, mutated and valid streams, cut into random reads,
# through sing-mux (smux, yamux, padding, requests), anytls, gun, simple-obfs, mux.cool, WebSocket and tuic
# parsers, checking no crash, no hang (slowest input < 1 s), a valid stream decodes the same in pieces
# as whole, and flat RSS. The default test suite runs the same loop short (TransportTests/ParserFuzzTests).
#   scripts/fuzz-parsers.sh [COUNT] [SEED] [TARGET]   (default 2000000, 1, all; release build of netstack-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-2000000}
SEED=${2:-1}
BIN=.build/release/netstack-bench
if [ ! -x "$BIN" ]; then
    swift build -c release --product netstack-bench --static-swift-stdlib
fi
exec /usr/bin/time -f "fuzz-parsers: %e s wall, %M KiB max RSS" "$BIN" fuzz-parsers "$COUNT" "$SEED" ${3:+"$3"}
