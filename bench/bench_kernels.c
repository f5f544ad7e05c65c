/* bench_kernels.c — times cpu_matmul for one weight matrix per type and ISA:
 * n_tok = 1 (generation: memory-bound, reported as GB/s of weights) and
 * n_tok = 64 (prompt: compute-bound, reported as GFLOP/s). Not a test and
 * not run by CI; build by hand, e.g. from the repository root:
 *
 *   gcc -std=c11 -O3 -D_GNU_SOURCE -DSLUICE_X86=1 -Iinclude -Isrc \
 *       bench/bench_kernels.c <objects of src/core, src/model/quant.c and
 *       src/backend/cpu/ (SIMD files with their flags)> -lpthread -lm
 *
 * or, simplest, against a CMake build's libraries:
 *
 *   gcc -std=c11 -O3 -D_GNU_SOURCE -DSLUICE_X86=1 -Iinclude -Isrc bench/bench_kernels.c \
 *       build/libsluice_backend.a build/libsluice_model.a build/libsluice_core.a -lpthread -lm
 *
 *   bench_kernels [rows cols threads reps [type]]   (default 4096 4096 all-CPUs 9, all types)
 *
 * Each figure is the median of `reps` runs. "tg cold" cycles through copies
 * of the matrix totalling >= 1 GiB so weights come from DRAM, as they do for
 * a real model; "tg hot" reruns one matrix (cache-resident if it fits). A
 * plain read of as many bytes by the same threads is measured first; "/read"
 * is tg cold as a fraction of it (1.0 = the kernel runs at memory speed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backend/cpu/cpu_kernels.h"
#include "core/threadpool.h"
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

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static uint64_t rng_state = 88172645463325252ull;
static float rand_normal(void) { /* sum of 4 uniforms: close enough for timing */
    float s = 0;
    for (int i = 0; i < 4; i++) {
        rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
        s += (float)(rng_state >> 40) / (float)(1 << 24) - 0.5f;
    }
    return s * 1.7f;
}

/* ---- baseline: plain parallel read ---------------------------------------- */

typedef struct read_ctx { const uint64_t *p; size_t n_words; int n_tasks; uint64_t sums[64]; } read_ctx;

static void read_task(void *vc, int task, int thread) {
    read_ctx *c = vc;
    size_t per = c->n_words / (size_t)c->n_tasks;
    const uint64_t *p = c->p + (size_t)task * per;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= per; i += 4) { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; }
    c->sums[thread & 63] += s0 + s1 + s2 + s3;
}

/* GB/s of reading `copies` buffers of `bytes` in turn, median of reps. */
static double read_bw(pool *p, uint8_t **bufs, int copies, size_t bytes, int reps) {
    double t[64];
    read_ctx c = {.n_words = bytes / 8, .n_tasks = pool_size(p) * 4};
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        for (int k = 0; k < copies; k++) {
            c.p = (const uint64_t *)bufs[k];
            pool_run(p, c.n_tasks, read_task, &c);
        }
        t[r] = (now_s() - t0) / copies;
    }
    return (double)bytes / median(t, reps) / 1e9;
}

int main(int argc, char **argv) {
    int64_t rows = argc > 1 ? atoll(argv[1]) : 4096, cols = argc > 2 ? atoll(argv[2]) : 4096;
    int threads = argc > 3 ? atoi(argv[3]) : pool_cpu_count();
    int reps = argc > 4 ? atoi(argv[4]) : 9;
    const char *only = argc > 5 ? argv[5] : NULL; /* one type name, e.g. Q4_K */
    if (reps < 1 || reps > 64 || cols % 256 || rows < 1) {
        fprintf(stderr, "usage: %s [rows cols(multiple of 256) threads reps(1-64) [type]]\n", argv[0]);
        return 2;
    }
    const int64_t pp_tok = 64;
    pool *p = pool_create(threads);
    cpu_isa best = cpu_isa_detect();
    printf("cpu_matmul %lld x %lld, %d threads, best ISA %s, median of %d\n", (long long)rows,
           (long long)cols, pool_size(p), cpu_isa_name(best), reps);

    float *w = malloc(sizeof(float) * (size_t)(rows * cols));
    float *X = malloc(sizeof(float) * (size_t)(cols * pp_tok));
    float *Y = malloc(sizeof(float) * (size_t)(rows * pp_tok));
    for (int64_t i = 0; i < rows * cols; i++) w[i] = rand_normal();
    for (int64_t i = 0; i < cols * pp_tok; i++) X[i] = rand_normal();

    /* baseline: plain read bandwidth of F32-matrix-sized buffers */
    double read_cold;
    {
        size_t sz = (size_t)(rows * cols) * 4;
        int copies = (int)((1ull << 30) / sz) + 1;
        uint8_t **bufs = malloc(sizeof *bufs * (size_t)copies);
        for (int k = 0; k < copies; k++) { bufs[k] = malloc(sz); memset(bufs[k], k + 1, sz); }
        read_cold = read_bw(p, bufs, copies, sz, reps);
        printf("plain read, %zu MB x %d copies: cold %.1f GB/s, hot %.1f GB/s\n", sz >> 20, copies,
               read_cold, read_bw(p, bufs, 1, sz, reps));
        for (int k = 0; k < copies; k++) free(bufs[k]);
        free(bufs);
    }
    printf("%-5s %-10s %9s %12s %12s %8s %14s\n", "type", "isa", "MB", "tg hot GB/s", "tg cold GB/s", "/read", "pp64 GFLOP/s");

    static const qtype types[] = {QT_F32, QT_F16, QT_BF16, QT_Q8_0, QT_Q4_0, QT_Q4_1,
                                  QT_Q5_0, QT_Q5_1, QT_Q4_K, QT_Q5_K, QT_Q6_K};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        qtype t = types[k];
        if (only && qtype_from_name(only) != (int)t) continue;
        uint64_t rb;
        qtype_row_bytes(t, (uint64_t)cols, &rb);
        size_t wbytes = (size_t)rb * (size_t)rows;
        int copies = (int)((1ull << 30) / wbytes) + 1;
        uint8_t **W = malloc(sizeof *W * (size_t)copies);
        W[0] = malloc(wbytes);
        quant_quantize_row_ref(t, w, W[0], rows * cols);
        for (int c = 1; c < copies; c++) { W[c] = malloc(wbytes); memcpy(W[c], W[0], wbytes); }
        void *ws = malloc(cpu_matmul_ws_bytes(t, cols, pp_tok) + 64);
        for (int isa = CPU_ISA_SCALAR; isa <= (int)best; isa++) {
            double th[64], tc[64], tp[64];
            cpu_matmul(p, (cpu_isa)isa, t, W[0], rows, cols, X, 1, Y, ws); /* warm up */
            for (int r = 0; r < reps; r++) {
                double t0 = now_s();
                cpu_matmul(p, (cpu_isa)isa, t, W[0], rows, cols, X, 1, Y, ws);
                th[r] = now_s() - t0;
            }
            for (int r = 0; r < reps; r++) {
                double t0 = now_s();
                for (int c = 0; c < copies; c++) cpu_matmul(p, (cpu_isa)isa, t, W[c], rows, cols, X, 1, Y, ws);
                tc[r] = (now_s() - t0) / copies;
            }
            int preps = isa == CPU_ISA_SCALAR ? 1 : reps; /* scalar pp is slow */
            for (int r = 0; r < preps; r++) {
                double t0 = now_s();
                cpu_matmul(p, (cpu_isa)isa, t, W[0], rows, cols, X, pp_tok, Y, ws);
                tp[r] = now_s() - t0;
            }
            double flop = 2.0 * (double)rows * (double)cols, cold = wbytes / median(tc, reps) / 1e9;
            printf("%-5s %-10s %9.1f %12.1f %12.1f %8.2f %14.1f\n", qtype_get(t)->name, cpu_isa_name((cpu_isa)isa),
                   wbytes / 1e6, wbytes / median(th, reps) / 1e9, cold, cold / read_cold,
                   flop * pp_tok / median(tp, preps) / 1e9);
            fflush(stdout);
        }
        for (int c = 0; c < copies; c++) free(W[c]);
        free(W);
        free(ws);
    }
    free(w); free(X); free(Y);
    pool_destroy(p);
    return 0;
}
