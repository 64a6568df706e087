/* pack.c - compact varints and doubles (see hvs/pack.h). */
#include "hvs/pack.h"

#include <string.h>

void hvs_pack_put_bytes(char *buf, size_t cap, size_t *n, const void *src, size_t len) {
    if (*n + len <= cap)
        memcpy(buf + *n, src, len);
    *n += len;
}

void hvs_pack_put_varint(char *buf, size_t cap, size_t *n, uint64_t v) {
    char tmp[10];
    size_t k = 0;
    do {
        tmp[k++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    hvs_pack_put_bytes(buf, cap, n, tmp, k);
}

int hvs_pack_get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v) {
    uint64_t x = 0;
    for (int sh = 0; sh < 70 && *p < end; sh += 7) {
        unsigned char c = *(*p)++;
        if (sh == 63 && c > 1)
            return -1;
        x |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static const double P10[4] = {1, 10, 100, 1000};

void hvs_pack_put_double(char *buf, size_t cap, size_t *n, double v) {
    for (int k = 0; k < 4; k++) {
        double x = v * P10[k];
        if (!(x > -9e15 && x < 9e15))
            break;
        int64_t m = (int64_t)(x < 0 ? x - 0.5 : x + 0.5);
        double back = (double)m / P10[k];
        if (memcmp(&back, &v, sizeof v) == 0) { /* bit for bit: -0.0 and NaN stay raw */
            uint64_t z = ((uint64_t)m << 1) ^ (uint64_t)(m >> 63);
            hvs_pack_put_varint(buf, cap, n, z << 3 | (uint64_t)k);
            return;
        }
    }
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    unsigned drop = 0;
    while (drop < 7 && (bits & 0xff) == 0) {
        bits >>= 8;
        drop++;
    }
    char raw[9];
    raw[0] = (char)(drop << 3 | 4);
    for (unsigned i = 0; i < 8 - drop; i++)
        raw[1 + i] = (char)(bits >> (8 * i));
    hvs_pack_put_bytes(buf, cap, n, raw, 9 - drop);
}

int hvs_pack_get_double(const unsigned char **p, const unsigned char *end, double *v) {
    uint64_t x;
    if (hvs_pack_get_varint(p, end, &x))
        return -1;
    unsigned k = (unsigned)(x & 7);
    if (k == 4) {
        uint64_t drop = x >> 3, bits = 0;
        if (drop > 7 || (uint64_t)(end - *p) < 8 - drop)
            return -1;
        for (unsigned i = 0; i < 8 - drop; i++)
            bits |= (uint64_t)(*p)[i] << (8 * (i + drop));
        *p += 8 - drop;
        memcpy(v, &bits, sizeof *v);
        return 0;
    }
    if (k > 3 || (x >> 3) >= (1ULL << 55)) /* |m| < 9e15 < 2^54: what hvs_pack_put_double writes */
        return -1;
    uint64_t z = x >> 3;
    int64_t m = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    *v = (double)m / P10[k];
    return 0;
}

#define FLOAT_NAN_BITS 0x7fc00000u
#define FLOAT_M_LIMIT 16777216.0 /* 2^24: beyond, the varint is no shorter than the raw bytes */

void hvs_pack_put_float(char *buf, size_t cap, size_t *n, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (bits == FLOAT_NAN_BITS) {
        hvs_pack_put_varint(buf, cap, n, 5);
        return;
    }
    for (int k = 0; k < 4; k++) {
        double x = (double)v * P10[k];
        if (!(x > -FLOAT_M_LIMIT && x < FLOAT_M_LIMIT))
            break;
        int64_t m = (int64_t)(x < 0 ? x - 0.5 : x + 0.5);
        if (m >= (1 << 24) || m <= -(1 << 24)) /* rounded up to 2^24: what the reader refuses */
            break;
        float back = (float)((double)m / P10[k]);
        if (memcmp(&back, &v, sizeof v) == 0) { /* bit for bit: -0.0 stays raw */
            uint64_t z = ((uint64_t)m << 1) ^ (uint64_t)(m >> 63);
            hvs_pack_put_varint(buf, cap, n, z << 3 | (uint64_t)k);
            return;
        }
    }
    unsigned drop = 0;
    while (drop < 3 && (bits & 0xff) == 0) {
        bits >>= 8;
        drop++;
    }
    char raw[5];
    raw[0] = (char)(drop << 3 | 4);
    for (unsigned i = 0; i < 4 - drop; i++)
        raw[1 + i] = (char)(bits >> (8 * i));
    hvs_pack_put_bytes(buf, cap, n, raw, 5 - drop);
}

int hvs_pack_get_float(const unsigned char **p, const unsigned char *end, float *v) {
    uint64_t x;
    if (hvs_pack_get_varint(p, end, &x))
        return -1;
    unsigned k = (unsigned)(x & 7);
    if (x == 5) {
        uint32_t bits = FLOAT_NAN_BITS;
        memcpy(v, &bits, sizeof *v);
        return 0;
    }
    if (k == 4) {
        uint64_t drop = x >> 3;
        uint32_t bits = 0;
        if (drop > 3 || (uint64_t)(end - *p) < 4 - drop)
            return -1;
        for (unsigned i = 0; i < 4 - drop; i++)
            bits |= (uint32_t)(*p)[i] << (8 * (i + drop));
        *p += 4 - drop;
        memcpy(v, &bits, sizeof *v);
        return 0;
    }
    if (k > 3 || (x >> 3) >= (1ULL << 25)) /* |m| < 2^24: what hvs_pack_put_float writes */
        return -1;
    uint64_t z = x >> 3;
    int64_t m = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    *v = (float)((double)m / P10[k]);
    return 0;
}
