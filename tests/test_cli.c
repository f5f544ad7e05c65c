/* test_cli.c — the sluice command end to end: the built binary is run on
 * the real stories260K model and on files the test writes. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "engine/forward.h"
#include "text/tokenizer.h"
#include "testutil.h"

/* Runs a shell command line, returns its exit code; stdout (and stderr when
 * merge) in *out (malloc'd). */
static int sh(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    if (out) *out = buf; else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *stories(void) {
    const char *p = tu_model_file("stories260K.gguf");
    if (!p) cr_skip("stories260K.gguf not found: set SLUICE_MODELS");
    return strdup(p);
}

Test(cli, tokenize_prints_ids) {
    char *m = stories(), cmd[8192], *out;
    snprintf(cmd, sizeof cmd, "%s tokenize -m %s 'Once upon a time'", SLUICE_BIN, m);
    cr_assert_eq(sh(cmd, &out), 0);
    cr_assert_str_eq(out, "1 403 407 261 378\n");
    free(out);
    snprintf(cmd, sizeof cmd, "%s tokenize -m %s --no-bos 'Once upon a time'", SLUICE_BIN, m);
    cr_assert_eq(sh(cmd, &out), 0);
    cr_assert_str_eq(out, "403 407 261 378\n");
    free(out);
    free(m);
}

Test(cli, tokenize_works_with_a_vocab_only_file) {
    const char *v = tu_model_file("vocab/ggml-vocab-gpt-2.gguf");
    if (!v) cr_skip("vocab/ggml-vocab-gpt-2.gguf not found: set SLUICE_MODELS");
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd, "%s tokenize -m %s 'Hello world'", SLUICE_BIN, v);
    cr_assert_eq(sh(cmd, &out), 0);
    cr_assert_str_eq(out, "15496 995\n"); /* GPT-2 adds no BOS */
    free(out);
}

Test(cli, greedy_run_streams_the_golden_text) {
    char *m = stories(), cmd[8192], *out;
    const char *gj = tu_model_file("stories260K.greedy.json");
    char *txt = gj ? tu_read_file(gj, NULL) : NULL;
    cr_assert_not_null(txt);
    cJSON *j = cJSON_Parse(txt);
    const char *want = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "cases"), 1), "text")->valuestring;
    /* 4 prompt tokens + 60 generated = the 64 golden tokens */
    snprintf(cmd, sizeof cmd, "%s run -m %s -p 'Once upon a time' -n 60 --temp 0 2>/dev/null", SLUICE_BIN, m);
    cr_assert_eq(sh(cmd, &out), 0);
    char *expect = malloc(strlen(want) + 2);
    sprintf(expect, "%s\n", want);
    cr_assert_str_eq(out, expect);
    free(expect);
    free(out);
    /* same seed, same text; stats go to stderr */
    char *a, *b;
    snprintf(cmd, sizeof cmd, "%s run -m %s -p 'Lily' -n 40 --temp 1 --seed 7 2>/dev/null", SLUICE_BIN, m);
    cr_assert_eq(sh(cmd, &a), 0);
    cr_assert_eq(sh(cmd, &b), 0);
    cr_assert_str_eq(a, b);
    free(a); free(b);
    snprintf(cmd, sizeof cmd, "%s run -m %s -p 'Lily' -n 5 2>&1 >/dev/null", SLUICE_BIN, m);
    cr_assert_eq(sh(cmd, &out), 0);
    cr_assert(strstr(out, "generation: 5 tokens"), "%s", out);
    free(out);
    cJSON_Delete(j);
    free(txt);
    free(m);
}

Test(cli, greedy_run_on_vulkan_gives_the_golden_text) {
    char *m = stories(), cmd[8192], *out;
    const char *gj = tu_model_file("stories260K.greedy.json");
    char *txt = tu_read_file(gj, NULL);
    cJSON *j = cJSON_Parse(txt);
    const char *want = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "cases"), 1), "text")->valuestring;
    snprintf(cmd, sizeof cmd, "%s run -m %s -p 'Once upon a time' -n 60 --temp 0 --kv f32 --backend vulkan --device 0 2>&1",
             SLUICE_BIN, m);
    int rc = sh(cmd, &out);
    if (rc != 0 && (strstr(out, "Vulkan") || strstr(out, "vulkan"))) cr_skip("no usable Vulkan device: %s", out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(!strncmp(out, want, strlen(want)), "got: %s", out);
    cr_assert(strstr(out, "engine: vulkan"), "%s", out);
    free(out);
    cJSON_Delete(j);
    free(txt);
    free(m);
}

Test(cli, no_model_says_how_to_point_at_one) {
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd, "env -u SLUICE_MODELS %s run -p hi 2>&1", SLUICE_BIN);
    cr_assert_eq(sh(cmd, &out), 1);
    cr_assert(strstr(out, "SLUICE_MODELS") && strstr(out, "-m MODEL.gguf"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "SLUICE_MODELS=/nonexistent %s run -p hi 2>&1", SLUICE_BIN);
    cr_assert_eq(sh(cmd, &out), 1);
    cr_assert(strstr(out, "/nonexistent/stories260K.gguf"), "%s", out);
    free(out);
}

Test(cli, bad_files_and_options_are_clear_errors) {
    char cmd[8192], *out;
    const char *junk = tu_tmp_path("junk");
    FILE *f = fopen(junk, "wb");
    fputs("this is not a model", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s info %s 2>&1", SLUICE_BIN, junk);
    cr_assert_eq(sh(cmd, &out), 1);
    cr_assert(strstr(out, "byte 0: not a GGUF file"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s run -m %s -p x --temp banana 2>&1", SLUICE_BIN, junk);
    cr_assert_eq(sh(cmd, &out), 2);
    cr_assert(strstr(out, "--temp expects a number"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s frobnicate 2>&1", SLUICE_BIN);
    cr_assert_eq(sh(cmd, &out), 2);
    cr_assert(strstr(out, "unknown command 'frobnicate'"), "%s", out);
    free(out);
}

Test(cli, info_quantize_and_info_again) {
    char *m = stories(), cmd[8192], *out;
    snprintf(cmd, sizeof cmd, "%s info %s", SLUICE_BIN, m);
    cr_assert_eq(sh(cmd, &out), 0);
    cr_assert(strstr(out, "model: llama, 5 layers, width 64, ffn 172, heads 8 (kv 4, head size 8), vocab 512"), "%s", out);
    cr_assert(strstr(out, "F32         48 tensors"), "%s", out);
    cr_assert(strstr(out, "parameters: 292800"), "%s", out);
    cr_assert(strstr(out, "memory (CPU, context 2048, F16 KV): weights 1.12 MiB"), "%s", out);
    /* per Vulkan device (where there is one): the same weights, the F16
     * KV cache of 2048 positions (5 layers x 2 x 2048 x 32 x 2 bytes) */
    if (strstr(out, "memory (Vulkan device 0"))
        cr_assert(strstr(out, "weights 1.12 MiB + KV cache 1.25 MiB") && strstr(out, "device-local: fits"), "%s", out);
    free(out);
    char *q = strdup(tu_tmp_path("q8.gguf"));
    snprintf(cmd, sizeof cmd, "%s quantize %s %s Q8_0", SLUICE_BIN, m, q);
    cr_assert_eq(sh(cmd, &out), 0);
    free(out);
    snprintf(cmd, sizeof cmd, "%s info %s", SLUICE_BIN, q);
    cr_assert_eq(sh(cmd, &out), 0);
    /* 2-D tensors: 5 x 7 + embd + output = 37 Q8_0 except ffn_down (172 cols: not /32 -> F16) */
    cr_assert(strstr(out, "Q8_0        32 tensors"), "%s", out);
    cr_assert(strstr(out, "F16          5 tensors"), "%s", out);
    cr_assert(strstr(out, "F32         11 tensors"), "%s", out);
    cr_assert(strstr(out, "general.file_type"), "%s", out);
    free(out);
    /* the quantized model still tells the story's beginning */
    snprintf(cmd, sizeof cmd, "%s run -m %s -p 'Once upon a time' -n 8 --temp 0 2>/dev/null", SLUICE_BIN, q);
    cr_assert_eq(sh(cmd, &out), 0);
    cr_assert(!strncmp(out, "Once upon a time, there was a little", 36), "%s", out);
    free(out);
    remove(q);
    free(q);
    free(m);
}

/* perplexity: the figure equals llama.cpp's method recomputed here */
Test(cli, perplexity_matches_the_windowed_method) {
    char *m = stories(), cmd[8192], *out;
    const char *gj = tu_model_file("stories260K.greedy.json");
    char *txt = tu_read_file(gj, NULL);
    cJSON *j = cJSON_Parse(txt);
    const char *story = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "cases"), 0), "text")->valuestring;
    char *file = strdup(tu_tmp_path("ppl.txt"));
    FILE *f = fopen(file, "wb");
    fputs(story, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s perplexity -m %s -f %s --ctx 64 --json 2>/dev/null", SLUICE_BIN, m, file);
    cr_assert_eq(sh(cmd, &out), 0);
    cJSON *r = cJSON_Parse(out);
    cr_assert_not_null(r, "%s", out);
    double ppl = cJSON_GetObjectItem(r, "ppl")->valuedouble;
    int chunks = cJSON_GetObjectItem(r, "chunks")->valueint;

    model *mdl;
    tokenizer *tok;
    fwd_ctx *ctx;
    sluice_error err = {0};
    cr_assert_eq(model_load(&mdl, m, &err), SLUICE_OK);
    cr_assert_eq(tok_load(&tok, mdl->gguf, &err), SLUICE_OK);
    fwd_params p = {.n_ctx = 64, .kv = KV_F16};
    cr_assert_eq(fwd_create(&ctx, mdl, &p, &err), SLUICE_OK);
    int32_t *ids;
    size_t n;
    cr_assert_eq(tok_encode(tok, story, strlen(story), true, false, false, &ids, &n, &err), SLUICE_OK);
    cr_assert_eq(chunks, (int)(n / 64));
    double nll = 0;
    int count = 0;
    for (int c = 0; c < chunks; c++) {
        fwd_truncate(ctx, 0);
        /* evaluate one token at a time (a different path than the tool's batch) */
        for (int i = 0; i < 64; i++) {
            int32_t t = i == 0 ? 1 : ids[c * 64 + i];
            cr_assert_eq(fwd_eval(ctx, &t, 1, false, &err), SLUICE_OK);
            if (i >= 32 && i < 63) {
                const float *lg = fwd_last_logits(ctx);
                double mx = lg[0], s = 0;
                for (int v = 1; v < 512; v++) mx = lg[v] > mx ? lg[v] : mx;
                for (int v = 0; v < 512; v++) s += exp(lg[v] - mx);
                nll += log(s) + mx - lg[ids[c * 64 + i + 1]];
                count++;
            }
        }
    }
    double want = exp(nll / count);
    cr_assert_lt(fabs(ppl - want) / want, 1e-3, "tool %f vs recomputed %f", ppl, want);
    cr_assert(ppl > 1.0 && ppl < 20.0, "the model's own greedy story should be easy: %f", ppl);
    free(ids);
    fwd_free(ctx);
    tok_free(tok);
    model_free(mdl);
    cJSON_Delete(r);
    free(out);
    cJSON_Delete(j);
    free(txt);
    remove(file);
    free(file);
    free(m);
}

/* perplexity on Vulkan (all-logits batches) equals the CPU engine's */
Test(cli, perplexity_on_vulkan_equals_cpu) {
    char *m = stories(), cmd[8192], *out_cpu, *out_vk;
    const char *gj = tu_model_file("stories260K.greedy.json");
    char *txt = tu_read_file(gj, NULL);
    cJSON *j = cJSON_Parse(txt);
    const char *story = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "cases"), 0), "text")->valuestring;
    char *file = strdup(tu_tmp_path("ppl-vk.txt"));
    FILE *f = fopen(file, "wb");
    fputs(story, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s perplexity -m %s -f %s --ctx 64 --kv f32 --json --backend vulkan --device 0 2>&1",
             SLUICE_BIN, m, file);
    int rc = sh(cmd, &out_vk);
    if (rc != 0 && (strstr(out_vk, "Vulkan") || strstr(out_vk, "vulkan"))) cr_skip("no usable Vulkan device: %s", out_vk);
    cr_assert_eq(rc, 0, "%s", out_vk);
    snprintf(cmd, sizeof cmd, "%s perplexity -m %s -f %s --ctx 64 --kv f32 --json --backend cpu 2>/dev/null", SLUICE_BIN,
             m, file);
    cr_assert_eq(sh(cmd, &out_cpu), 0);
    const char *jv = strchr(out_vk, '{');
    cr_assert_not_null(jv, "%s", out_vk);
    cJSON *rv = cJSON_Parse(jv), *rc_ = cJSON_Parse(out_cpu);
    cr_assert(rv && rc_, "%s / %s", out_vk, out_cpu);
    double pv = cJSON_GetObjectItem(rv, "ppl")->valuedouble, pc = cJSON_GetObjectItem(rc_, "ppl")->valuedouble;
    cr_assert_lt(fabs(pv - pc) / pc, 1e-5, "perplexity Vulkan %f vs CPU %f", pv, pc);
    cr_assert_eq(cJSON_GetObjectItem(rv, "tokens_scored")->valueint, cJSON_GetObjectItem(rc_, "tokens_scored")->valueint);
    cJSON_Delete(rv), cJSON_Delete(rc_), cJSON_Delete(j);
    free(out_vk), free(out_cpu), free(txt);
    remove(file);
    free(file), free(m);
}

/* score: a JSON line per prompt, probabilities over the labels summing to
 * 1, the best label the one of highest log-probability, votes summing to
 * the samples asked for; bad requests are clear errors. */
Test(cli, score_labels_json) {
    char *m = stories(), cmd[8192], *out;
    snprintf(cmd, sizeof cmd,
             "%s score -m %s -p 'Once upon a time, there was a little' -p 'Lily went to the' "
             "--labels ' girl, boy, park' --samples 50 --seed 1 --json 2>/dev/null",
             SLUICE_BIN, m);
    cr_assert_eq(sh(cmd, &out), 0, "%s", out);
    char *line = out;
    for (int i = 0; i < 2; i++) {
        char *nl = strchr(line, '\n');
        cr_assert_not_null(nl, "%s", out);
        *nl = 0;
        cJSON *j = cJSON_Parse(line);
        cr_assert_not_null(j, "%s", line);
        cJSON *labels = cJSON_GetObjectItem(j, "labels"), *l;
        double sum = 0, best_lp = -1e300;
        int votes = 0;
        const char *best = NULL;
        cJSON_ArrayForEach(l, labels) {
            sum += cJSON_GetObjectItem(l, "p")->valuedouble;
            votes += cJSON_GetObjectItem(l, "votes")->valueint;
            double lp = cJSON_GetObjectItem(l, "logprob")->valuedouble;
            cr_assert_lt(lp, 0.0);
            if (lp > best_lp) best_lp = lp, best = cJSON_GetObjectItem(l, "label")->valuestring;
        }
        cr_assert_eq(cJSON_GetArraySize(labels), 3);
        cr_assert(fabs(sum - 1.0) < 1e-9, "p sums to %f", sum);
        cr_assert_eq(votes, 50);
        cr_assert_str_eq(cJSON_GetObjectItem(j, "best")->valuestring, best);
        if (i == 0) cr_assert_str_eq(best, " girl", "after 'a little' the story model says girl");
        cJSON_Delete(j);
        line = nl + 1;
    }
    free(out);
    snprintf(cmd, sizeof cmd, "%s score -m %s -p 'x' 2>&1", SLUICE_BIN, m);
    cr_assert_eq(sh(cmd, &out), 2);
    cr_assert(strstr(out, "--labels"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s score -m %s -p 'x' --labels ',,' 2>&1", SLUICE_BIN, m);
    cr_assert_eq(sh(cmd, &out), 2);
    cr_assert(strstr(out, "no label"), "%s", out);
    free(out);
    free(m);
}

Test(cli, bench_json_reports_both_tests) {
    char *m = stories(), cmd[8192], *out;
    snprintf(cmd, sizeof cmd, "%s bench -m %s -p 16 -n 8 -r 3 --json", SLUICE_BIN, m);
    cr_assert_eq(sh(cmd, &out), 0);
    cJSON *r = cJSON_Parse(out);
    cr_assert_not_null(r, "%s", out);
    cJSON *res = cJSON_GetObjectItem(r, "results");
    cr_assert_eq(cJSON_GetArraySize(res), 2);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(res, 0), "test")->valuestring, "pp16");
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(res, 1), "test")->valuestring, "tg8");
    for (int i = 0; i < 2; i++) {
        cJSON *x = cJSON_GetArrayItem(res, i);
        double med = cJSON_GetObjectItem(x, "tokens_per_s")->valuedouble;
        cr_assert(med > 0 && med >= cJSON_GetObjectItem(x, "min")->valuedouble &&
                  med <= cJSON_GetObjectItem(x, "max")->valuedouble);
    }
    cJSON_Delete(r);
    free(out);
    free(m);
}

/* bench --profile: on Vulkan (the first device, lavapipe in CI, under the
 * validation layer) the tg steps' profile table follows the results, and
 * --json carries it as "profile" with one step per generated token; on
 * the CPU engine a note, not an error. Skips without a Vulkan device. */
Test(cli, bench_profile_prints_the_table) {
    char *m = stories(), cmd[8192], *out;
    snprintf(cmd, sizeof cmd, "%s bench -m %s -p 4 -n 4 -r 1 --backend cpu --profile 2>&1", SLUICE_BIN, m);
    cr_assert_eq(sh(cmd, &out), 0, "%s", out);
    cr_assert(strstr(out, "profiling is for --backend vulkan"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "SLUICE_VK_VALIDATE=1 %s bench -m %s -p 4 -n 4 -r 1 --backend vulkan --device 0 --profile 2>&1",
             SLUICE_BIN, m);
    int rc = sh(cmd, &out);
    if (rc != 0 && (strstr(out, "Vulkan") || strstr(out, "vulkan"))) cr_skip("no usable Vulkan device: %s", out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "| op (shader variant) | dispatches | GPU ms | share % | µs/dispatch |"), "%s", out);
    cr_assert(strstr(out, "mul_mat_vec_"), "%s", out);
    cr_assert(strstr(out, "weight bytes read per token"), "%s", out);
    cr_assert(!strstr(out, "validation"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s bench -m %s -p 4 -n 4 -r 2 --backend vulkan --device 0 --profile --json", SLUICE_BIN,
             m);
    cr_assert_eq(sh(cmd, &out), 0, "%s", out);
    cJSON *r = cJSON_Parse(out);
    cr_assert_not_null(r, "%s", out);
    cJSON *p = cJSON_GetObjectItem(r, "profile");
    cr_assert(cJSON_IsObject(p), "%s", out);
    cr_assert_eq(cJSON_GetObjectItem(p, "steps")->valueint, 8, "2 runs of tg4: %s", out);
    cr_assert_eq(cJSON_GetObjectItem(p, "tokens")->valueint, 8, "%s", out);
    cr_assert_gt(cJSON_GetArraySize(cJSON_GetObjectItem(p, "ops")), 0);
    double ratio = cJSON_GetObjectItem(p, "weight_read_ratio")->valuedouble;
    cr_assert(ratio > 0.5 && ratio < 1.5, "weight read ratio %g", ratio);
    cJSON_Delete(r);
    free(out);
    free(m);
}

/* `sluice devices` always exits 0 and, with --json, lists each device with
 * its capabilities; auto never names a CPU device such as lavapipe. Runs
 * under the validation layer (exit 1 on any message). */
Test(cli, devices_json_lists_devices) {
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "SLUICE_VK_VALIDATE=1 %s devices --json", SLUICE_BIN);
    cr_assert_eq(sh(cmd, &out), 0, "%s", out);
    cJSON *r = cJSON_Parse(out);
    cr_assert_not_null(r, "%s", out);
    cJSON *devs = cJSON_GetObjectItem(r, "devices");
    cr_assert(cJSON_IsArray(devs));
    cJSON *pick = cJSON_GetObjectItem(r, "auto");
    cr_assert(cJSON_IsNull(pick) || cJSON_IsNumber(pick));
    if (cJSON_GetArraySize(devs) == 0) cr_assert(cJSON_IsString(cJSON_GetObjectItem(r, "error")), "%s", out);
    cJSON *d;
    cJSON_ArrayForEach(d, devs) {
        cr_assert(cJSON_IsString(cJSON_GetObjectItem(d, "name")));
        cr_assert(cJSON_IsString(cJSON_GetObjectItem(d, "driver_name")));
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(d, "subgroup_size")));
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(d, "max_storage_buffer_range")));
        cr_assert(cJSON_IsObject(cJSON_GetObjectItem(d, "kernels")));
        cJSON *q, *quirks = cJSON_GetObjectItem(d, "quirks");
        cr_assert(cJSON_IsArray(quirks), "each device lists its driver quirks");
        cJSON_ArrayForEach(q, quirks) {
            cr_assert(cJSON_IsString(cJSON_GetObjectItem(q, "name")));
            cr_assert(cJSON_IsString(cJSON_GetObjectItem(q, "reason")));
        }
        if (cJSON_GetObjectItem(d, "driver_id")->valueint == 13 /* lavapipe */)
            cr_assert_eq(cJSON_GetArraySize(quirks), 1, "lavapipe: the lane_rows quirk");
        if (cJSON_IsTrue(cJSON_GetObjectItem(d, "auto")))
            cr_assert_str_neq(cJSON_GetObjectItem(d, "type")->valuestring, "cpu");
    }
    cJSON_Delete(r);
    free(out);
    snprintf(cmd, sizeof cmd, "%s devices", SLUICE_BIN);
    cr_assert_eq(sh(cmd, &out), 0, "%s", out);
    cr_assert(strstr(out, "--backend auto uses") || strstr(out, "no Vulkan devices"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s devices --bogus 2>&1", SLUICE_BIN);
    cr_assert_eq(sh(cmd, &out), 2);
    free(out);
}
