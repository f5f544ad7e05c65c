/* threadpool.c — spin-then-sleep worker pool (see threadpool.h). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Waiting: spin with pause, giving the core away with sched_yield every
 * YIELD_EVERY rounds (on a VM the scheduler may put a woken worker on the
 * caller's CPU; frequent yields let the two threads spread out again), and,
 * for workers, sleep on the condition variable after SPIN_ROUNDS. */
enum { SPIN_ROUNDS = 1 << 14, YIELD_EVERY = 64 };

static void spin_wait(int round) {
    if (round % YIELD_EVERY == YIELD_EVERY - 1) sched_yield();
    else cpu_relax();
}

struct worker_arg { pool *p; int id; int cpu; /* -1: not pinned */ };

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
    bool pinned;           /* caller and workers bound to one CPU each */
    cpu_set_t caller_mask; /* the caller's affinity before pool_create */
    pool_task_fn fn;
    void *ctx;
    int n_tasks;
};

static void run_tasks(pool *p, int thread) {
    int t;
    while ((t = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed)) < p->n_tasks)
        p->fn(p->ctx, t, thread);
}

static void pin_self(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *worker_main(void *arg) {
    struct worker_arg *a = arg;
    pool *p = a->p;
    if (a->cpu >= 0) pin_self(a->cpu);
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen) {
            if (++spins < SPIN_ROUNDS) { spin_wait(spins); continue; }
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

/* CPUs this process may run on (taskset / cgroup cpusets respected), in
 * ids[0..n); returns n (0 if unknown). */
static int allowed_cpus(int *ids, int cap) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < cap; c++)
        if (CPU_ISSET(c, &set)) ids[n++] = c;
    return n;
}

int pool_cpu_count(void) {
    int ids[CPU_SETSIZE];
    int n = allowed_cpus(ids, CPU_SETSIZE);
    if (n > 0) return n;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online < 1 ? 1 : (int)online;
}

pool *pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    /* Pin one thread per allowed CPU when there are enough of them: on VMs
     * the scheduler otherwise tends to stack a woken worker on the caller's
     * CPU, halving throughput for the rest of the run. SLUICE_NO_PIN=1 opts out. */
    int cpus[CPU_SETSIZE];
    int n_cpus = n_threads > 1 ? allowed_cpus(cpus, CPU_SETSIZE) : 0;
    const char *no_pin = getenv("SLUICE_NO_PIN");
    p->pinned = n_threads > 1 && n_threads <= n_cpus && !(no_pin && *no_pin && strcmp(no_pin, "0")) &&
                pthread_getaffinity_np(pthread_self(), sizeof p->caller_mask, &p->caller_mask) == 0;
    if (p->pinned) pin_self(cpus[0]);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        p->args = calloc((size_t)n_threads - 1, sizeof *p->args);
        if (!p->threads || !p->args) { free(p->threads); free(p->args); free(p); return NULL; }
        for (int i = 0; i < n_threads - 1; i++) {
            p->args[i] = (struct worker_arg){p, i + 1, p->pinned ? cpus[i + 1] : -1};
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
    if (p->pinned) pthread_setaffinity_np(pthread_self(), sizeof p->caller_mask, &p->caller_mask);
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
    for (int spins = 0; atomic_load_explicit(&p->workers_done, memory_order_acquire) < p->n - 1; spins++)
        spin_wait(spins);
}
