/* follow.c - a whole topic from the beginning, without a group (see hvs/follow.h). */
#include "hvs/follow.h"

#include <stdio.h>
#include <stdlib.h>

#include "hvs/log.h"
#include "hvs/time.h"

struct hvs_follow {
    rd_kafka_t *rk;
    char what[48];
    int nparts, eofs;
    bool caught_up;
};

int hvs_follow_new(const hvs_kafka_conf_t *conf, const char *topic, const char *what,
                   hvs_follow_t **out, hvs_err_t *err) {
    char errstr[512], group[96], wait[16];
    hvs_follow_t *f = calloc(1, sizeof *f);
    if (!f)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "%s reader", what);
    snprintf(f->what, sizeof f->what, "%s", what);
    snprintf(group, sizeof group, "hvs-%s-reader", what);
    snprintf(wait, sizeof wait, "%d", conf->fetch_wait_max_ms > 0 ? conf->fetch_wait_max_ms : 100);
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    const char *const props[] = {"bootstrap.servers",
                                 conf->brokers,
                                 "group.id",
                                 group,
                                 "enable.auto.commit",
                                 "false",
                                 "enable.auto.offset.store",
                                 "false",
                                 "enable.partition.eof",
                                 "true",
                                 "fetch.wait.max.ms",
                                 wait,
                                 "log_level",
                                 "3",
                                 NULL};
    /* ours first, then the operator's pass-through properties, which win */
    int rc = hvs_kafka_conf_set(kc, props, err);
    if (rc == HVS_OK)
        rc = hvs_kafka_conf_set(kc, conf->props, err);
    if (rc != HVS_OK) {
        rd_kafka_conf_destroy(kc);
        free(f);
        hvs_err_wrap(err, "%s reader", what);
        return rc;
    }
    if (!(f->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof errstr))) {
        rd_kafka_conf_destroy(kc);
        free(f);
        return hvs_err_set(err, HVS_EKAFKA, "config", "%s reader: %s", what, errstr);
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(f->rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(f->rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        rc = hvs_err_set(err, HVS_EKAFKA, "metadata", "topic %s: %s", topic,
                         rd_kafka_err2str(e ? e : md->topics[0].err));
        if (md)
            rd_kafka_metadata_destroy(md);
        hvs_follow_destroy(f);
        return rc;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    f->nparts = l->cnt;
    rd_kafka_metadata_destroy(md);
    e = rd_kafka_assign(f->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        hvs_follow_destroy(f);
        return hvs_err_set(err, HVS_EKAFKA, "assign", "topic %s: %s", topic, rd_kafka_err2str(e));
    }
    *out = f;
    return 0;
}

void hvs_follow_destroy(hvs_follow_t *f) {
    if (!f)
        return;
    if (f->rk) {
        rd_kafka_consumer_close(f->rk);
        rd_kafka_destroy(f->rk);
    }
    free(f);
}

int hvs_follow_poll(hvs_follow_t *f, int timeout_ms,
                    void (*fn)(void *opaque, const rd_kafka_message_t *m), void *opaque) {
    int n = 0;
    hvs_ms_t deadline = hvs_time_mono_ms() + timeout_ms;
    for (;;) {
        hvs_ms_t left = deadline - hvs_time_mono_ms();
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->rk,
                                                       left > 0 && !f->caught_up ? (int)left : 0);
        if (!m) {
            if (f->caught_up || left <= 0)
                break;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!f->caught_up && ++f->eofs >= f->nparts)
                f->caught_up = true;
        } else if (m->err) {
            hvs_log_warn(f->what, "%s", rd_kafka_message_errstr(m));
        } else {
            fn(opaque, m);
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    return n;
}

bool hvs_follow_caught_up(const hvs_follow_t *f) { return f->caught_up || f->nparts == 0; }
