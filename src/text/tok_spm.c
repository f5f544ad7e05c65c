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

typedef struct spm_work {
    const char *text;
    sym *syms;
    tok_pair_heap heap;
} spm_work;

static bool try_bigram(const tokenizer *t, spm_work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    uint32_t n = w->syms[l].n + w->syms[r].n; /* adjacent: the text is contiguous */
    int32_t id = tok_lookup(t, w->text + w->syms[l].off, n);
    if (id < 0) return true;
    return tok_heap_push(&w->heap, (tok_pair){-(double)t->score[id], l, r, n});
}

bool tok_spm_encode(const tokenizer *t, const char *text, size_t len, tok_ids *out) {
    if (!len) return true;
    if (len > UINT32_MAX) return false;
    spm_work w = {.text = text, .syms = malloc(len * sizeof(sym))};
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
    while (ok && w.heap.n) {
        tok_pair b = tok_heap_pop(&w.heap);
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
    free(w.heap.v);
    return ok;
}
