/* The MPI side of distributed runs (see dist.h), with serial stubs when the build
 * has no MPI. Nothing else in the project includes <mpi.h>. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dist.h"

#ifdef SG_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_local = 1;
static double g_ar_seconds, g_ar_wait;
static int64_t g_ar_calls;

/* The launchers we know set one of these in every process they start: Open MPI's
 * mpirun (OMPI_*), PMIx (Open MPI 4+, srun --mpi=pmix) and PMI-1/2 (MPICH's hydra,
 * srun --mpi=pmi2). */
static int launched_by_mpi(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") ||
           getenv("PMI_SIZE");
}

const char *dist_host(void) {
    static char host[256];
    if (!host[0] && gethostname(host, sizeof host - 1) != 0) strcpy(host, "?");
    return host;
}

int dist_cores(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1) online = 1;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0 && n < online) return n;
    }
    const long per = online / g_local;
    return per > 0 ? (int)per : 1;
}

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
int dist_local_size(void) { return g_local; }

void dist_allreduce_stats(double *seconds, double *wait, int64_t *calls) {
    *seconds = g_ar_seconds;
    *wait = g_ar_wait;
    *calls = g_ar_calls;
}

#ifdef SG_MPI

int dist_available(void) { return 1; }

static int g_init; /* MPI_Init done, MPI_Finalize not yet */

/* The message every failed MPI call prints: which rank, where, and the likely cause
 * (with MPI_ERRORS_RETURN a dead peer shows up here rather than as a crash). */
static int mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", rc);
    return cli_fail("rank %d of %d (%s): %s failed: %s; another rank has probably stopped",
                    g_rank, g_size, dist_host(), what, msg);
}

int dist_init(void) {
    if (g_init || !launched_by_mpi()) return 0;
    int provided = 0, rc;
    /* OpenMP and OpenBLAS threads exist, but only the main thread calls MPI. */
    if ((rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS)
        return cli_fail("MPI_Init failed (code %d)", rc);
    g_init = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_size(node, &g_local);
        MPI_Comm_free(&node);
    }
    return 0;
}

/* Polls a request with naps that grow from 20 us to 10 ms: a short wait stays
 * short, a long one costs no CPU (MPI's own blocking calls spin on the core). */
static int wait_req(MPI_Request *r, const char *what) {
    unsigned nap = 20;
    for (;;) {
        int done = 0, rc = MPI_Test(r, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, what);
        if (done) return 0;
        usleep(nap);
        if (nap < 10000) nap *= 2;
    }
}

/* MPI counts are int: long buffers go in pieces. */
#define CHUNK ((size_t)1 << 28)

int dist_allreduce_sum_f32(float *buf, size_t n) {
    if (g_size == 1) return 0;
    static int profile = -1;
    if (profile < 0) profile = getenv("SG_DIST_PROFILE") && atoi(getenv("SG_DIST_PROFILE")) > 0;
    double t0 = MPI_Wtime();
    if (profile) {
        int rc = MPI_Barrier(MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Barrier");
        const double t1 = MPI_Wtime();
        g_ar_wait += t1 - t0;
        t0 = t1;
    }
    for (size_t off = 0; off < n; off += CHUNK) {
        const int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce");
    }
    g_ar_seconds += MPI_Wtime() - t0;
    g_ar_calls++;
    return 0;
}

int dist_allreduce_max_i64(int64_t *buf, int n) {
    if (g_size == 1) return 0;
    MPI_Request r;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD, &r);
    return rc != MPI_SUCCESS ? mpi_fail(rc, "MPI_Iallreduce") : wait_req(&r, "MPI_Iallreduce");
}

int dist_bcast(void *buf, size_t bytes, int root) {
    if (g_size == 1) return 0;
    for (size_t off = 0; off < bytes; off += CHUNK) {
        const int cnt = (int)(bytes - off < CHUNK ? bytes - off : CHUNK);
        MPI_Request r;
        int rc = MPI_Ibcast((char *)buf + off, cnt, MPI_BYTE, root, MPI_COMM_WORLD, &r);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Ibcast");
        if (wait_req(&r, "MPI_Ibcast")) return 1;
    }
    return 0;
}

int dist_barrier(void) {
    if (g_size == 1) return 0;
    MPI_Request r;
    int rc = MPI_Ibarrier(MPI_COMM_WORLD, &r);
    return rc != MPI_SUCCESS ? mpi_fail(rc, "MPI_Ibarrier") : wait_req(&r, "MPI_Ibarrier");
}

/* Sends in flight: the buffer must live until MPI is done with it. */
#define MAX_POSTS 64
static struct post {
    MPI_Request req;
    void *buf;
} g_posts[MAX_POSTS];
static int g_nposts;

/* Drops finished sends; with wait_all, waits for every one. */
static int reap_posts(int wait_all) {
    int k = 0;
    for (int i = 0; i < g_nposts; i++) {
        int done = 0, rc;
        if (wait_all) rc = wait_req(&g_posts[i].req, "MPI_Isend"), done = rc == 0;
        else if ((rc = MPI_Test(&g_posts[i].req, &done, MPI_STATUS_IGNORE)) != MPI_SUCCESS)
            return mpi_fail(rc, "MPI_Isend");
        if (wait_all && rc) return 1;
        if (done) free(g_posts[i].buf);
        else g_posts[k++] = g_posts[i];
    }
    g_nposts = k;
    return 0;
}

int dist_post(int dest, int tag, const void *buf, size_t bytes) {
    if (reap_posts(0)) return 1;
    if (g_nposts == MAX_POSTS && reap_posts(1)) return 1;
    void *copy = malloc(bytes ? bytes : 1);
    if (!copy) return cli_fail("out of memory");
    memcpy(copy, buf, bytes);
    int rc = MPI_Isend(copy, (int)bytes, MPI_BYTE, dest, tag, MPI_COMM_WORLD, &g_posts[g_nposts].req);
    if (rc != MPI_SUCCESS) {
        free(copy);
        return mpi_fail(rc, "MPI_Isend");
    }
    g_posts[g_nposts++].buf = copy;
    return 0;
}

int dist_flush(void) { return reap_posts(1); }

int dist_probe(int *src, int *tag, size_t *bytes) {
    int flag = 0;
    MPI_Status s;
    int rc = MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &s);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Iprobe"), -1;
    if (!flag) return 0;
    int cnt = 0;
    MPI_Get_count(&s, MPI_BYTE, &cnt);
    *src = s.MPI_SOURCE;
    *tag = s.MPI_TAG;
    *bytes = (size_t)cnt;
    return 1;
}

int dist_recv(int src, int tag, void *buf, size_t bytes) {
    int rc = MPI_Recv(buf, (int)bytes, MPI_BYTE, src, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    return rc != MPI_SUCCESS ? mpi_fail(rc, "MPI_Recv") : 0;
}

_Noreturn void dist_abort(int code) {
    cli_progress_done();
    fflush(stdout);
    fflush(stderr);
    if (g_init && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

void dist_finish(void) {
    if (!g_init) return;
    dist_flush();
    dist_barrier();
    MPI_Finalize();
    g_init = 0;
}

#else /* serial build: one rank of one */

int dist_available(void) { return 0; }

/* The world size the launcher announced (0 when it did not say). */
static long env_world_size(void) {
    const char *s = getenv("OMPI_COMM_WORLD_SIZE");
    if (!s) s = getenv("PMI_SIZE");
    return s ? atol(s) : 0;
}


int dist_init(void) {
    /* Several copies of a serial build under mpirun would each run the whole job
     * into the same files: refuse rather than duplicate the work. */
    long n = env_world_size();
    const char *pr = getenv("PMIX_RANK");
    if (n > 1 || (pr && atol(pr) > 0))
        return cli_fail("started as one of %ld MPI processes, but this sparsegrain was built "
                        "without MPI; build it with 'make MPI=1' (Open MPI) or run one process",
                        n > 1 ? n : 2);
    (void)launched_by_mpi;
    return 0;
}

int dist_allreduce_sum_f32(float *buf, size_t n) { return (void)buf, (void)n, 0; }
int dist_allreduce_max_i64(int64_t *buf, int n) { return (void)buf, (void)n, 0; }
int dist_bcast(void *buf, size_t bytes, int root) { return (void)buf, (void)bytes, (void)root, 0; }
int dist_barrier(void) { return 0; }
int dist_post(int dest, int tag, const void *buf, size_t bytes) {
    (void)dest, (void)tag, (void)buf, (void)bytes;
    return cli_fail("no other rank to send to (serial build)");
}
int dist_flush(void) { return 0; }
int dist_probe(int *src, int *tag, size_t *bytes) { return (void)src, (void)tag, (void)bytes, 0; }
int dist_recv(int src, int tag, void *buf, size_t bytes) {
    (void)src, (void)tag, (void)buf, (void)bytes;
    return cli_fail("no other rank to receive from (serial build)");
}
_Noreturn void dist_abort(int code) {
    cli_progress_done();
    fflush(stdout);
    exit(code);
}
void dist_finish(void) {}

#endif
