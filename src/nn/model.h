/* Internals of src/nn/model.c shared with the model readers in src/io. Not installed. */
#ifndef SPARSEGRAIN_NN_MODEL_H
#define SPARSEGRAIN_NN_MODEL_H

#include "sparsegrain/nn.h"

/* sg_model_finalize, except that arenas it allocates are left as they come: for a
 * reader that then writes every element of the arena and the mask, padding between
 * parameters included (zero weight, mask 1). A 100 MB model's fresh pages are then
 * touched once, by the threads that fill them, not first by one thread clearing them. */
enum sg_status sgi_model_finalize_unfilled(struct sg_model *m);

#endif
