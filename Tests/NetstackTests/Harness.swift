import NIOCore
import NetstackWire
import Netstack
import NetstackTesting

let client4 = IPAddress("10.0.0.2")!
let own4 = IPAddress("10.0.0.1")!
let remote4 = IPAddress("93.184.216.34")!
let client6 = IPAddress("2001:db8::2")!
let own6 = IPAddress("2001:db8::1")!
let remote6 = IPAddress("2001:db8:ffff::34")!

/// One stack driven by hand: inject packets, collect what it sends, read its events.
final class Harness {
    let stack: Stack
    var now = Instant.zero
    var batch = PacketBatch()

    init(transparent: Bool = false, configure: (inout StackConfiguration) -> Void = { _ in }) {
        var configuration = StackConfiguration()
        configuration.ipv4Addresses = [IPv4Address("10.0.0.1")!]
        configuration.ipv6Addresses = [IPv6Address("2001:db8::1")!]
        configuration.transparent = transparent
        configure(&configuration)
        stack = Stack(configuration: configuration, seed: 7)
    }

    func inject(_ bytes: [UInt8], offload: VirtioNetHeader = .none) {
        var batch = PacketBatch()
        batch.append(Packet(bytes: PacketBuilder.buffer(bytes), offload: offload))
        stack.receive(&batch, now: now)
    }

    /// Everything the stack sends now, parsed.
    func output() -> [ParsedPacket] {
        batch.removeAll()
        _ = stack.transmit(into: &batch, now: now)
        return batch.packets.compactMap { ParsedPacket($0.bytes) }
    }

    func events() -> [StackEvent] {
        var out: [StackEvent] = []
        while let e = stack.nextEvent() { out.append(e) }
        return out
    }

    func advance(_ d: Duration) { now += d }
}

extension PacketBuffer {
    var bytes: [UInt8] { Array(readableBytesView) }
}

func endpoint(_ a: IPAddress, _ p: UInt16) -> Endpoint { Endpoint(a, p) }
