/* Shared bits of the libFuzzer targets in tests/fuzz/ (one target per file).
 *
 * Each target feeds the bytes to one reader through its in-memory entry point and
 * checks what the library promises beyond "no crash": a reader that accepts an
 * input returns something the writers can serialise and the reader accepts again.
 * FUZZ_CHECK aborts (a crash libFuzzer reports) when such a promise breaks. The
 * library itself never prints; failures of the reader are expected and ignored.
 *
 * Files guarded by a CRC-32 (.sgm, .sgz, storage streams) would stop almost every
 * mutation at the checksum, so those targets repair the checksum (and the length
 * field) of a copy when the input asks for it, and fuzz the parser behind it too. */
#ifndef SG_FUZZ_H
#define SG_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sgi.h"
#include "sparsegrain/sparsegrain.h"

#define FUZZ_CHECK(c)                                                                  \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed; last error: %s\n", __FILE__, \
                    __LINE__, #c, sg_last_error());                                    \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* A heap copy of the input (so that ASan sees reads past its end). */
static inline uint8_t *fuzz_copy(const uint8_t *data, size_t size) {
    uint8_t *p = malloc(size ? size : 1);
    if (p && size) memcpy(p, data, size);
    return p;
}

static inline void fuzz_st32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void fuzz_st64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

#endif
