/*
 * fmt.h - numbers to text fast and exactly, for state written to Redis on hot paths (printf's
 * float formatting was a sixth of the aggregator's time).
 *
 * hvs_fmt_double writes the shortest of "k / 10^d" (d <= 4) that gives v back exactly, else
 * %.17g; "nan", "inf", "-inf" for the non-finite. strtod reads every output back to the same
 * double (bit for bit, -0 included). Pure functions; no allocation; out needs 32 bytes.
 */
#ifndef HVS_FMT_H
#define HVS_FMT_H

#include <stddef.h>
#include <stdint.h>

#define HVS_FMT_MAX 32

/* Writes v into out (no NUL); returns the length. */
size_t hvs_fmt_double(char *out, double v);
/* Decimal of v into out (no NUL); returns the length. */
size_t hvs_fmt_int64(char *out, int64_t v);

#endif
