/* device.c — Vulkan loader (volk), instance with optional validation, the
 * physical device list with capabilities, and the device selection rule. */
#include "backend/vulkan/device.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <volk.h>
#include "backend/vulkan/quirks.h"
#include "backend/vulkan/vk_internal.h"

struct vk_instance {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;  /* VK_NULL_HANDLE without validation */
    uint32_t api_version;
    uint32_t messages;                   /* validation warnings + errors seen */
    uint32_t n_devices;
    VkPhysicalDevice *phys;              /* (n_devices) */
    vk_device_info *info;                /* (n_devices) */
};

/* ---- names ---- */

const char *vk_dev_type_name(vk_dev_type t) {
    switch (t) {
    case VK_DEV_INTEGRATED: return "integrated";
    case VK_DEV_DISCRETE: return "discrete";
    case VK_DEV_VIRTUAL: return "virtual";
    case VK_DEV_CPU: return "cpu";
    default: return "other";
    }
}

const char *vk_vendor_name(uint32_t vendor_id) {
    switch (vendor_id) {
    case 0x1002: return "AMD";
    case 0x1010: return "ImgTec";
    case 0x10de: return "NVIDIA";
    case 0x13b5: return "ARM";
    case 0x5143: return "Qualcomm";
    case 0x8086: return "Intel";
    case 0x106b: return "Apple";
    case 0x10005: return "Mesa";
    default: return "unknown";
    }
}

void vk_driver_version_str(const vk_device_info *d, char *buf, size_t cap) {
    uint32_t v = d->driver_version;
    if (d->vendor_id == 0x10de)
        snprintf(buf, cap, "%u.%u.%u.%u", v >> 22, (v >> 14) & 0xff, (v >> 6) & 0xff, v & 0x3f);
#ifdef _WIN32
    else if (d->vendor_id == 0x8086)
        snprintf(buf, cap, "%u.%u", v >> 14, v & 0x3fff);
#endif
    else
        snprintf(buf, cap, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v));
}

void vk_api_version_str(uint32_t v, char *buf, size_t cap) {
    snprintf(buf, cap, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v));
}

static bool env_on(const char *name) {
    const char *s = getenv(name);
    return s && *s && strcmp(s, "0") != 0;
}

bool vk_validate_from_env(void) { return env_on("SLUICE_VK_VALIDATE"); }

vk_kernel_caps vk_kernel_caps_for(const vk_device_info *d) {
    /* what the device offers ... */
    vk_kernel_caps k = {
        .subgroups = d->subgroup_arith && d->subgroup_size >= 4,
        .fp16 = d->fp16 && d->storage16,
        .int_dot = d->int_dot && d->int8 && d->storage8,
        .lane_rows = false,
    };
    /* ... minus known driver bugs, plus driver-specific layouts ... */
    const vk_quirk *q[VK_MAX_QUIRKS];
    uint32_t n = vk_quirks_for(d, q, VK_MAX_QUIRKS);
    k = vk_quirks_apply(k, q, n < VK_MAX_QUIRKS ? n : VK_MAX_QUIRKS);
    /* ... minus what the environment turns off */
    if (env_on("SLUICE_VK_DISABLE_SUBGROUPS")) k.subgroups = false;
    if (env_on("SLUICE_VK_DISABLE_FP16")) k.fp16 = false;
    if (env_on("SLUICE_VK_DISABLE_INT_DOT")) k.int_dot = false;
    if (env_on("SLUICE_VK_MMV_SPLIT")) k.lane_rows = false;
    return k;
}

/* ---- instance ---- */

static VKAPI_ATTR VkBool32 VKAPI_CALL on_debug_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                       VkDebugUtilsMessageTypeFlagsEXT types,
                                                       const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                       void *user) {
    vk_instance *inst = user;
    inst->messages++;
    bool error = severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    sluice_log(error ? SLUICE_LOG_ERROR : SLUICE_LOG_WARN, "vulkan validation: %s",
               data && data->pMessage ? data->pMessage : "(no message)");
    return VK_FALSE;  /* never abort the call that triggered it */
}

static bool has_layer(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || !n) return false;
    VkLayerProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(p[i].layerName, name);
    free(p);
    return found;
}

/* Whether extension `ext` is offered by the loader + implicit layers
 * (layer NULL) or by `layer`. */
static bool has_instance_ext(const char *layer, const char *ext) {
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS || !n) return false;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && vkEnumerateInstanceExtensionProperties(layer, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(p[i].extensionName, ext);
    free(p);
    return found;
}

static bool has_device_ext(VkPhysicalDevice pd, const char *ext) {
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || !n) return false;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(p[i].extensionName, ext);
    free(p);
    return found;
}

static vk_dev_type map_type(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return VK_DEV_INTEGRATED;
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return VK_DEV_DISCRETE;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return VK_DEV_VIRTUAL;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return VK_DEV_CPU;
    default: return VK_DEV_OTHER;
    }
}

/* Fills *d from pd. Structures of Vulkan 1.2/1.3 are chained only when the
 * device reports that version, as the spec requires. */
static void query_device(VkPhysicalDevice pd, uint32_t instance_api, vk_device_info *d) {
    memset(d, 0, sizeof *d);
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(pd, &props);
    snprintf(d->name, sizeof d->name, "%s", props.deviceName);
    d->vendor_id = props.vendorID;
    d->device_id = props.deviceID;
    d->type = map_type(props.deviceType);
    d->api_version = props.apiVersion;
    d->api_used = props.apiVersion < instance_api ? props.apiVersion : instance_api;
    d->driver_version = props.driverVersion;
    memcpy(d->pipeline_cache_uuid, props.pipelineCacheUUID, sizeof d->pipeline_cache_uuid);
    d->max_storage_buffer_range = props.limits.maxStorageBufferRange;
    d->max_uniform_buffer_range = props.limits.maxUniformBufferRange;
    d->max_texel_elements = props.limits.maxTexelBufferElements;
    d->min_ubo_offset_align = (uint32_t)props.limits.minUniformBufferOffsetAlignment;
    d->max_shared = props.limits.maxComputeSharedMemorySize;
    d->max_wg_invocations = props.limits.maxComputeWorkGroupInvocations;
    for (int i = 0; i < 3; i++) d->max_wg_count[i] = props.limits.maxComputeWorkGroupCount[i];

    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(pd, &mem);
    d->n_heaps = mem.memoryHeapCount < VK_MAX_HEAPS ? mem.memoryHeapCount : VK_MAX_HEAPS;
    for (uint32_t i = 0; i < d->n_heaps; i++) {
        d->heaps[i].size = mem.memoryHeaps[i].size;
        d->heaps[i].device_local = mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
    }

    d->usable = VK_API_VERSION_MINOR(d->api_used) >= 2 || VK_API_VERSION_MAJOR(d->api_used) > 1;
    if (!d->usable) {
        snprintf(d->driver_name, sizeof d->driver_name, "?");
        return;
    }
    bool v13 = VK_API_VERSION_MINOR(d->api_used) >= 3 || VK_API_VERSION_MAJOR(d->api_used) > 1;
    bool dot_ext = !v13 && has_device_ext(pd, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);

    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceVulkan13Properties p13 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_PROPERTIES,
                                              .pNext = &m3};
    VkPhysicalDeviceVulkan12Properties p12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES,
                                              .pNext = v13 ? (void *)&p13 : (void *)&m3};
    VkPhysicalDeviceVulkan11Properties p11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES,
                                              .pNext = &p12};
    VkPhysicalDeviceProperties2 props2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &p11};
    vkGetPhysicalDeviceProperties2(pd, &props2);
    d->driver_id = p12.driverID;
    snprintf(d->driver_name, sizeof d->driver_name, "%s", p12.driverName);
    snprintf(d->driver_info, sizeof d->driver_info, "%s", p12.driverInfo);
    d->max_alloc = m3.maxMemoryAllocationSize;
    d->subgroup_size = p11.subgroupSize;
    /* the subgroup kernels use arithmetic (reductions) and ballot (broadcast) */
    d->subgroup_arith = (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                        (p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                        (p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_BALLOT_BIT);
    if (v13) {
        d->subgroup_min = p13.minSubgroupSize;
        d->subgroup_max = p13.maxSubgroupSize;
    }

    VkPhysicalDeviceShaderIntegerDotProductFeatures dotf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    VkPhysicalDeviceVulkan13Features f13 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                            .pNext = v13 ? (void *)&f13 : dot_ext ? (void *)&dotf : NULL};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .pNext = &f12};
    VkPhysicalDeviceFeatures2 feats2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
    vkGetPhysicalDeviceFeatures2(pd, &feats2);
    d->storage16 = f11.storageBuffer16BitAccess;
    d->fp16 = f12.shaderFloat16;
    d->int8 = f12.shaderInt8;
    d->storage8 = f12.storageBuffer8BitAccess;
    d->int_dot = v13 ? f13.shaderIntegerDotProduct : dot_ext && dotf.shaderIntegerDotProduct;
}

sluice_status vk_instance_create(vk_instance **out, bool validate, sluice_error *err) {
    *out = NULL;
    if (volkInitialize() != VK_SUCCESS)
        return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "no Vulkan loader (libvulkan.so.1 not found)");
    uint32_t loader = volkGetInstanceVersion();
    if (VK_API_VERSION_MAJOR(loader) == 1 && VK_API_VERSION_MINOR(loader) < 2)
        return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "Vulkan loader %u.%u is older than 1.2",
                           VK_API_VERSION_MAJOR(loader), VK_API_VERSION_MINOR(loader));
    static const char layer[] = "VK_LAYER_KHRONOS_validation";
    if (validate && !has_layer(layer))
        return sluice_fail(err, SLUICE_ERR_UNSUPPORTED,
                           "validation asked for (SLUICE_VK_VALIDATE) but %s is not installed", layer);

    vk_instance *inst = calloc(1, sizeof *inst);
    if (!inst) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    sluice_status st = SLUICE_OK;
    inst->api_version = VK_API_VERSION_1_3;
    if (VK_API_VERSION_MAJOR(loader) == 1 && VK_API_VERSION_MINOR(loader) < 3) inst->api_version = VK_API_VERSION_1_2;

    const char *exts[2];
    uint32_t n_exts = 0;
    const char *layers[] = {layer};
    VkValidationFeatureEnableEXT enables[] = {VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
    VkValidationFeaturesEXT vfeat = {.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
                                     .enabledValidationFeatureCount = 1,
                                     .pEnabledValidationFeatures = enables};
    VkDebugUtilsMessengerCreateInfoEXT mci = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_debug_message,
        .pUserData = inst};
    if (validate) {
        if (!has_instance_ext(NULL, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) &&
            !has_instance_ext(layer, VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
            st = sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "validation asked for but %s is not offered",
                             VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
            goto fail;
        }
        exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
        /* messages during vkCreateInstance/vkDestroyInstance go here too */
        if (has_instance_ext(layer, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME)) {
            exts[n_exts++] = VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME;
            vfeat.pNext = &mci;
        }
    }
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "sluice",
                             .applicationVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
                             .pEngineName = "sluice",
                             .engineVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
                             .apiVersion = inst->api_version};
    VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                                .pApplicationInfo = &app,
                                .enabledLayerCount = validate ? 1 : 0,
                                .ppEnabledLayerNames = validate ? layers : NULL,
                                .enabledExtensionCount = n_exts,
                                .ppEnabledExtensionNames = n_exts ? exts : NULL};
    if (validate) ici.pNext = vfeat.pNext ? (const void *)&vfeat : (const void *)&mci;
    VkResult r = vkCreateInstance(&ici, NULL, &inst->instance);
    if (r != VK_SUCCESS) {
        inst->instance = VK_NULL_HANDLE;
        st = sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "vkCreateInstance failed: %s%s", vk_result_str(r),
                         r == VK_ERROR_INCOMPATIBLE_DRIVER ? " (no Vulkan driver installed)" : "");
        goto fail;
    }
    volkLoadInstanceOnly(inst->instance);
    if (validate && vkCreateDebugUtilsMessengerEXT(inst->instance, &mci, NULL, &inst->messenger) != VK_SUCCESS) {
        st = sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "vkCreateDebugUtilsMessengerEXT failed");
        goto fail;
    }

    r = vkEnumeratePhysicalDevices(inst->instance, &inst->n_devices, NULL);
    if (r != VK_SUCCESS) {
        st = sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "vkEnumeratePhysicalDevices failed: %s", vk_result_str(r));
        goto fail;
    }
    if (inst->n_devices) {
        inst->phys = calloc(inst->n_devices, sizeof *inst->phys);
        inst->info = calloc(inst->n_devices, sizeof *inst->info);
        if (!inst->phys || !inst->info) {
            st = sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
            goto fail;
        }
        r = vkEnumeratePhysicalDevices(inst->instance, &inst->n_devices, inst->phys);
        if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
            st = sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "vkEnumeratePhysicalDevices failed: %s", vk_result_str(r));
            goto fail;
        }
        for (uint32_t i = 0; i < inst->n_devices; i++) query_device(inst->phys[i], inst->api_version, &inst->info[i]);
    }
    *out = inst;
    return SLUICE_OK;
fail:
    vk_instance_destroy(inst);
    return st;
}

void vk_instance_destroy(vk_instance *inst) {
    if (!inst) return;
    if (inst->instance) {
        if (inst->messenger) vkDestroyDebugUtilsMessengerEXT(inst->instance, inst->messenger, NULL);
        vkDestroyInstance(inst->instance, NULL);
    }
    free(inst->phys);
    free(inst->info);
    free(inst);
}

uint32_t vk_instance_device_count(const vk_instance *inst) { return inst->n_devices; }
const vk_device_info *vk_instance_device(const vk_instance *inst, uint32_t i) {
    return i < inst->n_devices ? &inst->info[i] : NULL;
}
uint32_t vk_instance_messages(const vk_instance *inst) { return inst->messages; }
VkPhysicalDevice vk_instance_physical(const vk_instance *inst, uint32_t i) {
    return i < inst->n_devices ? inst->phys[i] : VK_NULL_HANDLE;
}

const char *vk_result_str(VkResult r) {
    switch (r) {
#define R(x) case x: return #x;
    R(VK_SUCCESS) R(VK_NOT_READY) R(VK_TIMEOUT) R(VK_INCOMPLETE) R(VK_ERROR_OUT_OF_HOST_MEMORY)
    R(VK_ERROR_OUT_OF_DEVICE_MEMORY) R(VK_ERROR_INITIALIZATION_FAILED) R(VK_ERROR_DEVICE_LOST)
    R(VK_ERROR_MEMORY_MAP_FAILED) R(VK_ERROR_LAYER_NOT_PRESENT) R(VK_ERROR_EXTENSION_NOT_PRESENT)
    R(VK_ERROR_FEATURE_NOT_PRESENT) R(VK_ERROR_INCOMPATIBLE_DRIVER) R(VK_ERROR_TOO_MANY_OBJECTS)
    R(VK_ERROR_FORMAT_NOT_SUPPORTED) R(VK_ERROR_FRAGMENTED_POOL) R(VK_ERROR_OUT_OF_POOL_MEMORY)
    R(VK_ERROR_INVALID_SHADER_NV) R(VK_ERROR_UNKNOWN)
#undef R
    default: return "VkResult (unnamed)";
    }
}
uint32_t vk_instance_api_version(const vk_instance *inst) { return inst->api_version; }

/* ---- selection ---- */

static uint64_t local_bytes(const vk_device_info *d) {
    uint64_t b = 0;
    for (uint32_t i = 0; i < d->n_heaps; i++)
        if (d->heaps[i].device_local) b += d->heaps[i].size;
    return b;
}

static bool contains_nocase(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return true;
    }
    return n == 0;
}

static void list_devices(const vk_device_info *devs, uint32_t n, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < n && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%u: %s (%s)", i ? ", " : "", i, devs[i].name,
                         vk_dev_type_name(devs[i].type));
        if (w < 0) break;
        used += (size_t)w;
    }
    if (!n) snprintf(buf, cap, "none");
}

sluice_status vk_select_device(const vk_device_info *devs, uint32_t n, const char *spec, int *out,
                               sluice_error *err) {
    *out = -1;
    char have[384];
    if (!spec || !*spec || !strcmp(spec, "auto")) {
        static const vk_dev_type order[] = {VK_DEV_DISCRETE, VK_DEV_INTEGRATED};
        for (size_t k = 0; k < sizeof order / sizeof order[0] && *out < 0; k++) {
            uint64_t best = 0;
            for (uint32_t i = 0; i < n; i++)
                if (devs[i].usable && devs[i].type == order[k] && (*out < 0 || local_bytes(&devs[i]) > best)) {
                    *out = (int)i;
                    best = local_bytes(&devs[i]);
                }
        }
        return SLUICE_OK;
    }
    const char *p = spec;
    while (isdigit((unsigned char)*p)) p++;
    if (!*p) {
        long i = strtol(spec, NULL, 10);
        list_devices(devs, n, have, sizeof have);
        if (i < 0 || i >= (long)n || p - spec > 9)
            return sluice_fail(err, SLUICE_ERR_ARG, "no Vulkan device %s (devices: %s)", spec, have);
        if (!devs[i].usable)
            return sluice_fail(err, SLUICE_ERR_ARG, "Vulkan device %ld (%s) is older than Vulkan 1.2", i,
                               devs[i].name);
        *out = (int)i;
        return SLUICE_OK;
    }
    /* "lavapipe" names Mesa's software device, whose device name is
     * "llvmpipe (...)" */
    bool lavapipe = !strcmp(spec, "lavapipe");
    int found = -1, matches = 0;
    for (uint32_t i = 0; i < n; i++)
        if ((lavapipe ? devs[i].driver_id == VK_DRIVER_ID_MESA_LLVMPIPE : contains_nocase(devs[i].name, spec)) &&
            devs[i].usable) {
            if (found < 0) found = (int)i;
            matches++;
        }
    if (matches != 1) {
        list_devices(devs, n, have, sizeof have);
        return sluice_fail(err, SLUICE_ERR_ARG, "%s Vulkan device matches '%s'; pick one by number (devices: %s)",
                           matches ? "more than one" : "no", spec, have);
    }
    *out = found;
    return SLUICE_OK;
}
