import Testing
import Glibc
import NIOCore
import NetstackWire
import Netstack
import NetstackTesting

/// Resident bytes of this process (/proc/self/statm, second field, in pages).
private func residentBytes() -> Int {
    guard let file = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(file) }
    var size = 0, resident = 0
    guard withUnsafeMutablePointer(to: &size, { s in withUnsafeMutablePointer(to: &resident) { r in
        fscanfTwo(file, s, r) } }) else { return 0 }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
}

private func fscanfTwo(_ file: UnsafeMutablePointer<FILE>, _ a: UnsafeMutablePointer<Int>, _ b: UnsafeMutablePointer<Int>) -> Bool {
    var line = [CChar](repeating: 0, count: 256)
    guard fgets(&line, 256, file) != nil else { return false }
    let fields = String(cString: line).split(separator: " ")
    guard fields.count >= 2, let x = Int(fields[0]), let y = Int(fields[1]) else { return false }
    a.pointee = x; b.pointee = y
    return true
}

// Resident bytes per idle established TCP flow on the terminating side (ANCHORS: Go's gvisor tun spends
// 53 KB). Opt-in (NETSTACK_BENCH=1): heap figures are process-wide, so nothing else may run beside it.

@Suite(.serialized) struct IdleFlowCost {
    @Test(.enabled(if: getenv("NETSTACK_BENCH") != nil, "NETSTACK_BENCH=1"))
    func residentBytesPerIdleTCPFlow() throws {
        var ca = StackConfiguration(); ca.transparent = true
        var cb = StackConfiguration(); cb.ipv4Addresses = [IPv4Address(10, 0, 0, 2)]
        cb.ephemeralPorts = 10000...60000
        let a = Stack(configuration: ca, seed: 31), b = Stack(configuration: cb, seed: 32)
        let link = SimulatedLink(a: a, b: b, seed: 33)
        let count = 5000
        var established = 0
        let before = residentBytes()
        for i in 0..<count {
            _ = try b.connectTCP(to: Endpoint(.v4(IPv4Address(198, 18, UInt8(i >> 8), UInt8(i & 0xff))), 443))
        }
        link.run(timeout: .seconds(30), until: { established == count }) {
            while let e = a.nextEvent() {
                if case .incoming(let id, _) = e { try? a.accept(id) }
                if case .connected = e { established += 1 }
            }
            while b.nextEvent() != nil {}
        }
        let after = residentBytes()
        #expect(established == count)
        // Both stacks hold `count` flows; split evenly as an upper bound for one side.
        let perFlow = Double(after - before) / Double(count) / 2
        print("idle TCP flow: \(Int(perFlow)) resident bytes per flow per side (\(count) flows)")
        #expect(perFlow < 64 * 1024)
    }
}
