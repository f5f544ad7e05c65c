/* tok_spm.c — SentencePiece-style BPE (tokenizer.ggml.model "llama"): the
 * text is cut into UTF-8 characters, then the adjacent pair whose
 * concatenation is the vocabulary token with the highest score is merged
 * (ties: leftmost first) until no pair forms a token; characters that are no
 * token fall back to <0xNN> byte tokens. Same result as llama.cpp's
 * llm_tokenizer_spm_session. */
#include <stdlib.h>
#include <string.h>
#include "text/tok_internal.h"

typedef struct sym {
    uint32_t off, n; /* n == 0 once merged away */
    int32_t prev, next;
} sym;

typedef struct bigram {
    float score;
    int32_t left, right;
    uint32_t size;
} bigram;

typedef struct spm_work {
    const char *text;
    sym *syms;
    bigram *heap;
    size_t heap_n, heap_cap;
} spm_work;

/* a pops before b: higher score, then leftmost */
static bool before(const bigram *a, const bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static bool heap_push(spm_work *w, bigram b) {
    if (w->heap_n == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
        bigram *h = realloc(w->heap, cap * sizeof *h);
        if (!h) return false;
        w->heap = h;
        w->heap_cap = cap;
    }
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&b, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = b;
    return true;
}

static bigram heap_pop(spm_work *w) {
    bigram top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

static bool try_bigram(const tokenizer *t, spm_work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    uint32_t n = w->syms[l].n + w->syms[r].n; /* adjacent: the text is contiguous */
    int32_t id = tok_lookup(t, w->text + w->syms[l].off, n);
    if (id < 0) return true;
    return heap_push(w, (bigram){t->score[id], l, r, n});
}

bool tok_spm_encode(const tokenizer *t, const char *text, size_t len, tok_ids *out) {
    if (!len) return true;
    if (len > UINT32_MAX) return false;
    spm_work w = {text, malloc(len * sizeof(sym)), NULL, 0, 0};
    if (!w.syms) return false;
    int32_t ns = 0;
    for (size_t off = 0; off < len; ns++) {
        size_t n = tok_utf8_len((unsigned char)text[off]);
        if (n > len - off) n = len - off;
        off += n;
        w.syms[ns] = (sym){(uint32_t)(off - n), (uint32_t)n, ns - 1, off == len ? -1 : ns + 1};
    }
    bool ok = true;
    for (int32_t i = 1; ok && i < ns; i++) ok = try_bigram(t, &w, i - 1, i);
    while (ok && w.heap_n) {
        bigram b = heap_pop(&w);
        sym *l = &w.syms[b.left], *r = &w.syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w.syms[r->next].prev = b.left;
        ok = try_bigram(t, &w, l->prev, b.left) && try_bigram(t, &w, b.left, l->next);
    }
    /* Every merged symbol is a token; a single character that is not one is
     * spelled with byte tokens (the unknown token if a byte has none). */
    for (int32_t i = 0; ok && i < ns; i++) {
        const sym *s = &w.syms[i];
        if (!s->n) continue;
        int32_t id = tok_lookup(t, text + s->off, s->n);
        if (id >= 0) {
            ok = tok_ids_push(out, id);
            continue;
        }
        for (uint32_t k = 0; ok && k < s->n; k++) {
            int32_t bid = t->byte_tok[(unsigned char)text[s->off + k]];
            if (bid < 0) bid = t->unk;
            if (bid >= 0) ok = tok_ids_push(out, bid);
        }
    }
    free(w.syms);
    free(w.heap);
    return ok;
}
