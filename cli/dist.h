/* Distributed runs over MPI: the one interface between the CLI and MPI.
 *
 * Only cli/dist.c includes <mpi.h>, and only in the MPI build (make MPI=1, which
 * defines SG_MPI). Without it every function here is a serial stub: one rank of
 * one, collectives that do nothing, so callers need no #ifdef.
 *
 *     if (dist_init()) return 1;              // MPI_Init when started by mpirun/srun
 *     if (dist_size() > 1) { ... }            // rank dist_rank() of dist_size()
 *     dist_allreduce_sum_f32(grad, n);        // the same sum on every rank
 *     dist_finish();                          // sleeping barrier, MPI_Finalize
 *
 * MPI is initialised only when the environment says a launcher started us
 * (OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK): an MPI build run by hand behaves as
 * the serial build and never pays for MPI's start-up.
 *
 * Waits that may last long (a barrier while rank 0 trains a baseline, a broadcast
 * at the end of a phase) poll with growing naps instead of MPI's busy spin, so a
 * waiting rank leaves its core to the ranks that work.
 *
 * Errors: functions return 0 or 1 after printing "sparsegrain: error: ..." (the
 * CLI's convention). In a run of several ranks a failure that the other ranks
 * cannot know about must end the job: dist_abort. */
#ifndef SPARSEGRAIN_CLI_DIST_H
#define SPARSEGRAIN_CLI_DIST_H

#include <stddef.h>
#include <stdint.h>

/* Message tags between ranks (the study's point stream). */
enum { DIST_TAG_POINT = 1, DIST_TAG_DONE = 2 };

int dist_init(void);          /* 0, or 1 after printing why not */
int dist_rank(void);          /* 0 when not distributed */
int dist_size(void);          /* 1 when not distributed */
int dist_local_size(void);    /* ranks on this machine (1 when not distributed) */
/* Cores this rank may use: the CPUs the launcher bound it to (srun -c N, mpirun
 * --bind-to core), or else the machine's cores shared by its ranks; at least 1. */
int dist_cores(void);
int dist_available(void);     /* 1 in the MPI build */
const char *dist_host(void);  /* this rank's host name, for messages */

/* Collectives: every rank calls them in the same order. */
int dist_allreduce_sum_f32(float *buf, size_t n);      /* in place; blocking (short waits) */
int dist_allreduce_max_i64(int64_t *buf, int n);       /* in place; sleeping wait */
int dist_bcast(void *buf, size_t bytes, int root);     /* sleeping wait */
int dist_barrier(void);                                 /* sleeping wait */

/* Point to point. dist_post copies buf and sends in the background (the sender
 * never waits for a busy receiver); dist_flush waits until everything posted left. */
int dist_post(int dest, int tag, const void *buf, size_t bytes);
int dist_flush(void);
/* 1 when a message is waiting (its source, tag and size), 0 when none, -1 on error. */
int dist_probe(int *src, int *tag, size_t *bytes);
int dist_recv(int src, int tag, void *buf, size_t bytes);

/* Seconds spent inside dist_allreduce_sum_f32 and its number of calls. With
 * SG_DIST_PROFILE=1 in the environment a barrier precedes every reduction, so that
 * *wait holds the time spent waiting for the slowest rank and *seconds the
 * reduction alone (the barrier itself costs a little). */
void dist_allreduce_stats(double *seconds, double *wait, int64_t *calls);

/* Ends every rank of the job (MPI_Abort); without MPI, exit(code). */
_Noreturn void dist_abort(int code);
/* Sleeping barrier, then MPI_Finalize (nothing when not distributed). */
void dist_finish(void);

#endif
