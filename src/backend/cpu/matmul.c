/* matmul.c — Y = X W^T for a quantized (or float) weight matrix W and f32
 * activations X, split over a thread pool. The engine's hot path:
 *
 *  - one token (generation) streams every weight byte once: memory-bound,
 *    so each task takes a long contiguous run of rows;
 *  - many tokens (prompt) are compute-bound: each task takes TILE_ROWS rows
 *    and runs them against the tokens CPU_DOTN_MAX at a time, so a row is
 *    decoded once per group of tokens while the tile and the group's
 *    activation rows stay in L1/L2 (float weights, whose f32 activation
 *    rows are large, go a CPU_FLOAT_KCHUNK column chunk at a time).
 *
 * Where the ISA has a tile kernel (cpu_gemm_fn: AVX-512 VNNI block types,
 * AVX-512 float types, AVX2 Q4_0 / Q8_0) rows go CPU_GEMM_ROWS at a time through it, for one
 * token too; else row by row through dotn (or dot).
 *
 * X is converted once into the weight type's activation format (Q8_0, Q8_1,
 * Q8_K, with float copies of the block scales: see cpu_act_row_stride;
 * float types use X as is). Every Y element is one dot / dotn / gemm value
 * that does not depend on the thread count, the batch size or the tile it
 * was computed in, so results are bit-identical for any pool and any
 * batching of tokens. */
#include <stdlib.h>
#include "backend/cpu/cpu_kernels.h"
#include "core/fp16.h"
#include "sluice/sluice.h"

enum {
    TILE_ROWS = 16,      /* rows per task when n_tok > 1 */
    /* one-token split: two long runs of rows per thread. Measured on a
     * 2-core VM (tiny256 / smol models): 8 tasks per thread cost ~10% of
     * the generation speed in task hand-offs and broken prefetch streams;
     * 1 and 2 were alike, and 2 leaves work to take from a preempted
     * thread. */
    TASKS_PER_THREAD = 2
};

static void die(const char *what) {
    sluice_log(SLUICE_LOG_ERROR, "cpu_matmul: %s", what);
    abort();
}

static uint64_t round64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

static uint64_t checked_row_bytes(qtype t, int64_t n) {
    uint64_t b = 0;
    if (n < 0 || !qtype_row_bytes(t, (uint64_t)n, &b)) die("cols is not a multiple of the block size");
    return b;
}

size_t cpu_act_scales_offset(qtype dot_type, int64_t n) {
    return (size_t)round64(checked_row_bytes(dot_type, n));
}

size_t cpu_act_row_stride(qtype dot_type, int64_t n) {
    uint64_t off = round64(checked_row_bytes(dot_type, n)), nb = (uint64_t)n / 32;
    if (dot_type == QT_Q8_0 || dot_type == QT_Q8_1) return (size_t)round64(off + nb * sizeof(cpu_act_aux));
    return (size_t)off;
}

void cpu_act_fill_scales(qtype dot_type, void *row, int64_t n) {
    if (dot_type != QT_Q8_0 && dot_type != QT_Q8_1) return;
    cpu_act_aux *aux = (cpu_act_aux *)((uint8_t *)row + cpu_act_scales_offset(dot_type, n));
    for (int64_t i = 0; i < n / 32; i++) {
        if (dot_type == QT_Q8_0) {
            const block_q8_0 *b = (const block_q8_0 *)row + i;
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += b->qs[j];
            aux[i] = (cpu_act_aux){fp16_to_f32(b->d), 0, -8 * sum, -16 * sum, -128 * sum};
        } else {
            const block_q8_1 *b = (const block_q8_1 *)row + i;
            aux[i] = (cpu_act_aux){fp16_to_f32(b->d), fp16_to_f32(b->s), 0, 0, 0};
        }
    }
}

size_t cpu_matmul_ws_bytes(qtype wt, int64_t cols, int64_t n_tok) {
    const qtype_info *ti = qtype_get((uint32_t)wt);
    if (!ti || !ti->compute || ti->dot_type == QT_F32) return 0;
    return cpu_act_row_stride(ti->dot_type, cols) * (size_t)n_tok + 64; /* + alignment slack */
}

/* ---- activation conversion ------------------------------------------------ */

typedef struct conv_ctx {
    cpu_act_fn fn;
    qtype dt;
    const float *X;
    int64_t cols;
    uint8_t *A;
    size_t stride;
} conv_ctx;

static void conv_task(void *vc, int task, int thread) {
    (void)thread;
    const conv_ctx *c = vc;
    uint8_t *row = c->A + (size_t)task * c->stride;
    c->fn(c->X + (size_t)task * c->cols, row, c->cols);
    cpu_act_fill_scales(c->dt, row, c->cols);
}

const void *cpu_act_convert(pool *p, cpu_isa isa, qtype wt, int64_t cols, const float *X,
                            int64_t n_tok, void *ws, size_t *a_stride) {
    const qtype_info *ti = qtype_get((uint32_t)wt);
    if (!ti || !ti->compute) die("weight type cannot be computed");
    if (ti->dot_type == QT_F32) {
        *a_stride = (size_t)cols * sizeof(float);
        return X;
    }
    conv_ctx c = {cpu_act_get(ti->dot_type, isa), ti->dot_type, X, cols,
                  (uint8_t *)(((uintptr_t)ws + 63) & ~(uintptr_t)63), cpu_act_row_stride(ti->dot_type, cols)};
    if (n_tok >= 4 && pool_size(p) > 1)
        pool_run(p, (int)n_tok, conv_task, &c);
    else
        for (int64_t t = 0; t < n_tok; t++) conv_task(&c, (int)t, 0);
    *a_stride = c.stride;
    return c.A;
}

/* ---- the multiply --------------------------------------------------------- */

typedef struct mm_ctx {
    cpu_dot_fn dot;
    cpu_dotn_fn dotn;   /* NULL: loop dot */
    cpu_gemm_fn gemm;   /* NULL: dotn (or dot) row by row */
    const uint8_t *W;
    size_t row_bytes;
    int64_t rows, cols;
    const uint8_t *A;
    size_t a_stride;
    int64_t n_tok;
    float *Y;           /* (n_tok, rows) */
    int64_t rows_per_task;
    bool float_chunks;  /* float weight type: dotn may run column chunks */
    size_t elem_bytes;  /* of a float weight type */
} mm_ctx;

/* Rows [r0, r1) against tokens [t0, t0 + nt), nt <= CPU_DOTN_MAX. */
static void mm_rows(const mm_ctx *c, int64_t r0, int64_t r1, int64_t t0, int nt) {
    const uint8_t *a = c->A + (size_t)t0 * c->a_stride;
    float *y = c->Y + (size_t)t0 * (size_t)c->rows;
    if (c->gemm && c->float_chunks) {
        /* float weights, tiles of rows: a column chunk at a time over all
         * rows, so the chunk of nt activation rows stays in L1; the gemm's
         * chunk partials are summed here, left to right (its own sum) */
        for (int64_t k0 = 0; k0 < c->cols || k0 == 0; k0 += CPU_FLOAT_KCHUNK) {
            int64_t kn = c->cols - k0 < CPU_FLOAT_KCHUNK ? c->cols - k0 : CPU_FLOAT_KCHUNK;
            for (int64_t r = r0; r < r1; r += CPU_GEMM_ROWS) {
                int nr = r1 - r < CPU_GEMM_ROWS ? (int)(r1 - r) : CPU_GEMM_ROWS;
                const uint8_t *w = c->W + (size_t)r * c->row_bytes + (size_t)k0 * c->elem_bytes;
                const uint8_t *ak = a + (size_t)k0 * sizeof(float);
                if (k0 == 0) {
                    c->gemm(kn, w, c->row_bytes, nr, ak, c->a_stride, nt, y + r, (size_t)c->rows);
                } else {
                    float part[CPU_DOTN_MAX * CPU_GEMM_ROWS];
                    c->gemm(kn, w, c->row_bytes, nr, ak, c->a_stride, nt, part, CPU_GEMM_ROWS);
                    for (int j = 0; j < nt; j++)
                        for (int i = 0; i < nr; i++)
                            y[(size_t)j * (size_t)c->rows + r + i] += part[j * CPU_GEMM_ROWS + i];
                }
            }
        }
        return;
    }
    if (nt > 1 && c->dotn && c->float_chunks) {
        /* float weights: a column chunk at a time over all rows, so the
         * chunk of nt activation rows stays in L1 (CPU_FLOAT_KCHUNK) */
        for (int64_t k0 = 0; k0 < c->cols || k0 == 0; k0 += CPU_FLOAT_KCHUNK) {
            int64_t kn = c->cols - k0 < CPU_FLOAT_KCHUNK ? c->cols - k0 : CPU_FLOAT_KCHUNK;
            for (int64_t r = r0; r < r1; r++) {
                float out[CPU_DOTN_MAX];
                c->dotn(kn, c->W + (size_t)r * c->row_bytes + (size_t)k0 * c->elem_bytes,
                        a + (size_t)k0 * sizeof(float), c->a_stride, nt, out);
                for (int j = 0; j < nt; j++) {
                    float *yj = &y[(size_t)j * (size_t)c->rows + r];
                    *yj = k0 == 0 ? out[j] : *yj + out[j];
                }
            }
        }
        return;
    }
    if (c->gemm) { /* CPU_GEMM_ROWS rows x nt tokens a call, also for one token */
        for (int64_t r = r0; r < r1; r += CPU_GEMM_ROWS) {
            int nr = r1 - r < CPU_GEMM_ROWS ? (int)(r1 - r) : CPU_GEMM_ROWS;
            c->gemm(c->cols, c->W + (size_t)r * c->row_bytes, c->row_bytes, nr, a, c->a_stride, nt, y + r,
                    (size_t)c->rows);
        }
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *w = c->W + (size_t)r * c->row_bytes;
        if (c->dotn) { /* also for one token: it reads the layout's float scales */
            float out[CPU_DOTN_MAX];
            c->dotn(c->cols, w, a, c->a_stride, nt, out);
            for (int j = 0; j < nt; j++) y[(size_t)j * (size_t)c->rows + r] = out[j];
        } else {
            for (int j = 0; j < nt; j++) /* scalar: one row at a time */
                y[(size_t)j * (size_t)c->rows + r] = c->dot(c->cols, w, a + (size_t)j * c->a_stride);
        }
    }
}

static void mm_task(void *vc, int task, int thread) {
    (void)thread;
    const mm_ctx *c = vc;
    int64_t r0 = (int64_t)task * c->rows_per_task;
    int64_t r1 = r0 + c->rows_per_task < c->rows ? r0 + c->rows_per_task : c->rows;
    /* Token groups start at multiples of CPU_DOTN_MAX whatever the split. */
    for (int64_t t = 0; t < c->n_tok; t += CPU_DOTN_MAX) {
        int nt = c->n_tok - t < CPU_DOTN_MAX ? (int)(c->n_tok - t) : CPU_DOTN_MAX;
        mm_rows(c, r0, r1, t, nt);
    }
}

void cpu_matmul_act(pool *p, cpu_isa isa, qtype wt, const void *W, int64_t rows, int64_t cols,
                    const void *A, size_t a_stride, int64_t n_tok, float *Y) {
    if (rows <= 0 || n_tok <= 0) return;
    uint64_t rb = checked_row_bytes(wt, cols);
    const qtype_info *ti = qtype_get((uint32_t)wt);
    mm_ctx c = {cpu_dot_get(wt, isa), cpu_dotn_get(wt, isa), cpu_gemm_get(wt, isa), W, (size_t)rb, rows, cols,
                A, a_stride, n_tok, Y, 0, ti->dot_type == QT_F32, ti->block_bytes};
    if (!c.dot) die("no dot product for this weight type");
    int64_t n_threads = pool_size(p);
    if (n_tok == 1) {
        int64_t per = (rows + n_threads * TASKS_PER_THREAD - 1) / (n_threads * TASKS_PER_THREAD);
        c.rows_per_task = per < 16 ? 16 : per;
        if (c.gemm) /* whole tiles */
            c.rows_per_task = (c.rows_per_task + CPU_GEMM_ROWS - 1) / CPU_GEMM_ROWS * CPU_GEMM_ROWS;
    } else {
        c.rows_per_task = TILE_ROWS;
    }
    int64_t n_tasks = (rows + c.rows_per_task - 1) / c.rows_per_task;
    pool_run(p, (int)n_tasks, mm_task, &c);
}

void cpu_matmul(pool *p, cpu_isa isa, qtype wt, const void *W, int64_t rows, int64_t cols,
                const float *X, int64_t n_tok, float *Y, void *ws) {
    size_t a_stride;
    const void *A = cpu_act_convert(p, isa, wt, cols, X, n_tok, ws, &a_stride);
    cpu_matmul_act(p, isa, wt, W, rows, cols, A, a_stride, n_tok, Y);
}
