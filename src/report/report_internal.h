/* Internals shared by the report writers (svg.c, html.c, png.c, csv.c). */
#ifndef SPARSEGRAIN_REPORT_INTERNAL_H
#define SPARSEGRAIN_REPORT_INTERNAL_H

#include "core/sgi.h"
#include "sparsegrain/report.h"
#include "sparsegrain/study.h"

/* Appends s as XML text or attribute content: & < > " ' escaped, control
 * characters other than tab and newline dropped, invalid UTF-8 replaced by U+FFFD
 * (one bad byte makes a whole XML document unreadable). */
void sgi_xml_text(struct sgi_buf *b, const char *s);
/* printf, then escaped as by sgi_xml_text. */
void sgi_xml_printf(struct sgi_buf *b, const char *fmt, ...) SGI_PRINTF(2, 3);

/* The charts, appended to a buffer (the public functions wrap these). Return
 * SG_ERR_ARG with a message for inconsistent input; nothing is appended then. */
enum sg_status sgi_svg_line_chart(struct sgi_buf *b, const struct sg_line_chart *c);
enum sg_status sgi_svg_bar_chart(struct sgi_buf *b, const struct sg_bar_chart *c);

/* The font stack every chart and the page use: the system's sans-serif first. */
#define SGI_FONT_STACK                                                                     \
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Liberation Sans', "     \
    "'DejaVu Sans', Arial, sans-serif"

/* Short number for labels: %.*g trimmed, k/M/G suffixes from 10^4 up. */
void sgi_fmt_num(char *out, size_t cap, double v, int sig);

#endif
