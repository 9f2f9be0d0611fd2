// TUIC v5 wire: literal commands decoded, encode/parse round trips, every truncation, split reads
// of unidirectional-stream commands, fragmentation with Go's sizes and reassembly in any order,
// and garbage that must throw (never trap).
import Adapter
import NIOCore
import TestSupport
import Testing
@testable import TUIC

private let uuid: [UInt8] = Array(0..<16)
private let token: [UInt8] = Array(100..<132)

struct TUICCodecTests {
    // version 5, Connect, IPv4 127.0.0.1 port 443
    let connectIPv4: [UInt8] = [0x05, 0x01, 0x01, 127, 0, 0, 1, 0x01, 0xbb]
    // version 5, Packet, assoc 7, packet 9, 1 fragment, id 0, size 3, domain "a.b" port 53, "xyz"
    let packetDomain: [UInt8] = [0x05, 0x02, 0x00, 0x07, 0x00, 0x09, 0x01, 0x00, 0x00, 0x03,
                                 0x00, 0x03, 0x61, 0x2e, 0x62, 0x00, 0x35, 0x78, 0x79, 0x7a]

    @Test func readsConnect() throws {
        var buffer = ByteBuffer(bytes: connectIPv4 + [0xaa, 0xbb])
        let destination = try #require(try TUICCodec.readConnect(from: &buffer))
        #expect(destination == Destination("127.0.0.1:443"))
        #expect(buffer.readableBytesView.elementsEqual([0xaa, 0xbb]))  // payload after the header stays
        #expect(Array(try TUICCodec.connect(destination).readableBytesView) == connectIPv4)
    }

    @Test func connectNeedsMoreUntilComplete() throws {
        for length in 0..<connectIPv4.count {
            var buffer = ByteBuffer(bytes: connectIPv4.prefix(length))
            #expect(try TUICCodec.readConnect(from: &buffer) == nil, "length \(length)")
            #expect(buffer.readableBytes == length)  // nothing consumed
        }
    }

    @Test func connectIPv6AndDomainRoundTrip() throws {
        for text in ["[2001:db8::1]:8080", "example.com:80"] {
            let destination = try #require(Destination(text))
            var buffer = try TUICCodec.connect(destination)
            #expect(try TUICCodec.readConnect(from: &buffer) == destination)
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test func connectGarbageThrowsGoWords() {
        var badVersion = ByteBuffer(bytes: [0x04, 0x01, 0x01, 1, 2, 3, 4, 0, 80])
        #expect(throws: TUICError.unknownVersion(4)) { try TUICCodec.readConnect(from: &badVersion) }
        var notConnect = ByteBuffer(bytes: [0x05, 0x02, 0x01])
        #expect(throws: TUICError.unsupportedStreamCommand(2)) { try TUICCodec.readConnect(from: &notConnect) }
        var badFamily = ByteBuffer(bytes: [0x05, 0x01, 0x03, 1, 2, 3, 4, 0, 80])
        #expect(throws: TUICError.address(.badFamily(3))) { try TUICCodec.readConnect(from: &badFamily) }
        #expect(TUICError.address(.badFamily(3)).description == "unknown address family: 3")
        var none = ByteBuffer(bytes: [0x05, 0x01, 0xff])
        #expect(throws: TUICError.missingDestination) { try TUICCodec.readConnect(from: &none) }
    }

    @Test func readsPacketDatagram() throws {
        guard case .packet(let header, let payload) = try TUICCodec.readDatagram(ByteBuffer(bytes: packetDomain)) else {
            Issue.record("not a packet"); return
        }
        #expect(header == TUICPacketHeader(associationID: 7, packetID: 9, fragmentTotal: 1, fragmentID: 0, size: 3,
                                           destination: Destination("a.b:53")))
        #expect(Array(payload.readableBytesView) == Array("xyz".utf8))
        let encoded = try TUICCodec.packet(header, payload: payload)
        #expect(Array(encoded.readableBytesView) == packetDomain)
    }

    @Test func datagramGarbage() throws {
        #expect(try TUICCodec.readDatagram(ByteBuffer(bytes: [0x05, 0x04])) == .heartbeat)
        #expect(throws: TUICError.invalidMessage) { try TUICCodec.readDatagram(ByteBuffer(bytes: [0x05])) }
        #expect(throws: TUICError.unknownVersion(6)) { try TUICCodec.readDatagram(ByteBuffer(bytes: [0x06, 0x02])) }
        // Go prints the version byte for an unknown command in a datagram.
        #expect(throws: TUICError.unknownCommand(5)) { try TUICCodec.readDatagram(ByteBuffer(bytes: [0x05, 0x00] + uuid)) }
        // Size field says 3, payload has 2 or 4: Go's io.ErrUnexpectedEOF.
        #expect(throws: TUICError.unexpectedEOF) { try TUICCodec.readDatagram(ByteBuffer(bytes: packetDomain.dropLast())) }
        #expect(throws: TUICError.unexpectedEOF) { try TUICCodec.readDatagram(ByteBuffer(bytes: packetDomain + [0])) }
        for length in 2..<(packetDomain.count - 1) {
            #expect(throws: TUICError.self) { try TUICCodec.readDatagram(ByteBuffer(bytes: packetDomain.prefix(length))) }
        }
        var random = SplitMix(seed: 11)
        for _ in 0..<2000 {
            let count = Int(random.next() % 64)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            _ = try? TUICCodec.readDatagram(ByteBuffer(bytes: [0x05] + bytes))
            var stream = ByteBuffer(bytes: [0x05] + bytes)
            _ = try? TUICCodec.readUni(from: &stream, finished: true, server: true)
            var connect = ByteBuffer(bytes: [0x05, 0x01] + bytes)
            _ = try? TUICCodec.readConnect(from: &connect)
        }
    }

    /// Every way of cutting the three uni-stream commands into reads parses the same.
    @Test func uniCommandsUnderSplitReads() throws {
        let authenticate = Array(TUICCodec.authenticate(uuid: uuid, token: token).readableBytesView)
        #expect(authenticate.count == TUICCodec.authenticateLength)
        let dissociate = Array(TUICCodec.dissociate(0x0102).readableBytesView)
        #expect(dissociate == [0x05, 0x03, 0x01, 0x02])
        let cases: [([UInt8], TUICUniMessage)] = [
            (authenticate, .authenticate(uuid: uuid, token: token)),
            (packetDomain, .packet(TUICPacketHeader(associationID: 7, packetID: 9, fragmentTotal: 1, fragmentID: 0, size: 3,
                                                    destination: Destination("a.b:53")), ByteBuffer(string: "xyz"))),
            (dissociate, .dissociate(0x0102)),
        ]
        for (bytes, expected) in cases {
            for schedule in ReadSplits.schedules(length: bytes.count, boundaries: [2, 10]) {
                var buffer = ByteBuffer()
                var result: TUICUniMessage?
                let reads = schedule.reads(of: bytes)
                for (index, read) in reads.enumerated() {
                    buffer.writeBytes(read)
                    result = try TUICCodec.readUni(from: &buffer, finished: index == reads.count - 1, server: true)
                    if index < reads.count - 1 { #expect(result == nil, "\(schedule)") }
                }
                #expect(result == expected, "\(schedule)")
            }
            // Ending early is an error, not a wait.
            var short = ByteBuffer(bytes: bytes.dropLast())
            #expect(throws: TUICError.truncated) { try TUICCodec.readUni(from: &short, finished: true, server: true) }
        }
        // The client takes Packet only.
        var auth = ByteBuffer(bytes: authenticate)
        #expect(throws: TUICError.unknownCommand(0)) { try TUICCodec.readUni(from: &auth, finished: true, server: false) }
        var long = ByteBuffer(bytes: dissociate + [0])
        #expect(throws: TUICError.invalidDissociate) { try TUICCodec.readUni(from: &long, finished: true, server: true) }
    }

    /// Go's fragUDPMessage: each fragment carries `max - header(first)` bytes; later ones address none.
    @Test func fragmentsWithGoSizes() throws {
        let destination = try #require(Destination("127.0.0.1:53"))
        let payload = ByteBuffer(bytes: (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let fragments = try TUICCodec.fragments(associationID: 1, packetID: 2, destination: destination, payload: payload, maxPacketSize: 1197)
        let room = 1197 - 10 - 7
        #expect(fragments.count == (3000 + room - 1) / room)
        #expect(fragments[0].readableBytes == 1197)
        var defragmenter = TUICDefragmenter()
        var whole: (ByteBuffer, Destination?)?
        // Reassembled whatever the order, with fragment 0's address.
        for fragment in fragments.reversed() {
            guard case .packet(let header, let part) = try TUICCodec.readDatagram(fragment) else { Issue.record("not a packet"); return }
            #expect(header.fragmentTotal == UInt8(fragments.count))
            #expect((header.destination == nil) == (header.fragmentID != 0))
            #expect(whole == nil)
            whole = defragmenter.feed(header, payload: part)
        }
        #expect(whole?.0 == payload)
        #expect(whole?.1 == destination)
        #expect(defragmenter.pendingCount == 0)
        // A small payload is one whole packet.
        let single = try TUICCodec.fragments(associationID: 1, packetID: 3, destination: destination, payload: ByteBuffer(string: "hi"),
                                             maxPacketSize: 1197)
        #expect(single.count == 1)
    }

    @Test func defragmenterFollowsGoRules() throws {
        var defragmenter = TUICDefragmenter(capacity: 2)
        func header(_ packet: UInt16, _ total: UInt8, _ id: UInt8) -> TUICPacketHeader {
            TUICPacketHeader(associationID: 0, packetID: packet, fragmentTotal: total, fragmentID: id, size: 1,
                             destination: id == 0 ? Destination("1.2.3.4:5") : nil)
        }
        #expect(defragmenter.feed(header(1, 2, 2), payload: ByteBuffer(string: "x")) == nil)  // id beyond total
        #expect(defragmenter.feed(header(1, 2, 0), payload: ByteBuffer(string: "a")) == nil)
        #expect(defragmenter.feed(header(1, 2, 0), payload: ByteBuffer(string: "A")) == nil)  // repeat ignored
        #expect(defragmenter.feed(header(1, 3, 1), payload: ByteBuffer(string: "b")) == nil)  // new total restarts
        #expect(defragmenter.feed(header(2, 2, 0), payload: ByteBuffer(string: "c")) == nil)
        #expect(defragmenter.feed(header(3, 2, 0), payload: ByteBuffer(string: "d")) == nil)  // evicts packet 1
        #expect(defragmenter.pendingCount == 2)
        let done = defragmenter.feed(header(3, 2, 1), payload: ByteBuffer(string: "e"))
        #expect(done?.0 == ByteBuffer(string: "de"))
        #expect(done?.1 == Destination("1.2.3.4:5"))
    }

    @Test func parsesUUIDsAsGo() {
        #expect(TUICModule.parseUUID("059032a9-7d40-4a96-9bb1-36823d848068")?.count == 16)
        #expect(TUICModule.parseUUID("059032a97d404a969bb136823d848068") == TUICModule.parseUUID("{059032a9-7d40-4a96-9bb1-36823d848068}"))
        #expect(TUICModule.parseUUID("059032a9-7d40-4a96-9bb1-36823d84806") == nil)
        #expect(TUICModule.parseUUID("059032a9x7d40-4a96-9bb1-36823d848068") == nil)
        #expect(TUICModule.parseUUID("zz9032a9-7d40-4a96-9bb1-36823d848068") == nil)
    }
}
