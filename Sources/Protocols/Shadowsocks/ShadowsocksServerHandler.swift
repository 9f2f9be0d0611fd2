// The inbound's TCP codec and handshake: first in an accepted connection's pipeline, before Net's
// `FlowBufferHandler`.
//
// 1. On activation it reads until the client's header is complete (salt, SIP022 fixed and variable
//    headers or the SIP004 address chunk), checking salt replay and timestamp.
// 2. It logs `inbound connection to <destination>` and hands the channel to the router; payload that
//    came with the header goes on to the buffer handler, which holds it for the relay.
// 3. From then on it opens the client's chunks and seals what the relay writes (the first write
//    carries the response header).
// A client that fails any check is closed with one error line naming it, as Go logs
// `process connection from <source>: …`; nothing is answered.
package import Adapter
package import Config
package import NIOCore
#if canImport(Glibc)
import Glibc  // struct linger for SO_LINGER
#endif

/// Per-inbound settings every connection's handler shares.
package struct ShadowsocksServerContext: Sendable {
    /// The inbound's tag for `FlowMetadata.inbound`.
    package var tag: String
    /// The method and the inbound's key.
    package var method: ShadowsocksMethod
    /// SIP022: the inbound-wide replay filter.
    package var saltFilter: ShadowsocksSaltFilter?
    /// A multi-user inbound's users; nil for a single-user one.
    package var users: ShadowsocksUserTable?
    /// The legacy per-flow listen fields (`sniff`, `domain_strategy`, …).
    package var listenOptions: ListenOptions?
    /// `inbound/shadowsocks[tag]`-named logger.
    package var logger: ContextLogger
    /// Unix time for SIP022 timestamps.
    package var clock: ShadowsocksClock

    /// Built once per inbound.
    package init(tag: String, method: ShadowsocksMethod, saltFilter: ShadowsocksSaltFilter?, users: ShadowsocksUserTable? = nil,
                 listenOptions: ListenOptions?, logger: ContextLogger, clock: @escaping ShadowsocksClock = shadowsocksSystemClock) {
        self.tag = tag
        self.method = method
        self.saltFilter = saltFilter
        self.users = users
        self.listenOptions = listenOptions
        self.logger = logger
        self.clock = clock
    }
}

/// Server-side shadowsocks handshake and stream codec; loop-confined.
package final class ShadowsocksServerHandler: ChannelDuplexHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private let shared: ShadowsocksServerContext
    private let flowID: FlowID
    private let flowHandler: any FlowHandler
    private var session: ShadowsocksServerSession
    private var payloads: [ByteBuffer] = []
    private var handedOff = false
    private var failed = false
    private var receivedAny = false

    /// One accepted connection; `flowHandler` takes it once its header is read.
    package init(context: ShadowsocksServerContext, flowID: FlowID, flowHandler: any FlowHandler) {
        self.shared = context
        self.flowID = flowID
        self.flowHandler = flowHandler
        self.session = ShadowsocksServerSession(method: context.method, saltFilter: context.saltFilter, users: context.users,
                                                clock: context.clock)
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        // A connection handed over by a listen detour is already active.
        if context.channel.isActive { context.read() }
    }

    package func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        context.read()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        receivedAny = true
        do {
            try session.receive(unwrapInboundIn(data), into: &payloads)
        } catch {
            fail(context: context, error: error)
            return
        }
        for payload in payloads { context.fireChannelRead(wrapInboundOut(payload)) }
        payloads.removeAll(keepingCapacity: true)
        guard !handedOff else { return }
        guard let destination = session.destination else {
            context.read()
            return
        }
        handedOff = true
        handOff(context: context, destination: destination)
    }

    private func handOff(context: ChannelHandlerContext, destination: Destination) {
        let source = context.channel.remoteAddress.flatMap { Destination($0) }.map { source -> Destination in
            var out = source
            if let ip = source.ip { out.host = .ip(ip.unmapped) }
            return out
        }
        var metadata = FlowMetadata(inbound: shared.tag, inboundType: "shadowsocks", network: .tcp, source: source,
                                    destination: destination, flowID: flowID)
        if let listenOptions = shared.listenOptions { metadata.applyListenOptions(listenOptions) }
        metadata.user = session.user
        // Go's multi-user inbound names the user: `[alice] inbound connection to …`.
        let prefix = session.user.map { "[\($0)] " } ?? ""
        shared.logger.info("\(prefix)inbound connection to \(destination)", flow: flowID)
        // A UoT stream (the magic names) is turned into a UDP flow by the inbound's UoT flow handler.
        flowHandler.handleTCP(context.channel, metadata: metadata, responder: nil)
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !handedOff, let event = event as? ChannelEvent, event == .inputClosed {
            // The client gave up before or inside its header; Go words each case differently.
            if !failed {
                let error: ShadowsocksError = !receivedAny ? .headerEOF : shared.method.family == .blake3 ? .badHeader : .headerUnexpectedEOF
                fail(context: context, error: error)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        if !handedOff && !failed {
            shared.logger.debug("connection closed: EOF", flow: flowID)
            failed = true
        }
        context.fireChannelInactive()
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let payload = unwrapOutboundIn(data)
        guard payload.readableBytes > 0 else {
            context.write(data, promise: promise)
            return
        }
        context.write(wrapOutboundOut(session.seal(payload)), promise: promise)
    }

    private func fail(context: ChannelHandlerContext, error: ShadowsocksError) {
        failed = true
        payloads.removeAll()
        let source = context.channel.remoteAddress.flatMap { Destination($0) }.map { "\($0)" } ?? "unknown"
        let cause = "shadowsocks: serve TCP from \(source): \(error.message(for: shared.method))"
        if error == .headerEOF {
            // Go: a client that closes before sending anything is `closed`, not an error.
            shared.logger.debug("connection closed: \(cause)", flow: flowID)
        } else {
            shared.logger.error("process connection from \(source): \(cause)", flow: flowID)
        }
        if handedOff {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        // Go closes a failed handshake with SO_LINGER 0 (sing-shadowsocks `ServerConnError.Close`): a reset,
        // never an answer.
        let channel = context.channel
        if let provider = channel as? any SocketOptionProvider {
            provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }
}
