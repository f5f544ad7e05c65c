/* gguf_write.c — GGUF v3 writer. Metadata values are serialised to bytes
 * when set (so they are deep copies); tensor data is referenced and only
 * read when the file is written. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/gguf.h"

typedef struct bytebuf { uint8_t *p; size_t len, cap; bool oom; } bytebuf;

static void bb_put(bytebuf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void bb_le(bytebuf *b, uint64_t v, int n) {
    uint8_t t[8];
    for (int i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    bb_put(b, t, (size_t)n);
}

static void bb_str(bytebuf *b, const char *s, uint64_t len) {
    bb_le(b, len, 8);
    bb_put(b, s, (size_t)len);
}

static void put_payload(bytebuf *b, const gguf_value *v) {
    switch (v->type) {
    case GGUF_T_U8: case GGUF_T_U16: case GGUF_T_U32: case GGUF_T_U64:
        bb_le(b, v->u, (int)gguf_vtype_size(v->type)); break;
    case GGUF_T_I8: case GGUF_T_I16: case GGUF_T_I32: case GGUF_T_I64:
        bb_le(b, (uint64_t)v->i, (int)gguf_vtype_size(v->type)); break;
    case GGUF_T_BOOL: bb_le(b, v->b ? 1 : 0, 1); break;
    case GGUF_T_F32: { float f = (float)v->f; uint32_t u; memcpy(&u, &f, 4); bb_le(b, u, 4); break; }
    case GGUF_T_F64: { uint64_t u; memcpy(&u, &v->f, 8); bb_le(b, u, 8); break; }
    case GGUF_T_STRING: bb_str(b, v->s.ptr, v->s.len); break;
    case GGUF_T_ARRAY: {
        bb_le(b, v->arr.elem, 4);
        bb_le(b, v->arr.n, 8);
        size_t esz = gguf_vtype_size(v->arr.elem);
        if (esz) bb_put(b, v->arr.raw, (size_t)(v->arr.n * esz));
        else for (uint64_t i = 0; i < v->arr.n; i++) put_payload(b, &v->arr.items[i]);
        break;
    }
    default: break;
    }
}

typedef struct wkv { char *key; bytebuf val; } wkv;
typedef struct wtensor {
    char *name;
    qtype type;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t n_bytes;
    const void *data;
} wtensor;

struct gguf_writer {
    uint32_t alignment;
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

gguf_writer *gguf_writer_create(uint32_t alignment) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->alignment = alignment ? alignment : GGUF_DEFAULT_ALIGNMENT;
    /* a non-default alignment must be in the file for readers to find it */
    if (w->alignment != GGUF_DEFAULT_ALIGNMENT && gguf_writer_set_u32(w, "general.alignment", w->alignment)) {
        gguf_writer_free(w);
        return NULL;
    }
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) { free(w->kv[i].key); free(w->kv[i].val.p); }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

static bool valid_value(const gguf_value *v, int depth) {
    if ((unsigned)v->type >= GGUF_T_COUNT || depth > 8) return false;
    if (v->type != GGUF_T_ARRAY) return true;
    if ((unsigned)v->arr.elem >= GGUF_T_COUNT) return false;
    if (gguf_vtype_size(v->arr.elem)) return v->arr.n == 0 || v->arr.raw;
    if (v->arr.n && !v->arr.items) return false;
    for (uint64_t i = 0; i < v->arr.n; i++)
        if (v->arr.items[i].type != v->arr.elem || !valid_value(&v->arr.items[i], depth + 1)) return false;
    return true;
}

sluice_status gguf_writer_set(gguf_writer *w, const char *key, const gguf_value *val, sluice_error *err) {
    if (!key || !*key || !valid_value(val, 0))
        return sluice_fail(err, SLUICE_ERR_ARG, "gguf writer: invalid metadata value for key '%s'", key ? key : "");
    if (!strcmp(key, "general.alignment")) {
        if (val->type != GGUF_T_U32 || !val->u || (val->u & (val->u - 1)))
            return sluice_fail(err, SLUICE_ERR_ARG, "gguf writer: general.alignment must be a u32 power of two");
        w->alignment = (uint32_t)val->u;
    }
    bytebuf b = {0};
    bb_le(&b, val->type, 4);
    put_payload(&b, val);
    if (b.oom) { free(b.p); return sluice_fail(err, SLUICE_ERR_NOMEM, "gguf writer: out of memory"); }
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].val.p);
            w->kv[i].val = b;
            return SLUICE_OK;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *nk = realloc(w->kv, cap * sizeof *nk);
        if (!nk) { free(b.p); return sluice_fail(err, SLUICE_ERR_NOMEM, "gguf writer: out of memory"); }
        w->kv = nk;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) { free(b.p); return sluice_fail(err, SLUICE_ERR_NOMEM, "gguf writer: out of memory"); }
    w->kv[w->n_kv++] = (wkv){k, b};
    return SLUICE_OK;
}

sluice_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    gguf_value val = {.type = GGUF_T_U32, .u = v};
    return gguf_writer_set(w, key, &val, NULL);
}
sluice_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    gguf_value val = {.type = GGUF_T_F32, .f = v};
    return gguf_writer_set(w, key, &val, NULL);
}
sluice_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    gguf_value val = {.type = GGUF_T_STRING, .s = {v, strlen(v)}};
    return gguf_writer_set(w, key, &val, NULL);
}
sluice_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    gguf_value val = {.type = GGUF_T_BOOL, .b = v};
    return gguf_writer_set(w, key, &val, NULL);
}

sluice_status gguf_writer_add_tensor(gguf_writer *w, const char *name, qtype type, uint32_t n_dims,
                                     const uint64_t *ne, const void *data, sluice_error *err) {
    const qtype_info *qi = qtype_get(type);
    if (!qi) return sluice_fail(err, SLUICE_ERR_ARG, "gguf writer: tensor '%s': unknown type %d", name, (int)type);
    if (n_dims == 0 || n_dims > GGUF_MAX_DIMS)
        return sluice_fail(err, SLUICE_ERR_ARG, "gguf writer: tensor '%s': %u dimensions", name, n_dims);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return sluice_fail(err, SLUICE_ERR_ARG, "gguf writer: duplicate tensor '%s'", name);
    wtensor t = {.type = type, .n_dims = n_dims, .data = data};
    uint64_t rows = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (!t.ne[d]) return sluice_fail(err, SLUICE_ERR_ARG, "gguf writer: tensor '%s': zero dimension", name);
        if (d > 0) rows *= t.ne[d];
    }
    uint64_t rb;
    if (!qtype_row_bytes(type, t.ne[0], &rb))
        return sluice_fail(err, SLUICE_ERR_ARG, "gguf writer: tensor '%s': row of %llu does not fit %s blocks", name,
                           (unsigned long long)t.ne[0], qi->name);
    t.n_bytes = rb * rows;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 32;
        wtensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) return sluice_fail(err, SLUICE_ERR_NOMEM, "gguf writer: out of memory");
        w->t = nt;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    if (!t.name) return sluice_fail(err, SLUICE_ERR_NOMEM, "gguf writer: out of memory");
    w->t[w->n_t++] = t;
    return SLUICE_OK;
}

static uint64_t align_up(uint64_t x, uint32_t a) { return (x + a - 1) / a * a; }

sluice_status gguf_writer_write(gguf_writer *w, const char *path, sluice_error *err) {
    bytebuf h = {0};
    bb_put(&h, "GGUF", 4);
    bb_le(&h, 3, 4);
    bb_le(&h, w->n_t, 8);
    bb_le(&h, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        bb_str(&h, w->kv[i].key, strlen(w->kv[i].key));
        bb_put(&h, w->kv[i].val.p, w->kv[i].val.len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        bb_str(&h, t->name, strlen(t->name));
        bb_le(&h, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) bb_le(&h, t->ne[d], 8);
        bb_le(&h, (uint64_t)t->type, 4);
        bb_le(&h, off, 8);
        off = align_up(off + t->n_bytes, w->alignment);
    }
    static const uint8_t zeros[64];
    /* the data section (and so the padding before it) exists only with tensors */
    uint64_t pad = w->n_t ? align_up(h.len, w->alignment) - h.len : 0;
    while (pad > 0) { size_t n = pad > 64 ? 64 : (size_t)pad; bb_put(&h, zeros, n); pad -= n; }
    if (h.oom) { free(h.p); return sluice_fail(err, SLUICE_ERR_NOMEM, "gguf writer: out of memory"); }

    FILE *f = fopen(path, "wb");
    if (!f) { free(h.p); return sluice_fail(err, SLUICE_ERR_IO, "%s: cannot create: %s", path, strerror(errno)); }
    bool ok = fwrite(h.p, 1, h.len, f) == h.len;
    free(h.p);
    for (size_t i = 0; ok && i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        ok = fwrite(t->data, 1, (size_t)t->n_bytes, f) == t->n_bytes;
        uint64_t p = align_up(t->n_bytes, w->alignment) - t->n_bytes;
        while (ok && p > 0) { size_t n = p > 64 ? 64 : (size_t)p; ok = fwrite(zeros, 1, n, f) == n; p -= n; }
    }
    if (fclose(f) != 0) ok = false;
    if (!ok) return sluice_fail(err, SLUICE_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return SLUICE_OK;
}
