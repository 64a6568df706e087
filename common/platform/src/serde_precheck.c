/*
 * The bounds pre-check (see serde_internal.h). avro-c allocates whatever a length prefix says
 * before it finds the bytes missing, and does not free it when the read then fails: one corrupt
 * message can cost gigabytes. So the body is first walked against the writer schema, checking
 * every length and block count against the bytes that remain; only a body that fits is handed to
 * avro-c. 1 = ran out of bytes, -1 = invalid.
 */
#include <avro.h>
#include <stdint.h>
#include <stdlib.h>

#include "serde_internal.h"

#define PRECHECK_MAX_DEPTH 64

/* A writer schema compiled once for the pre-check: a node per schema position. */
struct hvs_serde_precheck {
    avro_type_t type;
    int64_t n; /* fixed size, enum symbol count, union branch count */
    size_t nkids;
    struct hvs_serde_precheck **kids; /* record fields, union branches, array/map item */
};

static void skim_free(hvs_serde_precheck_t *k) {
    if (!k)
        return;
    for (size_t i = 0; i < k->nkids; i++)
        skim_free(k->kids[i]);
    free(k->kids);
    free(k);
}

static hvs_serde_precheck_t *skim_compile(avro_schema_t sc, int depth) {
    if (depth > PRECHECK_MAX_DEPTH)
        return NULL;
    while (avro_typeof(sc) == AVRO_LINK)
        sc = avro_schema_link_target(sc);
    hvs_serde_precheck_t *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->type = avro_typeof(sc);
    avro_schema_t kids[512];
    size_t nk = 0;
    switch (k->type) {
    case AVRO_ENUM: k->n = avro_schema_enum_number_of_symbols(sc); break;
    case AVRO_FIXED: k->n = avro_schema_fixed_size(sc); break;
    case AVRO_ARRAY: kids[nk++] = avro_schema_array_items(sc); break;
    case AVRO_MAP: kids[nk++] = avro_schema_map_values(sc); break;
    case AVRO_UNION:
        k->n = (int64_t)avro_schema_union_size(sc);
        for (int64_t i = 0; i < k->n && nk < 512; i++)
            kids[nk++] = avro_schema_union_branch(sc, (int)i);
        break;
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(sc) && nk < 512; i++)
            kids[nk++] = avro_schema_record_field_get_by_index(sc, (int)i);
        break;
    default: break;
    }
    if (nk) {
        k->kids = calloc(nk, sizeof *k->kids);
        if (!k->kids) {
            free(k);
            return NULL;
        }
        for (size_t i = 0; i < nk; i++) {
            k->kids[i] = skim_compile(kids[i], depth + 1);
            k->nkids = i + 1;
            if (!k->kids[i]) {
                skim_free(k);
                return NULL;
            }
        }
    }
    return k;
}

static int read_varint(const unsigned char **p, const unsigned char *end, int64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return 1;
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return -1; /* more than 10 bytes */
}

/* Skip a length-prefixed string; map keys and string/bytes values. */
static int skip_len(const unsigned char **p, const unsigned char *end) {
    int64_t n;
    int rc = read_varint(p, end, &n);
    if (rc)
        return rc;
    if (n < 0)
        return -1;
    if (end - *p < n)
        return 1;
    *p += n;
    return 0;
}

static int precheck(const hvs_serde_precheck_t *k, const unsigned char **p,
                    const unsigned char *end) {
    int64_t n;
    int rc;
    switch (k->type) {
    case AVRO_NULL: return 0;
    case AVRO_BOOLEAN:
        if (*p >= end)
            return 1;
        return *(*p)++ > 1 ? -1 : 0;
    case AVRO_INT32:
    case AVRO_INT64: return read_varint(p, end, &n);
    case AVRO_ENUM:
        if ((rc = read_varint(p, end, &n)))
            return rc;
        return n < 0 || n >= k->n ? -1 : 0;
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
    case AVRO_FIXED: {
        int64_t size = k->type == AVRO_FLOAT ? 4 : k->type == AVRO_DOUBLE ? 8 : k->n;
        if (end - *p < size)
            return 1;
        *p += size;
        return 0;
    }
    case AVRO_STRING:
    case AVRO_BYTES: return skip_len(p, end);
    case AVRO_ARRAY:
    case AVRO_MAP:
        for (;;) {
            if ((rc = read_varint(p, end, &n)))
                return rc;
            if (n == 0)
                return 0;
            if (n < 0) { /* negative count: a byte size follows */
                int64_t bytes;
                if ((rc = read_varint(p, end, &bytes)))
                    return rc;
                if (bytes < 0)
                    return -1;
                n = -n;
            }
            /* every element takes at least one byte, except arrays of null */
            if (n > end - *p && !(k->kids[0]->type == AVRO_NULL && k->type == AVRO_ARRAY))
                return 1;
            if (n > 1000000)
                return -1;
            for (int64_t i = 0; i < n; i++) {
                if (k->type == AVRO_MAP && (rc = skip_len(p, end)))
                    return rc;
                if ((rc = precheck(k->kids[0], p, end)))
                    return rc;
            }
        }
    case AVRO_UNION:
        if ((rc = read_varint(p, end, &n)))
            return rc;
        if (n < 0 || n >= k->n)
            return -1;
        return precheck(k->kids[n], p, end);
    case AVRO_RECORD:
        for (size_t i = 0; i < k->nkids; i++)
            if ((rc = precheck(k->kids[i], p, end)))
                return rc;
        return 0;
    default: return -1;
    }
}

hvs_serde_precheck_t *hvs_serde_precheck_new(avro_schema_t schema) {
    return skim_compile(schema, 0);
}

void hvs_serde_precheck_destroy(hvs_serde_precheck_t *k) { skim_free(k); }

int hvs_serde_precheck_run(const hvs_serde_precheck_t *k, const unsigned char **p,
                           const unsigned char *end) {
    return precheck(k, p, end);
}
