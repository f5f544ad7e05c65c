/* bench_vk_kernels.c — times the Vulkan matrix kernels alone on one device:
 * vk_op_mul_mat_vec (one token: generation) and vk_op_mul_mat (n_tok
 * tokens: a prompt chunk) for each weight type, as G multiply-accumulates
 * per second and GB/s of weights. Not a test and not run by CI; built on
 * request:
 *
 *   cmake --build build --target bench_vk_kernels
 *   build/bench_vk_kernels [rows cols n_tok reps [type [device]]]   (types whose block divides cols)
 *       (default 1024 1024 64 7, all types, device "0")
 *
 * Each figure is the median of `reps` steps, each step holding 4 dispatches
 * of the op (so submission overhead is amortized), timed on the host from
 * submit to fence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backend/vulkan/ops.h"
#include "backend/vulkan/runtime.h"
#include "model/quant.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define PER_STEP 4

/* Median seconds of one op over reps steps of PER_STEP dispatches. */
static double time_op(vk_device *d, qtype t, vk_buffer *w, vk_buffer *x, vk_buffer *y, uint32_t rows, uint32_t cols,
                      uint32_t n_tok, int reps) {
    double *s = malloc(sizeof(double) * (size_t)reps);
    sluice_error err = {0};
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up (pipeline creation, first compile) */
        if (vk_step_begin(d, &err)) goto fail;
        for (int k = 0; k < PER_STEP; k++) {
            sluice_status st = n_tok == 1 ? vk_op_mul_mat_vec(d, t, w, 0, x, 0, y, 0, rows, cols, &err)
                                          : vk_op_mul_mat(d, t, w, 0, x, 0, cols, y, 0, rows, rows, cols, n_tok, &err);
            if (st) goto fail;
        }
        double t0 = now_s();
        if (vk_step_submit(d, &err)) goto fail;
        if (r >= 0) s[r] = (now_s() - t0) / PER_STEP;
    }
    qsort(s, (size_t)reps, sizeof(double), cmp_double);
    double m = s[reps / 2];
    free(s);
    return m;
fail:
    fprintf(stderr, "bench_vk_kernels: %s\n", err.msg);
    exit(1);
}

int main(int argc, char **argv) {
    uint32_t rows = argc > 1 ? (uint32_t)atol(argv[1]) : 1024, cols = argc > 2 ? (uint32_t)atol(argv[2]) : 1024;
    uint32_t n_tok = argc > 3 ? (uint32_t)atol(argv[3]) : 64;
    int reps = argc > 4 ? atoi(argv[4]) : 7;
    const char *only = argc > 5 ? argv[5] : NULL, *dev = argc > 6 ? argv[6] : "0";
    if (!rows || !cols || cols % 32 || n_tok < 2 || reps < 1 || reps > 99) {
        fprintf(stderr, "usage: %s [rows cols(multiple of 32) n_tok(>= 2) reps(1-99) [type [device]]]\n", argv[0]);
        return 2;
    }
    sluice_error err = {0};
    vk_instance *inst = NULL;
    vk_device *d = NULL;
    int pick = -1;
    if (vk_instance_create(&inst, false, &err) ||
        vk_select_device(vk_instance_device(inst, 0), vk_instance_device_count(inst), dev, &pick, &err) || pick < 0 ||
        vk_device_create(inst, (uint32_t)pick, &d, &err)) {
        fprintf(stderr, "bench_vk_kernels: no device '%s': %s\n", dev, err.msg);
        return 1;
    }
    vk_kernel_caps caps = vk_device_caps(d);
    printf("%s: %u x %u, mat-vec and mat-mat (%u tokens), %s layout, median of %d\n", vk_device_info_of(d)->name, rows,
           cols, n_tok, caps.lane_rows ? "lane-rows" : "GPU", reps);
    printf("%-5s %9s %12s %10s %14s %12s\n", "type", "MB", "mmv GMAC/s", "mmv GB/s", "mm GMAC/s", "mm / mmv");
    float *xf = malloc(sizeof(float) * (size_t)cols * n_tok), *row = malloc(sizeof(float) * cols);
    uint64_t seed = 1;
    for (size_t i = 0; i < (size_t)cols * n_tok; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        xf[i] = (float)((int)(seed >> 40) % 2001 - 1000) / 1000.0f;
    }
    for (int t = 0; t < QT_COUNT; t++) {
        if (!vk_mul_mat_supports((qtype)t) || (only && strcmp(only, qtype_get((qtype)t)->name))) continue;
        if (cols % qtype_get((qtype)t)->block) continue; /* K-quants need whole 256-blocks */
        uint64_t rb = 0;
        qtype_row_bytes((qtype)t, cols, &rb);
        uint64_t wbytes = (rb * rows + 3) / 4 * 4;
        uint8_t *w = calloc(wbytes, 1);
        for (uint32_t r = 0; r < rows; r++) {
            for (uint32_t c = 0; c < cols; c++) row[c] = xf[(r * 7u + c) % ((size_t)cols * n_tok)];
            quant_quantize_row_ref((qtype)t, row, w + r * rb, cols);
        }
        vk_buffer *bw = NULL, *bx = NULL, *by = NULL;
        if (vk_buffer_create(d, wbytes, VK_MEM_DEVICE, &bw, &err) || vk_buffer_write(d, bw, 0, w, wbytes, &err) ||
            vk_buffer_create(d, sizeof(float) * (uint64_t)cols * n_tok, VK_MEM_DEVICE, &bx, &err) ||
            vk_buffer_write(d, bx, 0, xf, sizeof(float) * (uint64_t)cols * n_tok, &err) ||
            vk_buffer_create(d, sizeof(float) * (uint64_t)rows * n_tok, VK_MEM_DEVICE, &by, &err)) {
            fprintf(stderr, "bench_vk_kernels: %s\n", err.msg);
            return 1;
        }
        double macs = (double)rows * cols;
        double tv = time_op(d, (qtype)t, bw, bx, by, rows, cols, 1, reps);
        double tm = time_op(d, (qtype)t, bw, bx, by, rows, cols, n_tok, reps);
        printf("%-5s %9.2f %12.2f %10.2f %14.2f %12.2f\n", qtype_get((qtype)t)->name, wbytes / 1e6, macs / tv / 1e9,
               wbytes / tv / 1e9, macs * n_tok / tm / 1e9, (macs * n_tok / tm) / (macs / tv));
        vk_buffer_destroy(d, bw), vk_buffer_destroy(d, bx), vk_buffer_destroy(d, by);
        free(w);
    }
    free(xf), free(row);
    vk_device_destroy(d);
    vk_instance_destroy(inst);
    return 0;
}
