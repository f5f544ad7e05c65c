/* test_core.c — thread pool, error records, file mapping. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "core/mapfile.h"
#include "core/threadpool.h"
#include "testutil.h"

typedef struct { atomic_int hits[257]; atomic_int bad_thread; int n_threads; } pool_probe;

static void probe_task(void *ctx, int task, int thread) {
    pool_probe *p = ctx;
    atomic_fetch_add(&p->hits[task], 1);
    if (thread < 0 || thread >= p->n_threads) atomic_fetch_add(&p->bad_thread, 1);
}

Test(threadpool, every_task_runs_exactly_once) {
    for (int nt = 1; nt <= 4; nt++) {
        pool *pl = pool_create(nt);
        cr_assert_not_null(pl);
        cr_assert_eq(pool_size(pl), nt);
        for (int round = 0; round < 300; round++) {
            pool_probe p = {.n_threads = nt};
            int n = 1 + round % 257;
            pool_run(pl, n, probe_task, &p);
            for (int i = 0; i < 257; i++) cr_assert_eq(atomic_load(&p.hits[i]), i < n ? 1 : 0, "nt %d round %d task %d", nt, round, i);
            cr_assert_eq(atomic_load(&p.bad_thread), 0);
        }
        pool_destroy(pl);
    }
    pool_probe p = {.n_threads = 1};
    pool_run(NULL, 5, probe_task, &p);
    cr_assert_eq(atomic_load(&p.hits[4]), 1);
}

Test(status, fail_formats_and_keeps_status) {
    sluice_error e = {0};
    cr_assert_eq(sluice_fail(&e, SLUICE_ERR_FORMAT, "bad %s at %d", "thing", 42), SLUICE_ERR_FORMAT);
    cr_assert_str_eq(e.msg, "bad thing at 42");
    cr_assert_eq(e.status, SLUICE_ERR_FORMAT);
    cr_assert_eq(sluice_fail(NULL, SLUICE_ERR_IO, "x"), SLUICE_ERR_IO);
    cr_assert_str_eq(sluice_status_str(SLUICE_ERR_RANGE), "out of range");
}

Test(mapfile, maps_contents_and_names_missing_files) {
    const char *path = tu_tmp_path("map");
    FILE *f = fopen(path, "wb");
    fputs("hello", f);
    fclose(f);
    mapfile m;
    sluice_error e = {0};
    cr_assert_eq(mapfile_open(&m, path, &e), SLUICE_OK);
    cr_assert_eq(m.size, 5);
    cr_assert_eq(memcmp(m.data, "hello", 5), 0);
    mapfile_close(&m);
    cr_assert_eq(mapfile_open(&m, "/no/such/file.gguf", &e), SLUICE_ERR_IO);
    cr_assert(strstr(e.msg, "/no/such/file.gguf"));
    cr_assert_eq(mapfile_open(&m, "/tmp", &e), SLUICE_ERR_IO);
    cr_assert(strstr(e.msg, "not a regular file"));
}
