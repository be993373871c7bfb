/* IDX files (LeCun's MNIST format): magic 0x00 0x00 type ndim, big-endian dims, data.
 * Only unsigned bytes (type 0x08) are accepted: that is what image sets use. */
#include "core/sgi.h"
#include "sparsegrain/data.h"

#define IDX_MAX_DIM 4
#define IDX_MAX_FILE ((size_t)4 << 30)

enum sg_status sg_idx_parse(const uint8_t *buf, size_t len, const char *what, int *ndim,
                            int64_t dims[4], const uint8_t **data) {
    if (len < 4)
        return sgi_error(SG_ERR_FORMAT, "%s: not an IDX file (only %zu bytes)", what, len);
    if (buf[0] != 0 || buf[1] != 0)
        return sgi_error(SG_ERR_FORMAT, "%s: not an IDX file (bad magic %02x %02x)", what,
                         buf[0], buf[1]);
    if (buf[2] != 0x08)
        return sgi_error(SG_ERR_UNSUPPORTED,
                         "%s: IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)",
                         what, buf[2]);
    int nd = buf[3];
    if (nd < 1 || nd > IDX_MAX_DIM)
        return sgi_error(SG_ERR_FORMAT, "%s: IDX file has %d dimensions (1 to %d allowed)", what,
                         nd, IDX_MAX_DIM);
    size_t header = 4 + 4 * (size_t)nd;
    if (len < header)
        return sgi_error(SG_ERR_FORMAT, "%s: truncated IDX header (%zu of %zu bytes)", what, len,
                         header);
    size_t count = 1;
    for (int i = 0; i < nd; i++) {
        uint32_t d = sgi_ld32be(buf + 4 + 4 * i);
        if (d == 0 || d > (1u << 31))
            return sgi_error(SG_ERR_FORMAT, "%s: IDX dimension %d is %u", what, i, d);
        if (!sgi_mul(count, d, &count) || count > IDX_MAX_FILE)
            return sgi_error(SG_ERR_LIMIT, "%s: IDX element count overflows the limit", what);
        dims[i] = d;
    }
    if (len - header < count)
        return sgi_error(SG_ERR_FORMAT, "%s: truncated IDX data: %zu of %zu bytes present", what,
                         len - header, count);
    if (len - header > count)
        return sgi_error(SG_ERR_FORMAT, "%s: %zu unexpected bytes after the IDX data", what,
                         len - header - count);
    *ndim = nd;
    *data = buf + header;
    return SG_OK;
}

enum sg_status sg_idx_read(const char *path, int *ndim, int64_t dims[4], uint8_t **data,
                           size_t *len) {
    uint8_t *buf;
    size_t n;
    enum sg_status st = sg_file_read(path, IDX_MAX_FILE, 1, &buf, &n);
    if (st != SG_OK) return st;
    const uint8_t *payload;
    st = sg_idx_parse(buf, n, path, ndim, dims, &payload);
    if (st != SG_OK) {
        free(buf);
        return st;
    }
    size_t plen = n - (size_t)(payload - buf);
    memmove(buf, payload, plen);
    *data = buf;
    *len = plen;
    return SG_OK;
}
