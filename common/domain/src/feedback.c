#include "hvs/feedback.h"

#include <stdlib.h>
#include <string.h>

#include "hvs/topics.h"

static const char *const label_names[] = {"TRUE_POSITIVE", "FALSE_POSITIVE", "UNSURE"};
#define NLABELS (sizeof label_names / sizeof *label_names)

const char *hvs_feedback_label_name(hvs_feedback_label_t label) {
    return (unsigned)label < NLABELS ? label_names[label] : NULL;
}

int hvs_feedback_label_parse(const char *s, hvs_feedback_label_t *out) {
    for (size_t i = 0; s && i < NLABELS; i++)
        if (strcmp(s, label_names[i]) == 0) {
            *out = (hvs_feedback_label_t)i;
            return 0;
        }
    return HVS_EINVAL;
}

struct hvs_feedback_writer {
    hvs_encoder_t *enc;
    const char *topic;
    uint64_t sent;
};

int hvs_feedback_writer_new(hvs_serde_t *s, hvs_feedback_writer_t **out, hvs_err_t *err) {
    hvs_feedback_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "feedback writer");
    w->topic = hvs_topic_name("alerts.feedback");
    int rc = hvs_encoder_new(s, HVS_SCHEMA_FEEDBACK, w->topic, &w->enc, err);
    if (rc) {
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void hvs_feedback_writer_destroy(hvs_feedback_writer_t *w) {
    if (!w)
        return;
    hvs_encoder_destroy(w->enc);
    free(w);
}

static const char *shown(const char *s) { return s && s[0] ? s : "(none)"; }

/* The checks a record passes, whether it is written or read. */
static int check(const hvs_feedback_t *f, hvs_err_t *err) {
    if (!f->alert_id || !f->alert_id[0])
        return hvs_err_set(err, HVS_EINVAL, HVS_FEEDBACK_R_NO_ALERT_ID,
                           "feedback without an alert_id (building %.100s)", shown(f->building_id));
    if (!f->building_id || !f->building_id[0])
        return hvs_err_set(err, HVS_EINVAL, HVS_FEEDBACK_R_NO_BUILDING,
                           "feedback on alert %.200s without a building_id", f->alert_id);
    if (!f->technician_id || !f->technician_id[0])
        return hvs_err_set(err, HVS_EINVAL, HVS_FEEDBACK_R_NO_TECHNICIAN,
                           "feedback on alert %.200s without a technician_id", f->alert_id);
    if (!hvs_feedback_label_name(f->label))
        return hvs_err_set(err, HVS_EINVAL, HVS_FEEDBACK_R_BAD_LABEL,
                           "feedback on alert %.200s: label %d is no verdict", f->alert_id,
                           (int)f->label);
    return 0;
}

int hvs_feedback_encode(hvs_feedback_writer_t *w, const hvs_feedback_t *f, const void **buf,
                        size_t *len, hvs_err_t *err) {
    int rc = check(f, err);
    if (rc)
        return rc;
    avro_value_t *v = hvs_encoder_value_bare(w->enc); /* every field is set below */
    avro_value_t fl;
    int bad = hvs_serde_set_str(v, "alert_id", f->alert_id) ||
              hvs_serde_set_str(v, "building_id", f->building_id) ||
              hvs_serde_set_opt_str(v, "apartment_id", f->apartment_id) ||
              hvs_serde_set_str(v, "technician_id", f->technician_id) ||
              avro_value_get_by_name(v, "label", &fl, NULL) ||
              avro_value_set_enum(&fl, (int)f->label) ||
              hvs_serde_set_opt_str(v, "root_cause", f->root_cause) ||
              hvs_serde_set_opt_str(v, "comment", f->comment) ||
              avro_value_get_by_name(v, "labelled_at", &fl, NULL) ||
              avro_value_set_long(&fl, f->labelled_at);
    if (bad)
        return hvs_err_set(err, HVS_ESERDE, "avro_encode", "feedback on alert %.200s: %s",
                           f->alert_id, avro_strerror());
    return hvs_encoder_encode(w->enc, buf, len, err);
}

int hvs_feedback_send(hvs_feedback_writer_t *w, hvs_producer_t *p, const hvs_feedback_t *f,
                      hvs_err_t *err) {
    const void *buf;
    size_t len;
    int rc = hvs_feedback_encode(w, f, &buf, &len, err);
    if (rc == 0)
        rc = hvs_producer_send(p, w->topic, RD_KAFKA_PARTITION_UA, f->building_id,
                               strlen(f->building_id), buf, len, err);
    if (rc == 0)
        w->sent++;
    return rc;
}

uint64_t hvs_feedback_sent(const hvs_feedback_writer_t *w) { return w->sent; }

int hvs_feedback_read(avro_value_t *v, hvs_feedback_t *out, hvs_err_t *why) {
    memset(out, 0, sizeof *out);
    out->alert_id = hvs_serde_field_str(v, "alert_id");
    out->building_id = hvs_serde_field_str(v, "building_id");
    out->apartment_id = hvs_serde_field_str(v, "apartment_id");
    out->technician_id = hvs_serde_field_str(v, "technician_id");
    out->root_cause = hvs_serde_field_str(v, "root_cause");
    out->comment = hvs_serde_field_str(v, "comment");
    out->labelled_at = hvs_serde_field_long(v, "labelled_at");
    int label = -1;
    avro_value_t f;
    if (avro_value_get_by_name(v, "label", &f, NULL) != 0 || avro_value_get_type(&f) != AVRO_ENUM ||
        avro_value_get_enum(&f, &label) != 0)
        label = -1;
    out->label = (hvs_feedback_label_t)label;
    return check(out, why);
}
