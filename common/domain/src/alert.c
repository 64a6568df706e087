#include "hvs/alert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/topics.h"

static const char *const type_names[] = {
    "ANOMALY",      "RULE_STUCK_VALVE", "RULE_NO_RESPONSE",        "RULE_SENSOR_MISMATCH",
    "DATA_QUALITY", "MODEL_DRIFT",      "FORECAST_LOW_CONFIDENCE", "OTHER"};

const char *hvs_alert_type_name(hvs_alert_type_t t) {
    return (unsigned)t < sizeof type_names / sizeof *type_names ? type_names[t] : "OTHER";
}

static const char *const status_names[] = {"UNSEEN", "INVESTIGATING", "RESOLVED_TRUE_POSITIVE",
                                           "RESOLVED_FALSE_POSITIVE"};

const char *hvs_alert_status_name(hvs_alert_status_t s) {
    return (unsigned)s < sizeof status_names / sizeof *status_names ? status_names[s] : "UNSEEN";
}

static const char *const severity_names[] = {"INFO", "WARNING", "CRITICAL"};

const char *hvs_alert_severity_name(hvs_alert_severity_t s) {
    return (unsigned)s < 3 ? severity_names[s] : "WARNING";
}

int hvs_alert_id(const hvs_alert_t *a, char *buf, size_t len) {
    int64_t y;
    int m, d;
    int64_t days = a->first_seen >= 0 ? a->first_seen / 86400000
                                      : -((-a->first_seen + 86399999) / 86400000);
    hvs_time_civil_from_days(days, &y, &m, &d);
    int n = snprintf(buf, len, "%s#%04lld-%02d-%02d#%s",
                     a->apartment_id ? a->apartment_id : a->building_id, (long long)y, m, d,
                     hvs_alert_type_name(a->type));
    return n < 0 || (size_t)n >= len ? -1 : n;
}

struct hvs_alerter {
    hvs_serde_t *serde;
    hvs_producer_t *prod;
    hvs_encoder_t *enc;
    const char *topic;
    uint64_t sent;
};

int hvs_alerter_new(hvs_serde_t *s, hvs_producer_t *p, hvs_alerter_t **out, hvs_err_t *err) {
    hvs_alerter_t *a = calloc(1, sizeof *a);
    if (!a)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "alerter");
    a->serde = s;
    a->prod = p;
    a->topic = hvs_topic_name("alerts");
    int rc = hvs_encoder_new(s, HVS_SCHEMA_ALERT, a->topic, &a->enc, err);
    if (rc) {
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void hvs_alerter_destroy(hvs_alerter_t *a) {
    if (!a)
        return;
    hvs_encoder_destroy(a->enc);
    free(a);
}

int hvs_alerter_send(hvs_alerter_t *al, const hvs_alert_t *a, hvs_err_t *err) {
    char id[600];
    if (!a->building_id || hvs_alert_id(a, id, sizeof id) < 0)
        return hvs_err_set(err, HVS_EINVAL, "bad_alert",
                           "alert without building or with an over-long id");
    if ((unsigned)a->status >= sizeof status_names / sizeof *status_names || a->rank < 0)
        return hvs_err_set(err, HVS_EINVAL, "bad_alert", "alert %s: status %d, rank %d", id,
                           (int)a->status, a->rank);
    avro_value_t *v = hvs_encoder_value(al->enc);
    avro_value_t f, b, item;
    int bad = hvs_serde_set_str(v, "alert_id", id) ||
              hvs_serde_set_str(v, "building_id", a->building_id) ||
              hvs_serde_set_opt_str(v, "apartment_id", a->apartment_id) ||
              avro_value_get_by_name(v, "type", &f, NULL) ||
              avro_value_set_enum(&f, (int)a->type) ||
              avro_value_get_by_name(v, "status", &f, NULL) ||
              avro_value_set_enum(&f, (int)a->status) ||
              avro_value_get_by_name(v, "rank", &f, NULL) ||
              (a->rank > 0 ? avro_value_set_branch(&f, 1, &b) || avro_value_set_int(&b, a->rank)
                           : avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b)) ||
              avro_value_get_by_name(v, "severity", &f, NULL) ||
              avro_value_set_enum(&f, (int)a->severity) ||
              avro_value_get_by_name(v, "score", &f, NULL) || avro_value_set_double(&f, a->score) ||
              hvs_serde_set_str(v, "summary", a->summary ? a->summary : "") ||
              hvs_serde_set_opt_str(v, "model", a->model) ||
              hvs_serde_set_opt_str(v, "team", a->team) ||
              avro_value_get_by_name(v, "first_seen", &f, NULL) ||
              avro_value_set_long(&f, a->first_seen) ||
              avro_value_get_by_name(v, "updated_at", &f, NULL) ||
              avro_value_set_long(&f, a->updated_at) ||
              avro_value_get_by_name(v, "evidence", &f, NULL);
    for (const char *const *e = a->evidence; !bad && e && e[0] && e[1]; e += 2)
        bad = avro_value_add(&f, e[0], &item, NULL, NULL) || avro_value_set_string(&item, e[1]);
    if (bad)
        return hvs_err_set(err, HVS_ESERDE, "avro_encode", "alert %s: %s", id, avro_strerror());
    const void *buf;
    size_t len;
    int rc = hvs_encoder_encode(al->enc, &buf, &len, err);
    if (rc == 0)
        rc = hvs_producer_send(al->prod, al->topic, RD_KAFKA_PARTITION_UA, a->building_id,
                               strlen(a->building_id), buf, len, err);
    if (rc == 0)
        al->sent++;
    return rc;
}

uint64_t hvs_alerter_sent(const hvs_alerter_t *al) { return al->sent; }
