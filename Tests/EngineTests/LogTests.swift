// Log lines in sing-box's three layouts, with flow prefixes, levels and colours.
import Adapter
import NIOCore
import Testing

@Suite struct LogTests {
    @Test func relativeLayoutWithFlowPrefix() {
        let sink = CapturingSink()
        let core = LogCore(level: .info, sink: sink, colors: false, timestampStyle: .relative)
        let logger = ContextLogger(core: core, name: "inbound/mixed[mixed-in]")
        let flow = FlowID(id: 2514495137, start: .now() - .milliseconds(4))
        logger.info("inbound connection from 127.0.0.1:47836", flow: flow)
        logger.debug("hidden at info")
        #expect(sink.text == "INFO[0000] [2514495137 4ms] inbound/mixed[mixed-in]: inbound connection from 127.0.0.1:47836\n")
    }

    @Test func fullTimestampLayout() throws {
        let sink = CapturingSink()
        let core = LogCore(level: .trace, sink: sink, timestampStyle: .full)
        ContextLogger(core: core, name: "").info("sing-box started (0.33s)")
        let line = sink.text
        // "+0000 2026-11-25 22:18:48 INFO sing-box started (0.33s)"
        let pattern = try Regex(#"^[+-]\d{4} \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} INFO sing-box started \(0\.33s\)\n$"#)
        #expect(line.wholeMatch(of: pattern) != nil, "\(line)")
    }

    @Test func coloursWrapLevelAndFlowID() {
        let sink = CapturingSink()
        let core = LogCore(level: .trace, sink: sink, colors: true, timestampStyle: .none)
        ContextLogger(core: core, name: "router").error("boom", flow: FlowID(id: 7, start: .now()))
        #expect(sink.text.hasPrefix("\u{1B}[31mERROR\u{1B}[0m [\u{1B}[38;5;"))
        #expect(sink.text.hasSuffix("7\u{1B}[0m 0ms] router: boom\n"))
    }

    @Test(arguments: [(0, "0ms"), (999, "999ms"), (1000, "1s"), (1500, "1.5s"), (61_004, "1m1.004s"), (3_600_000, "1h0m0s")])
    func elapsedLikeGo(milliseconds: Int64, text: String) {
        #expect(LogCore.formatElapsed(.milliseconds(milliseconds)) == text)
    }

    @Test func levelsParseAndOrder() {
        #expect(LogLevel(name: "warning") == .warn)
        #expect(LogLevel(name: "verbose") == nil)
        #expect(LogLevel.error < LogLevel.info)
        #expect(!LogCore.disabled.isEnabled(.panic))
    }
}
