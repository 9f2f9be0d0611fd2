// Bad input for the gateway: a SYN flood to random destinations inside the test's own prefixes,
// malformed packets, and UDP to many ports, all sent from the lan namespace through raw sockets.

/// A python3 script: `flood.py <syn4> <syn6> <garbage> <udp>`. Sources are the lan host's own
/// addresses, destinations lie in 10.77.9.0/24 and 2001:db8:9::/64 (srv's loopback prefixes).
let floodScript = #"""
import os, random, socket, struct, sys
syn4, syn6, garbage, udp = (int(x) for x in sys.argv[1:5])
src4 = socket.inet_aton("10.77.1.2")

def checksum(data):
    if len(data) % 2: data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16: total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

def ipv4(dst, proto, payload, ihl=5, options=b""):
    # Kernel fills total length and header checksum for IPPROTO_RAW (raw(7)).
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 0, random.getrandbits(16), 0, 64, proto, 0, src4, dst) + options + payload

def tcp_syn(src, dst):
    sport, dport = random.randint(1024, 65535), random.randint(1, 65535)
    header = struct.pack("!HHIIBBHHH", sport, dport, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(header))
    return header[:16] + struct.pack("!H", checksum(pseudo + header)) + header[18:]

raw4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(syn4):
    dst = bytes([10, 77, 9, random.randint(1, 254)])
    raw4.sendto(ipv4(dst, 6, tcp_syn(src4, dst)), (socket.inet_ntoa(dst), 0))

raw6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_TCP)
raw6.setsockopt(socket.IPPROTO_IPV6, 7, 16)  # IPV6_CHECKSUM at offset 16: the kernel fills it
for _ in range(syn6):
    dst = "2001:db8:9::%x" % random.randint(1, 0xFFFF)
    sport, dport = random.randint(1024, 65535), random.randint(1, 65535)
    raw6.sendto(struct.pack("!HHIIBBHHH", sport, dport, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0), (dst, 0))

for i in range(garbage):
    dst = bytes([10, 77, 9, 1])
    kind = i % 6
    if kind == 0:    # TCP header cut short
        packet = ipv4(dst, 6, os.urandom(random.randint(0, 19)))
    elif kind == 1:  # TCP data offset past the end
        packet = ipv4(dst, 6, struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, 15 << 4, 0x02, 1024, 0, 0))
    elif kind == 2:  # UDP length larger than the datagram
        packet = ipv4(dst, 17, struct.pack("!HHHH", 1234, 9000, 4000, 0) + os.urandom(8))
    elif kind == 3:  # an unknown protocol with random bytes
        packet = ipv4(dst, random.choice([99, 132, 200, 253]), os.urandom(random.randint(0, 200)))
    elif kind == 4:  # random TCP flags and options
        packet = ipv4(dst, 6, struct.pack("!HHIIBBHHH", random.randint(1, 65535), 8080, random.getrandbits(32),
                                          random.getrandbits(32), 8 << 4, random.getrandbits(8), 0, 0, 0) + os.urandom(12))
    else:            # a fragment of nothing (more-fragments set, offset deep inside)
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, random.getrandbits(16), 0x2000 | 4000, 64, 17, 0, src4, dst)
        packet = header + os.urandom(64)
    try:
        raw4.sendto(packet, ("10.77.9.1", 0))
    except OSError:
        pass

udp4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(udp):
    udp4.sendto(b"x" * 16, ("10.77.9.1", random.randint(1, 65535)))
print("flood sent", syn4, syn6, garbage, udp)
"""#
