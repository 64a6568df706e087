/*
 * bench_alerter - apartment-hour scores judged per second by hvs-alerter, and the latency from a
 * technician's feedback to the alert's new status on `alerts`.
 *   1. The process: 20 buildings x 50 apartments x 120 hours of AnomalyScore records (about 2 %
 *      of apartment-hours in episodes, one strong no_heat_response per building) and as many
 *      apartment aggregates (hot water) on hvs-devbroker, topology with two teams; one
 *      hvs-alerter with redis-server on the same machine: scores/s from its first input to its
 *      last (consumer lag 0), its CPU time, batch latency, and the alerts it raised.
 *   2. Feedback: for 200 raised alerts in turn, a Feedback record (UNSURE, then TRUE_POSITIVE) is
 *      produced and the time until the alert's record with the new status is read back from
 *      `alerts` is measured: p50, p99, max.
 */
#include <math.h>
#include <time.h>

#include "hvs/alertbook.h"
#include "hvs/feedback.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/topics.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define T0 1733097600000LL
#define NB 20
#define NA 50
#define HOURS 120
#define FEEDBACKS 200

static double episode_score(int b, int a, int i) {
    unsigned h = (unsigned)(b * 7919 + a * 104729 + (i / 8) * 15485863);
    if (h % 50 == 0)
        return 0.55 + 0.4 * ((h / 50) % 10) / 10.0; /* an 8-hour episode */
    return 0.02 + 0.01 * ((a + i) % 7);
}

static void send_msg(hvs_producer_t *p, const char *topic, const char *key, const void *buf,
                     size_t len) {
    hvs_err_t err = {0};
    HVS_REQUIRE(
        hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len, &err) == 0,
        "send: %s", err.msg);
}

static size_t produce(hvs_serde_t *s, const char *brokers) {
    hvs_kafka_conf_t kc = {.brokers = brokers, .client_id = "bench"};
    hvs_producer_t *p;
    hvs_encoder_t *es, *ea, *eb;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_ANOMALY_SCORE, "scores.anomaly", &es, &err) ==
                        0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_AGGREGATE, "aggregates.hourly", &ea, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_BUILDING, "topology", &eb, &err) == 0,
                "producer: %s", err.msg);
    const void *buf;
    size_t len, n = 0;
    char json[1024], bid[32], apt[32];
    for (int b = 0; b < NB; b++) {
        snprintf(bid, sizeof bid, "bldg_%02d", b);
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"old\",\"commissioning_date\":%lld,"
                 "\"latitude\":47.0,\"longitude\":8.0,\"apartments\":[],\"updated_at\":%lld,"
                 "\"team\":\"team-%c\"}",
                 bid, (long long)(T0 - 400 * 24 * HOUR), (long long)T0, 'a' + b % 2);
        HVS_REQUIRE(hvs_serde_value_from_json(s, hvs_encoder_value(eb), json, strlen(json), &err) ==
                            0 &&
                        hvs_encoder_encode(eb, &buf, &len, &err) == 0,
                    "building: %s", err.msg);
        send_msg(p, "topology", bid, buf, len);
    }
    for (int i = 0; i < HOURS; i++)
        for (int b = 0; b < NB; b++) {
            snprintf(bid, sizeof bid, "bldg_%02d", b);
            for (int a = 0; a < NA; a++) {
                snprintf(apt, sizeof apt, "apt_%02d", a);
                hvs_ms_t h = T0 + i * HOUR;
                avro_value_t *v = hvs_encoder_value(ea), f, br;
                int bad = hvs_serde_set_str(v, "building_id", bid) ||
                          avro_value_get_by_name(v, "apartment_id", &f, NULL) ||
                          avro_value_set_branch(&f, 1, &br) || avro_value_set_string(&br, apt) ||
                          hvs_serde_set_long(v, "window_start", h) ||
                          hvs_serde_set_long(v, "window_end", h + HOUR) ||
                          hvs_serde_set_long(v, "window_size_ms", HOUR) ||
                          hvs_serde_set_opt_double(v, "hot_water_litres", a == 3 ? 0.0 : 5.0) ||
                          hvs_serde_set_long(v, "emitted_at", h + HOUR);
                HVS_REQUIRE(!bad && hvs_encoder_encode(ea, &buf, &len, &err) == 0, "aggregate");
                send_msg(p, "aggregates.hourly", bid, buf, len);
                bool nh = a == 17 && i >= 40 && i < 46;
                double sc = nh ? 0.95 : episode_score(b, a, i);
                v = hvs_encoder_value(es);
                bad = hvs_serde_set_str(v, "building_id", bid) ||
                      hvs_serde_set_str(v, "apartment_id", apt) ||
                      hvs_serde_set_long(v, "hour", h) ||
                      avro_value_get_by_name(v, "score", &f, NULL) ||
                      avro_value_set_double(&f, sc) ||
                      hvs_serde_set_str(v, "model_name", "rules") ||
                      hvs_serde_set_long(v, "scored_at", h + HOUR) ||
                      hvs_serde_set_opt_double(v, "rule_score", nh ? 0.95 : 0.0) ||
                      avro_value_get_by_name(v, "revision", &f, NULL) ||
                      avro_value_set_long(&f, 1) ||
                      avro_value_get_by_name(v, "model_version", &f, NULL) ||
                      avro_value_set_int(&f, 0);
                if (!bad && nh) {
                    avro_value_t item;
                    bad = avro_value_get_by_name(v, "rules", &f, NULL) ||
                          avro_value_append(&f, &item, NULL) ||
                          avro_value_set_string(&item, "no_heat_response");
                }
                if (!bad && sc > 0.5) {
                    avro_value_t item;
                    bad = avro_value_get_by_name(v, "reasons", &f, NULL) ||
                          avro_value_append(&f, &item, NULL) ||
                          avro_value_set_string(&item, "consumption 2.1 kWh above expected");
                }
                HVS_REQUIRE(!bad && hvs_encoder_encode(es, &buf, &len, &err) == 0, "score");
                send_msg(p, "scores.anomaly", bid, buf, len);
                n++;
            }
        }
    HVS_REQUIRE(hvs_producer_flush(p, 120000, &err) == 0, "flush: %s", err.msg);
    hvs_encoder_destroy(es), hvs_encoder_destroy(ea), hvs_encoder_destroy(eb);
    hvs_producer_destroy(p);
    return n;
}

/* Raised alerts from the book: (building, alert id) pairs, at most `max`. */
static size_t raised(const hvs_test_proc_t *redis, char (*bld)[32],
                     char (*ids)[HVS_ALERTBOOK_ID_MAX], size_t max) {
    hvs_redis_t *r;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(redis->addr, NULL, &r, &err) == 0, "redis: %s", err.msg);
    size_t n = 0;
    for (int b = 0; b < NB && n < max; b++) {
        redisReply *rep = NULL;
        char key[64];
        snprintf(key, sizeof key, "hvs:{bldg_%02d}:al:alerts", b);
        if (hvs_redis_command(r, &rep, &err, "HGETALL %s", key) == 0 &&
            rep->type == REDIS_REPLY_ARRAY)
            for (size_t j = 0; j + 1 < rep->elements && n < max; j += 2) {
                hvs_alertbook_entry_t e;
                const redisReply *v = rep->element[j + 1];
                const char *nl = memchr(v->str, '\n', v->len);
                if (hvs_alertbook_parse(v->str, nl ? (size_t)(nl - v->str) : v->len, &e, &err) ==
                        0 &&
                    e.disposition == HVS_ALERTBOOK_RAISED) {
                    snprintf(bld[n], sizeof bld[n], "bldg_%02d", b);
                    snprintf(ids[n], sizeof ids[n], "%s", e.id);
                    n++;
                }
            }
        freeReplyObject(rep);
    }
    hvs_redis_destroy(r);
    return n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Wait for the record of `id` with `status` on the alerts consumer; seconds, or -1. */
static double wait_status(rd_kafka_t *c, hvs_decoder_t *dec, const char *id, const char *status,
                          int64_t t0) {
    while (hvs_test_now_ms() - t0 < 10000) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m)
            continue;
        bool hit = false;
        avro_value_t *v;
        hvs_err_t err = {0};
        if (!m->err && hvs_decoder_decode(dec, m->payload, m->len, &v, &err) == 0) {
            avro_value_t f;
            const char *a;
            size_t al;
            int sym;
            hit = avro_value_get_by_name(v, "alert_id", &f, NULL) == 0 &&
                  avro_value_get_string(&f, &a, &al) == 0 && strcmp(a, id) == 0 &&
                  avro_value_get_by_name(v, "status", &f, NULL) == 0 &&
                  avro_value_get_enum(&f, &sym) == 0 &&
                  strcmp(hvs_alert_status_name((hvs_alert_status_t)sym), status) == 0;
        }
        rd_kafka_message_destroy(m);
        if (hit)
            return (double)(hvs_test_now_ms() - t0) / 1000.0;
    }
    return -1;
}

static void feedback_latency(hvs_serde_t *s, const hvs_test_proc_t *broker,
                             const hvs_test_proc_t *redis) {
    static char bld[FEEDBACKS][32], ids[FEEDBACKS][HVS_ALERTBOOK_ID_MAX];
    size_t n = raised(redis, bld, ids, FEEDBACKS / 2);
    HVS_CHECK(n > 0, "alerts were raised");
    char e[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    HVS_REQUIRE(rd_kafka_conf_set(conf, "bootstrap.servers", broker->addr, e, sizeof e) == 0 &&
                    rd_kafka_conf_set(conf, "group.id", "bench-alerts", e, sizeof e) == 0 &&
                    rd_kafka_conf_set(conf, "auto.offset.reset", "latest", e, sizeof e) == 0 &&
                    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", e, sizeof e) == 0,
                "consumer conf: %s", e);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    HVS_REQUIRE(c, "consumer: %s", e);
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(HVS_MAX_PARTITIONS);
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, "alerts", NULL);
    HVS_REQUIRE(rd_kafka_metadata(c, 0, rkt, &md, 10000) == 0 && md->topic_cnt == 1, "metadata");
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(tp, "alerts", i)->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    HVS_REQUIRE(rd_kafka_assign(c, tp) == 0, "assign");
    rd_kafka_topic_partition_list_destroy(tp);
    for (int k = 0; k < 20; k++) { /* let the assignment settle at the ends */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m)
            rd_kafka_message_destroy(m);
    }
    hvs_kafka_conf_t kc = {.brokers = broker->addr, .client_id = "bench-fb"};
    hvs_producer_t *p;
    hvs_feedback_writer_t *w;
    hvs_decoder_t *dec;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0 && hvs_feedback_writer_new(s, &w, &err) == 0 &&
                    hvs_decoder_new(s, HVS_SCHEMA_ALERT, &dec, &err) == 0,
                "feedback producer: %s", err.msg);
    double lat[FEEDBACKS];
    size_t m = 0, lost = 0;
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < n; i++) {
            char apt[HVS_ALERTBOOK_ID_MAX];
            snprintf(apt, sizeof apt, "%.*s", (int)strcspn(ids[i], "#"), ids[i]);
            hvs_feedback_t f = {.alert_id = ids[i],
                                .building_id = bld[i],
                                .apartment_id = apt,
                                .technician_id = "bench",
                                .label = round ? HVS_FEEDBACK_TRUE_POSITIVE : HVS_FEEDBACK_UNSURE,
                                .root_cause = round ? "stuck_valve" : NULL,
                                .labelled_at = T0 + (HOURS + round) * HOUR};
            int64_t t0 = hvs_test_now_ms();
            HVS_REQUIRE(hvs_feedback_send(w, p, &f, &err) == 0 &&
                            hvs_producer_flush(p, 10000, &err) == 0,
                        "feedback: %s", err.msg);
            double d = wait_status(c, dec, ids[i],
                                   round ? "RESOLVED_TRUE_POSITIVE" : "INVESTIGATING", t0);
            if (d < 0)
                lost++;
            else
                lat[m++] = d;
        }
    HVS_CHECK(lost == 0, "every feedback's status came back (%zu did not)", lost);
    qsort(lat, m, sizeof *lat, cmp_double);
    if (m)
        printf("feedback to status on `alerts` (%zu feedback records, one at a time): p50 %.3f s, "
               "p99 %.3f s, max %.3f s\n",
               m, lat[m / 2], lat[(size_t)((double)(m - 1) * 0.99)], lat[m - 1]);
    hvs_decoder_destroy(dec);
    hvs_feedback_writer_destroy(w);
    hvs_producer_destroy(p);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

int main(void) {
    hvs_log_init("bench", HVS_LOG_ERROR, NULL);
    hvs_serde_t *s;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    hvs_test_proc_t redis, broker, al;
    HVS_REQUIRE(hvs_test_redis_start(&redis, 0) == 0 &&
                    hvs_test_devbroker_start(&broker, NULL) == 0,
                "services");
    size_t n = produce(s, broker.addr);
    int port = hvs_test_free_port();
    char cmd[2048], log[] = "/tmp/hvs-bench-al-XXXXXX";
    close(mkstemp(log));
    const char *wrap = getenv("BENCH_WRAP"); /* e.g. a profiler; not an HVS_* name */
    snprintf(
        cmd, sizeof cmd,
        "env HVS_KAFKA_BROKERS=%s HVS_REDIS_URL=%s HVS_KAFKA_FETCH_WAIT_MAX_MS=10 HVS_HTTP_PORT=%d "
        "HVS_LOG_LEVEL=error %s %s %s",
        broker.addr, redis.addr, port, getenv("BENCH_ENV") ? getenv("BENCH_ENV") : "",
        wrap ? wrap : "", HVS_TEST_ALERTER);
    HVS_REQUIRE(hvs_test_spawn(&al, cmd, log) == 0, "spawn");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    int64_t t_first = 0, t_last = 0, deadline = hvs_test_now_ms() + 400000;
    double cpu_first = 0;
    char *text = NULL;
    while (hvs_test_now_ms() < deadline) {
        free(text);
        text = NULL;
        if (hvs_test_http("GET", url, NULL, 0, &text, NULL, 0) == 200) {
            double in = hvs_test_metric(text, "hvs_alerter_inputs_total{topic=\"scores\"}");
            if (in > 0 && !t_first) {
                t_first = hvs_test_now_ms();
                cpu_first = hvs_test_cpu_seconds(al.pid);
            }
            double lag = hvs_test_metric(text, "hvs_alerter_consumer_lag_messages");
            if (in >= (double)n && lag == 0) {
                t_last = hvs_test_now_ms();
                break;
            }
        }
        usleep(20000);
    }
    double cpu = hvs_test_cpu_seconds(al.pid) - cpu_first;
    HVS_CHECK(t_last > 0, "hvs-alerter consumed all %zu scores", n);
    double dt = (double)(t_last - t_first) / 1000.0;
    printf("hvs-alerter, %zu apartment-hour scores (+ as many aggregates) from hvs-devbroker: "
           "%.2f s = %.0f scores/s; worker CPU %.2f s (%.0f scores per CPU-second)\n",
           n, dt, (double)n / dt, cpu, (double)n / cpu);
    if (text) {
        printf("alerts: %.0f episodes opened, %.0f raised by %.0f daily lists, %.0f CRITICAL, "
               "%.0f suppressed (vacancy), %.0f building-wide, %.0f records published\n",
               hvs_test_metric(text, "hvs_alerter_episodes_opened_total"),
               hvs_test_metric(text, "hvs_alerter_raised_total"),
               hvs_test_metric(text, "hvs_alerter_lists_total"),
               hvs_test_metric(text, "hvs_alerter_critical_total"),
               hvs_test_metric(text, "hvs_alerter_suppressed_total{reason=\"vacancy\"}"),
               hvs_test_metric(text, "hvs_alerter_suppressed_total{reason=\"building_wide\"}"),
               hvs_test_metric(text, "hvs_alerter_published_total"));
        printf("batch (poll to commit, up to 5000 inputs): p50 <= %.3f s, p99 <= %.3f s\n",
               hvs_test_hist_quantile(text, "hvs_alerter_batch_seconds", 0.5),
               hvs_test_hist_quantile(text, "hvs_alerter_batch_seconds", 0.99));
        hvs_test_print_phases(text, "alerter");
    }
    free(text);
    feedback_latency(s, &broker, &redis);
    hvs_test_proc_stop(&al);
    unlink(log);
    hvs_test_proc_stop(&broker);
    hvs_test_proc_stop(&redis);
    hvs_serde_destroy(s);
    return hvs_test_done();
}
