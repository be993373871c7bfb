/* Zip archives for .npz (see zip.h). Format: PKWARE APPNOTE 6.3. */
#include <zlib.h>

#include "io/zip.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CDIR 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define MAX_ENTRIES 1000000u

#define BAD(...) sgi_error(SG_ERR_FORMAT, __VA_ARGS__)

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Zip64 extended information: the 64-bit values of the fields that were 0xffffffff. */
static int zip64_extra(const uint8_t *ex, size_t exlen, uint64_t *usize, uint64_t *csize,
                       uint64_t *off) {
    size_t i = 0;
    while (i + 4 <= exlen) {
        uint16_t id = ld16(ex + i), sz = ld16(ex + i + 2);
        if (i + 4 + sz > exlen) return 0;
        if (id == 1) {
            const uint8_t *p = ex + i + 4;
            size_t left = sz;
            uint64_t *f[3] = {usize, csize, off};
            for (int k = 0; k < 3; k++) {
                if (*f[k] != 0xffffffffu) continue;
                if (left < 8) return 0;
                *f[k] = sgi_ld64(p);
                p += 8;
                left -= 8;
            }
            return 1;
        }
        i += 4 + (size_t)sz;
    }
    return 1;
}

enum sg_status sgi_zip_list(const uint8_t *buf, size_t len, const char *what,
                            struct sgi_zip_entry **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    if (len < 22) return BAD("%s: not a zip archive (too short)", what);
    /* the end record is in the last 64 KB + 22 bytes (its comment is at most 64 KB) */
    size_t eocd = (size_t)-1;
    for (size_t i = len - 22 + 1; i-- > 0 && len - i <= 65557;)
        if (sgi_ld32(buf + i) == SIG_EOCD) {
            eocd = i;
            break;
        }
    if (eocd == (size_t)-1) return BAD("%s: not a zip archive (no end of central directory)", what);
    const uint8_t *e = buf + eocd;
    if (ld16(e + 4) != 0 || ld16(e + 6) != 0)
        return sgi_error(SG_ERR_UNSUPPORTED, "%s: multi-part zip archives are not supported", what);
    uint64_t count = ld16(e + 10), cd_size = sgi_ld32(e + 12), cd_off = sgi_ld32(e + 16);
    if (count == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        if (eocd < 20 || sgi_ld32(buf + eocd - 20) != SIG_LOC64)
            return BAD("%s: zip64 archive without its locator", what);
        uint64_t z = sgi_ld64(buf + eocd - 20 + 8);
        if (z > len || len - z < 56 || sgi_ld32(buf + z) != SIG_EOCD64)
            return BAD("%s: zip64 end record out of range", what);
        count = sgi_ld64(buf + z + 32);
        cd_size = sgi_ld64(buf + z + 40);
        cd_off = sgi_ld64(buf + z + 48);
    }
    if (cd_off > len || cd_size > len - cd_off)
        return BAD("%s: central directory (offset %llu, %llu bytes) runs past the end", what,
                   (unsigned long long)cd_off, (unsigned long long)cd_size);
    if (count > MAX_ENTRIES || count > cd_size / 46 + 1)
        return BAD("%s: %llu entries do not fit the central directory", what,
                   (unsigned long long)count);
    struct sgi_zip_entry *ents = calloc(count ? (size_t)count : 1, sizeof *ents);
    if (!ents) return sgi_error(SG_ERR_NOMEM, "out of memory");
    size_t p = (size_t)cd_off, end = (size_t)(cd_off + cd_size);
    enum sg_status st = SG_OK;
    uint64_t total = 0; /* uncompressed bytes of every entry: a reader may hold them all */
    for (uint64_t k = 0; k < count; k++) {
        struct sgi_zip_entry *en = &ents[k];
        if (end - p < 46 || sgi_ld32(buf + p) != SIG_CDIR) {
            st = BAD("%s: central directory entry %llu is damaged", what, (unsigned long long)k);
            break;
        }
        const uint8_t *c = buf + p;
        const uint16_t flags = ld16(c + 8), nlen = ld16(c + 28), xlen = ld16(c + 30),
                       clen = ld16(c + 32);
        en->method = ld16(c + 10);
        en->crc = sgi_ld32(c + 16);
        en->csize = sgi_ld32(c + 20);
        en->size = sgi_ld32(c + 24);
        uint64_t off = sgi_ld32(c + 42);
        if (end - p - 46 < (size_t)nlen + xlen + clen) {
            st = BAD("%s: central directory entry %llu runs past its end", what,
                     (unsigned long long)k);
            break;
        }
        if (nlen >= sizeof en->name) {
            st = BAD("%s: entry %llu has a %u-byte name", what, (unsigned long long)k, nlen);
            break;
        }
        memcpy(en->name, c + 46, nlen);
        en->name[nlen] = 0;
        if (!zip64_extra(c + 46 + nlen, xlen, &en->size, &en->csize, &off)) {
            st = BAD("%s: '%s': damaged zip64 field", what, en->name);
            break;
        }
        p += 46 + (size_t)nlen + xlen + clen;
        if (flags & 1) {
            st = sgi_error(SG_ERR_UNSUPPORTED, "%s: '%s' is encrypted", what, en->name);
            break;
        }
        if (en->method != 0 && en->method != 8) {
            st = sgi_error(SG_ERR_UNSUPPORTED, "%s: '%s' uses compression method %d (stored and "
                           "deflate are supported)", what, en->name, en->method);
            break;
        }
        if (off > len || len - off < 30 || sgi_ld32(buf + off) != SIG_LOCAL) {
            st = BAD("%s: '%s': local header at %llu is missing", what, en->name,
                     (unsigned long long)off);
            break;
        }
        const uint64_t data = off + 30 + ld16(buf + off + 26) + ld16(buf + off + 28);
        if (data > len || en->csize > len - data) {
            st = BAD("%s: '%s': data (%llu bytes at %llu) runs past the end", what, en->name,
                     (unsigned long long)en->csize, (unsigned long long)data);
            break;
        }
        /* deflate expands at most about 1032:1: larger claims are lies */
        if ((en->method == 0 && en->size != en->csize) ||
            (en->method == 8 && en->size / 1032 > en->csize + 64)) {
            st = BAD("%s: '%s': sizes %llu and %llu are inconsistent", what, en->name,
                     (unsigned long long)en->csize, (unsigned long long)en->size);
            break;
        }
        en->data = buf + data;
        /* entries may share their compressed bytes (a zip bomb): count each one */
        total += en->size;
        if (total > sg_alloc_limit()) {
            st = sgi_error(SG_ERR_LIMIT, "%s: the entries inflate to more than the memory limit "
                           "(%zu bytes)", what, sg_alloc_limit());
            break;
        }
    }
    if (st != SG_OK) {
        free(ents);
        return st;
    }
    *out = ents;
    *n_out = (size_t)count;
    return SG_OK;
}

enum sg_status sgi_zip_extract(const struct sgi_zip_entry *e, const char *what,
                               const uint8_t **data, uint8_t **owned) {
    *owned = NULL;
    if (e->method == 0) {
        *data = e->data;
    } else {
        if (e->size > SIZE_MAX / 2) return sgi_error(SG_ERR_LIMIT, "%s: '%s' is too large", what, e->name);
        if (!sgi_alloc_ok((size_t)e->size, 1)) return sgi_error_prefix(SG_ERR_LIMIT, what);
        uint8_t *o = malloc(e->size ? (size_t)e->size : 1);
        if (!o) return sgi_error(SG_ERR_NOMEM, "%s: '%s': out of memory", what, e->name);
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (inflateInit2(&zs, -15) != Z_OK) {
            free(o);
            return sgi_error(SG_ERR_NOMEM, "out of memory");
        }
        /* zlib counts in uInt: feed and drain in chunks */
        uint64_t in_left = e->csize, out_left = e->size;
        const uint8_t *ip = e->data;
        uint8_t *op = o;
        int rc = Z_OK;
        while (rc == Z_OK) {
            if (zs.avail_in == 0 && in_left) {
                zs.next_in = (Bytef *)ip;
                zs.avail_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
                ip += zs.avail_in;
                in_left -= zs.avail_in;
            }
            if (zs.avail_out == 0) {
                if (!out_left) break;
                zs.next_out = op;
                zs.avail_out = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
                op += zs.avail_out;
                out_left -= zs.avail_out;
            }
            rc = inflate(&zs, Z_NO_FLUSH);
            if (rc == Z_BUF_ERROR && (zs.avail_in || in_left) && (zs.avail_out || out_left)) rc = Z_OK;
        }
        const uint64_t produced = e->size - out_left - zs.avail_out;
        inflateEnd(&zs);
        if (rc != Z_STREAM_END || produced != e->size) {
            free(o);
            return BAD("%s: '%s': the compressed data is damaged", what, e->name);
        }
        *data = o;
        *owned = o;
    }
    /* sgi_crc32 takes size_t lengths */
    if (sgi_crc32(0, *data, (size_t)e->size) != e->crc) {
        free(*owned);
        *owned = NULL;
        return BAD("%s: '%s': CRC-32 mismatch (the archive is corrupted)", what, e->name);
    }
    return SG_OK;
}

static void put16(struct sgi_buf *b, uint16_t v) {
    sgi_buf_u8(b, (uint8_t)v);
    sgi_buf_u8(b, (uint8_t)(v >> 8));
}

void sgi_zip_add(struct sgi_zip_writer *z, const char *name, const void *head, size_t head_len,
                 const void *body, size_t body_len) {
    const size_t nlen = strlen(name), off = z->out.len, size = head_len + body_len;
    uint32_t crc = sgi_crc32(sgi_crc32(0, head, head_len), body, body_len);
    if (size > 0xfffffffeu || off > 0xfffffffeu || nlen > 0xffff) {
        z->out.failed = 2; /* too large for a plain zip: sgi_zip_finish reports it */
        return;
    }
    /* local header: version 2.0, no flags, stored, no time */
    sgi_buf_u32(&z->out, SIG_LOCAL);
    put16(&z->out, 20), put16(&z->out, 0), put16(&z->out, 0);
    put16(&z->out, 0), put16(&z->out, 0x21); /* time 0, date 1980-01-01 */
    sgi_buf_u32(&z->out, crc);
    sgi_buf_u32(&z->out, (uint32_t)size), sgi_buf_u32(&z->out, (uint32_t)size);
    put16(&z->out, (uint16_t)nlen), put16(&z->out, 0);
    sgi_buf_put(&z->out, name, nlen);
    sgi_buf_put(&z->out, head, head_len);
    sgi_buf_put(&z->out, body, body_len);
    /* its central directory record */
    sgi_buf_u32(&z->cdir, SIG_CDIR);
    put16(&z->cdir, 20), put16(&z->cdir, 20), put16(&z->cdir, 0), put16(&z->cdir, 0);
    put16(&z->cdir, 0), put16(&z->cdir, 0x21);
    sgi_buf_u32(&z->cdir, crc);
    sgi_buf_u32(&z->cdir, (uint32_t)size), sgi_buf_u32(&z->cdir, (uint32_t)size);
    put16(&z->cdir, (uint16_t)nlen), put16(&z->cdir, 0), put16(&z->cdir, 0);
    put16(&z->cdir, 0), put16(&z->cdir, 0), sgi_buf_u32(&z->cdir, 0);
    sgi_buf_u32(&z->cdir, (uint32_t)off);
    sgi_buf_put(&z->cdir, name, nlen);
    z->n++;
}

enum sg_status sgi_zip_finish(struct sgi_zip_writer *z, uint8_t **buf, size_t *len) {
    const size_t cd_off = z->out.len;
    if (z->out.failed == 2 || z->n > 0xfffe || cd_off + z->cdir.len > 0xfffffffeu) {
        sgi_zip_abort(z);
        return sgi_error(SG_ERR_LIMIT, ".npz larger than 4 GiB or with more than 65534 arrays");
    }
    sgi_buf_put(&z->out, z->cdir.data, z->cdir.len);
    sgi_buf_u32(&z->out, SIG_EOCD);
    put16(&z->out, 0), put16(&z->out, 0);
    put16(&z->out, (uint16_t)z->n), put16(&z->out, (uint16_t)z->n);
    sgi_buf_u32(&z->out, (uint32_t)z->cdir.len);
    sgi_buf_u32(&z->out, (uint32_t)cd_off);
    put16(&z->out, 0);
    if (z->out.failed || z->cdir.failed) {
        sgi_zip_abort(z);
        return sgi_error(SG_ERR_NOMEM, "out of memory writing a zip archive");
    }
    sgi_buf_free(&z->cdir);
    *buf = z->out.data;
    *len = z->out.len;
    memset(z, 0, sizeof *z);
    return SG_OK;
}

void sgi_zip_abort(struct sgi_zip_writer *z) {
    sgi_buf_free(&z->out);
    sgi_buf_free(&z->cdir);
    memset(z, 0, sizeof *z);
}
