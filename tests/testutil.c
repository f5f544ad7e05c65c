/* testutil.c — see testutil.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"

const char *tu_models_dir(void) {
    const char *d = getenv("SLUICE_MODELS");
    if (!d || !*d) d = getenv("SLUICE_MODELS_DEFAULT");
    struct stat st;
    if (!d || stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return d;
}

const char *tu_model_file(const char *name) {
    static char buf[4096];
    const char *d = tu_models_dir();
    if (!d) return NULL;
    snprintf(buf, sizeof buf, "%s/%s", d, name);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

const char *tu_tmp_path(const char *stem) {
    static char buf[4096];
    static unsigned counter;
    const char *d = getenv("SLUICE_TEST_TMP");
    if (!d || !*d) d = "/tmp";
    mkdir(d, 0777);
    snprintf(buf, sizeof buf, "%s/%s-%d-%u", d, stem, (int)getpid(), counter++);
    return buf;
}

uint32_t tu_rand_u32(tu_rng *r) {
    uint64_t x = r->s ? r->s : 0x9E3779B97F4A7C15ull;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    r->s = x;
    return (uint32_t)(x >> 32);
}

float tu_rand_uniform(tu_rng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)((tu_rand_u32(r) >> 8) * (1.0 / 16777216.0));
}

float tu_rand_normal(tu_rng *r) {
    double u1 = ((tu_rand_u32(r) >> 8) + 1.0) / 16777217.0;
    double u2 = (tu_rand_u32(r) >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

double tu_nmse(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[n] = 0; if (len) *len = (size_t)n; }
    return buf;
}
