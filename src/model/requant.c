/* requant.c — convert the weight matrices of a model to another type. Follows the GGUF
 * ecosystem's choices so files compare with llama.cpp's:
 *   - 1-D tensors (norms, biases) stay as they are (F32);
 *   - the output matrix (output.weight, or token_embd.weight when tied) is
 *     Q6_K for 4/5-bit types (unless --pure);
 *   - a row length that does not fit the block size falls back: Q4_K->Q5_0,
 *     Q5_K->Q5_1, Q6_K->Q8_0, and to F16 when even 32 does not divide it;
 *   - *_M mixes give attn_v and ffn_down Q6_K in the first and last eighth
 *     of the layers and every third layer between. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "model/requant.h"

typedef struct qmix {
    const char *name;
    qtype base;
    bool medium;       /* *_M: promote attn_v / ffn_down on some layers */
    uint32_t ftype;    /* general.file_type value (llama_ftype) */
} qmix;

static const qmix mixes[] = {
    {"F32", QT_F32, false, 0},   {"F16", QT_F16, false, 1},   {"BF16", QT_BF16, false, 32},
    {"Q4_0", QT_Q4_0, false, 2}, {"Q4_1", QT_Q4_1, false, 3}, {"Q8_0", QT_Q8_0, false, 7},
    {"Q5_0", QT_Q5_0, false, 8}, {"Q5_1", QT_Q5_1, false, 9}, {"Q4_K", QT_Q4_K, false, 14},
    {"Q4_K_S", QT_Q4_K, false, 14}, {"Q4_K_M", QT_Q4_K, true, 15}, {"Q5_K", QT_Q5_K, false, 16},
    {"Q5_K_S", QT_Q5_K, false, 16}, {"Q5_K_M", QT_Q5_K, true, 17}, {"Q6_K", QT_Q6_K, false, 18},
};

static qtype fit_row(qtype t, uint64_t ne0) {
    const qtype_info *qi = qtype_get(t);
    if (ne0 % qi->block == 0) return t;
    qtype fb = t == QT_Q4_K ? QT_Q5_0 : t == QT_Q5_K ? QT_Q5_1 : t == QT_Q6_K ? QT_Q8_0 : QT_F16;
    return ne0 % qtype_get(fb)->block == 0 ? fb : QT_F16;
}

static bool more_bits(uint32_t layer, uint32_t n_layer) {
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

/* Type for one tensor under a mix. */
static qtype choose_type(const qmix *mix, bool pure, const gguf_tensor *t, bool is_output, uint32_t n_layer) {
    if (t->n_dims < 2 || t->ne[1] == 1) return t->type; /* vectors stay */
    qtype want = mix->base;
    char name[128];
    gguf_str_copy(t->name, name, sizeof name);
    bool lowbit = want == QT_Q4_0 || want == QT_Q4_1 || want == QT_Q5_0 || want == QT_Q5_1 || want == QT_Q4_K ||
                  want == QT_Q5_K;
    if (!pure && is_output && lowbit) want = QT_Q6_K;
    unsigned layer;
    if (!pure && mix->medium && sscanf(name, "blk.%u.", &layer) == 1 &&
        (strstr(name, ".attn_v.weight") || strstr(name, ".ffn_down.weight")) && more_bits(layer, n_layer))
        want = QT_Q6_K;
    return fit_row(want, t->ne[0]);
}

typedef struct qjob {
    const gguf_tensor *src;
    qtype dst_type;
    uint8_t *dst;
    uint64_t src_row_bytes, dst_row_bytes, n_rows;
    float *tmp;  /* per thread row buffer: n_threads x ne0 */
} qjob;

static void quantize_rows(void *ctx, int task, int thread) {
    qjob *j = ctx;
    uint64_t ne0 = j->src->ne[0];
    uint64_t per = 16, r0 = (uint64_t)task * per, r1 = r0 + per < j->n_rows ? r0 + per : j->n_rows;
    float *row = j->tmp + (size_t)thread * ne0;
    for (uint64_t r = r0; r < r1; r++) {
        quant_dequantize_row_ref(j->src->type, (const uint8_t *)j->src->data + r * j->src_row_bytes, row, (int64_t)ne0);
        quant_quantize_row_ref(j->dst_type, row, j->dst + r * j->dst_row_bytes, (int64_t)ne0);
    }
}

const char *requant_type_list(void) {
    return "F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q4_K_S Q4_K_M Q5_K Q5_K_S Q5_K_M Q6_K";
}

sluice_status requant_file(const char *in, const char *out, const requant_opts *o, uint64_t *bytes_in,
                           uint64_t *bytes_out, sluice_error *err) {
    const qmix *mix = NULL;
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++)
        if (!strcasecmp(o->type, mixes[i].name)) mix = &mixes[i];
    if (!mix)
        return sluice_fail(err, SLUICE_ERR_ARG, "unknown type '%s' (one of: %s)", o->type, requant_type_list());
    gguf_file *g;
    sluice_status st = gguf_open(&g, in, err);
    if (st) return st;
    gguf_writer *w = gguf_writer_create(g->alignment);
    uint8_t **bufs = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *bufs);
    float *tmp = NULL;
    if (!w || !bufs) { st = sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory"); goto out; }
    uint32_t n_layer = 0;
    gguf_str arch;
    if (gguf_get_str(g, "general.architecture", &arch)) {
        char key[96], a[48];
        snprintf(key, sizeof key, "%s.block_count", gguf_str_copy(arch, a, sizeof a));
        gguf_get_u32(g, key, &n_layer);
    }
    for (uint64_t i = 0; i < g->n_kv; i++) {
        char key[256];
        gguf_str_copy(g->kv[i].key, key, sizeof key);
        if ((st = gguf_writer_set(w, key, &g->kv[i].val, err))) goto out;
    }
    gguf_writer_set_u32(w, "general.file_type", mix->ftype);
    gguf_writer_set_u32(w, "general.quantization_version", 2);
    bool has_output = gguf_find_tensor(g, "output.weight") != NULL;
    uint64_t total_in = 0, total_out = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        char name[256];
        gguf_str_copy(t->name, name, sizeof name);
        bool is_output = !strcmp(name, "output.weight") || (!has_output && !strcmp(name, "token_embd.weight"));
        qtype dst = choose_type(mix, o->pure, t, is_output, n_layer);
        const void *data = t->data;
        uint64_t n_bytes = t->n_bytes;
        if (dst != t->type) {
            if (!qtype_get(t->type)->compute) {
                st = sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "%s: tensor '%s' is %s, which sluice cannot convert", in,
                                 name, qtype_get(t->type)->name);
                goto out;
            }
            qjob j = {t, dst, NULL, 0, 0, t->n_elements / t->ne[0], NULL};
            qtype_row_bytes(t->type, t->ne[0], &j.src_row_bytes);
            qtype_row_bytes(dst, t->ne[0], &j.dst_row_bytes);
            n_bytes = j.dst_row_bytes * j.n_rows;
            bufs[i] = j.dst = malloc(n_bytes);
            free(tmp);
            tmp = j.tmp = malloc(sizeof(float) * t->ne[0] * (size_t)pool_size(o->pool));
            if (!j.dst || !j.tmp) { st = sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory"); goto out; }
            pool_run(o->pool, (int)((j.n_rows + 15) / 16), quantize_rows, &j);
            data = j.dst;
        }
        total_in += t->n_bytes;
        total_out += n_bytes;
        if (o->progress) o->progress(o->user, i, g->n_tensors, name, t->type, dst, t->ne);
        if ((st = gguf_writer_add_tensor(w, name, dst, t->n_dims, t->ne, data, err))) goto out;
    }
    if ((st = gguf_writer_write(w, out, err))) goto out;
    if (bytes_in) *bytes_in = total_in;
    if (bytes_out) *bytes_out = total_out;
out:
    if (bufs)
        for (uint64_t i = 0; i < g->n_tensors; i++) free(bufs[i]);
    free(bufs);
    free(tmp);
    gguf_writer_free(w);
    gguf_close(g);
    return st;
}
