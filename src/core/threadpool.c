/* threadpool.c — spin-then-sleep worker pool (see threadpool.h). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
#include "core/threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Waiting: spin with pause for SPIN_PAUSES rounds (a step takes microseconds),
 * then sched_yield (another process may hold the core our partner needs),
 * then, for workers, sleep on the condition variable. */
enum { SPIN_PAUSES = 1 << 12, SPIN_YIELDS = 1 << 8 };

struct worker_arg { pool *p; int id; };

struct pool {
    int n;                 /* threads including the caller */
    pthread_t *threads;    /* n-1 workers */
    struct worker_arg *args;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;       /* bumped once per pool_run */
    atomic_int next_task;
    atomic_int workers_done;
    atomic_bool quit;
    pool_task_fn fn;
    void *ctx;
    int n_tasks;
};

static void run_tasks(pool *p, int thread) {
    int t;
    while ((t = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed)) < p->n_tasks)
        p->fn(p->ctx, t, thread);
}

static void *worker_main(void *arg) {
    struct worker_arg *a = arg;
    pool *p = a->p;
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen) {
            ++spins;
            if (spins < SPIN_PAUSES) { cpu_relax(); continue; }
            if (spins < SPIN_PAUSES + SPIN_YIELDS) { sched_yield(); continue; }
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen) pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = atomic_load(&p->gen);
        if (atomic_load(&p->quit)) break;
        run_tasks(p, a->id);
        atomic_fetch_add_explicit(&p->workers_done, 1, memory_order_release);
    }
    return NULL;
}

int pool_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

pool *pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        p->args = calloc((size_t)n_threads - 1, sizeof *p->args);
        if (!p->threads || !p->args) { free(p->threads); free(p->args); free(p); return NULL; }
        for (int i = 0; i < n_threads - 1; i++) {
            p->args[i] = (struct worker_arg){p, i + 1};
            if (pthread_create(&p->threads[i], NULL, worker_main, &p->args[i]) != 0) {
                p->n = i + 1; /* keep the ones that started */
                break;
            }
        }
    }
    return p;
}

void pool_destroy(pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, true);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n - 1; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p->args);
    free(p);
}

int pool_size(const pool *p) { return p ? p->n : 1; }

void pool_run(pool *p, int n_tasks, pool_task_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->n == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&p->workers_done, 0, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, 0);
    for (int spins = 0; atomic_load_explicit(&p->workers_done, memory_order_acquire) < p->n - 1; spins++) {
        if (spins < SPIN_PAUSES) cpu_relax();
        else sched_yield();
    }
}
