// A SOCKS5 UDP ASSOCIATE client in python3 (a real client not written in Swift): asks the proxy
// for an association, sends a DNS query for `test.example` A through it to the DNS server,
// prints the answer's address.

/// The client script; argv: proxy port, DNS port, [username password].
let socksUDPClientScript = #"""
import socket, struct, sys
proxy_port, dns_port = int(sys.argv[1]), int(sys.argv[2])
user = sys.argv[3].encode() if len(sys.argv) > 4 else None
password = sys.argv[4].encode() if len(sys.argv) > 4 else None
tcp = socket.create_connection(("127.0.0.1", proxy_port), timeout=5)
def recv_exact(n):
    data = b""
    while len(data) < n:
        chunk = tcp.recv(n - len(data))
        if not chunk: raise SystemExit("proxy closed during handshake")
        data += chunk
    return data
tcp.sendall(b"\x05\x01" + (b"\x02" if user else b"\x00"))
version, method = recv_exact(2)
if method == 2:
    tcp.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
    if recv_exact(2)[1] != 0: raise SystemExit("auth failed")
elif method != 0:
    raise SystemExit("method %d" % method)
tcp.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
head = recv_exact(4)
if head[1] != 0: raise SystemExit("associate rejected %d" % head[1])
if head[3] == 1:
    bind_ip = socket.inet_ntoa(recv_exact(4))
elif head[3] == 4:
    bind_ip = socket.inet_ntop(socket.AF_INET6, recv_exact(16))
else:
    raise SystemExit("bind type %d" % head[3])
bind_port = struct.unpack("!H", recv_exact(2))[0]
if bind_ip in ("0.0.0.0", "::"): bind_ip = "127.0.0.1"
query = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
for label in b"test.example".split(b"."):
    query += bytes([len(label)]) + label
query += b"\x00" + struct.pack("!HH", 1, 1)
udp = socket.socket(socket.AF_INET6 if ":" in bind_ip else socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(5)
header = b"\x00\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", dns_port)
for attempt in range(3):
    udp.sendto(header + query, (bind_ip, bind_port))
    try:
        reply, _ = udp.recvfrom(65535)
        break
    except socket.timeout:
        continue
else:
    raise SystemExit("no reply")
if reply[3] != 1: raise SystemExit("reply address type %d" % reply[3])
source = socket.inet_ntoa(reply[4:8]) + ":" + str(struct.unpack("!H", reply[8:10])[0])
answer = reply[10:]
if struct.unpack("!H", answer[:2])[0] != 0x1234: raise SystemExit("wrong DNS id")
# The A record's 4 bytes end the single-answer reply.
print(source, socket.inet_ntoa(answer[-4:]))
"""#
