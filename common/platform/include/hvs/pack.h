/*
 * pack.h - compact bytes for stored state: LEB128 varints and doubles that read back bit for bit
 * in few bytes. The aggregator's format 1 (workers/aggregator/persist.h) and the feature
 * rings' blocks (featstore.h) are made of them (docs/design.md §5).
 *
 * A double is one varint x, then maybe bytes: x & 7 = k in 0..3: the value is m / 10^k exactly
 * (bit for bit; m = zigzag-decoded x >> 3, |m| < 9e15); x & 7 = 4: the value's 8 bytes
 * (IEEE 754, as an integer) without its (x >> 3) low zero bytes (0..7), the rest little-endian.
 * So 21.5 is 2 bytes, a counter reading 75475.7 4, a difference of two readings
 * (1.6000000000058208) 7, anything at most 9.
 *
 * A float (the scorer's ring, workers/scorer/apartment.h) is one varint x, then maybe bytes:
 * x & 7 = k in 0..3: the value is (float)(m / 10^k) bit for bit (m = zigzag-decoded x >> 3,
 * |m| < 2^24, so at most 4 bytes); x & 7 = 4: its 4 bytes without its (x >> 3) low zero bytes
 * (0..3), the rest little-endian; x = 5: the quiet NaN 0x7fc00000 (C's NAN, "unknown"). So 21.3
 * and NaN are 1-2 bytes, a computed mean (21.283333) 5, nothing more than 5.
 *
 * Writers append to buf (cap bytes) at *n and count in *n what is needed either way (nothing is
 * written past cap). Readers advance *p, never past end, and return -1 on a truncated or
 * malformed value. Thread-safety: pure functions.
 */
#ifndef HVS_PACK_H
#define HVS_PACK_H

#include <stddef.h>
#include <stdint.h>

/* Most bytes one double takes. */
#define HVS_PACK_DOUBLE_MAX 9
/* Most bytes one float takes. */
#define HVS_PACK_FLOAT_MAX 5

void hvs_pack_put_bytes(char *buf, size_t cap, size_t *n, const void *src, size_t len);
void hvs_pack_put_varint(char *buf, size_t cap, size_t *n, uint64_t v);
void hvs_pack_put_double(char *buf, size_t cap, size_t *n, double v);
void hvs_pack_put_float(char *buf, size_t cap, size_t *n, float v);
int hvs_pack_get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v);
int hvs_pack_get_double(const unsigned char **p, const unsigned char *end, double *v);
int hvs_pack_get_float(const unsigned char **p, const unsigned char *end, float *v);

#endif
