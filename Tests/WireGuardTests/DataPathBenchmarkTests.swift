import Foundation
import NIOCore
import NetstackWire
import Testing
@testable import WireGuard

/// Data-path throughput, run on demand in release:
/// `WG_BENCH=1 swift test -c release --filter DataPathBenchmarkTests`.
/// Prints ns/packet for the transport AEADs (OpenSSL EVP, libsodium) and for device A.send + B.receive of 1400-byte
/// packets on an established session with owner-style buffers (16 B headroom, passed with `consume`).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["WG_BENCH"] == "1")) struct DataPathBenchmarkTests {
    static func seconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    @Test func transportAEADs() {
        precondition(sodiumReady)
        let key = SeededRandom(seed: 3).key()
        let evp = OpenSSLChaChaPoly(sendKey: key, receiveKey: key)
        let sodium = SodiumChaChaPoly(sendKey: key, receiveKey: key)
        var packet = [UInt8](repeating: 0x42, count: 1420 + 16)
        let iterations = 100_000
        for (name, seal, open) in [
            ("OpenSSL EVP", { (c: UInt64, b: UnsafeMutableRawBufferPointer) in evp.seal(counter: c, inPlace: b) },
             { (c: UInt64, b: UnsafeMutableRawBufferPointer) in evp.open(counter: c, inPlace: b) }),
            ("libsodium", { (c: UInt64, b: UnsafeMutableRawBufferPointer) in sodium.seal(counter: c, inPlace: b) },
             { (c: UInt64, b: UnsafeMutableRawBufferPointer) in sodium.open(counter: c, inPlace: b) }),
        ] {
            var ok = 0
            let t0 = Self.seconds()
            packet.withUnsafeMutableBytes { buffer in
                for i in 0..<iterations {
                    seal(UInt64(i), buffer)
                    if open(UInt64(i), buffer) { ok += 1 }
                }
            }
            let ns = (Self.seconds() - t0) / Double(iterations) * 1e9
            #expect(ok == iterations)
            print("ChaCha20-Poly1305 \(name), 1420 B seal+open: \(Int(ns)) ns/packet")
        }
    }

    @Test func deviceSendReceive() {
        var pair = DevicePair()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: []), now: pair.now, into: &pair.outA)
        _ = pair.exchange()
        let payload = [UInt8](repeating: 0xab, count: 1400 - 28)
        var pool = (0..<64).map { _ in ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload) }
        let iterations = 100_000
        var delivered = 0
        let t0 = Self.seconds()
        for i in 0..<iterations {
            var packet = pool[i & 63]
            pool[i & 63] = ByteBuffer()
            packet.moveReaderIndex(to: 16)
            packet.moveWriterIndex(to: 16 + 1400)
            pair.a.send(packet: consume packet, now: pair.now, into: &pair.outA)
            let datagram = pair.outA.datagrams[0].buffer
            pair.outA.datagrams.removeAll(keepingCapacity: true)
            pair.b.receive(datagram: consume datagram, from: pair.endpointA, now: pair.now, into: &pair.outB)
            var inner = pair.outB.packets[0].buffer
            pair.outB.packets.removeAll(keepingCapacity: true)
            delivered += inner.readableBytes == 1400 ? 1 : 0
            inner.moveReaderIndex(to: 0)
            pool[i & 63] = inner
        }
        let ns = (Self.seconds() - t0) / Double(iterations) * 1e9
        #expect(delivered == iterations)
        #expect(pair.a.counters.copiedForHeadroom == 0)
        print("device A.send + B.receive, 1400 B: \(Int(ns)) ns/packet")
    }
}
