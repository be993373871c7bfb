/* The CSV reader of the report (sg_csv_parse: RFC 4180 quoting, header row). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = (char *)fuzz_copy(data, size);
    struct sg_csv *t = NULL;
    if (sg_csv_parse(text, size, "fuzz.csv", &t) == SG_OK) {
        FUZZ_CHECK(t->ncols >= 1 && t->nrows >= 0);
        for (int r = -1; r <= t->nrows; r++)
            for (int c = -1; c <= t->ncols; c++) {
                double v;
                FUZZ_CHECK(sg_csv_get(t, r, c) != NULL);
                sg_csv_num(t, r, c, &v);
            }
        if (t->ncols > 0) FUZZ_CHECK(sg_csv_col(t, t->cell[0]) == 0);
    }
    sg_csv_free(t);
    free(text);
    return 0;
}
