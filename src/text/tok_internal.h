/* tok_internal.h — private to src/text/tokenizer.c, tok_spm.c, tok_bpe.c and
 * pretok.c: the tokenizer struct, the string table + open-addressing hash
 * map used for the vocabulary and the BPE merges, a growable id vector, and
 * the per-algorithm encoders. Nothing here is part of the public API. */
#ifndef SLUICE_TEXT_TOK_INTERNAL_H
#define SLUICE_TEXT_TOK_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "text/tokenizer.h"

/* Token attributes (llama.cpp's llama_token_attr bits, plus EOG). */
enum {
    TOK_ATTR_UNKNOWN = 1 << 0,
    TOK_ATTR_UNUSED = 1 << 1,
    TOK_ATTR_NORMAL = 1 << 2,
    TOK_ATTR_CONTROL = 1 << 3,
    TOK_ATTR_USER_DEFINED = 1 << 4,
    TOK_ATTR_BYTE = 1 << 5,
    TOK_ATTR_LSTRIP = 1 << 6, /* strip whitespace left of the token when partitioning */
    TOK_ATTR_RSTRIP = 1 << 7, /* ... and right of it */
    TOK_ATTR_EOG = 1 << 8,    /* ends generation */
};
/* Tokens that render only with render_special and that the encoder treats
 * as "special" (a dummy-prefix space follows them in SPM). */
#define TOK_ATTR_SPECIAL (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL)

/* Strings stored back to back in one arena, each NUL-terminated; entry i is
 * data[off[i] .. off[i] + len[i]). */
/* A candidate merge of the adjacent symbols left and right (size bytes
 * together). The heap pops the lowest prio first, then the leftmost: SPM
 * pushes -score, BPE the merge rank. */
typedef struct tok_pair { double prio; int32_t left, right; uint32_t size; } tok_pair;
typedef struct tok_pair_heap { tok_pair *v; size_t n, cap; } tok_pair_heap;
bool tok_heap_push(tok_pair_heap *h, tok_pair p); /* false on out of memory */
tok_pair tok_heap_pop(tok_pair_heap *h);          /* h->n must be > 0 */

typedef struct tok_strtab {
    char *data;
    size_t size, cap;
    uint32_t *off, *len;
    uint32_t n, n_cap;
} tok_strtab;

/* Appends s (n bytes) as entry tab->n. False on out of memory or > 4 GiB. */
bool tok_strtab_add(tok_strtab *tab, const char *s, size_t n);
void tok_strtab_free(tok_strtab *tab);

/* Open-addressing hash map from a string to the index of an entry of a
 * tok_strtab (the keys live in the table, not in the map). */
typedef struct tok_map {
    uint32_t *slot; /* entry index + 1; 0 = empty */
    uint32_t *hash; /* full 32-bit hash of the slot's key */
    uint32_t mask;  /* capacity - 1 (power of two) */
} tok_map;

/* Builds a map over all entries of tab. For duplicate keys the first entry
 * wins when keep_first, else the last. False on out of memory. */
bool tok_map_build(tok_map *m, const tok_strtab *tab, bool keep_first);
/* Index of the entry whose key is s[0..n), or -1. */
int32_t tok_map_find(const tok_map *m, const tok_strtab *tab, const char *s, size_t n);
void tok_map_free(tok_map *m);

/* Growable vector of token ids. */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids;
bool tok_ids_push(tok_ids *ids, int32_t id); /* false on out of memory */

/* Growable vector of (offset, length) byte spans. */
typedef struct tok_spans {
    size_t *v; /* 2 per span: offset, length */
    size_t n, cap;
} tok_spans;
bool tok_spans_push(tok_spans *s, size_t off, size_t len);

/* ---- pre-tokenizer (pretok.c) ---- */
typedef struct tok_pretok tok_pretok;

/* Flags a pre-tokenizer name implies (llama.cpp's per-pre-type settings). */
typedef struct tok_pre_info {
    bool known;         /* the name is a supported pre-tokenizer */
    bool ignore_merges; /* a piece that is a whole token is not merged */
    bool add_bos;       /* default add_bos for this pre type */
    bool no_bos;        /* the pre type has no BOS (chatglm-bpe) */
} tok_pre_info;

/* Looks up a tokenizer.ggml.pre name ("" or NULL means "default"). */
tok_pre_info tok_pretok_info(const char *name);
/* Compiles the regexes of pre-tokenizer `name`. Unknown name or a regex
 * PCRE2 rejects -> error naming it. Free with tok_pretok_free. */
sluice_status tok_pretok_create(tok_pretok **out, const char *name, sluice_error *err);
void tok_pretok_free(tok_pretok *p); /* accepts NULL */
/* Splits text (valid UTF-8, see tok_utf8_sanitize) into pieces by applying
 * each regex in turn to every piece of the previous step; matches and the
 * text between them both become pieces (llama.cpp's unicode_regex_split).
 * Appends the pieces to out. Thread-safe. False on out of memory. */
bool tok_pretok_split(const tok_pretok *p, const char *text, size_t len, tok_spans *out);

/* Byte length of the UTF-8 sequence led by c, as llama.cpp counts it
 * (continuation and invalid bytes count 1). */
static inline size_t tok_utf8_len(unsigned char c) {
    static const unsigned char lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}
/* Decodes text the way llama.cpp's unicode_cpts_from_utf8 does (a byte that
 * does not start a complete sequence becomes U+FFFD; overlong forms are
 * accepted) and re-encodes it as valid UTF-8 (surrogates and code points
 * above U+10FFFF also become U+FFFD). Returns a malloc'd NUL-terminated copy
 * with its length in *out_len, NULL on out of memory. */
char *tok_utf8_sanitize(const char *text, size_t len, size_t *out_len);
/* Encodes code point cp as UTF-8 into out (4 bytes room); returns the length. */
size_t tok_utf8_put(uint32_t cp, char *out);

/* ---- the tokenizer ---- */
struct tokenizer {
    tok_kind kind;
    int32_t n_vocab;
    tok_strtab text;   /* token texts as stored in the GGUF */
    tok_map text_map;  /* text -> id (the last id wins for duplicates, as llama.cpp) */
    float *score;      /* (n_vocab) SPM merge scores */
    uint16_t *attr;    /* (n_vocab) TOK_ATTR_* */
    tok_strtab piece;  /* (n_vocab) output bytes of each token, specials rendered */

    tok_strtab merges; /* BPE merge lines "left right"; entry index = rank */
    tok_map merge_map; /* line -> rank (the first rank wins for duplicates) */
    tok_pretok *pre;   /* BPE pre-tokenizer */
    char pre_name[64];

    int32_t bos, eos, eot, eom, unk, pad, sep; /* -1 = none */
    bool add_bos, add_eos, add_space_prefix, ignore_merges;

    int32_t *special;  /* control / user-defined / unknown ids, longest text first */
    size_t n_special;
    int32_t byte_tok[256]; /* SPM byte-fallback token of each byte, -1 if none */
};

static inline int32_t tok_lookup(const tokenizer *t, const char *s, size_t n) {
    return tok_map_find(&t->text_map, &t->text, s, n);
}

/* SPM (llama.cpp "llama" vocab) encoding of one raw-text fragment that has
 * already been given its dummy prefix and had ' ' replaced by U+2581.
 * Appends ids to out. False on out of memory. */
bool tok_spm_encode(const tokenizer *t, const char *text, size_t len, tok_ids *out);

/* Byte-level BPE encoding of one raw-text fragment (pre-tokenized with t->pre,
 * bytes mapped to GPT-2's printable code points, merged by rank). Appends
 * ids to out. False on out of memory. */
bool tok_bpe_encode(const tokenizer *t, const char *text, size_t len, tok_ids *out);
/* GPT-2 byte -> code point table and its inverse (code point -> byte, -1). */
uint32_t tok_bpe_byte_to_cp(uint8_t b);
int tok_bpe_cp_to_byte(uint32_t cp);
#endif
