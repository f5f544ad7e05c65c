/* test_tokenizer.c — SPM and BPE tokenizers against llama.cpp's tokenizer
 * test data (vocab/ggml-vocab-*.gguf + .inp/.out, run the way llama.cpp's
 * test-tokenizer-0 runs them: no BOS, no special-token parsing), Llama 3 and
 * Qwen vocabularies rebuilt from Hugging Face tokenizer.json files, round
 * trips, special tokens, streaming decode, and load errors. Tests that need
 * model data skip when it is missing. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "model/gguf.h"
#include "testutil.h"
#include "text/tokenizer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Opens a GGUF and loads its tokenizer; asserts success. */
static tokenizer *load_tok(const char *path, double *secs) {
    gguf_file *g = NULL;
    sluice_error err = {0};
    cr_assert_eq(gguf_open(&g, path, &err), SLUICE_OK, "%s", err.msg);
    tokenizer *t = NULL;
    double t0 = now_s();
    sluice_status st = tok_load(&t, g, &err);
    if (secs) *secs = now_s() - t0;
    gguf_close(g);
    cr_assert_eq(st, SLUICE_OK, "%s: %s", path, err.msg);
    return t;
}

/* Loads a tokenizer from a vocab file under the models dir, or skips. */
static tokenizer *load_model_tok(const char *name) {
    const char *p = tu_model_file(name);
    if (!p) cr_skip("%s not found: set SLUICE_MODELS to the shared models folder", name);
    char path[4096];
    snprintf(path, sizeof path, "%s", p);
    return load_tok(path, NULL);
}

static int32_t *enc(const tokenizer *t, const char *s, bool bos, bool special, size_t *n) {
    int32_t *ids = NULL;
    sluice_error err = {0};
    cr_assert_eq(tok_encode(t, s, strlen(s), bos, false, special, &ids, n, &err), SLUICE_OK, "%s", err.msg);
    cr_assert_not_null(ids);
    return ids;
}

/* ---- llama.cpp test-tokenizer-0 cases ---- */

typedef struct vcase {
    char *text;
    size_t len;
    int32_t *ids;
    size_t n;
} vcase;

static void free_cases(vcase *c, size_t n) {
    for (size_t i = 0; i < n; i++) free(c[i].ids);
    free(c);
}

/* Reads X.inp (strings separated by "\n__ggml_vocab_test__\n") and X.out
 * (one line of ids per string). Texts point into *inp_buf. */
static size_t read_cases(const char *inp_path, const char *out_path, char **inp_buf, vcase **out) {
    size_t ilen = 0, olen = 0;
    char *inp = tu_read_file(inp_path, &ilen), *outs = tu_read_file(out_path, &olen);
    cr_assert(inp && outs, "cannot read %s / %s", inp_path, out_path);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t cap = 64, n = 0;
    vcase *c = calloc(cap, sizeof *c);
    for (size_t pos = 0; pos < ilen;) {
        char *next = memmem(inp + pos, ilen - pos, sep, sizeof sep - 1);
        size_t end = next ? (size_t)(next - inp) : ilen;
        if (n == cap) c = realloc(c, (cap *= 2) * sizeof *c);
        c[n].text = inp + pos;
        c[n].len = end - pos;
        c[n].ids = NULL;
        c[n].n = 0;
        n++;
        if (!next) break;
        pos = end + sizeof sep - 1;
    }
    for (size_t i = 0; i < n; i++) c[i].text[c[i].len] = 0; /* the separator's '\n' or the final NUL */
    size_t line = 0;
    for (char *p = outs; p < outs + olen && line < n; line++) {
        char *nl = memchr(p, '\n', (size_t)(outs + olen - p));
        char *e = nl ? nl : outs + olen;
        c[line].ids = malloc(((size_t)(e - p) / 2 + 1) * sizeof(int32_t));
        for (char *q = p; q < e;) {
            while (q < e && (*q == ' ' || *q == '\r')) q++;
            if (q >= e) break;
            c[line].ids[c[line].n++] = (int32_t)strtol(q, &q, 10);
        }
        p = nl ? nl + 1 : e;
    }
    cr_assert_eq(line, n, "%s has %zu lines for %zu inputs", out_path, line, n);
    free(outs);
    *inp_buf = inp;
    *out = c;
    return n;
}

static void print_ids(char *buf, size_t cap, const int32_t *v, size_t n) {
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && o + 16 < cap; i++) o += (size_t)snprintf(buf + o, cap - o, "%d ", v[i]);
}

/* Runs every case; asserts all encode exactly and (when lossless) decode back. */
static void check_cases(const tokenizer *t, const char *name, const char *inp_path, const char *out_path,
                        bool lossless) {
    char *inp;
    vcase *c;
    size_t n = read_cases(inp_path, out_path, &inp, &c);
    size_t pass = 0, rt_pass = 0;
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        int32_t *ids = NULL;
        size_t m = 0;
        sluice_error err = {0};
        cr_assert_eq(tok_encode(t, c[i].text, c[i].len, false, false, false, &ids, &m, &err), SLUICE_OK, "%s",
                     err.msg);
        bool ok = m == c[i].n && memcmp(ids, c[i].ids, m * sizeof *ids) == 0;
        if (ok) pass++;
        else {
            char a[2048], b[2048];
            print_ids(a, sizeof a, c[i].ids, c[i].n);
            print_ids(b, sizeof b, ids, m);
            cr_log_warn("%s case %zu '%s'\n  expected: %s\n  got:      %s", name, i, c[i].text, a, b);
        }
        size_t dl = 0;
        char *d = tok_decode_n(t, ids, m, false, &dl);
        cr_assert_not_null(d);
        if (dl == c[i].len && memcmp(d, c[i].text, dl) == 0) rt_pass++;
        else if (lossless) cr_log_warn("%s case %zu does not round-trip: '%s' -> '%s'", name, i, c[i].text, d);
        free(d);
        free(ids);
    }
    double dt = now_s() - t0;
    fprintf(stderr, "tokenizer %-15s encode %zu/%zu exact, decode(encode(s)) == s %zu/%zu  (%.1f ms)\n", name, pass,
            n, rt_pass, n, dt * 1e3);
    free_cases(c, n);
    free(inp);
    cr_expect_eq(pass, n, "%s: %zu of %zu cases encode exactly", name, pass, n);
    if (lossless) cr_expect_eq(rt_pass, n, "%s: %zu of %zu cases round-trip", name, rt_pass, n);
}

static void run_vocab(const char *name, bool lossless) {
    char gg[256], inp[4200], out[4200];
    snprintf(gg, sizeof gg, "vocab/ggml-vocab-%s.gguf", name);
    const char *p = tu_model_file(gg);
    if (!p) cr_skip("%s not found: set SLUICE_MODELS to the shared models folder", gg);
    char path[4096];
    snprintf(path, sizeof path, "%s", p);
    snprintf(inp, sizeof inp, "%s.inp", path);
    snprintf(out, sizeof out, "%s.out", path);
    double secs = 0;
    tokenizer *t = load_tok(path, &secs);
    fprintf(stderr, "tokenizer %-15s %d tokens loaded in %.1f ms\n", name, tok_n_vocab(t), secs * 1e3);
    check_cases(t, name, inp, out, lossless);
    tok_free(t);
}

Test(tokenizer_vocab, llama_spm) { run_vocab("llama-spm", true); }
Test(tokenizer_vocab, phi_3) { run_vocab("phi-3", true); }
Test(tokenizer_vocab, gpt_2) { run_vocab("gpt-2", true); }
Test(tokenizer_vocab, deepseek_coder) { run_vocab("deepseek-coder", true); }
Test(tokenizer_vocab, deepseek_llm) { run_vocab("deepseek-llm", true); }
Test(tokenizer_vocab, falcon) { run_vocab("falcon", true); }
Test(tokenizer_vocab, mpt) { run_vocab("mpt", true); }
Test(tokenizer_vocab, refact) { run_vocab("refact", true); }
Test(tokenizer_vocab, starcoder) { run_vocab("starcoder", true); }

/* ---- Llama 3 / Qwen: vocab GGUFs rebuilt from Hugging Face tokenizer.json ---- */

static bool looks_special(const char *s) {
    size_t n = strlen(s);
    return n >= 4 && strncmp(s, "<|", 2) == 0 && strcmp(s + n - 2, "|>") == 0;
}

/* Writes a vocab-only GGUF from tokenizer.json the way llama.cpp's converter
 * does: ids without a token become "[PAD<id>]" (unused); added tokens are
 * control when special (or "<|...|>"), else user-defined. */
static const char *build_hf_vocab(const char *json_name, const char *pre, int32_t bos, int32_t eos, bool add_bos) {
    const char *p = tu_model_file(json_name);
    if (!p) cr_skip("%s not found: set SLUICE_MODELS to the shared models folder", json_name);
    size_t len = 0;
    char *js = tu_read_file(p, &len);
    cr_assert_not_null(js);
    cJSON *root = cJSON_ParseWithLength(js, len);
    free(js);
    cr_assert_not_null(root, "cannot parse %s", json_name);
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    cr_assert(cJSON_IsObject(vocab) && cJSON_IsArray(merges), "%s: no model.vocab / model.merges", json_name);
    int n = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, vocab) if (it->valueint + 1 > n) n = it->valueint + 1;
    cJSON_ArrayForEach(it, added) {
        int id = cJSON_GetObjectItemCaseSensitive(it, "id")->valueint;
        if (id + 1 > n) n = id + 1;
    }
    const char **text = calloc((size_t)n, sizeof *text);
    int32_t *type = calloc((size_t)n, sizeof *type);
    cJSON_ArrayForEach(it, vocab) text[it->valueint] = it->string, type[it->valueint] = 1;
    cJSON_ArrayForEach(it, added) {
        int id = cJSON_GetObjectItemCaseSensitive(it, "id")->valueint;
        const char *content = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
        bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special"));
        text[id] = content;
        type[id] = special || looks_special(content) ? 3 : 4;
    }
    gguf_value *tok_items = calloc((size_t)n, sizeof *tok_items);
    char (*pads)[24] = calloc((size_t)n, sizeof *pads);
    for (int i = 0; i < n; i++) {
        if (!text[i]) {
            snprintf(pads[i], sizeof pads[i], "[PAD%d]", i);
            text[i] = pads[i];
            type[i] = 5;
        }
        tok_items[i].type = GGUF_T_STRING;
        tok_items[i].s = (gguf_str){text[i], strlen(text[i])};
    }
    int nm = cJSON_GetArraySize(merges), k = 0;
    gguf_value *merge_items = calloc((size_t)nm, sizeof *merge_items);
    char **merge_buf = calloc((size_t)nm, sizeof *merge_buf);
    cJSON_ArrayForEach(it, merges) {
        if (cJSON_IsString(it)) merge_buf[k] = strdup(it->valuestring);
        else { /* newer format: ["left", "right"] */
            const char *l = cJSON_GetArrayItem(it, 0)->valuestring, *r = cJSON_GetArrayItem(it, 1)->valuestring;
            merge_buf[k] = malloc(strlen(l) + strlen(r) + 2);
            sprintf(merge_buf[k], "%s %s", l, r);
        }
        merge_items[k].type = GGUF_T_STRING;
        merge_items[k].s = (gguf_str){merge_buf[k], strlen(merge_buf[k])};
        k++;
    }
    gguf_writer *w = gguf_writer_create(0);
    sluice_error err = {0};
    gguf_value v = {.type = GGUF_T_ARRAY};
    cr_assert_eq(gguf_writer_set_str(w, "general.architecture", "llama"), SLUICE_OK);
    cr_assert_eq(gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2"), SLUICE_OK);
    cr_assert_eq(gguf_writer_set_str(w, "tokenizer.ggml.pre", pre), SLUICE_OK);
    v.arr.elem = GGUF_T_STRING, v.arr.n = (uint64_t)n, v.arr.items = tok_items;
    cr_assert_eq(gguf_writer_set(w, "tokenizer.ggml.tokens", &v, &err), SLUICE_OK, "%s", err.msg);
    v.arr.elem = GGUF_T_I32, v.arr.items = NULL, v.arr.raw = (const uint8_t *)type;
    cr_assert_eq(gguf_writer_set(w, "tokenizer.ggml.token_type", &v, &err), SLUICE_OK, "%s", err.msg);
    v.arr.elem = GGUF_T_STRING, v.arr.n = (uint64_t)nm, v.arr.raw = NULL, v.arr.items = merge_items;
    cr_assert_eq(gguf_writer_set(w, "tokenizer.ggml.merges", &v, &err), SLUICE_OK, "%s", err.msg);
    cr_assert_eq(gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos), SLUICE_OK);
    cr_assert_eq(gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos), SLUICE_OK);
    cr_assert_eq(gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos), SLUICE_OK);
    static char path[4096];
    snprintf(path, sizeof path, "%s", tu_tmp_path("hf-vocab.gguf"));
    cr_assert_eq(gguf_writer_write(w, path, &err), SLUICE_OK, "%s", err.msg);
    gguf_writer_free(w);
    for (int i = 0; i < nm; i++) free(merge_buf[i]);
    free(merge_buf);
    free(merge_items);
    free(tok_items);
    free(pads);
    free(type);
    free(text);
    cJSON_Delete(root);
    return path;
}

static void run_hf(const char *json_name, const char *pre, const char *test_name, int32_t bos, int32_t eos,
                   bool add_bos) {
    char inp[4200], out[4200], name[256];
    snprintf(name, sizeof name, "%s.inp", test_name);
    const char *ip = tu_model_file(name);
    if (!ip) cr_skip("%s not found: set SLUICE_MODELS to the shared models folder", name);
    snprintf(inp, sizeof inp, "%s", ip);
    snprintf(out, sizeof out, "%.*s.out", (int)(strlen(inp) - 4), inp);
    const char *path = build_hf_vocab(json_name, pre, bos, eos, add_bos);
    double secs = 0;
    tokenizer *t = load_tok(path, &secs);
    fprintf(stderr, "tokenizer %-15s %d tokens loaded in %.1f ms (from %s)\n", pre, tok_n_vocab(t), secs * 1e3,
            json_name);
    cr_expect(secs < 5.0, "loading %d tokens took %.2f s", tok_n_vocab(t), secs);
    cr_expect_eq(tok_add_bos_default(t), add_bos);
    cr_expect(tok_is_eog(t, eos));
    check_cases(t, pre, inp, out, true);
    tok_free(t);
    remove(path);
}

/* The .inp/.out pairs are named after llama.cpp's vocab files (whose GGUFs
 * are too big to ship); test_name is relative to the models dir. */
Test(tokenizer_vocab, llama3_from_tokenizer_json, .timeout = 300) {
    run_hf("vocab/hf-llama3-tokenizer.json", "llama-bpe", "vocab/ggml-vocab-llama-bpe.gguf", 128000, 128001, true);
}
Test(tokenizer_vocab, qwen2_from_tokenizer_json, .timeout = 300) {
    run_hf("vocab/hf-qwen3-tokenizer.json", "qwen2", "vocab/ggml-vocab-qwen2.gguf", 151643, 151645, false);
}

/* ---- SPM specifics ---- */

Test(tokenizer, stories260k_encodes_prompt_with_bos) {
    tokenizer *t = load_model_tok("stories260K.gguf");
    cr_assert_eq(tok_get_kind(t), TOK_SPM);
    cr_assert_eq(tok_n_vocab(t), 512);
    cr_assert_eq(tok_bos(t), 1);
    cr_assert_eq(tok_eos(t), 2);
    cr_assert(tok_add_bos_default(t));
    cr_assert(!tok_add_eos_default(t));
    cr_assert(tok_is_eog(t, 2));
    cr_assert(!tok_is_eog(t, 1));
    size_t n;
    int32_t *ids = enc(t, "Once upon a time", true, false, &n);
    const int32_t want[] = {1, 403, 407, 261, 378};
    cr_assert_eq(n, 5);
    cr_assert_arr_eq(ids, want, sizeof want);
    char *s = tok_decode(t, ids, n, false);
    cr_assert_str_eq(s, "Once upon a time");
    free(s);
    s = tok_decode(t, ids, n, true);
    cr_assert_str_eq(s, "<s>Once upon a time");
    free(s);
    cr_assert_str_eq(tok_piece(t, 403), "\xe2\x96\x81Once");
    cr_assert_null(tok_piece(t, 512));
    char buf[16];
    cr_assert_eq(tok_token_bytes(t, 403, false, buf, sizeof buf), 5);
    cr_assert(memcmp(buf, " Once", 5) == 0);
    cr_assert_eq(tok_token_bytes(t, 1, false, buf, sizeof buf), 0);
    cr_assert_eq(tok_token_bytes(t, 1, true, buf, sizeof buf), 3);
    cr_assert_eq(tok_token_bytes(t, -1, true, buf, sizeof buf), -1);
    free(ids);
    ids = enc(t, "", true, false, &n); /* empty text: just BOS */
    cr_assert_eq(n, 1);
    cr_assert_eq(ids[0], 1);
    free(ids);
    ids = enc(t, "", false, false, &n);
    cr_assert_eq(n, 0);
    free(ids);
    tok_free(t);
}

/* Feeds ids one at a time; checks each output chunk is whole UTF-8. */
static char *stream_all(const tokenizer *t, const int32_t *ids, size_t n, int *max_chunks_empty) {
    tok_stream s;
    tok_stream_init(&s, t, false);
    char *acc = calloc(1, 4096);
    size_t al = 0;
    int empty = 0;
    for (size_t i = 0; i < n; i++) {
        char chunk[256];
        int w = tok_stream_feed(&s, ids[i], chunk, sizeof chunk);
        cr_assert(w >= 0);
        cr_assert_eq((size_t)w, strlen(chunk));
        if (!w) empty++;
        /* every chunk must end on a character boundary */
        for (int k = 0; k < w;) {
            unsigned char c = (unsigned char)chunk[k];
            int l = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            cr_assert(k + l <= w, "chunk '%s' ends inside a character", chunk);
            k += l;
        }
        memcpy(acc + al, chunk, (size_t)w);
        al += (size_t)w;
    }
    char tail[8];
    cr_assert_eq(tok_stream_flush(&s, tail, sizeof tail), 0);
    if (max_chunks_empty) *max_chunks_empty = empty;
    return acc;
}

Test(tokenizer, stream_holds_split_utf8_until_complete) {
    tokenizer *t = load_model_tok("stories260K.gguf");
    const char *text = "a \xf0\x9f\xa6\x99 \xc3\xa4 llama";
    size_t n;
    int32_t *ids = enc(t, text, true, false, &n);
    /* the llama emoji is not in a 512-token vocab: four <0xNN> byte tokens */
    int bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = tok_piece(t, ids[i]);
        if (strncmp(p, "<0x", 3) == 0) bytes++;
    }
    cr_assert(bytes >= 4, "expected byte tokens for the emoji, got %d", bytes);
    int empty = 0;
    char *s = stream_all(t, ids, n, &empty);
    cr_assert_str_eq(s, text);
    cr_assert(empty >= 3, "the first 3 bytes of the emoji should produce no output (got %d empty chunks)", empty);
    free(s);

    /* an incomplete character at the end is flushed as U+FFFD */
    tok_stream st;
    tok_stream_init(&st, t, false);
    int32_t b0 = -1, b1 = -1;
    for (int32_t i = 0; i < tok_n_vocab(t); i++) {
        if (strcmp(tok_piece(t, i), "<0xF0>") == 0) b0 = i;
        if (strcmp(tok_piece(t, i), "<0x9F>") == 0) b1 = i;
    }
    cr_assert(b0 >= 0 && b1 >= 0);
    char out[32];
    cr_assert_eq(tok_stream_feed(&st, b0, out, sizeof out), 0);
    cr_assert_eq(tok_stream_feed(&st, b1, out, sizeof out), 0);
    cr_assert_eq(tok_stream_flush(&st, out, sizeof out), 3);
    cr_assert_str_eq(out, "\xef\xbf\xbd");
    /* a byte that can never start a character comes out as U+FFFD at once */
    int32_t bff = -1;
    for (int32_t i = 0; i < tok_n_vocab(t); i++)
        if (strcmp(tok_piece(t, i), "<0xFF>") == 0) bff = i;
    cr_assert(bff >= 0);
    cr_assert_eq(tok_stream_feed(&st, bff, out, sizeof out), 3);
    /* too small a buffer: -1, state unchanged */
    int32_t e = ids[n - 1];
    for (size_t i = 0; i < n; i++)
        if (tok_token_bytes(t, ids[i], false, NULL, 0) > tok_token_bytes(t, e, false, NULL, 0)) e = ids[i];
    cr_assert(tok_token_bytes(t, e, false, NULL, 0) >= 2);
    cr_assert_eq(tok_stream_feed(&st, e, out, 2), -1);
    int w = tok_stream_feed(&st, e, out, sizeof out);
    cr_assert_eq(w, tok_token_bytes(t, e, false, NULL, 0));
    cr_assert_eq(tok_stream_feed(&st, -5, out, sizeof out), -1);
    free(ids);
    tok_free(t);
}

Test(tokenizer, spm_special_tokens_and_dummy_prefix) {
    tokenizer *t = load_model_tok("vocab/ggml-vocab-llama-spm.gguf");
    size_t n;
    int32_t *ids = enc(t, "<s>Hello</s>", false, true, &n);
    const int32_t want[] = {1, 15043, 2};
    cr_assert_eq(n, 3);
    cr_assert_arr_eq(ids, want, sizeof want);
    char *s = tok_decode(t, ids, n, true);
    cr_assert_str_eq(s, "<s>Hello</s>");
    free(s);
    s = tok_decode(t, ids, n, false);
    cr_assert_str_eq(s, "Hello");
    free(s);
    free(ids);
    ids = enc(t, "<s>Hello</s>", false, false, &n); /* without parse_special: plain text */
    for (size_t i = 0; i < n; i++) cr_assert(ids[i] != 1 && ids[i] != 2);
    s = tok_decode(t, ids, n, false);
    cr_assert_str_eq(s, "<s>Hello</s>");
    free(s);
    free(ids);
    /* invalid UTF-8 is spelled with byte tokens and survives a round trip */
    const char bad[] = "x\xff\xc3(\x80y";
    ids = enc(t, bad, true, false, &n);
    size_t dl;
    s = tok_decode_n(t, ids, n, false, &dl);
    cr_assert_eq(dl, strlen(bad));
    cr_assert(memcmp(s, bad, dl) == 0);
    free(s);
    free(ids);
    tok_free(t);
}

Test(tokenizer, phi3_rstrip_and_eog) {
    tokenizer *t = load_model_tok("vocab/ggml-vocab-phi-3.gguf");
    size_t n, m;
    int32_t *ids = enc(t, "<|user|>  \n Hi", false, true, &n); /* whitespace right of the token is stripped */
    int32_t *plain = enc(t, "Hi", false, false, &m);
    cr_assert_eq(n, 1 + m);
    cr_assert_eq(ids[0], 32010);
    cr_assert_arr_eq(ids + 1, plain, m * sizeof *plain);
    cr_assert(tok_is_eog(t, 32000));
    cr_assert(tok_is_eog(t, 32007)); /* <|end|> */
    cr_assert(!tok_is_eog(t, 32010));
    cr_assert(tok_is_special(t, 32010));
    free(ids);
    free(plain);
    tok_free(t);
}

/* ---- BPE specifics ---- */

Test(tokenizer, bpe_user_defined_always_matched_control_only_when_parsing) {
    tokenizer *t = load_model_tok("vocab/ggml-vocab-deepseek-coder.gguf");
    size_t n;
    int32_t *ids = enc(t, "x\xc3\x81y", false, false, &n); /* "Á" is a user-defined token (32002) */
    bool found = false;
    for (size_t i = 0; i < n; i++) found |= ids[i] == 32002;
    cr_assert(found);
    char *s = tok_decode(t, ids, n, false);
    cr_assert_str_eq(s, "x\xc3\x81y");
    free(s);
    free(ids);
    const char *bos_text = tok_piece(t, 32013);
    char text[128];
    snprintf(text, sizeof text, "%sint x;", bos_text);
    ids = enc(t, text, false, true, &n);
    cr_assert_eq(ids[0], 32013);
    free(ids);
    ids = enc(t, text, false, false, &n);
    cr_assert(ids[0] != 32013);
    free(ids);
    ids = enc(t, "int x;", true, false, &n);
    cr_assert_eq(ids[0], 32013);
    cr_assert(tok_add_bos_default(t));
    cr_assert(tok_is_eog(t, 32014));
    free(ids);
    tok_free(t);
}

Test(tokenizer, gpt2_pieces_and_eog) {
    tokenizer *t = load_model_tok("vocab/ggml-vocab-gpt-2.gguf");
    cr_assert_eq(tok_get_kind(t), TOK_BPE);
    cr_assert(tok_is_eog(t, 50256));
    cr_assert(!tok_add_bos_default(t));
    size_t n;
    int32_t *ids = enc(t, " the", false, false, &n);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(tok_piece(t, ids[0]), "\xc4\xa0the"); /* "Ġthe" */
    char buf[8];
    cr_assert_eq(tok_token_bytes(t, ids[0], false, buf, sizeof buf), 4);
    cr_assert(memcmp(buf, " the", 4) == 0);
    free(ids);
    ids = enc(t, "<|endoftext|>", false, true, &n);
    cr_assert_eq(n, 1);
    cr_assert_eq(ids[0], 50256);
    free(ids);
    /* invalid UTF-8 encodes (as U+FFFD, like llama.cpp) without failing */
    const char bad[] = "a\xff\xfe\xc3 b\xe2\x82";
    ids = enc(t, bad, false, false, &n);
    char *s = tok_decode(t, ids, n, false);
    cr_assert_str_eq(s, "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd b\xef\xbf\xbd\xef\xbf\xbd");
    free(s);
    free(ids);
    tok_free(t);
}

static size_t sluice_test_put_utf8(uint32_t cp, char *o) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000)
        return o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 0x3F)), o[2] = (char)(0x80 | (cp & 0x3F)), 3;
    o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool valid_utf8(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t l = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!l || i + l > n) return false;
        uint32_t cp = l == 1 ? c : l == 2 ? c & 0x1F : l == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < l; k++) {
            if ((u[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (u[i + k] & 0x3F);
        }
        if ((l == 3 && cp < 0x800) || (l == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += l;
    }
    return true;
}

Test(tokenizer, random_bytes_never_fail) {
    static const char *const names[] = {"vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-gpt-2.gguf",
                                        "vocab/ggml-vocab-deepseek-llm.gguf", "vocab/ggml-vocab-falcon.gguf"};
    int done = 0;
    tu_rng rng = {12345};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const char *p = tu_model_file(names[k]);
        if (!p) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s", p);
        tokenizer *t = load_tok(path, NULL);
        for (int r = 0; r < 200; r++) {
            char buf[64];
            size_t len = tu_rand_u32(&rng) % sizeof buf;
            if (r % 4 < 2) { /* raw bytes */
                for (size_t i = 0; i < len; i++) {
                    uint32_t x = tu_rand_u32(&rng);
                    buf[i] = (char)(x % 3 == 0 ? 0x80 + (x >> 8) % 0x80 : x % 3 == 1 ? ' ' + (x >> 8) % 95 : (x >> 8));
                }
            } else { /* valid UTF-8: ASCII, spaces and random code points */
                size_t o = 0;
                while (o + 4 < sizeof buf && o < len) {
                    uint32_t x = tu_rand_u32(&rng), cp;
                    switch (x % 4) {
                    case 0: cp = ' '; break;
                    case 1: cp = 0x21 + (x >> 8) % 94; break;
                    case 2: cp = 0x80 + (x >> 8) % 0x3000; break;
                    default: cp = 0x10000 + (x >> 8) % 0x20000; break;
                    }
                    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
                    o += sluice_test_put_utf8(cp, buf + o);
                }
                len = o;
            }
            int32_t *ids = NULL;
            size_t n = 0;
            sluice_error err = {0};
            cr_assert_eq(tok_encode(t, buf, len, true, true, r & 1, &ids, &n, &err), SLUICE_OK);
            for (size_t i = 0; i < n; i++) cr_assert(ids[i] >= 0 && ids[i] < tok_n_vocab(t));
            size_t dl;
            char *d = tok_decode_n(t, ids, n, false, &dl);
            cr_assert_not_null(d);
            /* Byte fallback makes SPM lossless on valid UTF-8. (Not on invalid:
             * a lead byte can swallow the first byte of an escaped space, and
             * the rest of the U+2581 then comes back as bytes, as in llama.cpp.) */
            if (tok_get_kind(t) == TOK_SPM && !(r & 1) && valid_utf8(buf, len))
                cr_assert(dl == len && memcmp(d, buf, len) == 0, "SPM round trip of random text");
            tok_stream s;
            tok_stream_init(&s, t, r & 1);
            char out[512];
            for (size_t i = 0; i < n; i++) cr_assert(tok_stream_feed(&s, ids[i], out, sizeof out) >= 0);
            cr_assert(tok_stream_flush(&s, out, sizeof out) >= 0);
            free(d);
            free(ids);
        }
        tok_free(t);
        done++;
    }
    if (!done) cr_skip("no vocab files found under SLUICE_MODELS");
}

/* ---- load errors ---- */

static sluice_status load_built(gguf_writer *w, sluice_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_tmp_path("tok-err.gguf"));
    cr_assert_eq(gguf_writer_write(w, path, err), SLUICE_OK, "%s", err->msg);
    gguf_writer_free(w);
    gguf_file *g = NULL;
    cr_assert_eq(gguf_open(&g, path, err), SLUICE_OK, "%s", err->msg);
    tokenizer *t = NULL;
    sluice_status st = tok_load(&t, g, err);
    if (st == SLUICE_OK) cr_assert_not_null(t);
    else cr_assert_null(t);
    tok_free(t);
    gguf_close(g);
    remove(path);
    return st;
}

static void set_tokens(gguf_writer *w, const char *const *toks, size_t n) {
    gguf_value items[16];
    for (size_t i = 0; i < n; i++) items[i] = (gguf_value){.type = GGUF_T_STRING, .s = {toks[i], strlen(toks[i])}};
    gguf_value v = {.type = GGUF_T_ARRAY};
    v.arr.elem = GGUF_T_STRING, v.arr.n = n, v.arr.items = items;
    sluice_error err = {0};
    cr_assert_eq(gguf_writer_set(w, "tokenizer.ggml.tokens", &v, &err), SLUICE_OK, "%s", err.msg);
}

Test(tokenizer, load_errors_are_clear) {
    static const char *const toks[] = {"a", "b", "ab", "\xc4\xa0"};
    sluice_error err = {0};
    gguf_writer *w = gguf_writer_create(0);
    set_tokens(w, toks, 4);
    cr_assert_eq(load_built(w, &err), SLUICE_ERR_FORMAT);
    cr_assert(strstr(err.msg, "tokenizer.ggml.model"), "%s", err.msg);

    w = gguf_writer_create(0);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "bert");
    set_tokens(w, toks, 4);
    cr_assert_eq(load_built(w, &err), SLUICE_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "bert"), "%s", err.msg);

    w = gguf_writer_create(0);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", "no-such-pre");
    set_tokens(w, toks, 4);
    cr_assert_eq(load_built(w, &err), SLUICE_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "no-such-pre"), "%s", err.msg);

    w = gguf_writer_create(0);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2");
    set_tokens(w, toks, 4);
    cr_assert_eq(load_built(w, &err), SLUICE_ERR_FORMAT); /* no merges */
    cr_assert(strstr(err.msg, "merges"), "%s", err.msg);

    w = gguf_writer_create(0);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    cr_assert_eq(load_built(w, &err), SLUICE_ERR_FORMAT); /* no tokens */
    cr_assert(strstr(err.msg, "tokenizer.ggml.tokens"), "%s", err.msg);

    w = gguf_writer_create(0);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    set_tokens(w, toks, 4);
    float sc[3] = {0};
    gguf_value v = {.type = GGUF_T_ARRAY};
    v.arr.elem = GGUF_T_F32, v.arr.n = 3, v.arr.raw = (const uint8_t *)sc;
    cr_assert_eq(gguf_writer_set(w, "tokenizer.ggml.scores", &v, &err), SLUICE_OK);
    cr_assert_eq(load_built(w, &err), SLUICE_ERR_FORMAT); /* 3 scores for 4 tokens */
    cr_assert(strstr(err.msg, "scores"), "%s", err.msg);

    /* a tiny valid BPE vocab: merges "a b" makes "ab" */
    w = gguf_writer_create(0);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2");
    set_tokens(w, toks, 4);
    gguf_value mi = {.type = GGUF_T_STRING, .s = {"a b", 3}};
    v.arr.elem = GGUF_T_STRING, v.arr.n = 1, v.arr.raw = NULL, v.arr.items = &mi;
    cr_assert_eq(gguf_writer_set(w, "tokenizer.ggml.merges", &v, &err), SLUICE_OK);
    cr_assert_eq(load_built(w, &err), SLUICE_OK, "%s", err.msg);
}

/* Vocabularies without expected ids: WPM is refused clearly; the others load
 * and round-trip the llama.cpp test strings. */
Test(tokenizer, other_vocabs_load_and_round_trip) {
    const char *inp_path = tu_model_file("vocab/ggml-vocab-gpt-2.gguf.inp");
    if (!inp_path) cr_skip("vocab test strings not found: set SLUICE_MODELS to the shared models folder");
    char inp_copy[4096];
    snprintf(inp_copy, sizeof inp_copy, "%s", inp_path);
    size_t ilen = 0;
    char *inp = tu_read_file(inp_copy, &ilen);
    cr_assert_not_null(inp);
    int done = 0;

    const char *bert = tu_model_file("vocab/ggml-vocab-bert-bge.gguf");
    if (bert) {
        gguf_file *g = NULL;
        sluice_error err = {0};
        cr_assert_eq(gguf_open(&g, bert, &err), SLUICE_OK, "%s", err.msg);
        tokenizer *t = NULL;
        cr_assert_eq(tok_load(&t, g, &err), SLUICE_ERR_UNSUPPORTED);
        cr_assert_null(t);
        cr_assert(strstr(err.msg, "'bert'"), "%s", err.msg);
        gguf_close(g);
        done++;
    }
    static const char *const names[] = {"vocab/ggml-vocab-baichuan.gguf", "vocab/ggml-vocab-gpt-neox.gguf",
                                        "llama-2-tiny-random.gguf"};
    for (size_t k = 0; k < 3; k++) {
        const char *p = tu_model_file(names[k]);
        if (!p) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s", p);
        tokenizer *t = load_tok(path, NULL);
        size_t rt = 0, total = 0;
        static const char sep[] = "\n__ggml_vocab_test__\n";
        for (size_t pos = 0; pos < ilen; total++) {
            char *next = memmem(inp + pos, ilen - pos, sep, sizeof sep - 1);
            size_t end = next ? (size_t)(next - inp) : ilen;
            int32_t *ids = NULL;
            size_t n = 0, dl = 0;
            sluice_error err = {0};
            cr_assert_eq(tok_encode(t, inp + pos, end - pos, true, false, false, &ids, &n, &err), SLUICE_OK);
            char *d = tok_decode_n(t, ids, n, false, &dl);
            if (dl == end - pos && memcmp(d, inp + pos, dl) == 0) rt++;
            free(d);
            free(ids);
            if (!next) break;
            pos = end + sizeof sep - 1;
        }
        fprintf(stderr, "tokenizer %-28s %d tokens, decode(encode(s)) == s %zu/%zu\n", names[k], tok_n_vocab(t), rt,
                total);
        cr_expect_eq(rt, total, "%s round trips %zu of %zu", names[k], rt, total);
        if (k == 2) { /* the full Llama 2 vocab, as in llama-spm */
            size_t n;
            int32_t *ids = enc(t, "Hello world", false, false, &n);
            const int32_t want[] = {15043, 3186};
            cr_assert_eq(n, 2);
            cr_assert_arr_eq(ids, want, sizeof want);
            free(ids);
        }
        tok_free(t);
        done++;
    }
    free(inp);
    if (!done) cr_skip("no extra vocab files found under SLUICE_MODELS");
}
