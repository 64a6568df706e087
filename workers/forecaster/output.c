/*
 * output.c - Forecast records and the latest forecast's JSON (output.h).
 */
#include "output.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/fmt.h"

struct fc_output {
    hvs_encoder_t *enc;
};

int fc_output_new(hvs_serde_t *s, const char *topic, fc_output_t **out, hvs_err_t *err) {
    fc_output_t *o = calloc(1, sizeof *o);
    if (!o)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "forecast output");
    int rc = hvs_encoder_new(s, HVS_SCHEMA_FORECAST, topic, &o->enc, err);
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void fc_output_destroy(fc_output_t *o) {
    if (!o)
        return;
    hvs_encoder_destroy(o->enc);
    free(o);
}

static int flag_list(const fc_forecast_t *f, const char **out) {
    int n = 0;
    for (int i = 0; i < FC_FLAG_COUNT; i++)
        if (f->flags & (1u << i))
            out[n++] = fc_flag_name(i);
    return n;
}

int fc_output_encode(fc_output_t *o, const fc_forecast_t *f, const void **buf, size_t *len,
                     hvs_err_t *err) {
    avro_value_t *v = hvs_encoder_value(o->enc);
    avro_value_t fld, pts, item;
    const char *flags[FC_FLAG_COUNT];
    int nf = flag_list(f, flags);
    int bad = hvs_serde_set_str(v, "building_id", f->building) ||
              hvs_serde_set_long(v, "issued_at", f->issued_at) ||
              avro_value_get_by_name(v, "kind", &fld, NULL) || avro_value_set_enum(&fld, 0) ||
              hvs_serde_set_str(v, "model_name", f->model_name) ||
              avro_value_get_by_name(v, "model_version", &fld, NULL) ||
              avro_value_set_int(&fld, f->model_version) ||
              avro_value_get_by_name(v, "out_of_distribution", &fld, NULL) ||
              avro_value_set_boolean(&fld, (f->flags & FC_F_OOD) != 0) ||
              hvs_serde_set_strings(v, "flags", flags, nf) ||
              avro_value_get_by_name(v, "points", &pts, NULL);
    for (int k = 0; !bad && k < f->n; k++) {
        bad = avro_value_append(&pts, &item, NULL) ||
              hvs_serde_set_long(&item, "target_hour", f->target[k]) ||
              avro_value_get_by_name(&item, "horizon_h", &fld, NULL) ||
              avro_value_set_int(&fld, k + 1) ||
              hvs_serde_set_double(&item, "yhat_kwh", f->yhat[k]) ||
              hvs_serde_set_opt_double(&item, "yhat_lower_kwh", f->lower[k]) ||
              hvs_serde_set_opt_double(&item, "yhat_upper_kwh", f->upper[k]) ||
              hvs_serde_set_opt_double(&item, "correction_kwh", NAN);
    }
    if (bad)
        return hvs_err_set(err, HVS_ESERDE, "avro_encode", "forecast of %s as of %lld: %s",
                           f->building, (long long)f->issued_at, avro_strerror());
    return hvs_encoder_encode(o->enc, buf, len, err);
}

char *fc_output_json(const fc_forecast_t *f) {
    hvs_strbuf_t b = {0};
    hvs_strbuf_printf(&b, "{\"building_id\":");
    hvs_strbuf_json_str(&b, f->building);
    hvs_strbuf_printf(&b, ",\"issued_at\":%lld,\"model\":", (long long)f->issued_at);
    hvs_strbuf_json_str(&b, f->ident);
    hvs_strbuf_printf(&b, ",\"model_name\":");
    hvs_strbuf_json_str(&b, f->model_name);
    hvs_strbuf_printf(&b, ",\"model_version\":%d,\"flags\":[", f->model_version);
    const char *flags[FC_FLAG_COUNT];
    int nf = flag_list(f, flags);
    for (int i = 0; i < nf; i++)
        hvs_strbuf_printf(&b, "%s\"%s\"", i ? "," : "", flags[i]);
    hvs_strbuf_printf(&b, "],\"out_of_distribution\":%s,\"points\":[",
                      (f->flags & FC_F_OOD) ? "true" : "false");
    for (int k = 0; k < f->n; k++) {
        hvs_strbuf_printf(&b, "%s[%lld,%d,", k ? "," : "", (long long)f->target[k], k + 1);
        hvs_strbuf_json_num(&b, f->yhat[k]);
        hvs_strbuf_printf(&b, ",");
        hvs_strbuf_json_num(&b, f->lower[k]);
        hvs_strbuf_printf(&b, ",");
        hvs_strbuf_json_num(&b, f->upper[k]);
        hvs_strbuf_printf(&b, "]");
    }
    hvs_strbuf_printf(&b, "]}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
