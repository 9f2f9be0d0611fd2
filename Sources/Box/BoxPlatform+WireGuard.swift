// The Linux side of the `wireguard` endpoint's `system: true`: Appliance's TUN device and rtnetlink behind
// the WireGuard module's `WireGuardSystemPlatform` seam (protocols never import Appliance; the box joins them).
import Adapter
import Netlink
import NetstackNIO
import TunDevice
import WireGuard

/// `WireGuardSystemPlatform` over Appliance, in the namespace the process runs in.
struct BoxWireGuardPlatform: WireGuardSystemPlatform {
    func openInterface(name: String, mtu: UInt32, addresses: [NetworkPrefix]) throws -> any PacketDevice & Sendable {
        // No offloads: the kernel hands over whole packets with full checksums, each sealed on its own.
        let device = try TunDevice(TunOptions(name: name, offloads: []))
        do {
            let socket = try NetlinkSocket()
            try socket.configureInterface(named: device.name, mtu: mtu, addresses: addresses)
        } catch {
            device.close()
            throw AdapterError(.other, "configure tun \(device.name): \(error)")
        }
        return TunPacketDevice(device: device)
    }

    /// Registers the `wireguard` endpoint with this platform (one line in `BoxRegistrations.all`).
    static let register: @Sendable (AdapterRegistry) -> Void = { WireGuardModule.register(in: $0, system: BoxWireGuardPlatform()) }
}
