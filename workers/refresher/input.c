/* input.c - aggregates.15m and forecasts.baseline records as plain values (see input.h). */
#include "input.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/fields.h"

#define Q RF_QUARTER_MS

enum { A_BUILDING, A_APARTMENT, A_WS, A_SIZE, A_REV, A_HEAT, A_N };
static const char *const agg_fields[A_N] = {"building_id",    "apartment_id", "window_start",
                                            "window_size_ms", "revision",     "heating_kwh"};
enum { F_BUILDING, F_ISSUED, F_KIND, F_POINTS, F_MODEL, F_VERSION, F_N };
static const char *const fc_fields[F_N] = {"building_id", "issued_at",  "kind",
                                           "points",      "model_name", "model_version"};

struct rf_input {
    avro_schema_t agg, fc;
    int ai[A_N], fi[F_N];
    char model[HVS_ID_MAX + 64];
    hvs_ms_t target[RF_MAX_POINTS];
    double yhat[RF_MAX_POINTS], lo[RF_MAX_POINTS], hi[RF_MAX_POINTS];
};

static int field_index(avro_schema_t s, const char *f, const char *what, int *out, hvs_err_t *err) {
    if ((*out = avro_schema_record_field_get_index(s, f)) < 0)
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "%s lacks %s", what, f);
    return 0;
}

int rf_input_new(hvs_serde_t *s, rf_input_t **out, hvs_err_t *err) {
    rf_input_t *in = calloc(1, sizeof *in);
    if (!in)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "refresher input");
    in->agg = hvs_serde_schema(s, HVS_SCHEMA_AGGREGATE);
    in->fc = hvs_serde_schema(s, HVS_SCHEMA_FORECAST);
    int rc = 0;
    for (int i = 0; i < A_N && rc == 0; i++)
        rc = field_index(in->agg, agg_fields[i], "Aggregate", &in->ai[i], err);
    for (int i = 0; i < F_N && rc == 0; i++)
        rc = field_index(in->fc, fc_fields[i], "Forecast", &in->fi[i], err);
    if (rc) {
        free(in);
        return rc;
    }
    *out = in;
    return 0;
}

void rf_input_destroy(rf_input_t *in) { free(in); }

static bool of_schema(avro_value_t *v, avro_schema_t s) {
    return avro_value_get_schema(v) == s || avro_schema_equal(avro_value_get_schema(v), s);
}

int rf_input_quarter(rf_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                     rf_quarter_t *out, hvs_err_t *err) {
    if (!of_schema(v, in->agg))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA,
                           "not an Aggregate of the current schema");
    char apt[HVS_ID_MAX + 1];
    int64_t ws, size, rev;
    int rc;
    if ((rc = hvs_fields_id(v, in->ai[A_BUILDING], out->building, "building_id", err)) ||
        (rc = hvs_fields_id(v, in->ai[A_APARTMENT], apt, "apartment_id", err)) ||
        (rc = hvs_fields_long(v, in->ai[A_WS], &ws, "window_start", err)) ||
        (rc = hvs_fields_long(v, in->ai[A_SIZE], &size, "window_size_ms", err)) ||
        (rc = hvs_fields_long(v, in->ai[A_REV], &rev, "revision", err)))
        return rc;
    if (!out->building[0])
        return hvs_err_set(err, HVS_EINVAL, "bad_id", "building_id is empty");
    out->apartment = apt[0] != 0;
    if (size != Q || ws % Q != 0)
        return hvs_err_set(err, HVS_EINVAL, "bad_window",
                           "window of %lld ms at %lld is not a quarter hour on the quarter",
                           (long long)size, (long long)ws);
    if (rev < 0)
        return hvs_err_set(err, HVS_EINVAL, HVS_R_OUT_OF_RANGE, "revision %lld", (long long)rev);
    if ((rc = hvs_fields_time(ws, now, max_future, "window_start", err)))
        return rc;
    out->start = ws;
    return hvs_fields_double_opt(v, in->ai[A_HEAT], 0, 1e9, &out->kwh, "heating_kwh", err);
}

static int opt_double(avro_value_t *rec, const char *name, double *out, hvs_err_t *err) {
    avro_value_t f, b;
    int disc;
    if (avro_value_get_by_name(rec, name, &f, NULL) || avro_value_get_discriminant(&f, &disc) ||
        avro_value_get_current_branch(&f, &b))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "point lacks %s", name);
    if (disc == 0) {
        *out = NAN;
        return 0;
    }
    if (avro_value_get_double(&b, out))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "point's %s is not a double", name);
    if (!isfinite(*out))
        return hvs_err_set(err, HVS_EINVAL, HVS_R_NON_FINITE, "point's %s is not finite", name);
    return 0;
}

int rf_input_baseline(rf_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                      char *building, rf_baseline_in_t *out, hvs_err_t *err) {
    if (!of_schema(v, in->fc))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA,
                           "not a Forecast of the current schema");
    int64_t issued, version;
    int rc;
    if ((rc = hvs_fields_id(v, in->fi[F_BUILDING], building, "building_id", err)) ||
        (rc = hvs_fields_long(v, in->fi[F_ISSUED], &issued, "issued_at", err)) ||
        (rc = hvs_fields_long(v, in->fi[F_VERSION], &version, "model_version", err)))
        return rc;
    if (!building[0])
        return hvs_err_set(err, HVS_EINVAL, "bad_id", "building_id is empty");
    if ((rc = hvs_fields_time(issued, now, max_future, "issued_at", err)))
        return rc;
    avro_value_t f, pts;
    int kind;
    if (avro_value_get_by_index(v, in->fi[F_KIND], &f, NULL) || avro_value_get_enum(&f, &kind))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "kind missing");
    if (kind != 0) /* ForecastKind: BASELINE, REFRESHED */
        return hvs_err_set(err, HVS_EINVAL, RF_R_NOT_BASELINE,
                           "a REFRESHED forecast on the baseline topic");
    const char *model = NULL;
    size_t mlen = 0;
    if (avro_value_get_by_index(v, in->fi[F_MODEL], &f, NULL) ||
        avro_value_get_string(&f, &model, &mlen))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "model_name missing");
    if (mlen == 0 || mlen > sizeof in->model)
        return hvs_err_set(err, HVS_EINVAL, "bad_id", "model_name of %zu bytes", mlen);
    memcpy(in->model, model, mlen); /* avro's length counts the NUL */
    in->model[mlen - 1] = 0;
    size_t n;
    if (avro_value_get_by_index(v, in->fi[F_POINTS], &pts, NULL) || avro_value_get_size(&pts, &n))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "points missing");
    if (n == 0 || n > RF_MAX_POINTS)
        return hvs_err_set(err, HVS_EINVAL, RF_R_BAD_POINTS, "%zu points (1..%d)", n,
                           RF_MAX_POINTS);
    for (size_t i = 0; i < n; i++) {
        avro_value_t p, x;
        int64_t th;
        if (avro_value_get_by_index(&pts, i, &p, NULL) ||
            avro_value_get_by_name(&p, "target_hour", &x, NULL) || avro_value_get_long(&x, &th) ||
            avro_value_get_by_name(&p, "yhat_kwh", &x, NULL) ||
            avro_value_get_double(&x, &in->yhat[i]))
            return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "point %zu unreadable", i);
        if ((rc = opt_double(&p, "yhat_lower_kwh", &in->lo[i], err)) ||
            (rc = opt_double(&p, "yhat_upper_kwh", &in->hi[i], err)))
            return rc;
        if (!isfinite(in->yhat[i]))
            return hvs_err_set(err, HVS_EINVAL, HVS_R_NON_FINITE, "point %zu: yhat not finite", i);
        if (in->yhat[i] < -1e9 || in->yhat[i] > 1e9)
            return hvs_err_set(err, HVS_EINVAL, HVS_R_OUT_OF_RANGE, "point %zu: yhat %g", i,
                               in->yhat[i]);
        if (th % HVS_MS_HOUR != 0 || th < issued || th > issued + 240 * HVS_MS_HOUR)
            return hvs_err_set(err, HVS_EINVAL, HVS_R_OUT_OF_RANGE,
                               "point %zu: target hour %lld not on the hour within 240 h after "
                               "issued_at %lld",
                               i, (long long)th, (long long)issued);
        if (i > 0 && th <= in->target[i - 1])
            return hvs_err_set(err, HVS_EINVAL, RF_R_BAD_POINTS,
                               "point %zu: target hours not ascending", i);
        in->target[i] = th;
    }
    *out = (rf_baseline_in_t){issued,     in->model, (int)version, n,
                              in->target, in->yhat,  in->lo,       in->hi};
    return 0;
}
