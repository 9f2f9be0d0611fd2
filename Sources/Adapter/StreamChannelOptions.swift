// The option plumbing shared by our stream-as-Channel classes (a sing-mux or h2mux stream, an anytls
// stream, a tuic stream, a grpc/http stream): each keeps its options in `setOption0`/`getOption0`
// on its loop, and this gives it NIO's asynchronous `setOption`/`getOption` and `syncOptions`.
// (NetstackFlowChannel has the same shape but sits below Adapter in the module map.)
package import NIOCore

/// A channel whose options live on its event loop.
package protocol StreamChannelOptions: Channel {
    /// Applies `option`; called on the loop.
    func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws
    /// Reads `option`; called on the loop.
    func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value
}

extension StreamChannelOptions {
    package func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        if eventLoop.inEventLoop {
            return eventLoop.makeCompletedFuture { try setOption0(option, value: value) }
        }
        return eventLoop.submit { try self.setOption0(option, value: value) }
    }

    package func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        if eventLoop.inEventLoop {
            return eventLoop.makeCompletedFuture { try getOption0(option) }
        }
        return eventLoop.submit { try self.getOption0(option) }
    }

    package var syncOptions: (any NIOSynchronousChannelOptions)? { StreamSynchronousOptions(channel: self) }
}

/// `syncOptions` of a `StreamChannelOptions` channel: the same options, applied at once, on the loop only.
package struct StreamSynchronousOptions<Base: StreamChannelOptions>: NIOSynchronousChannelOptions {
    let channel: Base

    package func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        channel.eventLoop.preconditionInEventLoop()
        try channel.setOption0(option, value: value)
    }

    package func getOption<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        channel.eventLoop.preconditionInEventLoop()
        return try channel.getOption0(option)
    }
}
