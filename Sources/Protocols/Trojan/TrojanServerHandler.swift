// TrojanServerHandler: reads a trojan request on an accepted stream (after the TLS server, when
// the inbound has TLS) and hands the stream to the router (Go's transport/trojan `Service`).
//
// 1. The first bytes delivered decide the user, as Go's single `Read` of the key does: fewer
//    than 56 is `bad request size`, an unknown key `bad request`. Either goes to the fallback when
//    one is configured (every byte read so far replayed to it), else the stream is closed with
//    `process connection from <source>: bad request: fallback disabled`.
// 2. Then CRLF, command, address (SOCKS5 form), CRLF, read across as many reads as it takes.
// 3. Connect: a `FlowBufferHandler` goes after us with the bytes that followed the request, we
//    leave, and the router gets a TCP flow. UDP associate: a `TrojanPacketConnection` takes the
//    stream (its reader gets those bytes) and the router gets a UDP flow to the request's address.
// Nothing a client sends can trap; a malformed request closes the stream with one log line.
package import Adapter
package import Config
package import NIOCore
import Net
import SOCKS
import TLS

/// Per-inbound settings every connection's handler shares.
package struct TrojanServerContext: Sendable {
    /// The inbound's tag for `FlowMetadata.inbound`.
    package var tag: String
    /// Key (hex SHA-224 of the password) → index into `userNames`.
    package var users: [[UInt8]: Int]
    /// Each user's `name` (may be empty: Go then logs the index and sets no user).
    package var userNames: [String]
    /// `fallback`: where a stream that is not trojan goes; nil when unset.
    package var fallback: Destination?
    /// `fallback_for_alpn`: the fallback per negotiated ALPN protocol (TLS only).
    package var fallbackForALPN: [String: Destination]
    /// The legacy per-flow listen fields (`sniff`, `domain_strategy`, …).
    package var listenOptions: ListenOptions?
    /// `inbound/trojan[tag]`-named logger.
    package var logger: ContextLogger

    /// Built once per inbound (and by tests).
    package init(tag: String, users: [[UInt8]: Int], userNames: [String], fallback: Destination?,
                 fallbackForALPN: [String: Destination], listenOptions: ListenOptions?, logger: ContextLogger) {
        self.tag = tag
        self.users = users
        self.userNames = userNames
        self.fallback = fallback
        self.fallbackForALPN = fallbackForALPN
        self.listenOptions = listenOptions
        self.logger = logger
    }

    /// Whether a stream that fails authentication goes anywhere (Go's `fallbackHandler != nil`).
    var hasFallback: Bool { fallback != nil || !fallbackForALPN.isEmpty }
}

/// Server side of one trojan stream's request. Inbound-only; loop-confined.
package final class TrojanServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    private let shared: TrojanServerContext
    private let flowID: FlowID
    private let flowHandler: any FlowHandler
    /// Everything read so far (the fallback replays all of it).
    private var buffer = ByteBuffer()
    private var user: Int?
    private var done = false

    /// One accepted stream; `flowHandler` takes it once the request is read.
    package init(context: TrojanServerContext, flowID: FlowID, flowHandler: any FlowHandler) {
        self.shared = context
        self.flowID = flowID
        self.flowHandler = flowHandler
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        // A stream handed over by a listen detour is already active.
        if context.channel.isActive { context.read() }
    }

    package func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        context.read()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var bytes = unwrapInboundIn(data)
        guard bytes.readableBytes > 0 else {
            context.read()
            return
        }
        if user == nil {
            // Go reads the key with one Read: what the first delivery holds decides.
            let key = bytes.getBytes(at: bytes.readerIndex, length: min(bytes.readableBytes, TrojanModule.keyLength)) ?? []
            buffer = bytes
            guard key.count == TrojanModule.keyLength else { return fallback(context, reason: "bad request size") }
            guard let index = shared.users[key] else { return fallback(context, reason: "bad request") }
            user = index
        } else {
            buffer.writeBuffer(&bytes)
        }
        parseRequest(context)
    }

    /// Reads CRLF, command, address, CRLF after the key once they are all here.
    private func parseRequest(_ context: ChannelHandlerContext) {
        var view = buffer
        view.moveReaderIndex(forwardBy: TrojanModule.keyLength)
        guard view.readableBytes >= 3 else { return context.read() }
        view.moveReaderIndex(forwardBy: 2)  // Go skips the CRLF without looking at it
        let command = view.readInteger(as: UInt8.self) ?? 0
        guard command == TrojanModule.commandConnect || command == TrojanModule.commandUDPAssociate
                || command == TrojanModule.commandMux else {
            return reject(context, "unknown command \(command)")
        }
        let destination: Destination?
        do {
            destination = try Destination.readSOCKS5(from: &view)
        } catch {
            return reject(context, "read destination: \(error)")
        }
        guard let destination, view.readableBytes >= 2 else { return context.read() }
        view.moveReaderIndex(forwardBy: 2)
        guard command != TrojanModule.commandMux else {
            return reject(context, "\(AdapterError.notImplemented("multiplex on trojan inbound"))")
        }
        done = true
        buffer = view  // what followed the request
        if command == TrojanModule.commandConnect {
            handOffTCP(context, destination: destination)
        } else {
            handOffUDP(context, destination: destination)
        }
    }

    private func metadata(_ context: ChannelHandlerContext, network: NetworkKind, destination: Destination) -> FlowMetadata {
        let source = context.channel.remoteAddress.flatMap { Destination($0) }.map { source -> Destination in
            var out = source
            if let ip = source.ip { out.host = .ip(ip.unmapped) }
            return out
        }
        var metadata = FlowMetadata(inbound: shared.tag, inboundType: "trojan", network: network, source: source,
                                    destination: destination, flowID: flowID)
        if let listenOptions = shared.listenOptions { metadata.applyListenOptions(listenOptions) }
        return metadata
    }

    /// `[name]` (or `[index]` for a nameless user, who then sets no `user`), as Go logs it.
    private func applyUser(_ metadata: inout FlowMetadata) -> String {
        guard let user else { return "" }
        let name = shared.userNames[user]
        if name.isEmpty { return "[\(user)] " }
        metadata.user = name
        return "[\(name)] "
    }

    private func handOffTCP(_ context: ChannelHandlerContext, destination: Destination) {
        var flow = metadata(context, network: .tcp, destination: destination)
        let prefix = applyUser(&flow)
        shared.logger.info("\(prefix)inbound connection to \(destination)", flow: flowID)
        passOn(context)
        flowHandler.handleTCP(context.channel, metadata: flow, responder: nil)
    }

    private func handOffUDP(_ context: ChannelHandlerContext, destination: Destination) {
        var flow = metadata(context, network: .udp, destination: destination)
        let prefix = applyUser(&flow)
        let connection: TrojanPacketConnection
        do {
            connection = try TrojanPacketConnection(serverChannel: context.channel)
        } catch {
            return reject(context, "\(error)")
        }
        shared.logger.info("\(prefix)inbound packet connection to \(destination)", flow: flowID)
        let rest = buffer
        buffer = ByteBuffer()
        _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        flowHandler.handleUDP(connection, metadata: flow)
    }

    /// Puts a `FlowBufferHandler` after us holding what followed the request, and leaves.
    private func passOn(_ context: ChannelHandlerContext) {
        let holder = FlowBufferHandler()
        do {
            try context.pipeline.syncOperations.addHandler(holder, position: .after(self))
        } catch {
            context.close(promise: nil)
            return
        }
        let rest = buffer
        buffer = ByteBuffer()
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// Not a trojan request from a known user: to the fallback if any, else closed (Go's
    /// `Service.fallback` and the inbound's `fallbackConnection`).
    private func fallback(_ context: ChannelHandlerContext, reason: String) {
        done = true
        guard shared.hasFallback else { return reject(context, "\(reason): fallback disabled") }
        let source = sourceText(context)
        var target: Destination?
        if !shared.fallbackForALPN.isEmpty,
           let tls = try? context.pipeline.syncOperations.handler(type: TLSHandler.self),
           let alpn = tls.negotiatedProtocol {
            guard let chosen = shared.fallbackForALPN[alpn] else {
                shared.logger.debug("process connection from \(source): fallback disabled for ALPN: \(alpn)", flow: flowID)
                return close(context)
            }
            target = chosen
        }
        guard let destination = target ?? shared.fallback else {
            shared.logger.debug("process connection from \(source): fallback disabled by default", flow: flowID)
            return close(context)
        }
        // `buffer` still holds every byte read: the fallback server sees the stream from its start.
        let flow = metadata(context, network: .tcp, destination: destination)
        shared.logger.info("fallback connection to \(destination)", flow: flowID)
        passOn(context)
        flowHandler.handleTCP(context.channel, metadata: flow, responder: nil)
    }

    private func sourceText(_ context: ChannelHandlerContext) -> String {
        context.channel.remoteAddress.flatMap { Destination($0) }.map { "\($0)" } ?? "unknown"
    }

    /// One error line (Go: `process connection from <source>: <cause>`), then the stream closes.
    private func reject(_ context: ChannelHandlerContext, _ cause: String) {
        done = true
        shared.logger.error("process connection from \(sourceText(context)): \(cause)", flow: flowID)
        close(context)
    }

    private func close(_ context: ChannelHandlerContext) {
        done = true
        buffer = ByteBuffer()
        context.close(promise: nil)
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !done, let event = event as? ChannelEvent, event == .inputClosed {
            // The client ended its stream inside the request; Go names the field it was reading.
            guard user != nil else {
                shared.logger.debug("connection closed: EOF", flow: flowID)
                return close(context)
            }
            let after = buffer.readableBytes - TrojanModule.keyLength
            let field = after < 2 ? "skip crlf" : after < 3 ? "read command" : "read destination"
            return reject(context, "\(field): EOF")
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            shared.logger.debug("connection closed: EOF", flow: flowID)
        }
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard done else {
            shared.logger.debug("connection closed: \(error)", flow: flowID)
            return close(context)
        }
        context.fireErrorCaught(error)
    }
}
