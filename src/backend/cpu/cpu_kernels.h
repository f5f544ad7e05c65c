/* cpu_kernels.h — the CPU engine's hot kernels: per-type dot products
 * (scalar reference, AVX2/FMA, AVX-512, AVX-512 VNNI, chosen once at run
 * time) and the multithreaded quantized matrix multiply the forward pass is
 * built on. */
#ifndef SLUICE_BACKEND_CPU_KERNELS_H
#define SLUICE_BACKEND_CPU_KERNELS_H
#include <stddef.h>
#include <stdint.h>
#include "core/threadpool.h"
#include "model/quant.h"

/* Dot product of n elements: w is a weight row of some type, a is the
 * activation row in that type's dot_type (see quant.h). */
typedef float (*cpu_dot_fn)(int64_t n, const void *w, const void *a);
/* Converts n floats into an activation row of a dot_type. */
typedef void (*cpu_act_fn)(const float *x, void *y, int64_t n);

/* Each level includes the ones below it. AVX512 is F + BW + VL + DQ;
 * AVX512VNNI adds the VNNI integer dot products (vpdpbusd). */
typedef enum cpu_isa { CPU_ISA_SCALAR, CPU_ISA_AVX2, CPU_ISA_AVX512, CPU_ISA_AVX512VNNI } cpu_isa;
enum { CPU_ISA_MAX = CPU_ISA_AVX512VNNI };

/* Best ISA this CPU supports, capped by env
 * SLUICE_CPU_ISA=scalar|avx2|avx512|avx512vnni. */
cpu_isa cpu_isa_detect(void);
const char *cpu_isa_name(cpu_isa isa);

/* Dot / activation-conversion kernel for weight type t at a given ISA (falls
 * back to the best lower ISA that has one). NULL if t is not a compute type. */
cpu_dot_fn cpu_dot_get(qtype t, cpu_isa isa);
cpu_act_fn cpu_act_get(qtype dot_type, cpu_isa isa);

/* Y (n_tok x rows, row-major) = X (n_tok x cols, f32) * W^T, where W is
 * rows x cols of type wt, rows stored contiguously (row r at r*row_bytes).
 * Work is split over the pool's threads. ws must hold
 * cpu_matmul_ws_bytes(wt, cols, n_tok) bytes (activations converted once;
 * 0 for float weight types, ws may then be NULL). cols must be a multiple
 * of wt's block size (aborts otherwise: the model loader checks shapes).
 * Every Y element is bit-identical whatever the pool size and whatever
 * n_tok (a token's row equals a one-token call). */
size_t cpu_matmul_ws_bytes(qtype wt, int64_t cols, int64_t n_tok);
void cpu_matmul(pool *p, cpu_isa isa, qtype wt, const void *W, int64_t rows, int64_t cols,
                const float *X, int64_t n_tok, float *Y, void *ws);

/* Several activation rows at once: out[j] = dot(n, w, row j) for j < n_act
 * (1..CPU_DOTN_MAX), row j starting at a + j * a_stride bytes. Decodes the
 * weight row once for all of them. Each out[j] is bit-identical to what the
 * same ISA's cpu_dot_fn returns for that row, so results never depend on
 * how tokens are batched or how work is split over threads.
 * The rows must be in the matmul activation layout (cpu_act_convert writes
 * it): the dot_type blocks, then for Q8_0 / Q8_1 a tail of per-block
 * cpu_act_aux records (see below). Where the ISA has no cpu_gemm_fn for
 * the type, the matmul uses dotn (for one token too). */
enum { CPU_DOTN_MAX = 8 };
typedef void (*cpu_dotn_fn)(int64_t n, const void *w, const void *a, size_t a_stride, int n_act,
                            float *out);
/* Float weight types (F32, F16, BF16) sum their columns in chunks of
 * CPU_FLOAT_KCHUNK elements: dot = p0 + p1 + ... left to right, where p_k is
 * what the kernel returns for chunk k alone. So the matmul can run a chunk
 * over many rows while the chunk of activations stays in L1, and add the
 * partials itself, bit-identically. */
enum { CPU_FLOAT_KCHUNK = 1024 };
/* NULL where the ISA (and every lower one) has none: loop the single dot. */
cpu_dotn_fn cpu_dotn_get(qtype t, cpu_isa isa);

/* A tile of several weight rows by several activation rows at once:
 * y[j * y_stride + r] = dot(n, row r, act row j) for r < n_rows
 * (1..CPU_GEMM_ROWS), j < n_act (1..CPU_DOTN_MAX); weight row r starts at
 * w + r * w_stride bytes, activation rows are as for cpu_dotn_fn (matmul
 * layout). Each value is bit-identical to what the same ISA's cpu_dot_fn
 * returns for that pair, so a tile is one more way of batching that changes
 * no result (float types: also per CPU_FLOAT_KCHUNK chunk, so the matmul
 * may run it a column chunk at a time). NULL where the ISA providing the
 * type's dot has none (the matmul then uses dotn). */
enum { CPU_GEMM_ROWS = 16 };
typedef void (*cpu_gemm_fn)(int64_t n, const void *w, size_t w_stride, int n_rows, const void *a,
                            size_t a_stride, int n_act, float *y, size_t y_stride);
cpu_gemm_fn cpu_gemm_get(qtype t, cpu_isa isa);

/* The two halves of cpu_matmul, for callers that multiply one activation
 * batch by several weights (Q, K, V): convert once, multiply many times.
 * cpu_act_convert writes X in the activation format of weight type wt into
 * ws (cpu_matmul_ws_bytes(wt, cols, n_tok) bytes), returns a pointer to the
 * rows (X itself when no conversion is needed) and their stride in bytes.
 * cpu_matmul_act computes Y from converted rows A. */
const void *cpu_act_convert(pool *p, cpu_isa isa, qtype wt, int64_t cols, const float *X,
                            int64_t n_tok, void *ws, size_t *a_stride);
void cpu_matmul_act(pool *p, cpu_isa isa, qtype wt, const void *W, int64_t rows, int64_t cols,
                    const void *A, size_t a_stride, int64_t n_tok, float *Y);

/* Matmul activation layout of one row of n elements of dot_type: the blocks
 * (qtype_row_bytes), padding to 64 bytes, then one cpu_act_aux per block
 * for Q8_0 and Q8_1: exact float copies of the half scales, converted once
 * per row instead of in every row x token pair of a matmul, and for Q8_0
 * the block's sum(qs) times -8, -16 and -128, which let Q4_0 / Q5_0 (and,
 * with VNNI, Q8_0 shifted by 128) multiply unsigned weights and take the
 * offset off in one integer addition.
 * Q8_K (float d and bsums already) and F32 rows have no tail.
 * cpu_act_scales_offset: byte offset of the tail; cpu_act_row_stride:
 * bytes of the whole row rounded up to 64; cpu_act_fill_scales writes the
 * tail of a row whose blocks are in place. */
typedef struct cpu_act_aux {
    float d;          /* block scale (Q8_0, Q8_1) */
    float s;          /* Q8_1: the block's s; Q8_0: unused */
    int32_t nsum8;    /* Q8_0: -8 * sum(qs) */
    int32_t nsum16;   /* Q8_0: -16 * sum(qs) */
    int32_t nsum128;  /* Q8_0: -128 * sum(qs) */
} cpu_act_aux;
size_t cpu_act_scales_offset(qtype dot_type, int64_t n);
size_t cpu_act_row_stride(qtype dot_type, int64_t n);
void cpu_act_fill_scales(qtype dot_type, void *row, int64_t n);

/* Internal to the CPU backend: one kernel table per ISA. A NULL entry means
 * "use the next lower ISA's". The SIMD tables exist only on x86-64. */
typedef struct cpu_kernel_table {
    cpu_dot_fn dot[QT_COUNT];
    cpu_dotn_fn dotn[QT_COUNT];
    cpu_gemm_fn gemm[QT_COUNT];
    cpu_act_fn act[QT_COUNT]; /* indexed by dot_type */
} cpu_kernel_table;
#ifdef SLUICE_X86
extern const cpu_kernel_table cpu_kernels_avx2;       /* dot_avx2.c */
extern const cpu_kernel_table cpu_kernels_avx512;     /* dot_avx512.c */
extern const cpu_kernel_table cpu_kernels_avx512vnni; /* dot_avx512vnni.c */
#endif
#endif
