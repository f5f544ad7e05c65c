/* device.h — Vulkan loader, instance and physical devices: what sluice
 * knows about each GPU (capabilities, limits, heaps) and the rule that
 * picks one. The loader is opened at run time (volk), so a machine without
 * libvulkan still runs sluice on the CPU engine. */
#ifndef SLUICE_VK_DEVICE_H
#define SLUICE_VK_DEVICE_H
#include <stdbool.h>
#include <stdint.h>
#include "sluice/sluice.h"

typedef enum vk_dev_type { VK_DEV_OTHER, VK_DEV_INTEGRATED, VK_DEV_DISCRETE, VK_DEV_VIRTUAL, VK_DEV_CPU } vk_dev_type;

#define VK_MAX_HEAPS 16

typedef struct vk_heap {
    uint64_t size;       /* bytes */
    bool device_local;
} vk_heap;

/* One physical device as sluice sees it. Flags are false where the device
 * reports Vulkan < 1.2 (sluice needs 1.2 to run on it: `usable`). */
typedef struct vk_device_info {
    char name[256];
    uint32_t vendor_id, device_id;
    vk_dev_type type;
    uint32_t api_version;           /* the device's, VK_MAKE_API_VERSION packed */
    uint32_t api_used;              /* min(instance, device): what sluice may use on it */
    uint32_t driver_id;             /* VkDriverId; 0 when unknown */
    char driver_name[256];          /* e.g. "llvmpipe", "NVIDIA" */
    char driver_info[256];          /* e.g. "Mesa 22.3.6 (LLVM 15.0.6)" */
    uint32_t driver_version;        /* raw, vendor encoded: see vk_driver_version_str */
    uint8_t pipeline_cache_uuid[16]; /* pipelineCacheUUID: cache data is valid only where it matches */
    uint32_t n_heaps;
    vk_heap heaps[VK_MAX_HEAPS];
    uint32_t subgroup_size;         /* default subgroup size */
    uint32_t subgroup_min, subgroup_max; /* size control range; 0 when unknown */
    bool subgroup_arith;            /* subgroup arithmetic ops in compute shaders */
    bool fp16;                      /* shaderFloat16 */
    bool int8;                      /* shaderInt8 */
    bool storage16;                 /* storageBuffer16BitAccess */
    bool storage8;                  /* storageBuffer8BitAccess */
    bool int_dot;                   /* shaderIntegerDotProduct (1.3 or KHR ext) */
    bool usable;                    /* Vulkan >= 1.2: sluice can run on it */
    uint64_t max_storage_buffer_range; /* bytes one storage binding may span */
    uint32_t max_uniform_buffer_range; /* bytes one uniform binding may span */
    uint32_t max_texel_elements;       /* maxTexelBufferElements: words one texel view may span */
    uint32_t min_ubo_offset_align;     /* minUniformBufferOffsetAlignment, bytes */
    uint64_t max_alloc;             /* maxMemoryAllocationSize */
    uint32_t max_shared;            /* maxComputeSharedMemorySize, bytes */
    uint32_t max_wg_invocations;    /* maxComputeWorkGroupInvocations */
    uint32_t max_wg_count[3];       /* maxComputeWorkGroupCount */
} vk_device_info;

/* Kernel paths sluice takes on a device: its capabilities, then the quirk
 * table (quirks.h: known driver bugs turn paths off, driver-specific
 * layouts such as lane_rows on lavapipe turn on; SLUICE_VK_NO_QUIRKS=1
 * ignores it), then the environment switches, which win over both:
 * SLUICE_VK_DISABLE_SUBGROUPS=1, SLUICE_VK_DISABLE_FP16=1,
 * SLUICE_VK_DISABLE_INT_DOT=1, SLUICE_VK_MMV_SPLIT=1. The scalar path
 * (shared-memory reductions, fp32 arithmetic) always exists. */
typedef struct vk_kernel_caps {
    bool subgroups;  /* subgroup reductions instead of shared memory */
    bool fp16;       /* fp16 arithmetic and 16-bit storage */
    bool int_dot;    /* packed int8 dot products */
    bool lane_rows;  /* matrix x vector with one row per invocation (CPU
                        drivers, by quirk), else the GPU layout (lanes split
                        a row's columns); SLUICE_VK_MMV_SPLIT=1 forces the
                        GPU layout */
} vk_kernel_caps;
/* Most quirk entries that may apply to one device. */
#define VK_MAX_QUIRKS 8
vk_kernel_caps vk_kernel_caps_for(const vk_device_info *d);

const char *vk_dev_type_name(vk_dev_type t);      /* "discrete", "cpu", ... */
const char *vk_vendor_name(uint32_t vendor_id);  /* "NVIDIA", "AMD", ...; "unknown" */
/* Driver version decoded the way the vendor packs it (NVIDIA 10.8.8.6
 * bits, Intel on Windows 18.14, others VK_MAKE_API_VERSION) into buf. */
void vk_driver_version_str(const vk_device_info *d, char *buf, size_t cap);
/* A packed Vulkan API version as "major.minor.patch" into buf. */
void vk_api_version_str(uint32_t v, char *buf, size_t cap);

typedef struct vk_instance vk_instance;

/* True when the environment asks for the validation layer
 * (SLUICE_VK_VALIDATE=1). */
bool vk_validate_from_env(void);

/* Opens the Vulkan loader, creates an instance (Vulkan 1.2 or newer) and
 * reads every physical device. With validate, VK_LAYER_KHRONOS_validation
 * (with synchronization validation where offered) and a debug messenger
 * are enabled; every warning or error message is logged and counted
 * (vk_instance_messages). Fails with SLUICE_ERR_UNSUPPORTED when there is
 * no loader ("no Vulkan loader"), no 1.2 instance, or validation is asked
 * for but the layer is not installed. Destroy with vk_instance_destroy. */
sluice_status vk_instance_create(vk_instance **out, bool validate, sluice_error *err);
void vk_instance_destroy(vk_instance *inst); /* NULL ok */

uint32_t vk_instance_device_count(const vk_instance *inst);
/* Device i (< vk_instance_device_count), owned by inst. */
const vk_device_info *vk_instance_device(const vk_instance *inst, uint32_t i);
/* Validation warnings and errors reported so far (0 without validation). */
uint32_t vk_instance_messages(const vk_instance *inst);
/* Instance-level API version the loader offered (VK_MAKE_API_VERSION). */
uint32_t vk_instance_api_version(const vk_instance *inst);

/* Picks a device from devs[0..n) by spec:
 *   NULL, "" or "auto": the discrete GPU with the most device-local memory,
 *     else such an integrated GPU, else none (*out = -1: use the CPU
 *     engine). CPU devices (lavapipe) and virtual ones are never picked.
 *   "N" (decimal): device N, of any type.
 *   other text: the one device whose name contains it (case-insensitive),
 *     of any type; zero or several matches are an error.
 * Devices that are not `usable` are never picked. Returns SLUICE_OK with
 * *out set, or SLUICE_ERR_ARG with a message listing the devices. */
sluice_status vk_select_device(const vk_device_info *devs, uint32_t n, const char *spec, int *out,
                               sluice_error *err);
#endif
