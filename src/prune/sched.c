/* Density schedules: one-shot, iterative steps, and Zhu and Gupta's cubic AGP. */
#include <math.h>

#include "prune_internal.h"

double sg_sched_density(const struct sg_sched *s, double t) {
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    const int steps = s->steps > 0 ? s->steps : 1;
    switch (s->kind) {
    case SG_SCHED_ITERATIVE: {
        /* equal steps in log density: each step removes the same fraction */
        double j = ceil(t * steps - 1e-12);
        if (s->d0 <= 0) return s->d1;
        return s->d0 * pow(s->d1 / s->d0, j / steps);
    }
    case SG_SCHED_AGP: {
        /* Zhu and Gupta 2017: s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3 */
        const double t_end = s->t_end > 0 ? s->t_end : 1.0;
        if (t >= t_end) return s->d1;
        const double j = floor(t / t_end * steps + 1e-12);
        const double s0 = 1 - s->d0, s1 = 1 - s->d1;
        const double u = 1 - j / steps;
        return 1 - (s1 + (s0 - s1) * u * u * u);
    }
    default: return s->d1;
    }
}
