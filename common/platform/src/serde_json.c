/*
 * Natural JSON <-> Avro values, schema defaults, and resolution of older writer schemas by field
 * name (avro-c 1.11's resolver refuses reader fields the writer lacks, so evolution by "field
 * added with a default" is done here).
 *
 * Natural JSON: records are objects, unions are the plain branch value (null for null), enums
 * their symbol, bytes/fixed a string whose code points 0-255 are the bytes (Avro's JSON
 * convention), doubles that are NaN/Inf are written as null and a null for a non-optional
 * double reads back as NaN (FeatureVector: NaN means "missing").
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/serde.h"
#include "serde_internal.h"

/* A named type used again by name (e.g. Building's Meter, defined in Apartment) is a link in
 * avro-c: its target is the type. */
static avro_schema_t unlinked(avro_schema_t s) {
    while (avro_typeof(s) == AVRO_LINK)
        s = avro_schema_link_target(s);
    return s;
}

typedef struct default_entry {
    char *record; /* full name */
    char *field;
    json_t *value;
} default_entry_t;

/* Defaults of one record schema by field index, looked up by schema pointer on the hot path
 * (encoders reset and re-default every message). Holds a schema reference so the pointer
 * cannot be freed and reused for another schema while it is cached. */
typedef struct record_defaults {
    avro_schema_t schema;
    size_t n;
    json_t **v; /* borrowed from the entries */
} record_defaults_t;

struct hvs_defaults {
    default_entry_t *e;
    size_t n, cap;
    record_defaults_t *rec;
    size_t nrec, caprec;
};

hvs_defaults_t *hvs_defaults_new(void) { return calloc(1, sizeof(hvs_defaults_t)); }

void hvs_defaults_destroy(hvs_defaults_t *d) {
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->e[i].record);
        free(d->e[i].field);
        json_decref(d->e[i].value);
    }
    free(d->e);
    for (size_t i = 0; i < d->nrec; i++) {
        avro_schema_decref(d->rec[i].schema);
        free(d->rec[i].v);
    }
    free(d->rec);
    free(d);
}

json_t *hvs_defaults_get(const hvs_defaults_t *d, const char *fullname, const char *field) {
    for (size_t i = 0; d && i < d->n; i++)
        if (strcmp(d->e[i].field, field) == 0 && strcmp(d->e[i].record, fullname) == 0)
            return d->e[i].value;
    return NULL;
}

/* Per-field defaults of record schema `schema` (NULL = out of memory). */
static const record_defaults_t *record_defaults(hvs_defaults_t *d, avro_schema_t schema) {
    for (size_t i = 0; i < d->nrec; i++)
        if (d->rec[i].schema == schema)
            return &d->rec[i];
    if (d->nrec == d->caprec) {
        size_t cap = d->caprec ? d->caprec * 2 : 16;
        record_defaults_t *n = realloc(d->rec, cap * sizeof *n);
        if (!n)
            return NULL;
        d->rec = n;
        d->caprec = cap;
    }
    record_defaults_t *r = &d->rec[d->nrec];
    r->n = avro_schema_record_size(schema);
    r->v = calloc(r->n ? r->n : 1, sizeof *r->v);
    if (!r->v)
        return NULL;
    char full[256];
    hvs_serde_fullname(schema, full, sizeof full);
    for (size_t i = 0; i < r->n; i++)
        r->v[i] = hvs_defaults_get(d, full, avro_schema_record_field_name(schema, (int)i));
    r->schema = avro_schema_incref(schema);
    d->nrec++;
    return r;
}

static int defaults_add(hvs_defaults_t *d, const char *record, const char *field, json_t *v) {
    if (hvs_defaults_get(d, record, field))
        return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 32;
        default_entry_t *ne = realloc(d->e, cap * sizeof *ne);
        if (!ne)
            return -1;
        d->e = ne;
        d->cap = cap;
    }
    default_entry_t *e = &d->e[d->n];
    e->record = strdup(record);
    e->field = strdup(field);
    if (!e->record || !e->field) {
        free(e->record);
        free(e->field);
        return -1;
    }
    e->value = json_incref(v);
    d->n++;
    return 0;
}

/* Walk a schema JSON tree; `ns` is the enclosing namespace. */
static int scan(hvs_defaults_t *d, json_t *node, const char *ns) {
    if (json_is_array(node)) {
        size_t i;
        json_t *x;
        json_array_foreach(node, i, x) if (scan(d, x, ns) != 0) return -1;
        return 0;
    }
    if (!json_is_object(node))
        return 0;
    const char *type = json_string_value(json_object_get(node, "type"));
    json_t *items = json_object_get(node, "items");
    json_t *values = json_object_get(node, "values");
    if (items && scan(d, items, ns) != 0)
        return -1;
    if (values && scan(d, values, ns) != 0)
        return -1;
    int is_record = type && strcmp(type, "record") == 0;
    int is_enum = type && strcmp(type, "enum") == 0;
    if (!is_record && !is_enum) {
        json_t *t = json_object_get(node, "type");
        return json_is_string(t) ? 0 : scan(d, t, ns);
    }
    const char *name = json_string_value(json_object_get(node, "name"));
    const char *own_ns = json_string_value(json_object_get(node, "namespace"));
    if (!name)
        return 0;
    char full[512];
    if (strchr(name, '.'))
        snprintf(full, sizeof full, "%s", name);
    else if (own_ns || ns)
        snprintf(full, sizeof full, "%s.%s", own_ns ? own_ns : ns, name);
    else
        snprintf(full, sizeof full, "%s", name);
    if (is_enum) {
        /* The enum's own default symbol, stored under field "": what a reader uses for a
         * symbol a newer writer added. */
        json_t *def = json_object_get(node, "default");
        return json_is_string(def) ? defaults_add(d, full, "", def) : 0;
    }
    char child_ns[512];
    const char *dot = strrchr(full, '.');
    snprintf(child_ns, sizeof child_ns, "%.*s", dot ? (int)(dot - full) : 0, full);
    json_t *fields = json_object_get(node, "fields");
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f) {
        const char *fname = json_string_value(json_object_get(f, "name"));
        json_t *def = json_object_get(f, "default");
        if (fname && def && defaults_add(d, full, fname, def) != 0)
            return -1;
        if (scan(d, json_object_get(f, "type"), dot ? child_ns : NULL) != 0)
            return -1;
    }
    return 0;
}

int hvs_defaults_scan(hvs_defaults_t *d, const char *schema_json, hvs_err_t *err) {
    json_error_t jerr;
    json_t *root = json_loads(schema_json, 0, &jerr);
    if (!root)
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_SYNTAX, "schema JSON: %s (line %d)",
                           jerr.text, jerr.line);
    int rc = scan(d, root, NULL);
    json_decref(root);
    return rc == 0 ? HVS_OK : hvs_err_set(err, HVS_ENOMEM, NULL, "schema defaults: out of memory");
}

const char *hvs_serde_fullname(avro_schema_t s, char *buf, size_t len) {
    const char *ns = avro_schema_namespace(s);
    const char *name = avro_schema_name(s);
    if (ns && *ns)
        snprintf(buf, len, "%s.%s", ns, name ? name : "");
    else
        snprintf(buf, len, "%s", name ? name : "");
    return buf;
}

static int type_error(hvs_err_t *err, const char *path, const char *want, json_t *j) {
    static const char *const names[] = {"object", "array", "string", "integer",
                                        "real",   "true",  "false",  "null"};
    int t = json_typeof(j);
    return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_TYPE, "field %s: expected %s, got %s",
                       path[0] ? path : "(root)", want, t >= 0 && t < 8 ? names[t] : "?");
}

/* Does JSON `j` fit Avro type `t` (for choosing a union branch)? */
static int json_fits(json_t *j, avro_type_t t) {
    switch (t) {
    case AVRO_NULL: return json_is_null(j);
    case AVRO_BOOLEAN: return json_is_boolean(j);
    case AVRO_INT32:
    case AVRO_INT64: return json_is_integer(j);
    case AVRO_FLOAT:
    case AVRO_DOUBLE: return json_is_number(j);
    case AVRO_STRING:
    case AVRO_BYTES:
    case AVRO_ENUM:
    case AVRO_FIXED: return json_is_string(j);
    case AVRO_ARRAY: return json_is_array(j);
    case AVRO_MAP:
    case AVRO_RECORD: return json_is_object(j);
    default: return 0;
    }
}

/* String of code points 0..255 -> bytes (Avro JSON bytes convention). Caller frees *out. */
static int latin1_decode(const char *s, size_t n, unsigned char **out, size_t *outlen) {
    unsigned char *b = malloc(n + 1);
    if (!b)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            b[k++] = c;
            i++;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < n && c <= 0xC3) {
            b[k++] = (unsigned char)(((c & 0x1F) << 6) | ((unsigned char)s[i + 1] & 0x3F));
            i += 2;
        } else {
            free(b);
            return -1;
        }
    }
    *out = b;
    *outlen = k;
    return 0;
}

static void child_path(char *buf, size_t len, const char *path, const char *name) {
    snprintf(buf, len, "%s%s%s", path, path[0] ? "." : "", name);
}

int hvs_serde_set_json(hvs_defaults_t *d, avro_value_t *v, json_t *j, const char *path,
                       hvs_err_t *err) {
    avro_type_t t = avro_value_get_type(v);
    avro_schema_t schema = avro_value_get_schema(v);
    char sub[512];
    switch (t) {
    case AVRO_NULL:
        if (!json_is_null(j))
            return type_error(err, path, "null", j);
        return avro_value_set_null(v) ? hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_TYPE,
                                                    "field %s: %s", path, avro_strerror())
                                      : HVS_OK;
    case AVRO_BOOLEAN:
        if (!json_is_boolean(j))
            return type_error(err, path, "boolean", j);
        avro_value_set_boolean(v, json_is_true(j));
        return HVS_OK;
    case AVRO_INT32: {
        if (!json_is_integer(j))
            return type_error(err, path, "integer", j);
        json_int_t x = json_integer_value(j);
        if (x < INT32_MIN || x > INT32_MAX)
            return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_TYPE,
                               "field %s: %lld does not fit an int", path, (long long)x);
        avro_value_set_int(v, (int32_t)x);
        return HVS_OK;
    }
    case AVRO_INT64:
        if (!json_is_integer(j))
            return type_error(err, path, "integer", j);
        avro_value_set_long(v, (int64_t)json_integer_value(j));
        return HVS_OK;
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        double x;
        if (json_is_number(j))
            x = json_number_value(j);
        else if (json_is_null(j))
            x = NAN; /* missing */
        else
            return type_error(err, path, "number", j);
        if (t == AVRO_FLOAT)
            avro_value_set_float(v, (float)x);
        else
            avro_value_set_double(v, x);
        return HVS_OK;
    }
    case AVRO_STRING:
        if (!json_is_string(j))
            return type_error(err, path, "string", j);
        avro_value_set_string_len(v, json_string_value(j), json_string_length(j) + 1);
        return HVS_OK;
    case AVRO_BYTES:
    case AVRO_FIXED: {
        if (!json_is_string(j))
            return type_error(err, path, "string of bytes", j);
        unsigned char *b;
        size_t n;
        if (latin1_decode(json_string_value(j), json_string_length(j), &b, &n) != 0)
            return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_TYPE,
                               "field %s: bytes must be code points 0-255", path);
        int rc = t == AVRO_BYTES ? avro_value_set_bytes(v, b, n) : avro_value_set_fixed(v, b, n);
        free(b);
        return rc ? hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_TYPE, "field %s: %s", path,
                                avro_strerror())
                  : HVS_OK;
    }
    case AVRO_ENUM: {
        if (!json_is_string(j))
            return type_error(err, path, "enum symbol", j);
        int idx = avro_schema_enum_get_by_name(schema, json_string_value(j));
        if (idx < 0)
            return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_TYPE,
                               "field %s: \"%.60s\" is not a symbol of %s", path,
                               json_string_value(j), avro_schema_name(schema));
        avro_value_set_enum(v, idx);
        return HVS_OK;
    }
    case AVRO_ARRAY: {
        if (!json_is_array(j))
            return type_error(err, path, "array", j);
        avro_value_reset(v);
        size_t i;
        json_t *x;
        json_array_foreach(j, i, x) {
            avro_value_t elem;
            if (avro_value_append(v, &elem, NULL))
                return hvs_err_set(err, HVS_ENOMEM, NULL, "field %s: %s", path, avro_strerror());
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            if (avro_value_get_type(&elem) == AVRO_RECORD) {
                int rc = hvs_serde_apply_defaults(d, &elem, err);
                if (rc)
                    return rc;
            }
            int rc = hvs_serde_set_json(d, &elem, x, sub, err);
            if (rc)
                return rc;
        }
        return HVS_OK;
    }
    case AVRO_MAP: {
        if (!json_is_object(j))
            return type_error(err, path, "object", j);
        avro_value_reset(v);
        const char *k;
        json_t *x;
        json_object_foreach(j, k, x) {
            avro_value_t elem;
            if (avro_value_add(v, k, &elem, NULL, NULL))
                return hvs_err_set(err, HVS_ENOMEM, NULL, "field %s: %s", path, avro_strerror());
            child_path(sub, sizeof sub, path, k);
            int rc = hvs_serde_set_json(d, &elem, x, sub, err);
            if (rc)
                return rc;
        }
        return HVS_OK;
    }
    case AVRO_UNION: {
        size_t nb = avro_schema_union_size(schema);
        for (size_t b = 0; b < nb; b++) {
            avro_schema_t bs = unlinked(avro_schema_union_branch(schema, (int)b));
            if (!json_fits(j, avro_typeof(bs)))
                continue;
            avro_value_t branch;
            if (avro_value_set_branch(v, (int)b, &branch))
                return hvs_err_set(err, HVS_ESERDE, NULL, "field %s: %s", path, avro_strerror());
            if (avro_typeof(bs) == AVRO_RECORD) {
                int rc = hvs_serde_apply_defaults(d, &branch, err);
                if (rc)
                    return rc;
            }
            return hvs_serde_set_json(d, &branch, j, path, err);
        }
        return type_error(err, path, "a value of one of the union's types", j);
    }
    case AVRO_RECORD: {
        if (!json_is_object(j))
            return type_error(err, path, "object", j);
        char full[256];
        hvs_serde_fullname(schema, full, sizeof full);
        size_t n = avro_schema_record_size(schema);
        for (size_t i = 0; i < n; i++) {
            const char *fname = avro_schema_record_field_name(schema, (int)i);
            avro_value_t field;
            avro_value_get_by_index(v, i, &field, NULL);
            child_path(sub, sizeof sub, path, fname);
            json_t *x = json_object_get(j, fname);
            if (!x) {
                x = hvs_defaults_get(d, full, fname);
                if (!x)
                    return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_MISSING,
                                       "field %s is required", sub);
            }
            int rc = hvs_serde_set_json(d, &field, x, sub, err);
            if (rc)
                return rc;
        }
        return HVS_OK;
    }
    default: return hvs_err_set(err, HVS_ESERDE, NULL, "field %s: unsupported Avro type", path);
    }
}

int hvs_serde_apply_defaults(hvs_defaults_t *d, avro_value_t *v, hvs_err_t *err) {
    avro_schema_t schema = avro_value_get_schema(v);
    if (avro_typeof(schema) != AVRO_RECORD)
        return HVS_OK;
    const record_defaults_t *r = record_defaults(d, schema);
    if (!r)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "schema defaults: out of memory");
    /* Copies: nested records may grow d->rec and move *r. */
    size_t n = r->n;
    json_t **defs = r->v;
    for (size_t i = 0; i < n; i++) {
        avro_value_t field;
        avro_value_get_by_index(v, i, &field, NULL);
        if (defs[i]) {
            int rc = hvs_serde_set_json(d, &field, defs[i],
                                        avro_schema_record_field_name(schema, (int)i), err);
            if (rc)
                return rc;
        } else if (avro_value_get_type(&field) == AVRO_RECORD) {
            int rc = hvs_serde_apply_defaults(d, &field, err);
            if (rc)
                return rc;
        }
    }
    return HVS_OK;
}

static int mismatch(hvs_err_t *err, const char *path, const char *what) {
    return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_SCHEMA_MISMATCH,
                       "writer schema does not resolve to the reader's at %s: %s",
                       path[0] ? path : "(root)", what);
}

int hvs_serde_resolve_copy(hvs_defaults_t *d, avro_value_t *src, avro_value_t *dst,
                           const char *path, hvs_err_t *err) {
    avro_type_t st = avro_value_get_type(src), dt = avro_value_get_type(dst);
    char sub[512];
    if (st == AVRO_UNION) {
        avro_value_t branch;
        if (avro_value_get_current_branch(src, &branch))
            return mismatch(err, path, "union without a branch");
        return hvs_serde_resolve_copy(d, &branch, dst, path, err);
    }
    if (dt == AVRO_UNION) {
        avro_schema_t us = avro_value_get_schema(dst);
        size_t nb = avro_schema_union_size(us);
        for (size_t b = 0; b < nb; b++) {
            avro_type_t bt = avro_typeof(unlinked(avro_schema_union_branch(us, (int)b)));
            int ok = bt == st || (st == AVRO_INT32 && (bt == AVRO_INT64 || bt == AVRO_DOUBLE)) ||
                     (st == AVRO_INT64 && bt == AVRO_DOUBLE) ||
                     (st == AVRO_FLOAT && bt == AVRO_DOUBLE);
            if (!ok)
                continue;
            avro_value_t branch;
            avro_value_set_branch(dst, (int)b, &branch);
            if (bt == AVRO_RECORD)
                hvs_serde_apply_defaults(d, &branch, NULL);
            return hvs_serde_resolve_copy(d, src, &branch, path, err);
        }
        return mismatch(err, path, "no union branch takes the writer's type");
    }
    switch (dt) {
    case AVRO_NULL:
        if (st != AVRO_NULL)
            return mismatch(err, path, "expected null");
        avro_value_set_null(dst);
        return HVS_OK;
    case AVRO_BOOLEAN: {
        int b;
        if (st != AVRO_BOOLEAN)
            return mismatch(err, path, "expected boolean");
        avro_value_get_boolean(src, &b);
        avro_value_set_boolean(dst, b);
        return HVS_OK;
    }
    case AVRO_INT32: {
        int32_t x;
        if (st != AVRO_INT32)
            return mismatch(err, path, "expected int");
        avro_value_get_int(src, &x);
        avro_value_set_int(dst, x);
        return HVS_OK;
    }
    case AVRO_INT64: {
        int64_t x;
        int32_t y;
        if (st == AVRO_INT64)
            avro_value_get_long(src, &x);
        else if (st == AVRO_INT32 && !avro_value_get_int(src, &y))
            x = y;
        else
            return mismatch(err, path, "expected long");
        avro_value_set_long(dst, x);
        return HVS_OK;
    }
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        double x;
        int32_t i32;
        int64_t i64;
        float f;
        if (st == AVRO_DOUBLE)
            avro_value_get_double(src, &x);
        else if (st == AVRO_FLOAT && !avro_value_get_float(src, &f))
            x = f;
        else if (st == AVRO_INT64 && !avro_value_get_long(src, &i64))
            x = (double)i64;
        else if (st == AVRO_INT32 && !avro_value_get_int(src, &i32))
            x = i32;
        else
            return mismatch(err, path, "expected a number");
        if (dt == AVRO_FLOAT)
            avro_value_set_float(dst, (float)x);
        else
            avro_value_set_double(dst, x);
        return HVS_OK;
    }
    case AVRO_STRING:
    case AVRO_BYTES: {
        const void *p;
        size_t n;
        if (st == AVRO_STRING) {
            const char *s;
            avro_value_get_string(src, &s, &n);
            p = s;
            n = n ? n - 1 : 0;
        } else if (st == AVRO_BYTES) {
            avro_value_get_bytes(src, &p, &n);
        } else {
            return mismatch(err, path, "expected string or bytes");
        }
        if (dt == AVRO_STRING) {
            char *tmp = malloc(n + 1);
            if (!tmp)
                return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
            memcpy(tmp, p, n);
            tmp[n] = '\0';
            avro_value_set_string_len(dst, tmp, n + 1);
            free(tmp);
        } else {
            avro_value_set_bytes(dst, (void *)p, n);
        }
        return HVS_OK;
    }
    case AVRO_FIXED: {
        const void *p;
        size_t n;
        if (st != AVRO_FIXED)
            return mismatch(err, path, "expected fixed");
        avro_value_get_fixed(src, &p, &n);
        avro_value_set_fixed(dst, (void *)p, n);
        return HVS_OK;
    }
    case AVRO_ENUM: {
        int idx;
        if (st != AVRO_ENUM)
            return mismatch(err, path, "expected enum");
        avro_value_get_enum(src, &idx);
        avro_schema_t ds = avro_value_get_schema(dst);
        const char *sym = avro_schema_enum_get(avro_value_get_schema(src), idx);
        int didx = sym ? avro_schema_enum_get_by_name(ds, sym) : -1;
        if (didx < 0) {
            /* A symbol newer than the reader: the reader enum's default, if it has one. */
            char full[256];
            json_t *def = hvs_defaults_get(d, hvs_serde_fullname(ds, full, sizeof full), "");
            didx = def ? avro_schema_enum_get_by_name(ds, json_string_value(def)) : -1;
        }
        if (didx < 0)
            return mismatch(err, path, "enum symbol unknown to the reader");
        avro_value_set_enum(dst, didx);
        return HVS_OK;
    }
    case AVRO_ARRAY: {
        if (st != AVRO_ARRAY)
            return mismatch(err, path, "expected array");
        size_t n;
        avro_value_get_size(src, &n);
        avro_value_reset(dst);
        for (size_t i = 0; i < n; i++) {
            avro_value_t se, de;
            avro_value_get_by_index(src, i, &se, NULL);
            avro_value_append(dst, &de, NULL);
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            int rc = hvs_serde_resolve_copy(d, &se, &de, sub, err);
            if (rc)
                return rc;
        }
        return HVS_OK;
    }
    case AVRO_MAP: {
        if (st != AVRO_MAP)
            return mismatch(err, path, "expected map");
        size_t n;
        avro_value_get_size(src, &n);
        avro_value_reset(dst);
        for (size_t i = 0; i < n; i++) {
            avro_value_t se, de;
            const char *key;
            avro_value_get_by_index(src, i, &se, &key);
            avro_value_add(dst, key, &de, NULL, NULL);
            child_path(sub, sizeof sub, path, key);
            int rc = hvs_serde_resolve_copy(d, &se, &de, sub, err);
            if (rc)
                return rc;
        }
        return HVS_OK;
    }
    case AVRO_RECORD: {
        if (st != AVRO_RECORD)
            return mismatch(err, path, "expected record");
        avro_schema_t ds = avro_value_get_schema(dst);
        char full[256];
        hvs_serde_fullname(ds, full, sizeof full);
        size_t n = avro_schema_record_size(ds);
        for (size_t i = 0; i < n; i++) {
            const char *fname = avro_schema_record_field_name(ds, (int)i);
            avro_value_t df, sf;
            avro_value_get_by_index(dst, i, &df, NULL);
            child_path(sub, sizeof sub, path, fname);
            if (avro_value_get_by_name(src, fname, &sf, NULL) == 0) {
                int rc = hvs_serde_resolve_copy(d, &sf, &df, sub, err);
                if (rc)
                    return rc;
                continue;
            }
            json_t *def = hvs_defaults_get(d, full, fname);
            if (!def)
                return mismatch(err, sub, "reader field without default is missing in the writer");
            int rc = hvs_serde_set_json(d, &df, def, sub, err);
            if (rc)
                return rc;
        }
        return HVS_OK;
    }
    default: return mismatch(err, path, "unsupported type");
    }
}

/* ---- value -> natural JSON ------------------------------------------------------------------ */

/* Bytes as a string of code points 0..255. */
static json_t *bytes_json(const unsigned char *p, size_t n) {
    char *s = malloc(n * 2 + 1);
    if (!s)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x80) {
            s[k++] = (char)p[i];
        } else {
            s[k++] = (char)(0xC0 | (p[i] >> 6));
            s[k++] = (char)(0x80 | (p[i] & 0x3F));
        }
    }
    json_t *j = json_stringn(s, k);
    free(s);
    return j;
}

static json_t *to_json(avro_value_t *v) {
    switch (avro_value_get_type(v)) {
    case AVRO_NULL: return json_null();
    case AVRO_BOOLEAN: {
        int b = 0;
        avro_value_get_boolean(v, &b);
        return json_boolean(b);
    }
    case AVRO_INT32: {
        int32_t x = 0;
        avro_value_get_int(v, &x);
        return json_integer(x);
    }
    case AVRO_INT64: {
        int64_t x = 0;
        avro_value_get_long(v, &x);
        return json_integer((json_int_t)x);
    }
    case AVRO_FLOAT: {
        float x = 0;
        avro_value_get_float(v, &x);
        return isfinite(x) ? json_real(x) : json_null();
    }
    case AVRO_DOUBLE: {
        double x = 0;
        avro_value_get_double(v, &x);
        return isfinite(x) ? json_real(x) : json_null();
    }
    case AVRO_STRING: {
        const char *s = NULL;
        size_t n = 0;
        avro_value_get_string(v, &s, &n);
        json_t *j = json_stringn(s ? s : "", n ? n - 1 : 0);
        /* not valid UTF-8: show its bytes rather than fail */
        return j ? j : bytes_json((const unsigned char *)s, n ? n - 1 : 0);
    }
    case AVRO_BYTES: {
        const void *p = NULL;
        size_t n = 0;
        avro_value_get_bytes(v, &p, &n);
        return bytes_json(p, n);
    }
    case AVRO_FIXED: {
        const void *p = NULL;
        size_t n = 0;
        avro_value_get_fixed(v, &p, &n);
        return bytes_json(p, n);
    }
    case AVRO_ENUM: {
        int idx = 0;
        avro_value_get_enum(v, &idx);
        const char *sym = avro_schema_enum_get(avro_value_get_schema(v), idx);
        return sym ? json_string(sym) : json_integer(idx);
    }
    case AVRO_ARRAY:
    case AVRO_MAP:
    case AVRO_RECORD: {
        int is_array = avro_value_get_type(v) == AVRO_ARRAY;
        json_t *out = is_array ? json_array() : json_object();
        size_t n = 0;
        avro_value_get_size(v, &n);
        for (size_t i = 0; out && i < n; i++) {
            avro_value_t child;
            const char *name = NULL;
            avro_value_get_by_index(v, i, &child, &name);
            json_t *c = to_json(&child);
            if (!c) {
                json_decref(out);
                return NULL;
            }
            if (is_array)
                json_array_append_new(out, c);
            else
                json_object_set_new(out, name, c);
        }
        return out;
    }
    case AVRO_UNION: {
        avro_value_t branch;
        if (avro_value_get_current_branch(v, &branch))
            return json_null();
        return to_json(&branch);
    }
    default: return NULL;
    }
}

int hvs_serde_value_to_json(const avro_value_t *v, char **json, hvs_err_t *err) {
    json_t *j = to_json((avro_value_t *)v);
    if (!j)
        return hvs_err_set(err, HVS_ESERDE, NULL, "value cannot be shown as JSON");
    *json = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(j);
    return *json ? HVS_OK : hvs_err_set(err, HVS_ENOMEM, NULL, "JSON: out of memory");
}

int hvs_serde_value_from_json(hvs_serde_t *s, avro_value_t *v, const char *json, size_t len,
                              hvs_err_t *err) {
    json_error_t jerr;
    json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!j)
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_SYNTAX, "JSON: %s (column %d)",
                           jerr.text, jerr.column);
    avro_value_reset(v);
    int rc = hvs_serde_set_json(s->defaults, v, j, "", err);
    json_decref(j);
    return rc;
}

int hvs_serde_value_defaults(hvs_serde_t *s, avro_value_t *record, hvs_err_t *err) {
    return hvs_serde_apply_defaults(s->defaults, record, err);
}
