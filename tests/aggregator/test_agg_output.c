/*
 * test_agg_output - the aggregator's direct Aggregate writer (workers/aggregator/output.c)
 * against avro-c: many window results, random and systematic (every null/non-null combination
 * of the optional fields, 0 to AGG_MAX_ROOMS rooms, every flag set and quality, -0.0, extreme
 * doubles and longs, long and empty ids, non-finite values that go out as null), encoded by the
 * direct writer and by the avro-c path of a second output forced onto it: the whole messages,
 * header included, must be identical, and the direct bytes must decode (hvs_decoder_decode) to
 * the values computed here from the result. Also: the direct writer is on for the current
 * Aggregate schema (a schema change that forgets the writer fails here), and a changed layout
 * turns it off.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/serde.h"
#include "hvs_test.h"
#include "output.h"
#include "windows.h"

#define CASES 3000

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) { return hvs_test_rand(&rng); }
static int below(int n) { return (int)(next() % (uint64_t)n); }

/* A double from a mix of the awkward ones and random bit patterns; finite unless nonfinite. */
static double rnd_double(bool nonfinite) {
    static const double special[] = {0.0,      -0.0,    1.0,      -1.0,   DBL_MAX,
                                     -DBL_MAX, DBL_MIN, -DBL_MIN, 5e-324, -5e-324,
                                     21.5,     1e300,   -1e-300,  0.1,    1234.5678};
    int k = below(10);
    if (k < 3)
        return special[below((int)(sizeof special / sizeof special[0]))];
    if (k < 6)
        return (double)(int64_t)(next() % 200001) / 100.0 - 1000.0;
    if (nonfinite && k == 6 && below(4) == 0) {
        static const double nf[] = {INFINITY, -INFINITY, NAN};
        return nf[below(3)];
    }
    for (;;) {
        uint64_t u = next();
        double d;
        memcpy(&d, &u, sizeof d);
        if (isfinite(d))
            return d;
    }
}

/* A positive "ms" total (divisor of a mean), or 0 (no value held). */
static double rnd_ms(bool has) {
    if (!has)
        return below(2) ? 0.0 : -0.0;
    static const double ms[] = {1.0, 900000.0, 3600000.0, 5e-324, 1e308};
    return below(3) ? ms[below(5)] : (double)(1 + next() % 3600000);
}

static int64_t rnd_long(void) {
    static const int64_t special[] = {0,
                                      1,
                                      -1,
                                      63,
                                      64,
                                      -64,
                                      -65,
                                      INT32_MAX,
                                      INT32_MIN,
                                      1733097600000LL,
                                      INT64_MAX / 4,
                                      -(INT64_MAX / 4)};
    if (below(2))
        return special[below((int)(sizeof special / sizeof special[0]))];
    return (int64_t)(next() >> 3) * (below(2) ? 1 : -1); /* |v| < 2^61 */
}

static int rnd_int(void) {
    static const int special[] = {0, 1, -1, 63, 64, -65, INT32_MAX, INT32_MIN, 4, 16};
    return below(2) ? special[below(10)] : (int)(uint32_t)next();
}

/* An id of n bytes (1..255, no NUL), n up to 400: lengths past one varint byte too. */
static void rnd_id(char *s, int maxlen) {
    int n = below(4) == 0 ? below(maxlen + 1) : below(12);
    for (int i = 0; i < n; i++)
        s[i] = (char)(1 + below(255));
    s[n] = '\0';
}

#define IDLEN 400
static char building[IDLEN + 1], apartment[IDLEN + 1];
static char rooms[AGG_MAX_ROOMS][IDLEN + 1];
static agg_result_t res;

/* Case i: the low 7 bits of `mask` choose which optional top-level values are present (all 128
 * combinations over the first 128 cases, again with other values after), room j takes the 3-bit
 * combination (i + j) & 7. */
static void make_case(int i, const char **apt) {
    unsigned mask = (unsigned)i & 127u;
    bool nonfinite = below(5) == 0;
    memset(&res, 0, offsetof(agg_result_t, rooms));
    rnd_id(building, IDLEN);
    rnd_id(apartment, IDLEN);
    *apt = mask & 1u ? apartment : NULL;
    res.ws = rnd_long();
    res.we = below(2) ? res.ws + 3600000 : rnd_long();
    for (int k = 0; k < 2; k++) {
        res.has_use[k] = mask & (2u << k);
        res.use[k] = rnd_double(nonfinite);
    }
    bool t = mask & 8u, sp = mask & 16u, gap = mask & 32u;
    res.temp_sum = rnd_double(nonfinite);
    res.temp_ms = rnd_ms(t);
    res.temp_min = rnd_double(nonfinite);
    res.temp_max = rnd_double(nonfinite);
    res.sp_sum = rnd_double(nonfinite);
    res.sp_ms = rnd_ms(sp);
    res.gap_sum = rnd_double(nonfinite);
    res.gap_ms = rnd_ms(gap);
    res.expected = rnd_int();
    res.seen = rnd_int();
    res.reporting = rnd_int();
    res.known = rnd_int();
    res.flags = (unsigned)(i % 16) | (below(4) == 0 ? (unsigned)next() : 0u);
    res.quality = (agg_quality_t)(i % 5);
    double unc = rnd_double(nonfinite);
    res.uncounted_kwh = mask & 64u ? fabs(unc) : (below(2) ? -fabs(unc) : 0.0);
    if (mask & 64u && res.uncounted_kwh == 0)
        res.uncounted_kwh = 0.25;
    int k = i % 4;
    res.nrooms = k == 0 ? 0 : k == 1 ? AGG_MAX_ROOMS : 1 + below(AGG_MAX_ROOMS);
    for (int j = 0; j < res.nrooms; j++) {
        agg_room_result_t *rr = &res.rooms[j];
        unsigned rm = (unsigned)(i + j) & 7u;
        memset(rr, 0, sizeof *rr);
        rnd_id(rooms[j], 80);
        rr->room = rooms[j];
        rr->temp_sum = rnd_double(nonfinite);
        rr->temp_ms = rnd_ms(rm & 1u);
        rr->temp_min = rnd_double(nonfinite);
        rr->temp_max = rnd_double(nonfinite);
        rr->temp_dev_sum = below(3) ? 0.0 : rnd_double(false);
        rr->temp_dev_sq = below(3) ? 0.0 : fabs(rnd_double(false));
        rr->sp_sum = rnd_double(nonfinite);
        rr->sp_ms = rnd_ms(rm & 2u);
        rr->valve_sum = rnd_double(nonfinite);
        rr->valve_ms = rnd_ms(rm & 4u);
        rr->seen = rnd_int();
        rr->changes = rnd_int();
    }
}

/* ---- reading the decoded value back ------------------------------------------------------ */

static int failures; /* cases with a mismatch: print the first few only */

static bool get(avro_value_t *rec, const char *name, avro_value_t *f) {
    return avro_value_get_by_name(rec, name, f, NULL) == 0;
}

/* A ["null", T] field: false for null (out untouched), true and *out the branch otherwise. */
static bool branch(avro_value_t *rec, const char *name, avro_value_t *out) {
    avro_value_t f;
    int d = -1;
    HVS_REQUIRE(get(rec, name, &f) && avro_value_get_discriminant(&f, &d) == 0, "union %s", name);
    if (d == 0)
        return false;
    HVS_REQUIRE(avro_value_get_current_branch(&f, out) == 0, "branch of %s", name);
    return true;
}

/* Same bits (so -0.0 differs from 0.0), or both null. */
static bool opt_double_is(avro_value_t *rec, const char *name, bool has, double want) {
    avro_value_t b;
    double d;
    bool present = branch(rec, name, &b);
    bool expect = has && isfinite(want);
    if (present != expect)
        return false;
    return !present || (avro_value_get_double(&b, &d) == 0 && memcmp(&d, &want, sizeof d) == 0);
}

static bool opt_int_is(avro_value_t *rec, const char *name, bool has, int want) {
    avro_value_t b;
    int32_t v;
    bool present = branch(rec, name, &b);
    return present == has && (!present || (avro_value_get_int(&b, &v) == 0 && v == want));
}

static bool long_is(avro_value_t *rec, const char *name, int64_t want) {
    avro_value_t f;
    int64_t v;
    return get(rec, name, &f) && avro_value_get_long(&f, &v) == 0 && v == want;
}

static bool int_is(avro_value_t *rec, const char *name, int want) {
    avro_value_t f;
    int32_t v;
    return get(rec, name, &f) && avro_value_get_int(&f, &v) == 0 && v == want;
}

static bool str_is(avro_value_t *f, const char *want) {
    const char *s;
    size_t n; /* avro-c counts the NUL */
    return avro_value_get_string(f, &s, &n) == 0 && n == strlen(want) + 1 &&
           memcmp(s, want, n) == 0;
}

static const char *const flag_names[AGG_FLAG_COUNT] = {"counter_reset", "meter_replaced",
                                                       "implausible_jump", "late_data"};

static double room_std(const agg_room_result_t *rr) { /* windows.h's definition */
    double m = rr->temp_dev_sum / rr->temp_ms;
    double var = rr->temp_dev_sq / rr->temp_ms - m * m;
    return var > 0 ? sqrt(var) : 0;
}

/* Which field of the decoded value differs from res (NULL: none). */
static const char *check_value(avro_value_t *v, const char *apt, uint32_t rev, int64_t emitted) {
    avro_value_t f, b, item;
    const agg_result_t *r = &res;
    bool t = r->temp_ms > 0;
    if (!get(v, "building_id", &f) || !str_is(&f, building))
        return "building_id";
    if (branch(v, "apartment_id", &b) != (apt != NULL) || (apt && !str_is(&b, apt)))
        return "apartment_id";
    if (!long_is(v, "window_start", r->ws) || !long_is(v, "window_end", r->we) ||
        !long_is(v, "window_size_ms", r->we - r->ws))
        return "window";
    if (!int_is(v, "revision", (int)rev))
        return "revision";
    if (!opt_double_is(v, "heating_kwh", r->has_use[0], r->use[0]) ||
        !opt_double_is(v, "hot_water_litres", r->has_use[1], r->use[1]))
        return "use";
    if (!opt_double_is(v, "room_temp_mean_c", t, t ? r->temp_sum / r->temp_ms : 0) ||
        !opt_double_is(v, "room_temp_min_c", t, r->temp_min) ||
        !opt_double_is(v, "room_temp_max_c", t, r->temp_max))
        return "room_temp";
    if (!opt_double_is(v, "setpoint_mean_c", r->sp_ms > 0,
                       r->sp_ms > 0 ? r->sp_sum / r->sp_ms : 0) ||
        !opt_double_is(v, "comfort_gap_mean_c", r->gap_ms > 0,
                       r->gap_ms > 0 ? r->gap_sum / r->gap_ms : 0))
        return "setpoint/gap";
    if (!int_is(v, "readings_expected", r->expected) || !int_is(v, "readings_seen", r->seen))
        return "readings";
    if (!opt_int_is(v, "reporting_apartments", apt == NULL, r->reporting) ||
        !opt_int_is(v, "known_apartments", apt == NULL, r->known))
        return "apartments";
    int q = -1;
    if (!get(v, "quality", &f) || avro_value_get_enum(&f, &q) || q != (int)r->quality)
        return "quality";
    size_t n = 0, k = 0;
    if (!get(v, "flags", &f) || avro_value_get_size(&f, &n))
        return "flags";
    for (int i = 0; i < AGG_FLAG_COUNT; i++)
        if (r->flags & (1u << i)) {
            if (k >= n || avro_value_get_by_index(&f, k++, &item, NULL) ||
                !str_is(&item, flag_names[i]))
                return "flags";
        }
    if (k != n)
        return "flags count";
    if (!long_is(v, "emitted_at", emitted))
        return "emitted_at";
    if (!get(v, "rooms", &f) || avro_value_get_size(&f, &n) || n != (size_t)r->nrooms)
        return "rooms count";
    for (int j = 0; j < r->nrooms; j++) {
        const agg_room_result_t *rr = &r->rooms[j];
        bool rt = rr->temp_ms > 0;
        avro_value_t room;
        if (avro_value_get_by_index(&f, (size_t)j, &item, NULL) || !get(&item, "room", &room) ||
            !str_is(&room, rr->room))
            return "rooms.room";
        if (!opt_double_is(&item, "temp_mean_c", rt, rt ? rr->temp_sum / rr->temp_ms : 0) ||
            !opt_double_is(&item, "temp_min_c", rt, rr->temp_min) ||
            !opt_double_is(&item, "temp_max_c", rt, rr->temp_max) ||
            !opt_double_is(&item, "temp_std_c", rt, rt ? room_std(rr) : 0))
            return "rooms.temp";
        if (!opt_double_is(&item, "setpoint_mean_c", rr->sp_ms > 0,
                           rr->sp_ms > 0 ? rr->sp_sum / rr->sp_ms : 0) ||
            !opt_double_is(&item, "valve_mean_pct", rr->valve_ms > 0,
                           rr->valve_ms > 0 ? rr->valve_sum / rr->valve_ms : 0))
            return "rooms.setpoint/valve";
        if (!int_is(&item, "readings_seen", rr->seen) ||
            !int_is(&item, "temp_changes", rr->changes))
            return "rooms.counts";
    }
    if (!opt_double_is(v, "uncounted_kwh", r->uncounted_kwh > 0, r->uncounted_kwh))
        return "uncounted_kwh";
    return NULL;
}

/* ---- cases -------------------------------------------------------------------------------- */

static hvs_serde_t *serde;

static void setup(void) {
    hvs_err_t err = {0};
    if (!serde)
        HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0, "serde: %s", err.msg);
}

static void teardown(void) { hvs_serde_destroy(serde); }

/* The current schema is the one the direct writer was written for; the switch works. */
static void test_direct_on(void) {
    setup();
    hvs_err_t err = {0};
    agg_output_t *o = NULL;
    HVS_REQUIRE(agg_output_new(serde, "aggregates.15m", &o, &err) == 0, "output: %s", err.msg);
    HVS_CHECK(agg_output_layout_direct(hvs_serde_schema(serde, HVS_SCHEMA_AGGREGATE)),
              "the current Aggregate schema's layout is not the direct writer's: update "
              "HVS_LAYOUT_AGGREGATE (layouts.h) and write_direct in workers/aggregator/output.c");
    HVS_CHECK(agg_output_direct(o), "the direct writer is off for the current schema");
    agg_output_use_direct(o, false);
    HVS_CHECK(!agg_output_direct(o), "forced off");
    agg_output_use_direct(o, true);
    HVS_CHECK(agg_output_direct(o), "back on");
    agg_output_destroy(o);
}

/* The current schema's JSON with `from` replaced by `to`, parsed. */
static avro_schema_t changed_schema(const char *from, const char *to) {
    static char json[65536], mod[65536];
    avro_writer_t w = avro_writer_memory(json, sizeof json - 1);
    HVS_REQUIRE(avro_schema_to_json(hvs_serde_schema(serde, HVS_SCHEMA_AGGREGATE), w) == 0,
                "to_json: %s", avro_strerror());
    json[avro_writer_tell(w)] = '\0';
    avro_writer_free(w);
    const char *p = from ? strstr(json, from) : NULL;
    HVS_REQUIRE(!from || p, "%s not in the schema JSON", from);
    if (from)
        snprintf(mod, sizeof mod, "%.*s%s%s", (int)(p - json), json, to, p + strlen(from));
    else
        snprintf(mod, sizeof mod, "%s", json);
    avro_schema_t s = NULL;
    HVS_REQUIRE(avro_schema_from_json_length(mod, strlen(mod), &s) == 0, "parse: %s",
                avro_strerror());
    return s;
}

/* A schema of another layout leaves the direct writer off (the avro-c path takes it). */
static void test_layout_change(void) {
    setup();
    static const char *const change[][2] = {
        {NULL, NULL},                                        /* unchanged: on */
        {"\"INTERPOLATED\"", "\"INTERPOLATED\", \"STALE\""}, /* an enum symbol more */
        {"\"uncounted_kwh\"", "\"uncounted_mwh\""},          /* a renamed field */
        {"\"temp_changes\"", "\"temp_changes_since_last\""}, /* a renamed field in RoomStats */
    };
    for (size_t i = 0; i < sizeof change / sizeof change[0]; i++) {
        avro_schema_t s = changed_schema(change[i][0], change[i][1]);
        HVS_CHECK(agg_output_layout_direct(s) == (i == 0), "change %zu (%s)", i,
                  hvs_test_str(change[i][1]));
        avro_schema_decref(s);
    }
}

/* Both writers, every case: identical messages; the direct one decodes to the values. */
static void test_differential(void) {
    setup();
    hvs_err_t err = {0};
    agg_output_t *direct = NULL, *ref = NULL;
    hvs_decoder_t *dec = NULL;
    HVS_REQUIRE(agg_output_new(serde, "aggregates.1h", &direct, &err) == 0 &&
                    agg_output_new(serde, "aggregates.1h", &ref, &err) == 0 &&
                    hvs_decoder_new(serde, HVS_SCHEMA_AGGREGATE, &dec, &err) == 0,
                "setup: %s", err.msg);
    agg_output_use_direct(ref, false);
    HVS_REQUIRE(agg_output_direct(direct) && !agg_output_direct(ref), "writers");
    int same = 0, decoded = 0, rooms_max = 0, nulls = 0, values = 0;
    for (int i = 0; i < CASES; i++) {
        const char *apt;
        make_case(i, &apt);
        uint32_t rev = i % 7 == 0 ? UINT32_MAX : (uint32_t)below(5);
        int64_t emitted = i % 11 == 0 ? (i % 22 ? INT64_MAX : INT64_MIN) : rnd_long();
        const void *b1 = NULL, *b2 = NULL;
        size_t n1 = 0, n2 = 0;
        int rc1 = agg_output_encode(direct, building, apt, &res, rev, emitted, &b1, &n1, &err);
        HVS_CHECK(rc1 == 0, "case %d direct: %s", i, err.msg);
        int rc2 = agg_output_encode(ref, building, apt, &res, rev, emitted, &b2, &n2, &err);
        HVS_CHECK(rc2 == 0, "case %d avro-c: %s", i, err.msg);
        if (rc1 || rc2)
            continue;
        if (!agg_output_last_direct(direct) || agg_output_last_direct(ref)) {
            if (failures++ < 5)
                fprintf(stderr, "case %d: not written by the direct writer and avro-c\n", i);
            continue;
        }
        if (n1 == n2 && memcmp(b1, b2, n1) == 0) {
            same++;
        } else if (failures++ < 5) {
            size_t at = 0;
            while (at < n1 && at < n2 &&
                   ((const unsigned char *)b1)[at] == ((const unsigned char *)b2)[at])
                at++;
            fprintf(stderr, "case %d: direct %zu bytes, avro-c %zu, first difference at %zu\n", i,
                    n1, n2, at);
        }
        avro_value_t *v = NULL;
        if (hvs_decoder_decode(dec, b1, n1, &v, &err) != 0) {
            if (failures++ < 5)
                fprintf(stderr, "case %d: direct bytes do not decode: %s\n", i, err.msg);
            continue;
        }
        const char *bad = check_value(v, apt, rev, emitted);
        if (bad && failures++ < 5)
            fprintf(stderr, "case %d: decoded %s differs\n", i, bad);
        decoded += bad == NULL;
        rooms_max += res.nrooms == AGG_MAX_ROOMS;
        avro_value_t br;
        bool present = branch(v, "room_temp_mean_c", &br);
        nulls += !present;
        values += present;
    }
    HVS_CHECK_EQ_INT(same, CASES);
    HVS_CHECK_EQ_INT(decoded, CASES);
    /* the generator reached what it is meant to */
    HVS_CHECK(rooms_max >= CASES / 5 && nulls > CASES / 4 && values > CASES / 4,
              "coverage: %d with %d rooms, %d null and %d present temperature means", rooms_max,
              AGG_MAX_ROOMS, nulls, values);
    printf("%d cases identical and decoded\n", same);
    hvs_decoder_destroy(dec);
    agg_output_destroy(ref);
    agg_output_destroy(direct);
}

static const hvs_test_case_t cases[] = {
    {"direct_on", test_direct_on},
    {"layout_change", test_layout_change},
    {"differential", test_differential},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_test_cleanup(teardown);
    return hvs_test_main(cases, argc, argv);
}
