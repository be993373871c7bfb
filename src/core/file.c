/* Whole-file reads (with transparent gzip) and atomic writes (temp + fsync + rename). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "sgi.h"

/* Opens a regular file of at most max_bytes: *fd and its size, or an error naming it. */
static enum sg_status open_regular(const char *path, size_t max_bytes, int *fd, size_t *size) {
    *fd = open(path, O_RDONLY);
    if (*fd < 0) return sgi_error(SG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        return sgi_error(SG_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        close(*fd);
        return sgi_error(SG_ERR_LIMIT, "%s: %lld bytes exceeds the limit of %zu bytes", path,
                         (long long)st.st_size, max_bytes);
    }
    *size = (size_t)st.st_size;
    return SG_OK;
}

static enum sg_status read_raw(const char *path, size_t max_bytes, uint8_t **out, size_t *len) {
    int fd = -1;
    size_t n = 0;
    enum sg_status s = open_regular(path, max_bytes, &fd, &n);
    if (s != SG_OK) return s;
    uint8_t *buf = sgi_alloc(n + 1, 1);
    if (!buf) {
        close(fd);
        return SG_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            close(fd);
            free(buf);
            return sgi_error(SG_ERR_IO, "%s: read failed at byte %zu", path, got);
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return SG_OK;
}

enum sg_status sgi_gunzip(const char *path, const uint8_t *in, size_t inlen, size_t max_bytes,
                          uint8_t **out, size_t *len) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return sgi_error(SG_ERR_NOMEM, "%s: cannot start gzip decoder", path);
    size_t cap = inlen * 4 + 1024, n = 0;
    if (cap > max_bytes + 1) cap = max_bytes + 1;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        inflateEnd(&zs);
        return sgi_error(SG_ERR_NOMEM, "%s: out of memory inflating", path);
    }
    zs.next_in = (Bytef *)in;
    size_t in_left = inlen;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (n == cap) {
            if (cap > max_bytes) {
                rc = Z_MEM_ERROR;
                break;
            }
            size_t ncap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                inflateEnd(&zs);
                return sgi_error(SG_ERR_NOMEM, "%s: out of memory inflating", path);
            }
            buf = nb;
            cap = ncap;
        }
        uInt chunk_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        zs.avail_in = chunk_in;
        size_t room = cap - n;
        zs.next_out = buf + n;
        zs.avail_out = room > (1u << 30) ? (1u << 30) : (uInt)room;
        uInt before_out = zs.avail_out;
        rc = inflate(&zs, Z_NO_FLUSH);
        in_left -= chunk_in - zs.avail_in;
        n += before_out - zs.avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) break;
        if (rc == Z_BUF_ERROR && in_left == 0) break;
    }
    inflateEnd(&zs);
    if (rc == Z_MEM_ERROR || n > max_bytes) {
        free(buf);
        return sgi_error(SG_ERR_LIMIT, "%s: inflated size exceeds the limit of %zu bytes", path,
                         max_bytes);
    }
    if (rc != Z_STREAM_END) {
        free(buf);
        return sgi_error(SG_ERR_FORMAT, "%s: corrupt or truncated gzip data (%s)", path,
                         zs.msg ? zs.msg : "unexpected end of stream");
    }
    *out = buf;
    *len = n;
    return SG_OK;
}

enum sg_status sg_file_read(const char *path, size_t max_bytes, int gunzip, uint8_t **out,
                            size_t *len) {
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    size_t raw_max = gunzip ? (max_bytes > (SIZE_MAX >> 2) ? max_bytes : max_bytes * 2 + 4096)
                            : max_bytes;
    enum sg_status st = read_raw(path, raw_max, &raw, &rawlen);
    if (st != SG_OK) return st;
    if (gunzip && rawlen >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
        st = sgi_gunzip(path, raw, rawlen, max_bytes, out, len);
        free(raw);
        return st;
    }
    if (rawlen > max_bytes) {
        free(raw);
        return sgi_error(SG_ERR_LIMIT, "%s: %zu bytes exceeds the limit of %zu bytes", path,
                         rawlen, max_bytes);
    }
    *out = raw;
    *len = rawlen;
    return SG_OK;
}

enum sg_status sgi_file_map(const char *path, size_t max_bytes, struct sgi_map *m) {
    static const uint8_t empty[1];
    memset(m, 0, sizeof *m);
    int fd = -1;
    enum sg_status s = open_regular(path, max_bytes, &fd, &m->len);
    if (s != SG_OK) return s;
    m->p = empty;
    if (m->len > 0) {
        void *p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return sgi_error(e == ENOMEM ? SG_ERR_NOMEM : SG_ERR_IO, "%s: cannot map: %s", path,
                             strerror(e));
        }
        madvise(p, m->len, MADV_SEQUENTIAL);
        m->p = p;
        m->maplen = m->len;
    }
    close(fd);
    return SG_OK;
}

void sgi_map_release(const struct sgi_map *m, const void *p, size_t n) {
    if (!m || m->maplen == 0 || n == 0) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t base = (uintptr_t)m->p, end = base + m->maplen;
    uintptr_t lo = (uintptr_t)p, hi = lo + n;
    if (lo < base || hi > end) return;
    lo = (lo + page - 1) & ~(page - 1); /* whole pages inside the range only */
    if (hi != end) hi &= ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void sgi_map_copy(const struct sgi_map *m, void *dst, const void *src, size_t n) {
    const size_t chunk = (size_t)16 << 20;
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n > 0) {
        const size_t k = n < chunk ? n : chunk;
        memcpy(d, s, k);
        sgi_map_release(m, s, k);
        d += k;
        s += k;
        n -= k;
    }
}

void sgi_file_unmap(struct sgi_map *m) {
    if (m->maplen) munmap((void *)m->p, m->maplen);
    memset(m, 0, sizeof *m);
}

struct sg_writer {
    int fd;
    char *path, *tmp;
    int failed;
};

enum sg_status sg_writer_open(const char *path, struct sg_writer **out) {
    *out = NULL;
    struct sg_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path);
    if (!w) return sgi_error(SG_ERR_NOMEM, "out of memory");
    w->path = malloc(n + 1);
    w->tmp = malloc(n + 32);
    if (!w->path || !w->tmp) {
        free(w->path);
        free(w->tmp);
        free(w);
        return sgi_error(SG_ERR_NOMEM, "out of memory");
    }
    memcpy(w->path, path, n + 1);
    snprintf(w->tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        enum sg_status st =
            sgi_error(SG_ERR_IO, "%s: cannot create output file: %s", path, strerror(errno));
        free(w->path);
        free(w->tmp);
        free(w);
        return st;
    }
    *out = w;
    return SG_OK;
}

enum sg_status sg_writer_write(struct sg_writer *w, const void *buf, size_t len) {
    const uint8_t *p = buf;
    while (len > 0 && !w->failed) {
        ssize_t r = write(w->fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            w->failed = 1;
            return sgi_error(SG_ERR_IO, "%s: write failed: %s", w->path,
                             r < 0 ? strerror(errno) : "no space");
        }
        p += r;
        len -= (size_t)r;
    }
    return w->failed ? SG_ERR_IO : SG_OK;
}

static void writer_free(struct sg_writer *w) {
    free(w->path);
    free(w->tmp);
    free(w);
}

void sg_writer_abort(struct sg_writer *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    unlink(w->tmp);
    writer_free(w);
}

enum sg_status sg_writer_commit(struct sg_writer *w) {
    enum sg_status st = SG_OK;
    if (w->failed) st = SG_ERR_IO;
    else if (fsync(w->fd) != 0)
        st = sgi_error(SG_ERR_IO, "%s: fsync failed: %s", w->path, strerror(errno));
    if (close(w->fd) != 0 && st == SG_OK)
        st = sgi_error(SG_ERR_IO, "%s: close failed: %s", w->path, strerror(errno));
    w->fd = -1;
    if (st == SG_OK && rename(w->tmp, w->path) != 0)
        st = sgi_error(SG_ERR_IO, "%s: rename failed: %s", w->path, strerror(errno));
    if (st != SG_OK) {
        unlink(w->tmp);
        writer_free(w);
        return st;
    }
    /* Make the rename itself durable. */
    char *dup = strdup(w->path);
    if (dup) {
        int dfd = open(dirname(dup), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dup);
    }
    writer_free(w);
    return SG_OK;
}

enum sg_status sg_file_write_atomic(const char *path, const void *buf, size_t len) {
    struct sg_writer *w;
    enum sg_status st = sg_writer_open(path, &w);
    if (st != SG_OK) return st;
    st = sg_writer_write(w, buf, len);
    if (st != SG_OK) {
        sg_writer_abort(w);
        return st;
    }
    return sg_writer_commit(w);
}
