/*
 * output.c - REFRESHED Forecast records and the latest refresh's JSON (output.h).
 */
#include "output.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "hvs/fmt.h"

struct rf_output {
    hvs_encoder_t *enc;
};

int rf_output_new(hvs_serde_t *s, const char *topic, rf_output_t **out, hvs_err_t *err) {
    rf_output_t *o = calloc(1, sizeof *o);
    if (!o)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "refresh output");
    int rc = hvs_encoder_new(s, HVS_SCHEMA_FORECAST, topic, &o->enc, err);
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void rf_output_destroy(rf_output_t *o) {
    if (!o)
        return;
    hvs_encoder_destroy(o->enc);
    free(o);
}

static int flag_list(const rf_refresh_t *r, const char **out) {
    int n = 0;
    for (int i = 0; i < RF_FLAG_COUNT; i++)
        if (r->flags & (1u << i))
            out[n++] = rf_flag_name(i);
    return n;
}

/* A ["null", T] union field set to its T branch. */
static int set_branch(avro_value_t *rec, const char *name, avro_value_t *branch) {
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_branch(&f, 1, branch);
}

int rf_output_encode(rf_output_t *o, const rf_refresh_t *r, const void **buf, size_t *len,
                     hvs_err_t *err) {
    avro_value_t *v = hvs_encoder_value(o->enc);
    avro_value_t fld, pts, item;
    const char *flags[RF_FLAG_COUNT];
    int nf = flag_list(r, flags);
    int bad = hvs_serde_set_str(v, "building_id", r->building) ||
              hvs_serde_set_long(v, "issued_at", r->issued_at) ||
              avro_value_get_by_name(v, "kind", &fld, NULL) || avro_value_set_enum(&fld, 1) ||
              hvs_serde_set_str(v, "model_name", r->model_name) ||
              avro_value_get_by_name(v, "model_version", &fld, NULL) ||
              avro_value_set_int(&fld, r->model_version) ||
              set_branch(v, "baseline_version", &fld) ||
              avro_value_set_int(&fld, r->baseline_version) ||
              set_branch(v, "baseline_issued_at", &fld) ||
              avro_value_set_long(&fld, r->baseline_issued_at) ||
              hvs_serde_set_strings(v, "flags", flags, nf) ||
              avro_value_get_by_name(v, "points", &pts, NULL);
    for (int k = 0; !bad && k < r->npoints; k++) {
        const rf_point_t *p = &r->points[k];
        bad = avro_value_append(&pts, &item, NULL) ||
              hvs_serde_set_long(&item, "target_hour", p->target_hour) ||
              avro_value_get_by_name(&item, "horizon_h", &fld, NULL) ||
              avro_value_set_int(&fld, p->horizon_h) ||
              hvs_serde_set_double(&item, "yhat_kwh", p->yhat) ||
              hvs_serde_set_opt_double(&item, "yhat_lower_kwh", p->lo) ||
              hvs_serde_set_opt_double(&item, "yhat_upper_kwh", p->hi) ||
              hvs_serde_set_opt_double(&item, "correction_kwh", p->correction);
    }
    if (bad)
        return hvs_err_set(err, HVS_ESERDE, "avro_encode", "refresh of %s as of %lld: %s",
                           r->building, (long long)r->issued_at, avro_strerror());
    return hvs_encoder_encode(o->enc, buf, len, err);
}

char *rf_output_json(const rf_refresh_t *r) {
    hvs_strbuf_t b = {0};
    hvs_strbuf_printf(&b, "{\"building_id\":");
    hvs_strbuf_json_str(&b, r->building);
    hvs_strbuf_printf(&b, ",\"issued_at\":%lld,\"model\":", (long long)r->issued_at);
    if (r->model_version > 0) {
        char ident[700];
        snprintf(ident, sizeof ident, "%s:%d", r->model_name, r->model_version);
        hvs_strbuf_json_str(&b, ident);
    } else
        hvs_strbuf_json_str(&b, r->model_name);
    hvs_strbuf_printf(&b, ",\"model_name\":");
    hvs_strbuf_json_str(&b, r->model_name);
    hvs_strbuf_printf(&b, ",\"model_version\":%d,\"baseline_model\":", r->model_version);
    hvs_strbuf_json_str(&b, r->baseline_model);
    hvs_strbuf_printf(&b, ",\"baseline_version\":%d,\"baseline_issued_at\":%lld,\"flags\":[",
                      r->baseline_version, (long long)r->baseline_issued_at);
    const char *flags[RF_FLAG_COUNT];
    int nf = flag_list(r, flags);
    for (int i = 0; i < nf; i++)
        hvs_strbuf_printf(&b, "%s\"%s\"", i ? "," : "", flags[i]);
    hvs_strbuf_printf(&b, "],\"points\":[");
    for (int k = 0; k < r->npoints; k++) {
        const rf_point_t *p = &r->points[k];
        hvs_strbuf_printf(&b, "%s[%lld,%d,", k ? "," : "", (long long)p->target_hour, p->horizon_h);
        hvs_strbuf_json_num(&b, p->yhat);
        hvs_strbuf_printf(&b, ",");
        hvs_strbuf_json_num(&b, p->lo);
        hvs_strbuf_printf(&b, ",");
        hvs_strbuf_json_num(&b, p->hi);
        hvs_strbuf_printf(&b, ",");
        hvs_strbuf_json_num(&b, p->correction);
        hvs_strbuf_printf(&b, "]");
    }
    hvs_strbuf_printf(&b, "]}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
