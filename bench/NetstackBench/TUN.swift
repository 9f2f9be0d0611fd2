// The `tun` command: a TUN, a transparent Stack and the relay, until SIGTERM/SIGINT.
import Glibc
import NIOCore
import NIOPosix
import Netstack
import NetstackNIO
import NetstackWire
import TunDevice

/// Runs the TUN relay; returns the exit status.
func runTUN(_ arguments: [String]) -> Int32 {
    guard let name = arguments.first else {
        print("netstack-bench tun: missing interface name")
        return 2
    }
    var relay = "127.0.0.1", mtu = 1500, segmentationOffload = true
    var readPath = TunPacketDevice.ReadPath.pollThread
    var batchSize = 64
    var index = 1
    while index < arguments.count {
        switch arguments[index] {
        case "--relay" where index + 1 < arguments.count: relay = arguments[index + 1]; index += 1
        case "--mtu" where index + 1 < arguments.count: mtu = Int(arguments[index + 1]) ?? mtu; index += 1
        case "--batch" where index + 1 < arguments.count: batchSize = max(1, Int(arguments[index + 1]) ?? batchSize); index += 1
        case "--no-tso": segmentationOffload = false
        case "--nio-read": readPath = .nioPipe
        default:
            print("netstack-bench tun: unknown option \(arguments[index])")
            return 2
        }
        index += 1
    }
    // Signals are taken by sigwait on this thread: block them before any thread starts.
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGTERM)
    sigaddset(&signals, SIGINT)
    pthread_sigmask(SIG_BLOCK, &signals, nil)

    let device: TunDevice
    do { device = try TunDevice(TunOptions(name: name)) } catch {
        print("netstack-bench tun: \(error)")
        return 1
    }
    var configuration = StackConfiguration()
    configuration.transparent = true
    configuration.mtu = mtu
    configuration.tcpSegmentationOffload = segmentationOffload
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop = group.next()
    let packetDevice = TunPacketDevice(device: device, batchSize: batchSize, readPath: readPath)
    let driver: NetstackDriver
    do {
        driver = try loop.submit {
            let driver = NetstackDriver(stack: Stack(configuration: configuration, seed: UInt64(getpid())), device: packetDevice, eventLoop: loop)
            relayFlows(of: driver, to: relay)
            driver.start()
            return driver
        }.wait()
    } catch {
        print("netstack-bench tun: \(error)")
        return 1
    }
    print("ready \(device.name) offloads 0x\(String(device.offloads.rawValue, radix: 16))")
    fflush(nil)
    var received: Int32 = 0
    sigwait(&signals, &received)
    let report = try? loop.submit { () -> String in
        let s = driver.stack.statistics
        driver.stop()
        return "packets in \(s.packetsReceived) out \(s.packetsSent), tcp segments in \(s.tcpSegmentsReceived) out \(s.tcpSegmentsSent), "
            + "flows \(s.flowsOpened), bad checksum \(s.badChecksum), malformed \(s.malformed), output drops \(s.outputQueueDrops), "
            + "tun write errors \(packetDevice.writeErrors), dropped writes \(device.droppedWrites)"
    }.wait()
    print(report ?? "stopped")
    try? group.syncShutdownGracefully()
    return 0
}
