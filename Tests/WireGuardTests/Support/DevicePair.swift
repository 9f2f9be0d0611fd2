import NIOCore
import NetstackWire
@testable import WireGuard

/// Deterministic randomness for simulations: a SplitMix64 stream.
final class SeededRandom: @unchecked Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        for index in buffer.indices {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            buffer[index] = UInt8(truncatingIfNeeded: z ^ (z >> 31))
        }
    }

    func key() -> Bytes32 {
        var key = Bytes32.zero
        key.withUnsafeMutableBytes { fill($0) }
        return key
    }
}

/// Two devices, A (10.0.0.1) and B (10.0.0.2), wired back to back in memory with simulated time.
struct DevicePair {
    let a: WireGuardDevice
    let b: WireGuardDevice
    let endpointA = WireGuardEndpoint(ipv4: (192, 0, 2, 1), port: 51820)
    let endpointB = WireGuardEndpoint(ipv4: (192, 0, 2, 2), port: 51821)
    var now = Instant(nanoseconds: 1_000_000_000)
    var outA = WireGuardOutput()
    var outB = WireGuardOutput()

    init(seed: UInt64 = 1, presharedKey: Bytes32 = .zero, bKnowsEndpointOfA: Bool = false,
         persistentKeepalive: Duration? = nil, reservedAToB: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        let random = SeededRandom(seed: seed)
        let keyA = random.key(), keyB = random.key()
        a = WireGuardDevice(configuration: .init(privateKey: keyA, unixTimeAtZero: .seconds(1_700_000_000)), random: random.fill)
        b = WireGuardDevice(configuration: .init(privateKey: keyB, unixTimeAtZero: .seconds(1_700_000_000)), random: random.fill)
        a.addPeer(WireGuardPeerConfiguration(publicKey: b.identity.publicKey, presharedKey: presharedKey, endpoint: endpointB,
                                             allowedIPs: [([10, 0, 0, 2], 32)], persistentKeepalive: persistentKeepalive,
                                             reserved: reservedAToB))
        b.addPeer(WireGuardPeerConfiguration(publicKey: a.identity.publicKey, presharedKey: presharedKey,
                                             endpoint: bKnowsEndpointOfA ? endpointA : nil,
                                             allowedIPs: [([10, 0, 0, 1], 32), ([172, 16, 0, 0], 12)]))
    }

    /// Delivers everything A produced to B (and vice versa) until both are quiet; returns the packets each got.
    mutating func exchange(dropAToB: Bool = false) -> (atA: [ByteBuffer], atB: [ByteBuffer]) {
        var atA: [ByteBuffer] = [], atB: [ByteBuffer] = []
        for _ in 0..<10 {
            let fromA = outA.datagrams, fromB = outB.datagrams
            atA += outA.packets.map(\.buffer)
            atB += outB.packets.map(\.buffer)
            outA.removeAll()
            outB.removeAll()
            if fromA.isEmpty && fromB.isEmpty { break }
            if !dropAToB {
                for datagram in fromA { b.receive(datagram: datagram.buffer, from: endpointA, now: now, into: &outB) }
            }
            for datagram in fromB { a.receive(datagram: datagram.buffer, from: endpointB, now: now, into: &outA) }
        }
        atA += outA.packets.map(\.buffer)
        atB += outB.packets.map(\.buffer)
        outA.packets.removeAll()
        outB.packets.removeAll()
        return (atA, atB)
    }

    mutating func advance(_ duration: Duration) { now += duration }

    mutating func pollBoth() {
        a.poll(now: now, into: &outA)
        b.poll(now: now, into: &outB)
    }
}

/// Builds an IPv4/UDP packet with 16 bytes of headroom (as the owner of a device would allocate it).
func ipv4Packet(from source: [UInt8], to destination: [UInt8], payload: [UInt8], headroom: Int = 16) -> ByteBuffer {
    var buffer = ByteBufferAllocator().buffer(capacity: headroom + 28 + payload.count + 32)
    buffer.moveWriterIndex(forwardBy: headroom)
    buffer.moveReaderIndex(forwardBy: headroom)
    let total = 28 + payload.count
    var header: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 1, 0, 0, 64, 17, 0, 0]
    header += source + destination
    var sum: UInt32 = 0
    for index in stride(from: 0, to: 20, by: 2) { sum += UInt32(header[index]) << 8 | UInt32(header[index + 1]) }
    while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
    let checksum = ~UInt16(sum)
    header[10] = UInt8(checksum >> 8)
    header[11] = UInt8(checksum & 0xff)
    buffer.writeBytes(header)
    buffer.writeBytes([0x30, 0x39, 0x00, 0x35, UInt8((8 + payload.count) >> 8), UInt8((8 + payload.count) & 0xff), 0, 0])
    buffer.writeBytes(payload)
    return buffer
}
