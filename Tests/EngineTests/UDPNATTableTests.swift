// UDPNATTable: per-client flows of one inbound UDP socket, bounded as Go's udpnat2.
import Adapter
import NIOCore
import NIOEmbedded
import Net
import Testing

@Suite struct UDPNATTableTests {
    /// At most 1024 clients; a new one closes the least recently used (a client that keeps sending stays),
    /// and a closed flow leaves the table so its client starts a fresh flow.
    @Test func floodOfClientsIsBoundedByClosingTheLeastRecentlyUsed() throws {
        let listener = EmbeddedChannel()
        defer { _ = try? listener.finish() }
        var flows: [NATPacketConnection] = []
        let table = UDPNATTable(listener: listener) { flows.append($0) }
        let destination = Destination(ip: .v4(0x0A00_0001), port: 53)
        func client(_ port: Int) throws -> SocketAddress { try SocketAddress(ipAddress: "127.0.0.1", port: port) }
        var closed = Set<Int>()
        for port in 1...1024 { table.receive(ByteBuffer(string: "q"), from: try client(port), destination: destination) }
        for (index, flow) in flows.enumerated() { flow.closeFuture.whenSuccess { closed.insert(index) } }
        #expect(table.count == 1024)
        table.receive(ByteBuffer(string: "again"), from: try client(1), destination: destination)
        for port in 5000..<5010 { table.receive(ByteBuffer(string: "q"), from: try client(port), destination: destination) }
        #expect(table.count == 1024 && flows.count == 1034)
        #expect(closed == Set(1...10), "evicted: \(closed.sorted())")
        // An evicted client comes back as a new flow.
        table.receive(ByteBuffer(string: "back"), from: try client(2), destination: destination)
        #expect(flows.count == 1035 && table.count == 1024)
        table.closeAll()
        #expect(table.count == 0)
    }
}
