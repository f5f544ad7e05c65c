/* sampler.h — picks the next token from logits: greedy, or a chain of
 * repetition penalty -> top-k -> top-p -> min-p -> temperature -> seeded
 * random draw (llama.cpp's default order). Same seed, same tokens. */
#ifndef SLUICE_TEXT_SAMPLER_H
#define SLUICE_TEXT_SAMPLER_H
#include <stdbool.h>
#include <stdint.h>

typedef struct sampler_params {
    float temp;            /* <= 0: greedy (argmax) */
    int32_t top_k;         /* <= 0: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off */
    float repeat_penalty;  /* 1: off */
    int32_t repeat_last_n; /* how many recent tokens the penalty looks at */
    uint64_t seed;
} sampler_params;

/* The defaults of `sluice run`: temp 0.8, top-k 40, top-p 0.95, min-p 0.05,
 * repeat penalty 1.0 over 64 tokens, seed 0. */
sampler_params sampler_defaults(void);

typedef struct sampler sampler;

/* NULL on out of memory. n_vocab is the logits length. */
sampler *sampler_create(const sampler_params *p, int32_t n_vocab);
void sampler_free(sampler *s); /* accepts NULL */
/* Chooses a token from logits (not modified). Ties in greedy go to the lowest id. */
int32_t sampler_sample(sampler *s, const float *logits);
/* Records a token in the history used by the repetition penalty (prompt
 * tokens too). sampler_sample does not record its own choice. */
void sampler_accept(sampler *s, int32_t token);

/* Argmax with ties to the lowest id. */
int32_t sampler_argmax(const float *logits, int32_t n);
#endif
