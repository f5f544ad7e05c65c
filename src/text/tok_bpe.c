/* tok_bpe.c — byte-level BPE (tokenizer.ggml.model "gpt2"): each
 * pre-tokenized piece is mapped byte by byte to GPT-2's printable code
 * points, then adjacent symbols are merged lowest merge rank first (ties:
 * leftmost first) until no pair of the piece is a merge, as llama.cpp's
 * llm_tokenizer_bpe_session does. */
#include <stdlib.h>
#include <string.h>
#include "text/tok_internal.h"

/* GPT-2's bytes_to_unicode: the printable bytes '!'..'~', 0xA1..0xAC and
 * 0xAE..0xFF map to themselves; the other 68 bytes, in order, to U+0100.. */
static bool byte_printable(uint32_t b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t tok_bpe_byte_to_cp(uint8_t b) {
    if (byte_printable(b)) return b;
    if (b <= 0x20) return 256u + b;               /* 0x00..0x20 -> U+0100..U+0120 */
    if (b <= 0xA0) return 256u + 33 + (b - 0x7F); /* 0x7F..0xA0 -> U+0121..U+0142 */
    return 256u + 33 + 34;                        /* 0xAD -> U+0143 */
}

int tok_bpe_cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_printable(cp) ? (int)cp : -1;
    if (cp < 256 + 33) return (int)(cp - 256);
    if (cp < 256 + 33 + 34) return (int)(0x7F + cp - 256 - 33);
    if (cp == 256 + 33 + 34) return 0xAD;
    return -1;
}

typedef struct sym {
    uint32_t off, n; /* bytes of the encoded piece; n == 0 once merged away */
    int32_t prev, next;
} sym;

/* Scratch buffers reused across the pieces of one call. */
typedef struct bpe_work {
    char *word;  /* byte-encoded piece */
    size_t word_cap;
    char *key;   /* "left right" merge lookup key */
    size_t key_cap;
    sym *syms;
    size_t syms_cap;
    tok_pair_heap heap;
} bpe_work;

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *np = realloc(*p, c * elem);
    if (!np) return false;
    *p = np;
    *cap = c;
    return true;
}

static bool add_bigram(const tokenizer *t, bpe_work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    const sym *a = &w->syms[l], *b = &w->syms[r];
    size_t kn = (size_t)a->n + 1 + b->n;
    if (!grow((void **)&w->key, &w->key_cap, kn, 1)) return false;
    memcpy(w->key, w->word + a->off, a->n);
    w->key[a->n] = ' ';
    memcpy(w->key + a->n + 1, w->word + b->off, b->n);
    int32_t rank = tok_map_find(&t->merge_map, &t->merges, w->key, kn);
    if (rank < 0) return true;
    return tok_heap_push(&w->heap, (tok_pair){rank, l, r, a->n + b->n});
}

/* Merges and emits one byte-encoded piece w->word[0..wn). */
static bool bpe_piece(const tokenizer *t, bpe_work *w, size_t wn, tok_ids *out) {
    if (t->ignore_merges) {
        int32_t id = tok_lookup(t, w->word, wn);
        if (id >= 0) return tok_ids_push(out, id);
    }
    if (wn > INT32_MAX || !grow((void **)&w->syms, &w->syms_cap, wn, sizeof *w->syms)) return false;
    int32_t ns = 0;
    for (size_t off = 0; off < wn; ns++) {
        size_t n = tok_utf8_len((unsigned char)w->word[off]);
        if (n > wn - off) n = wn - off;
        off += n;
        w->syms[ns] = (sym){(uint32_t)(off - n), (uint32_t)n, ns - 1, off == wn ? -1 : ns + 1};
    }
    w->heap.n = 0;
    for (int32_t i = 1; i < ns; i++)
        if (!add_bigram(t, w, i - 1, i)) return false;
    while (w->heap.n) {
        tok_pair b = tok_heap_pop(&w->heap);
        sym *l = &w->syms[b.left], *r = &w->syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->syms[r->next].prev = b.left;
        if (!add_bigram(t, w, l->prev, b.left) || !add_bigram(t, w, b.left, l->next)) return false;
    }
    for (int32_t i = 0; i < ns; i++) {
        const sym *s = &w->syms[i];
        if (!s->n) continue;
        int32_t id = tok_lookup(t, w->word + s->off, s->n);
        if (id >= 0) {
            if (!tok_ids_push(out, id)) return false;
            continue;
        }
        /* not in the vocab: llama.cpp falls back to single-byte tokens */
        for (uint32_t k = 0; k < s->n; k++) {
            int32_t bid = tok_lookup(t, w->word + s->off + k, 1);
            if (bid >= 0 && !tok_ids_push(out, bid)) return false;
        }
    }
    return true;
}

bool tok_bpe_encode(const tokenizer *t, const char *text, size_t len, tok_ids *out) {
    size_t clen = 0;
    char *clean = tok_utf8_sanitize(text, len, &clen);
    if (!clean) return false;
    tok_spans sp = {0};
    bpe_work w = {0};
    bool ok = tok_pretok_split(t->pre, clean, clen, &sp);
    for (size_t i = 0; ok && i < sp.n; i++) {
        const unsigned char *p = (const unsigned char *)clean + sp.v[2 * i];
        size_t n = sp.v[2 * i + 1];
        if (!(ok = grow((void **)&w.word, &w.word_cap, 2 * n, 1))) break;
        size_t wn = 0;
        for (size_t k = 0; k < n; k++) wn += tok_utf8_put(tok_bpe_byte_to_cp(p[k]), w.word + wn);
        ok = bpe_piece(t, &w, wn, out);
    }
    free(w.word);
    free(w.key);
    free(w.syms);
    free(w.heap.v);
    free(sp.v);
    free(clean);
    return ok;
}
