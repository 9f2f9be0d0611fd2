package import NIOCore
package import NetstackWire

/// A WireGuard interface without I/O: datagrams and inner IP packets in, datagrams and decrypted packets out.
///
/// The owner (the sing-box wireguard endpoint, or the Tailscale endpoint's magicsock) reads UDP datagrams and
/// calls `receive`, hands outgoing inner packets to `send`, calls `poll` at the deadline it returns, and
/// transmits whatever lands in the `WireGuardOutput`. Nothing here reads a clock, a socket or global random:
/// time comes as `Instant`s, randomness from the injected function, wall time from `unixTimeAtZero + now`.
///
/// Receive path, in order:
/// 1. clear bytes 1–3 (sing-box clears the `reserved` bytes of every datagram it reads);
/// 2. classify by type and length (malformed → dropped, counted);
/// 3. handshake messages: mac1, then under load mac2 or a cookie reply, then Noise;
/// 4. transport: index → keypair, replay pre-check, in-place open, replay accept, roaming, key rotation,
///    keepalive/size checks, allowed-IPs source check, then the plaintext slice goes out.
/// Send path: allowed-IPs lookup → peer → staged → (session? encrypt in place : initiate handshake).
///
/// Steady state allocates nothing per packet: the transport header goes into the caller's headroom, padding
/// and tag into its tailroom, AEAD works in place, outputs reuse the caller's arrays.
/// One device belongs to one event loop; it is not thread-safe. Because of that single owner, the per-packet
/// state of the device, its peers and keypairs is `@exclusivity(unchecked)`: the dynamic exclusivity checks cost
/// about a tenth of the data path in a release profile and guard nothing a single-threaded owner could violate.
package final class WireGuardDevice {
    /// Device-wide settings.
    package struct Configuration: Sendable {
        /// The interface private key.
        package var privateKey: Bytes32
        /// Padding stops at this size (the tunnel MTU); sing-box's default is 1408.
        package var mtu: Int
        /// Handshake messages per second above which the device asks for cookies (mac2).
        package var handshakeLoadThreshold: Int
        /// Unix time at `Instant.zero`, for the TAI64N timestamp of initiations.
        package var unixTimeAtZero: Duration

        /// Settings with sing-box's defaults.
        package init(privateKey: Bytes32, mtu: Int = 1408, handshakeLoadThreshold: Int = 512, unixTimeAtZero: Duration = .zero) {
            self.privateKey = privateKey
            self.mtu = mtu
            self.handshakeLoadThreshold = handshakeLoadThreshold
            self.unixTimeAtZero = unixTimeAtZero
        }
    }

    /// What the index table says a receiver index belongs to.
    private enum IndexEntry {
        case handshake(peer: Int)
        case keypair(peer: Int, Keypair)
    }

    /// Our static key pair.
    package let identity: StaticIdentity
    /// The settings given at creation.
    package private(set) var configuration: Configuration
    /// The peers, by index (indices shift down when one is removed).
    @exclusivity(unchecked) package private(set) var peers: [WireGuardPeer] = []
    /// Prefix → peer index, for routing and source checks.
    @exclusivity(unchecked) package private(set) var allowedIPs = AllowedIPs()
    /// Drops and message counts since creation.
    @exclusivity(unchecked) package private(set) var counters = WireGuardCounters()
    @exclusivity(unchecked) private var indexTable: [UInt32: IndexEntry] = [:]
    private var peerByKey: [Bytes32: Int] = [:]
    private var cookieChecker: CookieChecker
    private let random: (UnsafeMutableRawBufferPointer) -> Void
    private let allocator: ByteBufferAllocator
    /// Load tracking: handshake messages seen in the current one-second window.
    private var loadWindowStart = Instant.zero
    private var loadWindowCount = 0
    private var underLoadUntil: Instant?
    private var rateLimiter = HandshakeRateLimiter()
    /// Forces cookie replies for every handshake message without a valid mac2 (owner's back-pressure; tests).
    package var forceUnderLoad = false

    /// A device without peers. `random` must be cryptographically secure outside tests.
    package init(configuration: Configuration, allocator: ByteBufferAllocator = ByteBufferAllocator(),
                 random: @escaping (UnsafeMutableRawBufferPointer) -> Void = systemRandom) {
        precondition(sodiumReady, "libsodium failed to initialise")
        self.configuration = configuration
        identity = StaticIdentity(privateKey: configuration.privateKey)
        cookieChecker = CookieChecker(localPublicKey: identity.publicKey)
        self.allocator = allocator
        self.random = random
    }

    // MARK: Peers

    /// Adds a peer and routes its allowed IPs to it; returns its index. A second peer with the same key replaces nothing
    /// and returns the existing index.
    @discardableResult
    package func addPeer(_ peerConfiguration: WireGuardPeerConfiguration) -> Int {
        if let existing = peerByKey[peerConfiguration.publicKey] { return existing }
        let index = peers.count
        peers.append(WireGuardPeer(configuration: peerConfiguration, identity: identity))
        peerByKey[peerConfiguration.publicKey] = index
        for prefix in peerConfiguration.allowedIPs {
            allowedIPs.insert(address: prefix.address, prefixLength: prefix.prefixLength, peer: index)
        }
        return index
    }

    /// The index of the peer with `publicKey`.
    package func peerIndex(publicKey: Bytes32) -> Int? { peerByKey[publicKey] }

    /// Points a peer at a new endpoint (configuration change, or the owner resolved a name).
    package func setEndpoint(_ endpoint: WireGuardEndpoint?, peer: Int) { peers[peer].endpoint = endpoint }

    /// Replaces the prefixes routed to a peer (a netmap update, a config reload).
    package func setAllowedIPs(_ prefixes: [(address: [UInt8], prefixLength: Int)], peer index: Int) {
        allowedIPs.remove(peer: index, renumber: false)
        for prefix in prefixes {
            allowedIPs.insert(address: prefix.address, prefixLength: prefix.prefixLength, peer: index)
        }
        peers[index].configuration.allowedIPs = prefixes
    }

    /// Removes a peer: its sessions, pending handshake, staged packets and routes go; peers after it move down
    /// by one index (indices in earlier outputs are stale after this call).
    package func removePeer(_ index: Int) {
        let peer = peers[index]
        peer.timers.stop()
        peer.staged.removeAll()
        peer.keypairs.clear()
        peer.handshake.clear()
        peers.remove(at: index)
        allowedIPs.remove(peer: index, renumber: true)
        peerByKey = [:]
        for (position, remaining) in peers.enumerated() { peerByKey[remaining.publicKey] = position }
        var table: [UInt32: IndexEntry] = [:]
        for (key, entry) in indexTable {
            switch entry {
            case .handshake(let owner) where owner != index:
                table[key] = .handshake(peer: owner > index ? owner - 1 : owner)
            case .keypair(let owner, let keypair) where owner != index:
                table[key] = .keypair(peer: owner > index ? owner - 1 : owner, keypair)
            default:
                break
            }
        }
        indexTable = table
    }

    // MARK: Send

    /// Sends an inner IP packet to the peer its destination routes to. Dropped (and counted) when no peer owns
    /// the destination. For no copy, give the packet 16 bytes of headroom (reader index ≥ 16) and 31 of tailroom.
    /// Pass the buffer without keeping another reference (`consume`), or the in-place writes copy it.
    package func send(packet: consuming ByteBuffer, now: Instant, into output: inout WireGuardOutput) {
        let destination: Int? = packet.withUnsafeReadableBytes { bytes in
            guard let range = Self.destinationRange(bytes) else { return nil }
            return allowedIPs.lookup(UnsafeRawBufferPointer(rebasing: bytes[range]))
        }
        guard let peer = destination else {
            counters.noRoute += 1
            return
        }
        send(packet: consume packet, toPeer: peer, now: now, into: &output)
    }

    /// Sends an inner packet to a given peer (the Tailscale endpoint routes by itself).
    package func send(packet: consuming ByteBuffer, toPeer index: Int, now: Instant, into output: inout WireGuardOutput) {
        let peer = peers[index]
        if peer.staged.count >= WireGuardPeer.maxStagedPackets {
            _ = peer.staged.removeFirst()
            counters.stagedDropped += 1
        }
        peer.staged.append(consume packet)
        flushStaged(index, now: now, into: &output)
    }

    /// Starts a handshake with a peer now (if the rate limit allows).
    package func initiateHandshake(peer index: Int, now: Instant, into output: inout WireGuardOutput) {
        sendInitiation(index, isRetry: false, now: now, into: &output)
    }

    /// Encrypts every staged packet if a session allows it, else asks for a handshake.
    private func flushStaged(_ index: Int, now: Instant, into output: inout WireGuardOutput) {
        let peer = peers[index]
        guard let keypair = peer.keypairs.current, keypair.maySend(now: now) else {
            sendInitiation(index, isRetry: false, now: now, into: &output)
            return
        }
        while var packet = peer.staged.popFirst() {
            guard keypair.sendCounter < SessionLimits.rejectAfterMessages else {
                peer.staged.prepend(packet)
                sendInitiation(index, isRetry: false, now: now, into: &output)
                return
            }
            encrypt(&packet, peer: index, keypair: keypair, now: now, into: &output)
        }
        keepKeyFreshSending(index, now: now, into: &output)
    }

    /// Seals one packet in place and queues the datagram.
    private func encrypt(_ packet: inout ByteBuffer, peer index: Int, keypair: Keypair, now: Instant,
                         into output: inout WireGuardOutput) {
        let peer = peers[index]
        guard let endpoint = peer.endpoint else {
            counters.noEndpoint += 1
            return
        }
        let plainCount = packet.readableBytes
        let padding = Self.paddingSize(plainCount, mtu: configuration.mtu)
        let header = MessageLayout.transportHeaderSize
        if packet.readerIndex < header {
            // No headroom: one copy into a buffer that has it (the owner should allocate with headroom).
            var copy = allocator.buffer(capacity: header + plainCount + padding + AEAD.tagByteCount)
            copy.moveWriterIndex(forwardBy: header)
            copy.moveReaderIndex(forwardBy: header)
            copy.writeBuffer(&packet)
            packet = copy
            counters.copiedForHeadroom += 1
        }
        packet.writeRepeatingByte(0, count: padding + AEAD.tagByteCount)
        packet.moveReaderIndex(to: packet.readerIndex - header)
        let counter = keypair.sendCounter
        keypair.sendCounter += 1
        let reserved = peer.configuration.reserved
        packet.withUnsafeMutableReadableBytes { bytes in
            TransportHeader(receiver: keypair.remoteIndex, counter: counter).write(to: bytes)
            keypair.cipher.seal(counter: counter, inPlace: UnsafeMutableRawBufferPointer(rebasing: bytes[header...]))
            bytes[1] = reserved.0
            bytes[2] = reserved.1
            bytes[3] = reserved.2
        }
        peer.sentBytes &+= UInt64(packet.readableBytes)
        output.datagrams.append(WireGuardOutput.Datagram(buffer: packet, endpoint: endpoint))
        peer.timers.anyAuthenticatedPacketTraversal(now: now)
        peer.timers.anyAuthenticatedPacketSent()
        if plainCount > 0 { peer.timers.dataSent(now: now) }
    }

    /// Padding to a multiple of 16 that never pushes a packet past the MTU (whitepaper §5.4.6).
    static func paddingSize(_ count: Int, mtu: Int) -> Int {
        var last = count
        if mtu > 0 && last > mtu { last %= mtu }
        var padded = (last + 15) & ~15
        if mtu > 0 && padded > mtu { padded = mtu }
        return max(0, padded - last)
    }

    /// Sends a keepalive (an empty transport message), or the staged packets, which serve as well.
    private func sendKeepalive(_ index: Int, now: Instant, into output: inout WireGuardOutput) {
        let peer = peers[index]
        if peer.staged.isEmpty {
            var empty = allocator.buffer(capacity: MessageLayout.transportMinimumSize)
            empty.moveWriterIndex(forwardBy: MessageLayout.transportHeaderSize)
            empty.moveReaderIndex(forwardBy: MessageLayout.transportHeaderSize)
            peer.staged.append(empty)
        }
        flushStaged(index, now: now, into: &output)
    }

    /// REKEY_AFTER_MESSAGES / REKEY_AFTER_TIME for the initiator's sending key.
    private func keepKeyFreshSending(_ index: Int, now: Instant, into output: inout WireGuardOutput) {
        guard let keypair = peers[index].keypairs.current, keypair.isInitiator else { return }
        if keypair.sendCounter > SessionLimits.rekeyAfterMessages || now - keypair.created > SessionLimits.rekeyAfterTime {
            sendInitiation(index, isRetry: false, now: now, into: &output)
        }
    }

    /// An initiator that only receives rekeys shortly before REJECT_AFTER_TIME (whitepaper §6.2).
    private func keepKeyFreshReceiving(_ index: Int, now: Instant, into output: inout WireGuardOutput) {
        let peer = peers[index]
        guard !peer.timers.sentLastMinuteHandshake, let keypair = peer.keypairs.current, keypair.isInitiator else { return }
        let limit = SessionLimits.rejectAfterTime - SessionLimits.keepaliveTimeout - SessionLimits.rekeyTimeout
        if now - keypair.created > limit {
            peer.timers.sentLastMinuteHandshake = true
            sendInitiation(index, isRetry: false, now: now, into: &output)
        }
    }

    // MARK: Handshake send

    private func sendInitiation(_ index: Int, isRetry: Bool, now: Instant, into output: inout WireGuardOutput) {
        let peer = peers[index]
        guard peer.timers.mayInitiate(now: now) else { return }
        guard let endpoint = peer.endpoint else {
            counters.noEndpoint += 1
            return
        }
        if peer.handshake.stage != .zeroed, case .handshake = indexTable[peer.handshake.localIndex] {
            indexTable[peer.handshake.localIndex] = nil
        }
        let localIndex = newIndex()
        let ephemeral = X25519.generatePrivateKey(random)
        let message: InitiationMessage
        do {
            message = try peer.handshake.createInitiation(identity: identity, localIndex: localIndex,
                                                          ephemeralPrivate: ephemeral, timestamp: wallTime(now))
        } catch {
            counters.handshakeFailures += 1
            return
        }
        indexTable[localIndex] = .handshake(peer: index)
        var buffer = allocator.buffer(capacity: MessageLayout.initiationSize)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: MessageLayout.initiationSize) { raw in
            let bytes = UnsafeMutableRawBufferPointer(rebasing: raw[0..<MessageLayout.initiationSize])
            message.write(to: bytes)
            peer.cookies.addMACs(bytes, now: now)
            Self.applyReserved(bytes, peer.configuration.reserved)
            return MessageLayout.initiationSize
        }
        peer.sentBytes &+= UInt64(buffer.readableBytes)
        output.datagrams.append(WireGuardOutput.Datagram(buffer: buffer, endpoint: endpoint))
        counters.initiationsSent += 1
        peer.timers.anyAuthenticatedPacketTraversal(now: now)
        peer.timers.anyAuthenticatedPacketSent()
        peer.timers.handshakeInitiated(now: now, jitter: jitter(), isRetry: isRetry)
    }

    private static func applyReserved(_ bytes: UnsafeMutableRawBufferPointer, _ reserved: (UInt8, UInt8, UInt8)) {
        bytes[1] = reserved.0
        bytes[2] = reserved.1
        bytes[3] = reserved.2
    }

    private func wallTime(_ now: Instant) -> TAI64N {
        let unix = configuration.unixTimeAtZero + .nanoseconds(Int64(clamping: now.nanoseconds))
        let (seconds, attoseconds) = unix.components
        return TAI64N(unixSeconds: UInt64(max(0, seconds)), nanoseconds: UInt32(max(0, attoseconds / 1_000_000_000)))
    }

    private func jitter() -> Duration {
        var value: UInt32 = 0
        withUnsafeMutableBytes(of: &value) { random($0) }
        let maximum = UInt32(SessionLimits.rekeyTimeoutJitterMax.nanosecondsClamped)
        return .nanoseconds(Int64(value % maximum))
    }

    /// A random local index not in use (never 0, which reads as "none" in logs).
    private func newIndex() -> UInt32 {
        while true {
            var value: UInt32 = 0
            withUnsafeMutableBytes(of: &value) { random($0) }
            if value != 0 && indexTable[value] == nil { return value }
        }
    }

    // MARK: Receive

    /// Takes one UDP datagram from `source`. Decrypted packets and any replies land in `output`.
    /// Decryption happens in place: pass the buffer without keeping another reference (`consume`), or it is copied.
    package func receive(datagram: consuming ByteBuffer, from source: WireGuardEndpoint, now: Instant, into output: inout WireGuardOutput) {
        if datagram.readableBytes > 3 {
            // sing-box's bind zeroes the reserved bytes of everything it reads.
            datagram.setRepeatingByte(0, count: 3, at: datagram.readerIndex + 1)
        }
        let type: MessageType
        do {
            type = try datagram.withUnsafeReadableBytes { bytes throws(MessageError) in try messageType(of: bytes) }
        } catch {
            counters.malformed += 1
            return
        }
        switch type {
        case .transport:
            receiveTransport(&datagram, from: source, now: now, into: &output)
        case .initiation, .response:
            receiveHandshake(datagram, type: type, from: source, now: now, into: &output)
        case .cookieReply:
            receiveCookieReply(datagram, now: now)
        }
    }

    private func receiveTransport(_ datagram: inout ByteBuffer, from source: WireGuardEndpoint, now: Instant,
                                  into output: inout WireGuardOutput) {
        let datagramCount = datagram.readableBytes
        guard let header = try? datagram.withUnsafeReadableBytes({ bytes throws(MessageError) in try TransportHeader(parsing: bytes) }) else {
            counters.malformed += 1
            return
        }
        guard case .keypair(let index, let keypair) = indexTable[header.receiver] else {
            counters.unknownIndex += 1
            return
        }
        guard keypair.mayReceive(now: now), keypair.replayFilter.check(header.counter) else {
            counters.replayed += 1
            return
        }
        let opened = datagram.withUnsafeMutableReadableBytes { bytes in
            keypair.cipher.open(counter: header.counter,
                                inPlace: UnsafeMutableRawBufferPointer(rebasing: bytes[MessageLayout.transportHeaderSize...]))
        }
        guard opened else {
            counters.decryptionFailed += 1
            return
        }
        guard keypair.replayFilter.accept(header.counter) else {
            counters.replayed += 1
            return
        }
        let peer = peers[index]
        peer.endpoint = source
        peer.receivedBytes &+= UInt64(datagramCount)
        let (rotated, dropped) = peer.keypairs.received(with: keypair)
        if rotated {
            if let dropped { unregister(dropped) }
            peer.timers.handshakeComplete()
            peer.lastHandshake = now
            flushStaged(index, now: now, into: &output)
        }
        keepKeyFreshReceiving(index, now: now, into: &output)
        peer.timers.anyAuthenticatedPacketTraversal(now: now)
        peer.timers.anyAuthenticatedPacketReceived()

        let plainCount = datagramCount - MessageLayout.transportHeaderSize - AEAD.tagByteCount
        if plainCount == 0 {
            counters.keepalivesReceived += 1
            return
        }
        peer.timers.dataReceived(now: now)
        // The inner packet: its own length (padding trimmed) and a source this peer may use.
        let verdict: (length: Int, allowed: Bool)? = datagram.withUnsafeReadableBytes { bytes in
            let plain = UnsafeRawBufferPointer(rebasing: bytes[MessageLayout.transportHeaderSize..<MessageLayout.transportHeaderSize + plainCount])
            guard let (length, sourceRange) = Self.innerPacket(plain) else { return nil }
            let owner = allowedIPs.lookup(UnsafeRawBufferPointer(rebasing: plain[sourceRange]))
            return (length, owner == index)
        }
        guard let verdict else {
            counters.malformedInner += 1
            return
        }
        guard verdict.allowed else {
            counters.disallowedSource += 1
            return
        }
        datagram.moveReaderIndex(forwardBy: MessageLayout.transportHeaderSize)
        datagram.moveWriterIndex(to: datagram.readerIndex + verdict.length)
        counters.packetsReceived += 1
        output.packets.append(WireGuardOutput.Packet(buffer: datagram, peer: index))
    }

    private func receiveHandshake(_ datagram: ByteBuffer, type: MessageType, from source: WireGuardEndpoint, now: Instant,
                                  into output: inout WireGuardOutput) {
        // 1. mac1: cheap proof that the sender knows our public key.
        let mac1OK = datagram.withUnsafeReadableBytes { cookieChecker.checkMAC1($0) }
        guard mac1OK else {
            counters.badMAC += 1
            return
        }
        // 2. Under load, only messages carrying a valid cookie (mac2) get the expensive DH work.
        if isUnderLoad(now: now) {
            let mac2OK = datagram.withUnsafeReadableBytes { cookieChecker.checkMAC2($0, source: source, now: now) }
            if !mac2OK {
                let reply = datagram.withUnsafeReadableBytes { bytes in
                    cookieChecker.makeReply(to: bytes, source: source, now: now, random: random)
                }
                var buffer = allocator.buffer(capacity: MessageLayout.cookieReplySize)
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: MessageLayout.cookieReplySize) { raw in
                    reply.write(to: UnsafeMutableRawBufferPointer(rebasing: raw[0..<MessageLayout.cookieReplySize]))
                    return MessageLayout.cookieReplySize
                }
                output.datagrams.append(WireGuardOutput.Datagram(buffer: buffer, endpoint: source))
                counters.cookieRepliesSent += 1
                return
            }
            // A valid cookie proves the address; now limit how fast that address may make us work.
            guard rateLimiter.allow(source, now: now) else {
                counters.rateLimited += 1
                return
            }
        }
        if type == .initiation {
            receiveInitiation(datagram, from: source, now: now, into: &output)
        } else {
            receiveResponse(datagram, from: source, now: now, into: &output)
        }
    }

    private func receiveInitiation(_ datagram: ByteBuffer, from source: WireGuardEndpoint, now: Instant,
                                   into output: inout WireGuardOutput) {
        guard let message = try? datagram.withUnsafeReadableBytes({ bytes throws(MessageError) in try InitiationMessage(parsing: bytes) }) else {
            counters.malformed += 1
            return
        }
        let consumed: HandshakeState.ConsumedInitiation
        do {
            consumed = try HandshakeState.openInitiation(message, identity: identity) { remoteStatic in
                guard let index = peerByKey[remoteStatic] else { return nil }
                return peers[index].handshake.precomputedStaticStatic
            }
        } catch {
            counters.handshakeFailures += 1
            return
        }
        guard let index = peerByKey[consumed.remoteStatic] else {
            counters.handshakeFailures += 1
            return
        }
        let peer = peers[index]
        do {
            try peer.handshake.acceptInitiation(consumed, now: now)
        } catch {
            counters.handshakeFailures += 1
            return
        }
        counters.initiationsReceived += 1
        peer.receivedBytes &+= UInt64(datagram.readableBytes)
        peer.endpoint = source
        peer.timers.anyAuthenticatedPacketTraversal(now: now)
        peer.timers.anyAuthenticatedPacketReceived()

        // Our own outstanding initiation (if any) is abandoned: the peer's wins.
        if case .handshake = indexTable[peer.handshake.localIndex] { indexTable[peer.handshake.localIndex] = nil }
        let localIndex = newIndex()
        let ephemeral = X25519.generatePrivateKey(random)
        let response: ResponseMessage
        let keys: SessionKeys
        do {
            (response, keys) = try peer.handshake.createResponse(localIndex: localIndex, ephemeralPrivate: ephemeral)
        } catch {
            counters.handshakeFailures += 1
            return
        }
        installKeypair(Keypair(keys: keys, created: now), peer: index, now: now)
        var buffer = allocator.buffer(capacity: MessageLayout.responseSize)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: MessageLayout.responseSize) { raw in
            let bytes = UnsafeMutableRawBufferPointer(rebasing: raw[0..<MessageLayout.responseSize])
            response.write(to: bytes)
            peer.cookies.addMACs(bytes, now: now)
            Self.applyReserved(bytes, peer.configuration.reserved)
            return MessageLayout.responseSize
        }
        peer.sentBytes &+= UInt64(buffer.readableBytes)
        output.datagrams.append(WireGuardOutput.Datagram(buffer: buffer, endpoint: source))
        counters.responsesSent += 1
        peer.timers.anyAuthenticatedPacketTraversal(now: now)
        peer.timers.anyAuthenticatedPacketSent()
    }

    private func receiveResponse(_ datagram: ByteBuffer, from source: WireGuardEndpoint, now: Instant,
                                 into output: inout WireGuardOutput) {
        guard let message = try? datagram.withUnsafeReadableBytes({ bytes throws(MessageError) in try ResponseMessage(parsing: bytes) }) else {
            counters.malformed += 1
            return
        }
        guard case .handshake(let index) = indexTable[message.receiver] else {
            counters.unknownIndex += 1
            return
        }
        let peer = peers[index]
        let keys: SessionKeys
        do {
            keys = try peer.handshake.consumeResponse(message, identity: identity)
        } catch {
            counters.handshakeFailures += 1
            return
        }
        counters.responsesReceived += 1
        peer.receivedBytes &+= UInt64(datagram.readableBytes)
        peer.endpoint = source
        installKeypair(Keypair(keys: keys, created: now), peer: index, now: now)
        peer.timers.handshakeComplete()
        peer.lastHandshake = now
        peer.timers.anyAuthenticatedPacketTraversal(now: now)
        peer.timers.anyAuthenticatedPacketReceived()
        // Confirm the session at once: staged data, or a keepalive.
        sendKeepalive(index, now: now, into: &output)
    }

    private func receiveCookieReply(_ datagram: ByteBuffer, now: Instant) {
        guard let reply = try? datagram.withUnsafeReadableBytes({ bytes throws(MessageError) in try CookieReplyMessage(parsing: bytes) }) else {
            counters.malformed += 1
            return
        }
        let index: Int
        switch indexTable[reply.receiver] {
        case .handshake(let peer)?: index = peer
        case .keypair(let peer, _)?: index = peer
        case nil:
            counters.unknownIndex += 1
            return
        }
        if peers[index].cookies.consume(reply, now: now) {
            counters.cookieRepliesReceived += 1
        } else {
            counters.badCookieReplies += 1
        }
    }

    /// Registers a new session under its local index and slots it in; wipes what drops out.
    private func installKeypair(_ keypair: Keypair, peer index: Int, now: Instant) {
        indexTable[keypair.localIndex] = .keypair(peer: index, keypair)
        let peer = peers[index]
        for dropped in peer.keypairs.install(keypair) { unregister(dropped) }
        peer.timers.sessionDerived(now: now)
    }

    private func unregister(_ keypair: Keypair) {
        if case .keypair(_, let registered) = indexTable[keypair.localIndex], registered === keypair {
            indexTable[keypair.localIndex] = nil
        }
    }

    private func isUnderLoad(now: Instant) -> Bool {
        if forceUnderLoad { return true }
        if now - loadWindowStart >= .seconds(1) {
            loadWindowStart = now
            loadWindowCount = 0
        }
        loadWindowCount += 1
        if loadWindowCount > configuration.handshakeLoadThreshold {
            // Stay suspicious for a second after the flood (wireguard-go's underLoadUntil).
            underLoadUntil = now + .seconds(1)
        }
        if let until = underLoadUntil, now < until { return true }
        return false
    }

    // MARK: Timers

    /// Fires due timers (retransmissions, keepalives, rekeys, key wiping) and returns the next deadline.
    @discardableResult
    package func poll(now: Instant, into output: inout WireGuardOutput) -> Instant? {
        var next: Instant?
        for index in peers.indices {
            let peer = peers[index]
            let actions = peer.timers.expire(now: now)
            if actions.contains(.giveUp) {
                counters.stagedDropped += UInt64(peer.staged.count)
                peer.staged.removeAll()
            }
            if actions.contains(.zeroKeyMaterial) {
                for keypair in peer.keypairs.all { unregister(keypair) }
                peer.keypairs.clear()
                if case .handshake = indexTable[peer.handshake.localIndex] { indexTable[peer.handshake.localIndex] = nil }
                peer.handshake.clear()
            }
            if actions.contains(.retransmitInitiation) {
                counters.initiationRetransmissions += 1
                sendInitiation(index, isRetry: true, now: now, into: &output)
            }
            if actions.contains(.newInitiation) { sendInitiation(index, isRetry: false, now: now, into: &output) }
            if actions.contains(.sendKeepalive) { sendKeepalive(index, now: now, into: &output) }
            if let deadline = peer.timers.nextDeadline, next.map({ deadline < $0 }) ?? true { next = deadline }
        }
        return next
    }

    // MARK: Inner packet helpers

    /// The destination address bytes of an IPv4/IPv6 packet.
    static func destinationRange(_ bytes: UnsafeRawBufferPointer) -> Range<Int>? {
        guard let first = bytes.first else { return nil }
        switch first >> 4 {
        case 4 where bytes.count >= 20: return 16..<20
        case 6 where bytes.count >= 40: return 24..<40
        default: return nil
        }
    }

    /// The inner packet's length from its header and where its source address is; nil when it is not a
    /// well-formed IPv4/IPv6 packet that fits in the plaintext.
    static func innerPacket(_ plain: UnsafeRawBufferPointer) -> (Int, Range<Int>)? {
        guard let first = plain.first else { return nil }
        switch first >> 4 {
        case 4:
            guard plain.count >= 20 else { return nil }
            let length = Int(plain[2]) << 8 | Int(plain[3])
            guard length >= 20, length <= plain.count else { return nil }
            return (length, 12..<16)
        case 6:
            guard plain.count >= 40 else { return nil }
            let length = 40 + (Int(plain[4]) << 8 | Int(plain[5]))
            guard length <= plain.count else { return nil }
            return (length, 8..<24)
        default:
            return nil
        }
    }
}

/// What one call into the device produced. The owner keeps one and calls `removeAll()` after sending,
/// so the arrays keep their capacity (no per-packet allocation).
package struct WireGuardOutput {
    /// A datagram to send to a UDP endpoint.
    package struct Datagram {
        /// The bytes: a datagram to send, or an inner IP packet (header and padding stripped).
        package var buffer: ByteBuffer
        /// Where to send it.
        package var endpoint: WireGuardEndpoint
    }

    /// A decrypted inner IP packet and the peer it came from.
    package struct Packet {
        /// The bytes: a datagram to send, or an inner IP packet (header and padding stripped).
        package var buffer: ByteBuffer
        /// The index of the peer it came from.
        package var peer: Int
    }

    /// Datagrams to send, in order.
    package var datagrams: [Datagram] = []
    /// Decrypted inner packets, in order.
    package var packets: [Packet] = []

    /// All zero.
    package init() {}

    /// Empties both lists, keeping their storage.
    package mutating func removeAll() {
        datagrams.removeAll(keepingCapacity: true)
        packets.removeAll(keepingCapacity: true)
    }
}

/// Why datagrams and packets were dropped, and what the device sent. Plain counters, never reset.
package struct WireGuardCounters: Sendable, Equatable {
    /// Datagrams that are no WireGuard message (type, length, reserved bytes).
    package var malformed: UInt64 = 0
    /// Authenticated packets whose plaintext is no IPv4/IPv6 packet that fits.
    package var malformedInner: UInt64 = 0
    /// Handshake messages whose mac1 is wrong (not addressed to our key).
    package var badMAC: UInt64 = 0
    /// Messages for a receiver index we do not hold.
    package var unknownIndex: UInt64 = 0
    /// Transport messages refused by the replay window or an expired keypair.
    package var replayed: UInt64 = 0
    /// Transport messages whose tag did not verify (forged or corrupted).
    package var decryptionFailed: UInt64 = 0
    /// Authenticated packets whose source address is not in the sender's allowed IPs.
    package var disallowedSource: UInt64 = 0
    /// Handshake messages refused by Noise (bad keys, replayed timestamp, flood, stray response).
    package var handshakeFailures: UInt64 = 0
    /// Cookie replies that answered nothing of ours or did not decrypt.
    package var badCookieReplies: UInt64 = 0
    /// Handshake messages with a valid cookie dropped by the per-address rate limit under load.
    package var rateLimited: UInt64 = 0
    /// Outgoing packets whose destination no peer owns.
    package var noRoute: UInt64 = 0
    /// Messages not sent because the peer has no endpoint yet.
    package var noEndpoint: UInt64 = 0
    /// Staged packets dropped (queue full, or the handshake was given up).
    package var stagedDropped: UInt64 = 0
    /// Outgoing packets copied because the buffer lacked 16 bytes of headroom.
    package var copiedForHeadroom: UInt64 = 0
    /// Handshake initiations sent (first tries and retries).
    package var initiationsSent: UInt64 = 0
    /// Retransmission timer expiries that asked for another initiation.
    package var initiationRetransmissions: UInt64 = 0
    /// Initiations accepted.
    package var initiationsReceived: UInt64 = 0
    /// Responses sent.
    package var responsesSent: UInt64 = 0
    /// Responses accepted (handshakes we completed as initiator).
    package var responsesReceived: UInt64 = 0
    /// Cookie replies sent while under load.
    package var cookieRepliesSent: UInt64 = 0
    /// Cookie replies accepted.
    package var cookieRepliesReceived: UInt64 = 0
    /// Authenticated empty transport messages.
    package var keepalivesReceived: UInt64 = 0
    /// Inner packets delivered to the owner.
    package var packetsReceived: UInt64 = 0

    /// All zero.
    package init() {}
}
