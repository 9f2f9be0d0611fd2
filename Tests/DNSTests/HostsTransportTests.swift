import Testing
import Adapter
@testable import DNS
#if canImport(Glibc)
import Glibc
#endif

/// A temporary file removed when the value goes away.
final class TemporaryFile {
    let path: String
    init(_ contents: String) {
        var template = Array("/tmp/dns-test-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        close(fd)
        write(contents)
    }
    func write(_ contents: String) {
        let fd = open(path, O_WRONLY | O_TRUNC)
        _ = contents.utf8CString.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count - 1) }
        close(fd)
    }
    deinit { unlink(path) }
}

@Suite struct HostsTransportTests {
    let hostsText = """
    # comment line
    127.0.0.1   localhost
    ::1         localhost ip6-localhost
    10.1.2.3    Server.LAN server   # trailing comment
    10.1.2.4    server.lan
    fd00::5     v6only.lan
    not-an-ip   bad.lan
    10.9.9.9
    \t192.0.2.1\ttabbed.lan\r
    """

    @Test func parsesHostsText() throws {
        let table = HostsFile.parse(Array(hostsText.utf8))
        #expect(table[try DNSName("server.lan")]?.map(\.description) == ["10.1.2.3", "10.1.2.4"])
        #expect(table[try DNSName("localhost")]?.map(\.description) == ["127.0.0.1", "::1"])
        #expect(table[try DNSName("bad.lan")] == nil)
        #expect(table[try DNSName("tabbed.lan")]?.map(\.description) == ["192.0.2.1"])
    }

    @Test func answersLikeSingBox() async throws {
        let file = TemporaryFile(hostsText)
        let transport = try HostsTransport(tag: "hosts", paths: [file.path], predefined: [("server.lan", [(ip("7.7.7.7"))]), ("pre.lan", [(ip("::7"))])])
        let predefined = try await transport.exchange(.query(id: 4, name: try DNSName("SERVER.lan"), type: .a))
        #expect(predefined.addresses == [(ip("7.7.7.7"))])
        #expect(predefined.id == 4 && predefined.isAuthoritative && predefined.answers[0].ttl == 600)
        let fromFile = try await transport.exchange(.query(name: try DNSName("localhost"), type: .aaaa))
        #expect(fromFile.addresses.map(\.description) == ["::1"])
        // Found, but no address of that family: empty NOERROR.
        let emptyFamily = try await transport.exchange(.query(name: try DNSName("v6only.lan"), type: .a))
        #expect(emptyFamily.rcode == .noError && emptyFamily.answers.isEmpty)
        let missing = try await transport.exchange(.query(name: try DNSName("nowhere.lan"), type: .a))
        #expect(missing.rcode == .nameError && missing.isResponse && !missing.recursionAvailable)
        let txt = try await transport.exchange(.query(name: try DNSName("server.lan"), type: .txt))
        #expect(txt.rcode == .nameError)
    }

    @Test func rereadsAChangedFileAfterCacheAge() async throws {
        let clock = TestClock()
        let file = TemporaryFile("10.0.0.1 a.lan\n")
        let hosts = HostsFile(path: file.path, now: clock.now)
        #expect(hosts.lookup(try DNSName("a.lan")).map(\.description) == ["10.0.0.1"])
        file.write("10.0.0.2 a.lan b.lan\n")
        #expect(hosts.lookup(try DNSName("a.lan")).map(\.description) == ["10.0.0.1"])
        clock.advance(.seconds(6))
        #expect(hosts.lookup(try DNSName("b.lan")).map(\.description) == ["10.0.0.2"])
    }

    @Test func missingFileAnswersNXDOMAIN() async throws {
        let transport = try HostsTransport(tag: "h", paths: ["/nonexistent/hosts"])
        let response = try await transport.exchange(.query(name: try DNSName("a.lan"), type: .a))
        #expect(response.rcode == .nameError)
    }
}
