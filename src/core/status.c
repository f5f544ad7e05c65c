/* status.c — error records and status names. */
#include <stdarg.h>
#include <stdio.h>
#include "sluice/sluice.h"

sluice_status sluice_fail(sluice_error *err, sluice_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

const char *sluice_status_str(sluice_status s) {
    switch (s) {
    case SLUICE_OK: return "ok";
    case SLUICE_ERR_IO: return "I/O error";
    case SLUICE_ERR_FORMAT: return "format error";
    case SLUICE_ERR_UNSUPPORTED: return "unsupported";
    case SLUICE_ERR_NOMEM: return "out of memory";
    case SLUICE_ERR_ARG: return "bad argument";
    case SLUICE_ERR_RANGE: return "out of range";
    case SLUICE_ERR_FULL: return "KV cache full";
    }
    return "unknown status";
}
