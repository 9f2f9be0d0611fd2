// CMnl: system headers for Swift. <netinet/in.h> and <sys/socket.h> come first, or clean builds fail
// with 'in_addr has different definitions in different modules' (shared/SWIFT-LINUX.md §1).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
