/*
 * output.c - REFRESHED Forecast records and the latest refresh's JSON (output.h).
 */
#include "output.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A literal; an integer (no printf: a tick writes NB of these). */
#define LIT(b, s) hvs_strbuf_put((b), (s), sizeof(s) - 1)
static void i64(hvs_strbuf_t *b, int64_t v) {
    char t[HVS_FMT_MAX];
    hvs_strbuf_put(b, t, hvs_fmt_int64(t, v));
}

char *rf_output_json(const rf_refresh_t *r) {
    hvs_strbuf_t b = {0};
    LIT(&b, "{\"building_id\":");
    hvs_strbuf_json_str(&b, r->building);
    LIT(&b, ",\"issued_at\":");
    i64(&b, r->issued_at);
    LIT(&b, ",\"model\":");
    if (r->model_version > 0) {
        char ident[700];
        snprintf(ident, sizeof ident, "%s:%d", r->model_name, r->model_version);
        hvs_strbuf_json_str(&b, ident);
    } else
        hvs_strbuf_json_str(&b, r->model_name);
    LIT(&b, ",\"model_name\":");
    hvs_strbuf_json_str(&b, r->model_name);
    LIT(&b, ",\"model_version\":");
    i64(&b, r->model_version);
    LIT(&b, ",\"baseline_model\":");
    hvs_strbuf_json_str(&b, r->baseline_model);
    LIT(&b, ",\"baseline_version\":");
    i64(&b, r->baseline_version);
    LIT(&b, ",\"baseline_issued_at\":");
    i64(&b, r->baseline_issued_at);
    LIT(&b, ",\"flags\":[");
    const char *flags[RF_FLAG_COUNT];
    int nf = flag_list(r, flags);
    for (int i = 0; i < nf; i++) {
        if (i)
            LIT(&b, ",");
        hvs_strbuf_json_str(&b, flags[i]);
    }
    LIT(&b, "],\"points\":[");
    for (int k = 0; k < r->npoints; k++) {
        const rf_point_t *p = &r->points[k];
        if (k)
            LIT(&b, ",");
        LIT(&b, "[");
        i64(&b, p->target_hour);
        LIT(&b, ",");
        i64(&b, p->horizon_h);
        LIT(&b, ",");
        hvs_strbuf_json_num(&b, p->yhat);
        LIT(&b, ",");
        hvs_strbuf_json_num(&b, p->lo);
        LIT(&b, ",");
        hvs_strbuf_json_num(&b, p->hi);
        LIT(&b, ",");
        hvs_strbuf_json_num(&b, p->correction);
        LIT(&b, "]");
    }
    LIT(&b, "]}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

int rf_output_emit(rf_output_t *o, hvs_producer_t *p, const char *topic, rf_building_t *b,
                   const rf_refresh_t *r, bool quiet, hvs_err_t *err) {
    /* a tick made again older than the newest is published, but the latest stays the newest */
    if (r->issued_at >= b->latest_tick) {
        char *json = rf_output_json(r);
        if (!json)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "latest refresh of %s", r->building);
        free(b->latest);
        b->latest = json;
    }
    if (quiet)
        return 0;
    const void *buf;
    size_t len;
    int rc = rf_output_encode(o, r, &buf, &len, err);
    if (rc == 0)
        rc = hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, r->building, strlen(r->building),
                               buf, len, err);
    return rc;
}
