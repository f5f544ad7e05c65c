/* model_gen.h — writes random-weight llama/qwen2/qwen3 GGUF models of any
 * shape with our GGUF writer: test fixtures and benchmark models (the speed
 * of a kernel does not depend on the weight values). */
#ifndef SLUICE_MODEL_MODEL_GEN_H
#define SLUICE_MODEL_MODEL_GEN_H
#include "model/gguf.h"

typedef struct model_gen_spec {
    const char *arch;        /* "llama", "qwen2", "qwen3" */
    uint32_t n_vocab;        /* ignored when vocab_from is set (its size is used) */
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    uint32_t head_dim;       /* 0 = n_embd / n_head; else written as attention.key_length */
    bool tied;               /* no output.weight: output reuses token_embd */
    qtype wtype;             /* type of the 2-D weights: F32, F16 or BF16 */
    uint64_t seed;
    float rope_base;         /* 0 = 10000 */
    float rope_linear;       /* > 0: rope.scaling.type linear with this factor */
    float rope_yarn;         /* > 0: rope.scaling.type yarn with this factor */
    uint32_t yarn_orig_ctx;  /* rope.scaling.original_context_length for yarn */
    const char *vocab_from;  /* copy tokenizer.* keys from this GGUF, or NULL
                                for a small SentencePiece-style byte vocab */
} model_gen_spec;

/* Writes the model to path. Deterministic for a given spec. */
sluice_status model_gen_write(const model_gen_spec *s, const char *path, sluice_error *err);
#endif
