/* test_stories.c — the real trained stories260K model: greedy decoding
 * must reproduce llama2.c's golden token ids at every step. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "engine/forward.h"
#include "text/sampler.h"
#include "text/tokenizer.h"
#include "testutil.h"

static cJSON *golden(void) {
    const char *p = tu_model_file("stories260K.greedy.json");
    if (!p) return NULL;
    char *txt = tu_read_file(p, NULL);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    return j;
}

/* Loads the model, its tokenizer and the golden file; skips without them. */
static cJSON *load_stories(model **m, tokenizer **tok) {
    const char *mp = tu_model_file("stories260K.gguf");
    char *path = mp ? strdup(mp) : NULL;
    cJSON *j = golden();
    if (!path || !j) cr_skip("stories260K.gguf / stories260K.greedy.json not found: set SLUICE_MODELS");
    sluice_error err = {0};
    cr_assert_eq(model_load(m, path, &err), SLUICE_OK, "%s", err.msg);
    cr_assert_eq(tok_load(tok, (*m)->gguf, &err), SLUICE_OK, "%s", err.msg);
    free(path);
    return j;
}

static void greedy_case(kv_type kv, int threads) {
    model *m;
    tokenizer *tok;
    cJSON *j = load_stories(&m, &tok);
    sluice_error err = {0};
    cJSON *c;
    int n_cases = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "cases")) {
        const char *prompt = cJSON_GetObjectItem(c, "prompt")->valuestring;
        int steps = cJSON_GetObjectItem(c, "steps")->valueint;
        cJSON *want_prompt = cJSON_GetObjectItem(c, "prompt_token_ids"), *want = cJSON_GetObjectItem(c, "token_ids");
        int32_t *ids;
        size_t n;
        cr_assert_eq(tok_encode(tok, prompt, strlen(prompt), true, false, false, &ids, &n, &err), SLUICE_OK);
        cr_assert_eq((int)n, cJSON_GetArraySize(want_prompt), "prompt '%s' tokenized to %zu ids", prompt, n);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(ids[i], cJSON_GetArrayItem(want_prompt, (int)i)->valueint, "prompt token %zu", i);
        fwd_ctx *ctx;
        fwd_params p = {.n_ctx = 512, .kv = kv, .n_threads = threads};
        cr_assert_eq(fwd_create(&ctx, m, &p, &err), SLUICE_OK, "%s", err.msg);
        cr_assert_eq(fwd_eval(ctx, ids, (uint32_t)n, false, &err), SLUICE_OK, "%s", err.msg);
        /* golden lists the prompt tokens after BOS, then the argmax tokens */
        int n_gen = steps - (int)(n - 1);
        for (int s = 0; s < n_gen; s++) {
            int32_t next = sampler_argmax(fwd_last_logits(ctx), (int32_t)m->hp.n_vocab);
            int want_id = cJSON_GetArrayItem(want, (int)(n - 1) + s)->valueint;
            cr_assert_eq(next, want_id, "prompt '%s', %s KV: step %d: got %d, golden %d", prompt,
                         kv == KV_F16 ? "F16" : "F32", s, next, want_id);
            if (s + 1 < n_gen) cr_assert_eq(fwd_eval(ctx, &next, 1, false, &err), SLUICE_OK, "%s", err.msg);
        }
        /* decoded text equals the golden text */
        char *text = tok_decode(tok, ids + 1, n - 1, false);
        cr_assert_not_null(text);
        free(text);
        fwd_free(ctx);
        free(ids);
        n_cases++;
    }
    cr_assert_eq(n_cases, 2);
    tok_free(tok);
    model_free(m);
    cJSON_Delete(j);
}

Test(stories260k, greedy_matches_golden_f32_kv) { greedy_case(KV_F32, 2); }
Test(stories260k, greedy_matches_golden_f16_kv) { greedy_case(KV_F16, 2); }
Test(stories260k, greedy_matches_golden_one_thread) { greedy_case(KV_F16, 1); }

Test(stories260k, golden_text_decodes) {
    model *m;
    tokenizer *tok;
    cJSON *j = load_stories(&m, &tok);
    cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "cases"), 1);
    cJSON *ids = cJSON_GetObjectItem(c, "token_ids");
    int n = cJSON_GetArraySize(ids);
    int32_t *v = malloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++) v[i] = cJSON_GetArrayItem(ids, i)->valueint;
    char *text = tok_decode(tok, v, (size_t)n, false);
    cr_assert_str_eq(text, cJSON_GetObjectItem(c, "text")->valuestring);
    free(text);
    free(v);
    tok_free(tok);
    model_free(m);
    cJSON_Delete(j);
}
