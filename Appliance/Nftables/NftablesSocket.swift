// Sending nftables batches: libnftnl builds each object's message, libmnl frames the batch and talks to
// NETLINK_NETFILTER. Every object message carries NLM_F_ACK; we read answers until each is acknowledged
// or an error arrives (then the kernel has rolled the whole batch back, shared/SWIFT-LINUX.md §4).
import CLinux
import CMnl
import CNftnl
import Glibc
import Synchronization

/// strerror without Foundation.
func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text)
}

/// What one batch does, in order.
package enum NftCommand: Hashable, Sendable {
    /// Creates `table` with its sets, chains and rules, replacing any table of the same name (create,
    /// delete, create: atomic, and never fails because the table is missing).
    case replaceTable(NftTable)
    /// Deletes a table if it exists (create + delete, so a missing table is not an error).
    case deleteTable(family: NftFamily, name: String)
    /// Empties a named set and fills it with `set.elements` (the set must exist).
    case replaceSetElements(family: NftFamily, table: String, set: NftSet)
}

/// A NETLINK_NETFILTER socket in the network namespace of the thread that opened it.
package final class NftablesSocket: Sendable {
    // The mnl socket is only used under `lock`.
    private nonisolated(unsafe) let socket: OpaquePointer
    private let portID: UInt32
    private let lock = Mutex<UInt32>(0)

    /// Opens and binds the socket. Throws `NftablesError`.
    package init() throws {
        guard let socket = mnl_socket_open(NETLINK_NETFILTER) else {
            throw NftablesError(operation: "open netfilter socket", errno: errno)
        }
        guard mnl_socket_bind(socket, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
            let code = errno
            mnl_socket_close(socket)
            throw NftablesError(operation: "bind netfilter socket", errno: code)
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        _ = setsockopt(mnl_socket_get_fd(socket), SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        self.socket = socket
        self.portID = mnl_socket_get_portid(socket)
    }

    deinit { mnl_socket_close(socket) }

    /// Applies `commands` as one batch. Throws `NftablesError` naming the first failed command; then
    /// nothing of the batch was applied.
    package func apply(_ commands: [NftCommand], operation: String) throws {
        try lock.withLock { sequence in
            var builder = BatchBuilder(startSequence: sequence &+ 1)
            for command in commands { builder.add(command) }
            let batch = builder.finish()
            sequence = builder.nextSequence
            try send(batch, operation: operation)
        }
    }

    private func send(_ batch: BatchBuilder.Batch, operation: String) throws {
        let sent = batch.bytes.withUnsafeBytes { mnl_socket_sendto(socket, $0.baseAddress, $0.count) }
        guard sent >= 0 else { throw NftablesError(operation: operation, errno: errno) }
        var pending = Set(batch.acknowledged.keys)
        var buffer = [UInt8](repeating: 0, count: 65536)
        var firstError: NftablesError?
        while !pending.isEmpty {
            // After an error the kernel may not answer the rest: stop waiting soon.
            var descriptor = pollfd(fd: mnl_socket_get_fd(socket), events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, firstError == nil ? 5000 : 200)
            if ready <= 0 { break }
            let count = mnl_socket_recvfrom(socket, &buffer, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                break
            }
            var offset = 0
            while count - offset >= 16 {
                let length = Int(buffer.loadUInt32(at: offset))
                guard length >= 16, offset + length <= count else { break }
                let type = buffer.loadUInt16(at: offset + 4)
                let sequence = buffer.loadUInt32(at: offset + 8)
                if type == 2 /* NLMSG_ERROR */ && length >= 20 {
                    let code = -Int32(bitPattern: buffer.loadUInt32(at: offset + 16))
                    pending.remove(sequence)
                    if code != 0 && firstError == nil {
                        firstError = NftablesError(operation: operation, errno: code, failedCommand: batch.acknowledged[sequence])
                    }
                }
                offset += (length + 3) & ~3
            }
        }
        if let firstError { throw firstError }
        if !pending.isEmpty { throw NftablesError(operation: operation, errno: ETIMEDOUT) }
    }
}

extension [UInt8] {
    func loadUInt16(at offset: Int) -> UInt16 { UInt16(self[offset]) | UInt16(self[offset + 1]) << 8 }
    func loadUInt32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) | UInt32(self[offset + 1]) << 8 | UInt32(self[offset + 2]) << 16 | UInt32(self[offset + 3]) << 24
    }
}

/// Builds one batch: BEGIN, object messages, END. Each object message is built by libnftnl into its own
/// buffer (nftnl_nlmsg_build_hdr + *_nlmsg_build_payload) and appended, so the batch grows as needed.
struct BatchBuilder {
    struct Batch {
        var bytes: [UInt8]
        /// Sequence → a description of the command, for every message that asked for an ACK.
        var acknowledged: [UInt32: String]
    }

    private var bytes: [UInt8] = []
    private var acknowledged: [UInt32: String] = [:]
    private(set) var nextSequence: UInt32
    private var nextSetID: UInt32 = 1

    init(startSequence: UInt32) {
        nextSequence = startSequence
        appendMessage { buffer, sequence in nftnl_batch_begin(buffer, sequence) }
    }

    mutating func finish() -> Batch {
        appendMessage { buffer, sequence in nftnl_batch_end(buffer, sequence) }
        return Batch(bytes: bytes, acknowledged: acknowledged)
    }

    /// Runs `build` over a scratch buffer big enough for one message and appends the result.
    private mutating func appendMessage(ack description: String? = nil, capacity: Int = 8192,
                                        _ build: (UnsafeMutableRawPointer, UInt32) -> UnsafeMutablePointer<nlmsghdr>?) {
        let sequence = nextSequence
        nextSequence &+= 1
        var scratch = [UInt8](repeating: 0, count: capacity)
        let length = scratch.withUnsafeMutableBytes { raw -> Int in
            guard let header = build(raw.baseAddress!, sequence) else { return 0 }
            return Int(header.pointee.nlmsg_len)
        }
        bytes += scratch[0..<((length + 3) & ~3)]
        if let description { acknowledged[sequence] = description }
    }

    mutating func add(_ command: NftCommand) {
        switch command {
        case .replaceTable(let table):
            addTable(family: table.family, name: table.name)
            deleteTable(family: table.family, name: table.name)
            addTable(family: table.family, name: table.name)
            for set in table.sets { addSet(set, family: table.family, table: table.name) }
            for chain in table.chains {
                addChain(chain, family: table.family, table: table.name)
            }
            for chain in table.chains {
                for (index, rule) in chain.rules.enumerated() {
                    addRule(rule, family: table.family, table: table.name, chain: chain.name, index: index)
                }
            }
        case .deleteTable(let family, let name):
            addTable(family: family, name: name)
            deleteTable(family: family, name: name)
        case .replaceSetElements(let family, let table, let set):
            flushSet(set, family: family, table: table)
            if !set.elements.isEmpty { addElements(set, family: family, table: table, setID: nil) }
        }
    }

    private static let createAck = UInt16(NLM_F_CREATE | NLM_F_ACK)

    private mutating func addTable(family: NftFamily, name: String) {
        appendMessage(ack: "add table \(name)") { buffer, sequence in
            let table = nftnl_table_alloc()
            defer { nftnl_table_free(table) }
            nftnl_table_set_str(table, UInt16(NFTNL_TABLE_NAME.rawValue), name)
            nftnl_table_set_u32(table, UInt16(NFTNL_TABLE_FAMILY.rawValue), UInt32(family.rawValue))
            let header = nftnl_nlmsg_build_hdr(buffer.assumingMemoryBound(to: CChar.self), UInt16(NFT_MSG_NEWTABLE.rawValue),
                                               UInt16(family.rawValue), BatchBuilder.createAck, sequence)
            nftnl_table_nlmsg_build_payload(header, table)
            return header
        }
    }

    private mutating func deleteTable(family: NftFamily, name: String) {
        appendMessage(ack: "delete table \(name)") { buffer, sequence in
            let table = nftnl_table_alloc()
            defer { nftnl_table_free(table) }
            nftnl_table_set_str(table, UInt16(NFTNL_TABLE_NAME.rawValue), name)
            nftnl_table_set_u32(table, UInt16(NFTNL_TABLE_FAMILY.rawValue), UInt32(family.rawValue))
            let header = nftnl_nlmsg_build_hdr(buffer.assumingMemoryBound(to: CChar.self), UInt16(NFT_MSG_DELTABLE.rawValue),
                                               UInt16(family.rawValue), UInt16(NLM_F_ACK), sequence)
            nftnl_table_nlmsg_build_payload(header, table)
            return header
        }
    }

    private mutating func addChain(_ chain: NftChain, family: NftFamily, table: String) {
        appendMessage(ack: "add chain \(table) \(chain.name)") { buffer, sequence in
            let object = nftnl_chain_alloc()
            defer { nftnl_chain_free(object) }
            nftnl_chain_set_str(object, UInt16(NFTNL_CHAIN_TABLE.rawValue), table)
            nftnl_chain_set_str(object, UInt16(NFTNL_CHAIN_NAME.rawValue), chain.name)
            nftnl_chain_set_u32(object, UInt16(NFTNL_CHAIN_FAMILY.rawValue), UInt32(family.rawValue))
            if let hook = chain.hook {
                nftnl_chain_set_str(object, UInt16(NFTNL_CHAIN_TYPE.rawValue), hook.type.rawValue)
                nftnl_chain_set_u32(object, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue), hook.hook.rawValue)
                nftnl_chain_set_s32(object, UInt16(NFTNL_CHAIN_PRIO.rawValue), hook.priority)
                nftnl_chain_set_u32(object, UInt16(NFTNL_CHAIN_POLICY.rawValue), 1)  // NF_ACCEPT
            }
            let header = nftnl_nlmsg_build_hdr(buffer.assumingMemoryBound(to: CChar.self), UInt16(NFT_MSG_NEWCHAIN.rawValue),
                                               UInt16(family.rawValue), BatchBuilder.createAck, sequence)
            nftnl_chain_nlmsg_build_payload(header, object)
            return header
        }
    }

    /// Allocates a libnftnl set object for `set` with `id`; the caller frees it.
    private static func makeSet(_ set: NftSet, family: NftFamily, table: String, id: UInt32?) -> OpaquePointer {
        let object = nftnl_set_alloc()!
        nftnl_set_set_str(object, UInt16(NFTNL_SET_TABLE.rawValue), table)
        nftnl_set_set_str(object, UInt16(NFTNL_SET_NAME.rawValue), set.name)
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_FAMILY.rawValue), UInt32(family.rawValue))
        if let id { nftnl_set_set_u32(object, UInt16(NFTNL_SET_ID.rawValue), id) }
        var flags: UInt32 = 0
        if set.isAnonymous { flags |= UInt32(NFT_SET_ANONYMOUS.rawValue | NFT_SET_CONSTANT.rawValue) }
        if set.isConstant { flags |= UInt32(NFT_SET_CONSTANT.rawValue) }
        if set.isInterval { flags |= UInt32(NFT_SET_INTERVAL.rawValue) }
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_FLAGS.rawValue), flags)
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_KEY_TYPE.rawValue), set.keyType.typeNumber)
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_KEY_LEN.rawValue), set.keyType.length)
        for element in set.elements {
            let item = nftnl_set_elem_alloc()
            element.key.withUnsafeBytes { key in
                _ = nftnl_set_elem_set(item, UInt16(NFTNL_SET_ELEM_KEY), key.baseAddress, UInt32(key.count))
            }
            if element.isIntervalEnd {
                nftnl_set_elem_set_u32(item, UInt16(NFTNL_SET_ELEM_FLAGS), UInt32(NFT_SET_ELEM_INTERVAL_END.rawValue))
            }
            nftnl_set_elem_add(object, item)
        }
        return object
    }

    /// NEWSET (+ NEWSETELEM). Returns the set's batch id (rules refer to anonymous sets by it).
    @discardableResult
    private mutating func addSet(_ set: NftSet, family: NftFamily, table: String) -> UInt32 {
        let id = nextSetID
        nextSetID += 1
        appendMessage(ack: "add set \(table) \(set.name)") { buffer, sequence in
            let object = BatchBuilder.makeSet(set, family: family, table: table, id: id)
            defer { nftnl_set_free(object) }
            let header = nftnl_nlmsg_build_hdr(buffer.assumingMemoryBound(to: CChar.self), UInt16(NFT_MSG_NEWSET.rawValue),
                                               UInt16(family.rawValue), BatchBuilder.createAck, sequence)
            nftnl_set_nlmsg_build_payload(header, object)
            return header
        }
        if !set.elements.isEmpty { addElements(set, family: family, table: table, setID: id) }
        return id
    }

    private mutating func addElements(_ set: NftSet, family: NftFamily, table: String, setID: UInt32?) {
        // Elements of one message must fit a netlink message: 1000 per message, as sing-box chunks them.
        for start in stride(from: 0, to: set.elements.count, by: 1000) {
            var chunk = set
            chunk.elements = Array(set.elements[start..<min(start + 1000, set.elements.count)])
            let capacity = 4096 + chunk.elements.count * 64
            appendMessage(ack: "add elements to \(table) \(set.name)", capacity: capacity) { buffer, sequence in
                let object = BatchBuilder.makeSet(chunk, family: family, table: table, id: setID)
                defer { nftnl_set_free(object) }
                let header = nftnl_nlmsg_build_hdr(buffer.assumingMemoryBound(to: CChar.self), UInt16(NFT_MSG_NEWSETELEM.rawValue),
                                                   UInt16(family.rawValue), BatchBuilder.createAck, sequence)
                nftnl_set_elems_nlmsg_build_payload(header, object)
                return header
            }
        }
    }

    private mutating func flushSet(_ set: NftSet, family: NftFamily, table: String) {
        appendMessage(ack: "flush set \(table) \(set.name)") { buffer, sequence in
            var empty = set
            empty.elements = []
            let object = BatchBuilder.makeSet(empty, family: family, table: table, id: nil)
            defer { nftnl_set_free(object) }
            // DELSETELEM without elements flushes the set.
            let header = nftnl_nlmsg_build_hdr(buffer.assumingMemoryBound(to: CChar.self), UInt16(NFT_MSG_DELSETELEM.rawValue),
                                               UInt16(family.rawValue), UInt16(NLM_F_ACK), sequence)
            nftnl_set_elems_nlmsg_build_payload(header, object)
            return header
        }
    }

    private mutating func addRule(_ rule: NftRule, family: NftFamily, table: String, chain: String, index: Int) {
        // Anonymous sets first: the rule names them `__set%d` and points at them by batch id.
        var anonymousIDs: [UInt32] = []
        for set in rule.anonymousSets { anonymousIDs.append(addSet(set, family: family, table: table)) }
        appendMessage(ack: "add rule \(table) \(chain) #\(index)") { buffer, sequence in
            let object = nftnl_rule_alloc()
            defer { nftnl_rule_free(object) }
            nftnl_rule_set_str(object, UInt16(NFTNL_RULE_TABLE.rawValue), table)
            nftnl_rule_set_str(object, UInt16(NFTNL_RULE_CHAIN.rawValue), chain)
            nftnl_rule_set_u32(object, UInt16(NFTNL_RULE_FAMILY.rawValue), UInt32(family.rawValue))
            for expression in rule.expressions {
                nftnl_rule_add_expr(object, BatchBuilder.makeExpression(expression, anonymousIDs: anonymousIDs))
            }
            let header = nftnl_nlmsg_build_hdr(buffer.assumingMemoryBound(to: CChar.self), UInt16(NFT_MSG_NEWRULE.rawValue),
                                               UInt16(family.rawValue), UInt16(NLM_F_APPEND | NLM_F_CREATE | NLM_F_ACK), sequence)
            nftnl_rule_nlmsg_build_payload(header, object)
            return header
        }
    }

    /// One libnftnl expression; ownership passes to the rule.
    private static func makeExpression(_ expression: NftExpression, anonymousIDs: [UInt32]) -> OpaquePointer {
        func new(_ name: String) -> OpaquePointer { nftnl_expr_alloc(name)! }
        func set(_ object: OpaquePointer, _ attribute: Int, _ value: UInt32) { nftnl_expr_set_u32(object, UInt16(attribute), value) }
        func data(_ object: OpaquePointer, _ attribute: Int, _ bytes: [UInt8]) {
            bytes.withUnsafeBytes { _ = nftnl_expr_set(object, UInt16(attribute), $0.baseAddress, UInt32($0.count)) }
        }
        switch expression {
        case .meta(let key, let register):
            let object = new("meta")
            set(object, NFTNL_EXPR_META_KEY, key.rawValue)
            set(object, NFTNL_EXPR_META_DREG, register)
            return object
        case .setMeta(let key, let register):
            let object = new("meta")
            set(object, NFTNL_EXPR_META_KEY, key.rawValue)
            set(object, NFTNL_EXPR_META_SREG, register)
            return object
        case .ctMark(let register):
            let object = new("ct")
            set(object, NFTNL_EXPR_CT_KEY, UInt32(NFT_CT_MARK.rawValue))
            set(object, NFTNL_EXPR_CT_DREG, register)
            return object
        case .setCTMark(let register):
            let object = new("ct")
            set(object, NFTNL_EXPR_CT_KEY, UInt32(NFT_CT_MARK.rawValue))
            set(object, NFTNL_EXPR_CT_SREG, register)
            return object
        case .cmp(let register, let equal, let bytes):
            let object = new("cmp")
            set(object, NFTNL_EXPR_CMP_SREG, register)
            set(object, NFTNL_EXPR_CMP_OP, UInt32(equal ? NFT_CMP_EQ.rawValue : NFT_CMP_NEQ.rawValue))
            data(object, NFTNL_EXPR_CMP_DATA, bytes)
            return object
        case .payload(let base, let offset, let length, let register):
            let object = new("payload")
            set(object, NFTNL_EXPR_PAYLOAD_DREG, register)
            set(object, NFTNL_EXPR_PAYLOAD_BASE, base.rawValue)
            set(object, NFTNL_EXPR_PAYLOAD_OFFSET, offset)
            set(object, NFTNL_EXPR_PAYLOAD_LEN, length)
            return object
        case .lookup(let name, let register, let invert):
            let object = new("lookup")
            set(object, NFTNL_EXPR_LOOKUP_SREG, register)
            if name.hasPrefix("#"), let index = Int(name.dropFirst()), anonymousIDs.indices.contains(index) {
                nftnl_expr_set_str(object, UInt16(NFTNL_EXPR_LOOKUP_SET), "__set%d")
                set(object, NFTNL_EXPR_LOOKUP_SET_ID, anonymousIDs[index])
            } else {
                nftnl_expr_set_str(object, UInt16(NFTNL_EXPR_LOOKUP_SET), name)
            }
            if invert { set(object, NFTNL_EXPR_LOOKUP_FLAGS, UInt32(NFT_LOOKUP_F_INV.rawValue)) }
            return object
        case .immediate(let register, let bytes):
            let object = new("immediate")
            set(object, NFTNL_EXPR_IMM_DREG, register)
            data(object, NFTNL_EXPR_IMM_DATA, bytes)
            return object
        case .hostToNetwork(let register, let length, let size):
            let object = new("byteorder")
            set(object, NFTNL_EXPR_BYTEORDER_SREG, register)
            set(object, NFTNL_EXPR_BYTEORDER_DREG, register)
            set(object, NFTNL_EXPR_BYTEORDER_OP, UInt32(NFT_BYTEORDER_HTON.rawValue))
            set(object, NFTNL_EXPR_BYTEORDER_LEN, length)
            set(object, NFTNL_EXPR_BYTEORDER_SIZE, size)
            return object
        case .counter:
            return new("counter")
        case .redirect(let register):
            let object = new("redir")
            set(object, NFTNL_EXPR_REDIR_REG_PROTO_MIN, register)
            set(object, NFTNL_EXPR_REDIR_FLAGS, 2)  // NF_NAT_RANGE_PROTO_SPECIFIED
            return object
        case .dnat(let family, let register):
            let object = new("nat")
            set(object, NFTNL_EXPR_NAT_TYPE, UInt32(NFT_NAT_DNAT.rawValue))
            set(object, NFTNL_EXPR_NAT_FAMILY, UInt32(family.rawValue))
            set(object, NFTNL_EXPR_NAT_REG_ADDR_MIN, register)
            return object
        case .tproxy(let register):
            let object = new("tproxy")
            set(object, NFTNL_EXPR_TPROXY_FAMILY, 0)  // NFPROTO_UNSPEC: both families in an inet table
            set(object, NFTNL_EXPR_TPROXY_REG_PORT, register)
            return object
        case .reject:
            let object = new("reject")
            set(object, NFTNL_EXPR_REJECT_TYPE, UInt32(NFT_REJECT_ICMP_UNREACH.rawValue))
            set(object, NFTNL_EXPR_REJECT_CODE, 0)
            return object
        case .verdict(let verdict):
            let object = new("immediate")
            set(object, NFTNL_EXPR_IMM_DREG, UInt32(NFT_REG_VERDICT.rawValue))
            set(object, NFTNL_EXPR_IMM_VERDICT, UInt32(bitPattern: verdict.code))
            switch verdict {
            case .jump(let chain), .goto(let chain): nftnl_expr_set_str(object, UInt16(NFTNL_EXPR_IMM_CHAIN), chain)
            default: break
            }
            return object
        }
    }
}
