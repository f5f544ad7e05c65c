/* session.c — sequences over a paged KV cache, continuous batches, forks,
 * the prefix cache and exact label scoring (see session.h).
 *
 * Blocks: block b holds KV positions of FWD_KV_BLOCK consecutive tokens of
 * some sequence, at slots b * FWD_KV_BLOCK.. of the engine's cache.
 * refs[b] counts the sequences and the prefix-cache entry holding it; a
 * block with no refs is on the free list. Full blocks are never written
 * again, so any number of holders may share one; a partly filled block is
 * copied before a sequence appends to it while another holder shares it.
 *
 * Prefix cache: an entry stands for one full block and the exact prefix
 * before it: (parent entry, the block's tokens). Entries form a forest
 * whose paths are cached prompt prefixes; a new sequence walks it block by
 * block. Entries without children whose block only the cache holds are
 * evicted least recently used first when blocks run out. */
#include "engine/session.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SESS_MAX_SEQ 65536

typedef struct pc_entry pc_entry;
struct pc_entry {
    pc_entry *parent;       /* the block before; NULL: the first block */
    int32_t tokens[FWD_KV_BLOCK];
    uint32_t block;
    uint32_t n_children;
    pc_entry *prev, *next;  /* LRU list, most recent at the head */
    pc_entry *hnext;        /* hash chain */
    uint64_t hash;
};

typedef struct seq {
    bool live;
    uint32_t len;           /* tokens held */
    uint32_t *blocks;       /* block table, cap_blocks entries */
    uint32_t cap_blocks;
    int32_t *tokens;        /* len tokens (for the prefix cache) */
    uint32_t cap_tokens;
    pc_entry *last_entry;   /* cache entry of its last full block, if in the cache */
    uint32_t n_registered;  /* full blocks whose cache entry chain reaches last_entry */
} seq;

struct sess {
    engine *e;
    const model *m;
    uint32_t n_blocks, n_vocab, max_len;
    uint32_t *refs;         /* per block */
    uint32_t *free_list, n_free;
    seq *seqs;
    uint32_t n_seqs;        /* slots used in seqs[] (some may be dead) */
    bool prefix_cache;
    pc_entry **htab;        /* hash table of entries, n_htab buckets */
    uint32_t n_htab;
    pc_entry *lru_head, *lru_tail;
    uint32_t n_cached;
    uint64_t tokens_computed, prefix_reused;
    fwd_tok *toks;          /* decode scratch */
    uint32_t cap_toks;
};

/* ---- blocks ---- */

static void block_unref(sess *s, uint32_t b) {
    if (--s->refs[b] == 0) s->free_list[s->n_free++] = b;
}

static uint64_t pc_hash(const pc_entry *parent, const int32_t *tokens) {
    uint64_t h = parent ? parent->hash : 1469598103934665603ull;
    for (int i = 0; i < FWD_KV_BLOCK; i++) {
        h ^= (uint32_t)tokens[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void lru_unlink(sess *s, pc_entry *e) {
    if (e->prev) e->prev->next = e->next; else s->lru_head = e->next;
    if (e->next) e->next->prev = e->prev; else s->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(sess *s, pc_entry *e) {
    e->next = s->lru_head;
    e->prev = NULL;
    if (s->lru_head) s->lru_head->prev = e; else s->lru_tail = e;
    s->lru_head = e;
}

static pc_entry *pc_find(const sess *s, const pc_entry *parent, const int32_t *tokens) {
    uint64_t h = pc_hash(parent, tokens);
    for (pc_entry *e = s->htab[h % s->n_htab]; e; e = e->hnext)
        if (e->hash == h && e->parent == parent && !memcmp(e->tokens, tokens, sizeof e->tokens)) return e;
    return NULL;
}

/* Frees one evictable entry (a leaf whose block only the cache holds),
 * least recently used first. False when there is none. */
static bool pc_evict_one(sess *s) {
    for (pc_entry *e = s->lru_tail; e; e = e->prev) {
        if (e->n_children || s->refs[e->block] != 1) continue;
        lru_unlink(s, e);
        pc_entry **pp = &s->htab[e->hash % s->n_htab];
        while (*pp != e) pp = &(*pp)->hnext;
        *pp = e->hnext;
        if (e->parent) e->parent->n_children--;
        block_unref(s, e->block);
        s->n_cached--;
        /* sequences whose registered chain ends here lose it */
        for (uint32_t i = 0; i < s->n_seqs; i++)
            if (s->seqs[i].live && s->seqs[i].last_entry == e) s->seqs[i].last_entry = NULL;
        free(e);
        return true;
    }
    return false;
}

/* A free block, evicting cached prefixes when needed; UINT32_MAX: none. */
static uint32_t block_alloc(sess *s) {
    while (!s->n_free)
        if (!pc_evict_one(s)) return UINT32_MAX;
    uint32_t b = s->free_list[--s->n_free];
    s->refs[b] = 1;
    return b;
}

/* ---- sequences ---- */

static seq *seq_get(sess *s, int32_t id) {
    return id >= 0 && (uint32_t)id < s->n_seqs && s->seqs[id].live ? &s->seqs[id] : NULL;
}

static bool seq_reserve(seq *q, uint32_t len) {
    uint32_t nb = (len + FWD_KV_BLOCK - 1) / FWD_KV_BLOCK;
    if (nb > q->cap_blocks) {
        uint32_t cap = nb < 8 ? 8 : nb * 2;
        uint32_t *b = realloc(q->blocks, sizeof *b * cap);
        if (!b) return false;
        q->blocks = b, q->cap_blocks = cap;
    }
    if (len > q->cap_tokens) {
        uint32_t cap = len < 64 ? 64 : len * 2;
        int32_t *t = realloc(q->tokens, sizeof *t * cap);
        if (!t) return false;
        q->tokens = t, q->cap_tokens = cap;
    }
    return true;
}

static sluice_status seq_slot(sess *s, int32_t *id, sluice_error *err) {
    for (uint32_t i = 0; i < s->n_seqs; i++)
        if (!s->seqs[i].live) {
            *id = (int32_t)i;
            return SLUICE_OK;
        }
    if (s->n_seqs == SESS_MAX_SEQ)
        return sluice_fail(err, SLUICE_ERR_FULL, "session: all %u sequence ids in use", SESS_MAX_SEQ);
    if ((s->n_seqs & (s->n_seqs - 1)) == 0) { /* grow at powers of two */
        seq *q = realloc(s->seqs, sizeof *q * (s->n_seqs ? 2 * s->n_seqs : 16));
        if (!q) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
        s->seqs = q;
    }
    memset(&s->seqs[s->n_seqs], 0, sizeof(seq));
    *id = (int32_t)s->n_seqs++;
    return SLUICE_OK;
}

sluice_status sess_seq_new(sess *s, int32_t *id, sluice_error *err) {
    sluice_status st = seq_slot(s, id, err);
    if (st != SLUICE_OK) return st;
    seq *q = &s->seqs[*id];
    uint32_t *b = q->blocks;
    int32_t *t = q->tokens;
    uint32_t cb = q->cap_blocks, ct = q->cap_tokens;
    *q = (seq){.live = true, .blocks = b, .tokens = t, .cap_blocks = cb, .cap_tokens = ct};
    return SLUICE_OK;
}

sluice_status sess_seq_fork(sess *s, int32_t parent, int32_t *child, sluice_error *err) {
    if (!seq_get(s, parent)) return sluice_fail(err, SLUICE_ERR_ARG, "session: no sequence %d to fork", parent);
    sluice_status st = sess_seq_new(s, child, err);
    if (st != SLUICE_OK) return st;
    seq *p = &s->seqs[parent], *c = &s->seqs[*child]; /* after sess_seq_new: seqs may have moved */
    if (!seq_reserve(c, p->len ? p->len : 1)) {
        sess_seq_free(s, *child);
        return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    }
    uint32_t nb = (p->len + FWD_KV_BLOCK - 1) / FWD_KV_BLOCK;
    for (uint32_t i = 0; i < nb; i++) s->refs[c->blocks[i] = p->blocks[i]]++;
    memcpy(c->tokens, p->tokens, sizeof(int32_t) * p->len);
    c->len = p->len;
    c->last_entry = p->last_entry;
    c->n_registered = p->n_registered;
    return SLUICE_OK;
}

void sess_seq_free(sess *s, int32_t id) {
    seq *q = seq_get(s, id);
    if (!q) return;
    uint32_t nb = (q->len + FWD_KV_BLOCK - 1) / FWD_KV_BLOCK;
    for (uint32_t i = 0; i < nb; i++) block_unref(s, q->blocks[i]);
    q->live = false;
    q->len = 0;
}

uint32_t sess_seq_len(const sess *s, int32_t id) {
    return id >= 0 && (uint32_t)id < s->n_seqs && s->seqs[id].live ? s->seqs[id].len : 0;
}

uint32_t sess_seq_reuse_prefix(sess *s, int32_t id, const int32_t *tokens, uint32_t n, uint32_t max_reuse) {
    seq *q = seq_get(s, id);
    if (!q || q->len || !s->prefix_cache) return q ? q->len : 0;
    if (max_reuse > n) max_reuse = n;
    pc_entry *parent = NULL;
    uint32_t k = 0;
    while ((k + 1) * FWD_KV_BLOCK <= max_reuse) {
        pc_entry *e = pc_find(s, parent, tokens + k * FWD_KV_BLOCK);
        if (!e || !seq_reserve(q, (k + 1) * FWD_KV_BLOCK)) break;
        q->blocks[k] = e->block;
        s->refs[e->block]++;
        lru_unlink(s, e);
        lru_push(s, e);
        parent = e;
        k++;
    }
    q->len = k * FWD_KV_BLOCK;
    if (q->len) memcpy(q->tokens, tokens, sizeof(int32_t) * q->len);
    q->last_entry = parent;
    q->n_registered = k;
    s->prefix_reused += q->len;
    return q->len;
}

/* Puts q's newly completed full blocks into the prefix cache. */
static void register_blocks(sess *s, seq *q) {
    if (!s->prefix_cache) return;
    uint32_t full = q->len / FWD_KV_BLOCK;
    while (q->n_registered < full) {
        uint32_t k = q->n_registered;
        if (k > 0 && !q->last_entry) return; /* its chain was evicted: nothing to hang on */
        const int32_t *tk = q->tokens + (size_t)k * FWD_KV_BLOCK;
        pc_entry *e = pc_find(s, q->last_entry, tk);
        if (!e) {
            e = calloc(1, sizeof *e);
            if (!e) return;
            e->parent = q->last_entry;
            memcpy(e->tokens, tk, sizeof e->tokens);
            e->block = q->blocks[k];
            e->hash = pc_hash(e->parent, tk);
            e->hnext = s->htab[e->hash % s->n_htab];
            s->htab[e->hash % s->n_htab] = e;
            if (e->parent) e->parent->n_children++;
            s->refs[e->block]++;
            s->n_cached++;
            lru_push(s, e);
        }
        q->last_entry = e;
        q->n_registered++;
    }
}

/* ---- session ---- */

sluice_status sess_create(sess **out, engine *e, const sess_params *p, sluice_error *err) {
    *out = NULL;
    uint32_t slots = engine_kv_slots(e);
    if (slots < FWD_KV_BLOCK)
        return sluice_fail(err, SLUICE_ERR_ARG, "session: a KV cache of %u slots holds no block", slots);
    sess *s = calloc(1, sizeof *s);
    if (!s) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    s->e = e;
    s->m = engine_model(e);
    s->n_vocab = s->m->hp.n_vocab;
    s->max_len = engine_n_ctx(e);
    s->n_blocks = slots / FWD_KV_BLOCK;
    s->prefix_cache = !(p && p->no_prefix_cache);
    s->n_htab = s->n_blocks * 2 + 1;
    s->refs = calloc(s->n_blocks, sizeof *s->refs);
    s->free_list = malloc(sizeof *s->free_list * s->n_blocks);
    s->htab = calloc(s->n_htab, sizeof *s->htab);
    if (!s->refs || !s->free_list || !s->htab) {
        sess_free(s);
        return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    }
    for (uint32_t b = 0; b < s->n_blocks; b++) s->free_list[s->n_free++] = s->n_blocks - 1 - b;
    *out = s;
    return SLUICE_OK;
}

void sess_free(sess *s) {
    if (!s) return;
    for (pc_entry *e = s->lru_head; e;) {
        pc_entry *n = e->next;
        free(e);
        e = n;
    }
    for (uint32_t i = 0; i < s->n_seqs; i++) free(s->seqs[i].blocks), free(s->seqs[i].tokens);
    free(s->seqs);
    free(s->refs);
    free(s->free_list);
    free(s->htab);
    free(s->toks);
    free(s);
}

sess_stats sess_get_stats(const sess *s) {
    return (sess_stats){.tokens_computed = s->tokens_computed,
                        .prefix_reused = s->prefix_reused,
                        .blocks_total = s->n_blocks,
                        .blocks_free = s->n_free,
                        .blocks_cached = s->n_cached,
                        .block_tokens = FWD_KV_BLOCK};
}

sluice_status sess_decode(sess *s, const sess_entry *en, uint32_t n, float *logits, sluice_error *err) {
    if (!n) return sluice_fail(err, SLUICE_ERR_ARG, "sess_decode: no entries");
    /* Check everything first: ids, tokens, lengths, and the blocks the
     * batch needs (new blocks, plus copies of shared partial blocks). The
     * extra length per sequence is counted in .len of a scratch pass. */
    uint32_t need = 0;
    for (uint32_t i = 0; i < n; i++) {
        seq *q = seq_get(s, en[i].seq);
        if (!q) return sluice_fail(err, SLUICE_ERR_ARG, "entry %u: no sequence %d", i, en[i].seq);
        if (en[i].token < 0 || (uint32_t)en[i].token >= s->n_vocab)
            return sluice_fail(err, SLUICE_ERR_ARG, "entry %u: token %d is outside the vocabulary (0..%u)", i,
                               en[i].token, s->n_vocab - 1);
    }
    uint32_t *add = calloc(s->n_seqs, sizeof *add);
    if (!add) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) add[en[i].seq]++;
    sluice_status st = SLUICE_OK;
    for (uint32_t id = 0; id < s->n_seqs && st == SLUICE_OK; id++) {
        if (!add[id]) continue;
        seq *q = &s->seqs[id];
        uint32_t len = q->len + add[id];
        if (len > s->max_len)
            st = sluice_fail(err, SLUICE_ERR_RANGE, "sequence %u would hold %u tokens, more than the context of %u", id,
                             len, s->max_len);
        uint32_t have = (q->len + FWD_KV_BLOCK - 1) / FWD_KV_BLOCK, want = (len + FWD_KV_BLOCK - 1) / FWD_KV_BLOCK;
        need += want - have;
        if (q->len % FWD_KV_BLOCK && s->refs[q->blocks[have - 1]] > 1) need++; /* copy on write */
        if (st == SLUICE_OK && !seq_reserve(q, len)) st = sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    }
    if (st == SLUICE_OK && n > s->cap_toks) {
        fwd_tok *t = realloc(s->toks, sizeof *t * n);
        if (!t) st = sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
        else s->toks = t, s->cap_toks = n;
    }
    /* the blocks, taken up front (evicting cached prefixes as needed) */
    uint32_t *fresh = st == SLUICE_OK ? malloc(sizeof *fresh * (need ? need : 1)) : NULL;
    if (st == SLUICE_OK && !fresh) st = sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    for (uint32_t k = 0; st == SLUICE_OK && k < need; k++)
        if ((fresh[k] = block_alloc(s)) == UINT32_MAX) {
            while (k) block_unref(s, fresh[--k]);
            st = sluice_fail(err, SLUICE_ERR_FULL,
                             "KV cache full: the batch needs %u more blocks of %u tokens; wait for sequences to "
                             "finish",
                             need, FWD_KV_BLOCK);
        }
    free(add);
    if (st != SLUICE_OK) {
        free(fresh);
        return st;
    }

    /* Blocks and copies, then the tokens' positions. */
    uint32_t used = 0;
    for (uint32_t i = 0; i < n; i++) {
        seq *q = &s->seqs[en[i].seq];
        uint32_t pos = q->len, bi = pos / FWD_KV_BLOCK;
        if (pos % FWD_KV_BLOCK == 0) {
            q->blocks[bi] = fresh[used++];
        } else if (s->refs[q->blocks[bi]] > 1) { /* shared partial block: copy on write */
            uint32_t b = fresh[used++];
            engine_copy_block(s->e, q->blocks[bi], b);
            block_unref(s, q->blocks[bi]);
            q->blocks[bi] = b;
        }
        q->tokens[pos] = en[i].token;
        q->len++;
        s->toks[i] = (fwd_tok){.token = en[i].token, .pos = pos, .blocks = q->blocks, .logits = en[i].logits};
    }
    while (used < need) block_unref(s, fresh[used++]); /* a copy counted for a block the batch then filled anew */
    free(fresh);
    st = engine_decode(s->e, s->toks, n, logits, err);
    s->tokens_computed += n;
    for (uint32_t i = 0; i < n; i++) register_blocks(s, &s->seqs[en[i].seq]);
    return st;
}

/* ---- label scoring ---- */

/* A trie node: the token sequence of its path is a prefix of candidates. */
typedef struct trie_node {
    int32_t token;     /* the edge into this node (root: -1) */
    int32_t parent;    /* node index; root: -1 */
    uint32_t depth;
    bool internal;     /* has children: its logits are needed */
} trie_node;

/* log softmax(logits)[tok] in double. */
static double log_softmax_at(const float *lg, uint32_t n, int32_t tok) {
    float mx = lg[0];
    for (uint32_t i = 1; i < n; i++) mx = lg[i] > mx ? lg[i] : mx;
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) sum += exp((double)lg[i] - mx);
    return (double)lg[tok] - mx - log(sum);
}

sluice_status sess_score(sess *s, const int32_t *const *prompts, const uint32_t *n_prompt, uint32_t n_items,
                         const int32_t *const *cands, const uint32_t *n_cand, uint32_t n_cands, double *logprob,
                         sluice_error *err) {
    if (!n_items || !n_cands) return SLUICE_OK;
    for (uint32_t i = 0; i < n_items; i++)
        if (!n_prompt[i]) return sluice_fail(err, SLUICE_ERR_ARG, "score: prompt %u is empty", i);
    /* the trie: node 0 is the root, then one node per distinct prefix */
    uint32_t max_nodes = 1, max_depth = 0;
    for (uint32_t c = 0; c < n_cands; c++) {
        if (!n_cand[c]) return sluice_fail(err, SLUICE_ERR_ARG, "score: candidate %u is empty", c);
        max_nodes += n_cand[c];
        max_depth = n_cand[c] > max_depth ? n_cand[c] : max_depth;
    }
    trie_node *nodes = malloc(sizeof *nodes * max_nodes);
    uint32_t *leaf = malloc(sizeof *leaf * n_cands);
    int32_t *node_seq = malloc(sizeof *node_seq * max_nodes * n_items);
    float *node_logits = malloc(sizeof(float) * s->n_vocab * max_nodes * n_items);
    /* a batch holds every prompt token at once, or one entry per (item, node) */
    size_t cap = (size_t)n_items * max_nodes;
    size_t prompt_tokens = 0;
    for (uint32_t i = 0; i < n_items; i++) prompt_tokens += n_prompt[i];
    if (prompt_tokens > cap) cap = prompt_tokens;
    sess_entry *batch = malloc(sizeof *batch * cap);
    uint32_t *bnode = malloc(sizeof *bnode * cap);
    sluice_status st = SLUICE_OK;
    if (!nodes || !leaf || !node_seq || !node_logits || !batch || !bnode) {
        st = sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory for scoring %u x %u", n_items, n_cands);
        goto out;
    }
    for (uint32_t i = 0; i < max_nodes * n_items; i++) node_seq[i] = -1;
    uint32_t n_nodes = 1;
    nodes[0] = (trie_node){.token = -1, .parent = -1};
    for (uint32_t c = 0; c < n_cands; c++) {
        uint32_t at = 0;
        for (uint32_t k = 0; k < n_cand[c]; k++) {
            int32_t t = cands[c][k];
            if (t < 0 || (uint32_t)t >= s->n_vocab) {
                st = sluice_fail(err, SLUICE_ERR_ARG, "score: candidate %u token %d is outside the vocabulary", c, t);
                goto out;
            }
            uint32_t nx = 0;
            for (uint32_t j = 1; j < n_nodes && !nx; j++)
                if (nodes[j].parent == (int32_t)at && nodes[j].token == t) nx = j;
            if (!nx) {
                nx = n_nodes++;
                nodes[nx] = (trie_node){.token = t, .parent = (int32_t)at, .depth = k + 1};
            }
            nodes[at].internal = true;
            at = nx;
        }
        leaf[c] = at;
    }

    /* Prompts: reuse cached prefixes (keeping at least one token to
     * evaluate, whose logits the root needs), then the remaining tokens of
     * many prompts in one batched pass. A prompt sharing at least a block
     * with the call's first prompt or the one before it waits for a second
     * pass, so that the shared blocks are computed once and then come from
     * the prefix cache. */
    float *tmp = malloc(sizeof(float) * s->n_vocab * n_items);
    uint8_t *wave = calloc(n_items, 1);
    if (!tmp || !wave) {
        free(tmp), free(wave);
        st = sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (uint32_t i = 1; s->prefix_cache && i < n_items; i++)
        for (uint32_t j = 0; j < 2 && !wave[i]; j++) {
            uint32_t o = j ? i - 1 : 0, lim = n_prompt[i] - 1 < n_prompt[o] ? n_prompt[i] - 1 : n_prompt[o];
            uint32_t k = 0;
            while (k < lim && prompts[i][k] == prompts[o][k]) k++;
            wave[i] = k >= FWD_KV_BLOCK && !wave[o];
        }
    for (uint8_t w = 0; w < 2 && st == SLUICE_OK; w++) {
        uint32_t nb = 0;
        for (uint32_t i = 0; i < n_items && st == SLUICE_OK; i++) {
            if (wave[i] != w) continue;
            int32_t id;
            if ((st = sess_seq_new(s, &id, err)) != SLUICE_OK) break;
            node_seq[i * max_nodes] = id;
            uint32_t have = sess_seq_reuse_prefix(s, id, prompts[i], n_prompt[i], n_prompt[i] - 1);
            for (uint32_t k = have; k < n_prompt[i]; k++) {
                batch[nb] = (sess_entry){.seq = id, .token = prompts[i][k], .logits = k + 1 == n_prompt[i]};
                if (batch[nb].logits) bnode[nb] = i * max_nodes;
                nb++;
            }
        }
        if (st == SLUICE_OK && nb) st = sess_decode(s, batch, nb, tmp, err);
        /* in batch order, the logits rows belong to the roots of the wave's items */
        for (uint32_t k = 0, r = 0; st == SLUICE_OK && k < nb; k++)
            if (batch[k].logits)
                memcpy(node_logits + (size_t)bnode[k] * s->n_vocab, tmp + (size_t)r++ * s->n_vocab,
                       sizeof(float) * s->n_vocab);
    }
    free(tmp), free(wave);
    if (st != SLUICE_OK) goto out;

    /* Internal trie nodes, depth by depth: each is its parent's sequence
     * forked, plus its token; one batched pass per depth for all items. */
    for (uint32_t depth = 1; depth < max_depth; depth++) {
        uint32_t nb = 0;
        for (uint32_t i = 0; i < n_items; i++)
            for (uint32_t j = 1; j < n_nodes; j++) {
                if (nodes[j].depth != depth || !nodes[j].internal) continue;
                int32_t id;
                if ((st = sess_seq_fork(s, node_seq[i * max_nodes + (uint32_t)nodes[j].parent], &id, err)) != SLUICE_OK)
                    goto out;
                node_seq[i * max_nodes + j] = id;
                batch[nb] = (sess_entry){.seq = id, .token = nodes[j].token, .logits = true};
                bnode[nb++] = i * max_nodes + j;
            }
        if (!nb) break;
        float *rows = malloc(sizeof(float) * s->n_vocab * nb);
        if (!rows) {
            st = sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
            goto out;
        }
        st = sess_decode(s, batch, nb, rows, err);
        for (uint32_t k = 0; st == SLUICE_OK && k < nb; k++)
            memcpy(node_logits + (size_t)bnode[k] * s->n_vocab, rows + (size_t)k * s->n_vocab,
                   sizeof(float) * s->n_vocab);
        free(rows);
        if (st != SLUICE_OK) goto out;
    }

    /* log P(candidate) = sum over its path of log softmax at the parent */
    for (uint32_t i = 0; i < n_items; i++)
        for (uint32_t c = 0; c < n_cands; c++) {
            double lp = 0;
            for (int32_t at = (int32_t)leaf[c]; nodes[at].parent >= 0; at = nodes[at].parent)
                lp += log_softmax_at(node_logits + ((size_t)i * max_nodes + (uint32_t)nodes[at].parent) * s->n_vocab,
                                     s->n_vocab, nodes[at].token);
            logprob[(size_t)i * n_cands + c] = lp;
        }
out:
    if (node_seq)
        for (uint32_t i = 0; i < max_nodes * n_items; i++)
            if (node_seq[i] >= 0) sess_seq_free(s, node_seq[i]);
    free(nodes), free(leaf), free(node_seq), free(node_logits), free(batch), free(bnode);
    return st;
}

/* ---- constrained sampling ---- */

/* splitmix64: the seeded stream of sess_sample_candidates */
static uint64_t mix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sess_label_probs(const double *logprob, uint32_t n_cands, double temp, double *p) {
    double mx = -INFINITY, sum = 0;
    for (uint32_t c = 0; c < n_cands; c++) mx = logprob[c] > mx ? logprob[c] : mx;
    if (temp <= 0) { /* greedy: all mass on the first best */
        uint32_t best = 0;
        for (uint32_t c = 0; c < n_cands; c++) best = logprob[c] > logprob[best] ? c : best;
        for (uint32_t c = 0; c < n_cands; c++) p[c] = c == best;
        return;
    }
    for (uint32_t c = 0; c < n_cands; c++) sum += p[c] = exp((logprob[c] - mx) / temp);
    for (uint32_t c = 0; c < n_cands; c++) p[c] /= sum;
}

void sess_sample_candidates(const double *logprob, uint32_t n_cands, uint32_t k, double temp, uint64_t seed,
                            uint32_t *out) {
    double p[256], *pp = n_cands <= 256 ? p : malloc(sizeof(double) * n_cands);
    if (!pp) { /* no memory: fall back to the greedy answer */
        for (uint32_t r = 0; r < k; r++) out[r] = 0;
        return;
    }
    sess_label_probs(logprob, n_cands, temp, pp);
    uint64_t x = seed;
    for (uint32_t r = 0; r < k; r++) {
        double u = (double)(mix64(&x) >> 11) * 0x1.0p-53, acc = 0;
        uint32_t c = 0;
        for (; c + 1 < n_cands; c++) {
            acc += pp[c];
            if (u < acc) break;
        }
        out[r] = c;
    }
    if (pp != p) free(pp);
}
