/* input.c - Aggregate and FeatureVector values into the scorer's structs (see input.h). */
#include "input.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/fields.h"

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
};

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
    *out = in;
    return 0;
}

void sc_input_destroy(sc_input_t *in) { free(in); }

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

int sc_input_vector(sc_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                    sc_vector_t *out, hvs_err_t *err) {
    int rc;
    int64_t hour, as_of, rev;
    if ((rc = check_schema(v, in->vec, "FeatureVector", err)) ||
        (rc = hvs_fields_id(v, in->vi[V_BUILDING], out->building, "building_id", err)) ||
        (rc = hvs_fields_id(v, in->vi[V_APARTMENT], out->apartment, "apartment_id", err)) ||
        (rc = hvs_fields_long(v, in->vi[V_HOUR], &hour, "target_hour", err)) ||
        (rc = hvs_fields_long(v, in->vi[V_AS_OF], &as_of, "as_of", err)) ||
        (rc = hvs_fields_long(v, in->vi[V_REV], &rev, "revision", err)))
        return rc;
    if (!out->building[0])
        return hvs_err_set(err, HVS_EINVAL, "bad_id", "building_id is empty");
    if ((rc = check_hour(hour, now, max_future, "target_hour", err)) ||
        (rc = hvs_fields_time(as_of, now, max_future, "as_of", err)))
        return rc;
    if (rev < 0 || rev > INT32_MAX / 65536)
        return hvs_err_set(err, HVS_EINVAL, HVS_R_OUT_OF_RANGE, "revision %lld", (long long)rev);
    avro_value_t f;
    const char *fsv;
    size_t len;
    if (hvs_fields_get(v, in->vi[V_FSV], &f) != 1 || avro_value_get_string(&f, &fsv, &len))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "feature_set_version missing");
    if (strcmp(fsv, hvs_features_version()) != 0)
        return hvs_err_set(err, HVS_ESERDE, SC_R_FEATURE_MISMATCH,
                           "feature set %.80s, this build computes %s", fsv,
                           hvs_features_version());
    size_t n = 0;
    if (hvs_fields_get(v, in->vi[V_VALUES], &f) != 1 || avro_value_get_size(&f, &n))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "values missing");
    if (n != HVS_FEATURES_COUNT)
        return hvs_err_set(err, HVS_ESERDE, SC_R_BAD_VECTOR, "%zu values for %d features", n,
                           HVS_FEATURES_COUNT);
    for (size_t i = 0; i < n; i++) {
        avro_value_t e;
        if (avro_value_get_by_index(&f, i, &e, NULL) || avro_value_get_double(&e, &out->x[i]))
            return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "values[%zu] unreadable", i);
        if (isinf(out->x[i]))
            return hvs_err_set(err, HVS_EINVAL, HVS_R_NON_FINITE, "%s is infinite",
                               hvs_features_names()[i]);
    }
    if ((rc = hvs_fields_double_opt(v, in->vi[V_TARGET], 0, 1e6, &out->target, "target", err)))
        return rc;
    out->hour = hour;
    out->as_of = as_of;
    out->revision = (int32_t)rev;
    return 0;
}
