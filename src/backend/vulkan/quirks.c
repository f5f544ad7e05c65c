/* quirks.c — the driver quirk table and its matching. Every entry names the
 * driver it applies to and cites why; an entry nobody can justify with a
 * measurement or a public report does not belong here. To check whether a
 * quirk is still needed on a newer driver, run with SLUICE_VK_NO_QUIRKS=1
 * (the table is then ignored) and compare against the CPU engine. */
#include "backend/vulkan/quirks.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <volk.h>

static const vk_quirk table[] = {
    /* lavapipe runs a workgroup's invocations as SIMD lanes of one CPU
     * thread: lanes that read different addresses cost one load each, so
     * the GPU mat-vec layout (lanes split a row's columns, then a
     * reduction) is slow there. One row per invocation measured 13x faster
     * on Mesa 22.3.6 / LLVM 15 (tiny256 Q4_0 tg 4.4 -> 58 tokens/s,
     * bench/README.md "Vulkan on lavapipe"). The same flag picks the
     * CPU-shaped mat-mat, attention and small-op kernels (ops.c: lanes
     * over columns / positions, texel loads). A layout choice, not a bug:
     * SLUICE_VK_MMV_SPLIT=1 still forces the GPU layout. */
    {.name = "llvmpipe-lane-rows",
     .driver_id = VK_DRIVER_ID_MESA_LLVMPIPE,
     .force = VK_QUIRK_LANE_ROWS,
     .reason = "CPU driver: CPU-shaped kernels (one mat-vec row per invocation: 13x faster; bench/README.md)"},
    /* MoltenVK on AMD GPUs reports a 64-wide subgroup but Metal runs 32-wide
     * SIMD groups, so subgroup arithmetic (subgroupAdd, our reductions)
     * gives wrong results: llama.cpp issue #15846 (RDNA1 gibberish), worked
     * around there by turning subgroup arithmetic off for MoltenVK + AMD
     * (llama.cpp PR #15886); root cause MoltenVK issue #2756, changed in
     * MoltenVK PR #2755 (July 2026) whose release version we cannot pin
     * down, so the entry covers every version. */
    {.name = "moltenvk-amd-subgroups",
     .vendor_id = 0x1002,
     .driver_id = VK_DRIVER_ID_MOLTENVK,
     .disable = VK_QUIRK_SUBGROUPS,
     .reason = "MoltenVK on AMD: wrong subgroup arithmetic (llama.cpp #15846, MoltenVK #2756)"},
};

bool vk_quirk_matches(const vk_quirk *q, const vk_device_info *d) {
    if (q->vendor_id && q->vendor_id != d->vendor_id) return false;
    if (q->driver_id && q->driver_id != d->driver_id) return false;
    if (d->driver_version < q->driver_min) return false;
    if (q->driver_max && d->driver_version >= q->driver_max) return false;
    return true;
}

uint32_t vk_quirks_match(const vk_quirk *tab, uint32_t n, const vk_device_info *d, const vk_quirk **out,
                         uint32_t cap) {
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (vk_quirk_matches(&tab[i], d)) {
            if (k < cap) out[k] = &tab[i];
            k++;
        }
    return k;
}

const vk_quirk *vk_quirk_table(uint32_t *n) {
    *n = (uint32_t)(sizeof table / sizeof table[0]);
    return table;
}

uint32_t vk_quirks_for(const vk_device_info *d, const vk_quirk **out, uint32_t cap) {
    const char *off = getenv("SLUICE_VK_NO_QUIRKS");
    if (off && *off && strcmp(off, "0") != 0) return 0;
    uint32_t n;
    const vk_quirk *tab = vk_quirk_table(&n);
    return vk_quirks_match(tab, n, d, out, cap);
}

vk_kernel_caps vk_quirks_apply(vk_kernel_caps k, const vk_quirk *const *quirks, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t off = quirks[i]->disable, on = quirks[i]->force;
        if (off & VK_QUIRK_SUBGROUPS) k.subgroups = false;
        if (off & VK_QUIRK_FP16) k.fp16 = false;
        if (off & VK_QUIRK_INT_DOT) k.int_dot = false;
        if (off & VK_QUIRK_LANE_ROWS) k.lane_rows = false;
        if (on & VK_QUIRK_LANE_ROWS) k.lane_rows = true;
    }
    return k;
}

void vk_quirk_bits_str(uint32_t mask, char *buf, size_t cap) {
    static const char *names[] = {"subgroups", "fp16", "int_dot", "lane_rows"};
    size_t used = 0;
    if (cap) buf[0] = 0;
    for (uint32_t b = 0; b < 4; b++)
        if (mask & (1u << b)) {
            int w = snprintf(buf + used, used < cap ? cap - used : 0, "%s%s", used ? "," : "", names[b]);
            if (w < 0 || used + (size_t)w >= cap) break;
            used += (size_t)w;
        }
}
