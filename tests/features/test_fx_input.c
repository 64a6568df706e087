/*
 * fx_input: the feature worker's direct reader of aggregates.hourly messages against the avro-c
 * way (hvs_decoder_decode + fx_input_aggregate). Random Aggregates of the current schema - valid
 * ones and every kind the checks refuse: bad and reserved ids, windows not an hour, revisions
 * out of range, old and future hours, values out of range or not finite, rooms with bad names,
 * values and counts, more rooms than HVS_ROOMS_MAX - must give the same result, reason and
 * message both ways, and take the direct way; damaged copies (cut, extended, a bit flipped, a
 * byte inserted) must too, whichever way they take. Older writers never take the direct way.
 */
#include <math.h>

#include "hvs/featstore.h"
#include "hvs/log.h"
#include "hvs/rooms.h"
#include "hvs/serde.h"
#include "hvs_test.h"
#include "input.h"

#define NOW INT64_C(1733011200000) /* 2024-12-01T00:00:00Z */
#define HOUR INT64_C(3600000)

static uint64_t rng_state = 0x2545f4914f6cdd1du;
static uint64_t rnd(void) { return hvs_test_rand(&rng_state); }

static double uniform(double lo, double hi) {
    return lo + (hi - lo) * (double)(rnd() >> 11) / 0x1p53;
}

/* Mostly plausible, sometimes out of [lo, hi], NaN or infinite. */
static double value(double lo, double hi) {
    switch (rnd() % 150) {
    case 0: return NAN;
    case 1: return rnd() % 2 ? INFINITY : -INFINITY;
    case 2: return hi + uniform(0.001, 100);
    case 3: return lo - uniform(0.001, 100);
    case 4: return -0.0;
    default: return uniform(lo, hi);
    }
}

static void random_id(char *dst, size_t cap) {
    static const char *const odd[] = {"", "-", "bad{tag}", "tab\there", "ok_id"};
    if (rnd() % 40 == 0) {
        snprintf(dst, cap, "%s", odd[rnd() % 5]);
        return;
    }
    size_t n = rnd() % 40 == 0 ? 257 : 1 + rnd() % 20; /* sometimes one byte too long */
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = "abcdefghij_0123456789"[rnd() % 21];
    dst[n] = '\0';
}

/* A ["null", "double"] field: null, or a value that may be NaN (present, not null). Returns
 * what it set, NaN for null. */
static double set_double_or_null(avro_value_t *rec, const char *name, double lo, double hi) {
    avro_value_t f, b;
    HVS_REQUIRE(avro_value_get_by_name(rec, name, &f, NULL) == 0, "%s", name);
    if (rnd() % 4 == 0) {
        HVS_REQUIRE(avro_value_set_branch(&f, 0, &b) == 0 && avro_value_set_null(&b) == 0, "null");
        return NAN;
    }
    double x = value(lo, hi);
    HVS_REQUIRE(avro_value_set_branch(&f, 1, &b) == 0 && avro_value_set_double(&b, x) == 0,
                "double");
    return x;
}

/* What the generator put in the fields every accepted record must carry through unchanged. */
typedef struct expected {
    char building[300], entity[300];
    int64_t ws;
    int32_t rev;
    double heat;
} expected_t;

static void set_int(avro_value_t *rec, const char *name, int32_t v) {
    avro_value_t f;
    HVS_REQUIRE(avro_value_get_by_name(rec, name, &f, NULL) == 0 && avro_value_set_int(&f, v) == 0,
                "%s", name);
}

static void random_aggregate(avro_value_t *rec, expected_t *x) {
    char id[300];
    random_id(id, sizeof id);
    HVS_REQUIRE(hvs_serde_set_str(rec, "building_id", id) == 0, "building_id");
    snprintf(x->building, sizeof x->building, "%s", id);
    bool building = rnd() % 5 == 0;
    random_id(id, sizeof id);
    HVS_REQUIRE(hvs_serde_set_opt_str(rec, "apartment_id", building ? NULL : id) == 0, "apt");
    snprintf(x->entity, sizeof x->entity, "%s", building ? HVS_FS_BUILDING : id);
    int64_t ws = NOW - (int64_t)(rnd() % 2000) * HOUR;
    if (rnd() % 40 == 0)
        ws += (int64_t)(rnd() % HOUR); /* not on the hour */
    if (rnd() % 40 == 0)
        ws = rnd() % 2 ? INT64_C(900000000000) : NOW + 40 * 24 * HOUR; /* 1998; far ahead */
    int64_t size = rnd() % 40 == 0 ? 900000 : HOUR;
    HVS_REQUIRE(hvs_serde_set_long(rec, "window_start", ws) == 0 &&
                    hvs_serde_set_long(rec, "window_end", ws + size) == 0 &&
                    hvs_serde_set_long(rec, "window_size_ms", size) == 0 &&
                    hvs_serde_set_long(rec, "emitted_at", NOW) == 0,
                "times");
    x->ws = ws;
    x->rev = rnd() % 40 == 0 ? -1 - (int32_t)(rnd() % 5) : (int32_t)(rnd() % 9);
    set_int(rec, "revision", x->rev);
    x->heat = set_double_or_null(rec, "heating_kwh", 0, 1e6);
    set_double_or_null(rec, "hot_water_litres", 0, 1e8);
    set_double_or_null(rec, "room_temp_mean_c", -30, 60);
    set_double_or_null(rec, "room_temp_min_c", -30, 60);
    set_double_or_null(rec, "room_temp_max_c", -30, 60);
    set_double_or_null(rec, "setpoint_mean_c", 0, 40);
    set_double_or_null(rec, "comfort_gap_mean_c", -60, 60);
    set_double_or_null(rec, "uncounted_kwh", 0, 100);
    set_int(rec, "readings_expected", (int32_t)(rnd() % 100));
    set_int(rec, "readings_seen", (int32_t)(rnd() % 100));
    avro_value_t f, b;
    for (int k = 0; k < 2; k++) {
        HVS_REQUIRE(avro_value_get_by_name(rec, k ? "known_apartments" : "reporting_apartments", &f,
                                           NULL) == 0,
                    "apartments");
        if (rnd() % 2)
            HVS_REQUIRE(avro_value_set_branch(&f, 1, &b) == 0 &&
                            avro_value_set_int(&b, (int32_t)(rnd() % 60)) == 0,
                        "int");
        else
            HVS_REQUIRE(avro_value_set_branch(&f, 0, &b) == 0 && avro_value_set_null(&b) == 0, "n");
    }
    HVS_REQUIRE(avro_value_get_by_name(rec, "quality", &f, NULL) == 0 &&
                    avro_value_set_enum(&f, (int)(rnd() % 5)) == 0,
                "quality");
    const char *flags[] = {"late_data", "counter_reset", "implausible_jump"};
    HVS_REQUIRE(hvs_serde_set_strings(rec, "flags", flags, (int)(rnd() % 4)) == 0, "flags");
    avro_value_t rooms, room;
    HVS_REQUIRE(avro_value_get_by_name(rec, "rooms", &rooms, NULL) == 0, "rooms");
    size_t nrooms = rnd() % 40 == 0 ? HVS_ROOMS_MAX + 1 : rnd() % 6;
    static const char *const room_doubles[] = {"temp_mean_c", "temp_min_c",      "temp_max_c",
                                               "temp_std_c",  "setpoint_mean_c", "valve_mean_pct"};
    static const double lo[] = {-30, -30, -30, 0, 0, 0}, hi[] = {60, 60, 60, 90, 40, 100};
    for (size_t i = 0; i < nrooms; i++) {
        HVS_REQUIRE(avro_value_append(&rooms, &room, NULL) == 0, "append");
        char name[300];
        if (rnd() % 100 == 0)
            name[0] = '\0';
        else
            snprintf(name, sizeof name, "room_%zu", i);
        HVS_REQUIRE(hvs_serde_set_str(&room, "room", name) == 0, "room");
        for (int k = 0; k < 6; k++)
            set_double_or_null(&room, room_doubles[k], lo[k], hi[k]);
        set_int(&room, "readings_seen", rnd() % 200 == 0 ? 70000 : (int32_t)(rnd() % 8));
        set_int(&room, "temp_changes", rnd() % 200 == 0 ? -2 : (int32_t)(rnd() % 8));
    }
}

typedef struct outcome {
    int rc;
    char reason[64], msg[512];
    fx_aggregate_t a;
} outcome_t;

static void by_avro_c(const fx_input_t *in, hvs_decoder_t *d, const void *buf, size_t len,
                      outcome_t *o) {
    hvs_err_t err;
    avro_value_t *v;
    memset(o, 0, sizeof *o);
    hvs_err_clear(&err);
    o->rc = hvs_decoder_decode(d, buf, len, &v, &err);
    if (o->rc == 0)
        o->rc = fx_input_aggregate(in, v, NOW, HOUR, &o->a, &err);
    snprintf(o->reason, sizeof o->reason, "%s", err.reason);
    snprintf(o->msg, sizeof o->msg, "%s", err.msg);
}

static void by_message(const fx_input_t *in, hvs_decoder_t *d, const void *buf, size_t len,
                       outcome_t *o, bool *direct) {
    hvs_err_t err;
    memset(o, 0, sizeof *o);
    hvs_err_clear(&err);
    o->rc = fx_input_aggregate_message(in, d, buf, len, NOW, HOUR, &o->a, direct, &err);
    snprintf(o->reason, sizeof o->reason, "%s", err.reason);
    snprintf(o->msg, sizeof o->msg, "%s", err.msg);
}

/* The energy as the readers keep it (features.h, hvs_feat_hour_round): to the Wh. */
static double to_wh(double kwh) { return round(kwh * 1000) / 1000 + 0.0; }

static bool same(const outcome_t *x, const outcome_t *y) {
    return x->rc == y->rc && strcmp(x->reason, y->reason) == 0 && strcmp(x->msg, y->msg) == 0 &&
           (x->rc != 0 || memcmp(&x->a, &y->a, sizeof x->a) == 0);
}

static void test_differential(void) {
    hvs_serde_t *s;
    hvs_err_t err;
    fx_input_t *in;
    hvs_encoder_t *e;
    hvs_decoder_t *d, *ref;
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0 && fx_input_new(s, &in, &err) == 0 &&
                    hvs_encoder_new(s, HVS_SCHEMA_AGGREGATE, NULL, &e, &err) == 0 &&
                    hvs_decoder_new(s, HVS_SCHEMA_AGGREGATE, &d, &err) == 0 &&
                    hvs_decoder_new(s, HVS_SCHEMA_AGGREGATE, &ref, &err) == 0,
                "setup");
    HVS_REQUIRE(fx_input_aggregate_direct(in),
                "the direct reader is on for the current schema "
                "(HVS_LAYOUT_AGGREGATE in layouts.h matches Aggregate.avsc)");
    int rounds = 4000, accepted = 0, direct_n = 0, too_many = 0, damaged = 0, damaged_direct = 0;
    static unsigned char msg[65536], saved[65536];
    static outcome_t want, got;
    for (int round = 0; round < rounds; round++) {
        expected_t x;
        random_aggregate(hvs_encoder_value(e), &x);
        const void *buf;
        size_t len;
        HVS_REQUIRE(hvs_encoder_encode(e, &buf, &len, &err) == 0 && len <= sizeof msg - 1,
                    "encode round %d: %s", round, err.msg);
        memcpy(msg, buf, len);
        bool direct = false;
        by_avro_c(in, ref, msg, len, &want);
        by_message(in, d, msg, len, &got, &direct);
        HVS_CHECK(same(&want, &got), "round %d: avro-c rc %d %s (%s); direct %d: rc %d %s (%s)",
                  round, want.rc, want.reason, want.msg, direct, got.rc, got.reason, got.msg);
        /* accepted: the values the generator chose, not only the same both ways */
        if (got.rc == 0)
            HVS_CHECK(
                strcmp(got.a.building, x.building) == 0 && strcmp(got.a.entity, x.entity) == 0 &&
                    got.a.hour.hour == x.ws && got.a.hour.revision == (uint32_t)x.rev &&
                    (isnan(x.heat) ? isnan(got.a.hour.use) : got.a.hour.use == to_wh(x.heat)) &&
                    isnan(got.a.hour.water) /* checked, not kept */,
                "round %d: read %s/%s %lld rev %u use %g, generated %s/%s %lld rev %d use %g",
                round, got.a.building, got.a.entity, (long long)got.a.hour.hour,
                got.a.hour.revision, got.a.hour.use, x.building, x.entity, (long long)x.ws, x.rev,
                x.heat);
        accepted += want.rc == 0;
        direct_n += direct;
        too_many += !direct;
        for (int k = 0; k < 4; k++) {
            memcpy(saved, msg, len);
            size_t at, mlen = hvs_test_damage(msg, len, k, &rng_state, &at);
            by_avro_c(in, ref, msg, mlen, &want);
            direct = false;
            by_message(in, d, msg, mlen, &got, &direct);
            damaged++;
            damaged_direct += direct;
            HVS_CHECK(same(&want, &got),
                      "round %d damage %d at %zu: avro-c rc %d %s (%s); direct %d: rc %d %s (%s)",
                      round, k, at, want.rc, want.reason, want.msg, direct, got.rc, got.reason,
                      got.msg);
            memcpy(msg, saved, len);
        }
    }
    /* the generator must reach both sides: most accepted, many refused; and only the records
     * with more rooms than the reader keeps go the avro-c way */
    HVS_CHECK(accepted > rounds / 10 && accepted < rounds * 9 / 10, "%d of %d accepted", accepted,
              rounds);
    HVS_CHECK(direct_n > rounds * 9 / 10 && too_many > 0 && too_many < rounds / 10,
              "%d direct, %d the avro-c way", direct_n, too_many);
    HVS_CHECK(damaged_direct > damaged / 20, "%d of %d damaged messages read directly",
              damaged_direct, damaged);
    hvs_decoder_destroy(d);
    hvs_decoder_destroy(ref);
    hvs_encoder_destroy(e);
    fx_input_destroy(in);
    hvs_serde_destroy(s);
}

static const hvs_test_case_t cases[] = {
    {"differential", test_differential},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
