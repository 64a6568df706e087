/*
 * Produce -> consume through the common kafka + serde layers over a real hvs-devbroker:
 * every Reading comes back field for field, keyed by building, all of a building in one
 * partition; and a message fetched by plain kcat, decoded by an independent Avro decoder
 * (python3-avro) after checking the wire header, gives the same values.
 */
#include <jansson.h>

#include "hvs/kafka.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs_test.h"

#define N 600
#define BUILDINGS 7

typedef struct expected {
    char building[32], apartment[32];
    int64_t ts;
    double heat, temp;
    int seen;
    int32_t partition;
} expected_t;

static expected_t want[N];

static void fill_reading(hvs_serde_t *s, avro_value_t *v, const expected_t *e) {
    avro_value_t f, arr, item, sub, br;
    avro_value_get_by_name(v, "building_id", &f, NULL);
    avro_value_set_string(&f, e->building);
    avro_value_get_by_name(v, "apartment_id", &f, NULL);
    avro_value_set_string(&f, e->apartment);
    avro_value_get_by_name(v, "timestamp", &f, NULL);
    avro_value_set_long(&f, e->ts);
    avro_value_get_by_name(v, "readings", &arr, NULL);
    avro_value_append(&arr, &item, NULL);
    hvs_serde_value_defaults(s, &item, NULL);
    avro_value_get_by_name(&item, "sensor_type", &sub, NULL);
    avro_value_set_string(&sub, "heating_energy_kwh");
    avro_value_get_by_name(&item, "value", &sub, NULL);
    avro_value_set_double(&sub, e->heat);
    avro_value_append(&arr, &item, NULL);
    hvs_serde_value_defaults(s, &item, NULL);
    avro_value_get_by_name(&item, "sensor_type", &sub, NULL);
    avro_value_set_string(&sub, "room_temp_c");
    avro_value_get_by_name(&item, "room_name", &sub, NULL);
    avro_value_set_branch(&sub, 1, &br);
    avro_value_set_string(&br, "kitchen");
    avro_value_get_by_name(&item, "value", &sub, NULL);
    avro_value_set_double(&sub, e->temp);
}

static const char *get_str(avro_value_t *v, const char *name) {
    avro_value_t f;
    const char *s = NULL;
    size_t n;
    if (avro_value_get_by_name(v, name, &f, NULL) == 0)
        avro_value_get_string(&f, &s, &n);
    return s;
}

/* ---- the fixture ------------------------------------------------------------------------ */

/* Set up by the first case that needs it: a devbroker (4 partitions) whose readings.raw holds
 * the N readings of want[], and one consumer of the group that has read them all (want[].seen
 * and .partition say what it got). */
static hvs_test_proc_t broker;
static hvs_serde_t *s;
static hvs_kafka_conf_t kc;
static hvs_producer_t *p;
static hvs_encoder_t *enc;
static hvs_consumer_t *c;
static hvs_decoder_t *dec;
static int got, mismatched, wrong_partition;

static void stop_broker(void) {
    hvs_consumer_destroy(c);
    hvs_decoder_destroy(dec);
    hvs_encoder_destroy(enc);
    hvs_producer_destroy(p);
    hvs_serde_destroy(s);
    hvs_test_proc_stop(&broker);
}

static void produced(void) {
    if (p)
        return;
    HVS_REQUIRE(hvs_test_devbroker_start(&broker, "--partitions 4") == 0, "devbroker");
    hvs_test_cleanup(stop_broker);
    hvs_err_t err;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    kc = (hvs_kafka_conf_t){
        .brokers = broker.addr, .group = "roundtrip", .client_id = "test", .fetch_wait_max_ms = 10};
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0, "producer: %s", err.msg);
    HVS_REQUIRE(hvs_encoder_new(s, HVS_SCHEMA_READING, "readings.raw", &enc, &err) == 0, "enc");
    for (int i = 0; i < N; i++) {
        expected_t *e = &want[i];
        snprintf(e->building, sizeof e->building, "bldg_%d", i % BUILDINGS);
        snprintf(e->apartment, sizeof e->apartment, "apt_%d", i);
        e->ts = 1730025000000 + i * HVS_MS_15MIN;
        e->heat = 1000.0 + i * 0.25;
        e->temp = 18.0 + (i % 50) * 0.1;
        e->partition = -1;
        fill_reading(s, hvs_encoder_value(enc), e);
        const void *buf;
        size_t len;
        HVS_REQUIRE(hvs_encoder_encode(enc, &buf, &len, &err) == 0, "encode: %s", err.msg);
        HVS_REQUIRE(hvs_producer_send(p, "readings.raw", RD_KAFKA_PARTITION_UA, e->building,
                                      strlen(e->building), buf, len, &err) == 0,
                    "send: %s", err.msg);
    }
    HVS_CHECK(hvs_producer_flush(p, 10000, &err) == 0, "flush: %s", err.msg);
    HVS_CHECK_EQ_INT(hvs_producer_delivered(p), N);
}

static void consumed(void) {
    if (c)
        return;
    produced();
    hvs_err_t err;
    const char *topics[] = {"readings.raw"};
    HVS_REQUIRE(hvs_consumer_new(&kc, topics, 1, NULL, &c, &err) == 0, "consumer: %s", err.msg);
    HVS_CHECK(hvs_consumer_wait_assignment(c, 15000, &err) == 0, "assignment: %s", err.msg);
    HVS_CHECK_EQ_INT(hvs_consumer_assignment_size(c), 4);
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_READING, &dec, &err) == 0, "decoder");
    int64_t deadline = hvs_test_now_ms() + 20000;
    rd_kafka_message_t *msgs[256];
    while (got < N && hvs_test_now_ms() < deadline) {
        size_t n;
        hvs_consumer_poll_batch(c, msgs, 256, 100, &n, &err);
        for (size_t i = 0; i < n; i++) {
            avro_value_t *v;
            if (hvs_decoder_decode(dec, msgs[i]->payload, msgs[i]->len, &v, &err) != 0) {
                mismatched++;
                continue;
            }
            const char *apt = get_str(v, "apartment_id");
            int idx = apt ? atoi(apt + 4) : -1;
            if (idx < 0 || idx >= N) {
                mismatched++;
                continue;
            }
            expected_t *e = &want[idx];
            avro_value_t f, arr, item, sub;
            int64_t ts = 0;
            double heat = 0, temp = 0;
            avro_value_get_by_name(v, "timestamp", &f, NULL);
            avro_value_get_long(&f, &ts);
            avro_value_get_by_name(v, "readings", &arr, NULL);
            avro_value_get_by_index(&arr, 0, &item, NULL);
            avro_value_get_by_name(&item, "value", &sub, NULL);
            avro_value_get_double(&sub, &heat);
            avro_value_get_by_index(&arr, 1, &item, NULL);
            avro_value_get_by_name(&item, "value", &sub, NULL);
            avro_value_get_double(&sub, &temp);
            int key_ok = msgs[i]->key_len == strlen(e->building) &&
                         memcmp(msgs[i]->key, e->building, msgs[i]->key_len) == 0;
            if (strcmp(get_str(v, "building_id"), e->building) != 0 || ts != e->ts ||
                heat != e->heat || temp != e->temp || !key_ok)
                mismatched++;
            /* co-partitioning: a building's messages all land in one partition */
            for (int j = 0; j < N; j++)
                if (want[j].seen && strcmp(want[j].building, e->building) == 0 &&
                    want[j].partition != msgs[i]->partition)
                    wrong_partition++;
            e->seen++;
            e->partition = msgs[i]->partition;
            got++;
        }
        HVS_CHECK(hvs_consumer_commit_batch(c, msgs, n, &err) == 0, "commit: %s", err.msg);
        hvs_consumer_release(msgs, n);
    }
}

/* ---- the cases ---------------------------------------------------------------------------- */

/* Every Reading comes back once, field for field, keyed by building, all of a building in one
 * partition; the offsets are committed. */
static void test_roundtrip(void) {
    consumed();
    hvs_err_t err;
    HVS_CHECK_EQ_INT(got, N);
    HVS_CHECK_EQ_INT(mismatched, 0);
    HVS_CHECK_EQ_INT(wrong_partition, 0);
    int dup = 0;
    for (int i = 0; i < N; i++)
        dup += want[i].seen != 1;
    HVS_CHECK_EQ_INT(dup, 0);
    HVS_CHECK_EQ_INT(hvs_consumer_lag(c), 0);
    HVS_CHECK(hvs_consumer_close(c, &err) == 0, "close: %s", err.msg);
}

/* Plain kcat + python3-avro read the same bytes the same way. */
static void test_kcat_python(void) {
    consumed();
    expected_t *e = &want[5];
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s -C -b %s -t readings.raw -p %d -o beginning -e -q -f '%%k %%o\\n' "
             "| awk '$1 == \"%s\" { print $2; exit }'",
             HVS_TEST_KCAT, broker.addr, e->partition, e->building);
    char *line = NULL;
    hvs_test_run(cmd, NULL, 0, &line, NULL);
    /* the first message of that building in its partition; python says which one it is */
    long offset = line && line[0] >= '0' && line[0] <= '9' ? atol(line) : -1;
    free(line);
    HVS_CHECK(offset >= 0, "kcat found building %s", e->building);
    snprintf(
        cmd, sizeof cmd,
        "%s -C -b %s -t readings.raw -p %d -o %ld -c 1 -e -q -f '%%s' > /tmp/hvs-kcat-%d.bin && "
        "%s %s/tests/common/kcat_decode.py /tmp/hvs-kcat-%d.bin %s/schemas/Reading.avsc %d",
        HVS_TEST_KCAT, broker.addr, e->partition, offset, (int)getpid(), HVS_TEST_PYTHON3,
        HVS_TEST_SOURCE_DIR, (int)getpid(), HVS_TEST_SOURCE_DIR, (int)hvs_encoder_schema_id(enc));
    char *out = NULL;
    int rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_CHECK(rc == 0, "kcat | python3-avro: exit %d", rc);
    json_t *j = out ? json_loads(out, 0, NULL) : NULL;
    HVS_REQUIRE(j, "python output is JSON: %s", out ? out : "");
    const char *apt = json_string_value(json_object_get(j, "apartment_id"));
    int idx = apt ? atoi(apt + 4) : -1;
    HVS_REQUIRE(idx >= 0 && idx < N, "apartment %s", apt ? apt : "?");
    HVS_CHECK_EQ_STR(json_string_value(json_object_get(j, "building_id")), want[idx].building);
    HVS_CHECK_EQ_INT(json_integer_value(json_object_get(j, "timestamp")), want[idx].ts);
    json_t *r = json_object_get(j, "readings");
    HVS_CHECK(json_real_value(json_object_get(json_array_get(r, 0), "value")) == want[idx].heat,
              "heat via python");
    HVS_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(r, 1), "room_name")),
                     "kitchen");
    HVS_CHECK(json_real_value(json_object_get(json_array_get(r, 1), "value")) == want[idx].temp,
              "temp via python");
    HVS_CHECK(json_is_null(json_object_get(j, "device_id")), "unset optional is null");
    json_decref(j);
    free(out);
    snprintf(cmd, sizeof cmd, "rm -f /tmp/hvs-kcat-%d.bin", (int)getpid());
    hvs_test_run(cmd, NULL, 0, NULL, NULL);
}

static const hvs_test_case_t cases[] = {
    {"readings_come_back_field_for_field_copartitioned", test_roundtrip},
    {"kcat_and_python_avro_decode_same_values", test_kcat_python},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    return hvs_test_main(cases, argc, argv);
}
