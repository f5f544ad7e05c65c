/* log.c — the one mutable global of sluice: where log lines go. */
#include <stdarg.h>
#include <stdio.h>
#include "sluice/sluice.h"

static sluice_log_fn log_fn;
static void *log_user;
static sluice_log_level log_min = SLUICE_LOG_INFO;

void sluice_set_log(sluice_log_fn fn, void *user, sluice_log_level min_level) {
    log_fn = fn;
    log_user = user;
    log_min = min_level;
}

void sluice_log(sluice_log_level level, const char *fmt, ...) {
    if (level < log_min) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (log_fn) { log_fn(level, buf, log_user); return; }
    static const char *tag[] = {"debug", "info", "warn", "error"};
    fprintf(stderr, "sluice %s: %s\n", tag[level], buf);
}
