/* tokenizer.h — text <-> token ids from a GGUF file's tokenizer.ggml.*
 * metadata: SentencePiece-style (model "llama": scores, byte fallback,
 * dummy prefix) and byte-level BPE (model "gpt2": merges, pre-tokenizer
 * chosen by tokenizer.ggml.pre). Matches llama.cpp's tokenizer outputs. */
#ifndef SLUICE_TEXT_TOKENIZER_H
#define SLUICE_TEXT_TOKENIZER_H
#include "model/gguf.h"
#include "sluice/sluice.h"

typedef struct tokenizer tokenizer;

typedef enum tok_kind { TOK_SPM, TOK_BPE } tok_kind;

/* Builds a tokenizer from g's metadata. Copies everything it needs, so g
 * may be closed afterwards. Unknown model/pre-tokenizer -> clear error. */
sluice_status tok_load(tokenizer **out, const gguf_file *g, sluice_error *err);
void tok_free(tokenizer *t); /* accepts NULL */

tok_kind tok_get_kind(const tokenizer *t);
int32_t tok_n_vocab(const tokenizer *t);
/* BOS / EOS ids, -1 if none. Without a tokenizer.ggml.*_token_id key the
 * llama.cpp defaults apply: SPM 1 / 2, BPE 11 / 11 (if in range). */
int32_t tok_bos(const tokenizer *t);
int32_t tok_eos(const tokenizer *t);
bool tok_add_bos_default(const tokenizer *t); /* tokenizer.ggml.add_bos_token or the model default */
bool tok_add_eos_default(const tokenizer *t);
/* End of generation: EOS, EOT, or another end-of-generation control token. */
bool tok_is_eog(const tokenizer *t, int32_t id);
/* The vocabulary text of a token as stored (e.g. "▁the", "<0x0A>"); NULL for out of range. */
const char *tok_piece(const tokenizer *t, int32_t id);
/* True for control, unknown and user-defined tokens (the ones the special-
 * token partition matches as whole tokens); false for out of range. */
bool tok_is_special(const tokenizer *t, int32_t id);

/* Encodes len bytes of text. add_bos/add_eos add those tokens (if the vocab
 * has them); parse_special recognises the text of control/unknown tokens in
 * the input (as llama.cpp's parse_special); user-defined tokens are always
 * recognised. SPM puts a dummy-prefix space before the text and after every
 * special token. Result is malloc'd in *ids (caller frees; never NULL on
 * success, even for 0 tokens), count in *n. Never fails on valid or invalid
 * UTF-8 input short of running out of memory (BPE: invalid bytes encode as
 * U+FFFD, as in llama.cpp; SPM: they become byte tokens). Thread-safe. */
sluice_status tok_encode(const tokenizer *t, const char *text, size_t len, bool add_bos, bool add_eos,
                         bool parse_special, int32_t **ids, size_t *n, sluice_error *err);

/* Bytes the token stands for in the output text (byte tokens -> the byte,
 * "▁" -> " ", byte-level BPE -> raw bytes, user-defined -> their text);
 * control and unknown tokens render as their text only if render_special.
 * No dummy-prefix handling (see tok_stream). Returns the byte count (may exceed cap: then
 * only cap bytes were written); -1 for an invalid id. */
int tok_token_bytes(const tokenizer *t, int32_t id, bool render_special, char *buf, size_t cap);

/* Incremental detokenizer for streaming: feed ids one at a time, get text
 * that is always whole UTF-8 (a multi-byte character split over tokens is
 * held back until complete; bytes that can never form a character come out
 * as U+FFFD). For SPM vocabularies with a dummy prefix, one leading space is
 * dropped from the first text token and from the first text token after a
 * control/user-defined token (exactly where the encoder inserted one), so
 * decoding inverts encoding. `first` is that "drop the next leading space"
 * flag: tok_stream_init sets it; clear it to keep the space (e.g. when the
 * stream continues text whose earlier tokens were not fed). */
typedef struct tok_stream {
    const tokenizer *t;
    bool render_special;
    bool first;
    unsigned char pending[8];
    int n_pending;
} tok_stream;
void tok_stream_init(tok_stream *s, const tokenizer *t, bool render_special);
/* Writes the text that id completes at out (NUL-terminated, cap bytes incl.
 * NUL; callers append by passing the end of their buffer); returns the bytes
 * written (0 while a character is incomplete) or -1 if it does not fit or id
 * is invalid, in which case the stream state is unchanged. At most
 * (piece length + 3) * 3 + 1 bytes are needed. */
int tok_stream_feed(tok_stream *s, int32_t id, char *out, size_t cap);
/* Flushes held bytes (an incomplete trailing character is emitted as one
 * U+FFFD); returns the bytes written or -1 if cap is too small. */
int tok_stream_flush(tok_stream *s, char *out, size_t cap);

/* Whole-sequence decode to a malloc'd NUL-terminated string (NULL on OOM):
 * the tokens' bytes concatenated, with the SPM dummy-prefix rule of
 * tok_stream and no UTF-8 repair (raw bytes, so SPM byte tokens round-trip
 * any valid UTF-8 and most invalid input). Invalid ids are skipped. Unlike llama_detokenize it does not
 * apply clean_up_tokenization_spaces (so decode(encode(s)) == s). */
char *tok_decode(const tokenizer *t, const int32_t *ids, size_t n, bool render_special);
/* Same, also giving the length (the text may contain NUL bytes). */
char *tok_decode_n(const tokenizer *t, const int32_t *ids, size_t n, bool render_special, size_t *out_len);
#endif
