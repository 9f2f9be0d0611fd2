// CSystemd: system headers for Swift. <netinet/in.h> and <sys/socket.h> come first, or clean builds fail
// with 'in_addr has different definitions in different modules' (shared/SWIFT-LINUX.md §1).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-bus-vtable.h>
#include <systemd/sd-daemon.h>

// sd-bus vtable entries for Swift, which cannot use the SD_BUS_* initializer macros
// (shared/SWIFT-LINUX.md §1, §3). Each fills one slot of a caller-owned sd_bus_vtable array with
// exactly what the macro would; the strings must outlive the registration. `names` is the
// macro's `_in_names _out_names`: every parameter name followed by a NUL ("" for none).
static inline void csystemd_vtable_start(sd_bus_vtable *slot, uint64_t flags) {
    *slot = (sd_bus_vtable)SD_BUS_VTABLE_START(flags);
}
static inline void csystemd_vtable_method(sd_bus_vtable *slot, const char *member, const char *signature,
                                          const char *result, const char *names,
                                          sd_bus_message_handler_t handler, uint64_t flags) {
    *slot = (sd_bus_vtable)SD_BUS_METHOD_WITH_NAMES_OFFSET(member, signature, "", result, "", handler, 0, flags);
    slot->x.method.names = names;
}
static inline void csystemd_vtable_property(sd_bus_vtable *slot, const char *member, const char *signature,
                                            sd_bus_property_get_t getter, uint64_t flags) {
    *slot = (sd_bus_vtable)SD_BUS_PROPERTY(member, signature, getter, 0, flags);
}
static inline void csystemd_vtable_end(sd_bus_vtable *slot) {
    *slot = (sd_bus_vtable)SD_BUS_VTABLE_END;
}
/// SD_BUS_VTABLE_UNPRIVILEGED: non-root callers may call the method (we check credentials ourselves).
static inline uint64_t csystemd_vtable_unprivileged(void) { return SD_BUS_VTABLE_UNPRIVILEGED; }
/// SD_BUS_VTABLE_PROPERTY_CONST / _EMITS_CHANGE.
static inline uint64_t csystemd_vtable_property_const(void) { return SD_BUS_VTABLE_PROPERTY_CONST; }
static inline uint64_t csystemd_vtable_property_emits_change(void) { return SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE; }
/// SD_BUS_CREDS_UID and _EUID (asking the bus daemon when the message lacks them), for sd_bus_query_sender_creds.
static inline uint64_t csystemd_creds_uids(void) { return SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT; }
