// QUICError: why a packet or frame could not be read, and the transport error codes of
// RFC 9000 §20.1 that close a connection.

/// A transport error code (RFC 9000 §20.1); `cryptoError(alert)` is 0x0100 + the TLS alert.
package struct QUICTransportError: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    package var rawValue: UInt64
    package init(rawValue: UInt64) { self.rawValue = rawValue }

    package static let noError = Self(rawValue: 0x00)
    package static let internalError = Self(rawValue: 0x01)
    package static let connectionRefused = Self(rawValue: 0x02)
    package static let flowControlError = Self(rawValue: 0x03)
    package static let streamLimitError = Self(rawValue: 0x04)
    package static let streamStateError = Self(rawValue: 0x05)
    package static let finalSizeError = Self(rawValue: 0x06)
    package static let frameEncodingError = Self(rawValue: 0x07)
    package static let transportParameterError = Self(rawValue: 0x08)
    package static let connectionIDLimitError = Self(rawValue: 0x09)
    package static let protocolViolation = Self(rawValue: 0x0A)
    package static let invalidToken = Self(rawValue: 0x0B)
    package static let applicationError = Self(rawValue: 0x0C)
    package static let cryptoBufferExceeded = Self(rawValue: 0x0D)
    package static let keyUpdateError = Self(rawValue: 0x0E)
    package static let aeadLimitReached = Self(rawValue: 0x0F)
    package static let noViablePath = Self(rawValue: 0x10)
    /// A TLS alert carried as a transport error (RFC 9001 §4.8).
    package static func cryptoError(_ alert: UInt8) -> Self { Self(rawValue: 0x0100 + UInt64(alert)) }

    package var description: String {
        let names: [UInt64: String] = [
            0x00: "NO_ERROR", 0x01: "INTERNAL_ERROR", 0x02: "CONNECTION_REFUSED", 0x03: "FLOW_CONTROL_ERROR",
            0x04: "STREAM_LIMIT_ERROR", 0x05: "STREAM_STATE_ERROR", 0x06: "FINAL_SIZE_ERROR",
            0x07: "FRAME_ENCODING_ERROR", 0x08: "TRANSPORT_PARAMETER_ERROR", 0x09: "CONNECTION_ID_LIMIT_ERROR",
            0x0A: "PROTOCOL_VIOLATION", 0x0B: "INVALID_TOKEN", 0x0C: "APPLICATION_ERROR",
            0x0D: "CRYPTO_BUFFER_EXCEEDED", 0x0E: "KEY_UPDATE_ERROR", 0x0F: "AEAD_LIMIT_REACHED", 0x10: "NO_VIABLE_PATH",
        ]
        if let name = names[rawValue] { return name }
        if (0x0100...0x01FF).contains(rawValue) { return "CRYPTO_ERROR(\(rawValue - 0x0100))" }
        return "0x\(String(rawValue, radix: 16))"
    }
}

/// Why bytes could not be read. Thrown on the receive path: numbers, no strings.
package enum QUICWireError: Error, Equatable, Sendable {
    /// The packet ended inside a header field.
    case truncatedHeader
    /// A header field holds a value the version forbids (connection ID longer than 20, fixed bit clear …).
    case badHeader
    /// A packet's Length runs past the datagram.
    case badLength
    /// A frame is malformed or truncated: FRAME_ENCODING_ERROR (RFC 9000 §12.4) for `frameType`.
    case frameEncoding(frameType: UInt64)
    /// A frame type this endpoint does not know: FRAME_ENCODING_ERROR too (RFC 9000 §12.4).
    case unknownFrame(frameType: UInt64)
    /// Transport parameters are malformed (RFC 9000 §7.4): TRANSPORT_PARAMETER_ERROR.
    case transportParameter(id: UInt64)

    /// The transport error that closes the connection for this failure.
    package var transportError: QUICTransportError {
        switch self {
        case .transportParameter: .transportParameterError
        case .frameEncoding, .unknownFrame: .frameEncodingError
        default: .protocolViolation
        }
    }

    /// The frame type to report in CONNECTION_CLOSE, when there is one.
    package var frameType: UInt64 {
        switch self {
        case .frameEncoding(let type), .unknownFrame(let type): type
        default: 0
        }
    }
}
