package import NetstackWire
import NetstackTCP

// ICMP: echo replies for own addresses (built in place from the request), and the errors a gateway
// sends — port/host unreachable, administratively prohibited, packet too big, time exceeded — under
// RFC 1122 §3.2.2 / RFC 4443 §2.4 rules (never about an error, a non-first fragment, a multicast or
// broadcast destination or an unspecified source) and a token-bucket rate limit.

/// An ICMP error the stack can send about a packet.
package enum ICMPErrorKind: Sendable, Equatable {
    case portUnreachable
    case hostUnreachable
    case protocolUnreachable
    case administrativelyProhibited
    /// IPv4 "fragmentation needed" / ICMPv6 "packet too big" with the next-hop MTU.
    case packetTooBig(mtu: Int)
    case hopLimitExceeded
    case reassemblyTimeExceeded
}

extension Stack {
    // MARK: Input

    func receiveICMPv4(_ ip: IPInfo, message: PacketBuffer, packet: PacketBuffer, now: Instant) {
        statistics.icmpReceived += 1
        let type: UInt8
        do {
            let icmp = try ICMPHeaderView(validating: message.readableBytesSpan, layer: .icmpv4)
            guard icmp.isChecksumValid(pseudoHeaderSum: 0) else { statistics.badChecksum += 1; return }
            type = icmp.type
        } catch {
            statistics.malformed += 1
            return
        }
        if type == ICMPv4Type.destinationUnreachable {
            let code = message.getInteger(at: message.readerIndex + 1, as: UInt8.self) ?? 0
            // Net/host/protocol/port unreachable and administratively prohibited end a flow we dialled
            // (RFC 1122 §4.2.3.9 lets TCP abort a connection attempt on them); "fragmentation needed" does not.
            if code == ICMPv4Type.fragmentationNeeded {
                // RFC 1191 §4: the next-hop MTU is the low half of the second word (0 from pre-1191 routers).
                let mtu = Int(message.getInteger(at: message.readerIndex + 6, as: UInt16.self) ?? 0)
                receivePacketTooBig(quoting: message, mtu: mtu)
            } else {
                receiveICMPError(quoting: message, now: now)
            }
            return
        }
        guard type == ICMPv4Type.echoRequest, answersEcho(to: ip.destination) else { return }
        // Reply in place: swap addresses, fresh TTL and header checksum, type 8 → 0 (RFC 792), and an
        // incremental ICMP checksum update (RFC 1624) for the one changed word.
        var reply = packet
        let headerLength = ip.transportOffset
        let ttl = configuration.defaultTTL
        reply.withUnsafeMutableReadableBytes { raw in
            let s = raw.loadBigEndian(at: 12, as: UInt32.self)
            raw.storeBigEndian(raw.loadBigEndian(at: 16, as: UInt32.self), at: 12)
            raw.storeBigEndian(s, at: 16)
            raw.storeBigEndian(ttl, at: 8)
            raw.storeBigEndian(UInt16(0), at: 10)
            raw.storeBigEndian(Checksum.compute(UnsafeRawBufferPointer(rebasing: raw[0..<headerLength])), at: 10)
            let oldWord = raw.loadBigEndian(at: headerLength, as: UInt16.self)
            let newWord = UInt16(ICMPv4Type.echoReply) << 8 | (oldWord & 0xff)
            raw.storeBigEndian(newWord, at: headerLength)
            let sum = raw.loadBigEndian(at: headerLength + 2, as: UInt16.self)
            raw.storeBigEndian(Checksum.update(sum, old: oldWord, new: newWord), at: headerLength + 2)
        }
        statistics.echoRequestsAnswered += 1
        enqueue(Packet(bytes: reply))
    }

    func receiveICMPv6(_ ip: IPInfo, message: PacketBuffer, packet: PacketBuffer, now: Instant) {
        statistics.icmpReceived += 1
        let type: UInt8
        let pseudo = Checksum.pseudoHeaderSum(source: ip.source, destination: ip.destination,
                                              protocol: IPProtocol.icmpv6, length: message.readableBytes)
        do {
            let icmp = try ICMPHeaderView(validating: message.readableBytesSpan, layer: .icmpv6)
            guard icmp.isChecksumValid(pseudoHeaderSum: pseudo) else { statistics.badChecksum += 1; return }
            type = icmp.type
        } catch {
            statistics.malformed += 1
            return
        }
        if type == ICMPv6Type.destinationUnreachable {
            receiveICMPError(quoting: message, now: now)
            return
        }
        if type == ICMPv6Type.packetTooBig {
            // RFC 4443 §3.2: the MTU is the whole second word; RFC 8201 §4: never believe one below 1280.
            let mtu = Int(message.getInteger(at: message.readerIndex + 4, as: UInt32.self) ?? 0)
            receivePacketTooBig(quoting: message, mtu: max(mtu, 1280))
            return
        }
        guard type == ICMPv6Type.echoRequest, answersEcho(to: ip.destination) else { return }
        // Swapping source and destination leaves the pseudo-header sum unchanged; only the type word moves.
        var reply = packet
        let offset = ip.transportOffset
        let hopLimit = configuration.defaultTTL
        reply.withUnsafeMutableReadableBytes { raw in
            for i in stride(from: 8, to: 24, by: 8) {
                let s = raw.loadBigEndian(at: i, as: UInt64.self)
                raw.storeBigEndian(raw.loadBigEndian(at: i + 16, as: UInt64.self), at: i)
                raw.storeBigEndian(s, at: i + 16)
            }
            raw.storeBigEndian(hopLimit, at: 7)
            let oldWord = raw.loadBigEndian(at: offset, as: UInt16.self)
            let newWord = UInt16(ICMPv6Type.echoReply) << 8 | (oldWord & 0xff)
            raw.storeBigEndian(newWord, at: offset)
            let sum = raw.loadBigEndian(at: offset + 2, as: UInt16.self)
            raw.storeBigEndian(Checksum.update(sum, old: oldWord, new: newWord), at: offset + 2)
        }
        statistics.echoRequestsAnswered += 1
        enqueue(Packet(bytes: reply))
    }

    /// An unreachable error about a packet we sent: the quoted header names the flow (its source is
    /// our end). A UDP flow closes with `.unreachable`; a TCP flow still connecting is aborted.
    /// Established TCP ignores it (RFC 1122 §4.2.3.9: soft error) — the retransmission timer decides.
    private func receiveICMPError(quoting message: PacketBuffer, now: Instant) {
        guard let (id, key, _) = quotedFlow(in: message) else { return }
        switch slot(id) {
        case .udp(let flow) where flow.state == .open:
            removeFlow(id, key: key)
            events.append(.closed(id, .unreachable))
        case .tcp(let flow):
            guard let state = flow.connection?.state, state == .synSent else { return }
            flow.connection?.abort()
            removeFlow(id, key: key)
            events.append(.closed(id, .unreachable))
        default:
            return
        }
    }

    /// The flow of ours an ICMP error quotes (its source is our end, or any address in transparent mode),
    /// with the quoted transport header (at least 8 bytes: ports and, for TCP, the sequence number).
    private func quotedFlow(in message: PacketBuffer) -> (FlowID, FlowKey, transport: PacketBuffer)? {
        guard let quoted = message.getSlice(at: message.readerIndex + 8, length: message.readableBytes - 8),
              let first = quoted.getInteger(at: quoted.readerIndex, as: UInt8.self) else { return nil }
        let source: IPAddress, destination: IPAddress, proto: UInt8, offset: Int
        if first >> 4 == 4 {
            // The quote may be cut after 8 transport bytes, so only the fixed header is validated.
            guard quoted.readableBytes >= 20, let ihl = quoted.getInteger(at: quoted.readerIndex, as: UInt8.self).map({ Int($0 & 0x0f) * 4 }),
                  ihl >= 20, quoted.readableBytes >= ihl + 4,
                  let s = quoted.getInteger(at: quoted.readerIndex + 12, as: UInt32.self),
                  let d = quoted.getInteger(at: quoted.readerIndex + 16, as: UInt32.self),
                  let p = quoted.getInteger(at: quoted.readerIndex + 9, as: UInt8.self) else { return nil }
            source = .v4(IPv4Address(s)); destination = .v4(IPv4Address(d)); proto = p; offset = ihl
        } else {
            guard quoted.readableBytes >= 44,
                  let sh = quoted.getInteger(at: quoted.readerIndex + 8, as: UInt64.self),
                  let sl = quoted.getInteger(at: quoted.readerIndex + 16, as: UInt64.self),
                  let dh = quoted.getInteger(at: quoted.readerIndex + 24, as: UInt64.self),
                  let dl = quoted.getInteger(at: quoted.readerIndex + 32, as: UInt64.self),
                  let p = quoted.getInteger(at: quoted.readerIndex + 6, as: UInt8.self) else { return nil }
            // Extension headers in the quote are not walked: flows we dial send none.
            source = .v6(IPv6Address(high: sh, low: sl)); destination = .v6(IPv6Address(high: dh, low: dl)); proto = p; offset = 40
        }
        guard isOwn(source) || configuration.transparent,
              let sourcePort = quoted.getInteger(at: quoted.readerIndex + offset, as: UInt16.self),
              let destinationPort = quoted.getInteger(at: quoted.readerIndex + offset + 2, as: UInt16.self) else { return nil }
        let flowProtocol: FlowProtocol
        switch proto {
        case IPProtocol.udp: flowProtocol = .udp
        case IPProtocol.tcp: flowProtocol = .tcp
        default: return nil
        }
        let key = FlowKey(proto: flowProtocol, local: Endpoint(source, sourcePort), remote: Endpoint(destination, destinationPort))
        guard let id = flowIndex[key],
              let transport = quoted.getSlice(at: quoted.readerIndex + offset, length: quoted.readableBytes - offset) else { return nil }
        return (id, key, transport)
    }

    /// "Fragmentation needed" / "packet too big" about a TCP segment we sent: the connection's MSS drops
    /// to what `mtu` carries and what is in flight is resent (RFC 1191, RFC 8201). The quoted sequence
    /// number must lie in `SND.UNA..<SND.NXT` (RFC 5927 §4.1), so a blind attacker cannot shrink a flow.
    private func receivePacketTooBig(quoting message: PacketBuffer, mtu: Int) {
        guard mtu >= 68, let (id, key, transport) = quotedFlow(in: message), key.proto == .tcp,
              case .tcp(let flow) = slot(id), let connection = flow.connection,
              let raw = transport.getInteger(at: transport.readerIndex + 4, as: UInt32.self) else { return }
        let quotedSequence = SeqNumber(raw)
        guard connection.sendUnacknowledged <= quotedSequence, quotedSequence < connection.sendNext else { return }
        let ipHeader = key.local.address.isIPv4 ? 20 : 40
        statistics.pathMTUReductions += 1
        flow.connection?.reducePathMSS(to: mtu - ipHeader - 20)
        markDirty(flow)
    }

    private func answersEcho(to destination: IPAddress) -> Bool {
        isOwn(destination) || (configuration.transparent && configuration.answersEchoForAnyDestination)
    }

    // MARK: Errors

    /// Sends an ICMP error about `original` (a whole IP packet as received), if the rules allow it and
    /// the rate limit has a token. Port unreachable and administratively prohibited come from the
    /// original destination (the host the client tried, which we stand in for); errors a router would
    /// send come from our own address of the family when we have one.
    package func sendICMPError(_ kind: ICMPErrorKind, about original: PacketBuffer, now: Instant) {
        guard let first = original.getInteger(at: original.readerIndex, as: UInt8.self) else { return }
        let source: IPAddress, destination: IPAddress, length: Int
        let isIPv4 = first >> 4 == 4
        if isIPv4 {
            guard let facts = try? IPv4HeaderView(validating: original.readableBytesSpan) else { return }
            // RFC 1122 §3.2.2: not about a non-first fragment, an ICMP error, or a non-unicast packet.
            guard facts.fragmentOffset == 0, !facts.destination.isMulticast, !facts.destination.isBroadcast,
                  !facts.source.isUnspecified, !facts.source.isMulticast, !facts.source.isBroadcast else { return }
            if facts.protocolNumber == IPProtocol.icmp {
                let type = original.getInteger(at: original.readerIndex + facts.headerLength, as: UInt8.self)
                guard let type, !ICMPv4Type.isError(type) else { return }
            }
            source = .v4(facts.source); destination = .v4(facts.destination); length = facts.totalLength
        } else {
            guard let facts = try? IPv6HeaderView(validating: original.readableBytesSpan) else { return }
            // RFC 4443 §2.4(e): not about an error, a multicast destination or an unspecified source.
            guard (facts.fragment?.offset ?? 0) == 0, !facts.destination.isMulticast,
                  !facts.source.isUnspecified, !facts.source.isMulticast else { return }
            if facts.upperLayerProtocol == IPProtocol.icmpv6 && facts.fragment == nil {
                let type = original.getInteger(at: original.readerIndex + facts.upperLayerOffset, as: UInt8.self)
                guard let type, !ICMPv6Type.isError(type) else { return }
            }
            source = .v6(facts.source); destination = .v6(facts.destination); length = facts.totalLength
        }
        guard icmpLimiter.take(now: now) else {
            statistics.icmpErrorsRateLimited += 1
            return
        }
        let (type, code, rest) = Stack.icmpCode(kind, isIPv4: isIPv4)
        let sender: IPAddress
        switch kind {
        case .portUnreachable, .administrativelyProhibited, .protocolUnreachable: sender = destination
        default: sender = ownAddress(like: destination) ?? destination
        }
        // Quote as much as keeps the error within 576 bytes (RFC 1812 §4.3.2.3) or the IPv6 minimum
        // MTU of 1280 (RFC 4443 §2.4(c)).
        let quote = min(length, isIPv4 ? 576 - 20 - 8 : 1280 - 40 - 8)
        var message = makeTransportBuffer(capacity: 8 + quote)
        message.writeRepeatingByte(0, count: 8)
        var quoted = original.getSlice(at: original.readerIndex, length: quote)!
        message.writeBuffer(&quoted)
        let pseudo = isIPv4 ? 0 : Checksum.pseudoHeaderSum(source: sender, destination: source,
                                                           protocol: IPProtocol.icmpv6, length: 8 + quote)
        message.withUnsafeMutableReadableBytes { raw in
            ICMPHeader(type: type, code: code, restOfHeader: rest).write(to: raw, pseudoHeaderSum: pseudo)
        }
        statistics.icmpErrorsSent += 1
        emitIP(source: sender, destination: source, proto: isIPv4 ? IPProtocol.icmp : IPProtocol.icmpv6, transport: &message)
    }

    /// Type, code and rest-of-header word for `kind` in the family's numbering.
    static func icmpCode(_ kind: ICMPErrorKind, isIPv4: Bool) -> (UInt8, UInt8, UInt32) {
        if isIPv4 {
            switch kind {
            case .portUnreachable: return (ICMPv4Type.destinationUnreachable, ICMPv4Type.portUnreachable, 0)
            case .hostUnreachable: return (ICMPv4Type.destinationUnreachable, ICMPv4Type.hostUnreachable, 0)
            case .protocolUnreachable: return (ICMPv4Type.destinationUnreachable, ICMPv4Type.protocolUnreachable, 0)
            case .administrativelyProhibited: return (ICMPv4Type.destinationUnreachable, ICMPv4Type.administrativelyProhibited, 0)
            // RFC 1191 §4: the next-hop MTU in the low-order 16 bits.
            case .packetTooBig(let mtu): return (ICMPv4Type.destinationUnreachable, ICMPv4Type.fragmentationNeeded, UInt32(clamping: mtu) & 0xffff)
            case .hopLimitExceeded: return (ICMPv4Type.timeExceeded, ICMPv4Type.ttlExceeded, 0)
            case .reassemblyTimeExceeded: return (ICMPv4Type.timeExceeded, ICMPv4Type.reassemblyTimeExceeded, 0)
            }
        }
        switch kind {
        case .portUnreachable: return (ICMPv6Type.destinationUnreachable, ICMPv6Type.portUnreachable, 0)
        case .hostUnreachable: return (ICMPv6Type.destinationUnreachable, ICMPv6Type.addressUnreachable, 0)
        // RFC 4443 §3.4: "unrecognized Next Header type", pointing at the fixed header's next header.
        case .protocolUnreachable: return (ICMPv6Type.parameterProblem, 1, 6)
        case .administrativelyProhibited: return (ICMPv6Type.destinationUnreachable, ICMPv6Type.administrativelyProhibited, 0)
        case .packetTooBig(let mtu): return (ICMPv6Type.packetTooBig, 0, UInt32(clamping: mtu))
        case .hopLimitExceeded: return (ICMPv6Type.timeExceeded, ICMPv6Type.hopLimitExceeded, 0)
        case .reassemblyTimeExceeded: return (ICMPv6Type.timeExceeded, ICMPv6Type.reassemblyTimeExceeded, 0)
        }
    }
}
