/// Why a DNS exchange or lookup failed. Descriptions use sing-box 1.12's wording where it has one,
/// since users see them in logs (`lookup example.com: NXDOMAIN`).
package enum DNSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The server answered with this RCODE (sing-box's `RcodeError`, printed as miekg's mnemonic).
    case rcode(DNSRcode)
    /// NOERROR with no address of the asked family (sing-box router: "empty result").
    case emptyResult
    /// The addresses failed the rule's address limit (sing-box `ErrResponseRejected`).
    case responseRejected
    /// A query re-entered the transport it came from (sing-box: "DNS query loopback in transport[x]").
    case loopback(transport: String)
    /// No answer within the client's timeout (Go surfaces `context.DeadlineExceeded`).
    case timeout
    /// The transport was closed while the query waited (Go's `os.ErrClosed`).
    case closed
    /// The server's answer could not be read.
    case malformedResponse(DNSWireError)
    /// Our query could not be written (a field too large).
    case malformedQuery(DNSWireError)
    /// fakeip answers only A and AAAA.
    case fakeIPOnlyIPQueries
    /// fakeip has no range for the asked family.
    case missingFakeIPRange(ipv6: Bool)
    /// A query message without a question.
    case noQuestion

    package var description: String {
        switch self {
        case .rcode(let rcode): rcode.description
        case .emptyResult: "empty result"
        case .responseRejected: "response rejected"
        case .loopback(let tag): "DNS query loopback in transport[\(tag)]"
        case .timeout: "context deadline exceeded"
        case .closed: "file already closed"
        case .malformedResponse(let error): "unpack response: \(error)"
        case .malformedQuery(let error): "pack request: \(error)"
        case .fakeIPOnlyIPQueries: "only IP queries are supported by fakeip"
        case .missingFakeIPRange(let ipv6): "missing \(ipv6 ? "IPv6" : "IPv4") fakeip address range"
        case .noQuestion: "bad question size: 0"
        }
    }
}

/// A failed lookup of a domain: `lookup example.com: NXDOMAIN`, as sing-box's router words it.
package struct DNSLookupError: Error, CustomStringConvertible {
    package var domain: String
    package var underlying: any Error

    package init(domain: String, underlying: any Error) {
        self.domain = domain
        self.underlying = underlying
    }

    package var description: String { "lookup \(domain): \(underlying)" }
}
