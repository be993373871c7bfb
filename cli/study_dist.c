/* The granularity study over MPI ranks (mpirun or srun; see docs/mpi.md).
 *
 * Every rank's main process plays the part the single-process study gives its
 * parent: it forks workers (study_run_tasks) that run the tasks exactly as they run
 * there, one chain per worker on one thread, so a chain's points do not depend on
 * where it ran. Task i of a phase belongs to rank i mod ranks. Rank 0 owns
 * points.jsonl: its workers append as in one process; a worker elsewhere writes its
 * finished point into a pipe to its rank, which sends it to rank 0, which appends it
 * with the same rule (the model file is complete, then one write and an fsync). At
 * the end of each phase rank 0 rereads the file and sends its points to every rank,
 * which is all a later task reads (the model files come from the shared folder).
 *
 * Only the main processes speak MPI; workers never do (they are forked after
 * MPI_Init and end with _exit). A failure anywhere ends the job with MPI_Abort:
 * every file is complete or absent at any moment, so the same command resumes. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"
#include "study.h"

static int g_done; /* rank 0: ranks that finished the current phase */

/* ---- rank 0: the other ranks' points and their end-of-phase notes ---- */
static int take_messages(struct study *st) {
    for (;;) {
        int src, tag;
        size_t bytes;
        const int r = dist_probe(&src, &tag, &bytes);
        if (r <= 0) return r < 0;
        if (tag == DIST_TAG_POINT && bytes == sizeof(struct sg_point)) {
            struct sg_point p;
            /* rank src saved the point's model file (fsync, rename) before sending */
            if (dist_recv(src, tag, &p, sizeof p) || study_append_point(st, &p)) return 1;
        } else if (tag == DIST_TAG_DONE && bytes == sizeof(int)) {
            int v;
            if (dist_recv(src, tag, &v, sizeof v)) return 1;
            g_done++;
        } else {
            return cli_fail("rank 0: unexpected message from rank %d (tag %d, %zu bytes); are "
                            "all ranks running the same sparsegrain?",
                            src, tag, bytes);
        }
    }
}

/* ---- ranks > 0: points from this rank's workers, on to rank 0 ---- */
static int g_pipe[2] = {-1, -1};
static union {
    struct sg_point p;
    char b[sizeof(struct sg_point)];
} g_rec; /* a record read in part */
static size_t g_rlen;

static int relay_points(struct study *st) {
    (void)st;
    for (;;) {
        const ssize_t r = read(g_pipe[0], g_rec.b + g_rlen, sizeof g_rec - g_rlen);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (r <= 0) return cli_fail("rank %d: reading the workers' points: %s", dist_rank(),
                                    r < 0 ? strerror(errno) : "pipe closed");
        g_rlen += (size_t)r;
        if (g_rlen == sizeof g_rec) {
            if (dist_post(0, DIST_TAG_POINT, &g_rec, sizeof g_rec)) return 1;
            g_rlen = 0;
        }
    }
}

/* Rank 0's points (read from points.jsonl) on every rank; the struct is sent as
 * bytes, which is sound because every rank runs the same binary. */
static int share_points(struct sg_points *pts) {
    int64_t n = pts->n;
    if (dist_bcast(&n, sizeof n, 0)) return 1;
    if (dist_rank() != 0) {
        sg_points_free(pts);
        memset(pts, 0, sizeof *pts);
        if (n > 0 && !(pts->p = calloc((size_t)n, sizeof *pts->p))) return cli_fail("out of memory");
        pts->n = pts->cap = (int)n;
    }
    return dist_bcast(pts->p, (size_t)n * sizeof *pts->p, 0);
}

/* Each rank checks that it sees the study folder rank 0 prepared: a token that rank
 * 0 writes there must read back the same everywhere. */
static int check_shared_folder(struct study *st) {
    char token[256] = "";
    const char *path = study_path(st, ".mpi-check");
    char where[4096];
    snprintf(where, sizeof where, "%s", path);
    int bad = 0;
    if (dist_rank() == 0) {
        snprintf(token, sizeof token, "%s %ld %.9f\n", dist_host(), (long)getpid(), sg_now());
        if (sg_file_write_atomic(where, token, strlen(token)) != SG_OK) bad = cli_fail_status(SG_ERR_IO);
    }
    if (dist_bcast(token, sizeof token, 0)) return 1;
    if (!bad && dist_rank() != 0) {
        uint8_t *got = NULL;
        size_t len = 0;
        if (sg_file_read(where, sizeof token, 0, &got, &len) != SG_OK || len != strlen(token) ||
            memcmp(got, token, len) != 0)
            bad = cli_fail("rank %d on %s does not see the study folder %s that rank 0 prepared: "
                           "over MPI the folder must be on a file system every rank shares",
                           dist_rank(), dist_host(), st->dir);
        free(got);
    }
    int64_t v = bad;
    if (dist_allreduce_max_i64(&v, 1)) return 1;
    if (dist_rank() == 0) unlink(where);
    return v != 0;
}

int study_dist_setup(struct study *st, int setup_rc, struct sg_points *pts) {
    int hdr[2] = {setup_rc, st->threads};
    if (dist_bcast(hdr, sizeof hdr, 0)) dist_abort(1);
    if (hdr[0]) return 1; /* rank 0 said why */
    /* baselines must train on the same number of threads wherever they run */
    st->threads = hdr[1];
    if (check_shared_folder(st)) return 1;
    if (share_points(pts)) dist_abort(1);
    if (dist_rank() == 0) {
        st->poll = take_messages;
    } else {
        if (pipe(g_pipe) != 0 || fcntl(g_pipe[0], F_SETFL, O_NONBLOCK) != 0) {
            cli_fail("rank %d: cannot make a pipe: %s", dist_rank(), strerror(errno));
            dist_abort(1);
        }
        st->point_fd = g_pipe[1];
        st->poll = relay_points;
    }
    return 0;
}

int study_dist_phase(struct study *st, const struct task *tasks, int n, int workers, int threads,
                     const char *phase, struct sg_points *pts) {
    const int rank = dist_rank(), ranks = dist_size();
    struct task *mine = calloc((size_t)n + 1, sizeof *mine);
    if (!mine) {
        cli_fail("out of memory");
        dist_abort(1);
    }
    int k = 0;
    for (int i = rank; i < n; i += ranks) mine[k++] = tasks[i];
    st->known = pts;
    g_done = 0;
    int rc = study_run_tasks(st, mine, k, workers, threads, phase);
    free(mine);
    if (!rc) rc = st->poll(st); /* what the last worker left */
    if (rc) {
        if (cli_interrupted()) /* Ctrl-C, or mpirun/srun ending the job after a rank died */
            cli_fail("rank %d of %d (%s): stopped by a signal; stopping every rank (the same "
                     "command resumes the study)",
                     rank, ranks, dist_host());
        else
            cli_fail("rank %d of %d (%s): the %s phase failed; stopping every rank (the same "
                     "command resumes the study)",
                     rank, ranks, dist_host(), phase);
        dist_abort(1);
    }
    if (rank != 0) {
        const int zero = 0;
        if (dist_post(0, DIST_TAG_DONE, &zero, sizeof zero) || dist_flush()) dist_abort(1);
    } else {
        unsigned nap = 1000; /* microseconds, growing to 0.1 s */
        const double t0 = sg_now();
        while (g_done < ranks - 1) {
            if (take_messages(st)) dist_abort(1);
            if (g_done == ranks - 1) break;
            if (cli_is_tty())
                cli_progress_note("%s: rank 0 done; waiting for %d of %d ranks (%.0f s)", phase,
                                  ranks - 1 - g_done, ranks, sg_now() - t0);
            usleep(nap);
            if (nap < 100000) nap *= 2;
        }
        cli_progress_done();
        sg_points_free(pts);
        if (study_load_points(st, pts)) dist_abort(1);
    }
    if (share_points(pts)) dist_abort(1);
    st->known = pts;
    return 0;
}
