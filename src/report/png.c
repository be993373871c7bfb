/* Pictures of masks (the paper's Figure 1 for real weights) and a PNG encoder
 * on libpng. Rows are filters, columns input channels, each cell one R x S
 * kernel; white is pruned, colour is the magnitude of a kept weight. */
#include <math.h>
#include <png.h>
#include <setjmp.h>

#include "report_internal.h"

#define MAX_SIDE 32768

void sg_image_free(struct sg_image *img) {
    if (!img) return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

/* viridis (van der Walt and Smith, matplotlib) at 11 evenly spaced stops; linear
 * interpolation between them stays within a few levels of the full table. */
static const uint8_t VIRIDIS[11][3] = {
    {0x44, 0x01, 0x54}, {0x48, 0x25, 0x76}, {0x41, 0x44, 0x87}, {0x35, 0x60, 0x8d},
    {0x2a, 0x78, 0x8e}, {0x21, 0x90, 0x8c}, {0x22, 0xa8, 0x84}, {0x43, 0xbf, 0x71},
    {0x7a, 0xd1, 0x51}, {0xbb, 0xdf, 0x27}, {0xfd, 0xe7, 0x25}};

void sg_mask_color(double t, uint8_t rgb[3]) {
    if (!(t >= 0)) t = 0; /* also NaN */
    if (t > 1) t = 1;
    /* reversed: big weights dark (like ink); cut at 0.9 so small ones stay far from white */
    double u = 0.9 * (1 - t) * 10;
    int i = (int)u;
    if (i > 9) i = 9;
    double f = u - i;
    for (int c = 0; c < 3; c++)
        rgb[c] = (uint8_t)lrint(VIRIDIS[i][c] + f * (VIRIDIS[i + 1][c] - VIRIDIS[i][c]));
}

enum sg_status sg_mask_image(const struct sg_wview *v, const struct sg_mask_image_cfg *cfg,
                             struct sg_image *img, int64_t *shown_k, int64_t *shown_c) {
    memset(img, 0, sizeof *img);
    if (!v || !v->w || !v->mask || v->k < 1 || v->c < 1 || v->r < 1 || v->s < 1)
        return sgi_error(SG_ERR_ARG, "mask picture: empty weight view");
    if (cfg->scale < 1 || cfg->scale > 256)
        return sgi_error(SG_ERR_ARG, "mask picture: scale %d outside 1..256", cfg->scale);
    const int64_t K = cfg->max_k > 0 && cfg->max_k < v->k ? cfg->max_k : v->k;
    const int64_t C = cfg->max_c > 0 && cfg->max_c < v->c ? cfg->max_c : v->c;
    const int64_t R = v->r, S = v->s, sc = cfg->scale;
    /* one grid line before every kernel and one after the last */
    const int64_t w = C * (S * sc + 1) + 1, h = K * (R * sc + 1) + 1;
    if (R > MAX_SIDE || S > MAX_SIDE || w > MAX_SIDE || h > MAX_SIDE)
        return sgi_error(SG_ERR_LIMIT,
                         "%s: a %lldx%lld picture is larger than %d pixels a side; show fewer "
                         "kernels or use a smaller scale",
                         v->name ? v->name : "layer", (long long)w, (long long)h, MAX_SIDE);
    size_t bytes;
    if (!sgi_mul((size_t)w * (size_t)h, 3, &bytes)) return sgi_error(SG_ERR_LIMIT, "mask picture: too large");
    uint8_t *rgb = malloc(bytes);
    if (!rgb) return sgi_error(SG_ERR_NOMEM, "out of memory for a %lldx%lld picture", (long long)w, (long long)h);
    const uint8_t grid[3] = {(SG_MASK_GRID_RGB >> 16) & 0xff, (SG_MASK_GRID_RGB >> 8) & 0xff,
                             SG_MASK_GRID_RGB & 0xff};
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) memcpy(rgb + 3 * i, grid, 3);
    /* the colour scale spans the weights on show, so a cropped picture uses all of it */
    double mx = 0;
    for (int64_t k = 0; k < K; k++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t q = 0; q < R * S; q++) {
                const size_t at = (size_t)((k * v->c + c) * R * S + q);
                if (v->mask[at]) mx = fmax(mx, fabs((double)v->w[at]));
            }
    for (int64_t k = 0; k < K; k++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t r = 0; r < R; r++)
                for (int64_t s = 0; s < S; s++) {
                    const size_t at = (size_t)(((k * v->c + c) * R + r) * S + s);
                    uint8_t col[3] = {255, 255, 255};
                    if (v->mask[at]) sg_mask_color(mx > 0 ? fabs((double)v->w[at]) / mx : 0, col);
                    const int64_t y0 = k * (R * sc + 1) + 1 + r * sc, x0 = c * (S * sc + 1) + 1 + s * sc;
                    for (int64_t dy = 0; dy < sc; dy++)
                        for (int64_t dx = 0; dx < sc; dx++)
                            memcpy(rgb + 3 * ((size_t)(y0 + dy) * (size_t)w + (size_t)(x0 + dx)), col, 3);
                }
    img->w = (int)w;
    img->h = (int)h;
    img->rgb = rgb;
    if (shown_k) *shown_k = K;
    if (shown_c) *shown_c = C;
    return SG_OK;
}

/* ---- PNG through libpng, into memory ---- */

static void png_put(png_structp p, png_bytep data, png_size_t n) {
    sgi_buf_put((struct sgi_buf *)png_get_io_ptr(p), data, n);
}
static void png_flush_(png_structp p) { (void)p; }

static void png_err(png_structp p, png_const_charp msg) {
    sgi_error(SG_ERR_IO, "PNG encoder: %s", msg);
    png_longjmp(p, 1);
}
static void png_warn(png_structp p, png_const_charp msg) { (void)p, (void)msg; }

enum sg_status sg_png_encode(const struct sg_image *img, uint8_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    if (!img || !img->rgb || img->w < 1 || img->h < 1 || img->w > MAX_SIDE || img->h > MAX_SIDE)
        return sgi_error(SG_ERR_ARG, "PNG: no image or a size outside 1..%d", MAX_SIDE);
    /* Everything the error path frees lives on the heap behind pointers that do
     * not change after setjmp, so their values survive libpng's longjmp. */
    struct sgi_buf *b = calloc(1, sizeof *b);
    png_bytep *rows = malloc(sizeof *rows * (size_t)img->h);
    png_structp p = b && rows ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_err, png_warn) : NULL;
    png_infop info = p ? png_create_info_struct(p) : NULL;
    if (!p || !info) {
        png_destroy_write_struct(&p, NULL);
        free(b), free(rows);
        return sgi_error(SG_ERR_NOMEM, "out of memory starting the PNG encoder");
    }
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_write_struct(&p, &info);
        free(rows);
        sgi_buf_free(b);
        free(b);
        return SG_ERR_IO; /* png_err set the message */
    }
    for (int y = 0; y < img->h; y++) rows[y] = img->rgb + (size_t)y * (size_t)img->w * 3;
    png_set_write_fn(p, b, png_put, png_flush_);
    png_set_IHDR(p, info, (png_uint_32)img->w, (png_uint_32)img->h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_rows(p, info, rows);
    png_write_png(p, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&p, &info);
    free(rows);
    enum sg_status st = SG_OK;
    if (b->failed) {
        sgi_buf_free(b);
        st = sgi_error(SG_ERR_NOMEM, "out of memory encoding a PNG");
    } else {
        *out = b->data;
        *len = b->len;
    }
    free(b);
    return st;
}

enum sg_status sg_png_write(const char *path, const struct sg_image *img) {
    uint8_t *buf;
    size_t len;
    enum sg_status st = sg_png_encode(img, &buf, &len);
    if (st != SG_OK) return st;
    st = sg_file_write_atomic(path, buf, len);
    free(buf);
    return st;
}
