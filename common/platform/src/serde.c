/*
 * Encoders and decoders with the Confluent wire header (see hvs/serde.h); the catalogue they
 * take schemas from is serde_catalog.c.
 *
 * Decoding always reads with the message's writer schema (so a message is valid exactly when
 * its writer could have produced it), after the bounds pre-check (serde_precheck.c) has walked
 * the body; then, when the writer is not the reader's schema, copies the value into the reader
 * schema by field name (serde_json.c), filling defaults.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/serde.h"
#include "serde_internal.h"

struct hvs_encoder {
    hvs_serde_t *serde;
    int kind;
    int32_t id;
    avro_value_iface_t *iface;
    avro_value_t value;
    avro_writer_t writer;
    char *buf;
    size_t cap;
};

typedef struct dec_cache {
    int32_t id;
    hvs_serde_precheck_t *skim; /* the writer schema compiled for the bounds pre-check */
    avro_value_iface_t *iface;
    avro_value_t value;
    int same_as_reader;
} dec_cache_t;

struct hvs_decoder {
    hvs_serde_t *serde;
    int kind;
    avro_value_iface_t *reader_iface;
    avro_value_t reader_value;
    avro_reader_t reader;
    dec_cache_t *cache;
    size_t ncache, capcache;
    int32_t last_id;
};

/* ---- encoder -------------------------------------------------------------------------------- */

int hvs_encoder_new(hvs_serde_t *s, hvs_schema_kind_t kind, const char *topic, hvs_encoder_t **out,
                    hvs_err_t *err) {
    if ((int)kind < 0 || kind >= HVS_SCHEMA_COUNT)
        return hvs_err_set(err, HVS_EINVAL, NULL, "encoder: invalid kind %d", (int)kind);
    int32_t id;
    int rc = hvs_serde_encoder_id(s, kind, topic, &id, err);
    if (rc)
        return rc;
    hvs_encoder_t *e = calloc(1, sizeof *e);
    if (!e)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "encoder: out of memory");
    e->serde = s;
    e->kind = kind;
    e->id = id;
    e->cap = 4096;
    e->buf = malloc(e->cap);
    e->iface = avro_generic_class_from_schema(s->current[kind]);
    if (!e->buf || !e->iface || avro_generic_value_new(e->iface, &e->value) != 0) {
        if (e->iface)
            avro_value_iface_decref(e->iface);
        free(e->buf);
        free(e);
        return hvs_err_set(err, HVS_ENOMEM, NULL, "encoder: %s", avro_strerror());
    }
    e->writer = avro_writer_memory(e->buf + HVS_SERDE_HEADER_LEN,
                                   (int64_t)(e->cap - HVS_SERDE_HEADER_LEN));
    *out = e;
    return HVS_OK;
}

void hvs_encoder_destroy(hvs_encoder_t *e) {
    if (!e)
        return;
    avro_value_decref(&e->value);
    avro_value_iface_decref(e->iface);
    if (e->writer)
        avro_writer_free(e->writer);
    free(e->buf);
    free(e);
}

avro_value_t *hvs_encoder_value(hvs_encoder_t *e) {
    avro_value_reset(&e->value);
    /* Defaults are schema-valid by construction; failures would be a schema bug. */
    hvs_serde_apply_defaults(e->serde->defaults, &e->value, NULL);
    return &e->value;
}

avro_value_t *hvs_encoder_value_bare(hvs_encoder_t *e) {
    avro_value_reset(&e->value);
    return &e->value;
}

int32_t hvs_encoder_schema_id(const hvs_encoder_t *e) { return e->id; }

static void write_header(char *buf, int32_t id) {
    buf[0] = 0;
    buf[1] = (char)((uint32_t)id >> 24);
    buf[2] = (char)((uint32_t)id >> 16);
    buf[3] = (char)((uint32_t)id >> 8);
    buf[4] = (char)(uint32_t)id;
}

int hvs_encoder_encode(hvs_encoder_t *e, const void **buf, size_t *len, hvs_err_t *err) {
    for (;;) {
        avro_writer_memory_set_dest(e->writer, e->buf + HVS_SERDE_HEADER_LEN,
                                    (int64_t)(e->cap - HVS_SERDE_HEADER_LEN));
        int rc = avro_value_write(e->writer, &e->value);
        if (rc == 0)
            break;
        if (rc != ENOSPC)
            return hvs_err_set(err, HVS_ESERDE, "avro_encode", "encoding %s: %s",
                               hvs_schema_name(e->kind), avro_strerror());
        if (e->cap >= HVS_SERDE_MAX_MESSAGE)
            return hvs_err_set(err, HVS_ESERDE, "too_large", "encoding %s: larger than %d bytes",
                               hvs_schema_name(e->kind), HVS_SERDE_MAX_MESSAGE);
        char *nb = realloc(e->buf, e->cap * 2);
        if (!nb)
            return hvs_err_set(err, HVS_ENOMEM, NULL, "encoder: out of memory");
        e->buf = nb;
        e->cap *= 2;
    }
    write_header(e->buf, e->id);
    *buf = e->buf;
    *len = HVS_SERDE_HEADER_LEN + (size_t)avro_writer_tell(e->writer);
    return HVS_OK;
}

/* ---- decoder -------------------------------------------------------------------------------- */

int hvs_serde_read_header(const void *buf, size_t len, int32_t *schema_id, hvs_err_t *err) {
    const unsigned char *p = buf;
    if (!buf || len < HVS_SERDE_HEADER_LEN)
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_TRUNCATED,
                           "message of %zu bytes is shorter than the 5-byte wire header", len);
    if (p[0] != 0)
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_BAD_MAGIC,
                           "first byte is 0x%02x, not the wire-format magic 0x00", p[0]);
    *schema_id = (int32_t)(((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 8) |
                           p[4]);
    return HVS_OK;
}

int hvs_decoder_new(hvs_serde_t *s, int kind, hvs_decoder_t **out, hvs_err_t *err) {
    if (kind < -1 || kind >= HVS_SCHEMA_COUNT)
        return hvs_err_set(err, HVS_EINVAL, NULL, "decoder: invalid kind %d", kind);
    hvs_decoder_t *d = calloc(1, sizeof *d);
    if (!d)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "decoder: out of memory");
    d->serde = s;
    d->kind = kind;
    d->reader = avro_reader_memory("", 0);
    if (kind >= 0) {
        d->reader_iface = avro_generic_class_from_schema(s->current[kind]);
        if (!d->reader_iface || avro_generic_value_new(d->reader_iface, &d->reader_value)) {
            hvs_decoder_destroy(d);
            return hvs_err_set(err, HVS_ENOMEM, NULL, "decoder: %s", avro_strerror());
        }
    }
    *out = d;
    return HVS_OK;
}

void hvs_decoder_destroy(hvs_decoder_t *d) {
    if (!d)
        return;
    for (size_t i = 0; i < d->ncache; i++) {
        hvs_serde_precheck_destroy(d->cache[i].skim);
        avro_value_decref(&d->cache[i].value);
        avro_value_iface_decref(d->cache[i].iface);
    }
    free(d->cache);
    if (d->reader_iface) {
        avro_value_decref(&d->reader_value);
        avro_value_iface_decref(d->reader_iface);
    }
    if (d->reader)
        avro_reader_free(d->reader);
    free(d);
}

int32_t hvs_decoder_last_schema_id(const hvs_decoder_t *d) { return d->last_id; }

static dec_cache_t *decoder_entry(hvs_decoder_t *d, int32_t id, hvs_err_t *err) {
    for (size_t i = 0; i < d->ncache; i++)
        if (d->cache[i].id == id)
            return &d->cache[i];
    const hvs_writer_schema_t *ws = hvs_serde_writer(d->serde, id, err);
    if (!ws)
        return NULL;
    if (d->kind >= 0 && ws->kind != d->kind) {
        hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_SCHEMA_MISMATCH,
                    "schema id %d is a %s, expected a %s", (int)id,
                    ws->kind >= 0 ? hvs_schema_name(ws->kind) : "record of another name",
                    hvs_schema_name(d->kind));
        return NULL;
    }
    if (d->ncache == d->capcache) {
        size_t cap = d->capcache ? d->capcache * 2 : 4;
        dec_cache_t *n = realloc(d->cache, cap * sizeof *n);
        if (!n) {
            hvs_err_set(err, HVS_ENOMEM, NULL, "decoder: out of memory");
            return NULL;
        }
        d->cache = n;
        d->capcache = cap;
    }
    dec_cache_t *c = &d->cache[d->ncache];
    c->id = id;
    c->same_as_reader = d->kind < 0 || avro_schema_equal(ws->schema, d->serde->current[d->kind]);
    /* Equal to the reader's: decode into values of the reader's own schema object, so users
     * that recognise it by pointer (reading.c's layout check) take their fast path. */
    avro_schema_t vs = c->same_as_reader && d->kind >= 0 ? d->serde->current[d->kind] : ws->schema;
    c->skim = hvs_serde_precheck_new(ws->schema);
    c->iface = c->skim ? avro_generic_class_from_schema(vs) : NULL;
    if (!c->iface || avro_generic_value_new(c->iface, &c->value)) {
        if (c->iface)
            avro_value_iface_decref(c->iface);
        hvs_serde_precheck_destroy(c->skim);
        hvs_err_set(err, HVS_ENOMEM, NULL, "decoder: %s", avro_strerror());
        return NULL;
    }
    d->ncache++;
    return c;
}

int hvs_decoder_decode(hvs_decoder_t *d, const void *buf, size_t len, avro_value_t **out,
                       hvs_err_t *err) {
    int32_t id;
    int rc = hvs_serde_read_header(buf, len, &id, err);
    if (rc)
        return rc;
    if (len > HVS_SERDE_MAX_MESSAGE)
        return hvs_err_set(err, HVS_ESERDE, "too_large", "message of %zu bytes exceeds %d", len,
                           HVS_SERDE_MAX_MESSAGE);
    dec_cache_t *c = decoder_entry(d, id, err);
    if (!c)
        return err ? err->code : HVS_ESERDE;
    const unsigned char *body = (const unsigned char *)buf + HVS_SERDE_HEADER_LEN;
    const unsigned char *end = (const unsigned char *)buf + len, *pos = body;
    int pre = hvs_serde_precheck_run(c->skim, &pos, end);
    if (pre != 0)
        return hvs_err_set(
            err, HVS_ESERDE, pre > 0 ? HVS_SERDE_R_TRUNCATED : HVS_SERDE_R_AVRO,
            "schema id %d: %zu-byte body %s at byte %td", (int)id, len - HVS_SERDE_HEADER_LEN,
            pre > 0 ? "ends before its record does" : "is not valid Avro", pos - body);
    if (pos != end)
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_TRAILING,
                           "schema id %d: %zu-byte body has %td bytes after its record", (int)id,
                           len - HVS_SERDE_HEADER_LEN, end - pos);
    avro_reader_memory_set_source(d->reader, (const char *)buf + HVS_SERDE_HEADER_LEN,
                                  (int64_t)(len - HVS_SERDE_HEADER_LEN));
    avro_value_reset(&c->value);
    if (avro_value_read(d->reader, &c->value) != 0) {
        const char *why = avro_strerror();
        /* avro-c reports running out of input as "Cannot read ...": that is truncation. */
        int truncated = strstr(why, "Cannot read") != NULL;
        return hvs_err_set(err, HVS_ESERDE, truncated ? HVS_SERDE_R_TRUNCATED : HVS_SERDE_R_AVRO,
                           "schema id %d: body of %zu bytes: %s", (int)id,
                           len - HVS_SERDE_HEADER_LEN, why);
    }
    char extra;
    /* avro_reader_is_eof only knows files: probe for one more byte instead. */
    if (avro_read(d->reader, &extra, 1) == 0)
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_TRAILING,
                           "schema id %d: %zu-byte body has bytes after its record", (int)id,
                           len - HVS_SERDE_HEADER_LEN);
    d->last_id = id;
    if (c->same_as_reader) {
        *out = &c->value;
        return HVS_OK;
    }
    avro_value_reset(&d->reader_value);
    rc = hvs_serde_resolve_copy(d->serde->defaults, &c->value, &d->reader_value, "", err);
    if (rc)
        return rc;
    *out = &d->reader_value;
    return HVS_OK;
}

/* The field `name` of v, through a union's current branch. */
static int field(avro_value_t *v, const char *name, avro_value_t *out) {
    avro_value_t f;
    if (avro_value_get_by_name(v, name, &f, NULL))
        return -1;
    if (avro_value_get_type(&f) == AVRO_UNION)
        return avro_value_get_current_branch(&f, out) ? -1 : 0;
    *out = f;
    return 0;
}

const char *hvs_serde_field_str(avro_value_t *v, const char *name) {
    avro_value_t f;
    const char *s = NULL;
    size_t n;
    if (field(v, name, &f) || avro_value_get_type(&f) != AVRO_STRING)
        return NULL;
    return avro_value_get_string(&f, &s, &n) ? NULL : s;
}

int64_t hvs_serde_field_long(avro_value_t *v, const char *name) {
    avro_value_t f;
    int64_t l = 0;
    int32_t i = 0;
    if (field(v, name, &f))
        return 0;
    if (avro_value_get_type(&f) == AVRO_INT32)
        return avro_value_get_int(&f, &i) ? 0 : i;
    if (avro_value_get_type(&f) != AVRO_INT64 || avro_value_get_long(&f, &l))
        return 0;
    return l;
}

double hvs_serde_field_double(avro_value_t *v, const char *name) {
    avro_value_t f;
    double d;
    if (field(v, name, &f) || avro_value_get_type(&f) != AVRO_DOUBLE ||
        avro_value_get_double(&f, &d) || !isfinite(d))
        return NAN;
    return d;
}

int hvs_serde_set_str(avro_value_t *rec, const char *name, const char *s) {
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_string(&f, s) ? -1 : 0;
}

int hvs_serde_set_opt_str(avro_value_t *rec, const char *name, const char *s) {
    avro_value_t f, b;
    if (avro_value_get_by_name(rec, name, &f, NULL))
        return -1;
    if (!s)
        return avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b) ? -1 : 0;
    return avro_value_set_branch(&f, 1, &b) || avro_value_set_string(&b, s) ? -1 : 0;
}

int hvs_serde_set_long(avro_value_t *rec, const char *name, int64_t v) {
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_long(&f, v) ? -1 : 0;
}

int hvs_serde_set_double(avro_value_t *rec, const char *name, double v) {
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_double(&f, v) ? -1 : 0;
}

int hvs_serde_set_opt_double(avro_value_t *rec, const char *name, double v) {
    avro_value_t f, b;
    if (avro_value_get_by_name(rec, name, &f, NULL))
        return -1;
    if (!isfinite(v))
        return avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b) ? -1 : 0;
    return avro_value_set_branch(&f, 1, &b) || avro_value_set_double(&b, v) ? -1 : 0;
}

int hvs_serde_set_strings(avro_value_t *rec, const char *name, const char *const *s, int n) {
    avro_value_t f, item;
    if (avro_value_get_by_name(rec, name, &f, NULL))
        return -1;
    for (int i = 0; i < n; i++)
        if (avro_value_append(&f, &item, NULL) || avro_value_set_string(&item, s[i]))
            return -1;
    return 0;
}

/* ---- direct readers and writers ------------------------------------------------------------- */

const unsigned char *hvs_decoder_direct_body(hvs_decoder_t *d, const void *buf, size_t len,
                                             size_t *body_len) {
    int32_t id;
    if (d->kind < 0 || len < HVS_SERDE_HEADER_LEN || len > HVS_SERDE_MAX_MESSAGE ||
        hvs_serde_read_header(buf, len, &id, NULL) != HVS_OK)
        return NULL;
    dec_cache_t *c = decoder_entry(d, id, NULL);
    if (!c || !c->same_as_reader)
        return NULL;
    *body_len = len - HVS_SERDE_HEADER_LEN;
    return (const unsigned char *)buf + HVS_SERDE_HEADER_LEN;
}

typedef struct layout_buf {
    char *p;
    size_t len, used;
    bool full;
} layout_buf_t;

static void layout_put(layout_buf_t *b, const char *s) {
    size_t n = strlen(s);
    if (b->full || b->used + n + 1 > b->len) {
        b->full = true;
        return;
    }
    memcpy(b->p + b->used, s, n + 1);
    b->used += n;
}

static void layout_walk(layout_buf_t *b, avro_schema_t s, int depth) {
    if (!s || depth > 32) {
        b->full = true;
        return;
    }
    char num[32];
    switch (avro_typeof(s)) {
    case AVRO_RECORD:
        layout_put(b, avro_schema_name(s));
        layout_put(b, "{");
        for (size_t i = 0; i < avro_schema_record_size(s); i++) {
            if (i)
                layout_put(b, ",");
            layout_put(b, avro_schema_record_field_name(s, (int)i));
            layout_put(b, ":");
            layout_walk(b, avro_schema_record_field_get_by_index(s, (int)i), depth + 1);
        }
        layout_put(b, "}");
        break;
    case AVRO_UNION:
        for (size_t i = 0; i < avro_schema_union_size(s); i++) {
            if (i)
                layout_put(b, "|");
            layout_walk(b, avro_schema_union_branch(s, (int)i), depth + 1);
        }
        break;
    case AVRO_ARRAY:
        layout_put(b, "array<");
        layout_walk(b, avro_schema_array_items(s), depth + 1);
        layout_put(b, ">");
        break;
    case AVRO_MAP:
        layout_put(b, "map<");
        layout_walk(b, avro_schema_map_values(s), depth + 1);
        layout_put(b, ">");
        break;
    case AVRO_ENUM:
        layout_put(b, "enum(");
        for (int i = 0; i < avro_schema_enum_number_of_symbols(s); i++) {
            if (i)
                layout_put(b, ",");
            layout_put(b, avro_schema_enum_get(s, i));
        }
        layout_put(b, ")");
        break;
    case AVRO_FIXED:
        snprintf(num, sizeof num, "fixed(%lld)", (long long)avro_schema_fixed_size(s));
        layout_put(b, num);
        break;
    case AVRO_LINK:
        layout_put(b, "link:");
        layout_put(b, avro_schema_name(s));
        break;
    default: layout_put(b, avro_schema_type_name(s)); break;
    }
}

int hvs_serde_layout(avro_schema_t schema, char *buf, size_t len) {
    layout_buf_t b = {buf, len, 0, len == 0};
    if (len)
        buf[0] = '\0';
    layout_walk(&b, schema, 0);
    return b.full ? HVS_EINVAL : HVS_OK;
}

bool hvs_serde_has_layout(avro_schema_t schema, const char *layout) {
    size_t len = strlen(layout) + 2; /* room to see a longer rendering differ */
    char *buf = malloc(len);
    bool same = buf && schema && hvs_serde_layout(schema, buf, len) == HVS_OK &&
                strcmp(buf, layout) == 0;
    free(buf);
    return same;
}
