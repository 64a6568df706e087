/* output.c - AnomalyScore encoding (output.h). */
#include "output.h"

#include <math.h>
#include <stdlib.h>

struct sc_output {
    hvs_encoder_t *enc;
};

int sc_output_new(hvs_serde_t *s, const char *topic, sc_output_t **out, hvs_err_t *err) {
    sc_output_t *o = calloc(1, sizeof *o);
    if (!o)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "score output");
    int rc = hvs_encoder_new(s, HVS_SCHEMA_ANOMALY_SCORE, topic, &o->enc, err);
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void sc_output_destroy(sc_output_t *o) {
    if (!o)
        return;
    hvs_encoder_destroy(o->enc);
    free(o);
}

static int set_str(avro_value_t *rec, const char *name, const char *s) {
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_string(&f, s);
}

static int set_long(avro_value_t *rec, const char *name, int64_t v) {
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_long(&f, v);
}

static int set_double(avro_value_t *rec, const char *name, double v) {
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_double(&f, v);
}

/* A ["null", "double"] union: null for NaN. */
static int set_opt(avro_value_t *rec, const char *name, double v) {
    avro_value_t f, b;
    if (avro_value_get_by_name(rec, name, &f, NULL))
        return -1;
    if (!isfinite(v))
        return avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
    return avro_value_set_branch(&f, 1, &b) || avro_value_set_double(&b, v);
}

static int set_strings(avro_value_t *rec, const char *name, const char *const *s, int n) {
    avro_value_t f, item;
    if (avro_value_get_by_name(rec, name, &f, NULL))
        return -1;
    for (int i = 0; i < n; i++)
        if (avro_value_append(&f, &item, NULL) || avro_value_set_string(&item, s[i]))
            return -1;
    return 0;
}

int sc_output_encode(sc_output_t *o, const sc_score_out_t *s, const void **buf, size_t *len,
                     hvs_err_t *err) {
    avro_value_t *v = hvs_encoder_value(o->enc);
    avro_value_t f;
    int bad = set_str(v, "building_id", s->building) || set_str(v, "apartment_id", s->apartment) ||
              set_long(v, "hour", s->hour) || set_double(v, "score", s->score) ||
              set_opt(v, "probability", s->probability) || set_opt(v, "expected", s->expected) ||
              set_opt(v, "observed", s->observed) ||
              avro_value_get_by_name(v, "strategy", &f, NULL) ||
              avro_value_set_enum(&f, (int)s->strategy) ||
              set_str(v, "model_name", s->model_name) ||
              avro_value_get_by_name(v, "model_version", &f, NULL) ||
              avro_value_set_int(&f, s->model_version) ||
              set_strings(v, "reasons", s->reasons, s->nreasons) ||
              set_long(v, "revision", s->revision) ||
              set_strings(v, "models", s->models, s->nmodels) ||
              set_strings(v, "rules", s->rules, s->nrules) ||
              set_opt(v, "rule_score", s->rule_score) || set_opt(v, "residual_z", s->residual_z) ||
              set_long(v, "scored_at", s->scored_at);
    if (bad)
        return hvs_err_set(err, HVS_ESERDE, "avro_encode", "score of %s/%s at %lld: %s",
                           s->building, s->apartment, (long long)s->hour, avro_strerror());
    return hvs_encoder_encode(o->enc, buf, len, err);
}
