/* pretok.c — BPE pre-tokenizers: the regex list each tokenizer.ggml.pre name
 * uses (the patterns of the models' tokenizer.json files as llama.cpp
 * applies them), compiled with PCRE2 (UTF + UCP, JIT when available), and
 * the split that applies them in sequence. Also the UTF-8 clean-up that
 * makes arbitrary input bytes safe to hand to PCRE2.
 *
 * Whitespace: llama.cpp (and Hugging Face's Oniguruma) take \s to be the
 * Unicode White_Space set; PCRE2's \s is slightly different (no U+0085), so
 * every \s / \S in a pattern is rewritten to that explicit set before
 * compiling. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include "text/tok_internal.h"

/* Unicode White_Space, as a character-class body. */
#define WS_BODY "\\t-\\r\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3                                                                                         \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}" \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                                       \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}" \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_GPT4O                                                                                         \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"         \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"         \
    "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+" \
    "[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* CJK ideographs U+4E00-9FA5, U+0800-4E00, Hangul U+AC00-D7FF (deepseek). */
#define RE_DEEPSEEK_CJK "[\\x{4e00}-\\x{9fa5}\\x{0800}-\\x{4e00}\\x{ac00}-\\x{d7ff}]+"
/* deepseek-llm's letter class (cased letters); written with escapes because
 * several of its code points (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126,
 * U+212A) have canonical equivalents that text tools like to normalise. */
#define RE_DEEPSEEK_LETTERS                                                                                 \
    "\\s?[A-Za-z\\x{b5}\\x{c0}-\\x{d6}\\x{d8}-\\x{f6}\\x{f8}-\\x{1ba}\\x{1bc}-\\x{1bf}\\x{1c4}-\\x{293}"   \
    "\\x{295}-\\x{2af}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37b}-\\x{37d}\\x{37f}\\x{386}\\x{388}-\\x{38a}" \
    "\\x{38c}\\x{38e}-\\x{3a1}\\x{3a3}-\\x{3f5}\\x{3f7}-\\x{481}\\x{48a}-\\x{52f}\\x{531}-\\x{556}"        \
    "\\x{10a0}-\\x{10c5}\\x{13a0}-\\x{13f5}\\x{13f8}-\\x{13fd}\\x{1c90}-\\x{1cba}\\x{1cbd}-\\x{1cbf}"     \
    "\\x{1d00}-\\x{1d2b}\\x{1d6b}-\\x{1d77}\\x{1d79}-\\x{1d9a}\\x{1e00}-\\x{1f15}\\x{1f18}-\\x{1f1d}"     \
    "\\x{1f20}-\\x{1f45}\\x{1f48}-\\x{1f4d}\\x{1f50}-\\x{1f57}\\x{1f59}\\x{1f5b}\\x{1f5d}"                \
    "\\x{1f5f}-\\x{1f7d}\\x{1f80}-\\x{1fb4}\\x{1fb6}-\\x{1fbc}\\x{1fbe}\\x{1fc2}-\\x{1fc4}"              \
    "\\x{1fc6}-\\x{1fcc}\\x{1fd0}-\\x{1fd3}\\x{1fd6}-\\x{1fdb}\\x{1fe0}-\\x{1fec}\\x{1ff2}-\\x{1ff4}"     \
    "\\x{1ff6}-\\x{1ffc}\\x{2102}\\x{2107}\\x{210a}-\\x{2113}\\x{2115}\\x{2119}-\\x{211d}\\x{2124}"       \
    "\\x{2126}\\x{2128}\\x{212a}-\\x{212d}\\x{212f}-\\x{2134}\\x{2139}\\x{213c}-\\x{213f}"               \
    "\\x{2145}-\\x{2149}\\x{214e}\\x{2183}\\x{2184}\\x{2c00}-\\x{2c7b}\\x{2c7e}-\\x{2ce4}"               \
    "\\x{2ceb}-\\x{2cee}\\x{2cf2}\\x{2cf3}\\x{a640}-\\x{a66d}\\x{a680}-\\x{a69b}\\x{a722}-\\x{a76f}"      \
    "\\x{a771}-\\x{a787}\\x{a78b}-\\x{a78e}\\x{ab70}-\\x{abbf}\\x{fb00}-\\x{fb06}\\x{fb13}-\\x{fb17}"     \
    "\\x{ff21}-\\x{ff3a}\\x{ff41}-\\x{ff5a}\\x{10400}-\\x{1044f}\\x{104b0}-\\x{104d3}"                   \
    "\\x{104d8}-\\x{104fb}\\x{10c80}-\\x{10cb2}\\x{10cc0}-\\x{10cf2}\\x{118a0}-\\x{118df}"               \
    "\\x{1e900}-\\x{1e943}]+"
#define RE_DEEPSEEK_PUNCT \
    "\\s?[!-/:-~\\x{ff01}-\\x{ff0f}\\x{ff1a}-\\x{ff5e}\\x{2018}-\\x{201f}\\x{3000}-\\x{3002}]+"
#define RE_BLOOM " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{ff0c}\\x{3001}\\x{964}\\x{6d4}\\x{60c})]+"

#define MAX_RE 6
typedef struct pre_def {
    const char *names; /* '|'-separated tokenizer.ggml.pre values */
    bool ignore_merges, add_bos, no_bos;
    const char *re[MAX_RE];
} pre_def;

static const pre_def k_pre[] = {
    {"default", false, false, false,
     {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}},
    {"llama3|llama-v3|llama-bpe|falcon3", true, true, false, {RE_LLAMA3}},
    {"dbrx|smaug-bpe", false, false, false, {RE_LLAMA3}},
    {"chatglm-bpe", false, false, true, {RE_LLAMA3}},
    {"deepseek-llm", false, false, false,
     {"[\r\n]", RE_DEEPSEEK_LETTERS, RE_DEEPSEEK_PUNCT, "\\s+$", RE_DEEPSEEK_CJK, "\\p{N}+"}},
    {"deepseek-coder", false, false, false,
     {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_DEEPSEEK_CJK, "\\p{N}"}},
    {"deepseek-v3", false, false, false,
     {"\\p{N}{1,3}", "[\\x{4e00}-\\x{9fa5}\\x{3040}-\\x{309f}\\x{30a0}-\\x{30ff}]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
      "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}},
    {"falcon", false, false, false, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", false, false, false, {"\\p{N}", RE_GPT2}},
    {"gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v1-en|jina-v2-es|jina-v2-de|jina-v2-code|roberta-bpe|mpt|olmo|jais",
     false, false, false, {RE_GPT2}},
    {"qwen2|qwen2.5|qwen-2.5|deepseek-r1-qwen|stablelm2|megrez", false, false, false, {RE_QWEN2}},
    {"poro-chat|bloom|gpt3-finnish", false, false, false, {RE_BLOOM}},
    {"viking", false, false, false, {RE_BLOOM, "\\p{N}"}},
    {"tekken", true, true, false,
     {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
      "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
      "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"chameleon", false, true, false,
     {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
      "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2}},
    {"gpt-4o|llama4", false, false, false, {RE_GPT4O}},
};

struct tok_pretok {
    size_t n;
    pcre2_code *code[MAX_RE];
};

static bool name_in(const char *names, const char *name) {
    size_t n = strlen(name);
    for (const char *p = names; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

static const pre_def *find_pre(const char *name) {
    if (!name || !*name) name = "default";
    for (size_t i = 0; i < sizeof k_pre / sizeof k_pre[0]; i++)
        if (name_in(k_pre[i].names, name)) return &k_pre[i];
    return NULL;
}

tok_pre_info tok_pretok_info(const char *name) {
    tok_pre_info info = {0};
    const pre_def *d = find_pre(name);
    if (d) {
        info.known = true;
        info.ignore_merges = d->ignore_merges;
        info.add_bos = d->add_bos;
        info.no_bos = d->no_bos;
    }
    return info;
}

/* Rewrites \s and \S to the explicit White_Space set. Returns a malloc'd
 * pattern, NULL on out of memory or on \S inside a class (not supported). */
static char *rewrite_ws(const char *re) {
    size_t n = strlen(re), cap = n * 8 + sizeof WS_BODY * 4 + 16, o = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        char c = re[i];
        if (c == '\\' && i + 1 < n) {
            char e = re[i + 1];
            i++;
            const char *rep = NULL;
            if (e == 's') rep = in_class ? WS_BODY : "[" WS_BODY "]";
            else if (e == 'S') {
                if (in_class) { free(out); return NULL; }
                rep = "[^" WS_BODY "]";
            }
            size_t need = rep ? strlen(rep) : 2;
            if (o + need + 1 > cap) {
                cap = (o + need + 1) * 2;
                char *nb = realloc(out, cap);
                if (!nb) { free(out); return NULL; }
                out = nb;
            }
            if (rep) { memcpy(out + o, rep, need); o += need; }
            else { out[o++] = '\\'; out[o++] = e; }
            continue;
        }
        if (o + 2 > cap) {
            cap *= 2;
            char *nb = realloc(out, cap);
            if (!nb) { free(out); return NULL; }
            out = nb;
        }
        if (!in_class && c == '[') {
            in_class = true;
            out[o++] = c;
            /* a ']' right after '[' or '[^' is literal */
            if (i + 1 < n && re[i + 1] == '^') out[o++] = re[++i];
            if (i + 1 < n && re[i + 1] == ']') out[o++] = re[++i];
            continue;
        }
        if (in_class && c == ']') in_class = false;
        out[o++] = c;
    }
    out[o] = 0;
    return out;
}

sluice_status tok_pretok_create(tok_pretok **out, const char *name, sluice_error *err) {
    *out = NULL;
    const pre_def *d = find_pre(name);
    if (!d) return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "unknown pre-tokenizer '%s' (tokenizer.ggml.pre)", name);
    tok_pretok *p = calloc(1, sizeof *p);
    if (!p) return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < MAX_RE && d->re[i]; i++) {
        char *pat = rewrite_ws(d->re[i]);
        if (!pat) {
            tok_pretok_free(p);
            return sluice_fail(err, SLUICE_ERR_NOMEM, "out of memory compiling pre-tokenizer '%s'", name);
        }
        int ec = 0;
        PCRE2_SIZE eo = 0;
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                         PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
        free(pat);
        if (!code) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            tok_pretok_free(p);
            return sluice_fail(err, SLUICE_ERR_UNSUPPORTED, "pre-tokenizer '%s' regex %zu: %s at offset %zu", name,
                               i, (const char *)msg, (size_t)eo);
        }
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
        p->code[p->n++] = code;
    }
    return (*out = p), SLUICE_OK;
}

void tok_pretok_free(tok_pretok *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) pcre2_code_free(p->code[i]);
    free(p);
}

bool tok_spans_push(tok_spans *s, size_t off, size_t len) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        size_t *v = realloc(s->v, cap * 2 * sizeof *v);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[2 * s->n] = off;
    s->v[2 * s->n + 1] = len;
    s->n++;
    return true;
}

/* Splits text[off, off+len) with one regex, the span being the whole
 * subject (lookarounds and anchors see only the span, as in llama.cpp). */
static bool split_span(pcre2_code *code, pcre2_match_data *md, const char *text, size_t off, size_t len,
                       tok_spans *out) {
    PCRE2_SPTR subj = (PCRE2_SPTR)(text + off);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t pos = 0, prev = 0;
    while (pos < len) {
        int rc = pcre2_match(code, subj, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(code, subj, len, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
        if (rc < 0) break; /* no match (or a resource limit): the rest stays one piece */
        size_t s = ov[0], e = ov[1];
        if (e <= s) { /* empty match: step over one character */
            pos = s + tok_utf8_len(subj[s < len ? s : len - 1]);
            continue;
        }
        if (s > prev && !tok_spans_push(out, off + prev, s - prev)) return false;
        if (!tok_spans_push(out, off + s, e - s)) return false;
        prev = pos = e;
    }
    if (prev < len && !tok_spans_push(out, off + prev, len - prev)) return false;
    return true;
}

bool tok_pretok_split(const tok_pretok *p, const char *text, size_t len, tok_spans *out) {
    if (!len) return true;
    tok_spans a = {0}, b = {0};
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    bool ok = md && tok_spans_push(&a, 0, len);
    for (size_t r = 0; ok && r < p->n; r++) {
        b.n = 0;
        for (size_t i = 0; ok && i < a.n; i++) ok = split_span(p->code[r], md, text, a.v[2 * i], a.v[2 * i + 1], &b);
        tok_spans tmp = a;
        a = b;
        b = tmp;
    }
    for (size_t i = 0; ok && i < a.n; i++) ok = tok_spans_push(out, a.v[2 * i], a.v[2 * i + 1]);
    pcre2_match_data_free(md);
    free(a.v);
    free(b.v);
    return ok;
}

size_t tok_utf8_put(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

char *tok_utf8_sanitize(const char *text, size_t len, size_t *out_len) {
    /* worst case: every byte becomes U+FFFD (3 bytes) */
    if (len > (SIZE_MAX - 1) / 3) return NULL;
    char *out = malloc(len * 3 + 1);
    if (!out) return NULL;
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, o = 0;
    while (i < len) {
        unsigned char c = s[i];
        uint32_t cp = 0xFFFD;
        size_t n = 1;
        if (c < 0x80) cp = c;
        else if ((c & 0x40) == 0) cp = 0xFFFD;
        else {
            size_t need = (c & 0x20) == 0 ? 2 : (c & 0x10) == 0 ? 3 : (c & 0x08) == 0 ? 4 : 0;
            bool ok = need && i + need <= len;
            for (size_t k = 1; ok && k < need; k++) ok = (s[i + k] & 0xC0) == 0x80;
            if (ok) {
                cp = need == 2 ? (uint32_t)(c & 0x1F) : need == 3 ? (uint32_t)(c & 0x0F) : (uint32_t)(c & 0x07);
                for (size_t k = 1; k < need; k++) cp = (cp << 6) | (s[i + k] & 0x3F);
                n = need;
                if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;
            }
        }
        o += tok_utf8_put(cp, out + o);
        i += n;
    }
    out[o] = 0;
    *out_len = o;
    return out;
}
