/// Why HTTP proxy bytes could not be used. Thrown by the head parsers on untrusted input.
package enum HTTPProxyError: Error, Equatable, Sendable {
    /// The head grew past the limit without its terminating empty line.
    case headTooLarge(limit: Int)
    /// The request or status line is not `METHOD SP target SP HTTP/x.y` / `HTTP/x.y SP code …`.
    case malformedStartLine
    /// A header line without a colon, with an empty name, or with whitespace before the colon.
    case malformedHeader
    /// A version other than HTTP/1.0 or HTTP/1.1.
    case unsupportedVersion
    /// A request target we cannot turn into a destination.
    case badTarget
    /// The server answered CONNECT with this status (outbound side).
    case status(Int, reason: String)

    package static let connectRejected = "unexpected status"
}

extension HTTPProxyError: CustomStringConvertible {
    /// Worded as sing's http client and Go's net/http word the same failures.
    package var description: String {
        switch self {
        case .headTooLarge(let limit): return "http: header too large (over \(limit) bytes)"
        case .malformedStartLine: return "malformed HTTP request line"
        case .malformedHeader: return "malformed MIME header line"
        case .unsupportedVersion: return "malformed HTTP version"
        case .badTarget: return "invalid request URI"
        case .status(407, _): return "authentication required"
        case .status(405, _): return "method not allowed"
        case .status(let code, let reason): return "unexpected status: \(code) \(reason)"
        }
    }
}
