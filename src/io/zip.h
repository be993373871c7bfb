/* A minimal zip reader and writer for .npz files (src/io/zip.c). Not installed.
 * Reading follows the central directory (with zip64 sizes and offsets), checks every
 * offset against the buffer, inflates deflated entries with zlib and checks CRC-32.
 * Writing stores entries uncompressed (what numpy.savez does). */
#ifndef SPARSEGRAIN_IO_ZIP_H
#define SPARSEGRAIN_IO_ZIP_H

#include "core/sgi.h"

struct sgi_zip_entry {
    char name[512];
    const uint8_t *data; /* compressed bytes inside the archive */
    uint64_t csize, size; /* compressed and uncompressed sizes */
    uint32_t crc;
    int method;          /* 0 stored, 8 deflate */
};

/* Lists the entries of the archive buf[0..len); *out is freed with free(). */
enum sg_status sgi_zip_list(const uint8_t *buf, size_t len, const char *what,
                            struct sgi_zip_entry **out, size_t *n);
/* The uncompressed bytes of e: *data points into the archive for stored entries, or
 * into *owned (to free) for deflated ones. The CRC-32 is checked either way. */
enum sg_status sgi_zip_extract(const struct sgi_zip_entry *e, const char *what,
                               const uint8_t **data, uint8_t **owned);

struct sgi_zip_writer {
    struct sgi_buf out, cdir;
    uint32_t n;
};
/* Appends an entry whose bytes are head followed by body (either may be empty). */
void sgi_zip_add(struct sgi_zip_writer *z, const char *name, const void *head, size_t head_len,
                 const void *body, size_t body_len);
/* Writes the central directory; on success *buf (to free) holds the archive. */
enum sg_status sgi_zip_finish(struct sgi_zip_writer *z, uint8_t **buf, size_t *len);
void sgi_zip_abort(struct sgi_zip_writer *z);

#endif
