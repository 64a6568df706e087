/*
 * Bad input at the Avro level, through the same consume -> decode -> dead-letter loop every
 * worker runs, over a real hvs-devbroker: truncated Avro, wrong magic byte, unknown schema id,
 * an invalid body and a record of the wrong type each land on readings.dlq with a distinct
 * reason and the original bytes, topic, partition and offset, while every good message around
 * them is processed and the offsets move past all of them.
 */
#include "hvs/dlq.h"
#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs_test.h"

typedef struct sent {
    const char *what;
    unsigned char bytes[512];
    size_t len;
    const char *reason; /* NULL = good */
} sent_t;

static size_t encode_sample(hvs_serde_t *s, int kind, const char *json, unsigned char *out) {
    hvs_encoder_t *e;
    hvs_err_t err;
    HVS_REQUIRE(hvs_encoder_new(s, kind, NULL, &e, &err) == 0, "encoder");
    HVS_REQUIRE(hvs_serde_value_from_json(s, hvs_encoder_value(e), json, strlen(json), &err) == 0,
                "json: %s", err.msg);
    const void *buf;
    size_t len;
    HVS_REQUIRE(hvs_encoder_encode(e, &buf, &len, &err) == 0, "encode");
    memcpy(out, buf, len);
    hvs_encoder_destroy(e);
    return len;
}

/* The dead letters read back from readings.dlq, each checked against what was sent. */
typedef struct dlq_read {
    hvs_decoder_t *dec;
    const sent_t *sent; /* offset i of readings.raw was sent[i] */
    int letters, matched;
    char reasons[5][48];
} dlq_read_t;

static void check_letter(void *opaque, const rd_kafka_message_t *m) {
    dlq_read_t *rd = opaque;
    hvs_err_t err;
    avro_value_t *v, f, b;
    HVS_CHECK(hvs_decoder_decode(rd->dec, m->payload, m->len, &v, &err) == 0,
              "DeadLetter decodes: %s", err.msg);
    const char *code, *topic, *worker;
    const void *orig;
    size_t sz, olen;
    int64_t offset = -1;
    avro_value_get_by_name(v, "error_code", &f, NULL);
    avro_value_get_string(&f, &code, &sz);
    avro_value_get_by_name(v, "original_topic", &f, NULL);
    avro_value_get_string(&f, &topic, &sz);
    avro_value_get_by_name(v, "worker", &f, NULL);
    avro_value_get_string(&f, &worker, &sz);
    avro_value_get_by_name(v, "original_value", &f, NULL);
    avro_value_get_bytes(&f, &orig, &olen);
    avro_value_get_by_name(v, "original_offset", &f, NULL);
    if (avro_value_get_current_branch(&f, &b) == 0 && avro_value_get_type(&b) == AVRO_INT64)
        avro_value_get_long(&b, &offset);
    if (rd->letters < 5)
        snprintf(rd->reasons[rd->letters], sizeof rd->reasons[0], "%s", code);
    rd->letters++;
    /* offset i of readings.raw was msgs[i]: same bytes and the expected reason */
    if (offset >= 0 && offset < 9 && rd->sent[offset].reason &&
        strcmp(rd->sent[offset].reason, code) == 0 && olen == rd->sent[offset].len &&
        memcmp(orig, rd->sent[offset].bytes, olen) == 0 && strcmp(topic, "readings.raw") == 0 &&
        strcmp(worker, "dlqtest") == 0 && m->key_len == 6 && memcmp(m->key, "bldg_1", 6) == 0)
        rd->matched++;
    else
        fprintf(stderr, "dead letter at offset %lld reason %s did not match\n", (long long)offset,
                code);
}

/* ---- the fixture ------------------------------------------------------------------------ */

/* Set up by the first case that needs it: a devbroker whose readings.raw holds msgs (good ones
 * with the bad kinds in between) and then `last` (good), and the worker loop below run once over
 * them. */
static hvs_test_proc_t broker;
static hvs_serde_t *s;
static sent_t msgs[9];
static sent_t last;
static hvs_producer_t *p;
static hvs_consumer_t *c;
static hvs_decoder_t *dec;
static hvs_dlq_t *dlq;

/* What the worker loop saw. */
static bool loop_ran;
static int processed, total;
static char processed_apts[8][16];

static void stop_broker(void) {
    hvs_consumer_destroy(c);
    hvs_dlq_destroy(dlq);
    hvs_decoder_destroy(dec);
    hvs_producer_destroy(p);
    hvs_serde_destroy(s);
    hvs_test_proc_stop(&broker);
}

static void build_messages(void) {
#define GOOD_JSON                                                                                  \
    "{\"building_id\":\"bldg_1\",\"apartment_id\":\"apt_%d\",\"timestamp\":1730025000000,"         \
    "\"readings\":[{\"sensor_type\":\"room_temp_c\",\"value\":21.5}]}"
    char json[512];
    int k = 0;
    for (int g = 0; g < 4; g++) {
        snprintf(json, sizeof json, GOOD_JSON, g);
        msgs[k] = (sent_t){.what = "good"};
        msgs[k].len = encode_sample(s, HVS_SCHEMA_READING, json, msgs[k].bytes);
        k += g < 3 ? 2 : 1; /* bad ones go in between */
    }
    /* slots 1, 3, 5 and the tail: the bad kinds, built from a good message */
    sent_t *good = &msgs[0];
    msgs[1] = *good, msgs[1].what = "truncated", msgs[1].len = good->len - 6,
    msgs[1].reason = HVS_SERDE_R_TRUNCATED;
    msgs[3] = *good, msgs[3].what = "magic", msgs[3].bytes[0] = 0x7b,
    msgs[3].reason = HVS_SERDE_R_BAD_MAGIC;
    msgs[5] = *good, msgs[5].what = "unknown id", msgs[5].bytes[3] = 0x7f,
    msgs[5].reason = HVS_SERDE_R_UNKNOWN_SCHEMA;
    /* body: "b", "a", ts 1, one reading "x" whose room_name union branch 7 does not exist */
    msgs[7] = (sent_t){.what = "invalid body",
                       .bytes = {0, 0, 0, 0, 12, 0x02, 'b', 0x02, 'a', 0x02, 0x02, 0x02, 'x', 0x0e},
                       .len = 14,
                       .reason = HVS_SERDE_R_AVRO};
    msgs[8] = (sent_t){.what = "wrong record", .reason = HVS_SERDE_R_SCHEMA_MISMATCH};
    msgs[8].len = encode_sample(
        s, HVS_SCHEMA_FEEDBACK,
        "{\"alert_id\":\"a\",\"building_id\":\"bldg_1\",\"technician_id\":\"t\","
        "\"label\":\"TRUE_POSITIVE\",\"labelled_at\":1730025000000}",
        msgs[8].bytes);
    /* one more good one at the very end: the consumer keeps going after all of them */
    snprintf(json, sizeof json, GOOD_JSON, 99);
    last.len = encode_sample(s, HVS_SCHEMA_READING, json, last.bytes);
}

static void produce_messages(const hvs_kafka_conf_t *kc) {
    hvs_err_t err;
    HVS_REQUIRE(hvs_producer_new(kc, &p, &err) == 0, "producer");
    for (int i = 0; i < 9; i++)
        HVS_REQUIRE(hvs_producer_send(p, "readings.raw", 0, "bldg_1", 6, msgs[i].bytes, msgs[i].len,
                                      &err) == 0,
                    "send");
    HVS_REQUIRE(hvs_producer_send(p, "readings.raw", 0, "bldg_1", 6, last.bytes, last.len, &err) ==
                    0,
                "send");
    HVS_REQUIRE(hvs_producer_flush(p, 10000, &err) == 0, "flush: %s", err.msg);
}

/* The worker loop: decode, dead-letter what fails, process the rest, commit. */
static void worker_loop(void) {
    if (loop_ran)
        return;
    loop_ran = true;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 1") == 0, "devbroker");
    hvs_test_cleanup(stop_broker);
    hvs_err_t err;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    build_messages();
    hvs_kafka_conf_t kc = {
        .brokers = broker.addr, .group = "dlqtest", .client_id = "test", .fetch_wait_max_ms = 10};
    produce_messages(&kc);

    const char *topics[] = {"readings.raw"};
    HVS_REQUIRE(hvs_consumer_new(&kc, topics, 1, NULL, &c, &err) == 0, "consumer");
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_READING, &dec, &err) == 0, "decoder");
    HVS_REQUIRE(hvs_dlq_new(p, s, "dlqtest", &dlq, &err) == 0, "dlq");
    int64_t deadline = hvs_test_now_ms() + 20000;
    while (total < 10 && hvs_test_now_ms() < deadline) {
        rd_kafka_message_t *batch[32];
        size_t n;
        hvs_consumer_poll_batch(c, batch, 32, 100, &n, &err);
        for (size_t i = 0; i < n; i++, total++) {
            avro_value_t *v;
            hvs_err_t why;
            if (hvs_decoder_decode(dec, batch[i]->payload, batch[i]->len, &v, &why) != 0) {
                HVS_CHECK(hvs_dlq_send_message(dlq, batch[i], &why, &err) == 0, "dlq send");
                continue;
            }
            avro_value_t f;
            const char *apt;
            size_t sz;
            avro_value_get_by_name(v, "apartment_id", &f, NULL);
            avro_value_get_string(&f, &apt, &sz);
            if (processed < 8)
                snprintf(processed_apts[processed], sizeof processed_apts[0], "%s", apt);
            processed++;
        }
        HVS_CHECK(hvs_producer_flush(p, 10000, &err) == 0, "dlq flush: %s", err.msg);
        HVS_CHECK(hvs_consumer_commit_batch(c, batch, n, &err) == 0, "commit");
        hvs_consumer_release(batch, n);
    }
}

/* ---- the cases ---------------------------------------------------------------------------- */

/* Every good message around the bad ones is processed, the offsets move past all of them. */
static void test_good_processed_offsets_move_on(void) {
    worker_loop();
    HVS_CHECK_EQ_INT(total, 10);
    HVS_CHECK_EQ_INT(processed, 5);
    HVS_CHECK_EQ_STR(processed_apts[4], "apt_99");
    HVS_CHECK_EQ_INT(hvs_dlq_sent(dlq), 5);
    HVS_CHECK_EQ_INT(hvs_consumer_lag(c), 0); /* offsets moved past bad and good alike */
}

/* Read the dead letters back from the topic and check each against what was sent. */
static void test_dead_letters(void) {
    worker_loop();
    hvs_err_t err;
    const char *dlq_topics[] = {"readings.dlq"};
    hvs_decoder_t *ddec;
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_DEAD_LETTER, &ddec, &err) == 0, "decoder");
    dlq_read_t rd = {.dec = ddec, .sent = msgs};
    hvs_test_tail_t t = {.brokers = broker.addr,
                         .topics = dlq_topics,
                         .group = "dlqreader",
                         .want = 5,
                         .timeout_ms = 20000,
                         .batch = 16,
                         .commit = true};
    hvs_test_tail(&t, check_letter, &rd);
    int letters = rd.letters, matched = rd.matched;
    char(*reasons)[48] = rd.reasons;
    HVS_CHECK_EQ_INT(letters, 5);
    HVS_CHECK_EQ_INT(matched, 5);
    int distinct = 1;
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            distinct &= strcmp(reasons[i], reasons[j]) != 0;
    HVS_CHECK(distinct, "five distinct reasons");
    hvs_decoder_destroy(ddec);
}

static const hvs_test_case_t cases[] = {
    {"good_messages_processed_offsets_move_past_bad", test_good_processed_offsets_move_on},
    {"dead_letter_keeps_original_bytes_with_distinct_reasons", test_dead_letters},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
