// One rtnetlink socket (libmnl): numbered requests that wait for their ACK, and dumps that read until
// NLMSG_DONE. A Mutex serialises requests, so one socket can be shared by the control plane's tasks.
import CMnl
import Glibc
import Synchronization

/// A NETLINK_ROUTE socket in the network namespace of the thread that opened it.
///
/// Blocking: every call waits for the kernel's answer (at most `timeoutSeconds`). Use from the control
/// plane, never from an event loop.
package final class NetlinkSocket: Sendable {
    private struct State: ~Copyable {
        var sequence: UInt32
        var receiveBuffer: [UInt8]
    }

    // The mnl socket is only touched under `state`'s lock or read-only (fd, port).
    private nonisolated(unsafe) let socket: OpaquePointer
    private let portID: UInt32
    private let state: Mutex<State>

    /// Opens and binds a socket, optionally joined to RTMGRP_* `groups` (the monitor uses them).
    /// Throws `NetlinkError` with the socket call's errno.
    package init(groups: UInt32 = 0, timeoutSeconds: Int = 5) throws {
        guard let socket = mnl_socket_open(NETLINK_ROUTE) else {
            throw NetlinkError(operation: "open netlink socket", errno: Glibc.errno)
        }
        guard mnl_socket_bind(socket, groups, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
            let code = Glibc.errno
            mnl_socket_close(socket)
            throw NetlinkError(operation: "bind netlink socket", errno: code)
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        _ = setsockopt(mnl_socket_get_fd(socket), SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // Dumps of big routing tables arrive faster than we read; a large buffer avoids ENOBUFS.
        var size: CInt = 1 << 20
        _ = setsockopt(mnl_socket_get_fd(socket), SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        self.socket = socket
        self.portID = mnl_socket_get_portid(socket)
        self.state = Mutex(State(sequence: UInt32(truncatingIfNeeded: time(nil)), receiveBuffer: [UInt8](repeating: 0, count: 65536)))
    }

    deinit { mnl_socket_close(socket) }

    /// The socket's file descriptor (for poll in the monitor).
    package var fileDescriptor: CInt { mnl_socket_get_fd(socket) }

    /// Sends `request` with NLM_F_ACK and waits for its answer. Throws the kernel's errno as
    /// `NetlinkError(operation:)`.
    func execute(_ request: NetlinkRequest, operation: @autoclosure () -> String) throws {
        var request = request
        try state.withLock { state in
            state.sequence &+= 1
            let sequence = state.sequence
            request.setSequence(sequence, flags: NetlinkConstant.ackFlag)
            try send(request.bytes, operation: operation)
            while true {
                let messages = try receive(into: &state.receiveBuffer, operation: operation)
                for message in messages where message.sequence == sequence {
                    if message.type == NetlinkConstant.error {
                        let code = NetlinkSocket.errorCode(message)
                        if code == 0 { return }
                        throw NetlinkError(operation: operation(), errno: code)
                    }
                }
            }
        }
    }

    /// Sends a dump request and returns every answer message until NLMSG_DONE.
    func dump(_ request: NetlinkRequest, operation: @autoclosure () -> String) throws -> [NetlinkMessage] {
        var request = request
        return try state.withLock { state in
            state.sequence &+= 1
            let sequence = state.sequence
            request.setSequence(sequence, flags: NetlinkConstant.dumpFlag)
            try send(request.bytes, operation: operation)
            var result: [NetlinkMessage] = []
            while true {
                let messages = try receive(into: &state.receiveBuffer, operation: operation)
                for message in messages where message.sequence == sequence {
                    switch message.type {
                    case NetlinkConstant.done: return result
                    case NetlinkConstant.error:
                        let code = NetlinkSocket.errorCode(message)
                        if code != 0 { throw NetlinkError(operation: operation(), errno: code) }
                    default:
                        // Copy out of the shared receive buffer before it is reused.
                        var owned = message
                        owned.payload = ArraySlice(Array(message.payload))
                        result.append(owned)
                    }
                }
            }
        }
    }

    /// Reads one datagram of notifications (the monitor's socket); returns [] on EAGAIN/timeout.
    func receiveNotifications() throws -> [NetlinkMessage] {
        try state.withLock { state in
            let count = mnl_socket_recvfrom(socket, &state.receiveBuffer, state.receiveBuffer.count)
            if count < 0 {
                let code = Glibc.errno
                if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return [] }
                throw NetlinkError(operation: "receive netlink notifications", errno: code)
            }
            return NetlinkMessage.split(state.receiveBuffer[0..<count]).map { message in
                var owned = message
                owned.payload = ArraySlice(Array(message.payload))
                return owned
            }
        }
    }

    private func send(_ bytes: [UInt8], operation: () -> String) throws {
        let sent = bytes.withUnsafeBytes { mnl_socket_sendto(socket, $0.baseAddress, $0.count) }
        if sent < 0 { throw NetlinkError(operation: operation(), errno: Glibc.errno) }
    }

    private func receive(into buffer: inout [UInt8], operation: () -> String) throws -> [NetlinkMessage] {
        while true {
            let count = mnl_socket_recvfrom(socket, &buffer, buffer.count)
            if count < 0 {
                let code = Glibc.errno
                if code == EINTR { continue }
                // EAGAIN here is SO_RCVTIMEO expiring: the kernel never answered.
                throw NetlinkError(operation: operation(), errno: code == EAGAIN ? ETIMEDOUT : code)
            }
            return NetlinkMessage.split(buffer[0..<count])
        }
    }

    /// The errno in an NLMSG_ERROR message (0 is an ACK).
    private static func errorCode(_ message: NetlinkMessage) -> Int32 {
        guard message.payload.count >= 4 else { return EPROTO }
        return -Int32(bitPattern: message.payload.loadUInt32(at: message.payload.startIndex))
    }

    /// Our port id, so the monitor can tell our own requests' echoes apart (not needed by rtnetlink,
    /// kept for diagnostics).
    package var port: UInt32 { portID }
}

extension NetlinkRequest {
    /// Sets nlmsg_seq and ORs `flags` into nlmsg_flags.
    mutating func setSequence(_ sequence: UInt32, flags: UInt16) {
        var bytes = buffer
        let oldFlags = UInt16(bytes[6]) | UInt16(bytes[7]) << 8
        let newFlags = oldFlags | flags
        bytes[6] = UInt8(newFlags & 0xFF)
        bytes[7] = UInt8(newFlags >> 8)
        withUnsafeBytes(of: sequence.littleEndian) { bytes.replaceSubrange(8..<12, with: $0) }
        self.replaceBuffer(bytes)
    }
}
