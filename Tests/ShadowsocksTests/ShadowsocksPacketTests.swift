// UDP packets: client → server → client for every method, replayed packet ids, short and forged
// datagrams, the sliding window itself.
import Testing
import Adapter
import NIOCore
@testable import Shadowsocks

@Suite struct ShadowsocksPacketTests {
    @Test(arguments: methodNames)
    func packetRoundTrip(name: String) throws {
        let (clientMethod, serverMethod) = try methods(name)
        let clientCodec = ShadowsocksPacketCodec(method: clientMethod, isServer: false)
        let serverCodec = ShadowsocksPacketCodec(method: serverMethod, isServer: true)
        let clientSender = clientMethod.family == .blake3 ? ShadowsocksUDPSender(method: clientMethod) : nil
        let serverSender = serverMethod.family == .blake3 ? ShadowsocksUDPSender(method: serverMethod) : nil
        let dns = Destination(ip: .v4(0x0808_0808), port: 53)
        for size in [0, 1, 100, 1400] {
            let payload = patterned(size, seed: size)
            let up = clientCodec.seal(buffer(payload), address: dns, sender: clientSender)
            let opened: ShadowsocksOpenedPacket
            if serverMethod.family == .blake3 {
                var packet = up
                let header = try serverCodec.openHeader(&packet)
                #expect(header.sessionID == clientSender!.sessionID)
                opened = try serverCodec.openBody(packet, header: header, opener: serverCodec.remoteOpener(sessionID: header.sessionID))
            } else {
                opened = try serverCodec.openLegacy(up)
            }
            #expect(opened.address == dns)
            #expect(Array(opened.payload.readableBytesView) == payload)

            let down = serverCodec.seal(buffer(payload.reversed()), address: dns, sender: serverSender,
                                        clientSessionID: clientSender?.sessionID ?? 0)
            let back: ShadowsocksOpenedPacket
            if clientMethod.family == .blake3 {
                var packet = down
                let header = try clientCodec.openHeader(&packet)
                back = try clientCodec.openBody(packet, header: header, opener: clientCodec.remoteOpener(sessionID: header.sessionID))
                #expect(back.clientSessionID == clientSender!.sessionID)
            } else {
                back = try clientCodec.openLegacy(down)
            }
            #expect(back.address == dns)
            #expect(Array(back.payload.readableBytesView) == payload.reversed())
        }
    }

    /// Short and forged datagrams throw; none traps.
    @Test(arguments: methodNames.filter { $0 != "none" })
    func shortOrForgedPacketsAreRefused(name: String) throws {
        let (clientMethod, serverMethod) = try methods(name)
        let clientCodec = ShadowsocksPacketCodec(method: clientMethod, isServer: false)
        let serverCodec = ShadowsocksPacketCodec(method: serverMethod, isServer: true)
        let sender = clientMethod.family == .blake3 ? ShadowsocksUDPSender(method: clientMethod) : nil
        let good = Array(clientCodec.seal(buffer(patterned(40)), address: Destination(ip: .v4(1), port: 9), sender: sender).readableBytesView)
        func open(_ bytes: [UInt8]) throws {
            if serverMethod.family == .blake3 {
                var packet = buffer(bytes)
                let header = try serverCodec.openHeader(&packet)
                _ = try serverCodec.openBody(packet, header: header, opener: serverCodec.remoteOpener(sessionID: header.sessionID))
            } else {
                _ = try serverCodec.openLegacy(buffer(bytes))
            }
        }
        for length in 0..<good.count {
            #expect(throws: ShadowsocksError.self, "length \(length)") { try open(Array(good.prefix(length))) }
        }
        for index in 0..<good.count {
            var bad = good
            bad[index] ^= 1
            #expect(throws: ShadowsocksError.self, "byte \(index)") { try open(bad) }
        }
    }

    /// Random datagrams never trap either side's codec.
    @Test(arguments: methodNames)
    func garbagePacketsNeverTrap(name: String) throws {
        let (clientMethod, serverMethod) = try methods(name)
        let codecs = [ShadowsocksPacketCodec(method: clientMethod, isServer: false), ShadowsocksPacketCodec(method: serverMethod, isServer: true)]
        var generator = SystemRandomNumberGenerator()
        for round in 0..<300 {
            let junk = (0..<(round % 120)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            for codec in codecs {
                if codec.method.family == .blake3 {
                    var packet = buffer(junk)
                    if let header = try? codec.openHeader(&packet) {
                        _ = try? codec.openBody(packet, header: header, opener: codec.remoteOpener(sessionID: header.sessionID))
                    }
                } else {
                    _ = try? codec.openLegacy(buffer(junk))
                }
            }
        }
    }

    /// Go's window: new ids pass, repeats fail, ids more than 8128 behind the newest fail.
    @Test func slidingWindow() {
        var window = ShadowsocksSlidingWindow()
        for id: UInt64 in [0, 1, 5, 3] {
            #expect(window.check(id))
            window.add(id)
        }
        #expect(!window.check(5) && !window.check(0) && window.check(4))
        window.add(20_000)
        #expect(!window.check(20_000 - 8129) && window.check(20_000 - 8000) && !window.check(20_000))
        window.add(20_000 - 8000)
        #expect(!window.check(20_000 - 8000))
    }
}
