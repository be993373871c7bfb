/* sparsegrain.h - umbrella header: the whole public API of libsparsegrain.
 * Start with core.h (status codes, errors, files) and nn.h (models, training). */
#ifndef SPARSEGRAIN_H
#define SPARSEGRAIN_H

#include "sparsegrain/core.h"
#include "sparsegrain/data.h"
#include "sparsegrain/gpu.h"
#include "sparsegrain/infer.h"
#include "sparsegrain/io.h"
#include "sparsegrain/nn.h"
#include "sparsegrain/prune.h"
#include "sparsegrain/report.h"
#include "sparsegrain/sim.h"
#include "sparsegrain/study.h"
#include "sparsegrain/storage.h"

#endif
