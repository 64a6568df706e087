/* input.c - Aggregate and FeatureVector values into the scorer's structs (see input.h). */
#include "input.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/features.h"
#include "hvs/fields.h"
#include "hvs/layouts.h"
#include "hvs/log.h"
#include "hvs/wire.h"

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
    bool fast; /* the current FeatureVector is HVS_LAYOUT_FEATURE_VECTOR: the direct reader is on */
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
    out->heat_kwh = hvs_feat_round(out->heat_kwh, HVS_FEAT_PER_KWH); /* as kept (features.h) */
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
 * not take as it is (another writer schema, a malformed body) goes to the generic path instead,
 * which gives the canonical dead-letter reason; the reader is on only while the current schema
 * has the layout it was written for (HVS_LAYOUT_FEATURE_VECTOR). */


static void skip_strings(hvs_wire_in_t *w) {
    size_t n;
    for (int64_t k; !w->bad && (k = hvs_wire_block(w)) > 0;)
        for (int64_t i = 0; i < k && !w->bad; i++)
            (void)hvs_wire_string(w, &n);
}

/* The body straight into *r; false when anything is not as this reader takes it. */
static bool vector_from_bytes(const unsigned char *body, size_t len, raw_vector_t *r) {
    hvs_wire_in_t w = hvs_wire_in(body, len);
    memset(r, 0, sizeof *r);
    r->building = hvs_wire_string(&w, &r->building_len);
    if (hvs_wire_branch(&w, 2))
        r->apartment = hvs_wire_string(&w, &r->apartment_len);
    r->hour = hvs_wire_long(&w);
    r->as_of = hvs_wire_long(&w);
    r->fsv = hvs_wire_string(&w, &r->fsv_len);
    skip_strings(&w); /* names: the feature set's, checked by its version */
    for (int64_t k; !w.bad && (k = hvs_wire_block(&w)) > 0;)
        for (int64_t i = 0; i < k && !w.bad; i++, r->nvalues++) {
            double x = hvs_wire_double(&w);
            if (r->nvalues < HVS_FEATURES_COUNT)
                r->values[r->nvalues] = x;
        }
    r->has_target = hvs_wire_branch(&w, 2) == 1;
    if (r->has_target)
        r->target = hvs_wire_double(&w);
    skip_strings(&w); /* quality_flags */
    r->revision = hvs_wire_int(&w);
    return !w.bad && w.p == w.end;
}

int sc_input_vector_bytes(sc_input_t *in, hvs_decoder_t *dec, const void *buf, size_t len,
                          hvs_ms_t now, hvs_ms_t max_future, sc_vector_t *out, hvs_err_t *err) {
    raw_vector_t r;
    const unsigned char *body;
    size_t n;
    if (in->fast && (body = hvs_decoder_direct_body(dec, buf, len, &n)) &&
        vector_from_bytes(body, n, &r)) {
        in->direct++;
        return vector_check(&r, now, max_future, out, err);
    }
    avro_value_t *v;
    int rc = hvs_decoder_decode(dec, buf, len, &v, err);
    return rc ? rc : sc_input_vector(in, v, now, max_future, out, err);
}

uint64_t sc_input_direct(const sc_input_t *in) { return in->direct; }

/* ---- start-up ---------------------------------------------------------------------------- */

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
    in->fast = hvs_serde_has_layout(in->vec, HVS_LAYOUT_FEATURE_VECTOR);
    if (!in->fast)
        hvs_log_warn("scorer", "the FeatureVector schema is not the direct reader's: avro-c reads "
                               "every vector");
    *out = in;
    return 0;
}

void sc_input_destroy(sc_input_t *in) { free(in); }
