package import NetstackWire

/// Message and time limits of a session (whitepaper §6.1 and §6.2).
package enum SessionLimits {
    /// `REKEY_AFTER_MESSAGES`: the initiator starts a new handshake after this many messages.
    package static let rekeyAfterMessages: UInt64 = 1 << 60
    /// `REJECT_AFTER_MESSAGES`: no message is sent or accepted with a counter at or past this.
    package static let rejectAfterMessages: UInt64 = UInt64.max - (1 << 13)
    /// `REKEY_AFTER_TIME`.
    package static let rekeyAfterTime: Duration = .seconds(120)
    /// `REJECT_AFTER_TIME`: a keypair older than this is dead.
    package static let rejectAfterTime: Duration = .seconds(180)
    /// `REKEY_ATTEMPT_TIME`: give up on a handshake after this long.
    package static let rekeyAttemptTime: Duration = .seconds(90)
    /// `REKEY_TIMEOUT`: retransmit an unanswered initiation after this (plus jitter).
    package static let rekeyTimeout: Duration = .seconds(5)
    /// `KEEPALIVE_TIMEOUT`.
    package static let keepaliveTimeout: Duration = .seconds(10)
    /// `REKEY_TIMEOUT_JITTER_MAX` (wireguard-go): up to a third of a second added to each retransmission.
    package static let rekeyTimeoutJitterMax: Duration = .milliseconds(334)
    /// How many initiations fit into `REKEY_ATTEMPT_TIME` (`MaxTimerHandshakes`).
    package static let maxTimerHandshakes = Int(rekeyAttemptTime / rekeyTimeout)
}

/// One session's transport state: both directions' cipher, the sending counter and the replay window.
///
/// A class because it owns OpenSSL contexts (freed in deinit) and is shared by the index table and the peer's
/// current/previous/next slots. Belongs to the device's event loop: not thread-safe.
package final class Keypair {
    /// Seals with the sending key, opens with the receiving key, in place.
    package let cipher: TransportAEAD
    /// The next counter to send with.
    @exclusivity(unchecked) package var sendCounter: UInt64 = 0
    /// Counters already accepted under the receiving key.
    @exclusivity(unchecked) package var replayFilter = ReplayFilter()
    /// When the handshake that made it completed.
    package let created: Instant
    /// Whether we initiated the handshake (only the initiator rekeys on time/count).
    package let isInitiator: Bool
    /// Our index: the receiver index of messages for us.
    package let localIndex: UInt32
    /// The peer's index: the receiver index we write.
    package let remoteIndex: UInt32

    /// Keys the transport cipher.
    package init(keys: SessionKeys, created: Instant) {
        cipher = TransportAEAD(sendKey: keys.send, receiveKey: keys.receive)
        self.created = created
        isInitiator = keys.isInitiator
        localIndex = keys.localIndex
        remoteIndex = keys.remoteIndex
    }

    /// Whether this keypair may still encrypt at `now` (younger than REJECT_AFTER_TIME, counter below the limit).
    package func maySend(now: Instant) -> Bool {
        sendCounter < SessionLimits.rejectAfterMessages && now - created < SessionLimits.rejectAfterTime
    }

    /// Whether packets under this keypair may still be accepted at `now`.
    package func mayReceive(now: Instant) -> Bool { now - created < SessionLimits.rejectAfterTime }
}

/// A peer's three keypair slots (whitepaper §6.3 / wireguard-go's `Keypairs`): `current` sends; `previous`
/// still receives packets in flight; `next` is a responder's session not yet confirmed by the initiator's first
/// data packet.
package struct KeypairSlots {
    /// The keypair we send with.
    package var current: Keypair?
    /// The one before, still accepted for packets in flight.
    package var previous: Keypair?
    /// A responder's new keypair, waiting for the initiator's first data packet.
    package var next: Keypair?

    /// No keypairs.
    package init() {}

    /// Installs a freshly derived keypair; returns the keypairs that drop out (to unregister their indices).
    package mutating func install(_ keypair: Keypair) -> [Keypair] {
        var dropped: [Keypair] = []
        if keypair.isInitiator {
            // The initiator may send at once. An unconfirmed `next` becomes `previous` (it can still receive),
            // otherwise the old current does.
            if let pending = next {
                next = nil
                if let old = previous { dropped.append(old) }
                if let old = current { dropped.append(old) }
                previous = pending
            } else {
                if let old = previous { dropped.append(old) }
                previous = current
            }
            current = keypair
        } else {
            // The responder waits for the initiator's first data packet before sending with it.
            if let old = next { dropped.append(old) }
            if let old = previous { dropped.append(old) }
            next = keypair
            previous = nil
        }
        return dropped
    }

    /// Called when a packet authenticated under `keypair`: confirms `next` by rotating it in.
    /// Returns the keypair that dropped out, and whether a rotation happened.
    package mutating func received(with keypair: Keypair) -> (rotated: Bool, dropped: Keypair?) {
        guard let pending = next, pending === keypair else { return (false, nil) }
        let dropped = previous
        previous = current
        current = pending
        next = nil
        return (true, dropped)
    }

    /// Every keypair held.
    package var all: [Keypair] { [current, previous, next].compactMap { $0 } }

    /// Drops every keypair.
    package mutating func clear() {
        current = nil
        previous = nil
        next = nil
    }
}
