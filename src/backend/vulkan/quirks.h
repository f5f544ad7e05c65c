/* quirks.h — the driver quirk table: known driver bugs and driver-specific
 * kernel choices, keyed by vendor id, driver id and driver version, applied
 * to a device's kernel caps before the environment switches. Matching is a
 * pure function of a vk_device_info, so it is tested with made-up devices. */
#ifndef SLUICE_VK_QUIRKS_H
#define SLUICE_VK_QUIRKS_H
#include <stdbool.h>
#include <stdint.h>
#include "backend/vulkan/device.h"

/* What a quirk turns off (disable) or on (force). */
enum {
    VK_QUIRK_SUBGROUPS = 1u << 0, /* subgroup reductions (caps.subgroups) */
    VK_QUIRK_FP16 = 1u << 1,      /* fp16 arithmetic / 16-bit storage (caps.fp16) */
    VK_QUIRK_INT_DOT = 1u << 2,   /* packed int8 dot products (caps.int_dot) */
    VK_QUIRK_LANE_ROWS = 1u << 3, /* mat-vec with one row per invocation (caps.lane_rows) */
};

/* One entry. A zero vendor_id or driver_id matches any; the driver version
 * (raw VkPhysicalDeviceProperties::driverVersion, vendor encoded) must lie
 * in [driver_min, driver_max), driver_max 0 meaning no upper bound.
 * `force` may only name VK_QUIRK_LANE_ROWS (a layout choice, not a
 * capability: forcing fp16 on a device without it would be a bug). */
typedef struct vk_quirk {
    const char *name;        /* short id shown by `sluice devices`, e.g. "llvmpipe-lane-rows" */
    uint32_t vendor_id;      /* PCI vendor id; 0: any */
    uint32_t driver_id;      /* VkDriverId; 0: any */
    uint32_t driver_min;     /* inclusive */
    uint32_t driver_max;     /* exclusive; 0: no upper bound */
    uint32_t disable;        /* VK_QUIRK_* turned off */
    uint32_t force;          /* VK_QUIRK_* turned on */
    const char *reason;      /* why, with the public report it rests on */
} vk_quirk;

/* True when q applies to d. Pure. */
bool vk_quirk_matches(const vk_quirk *q, const vk_device_info *d);

/* Writes pointers to the entries of table[0..n) that match d into
 * out[0..cap) in table order and returns how many matched (may exceed
 * cap; only cap are written). Pure. */
uint32_t vk_quirks_match(const vk_quirk *table, uint32_t n, const vk_device_info *d, const vk_quirk **out,
                         uint32_t cap);

/* The built-in table (static, never NULL) and its length in *n. */
const vk_quirk *vk_quirk_table(uint32_t *n);

/* Entries of the built-in table that match d, as vk_quirks_match. Returns 0
 * when SLUICE_VK_NO_QUIRKS=1 asks to ignore the table. */
uint32_t vk_quirks_for(const vk_device_info *d, const vk_quirk **out, uint32_t cap);

/* caps with quirks[0..n) applied: each one's disable bits cleared, then its
 * force bits set. Pure. */
vk_kernel_caps vk_quirks_apply(vk_kernel_caps caps, const vk_quirk *const *quirks, uint32_t n);

/* "subgroups", "fp16", "int_dot" or "lane_rows" joined by ',' for the bits
 * of mask into buf ("" for none). */
void vk_quirk_bits_str(uint32_t mask, char *buf, size_t cap);
#endif
