/* Internals of the SCNN model shared by the files in src/sim (not installed). */
#ifndef SPARSEGRAIN_SIMI_H
#define SPARSEGRAIN_SIMI_H

#include "core/sgi.h"
#include "sparsegrain/sim.h"

/* Checks shared by the fast simulator and the reference walk: one image, no
 * conv groups, sizes the int-indexed loops can hold. */
enum sg_status sgi_scnn_check_layer(const struct sg_scnn_config *c, const struct sg_conv_geom *g);

/* 1 (default): layers with stride 1 and a power-of-two number of banks take the
 * AVX-512 steps where the build has them; 0: the scalar steps (tests compare). */
extern int sgi_scnn_simd;
/* 1 when this build has the vector steps (AVX-512), whose layer outputs are the
 * direct convolution summed in (input channel, kernel row, kernel column) order. */
extern const int sgi_scnn_vector_build;

/* Per-bit energies of a configuration's buffers (energy.c). */
struct sgi_bit_energy {
    double weight, act, acc, psum, out, halo;
};
void sgi_scnn_bit_energies(const struct sg_scnn_config *c, int64_t psum_entries,
                           struct sgi_bit_energy *b);

/* Synthetic data (synth.c). run.c makes the layers' data in parallel, a chunk of
 * layers of at most this many floats at a time (or one layer; the tests vary it). */
extern size_t sgi_scnn_synth_chunk;
/* Synthetic data (synth.c). */
void sgi_scnn_synth_weights(float *w, size_t n, sg_rng *rng);
enum sg_status sgi_scnn_synth_acts(float *x, size_t n, double density, int signed_vals,
                                   sg_rng *rng);

#endif
