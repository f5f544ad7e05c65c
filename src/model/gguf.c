/* gguf.c — hostile-input-safe GGUF v2/v3 reader (see gguf.h).
 *
 * Layout: "GGUF" u32 version, u64 n_tensors, u64 n_kv, then n_kv metadata
 * pairs (string key, u32 type, value), then n_tensors infos (string name,
 * u32 n_dims, u64 ne[n_dims], u32 type, u64 offset), padding to
 * general.alignment, then the tensor data section. All little-endian. */
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <stdio.h>
#include "model/gguf.h"

enum { MAX_ARRAY_DEPTH = 8 };

/* ---- arena: every allocation of a parsed file, freed together ---- */
typedef struct arena_block { struct arena_block *next; size_t used, cap; _Alignas(16) unsigned char mem[]; } arena_block;

static void *arena_alloc(void **arena, size_t bytes) {
    arena_block *b = *arena;
    bytes = (bytes + 15) & ~(size_t)15;
    if (!b || b->cap - b->used < bytes) {
        size_t cap = bytes > (1u << 20) ? bytes : (1u << 20);
        arena_block *nb = malloc(sizeof *nb + cap);
        if (!nb) return NULL;
        nb->next = b; nb->used = 0; nb->cap = cap;
        *arena = b = nb;
    }
    void *p = b->mem + b->used;
    b->used += bytes;
    return p;
}

static void arena_free(void *arena) {
    for (arena_block *b = arena; b;) { arena_block *n = b->next; free(b); b = n; }
}

/* ---- cursor with bounds checks ---- */
typedef struct cursor {
    const uint8_t *base;
    size_t size, pos;
    const char *name;
    sluice_error *err;
} cursor;

#define FAIL_AT(c, off, ...) fail_at((c), (off), __VA_ARGS__)

__attribute__((format(printf, 3, 4)))
static sluice_status fail_at(cursor *c, size_t off, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sluice_fail(c->err, SLUICE_ERR_FORMAT, "%s: byte %zu: %s", c->name, off, what);
}

static bool need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos) {
        fail_at(c, c->pos, "%s needs %llu bytes but only %zu remain (file size %zu)", what,
                (unsigned long long)n, c->size - c->pos, c->size);
        return false;
    }
    return true;
}

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static bool rd_u32(cursor *c, uint32_t *v, const char *what) {
    if (!need(c, 4, what)) return false;
    *v = (uint32_t)rd_le(c->base + c->pos, 4);
    c->pos += 4;
    return true;
}

static bool rd_u64(cursor *c, uint64_t *v, const char *what) {
    if (!need(c, 8, what)) return false;
    *v = rd_le(c->base + c->pos, 8);
    c->pos += 8;
    return true;
}

/* Valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF)? */
static bool utf8_valid(const uint8_t *s, uint64_t n) {
    uint64_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        if (b < 0x80) { i++; continue; }
        int len; uint32_t cp;
        if ((b & 0xe0) == 0xc0) { len = 2; cp = b & 0x1f; }
        else if ((b & 0xf0) == 0xe0) { len = 3; cp = b & 0x0f; }
        else if ((b & 0xf8) == 0xf0) { len = 4; cp = b & 0x07; }
        else return false;
        if (n - i < (uint64_t)len) return false;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += (uint64_t)len;
    }
    return true;
}

/* strict: require valid UTF-8 (keys, tensor names). Values are allowed raw
 * bytes: some vocabularies store byte pieces verbatim. */
static bool rd_str(cursor *c, gguf_str *s, const char *what, bool strict) {
    size_t start = c->pos;
    uint64_t len;
    if (!rd_u64(c, &len, what)) return false;
    if (len > c->size - c->pos) {
        fail_at(c, start, "%s length %llu runs past the end of the file (%zu bytes remain)", what,
                (unsigned long long)len, c->size - c->pos);
        return false;
    }
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    if (strict && !utf8_valid(c->base + c->pos, len)) {
        fail_at(c, start, "%s is not valid UTF-8", what);
        return false;
    }
    c->pos += len;
    return true;
}

size_t gguf_vtype_size(gguf_vtype t) {
    switch (t) {
    case GGUF_T_U8: case GGUF_T_I8: case GGUF_T_BOOL: return 1;
    case GGUF_T_U16: case GGUF_T_I16: return 2;
    case GGUF_T_U32: case GGUF_T_I32: case GGUF_T_F32: return 4;
    case GGUF_T_U64: case GGUF_T_I64: case GGUF_T_F64: return 8;
    default: return 0;
    }
}

const char *gguf_vtype_name(gguf_vtype t) {
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                  "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < GGUF_T_COUNT ? names[t] : "invalid";
}

static void decode_scalar(gguf_value *v, const uint8_t *p) {
    switch (v->type) {
    case GGUF_T_U8: v->u = p[0]; break;
    case GGUF_T_I8: v->i = (int8_t)p[0]; break;
    case GGUF_T_U16: v->u = rd_le(p, 2); break;
    case GGUF_T_I16: v->i = (int16_t)rd_le(p, 2); break;
    case GGUF_T_U32: v->u = rd_le(p, 4); break;
    case GGUF_T_I32: v->i = (int32_t)rd_le(p, 4); break;
    case GGUF_T_U64: v->u = rd_le(p, 8); break;
    case GGUF_T_I64: v->i = (int64_t)rd_le(p, 8); break;
    case GGUF_T_BOOL: v->b = p[0] != 0; break;
    case GGUF_T_F32: { uint32_t u = (uint32_t)rd_le(p, 4); float f; memcpy(&f, &u, 4); v->f = f; break; }
    case GGUF_T_F64: { uint64_t u = rd_le(p, 8); double f; memcpy(&f, &u, 8); v->f = f; break; }
    default: break;
    }
}

static bool rd_value(cursor *c, void **arena, gguf_value *v, uint32_t type, int depth) {
    size_t start = c->pos;
    if (type >= GGUF_T_COUNT) {
        fail_at(c, start, "invalid value type id %u", type);
        return false;
    }
    v->type = (gguf_vtype)type;
    if (type == GGUF_T_STRING) return rd_str(c, &v->s, "string value", false);
    if (type != GGUF_T_ARRAY) {
        size_t sz = gguf_vtype_size(v->type);
        if (!need(c, sz, "scalar value")) return false;
        if (type == GGUF_T_BOOL && c->base[c->pos] > 1) {
            fail_at(c, start, "bool value is %u, must be 0 or 1", c->base[c->pos]);
            return false;
        }
        decode_scalar(v, c->base + c->pos);
        c->pos += sz;
        return true;
    }
    if (depth >= MAX_ARRAY_DEPTH) {
        fail_at(c, start, "arrays nested deeper than %d", MAX_ARRAY_DEPTH);
        return false;
    }
    uint32_t elem;
    uint64_t n;
    if (!rd_u32(c, &elem, "array element type") || !rd_u64(c, &n, "array length")) return false;
    if (elem >= GGUF_T_COUNT) {
        fail_at(c, start, "array has invalid element type id %u", elem);
        return false;
    }
    v->arr.elem = (gguf_vtype)elem;
    v->arr.n = n;
    v->arr.raw = NULL;
    v->arr.items = NULL;
    size_t esz = gguf_vtype_size((gguf_vtype)elem);
    if (esz) {
        if (n > (c->size - c->pos) / esz) {
            fail_at(c, start, "array of %llu %s elements runs past the end of the file", (unsigned long long)n,
                    gguf_vtype_name((gguf_vtype)elem));
            return false;
        }
        v->arr.raw = c->base + c->pos;
        if (elem == GGUF_T_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (v->arr.raw[i] > 1) {
                    fail_at(c, c->pos + i, "bool array element is %u, must be 0 or 1", v->arr.raw[i]);
                    return false;
                }
        c->pos += n * esz;
        return true;
    }
    /* strings need >= 8 bytes each, arrays >= 12: bound n before allocating */
    uint64_t min_elem = elem == GGUF_T_STRING ? 8 : 12;
    if (n > (c->size - c->pos) / min_elem) {
        fail_at(c, start, "array of %llu %s elements cannot fit in the %zu remaining bytes",
                (unsigned long long)n, gguf_vtype_name((gguf_vtype)elem), c->size - c->pos);
        return false;
    }
    if (n) {
        v->arr.items = arena_alloc(arena, (size_t)n * sizeof(gguf_value));
        if (!v->arr.items) {
            sluice_fail(c->err, SLUICE_ERR_NOMEM, "%s: out of memory reading an array of %llu elements", c->name,
                        (unsigned long long)n);
            return false;
        }
    }
    for (uint64_t i = 0; i < n; i++)
        if (!rd_value(c, arena, &v->arr.items[i], elem, depth + 1)) return false;
    return true;
}

/* ---- lookup: sorted index over keys for O(log n) find ---- */
static int str_cmp(gguf_str a, gguf_str b) {
    uint64_t n = a.len < b.len ? a.len : b.len;
    int r = memcmp(a.ptr, b.ptr, n);
    if (r) return r;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int kv_cmp(const void *a, const void *b) { return str_cmp(((const gguf_kv *)a)->key, ((const gguf_kv *)b)->key); }

static int tensor_name_cmp(const void *a, const void *b) {
    return str_cmp((*(const gguf_tensor *const *)a)->name, (*(const gguf_tensor *const *)b)->name);
}
static int tensor_off_cmp(const void *a, const void *b) {
    uint64_t x = (*(const gguf_tensor *const *)a)->offset, y = (*(const gguf_tensor *const *)b)->offset;
    return x < y ? -1 : x > y;
}

static sluice_status parse(gguf_file *g, cursor *c) {
    uint32_t magic;
    if (!need(c, 4, "magic")) return c->err ? c->err->status : SLUICE_ERR_FORMAT;
    magic = (uint32_t)rd_le(c->base, 4);
    if (memcmp(c->base, "GGUF", 4) != 0)
        return FAIL_AT(c, 0, "not a GGUF file (magic 0x%08x, expected \"GGUF\")", magic);
    c->pos = 4;
    if (!rd_u32(c, &g->version, "version")) return SLUICE_ERR_FORMAT;
    if (g->version == 1)
        return FAIL_AT(c, 4, "GGUF version 1 is not supported (convert the file to v3)");
    if (g->version < 2 || g->version > 3)
        return FAIL_AT(c, 4, "unknown GGUF version %u (supported: 2, 3)", g->version);
    if (!rd_u64(c, &g->n_tensors, "tensor count") || !rd_u64(c, &g->n_kv, "metadata count"))
        return SLUICE_ERR_FORMAT;
    /* each kv takes >= 8+1+4 bytes, each tensor info >= 8+4+4+8 */
    if (g->n_kv > (c->size - c->pos) / 13)
        return FAIL_AT(c, 16, "metadata count %llu cannot fit in a %zu-byte file", (unsigned long long)g->n_kv, c->size);
    if (g->n_tensors > (c->size - c->pos) / 24)
        return FAIL_AT(c, 8, "tensor count %llu cannot fit in a %zu-byte file", (unsigned long long)g->n_tensors, c->size);

    g->kv = g->n_kv ? arena_alloc(&g->arena, (size_t)g->n_kv * sizeof *g->kv) : NULL;
    g->tensors = g->n_tensors ? arena_alloc(&g->arena, (size_t)g->n_tensors * sizeof *g->tensors) : NULL;
    if ((g->n_kv && !g->kv) || (g->n_tensors && !g->tensors))
        return sluice_fail(c->err, SLUICE_ERR_NOMEM, "%s: out of memory", c->name);

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        kv->file_offset = c->pos;
        uint32_t type;
        if (!rd_str(c, &kv->key, "metadata key", true)) return SLUICE_ERR_FORMAT;
        if (kv->key.len == 0) return FAIL_AT(c, kv->file_offset, "empty metadata key");
        if (!rd_u32(c, &type, "metadata value type")) return SLUICE_ERR_FORMAT;
        if (!rd_value(c, &g->arena, &kv->val, type, 0)) return c->err ? c->err->status : SLUICE_ERR_FORMAT;
        if (gguf_str_eq(kv->key, "general.alignment")) {
            if (kv->val.type != GGUF_T_U32 || kv->val.u == 0 || (kv->val.u & (kv->val.u - 1)) || kv->val.u > (1u << 20))
                return FAIL_AT(c, kv->file_offset, "general.alignment must be a u32 power of two (got %s %llu)",
                               gguf_vtype_name(kv->val.type), (unsigned long long)kv->val.u);
            g->alignment = (uint32_t)kv->val.u;
        }
    }

    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        size_t start = c->pos;
        if (!rd_str(c, &t->name, "tensor name", true)) return SLUICE_ERR_FORMAT;
        if (t->name.len == 0) return FAIL_AT(c, start, "tensor %llu has an empty name", (unsigned long long)i);
        char nm[96];
        gguf_str_copy(t->name, nm, sizeof nm);
        if (!rd_u32(c, &t->n_dims, "tensor dimension count")) return SLUICE_ERR_FORMAT;
        if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
            return FAIL_AT(c, start, "tensor '%s' has %u dimensions (1..%d allowed)", nm, t->n_dims, GGUF_MAX_DIMS);
        uint64_t n = 1;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
            t->ne[d] = 1;
            if (d < t->n_dims && !rd_u64(c, &t->ne[d], "tensor dimension")) return SLUICE_ERR_FORMAT;
            if (t->ne[d] == 0 || t->ne[d] > (uint64_t)INT64_MAX)
                return FAIL_AT(c, start, "tensor '%s' dimension %u is %llu", nm, d, (unsigned long long)t->ne[d]);
            if (t->ne[d] > (uint64_t)INT64_MAX / n)
                return FAIL_AT(c, start, "tensor '%s' element count overflows 63 bits", nm);
            n *= t->ne[d];
        }
        t->n_elements = n;
        uint32_t type;
        if (!rd_u32(c, &type, "tensor type")) return SLUICE_ERR_FORMAT;
        const qtype_info *qi = qtype_get(type);
        if (!qi) return FAIL_AT(c, start, "tensor '%s' has unknown type id %u", nm, type);
        t->type = (qtype)type;
        if (t->ne[0] % qi->block)
            return FAIL_AT(c, start, "tensor '%s' row length %llu is not a multiple of the %s block size %u", nm,
                           (unsigned long long)t->ne[0], qi->name, qi->block);
        uint64_t row_bytes = 0;
        if (!qtype_row_bytes(t->type, t->ne[0], &row_bytes) || (n / t->ne[0]) > UINT64_MAX / row_bytes)
            return FAIL_AT(c, start, "tensor '%s' byte size overflows", nm);
        t->n_bytes = row_bytes * (n / t->ne[0]);
        if (!rd_u64(c, &t->offset, "tensor offset")) return SLUICE_ERR_FORMAT;
        if (t->offset % g->alignment)
            return FAIL_AT(c, start, "tensor '%s' offset %llu is not a multiple of the alignment %u", nm,
                           (unsigned long long)t->offset, g->alignment);
    }

    uint64_t data = ((uint64_t)c->pos + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors && data > c->size)
        return FAIL_AT(c, c->pos, "tensor data section (aligned to %u) starts past the end of the file", g->alignment);
    g->data_offset = data;
    uint64_t avail = g->n_tensors ? c->size - data : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        if (t->offset > avail || t->n_bytes > avail - t->offset) {
            char nm[96];
            return FAIL_AT(c, (size_t)data, "tensor '%s' data [%llu, +%llu) runs past the end of the file (%llu data bytes)",
                           gguf_str_copy(t->name, nm, sizeof nm), (unsigned long long)t->offset,
                           (unsigned long long)t->n_bytes, (unsigned long long)avail);
        }
        t->data = c->base + data + t->offset;
    }
    return SLUICE_OK;
}

/* Duplicate keys / names and overlapping tensor data are errors. Builds the
 * sorted lookup index. */
static sluice_status build_index(gguf_file *g, cursor *c) {
    struct { gguf_kv *kv_sorted; gguf_tensor **tensor_sorted; } ixs, *ix = &ixs;
    ix->kv_sorted = g->n_kv ? arena_alloc(&g->arena, (size_t)g->n_kv * sizeof(gguf_kv)) : NULL;
    ix->tensor_sorted = g->n_tensors ? arena_alloc(&g->arena, (size_t)g->n_tensors * sizeof(gguf_tensor *)) : NULL;
    gguf_tensor **by_off = g->n_tensors ? malloc((size_t)g->n_tensors * sizeof(gguf_tensor *)) : NULL;
    if ((g->n_kv && !ix->kv_sorted) || (g->n_tensors && (!ix->tensor_sorted || !by_off))) {
        free(by_off);
        return sluice_fail(c->err, SLUICE_ERR_NOMEM, "%s: out of memory", c->name);
    }
    sluice_status st = SLUICE_OK;
    if (g->n_kv) memcpy(ix->kv_sorted, g->kv, (size_t)g->n_kv * sizeof(gguf_kv));
    if (g->n_kv) qsort(ix->kv_sorted, (size_t)g->n_kv, sizeof(gguf_kv), kv_cmp);
    for (uint64_t i = 1; i < g->n_kv && !st; i++)
        if (!str_cmp(ix->kv_sorted[i - 1].key, ix->kv_sorted[i].key)) {
            char k[128];
            st = FAIL_AT(c, (size_t)ix->kv_sorted[i].file_offset, "duplicate metadata key '%s'",
                         gguf_str_copy(ix->kv_sorted[i].key, k, sizeof k));
        }
    for (uint64_t i = 0; i < g->n_tensors; i++) ix->tensor_sorted[i] = by_off[i] = &g->tensors[i];
    if (g->n_tensors) qsort(ix->tensor_sorted, (size_t)g->n_tensors, sizeof(gguf_tensor *), tensor_name_cmp);
    for (uint64_t i = 1; i < g->n_tensors && !st; i++)
        if (!str_cmp(ix->tensor_sorted[i - 1]->name, ix->tensor_sorted[i]->name)) {
            char k[128];
            st = FAIL_AT(c, 24, "duplicate tensor name '%s'", gguf_str_copy(ix->tensor_sorted[i]->name, k, sizeof k));
        }
    if (g->n_tensors) qsort(by_off, (size_t)g->n_tensors, sizeof(gguf_tensor *), tensor_off_cmp);
    for (uint64_t i = 1; i < g->n_tensors && !st; i++)
        if (by_off[i - 1]->offset + by_off[i - 1]->n_bytes > by_off[i]->offset) {
            char a[96], b[96];
            st = FAIL_AT(c, (size_t)(g->data_offset + by_off[i]->offset), "tensors '%s' and '%s' overlap",
                         gguf_str_copy(by_off[i - 1]->name, a, sizeof a), gguf_str_copy(by_off[i]->name, b, sizeof b));
        }
    free(by_off);
    if (!st) {
        g->kv_index_ = ix->kv_sorted;
        g->tensor_index_ = ix->tensor_sorted;
    }
    return st;
}

sluice_status gguf_parse(gguf_file **out, const uint8_t *data, size_t size, const char *name, sluice_error *err) {
    *out = NULL;
    gguf_file *g = calloc(1, sizeof *g);
    if (!g) return sluice_fail(err, SLUICE_ERR_NOMEM, "%s: out of memory", name);
    sluice_error local = {0};
    cursor c = {data, size, 0, name, err ? err : &local};
    sluice_status st = parse(g, &c);
    if (!st) st = build_index(g, &c);
    if (st) {
        if (c.err->status == SLUICE_OK) sluice_fail(c.err, st, "%s: invalid GGUF file", name);
        gguf_close(g);
        return st;
    }
    *out = g;
    return SLUICE_OK;
}

sluice_status gguf_open(gguf_file **out, const char *path, sluice_error *err) {
    *out = NULL;
    mapfile m;
    sluice_status st = mapfile_open(&m, path, err);
    if (st) return st;
    st = gguf_parse(out, m.data, m.size, path, err);
    if (st) {
        mapfile_close(&m);
        return st;
    }
    (*out)->map = m;
    return SLUICE_OK;
}

void gguf_close(gguf_file *g) {
    if (!g) return;
    arena_free(g->arena);
    mapfile_close(&g->map);
    free(g);
}

bool gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

char *gguf_str_copy(gguf_str s, char *buf, size_t cap) {
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    memcpy(buf, s.ptr, n);
    buf[n] = 0;
    return buf;
}

static int kv_key_cmp(const void *key, const void *elem) {
    return str_cmp(*(const gguf_str *)key, ((const gguf_kv *)elem)->key);
}

static int tensor_key_cmp(const void *key, const void *elem) {
    return str_cmp(*(const gguf_str *)key, (*(gguf_tensor *const *)elem)->name);
}

const gguf_kv *gguf_find(const gguf_file *g, const char *key) {
    gguf_str k = {key, strlen(key)};
    return g->n_kv ? bsearch(&k, g->kv_index_, (size_t)g->n_kv, sizeof(gguf_kv), kv_key_cmp) : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name) {
    gguf_str k = {name, strlen(name)};
    gguf_tensor *const *t =
        g->n_tensors ? bsearch(&k, g->tensor_index_, (size_t)g->n_tensors, sizeof(gguf_tensor *), tensor_key_cmp) : NULL;
    return t ? *t : NULL;
}

/* Integer value of a scalar as signed 128-bit-ish pair: ok=false for non-integers. */
static bool int_value(const gguf_value *v, int64_t *si, uint64_t *ui, bool *is_unsigned) {
    switch (v->type) {
    case GGUF_T_U8: case GGUF_T_U16: case GGUF_T_U32: case GGUF_T_U64:
        *ui = v->u; *is_unsigned = true; return true;
    case GGUF_T_I8: case GGUF_T_I16: case GGUF_T_I32: case GGUF_T_I64:
        *si = v->i; *is_unsigned = false; return true;
    default: return false;
    }
}

bool gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out) {
    const gguf_kv *kv = gguf_find(g, key);
    int64_t si; uint64_t ui; bool uns;
    if (!kv || !int_value(&kv->val, &si, &ui, &uns)) return false;
    if (uns) { if (ui > UINT32_MAX) return false; *out = (uint32_t)ui; }
    else { if (si < 0 || si > UINT32_MAX) return false; *out = (uint32_t)si; }
    return true;
}

bool gguf_get_i32(const gguf_file *g, const char *key, int32_t *out) {
    const gguf_kv *kv = gguf_find(g, key);
    int64_t si; uint64_t ui; bool uns;
    if (!kv || !int_value(&kv->val, &si, &ui, &uns)) return false;
    if (uns) { if (ui > INT32_MAX) return false; *out = (int32_t)ui; }
    else { if (si < INT32_MIN || si > INT32_MAX) return false; *out = (int32_t)si; }
    return true;
}

bool gguf_get_f32(const gguf_file *g, const char *key, float *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || (kv->val.type != GGUF_T_F32 && kv->val.type != GGUF_T_F64)) return false;
    *out = (float)kv->val.f;
    return true;
}

bool gguf_get_bool(const gguf_file *g, const char *key, bool *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || kv->val.type != GGUF_T_BOOL) return false;
    *out = kv->val.b;
    return true;
}

bool gguf_get_str(const gguf_file *g, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || kv->val.type != GGUF_T_STRING) return false;
    *out = kv->val.s;
    return true;
}

const gguf_value *gguf_get_arr(const gguf_file *g, const char *key, gguf_vtype elem) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || kv->val.type != GGUF_T_ARRAY) return NULL;
    if (elem != GGUF_T_COUNT && kv->val.arr.elem != elem) return NULL;
    return &kv->val;
}

double gguf_arr_f64(const gguf_value *arr, uint64_t i) {
    gguf_value v = {.type = arr->arr.elem};
    size_t sz = gguf_vtype_size(arr->arr.elem);
    decode_scalar(&v, arr->arr.raw + i * sz);
    switch (v.type) {
    case GGUF_T_F32: case GGUF_T_F64: return v.f;
    case GGUF_T_U8: case GGUF_T_U16: case GGUF_T_U32: case GGUF_T_U64: return (double)v.u;
    case GGUF_T_BOOL: return v.b;
    default: return (double)v.i;
    }
}

int64_t gguf_arr_i64(const gguf_value *arr, uint64_t i) {
    gguf_value v = {.type = arr->arr.elem};
    size_t sz = gguf_vtype_size(arr->arr.elem);
    decode_scalar(&v, arr->arr.raw + i * sz);
    switch (v.type) {
    case GGUF_T_F32: case GGUF_T_F64: return (int64_t)v.f;
    case GGUF_T_U8: case GGUF_T_U16: case GGUF_T_U32: case GGUF_T_U64: return (int64_t)v.u;
    case GGUF_T_BOOL: return v.b;
    default: return v.i;
    }
}
