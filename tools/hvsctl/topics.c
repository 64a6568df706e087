/*
 * hvsctl topics create | list. Creation goes through the Admin API (CreateTopics) for the
 * topics metadata says are missing, so it is idempotent and succeeds on hvs-devbroker, which has
 * no Admin API but creates every topic of the table itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/topics.h"
#include "hvsctl.h"

static const char *const help =
    "Usage: hvsctl topics create [--partitions N] [--replication N] [--timeout S]\n"
    "       hvsctl topics list [--timeout S]\n"
    "\n"
    "create: every topic of the pipeline (building-keyed topics with HVS_TOPIC_PARTITIONS or\n"
    "        --partitions, models 1, dead-letter topics 3), compaction and retention set;\n"
    "        topics that exist are left alone (a partition count that differs is reported).\n"
    "        --replication defaults to the broker's default.\n"
    "list:   topics on the cluster with their partition counts.";

static rd_kafka_t *admin_client(hvs_app_t *app) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    const char *const props[] = {
        "bootstrap.servers", app->cfg.kafka_brokers, "client.id", "hvsctl", "log_level", "3", NULL};
    hvs_err_t err;
    /* ours, then the operator's HVS_KAFKA_* pass-through, which wins */
    if (hvs_kafka_conf_set(conf, props, &err) != 0 ||
        hvs_kafka_conf_set(conf, (const char *const *)app->kafka_props.kv, &err) != 0) {
        fprintf(stderr, "hvsctl: %s\n", err.msg);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "hvsctl: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Metadata of every topic; NULL (error printed) when Kafka cannot be reached. */
static const struct rd_kafka_metadata *all_metadata(hvs_app_t *app, rd_kafka_t *rk,
                                                    int timeout_ms) {
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (!e)
        return md;
    fprintf(stderr, "hvsctl: cannot reach Kafka at %s: %s\n", app->cfg.kafka_brokers,
            rd_kafka_err2str(e));
    return NULL;
}

static const rd_kafka_metadata_topic_t *find(const struct rd_kafka_metadata *md, const char *name) {
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, name) == 0 && !md->topics[i].err)
            return &md->topics[i];
    return NULL;
}

static int create(hvs_app_t *app, long partitions, long replication, int timeout_ms) {
    /* The workers keep per-partition tables of HVS_MAX_PARTITIONS rows: refuse more here
     * rather than create topics whose upper partitions would be ignored. */
    if (partitions > HVS_MAX_PARTITIONS) {
        fprintf(stderr, "hvsctl topics create: --partitions %ld: at most %d\n", partitions,
                HVS_MAX_PARTITIONS);
        return 2;
    }
    hvs_err_t err;
    if (partitions > 0 && hvs_topics_configure(NULL, (int)partitions, &err) != 0) {
        fprintf(stderr, "hvsctl topics create: %s\n", err.msg);
        return 2;
    }
    rd_kafka_t *rk = admin_client(app);
    if (!rk)
        return 1;
    const struct rd_kafka_metadata *md = all_metadata(app, rk, timeout_ms);
    if (!md) {
        rd_kafka_destroy(rk);
        return 1;
    }
    size_t n;
    const hvs_topic_t *topics = hvs_topics_all(&n);
    rd_kafka_NewTopic_t **create = calloc(n, sizeof *create);
    size_t ncreate = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int want = hvs_topic_partitions(&topics[i]);
        const rd_kafka_metadata_topic_t *have = find(md, topics[i].name);
        if (have) {
            printf("exists   %-28s %3d partitions%s\n", topics[i].name, have->partition_cnt,
                   have->partition_cnt != want ? " (table says a different count!)" : "");
            continue;
        }
        char errstr[256];
        rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topics[i].name, want, (int)replication,
                                                        errstr, sizeof errstr);
        if (!nt) {
            fprintf(stderr, "hvsctl: %s: %s\n", topics[i].name, errstr);
            rc = 1;
            continue;
        }
        char retention[32], mmb[32];
        snprintf(retention, sizeof retention, "%lld", (long long)topics[i].retention_ms);
        snprintf(mmb, sizeof mmb, "%lld", (long long)topics[i].max_message_bytes);
        const char *const cfg[] = {"cleanup.policy",
                                   topics[i].compacted ? "compact" : "delete",
                                   "retention.ms",
                                   retention,
                                   topics[i].max_message_bytes > 0 ? "max.message.bytes" : NULL,
                                   mmb,
                                   NULL};
        rd_kafka_resp_err_t ce = RD_KAFKA_RESP_ERR_NO_ERROR;
        const char *const *c = cfg;
        for (; c[0] && !ce; c += 2)
            ce = rd_kafka_NewTopic_set_config(nt, c[0], c[1]);
        if (ce) {
            fprintf(stderr, "hvsctl: %s: topic config %s: %s\n", topics[i].name, c[-2],
                    rd_kafka_err2str(ce));
            rd_kafka_NewTopic_destroy(nt);
            rc = 1;
            continue;
        }
        create[ncreate++] = nt;
    }
    rd_kafka_metadata_destroy(md);
    if (ncreate > 0) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk,
                                                                  RD_KAFKA_ADMIN_OP_CREATETOPICS);
        char errstr[256];
        /* librdkafka refuses timeouts out of its range (e.g. above an hour): say so rather than
         * wait with its default */
        if (rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr, sizeof errstr) ||
            rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof errstr)) {
            fprintf(stderr, "hvsctl: --timeout: %s\n", errstr);
            rd_kafka_AdminOptions_destroy(opts);
            rd_kafka_queue_destroy(q);
            rd_kafka_NewTopic_destroy_array(create, ncreate);
            free(create);
            rd_kafka_destroy(rk);
            return 1;
        }
        rd_kafka_CreateTopics(rk, create, ncreate, opts, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
        const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev)
                                                       : NULL;
        if (!res) {
            fprintf(stderr,
                    "hvsctl: CreateTopics got no answer from %s (is the Admin API "
                    "supported?)\n",
                    app->cfg.kafka_brokers);
            rc = 1;
        } else if (rd_kafka_event_error(ev)) {
            fprintf(stderr, "hvsctl: CreateTopics: %s\n", rd_kafka_event_error_string(ev));
            rc = 1;
        } else {
            size_t cnt;
            const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
            for (size_t i = 0; i < cnt; i++) {
                rd_kafka_resp_err_t te = rd_kafka_topic_result_error(tr[i]);
                if (!te || te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                    printf("%s  %s\n", te ? "exists " : "created",
                           rd_kafka_topic_result_name(tr[i]));
                } else {
                    fprintf(stderr, "hvsctl: create %s: %s\n", rd_kafka_topic_result_name(tr[i]),
                            rd_kafka_topic_result_error_string(tr[i]));
                    rc = 1;
                }
            }
        }
        if (ev)
            rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_queue_destroy(q);
        rd_kafka_NewTopic_destroy_array(create, ncreate);
    }
    free(create);
    rd_kafka_destroy(rk);
    if (rc == 0)
        printf("all %zu topics present\n", n);
    return rc;
}

static int list(hvs_app_t *app, int timeout_ms) {
    rd_kafka_t *rk = admin_client(app);
    if (!rk)
        return 1;
    const struct rd_kafka_metadata *md = all_metadata(app, rk, timeout_ms);
    if (!md) {
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < md->topic_cnt; i++)
        printf("%-32s %3d partitions\n", md->topics[i].topic, md->topics[i].partition_cnt);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return 0;
}

int hvsctl_topics(hvs_app_t *app, int argc, char **argv) {
    if (argc < 1 || hvsctl_wants_help(argc, argv)) {
        puts(help);
        return argc < 1 ? 2 : 0;
    }
    long partitions = 0, replication = -1, timeout_s = 30;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--partitions") == 0)
            partitions = hvsctl_parse_count(argv[i], v), i++;
        else if (strcmp(argv[i], "--replication") == 0)
            replication = hvsctl_parse_count(argv[i], v), i++;
        else if (strcmp(argv[i], "--timeout") == 0)
            timeout_s = hvsctl_parse_count(argv[i], v), i++;
        else {
            fprintf(stderr, "hvsctl topics: unknown option %s\n", argv[i]);
            return 2;
        }
        if (partitions < 0 || timeout_s < 0 || (replication < 0 && replication != -1))
            return 2;
    }
    if (strcmp(argv[0], "create") == 0)
        return create(app, partitions, replication == 0 ? -1 : replication, (int)timeout_s * 1000);
    if (strcmp(argv[0], "list") == 0)
        return list(app, (int)timeout_s * 1000);
    fprintf(stderr, "hvsctl topics: unknown subcommand %s\n%s\n", argv[0], help);
    return 2;
}
