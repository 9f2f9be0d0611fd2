package import NetstackWire

/// The per-peer timer state machine of whitepaper §6 as a pure value: events in (with the time), deadlines and
/// actions out. No clock, no scheduling; the device asks `nextDeadline` and calls `expire(now:)`.
///
/// Timers (names as wireguard-go's):
/// - retransmitHandshake: an initiation went unanswered for REKEY_TIMEOUT + jitter → send it again, at most
///   `maxTimerHandshakes` times (REKEY_ATTEMPT_TIME), then give up and drop staged packets;
/// - sendKeepalive: we received data and sent nothing back for KEEPALIVE_TIMEOUT → send a keepalive;
/// - newHandshake: we sent data and heard nothing for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT → new handshake;
/// - zeroKeyMaterial: no new session for 3 × REJECT_AFTER_TIME → wipe every key;
/// - persistentKeepalive: nothing authenticated went either way for the configured interval → keepalive.
package struct PeerTimers: Sendable {
    /// What the owner must do after `expire(now:)`.
    package struct Actions: OptionSet, Sendable {
        /// The action bits.
        package let rawValue: UInt8
        /// Actions from bits.
        package init(rawValue: UInt8) { self.rawValue = rawValue }
        /// Send an initiation as a retry (the attempt counter keeps counting).
        package static let retransmitInitiation = Actions(rawValue: 1)
        /// Send a fresh initiation (the attempt counter restarts).
        package static let newInitiation = Actions(rawValue: 2)
        /// Send a keepalive (or the staged packets).
        package static let sendKeepalive = Actions(rawValue: 4)
        /// Handshake attempts exhausted: drop staged packets.
        package static let giveUp = Actions(rawValue: 8)
        /// Wipe every keypair and the handshake.
        package static let zeroKeyMaterial = Actions(rawValue: 16)
    }

    /// When to resend an unanswered initiation.
    package private(set) var retransmitHandshake: Instant?
    /// When to send a keepalive for received data.
    package private(set) var sendKeepalive: Instant?
    /// When to start a handshake because sent data went unanswered.
    package private(set) var newHandshake: Instant?
    /// When to wipe every key.
    package private(set) var zeroKeyMaterial: Instant?
    /// When the persistent keepalive is due.
    package private(set) var persistentKeepalive: Instant?
    /// Data arrived while a keepalive was already scheduled: schedule another after it fires.
    private var needAnotherKeepalive = false
    /// Retransmissions of the current initiation so far.
    package private(set) var handshakeAttempts = 0
    /// When we last sent an initiation (the sending rate limit: one per REKEY_TIMEOUT).
    package private(set) var lastSentHandshake: Instant?
    /// Set once we started the "last minute" handshake for a receiving-only initiator session.
    package var sentLastMinuteHandshake = false
    /// The configured persistent keepalive; nil when off.
    package var persistentKeepaliveInterval: Duration?

    /// No timer armed.
    package init(persistentKeepaliveInterval: Duration? = nil) {
        self.persistentKeepaliveInterval = persistentKeepaliveInterval
    }

    // MARK: Events

    /// A data packet (not a keepalive) went out.
    package mutating func dataSent(now: Instant) {
        if newHandshake == nil { newHandshake = now + SessionLimits.keepaliveTimeout + SessionLimits.rekeyTimeout }
    }

    /// A data packet (not a keepalive) came in.
    package mutating func dataReceived(now: Instant) {
        if sendKeepalive == nil {
            sendKeepalive = now + SessionLimits.keepaliveTimeout
        } else {
            needAnotherKeepalive = true
        }
    }

    /// Any authenticated packet (data, keepalive, handshake) went out: it carries the keepalive's news.
    package mutating func anyAuthenticatedPacketSent() { sendKeepalive = nil }

    /// Any authenticated packet came in: the peer is alive.
    package mutating func anyAuthenticatedPacketReceived() { newHandshake = nil }

    /// Any authenticated packet in either direction: restarts the persistent keepalive.
    package mutating func anyAuthenticatedPacketTraversal(now: Instant) {
        if let interval = persistentKeepaliveInterval, interval > .zero { persistentKeepalive = now + interval }
    }

    /// Whether an initiation may be sent now (at most one per REKEY_TIMEOUT).
    package func mayInitiate(now: Instant) -> Bool {
        guard let last = lastSentHandshake else { return true }
        return now - last >= SessionLimits.rekeyTimeout
    }

    /// An initiation went out; `jitter` is in 0..<rekeyTimeoutJitterMax (the owner draws it).
    package mutating func handshakeInitiated(now: Instant, jitter: Duration, isRetry: Bool) {
        if !isRetry { handshakeAttempts = 0 }
        lastSentHandshake = now
        retransmitHandshake = now + SessionLimits.rekeyTimeout + jitter
    }

    /// The handshake completed (a response consumed, or a `next` keypair confirmed).
    package mutating func handshakeComplete() {
        retransmitHandshake = nil
        handshakeAttempts = 0
        sentLastMinuteHandshake = false
    }

    /// New session keys were derived.
    package mutating func sessionDerived(now: Instant) {
        zeroKeyMaterial = now + SessionLimits.rejectAfterTime * 3
    }

    /// Everything stops (peer removed or device down).
    package mutating func stop() {
        retransmitHandshake = nil
        sendKeepalive = nil
        newHandshake = nil
        zeroKeyMaterial = nil
        persistentKeepalive = nil
        needAnotherKeepalive = false
    }

    // MARK: Expiry

    /// The earliest pending deadline.
    package var nextDeadline: Instant? {
        // Without building an array: this runs on every poll.
        var earliest = retransmitHandshake
        @inline(__always) func consider(_ deadline: Instant?) {
            guard let deadline else { return }
            if let current = earliest, current <= deadline { return }
            earliest = deadline
        }
        consider(sendKeepalive)
        consider(newHandshake)
        consider(zeroKeyMaterial)
        consider(persistentKeepalive)
        return earliest
    }

    /// Fires every timer due at `now` and says what to do.
    package mutating func expire(now: Instant) -> Actions {
        var actions: Actions = []
        if let deadline = retransmitHandshake, deadline <= now {
            retransmitHandshake = nil
            if handshakeAttempts > SessionLimits.maxTimerHandshakes {
                // Give up: no new-handshake timer, and wipe keys later if nothing else happens.
                actions.insert(.giveUp)
                newHandshake = nil
                if zeroKeyMaterial == nil { zeroKeyMaterial = now + SessionLimits.rejectAfterTime * 3 }
            } else {
                handshakeAttempts += 1
                actions.insert(.retransmitInitiation)
            }
        }
        if let deadline = sendKeepalive, deadline <= now {
            sendKeepalive = nil
            actions.insert(.sendKeepalive)
            if needAnotherKeepalive {
                needAnotherKeepalive = false
                sendKeepalive = now + SessionLimits.keepaliveTimeout
            }
        }
        if let deadline = newHandshake, deadline <= now {
            newHandshake = nil
            actions.insert(.newInitiation)
        }
        if let deadline = zeroKeyMaterial, deadline <= now {
            zeroKeyMaterial = nil
            actions.insert(.zeroKeyMaterial)
        }
        if let deadline = persistentKeepalive, deadline <= now {
            persistentKeepalive = nil
            if persistentKeepaliveInterval != nil { actions.insert(.sendKeepalive) }
        }
        return actions
    }
}
