// The naive client the interop tests drive (Python with the `h2` package): naiveproxy's client side as
// Go sing-box 1.12.12's naive inbound reads it (protocol/naive/inbound.go, inbound_conn.go). It serves
// its own loopback target (`echo`, `send N`) and prints one line per answer and transfer.
let naiveClientScript = #"""
# A naive client (Chromium naiveproxy's client side as Go sing-box 1.12.12's naive inbound
# expects it: protocol/naive/inbound.go, inbound_conn.go), for the interop tests.
# CONNECT with a `Padding` header and Basic `Proxy-Authorization`, over HTTP/2 (TLS, ALPN h2)
# or HTTP/1.1 (plain or TLS). After the 200 the first 8 writes each way are naive frames:
# [data length: u16 BE][padding length: u8][data][padding bytes]; raw bytes after that.
# The script runs its own target server on loopback: a connection's first line is `echo`
# (echo every byte) or `send N` (N pattern bytes, then close). Prints one line per check.
import argparse, base64, hashlib, random, socket, ssl, threading, time

FIRST_PADDINGS = 8

def padding_header():
    n = random.randint(30, 61)
    return "".join(random.choice("!#$()+<>?@[]^`{}") for _ in range(16)) + "~" * (n - 16)

def pattern(n, seed):
    out = bytearray(); block = hashlib.sha256(seed.encode()).digest(); i = 0
    while len(out) < n:
        out += hashlib.sha256(block + i.to_bytes(8, "big")).digest(); i += 1
    return bytes(out[:n])

def target_server():
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(64)
    def serve(c):
        try:
            line = b""
            while not line.endswith(b"\n"):
                b = c.recv(1)
                if not b: return
                line += b
            words = line.decode().split()
            if words[0] == "echo":
                while True:
                    b = c.recv(65536)
                    if not b: break
                    c.sendall(b)
                c.shutdown(socket.SHUT_WR)
            elif words[0] == "send":
                c.sendall(pattern(int(words[1]), "download"))
        except OSError:
            pass
        finally:
            c.close()
    def accept():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return srv.getsockname()[1]

class Padder:
    """The naive framing of one direction: `encode` pads the first 8 writes, `decode` strips the first 8 frames."""
    def __init__(self):
        self.written = 0; self.read = 0; self.buf = b""; self.data_left = 0; self.pad_left = 0
    def encode(self, data):
        out = b""
        while data:
            if self.written >= FIRST_PADDINGS:
                return out + data
            chunk, data = data[:65535], data[65535:]
            pad = random.randint(0, 255)
            out += len(chunk).to_bytes(2, "big") + bytes([pad]) + chunk + bytes(pad)
            self.written += 1
        return out
    def decode(self, data):
        self.buf += data; out = b""
        while self.buf:
            if self.data_left:
                take = self.buf[:self.data_left]; self.buf = self.buf[len(take):]; self.data_left -= len(take); out += take
            elif self.pad_left:
                take = self.buf[:self.pad_left]; self.buf = self.buf[len(take):]; self.pad_left -= len(take)
            elif self.read < FIRST_PADDINGS:
                if len(self.buf) < 3: break
                self.data_left = int.from_bytes(self.buf[:2], "big"); self.pad_left = self.buf[2]; self.buf = self.buf[3:]
                self.read += 1
            else:
                out += self.buf; self.buf = b""
        return out

def request_headers(args, target):
    h = []
    if args.padding: h.append(("padding", padding_header()))
    if args.auth: h.append(("proxy-authorization", "Basic " + base64.b64encode(args.auth.encode()).decode()))
    if args.xff: h.append(("x-forwarded-for", args.xff))
    return h

def tls_context(args, alpn):
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.set_alpn_protocols([alpn])
    return ctx

def job_payload(job):
    kind, size = job
    if kind == "echo":
        return b"echo\n", pattern(size, "echo%d" % size), size
    return ("send %d\n" % size).encode(), b"", size

def check(job, got, index):
    kind, size = job
    want = pattern(size, "echo%d" % size) if kind == "echo" else pattern(size, "download")
    print("%s %d %s" % (kind, index, "ok %d" % len(got) if got == want else "BAD %d/%d" % (len(got), size)), flush=True)

# ---- HTTP/1.1 ----
def run_h1(args, target, jobs):
    for index, job in enumerate(jobs):
        s = socket.create_connection(("127.0.0.1", args.port), timeout=20)
        if args.mode == "h1tls":
            s = tls_context(args, "http/1.1").wrap_socket(s, server_hostname="127.0.0.1")
        uri = target if args.method == "CONNECT" else "http://%s/" % target
        lines = ["%s %s HTTP/1.1" % (args.method, uri), "Host: " + target]
        lines += ["%s: %s" % (k.title(), v) for k, v in request_headers(args, target)]
        first, body, size = job_payload(job)
        up, down = Padder(), Padder()
        early = up.encode(first) if args.early else b""
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + early)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                b = s.recv(1)
                if not b: print("closed", flush=True); return
                head += b
        except ConnectionResetError:
            print("reset", flush=True); return
        except ssl.SSLError as e:
            print("closed", flush=True); return
        status_line, *fields = head.decode().split("\r\n")
        print("status " + status_line.split()[1], flush=True)
        for f in fields:
            if f.lower().startswith("padding:"):
                v = f.split(":", 1)[1].strip(); print("padding-header %d" % len(v), flush=True)
        if status_line.split()[1] != "200": return
        if not args.early:
            # Go hijacks the connection after flushing its 200 and drops what its server had read
            # meanwhile (inbound.go ignores Hijack's bufio.Reader): let it hijack before we speak.
            time.sleep(0.05)
        # One thread (an SSL socket must not be read and written at once): at most 256 KiB of the
        # echo in flight, so neither side's buffers fill while the other waits.
        got = b""
        def receive(until):
            nonlocal got
            while len(got) < until:
                b = s.recv(65536)
                if not b: return False
                got += down.decode(b)
            return True
        if not args.early: s.sendall(up.encode(first))
        for i in range(0, len(body), 16384):
            s.sendall(up.encode(body[i:i + 16384]))
            if not receive(i - 262144): break
        receive(size)
        check(job, got, index)
        s.close()

# ---- HTTP/2 ----
def run_h2(args, target, jobs):
    import h2.connection, h2.config, h2.events
    s = socket.create_connection(("127.0.0.1", args.port), timeout=20)
    s = tls_context(args, "h2").wrap_socket(s, server_hostname="127.0.0.1")
    print("alpn " + str(s.selected_alpn_protocol()), flush=True)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    conn.increment_flow_control_window(1 << 24)
    streams = {}
    for index, job in enumerate(jobs):
        sid = conn.get_next_available_stream_id()
        hdrs = [(":method", args.method), (":authority", target)]
        if args.method != "CONNECT": hdrs += [(":scheme", "https"), (":path", "/")]
        conn.send_headers(sid, hdrs + request_headers(args, target))
        first, body, size = job_payload(job)
        streams[sid] = dict(index=index, job=job, up=Padder(), down=Padder(), pending=b"", size=size, got=b"",
                            status=None, first=first, body=body, done=False)
    s.sendall(conn.data_to_send())

    def pump():
        for sid, st in streams.items():
            while st["pending"] and not st["done"]:
                window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if window <= 0: break
                chunk, st["pending"] = st["pending"][:window], st["pending"][window:]
                conn.send_data(sid, chunk)
        out = conn.data_to_send()
        if out: s.sendall(out)

    while not all(st["done"] for st in streams.values()):
        try:
            data = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            for st in streams.values():
                if not st["done"]: print("connection closed %d" % st["index"], flush=True); st["done"] = True
            break
        for event in conn.receive_data(data):
            st = streams.get(getattr(event, "stream_id", None))
            if isinstance(event, h2.events.ResponseReceived):
                hd = dict(event.headers); st["status"] = hd[":status"]
                print("status %s %d" % (st["status"], st["index"]), flush=True)
                if "padding" in hd: print("padding-header %d" % len(hd["padding"]), flush=True)
                if st["status"] == "200":
                    st["pending"] = st["up"].encode(st["first"])
                    for i in range(0, len(st["body"]), 16384): st["pending"] += st["up"].encode(st["body"][i:i + 16384])
                if event.stream_ended: st["done"] = True
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if st:
                    st["got"] += st["down"].decode(event.data)
                    if len(st["got"]) >= st["size"] and not st["done"]:
                        check(st["job"], st["got"], st["index"]); st["done"] = True
                        conn.reset_stream(event.stream_id, 8)
            elif isinstance(event, h2.events.StreamEnded):
                if st and not st["done"]:
                    if st["status"] == "200": check(st["job"], st["got"], st["index"])
                    else: print("ended %d" % st["index"], flush=True)
                    st["done"] = True
            elif isinstance(event, h2.events.StreamReset):
                if st and not st["done"]: print("stream reset %d" % st["index"], flush=True); st["done"] = True
        pump()
    s.close()

def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["h2", "h1", "h1tls"])
    p.add_argument("port", type=int)
    p.add_argument("--ca")
    p.add_argument("--auth", default="")
    p.add_argument("--no-padding", dest="padding", action="store_false")
    p.add_argument("--method", default="CONNECT")
    p.add_argument("--xff", default="", help="an X-Forwarded-For value")
    p.add_argument("--early", action="store_true", help="HTTP/1.1: send the first frame with the request head")
    p.add_argument("--jobs", default="send:1048576,echo:1048576", help="kind:size,... (h2: concurrent streams on one connection)")
    args = p.parse_args()
    target = "127.0.0.1:%d" % target_server()
    jobs = [(j.split(":")[0], int(j.split(":")[1])) for j in args.jobs.split(",") if j]
    (run_h2 if args.mode == "h2" else run_h1)(args, target, jobs)

main()
"""#
