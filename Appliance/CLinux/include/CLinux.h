// CLinux: the Linux calls and constants Swift cannot import on its own (ifreq unions, _IOW ioctl numbers).
// <netinet/in.h> first: shared/SWIFT-LINUX.md §1.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

/// TUNSETIFF and friends are _IOW macros, which Swift does not import.
extern const unsigned long clinux_TUNSETIFF;
extern const unsigned long clinux_TUNSETOFFLOAD;
extern const unsigned long clinux_TUNSETVNETHDRSZ;
extern const unsigned long clinux_TUNGETFEATURES;
