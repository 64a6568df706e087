/*
 * test_agg_fault_it - the fault suite (issue 13) on hvs-aggregator, through the harness
 * (tests/support/hvs_fault.h). One seeded messy stream from the simulator (3 buildings x 6
 * apartments x 4 days: duplicates, reordering, late batches hours to days late, gaps, clock skew,
 * meter replacements, broken records) is aggregated by the real process against a real
 * redis-server and hvs-devbroker: once undisturbed (the reference, a shared fixture), then once
 * per fault. Every run must end with the same latest value for every window (highest revision;
 * the revision number, emitted_at and the late_data flag are not compared: they follow batch
 * boundaries) and the same dead letters (original partition, offset and reason, original key and
 * value, error text).
 *
 * Every member runs with --batch 20 (many batches, so faults land mid-batch-stream) and
 * --idle-timeout 1h (no wall-clock watermark advance: a run's result must not depend on how long
 * a fault kept it idle). Timeouts are lowered so the pauses can be short: session timeout 4 s
 * (default 10 s), stall timeout 10 s; the pauses are 10 s instead of the 20 s (still
 * longer than the session timeout and than the Redis client's 5 s command timeout).
 *
 * The poison case publishes the poison set around its own copy of the stream and checks every
 * poisoned record is dead-lettered with its reason while the windows equal the reference.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg_topics.h"
#include "hvs/reading.h"
#include "hvs/serde.h"
#include "hvs_fault.h"
#include "hvs_test.h"

#define MIN (60 * 1000LL)
#define HOUR (60 * MIN)

static const char *SIM_ARGS =
    "--buildings 3 --apartments-per-building 6 --start 2024-11-25T00:00:00Z --days 4 --seed 5 "
    "--publish-topology false --late-batch-rate 0.08 --gap-rate 0.02 --meter-replacement-rate 2 "
    "--malformed-rate 0.002";

static bool agg_key(const json_t *v, char *key, size_t len) {
    const char *b = json_string_value(json_object_get(v, "building_id"));
    const char *apt = json_string_value(json_object_get(v, "apartment_id"));
    if (!b)
        return false;
    snprintf(key, len, "%s/%s/%lld/%lld", b, apt ? apt : "-",
             (long long)json_integer_value(json_object_get(v, "window_size_ms")),
             (long long)json_integer_value(json_object_get(v, "window_start")));
    return true;
}

static const hvs_fault_stage_t STAGE = {
    .name = "aggregator",
    .exe = HVS_TEST_AGGREGATOR,
    .args = "--batch 20 --idle-timeout 1h --stall-timeout 10s",
    .env = "HVS_KAFKA_FETCH_WAIT_MAX_MS=10 HVS_LOG_LEVEL=info HVS_KAFKA_SESSION_TIMEOUT_MS=4000 "
           "HVS_KAFKA_HEARTBEAT_INTERVAL_MS=500",
    .inputs = {"readings.raw"},
    .outputs = {"aggregates.hourly", "aggregates.15m"},
    .dead_letters = {"readings.dlq"},
    .key = agg_key,
    .rank = hvs_fault_rank_revision,
    .comparable = agg_test_comparable,
};

/* ---- fixtures ----------------------------------------------------------------------------- */

static hvs_fault_world_t world;
static bool have_world;
static hvs_fault_run_t *ref;

static void teardown(void) {
    hvs_fault_run_free(ref);
    hvs_fault_world_stop(&world, hvs_test_failed > 0);
}

static void publish_stream(const char *topic) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "env HVS_KAFKA_BROKERS=%s HVS_TOPIC_READINGS_RAW=%s %s --out kafka %s 2>&1",
             world.broker.addr, topic, HVS_TEST_SIMULATOR, SIM_ARGS);
    char *out = NULL;
    int rc = hvs_test_run(cmd, NULL, 0, &out, NULL);
    HVS_REQUIRE(rc == 0, "simulator: %s", out ? out : "");
    free(out);
}

static void need_world(void) {
    if (have_world)
        return;
    hvs_fault_world_start(&world, &STAGE, NULL);
    hvs_test_cleanup(teardown);
    publish_stream("readings.raw");
    have_world = true;
}

static void need_reference(void) {
    need_world();
    if (ref)
        return;
    ref = hvs_fault_run(&world, "ref", NULL);
    HVS_REQUIRE(ref->finished, "the reference run did not catch up");
}

/* ---- cases -------------------------------------------------------------------------------- */

static void test_reference(void) {
    need_reference();
    HVS_CHECK(json_object_size(ref->latest) > 3 * 7 * 24 * 3, "reference: %zu windows",
              json_object_size(ref->latest));
    HVS_CHECK(ref->nout > json_object_size(ref->latest),
              "reference: %zu outputs for %zu windows "
              "(revisions)",
              ref->nout, json_object_size(ref->latest));
    HVS_CHECK(json_object_size(ref->dead) > 0, "reference: %zu dead letters",
              json_object_size(ref->dead));
    HVS_CHECK(ref->restarts == 0, "reference: %d restarts", ref->restarts);
}

/* The standard cases (hvs_fault.h), each a run compared with the reference. */
static void standard(hvs_fault_run_t *(*fn)(hvs_fault_world_t *, const hvs_fault_run_t *)) {
    need_reference();
    hvs_fault_run_free(fn(&world, ref));
}

static void kill9(uint64_t seed) {
    need_reference();
    hvs_fault_run_free(hvs_fault_case_kill9(&world, ref, seed));
}

static void test_kill9_seed_11(void) { kill9(11); }
static void test_kill9_seed_23(void) { kill9(23); }
static void test_kill9_seed_37(void) { kill9(37); }
static void test_redis_restart(void) { standard(hvs_fault_case_redis_restart); }
static void test_redis_flush(void) { standard(hvs_fault_case_redis_flush); }
static void test_rebuild_kill9(void) { standard(hvs_fault_case_rebuild_kill9); }
static void test_redis_pause(void) { standard(hvs_fault_case_redis_pause); }
static void test_worker_pause(void) { standard(hvs_fault_case_worker_pause); }
static void test_broker_down(void) { standard(hvs_fault_case_broker_down); }

/* The broker refuses writes for longer than the flush timeout (lowered to 3 s): a batch's flush
 * times out, the worker exits without writing state or committing, is restarted and replays.
 * (A broker going down happens to fall while the worker polls or commits, rarely while it
 * flushes; refused produce requests are what a flush sees of any outage, every time.) */
static void test_broker_down_past_flush(void) {
    need_reference();
    hvs_fault_case_flush_timeout(&world, ref, "HVS_AGG_FLUSH_TIMEOUT=3s");
}

/* A second member joins mid-stream (cooperative-sticky hand-off of half the partitions) and
 * leaves again later (they move back). */
static void test_second_member(void) {
    need_reference();
    hvs_fault_run_t *run = hvs_fault_case_second_member(&world, ref);
    hvs_fault_run_free(run);
}

/* ---- the poison set ---------------------------------------------------------------------- */

#define NPOISON 40
static hvs_fault_poison_t poisons[NPOISON];
static size_t npoisons;

static hvs_serde_t *serde;
static hvs_encoder_t *enc, *dl_enc;
static hvs_reading_codec_t *codec;

static void reading(hvs_reading_t *r, const char *b, const char *sensor, double v, hvs_ms_t t) {
    memset(r, 0, sizeof *r);
    snprintf(r->building_id, sizeof r->building_id, "%s", b);
    snprintf(r->apartment_id, sizeof r->apartment_id, "apt_1");
    snprintf(r->v[0].sensor_type, sizeof r->v[0].sensor_type, "%s", sensor);
    if (strcmp(sensor, "room_temp_c") == 0)
        snprintf(r->v[0].room_name, sizeof r->v[0].room_name, "living");
    r->v[0].value = v;
    r->n = 1;
    r->timestamp = t;
}

/* Avro with its wire header into buf; returns the length. */
static size_t encode(const hvs_reading_t *r, unsigned char *buf, size_t cap) {
    hvs_err_t err = {0};
    const void *b;
    size_t len;
    HVS_REQUIRE(hvs_reading_to_avro(codec, r, NULL, HVS_MS_NONE, hvs_encoder_value(enc), &err) ==
                        0 &&
                    hvs_encoder_encode(enc, &b, &len, &err) == 0 && len <= cap,
                "encode: %s", err.msg);
    memcpy(buf, b, len);
    return len;
}

static void add(hvs_fault_producer_t *p, const char *topic, const char *what, const char *reason,
                const char *key, size_t keylen, const void *value, size_t len) {
    HVS_REQUIRE(npoisons < NPOISON, "too many poisons");
    hvs_fault_poison_t *x = &poisons[npoisons++];
    *x = (hvs_fault_poison_t){.what = what, .reason = reason, .input = 0};
    hvs_fault_produce(p, topic, key, keylen, value, len, &x->partition, &x->offset);
}

static size_t zigzag(unsigned char *out, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        out[n++] = (unsigned char)(z | 0x80);
        z >>= 7;
    }
    out[n++] = (unsigned char)z;
    return n;
}

/* The poison set, half (`part` 0 or 1) of it. Building "pz_b" is in no other record: a poison
 * that got through would show as extra windows. */
static void publish_poison(hvs_fault_producer_t *p, const char *topic, int part) {
    static unsigned char big[900 * 1024];
    unsigned char buf[4096];
    hvs_reading_t r;
    const hvs_ms_t t = 1732622400000LL; /* 2024-11-26T12:00Z, inside the stream */
    size_t len;
    if (part == 0) {
        uint64_t x = 42;
        for (size_t i = 0; i < 64; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (unsigned char)x;
        }
        buf[0] = 0x7f; /* not the magic byte 0 */
        add(p, topic, "random bytes", "bad_magic", "pz_b", 4, buf, 64);
        reading(&r, "pz_b", "heating_energy_kwh", 10, t);
        len = encode(&r, buf, sizeof buf);
        buf[0] = 1;
        add(p, topic, "bad magic", "bad_magic", "pz_b", 4, buf, len);
        len = encode(&r, buf, sizeof buf);
        buf[1] = 0, buf[2] = 0x0f, buf[3] = 0x42, buf[4] = 0x3f; /* id 999999 */
        add(p, topic, "unknown schema id", "unknown_schema_id", "pz_b", 4, buf, len);
        len = encode(&r, buf, sizeof buf);
        add(p, topic, "truncated", "truncated", "pz_b", 4, buf, len - 3);
        add(p, topic, "header only", "truncated", "pz_b", 4, buf, 5);
        /* another record type: a DeadLetter, with its own (known) schema id */
        hvs_err_t err = {0};
        avro_value_t *v = hvs_encoder_value(dl_enc), f, br;
        avro_value_get_by_name(v, "original_topic", &f, NULL);
        avro_value_set_string(&f, "readings.raw");
        avro_value_get_by_name(v, "original_value", &f, NULL);
        avro_value_set_bytes(&f, (void *)"x", 1);
        avro_value_get_by_name(v, "error_code", &f, NULL);
        avro_value_set_string(&f, "bad_magic");
        avro_value_get_by_name(v, "error_text", &f, NULL);
        avro_value_set_string(&f, "poison");
        avro_value_get_by_name(v, "worker", &f, NULL);
        avro_value_set_string(&f, "test");
        avro_value_get_by_name(v, "failed_at", &f, NULL);
        avro_value_set_long(&f, t);
        const char *unions[] = {"original_partition", "original_offset", "original_key", "source"};
        for (size_t i = 0; i < 4; i++) {
            avro_value_get_by_name(v, unions[i], &f, NULL);
            avro_value_set_branch(&f, 0, &br);
            avro_value_set_null(&br);
        }
        const void *b;
        HVS_REQUIRE(hvs_encoder_encode(dl_enc, &b, &len, &err) == 0, "dead letter: %s", err.msg);
        add(p, topic, "another record type", "schema_mismatch", "pz_b", 4, b, len);
        /* 900 KB: a good reading followed by 900 KB of zeros */
        len = encode(&r, big, sizeof big);
        memset(big + len, 0, sizeof big - len);
        add(p, topic, "900 KB value", "trailing_bytes", "pz_b", 4, big, sizeof big);
        add(p, topic, "null value", "empty_value", "pz_b", 4, NULL, 0);
        return;
    }
    reading(&r, "pz_b", "heating_energy_kwh", 0.0 / 0.0, t);
    len = encode(&r, buf, sizeof buf);
    add(p, topic, "NaN", "non_finite", "pz_b", 4, buf, len);
    reading(&r, "pz_b", "heating_energy_kwh", 1.0 / 0.0, t);
    len = encode(&r, buf, sizeof buf);
    add(p, topic, "+Inf", "non_finite", "pz_b", 4, buf, len);
    reading(&r, "pz_b", "heating_energy_kwh", -5.0, t);
    len = encode(&r, buf, sizeof buf);
    add(p, topic, "negative counter", "value_out_of_range", "pz_b", 4, buf, len);
    reading(&r, "pz_b", "room_temp_c", 1e6, t);
    len = encode(&r, buf, sizeof buf);
    add(p, topic, "room at 1e6 degC", "value_out_of_range", "pz_b", 4, buf, len);
    reading(&r, "pz_b", "heating_energy_kwh", 1e300, t);
    len = encode(&r, buf, sizeof buf);
    add(p, topic, "counter 1e300", "value_out_of_range", "pz_b", 4, buf, len);
    reading(&r, "pz_b", "heating_energy_kwh", 1.0, 4102444800000LL);
    len = encode(&r, buf, sizeof buf);
    add(p, topic, "year 2100", "timestamp_in_future", "pz_b", 4, buf, len);
    reading(&r, "pz_b", "heating_energy_kwh", 1.0, 915148800000LL);
    len = encode(&r, buf, sizeof buf);
    add(p, topic, "year 1999", "timestamp_too_old", "pz_b", 4, buf, len);
    reading(&r, "pz_{b}", "heating_energy_kwh", 10, t);
    len = encode(&r, buf, sizeof buf);
    add(p, topic, "id with braces", "bad_id", "pz_{b}", 6, buf, len);
    reading(&r, "pz_b\xff", "heating_energy_kwh", 10, t);
    len = encode(&r, buf, sizeof buf);
    add(p, topic, "id not UTF-8", "bad_id", "pz_b\xff", 5, buf, len);
    /* a 300-byte building id: more than the struct holds, spliced into the encoding (the id is
     * the record's first field: a 100-byte one has a 2-byte length, so has a 300-byte one) */
    char id[301];
    memset(id, 'q', 300);
    id[300] = '\0';
    id[100] = '\0';
    reading(&r, id, "heating_energy_kwh", 10, t);
    len = encode(&r, buf, sizeof buf);
    unsigned char spliced[4096];
    memcpy(spliced, buf, 5);
    size_t n = 5 + zigzag(spliced + 5, 300);
    id[100] = 'q';
    memcpy(spliced + n, id, 300);
    n += 300;
    memcpy(spliced + n, buf + 5 + 2 + 100, len - 5 - 2 - 100);
    n += len - 5 - 2 - 100;
    add(p, topic, "300-byte id", "id_too_long", id, 300, spliced, n);
    reading(&r, "pz_b", "heating_energy_kwh", 10, t);
    len = encode(&r, buf, sizeof buf);
    add(p, topic, "no key", "key_mismatch", NULL, 0, buf, len);
    add(p, topic, "another building's key", "key_mismatch", "pz_c", 4, buf, len);
}

static void test_poison(void) {
    need_reference();
    const char *topic = "poison.readings.raw";
    hvs_fault_topic_create(&world, topic, 12);
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_READING, topic, &enc, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_DEAD_LETTER, "readings.dlq", &dl_enc, &err) ==
                        0 &&
                    hvs_reading_codec_new(serde, &codec, &err) == 0,
                "serde: %s", err.msg);
    hvs_fault_producer_t *p = hvs_fault_producer_new(&world);
    publish_poison(p, topic, 0);
    size_t first_half = npoisons;
    publish_stream(topic);
    publish_poison(p, topic, 1);
    hvs_fault_producer_free(p);
    hvs_reading_codec_destroy(codec);
    hvs_encoder_destroy(enc);
    hvs_encoder_destroy(dl_enc);
    hvs_serde_destroy(serde);

    hvs_fault_opts_t o = {.inputs = {topic}};
    hvs_fault_run_t *run = hvs_fault_run(&world, "poison", &o);
    /* the first half went before the stream's records: they moved by it */
    for (size_t i = 0; i < first_half; i++)
        poisons[i].before = true;
    hvs_fault_check_poisons(ref, run, poisons, npoisons);
    hvs_fault_run_free(run);
}

static const hvs_test_case_t cases[] = {
    {"reference", test_reference},
    {"kill9_three_times_seed_11", test_kill9_seed_11},
    {"kill9_three_times_seed_23", test_kill9_seed_23},
    {"kill9_three_times_seed_37", test_kill9_seed_37},
    {"redis_restart", test_redis_restart},
    {"redis_flush", test_redis_flush},
    {"rebuild_kill9", test_rebuild_kill9},
    {"redis_pause", test_redis_pause},
    {"worker_pause", test_worker_pause},
    {"broker_down", test_broker_down},
    {"broker_down_past_flush_timeout", test_broker_down_past_flush},
    {"second_member", test_second_member},
    {"poison", test_poison},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
