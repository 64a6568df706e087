/*
 * Read a topic without a consumer group: partitions are assigned directly and nothing is
 * committed, so tools never disturb the pipeline's groups. Without --follow the read ends at the
 * high watermark each partition had when it started.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/app.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvsctl.h"


int hvsctl_read_topic(hvs_app_t *app, const hvsctl_read_opts_t *o, hvsctl_read_fn fn,
                      void *opaque) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char wait[16];
    snprintf(wait, sizeof wait, "%lld", (long long)app->cfg.kafka_fetch_wait_max_ms);
    const char *const props[] = {"bootstrap.servers",
                                 app->cfg.kafka_brokers,
                                 "group.id",
                                 "hvsctl-reader", /* required by the API, never joined */
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
    hvs_err_t err;
    /* ours, then the operator's HVS_KAFKA_* pass-through, which wins */
    if (hvs_kafka_conf_set(conf, props, &err) != 0 ||
        hvs_kafka_conf_set(conf, (const char *const *)app->kafka_props.kv, &err) != 0) {
        fprintf(stderr, "hvsctl: %s\n", err.msg);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "hvsctl: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, o->timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "hvsctl: topic %s at %s: %s\n", o->topic, app->cfg.kafka_brokers,
                e ? rd_kafka_err2str(e)
                  : rd_kafka_err2str(md->topic_cnt ? md->topics[0].err
                                                   : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return 1;
    }
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(8);
    int rc = 0;
    int nparts = 0;
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        if (o->partition >= 0 && p != o->partition)
            continue;
        int64_t lo, hi;
        e = rd_kafka_query_watermark_offsets(rk, o->topic, p, &lo, &hi, o->timeout_ms);
        if (e) {
            fprintf(stderr, "hvsctl: %s [%d]: %s\n", o->topic, p, rd_kafka_err2str(e));
            rc = 1;
            break;
        }
        int64_t start = o->from_beginning ? lo : (hi - o->tail > lo ? hi - o->tail : lo);
        if (!o->follow && start >= hi)
            continue; /* nothing to read there */
        rd_kafka_topic_partition_list_add(assign, o->topic, p)->offset = start;
        nparts++;
    }
    rd_kafka_metadata_destroy(md);
    if (rc == 0 && o->partition >= 0 && assign->cnt == 0 && o->follow) {
        fprintf(stderr, "hvsctl: %s has no partition %d\n", o->topic, o->partition);
        rc = 1;
    }
    if (rc == 0 && nparts > 0)
        e = rd_kafka_assign(rk, assign);
    rd_kafka_topic_partition_list_destroy(assign);
    long seen = 0;
    int eofs = 0;
    while (rc == 0 && nparts > 0 && hvs_app_running() && (o->follow || eofs < nparts)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err) {
            fprintf(stderr, "hvsctl: %s: %s\n", o->topic, rd_kafka_message_errstr(m));
            if (m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
                m->err == RD_KAFKA_RESP_ERR__FATAL)
                rc = 1;
        } else {
            seen++;
            if (fn(opaque, m) != 0 || (o->max > 0 && seen >= o->max)) {
                rd_kafka_message_destroy(m);
                break;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

typedef struct decoded_ctx {
    hvs_decoder_t *dec;
    hvsctl_decoded_fn fn;
} decoded_ctx_t;

static int call_decoded(void *opaque, const rd_kafka_message_t *m) {
    decoded_ctx_t *c = opaque;
    return c->fn(c->dec, m);
}

int hvsctl_read_decoded(hvs_app_t *app, const hvsctl_read_opts_t *opts, int kind,
                        hvsctl_decoded_fn fn) {
    hvs_serde_t *s;
    hvs_err_t err;
    if (hvs_serde_new(app->cfg.schema_registry_url, &s, &err) != 0) {
        fprintf(stderr, "hvsctl: %s\n", err.msg);
        return 1;
    }
    decoded_ctx_t c = {NULL, fn};
    int rc = 1;
    if (hvs_decoder_new(s, kind, &c.dec, &err) == 0)
        rc = hvsctl_read_topic(app, opts, call_decoded, &c);
    else
        fprintf(stderr, "hvsctl: %s\n", err.msg);
    fflush(stdout);
    hvs_decoder_destroy(c.dec);
    hvs_serde_destroy(s);
    return rc;
}
