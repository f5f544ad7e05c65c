/* gguf.h — GGUF v2/v3 files: a reader over a memory map that checks every
 * count, offset, size and string before use, and a writer that produces
 * files the reader (and the GGUF ecosystem) loads.
 *
 * The reader never copies tensor data: tensor pointers and strings point
 * into the mapped file. Strings are (ptr, len) and NOT NUL-terminated. */
#ifndef SLUICE_MODEL_GGUF_H
#define SLUICE_MODEL_GGUF_H
#include "core/mapfile.h"
#include "model/quant.h"
#include "sluice/sluice.h"

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef enum gguf_vtype {
    GGUF_T_U8 = 0, GGUF_T_I8 = 1, GGUF_T_U16 = 2, GGUF_T_I16 = 3, GGUF_T_U32 = 4,
    GGUF_T_I32 = 5, GGUF_T_F32 = 6, GGUF_T_BOOL = 7, GGUF_T_STRING = 8,
    GGUF_T_ARRAY = 9, GGUF_T_U64 = 10, GGUF_T_I64 = 11, GGUF_T_F64 = 12,
    GGUF_T_COUNT
} gguf_vtype;

typedef struct gguf_str { const char *ptr; uint64_t len; } gguf_str;

/* One metadata value. Scalars are widened into u/i/f/b. Arrays keep their
 * element type and count; fixed-size elements are read in place from `raw`
 * (little-endian file bytes, possibly unaligned: use the gguf_arr_* getters);
 * string and array elements are parsed into `items`. */
typedef struct gguf_value {
    gguf_vtype type;
    union {
        uint64_t u;  /* U8 U16 U32 U64 */
        int64_t i;   /* I8 I16 I32 I64 */
        double f;    /* F32 F64 */
        bool b;      /* BOOL */
        gguf_str s;  /* STRING */
        struct {
            gguf_vtype elem;
            uint64_t n;
            const uint8_t *raw;        /* fixed-size elements */
            struct gguf_value *items;  /* STRING / ARRAY elements, n of them */
        } arr;
    };
} gguf_value;

typedef struct gguf_kv {
    gguf_str key;
    gguf_value val;
    uint64_t file_offset; /* where the key starts */
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] = row length (innermost); unused dims are 1 */
    qtype type;
    uint64_t offset;            /* relative to the data section */
    uint64_t n_elements;
    uint64_t n_bytes;
    const void *data;           /* into the map */
} gguf_tensor;

typedef struct gguf_file {
    mapfile map;                /* owned when opened from a path */
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    uint64_t data_offset;       /* start of the tensor data section */
    void *arena;                /* owned allocations (internal) */
    gguf_kv *kv_index_;         /* kv sorted by key (internal) */
    gguf_tensor **tensor_index_; /* tensors sorted by name (internal) */
} gguf_file;

/* Opens and validates a GGUF file. On error *out is left empty and err names
 * the file, the byte offset and what is wrong. Close with gguf_close. */
sluice_status gguf_open(gguf_file **out, const char *path, sluice_error *err);
/* Same over bytes in memory that the caller keeps alive (and owns). */
sluice_status gguf_parse(gguf_file **out, const uint8_t *data, size_t size, const char *name,
                         sluice_error *err);
void gguf_close(gguf_file *g); /* accepts NULL */

const gguf_kv *gguf_find(const gguf_file *g, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);

/* Typed getters: true when the key exists and converts losslessly (any
 * integer type to the requested width if in range; F32/F64 to float).
 * Leave *out untouched otherwise. */
bool gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out);
bool gguf_get_i32(const gguf_file *g, const char *key, int32_t *out);
bool gguf_get_f32(const gguf_file *g, const char *key, float *out);
bool gguf_get_bool(const gguf_file *g, const char *key, bool *out);
bool gguf_get_str(const gguf_file *g, const char *key, gguf_str *out);
/* Array value of the key with element type elem (any if GGUF_T_COUNT). */
const gguf_value *gguf_get_arr(const gguf_file *g, const char *key, gguf_vtype elem);

/* Element i of a fixed-size array, widened. */
double gguf_arr_f64(const gguf_value *arr, uint64_t i);
int64_t gguf_arr_i64(const gguf_value *arr, uint64_t i);

bool gguf_str_eq(gguf_str s, const char *c);
/* Copies s into buf as a NUL-terminated string (truncating); returns buf. */
char *gguf_str_copy(gguf_str s, char *buf, size_t cap);
const char *gguf_vtype_name(gguf_vtype t);
size_t gguf_vtype_size(gguf_vtype t); /* 0 for STRING/ARRAY/invalid */

/* ---- writer ---- */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_create(uint32_t alignment); /* 0 = default 32 */
void gguf_writer_free(gguf_writer *w);
/* Adds a key with a value; the value (and the strings/arrays it points to)
 * is deep-copied. Replaces an existing key of the same name. */
sluice_status gguf_writer_set(gguf_writer *w, const char *key, const gguf_value *val, sluice_error *err);
sluice_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
sluice_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
sluice_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
sluice_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
/* Adds a tensor; data (n_bytes of the type/shape) must stay alive until
 * gguf_writer_write. ne has n_dims entries, ne[0] innermost. */
sluice_status gguf_writer_add_tensor(gguf_writer *w, const char *name, qtype type, uint32_t n_dims,
                                     const uint64_t *ne, const void *data, sluice_error *err);
/* Writes the file (v3). */
sluice_status gguf_writer_write(gguf_writer *w, const char *path, sluice_error *err);
#endif
