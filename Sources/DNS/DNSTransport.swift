package import Adapter

/// A DNS server as sing-box 1.12 sees one (`adapter.DNSTransport`): a tag, a type string and an
/// exchange of one message for one response.
///
/// Contract: `exchange` takes a query with at least one question and returns the server's response
/// with the query's ID. It may be called concurrently from any task. It throws `DNSError` for DNS-level
/// failures (a transport may throw `.rcode` instead of building a response; the client turns that into
/// a response as sing-box does) and the dialer's errors for socket failures. Cancellation of the
/// calling task abandons the query. Timeouts are the client's job; transports bound their own retries.
package protocol DNSTransport: AnyObject, Sendable {
    /// The server's tag in the configuration (`dns.servers[].tag`).
    var tag: String { get }
    /// The sing-box type string: `udp`, `tcp`, `local`, `hosts`, `fakeip`, …
    var type: String { get }
    /// Sends `message` and returns the response.
    func exchange(_ message: DNSMessage) async throws -> DNSMessage
    /// Releases sockets; queries still waiting fail with `DNSError.closed`.
    func close() async
}

extension DNSTransport {
    package func close() async {}
}

/// Builds sing-box's fixed responses (`dns.FixedResponse*`): QR, AA, RD and RA set.
package enum DNSFixedResponse {
    /// A response with only a status, echoing the query's ID and questions.
    package static func status(_ query: DNSMessage, rcode: DNSRcode) -> DNSMessage {
        DNSMessage(id: query.id, isResponse: true, isAuthoritative: true, recursionDesired: true,
                   recursionAvailable: true, rcode: rcode, questions: query.questions)
    }

    /// A NOERROR response with the addresses matching the question's type (A for IPv4, AAAA for IPv6).
    package static func addresses(id: UInt16, question: DNSQuestion, addresses: [IPAddress], ttl: UInt32) -> DNSMessage {
        var response = DNSMessage(id: id, isResponse: true, isAuthoritative: true, recursionDesired: true,
                                  recursionAvailable: true, questions: [question])
        for address in addresses {
            switch address {
            case .v4 where question.type == .a, .v6 where question.type == .aaaa:
                response.answers.append(.address(question.name, address, ttl: ttl))
            default:
                continue
            }
        }
        return response
    }
}

/// sing-box's `C.DefaultDNSTTL`: the TTL of answers made from hosts, fakeip and predefined rules.
package let defaultDNSTTL: UInt32 = 600

extension DNSMessage {
    /// The addresses a response carries (sing-box `MessageToAddresses`): A and AAAA answers and the
    /// ipv4hint/ipv6hint of HTTPS answers, in answer order; none unless the RCODE is NOERROR.
    package var addresses: [IPAddress] {
        guard rcode == .noError else { return [] }
        var result: [IPAddress] = []
        for record in answers {
            switch record.data {
            case .a(let address) where record.type == .a, .aaaa(let address) where record.type == .aaaa:
                result.append(address)
            case .svcb(let svcb) where record.type == .https:
                result += svcb.ipv4Hints
                result += svcb.ipv6Hints
            default: continue
            }
        }
        return result
    }
}
