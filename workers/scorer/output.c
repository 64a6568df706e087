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

int sc_output_encode(sc_output_t *o, const sc_score_out_t *s, const void **buf, size_t *len,
                     hvs_err_t *err) {
    avro_value_t *v = hvs_encoder_value(o->enc);
    avro_value_t f;
    int bad = hvs_serde_set_str(v, "building_id", s->building) ||
              hvs_serde_set_str(v, "apartment_id", s->apartment) ||
              hvs_serde_set_long(v, "hour", s->hour) ||
              hvs_serde_set_double(v, "score", s->score) ||
              hvs_serde_set_opt_double(v, "probability", s->probability) ||
              hvs_serde_set_opt_double(v, "expected", s->expected) ||
              hvs_serde_set_opt_double(v, "observed", s->observed) ||
              avro_value_get_by_name(v, "strategy", &f, NULL) ||
              avro_value_set_enum(&f, (int)s->strategy) ||
              hvs_serde_set_str(v, "model_name", s->model_name) ||
              avro_value_get_by_name(v, "model_version", &f, NULL) ||
              avro_value_set_int(&f, s->model_version) ||
              hvs_serde_set_strings(v, "reasons", s->reasons, s->nreasons) ||
              hvs_serde_set_long(v, "revision", s->revision) ||
              hvs_serde_set_strings(v, "models", s->models, s->nmodels) ||
              hvs_serde_set_strings(v, "rules", s->rules, s->nrules) ||
              hvs_serde_set_opt_double(v, "rule_score", s->rule_score) ||
              hvs_serde_set_opt_double(v, "residual_z", s->residual_z) ||
              hvs_serde_set_long(v, "scored_at", s->scored_at);
    if (bad)
        return hvs_err_set(err, HVS_ESERDE, "avro_encode", "score of %s/%s at %lld: %s",
                           s->building, s->apartment, (long long)s->hour, avro_strerror());
    return hvs_encoder_encode(o->enc, buf, len, err);
}
