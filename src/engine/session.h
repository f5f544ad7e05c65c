/* session.h — many sequences over one model at once: the labeling
 * workload's engine. A session owns a paged KV cache shared by all its
 * sequences (blocks of FWD_KV_BLOCK positions, reference counted), so
 *  - one step can evaluate a batch mixing prompt chunks of some sequences
 *    with single generation tokens of others (continuous batching);
 *  - a fork shares its parent's blocks (a partly filled last block is
 *    copied when either side first writes to it);
 *  - full blocks of a token prefix stay cached after their sequences end
 *    and are attached, not recomputed, to any later sequence that starts
 *    with the same tokens, until their memory is needed (least recently
 *    used first).
 * The KV cache is sized in tokens across all sequences; when it is full a
 * step fails with SLUICE_ERR_FULL and changes nothing.
 *
 * Sequence ids are small integers, valid from sess_seq_new / sess_seq_fork
 * to sess_seq_free. Positions are implicit: a sequence's tokens are
 * appended in order. */
#ifndef SLUICE_ENGINE_SESSION_H
#define SLUICE_ENGINE_SESSION_H
#include "engine/engine.h"

typedef struct sess sess;

typedef struct sess_params {
    bool no_prefix_cache; /* true: blocks are freed with their last sequence */
} sess_params;

/* Opens a session over e's KV cache (its context length in tokens is the
 * session's capacity). e must outlive it and must not be used for
 * engine_eval meanwhile. Fails with SLUICE_ERR_UNSUPPORTED on an engine
 * without multi-sequence support. */
sluice_status sess_create(sess **out, engine *e, const sess_params *p, sluice_error *err);
void sess_free(sess *s); /* accepts NULL */

/* A new, empty sequence. SLUICE_ERR_FULL when the id table is full. */
sluice_status sess_seq_new(sess *s, int32_t *id, sluice_error *err);
/* A new sequence holding what `parent` holds, sharing its KV blocks. */
sluice_status sess_seq_fork(sess *s, int32_t parent, int32_t *child, sluice_error *err);
/* Ends a sequence; its full blocks stay in the prefix cache (unless off). */
void sess_seq_free(sess *s, int32_t id);
/* Tokens a sequence holds; 0 for an unknown id. */
uint32_t sess_seq_len(const sess *s, int32_t id);
/* For an empty sequence: attaches the cached blocks of the longest cached
 * prefix of tokens[0..n) (whole blocks only, at most max_reuse tokens) and
 * returns the number of tokens the sequence now holds; the caller
 * evaluates the rest. */
uint32_t sess_seq_reuse_prefix(sess *s, int32_t id, const int32_t *tokens, uint32_t n, uint32_t max_reuse);

/* One entry of a batch: the token to append to sequence seq, and whether
 * its logits are wanted. */
typedef struct sess_entry {
    int32_t seq;
    int32_t token;
    bool logits;
} sess_entry;

/* Evaluates a batch: each entry's token is appended to its sequence
 * (entries of one sequence in order). The logits of the entries that want
 * them go to `logits` in batch order, n_vocab floats each. Errors, all
 * before anything changes: unknown sequence or bad token (SLUICE_ERR_ARG),
 * not enough free KV blocks even after evicting cached prefixes
 * (SLUICE_ERR_FULL), a sequence past the model's context length
 * (SLUICE_ERR_RANGE). */
sluice_status sess_decode(sess *s, const sess_entry *e, uint32_t n, float *logits, sluice_error *err);

typedef struct sess_stats {
    uint64_t tokens_computed;  /* tokens evaluated by sess_decode */
    uint64_t prefix_reused;    /* tokens attached from the prefix cache */
    uint32_t blocks_total, blocks_free, blocks_cached; /* cached: held by the prefix cache */
    uint32_t block_tokens;     /* positions per block */
} sess_stats;
sess_stats sess_get_stats(const sess *s);

/* Exact label scoring. For each of n_items prompts and each of n_cands
 * candidate continuations (token lists, tokenized in context by the
 * caller), logprob[i * n_cands + c] = log P(cand c | prompt i), the sum of
 * the per-token log-softmax values. Candidate prefixes are shared through
 * a trie (each trie node is evaluated once per prompt), prompts go through
 * the prefix cache, and all prompts advance together in batched steps.
 * Every prompt and candidate needs at least one token. The sequences used
 * are freed before returning. */
sluice_status sess_score(sess *s, const int32_t *const *prompts, const uint32_t *n_prompt, uint32_t n_items,
                         const int32_t *const *cands, const uint32_t *n_cand, uint32_t n_cands, double *logprob,
                         sluice_error *err);

/* p[c] = the candidates' probabilities normalized over the set at
 * temperature temp: exp(logprob[c] / temp) / sum (temp 1: the confidence
 * of a label; temp <= 0: 1 for the first best, 0 elsewhere). */
void sess_label_probs(const double *logprob, uint32_t n_cands, double temp, double *p);
/* Constrained sampling for self-consistency votes: k seeded draws from the
 * candidates alone (out[r] in 0..n_cands-1), with the probabilities of
 * sess_label_probs over the exact whole-candidate log-probabilities of
 * sess_score (normalized over the set once, not renormalized token by
 * token down the trie, which would favour candidates in sparse
 * branches). The same seed gives the same draws. */
void sess_sample_candidates(const double *logprob, uint32_t n_cands, uint32_t k, double temp, uint64_t seed,
                            uint32_t *out);
#endif
