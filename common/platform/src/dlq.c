/*
 * Dead-letter helper (see hvs/kafka.h): DeadLetter records with the original bytes and why,
 * to the source topic's dead-letter topic. One encoder per DLQ topic, reused.
 */
#include <stdlib.h>
#include <string.h>

#include "hvs/dlq.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/time.h"
#include "hvs/topics.h"

#define MAX_DLQ_TOPICS 16

typedef struct dlq_target {
    char topic[HVS_TOPIC_NAME_MAX];
    hvs_encoder_t *enc;
} dlq_target_t;

struct hvs_dlq {
    hvs_producer_t *producer;
    hvs_serde_t *serde;
    char worker[64];
    dlq_target_t targets[MAX_DLQ_TOPICS];
    size_t ntargets;
    uint64_t sent;
};

int hvs_dlq_new(hvs_producer_t *p, hvs_serde_t *s, const char *worker, hvs_dlq_t **out,
                hvs_err_t *err) {
    hvs_dlq_t *d = calloc(1, sizeof *d);
    if (!d)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "dlq: out of memory");
    d->producer = p;
    d->serde = s;
    snprintf(d->worker, sizeof d->worker, "%s", worker ? worker : "unknown");
    *out = d;
    return HVS_OK;
}

void hvs_dlq_destroy(hvs_dlq_t *d) {
    if (!d)
        return;
    for (size_t i = 0; i < d->ntargets; i++)
        hvs_encoder_destroy(d->targets[i].enc);
    free(d);
}

uint64_t hvs_dlq_sent(const hvs_dlq_t *d) { return d->sent; }

static hvs_encoder_t *encoder_for(hvs_dlq_t *d, const char *topic, hvs_err_t *err) {
    for (size_t i = 0; i < d->ntargets; i++)
        if (strcmp(d->targets[i].topic, topic) == 0)
            return d->targets[i].enc;
    if (d->ntargets == MAX_DLQ_TOPICS) {
        hvs_err_set(err, HVS_EINVAL, NULL, "dlq: more than %d dead-letter topics", MAX_DLQ_TOPICS);
        return NULL;
    }
    dlq_target_t *t = &d->targets[d->ntargets];
    if (hvs_encoder_new(d->serde, HVS_SCHEMA_DEAD_LETTER, topic, &t->enc, err) != HVS_OK)
        return NULL;
    snprintf(t->topic, sizeof t->topic, "%s", topic);
    d->ntargets++;
    return t->enc;
}

static void set_opt_null(avro_value_t *rec, const char *name) {
    avro_value_t f, b;
    avro_value_get_by_name(rec, name, &f, NULL);
    avro_value_set_branch(&f, 0, &b);
    avro_value_set_null(&b);
}

static avro_value_t opt_branch(avro_value_t *rec, const char *name) {
    avro_value_t f, b;
    avro_value_get_by_name(rec, name, &f, NULL);
    avro_value_set_branch(&f, 1, &b);
    return b;
}

static void set_string(avro_value_t *rec, const char *name, const char *s) {
    avro_value_t f;
    avro_value_get_by_name(rec, name, &f, NULL);
    avro_value_set_string(&f, s ? s : "");
}

int hvs_dlq_send(hvs_dlq_t *d, const char *src_topic, int32_t partition, int64_t offset,
                 const void *key, size_t keylen, const void *value, size_t len, const char *source,
                 const hvs_err_t *why, hvs_err_t *err) {
    char dlq_topic[HVS_TOPIC_NAME_MAX];
    hvs_topic_dlq_name(src_topic, dlq_topic, sizeof dlq_topic);
    hvs_encoder_t *enc = encoder_for(d, dlq_topic, err);
    if (!enc)
        return err ? err->code : HVS_ESERDE;
    avro_value_t *v = hvs_encoder_value(enc);
    avro_value_t f, b;
    set_string(v, "original_topic", src_topic);
    if (partition >= 0) {
        b = opt_branch(v, "original_partition");
        avro_value_set_int(&b, partition);
    } else {
        set_opt_null(v, "original_partition");
    }
    if (offset >= 0) {
        b = opt_branch(v, "original_offset");
        avro_value_set_long(&b, offset);
    } else {
        set_opt_null(v, "original_offset");
    }
    if (key) {
        b = opt_branch(v, "original_key");
        avro_value_set_bytes(&b, (void *)key, keylen);
    } else {
        set_opt_null(v, "original_key");
    }
    avro_value_get_by_name(v, "original_value", &f, NULL);
    avro_value_set_bytes(&f, (void *)(value ? value : ""), value ? len : 0);
    set_string(v, "error_code", why && why->reason[0] ? why->reason : "unknown");
    set_string(v, "error_text", why ? why->msg : "");
    set_string(v, "worker", d->worker);
    avro_value_get_by_name(v, "failed_at", &f, NULL);
    avro_value_set_long(&f, hvs_time_now_ms());
    if (source) {
        b = opt_branch(v, "source");
        avro_value_set_string(&b, source);
    } else {
        set_opt_null(v, "source");
    }
    const void *buf;
    size_t blen;
    int rc = hvs_encoder_encode(enc, &buf, &blen, err);
    if (rc)
        return rc;
    rc = hvs_producer_send(d->producer, dlq_topic, RD_KAFKA_PARTITION_UA, key, key ? keylen : 0,
                           buf, blen, err);
    if (rc)
        return rc;
    d->sent++;
    hvs_log_fields(HVS_LOG_INFO, "dlq", "dead-lettered", HVS_LFS("topic", src_topic),
                   HVS_LFI("partition", partition), HVS_LFI("offset", offset),
                   HVS_LFS("reason", why ? why->reason : ""), HVS_LFS("error", why ? why->msg : ""),
                   HVS_LFS("source", source ? source : ""));
    return HVS_OK;
}

int hvs_dlq_send_message(hvs_dlq_t *d, const rd_kafka_message_t *orig, const hvs_err_t *why,
                         hvs_err_t *err) {
    return hvs_dlq_send(d, rd_kafka_topic_name(orig->rkt), orig->partition, orig->offset, orig->key,
                        orig->key_len, orig->payload, orig->len, NULL, why, err);
}
