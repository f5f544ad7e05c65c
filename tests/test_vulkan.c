/* test_vulkan.c — the Vulkan backend: the embedded SPIR-V registry, the
 * device selection rule, instance and device creation, buffers, and each
 * op against its CPU reference (NMSE on seeded random data, bit-identical
 * reruns). Every test with a device runs under VK_LAYER_KHRONOS_validation
 * and fails on any validation message. Without a Vulkan loader or device
 * they skip with the reason. SLUICE_VK_TEST_DEVICE picks the device (a
 * --device spec); by default the auto rule, else the first usable device
 * of any type (lavapipe in CI). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#ifndef SLUICE_HAVE_VULKAN
Test(vulkan, not_built) { cr_skip("sluice was built without the Vulkan backend (SLUICE_VULKAN off or tools missing)"); }
#else
#include "backend/vulkan/device.h"
#include "backend/vulkan/ops.h"
#include "backend/vulkan/runtime.h"
#include "backend/vulkan/shaders_registry.h"
#include "model/quant.h"

/* ---- no device needed ---- */

Test(vulkan, registry_holds_spirv) {
    cr_assert_gt(VK_SHADER_COUNT, 0);
    for (int i = 0; i < VK_SHADER_COUNT; i++) {
        const vk_shader_spv *s = vk_shader_get((vk_shader_id)i);
        cr_assert_not_null(s);
        cr_assert(s->name && *s->name && s->source && s->defines);
        cr_assert_gt(*s->n_words, 5, "%s: too short for SPIR-V", s->name);
        cr_assert_eq(s->words[0], 0x07230203u, "%s: SPIR-V magic", s->name);
    }
    cr_assert_null(vk_shader_get(VK_SHADER_COUNT));
    cr_assert_str_eq(vk_shader_get(VK_SHADER_RMS_NORM_F32)->name, "rms_norm_f32");
}

static vk_device_info fake(const char *name, vk_dev_type t, uint64_t local_mib) {
    vk_device_info d = {.type = t, .usable = true, .n_heaps = 1};
    snprintf(d.name, sizeof d.name, "%s", name);
    d.heaps[0] = (vk_heap){.size = local_mib << 20, .device_local = true};
    return d;
}

Test(vulkan, select_rule) {
    vk_device_info devs[] = {fake("llvmpipe (LLVM 15)", VK_DEV_CPU, 2048), fake("Intel UHD 770", VK_DEV_INTEGRATED, 8192),
                             fake("NVIDIA RTX 4060", VK_DEV_DISCRETE, 8192), fake("AMD RX 7900", VK_DEV_DISCRETE, 24576),
                             fake("NVIDIA RTX 4060", VK_DEV_DISCRETE, 8192)};
    sluice_error err = {0};
    int pick = 99;
    /* auto: the discrete GPU with most device-local memory */
    cr_assert_eq(vk_select_device(devs, 5, NULL, &pick, &err), SLUICE_OK);
    cr_assert_eq(pick, 3);
    cr_assert_eq(vk_select_device(devs, 5, "auto", &pick, &err), SLUICE_OK);
    cr_assert_eq(pick, 3);
    /* then integrated; a CPU device never */
    cr_assert_eq(vk_select_device(devs, 2, "", &pick, &err), SLUICE_OK);
    cr_assert_eq(pick, 1);
    cr_assert_eq(vk_select_device(devs, 1, "auto", &pick, &err), SLUICE_OK);
    cr_assert_eq(pick, -1, "auto must not pick lavapipe");
    cr_assert_eq(vk_select_device(devs, 0, "auto", &pick, &err), SLUICE_OK);
    cr_assert_eq(pick, -1);
    /* explicit: by number or unique name part, any type */
    cr_assert_eq(vk_select_device(devs, 5, "0", &pick, &err), SLUICE_OK);
    cr_assert_eq(pick, 0);
    cr_assert_eq(vk_select_device(devs, 5, "LLVMPIPE", &pick, &err), SLUICE_OK);
    cr_assert_eq(pick, 0);
    cr_assert_eq(vk_select_device(devs, 5, "rx 79", &pick, &err), SLUICE_OK);
    cr_assert_eq(pick, 3);
    cr_assert_eq(vk_select_device(devs, 5, "5", &pick, &err), SLUICE_ERR_ARG);
    cr_assert_eq(pick, -1);
    cr_assert(strstr(err.msg, "llvmpipe"), "error lists the devices: %s", err.msg);
    cr_assert_eq(vk_select_device(devs, 5, "rtx", &pick, &err), SLUICE_ERR_ARG, "ambiguous name");
    cr_assert(strstr(err.msg, "more than one"), "%s", err.msg);
    cr_assert_eq(vk_select_device(devs, 5, "radeon vii", &pick, &err), SLUICE_ERR_ARG);
    cr_assert_eq(vk_select_device(devs, 5, "99999999999999999999", &pick, &err), SLUICE_ERR_ARG);
    /* a device older than Vulkan 1.2 is never picked */
    devs[3].usable = false;
    cr_assert_eq(vk_select_device(devs, 5, "auto", &pick, &err), SLUICE_OK);
    cr_assert_eq(pick, 2);
    cr_assert_eq(vk_select_device(devs, 5, "3", &pick, &err), SLUICE_ERR_ARG);
}

Test(vulkan, kill_switches) {
    vk_device_info d = fake("x", VK_DEV_DISCRETE, 1);
    d.subgroup_arith = d.fp16 = d.storage16 = d.int_dot = d.int8 = d.storage8 = true;
    d.subgroup_size = 32;
    vk_kernel_caps k = vk_kernel_caps_for(&d);
    cr_assert(k.subgroups && k.fp16 && k.int_dot);
    setenv("SLUICE_VK_DISABLE_FP16", "1", 1);
    setenv("SLUICE_VK_DISABLE_SUBGROUPS", "1", 1);
    setenv("SLUICE_VK_DISABLE_INT_DOT", "1", 1);
    k = vk_kernel_caps_for(&d);
    cr_assert(!k.subgroups && !k.fp16 && !k.int_dot);
    setenv("SLUICE_VK_DISABLE_FP16", "0", 1);
    cr_assert(vk_kernel_caps_for(&d).fp16);
}

/* ---- with a device ---- */

static vk_instance *g_inst;

/* The validated instance, or skip when this machine has no Vulkan. */
static vk_instance *open_instance(void) {
    if (g_inst) return g_inst;
    sluice_error err = {0};
    sluice_status st = vk_instance_create(&g_inst, true, &err);
    if (st != SLUICE_OK && strstr(err.msg, "validation"))
        cr_assert_fail("%s (install vulkan-validationlayers: packaging/deps.sh)", err.msg);
    if (st != SLUICE_OK) cr_skip("no Vulkan here: %s", err.msg);
    if (!vk_instance_device_count(g_inst)) {
        vk_instance_destroy(g_inst);
        g_inst = NULL;
        cr_skip("no Vulkan device (install mesa-vulkan-drivers for lavapipe)");
    }
    return g_inst;
}

static vk_device *open_device(void) {
    vk_instance *inst = open_instance();
    uint32_t n = vk_instance_device_count(inst);
    const vk_device_info *devs = vk_instance_device(inst, 0);
    sluice_error err = {0};
    int pick = -1;
    const char *spec = getenv("SLUICE_VK_TEST_DEVICE");
    cr_assert_eq(vk_select_device(devs, n, spec, &pick, &err), SLUICE_OK, "%s", err.msg);
    for (uint32_t i = 0; i < n && pick < 0; i++)
        if (devs[i].usable) pick = (int)i;
    if (pick < 0) cr_skip("no Vulkan 1.2 device");
    vk_device *d = NULL;
    cr_assert_eq(vk_device_create(inst, (uint32_t)pick, &d, &err), SLUICE_OK, "%s", err.msg);
    return d;
}

/* Fails the test on any validation message seen while it ran. */
static void close_all(vk_device *d) {
    vk_device_destroy(d);
    uint32_t msgs = vk_instance_messages(g_inst);
    vk_instance_destroy(g_inst);
    g_inst = NULL;
    cr_assert_eq(msgs, 0, "%u Vulkan validation message(s), logged above", msgs);
}

Test(vulkan, instance_and_devices) {
    vk_instance *inst = open_instance();
    for (uint32_t i = 0; i < vk_instance_device_count(inst); i++) {
        const vk_device_info *d = vk_instance_device(inst, i);
        cr_assert(d->name[0]);
        cr_assert_gt(d->n_heaps, 0);
        if (!d->usable) continue;
        cr_assert(d->driver_name[0], "%s: driver name", d->name);
        cr_assert_gt(d->subgroup_size, 0);
        cr_assert_geq(d->max_storage_buffer_range, 1u << 27, "the spec's minimum is 2^27");
        cr_assert_geq(d->max_shared, 16384);
        cr_assert_gt(d->max_alloc, 0);
    }
    close_all(NULL);
}

Test(vulkan, buffers_roundtrip) {
    vk_device *d = open_device();
    sluice_error err = {0};
    for (int staging = 0; staging < 2; staging++) {
        /* a device-local buffer written and read through a mapping, or
         * through staging copies (as on a discrete GPU) */
        if (staging) {
            vk_device_destroy(d);
            setenv("SLUICE_VK_FORCE_STAGING", "1", 1);
            cr_assert_eq(vk_device_create(g_inst, 0, &d, &err), SLUICE_OK, "%s", err.msg);
            unsetenv("SLUICE_VK_FORCE_STAGING");
        }
        enum { N = 1000 };
        uint8_t in[N], out[N];
        for (int i = 0; i < N; i++) in[i] = (uint8_t)(i * 7 + 3);
        vk_buffer *b = NULL;
        cr_assert_eq(vk_buffer_create(d, N, VK_MEM_DEVICE, &b, &err), SLUICE_OK, "%s", err.msg);
        cr_assert_eq(vk_buffer_size(b), N);
        cr_assert_eq(vk_buffer_write(d, b, 0, in, N, &err), SLUICE_OK, "%s", err.msg);
        cr_assert_eq(vk_buffer_write(d, b, 100, in, 17, &err), SLUICE_OK, "%s", err.msg);
        memset(out, 0, N);
        cr_assert_eq(vk_buffer_read(d, b, 0, out, N, &err), SLUICE_OK, "%s", err.msg);
        cr_assert_arr_eq(out, in, 100);
        cr_assert_arr_eq(out + 100, in, 17);
        cr_assert_arr_eq(out + 117, in + 117, N - 117);
        cr_assert_eq(vk_buffer_read(d, b, N - 10, out, 11, &err), SLUICE_ERR_RANGE);
        cr_assert_eq(vk_buffer_write(d, b, N + 1, in, 0, &err), SLUICE_ERR_RANGE);
        vk_buffer_destroy(d, b);
        uint64_t too_big = vk_device_info_of(d)->max_storage_buffer_range + 1;
        cr_assert_eq(vk_buffer_create(d, too_big, VK_MEM_DEVICE, &b, &err), SLUICE_ERR_RANGE);
        cr_assert_null(b);
        cr_assert(strstr(err.msg, "maxStorageBufferRange"), "%s", err.msg);
    }
    close_all(d);
}

/* CPU reference: engine/forward.c's rmsnorm (double sum of squares). */
static void rms_norm_ref(float *out, const float *x, const float *w, uint32_t n, float eps) {
    double ss = 0;
    for (uint32_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float s = 1.0f / sqrtf((float)(ss / n) + eps);
    for (uint32_t i = 0; i < n; i++) out[i] = x[i] * s * w[i];
}

static vk_buffer *upload(vk_device *d, const float *v, size_t n) {
    sluice_error err = {0};
    vk_buffer *b = NULL;
    cr_assert_eq(vk_buffer_create(d, n * sizeof *v, VK_MEM_DEVICE, &b, &err), SLUICE_OK, "%s", err.msg);
    cr_assert_eq(vk_buffer_write(d, b, 0, v, n * sizeof *v, &err), SLUICE_OK, "%s", err.msg);
    return b;
}

/* rms_norm over (rows, cols) shapes that are and are not multiples of the
 * workgroup, with rows of very different scale; in-place too; two runs
 * must agree bit for bit. NMSE bound: float tree sum vs double sum, both
 * rounded to float: ~1e-14 expected. */
#define RMS_NORM_NMSE 1e-11

static void check_rms_norm(vk_device *d) {
    sluice_error err = {0};
    const char *path = vk_device_caps(d).subgroups ? "subgroup" : "shared-memory";
    static const uint32_t shapes[][2] = {{1, 1},   {7, 3},    {64, 1},  {127, 5},  {128, 2},
                                         {260, 7}, {4096, 3}, {33, 130}, {5000, 64}};
    tu_rng rng = {0x5eed0001};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        uint32_t cols = shapes[s][0], rows = shapes[s][1];
        size_t n = (size_t)cols * rows;
        float *x = malloc(n * sizeof *x), *w = malloc(cols * sizeof *w), *ref = malloc(n * sizeof *ref);
        float *got = malloc(n * sizeof *got), *again = malloc(n * sizeof *again);
        cr_assert(x && w && ref && got && again);
        for (uint32_t r = 0; r < rows; r++) {
            float scale = powf(10.0f, (float)(r % 5) - 2.0f);
            for (uint32_t i = 0; i < cols; i++) x[(size_t)r * cols + i] = scale * tu_rand_normal(&rng);
        }
        for (uint32_t i = 0; i < cols; i++) w[i] = tu_rand_uniform(&rng, -2.0f, 2.0f);
        const float eps = 1e-5f;
        for (uint32_t r = 0; r < rows; r++) rms_norm_ref(ref + (size_t)r * cols, x + (size_t)r * cols, w, cols, eps);

        vk_buffer *bx = upload(d, x, n), *bw = upload(d, w, cols), *bd = NULL;
        cr_assert_eq(vk_buffer_create(d, n * sizeof(float), VK_MEM_DEVICE, &bd, &err), SLUICE_OK, "%s", err.msg);
        for (int run = 0; run < 2; run++) {
            cr_assert_eq(vk_step_begin(d, &err), SLUICE_OK, "%s", err.msg);
            cr_assert_eq(vk_op_rms_norm(d, bx, bw, bd, cols, rows, eps, &err), SLUICE_OK, "%s", err.msg);
            cr_assert_eq(vk_step_submit(d, &err), SLUICE_OK, "%s", err.msg);
            cr_assert_eq(vk_buffer_read(d, bd, 0, run ? again : got, n * sizeof(float), &err), SLUICE_OK, "%s",
                         err.msg);
        }
        double e = tu_nmse(got, ref, n);
        cr_assert_lt(e, RMS_NORM_NMSE, "rms_norm %u x %u (%s): NMSE %g", rows, cols, path, e);
        cr_assert_eq(memcmp(got, again, n * sizeof(float)), 0, "rms_norm %u x %u (%s): two runs differ", rows, cols, path);

        /* in place, after another op in the same step (barrier between) */
        cr_assert_eq(vk_step_begin(d, &err), SLUICE_OK, "%s", err.msg);
        cr_assert_eq(vk_op_rms_norm(d, bx, bw, bd, cols, rows, eps, &err), SLUICE_OK, "%s", err.msg);
        vk_step_barrier(d);
        cr_assert_eq(vk_op_rms_norm(d, bx, bw, bx, cols, rows, eps, &err), SLUICE_OK, "%s", err.msg);
        cr_assert_eq(vk_step_submit(d, &err), SLUICE_OK, "%s", err.msg);
        cr_assert_eq(vk_buffer_read(d, bx, 0, again, n * sizeof(float), &err), SLUICE_OK, "%s", err.msg);
        cr_assert_eq(memcmp(got, again, n * sizeof(float)), 0, "rms_norm %u x %u (%s) in place differs", rows, cols, path);

        vk_buffer_destroy(d, bx);
        vk_buffer_destroy(d, bw);
        vk_buffer_destroy(d, bd);
        free(x), free(w), free(ref), free(got), free(again);
    }
}

/* Both reduction paths: the one the device's caps choose, then the
 * shared-memory one (SLUICE_VK_DISABLE_SUBGROUPS=1). */
Test(vulkan, rms_norm_vs_cpu) {
    vk_device *d = open_device();
    check_rms_norm(d);
    vk_device_destroy(d);
    setenv("SLUICE_VK_DISABLE_SUBGROUPS", "1", 1);
    d = open_device();
    unsetenv("SLUICE_VK_DISABLE_SUBGROUPS");
    cr_assert(!vk_device_caps(d).subgroups);
    check_rms_norm(d);
    close_all(d);
}

/* ---- mul_mat_vec ---- */

/* One mul_mat_vec case: W (rows, cols) quantized row by row with
 * quant_quantize_row_ref, stored from byte w_off; x from float x_off; y
 * from float y_off. */
typedef struct mmv_case {
    qtype t;
    uint32_t rows, cols, w_off, x_off, y_off;
    uint8_t *w;   /* w_off + rows * row_bytes, rounded up to 4 */
    size_t w_bytes;
    float *x;     /* x_off + cols */
    float *ref;   /* rows: CPU reference */
} mmv_case;

static void mmv_case_build(mmv_case *c, tu_rng *rng) {
    uint64_t row_bytes = 0;
    cr_assert(qtype_row_bytes(c->t, c->cols, &row_bytes));
    c->w_bytes = (c->w_off + row_bytes * c->rows + 3) / 4 * 4;
    c->w = calloc(c->w_bytes, 1);
    c->x = malloc((c->x_off + c->cols) * sizeof(float));
    c->ref = malloc(c->rows * sizeof(float));
    float *row = malloc(c->cols * sizeof(float)), *deq = malloc(c->cols * sizeof(float));
    cr_assert(c->w && c->x && c->ref && row && deq);
    for (uint32_t i = 0; i < c->x_off + c->cols; i++) c->x[i] = tu_rand_normal(rng);
    for (uint32_t r = 0; r < c->rows; r++) {
        /* rows of different scale, so a mixed-up row shows */
        float scale = powf(4.0f, (float)(r % 5) - 2.0f);
        for (uint32_t i = 0; i < c->cols; i++) row[i] = scale * tu_rand_normal(rng);
        uint8_t *wr = c->w + c->w_off + r * row_bytes;
        quant_quantize_row_ref(c->t, row, wr, c->cols);
        quant_dequantize_row_ref(c->t, wr, deq, c->cols);
        double s = 0;
        for (uint32_t i = 0; i < c->cols; i++) s += (double)deq[i] * c->x[c->x_off + i];
        c->ref[r] = (float)s;
    }
    free(row);
    free(deq);
}

static void mmv_case_free(mmv_case *c) {
    free(c->w);
    free(c->x);
    free(c->ref);
}

/* Runs c twice on d; checks NMSE against the reference and that the runs
 * agree bit for bit. Returns the NMSE. */
static double mmv_run(vk_device *d, const mmv_case *c, double limit) {
    sluice_error err = {0};
    const char *path = vk_device_caps(d).subgroups ? "subgroup" : "shared-memory";
    const char *name = qtype_get(c->t)->name;
    vk_buffer *bw = NULL, *bx = NULL, *by = NULL;
    cr_assert_eq(vk_buffer_create(d, c->w_bytes, VK_MEM_DEVICE, &bw, &err), SLUICE_OK, "%s", err.msg);
    cr_assert_eq(vk_buffer_write(d, bw, 0, c->w, c->w_bytes, &err), SLUICE_OK, "%s", err.msg);
    bx = upload(d, c->x, c->x_off + c->cols);
    size_t ny = c->y_off + c->rows;
    cr_assert_eq(vk_buffer_create(d, ny * sizeof(float), VK_MEM_DEVICE, &by, &err), SLUICE_OK, "%s", err.msg);
    float *got = malloc(ny * sizeof(float)), *again = malloc(ny * sizeof(float));
    cr_assert(got && again);
    for (int run = 0; run < 2; run++) {
        cr_assert_eq(vk_step_begin(d, &err), SLUICE_OK, "%s", err.msg);
        cr_assert_eq(vk_op_mul_mat_vec(d, c->t, bw, c->w_off, bx, c->x_off, by, c->y_off, c->rows, c->cols, &err),
                     SLUICE_OK, "%s", err.msg);
        cr_assert_eq(vk_step_submit(d, &err), SLUICE_OK, "%s", err.msg);
        cr_assert_eq(vk_buffer_read(d, by, 0, run ? again : got, ny * sizeof(float), &err), SLUICE_OK, "%s",
                     err.msg);
    }
    double e = tu_nmse(got + c->y_off, c->ref, c->rows);
    if (getenv("SLUICE_VK_TEST_VERBOSE"))
        fprintf(stderr, "mul_mat_vec %-4s %4u x %-4u (%s): NMSE %.3g\n", name, c->rows, c->cols, path, e);
    cr_assert_lt(e, limit, "mul_mat_vec %s %u x %u (%s): NMSE %g", name, c->rows, c->cols, path, e);
    cr_assert_eq(memcmp(got + c->y_off, again + c->y_off, c->rows * sizeof(float)), 0,
                 "mul_mat_vec %s %u x %u (%s): two runs differ", name, c->rows, c->cols, path);
    vk_buffer_destroy(d, bw);
    vk_buffer_destroy(d, bx);
    vk_buffer_destroy(d, by);
    free(got);
    free(again);
    return e;
}

/* Every row count below against each of `cols`, with and without offsets,
 * on the device's own reduction path and on the shared-memory one
 * (SLUICE_VK_DISABLE_SUBGROUPS=1), from the same data. */
static void check_mul_mat_vec(qtype t, const uint32_t *cols, size_t n_cols, double limit) {
    static const uint32_t rows[] = {1, 7, 33, 130, 1000};
    vk_device *d = open_device(), *d_shared = NULL;
    sluice_error err = {0};
    uint32_t index = 0; /* the device open_device picked */
    while (strcmp(vk_instance_device(g_inst, index)->name, vk_device_info_of(d)->name) != 0) index++;
    setenv("SLUICE_VK_DISABLE_SUBGROUPS", "1", 1);
    sluice_status st = vk_device_create(g_inst, index, &d_shared, &err);
    unsetenv("SLUICE_VK_DISABLE_SUBGROUPS");
    cr_assert_eq(st, SLUICE_OK, "%s", err.msg);
    cr_assert(!vk_device_caps(d_shared).subgroups);
    cr_assert(vk_mul_mat_vec_supports(t));
    tu_rng rng = {0x5eed0100u + (uint64_t)t};
    size_t k = 0;
    for (size_t ci = 0; ci < n_cols; ci++)
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++, k++) {
            mmv_case c = {.t = t, .rows = rows[ri], .cols = cols[ci]};
            if (k % 2) c.w_off = 4 * (uint32_t)(k % 7 + 1), c.x_off = 3, c.y_off = 5;
            mmv_case_build(&c, &rng);
            mmv_run(d, &c, limit);
            mmv_run(d_shared, &c, limit);
            mmv_case_free(&c);
        }
    vk_device_destroy(d_shared);
    close_all(d);
}

/* NMSE limits against dequantize + double dot. The shader forms each
 * weight as the reference does (d * (q - bias) with d applied per 32, or
 * d * q + m, d * sc * q - dmin * mn per element) but sums in float in
 * another order (per unit of 32, then a tree), so the difference is float
 * rounding of a cols-long sum: measured on lavapipe (both paths, all
 * shapes) F32 <= 9e-14, F16 <= 7e-14, Q8_0 <= 2.3e-13, Q4_0 <= 3.7e-13,
 * Q5_0 <= 7e-14, Q4_1 <= 4.2e-13, Q5_1 <= 1.1e-13, Q6_K <= 5e-14, Q4_K and
 * Q5_K <= 2.3e-11. The K-quants with mins are the worst because their two
 * terms nearly cancel per element, and a single row whose dot happens to
 * be small (1 x 256: 0.012 against terms of ~0.06) turns that rounding
 * into a large relative error. Limits: about two decades above. */
#define MMV_NMSE_FLOAT 1e-11
#define MMV_NMSE_BLOCK32 1e-11
#define MMV_NMSE_Q6_K 1e-11
#define MMV_NMSE_K_MIN 1e-9

static const uint32_t mmv_cols_float[] = {1, 33, 128, 1000, 4096};
static const uint32_t mmv_cols_32[] = {32, 96, 256, 4096};
static const uint32_t mmv_cols_k[] = {256, 768, 4096};
#define N_OF(a) (sizeof a / sizeof a[0])

Test(vulkan, mul_mat_vec_f32) { check_mul_mat_vec(QT_F32, mmv_cols_float, N_OF(mmv_cols_float), MMV_NMSE_FLOAT); }
Test(vulkan, mul_mat_vec_f16) { check_mul_mat_vec(QT_F16, mmv_cols_float, N_OF(mmv_cols_float), MMV_NMSE_FLOAT); }
Test(vulkan, mul_mat_vec_q8_0) { check_mul_mat_vec(QT_Q8_0, mmv_cols_32, N_OF(mmv_cols_32), MMV_NMSE_BLOCK32); }
Test(vulkan, mul_mat_vec_q4_0) { check_mul_mat_vec(QT_Q4_0, mmv_cols_32, N_OF(mmv_cols_32), MMV_NMSE_BLOCK32); }
Test(vulkan, mul_mat_vec_q4_1) { check_mul_mat_vec(QT_Q4_1, mmv_cols_32, N_OF(mmv_cols_32), MMV_NMSE_BLOCK32); }
Test(vulkan, mul_mat_vec_q5_0) { check_mul_mat_vec(QT_Q5_0, mmv_cols_32, N_OF(mmv_cols_32), MMV_NMSE_BLOCK32); }
Test(vulkan, mul_mat_vec_q5_1) { check_mul_mat_vec(QT_Q5_1, mmv_cols_32, N_OF(mmv_cols_32), MMV_NMSE_BLOCK32); }
Test(vulkan, mul_mat_vec_q4_k) { check_mul_mat_vec(QT_Q4_K, mmv_cols_k, N_OF(mmv_cols_k), MMV_NMSE_K_MIN); }
Test(vulkan, mul_mat_vec_q5_k) { check_mul_mat_vec(QT_Q5_K, mmv_cols_k, N_OF(mmv_cols_k), MMV_NMSE_K_MIN); }
Test(vulkan, mul_mat_vec_q6_k) { check_mul_mat_vec(QT_Q6_K, mmv_cols_k, N_OF(mmv_cols_k), MMV_NMSE_Q6_K); }

/* More rows than one dispatch covers (maxComputeWorkGroupCount[0], 65535
 * on lavapipe, times the rows per workgroup, at most 4): the op splits the
 * rows over dispatches. */
Test(vulkan, mul_mat_vec_many_rows) {
    vk_device *d = open_device();
    uint32_t max_groups = vk_device_info_of(d)->max_wg_count[0];
    mmv_case c = {.t = QT_Q4_0, .rows = max_groups < 75000 ? 4 * max_groups + 77 : 300000, .cols = 32, .w_off = 4,
                  .x_off = 1, .y_off = 2};
    tu_rng rng = {0x5eed0200u};
    mmv_case_build(&c, &rng);
    mmv_run(d, &c, MMV_NMSE_BLOCK32);
    mmv_case_free(&c);
    close_all(d);
}

/* Arguments the op must refuse without recording anything. */
Test(vulkan, mul_mat_vec_bad_args) {
    vk_device *d = open_device();
    sluice_error err = {0};
    vk_buffer *b = NULL;
    cr_assert_eq(vk_buffer_create(d, 4096, VK_MEM_DEVICE, &b, &err), SLUICE_OK, "%s", err.msg);
    cr_assert(!vk_mul_mat_vec_supports(QT_Q2_K));
    cr_assert_eq(vk_step_begin(d, &err), SLUICE_OK, "%s", err.msg);
    cr_assert_eq(vk_op_mul_mat_vec(d, QT_Q2_K, b, 0, b, 0, b, 0, 1, 256, &err), SLUICE_ERR_UNSUPPORTED);
    cr_assert_eq(vk_op_mul_mat_vec(d, QT_Q4_0, b, 0, b, 0, b, 0, 1, 33, &err), SLUICE_ERR_ARG, "not whole blocks");
    cr_assert_eq(vk_op_mul_mat_vec(d, QT_F32, b, 2, b, 0, b, 0, 1, 8, &err), SLUICE_ERR_ARG, "unaligned weights");
    cr_assert_eq(vk_op_mul_mat_vec(d, QT_F32, b, 0, b, 0, b, 0, 2, 600, &err), SLUICE_ERR_ARG, "weights too big");
    cr_assert_eq(vk_op_mul_mat_vec(d, QT_F32, b, 0, b, 1000, b, 0, 1, 100, &err), SLUICE_ERR_ARG, "x too big");
    cr_assert_eq(vk_step_submit(d, &err), SLUICE_OK, "%s", err.msg);
    vk_buffer_destroy(d, b);
    close_all(d);
}
#endif
