/* Energy per access: the default 45 nm table and a JSON replacement (libcjson). */
#include <cjson/cJSON.h>
#include <math.h>

#include "sim/simi.h"

/* Horowitz, ISSCC 2014, 45 nm, 0.9 V:
 *   16-bit FP multiply 1.1 pJ, 16-bit FP add 0.4 pJ; 8-bit integer add 0.03 pJ,
 *   32-bit integer add 0.1 pJ;
 *   8 KB SRAM (cache) 64-bit access 10 pJ  -> 10/64 = 0.15625 pJ per bit;
 *   DRAM 64-bit access 1.3-2.6 nJ          -> 1300/64 = 20.3125 pJ per bit (low end).
 * Other buffer sizes: per-bit energy ~ sqrt(size) (our assumption: bit-line and
 * word-line lengths grow with the square root of the array), so a 96-byte
 * accumulator bank costs 0.108x the 8 KB figure and a 10 KB RAM 1.12x.
 * A halo partial sum is read at the sender and read and written at the owner:
 * three accumulator-bank bit accesses per bit; the wire is not counted.
 * Crossbar: 0.1 pJ per routed product and index decode 0.03 pJ per index (our
 * stand-ins: a 32-bit and an 8-bit integer add of the same table). */
void sg_energy_table_default(struct sg_energy_table *t) {
    memset(t, 0, sizeof *t);
    snprintf(t->source, sizeof t->source,
             "Horowitz ISSCC 2014, 45 nm: FP16 mult 1.1 pJ, add 0.4 pJ; 8 KB SRAM 10 pJ/64 b, "
             "per-bit ~ sqrt(size); DRAM 1.3 nJ/64 b");
    t->mult_pj = 1.1;
    t->add_pj = 0.4;
    t->sram_bit_pj = 10.0 / 64.0;
    t->sram_ref_bytes = 8192;
    t->sram_exponent = 0.5;
    t->weight_bit_pj = t->act_bit_pj = t->acc_bit_pj = t->psum_bit_pj = t->out_bit_pj = -1;
    t->halo_bit_pj = -1;
    t->xbar_pj = 0.1;
    t->decode_pj = 0.03;
    t->dram_bit_pj = 1300.0 / 64.0;
}

double sg_energy_bit_pj(const struct sg_energy_table *t, double bytes) {
    if (!(bytes > 0) || !(t->sram_ref_bytes > 0)) return t->sram_bit_pj;
    return t->sram_bit_pj * pow(bytes / t->sram_ref_bytes, t->sram_exponent);
}

struct field {
    const char *key;
    size_t off;
};
#define F(name) {#name, offsetof(struct sg_energy_table, name)}
static const struct field FIELDS[] = {
    F(mult_pj),     F(add_pj),      F(sram_bit_pj),   F(sram_ref_bytes), F(sram_exponent),
    F(weight_bit_pj), F(act_bit_pj), F(acc_bit_pj),  F(psum_bit_pj),   F(out_bit_pj),
    F(halo_bit_pj), F(xbar_pj),     F(decode_pj),     F(dram_bit_pj),
};
#undef F
#define NFIELDS (sizeof FIELDS / sizeof FIELDS[0])

enum sg_status sg_energy_table_parse(const char *json, size_t len, const char *what,
                                     struct sg_energy_table *t) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= json && at <= json + len ? (size_t)(at - json) : 0;
        return sgi_error(SG_ERR_FORMAT, "%s: not valid JSON (near byte %zu)", what, off);
    }
    enum sg_status st = SG_OK;
    struct sg_energy_table nt = *t; /* all or nothing: *t changes only on success */
    if (!cJSON_IsObject(root)) {
        st = sgi_error(SG_ERR_FORMAT, "%s: expected a JSON object of energies", what);
        goto done;
    }
    for (cJSON *it = root->child; it; it = it->next) {
        const char *key = it->string ? it->string : "";
        if (strcmp(key, "source") == 0) {
            if (!cJSON_IsString(it)) {
                st = sgi_error(SG_ERR_FORMAT, "%s: \"source\" must be a string", what);
                goto done;
            }
            snprintf(nt.source, sizeof nt.source, "%s", it->valuestring);
            continue;
        }
        size_t f = 0;
        while (f < NFIELDS && strcmp(FIELDS[f].key, key) != 0) f++;
        if (f == NFIELDS) {
            st = sgi_error(SG_ERR_FORMAT,
                           "%s: unknown key \"%s\" (known: source, mult_pj, add_pj, "
                           "sram_bit_pj, sram_ref_bytes, sram_exponent, weight_bit_pj, "
                           "act_bit_pj, acc_bit_pj, psum_bit_pj, out_bit_pj, halo_bit_pj, "
                           "xbar_pj, decode_pj, dram_bit_pj)",
                           what, key);
            goto done;
        }
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < 0) {
            st = sgi_error(SG_ERR_FORMAT, "%s: \"%s\" must be a number >= 0 (picojoules)", what,
                           key);
            goto done;
        }
        *(double *)((char *)&nt + FIELDS[f].off) = it->valuedouble;
    }
    *t = nt;
done:
    cJSON_Delete(root);
    return st;
}

enum sg_status sg_energy_table_load(const char *path, struct sg_energy_table *t) {
    uint8_t *buf;
    size_t len;
    enum sg_status st = sg_file_read(path, (size_t)1 << 20, 0, &buf, &len);
    if (st != SG_OK) return st;
    st = sg_energy_table_parse((const char *)buf, len, path, t);
    free(buf);
    return st;
}

/* The per-bit energies of the buffers of configuration c (psum_entries: the
 * partial-sum buffer the layer used). */
void sgi_scnn_bit_energies(const struct sg_scnn_config *c, int64_t psum_entries,
                           struct sgi_bit_energy *b) {
    const struct sg_energy_table *t = &c->energy;
    const double vb = c->value_bits, ib = c->index_bits, ab = c->acc_bits;
#define PICK(f, bytes) (t->f >= 0 ? t->f : sg_energy_bit_pj(t, (bytes)))
    b->weight = PICK(weight_bit_pj, (double)c->wfifo_entries * c->f * (vb + ib) / 8);
    b->act = PICK(act_bit_pj, (double)c->iaram_bytes);
    b->acc = PICK(acc_bit_pj, (double)c->bank_entries * ab / 8);
    /* the partial-sum buffer is banked like the accumulator (A banks) */
    b->psum = PICK(psum_bit_pj, (double)psum_entries / c->banks * ab / 8);
    b->out = PICK(out_bit_pj, (double)c->oaram_bytes);
    b->halo = t->halo_bit_pj >= 0 ? t->halo_bit_pj : 3 * b->acc;
#undef PICK
}

void sg_scnn_energy_of(const struct sg_scnn_config *c, struct sg_scnn_stats *s) {
    const struct sg_energy_table *t = &c->energy;
    const double vb = c->value_bits, ib = c->index_bits, ab = c->acc_bits;
    struct sgi_bit_energy b;
    sgi_scnn_bit_energies(c, s->psum_entries, &b);
    struct sg_scnn_energy *e = &s->energy;
    e->mult = (double)s->products_formed * t->mult_pj;
    e->add = (double)(s->acc_writes + s->merge_adds + s->halo) * t->add_pj;
    e->weight = ((double)s->weight_reads * vb + (double)s->weight_index_reads * ib) * b.weight;
    e->act = ((double)s->act_reads * vb + (double)s->act_index_reads * ib) * b.act;
    e->acc = (double)(s->acc_reads + s->acc_writes) * ab * b.acc;
    e->psum = (double)(s->psum_reads + s->psum_writes) * ab * b.psum;
    e->out = (double)s->out_writes * (vb + ib) * b.out;
    e->halo = (double)s->halo * ab * b.halo;
    e->xbar = (double)s->products * t->xbar_pj;
    e->decode = (double)(s->weight_index_reads + s->act_index_reads) * t->decode_pj;
    e->dram = (double)sg_scnn_dram_bits(s) * t->dram_bit_pj;
    e->total = e->mult + e->add + e->weight + e->act + e->acc + e->psum + e->out + e->halo +
               e->xbar + e->decode + e->dram;
}
