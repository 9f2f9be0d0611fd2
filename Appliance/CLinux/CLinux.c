#define _GNU_SOURCE
#include "CLinux.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>

const unsigned long clinux_TUNSETIFF = TUNSETIFF;
const unsigned long clinux_TUNSETOFFLOAD = TUNSETOFFLOAD;
const unsigned long clinux_TUNSETVNETHDRSZ = TUNSETVNETHDRSZ;
const unsigned long clinux_TUNGETFEATURES = TUNGETFEATURES;

const int clinux_IFF_TUN = IFF_TUN;
const int clinux_IFF_NO_PI = IFF_NO_PI;
const int clinux_IFF_VNET_HDR = IFF_VNET_HDR;
const int clinux_IFF_MULTI_QUEUE = IFF_MULTI_QUEUE;

const unsigned int clinux_TUN_F_CSUM = TUN_F_CSUM;
const unsigned int clinux_TUN_F_TSO4 = TUN_F_TSO4;
const unsigned int clinux_TUN_F_TSO6 = TUN_F_TSO6;
const unsigned int clinux_TUN_F_TSO_ECN = TUN_F_TSO_ECN;
const unsigned int clinux_TUN_F_USO4 = 0x20;
const unsigned int clinux_TUN_F_USO6 = 0x40;

int clinux_tun_open(const char *name, int flags, char *outname) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = (short)flags;
    if (name != NULL) strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    memcpy(outname, ifr.ifr_name, IFNAMSIZ);
    outname[IFNAMSIZ - 1] = 0;
    return fd;
}

int clinux_setns_net(int fd) {
    return setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
}

size_t clinux_mnl_socket_buffer_size(void) {
    long page = sysconf(_SC_PAGESIZE);
    return page < 8192L ? (size_t)page : 8192UL;
}

int clinux_eventfd(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}
