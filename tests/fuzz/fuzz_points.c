/* A study's points.jsonl (sg_points_parse): one JSON object per line; a damaged last
 * line is dropped (a write cut short), a damaged line before it is an error. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = (char *)fuzz_copy(data, size);
    struct sg_points pts;
    size_t valid;
    if (sg_points_parse(text, size, "points.jsonl", &pts, &valid) == SG_OK) {
        FUZZ_CHECK(valid <= size);
        FUZZ_CHECK(valid == 0 || text[valid - 1] == '\n');
        for (int i = 0; i < pts.n; i++) {
            const struct sg_point *p = &pts.p[i];
            FUZZ_CHECK(p->n_layers >= 0 && p->n_layers <= SG_POINT_MAX_LAYERS);
            FUZZ_CHECK(memchr(p->gran, 0, sizeof p->gran) && memchr(p->file, 0, sizeof p->file));
        }
        /* what the study does with them: the tables of every granularity */
        struct sg_noloss *nl = NULL;
        int nn = 0;
        if (sg_study_noloss(&pts, 0.005, &nl, &nn) == SG_OK) free(nl);
        sg_points_free(&pts);
    }
    free(text);
    return 0;
}
