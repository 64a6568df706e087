/* input.c - Aggregate and FeatureVector values into the scorer's structs (see input.h). */
#include "input.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/fields.h"
#include "hvs/log.h"
#include "hvs/topics.h"

enum { A_BUILDING, A_APARTMENT, A_WS, A_SIZE, A_REV, A_HEAT, A_N };
static const char *const agg_fields[A_N] = {"building_id",    "apartment_id", "window_start",
                                            "window_size_ms", "revision",     "heating_kwh"};
enum { V_BUILDING, V_APARTMENT, V_HOUR, V_AS_OF, V_FSV, V_VALUES, V_TARGET, V_REV, V_N };
static const char *const vec_fields[V_N] = {
    "building_id",         "apartment_id", "target_hour", "as_of",
    "feature_set_version", "values",       "target",      "revision"};

struct sc_input {
    avro_schema_t agg, vec;
    int ai[A_N], vi[V_N];
    int32_t vec_id; /* the current FeatureVector's schema id */
    bool fast;      /* the direct reader agreed with avro-c at start */
    uint64_t direct;
};


static int check_schema(avro_value_t *v, avro_schema_t want, const char *what, hvs_err_t *err) {
    if (avro_value_get_schema(v) != want && !avro_schema_equal(avro_value_get_schema(v), want))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "not a %s of the current schema",
                           what);
    return 0;
}

static int check_hour(hvs_ms_t hour, hvs_ms_t now, hvs_ms_t max_future, const char *name,
                      hvs_err_t *err) {
    if (hour % HVS_MS_HOUR != 0)
        return hvs_err_set(err, HVS_EINVAL, SC_R_BAD_WINDOW, "%s %lld is not on the hour", name,
                           (long long)hour);
    return hvs_fields_time(hour, now, max_future, name, err);
}

int sc_input_aggregate(sc_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                       sc_aggregate_t *out, hvs_err_t *err) {
    int rc;
    int64_t ws, size, rev;
    if ((rc = check_schema(v, in->agg, "Aggregate", err)) ||
        (rc = hvs_fields_id(v, in->ai[A_BUILDING], out->building, "building_id", err)) ||
        (rc = hvs_fields_id(v, in->ai[A_APARTMENT], out->apartment, "apartment_id", err)) ||
        (rc = hvs_fields_long(v, in->ai[A_WS], &ws, "window_start", err)) ||
        (rc = hvs_fields_long(v, in->ai[A_SIZE], &size, "window_size_ms", err)) ||
        (rc = hvs_fields_long(v, in->ai[A_REV], &rev, "revision", err)))
        return rc;
    if (!out->building[0])
        return hvs_err_set(err, HVS_EINVAL, "bad_id", "building_id is empty");
    if (size != HVS_MS_HOUR)
        return hvs_err_set(err, HVS_EINVAL, SC_R_BAD_WINDOW, "window of %lld ms is not an hour",
                           (long long)size);
    if ((rc = check_hour(ws, now, max_future, "window_start", err)))
        return rc;
    if (rev < 0 || rev > INT32_MAX / 2)
        return hvs_err_set(err, HVS_EINVAL, HVS_R_OUT_OF_RANGE, "revision %lld", (long long)rev);
    out->hour = ws;
    out->revision = (int32_t)rev;
    out->nrooms = 0;
    if ((rc = hvs_fields_double_opt(v, in->ai[A_HEAT], 0, 1e6, &out->heat_kwh, "heating_kwh", err)))
        return rc;
    if (!out->apartment[0])
        return 0; /* building level: no rooms to judge */
    return hvs_rooms_read(v, out->rooms, HVS_ROOMS_MAX, &out->nrooms, err);
}

/* A FeatureVector's fields as read, before any check (the generic and the direct reader fill it;
 * vector_check judges it, so both paths refuse the same records for the same reasons). */
typedef struct raw_vector {
    const char *building, *apartment, *fsv; /* apartment NULL: null */
    size_t building_len, apartment_len, fsv_len;
    int64_t hour, as_of, revision;
    size_t nvalues; /* values beyond HVS_FEATURES_COUNT are counted, not kept */
    double values[HVS_FEATURES_COUNT];
    bool has_target;
    double target;
} raw_vector_t;

static bool same_bytes(const char *a, size_t an, const char *b, size_t bn) {
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static bool raw_equal(const raw_vector_t *a, const raw_vector_t *b) {
    if (!same_bytes(a->building, a->building_len, b->building, b->building_len) ||
        !a->apartment != !b->apartment ||
        (a->apartment &&
         !same_bytes(a->apartment, a->apartment_len, b->apartment, b->apartment_len)) ||
        !same_bytes(a->fsv, a->fsv_len, b->fsv, b->fsv_len) || a->hour != b->hour ||
        a->as_of != b->as_of || a->revision != b->revision || a->nvalues != b->nvalues ||
        a->has_target != b->has_target || (a->has_target && a->target != b->target))
        return false;
    for (size_t i = 0; i < a->nvalues && i < HVS_FEATURES_COUNT; i++)
        if (memcmp(&a->values[i], &b->values[i], sizeof a->values[i]) != 0)
            return false;
    return true;
}

static int copy_id(const char *s, size_t n, char *dst, const char *name, hvs_err_t *err) {
    int rc = hvs_id_check_n(s, n, name, err); /* the one id rule: bad_id / id_too_long */
    if (rc)
        return rc;
    memcpy(dst, s, n);
    dst[n] = 0;
    return 0;
}

static int vector_check(const raw_vector_t *r, hvs_ms_t now, hvs_ms_t max_future, sc_vector_t *out,
                        hvs_err_t *err) {
    int rc;
    if ((rc = copy_id(r->building, r->building_len, out->building, "building_id", err)))
        return rc;
    out->apartment[0] = 0;
    if (r->apartment &&
        (rc = copy_id(r->apartment, r->apartment_len, out->apartment, "apartment_id", err)))
        return rc;
    if (!out->building[0])
        return hvs_err_set(err, HVS_EINVAL, "bad_id", "building_id is empty");
    if ((rc = check_hour(r->hour, now, max_future, "target_hour", err)) ||
        (rc = hvs_fields_time(r->as_of, now, max_future, "as_of", err)))
        return rc;
    if (r->revision < 0 || r->revision > INT32_MAX / 65536)
        return hvs_err_set(err, HVS_EINVAL, HVS_R_OUT_OF_RANGE, "revision %lld",
                           (long long)r->revision);
    const char *ours = hvs_features_version();
    if (r->fsv_len != strlen(ours) || memcmp(r->fsv, ours, r->fsv_len) != 0)
        return hvs_err_set(err, HVS_ESERDE, SC_R_FEATURE_MISMATCH,
                           "feature set %.*s, this build computes %s",
                           (int)(r->fsv_len > 80 ? 80 : r->fsv_len), r->fsv, ours);
    if (r->nvalues != HVS_FEATURES_COUNT)
        return hvs_err_set(err, HVS_ESERDE, SC_R_BAD_VECTOR, "%zu values for %d features",
                           r->nvalues, HVS_FEATURES_COUNT);
    for (size_t i = 0; i < r->nvalues; i++) {
        if (isinf(r->values[i]))
            return hvs_err_set(err, HVS_EINVAL, HVS_R_NON_FINITE, "%s is infinite",
                               hvs_features_names()[i]);
        out->x[i] = r->values[i];
    }
    out->target = NAN;
    if (r->has_target) {
        if (!isfinite(r->target))
            return hvs_err_set(err, HVS_EINVAL, HVS_R_NON_FINITE, "target is NaN or infinite");
        if (r->target < 0 || r->target > 1e6)
            return hvs_err_set(err, HVS_EINVAL, HVS_R_OUT_OF_RANGE,
                               "target = %g outside [0, 1e+06]", r->target);
        out->target = r->target;
    }
    out->hour = r->hour;
    out->as_of = r->as_of;
    out->revision = (int32_t)r->revision;
    return 0;
}

/* The fields through avro-c's generic value (any writer version serde resolved). */
static int vector_from_value(sc_input_t *in, avro_value_t *v, raw_vector_t *r, hvs_err_t *err) {
    int rc;
    avro_value_t f;
    size_t len;
    if ((rc = check_schema(v, in->vec, "FeatureVector", err)))
        return rc;
    memset(r, 0, sizeof *r);
    if (hvs_fields_get(v, in->vi[V_BUILDING], &f) != 1 ||
        avro_value_get_string(&f, &r->building, &len))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "building_id is not a string");
    r->building_len = len ? len - 1 : 0; /* avro-c counts the terminating NUL */
    int p = hvs_fields_get(v, in->vi[V_APARTMENT], &f);
    if (p < 0 || (p == 1 && avro_value_get_string(&f, &r->apartment, &len)))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "apartment_id is not a string");
    if (p == 1)
        r->apartment_len = len ? len - 1 : 0;
    if ((rc = hvs_fields_long(v, in->vi[V_HOUR], &r->hour, "target_hour", err)) ||
        (rc = hvs_fields_long(v, in->vi[V_AS_OF], &r->as_of, "as_of", err)) ||
        (rc = hvs_fields_long(v, in->vi[V_REV], &r->revision, "revision", err)))
        return rc;
    if (hvs_fields_get(v, in->vi[V_FSV], &f) != 1 || avro_value_get_string(&f, &r->fsv, &len))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "feature_set_version missing");
    r->fsv_len = len ? len - 1 : 0;
    if (hvs_fields_get(v, in->vi[V_VALUES], &f) != 1 || avro_value_get_size(&f, &r->nvalues))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "values missing");
    for (size_t i = 0; i < r->nvalues && i < HVS_FEATURES_COUNT; i++) {
        avro_value_t e;
        if (avro_value_get_by_index(&f, i, &e, NULL) || avro_value_get_double(&e, &r->values[i]))
            return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "values[%zu] unreadable", i);
    }
    p = hvs_fields_get(v, in->vi[V_TARGET], &f);
    if (p < 0 || (p == 1 && avro_value_get_double(&f, &r->target)))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "target is not a double");
    r->has_target = p == 1;
    return 0;
}

int sc_input_vector(sc_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                    sc_vector_t *out, hvs_err_t *err) {
    raw_vector_t r;
    int rc = vector_from_value(in, v, &r, err);
    return rc ? rc : vector_check(&r, now, max_future, out, err);
}

/* ---- the direct reader ------------------------------------------------------------------------
 * A FeatureVector of the current schema read straight from its Avro binary: avro-c's generic
 * decode allocates every one of the 55 names (the same in every vector) and copies the record
 * into the reader's schema, most of the scorer's decoding time. Anything the direct reader does
 * not expect (another schema id, a malformed body) goes to the generic path instead, which
 * gives the canonical dead-letter reason; sc_input_new checks the two agree at start. */

typedef struct cur {
    const unsigned char *p, *end;
} cur_t;

static int get_long(cur_t *c, int64_t *v) {
    uint64_t z = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end)
            return -1;
        unsigned char b = *c->p++;
        z |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
            return 0;
        }
    }
    return -1;
}

static int get_bytes(cur_t *c, const char **s, size_t *n) {
    int64_t len;
    if (get_long(c, &len) || len < 0 || len > c->end - c->p)
        return -1;
    *s = (const char *)c->p;
    *n = (size_t)len;
    c->p += len;
    return 0;
}

static int get_double(cur_t *c, double *v) {
    if (c->end - c->p < 8)
        return -1;
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = (u << 8) | c->p[i];
    memcpy(v, &u, sizeof *v);
    c->p += 8;
    return 0;
}

/* The blocks of an array: calls item for each element; -1 on a malformed block. */
static int get_block_count(cur_t *c, int64_t *count) {
    if (get_long(c, count))
        return -1;
    if (*count < 0) { /* a negative count is followed by the block's size in bytes */
        int64_t size;
        if (get_long(c, &size) || *count == INT64_MIN)
            return -1;
        *count = -*count;
    }
    return *count > c->end - c->p ? -1 : 0; /* every item takes at least a byte */
}

static int skip_strings(cur_t *c) {
    int64_t n;
    do {
        if (get_block_count(c, &n))
            return -1;
        for (int64_t i = 0; i < n; i++) {
            const char *s;
            size_t len;
            if (get_bytes(c, &s, &len))
                return -1;
        }
    } while (n);
    return 0;
}

static int vector_from_bytes(const unsigned char *body, size_t len, raw_vector_t *r) {
    cur_t c = {body, body + len};
    int64_t branch, n;
    memset(r, 0, sizeof *r);
    if (get_bytes(&c, &r->building, &r->building_len) || get_long(&c, &branch) || branch < 0 ||
        branch > 1)
        return -1;
    if (branch == 1 && get_bytes(&c, &r->apartment, &r->apartment_len))
        return -1;
    if (get_long(&c, &r->hour) || get_long(&c, &r->as_of) || get_bytes(&c, &r->fsv, &r->fsv_len) ||
        skip_strings(&c))
        return -1;
    do {
        if (get_block_count(&c, &n))
            return -1;
        for (int64_t i = 0; i < n; i++) {
            double x;
            if (get_double(&c, &x))
                return -1;
            if (r->nvalues < HVS_FEATURES_COUNT)
                r->values[r->nvalues] = x;
            r->nvalues++;
        }
    } while (n);
    if (get_long(&c, &branch) || branch < 0 || branch > 1)
        return -1;
    r->has_target = branch == 1;
    if (r->has_target && get_double(&c, &r->target))
        return -1;
    if (skip_strings(&c) || get_long(&c, &r->revision))
        return -1;
    return c.p == c.end ? 0 : -1;
}

int sc_input_vector_bytes(sc_input_t *in, hvs_decoder_t *dec, const void *buf, size_t len,
                          hvs_ms_t now, hvs_ms_t max_future, sc_vector_t *out, hvs_err_t *err) {
    const unsigned char *b = buf;
    raw_vector_t r;
    if (in->fast && len >= 5 && b[0] == 0 &&
        (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]) ==
            in->vec_id &&
        vector_from_bytes(b + 5, len - 5, &r) == 0) {
        in->direct++;
        return vector_check(&r, now, max_future, out, err);
    }
    avro_value_t *v;
    int rc = hvs_decoder_decode(dec, buf, len, &v, err);
    return rc ? rc : sc_input_vector(in, v, now, max_future, out, err);
}

uint64_t sc_input_direct(const sc_input_t *in) { return in->direct; }

/* ---- start-up ---------------------------------------------------------------------------- */

/* A sample vector encoded by avro-c, read by both readers: the direct one is used only when
 * they agree (a schema it does not know would not). */
static int direct_selfcheck(sc_input_t *in, hvs_serde_t *s, hvs_err_t *err) {
    hvs_encoder_t *enc = NULL;
    hvs_decoder_t *dec = NULL;
    int rc;
    if ((rc = hvs_encoder_new(s, HVS_SCHEMA_FEATURE_VECTOR, hvs_topic_name("features.hourly"), &enc,
                              err)) ||
        (rc = hvs_decoder_new(s, HVS_SCHEMA_FEATURE_VECTOR, &dec, err))) {
        hvs_encoder_destroy(enc);
        return rc;
    }
    in->vec_id = hvs_encoder_schema_id(enc);
    avro_value_t *v = hvs_encoder_value(enc), f, item, br;
    const char *const *names = hvs_features_names();
    bool bad = avro_value_get_by_name(v, "building_id", &f, NULL) ||
               avro_value_set_string(&f, "bldg self-check") ||
               avro_value_get_by_name(v, "apartment_id", &f, NULL) ||
               avro_value_set_branch(&f, 1, &br) || avro_value_set_string(&br, "apt_1") ||
               avro_value_get_by_name(v, "target_hour", &f, NULL) ||
               avro_value_set_long(&f, 1733011200000LL) ||
               avro_value_get_by_name(v, "as_of", &f, NULL) ||
               avro_value_set_long(&f, 1733018400000LL) ||
               avro_value_get_by_name(v, "feature_set_version", &f, NULL) ||
               avro_value_set_string(&f, hvs_features_version()) ||
               avro_value_get_by_name(v, "target", &f, NULL) || avro_value_set_branch(&f, 1, &br) ||
               avro_value_set_double(&br, 1.25) ||
               avro_value_get_by_name(v, "quality_flags", &f, NULL) ||
               avro_value_append(&f, &item, NULL) ||
               avro_value_set_string(&item, "missing_weather") ||
               avro_value_get_by_name(v, "revision", &f, NULL) || avro_value_set_int(&f, 6);
    for (int k = 0; !bad && k < HVS_FEATURES_COUNT; k++)
        bad = avro_value_get_by_name(v, "names", &f, NULL) || avro_value_append(&f, &item, NULL) ||
              avro_value_set_string(&item, names[k]) ||
              avro_value_get_by_name(v, "values", &f, NULL) || avro_value_append(&f, &item, NULL) ||
              avro_value_set_double(&item, k % 7 == 3 ? NAN : -1.5 + 0.25 * k);
    const void *buf;
    size_t len;
    avro_value_t *got;
    raw_vector_t a, b;
    in->fast = !bad && hvs_encoder_encode(enc, &buf, &len, err) == 0 && len > 5 &&
               vector_from_bytes((const unsigned char *)buf + 5, len - 5, &a) == 0 &&
               hvs_decoder_decode(dec, buf, len, &got, err) == 0 &&
               vector_from_value(in, got, &b, err) == 0 && raw_equal(&a, &b);
    if (!in->fast)
        hvs_log_warn("scorer", "the direct FeatureVector reader disagrees with avro-c: not used");
    hvs_decoder_destroy(dec);
    hvs_encoder_destroy(enc);
    return 0;
}

int sc_input_new(hvs_serde_t *s, sc_input_t **out, hvs_err_t *err) {
    sc_input_t *in = calloc(1, sizeof *in);
    if (!in)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "scorer input");
    in->agg = hvs_serde_schema(s, HVS_SCHEMA_AGGREGATE);
    in->vec = hvs_serde_schema(s, HVS_SCHEMA_FEATURE_VECTOR);
    for (int i = 0; i < A_N; i++)
        if ((in->ai[i] = avro_schema_record_field_get_index(in->agg, agg_fields[i])) < 0) {
            free(in);
            return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "Aggregate lacks %s",
                               agg_fields[i]);
        }
    for (int i = 0; i < V_N; i++)
        if ((in->vi[i] = avro_schema_record_field_get_index(in->vec, vec_fields[i])) < 0) {
            free(in);
            return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "FeatureVector lacks %s",
                               vec_fields[i]);
        }
    int rc = direct_selfcheck(in, s, err);
    if (rc) {
        free(in);
        return rc;
    }
    *out = in;
    return 0;
}

void sc_input_destroy(sc_input_t *in) { free(in); }
