import Testing
import Glibc
import NIOCore
import NetstackWire
import Netstack
import NetstackTesting

// Steady-state allocation counts on the data path (STYLE §5). Runs only with a malloc-counting
// interposer preloaded that exports `netstack_malloc_count` (see scripts in the report):
//   LD_PRELOAD=/path/count.so swift test --skip-build --filter AllocationTests
// Without it the tests are skipped, not passed vacuously.

private typealias CountFunction = @convention(c) () -> UInt
private let mallocCount: CountFunction? = {
    guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "netstack_malloc_count") else { return nil }
    return unsafeBitCast(symbol, to: CountFunction.self)
}()

/// Serialized: the counter is process-wide, so nothing else may allocate while one measures.
@Suite(.serialized) struct AllocationTests {
@Test(.enabled(if: mallocCount != nil, "needs the malloc-counting preload"))
func udpEchoAllocatesNothingPerPacketInSteadyState() throws {
    let count = try #require(mallocCount)
    var configuration = StackConfiguration(); configuration.transparent = true
    let stack = Stack(configuration: configuration, seed: 1)
    let packet = PacketBuilder.buffer(PacketBuilder.udp(from: Endpoint(client4, 5000), to: Endpoint(remote4, 53),
                                                        payload: [UInt8](repeating: 7, count: 1200)))
    var input = PacketBatch(capacity: 8), output = PacketBatch(capacity: 8)
    var flow: FlowID?
    var sent = 0
    func round() {
        input.append(Packet(bytes: packet))
        stack.receive(&input, now: .zero)
        while let event = stack.nextEvent() {
            if case .incoming(let id, _) = event { try? stack.accept(id); flow = id }
        }
        if let flow {
            while let datagram = try? stack.receiveDatagram(on: flow) { try? stack.sendDatagram(datagram, on: flow) }
        }
        _ = stack.transmit(into: &output, now: .zero)
        sent += output.count
        stack.recycle(&output)
    }
    for _ in 0..<1000 { round() }
    let before = count()
    let rounds = 10_000
    for _ in 0..<rounds { round() }
    let perPacket = Double(count() - before) / Double(rounds)
    print("UDP echo: \(perPacket) mallocs per datagram in + out")
    #expect(sent == rounds + 1000)
    #expect(perPacket < 0.01)
}

@Test(.enabled(if: mallocCount != nil, "needs the malloc-counting preload"))
func tcpBulkReceiveAllocationsPerSegment() throws {
    let count = try #require(mallocCount)
    var configuration = StackConfiguration(); configuration.transparent = true
    let stack = Stack(configuration: configuration, seed: 1)
    let client = Endpoint(client4, 40000), server = Endpoint(remote4, 443)
    var batch = PacketBatch(capacity: 8), output = PacketBatch(capacity: 64)
    func inject(_ bytes: ByteBuffer) { batch.append(Packet(bytes: bytes)); stack.receive(&batch, now: .zero) }
    inject(PacketBuilder.buffer(PacketBuilder.tcp(from: client, to: server, sequence: 1000, flags: PacketBuilder.syn,
                                                  options: [2, 4, 0x05, 0xb4])))
    guard case .incoming(let id, _)? = stack.nextEvent() else { Issue.record("no SYN hand-off"); return }
    try stack.accept(id)
    _ = stack.transmit(into: &output, now: .zero)
    let synAck = try #require(output.packets.first.flatMap { ParsedPacket($0.bytes) })
    output.removeAll()
    let serverSequence = synAck.sequence &+ 1
    // Pre-built in-order data segments (1400 bytes each), so the loop below allocates only in the stack.
    let segments = 6000
    let payload = [UInt8](repeating: 0x42, count: 1400)
    let built = (0..<segments).map { i in
        PacketBuilder.buffer(PacketBuilder.tcp(from: client, to: server, sequence: 1001 &+ UInt32(i * 1400), acknowledgment: serverSequence,
                                               flags: PacketBuilder.ack, payload: payload))
    }
    inject(PacketBuilder.buffer(PacketBuilder.tcp(from: client, to: server, sequence: 1001, acknowledgment: serverSequence, flags: PacketBuilder.ack)))
    var now = Instant.zero
    func round(_ i: Int) {
        now += .microseconds(10)
        batch.append(Packet(bytes: built[i]))
        stack.receive(&batch, now: now)
        while stack.nextEvent() != nil {}
        while (try? stack.read(on: id)) != nil {}
        _ = stack.transmit(into: &output, now: now)
        stack.recycle(&output)
    }
    for i in 0..<1000 { round(i) }
    let before = count()
    for i in 1000..<segments { round(i) }
    let perSegment = Double(count() - before) / Double(segments - 1000)
    print("TCP bulk receive: \(perSegment) mallocs per 1400-byte segment (read, ACK out)")
    #expect(stack.readableBytes(on: id) == 0)
    #expect(perSegment < 8)  // a regression guard; the report gives the measured figure
}
}
