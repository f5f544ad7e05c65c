/* model.h — a transformer checkpoint bound to a GGUF file: hyperparameters
 * read through the per-architecture key table (arch.c) and weight tensors
 * that point straight into the mapped file (never copied). */
#ifndef SLUICE_MODEL_MODEL_H
#define SLUICE_MODEL_MODEL_H
#include "model/gguf.h"

typedef enum rope_kind { ROPE_NORMAL, ROPE_NEOX } rope_kind;
typedef enum rope_scaling { ROPE_SCALING_NONE, ROPE_SCALING_LINEAR, ROPE_SCALING_YARN } rope_scaling;

/* Features of an architecture; the forward pass reads these, never names. */
typedef struct arch_desc {
    const char *name;       /* general.architecture value */
    rope_kind rope;
    bool qkv_bias;          /* attn_q/k/v.bias present (qwen2) */
    bool qk_norm;           /* per-head RMS norm of Q and K (qwen3) */
} arch_desc;

/* Architecture by general.architecture name, or NULL. */
const arch_desc *arch_find(const char *name);
/* Comma-separated list of supported names, for error messages. */
const char *arch_supported_list(void);

typedef struct model_hparams {
    uint32_t n_vocab;
    uint32_t n_embd;        /* model width */
    uint32_t n_layer;
    uint32_t n_head;        /* query heads */
    uint32_t n_head_kv;     /* key/value heads (GQA when < n_head) */
    uint32_t head_dim;      /* per-head size of Q/K (attention.key_length or n_embd/n_head) */
    uint32_t head_dim_v;    /* per-head size of V */
    uint32_t n_ff;          /* feed-forward width */
    uint32_t n_ctx_train;   /* context_length */
    uint32_t n_rot;         /* rope.dimension_count (<= head_dim) */
    float rms_eps;
    float rope_base;        /* rope.freq_base */
    rope_scaling scaling;
    float rope_freq_scale;  /* 1 / rope.scaling.factor */
    uint32_t n_ctx_orig;    /* rope.scaling.original_context_length (yarn) */
    float yarn_ext_factor;  /* 1 for yarn, 0 otherwise */
    float yarn_attn_factor;
    float yarn_beta_fast, yarn_beta_slow;
} model_hparams;

/* Tensor pointers per block; shapes as (ne0 = in, ne1 = out). */
typedef struct layer_weights {
    const gguf_tensor *attn_norm;              /* (n_embd) */
    const gguf_tensor *wq, *wk, *wv, *wo;      /* (n_embd, n_head*hd) (n_embd, n_kv*hd) ... (n_head*hd_v, n_embd) */
    const gguf_tensor *bq, *bk, *bv;           /* biases (qkv_bias), else NULL */
    const gguf_tensor *q_norm, *k_norm;        /* (head_dim) (qk_norm), else NULL */
    const gguf_tensor *ffn_norm;               /* (n_embd) */
    const gguf_tensor *w_gate, *w_up, *w_down; /* (n_embd, n_ff) (n_embd, n_ff) (n_ff, n_embd) */
} layer_weights;

typedef struct model {
    gguf_file *gguf;            /* owned */
    const arch_desc *arch;
    model_hparams hp;
    const gguf_tensor *tok_embd;   /* (n_embd, n_vocab) */
    const gguf_tensor *out_norm;   /* (n_embd) */
    const gguf_tensor *output;     /* (n_embd, n_vocab); == tok_embd when tied */
    bool tied_output;
    layer_weights *layers;         /* n_layer */
    uint64_t n_params;
    uint64_t weight_bytes;
} model;

/* Loads and validates a model: architecture known, every tensor present
 * with the expected shape and a compute type. ctx_override 0 keeps the
 * metadata context length. Error names the missing key/tensor. */
sluice_status model_load(model **out, const char *path, sluice_error *err);
/* Same over an already opened GGUF file; takes ownership of g (also on error). */
sluice_status model_from_gguf(model **out, gguf_file *g, const char *name, sluice_error *err);
void model_free(model *m); /* accepts NULL */
#endif
