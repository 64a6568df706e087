/* input.c - the alerter's inputs, validated (input.h). */
#include "input.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/fields.h"

enum {
    S_BUILDING,
    S_APARTMENT,
    S_HOUR,
    S_SCORE,
    S_PROB,
    S_MODEL,
    S_VERSION,
    S_REASONS,
    S_REV,
    S_RULES,
    S_RULE_SCORE,
    S_Z,
    S_N
};
static const char *const score_fields[S_N] = {
    "building_id",   "apartment_id", "hour",     "score", "probability", "model_name",
    "model_version", "reasons",      "revision", "rules", "rule_score",  "residual_z"};

enum { A_BUILDING, A_APARTMENT, A_START, A_SIZE, A_WATER, A_N };
static const char *const agg_fields[A_N] = {"building_id", "apartment_id", "window_start",
                                            "window_size_ms", "hot_water_litres"};

struct al_input {
    avro_schema_t score, agg;
    int si[S_N], ai[A_N];
};

static int resolve(avro_schema_t s, const char *const *names, int *idx, int n, const char *what,
                   hvs_err_t *err) {
    for (int i = 0; i < n; i++)
        if ((idx[i] = avro_schema_record_field_get_index(s, names[i])) < 0)
            return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "%s lacks %s", what, names[i]);
    return 0;
}

int al_input_new(hvs_serde_t *s, al_input_t **out, hvs_err_t *err) {
    al_input_t *in = calloc(1, sizeof *in);
    if (!in)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "alerter input");
    in->score = hvs_serde_schema(s, HVS_SCHEMA_ANOMALY_SCORE);
    in->agg = hvs_serde_schema(s, HVS_SCHEMA_AGGREGATE);
    int rc = resolve(in->score, score_fields, in->si, S_N, "AnomalyScore", err);
    if (rc == 0)
        rc = resolve(in->agg, agg_fields, in->ai, A_N, "Aggregate", err);
    if (rc) {
        free(in);
        return rc;
    }
    *out = in;
    return 0;
}

void al_input_destroy(al_input_t *in) { free(in); }

static int get_string(avro_value_t *rec, int idx, const char **s, size_t *n, const char *name,
                      hvs_err_t *err) {
    avro_value_t f;
    int got = hvs_fields_get(rec, idx, &f);
    *s = "", *n = 1;
    if (got == 0)
        return 0;
    if (got < 0 || avro_value_get_string(&f, s, n))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "%s is not a string", name);
    return 0;
}

/* Append text to dst (cap bytes) after "; " when dst is not empty; control bytes as spaces. */
static void append(char *dst, size_t cap, const char *s, size_t n) {
    size_t k = strlen(dst);
    if (k && k + 2 < cap)
        dst[k++] = ';', dst[k++] = ' ';
    for (size_t i = 0; i + 1 < n && k + 1 < cap; i++)
        dst[k++] = (unsigned char)s[i] < 0x20 ? ' ' : s[i];
    dst[k] = '\0';
}

static int unit(double v, const char *name, hvs_err_t *err) {
    if (!isnan(v) && (v < 0 || v > 1))
        return hvs_err_set(err, HVS_EINVAL, HVS_R_OUT_OF_RANGE, "%s %g is not in [0, 1]", name, v);
    return 0;
}

int al_input_score(al_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                   al_score_t *out, hvs_err_t *err) {
    const int *x = in->si;
    int64_t hour, rev;
    double score, prob, rule, z;
    avro_value_t f;
    int rc = hvs_fields_id(v, x[S_BUILDING], out->building, "building_id", err);
    if (rc == 0)
        rc = hvs_fields_id(v, x[S_APARTMENT], out->apartment, "apartment_id", err);
    if (rc == 0 && !out->apartment[0])
        rc = hvs_err_set(err, HVS_EINVAL, "bad_id", "a score without apartment_id");
    if (rc == 0)
        rc = hvs_fields_long(v, x[S_HOUR], &hour, "hour", err);
    if (rc == 0)
        rc = hvs_fields_time(hour, now, max_future, "hour", err);
    if (rc == 0 && hour % HVS_MS_HOUR != 0)
        rc = hvs_err_set(err, HVS_EINVAL, AL_R_BAD_WINDOW, "hour %lld is not on the hour",
                         (long long)hour);
    if (rc == 0)
        rc = hvs_fields_long(v, x[S_REV], &rev, "revision", err);
    if (rc == 0) {
        if (hvs_fields_get(v, x[S_SCORE], &f) != 1 || avro_value_get_double(&f, &score))
            rc = hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "score is not a double");
        else if (!isfinite(score))
            rc = hvs_err_set(err, HVS_EINVAL, HVS_R_NON_FINITE, "score is %g", score);
        else
            rc = unit(score, "score", err);
    }
    if (rc == 0)
        rc = hvs_fields_double_opt(v, x[S_PROB], 0, 1, &prob, "probability", err);
    if (rc == 0)
        rc = hvs_fields_double_opt(v, x[S_RULE_SCORE], 0, 1, &rule, "rule_score", err);
    if (rc == 0)
        rc = hvs_fields_double_opt(v, x[S_Z], -1e9, 1e9, &z, "residual_z", err);
    if (rc)
        return rc;
    uint32_t rules = 0;
    out->reasons[0] = '\0';
    size_t n = 0;
    if (hvs_fields_get(v, x[S_RULES], &f) == 1 && avro_value_get_size(&f, &n) == 0)
        for (size_t i = 0; i < n; i++) {
            avro_value_t item;
            const char *s;
            size_t len;
            if (avro_value_get_by_index(&f, i, &item, NULL) == 0 &&
                avro_value_get_string(&item, &s, &len) == 0)
                rules |= hvs_alertbook_rule_bit(s);
        }
    if (hvs_fields_get(v, x[S_REASONS], &f) == 1 && avro_value_get_size(&f, &n) == 0)
        for (size_t i = 0; i < n && i < 3; i++) {
            avro_value_t item;
            const char *s;
            size_t len;
            if (avro_value_get_by_index(&f, i, &item, NULL) == 0 &&
                avro_value_get_string(&item, &s, &len) == 0)
                append(out->reasons, sizeof out->reasons, s, len);
        }
    const char *model;
    size_t ml;
    int64_t version = 0;
    out->model[0] = '\0';
    if (get_string(v, x[S_MODEL], &model, &ml, "model_name", err))
        return HVS_ESERDE;
    if (hvs_fields_get(v, x[S_VERSION], &f) == 1)
        avro_value_get_long(&f, &version);
    if (strcmp(model, "rules") != 0 && model[0])
        snprintf(out->model, sizeof out->model, "%.*s:%lld", (int)(ml - 1), model,
                 (long long)version);
    out->h = (al_hour_t){.hour = hour,
                         .revision = rev,
                         .score = (float)score,
                         .rule_score = (float)rule,
                         .z = (float)z,
                         .prob = (float)prob,
                         .rules = rules};
    return 0;
}

int al_input_water(al_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                   al_water_t *out, hvs_err_t *err) {
    const int *x = in->ai;
    int64_t start, size;
    int rc = hvs_fields_id(v, x[A_BUILDING], out->building, "building_id", err);
    if (rc == 0)
        rc = hvs_fields_id(v, x[A_APARTMENT], out->apartment, "apartment_id", err);
    if (rc == 0)
        rc = hvs_fields_long(v, x[A_START], &start, "window_start", err);
    if (rc == 0)
        rc = hvs_fields_time(start, now, max_future, "window_start", err);
    if (rc == 0)
        rc = hvs_fields_long(v, x[A_SIZE], &size, "window_size_ms", err);
    if (rc == 0)
        rc = hvs_fields_double_opt(v, x[A_WATER], 0, 1e6, &out->litres, "hot_water_litres", err);
    if (rc)
        return rc;
    if (size != HVS_MS_HOUR || start % HVS_MS_HOUR != 0)
        out->apartment[0] = '\0'; /* not an hour: nothing for the alerter */
    out->hour = start;
    return 0;
}
