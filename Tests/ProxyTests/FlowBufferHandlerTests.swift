// FlowBufferHandler after its pipeline went away: a sniffer asking then must learn "ended", not trap
// (found by the tun gateway's SYN flood: spoofed clients reset flows before the router sniffs).
import NIOCore
import NIOEmbedded
import Net
import Testing

@Suite struct FlowBufferHandlerTests {
    @Test func waitAfterRemovalReportsEnded() throws {
        let channel = EmbeddedChannel()
        let handler = FlowBufferHandler()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.writeInbound(ByteBuffer(string: "GET"))
        try channel.pipeline.syncOperations.removeHandler(handler).wait()
        let result = try handler.waitForBytes(moreThan: 0, timeout: .seconds(1)).wait()
        #expect(result.ended)
        _ = try? channel.finish()
    }
}
