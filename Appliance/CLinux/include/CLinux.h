// CLinux: the Linux calls and constants Swift cannot import on its own (ifreq unions, _IOW ioctl numbers,
// sysconf-based macros, setns), and <sys/epoll.h>, which Glibc does not export. <netinet/in.h> first:
// shared/SWIFT-LINUX.md §1.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <stddef.h>
#include <stdint.h>

/// TUNSETIFF and friends are _IOW macros, which Swift does not import.
extern const unsigned long clinux_TUNSETIFF;
extern const unsigned long clinux_TUNSETOFFLOAD;
extern const unsigned long clinux_TUNSETVNETHDRSZ;
extern const unsigned long clinux_TUNGETFEATURES;

/// IFF_TUN | IFF_NO_PI | IFF_VNET_HDR and IFF_MULTI_QUEUE from <linux/if_tun.h>.
extern const int clinux_IFF_TUN;
extern const int clinux_IFF_NO_PI;
extern const int clinux_IFF_VNET_HDR;
extern const int clinux_IFF_MULTI_QUEUE;

/// TUN_F_* offload bits; USO4/USO6 are missing from Debian 12's 6.1 headers and defined here (Linux 6.2).
extern const unsigned int clinux_TUN_F_CSUM;
extern const unsigned int clinux_TUN_F_TSO4;
extern const unsigned int clinux_TUN_F_TSO6;
extern const unsigned int clinux_TUN_F_TSO_ECN;
extern const unsigned int clinux_TUN_F_USO4;
extern const unsigned int clinux_TUN_F_USO6;

/// Opens /dev/net/tun (O_RDWR|O_CLOEXEC|O_NONBLOCK) and attaches it to the interface `name` with `flags`
/// (TUNSETIFF). An empty name lets the kernel pick one. On success returns the fd and copies the
/// interface's name into `outname` (at least 16 bytes); on failure returns -errno.
int clinux_tun_open(const char *name, int flags, char *outname);

/// Enters the network namespace behind `fd` for the calling thread: setns(fd, CLONE_NEWNET).
/// Returns 0 or -errno.
int clinux_setns_net(int fd);

/// MNL_SOCKET_BUFFER_SIZE is a sysconf() expression; this is its value.
size_t clinux_mnl_socket_buffer_size(void);

/// Creates an eventfd (non-blocking, close-on-exec). Returns the fd or -errno.
int clinux_eventfd(void);

/// The destination a connection had before an nftables `redirect`/DNAT (SO_ORIGINAL_DST, or
/// IP6T_SO_ORIGINAL_DST for IPv6 sockets). Returns 0 and fills `out`, or -errno.
int clinux_original_destination(int fd, struct sockaddr_storage *out);

/// Sets IP_TRANSPARENT (and IPV6_TRANSPARENT when `ipv6`) so the socket may bind/accept foreign
/// addresses delivered by `tproxy`. Returns 0 or -errno.
int clinux_set_transparent(int fd, int ipv6);

/// Asks for the original destination of every datagram (IP_RECVORIGDSTADDR / IPV6_RECVORIGDSTADDR),
/// for UDP tproxy. Returns 0 or -errno.
int clinux_set_receive_original_destination(int fd, int ipv6);

/// recvmsg one datagram into `buffer`, with its source and (with the option above) its original
/// destination; `destination->ss_family` is 0 when the kernel gave none. Returns the length or -errno.
long clinux_receive_with_destination(int fd, void *buffer, size_t length,
                                     struct sockaddr_storage *source, struct sockaddr_storage *destination);

#include <spawn.h>
/// posix_spawn file actions glibc declares only under _GNU_SOURCE (tests spawn peers with them):
/// close every descriptor from `low` up in the child; change the child's working directory.
int clinux_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int low);
int clinux_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// Tunes glibc malloc for packet buffers (mallopt): allocations up to 1 MiB come from the heap (a TUN
/// read takes a 128 KiB ByteBuffer, which the default 128 KiB mmap threshold would mmap and munmap each
/// time) and up to 8 MiB of freed heap top is kept rather than trimmed and faulted back page by page.
void clinux_keep_packet_buffers(void);
