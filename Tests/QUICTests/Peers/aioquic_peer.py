"""aioquic as a real QUIC peer for QUICTests (client or server), one connection, then exit.

server: handshake, echo DATAGRAM frames and stream data back, print what happened, exit when the
        connection closes.  client: handshake, one DATAGRAM out and back, then CONNECTION_CLOSE with
        an application error 0x42 "bye".  Every line it prints is one event the Swift test checks.
"""
import argparse
import asyncio
import ssl
import sys

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import (
    ConnectionTerminated,
    DatagramFrameReceived,
    HandshakeCompleted,
    StreamDataReceived,
)


def say(text):
    print(text, flush=True)


class Peer(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.closed = asyncio.Event()
        self.datagram = asyncio.Queue()
        self.echo = False
        self.streams = {}
        self.ended = {}
        self.all_ended = asyncio.Event()
        self.expected = 0

    def quic_event_received(self, event):
        if isinstance(event, HandshakeCompleted):
            say(f"handshake alpn={event.alpn_protocol}")
        elif isinstance(event, DatagramFrameReceived):
            if self.echo:
                self._quic.send_datagram_frame(event.data)
                self.transmit()
            self.datagram.put_nowait(event.data)
        elif isinstance(event, StreamDataReceived):
            if self.echo:
                self._quic.send_stream_data(event.stream_id, event.data, event.end_stream)
                self.transmit()
            else:
                self.streams.setdefault(event.stream_id, bytearray()).extend(event.data)
                if event.end_stream:
                    self.ended[event.stream_id] = True
                    if len(self.ended) == self.expected:
                        self.all_ended.set()
        elif isinstance(event, ConnectionTerminated):
            say(f"closed code={event.error_code} reason={event.reason_phrase}")
            self.closed.set()


async def run_server(args):
    configuration = QuicConfiguration(is_client=False, alpn_protocols=[args.alpn], max_datagram_frame_size=65536, idle_timeout=args.idle)
    configuration.load_cert_chain(args.cert, args.key)
    done = asyncio.Event()

    def create(*a, **k):
        peer = Peer(*a, **k)
        peer.echo = True

        async def watch():
            await peer.closed.wait()
            done.set()

        asyncio.ensure_future(watch())
        return peer

    server = await serve("127.0.0.1", args.port, configuration=configuration, create_protocol=create, retry=args.retry)
    say("listening")
    try:
        await asyncio.wait_for(done.wait(), timeout=args.timeout)
    except asyncio.TimeoutError:
        say("timeout")
    server.close()


async def run_client(args):
    configuration = QuicConfiguration(is_client=True, alpn_protocols=[args.alpn], max_datagram_frame_size=65536, idle_timeout=args.idle)
    configuration.verify_mode = ssl.CERT_NONE
    configuration.server_name = "localhost"
    async with connect("127.0.0.1", args.port, configuration=configuration, create_protocol=Peer) as peer:
        peer._quic.send_datagram_frame(b"hello from aioquic")
        peer.transmit()
        data = await asyncio.wait_for(peer.datagram.get(), timeout=args.timeout)
        say(f"datagram {data.decode()}")
        if args.streams:
            # Several concurrent bidirectional streams of pseudo-random bytes, echoed back byte-exact.
            import random
            sent = {}
            peer.expected = args.streams
            for index in range(args.streams):
                stream_id = peer._quic.get_next_available_stream_id()
                data = random.Random(index).randbytes(args.bytes)
                sent[stream_id] = data
                peer._quic.send_stream_data(stream_id, data, end_stream=True)
            peer.transmit()
            await asyncio.wait_for(peer.all_ended.wait(), timeout=args.timeout)
            good = all(bytes(peer.streams.get(i, b"")) == d for i, d in sent.items())
            say("streams ok" if good else "streams mismatch " + str({i: len(peer.streams.get(i, b"")) for i in sent}))
        peer.close(error_code=0x42, reason_phrase="bye")
        await peer.wait_closed()
    say("done")


def tcp_echo(port):
    """A plain TCP echo server (the relay target of the Go tuic test): echo, then half-close."""
    import socket
    import threading

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    say("listening")

    def serve(client):
        while True:
            data = client.recv(65536)
            if not data:
                break
            client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        client.close()

    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client,), daemon=True).start()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["server", "client", "tcp-echo"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--alpn", default="test")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--idle", type=float, default=10)
    parser.add_argument("--timeout", type=float, default=20)
    parser.add_argument("--streams", type=int, default=0)
    parser.add_argument("--retry", action="store_true")
    parser.add_argument("--bytes", type=int, default=0)
    args = parser.parse_args()
    if args.mode == "tcp-echo":
        tcp_echo(args.port)
        return
    try:
        asyncio.run(run_server(args) if args.mode == "server" else asyncio.wait_for(run_client(args), args.timeout))
    except Exception as error:  # the test reads the line
        say(f"error {type(error).__name__} {error}")
        sys.exit(1)


if __name__ == "__main__":
    main()
