/* cmd_devices.c — `sluice devices`: the Vulkan devices of this machine,
 * their capabilities and limits, the kernel paths sluice takes on each,
 * the driver quirks that apply to it and which one `--backend auto` would
 * pick. Without a Vulkan build, loader or device it says so and exits 0:
 * the CPU engine is then what runs. */
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli/cli.h"
#ifdef SLUICE_HAVE_VULKAN
#include "backend/vulkan/device.h"
#include "backend/vulkan/quirks.h"
#endif

static void usage(FILE *f) {
    fprintf(f, "usage: sluice devices [--json]\n"
               "Lists the Vulkan devices and which one --backend auto picks (discrete GPU, then integrated,\n"
               "else the CPU engine; a CPU Vulkan device such as lavapipe only via --device).\n"
               "Each device lists the driver quirks that apply to it (SLUICE_VK_NO_QUIRKS=1 ignores them).\n"
               "SLUICE_VK_VALIDATE=1 enables the Khronos validation layer.\n");
}

#ifdef SLUICE_HAVE_VULKAN
static const char *yn(bool b) { return b ? "yes" : "no"; }

static void print_text(const vk_instance *inst, int pick) {
    uint32_t n = vk_instance_device_count(inst);
    printf("%u Vulkan device%s\n", n, n == 1 ? "" : "s");
    for (uint32_t i = 0; i < n; i++) {
        const vk_device_info *d = vk_instance_device(inst, i);
        char api[32], drv[32];
        vk_api_version_str(d->api_version, api, sizeof api);
        vk_driver_version_str(d, drv, sizeof drv);
        vk_kernel_caps k = vk_kernel_caps_for(d);
        printf("\n[%u] %s%s\n", i, d->name, (int)i == pick ? "  (auto)" : "");
        printf("  vendor        %s (0x%04x), device 0x%04x, %s\n", vk_vendor_name(d->vendor_id), d->vendor_id,
               d->device_id, vk_dev_type_name(d->type));
        printf("  driver        %s %s (%s), driver id %u, Vulkan %s%s\n", d->driver_name, drv, d->driver_info,
               d->driver_id, api, d->usable ? "" : " — too old, sluice needs 1.2");
        for (uint32_t h = 0; h < d->n_heaps; h++)
            printf("  heap %u        %.1f MiB%s\n", h, d->heaps[h].size / 1048576.0,
                   d->heaps[h].device_local ? " device-local" : "");
        printf("  subgroups     size %u", d->subgroup_size);
        if (d->subgroup_max) printf(" (%u..%u)", d->subgroup_min, d->subgroup_max);
        printf(", arithmetic %s\n", yn(d->subgroup_arith));
        printf("  features      fp16 %s, int8 %s, 16-bit storage %s, 8-bit storage %s, integer dot %s\n", yn(d->fp16),
               yn(d->int8), yn(d->storage16), yn(d->storage8), yn(d->int_dot));
        printf("  limits        maxStorageBufferRange %llu, maxMemoryAllocationSize %llu, shared memory %u\n",
               (unsigned long long)d->max_storage_buffer_range, (unsigned long long)d->max_alloc, d->max_shared);
        printf("  kernels       %s reductions, %s arithmetic%s, mat-vec %s\n", k.subgroups ? "subgroup" : "shared-memory",
               k.fp16 ? "fp16" : "fp32", k.int_dot ? ", int8 dot" : "", k.lane_rows ? "row per lane" : "split rows");
        const vk_quirk *q[VK_MAX_QUIRKS];
        uint32_t nq = vk_quirks_for(d, q, VK_MAX_QUIRKS);
        if (nq > VK_MAX_QUIRKS) nq = VK_MAX_QUIRKS;
        if (!nq) printf("  quirks        none\n");
        for (uint32_t j = 0; j < nq; j++) {
            char off[64], on[64];
            vk_quirk_bits_str(q[j]->disable, off, sizeof off);
            vk_quirk_bits_str(q[j]->force, on, sizeof on);
            printf("  quirk         %s:%s%s%s%s — %s\n", q[j]->name, *off ? " disables " : "", off,
                   *on ? " forces " : "", on, q[j]->reason);
        }
    }
    if (pick >= 0) printf("\n--backend auto uses device %d\n", pick);
    else printf("\n--backend auto uses the CPU engine (no discrete or integrated GPU)\n");
}

static cJSON *device_json(const vk_device_info *d, uint32_t i, bool picked) {
    char api[32], drv[32];
    vk_api_version_str(d->api_version, api, sizeof api);
    vk_driver_version_str(d, drv, sizeof drv);
    vk_kernel_caps k = vk_kernel_caps_for(d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", i);
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "vendor", vk_vendor_name(d->vendor_id));
    cJSON_AddNumberToObject(o, "vendor_id", d->vendor_id);
    cJSON_AddNumberToObject(o, "device_id", d->device_id);
    cJSON_AddStringToObject(o, "type", vk_dev_type_name(d->type));
    cJSON_AddStringToObject(o, "api_version", api);
    cJSON_AddStringToObject(o, "driver_name", d->driver_name);
    cJSON_AddStringToObject(o, "driver_info", d->driver_info);
    cJSON_AddStringToObject(o, "driver_version", drv);
    cJSON_AddNumberToObject(o, "driver_id", d->driver_id);
    cJSON_AddBoolToObject(o, "usable", d->usable);
    cJSON_AddBoolToObject(o, "auto", picked);
    cJSON *heaps = cJSON_AddArrayToObject(o, "heaps");
    for (uint32_t h = 0; h < d->n_heaps; h++) {
        cJSON *ho = cJSON_CreateObject();
        cJSON_AddNumberToObject(ho, "bytes", (double)d->heaps[h].size);
        cJSON_AddBoolToObject(ho, "device_local", d->heaps[h].device_local);
        cJSON_AddItemToArray(heaps, ho);
    }
    cJSON_AddNumberToObject(o, "subgroup_size", d->subgroup_size);
    cJSON_AddNumberToObject(o, "subgroup_min", d->subgroup_min);
    cJSON_AddNumberToObject(o, "subgroup_max", d->subgroup_max);
    cJSON_AddBoolToObject(o, "subgroup_arithmetic", d->subgroup_arith);
    cJSON_AddBoolToObject(o, "fp16", d->fp16);
    cJSON_AddBoolToObject(o, "int8", d->int8);
    cJSON_AddBoolToObject(o, "storage16", d->storage16);
    cJSON_AddBoolToObject(o, "storage8", d->storage8);
    cJSON_AddBoolToObject(o, "integer_dot", d->int_dot);
    cJSON_AddNumberToObject(o, "max_storage_buffer_range", (double)d->max_storage_buffer_range);
    cJSON_AddNumberToObject(o, "max_memory_allocation_size", (double)d->max_alloc);
    cJSON_AddNumberToObject(o, "max_shared_memory", d->max_shared);
    cJSON *ko = cJSON_AddObjectToObject(o, "kernels");
    cJSON_AddBoolToObject(ko, "subgroups", k.subgroups);
    cJSON_AddBoolToObject(ko, "fp16", k.fp16);
    cJSON_AddBoolToObject(ko, "int_dot", k.int_dot);
    cJSON_AddBoolToObject(ko, "lane_rows", k.lane_rows);
    cJSON *qa = cJSON_AddArrayToObject(o, "quirks");
    const vk_quirk *q[VK_MAX_QUIRKS];
    uint32_t nq = vk_quirks_for(d, q, VK_MAX_QUIRKS);
    for (uint32_t j = 0; j < nq && j < VK_MAX_QUIRKS; j++) {
        char off[64], on[64];
        vk_quirk_bits_str(q[j]->disable, off, sizeof off);
        vk_quirk_bits_str(q[j]->force, on, sizeof on);
        cJSON *qo = cJSON_CreateObject();
        cJSON_AddStringToObject(qo, "name", q[j]->name);
        cJSON_AddStringToObject(qo, "disables", off);
        cJSON_AddStringToObject(qo, "forces", on);
        cJSON_AddStringToObject(qo, "reason", q[j]->reason);
        cJSON_AddItemToArray(qa, qo);
    }
    return o;
}
#endif

int cmd_devices(int argc, char **argv) {
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "sluice devices: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    const char *why = "built without Vulkan (SLUICE_VULKAN off or its build tools missing)";
    int rc = 0;
    cJSON *root = cJSON_CreateObject();
    cJSON *devs = cJSON_CreateArray();
#ifdef SLUICE_HAVE_VULKAN
    vk_instance *inst = NULL;
    sluice_error err = {0};
    if (vk_instance_create(&inst, vk_validate_from_env(), &err) == SLUICE_OK) {
        why = NULL;
        uint32_t n = vk_instance_device_count(inst);
        int pick = -1;
        vk_select_device(vk_instance_device(inst, 0), n, "auto", &pick, NULL);
        if (json) {
            for (uint32_t i = 0; i < n; i++)
                cJSON_AddItemToArray(devs, device_json(vk_instance_device(inst, i), i, (int)i == pick));
            if (pick >= 0) cJSON_AddNumberToObject(root, "auto", pick);
            else cJSON_AddNullToObject(root, "auto");
        } else print_text(inst, pick);
        if (vk_instance_messages(inst)) rc = 1;  /* validation complained: make it visible */
        vk_instance_destroy(inst);
    } else why = err.msg;
    cJSON_AddBoolToObject(root, "vulkan_built", true);
#else
    cJSON_AddBoolToObject(root, "vulkan_built", false);
#endif
    if (why) {
        if (!json) printf("no Vulkan devices: %s\nsluice runs on the CPU engine\n", why);
        cJSON_AddStringToObject(root, "error", why);
        cJSON_AddNullToObject(root, "auto");
    }
    if (json) {
        cJSON_AddItemToObject(root, "devices", devs);
        char *s = cJSON_Print(root);
        if (s) puts(s);
        cJSON_free(s);
    } else cJSON_Delete(devs);
    cJSON_Delete(root);
    return rc;
}
