/*
 * test_sc_fault_it - the fault suite (issue 13) on hvs-scorer, through the harness
 * (tests/support/hvs_fault.h). The test writes its own seeded, messy input (deterministic given
 * SC_SEED): 6 buildings (five older than 30 days: models serve them; one 10 days old: rules
 * only) of 3-5 apartments with 2-4 rooms each, 72 hours. Per apartment-hour an Aggregate
 * with rooms (valves, temperatures, setpoints, temperature changes) and a FeatureVector, with
 * episodes the rules and the residual see: stuck valves (one in the young building), a sensor
 * flatline, excess consumption, consumption with every valve closed. Messy as the real stream:
 * aggregate revisions (revision 1, changed numbers, 1-20 h later, re-emitting the hour's vector
 * as revision 4 and/or 6), weak vectors (revision 0) upgraded to 2 hours later, late aggregates
 * (2-10 h, out of order, after their vector), exact duplicates on both topics, building-level
 * records (apartment null) on both topics that must be skipped, and a few bad records among
 * them (undecodable bytes, another feature set, an infinite feature, a key of another building,
 * a 15-minute window, a valve at 150 %): dead letters of every run. The two anomaly models are
 * trained here and published on `models` before any worker starts, so every run serves the same
 * versions. Both inputs are produced completely before the first run.
 *
 * The real process runs against a real redis-server and hvs-devbroker: once undisturbed (the
 * reference), twice more undisturbed (once with small fetches: the two inputs interleave
 * finely), then once per fault. Every run must end with the same latest AnomalyScore per
 * (building, apartment, hour) - the highest `revision` - and the same dead letters.
 *
 * Why 72 hours, not more: each half of an apartment-hour keeps its own hour in the
 * apartment's 72-hour ring (apartment.h), so a topic running ahead evicts only its own older
 * halves; but the devbroker often serves one topic almost wholly before the other, and once
 * one input runs more than 72 hours ahead, a half whose partner was already evicted is scored
 * without it. SC_FAULT_HOURS=96 shows that limit (docs/design.md section 6, "Determinism", and
 * section 12: aligning the inputs by time in the stage runner is the fix). Within the ring the
 * claim holds and is what this suite proves.
 *
 * What is compared: the whole score as hvsctl tail prints it except `scored_at` (the wall clock
 * of the batch that published it). `revision` is the rank and is compared too.
 *
 * Settings as the features suite's: --batch 20 (many batches, so faults land mid-stream), session
 * timeout 4 s, heartbeat 500 ms, stall timeout 10 s, fetch wait 10 ms; pauses 10 s, the broker
 * outage 15 s. The poison case publishes a poison set around its own copy of both streams and
 * checks every poison is dead-lettered with its reason while the scores equal the reference.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/features.h"
#include "hvs/kafka.h"
#include "hvs/model.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs/task_rows.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs_fault.h"
#include "hvs_test.h"

#define MIN (60 * 1000LL)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define T0 1733011200000LL /* 2024-12-01T00:00:00Z */
#define MAXH (4 * 24)
/* Hours of the stream: 72 (SC_RING) by default, so that no apartment's ring wraps; SC_FAULT_HOURS
 * (48 to 96) makes it wrap (see the top of the file). */
static int HOURS = 72;
#define NB 6
#define MAXA 5
#define MAXR 4
#define YOUNG 5 /* the building younger than 30 days */
#define SC_SEED 17ULL

static const char *const BLD[NB] = {"sc_b1", "sc_b2", "sc_b3", "sc_b4", "sc_b5", "sc_b6"};
static const int NAPT[NB] = {3, 4, 5, 3, 4, 3};
static const char *const ROOM[MAXR] = {"living_room", "bedroom", "kitchen", "office"};

/* ---- the stage ---------------------------------------------------------------------------- */

static bool sc_key(const json_t *v, char *key, size_t len) {
    const char *b = json_string_value(json_object_get(v, "building_id"));
    const char *apt = json_string_value(json_object_get(v, "apartment_id"));
    if (!b || !apt)
        return false;
    snprintf(key, len, "%s/%s/%lld", b, apt,
             (long long)json_integer_value(json_object_get(v, "hour")));
    return true;
}

/* scored_at is the batch's wall clock: the only field that differs between equal runs. */
static json_t *sc_comparable(const json_t *v) {
    json_t *c = json_deep_copy(v);
    json_object_del(c, "scored_at");
    return c;
}

static const hvs_fault_stage_t STAGE = {
    .name = "scorer",
    .exe = HVS_TEST_SCORER,
    .args = "--batch 20 --stall-timeout 10s",
    .env = "HVS_KAFKA_FETCH_WAIT_MAX_MS=10 HVS_LOG_LEVEL=info HVS_KAFKA_SESSION_TIMEOUT_MS=4000 "
           "HVS_KAFKA_HEARTBEAT_INTERVAL_MS=500",
    .inputs = {"aggregates.hourly", "features.hourly"},
    .outputs = {"scores.anomaly"},
    .dead_letters = {"aggregates.hourly.dlq", "features.hourly.dlq"},
    .key = sc_key,
    .rank = hvs_fault_rank_revision,
    .comparable = sc_comparable,
};

/* ---- the seeded input --------------------------------------------------------------------- */

/* A uniform [0, 1) from (seed, a, b, c, salt): independent of the generation order. */
static double u(int64_t a, int64_t b, int64_t c, int salt) {
    return hvs_test_draw(SC_SEED, salt, (const int64_t[]){a, b, c}, 3);
}

enum {
    S_ARRIVE = 1,
    S_LATE,
    S_LATE_BY,
    S_REV,
    S_REV_AT,
    S_WEAK,
    S_WEAK_UP,
    S_REV_WEAK,
    S_DUP,
    S_DUP_AT,
    S_HEAT,
    S_TEMP,
    S_VALVE,
    S_CHANGES,
    S_OUT,
    S_FC,
};

static struct { int late, rev, weak, dups, building_level; } made;

static hvs_serde_t *serde;
static hvs_producer_t *prod;
static hvs_encoder_t *enc_agg, *enc_vec, *enc_bld, *enc_model;
static hvs_fault_recs_t aggs, vecs;
/* the highest revision of each apartment-hour's two halves, as generated */
static int max_arev[NB][MAXA][MAXH], max_vrev[NB][MAXA][MAXH];

/* JSON -> Avro with its wire header (valid until the encoder's next use). */
static const void *encode_json(hvs_encoder_t *enc, const char *json, size_t *len) {
    hvs_err_t err = {0};
    const void *buf;
    HVS_REQUIRE(
        hvs_serde_value_from_json(serde, hvs_encoder_value(enc), json, strlen(json), &err) == 0 &&
            hvs_encoder_encode(enc, &buf, len, &err) == 0,
        "encode: %s (%s)", err.msg, json);
    return buf;
}

/* One room of an apartment-hour. */
typedef struct room {
    double temp, setpoint, valve;
    int changes;
} room_t;

/* What an apartment-hour is (revision rev of its aggregate). */
typedef struct hour {
    double outdoor, heat;
    int nrooms;
    room_t rooms[MAXR];
} hour_t;

static double outdoor(int b, int64_t i) {
    return 2.0 + 1.2 * b + 6.0 * sin(2 * M_PI * (double)(i % 24) / 24.0) - 0.05 * (double)i +
           0.5 * (u(b, i, 0, S_OUT) - 0.5);
}
static double true_heat(double t) { return 0.1 + 0.05 * fmax(0, 18 - t); }

/* The episodes (apartment index a of building b, hours [from, to)). */
static bool in(int b, int a, int64_t i, int eb, int ea, int from, int to) {
    return b == eb && a == ea && i >= from && i < to;
}
#define STUCK(b, a, i) (in(b, a, i, 0, 1, 30, 60) || in(b, a, i, YOUNG, 0, 20, 45))
#define FLAT(b, a, i) in(b, a, i, 1, 2, 40, 70)
#define EXCESS(b, a, i) (in(b, a, i, 2, 0, 60, 75) || in(b, a, i, 3, 1, 50, 58))
#define NO_DEMAND(b, a, i) in(b, a, i, 4, 2, 50, 65)

static hour_t hour_of(int b, int a, int64_t i, int rev) {
    hour_t h = {.outdoor = outdoor(b, i), .nrooms = 2 + (a + b) % 3};
    h.heat = true_heat(h.outdoor) + 0.04 * (u(b, a, i, S_HEAT) - 0.5);
    if (EXCESS(b, a, i))
        h.heat += b == 2 ? 2.0 : 1.2;
    if (NO_DEMAND(b, a, i))
        h.heat += 0.5;
    for (int r = 0; r < h.nrooms; r++) {
        room_t *m = &h.rooms[r];
        m->setpoint = 20.5 + 0.5 * (r % 2);
        m->temp = m->setpoint - 0.3 + 0.6 * u(b * 16 + a, i, r, S_TEMP);
        m->valve = floor(20 + 40 * u(b * 16 + a, i, r, S_VALVE));
        m->changes = 1 + (int)(4 * u(b * 16 + a, i, r, S_CHANGES));
        if (r == 0 && STUCK(b, a, i))
            m->setpoint = 21.0, m->temp = 16.0, m->valve = 100, m->changes = 1;
        if (r == 1 && FLAT(b, a, i))
            m->temp = 20.7, m->changes = 0;
        if (NO_DEMAND(b, a, i))
            m->valve = 2;
    }
    if (rev > 0) { /* a revision changes the numbers */
        h.heat = h.heat * 1.1 + 0.05;
        for (int r = 0; r < h.nrooms; r++)
            h.rooms[r].temp += 0.2;
    }
    return h;
}

static const char *apt_id(int a) {
    static const char *const ids[MAXA] = {"apt_1", "apt_2", "apt_3", "apt_4", "apt_5"};
    return ids[a];
}

/* An apartment's Aggregate (apt NULL: the building's, without rooms) as JSON. */
static void agg_json(char *json, size_t cap, const char *bld, const char *apt, hvs_ms_t ws,
                     int64_t size, int rev, const hour_t *h, double valve_override) {
    char rooms[2048] = "";
    size_t n = 0;
    for (int r = 0; apt && r < h->nrooms; r++) {
        const room_t *m = &h->rooms[r];
        n += (size_t)snprintf(
            rooms + n, sizeof rooms - n,
            "%s{\"room\":\"%s\",\"temp_mean_c\":%.3f,\"temp_min_c\":%.3f,\"temp_max_c\":%.3f,"
            "\"temp_std_c\":0.1,\"setpoint_mean_c\":%.1f,\"valve_mean_pct\":%.1f,"
            "\"readings_seen\":5,\"temp_changes\":%d}",
            r ? "," : "", ROOM[r], m->temp, m->temp - 0.2, m->temp + 0.2, m->setpoint,
            r == 0 && valve_override >= 0 ? valve_override : m->valve, m->changes);
    }
    double room = 0, sp = 0;
    for (int r = 0; r < h->nrooms; r++)
        room += h->rooms[r].temp / h->nrooms, sp += h->rooms[r].setpoint / h->nrooms;
    char a[64];
    snprintf(a, sizeof a, apt ? "\"%s\"" : "null", apt);
    snprintf(json, cap,
             "{\"building_id\":\"%s\",\"apartment_id\":%s,\"window_start\":%lld,"
             "\"window_end\":%lld,\"window_size_ms\":%lld,\"revision\":%d,\"heating_kwh\":%.6f,"
             "\"room_temp_mean_c\":%.3f,\"setpoint_mean_c\":%.3f,\"comfort_gap_mean_c\":%.3f,"
             "\"readings_expected\":4,\"readings_seen\":4,\"quality\":\"COMPLETE\",\"flags\":[],"
             "\"emitted_at\":%lld,\"rooms\":[%s]}",
             bld, a, (long long)ws, (long long)(ws + size), (long long)size, rev,
             apt ? h->heat : 4 * h->heat, room, sp, sp - room, (long long)(ws + HOUR), rooms);
}

/* A feature's value (what the features worker would have computed; the rest NaN). */
static double feature(const char *name, const hour_t *h, int64_t i) {
    double room = 0, sp = 0;
    for (int r = 0; r < h->nrooms; r++)
        room += h->rooms[r].temp / h->nrooms, sp += h->rooms[r].setpoint / h->nrooms;
    if (!strcmp(name, "temperature_c"))
        return h->outdoor;
    if (!strcmp(name, "hdh"))
        return fmax(0, 18 - h->outdoor);
    if (!strcmp(name, "hour"))
        return (double)(i % 24);
    if (!strcmp(name, "room_temp_c"))
        return room;
    if (!strcmp(name, "setpoint_c"))
        return sp;
    if (!strcmp(name, "comfort_gap_c") || !strcmp(name, "comfort_gap_prev"))
        return sp - room;
    return NAN;
}

/* A FeatureVector (through the Avro API: NaN has no JSON); apt NULL: the building's. fsv NULL:
 * this build's; bad: the first value. */
static const void *vec_bytes(const char *bld, const char *apt, int64_t i, int rev, const hour_t *h,
                             const char *fsv, double bad, size_t *len) {
    hvs_err_t err = {0};
    avro_value_t *v = hvs_encoder_value(enc_vec), f, item, br;
    const char *const *names = hvs_features_names();
    int e = avro_value_get_by_name(v, "building_id", &f, NULL) || avro_value_set_string(&f, bld) ||
            avro_value_get_by_name(v, "apartment_id", &f, NULL);
    if (!e && apt)
        e = avro_value_set_branch(&f, 1, &br) || avro_value_set_string(&br, apt);
    else if (!e)
        e = avro_value_set_branch(&f, 0, &br) || avro_value_set_null(&br);
    e = e || avro_value_get_by_name(v, "target_hour", &f, NULL) ||
        avro_value_set_long(&f, T0 + i * HOUR) || avro_value_get_by_name(v, "as_of", &f, NULL) ||
        avro_value_set_long(&f, T0 + (i + 2) * HOUR) ||
        avro_value_get_by_name(v, "feature_set_version", &f, NULL) ||
        avro_value_set_string(&f, fsv ? fsv : hvs_features_version()) ||
        avro_value_get_by_name(v, "target", &f, NULL) || avro_value_set_branch(&f, 1, &br) ||
        avro_value_set_double(&br, h->heat) || avro_value_get_by_name(v, "revision", &f, NULL) ||
        avro_value_set_int(&f, rev);
    for (int k = 0; !e && k < HVS_FEATURES_COUNT; k++)
        e = avro_value_get_by_name(v, "names", &f, NULL) || avro_value_append(&f, &item, NULL) ||
            avro_value_set_string(&item, names[k]) ||
            avro_value_get_by_name(v, "values", &f, NULL) || avro_value_append(&f, &item, NULL) ||
            avro_value_set_double(&item, k == 0 && !isnan(bad) ? bad : feature(names[k], h, i));
    const void *buf;
    HVS_REQUIRE(!e && hvs_encoder_encode(enc_vec, &buf, len, &err) == 0, "vector: %s", err.msg);
    return buf;
}

static void add_agg(int b, int a, int64_t i, int rev, hvs_ms_t at) {
    char json[4096];
    hour_t h = hour_of(b, a, i, rev);
    agg_json(json, sizeof json, BLD[b], apt_id(a), T0 + i * HOUR, HOUR, rev, &h, -1);
    size_t len;
    const void *buf = encode_json(enc_agg, json, &len);
    hvs_fault_recs_add(&aggs, at, BLD[b], buf, len);
    if (rev > max_arev[b][a][i])
        max_arev[b][a][i] = rev;
}

/* A vector of revision vrev over the aggregate's revision arev; weak: the forecast's outdoor
 * temperature (a little off) instead of the observation. */
static void add_vec(int b, int a, int64_t i, int arev, int vrev, bool weak, hvs_ms_t at) {
    hour_t h = hour_of(b, a, i, arev);
    if (weak)
        h.outdoor += 1.5 * (u(b * 16 + a, i, vrev, S_FC) - 0.5);
    size_t len;
    const void *buf = vec_bytes(BLD[b], apt_id(a), i, vrev, &h, NULL, NAN, &len);
    hvs_fault_recs_add(&vecs, at, BLD[b], buf, len);
    if (vrev > max_vrev[b][a][i])
        max_vrev[b][a][i] = vrev;
}

static void gen(void) {
    memset(max_arev, 0xff, sizeof max_arev); /* -1 */
    memset(max_vrev, 0xff, sizeof max_vrev);
    for (int b = 0; b < NB; b++)
        for (int64_t i = 0; i < HOURS; i++) {
            hvs_ms_t end = T0 + (i + 1) * HOUR;
            for (int a = 0; a < NAPT[b]; a++) {
                int key = b * 16 + a;
                hvs_ms_t at = end + 3 * MIN + (hvs_ms_t)(10 * MIN * u(key, i, 0, S_ARRIVE));
                /* a late aggregate: out of order, and after its hour's vector */
                bool late = u(key, i, 0, S_LATE) < 0.04;
                hvs_ms_t vat = at + 65 * MIN;
                if (late) {
                    at = end + 2 * HOUR + (hvs_ms_t)(8 * HOUR * u(key, i, 0, S_LATE_BY));
                    made.late++;
                }
                add_agg(b, a, i, 0, at);
                if (u(key, i, 0, S_WEAK) < 0.12) { /* weak first, observed hours later */
                    add_vec(b, a, i, 0, 0, true, vat - 55 * MIN);
                    add_vec(b, a, i, 0, 2, false,
                            vat + 2 * HOUR + (hvs_ms_t)(15 * HOUR * u(key, i, 0, S_WEAK_UP)));
                    made.weak++;
                } else {
                    add_vec(b, a, i, 0, 2, false, vat);
                }
                if (u(key, i, 0, S_REV) < 0.06) { /* revised: its vector again (4 and/or 6) */
                    hvs_ms_t rat = (late ? at : vat) + HOUR +
                                   (hvs_ms_t)(19 * HOUR * u(key, i, 0, S_REV_AT));
                    add_agg(b, a, i, 1, rat);
                    double w = u(key, i, 0, S_REV_WEAK);
                    if (w < 0.6)
                        add_vec(b, a, i, 1, 4, true, rat + 5 * MIN);
                    if (w >= 0.3)
                        add_vec(b, a, i, 1, 6, false, rat + 70 * MIN);
                    made.rev++;
                }
            }
            if (i % 3 == 0) { /* the building's own records: skipped */
                char json[4096];
                hour_t h = hour_of(b, 0, i, 0);
                agg_json(json, sizeof json, BLD[b], NULL, T0 + i * HOUR, HOUR, 0, &h, -1);
                size_t len;
                const void *buf = encode_json(enc_agg, json, &len);
                hvs_fault_recs_add(&aggs, end + 4 * MIN, BLD[b], buf, len);
                buf = vec_bytes(BLD[b], NULL, i, 2, &h, NULL, NAN, &len);
                hvs_fault_recs_add(&vecs, end + 70 * MIN, BLD[b], buf, len);
                made.building_level += 2;
            }
        }
    hvs_fault_recs_t *both[2] = {&aggs, &vecs};
    for (int t = 0; t < 2; t++) { /* exact duplicates, up to 3 h later */
        hvs_fault_recs_t *rs = both[t];
        size_t n = rs->n;
        for (size_t k = 0; k < n; k++)
            if (u((int64_t)k, t, 0, S_DUP) < 0.02) {
                hvs_fault_rec_t copy = rs->r[k];
                hvs_fault_recs_add(rs,
                                   copy.at + (hvs_ms_t)(3 * HOUR * u((int64_t)k, t, 0, S_DUP_AT)),
                                   copy.key, copy.buf, copy.len);
                made.dups++;
            }
    }
}

/* Bad records among the good ones (dead letters of every run). */
#define NATURAL_AGG 2
#define NATURAL_VEC 4
static const char *const NATURAL_AGG_REASONS[NATURAL_AGG] = {"bad_window", "value_out_of_range"};
static const char *const NATURAL_VEC_REASONS[NATURAL_VEC] = {"avro_decode", "feature_mismatch",
                                                             "non_finite", "key_mismatch"};

static void gen_bad(void) {
    char json[4096];
    size_t len;
    const void *buf;
    hour_t h = hour_of(0, 0, 20, 0);
    agg_json(json, sizeof json, BLD[0], "apt_1", T0 + 20 * HOUR, 15 * MIN, 0, &h, -1);
    buf = encode_json(enc_agg, json, &len);
    hvs_fault_recs_add(&aggs, T0 + 21 * HOUR + 4 * MIN, BLD[0], buf, len);
    h = hour_of(1, 0, 44, 0);
    agg_json(json, sizeof json, BLD[1], "apt_1", T0 + 44 * HOUR, HOUR, 0, &h, 150);
    buf = encode_json(enc_agg, json, &len);
    hvs_fault_recs_add(&aggs, T0 + 45 * HOUR + 4 * MIN, BLD[1], buf, len);

    hvs_fault_recs_add(&vecs, T0 + 30 * HOUR + 20 * MIN, BLD[2], "\0\0\0\0\x0dgarbage", 12);
    h = hour_of(2, 1, 31, 0);
    buf = vec_bytes(BLD[2], "apt_2", 31, 2, &h, "fs-0-deadbeef", NAN, &len);
    hvs_fault_recs_add(&vecs, T0 + 32 * HOUR + 20 * MIN, BLD[2], buf, len);
    buf = vec_bytes(BLD[2], "apt_2", 32, 2, &h, NULL, INFINITY, &len);
    hvs_fault_recs_add(&vecs, T0 + 33 * HOUR + 20 * MIN, BLD[2], buf, len);
    buf = vec_bytes(BLD[3], "apt_1", 33, 2, &h, NULL, NAN, &len);
    hvs_fault_recs_add(&vecs, T0 + 34 * HOUR + 20 * MIN, BLD[0], buf,
                       len); /* keyed by another building */
}

/* ---- models ------------------------------------------------------------------------------- */

/* As test_scorer_it: the residual learns true_heat, the classifier that a comfort gap above
 * 3 degC is a fault. */
static hvs_model_t *train(hvs_task_t task) {
    enum { N = 3000 };
    size_t nc;
    const char *const *cols = hvs_taskrow_columns(task, &nc);
    float *x = malloc(sizeof(float) * N * nc), *y = malloc(sizeof(float) * N);
    HVS_REQUIRE(x && y, "oom");
    uint64_t r = 99;
    for (int k = 0; k < N; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        hour_t h = {.outdoor = -10 + (double)(r % 2500) / 100.0, .nrooms = 1};
        h.rooms[0].setpoint = 20.5;
        h.rooms[0].temp = 21.5 - (double)((r >> 20) % 600) / 100.0;
        for (size_t j = 0; j < nc; j++)
            x[k * nc + j] = (float)feature(cols[j], &h, (int64_t)(r >> 40) % 24);
        y[k] = task == HVS_TASK_ANOMALY_RESIDUAL
                   ? (float)true_heat(h.outdoor)
                   : (float)(h.rooms[0].setpoint - h.rooms[0].temp > 3);
    }
    hvs_train_params_t p = {.rounds = 60,
                            .eta = 0.3,
                            .max_depth = 4,
                            .nthread = 1,
                            .objective = task == HVS_TASK_ANOMALY_RESIDUAL ? NULL
                                                                           : "binary:logistic"};
    hvs_model_t *m;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_train(x, y, NULL, N, nc, NULL, NULL, 0, &p, &m, NULL, &err) == 0,
                "train: %s", err.msg);
    free(x), free(y);
    return m;
}

/* m as <name> version 1, APPROVED. */
static void publish_model(const char *name, hvs_task_t task) {
    hvs_model_t *m = train(task);
    hvs_err_t err = {0};
    unsigned char *ubj, *z;
    size_t lu, lz;
    HVS_REQUIRE(hvs_model_save(m, &ubj, &lu, &err) == 0 &&
                    hvs_zlib_compress(ubj, lu, &z, &lz, &err) == 0,
                "save %s: %s", name, err.msg);
    size_t nc;
    const char *const *cols = hvs_taskrow_columns(task, &nc);
    const char *params[] = {"target_scale", hvs_taskrow_scale_name(hvs_taskrow_scale(task)), NULL};
    hvs_model_record_t rec = {.name = name,
                              .version = 1,
                              .status = HVS_MODEL_APPROVED,
                              .features = cols,
                              .nfeatures = nc,
                              .train_start = T0 - 200 * DAY,
                              .train_end = T0,
                              .created_at = T0,
                              .metrics = {NAN, NAN, NAN, NAN, NAN, NAN, -1},
                              .params = params,
                              .model = z,
                              .model_len = lz,
                              .decided_at = HVS_MS_NONE};
    const void *buf;
    size_t len;
    char key[256];
    hvs_registry_key(key, sizeof key, name, 1);
    HVS_REQUIRE(hvs_registry_encode(serde, enc_model, &rec, &buf, &len, &err) == 0 &&
                    hvs_producer_send(prod, "models", RD_KAFKA_PARTITION_UA, key, strlen(key), buf,
                                      len, &err) == 0 &&
                    hvs_producer_flush(prod, 10000, &err) == 0,
                "publish %s: %s", key, err.msg);
    free(ubj), free(z);
    hvs_model_destroy(m);
}

/* ---- producing ---------------------------------------------------------------------------- */

static hvs_fault_world_t world;
static bool have_world;
static hvs_fault_run_t *ref;

static void teardown(void) {
    hvs_fault_run_free(ref);
    hvs_encoder_destroy(enc_agg);
    hvs_encoder_destroy(enc_vec);
    hvs_encoder_destroy(enc_bld);
    hvs_encoder_destroy(enc_model);
    hvs_producer_destroy(prod);
    hvs_serde_destroy(serde);
    hvs_fault_recs_free(&aggs);
    hvs_fault_recs_free(&vecs);
    hvs_fault_world_stop(&world, hvs_test_failed > 0);
}

static void send_recs(const hvs_fault_recs_t *rs, const char *topic) {
    hvs_err_t err = {0};
    for (size_t k = 0; k < rs->n; k++)
        HVS_REQUIRE(hvs_producer_send(prod, topic, RD_KAFKA_PARTITION_UA, rs->r[k].key,
                                      strlen(rs->r[k].key), rs->r[k].buf, rs->r[k].len, &err) == 0,
                    "send to %s: %s", topic, err.msg);
    HVS_REQUIRE(hvs_producer_flush(prod, 30000, &err) == 0, "flush: %s", err.msg);
}

static void publish_stream(const char *agg_topic, const char *vec_topic) {
    send_recs(&aggs, agg_topic);
    send_recs(&vecs, vec_topic);
}

static void publish_topology(void) {
    hvs_err_t err = {0};
    for (int b = 0; b < NB; b++) {
        char apts[1024] = "";
        size_t n = 0;
        for (int a = 0; a < NAPT[b]; a++)
            n += (size_t)snprintf(apts + n, sizeof apts - n,
                                  "%s{\"apartment_id\":\"%s\",\"area_m2\":%.1f,\"floor\":%d,"
                                  "\"rooms\":[],\"occupied_since\":null}",
                                  a ? "," : "", apt_id(a), 60.0 + 10 * a, a);
        hvs_ms_t commissioning = b == YOUNG ? T0 - 10 * DAY : T0 - (200 + 150 * b) * DAY;
        char json[4096];
        snprintf(json, sizeof json,
                 "{\"building_id\":\"%s\",\"archetype\":\"multi_family\","
                 "\"commissioning_date\":%lld,\"latitude\":%.2f,\"longitude\":%.2f,"
                 "\"heated_area_m2\":%.1f,\"construction_year\":%d,\"insulation\":null,"
                 "\"holiday_region\":\"CH-ZH\",\"apartments\":[%s],\"updated_at\":1700000000000,"
                 "\"deleted\":false}",
                 BLD[b], (long long)commissioning, 46.2 + 0.1 * b, 7.1 + 0.1 * b,
                 300.0 + 70 * NAPT[b], 1960 + 10 * b, apts);
        size_t len;
        const void *buf = encode_json(enc_bld, json, &len);
        HVS_REQUIRE(hvs_producer_send(prod, "topology", RD_KAFKA_PARTITION_UA, BLD[b],
                                      strlen(BLD[b]), buf, len, &err) == 0,
                    "topology: %s", err.msg);
    }
    HVS_REQUIRE(hvs_producer_flush(prod, 30000, &err) == 0, "flush: %s", err.msg);
}

static void need_world(void) {
    if (have_world)
        return;
    hvs_fault_world_start(&world, &STAGE, NULL);
    hvs_test_cleanup(teardown);
    hvs_err_t err = {0};
    hvs_kafka_conf_t kc = {.brokers = world.broker.addr, .client_id = "test"};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 && hvs_producer_new(&kc, &prod, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_AGGREGATE, NULL, &enc_agg, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_FEATURE_VECTOR, NULL, &enc_vec, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, NULL, &enc_bld, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_MODEL_VERSION, "models", &enc_model, &err) ==
                        0,
                "setup: %s", err.msg);
    gen();
    gen_bad();
    hvs_fault_recs_sort(&aggs);
    hvs_fault_recs_sort(&vecs);
    printf("  input: %zu aggregates, %zu vectors (%d late aggregates, %d weak vectors upgraded, "
           "%d revised hours, %d duplicates, %d building-level records), bad records %d + %d\n",
           aggs.n, vecs.n, made.late, made.weak, made.rev, made.dups, made.building_level,
           NATURAL_AGG, NATURAL_VEC);
    publish_topology();
    /* before any worker starts: every run serves version 1 from its first batch */
    publish_model("anomaly-residual/global", HVS_TASK_ANOMALY_RESIDUAL);
    publish_model("anomaly-classifier/global", HVS_TASK_ANOMALY_CLASSIFIER);
    publish_stream("aggregates.hourly", "features.hourly");
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

static bool has_string(const json_t *arr, const char *s) {
    size_t i;
    json_t *x;
    json_array_foreach((json_t *)arr, i,
                       x) if (hvs_test_streq(json_string_value(x), s)) return true;
    return false;
}

/* The reference is not vacuous: every apartment-hour scored with the revision of its latest
 * halves, models by the building's age, rules and residuals present. */
static void test_reference(void) {
    need_reference();
    size_t want = 0, missing = 0, bad_rev = 0, bad_strategy = 0;
    int fired[8] = {0}, with_z = 0, combined = 0, rules_only = 0, high = 0;
    static const char *const rules[] = {"stuck_valve", "sensor_flatline",
                                        "consumption_without_demand"};
    for (int b = 0; b < NB; b++)
        for (int a = 0; a < NAPT[b]; a++)
            for (int64_t i = 0; i < HOURS; i++) {
                want++;
                char key[128];
                snprintf(key, sizeof key, "%s/%s/%lld", BLD[b], apt_id(a),
                         (long long)(T0 + i * HOUR));
                json_t *s = json_object_get(ref->latest, key);
                if (!s) {
                    missing++;
                    continue;
                }
                long long rev = (long long)max_vrev[b][a][i] * 65536 + max_arev[b][a][i] + 1;
                if (json_integer_value(json_object_get(s, "revision")) != rev)
                    bad_rev++;
                const char *st = json_string_value(json_object_get(s, "strategy"));
                combined += hvs_test_streq(st, "COMBINED");
                rules_only += hvs_test_streq(st, "RULES");
                if (!hvs_test_streq(st, b == YOUNG ? "RULES" : "COMBINED"))
                    bad_strategy++;
                with_z += json_is_number(json_object_get(s, "residual_z"));
                high += json_number_value(json_object_get(s, "score")) >= 0.6;
                for (int r = 0; r < 3; r++)
                    fired[r] += has_string(json_object_get(s, "rules"), rules[r]);
            }
    HVS_CHECK(json_object_size(ref->latest) == want && missing == 0,
              "reference: %zu apartment-hours scored, %zu missing, want %zu",
              json_object_size(ref->latest), missing, want);
    HVS_CHECK(bad_rev == 0, "reference: %zu latest scores without their halves' revisions",
              bad_rev);
    HVS_CHECK(bad_strategy == 0, "reference: %zu scores not COMBINED (mature) / RULES (young)",
              bad_strategy);
    HVS_CHECK(combined > 0 && rules_only > 0, "reference: %d COMBINED, %d RULES", combined,
              rules_only);
    /* z needs a complete 6-hour window and 24 earlier ones apart from it: from hour 34 of 72 */
    HVS_CHECK(with_z > (int)want / 3, "reference: %d of %zu scores with residual_z", with_z, want);
    for (int r = 0; r < 3; r++)
        HVS_CHECK(fired[r] > 0, "reference: %s fired %d times", rules[r], fired[r]);
    HVS_CHECK(high > 20, "reference: %d scores >= 0.6", high);
    printf("  reference: %zu scores (%zu messages), %d COMBINED, %d RULES, %d with residual_z, "
           "%d >= 0.6; stuck_valve %d, sensor_flatline %d, consumption_without_demand %d\n",
           want, ref->nout, combined, rules_only, with_z, high, fired[0], fired[1], fired[2]);
    HVS_CHECK(ref->nout > want, "reference: %zu scores for %zu apartment-hours (revisions)",
              ref->nout, want);
    HVS_CHECK(json_object_size(ref->dead) == NATURAL_AGG + NATURAL_VEC,
              "reference: %zu dead letters (want %d)", json_object_size(ref->dead),
              NATURAL_AGG + NATURAL_VEC);
    for (int k = 0; k < NATURAL_AGG; k++)
        HVS_CHECK(hvs_fault_count_reason(ref->dead, "aggregates.hourly", NATURAL_AGG_REASONS[k]) ==
                      1,
                  "reference: an aggregate dead-lettered as %s", NATURAL_AGG_REASONS[k]);
    for (int k = 0; k < NATURAL_VEC; k++)
        HVS_CHECK(hvs_fault_count_reason(ref->dead, "features.hourly", NATURAL_VEC_REASONS[k]) == 1,
                  "reference: a vector dead-lettered as %s", NATURAL_VEC_REASONS[k]);
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

static void test_undisturbed_again(void) { standard(hvs_fault_case_again); }
static void test_undisturbed_small_fetches(void) { standard(hvs_fault_case_small_fetches); }
static void test_kill9_seed_11(void) { kill9(11); }
static void test_kill9_seed_23(void) { kill9(23); }
static void test_kill9_seed_37(void) { kill9(37); }
static void test_redis_restart(void) { standard(hvs_fault_case_redis_restart); }
static void test_redis_flush(void) { standard(hvs_fault_case_redis_flush); }
static void test_rebuild_kill9(void) { standard(hvs_fault_case_rebuild_kill9); }
static void test_redis_pause(void) { standard(hvs_fault_case_redis_pause); }
static void test_worker_pause(void) { standard(hvs_fault_case_worker_pause); }
static void test_broker_down(void) { standard(hvs_fault_case_broker_down); }

static void test_broker_down_past_flush(void) {
    need_reference();
    hvs_fault_case_flush_timeout(&world, ref, "HVS_SCORE_FLUSH_TIMEOUT=3s");
}

/* A member joins and leaves: partition P of both inputs moves together, its rings loaded where
 * it lands. */
static void test_second_member(void) {
    need_reference();
    hvs_fault_run_t *run = hvs_fault_case_second_member(&world, ref);
    HVS_CHECK(hvs_fault_log_count(run, "not co-partitioned") == 0,
              "second-member: partition P of both inputs always on one member");
    hvs_fault_run_free(run);
}

/* ---- the poison set ---------------------------------------------------------------------- */

#define NPOISON 48
static hvs_fault_poison_t poisons[NPOISON];
static size_t npoisons;

static void add(hvs_fault_producer_t *p, int input, const char *topic, const char *what,
                const char *reason, const char *key, size_t keylen, const void *value, size_t len) {
    HVS_REQUIRE(npoisons < NPOISON, "too many poisons");
    hvs_fault_poison_t *x = &poisons[npoisons++];
    *x = (hvs_fault_poison_t){.what = what, .reason = reason, .input = input};
    hvs_fault_produce(p, topic, key, keylen, value, len, &x->partition, &x->offset);
}

/* The decoder's poisons on one input (`good`: a record of that input, `other`: of the other). */
static void poison_wire(hvs_fault_producer_t *p, int input, const char *topic, const void *good,
                        size_t glen, const void *other, size_t olen) {
    unsigned char buf[8192];
    HVS_REQUIRE(glen <= sizeof buf, "encoded size");
    uint64_t x = 42 + (uint64_t)input;
    for (size_t i = 0; i < 64; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    buf[0] = 0x7f; /* not the magic byte 0 */
    add(p, input, topic, "random bytes", "bad_magic", "pz_b", 4, buf, 64);
    memcpy(buf, good, glen);
    buf[0] = 1;
    add(p, input, topic, "bad magic", "bad_magic", "pz_b", 4, buf, glen);
    memcpy(buf, good, glen);
    buf[1] = 0, buf[2] = 0x0f, buf[3] = 0x42, buf[4] = 0x3f; /* id 999999 */
    add(p, input, topic, "unknown schema id", "unknown_schema_id", "pz_b", 4, buf, glen);
    memcpy(buf, good, glen);
    add(p, input, topic, "truncated", "truncated", "pz_b", 4, buf, glen - 3);
    add(p, input, topic, "header only", "truncated", "pz_b", 4, buf, 5);
    add(p, input, topic, "another record type", "schema_mismatch", "pz_b", 4, other, olen);
    add(p, input, topic, "null value", "empty_value", "pz_b", 4, NULL, 0);
}

static void poison_semantic(hvs_fault_producer_t *p, const char *agg_topic, const char *vec_topic) {
    char json[4096];
    size_t len;
    const void *b;
    hour_t h = hour_of(0, 0, 50, 0);
    hvs_ms_t pt = T0 + 50 * HOUR;
#define AGG(what, reason, key)                                                                     \
    b = encode_json(enc_agg, json, &len);                                                          \
    add(p, 0, agg_topic, what, reason, key, strlen(key), b, len)
    agg_json(json, sizeof json, "pz_b", "apt_1", pt, 15 * MIN, 0, &h, -1);
    AGG("15-minute window", "bad_window", "pz_b");
    agg_json(json, sizeof json, "pz_b", "apt_1", pt + MIN, HOUR, 0, &h, -1);
    AGG("window not on the hour", "bad_window", "pz_b");
    agg_json(json, sizeof json, "pz_b", "apt_1", pt, HOUR, 0, &h, 150);
    AGG("valve 150 %", "value_out_of_range", "pz_b");
    agg_json(json, sizeof json, "pz_b", "apt_1", 4102444800000LL, HOUR, 0, &h, -1);
    AGG("year 2100", "timestamp_in_future", "pz_b");
    agg_json(json, sizeof json, "pz_b", "apt_1", pt, HOUR, -1, &h, -1);
    AGG("revision -1", "value_out_of_range", "pz_b");
    agg_json(json, sizeof json, "pz_b", "apt_1", pt, HOUR, 0, &h, -1);
    AGG("another building's key", "key_mismatch", "pz_c");
#undef AGG
    b = vec_bytes("pz_b", "apt_1", 50, 2, &h, "fs-0-deadbeef", NAN, &len);
    add(p, 1, vec_topic, "another feature set", "feature_mismatch", "pz_b", 4, b, len);
    b = vec_bytes("pz_b", "apt_1", 50, 2, &h, NULL, INFINITY, &len);
    add(p, 1, vec_topic, "+Inf feature", "non_finite", "pz_b", 4, b, len);
    b = vec_bytes("pz_b", "apt_1", 50, 2, &h, NULL, -INFINITY, &len);
    add(p, 1, vec_topic, "-Inf feature", "non_finite", "pz_b", 4, b, len);
    b = vec_bytes("pz_b", "apt_1", 50, 2, &h, NULL, NAN, &len);
    add(p, 1, vec_topic, "another building's key", "key_mismatch", "pz_c", 4, b, len);
    b = vec_bytes("pz_b", "apt_1", 50, -1, &h, NULL, NAN, &len);
    add(p, 1, vec_topic, "revision -1", "value_out_of_range", "pz_b", 4, b, len);
    b = vec_bytes("pz_b", "apt_1", 2000000, 2, &h, NULL, NAN, &len);
    add(p, 1, vec_topic, "target hour in 2253", "timestamp_in_future", "pz_b", 4, b, len);
}

static void test_poison(void) {
    need_reference();
    const char *topics[2] = {"poison.aggregates.hourly", "poison.features.hourly"};
    for (int t = 0; t < 2; t++)
        hvs_fault_topic_create(&world, topics[t], HVS_TOPIC_DEFAULT_PARTITIONS);
    hvs_fault_producer_t *p = hvs_fault_producer_new(&world);
    char json[4096];
    hour_t h = hour_of(0, 0, 50, 0);
    agg_json(json, sizeof json, "pz_b", "apt_1", T0 + 50 * HOUR, HOUR, 0, &h, -1);
    size_t alen, vlen;
    const void *b = encode_json(enc_agg, json, &alen);
    unsigned char *good_agg = malloc(alen);
    HVS_REQUIRE(good_agg, "oom");
    memcpy(good_agg, b, alen);
    b = vec_bytes("pz_b", "apt_1", 50, 2, &h, NULL, NAN, &vlen);
    unsigned char *good_vec = malloc(vlen);
    HVS_REQUIRE(good_vec, "oom");
    memcpy(good_vec, b, vlen);
    poison_wire(p, 0, topics[0], good_agg, alen, good_vec, vlen);
    poison_wire(p, 1, topics[1], good_vec, vlen, good_agg, alen);
    free(good_agg), free(good_vec);
    size_t first_half = npoisons;
    publish_stream(topics[0], topics[1]);
    poison_semantic(p, topics[0], topics[1]);
    hvs_fault_producer_free(p);

    hvs_fault_opts_t o = {.inputs = {topics[0], topics[1]}};
    hvs_fault_run_t *run = hvs_fault_run(&world, "poison", &o);
    /* the wire poisons went before the stream's records: they moved by them */
    for (size_t i = 0; i < first_half; i++)
        poisons[i].before = true;
    hvs_fault_check_poisons(ref, run, poisons, npoisons);
    hvs_fault_run_free(run);
}

static const hvs_test_case_t cases[] = {
    {"reference", test_reference},
    {"undisturbed_again", test_undisturbed_again},
    {"undisturbed_small_fetches", test_undisturbed_small_fetches},
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

int main(int argc, char **argv) {
    const char *h = getenv("SC_FAULT_HOURS");
    if (h && atoi(h) >= 48 && atoi(h) <= MAXH)
        HOURS = atoi(h);
    return hvs_test_main(cases, argc, argv);
}
