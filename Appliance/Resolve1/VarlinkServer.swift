// VarlinkServer: io.systemd.Resolve on a unix stream socket, the interface glibc's nss-resolve
// (systemd 252) calls: ResolveHostname and ResolveAddress (resolved-varlink.c field names).
//
// 1. Frame: each message is one JSON object followed by a NUL; more than 128 KiB without a NUL, or
//    bytes that are not a JSON object, end the connection (systemd's varlink does the same).
// 2. Dispatch {"method": …, "parameters": {…}} in order: a connection's calls are answered one at a
//    time, as varlink requires.
// 3. Reply {"parameters": {…}} or {"error": "io.systemd.Resolve.…", "parameters": {…}}.
import Adapter
import Config
import DNS
import Glibc
package import NIOCore
import NIOPosix
import Synchronization

/// Serves io.systemd.Resolve at `path`. Start with `bind`, stop with `close`.
package final class VarlinkServer: Sendable {
    /// The socket path (`/run/systemd/resolve/io.systemd.Resolve`).
    package let path: String
    private let queries: ResolveQueries
    private let channel = Mutex<(any Channel)?>(nil)

    /// A server for `path`; nothing is bound until `bind`.
    package init(path: String, queries: ResolveQueries) {
        self.path = path
        self.queries = queries
    }

    /// Binds the socket (replacing a stale one) with mode 0666, as resolved's socket unit does.
    package func bind(group: any EventLoopGroup) async throws {
        let queries = self.queries
        let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !parent.isEmpty { mkdir(parent, 0o755) }
        let bound = try await ServerBootstrap(group: group)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(VarlinkConnectionHandler(queries: queries))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        chmod(path, 0o666)
        channel.withLock { $0 = bound }
    }

    /// Stops accepting and removes the socket file.
    package func close() async {
        let bound = channel.withLock { value -> (any Channel)? in
            defer { value = nil }
            return value
        }
        try? await bound?.close()
        unlink(path)
    }

    /// A reply's JSON text for a method call; nil means "drop the connection" (malformed request).
    static func handle(_ request: JSONValue, queries: ResolveQueries) async -> JSONValue? {
        guard case .object(let object) = request, case .string(let method)? = object["method"] else { return nil }
        let parameters: JSONObject
        switch object["parameters"] {
        case .object(let value)?: parameters = value
        case nil, .null?: parameters = JSONObject()
        default: return error("org.varlink.service.InvalidParameter", ["parameter": .string("parameters")])
        }
        switch method {
        case "io.systemd.Resolve.ResolveHostname":
            guard case .string(let name)? = parameters["name"] else { return invalid("name") }
            guard let ifindex = integer(parameters["ifindex"]), ifindex >= 0 else { return invalid("ifindex") }
            guard let family = integer(parameters["family"]) else { return invalid("family") }
            guard integer(parameters["flags"]) != nil else { return invalid("flags") }
            do {
                let result = try await queries.resolveHostname(name, family: Int32(family))
                let addresses: [JSONValue] = result.addresses.map { address in
                    var entry: [(key: String, value: JSONValue)] = []
                    if ifindex > 0 { entry.append(("ifindex", .number(String(ifindex)))) }
                    entry.append(("family", .number(String(address.isIPv4 ? AF_INET : AF_INET6))))
                    entry.append(("address", .array(address.bytes.map { .number(String($0)) })))
                    return .object(JSONObject(entry))
                }
                return reply([("addresses", .array(addresses)), ("name", .string(result.canonical)),
                              ("flags", .number(String(resolvedFromNetwork)))])
            } catch {
                return failure(error, parameter: "name")
            }
        case "io.systemd.Resolve.ResolveAddress":
            guard let ifindex = integer(parameters["ifindex"]), ifindex >= 0 else { return invalid("ifindex") }
            guard let family = integer(parameters["family"], absent: nil) else { return invalid("family") }
            guard case .array(let items)? = parameters["address"] else { return invalid("address") }
            var bytes: [UInt8] = []
            for item in items {
                guard let value = integer(item, absent: nil), (0...255).contains(value) else { return invalid("address") }
                bytes.append(UInt8(value))
            }
            guard integer(parameters["flags"]) != nil else { return invalid("flags") }
            do {
                let names = try await queries.resolveAddress(family: Int32(family), address: bytes)
                let entries: [JSONValue] = names.map { name in
                    var entry: [(key: String, value: JSONValue)] = []
                    if ifindex > 0 { entry.append(("ifindex", .number(String(ifindex)))) }
                    entry.append(("name", .string(name)))
                    return .object(JSONObject(entry))
                }
                return reply([("names", .array(entries)), ("flags", .number(String(resolvedFromNetwork)))])
            } catch {
                return failure(error, parameter: "address")
            }
        default:
            return error("org.varlink.service.MethodNotFound", ["method": .string(method)])
        }
    }

    /// An integer parameter; `absent` is what a missing one means (nil: mandatory).
    private static func integer(_ value: JSONValue?, absent: Int64? = 0) -> Int64? {
        switch value {
        case nil, .null?: return absent
        case .number(let text)?: return Int64(text)
        default: return nil
        }
    }

    private static func reply(_ fields: [(key: String, value: JSONValue)]) -> JSONValue {
        .object(JSONObject([("parameters", .object(JSONObject(fields)))]))
    }

    private static func error(_ name: String, _ parameters: [String: JSONValue] = [:]) -> JSONValue {
        .object(JSONObject([("error", .string(name)),
                            ("parameters", .object(JSONObject(parameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })))]))
    }

    private static func invalid(_ parameter: String) -> JSONValue {
        error("org.varlink.service.InvalidParameter", ["parameter": .string(parameter)])
    }

    /// resolved-varlink.c's error replies for a failed query.
    private static func failure(_ thrown: Resolve1Error, parameter: String) -> JSONValue {
        guard case .bus(let name, _) = thrown else { return error("io.systemd.Resolve.QueryAborted") }
        switch name {
        case "org.freedesktop.resolve1.NoSuchRR": return error("io.systemd.Resolve.NoSuchResourceRecord")
        case "org.freedesktop.resolve1.NoNameServers": return error("io.systemd.Resolve.NoNameServers")
        case "org.freedesktop.DBus.Error.Timeout": return error("io.systemd.Resolve.QueryTimedOut")
        case "org.freedesktop.DBus.Error.InvalidArgs": return invalid(parameter)
        default:
            let prefix = "org.freedesktop.resolve1.DnsError."
            if name.hasPrefix(prefix) {
                let rcode = rcodeNumbers[String(name.dropFirst(prefix.count))] ?? 2
                return error("io.systemd.Resolve.DNSError", ["rcode": .number(String(rcode))])
            }
            return error("io.systemd.Resolve.QueryAborted")
        }
    }

    /// RFC 1035 §4.1.1 / RFC 2136 mnemonics as DNSRcode prints them.
    private static let rcodeNumbers: [String: Int] = [
        "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5,
        "YXDOMAIN": 6, "YXRRSET": 7, "NXRRSET": 8, "NOTAUTH": 9, "NOTZONE": 10,
    ]
}

/// One varlink connection: NUL-framed JSON in, answered strictly in order. Runs on the channel's loop.
final class VarlinkConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The most a single message may take (resolved's varlink buffer is 128 KiB as well).
    static let maxMessageSize = 128 * 1024
    private let queries: ResolveQueries
    private var pending: ByteBuffer?
    private var requests: [[UInt8]] = []
    private var busy = false

    init(queries: ResolveQueries) { self.queries = queries }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if pending == nil { pending = incoming } else { pending!.writeBuffer(&incoming) }
        while let buffer = pending, let end = buffer.readableBytesView.firstIndex(of: 0) {
            let length = end - buffer.readerIndex
            requests.append(pending!.readBytes(length: length) ?? [])
            pending!.moveReaderIndex(forwardBy: 1)
        }
        if let buffer = pending, buffer.readableBytes > Self.maxMessageSize {
            context.close(promise: nil)
            return
        }
        pending?.discardReadBytes()
        next(context: context)
    }

    private func next(context: ChannelHandlerContext) {
        guard !busy, !requests.isEmpty else { return }
        let bytes = requests.removeFirst()
        guard let request = try? JSONParser.parse(bytes) else {
            context.close(promise: nil)
            return
        }
        busy = true
        let queries = self.queries
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let promise = context.eventLoop.makePromise(of: JSONValue?.self)
        promise.completeWithTask { await VarlinkServer.handle(request, queries: queries) }
        promise.futureResult.whenSuccess { reply in
            let (handler, context) = loopBound.value
            handler.busy = false
            guard let reply else {
                context.close(promise: nil)
                return
            }
            var out = context.channel.allocator.buffer(capacity: 256)
            out.writeString(reply.serialized(indent: ""))
            out.writeInteger(UInt8(0))
            context.writeAndFlush(NIOAny(out), promise: nil)
            handler.next(context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
