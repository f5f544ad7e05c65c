/* tokenizer.c — the tokenizer handle: loading the vocabulary, scores, token
 * types, merges and special-token settings from GGUF metadata; the shared
 * encode path (special-token partition, then SPM or BPE per text fragment);
 * and decoding (per-token bytes, whole sequences, streaming with UTF-8
 * reassembly). Follows llama.cpp's llama-vocab.cpp behaviour. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "text/tok_internal.h"

/* ---- string table, hash map, id vector ---- */

static bool pair_before(const tok_pair *a, const tok_pair *b) {
    return a->prio < b->prio || (a->prio == b->prio && a->left < b->left);
}

bool tok_heap_push(tok_pair_heap *h, tok_pair p) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        tok_pair *v = realloc(h->v, cap * sizeof *v);
        if (!v) return false;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_before(&p, &h->v[parent])) break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = p;
    return true;
}

tok_pair tok_heap_pop(tok_pair_heap *h) {
    tok_pair top = h->v[0], last = h->v[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_before(&h->v[c + 1], &h->v[c])) c++;
        if (!pair_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (n) h->v[i] = last;
    return top;
}

bool tok_strtab_add(tok_strtab *tab, const char *s, size_t n) {
    if (n > UINT32_MAX - 1 || tab->size + n + 1 > UINT32_MAX) return false;
    if (tab->n == tab->n_cap) {
        uint32_t cap = tab->n_cap ? tab->n_cap * 2 : 256;
        uint32_t *off = realloc(tab->off, cap * sizeof *off);
        if (!off) return false;
        tab->off = off;
        uint32_t *len = realloc(tab->len, cap * sizeof *len);
        if (!len) return false;
        tab->len = len;
        tab->n_cap = cap;
    }
    if (tab->size + n + 1 > tab->cap) {
        size_t cap = tab->cap ? tab->cap : 4096;
        while (cap < tab->size + n + 1) cap *= 2;
        char *d = realloc(tab->data, cap);
        if (!d) return false;
        tab->data = d;
        tab->cap = cap;
    }
    if (n) memcpy(tab->data + tab->size, s, n);
    tab->data[tab->size + n] = 0;
    tab->off[tab->n] = (uint32_t)tab->size;
    tab->len[tab->n] = (uint32_t)n;
    tab->size += n + 1;
    tab->n++;
    return true;
}

void tok_strtab_free(tok_strtab *tab) {
    free(tab->data);
    free(tab->off);
    free(tab->len);
    memset(tab, 0, sizeof *tab);
}

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a, then a murmur finaliser for the low bits */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

bool tok_map_build(tok_map *m, const tok_strtab *tab, bool keep_first) {
    if (tab->n > (1u << 30)) return false;
    uint32_t cap = 16;
    while (cap < 2 * (uint64_t)tab->n + 1) cap *= 2;
    m->slot = calloc(cap, sizeof *m->slot);
    m->hash = malloc(cap * sizeof *m->hash);
    m->mask = cap - 1;
    if (!m->slot || !m->hash) return false;
    for (uint32_t e = 0; e < tab->n; e++) {
        const char *k = tab->data + tab->off[e];
        uint32_t kn = tab->len[e], h = hash_bytes(k, kn), i = h & m->mask;
        for (;; i = (i + 1) & m->mask) {
            uint32_t s = m->slot[i];
            if (!s) {
                m->slot[i] = e + 1;
                m->hash[i] = h;
                break;
            }
            if (m->hash[i] == h && tab->len[s - 1] == kn && memcmp(tab->data + tab->off[s - 1], k, kn) == 0) {
                if (!keep_first) m->slot[i] = e + 1;
                break;
            }
        }
    }
    return true;
}

int32_t tok_map_find(const tok_map *m, const tok_strtab *tab, const char *s, size_t n) {
    if (!m->slot) return -1;
    uint32_t h = hash_bytes(s, n);
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint32_t e = m->slot[i];
        if (!e) return -1;
        if (m->hash[i] == h && tab->len[e - 1] == n && memcmp(tab->data + tab->off[e - 1], s, n) == 0)
            return (int32_t)(e - 1);
    }
}

void tok_map_free(tok_map *m) {
    free(m->slot);
    free(m->hash);
    memset(m, 0, sizeof *m);
}

bool tok_ids_push(tok_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v) return false;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return true;
}

/* ---- loading ---- */

static const char *tok_text(const tokenizer *t, int32_t id, size_t *n) {
    *n = t->text.len[id];
    return t->text.data + t->text.off[id];
}

#define DS_BAR "\xef\xbd\x9c" /* U+FF5C, DeepSeek's special-token bar */
#define SP_MARK "\xe2\x96\x81" /* U+2581 */

static const char *const k_eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                          "<EOT>", "<" DS_BAR "end" SP_MARK "of" SP_MARK "sentence" DS_BAR ">", NULL};
static const char *const k_eom_texts[] = {"<|eom_id|>", NULL};
static const char *const k_fim_pre_texts[] = {"<|fim_prefix|>", "<fim-prefix>", "<" DS_BAR "fim" SP_MARK "begin" DS_BAR ">",
                                              "<PRE>", NULL};
static const char *const k_fim_suf_texts[] = {"<|fim_suffix|>", "<fim-suffix>", "<" DS_BAR "fim" SP_MARK "hole" DS_BAR ">",
                                              "<SUF>", NULL};
static const char *const k_fim_mid_texts[] = {"<|fim_middle|>", "<fim-middle>", "<" DS_BAR "fim" SP_MARK "end" DS_BAR ">",
                                              "<MID>", NULL};
static const char *const k_fim_pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
static const char *const k_fim_rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL};
static const char *const k_fim_sep_texts[] = {"<|file_sep|>", NULL};
static const char *const k_eog_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                          "<|eom_id|>", "<EOT>", NULL};

/* Sets *id from key if present and in range (llama.cpp warns and keeps the
 * default otherwise). */
static void read_id(const gguf_file *g, const tokenizer *t, const char *key, int32_t *id) {
    uint32_t v;
    if (!gguf_get_u32(g, key, &v)) return;
    if (v >= (uint32_t)t->n_vocab) {
        sluice_log(SLUICE_LOG_DEBUG, "tokenizer: %s = %u is out of range, keeping %d", key, v, *id);
        return;
    }
    *id = (int32_t)v;
}

/* Lowest id among the tokens whose text is in list, -1 if none. */
static int32_t find_any(const tokenizer *t, const char *const *list) {
    int32_t best = -1;
    for (; *list; list++) {
        int32_t id = tok_lookup(t, *list, strlen(*list));
        if (id >= 0 && (best < 0 || id < best)) best = id;
    }
    return best;
}

static void make_control(tokenizer *t, int32_t id) {
    t->attr[id] = (uint16_t)((t->attr[id] & TOK_ATTR_EOG) | TOK_ATTR_CONTROL); /* the type is replaced */
}

/* Finds a token by its text when the GGUF did not name one; such tokens are
 * made control tokens (as llama.cpp does). */
static void detect(tokenizer *t, int32_t *id, const char *const *texts) {
    if (*id >= 0) return;
    if ((*id = find_any(t, texts)) >= 0) make_control(t, *id);
}

static void mark_eog(tokenizer *t, int32_t id) {
    if (id >= 0) t->attr[id] |= TOK_ATTR_EOG;
}

typedef struct len_id { uint32_t len; int32_t id; } len_id;
static int cmp_len_desc(const void *a, const void *b) {
    const len_id *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static bool build_special_list(tokenizer *t) {
    size_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)) n++;
    len_id *v = malloc((n ? n : 1) * sizeof *v);
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!v || !t->special) { free(v); return false; }
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN))
            v[n++] = (len_id){t->text.len[i], i};
    qsort(v, n, sizeof *v, cmp_len_desc);
    for (size_t i = 0; i < n; i++) t->special[i] = v[i].id;
    t->n_special = n;
    free(v);
    return true;
}

/* llama.cpp's per-model token attribute fix-ups. */
static void model_fixups(tokenizer *t, const gguf_file *g) {
    gguf_str s;
    char name[128] = "";
    if (gguf_get_str(g, "general.name", &s)) gguf_str_copy(s, name, sizeof name);
    for (char *p = name; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    if (strstr(t->pre_name, "jina-v2-de") || strstr(t->pre_name, "jina-v2-es") || strstr(t->pre_name, "jina-v2-code")) {
        int32_t id = tok_lookup(t, "<mask>", 6);
        if (id >= 0) t->attr[id] |= TOK_ATTR_LSTRIP;
    } else if (strstr(name, "phi-3") || strstr(name, "phi3")) {
        for (size_t i = 0; i < t->n_special; i++) t->attr[t->special[i]] |= TOK_ATTR_RSTRIP;
        int32_t id = tok_lookup(t, "</s>", 4);
        if (id >= 0) t->attr[id] |= TOK_ATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (size_t i = 0; i < 3; i++)
            if ((id = tok_lookup(t, keep[i], strlen(keep[i]))) >= 0) t->attr[id] &= (uint16_t)~TOK_ATTR_RSTRIP;
    }
}

/* Decodes one UTF-8 sequence at s (n bytes left); returns its length and
 * sets *cp, or 0 when it is not valid UTF-8. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) return *cp = c, 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    return *cp = v, len;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The output bytes of token id (specials rendered), into buf (room for
 * 4 x the text length). Mirrors llama.cpp's token_to_piece. */
static size_t make_piece(const tokenizer *t, int32_t id, char *buf) {
    size_t n;
    const char *s = tok_text(t, id, &n);
    uint16_t a = t->attr[id];
    if (a & (TOK_ATTR_SPECIAL | TOK_ATTR_USER_DEFINED)) return memcpy(buf, s, n), n;
    size_t o = 0;
    if (t->kind == TOK_SPM) {
        if (a & TOK_ATTR_NORMAL) {
            for (size_t i = 0; i < n;) {
                if (i + 3 <= n && memcmp(s + i, SP_MARK, 3) == 0) buf[o++] = ' ', i += 3;
                else buf[o++] = s[i++];
            }
        } else if (a & TOK_ATTR_BYTE) {
            int hi = n >= 5 ? hexval(s[3]) : -1, lo = n >= 5 ? hexval(s[4]) : -1;
            if (hi >= 0 && lo >= 0) buf[o++] = (char)(hi * 16 + lo);
        }
        return o;
    }
    if (a & TOK_ATTR_NORMAL) { /* byte-level BPE: code points back to bytes */
        const unsigned char *u = (const unsigned char *)s;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t l = utf8_decode(u + i, n - i, &cp);
            int b = l ? tok_bpe_cp_to_byte(cp) : -1;
            if (b >= 0) buf[o++] = (char)b, i += l;
            else if (l) memcpy(buf + o, s + i, l), o += l, i += l; /* not a byte char: keep as is */
            else buf[o++] = s[i++];
        }
    }
    return o;
}

static sluice_status load_vocab(tokenizer *t, const gguf_file *g, sluice_error *err) {
    const gguf_value *toks = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_T_STRING);
    if (!toks) return sluice_fail(err, SLUICE_ERR_FORMAT, "tokenizer: no tokenizer.ggml.tokens string array");
    if (toks->arr.n == 0 || toks->arr.n > INT32_MAX)
        return sluice_fail(err, SLUICE_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens has %llu entries",
                           (unsigned long long)toks->arr.n);
    int32_t n = t->n_vocab = (int32_t)toks->arr.n;
    const gguf_value *scores = gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_T_COUNT);
    const gguf_value *types = gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_T_COUNT);
    if (scores && (scores->arr.n != (uint64_t)n || (scores->arr.elem != GGUF_T_F32 && scores->arr.elem != GGUF_T_F64)))
        return sluice_fail(err, SLUICE_ERR_FORMAT, "tokenizer: tokenizer.ggml.scores is %llu x %s for %d tokens",
                           (unsigned long long)scores->arr.n, gguf_vtype_name(scores->arr.elem), n);
    if (types && (types->arr.n != (uint64_t)n || !gguf_vtype_size(types->arr.elem) ||
                  types->arr.elem == GGUF_T_F32 || types->arr.elem == GGUF_T_F64 || types->arr.elem == GGUF_T_BOOL))
        return sluice_fail(err, SLUICE_ERR_FORMAT, "tokenizer: tokenizer.ggml.token_type is %llu x %s for %d tokens",
                           (unsigned long long)types->arr.n, gguf_vtype_name(types->arr.elem), n);
    t->score = malloc((size_t)n * sizeof *t->score);
    t->attr = malloc((size_t)n * sizeof *t->attr);
    if (!t->score || !t->attr) return sluice_fail(err, SLUICE_ERR_NOMEM, "tokenizer: out of memory");
    for (int32_t i = 0; i < n; i++) {
        gguf_str s = toks->arr.items[i].s;
        bool ok;
        if (s.len == 0) { /* llama.cpp renames empty tokens */
            char buf[32];
            int bn = snprintf(buf, sizeof buf, "[EMPTY_%d]", i);
            ok = tok_strtab_add(&t->text, buf, (size_t)bn);
        } else {
            ok = tok_strtab_add(&t->text, s.ptr, s.len);
        }
        if (!ok) return sluice_fail(err, SLUICE_ERR_NOMEM, "tokenizer: out of memory (token %d)", i);
        t->score[i] = scores ? (float)gguf_arr_f64(scores, (uint64_t)i) : 0.0f;
        uint16_t a = TOK_ATTR_NORMAL;
        if (types) {
            switch (gguf_arr_i64(types, (uint64_t)i)) {
            case 1: a = TOK_ATTR_NORMAL; break;
            case 2: a = TOK_ATTR_UNKNOWN; break;
            case 3: a = TOK_ATTR_CONTROL; break;
            case 4: a = TOK_ATTR_USER_DEFINED; break;
            case 5: a = TOK_ATTR_UNUSED; break;
            case 6: a = TOK_ATTR_BYTE; break;
            default: a = 0; break; /* undefined */
            }
        }
        t->attr[i] = a;
    }
    if (!tok_map_build(&t->text_map, &t->text, false))
        return sluice_fail(err, SLUICE_ERR_NOMEM, "tokenizer: out of memory");
    return SLUICE_OK;
}

static sluice_status load_merges(tokenizer *t, const gguf_file *g, sluice_error *err) {
    const gguf_value *m = gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_T_STRING);
    if (!m) return sluice_fail(err, SLUICE_ERR_FORMAT, "tokenizer: BPE vocab without tokenizer.ggml.merges");
    if (m->arr.n > INT32_MAX) return sluice_fail(err, SLUICE_ERR_FORMAT, "tokenizer: too many merges");
    for (uint64_t i = 0; i < m->arr.n; i++) {
        gguf_str s = m->arr.items[i].s;
        /* llama.cpp splits at the first space after the first byte; a line
         * without one never matches (the key "left right" is the line). */
        bool has = s.len > 1 && memchr(s.ptr + 1, ' ', s.len - 1) != NULL;
        if (!tok_strtab_add(&t->merges, has ? s.ptr : "", has ? s.len : 0))
            return sluice_fail(err, SLUICE_ERR_NOMEM, "tokenizer: out of memory (merge %llu)", (unsigned long long)i);
    }
    if (!tok_map_build(&t->merge_map, &t->merges, true))
        return sluice_fail(err, SLUICE_ERR_NOMEM, "tokenizer: out of memory");
    return SLUICE_OK;
}

sluice_status tok_load(tokenizer **out, const gguf_file *g, sluice_error *err) {
    *out = NULL;
    if (!g) return sluice_fail(err, SLUICE_ERR_ARG, "tokenizer: no GGUF file");
    gguf_str model;
    if (!gguf_get_str(g, "tokenizer.ggml.model", &model))
        return sluice_fail(err, SLUICE_ERR_FORMAT, "tokenizer: no tokenizer.ggml.model key");
    tok_kind kind;
    if (gguf_str_eq(model, "llama")) kind = TOK_SPM;
    else if (gguf_str_eq(model, "gpt2")) kind = TOK_BPE;
    else {
        char mb[64];
        return sluice_fail(err, SLUICE_ERR_UNSUPPORTED,
                           "tokenizer: tokenizer.ggml.model '%s' is not supported (only 'llama' SPM and 'gpt2' BPE)",
                           gguf_str_copy(model, mb, sizeof mb));
    }
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) return sluice_fail(err, SLUICE_ERR_NOMEM, "tokenizer: out of memory");
    t->kind = kind;
    sluice_status st;
    char *buf = NULL;

    gguf_str pre;
    if (gguf_get_str(g, "tokenizer.ggml.pre", &pre)) {
        if (pre.len >= sizeof t->pre_name) {
            st = sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "tokenizer: tokenizer.ggml.pre is %llu bytes long",
                             (unsigned long long)pre.len);
            goto fail;
        }
        gguf_str_copy(pre, t->pre_name, sizeof t->pre_name);
    }
    if ((st = load_vocab(t, g, err))) goto fail;

    t->eot = t->eom = t->sep = t->pad = -1;
    if (kind == TOK_SPM) {
        t->bos = 1, t->eos = 2, t->unk = 0;
        t->add_bos = true, t->add_space_prefix = true;
    } else {
        tok_pre_info pi = tok_pretok_info(t->pre_name);
        if (!t->pre_name[0])
            sluice_log(SLUICE_LOG_WARN, "tokenizer: no tokenizer.ggml.pre, using 'default' (quality may suffer)");
        if ((st = tok_pretok_create(&t->pre, t->pre_name[0] ? t->pre_name : "default", err))) goto fail;
        t->bos = t->eos = 11, t->unk = -1;
        t->add_bos = pi.add_bos;
        t->ignore_merges = pi.ignore_merges;
        if (pi.no_bos) t->bos = -1;
        if ((st = load_merges(t, g, err))) goto fail;
    }
    if (t->bos >= t->n_vocab) t->bos = -1; /* defaults that do not fit a tiny vocab */
    if (t->eos >= t->n_vocab) t->eos = -1;
    if (t->unk >= t->n_vocab) t->unk = -1;
    bool b;
    if (gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b)) t->add_space_prefix = b;

    int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
    read_id(g, t, "tokenizer.ggml.bos_token_id", &t->bos);
    read_id(g, t, "tokenizer.ggml.eos_token_id", &t->eos);
    read_id(g, t, "tokenizer.ggml.eot_token_id", &t->eot);
    read_id(g, t, "tokenizer.ggml.eom_token_id", &t->eom);
    read_id(g, t, "tokenizer.ggml.unknown_token_id", &t->unk);
    read_id(g, t, "tokenizer.ggml.seperator_token_id", &t->sep);
    read_id(g, t, "tokenizer.ggml.padding_token_id", &t->pad);
    read_id(g, t, "tokenizer.ggml.fim_pre_token_id", &fim_pre);
    read_id(g, t, "tokenizer.ggml.fim_suf_token_id", &fim_suf);
    read_id(g, t, "tokenizer.ggml.fim_mid_token_id", &fim_mid);
    read_id(g, t, "tokenizer.ggml.fim_pad_token_id", &fim_pad);
    read_id(g, t, "tokenizer.ggml.fim_rep_token_id", &fim_rep);
    read_id(g, t, "tokenizer.ggml.fim_sep_token_id", &fim_sep);
    read_id(g, t, "tokenizer.ggml.prefix_token_id", &fim_pre);
    read_id(g, t, "tokenizer.ggml.suffix_token_id", &fim_suf);
    read_id(g, t, "tokenizer.ggml.middle_token_id", &fim_mid);
    if (gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b)) t->add_bos = b;
    if (gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b)) t->add_eos = b;

    detect(t, &t->eot, k_eot_texts);
    detect(t, &t->eom, k_eom_texts);
    detect(t, &fim_pre, k_fim_pre_texts);
    detect(t, &fim_suf, k_fim_suf_texts);
    detect(t, &fim_mid, k_fim_mid_texts);
    detect(t, &fim_pad, k_fim_pad_texts);
    detect(t, &fim_rep, k_fim_rep_texts);
    detect(t, &fim_sep, k_fim_sep_texts);
    mark_eog(t, fim_pad);
    mark_eog(t, fim_rep);
    mark_eog(t, fim_sep);
    for (const char *const *e = k_eog_texts; *e; e++) {
        int32_t id = tok_lookup(t, *e, strlen(*e));
        if (id >= 0) mark_eog(t, id), make_control(t, id);
    }
    mark_eog(t, t->eos);
    mark_eog(t, t->eot);
    mark_eog(t, t->eom);

    if (!build_special_list(t)) {
        st = sluice_fail(err, SLUICE_ERR_NOMEM, "tokenizer: out of memory");
        goto fail;
    }
    model_fixups(t, g);

    for (int c = 0; c < 256; c++) {
        char hx[7];
        snprintf(hx, sizeof hx, "<0x%02X>", c);
        char one = (char)c;
        int32_t id = tok_lookup(t, hx, 6);
        t->byte_tok[c] = id >= 0 ? id : tok_lookup(t, &one, 1);
    }

    /* output bytes of every token, specials rendered */
    size_t max_len = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->text.len[i] > max_len) max_len = t->text.len[i];
    buf = malloc(max_len * 4 + 4);
    if (!buf) {
        st = sluice_fail(err, SLUICE_ERR_NOMEM, "tokenizer: out of memory");
        goto fail;
    }
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (!tok_strtab_add(&t->piece, buf, make_piece(t, i, buf))) {
            st = sluice_fail(err, SLUICE_ERR_NOMEM, "tokenizer: out of memory");
            goto fail;
        }
    }
    free(buf);
    sluice_log(SLUICE_LOG_DEBUG, "tokenizer: %s, %d tokens, %u merges, pre '%s', %zu special, bos %d eos %d",
               kind == TOK_SPM ? "SPM" : "BPE", t->n_vocab, t->merges.n, t->pre_name, t->n_special, t->bos, t->eos);
    *out = t;
    return SLUICE_OK;
fail:
    free(buf);
    tok_free(t);
    return st;
}

void tok_free(tokenizer *t) {
    if (!t) return;
    tok_strtab_free(&t->text);
    tok_map_free(&t->text_map);
    tok_strtab_free(&t->piece);
    tok_strtab_free(&t->merges);
    tok_map_free(&t->merge_map);
    tok_pretok_free(t->pre);
    free(t->score);
    free(t->attr);
    free(t->special);
    free(t);
}

tok_kind tok_get_kind(const tokenizer *t) { return t->kind; }
int32_t tok_n_vocab(const tokenizer *t) { return t->n_vocab; }
int32_t tok_bos(const tokenizer *t) { return t->bos; }
int32_t tok_eos(const tokenizer *t) { return t->eos; }
bool tok_add_bos_default(const tokenizer *t) { return t->add_bos && t->bos >= 0; }
bool tok_add_eos_default(const tokenizer *t) { return t->add_eos && t->eos >= 0; }

bool tok_is_eog(const tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->attr[id] & TOK_ATTR_EOG);
}

const char *tok_piece(const tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    return t->text.data + t->text.off[id];
}

bool tok_is_special(const tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->attr[id] & (TOK_ATTR_SPECIAL | TOK_ATTR_USER_DEFINED));
}

/* ---- encoding ---- */

typedef struct frag {
    size_t off, len;
    int32_t id; /* >= 0: a special token; -1: raw text */
} frag;

typedef struct frags {
    frag *v;
    size_t n, cap;
} frags;

static bool frags_push(frags *f, size_t off, size_t len, int32_t id) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        frag *v = realloc(f->v, cap * sizeof *v);
        if (!v) return false;
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = (frag){off, len, id};
    return true;
}

static bool c_isspace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Splits the raw fragments of *cur at every occurrence of special token id
 * (leftmost first, non-overlapping), into *next. */
static bool split_special(const tokenizer *t, int32_t id, const char *text, const frags *cur, frags *next) {
    size_t pn;
    const char *p = tok_text(t, id, &pn);
    uint16_t a = t->attr[id];
    next->n = 0;
    for (size_t i = 0; i < cur->n; i++) {
        frag f = cur->v[i];
        if (f.id >= 0 || f.len < pn) {
            if (!frags_push(next, f.off, f.len, f.id)) return false;
            continue;
        }
        size_t pos = f.off, end = f.off + f.len;
        for (;;) {
            const char *m = end - pos >= pn ? memmem(text + pos, end - pos, p, pn) : NULL;
            if (!m) break;
            size_t mpos = (size_t)(m - text), llen = mpos - pos;
            if (a & TOK_ATTR_LSTRIP)
                while (llen && c_isspace(text[pos + llen - 1])) llen--;
            if (llen && !frags_push(next, pos, llen, -1)) return false;
            if (!frags_push(next, mpos, pn, id)) return false;
            pos = mpos + pn;
            if (a & TOK_ATTR_RSTRIP)
                while (pos < end && c_isspace(text[pos])) pos++;
        }
        if (pos < end && !frags_push(next, pos, end - pos, -1)) return false;
    }
    return true;
}

/* llama.cpp's tokenizer_st_partition: special tokens, longest first, cut the
 * text into token and raw-text fragments. Control and unknown tokens take
 * part only with parse_special; user-defined tokens always do. */
static bool partition(const tokenizer *t, const char *text, size_t len, bool parse_special, frags *out) {
    out->n = 0;
    if (!len) return true;
    if (!frags_push(out, 0, len, -1)) return false;
    /* cheap filters: which bytes and byte pairs occur in the text at all */
    uint8_t *seen = calloc(256 + 65536 / 8, 1);
    if (!seen) return false;
    uint8_t *pairs = seen + 256;
    for (size_t i = 0; i < len; i++) {
        unsigned c = (unsigned char)text[i];
        seen[c] = 1;
        if (i + 1 < len) {
            unsigned pr = c << 8 | (unsigned char)text[i + 1];
            pairs[pr >> 3] |= (uint8_t)(1u << (pr & 7));
        }
    }
    frags tmp = {0};
    bool ok = true;
    for (size_t k = 0; ok && k < t->n_special; k++) {
        int32_t id = t->special[k];
        if (!parse_special && (t->attr[id] & TOK_ATTR_SPECIAL)) continue;
        size_t pn;
        const unsigned char *p = (const unsigned char *)tok_text(t, id, &pn);
        if (pn > len || !seen[p[0]]) continue;
        if (pn >= 2) {
            unsigned a = (unsigned)p[0] << 8 | p[1], b = (unsigned)p[pn - 2] << 8 | p[pn - 1];
            if (!(pairs[a >> 3] & (1u << (a & 7))) || !(pairs[b >> 3] & (1u << (b & 7)))) continue;
        }
        ok = split_special(t, id, text, out, &tmp);
        frags sw = *out;
        *out = tmp;
        tmp = sw;
    }
    free(tmp.v);
    free(seen);
    return ok;
}

sluice_status tok_encode(const tokenizer *t, const char *text, size_t len, bool add_bos, bool add_eos,
                         bool parse_special, int32_t **ids, size_t *n, sluice_error *err) {
    if (ids) *ids = NULL;
    if (n) *n = 0;
    if (!t || !ids || !n || (!text && len)) return sluice_fail(err, SLUICE_ERR_ARG, "tok_encode: bad arguments");
    tok_ids out = {0};
    frags fr = {0};
    char *buf = NULL;
    bool ok = partition(t, text, len, parse_special, &fr);
    if (ok && add_bos && t->bos >= 0) ok = tok_ids_push(&out, t->bos);
    bool prev_special = true; /* SPM: a dummy-prefix space starts the text and follows special tokens */
    for (size_t i = 0; ok && i < fr.n; i++) {
        const frag *f = &fr.v[i];
        if (f->id >= 0) {
            ok = tok_ids_push(&out, f->id);
            prev_special = true;
            continue;
        }
        if (t->kind == TOK_BPE) {
            ok = tok_bpe_encode(t, text + f->off, f->len, &out);
            continue;
        }
        /* SPM: optional dummy prefix, then ' ' -> U+2581 */
        free(buf);
        if (f->len > (SIZE_MAX - 4) / 3 || !(buf = malloc(f->len * 3 + 4))) {
            ok = false;
            break;
        }
        size_t bn = 0;
        if (t->add_space_prefix && prev_special) memcpy(buf, SP_MARK, 3), bn = 3;
        for (size_t k = 0; k < f->len; k++) {
            char c = text[f->off + k];
            if (c == ' ') memcpy(buf + bn, SP_MARK, 3), bn += 3;
            else buf[bn++] = c;
        }
        ok = tok_spm_encode(t, buf, bn, &out);
        prev_special = false;
    }
    if (ok && add_eos && t->eos >= 0) ok = tok_ids_push(&out, t->eos);
    free(buf);
    free(fr.v);
    if (ok && !out.v) ok = (out.v = malloc(sizeof *out.v)) != NULL; /* always hand back a buffer */
    if (!ok) {
        free(out.v);
        return sluice_fail(err, SLUICE_ERR_NOMEM, "tok_encode: out of memory (%zu bytes of text)", len);
    }
    *ids = out.v;
    *n = out.n;
    return SLUICE_OK;
}

/* ---- decoding ---- */

/* The bytes of id as rendered; specials are empty unless render_special. */
static const char *piece_of(const tokenizer *t, int32_t id, bool render_special, size_t *n) {
    if (!render_special && (t->attr[id] & TOK_ATTR_SPECIAL)) {
        *n = 0;
        return "";
    }
    *n = t->piece.len[id];
    return t->piece.data + t->piece.off[id];
}

/* Applies the SPM dummy-prefix rule: with *strip set, one leading space is
 * dropped; *strip is then set after special / user-defined tokens (where the
 * encoder inserts a dummy prefix) and cleared after text. */
static const char *strip_prefix(const tokenizer *t, int32_t id, const char *p, size_t *n, bool *strip) {
    bool spm = t->kind == TOK_SPM && t->add_space_prefix;
    if (spm && *strip && *n && p[0] == ' ') p++, (*n)--;
    if (t->attr[id] & (TOK_ATTR_SPECIAL | TOK_ATTR_USER_DEFINED)) *strip = true;
    else if (t->piece.len[id]) *strip = false;
    return p;
}

int tok_token_bytes(const tokenizer *t, int32_t id, bool render_special, char *buf, size_t cap) {
    if (!t || id < 0 || id >= t->n_vocab) return -1;
    size_t n;
    const char *p = piece_of(t, id, render_special, &n);
    if (buf) memcpy(buf, p, n < cap ? n : cap);
    return (int)n;
}

char *tok_decode_n(const tokenizer *t, const int32_t *ids, size_t n, bool render_special, size_t *out_len) {
    if (out_len) *out_len = 0;
    if (!t || (!ids && n)) return NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < t->n_vocab) total += t->piece.len[ids[i]];
    char *s = malloc(total + 1);
    if (!s) return NULL;
    size_t o = 0;
    bool strip = true;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) continue; /* invalid ids are skipped */
        size_t pn;
        const char *p = piece_of(t, ids[i], render_special, &pn);
        p = strip_prefix(t, ids[i], p, &pn, &strip);
        memcpy(s + o, p, pn);
        o += pn;
    }
    s[o] = 0;
    if (out_len) *out_len = o;
    return s;
}

char *tok_decode(const tokenizer *t, const int32_t *ids, size_t n, bool render_special) {
    return tok_decode_n(t, ids, n, render_special, NULL);
}

void tok_stream_init(tok_stream *s, const tokenizer *t, bool render_special) {
    memset(s, 0, sizeof *s);
    s->t = t;
    s->render_special = render_special;
    s->first = true;
}

/* Length of the valid UTF-8 sequence at p (n bytes available): > 0 when
 * complete, 0 when p holds a valid but incomplete prefix, -1 when invalid. */
static int utf8_seq(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return -1;
    for (int k = 1; k < len; k++) {
        if ((size_t)k >= n) return 0;
        unsigned char b = p[k];
        if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) return -1;
    }
    return len;
}

static const char k_repl[3] = {'\xEF', '\xBF', '\xBD'}; /* U+FFFD */

int tok_stream_feed(tok_stream *s, int32_t id, char *out, size_t cap) {
    if (!s || !s->t || !out || !cap || id < 0 || id >= s->t->n_vocab) return -1;
    const tokenizer *t = s->t;
    size_t pn;
    const char *p = piece_of(t, id, s->render_special, &pn);
    bool first = s->first;
    p = strip_prefix(t, id, p, &pn, &first);
    /* held bytes + the new piece, consumed from the front */
    unsigned char head[8];
    size_t hn = (size_t)s->n_pending;
    memcpy(head, s->pending, hn);
    size_t total = hn + pn, i = 0, o = 0;
#define AT(k) ((k) < hn ? head[(k)] : (unsigned char)p[(k) - hn])
    while (i < total) {
        unsigned char seq[4];
        size_t avail = total - i < 4 ? total - i : 4;
        for (size_t k = 0; k < avail; k++) seq[k] = AT(i + k);
        int l = utf8_seq(seq, avail);
        if (l == 0) break; /* incomplete: hold it */
        const char *src = l > 0 ? (const char *)seq : k_repl;
        size_t sl = l > 0 ? (size_t)l : sizeof k_repl;
        if (o + sl + 1 > cap) return -1;
        memcpy(out + o, src, sl);
        o += sl;
        i += l > 0 ? (size_t)l : 1;
    }
    size_t keep = total - i; /* at most 3 bytes: a valid incomplete prefix */
    unsigned char pend[8];
    for (size_t k = 0; k < keep; k++) pend[k] = AT(i + k);
#undef AT
    out[o] = 0;
    memcpy(s->pending, pend, keep);
    s->n_pending = (int)keep;
    s->first = first;
    return (int)o;
}

int tok_stream_flush(tok_stream *s, char *out, size_t cap) {
    if (!s || !out || !cap) return -1;
    size_t o = s->n_pending ? sizeof k_repl : 0;
    if (o + 1 > cap) return -1;
    memcpy(out, k_repl, o);
    out[o] = 0;
    s->n_pending = 0;
    return (int)o;
}
