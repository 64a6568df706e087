/*
 * fmt.h - numbers to text fast and exactly, for state written to Redis on hot paths (printf's
 * float formatting was a sixth of the aggregator's time).
 *
 * hvs_fmt_double writes the shortest of "k / 10^d" (d <= 4) that gives v back exactly, else
 * %.17g; "nan", "inf", "-inf" for the non-finite. strtod reads every output back to the same
 * double (bit for bit, -0 included). Pure functions; no allocation; out needs 32 bytes.
 *
 * hvs_strbuf_t: a text that grows as printf appends to it (the metrics page, model text).
 * Ownership: p is malloc'd and the caller's (free it, also after oom). Thread-safety: one
 * thread per buffer. Errors: an allocation or format failure sets oom, and every later append
 * does nothing, so callers check once at the end.
 */
#ifndef HVS_FMT_H
#define HVS_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"

#define HVS_FMT_MAX 32

/* Writes v into out (no NUL); returns the length. */
size_t hvs_fmt_double(char *out, double v);
/* Decimal of v into out (no NUL); returns the length. */
size_t hvs_fmt_int64(char *out, int64_t v);

typedef struct hvs_strbuf {
    char *p; /* NUL-terminated once anything was appended; NULL before */
    size_t len, cap;
    bool oom;
} hvs_strbuf_t;

/* Append printf output to b (zero-initialised, or with a malloc'd p of cap bytes). */
void hvs_strbuf_printf(hvs_strbuf_t *b, const char *fmt, ...) HVS_PRINTF(2, 3);
/* Append n bytes of s (no formatting: the hot paths' appends). */
void hvs_strbuf_put(hvs_strbuf_t *b, const char *s, size_t n);
/* Append s as a JSON string (quoted; '"', '\\' and control characters escaped). */
void hvs_strbuf_json_str(hvs_strbuf_t *b, const char *s);
/* Append x as a JSON number (hvs_fmt_double: read back bit for bit), null when not finite. */
void hvs_strbuf_json_num(hvs_strbuf_t *b, double x);

#endif
