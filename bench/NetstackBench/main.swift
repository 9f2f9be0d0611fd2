// netstack-bench: the netstack on a real TUN for bench/netstack.sh, and the long fuzz run.
//
//   netstack-bench tun NAME [--relay 127.0.0.1] [--mtu 1500] [--batch 64] [--no-tso] [--nio-read]
//       opens TUN NAME (virtio-net header, TSO/USO offloads), runs a transparent Stack on one event
//       loop and relays each TCP flow to the same port on the relay address; prints "ready NAME"
//       once the TUN exists, and its counters on SIGTERM/SIGINT. --nio-read reads through NIO's
//       epoll (TunPacketDevice .nioPipe) instead of the poll thread.
//   netstack-bench fuzz [COUNT] [SEED]
//       COUNT (default 10,000,000) random and mutated packets through the wire parsers and a
//       transparent Stack's input path; exits 1 if a bound is broken (a trap is a crash).
//   netstack-bench fuzz-parsers [COUNT] [SEED] [TARGET]
//       COUNT (default 2,000,000) random, mutated and valid streams in random reads through the
//       stream parsers (mux, anytls, gun, simple-obfs, mux.cool, websocket; TARGET: only the one
//       named as in the summary, e.g. smux or "simple-obfs tls"); exits 1 on a split mismatch, a
//       slow input or memory growth.
import Glibc

import CLinux
import ParserFuzzing

// As sing-box's main (Sources/CLI/main.swift): freed 128 KiB packet buffers stay in the heap.
clinux_keep_packet_buffers()

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "tun":
    exit(runTUN(Array(arguments.dropFirst())))
case "fuzz":
    let count = arguments.count > 1 ? Int(arguments[1]) ?? 10_000_000 : 10_000_000
    let seed = arguments.count > 2 ? UInt64(arguments[2]) ?? 1 : 1
    exit(runFuzz(count: count, seed: seed))
case "fuzz-parsers":
    let count = arguments.count > 1 ? Int(arguments[1]) ?? 2_000_000 : 2_000_000
    let seed = arguments.count > 2 ? UInt64(arguments[2]) ?? 1 : 1
    var only: ParserFuzzer.Target?
    if arguments.count > 3 {
        guard let target = ParserFuzzer.Target.allCases.first(where: { "\($0)" == arguments[3] }) else {
            print("netstack-bench fuzz-parsers: unknown target \(arguments[3]) (one of: \(ParserFuzzer.Target.allCases.map { "\($0)" }.joined(separator: ", ")))")
            exit(2)
        }
        only = target
    }
    exit(runParserFuzz(count: count, seed: seed, only: only))
default:
    print("usage: netstack-bench tun NAME [--relay ADDR] [--mtu N] [--batch N] [--no-tso] [--nio-read] | netstack-bench fuzz [COUNT] [SEED] | netstack-bench fuzz-parsers [COUNT] [SEED] [TARGET]")
    exit(2)
}
