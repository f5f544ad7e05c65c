/* cmd_score.c — `sluice score`: exact log-probability of each candidate
 * label after a prompt (engine/session.h's sess_score), the labels'
 * probabilities normalized over the set (confidence), and optionally k
 * seeded votes restricted to the labels (self-consistency). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli/cli.h"
#include "engine/session.h"

#define MAX_LABELS 256
#define MAX_PROMPTS 4096

static void score_usage(void) {
    fprintf(stderr,
            "usage: sluice score [-m MODEL] -p TEXT [-p TEXT ...] --labels A,B,C [options]\n"
            "  -p, --prompt TEXT   a prompt (repeat for several: scored together in batches)\n"
            "  --labels LIST       candidate continuations, comma separated (each scored in the\n"
            "                      prompt's context: the tokens it adds after the prompt)\n"
            "  --samples K         also draw K votes restricted to the labels (default 0)\n"
            "  --temp T            temperature of the votes (default 1)  --seed S\n"
            "  --json              one JSON object per prompt\n"
            "  -t, --threads N  -c, --ctx N (KV cache tokens across all sequences)  --kv f16|f32\n"
            "  --backend auto|cpu|vulkan  --device N|NAME\n");
}

/* The label's tokens in the prompt's context: tokenize prompt + label and
 * keep what follows the prompt's own tokens when those are a prefix;
 * else (a merge across the boundary) the label alone. */
static bool label_tokens(tokenizer *tok, const int32_t *p, size_t np, const char *prompt, const char *label,
                         int32_t **out, size_t *n, sluice_error *err) {
    size_t lp = strlen(prompt), ll = strlen(label);
    char *both = malloc(lp + ll + 1);
    if (!both) return false;
    memcpy(both, prompt, lp);
    memcpy(both + lp, label, ll + 1);
    int32_t *ids = NULL;
    size_t nid = 0;
    sluice_status st = tok_encode(tok, both, lp + ll, np && p[0] == tok_bos(tok), false, false, &ids, &nid, err);
    free(both);
    if (st) return false;
    if (nid > np && !memcmp(ids, p, sizeof(int32_t) * np)) {
        memmove(ids, ids + np, sizeof(int32_t) * (nid - np));
        *out = ids, *n = nid - np;
        return true;
    }
    free(ids);
    return tok_encode(tok, label, ll, false, false, false, out, n, err) == SLUICE_OK;
}

int cmd_score(int argc, char **argv) {
    cli_opts o = {0};
    const char *prompts[MAX_PROMPTS];
    uint32_t n_items = 0;
    char *labels_arg = NULL;
    long samples = 0;
    double temp = 1.0;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { score_usage(); return 0; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(v = cli_value(argc, argv, &i))) return 2;
            if (n_items == MAX_PROMPTS) { fprintf(stderr, "sluice score: at most %d prompts\n", MAX_PROMPTS); return 2; }
            prompts[n_items++] = v;
        } else if (!strcmp(a, "--labels")) {
            if (!(v = cli_value(argc, argv, &i))) return 2;
            labels_arg = strdup(v);
        } else if (!strcmp(a, "--samples")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 0, 100000, &samples)) return 2;
        } else if (!strcmp(a, "--temp")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_float(a, v, 0, 100, &temp)) return 2;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = cli_value(argc, argv, &i))) return 2;
            char *end;
            seed = strtoull(v, &end, 10);
            if (*end || end == v) { fprintf(stderr, "sluice score: --seed expects an unsigned integer, got '%s'\n", v); return 2; }
        } else { fprintf(stderr, "sluice score: unknown option '%s'\n", a); score_usage(); return 2; }
    }
    if (!n_items || !labels_arg) {
        fprintf(stderr, "sluice score: %s is required\n", !n_items ? "-p TEXT" : "--labels A,B,C");
        score_usage();
        free(labels_arg);
        return 2;
    }
    const char *labels[MAX_LABELS];
    uint32_t n_labels = 0;
    for (char *save = NULL, *t = strtok_r(labels_arg, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n_labels == MAX_LABELS) { fprintf(stderr, "sluice score: at most %d labels\n", MAX_LABELS); free(labels_arg); return 2; }
        labels[n_labels++] = t;
    }
    if (!n_labels) { fprintf(stderr, "sluice score: --labels has no label\n"); free(labels_arg); return 2; }

    model *m;
    tokenizer *tok;
    engine *eng;
    if (!cli_load(&o, &m, &tok, &eng)) { free(labels_arg); return 1; }
    int rc = 1;
    sluice_error err = {0};
    sess *s = NULL;
    int32_t **pt = calloc(n_items, sizeof *pt), **lt = calloc((size_t)n_items * n_labels, sizeof *lt);
    size_t *npt = calloc(n_items, sizeof *npt), *nlt = calloc((size_t)n_items * n_labels, sizeof *nlt);
    double *lp = malloc(sizeof(double) * n_labels), *prob = malloc(sizeof(double) * n_labels);
    uint32_t *votes = malloc(sizeof(uint32_t) * (samples ? (size_t)samples : 1));
    if (!pt || !lt || !npt || !nlt || !lp || !prob || !votes) { sluice_fail(&err, SLUICE_ERR_NOMEM, "out of memory"); goto out; }
    if (sess_create(&s, eng, NULL, &err)) goto out;
    bool bos = tok_add_bos_default(tok);
    for (uint32_t i = 0; i < n_items; i++) {
        if (tok_encode(tok, prompts[i], strlen(prompts[i]), bos, false, false, &pt[i], &npt[i], &err)) goto out;
        if (!npt[i]) { sluice_fail(&err, SLUICE_ERR_ARG, "prompt %u is empty and the model has no BOS token", i + 1); goto out; }
        for (uint32_t c = 0; c < n_labels; c++) {
            size_t k = (size_t)i * n_labels + c;
            if (!label_tokens(tok, pt[i], npt[i], prompts[i], labels[c], &lt[k], &nlt[k], &err)) goto out;
            if (!nlt[k]) { sluice_fail(&err, SLUICE_ERR_ARG, "label '%s' has no tokens", labels[c]); goto out; }
        }
    }
    /* One batched call for all prompts when the labels tokenize the same
     * after each (the usual case); else one call per prompt. */
    bool same = true;
    for (uint32_t i = 1; i < n_items && same; i++)
        for (uint32_t c = 0; c < n_labels && same; c++) {
            size_t a = c, b = (size_t)i * n_labels + c;
            same = nlt[a] == nlt[b] && !memcmp(lt[a], lt[b], sizeof(int32_t) * nlt[a]);
        }
    double *all = malloc(sizeof(double) * n_items * n_labels);
    const int32_t **pp = malloc(sizeof *pp * n_items);
    uint32_t *np = malloc(sizeof *np * n_items);
    if (!all || !pp || !np) { free(all), free(pp), free(np); sluice_fail(&err, SLUICE_ERR_NOMEM, "out of memory"); goto out; }
    double t0 = cli_now();
    for (uint32_t i0 = 0; i0 < n_items; i0 += same ? n_items : 1) {
        uint32_t ni = same ? n_items : 1, nc[MAX_LABELS];
        const int32_t *cands[MAX_LABELS];
        for (uint32_t i = 0; i < ni; i++) pp[i] = pt[i0 + i], np[i] = (uint32_t)npt[i0 + i];
        for (uint32_t c = 0; c < n_labels; c++)
            cands[c] = lt[(size_t)i0 * n_labels + c], nc[c] = (uint32_t)nlt[(size_t)i0 * n_labels + c];
        if (sess_score(s, pp, np, ni, cands, nc, n_labels, all + (size_t)i0 * n_labels, &err)) {
            free(all), free(pp), free(np);
            goto out;
        }
    }
    double t_score = cli_now() - t0;
    free(pp), free(np);
    for (uint32_t i = 0; i < n_items; i++) {
        memcpy(lp, all + (size_t)i * n_labels, sizeof(double) * n_labels);
        sess_label_probs(lp, n_labels, 1.0, prob);
        uint32_t best = 0;
        for (uint32_t c = 1; c < n_labels; c++) best = lp[c] > lp[best] ? c : best;
        if (samples) sess_sample_candidates(lp, n_labels, (uint32_t)samples, temp, seed + i, votes);
        if (o.json) {
            cJSON *j = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(j, "labels");
            cJSON_AddStringToObject(j, "prompt", prompts[i]);
            cJSON_AddNumberToObject(j, "prompt_tokens", (double)npt[i]);
            for (uint32_t c = 0; c < n_labels; c++) {
                cJSON *l = cJSON_CreateObject();
                cJSON_AddStringToObject(l, "label", labels[c]);
                cJSON_AddNumberToObject(l, "tokens", (double)nlt[(size_t)i * n_labels + c]);
                cJSON_AddNumberToObject(l, "logprob", lp[c]);
                cJSON_AddNumberToObject(l, "p", prob[c]);
                if (samples) {
                    uint32_t cnt = 0;
                    for (long r = 0; r < samples; r++) cnt += votes[r] == c;
                    cJSON_AddNumberToObject(l, "votes", cnt);
                }
                cJSON_AddItemToArray(arr, l);
            }
            cJSON_AddStringToObject(j, "best", labels[best]);
            char *txt = cJSON_PrintUnformatted(j);
            puts(txt);
            free(txt);
            cJSON_Delete(j);
        } else {
            printf("%s\n", prompts[i]);
            for (uint32_t c = 0; c < n_labels; c++) {
                printf("  %-20s logprob %10.4f  p %.4f  (%zu tokens)", labels[c], lp[c], prob[c],
                       nlt[(size_t)i * n_labels + c]);
                if (samples) {
                    uint32_t cnt = 0;
                    for (long r = 0; r < samples; r++) cnt += votes[r] == c;
                    printf("  votes %u/%ld", cnt, samples);
                }
                printf("%s\n", c == best ? "  <- best" : "");
            }
        }
    }
    free(all);
    sess_stats st = sess_get_stats(s);
    fprintf(stderr, "scored %u prompt(s) x %u labels in %.3f s; tokens computed %llu, prefix tokens reused %llu\n",
            n_items, n_labels, t_score, (unsigned long long)st.tokens_computed, (unsigned long long)st.prefix_reused);
    rc = 0;
out:
    if (err.status) fprintf(stderr, "sluice score: %s\n", err.msg);
    for (uint32_t i = 0; pt && i < n_items; i++) free(pt[i]);
    for (size_t k = 0; lt && k < (size_t)n_items * n_labels; k++) free(lt[k]);
    free(pt), free(lt), free(npt), free(nlt), free(lp), free(prob), free(votes), free(labels_arg);
    sess_free(s);
    engine_free(eng);
    tok_free(tok);
    model_free(m);
    return rc;
}
