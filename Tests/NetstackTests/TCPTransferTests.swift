import Testing
import NIOCore
import NetstackWire
import Netstack
import NetstackTesting

/// FNV-1a 64: a hash of what each side received, for the byte-exact check's message.
func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}

/// Two stacks over a lossy link: B (a client host) dials `remote` through A (a transparent gateway
/// that accepts everything). Each side sends its bytes, then half-closes; both read to the end.
final class TransferRun {
    let a: Stack, b: Stack
    let link: SimulatedLink
    var upload: [UInt8], download: [UInt8]
    var receivedByA: [UInt8] = [], receivedByB: [UInt8] = []
    var sentByA = 0, sentByB = 0
    var flowA: FlowID?, flowB: FlowID
    var shutA = false, shutB = false
    var closedA: FlowCloseReason?, closedB: FlowCloseReason?
    var readClosedA = false, readClosedB = false
    var incomingKey: FlowKey?

    init(client: IPAddress, remote: IPAddress, upload: Int, download: Int, impairments: SimulatedLink.Impairments, seed: UInt64) throws {
        var ca = StackConfiguration(); ca.transparent = true
        var cb = StackConfiguration()
        switch client {
        case .v4(let c): cb.ipv4Addresses = [c]
        case .v6(let c): cb.ipv6Addresses = [c]
        }
        a = Stack(configuration: ca, seed: seed)
        b = Stack(configuration: cb, seed: seed &+ 1)
        link = SimulatedLink(a: a, b: b, impairments: impairments, seed: seed &+ 2)
        var rng = SeededRandom(seed: seed &+ 3)
        self.upload = (0..<upload).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        self.download = (0..<download).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        flowB = try b.connectTCP(to: Endpoint(remote, 443))
    }

    var finished: Bool { closedA != nil && closedB != nil }

    /// The owners' logic for both stacks, run after every link step.
    func drive() {
        while let e = a.nextEvent() {
            switch e {
            case .incoming(let id, let key):
                incomingKey = key
                flowA = id
                try? a.accept(id)
            case .readable(let id):
                while let d = try? a.read(on: id) { receivedByA += d.readableBytesView }
            case .readClosed: readClosedA = true
            case .closed(_, let reason): closedA = reason
            default: break
            }
        }
        while let e = b.nextEvent() {
            switch e {
            case .readable(let id):
                while let d = try? b.read(on: id) { receivedByB += d.readableBytesView }
            case .readClosed: readClosedB = true
            case .closed(_, let reason): closedB = reason
            default: break
            }
        }
        if let flowA, a.tcpState(of: flowA) != nil {
            push(&sentByA, download, stack: a, flow: flowA, shut: &shutA)
        }
        if b.tcpState(of: flowB) != nil {
            push(&sentByB, upload, stack: b, flow: flowB, shut: &shutB)
        }
    }

    private func push(_ sent: inout Int, _ data: [UInt8], stack: Stack, flow: FlowID, shut: inout Bool) {
        while sent < data.count {
            let space = stack.sendSpace(on: flow)
            guard space > 0 else { break }
            var chunk = ByteBuffer(bytes: data[sent..<min(data.count, sent + min(space, 65536))])
            guard let taken = try? stack.send(&chunk, on: flow), taken > 0 else { break }
            sent += taken
        }
        if sent == data.count && !shut {
            shut = true
            try? stack.shutdownWrite(flow)
        }
    }
}

@Test(arguments: [
    (client4, remote4, 0.0, UInt64(1)),
    (client6, remote6, 0.0, UInt64(2)),
    (client4, remote4, 0.01, UInt64(3)),
    (client6, remote6, 0.03, UInt64(4)),
    (client4, remote4, 0.05, UInt64(5)),
    (client4, remote4, 0.10, UInt64(6)),
])
func transfersByteExactOverLossyLink(client: IPAddress, remote: IPAddress, loss: Double, seed: UInt64) throws {
    let impairments = SimulatedLink.Impairments(loss: loss, duplication: loss / 2, reordering: loss, latency: .milliseconds(5))
    let run = try TransferRun(client: client, remote: remote, upload: 200_000, download: 300_000, impairments: impairments, seed: seed)
    let done = run.link.run(timeout: .seconds(600), until: { run.finished }, afterStep: run.drive)
    #expect(done, "not finished: A \(run.receivedByA.count)/\(run.upload.count), B \(run.receivedByB.count)/\(run.download.count)")
    if loss > 0 { #expect(run.link.lost > 0) }
    #expect(run.incomingKey?.local == Endpoint(remote, 443))
    #expect(run.receivedByA.count == run.upload.count && fnv1a(run.receivedByA) == fnv1a(run.upload))
    #expect(run.receivedByB.count == run.download.count && fnv1a(run.receivedByB) == fnv1a(run.download))
    #expect(run.receivedByA == run.upload && run.receivedByB == run.download)
    #expect(run.readClosedA && run.readClosedB)
    #expect(run.closedA == .finished && run.closedB == .finished)
    #expect(run.a.numberOfFlows == 0 && run.b.numberOfFlows == 0)
}
