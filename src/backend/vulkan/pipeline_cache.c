/* pipeline_cache.c — the on-disk pipeline cache: one VkPipelineCache per
 * vk_device, seeded from a file under $XDG_CACHE_HOME/sluice/ (else
 * $HOME/.cache/sluice/) so that the second start of a process skips the
 * driver's shader compilation, and written back when the process created
 * pipelines the file did not hold.
 *
 * File: vk-<vendor>-<device>-<driverVersion>-<pipelineCacheUUID>.bin, all
 * hex, so another GPU or driver gets its own file. Contents: our 32-byte
 * header (magic, format version, payload length, FNV-1a 64 of the payload)
 * then the payload, exactly what vkGetPipelineCacheData returned. A file
 * is used only when our header and checksum hold and the payload's
 * VkPipelineCacheHeaderVersionOne names this device (length, version,
 * vendorID, deviceID, pipelineCacheUUID); anything else (truncated, bit
 * flipped, other device) is logged and ignored, and rewritten on close.
 * Writes go to a temporary file in the same folder, then rename(): readers
 * see the old file or the new one, never half of one.
 *
 * Nothing here fails a run: every problem is a log line and the device
 * works on without a cache (VK_NULL_HANDLE) or with an empty one.
 * SLUICE_VK_PIPELINE_CACHE=0 turns the disk cache off. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "backend/vulkan/vk_internal.h"

#define PC_MAGIC "SLUICEPC"
#define PC_VERSION 1u
#define PC_MAX_FILE (512u << 20) /* a larger file is not ours */

/* Our wrapper header, native byte order (the file never leaves the machine
 * and device it was written for). */
typedef struct pc_header {
    char magic[8];        /* PC_MAGIC, no NUL */
    uint32_t version;     /* PC_VERSION */
    uint32_t header_size; /* sizeof(pc_header) */
    uint64_t payload_len; /* bytes after the header */
    uint64_t checksum;    /* FNV-1a 64 of those bytes */
} pc_header;
_Static_assert(sizeof(pc_header) == 32, "pipeline cache file header is 32 bytes");

/* Size of VkPipelineCacheHeaderVersionOne: 4 uint32 then a 16-byte UUID. */
#define VK_PC_HEADER_ONE 32u

static uint64_t fnv1a64(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The spec writes the Vulkan cache header's fields little-endian. */
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

bool vk_pipeline_cache_enabled(void) {
    const char *s = getenv("SLUICE_VK_PIPELINE_CACHE");
    return !(s && !strcmp(s, "0"));
}

/* The cache folder into buf: $XDG_CACHE_HOME/sluice (an absolute path, as
 * the XDG spec requires), else $HOME/.cache/sluice. False when neither is
 * set or the path does not fit. */
static bool cache_dir(char *buf, size_t cap) {
    const char *xdg = getenv("XDG_CACHE_HOME");
    int w;
    if (xdg && xdg[0] == '/') w = snprintf(buf, cap, "%s/sluice", xdg);
    else {
        const char *home = getenv("HOME");
        if (!home || !*home) return false;
        w = snprintf(buf, cap, "%s/.cache/sluice", home);
    }
    return w > 0 && (size_t)w < cap;
}

bool vk_pipeline_cache_path(const vk_device_info *info, char *buf, size_t cap) {
    if (!vk_pipeline_cache_enabled()) return false;
    char dir[4096];
    if (!cache_dir(dir, sizeof dir)) return false;
    char uuid[33];
    for (int i = 0; i < 16; i++) snprintf(uuid + 2 * i, 3, "%02x", info->pipeline_cache_uuid[i]);
    int w = snprintf(buf, cap, "%s/vk-%04x-%04x-%08x-%s.bin", dir, info->vendor_id, info->device_id,
                     info->driver_version, uuid);
    return w > 0 && (size_t)w < cap;
}

/* mkdir -p of the folder part of `file` with mode 0700 for what it
 * creates. 0 or -1 with errno. */
static int mkdir_parents(const char *file) {
    char p[4096];
    size_t n = strlen(file);
    if (n >= sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(p, file, n + 1);
    char *slash = strrchr(p, '/');
    if (!slash || slash == p) return 0;
    *slash = 0;
    for (char *c = p + 1; ; c++) {
        if (*c == '/' || *c == 0) {
            char keep = *c;
            *c = 0;
            if (mkdir(p, 0700) != 0 && errno != EEXIST) return -1;
            *c = keep;
            if (!keep) break;
        }
    }
    return 0;
}

/* Why buf[0..n) is not a usable cache file for info, or NULL when it is.
 * On success *payload / *payload_len give the Vulkan data. */
static const char *check_file(const vk_device_info *info, const uint8_t *buf, size_t n, const uint8_t **payload,
                              size_t *payload_len) {
    pc_header h;
    if (n < sizeof h) return "shorter than its header";
    memcpy(&h, buf, sizeof h);
    if (memcmp(h.magic, PC_MAGIC, 8) != 0) return "not a sluice pipeline cache (magic)";
    if (h.version != PC_VERSION || h.header_size != sizeof h) return "other file format version";
    if (h.payload_len != n - sizeof h) return "length does not match (truncated?)";
    const uint8_t *p = buf + sizeof h;
    size_t len = n - sizeof h;
    if (fnv1a64(p, len) != h.checksum) return "checksum mismatch (corrupt)";
    if (len < VK_PC_HEADER_ONE) return "no Vulkan cache header";
    uint32_t hsize = le32(p), hver = le32(p + 4), vendor = le32(p + 8), device = le32(p + 12);
    if (hsize < VK_PC_HEADER_ONE || hsize > len) return "bad Vulkan cache header length";
    if (hver != VK_PIPELINE_CACHE_HEADER_VERSION_ONE) return "other Vulkan cache header version";
    if (vendor != info->vendor_id || device != info->device_id) return "written for another device";
    if (memcmp(p + 16, info->pipeline_cache_uuid, 16) != 0) return "written by another driver (pipelineCacheUUID)";
    *payload = p;
    *payload_len = len;
    return NULL;
}

/* Reads the whole of path (at most PC_MAX_FILE bytes) into a malloc'd
 * buffer; NULL with *why set when it cannot. */
static uint8_t *read_all(const char *path, size_t *n, const char **why) {
    *why = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = errno == ENOENT ? "" : strerror(errno);  /* "": no file yet, nothing to say */
        return NULL;
    }
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)PC_MAX_FILE) {
        *why = "not a regular file of sane size";
        goto out;
    }
    *n = (size_t)st.st_size;
    buf = malloc(*n ? *n : 1);
    if (!buf) {
        *why = "out of memory";
        goto out;
    }
    size_t got = 0;
    while (got < *n) {
        ssize_t r = read(fd, buf + got, *n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (got != *n) {
        *why = "short read";
        free(buf);
        buf = NULL;
    }
out:
    close(fd);
    return buf;
}

void vk_pcache_open(vk_device *d) {
    d->pcache = VK_NULL_HANDLE;
    d->pcache_loaded = 0;
    d->pcache_path[0] = 0;
    if (!vk_pipeline_cache_path(&d->info, d->pcache_path, sizeof d->pcache_path)) {
        d->pcache_path[0] = 0;
        sluice_log(SLUICE_LOG_DEBUG, "vulkan pipeline cache: off (%s)",
                   vk_pipeline_cache_enabled() ? "neither XDG_CACHE_HOME nor HOME is set" : "SLUICE_VK_PIPELINE_CACHE=0");
        return;
    }
    size_t n = 0, len = 0;
    const char *why = NULL;
    const uint8_t *payload = NULL;
    uint8_t *buf = read_all(d->pcache_path, &n, &why);
    if (buf) why = check_file(&d->info, buf, n, &payload, &len);
    if (why && *why)
        sluice_log(SLUICE_LOG_INFO, "vulkan pipeline cache %s ignored: %s; it will be rewritten", d->pcache_path, why);
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                    .initialDataSize = why ? 0 : len,
                                    .pInitialData = why ? NULL : payload};
    VkResult r = d->vk.vkCreatePipelineCache(d->dev, &ci, NULL, &d->pcache);
    if (r != VK_SUCCESS && ci.initialDataSize) {
        sluice_log(SLUICE_LOG_INFO, "vulkan pipeline cache %s refused by the driver (%s); starting empty",
                   d->pcache_path, vk_result_str(r));
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        r = d->vk.vkCreatePipelineCache(d->dev, &ci, NULL, &d->pcache);
    }
    if (r != VK_SUCCESS) {
        sluice_log(SLUICE_LOG_INFO, "vulkan pipeline cache: vkCreatePipelineCache failed (%s); running without",
                   vk_result_str(r));
        d->pcache = VK_NULL_HANDLE;
    } else if (ci.initialDataSize) {
        d->pcache_loaded = ci.initialDataSize;
        sluice_log(SLUICE_LOG_DEBUG, "vulkan pipeline cache: %zu bytes from %s", len, d->pcache_path);
    }
    free(buf);
}

/* Writes buf[0..n) to path through a temporary file and rename(). */
static const char *write_atomic(const char *path, const uint8_t *buf, size_t n) {
    if (mkdir_parents(path) != 0) return strerror(errno);
    char tmp[4096 + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return strerror(errno);
    size_t put = 0;
    while (put < n) {
        ssize_t w = write(fd, buf + put, n - put);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        put += (size_t)w;
    }
    const char *why = put == n ? NULL : "short write (disk full?)";
    if (close(fd) != 0 && !why) why = strerror(errno);
    if (!why && rename(tmp, path) != 0) why = strerror(errno);
    if (why) unlink(tmp);
    return why;
}

void vk_pcache_close(vk_device *d) {
    if (d->pipelines_created)
        sluice_log(SLUICE_LOG_DEBUG, "vulkan: %u pipeline(s) created in %.2f ms (pipeline cache: %s, %llu bytes loaded)",
                   d->pipelines_created, d->pipeline_ns / 1e6, d->pcache ? "on" : "off",
                   (unsigned long long)d->pcache_loaded);
    if (!d->pcache) return;
    size_t n = 0;
    uint8_t *buf = NULL;
    /* Only when this process created pipelines and the driver's data grew
     * past what the file gave: a warm start writes nothing. */
    if (d->pcache_path[0] && d->pipelines_created &&
        d->vk.vkGetPipelineCacheData(d->dev, d->pcache, &n, NULL) == VK_SUCCESS && n && n != d->pcache_loaded) {
        buf = malloc(sizeof(pc_header) + n);
        VkResult r = buf ? d->vk.vkGetPipelineCacheData(d->dev, d->pcache, &n, buf + sizeof(pc_header))
                         : VK_ERROR_OUT_OF_HOST_MEMORY;
        const char *why = r == VK_SUCCESS ? NULL : vk_result_str(r);
        if (!why) {
            pc_header h = {.version = PC_VERSION, .header_size = sizeof h, .payload_len = n};
            memcpy(h.magic, PC_MAGIC, 8);
            h.checksum = fnv1a64(buf + sizeof h, n);
            memcpy(buf, &h, sizeof h);
            why = write_atomic(d->pcache_path, buf, sizeof h + n);
        }
        if (why) sluice_log(SLUICE_LOG_INFO, "vulkan pipeline cache %s not saved: %s", d->pcache_path, why);
        else sluice_log(SLUICE_LOG_DEBUG, "vulkan pipeline cache: %zu bytes to %s", n, d->pcache_path);
    }
    free(buf);
    d->vk.vkDestroyPipelineCache(d->dev, d->pcache, NULL);
    d->pcache = VK_NULL_HANDLE;
}

uint64_t vk_device_pipeline_cache_loaded(const vk_device *d) { return d->pcache_loaded; }
