/* wire.c - the growable output buffer of wire.h (the primitives themselves are inline). */
#include "hvs/wire.h"

#include <stdlib.h>
#include <string.h>

#include "hvs/err.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "wire.h copies doubles as they lie in memory: Avro's order on little-endian hosts only"
#endif

int hvs_wire_reserve(hvs_wire_out_t *out, size_t n) {
    if (out->oom)
        return HVS_ENOMEM;
    if (out->cap - out->len >= n)
        return HVS_OK;
    size_t cap = out->cap ? out->cap : 256;
    while (cap - out->len < n) {
        if (cap > SIZE_MAX / 2) {
            out->oom = true;
            return HVS_ENOMEM;
        }
        cap *= 2;
    }
    unsigned char *b = realloc(out->buf, cap);
    if (!b) {
        out->oom = true;
        return HVS_ENOMEM;
    }
    out->buf = b;
    out->cap = cap;
    return HVS_OK;
}

void hvs_wire_out_free(hvs_wire_out_t *out) {
    free(out->buf);
    *out = (hvs_wire_out_t){0};
}

int hvs_wire_header(hvs_wire_out_t *out, int32_t schema_id) {
    out->len = 0;
    out->oom = false;
    if (out->cap < 5 && hvs_wire_reserve(out, 5))
        return HVS_ENOMEM;
    uint32_t id = (uint32_t)schema_id;
    out->buf[0] = 0;
    out->buf[1] = (unsigned char)(id >> 24);
    out->buf[2] = (unsigned char)(id >> 16);
    out->buf[3] = (unsigned char)(id >> 8);
    out->buf[4] = (unsigned char)id;
    out->len = 5;
    return HVS_OK;
}

int hvs_wire_put_bit_names(hvs_wire_out_t *out, unsigned bits, int nbits,
                           const char *(*name)(int)) {
    int n = 0;
    for (int i = 0; i < nbits; i++)
        n += (bits >> i) & 1u;
    if (n) {
        hvs_wire_put_long(out, n);
        for (int i = 0; i < nbits; i++)
            if (bits & (1u << i)) {
                const char *s = name(i);
                hvs_wire_put_string(out, s, strlen(s));
            }
    }
    return hvs_wire_put_long(out, 0);
}
