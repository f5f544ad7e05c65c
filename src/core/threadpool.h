/* threadpool.h — a fixed set of worker threads that run "task i of n" jobs.
 * Built for many tiny parallel steps per token: workers spin briefly before
 * sleeping, and the calling thread works too. Not re-entrant: one pool_run at
 * a time per pool. */
#ifndef SLUICE_CORE_THREADPOOL_H
#define SLUICE_CORE_THREADPOOL_H

/* Runs task `task` (0..n_tasks-1) on thread `thread` (0..pool_size-1). */
typedef void (*pool_task_fn)(void *ctx, int task, int thread);

typedef struct pool pool;

/* n_threads counts the caller; 1 means no worker threads. NULL on failure. */
pool *pool_create(int n_threads);
void pool_destroy(pool *p); /* accepts NULL */
int pool_size(const pool *p); /* 1 for a NULL pool */

/* Runs fn for every task index, returns when all are done. p may be NULL
 * (everything runs on the caller). */
void pool_run(pool *p, int n_tasks, pool_task_fn fn, void *ctx);

/* Number of online CPUs (at least 1). */
int pool_cpu_count(void);
#endif
