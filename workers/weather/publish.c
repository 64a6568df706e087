/* publish.c - Weather encoding and change-driven publishing (see publish.h). */
#include "publish.h"

#include <stdlib.h>
#include <string.h>

enum {
    F_BUILDING,
    F_LAT,
    F_LON,
    F_HOUR,
    F_ISSUED,
    F_KIND,
    F_VAR0,
    F_PROVIDER = F_VAR0 + WX_NVARS,
    F_COUNT
};
static const char *const field_names[F_COUNT] = {"building_id",     "latitude",
                                                 "longitude",       "hour",
                                                 "issued_at",       "kind",
                                                 "temperature_c",   "relative_humidity_pct",
                                                 "cloud_cover_pct", "shortwave_radiation_wm2",
                                                 "wind_speed_ms",   "provider"};

struct wx_publisher {
    hvs_producer_t *prod;
    hvs_encoder_t *enc;
    char *topic, *provider;
    size_t idx[F_COUNT];
    size_t *changed; /* scratch: indexes of the hours to publish */
    size_t changed_cap;
};

int wx_publisher_new(hvs_serde_t *s, hvs_producer_t *p, const char *topic, const char *provider,
                     wx_publisher_t **out, hvs_err_t *err) {
    wx_publisher_t *pub = calloc(1, sizeof *pub);
    if (!pub || !(pub->topic = strdup(topic)) ||
        !(pub->provider = strdup(provider ? provider : ""))) {
        if (pub)
            free(pub->topic);
        free(pub);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "weather publisher");
    }
    pub->prod = p;
    int rc = hvs_encoder_new(s, HVS_SCHEMA_WEATHER, topic, &pub->enc, err);
    if (rc) {
        wx_publisher_destroy(pub);
        return rc;
    }
    avro_schema_t schema = hvs_serde_schema(s, HVS_SCHEMA_WEATHER);
    for (int f = 0; f < F_COUNT; f++) {
        int i = avro_schema_record_field_get_index(schema, field_names[f]);
        if (i < 0) {
            wx_publisher_destroy(pub);
            return hvs_err_set(err, HVS_ESERDE, "schema_mismatch", "Weather schema has no field %s",
                               field_names[f]);
        }
        pub->idx[f] = (size_t)i;
    }
    *out = pub;
    return 0;
}

void wx_publisher_destroy(wx_publisher_t *pub) {
    if (!pub)
        return;
    hvs_encoder_destroy(pub->enc);
    free(pub->changed);
    free(pub->topic);
    free(pub->provider);
    free(pub);
}

static int set_opt_double(avro_value_t *rec, size_t idx, int present, double d) {
    avro_value_t f, b;
    if (avro_value_get_by_index(rec, idx, &f, NULL))
        return -1;
    if (!present)
        return avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
    return avro_value_set_branch(&f, 1, &b) || avro_value_set_double(&b, d);
}

int wx_publisher_encode(wx_publisher_t *pub, const wx_location_ref_t *loc, const wx_hour_t *h,
                        hvs_ms_t issued_at, const void **buf, size_t *len, hvs_err_t *err) {
    avro_value_t *v = hvs_encoder_value_bare(pub->enc), f, b;
    const size_t *ix = pub->idx;
    int bad = avro_value_get_by_index(v, ix[F_BUILDING], &f, NULL) ||
              avro_value_set_string(&f, loc->building_id) ||
              avro_value_get_by_index(v, ix[F_LAT], &f, NULL) ||
              avro_value_set_double(&f, loc->latitude) ||
              avro_value_get_by_index(v, ix[F_LON], &f, NULL) ||
              avro_value_set_double(&f, loc->longitude) ||
              avro_value_get_by_index(v, ix[F_HOUR], &f, NULL) ||
              avro_value_set_long(&f, h->hour) ||
              avro_value_get_by_index(v, ix[F_ISSUED], &f, NULL) ||
              avro_value_set_long(&f, issued_at) ||
              avro_value_get_by_index(v, ix[F_KIND], &f, NULL) || avro_value_set_enum(&f, h->kind);
    for (int k = 0; k < WX_NVARS && !bad; k++)
        bad = set_opt_double(v, ix[F_VAR0 + k], h->present & (1u << k), h->v[k]);
    if (!bad) {
        bad = avro_value_get_by_index(v, ix[F_PROVIDER], &f, NULL);
        if (!bad && pub->provider[0])
            bad = avro_value_set_branch(&f, 1, &b) || avro_value_set_string(&b, pub->provider);
        else if (!bad)
            bad = avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
    }
    if (bad)
        return hvs_err_set(err, HVS_ESERDE, "avro_encode", "Weather of %s at %lld: %s",
                           loc->building_id, (long long)h->hour, avro_strerror());
    return hvs_encoder_encode(pub->enc, buf, len, err);
}

int wx_publish(wx_publisher_t *pub, wx_history_t *hist, const wx_location_ref_t *loc,
               const wx_hour_t *hours, size_t n, hvs_ms_t issued_at, hvs_ms_t cut, size_t counts[2],
               hvs_err_t *err) {
    if (n > pub->changed_cap) {
        size_t *c = realloc(pub->changed, n * sizeof *c);
        if (!c)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "%zu hours", n);
        pub->changed = c;
        pub->changed_cap = n;
    }
    size_t nchanged = 0, sent = 0;
    wx_history_diff(hist, hours, n, cut, pub->changed, &nchanged);
    int rc = 0;
    size_t klen = strlen(loc->building_id);
    for (; sent < nchanged; sent++) {
        const wx_hour_t *h = &hours[pub->changed[sent]];
        const void *buf;
        size_t len;
        rc = wx_publisher_encode(pub, loc, h, issued_at, &buf, &len, err);
        if (rc == 0)
            rc = hvs_producer_send(pub->prod, pub->topic, RD_KAFKA_PARTITION_UA, loc->building_id,
                                   klen, buf, len, err);
        if (rc)
            break;
        counts[h->kind == WX_OBSERVED ? WX_OBSERVED : WX_FORECAST]++;
    }
    int arc = wx_history_apply(hist, hours, n, pub->changed, sent, cut);
    if (rc == 0 && arc)
        rc = hvs_err_set(err, arc, "oom", "history of %s", loc->building_id);
    return rc;
}
