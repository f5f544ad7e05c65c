/* test_gguf_fuzz.c — the malformed-GGUF corpus: every kind of broken file
 * must give an error naming the byte offset and the problem, never a crash
 * (run this suite under SLUICE_SANITIZE=ON too). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "model/gguf.h"
#include "testutil.h"

/* Tiny byte builder so each test controls every field. */
typedef struct bb { uint8_t b[4096]; size_t n; } bb;
static void put(bb *x, const void *p, size_t n) { cr_assert(x->n + n <= sizeof x->b); memcpy(x->b + x->n, p, n); x->n += n; }
static void u32(bb *x, uint32_t v) { put(x, &v, 4); }
static void u64(bb *x, uint64_t v) { put(x, &v, 8); }
static void str(bb *x, const char *s) { u64(x, strlen(s)); put(x, s, strlen(s)); }
static void pad(bb *x, size_t a) { while (x->n % a) x->b[x->n++] = 0; }

typedef enum {
    OK_FILE, BAD_MAGIC, VERSION_1, VERSION_9, KV_COUNT_HUGE, TENSOR_COUNT_HUGE, KEY_LEN_HUGE, BAD_VALUE_TYPE,
    ARRAY_COUNT_HUGE, ARRAY_BAD_ELEM, STRING_ARRAY_HUGE, DIM_OVERFLOW, DIM_ZERO, TOO_MANY_DIMS, BAD_TENSOR_TYPE,
    UNALIGNED_OFFSET, DATA_PAST_END, DUP_KEY, DUP_TENSOR, NON_UTF8_KEY, NON_UTF8_TENSOR, BAD_ALIGNMENT, BAD_BOOL,
    DEEP_NESTING, OVERLAP, ROW_NOT_BLOCK, OVERLONG_UTF8, EMPTY_KEY, N_CASES
} corrupt;

/* A small valid file (2 kv, 2 F32 tensors of 8 floats) with one defect. */
static void build(bb *x, corrupt c) {
    memset(x, 0, sizeof *x);
    put(x, c == BAD_MAGIC ? "GGUX" : "GGUF", 4);
    u32(x, c == VERSION_1 ? 1 : c == VERSION_9 ? 9 : 3);
    u64(x, c == TENSOR_COUNT_HUGE ? (1ull << 62) : 2);
    uint64_t n_kv = 2 + (c == DUP_KEY || c == BAD_ALIGNMENT || c == BAD_BOOL || c == DEEP_NESTING || c == ARRAY_COUNT_HUGE ||
                         c == ARRAY_BAD_ELEM || c == STRING_ARRAY_HUGE || c == OVERLONG_UTF8 || c == EMPTY_KEY);
    u64(x, c == KV_COUNT_HUGE ? UINT64_MAX : n_kv);
    if (c == KEY_LEN_HUGE) { u64(x, UINT64_MAX - 3); x->n += 64; return; }
    str(x, c == NON_UTF8_KEY ? "general.\xff\xfe" : "general.architecture");
    u32(x, c == BAD_VALUE_TYPE ? 13 : 8);
    str(x, "llama");
    str(x, "general.name");
    u32(x, 8);
    str(x, "corpus");
    switch (c) {
    case DUP_KEY: str(x, "general.name"); u32(x, 4); u32(x, 7); break;
    case BAD_ALIGNMENT: str(x, "general.alignment"); u32(x, 4); u32(x, 24); break;
    case BAD_BOOL: str(x, "x.flag"); u32(x, 7); x->b[x->n++] = 2; break;
    case ARRAY_COUNT_HUGE: str(x, "x.arr"); u32(x, 9); u32(x, 6); u64(x, 1ull << 61); break;
    case ARRAY_BAD_ELEM: str(x, "x.arr"); u32(x, 9); u32(x, 77); u64(x, 1); break;
    case STRING_ARRAY_HUGE: str(x, "x.arr"); u32(x, 9); u32(x, 8); u64(x, 1ull << 40); break;
    case OVERLONG_UTF8: str(x, "x.\xc0\xaf"); u32(x, 4); u32(x, 1); break;
    case EMPTY_KEY: str(x, ""); u32(x, 4); u32(x, 1); break;
    case DEEP_NESTING:
        str(x, "x.deep"); u32(x, 9);
        for (int d = 0; d < 12; d++) { u32(x, 9); u64(x, 1); }
        break;
    default: break;
    }
    /* tensor infos */
    str(x, c == NON_UTF8_TENSOR ? "w\x80" : "w");
    u32(x, c == TOO_MANY_DIMS ? 5 : 2);
    if (c == DIM_OVERFLOW) { u64(x, 1ull << 40); u64(x, 1ull << 40); }
    else if (c == DIM_ZERO) { u64(x, 8); u64(x, 0); }
    else { u64(x, 8); u64(x, 1); }
    if (c == TOO_MANY_DIMS) { u64(x, 1); u64(x, 1); u64(x, 1); }
    u32(x, c == BAD_TENSOR_TYPE ? 31 : c == ROW_NOT_BLOCK ? 8 /* Q8_0: 8 % 32 */ : 0);
    u64(x, c == UNALIGNED_OFFSET ? 4 : 0);
    str(x, c == DUP_TENSOR ? "w" : "v");
    u32(x, 1);
    u64(x, 8);
    u32(x, 0);
    u64(x, c == DATA_PAST_END ? 4096 : c == OVERLAP ? 0 : 32);
    pad(x, 32);
    for (int i = 0; i < 16; i++) { float f = (float)i; put(x, &f, 4); }
}

static sluice_status parse(const bb *x, sluice_error *err) {
    gguf_file *g = NULL;
    sluice_status st = gguf_parse(&g, x->b, x->n, "corpus.gguf", err);
    if (st == SLUICE_OK) cr_assert_not_null(g);
    else cr_assert_null(g);
    gguf_close(g);
    return st;
}

Test(gguf_corpus, the_base_file_is_valid) {
    bb x;
    build(&x, OK_FILE);
    sluice_error err = {0};
    cr_assert_eq(parse(&x, &err), SLUICE_OK, "%s", err.msg);
}

Test(gguf_corpus, each_defect_is_a_clear_error) {
    static const struct { corrupt c; const char *must_say; } cases[] = {
        {BAD_MAGIC, "not a GGUF file"}, {VERSION_1, "version 1"}, {VERSION_9, "unknown GGUF version 9"},
        {KV_COUNT_HUGE, "metadata count"}, {TENSOR_COUNT_HUGE, "tensor count"}, {KEY_LEN_HUGE, "past the end"},
        {BAD_VALUE_TYPE, "invalid value type id 13"}, {ARRAY_COUNT_HUGE, "runs past the end"},
        {ARRAY_BAD_ELEM, "invalid element type id 77"}, {STRING_ARRAY_HUGE, "cannot fit"},
        {DIM_OVERFLOW, "overflow"}, {DIM_ZERO, "dimension 1 is 0"}, {TOO_MANY_DIMS, "5 dimensions"},
        {BAD_TENSOR_TYPE, "unknown type id 31"}, {UNALIGNED_OFFSET, "not a multiple of the alignment"},
        {DATA_PAST_END, "past the end of the file"}, {DUP_KEY, "duplicate metadata key 'general.name'"},
        {DUP_TENSOR, "duplicate tensor name 'w'"}, {NON_UTF8_KEY, "not valid UTF-8"},
        {NON_UTF8_TENSOR, "not valid UTF-8"}, {BAD_ALIGNMENT, "power of two"}, {BAD_BOOL, "must be 0 or 1"},
        {DEEP_NESTING, "nested deeper"}, {OVERLAP, "overlap"}, {ROW_NOT_BLOCK, "block size"},
        {OVERLONG_UTF8, "not valid UTF-8"}, {EMPTY_KEY, "empty metadata key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bb x;
        build(&x, cases[i].c);
        sluice_error err = {0};
        cr_assert_neq(parse(&x, &err), SLUICE_OK, "case %zu (%s) was accepted", i, cases[i].must_say);
        cr_assert(strstr(err.msg, "corpus.gguf: byte "), "case %zu: no byte offset in '%s'", i, err.msg);
        cr_assert(strstr(err.msg, cases[i].must_say), "case %zu: '%s' does not say '%s'", i, err.msg, cases[i].must_say);
    }
}

Test(gguf_corpus, truncated_at_every_byte) {
    bb x;
    build(&x, OK_FILE);
    for (size_t n = 0; n < x.n; n++) {
        bb t = x;
        t.n = n;
        /* copy to an exact-size heap buffer so ASan sees any overread */
        uint8_t *buf = malloc(n ? n : 1);
        memcpy(buf, x.b, n);
        gguf_file *g = NULL;
        sluice_error err = {0};
        sluice_status st = gguf_parse(&g, buf, n, "corpus.gguf", &err);
        cr_assert_neq(st, SLUICE_OK, "truncated at %zu of %zu accepted", n, x.n);
        cr_assert(strstr(err.msg, "byte "), "truncated at %zu: '%s'", n, err.msg);
        free(buf);
        (void)t;
    }
}

Test(gguf_corpus, random_mutations_never_crash) {
    const char *real = tu_model_file("stories260K.gguf");
    bb x;
    build(&x, OK_FILE);
    tu_rng r = {42};
    int rejected = 0;
    for (int it = 0; it < 3000; it++) {
        uint8_t *buf = malloc(x.n);
        memcpy(buf, x.b, x.n);
        int flips = 1 + (int)(tu_rand_u32(&r) % 4);
        for (int f = 0; f < flips; f++) buf[tu_rand_u32(&r) % x.n] = (uint8_t)tu_rand_u32(&r);
        gguf_file *g = NULL;
        sluice_error err = {0};
        if (gguf_parse(&g, buf, x.n, "mut.gguf", &err) != SLUICE_OK) {
            rejected++;
            cr_assert(err.msg[0], "error without a message");
        } else {
            /* accepted files must be internally consistent */
            for (uint64_t i = 0; i < g->n_tensors; i++)
                cr_assert((const uint8_t *)g->tensors[i].data + g->tensors[i].n_bytes <= buf + x.n);
        }
        gguf_close(g);
        free(buf);
    }
    cr_assert_gt(rejected, 100);
    /* the header of a real file with its counts mutated */
    if (real) {
        size_t len;
        char *data = tu_read_file(real, &len);
        for (int it = 0; it < 200; it++) {
            uint8_t *buf = malloc(len);
            memcpy(buf, data, len);
            size_t at = tu_rand_u32(&r) % 4096;
            buf[at] ^= (uint8_t)(1u << (tu_rand_u32(&r) % 8));
            gguf_file *g = NULL;
            sluice_error err = {0};
            gguf_parse(&g, buf, len, "mut-real.gguf", &err);
            gguf_close(g);
            free(buf);
        }
        free(data);
    }
}
