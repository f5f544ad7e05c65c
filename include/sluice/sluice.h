/* sluice.h — public basics shared by every sluice API: status codes, the
 * error record that carries a human-readable message, and the log hook. */
#ifndef SLUICE_SLUICE_H
#define SLUICE_SLUICE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define SLUICE_VERSION "0.1.0"

typedef enum sluice_status {
    SLUICE_OK = 0,
    SLUICE_ERR_IO,          /* open/read/write/mmap failed */
    SLUICE_ERR_FORMAT,      /* malformed input file or data */
    SLUICE_ERR_UNSUPPORTED, /* valid input we do not handle (type, arch) */
    SLUICE_ERR_NOMEM,       /* allocation failed */
    SLUICE_ERR_ARG,         /* bad argument from the caller */
    SLUICE_ERR_RANGE,       /* value out of range (context full, token id) */
    SLUICE_ERR_FULL,        /* KV cache full: retry when sequences have finished */
} sluice_status;

/* Error record filled by any call that can fail. The message names what is
 * wrong and where (file, byte offset, key, field). Zero-initialise it. */
typedef struct sluice_error {
    sluice_status status;
    char msg[512];
} sluice_error;

/* Sets err (may be NULL) to status + formatted message; returns status. */
sluice_status sluice_fail(sluice_error *err, sluice_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Short name of a status code ("format error", ...). Never NULL. */
const char *sluice_status_str(sluice_status s);

typedef enum sluice_log_level { SLUICE_LOG_DEBUG, SLUICE_LOG_INFO, SLUICE_LOG_WARN, SLUICE_LOG_ERROR } sluice_log_level;
typedef void (*sluice_log_fn)(sluice_log_level level, const char *msg, void *user);

/* Replace the log sink (default: stderr, INFO and up). fn NULL restores it. */
void sluice_set_log(sluice_log_fn fn, void *user, sluice_log_level min_level);
void sluice_log(sluice_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
