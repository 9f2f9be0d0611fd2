#!/usr/bin/env bash
# The whole default test suite: installs test needs (apt packages, Go sing-box 1.12.12 as the reference
# peer), builds, and runs every Swift Testing suite. Root tests (namespaces, TUN, nftables) run when
# we are root and skip with a message otherwise. Long soaks and benchmarks are separate: see bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
export SINGBOX_GO="$PWD/.peers/bin/sing-box-go"
# Build first, quietly: a failed build prints its whole log and fails the run.
log=$(mktemp)
if ! swift build --build-tests >"$log" 2>&1; then
    cat "$log"; rm -f "$log"; exit 1
fi
grep -E 'warning:|Build complete' "$log" | sort -u | tail -40 || true
rm -f "$log"
# Serial on purpose: Swift's cooperative pool has one thread per core (two in CI), and the kernel and
# peer tests block a thread while a child process runs; in parallel they starve the async tests past
# their deadlines. Serial, the whole suite takes about a minute.
swift test --skip-build --no-parallel 2>&1
