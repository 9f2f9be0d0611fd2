// CZlib: zlib for the binary rule-set (.srs) body. <netinet/in.h> first (shared/SWIFT-LINUX.md §1).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <zlib.h>
