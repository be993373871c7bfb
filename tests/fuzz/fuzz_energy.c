/* The SCNN energy table (sg_energy_table_parse: a JSON object of picojoule figures). */
#include <math.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = (char *)fuzz_copy(data, size);
    struct sg_energy_table t, before;
    sg_energy_table_default(&t);
    before = t;
    if (sg_energy_table_parse(text, size, "energy.json", &t) == SG_OK) {
        FUZZ_CHECK(isfinite(t.mult_pj) && t.mult_pj >= 0 && isfinite(t.dram_bit_pj));
        FUZZ_CHECK(memchr(t.source, 0, sizeof t.source) != NULL);
    } else {
        FUZZ_CHECK(memcmp(&t, &before, sizeof t) == 0); /* all or nothing */
    }
    free(text);
    return 0;
}
