/*
 * wire.h - Avro binary primitives for hand-written readers and writers of hot records.
 *
 * avro-c's generic values cost more than the work around them on the hottest paths (a Reading
 * decoded per message, an Aggregate encoded per window). A module that knows its record's
 * layout can read or write its body directly with these, in the encoding of the Avro
 * specification: int and long as zigzag base-128 varints (an int's bytes are those of the same
 * value as a long), double as 8 little-endian bytes, string as a long length and the bytes,
 * union as a long branch index and the branch, enum as an int, array as blocks of a long count
 * and the items ending with a 0 count (writers here emit one block).
 *
 * Contract for direct readers: such a reader must accept only what avro-c accepts and read it as
 * avro-c does. The reader primitives here are therefore strict - a varint longer than 10 bytes
 * (5 for an int), an int out of range, a length past the end - and set `bad`; a reader then
 * declines the message and leaves it to the generic decoder (hvs_decoder_decode), which decides
 * and reports. Each direct reader and writer has a differential test against avro-c.
 *
 * Ownership: hvs_wire_in_t borrows the bytes it reads; strings it returns point into them.
 * hvs_wire_out_t owns its buffer (malloc'd, grown as needed); free it with hvs_wire_out_free.
 * Thread-safety: none; one per thread. Errors: readers set in->bad (sticky: later reads return 0
 * and leave bad set); writers set out->oom and return HVS_ENOMEM (sticky until the next
 * hvs_wire_header), so a writer can check once at the end.
 */
#ifndef HVS_WIRE_H
#define HVS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hvs/err.h"

/* ---- reading ------------------------------------------------------------------------------- */

typedef struct hvs_wire_in {
    const unsigned char *p, *end;
    bool bad;
} hvs_wire_in_t;

static inline hvs_wire_in_t hvs_wire_in(const void *buf, size_t len) {
    hvs_wire_in_t in = {(const unsigned char *)buf, (const unsigned char *)buf + len, false};
    return in;
}

/* A zigzag varint of at most max_bytes bytes; 0 and bad set when it is longer or cut short. */
static inline int64_t hvs_wire_varint(hvs_wire_in_t *in, int max_bytes) {
    uint64_t u = 0;
    for (int shift = 0, i = 0; i < max_bytes && in->p < in->end; i++, shift += 7) {
        unsigned char b = *in->p++;
        u |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    }
    in->bad = true;
    return 0;
}

static inline int64_t hvs_wire_long(hvs_wire_in_t *in) { return hvs_wire_varint(in, 10); }

static inline int32_t hvs_wire_int(hvs_wire_in_t *in) {
    int64_t v = hvs_wire_varint(in, 5);
    if (v < INT32_MIN || v > INT32_MAX) {
        in->bad = true;
        return 0;
    }
    return (int32_t)v;
}

static inline double hvs_wire_double(hvs_wire_in_t *in) {
    double d = 0;
    if (in->end - in->p < 8) {
        in->bad = true;
        return 0;
    }
    memcpy(&d, in->p, 8); /* little-endian hosts only (static check in wire.c) */
    in->p += 8;
    return d;
}

/* A string's bytes (not NUL-terminated) and length; NULL and bad set when cut short. */
static inline const char *hvs_wire_string(hvs_wire_in_t *in, size_t *n) {
    int64_t len = hvs_wire_long(in);
    if (in->bad || len < 0 || len > in->end - in->p) {
        in->bad = true;
        *n = 0;
        return NULL;
    }
    const char *s = (const char *)in->p;
    in->p += len;
    *n = (size_t)len;
    return s;
}

/* A union's branch index, bad unless it is below nbranches. */
static inline int hvs_wire_branch(hvs_wire_in_t *in, int nbranches) {
    int64_t b = hvs_wire_long(in);
    if (b < 0 || b >= nbranches) {
        in->bad = true;
        return 0;
    }
    return (int)b;
}

/* An array block's item count: > 0 items follow, 0 ends the array. A negative count (a block
 * with its byte size, which these writers never emit) sets bad: the generic decoder reads it. */
static inline int64_t hvs_wire_block(hvs_wire_in_t *in) {
    int64_t n = hvs_wire_long(in);
    if (n < 0)
        in->bad = true;
    return in->bad ? 0 : n;
}

/* ---- writing ------------------------------------------------------------------------------- */

typedef struct hvs_wire_out {
    unsigned char *buf;
    size_t len, cap;
    bool oom;
} hvs_wire_out_t;

/* Room for n more bytes: 0, or HVS_ENOMEM and oom set. */
int hvs_wire_reserve(hvs_wire_out_t *out, size_t n);
void hvs_wire_out_free(hvs_wire_out_t *out);

/* The Confluent header (magic 0, big-endian schema id); starts a message: len and oom are reset
 * (a message that failed does not fail the next). */
int hvs_wire_header(hvs_wire_out_t *out, int32_t schema_id);

static inline int hvs_wire_put_long(hvs_wire_out_t *out, int64_t v) {
    if (out->cap - out->len < 10 && hvs_wire_reserve(out, 10))
        return HVS_ENOMEM;
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (u > 0x7f) {
        out->buf[out->len++] = (unsigned char)((u & 0x7f) | 0x80);
        u >>= 7;
    }
    out->buf[out->len++] = (unsigned char)u;
    return 0;
}

static inline int hvs_wire_put_int(hvs_wire_out_t *out, int32_t v) {
    return hvs_wire_put_long(out, v);
}

static inline int hvs_wire_put_double(hvs_wire_out_t *out, double d) {
    if (out->cap - out->len < 8 && hvs_wire_reserve(out, 8))
        return HVS_ENOMEM;
    memcpy(out->buf + out->len, &d, 8);
    out->len += 8;
    return 0;
}

/* n bytes as they are (no length: e.g. a part encoded once and reused). */
static inline int hvs_wire_put_bytes(hvs_wire_out_t *out, const void *p, size_t n) {
    if (out->cap - out->len < n && hvs_wire_reserve(out, n))
        return HVS_ENOMEM;
    if (n)
        memcpy(out->buf + out->len, p, n);
    out->len += n;
    return 0;
}

static inline int hvs_wire_put_string(hvs_wire_out_t *out, const char *s, size_t n) {
    return hvs_wire_put_long(out, (int64_t)n) || hvs_wire_put_bytes(out, s, n) ? HVS_ENOMEM : 0;
}

/* A ["null", "double"] union: null when has is false. */
static inline int hvs_wire_put_opt_double(hvs_wire_out_t *out, bool has, double d) {
    if (!has)
        return hvs_wire_put_long(out, 0);
    return hvs_wire_put_long(out, 1) || hvs_wire_put_double(out, d);
}

/* A ["null", "int"] union. */
static inline int hvs_wire_put_opt_int(hvs_wire_out_t *out, bool has, int32_t v) {
    if (!has)
        return hvs_wire_put_long(out, 0);
    return hvs_wire_put_long(out, 1) || hvs_wire_put_int(out, v);
}

/* A ["null", "string"] union: null for NULL. */
static inline int hvs_wire_put_opt_string(hvs_wire_out_t *out, const char *s) {
    if (!s)
        return hvs_wire_put_long(out, 0);
    return hvs_wire_put_long(out, 1) || hvs_wire_put_string(out, s, strlen(s));
}

/* An array<string> of the names of bits set in `bits` (bit i named name(i), i < nbits), in bit
 * order: one block, or just the end marker when none is set (as avro-c writes it). */
int hvs_wire_put_bit_names(hvs_wire_out_t *out, unsigned bits, int nbits, const char *(*name)(int));

#endif
