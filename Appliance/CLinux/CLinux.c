#include "CLinux.h"
#include <sys/ioctl.h>
#include <linux/if_tun.h>

const unsigned long clinux_TUNSETIFF = TUNSETIFF;
const unsigned long clinux_TUNSETOFFLOAD = TUNSETOFFLOAD;
const unsigned long clinux_TUNSETVNETHDRSZ = TUNSETVNETHDRSZ;
const unsigned long clinux_TUNGETFEATURES = TUNGETFEATURES;
