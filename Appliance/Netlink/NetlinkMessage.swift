// Building and reading netlink messages: the 16-byte nlmsghdr, a fixed family header (ifinfomsg,
// ifaddrmsg, rtmsg, fib_rule_hdr) and NLA/rtattr attributes, 4-byte aligned (RFC 3549 §2.2, netlink(7)).
// Hosts are little-endian x86/arm: netlink integers are host order, addresses network order.

/// A netlink request under construction. The header's length is fixed up by `bytes`.
struct NetlinkRequest {
    private(set) var buffer: [UInt8] = []
    private var nestStack: [Int] = []

    /// Starts a message of `type` with `flags` (NLM_F_REQUEST is added) and a zeroed family header.
    init(type: UInt16, flags: UInt16, familyHeaderSize: Int) {
        buffer.reserveCapacity(256)
        append(UInt32(0))  // nlmsg_len, fixed in `bytes`
        append(type)
        append(flags | NetlinkConstant.requestFlag)
        append(UInt32(0))  // nlmsg_seq, set by the socket
        append(UInt32(0))  // nlmsg_pid: the kernel answers to our port
        buffer += [UInt8](repeating: 0, count: familyHeaderSize)
    }

    /// The message with its length set.
    var bytes: [UInt8] {
        var copy = buffer
        let length = UInt32(copy.count)
        withUnsafeBytes(of: length.littleEndian) { copy.replaceSubrange(0..<4, with: $0) }
        return copy
    }

    /// Writes `value` into the family header at `offset` (host order).
    mutating func setHeader<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (index, byte) in raw.enumerated() { buffer[16 + offset + index] = byte }
        }
    }

    private mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { buffer += $0 }
    }

    private mutating func pad() {
        while buffer.count % 4 != 0 { buffer.append(0) }
    }

    /// Appends attribute `type` with a raw payload.
    mutating func attribute(_ type: UInt16, _ payload: [UInt8]) {
        append(UInt16(4 + payload.count))
        append(type)
        buffer += payload
        pad()
    }

    /// Appends a host-order integer attribute.
    mutating func attribute<T: FixedWidthInteger>(_ type: UInt16, integer: T) {
        withUnsafeBytes(of: integer.littleEndian) { attribute(type, Array($0)) }
    }

    /// Appends a NUL-terminated string attribute.
    mutating func attribute(_ type: UInt16, string: String) {
        attribute(type, Array(string.utf8) + [0])
    }

    /// Opens a nested attribute (NLA_F_NESTED is not required by rtnetlink); close with `endNest`.
    mutating func beginNest(_ type: UInt16) {
        nestStack.append(buffer.count)
        append(UInt16(0))
        append(type)
    }

    /// Closes the innermost nest, fixing its length.
    mutating func endNest() {
        guard let start = nestStack.popLast() else { preconditionFailure("endNest without beginNest") }
        let length = UInt16(buffer.count - start)
        withUnsafeBytes(of: length.littleEndian) { buffer.replaceSubrange(start..<(start + 2), with: $0) }
    }

    /// Replaces the whole buffer (the socket patches sequence and flags).
    mutating func replaceBuffer(_ bytes: [UInt8]) { buffer = bytes }

    /// Appends raw bytes (a nested family header inside a nest).
    mutating func raw(_ bytes: [UInt8]) {
        buffer += bytes
        pad()
    }
}

/// One received netlink message: type, flags, and the bytes after the nlmsghdr.
struct NetlinkMessage {
    var type: UInt16
    var flags: UInt16
    var sequence: UInt32
    var payload: ArraySlice<UInt8>

    /// Splits a datagram into messages; stops at the first malformed length (never traps).
    static func split(_ datagram: ArraySlice<UInt8>) -> [NetlinkMessage] {
        var messages: [NetlinkMessage] = []
        var offset = datagram.startIndex
        while datagram.endIndex - offset >= 16 {
            let length = Int(datagram.loadUInt32(at: offset))
            guard length >= 16, offset + length <= datagram.endIndex else { break }
            messages.append(NetlinkMessage(
                type: datagram.loadUInt16(at: offset + 4), flags: datagram.loadUInt16(at: offset + 6),
                sequence: datagram.loadUInt32(at: offset + 8),
                payload: datagram[(offset + 16)..<(offset + length)]))
            offset += (length + 3) & ~3
        }
        return messages
    }

    /// Attributes after a family header of `headerSize` bytes, by type (the last one wins).
    func attributes(afterHeader headerSize: Int) -> NetlinkAttributes {
        guard payload.count >= headerSize else { return NetlinkAttributes(payload[payload.endIndex...]) }
        return NetlinkAttributes(payload[(payload.startIndex + headerSize)...])
    }
}

/// Attributes of one message (or one nest), parsed without copying.
struct NetlinkAttributes {
    private(set) var values: [UInt16: ArraySlice<UInt8>] = [:]

    init(_ bytes: ArraySlice<UInt8>) {
        var offset = bytes.startIndex
        while bytes.endIndex - offset >= 4 {
            let length = Int(bytes.loadUInt16(at: offset))
            let type = bytes.loadUInt16(at: offset + 2) & 0x3FFF  // strip NLA_F_NESTED / NLA_F_NET_BYTEORDER
            guard length >= 4, offset + length <= bytes.endIndex else { break }
            values[type] = bytes[(offset + 4)..<(offset + length)]
            offset += (length + 3) & ~3
        }
    }

    subscript(_ type: UInt16) -> ArraySlice<UInt8>? { values[type] }

    func uint32(_ type: UInt16) -> UInt32? {
        guard let value = values[type], value.count >= 4 else { return nil }
        return value.loadUInt32(at: value.startIndex)
    }

    func string(_ type: UInt16) -> String? {
        guard let value = values[type] else { return nil }
        let bytes = value.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension ArraySlice<UInt8> {
    /// A host-order (little-endian) load; the caller has checked the bounds.
    func loadUInt16(at offset: Int) -> UInt16 { UInt16(self[offset]) | UInt16(self[offset + 1]) << 8 }
    func loadUInt32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) | UInt32(self[offset + 1]) << 8 | UInt32(self[offset + 2]) << 16 | UInt32(self[offset + 3]) << 24
    }
}

/// The rtnetlink numbers we use (linux/netlink.h, rtnetlink.h, fib_rules.h, if_link.h, if_addr.h).
/// Stable kernel ABI; spelled here so Swift needs no enum-to-integer conversions at every use.
enum NetlinkConstant {
    static let requestFlag: UInt16 = 0x1      // NLM_F_REQUEST
    static let multiFlag: UInt16 = 0x2        // NLM_F_MULTI
    static let ackFlag: UInt16 = 0x4          // NLM_F_ACK
    static let dumpFlag: UInt16 = 0x300       // NLM_F_ROOT | NLM_F_MATCH
    static let replaceFlag: UInt16 = 0x100    // NLM_F_REPLACE
    static let excludeFlag: UInt16 = 0x200    // NLM_F_EXCL
    static let createFlag: UInt16 = 0x400     // NLM_F_CREATE

    static let error: UInt16 = 2              // NLMSG_ERROR
    static let done: UInt16 = 3               // NLMSG_DONE

    static let newLink: UInt16 = 16, deleteLink: UInt16 = 17, getLink: UInt16 = 18
    static let newAddress: UInt16 = 20, deleteAddress: UInt16 = 21, getAddress: UInt16 = 22
    static let newRoute: UInt16 = 24, deleteRoute: UInt16 = 25, getRoute: UInt16 = 26
    static let newRule: UInt16 = 32, deleteRule: UInt16 = 33, getRule: UInt16 = 34

    static let familyUnspecified: UInt8 = 0, familyIPv4: UInt8 = 2, familyIPv6: UInt8 = 10

    // ifinfomsg (16 bytes) and IFLA_*
    static let linkHeaderSize = 16
    static let linkAddress: UInt16 = 1, linkName: UInt16 = 3, linkMTU: UInt16 = 4, linkOperState: UInt16 = 16
    static let linkInfo: UInt16 = 18, linkInfoKind: UInt16 = 1, linkInfoData: UInt16 = 2
    static let vethInfoPeer: UInt16 = 1

    // ifaddrmsg (8 bytes) and IFA_*
    static let addressHeaderSize = 8
    static let addressAddress: UInt16 = 1, addressLocal: UInt16 = 2, addressFlags: UInt16 = 8

    // rtmsg (12 bytes) and RTA_*
    static let routeHeaderSize = 12
    static let routeDestination: UInt16 = 1, routeSource: UInt16 = 2, routeOutput: UInt16 = 4
    static let routeGateway: UInt16 = 5, routePriority: UInt16 = 6, routePreferredSource: UInt16 = 7
    static let routeTable: UInt16 = 15
    static let routeProtocolBoot: UInt8 = 3, routeProtocolStatic: UInt8 = 4
    static let routeScopeUniverse: UInt8 = 0, routeScopeLink: UInt8 = 253
    static let routeTypeUnicast: UInt8 = 1, routeTypeUnreachable: UInt8 = 7
    static let tableUnspecified: UInt8 = 0, tableMain: UInt32 = 254

    // fib_rule_hdr (12 bytes) and FRA_*
    static let ruleHeaderSize = 12
    static let ruleDestination: UInt16 = 1, ruleSource: UInt16 = 2, ruleInputName: UInt16 = 3
    static let ruleGoto: UInt16 = 4, rulePriority: UInt16 = 6, ruleMark: UInt16 = 10
    static let ruleSuppressPrefixLength: UInt16 = 14, ruleTable: UInt16 = 15, ruleMask: UInt16 = 16
    static let ruleOutputName: UInt16 = 17, ruleUIDRange: UInt16 = 20, ruleDestinationPortRange: UInt16 = 24
    static let ruleInvert: UInt32 = 0x2       // FIB_RULE_INVERT

    // RTMGRP_* multicast group bits for the monitor.
    static let groupLink: UInt32 = 0x1, groupIPv4Address: UInt32 = 0x10, groupIPv4Route: UInt32 = 0x40
    static let groupIPv6Address: UInt32 = 0x100, groupIPv6Route: UInt32 = 0x400

    // net/if.h flags
    static let interfaceUp: UInt32 = 0x1, interfaceLoopback: UInt32 = 0x8, interfaceRunning: UInt32 = 0x40
    static let interfaceLowerUp: UInt32 = 0x10000
}
