// CSystemd: system headers for Swift. <netinet/in.h> and <sys/socket.h> come first, or clean builds fail
// with 'in_addr has different definitions in different modules' (shared/SWIFT-LINUX.md §1).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-bus-vtable.h>
#include <systemd/sd-daemon.h>
