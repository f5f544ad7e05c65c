/* test_sampler.c — sampling: greedy, filters, determinism by seed. */
#include <criterion/criterion.h>
#include <math.h>
#include "text/sampler.h"

static const float logits[6] = {1.0f, 3.0f, 2.9f, -1.0f, 0.5f, 3.0f};

Test(sampler, greedy_takes_argmax_lowest_id_on_ties) {
    sampler_params p = sampler_defaults();
    p.temp = 0;
    sampler *s = sampler_create(&p, 6);
    cr_assert_eq(sampler_sample(s, logits), 1);
    cr_assert_eq(sampler_argmax(logits, 6), 1);
    sampler_free(s);
}

Test(sampler, top_k_one_is_greedy_whatever_the_seed) {
    for (uint64_t seed = 0; seed < 50; seed++) {
        sampler_params p = {.temp = 1.5f, .top_k = 1, .top_p = 1, .repeat_penalty = 1, .seed = seed};
        sampler *s = sampler_create(&p, 6);
        cr_assert_eq(sampler_sample(s, logits), 1);
        sampler_free(s);
    }
}

static int draw_counts(sampler_params p, int *counts, int n) {
    sampler *s = sampler_create(&p, 6);
    for (int i = 0; i < n; i++) counts[sampler_sample(s, logits)]++;
    sampler_free(s);
    return 0;
}

Test(sampler, top_p_and_min_p_cut_the_tail) {
    int c[6] = {0};
    /* top-p 0.5: token 1 (p~.35) and 5 (same logit) cover > 0.5 -> only {1,5} */
    draw_counts((sampler_params){.temp = 1, .top_p = 0.5f, .repeat_penalty = 1, .seed = 3}, c, 2000);
    cr_assert_eq(c[0] + c[2] + c[3] + c[4], 0);
    cr_assert(c[1] > 800 && c[5] > 800, "%d %d", c[1], c[5]);
    int d[6] = {0};
    /* min-p 0.5: keep p >= 0.5 * p_max: tokens 1, 5, 2 (e^-0.1) ; 0 is e^-2 */
    draw_counts((sampler_params){.temp = 1, .top_p = 1, .min_p = 0.5f, .repeat_penalty = 1, .seed = 4}, d, 3000);
    cr_assert_eq(d[0] + d[3] + d[4], 0);
    cr_assert(d[2] > 700, "%d", d[2]);
}

Test(sampler, temperature_distribution_matches_softmax) {
    int c[6] = {0};
    const int N = 60000;
    draw_counts((sampler_params){.temp = 2.0f, .top_p = 1, .repeat_penalty = 1, .seed = 9}, c, N);
    double z = 0, p[6];
    for (int i = 0; i < 6; i++) z += exp(logits[i] / 2.0);
    for (int i = 0; i < 6; i++) {
        p[i] = exp(logits[i] / 2.0) / z;
        double sd = sqrt(p[i] * (1 - p[i]) / N);
        cr_assert_lt(fabs(c[i] / (double)N - p[i]), 5 * sd + 1e-4, "token %d: %f vs %f", i, c[i] / (double)N, p[i]);
    }
}

Test(sampler, same_seed_same_tokens_other_seed_differs) {
    sampler_params p = sampler_defaults();
    p.temp = 1.0f; p.top_k = 0; p.top_p = 1; p.min_p = 0;
    int a[64], b[64], c[64];
    for (int k = 0; k < 3; k++) {
        p.seed = k == 2 ? 777 : 123;
        sampler *s = sampler_create(&p, 6);
        for (int i = 0; i < 64; i++) (k == 0 ? a : k == 1 ? b : c)[i] = sampler_sample(s, logits);
        sampler_free(s);
    }
    cr_assert_arr_eq(a, b, sizeof a);
    int same = 0;
    for (int i = 0; i < 64; i++) same += a[i] == c[i];
    cr_assert_lt(same, 64);
}

Test(sampler, repetition_penalty_discourages_recent_tokens) {
    sampler_params p = {.temp = 0, .top_p = 1, .repeat_penalty = 2.0f, .repeat_last_n = 4};
    sampler *s = sampler_create(&p, 6);
    sampler_accept(s, 1);
    sampler_accept(s, 5);
    /* 3.0 / 2 = 1.5 for tokens 1 and 5 -> 2 (2.9) wins */
    cr_assert_eq(sampler_sample(s, logits), 2);
    for (int i = 0; i < 4; i++) sampler_accept(s, 3); /* 1 and 5 fall out of the window */
    cr_assert_eq(sampler_sample(s, logits), 1);
    sampler_free(s);
}
