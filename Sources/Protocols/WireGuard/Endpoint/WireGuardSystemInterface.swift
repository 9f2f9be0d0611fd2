// The seam between the `wireguard` endpoint's `system: true` mode and Linux: the box fills it with
// Appliance's TunDevice and Netlink (STYLE.md §1: protocols and Appliance never import each other).
package import Adapter
package import NetstackNIO
#if canImport(Glibc)
import Glibc
#endif

/// What a system-mode endpoint needs from the host: a kernel TUN carrying the endpoint's addresses.
package protocol WireGuardSystemPlatform: Sendable {
    /// Opens (creating) TUN `name` with no offloads (every packet read is whole, with full checksums, as
    /// WireGuard seals packets one by one), sets `mtu` and `addresses` and brings it up. Blocks (ioctl,
    /// netlink): call it from the control plane. Errors name what failed (`configure tun wg0: …`).
    func openInterface(name: String, mtu: UInt32, addresses: [NetworkPrefix]) throws -> any PacketDevice & Sendable
}

/// Go's default system interface name, sing-tun's `CalculateInterfaceName("wg")`: `wg` and one more than the
/// highest number of an existing `wgN` interface (`wg0` when there is none).
func defaultWireGuardInterfaceName() -> String {
    // if_nameindex(3) asks the kernel of this network namespace (sysfs may be another namespace's mount).
    var next = 0
    if let list = if_nameindex() {
        defer { if_freenameindex(list) }
        var entry = list
        while entry.pointee.if_index != 0, let cName = entry.pointee.if_name {
            let name = String(cString: cName)
            if name.hasPrefix("wg"), let index = Int16(name.dropFirst(2)), index >= next { next = Int(index) + 1 }
            entry += 1
        }
    }
    return "wg\(next)"
}
