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

#include <netinet/in.h>
#include <sys/uio.h>

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#define CLINUX_IP6T_SO_ORIGINAL_DST 80
#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IP_RECVORIGDSTADDR
#define IP_RECVORIGDSTADDR 20
#endif
#ifndef IP_ORIGDSTADDR
#define IP_ORIGDSTADDR 20
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif
#ifndef IPV6_RECVORIGDSTADDR
#define IPV6_RECVORIGDSTADDR 74
#endif
#ifndef IPV6_ORIGDSTADDR
#define IPV6_ORIGDSTADDR 74
#endif

int clinux_original_destination(int fd, struct sockaddr_storage *out) {
    socklen_t length = sizeof(struct sockaddr_in);
    memset(out, 0, sizeof(*out));
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, out, &length) == 0) return 0;
    int saved = errno;
    length = sizeof(struct sockaddr_in6);
    if (getsockopt(fd, SOL_IPV6, CLINUX_IP6T_SO_ORIGINAL_DST, out, &length) == 0) return 0;
    return -(errno == ENOPROTOOPT ? saved : errno);
}

int clinux_set_transparent(int fd, int ipv6) {
    int one = 1;
    if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) != 0 && !ipv6) return -errno;
    if (ipv6 && setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) != 0) return -errno;
    return 0;
}

int clinux_set_receive_original_destination(int fd, int ipv6) {
    int one = 1;
    if (setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof(one)) != 0 && !ipv6) return -errno;
    if (ipv6 && setsockopt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof(one)) != 0) return -errno;
    return 0;
}

long clinux_receive_with_destination(int fd, void *buffer, size_t length,
                                     struct sockaddr_storage *source, struct sockaddr_storage *destination) {
    char control[256];
    struct iovec vector = { .iov_base = buffer, .iov_len = length };
    struct msghdr message;
    memset(&message, 0, sizeof(message));
    memset(destination, 0, sizeof(*destination));
    message.msg_name = source;
    message.msg_namelen = sizeof(*source);
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    ssize_t received = recvmsg(fd, &message, 0);
    if (received < 0) return -errno;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_IP && header->cmsg_type == IP_ORIGDSTADDR) {
            memcpy(destination, CMSG_DATA(header), sizeof(struct sockaddr_in));
        } else if (header->cmsg_level == SOL_IPV6 && header->cmsg_type == IPV6_ORIGDSTADDR) {
            memcpy(destination, CMSG_DATA(header), sizeof(struct sockaddr_in6));
        }
    }
    return (long)received;
}

#include <spawn.h>
int clinux_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int low) {
    return posix_spawn_file_actions_addclosefrom_np(actions, low);
}
int clinux_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

#include <malloc.h>

void clinux_keep_packet_buffers(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
}
