/*
 * test_agg_windows - the aggregator's arithmetic on hand-built apartments, expected values worked
 * out by hand from the attribution rule (workers/aggregator/windows.h), not by the code:
 * alive intervals, interpolation across a real gap, the "too much for one interval" rule, meter
 * replacement, counter reset, implausible jump, time-weighted gauges and comfort gap, silent
 * apartments, building sums, per-room stats (and a room-only late change making a revision); the Redis bucket format round trip; the per-building watermark; and the property the whole
 * design rests on: the final windows do not depend on arrival order or on where batches end.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg_sink.h"
#include "aggregate.h"
#include "hvs_test.h"
#include "persist.h"
#include "windows.h"

#define MIN (60 * 1000LL)
#define HOUR (60 * MIN)
#define T0 1733097600000LL /* 2024-12-02T00:00:00Z */

static const agg_params_t P = {15 * MIN, 375 * MIN, 24 * HOUR, 48 * HOUR, {20.0, 600.0}, 1.0};

static void put(agg_samples_t *a, hvs_ms_t t, agg_kind_t k, const char *room, double v) {
    agg_samples_add_instant(a, t);
    agg_samples_add_point(agg_samples_series(a, k, room), t, v, NULL);
}

static bool near(double a, double b) { return fabs(a - b) < 1e-9; }

static agg_result_t win(const agg_samples_t *a, hvs_ms_t ws, hvs_ms_t len) {
    agg_result_t r;
    agg_window_apartment(a, &P, ws, ws + len, &r);
    return r;
}

static void test_regular(void) {
    agg_samples_t a = {0};
    put(&a, T0, AGG_HEAT, "", 100.0);
    put(&a, T0, AGG_WATER, "", 1000.0);
    put(&a, T0, AGG_TEMP, "living", 20.0);
    put(&a, T0, AGG_SETPOINT, "living", 21.0);
    put(&a, T0 + 15 * MIN, AGG_HEAT, "", 100.5);
    put(&a, T0 + 30 * MIN, AGG_HEAT, "", 101.0);
    put(&a, T0 + 30 * MIN, AGG_TEMP, "living", 21.0);
    put(&a, T0 + 45 * MIN, AGG_SETPOINT, "living", 20.0);
    put(&a, T0 + 60 * MIN, AGG_HEAT, "", 102.0);
    put(&a, T0 + 60 * MIN, AGG_WATER, "", 1010.0);
    put(&a, T0 + 90 * MIN, AGG_HEAT, "", 103.0);
    agg_result_t r = win(&a, T0, HOUR);
    /* 0.5 + 0.5 + the 00:30 -> 01:00 increase, all in (00:45, 01:00] */
    HVS_CHECK(r.has_use[AGG_HEAT] && near(r.use[AGG_HEAT], 2.0), "heat %g", r.use[AGG_HEAT]);
    HVS_CHECK(r.has_use[AGG_WATER] && near(r.use[AGG_WATER], 10.0), "water %g", r.use[AGG_WATER]);
    HVS_CHECK(near(r.temp_sum / r.temp_ms, 20.5), "temp mean %g", r.temp_sum / r.temp_ms);
    HVS_CHECK(r.temp_min == 20.0 && r.temp_max == 21.0, "min/max %g %g", r.temp_min, r.temp_max);
    HVS_CHECK(near(r.sp_sum / r.sp_ms, 20.75), "setpoint mean %g", r.sp_sum / r.sp_ms);
    HVS_CHECK(near(r.gap_sum / r.gap_ms, 0.25), "comfort gap %g", r.gap_sum / r.gap_ms);
    HVS_CHECK(r.seen == 4 && r.expected == 4, "seen %d expected %d", r.seen, r.expected);
    HVS_CHECK(r.quality == AGG_Q_COMPLETE && r.flags == 0, "quality %d flags %u", r.quality,
              r.flags);
    r = win(&a, T0 + HOUR, HOUR);
    HVS_CHECK(near(r.use[AGG_HEAT], 1.0), "second hour heat %g", r.use[AGG_HEAT]);
    HVS_CHECK(r.has_use[AGG_WATER] && r.use[AGG_WATER] == 0.0, "unchanged water counts as 0");
    HVS_CHECK(near(r.temp_sum / r.temp_ms, 21.0) && r.seen == 1, "carried temperature, 1 seen");
    HVS_CHECK(r.quality == AGG_Q_COMPLETE, "quality %d", r.quality);
    /* 15-minute windows sum to the hour (energy conservation at both sizes). */
    double sum = 0;
    for (int q = 0; q < 4; q++)
        sum += win(&a, T0 + q * 15 * MIN, 15 * MIN).use[AGG_HEAT];
    HVS_CHECK(near(sum, 2.0), "quarters sum %g", sum);
    HVS_CHECK(near(win(&a, T0 + 45 * MIN, 15 * MIN).use[AGG_HEAT], 1.0), "last quarter has 1.0");
    /* Before the first value nothing is known. */
    r = win(&a, T0 - HOUR, HOUR);
    HVS_CHECK(!r.has_use[AGG_HEAT] && r.covered_ms == 0, "window before the apartment existed");
    agg_samples_fini(&a);
}

static void test_gap_and_meter_events(void) {
    agg_samples_t b = {0};
    put(&b, T0, AGG_HEAT, "", 500.0);
    put(&b, T0 + 15 * MIN, AGG_HEAT, "", 500.2);
    put(&b, T0 + 8 * HOUR + 15 * MIN, AGG_HEAT, "", 510.2); /* 8 h silent: a real gap */
    put(&b, T0 + 8 * HOUR + 30 * MIN, AGG_HEAT, "", 0.4);   /* new meter */
    put(&b, T0 + 8 * HOUR + 45 * MIN, AGG_HEAT, "", 300.0); /* implausible */
    put(&b, T0 + 9 * HOUR, AGG_HEAT, "", 301.0);
    agg_result_t r = win(&b, T0, HOUR);
    /* 0.2, plus 10 kWh spread over (00:15, 08:15]: 45 of 480 minutes here */
    HVS_CHECK(near(r.use[AGG_HEAT], 0.2 + 10.0 * 45 / 480), "first hour %g", r.use[AGG_HEAT]);
    HVS_CHECK(r.quality == AGG_Q_INTERPOLATED, "quality %s", agg_quality_name(r.quality));
    HVS_CHECK(r.covered_ms == 30 * MIN, "alive 00:00-00:30 only: %lld", (long long)r.covered_ms);
    r = win(&b, T0 + 2 * HOUR, HOUR);
    HVS_CHECK(near(r.use[AGG_HEAT], 1.25) && r.covered_ms == 0 && r.quality == AGG_Q_INTERPOLATED,
              "inside the gap: %g, covered %lld", r.use[AGG_HEAT], (long long)r.covered_ms);
    r = win(&b, T0 + 8 * HOUR, HOUR);
    HVS_CHECK(near(r.use[AGG_HEAT], 10.0 * 15 / 480 + 0.4 + 1.0), "08:00 hour %g", r.use[AGG_HEAT]);
    HVS_CHECK(r.flags == (AGG_F_METER_REPLACED | AGG_F_IMPLAUSIBLE_JUMP), "flags %u", r.flags);
    /* Sum over the whole span = counter span with replacement and jump taken out. */
    double sum = 0;
    for (int h = 0; h < 10; h++)
        sum += win(&b, T0 + h * HOUR, HOUR).use[AGG_HEAT];
    HVS_CHECK(near(sum, 0.2 + 10.0 + 0.4 + 1.0), "conserved: %g", sum);
    agg_samples_fini(&b);

    agg_samples_t c = {0};
    put(&c, T0, AGG_HEAT, "", 1000.0);
    put(&c, T0 + 15 * MIN, AGG_HEAT, "", 900.0);
    r = win(&c, T0, HOUR);
    HVS_CHECK(r.use[AGG_HEAT] == 0.0 && r.flags == AGG_F_COUNTER_RESET, "reset: %g flags %u",
              r.use[AGG_HEAT], r.flags);
    agg_samples_fini(&c);

    /* Alive the whole time (temperatures every 15 min) but 6 kWh at once: more than 20 kW can
     * deliver in 15 min, so the reports in between were lost: spread over the two hours. */
    agg_samples_t e = {0};
    put(&e, T0, AGG_HEAT, "", 10.0);
    for (int q = 1; q <= 8; q++)
        put(&e, T0 + q * 15 * MIN, AGG_TEMP, "bed", 19.0 + q * 0.1);
    put(&e, T0 + 2 * HOUR, AGG_HEAT, "", 16.0);
    r = win(&e, T0, HOUR);
    HVS_CHECK(near(r.use[AGG_HEAT], 3.0) && r.quality == AGG_Q_INTERPOLATED, "lost reports: %g %s",
              r.use[AGG_HEAT], agg_quality_name(r.quality));
    agg_samples_fini(&e);
}

static void test_silent_and_building(void) {
    agg_samples_t d = {0};
    put(&d, T0, AGG_HEAT, "", 50.0);
    put(&d, T0, AGG_TEMP, "kitchen", 20.0);
    agg_result_t r = win(&d, T0 + 6 * HOUR, HOUR); /* alive until 06:15 (G = 6 h 15 min) */
    HVS_CHECK(!r.has_use[AGG_HEAT] && r.covered_ms == 15 * MIN && r.quality == AGG_Q_PARTIAL,
              "went silent: heat %s covered %lld quality %s",
              r.has_use[AGG_HEAT] ? "known" : "null", (long long)r.covered_ms,
              agg_quality_name(r.quality));
    r = win(&d, T0 + 7 * HOUR, HOUR);
    HVS_CHECK(!r.has_use[AGG_HEAT] && r.quality == AGG_Q_SILENT && r.temp_ms == 0, "silent hour");

    agg_samples_t a = {0};
    put(&a, T0, AGG_HEAT, "", 1.0);
    put(&a, T0, AGG_TEMP, "living", 22.0);
    put(&a, T0 + 30 * MIN, AGG_HEAT, "", 3.0);
    agg_result_t b, ra, rd;
    agg_window_building_begin(&b, T0, T0 + HOUR);
    agg_window_apartment(&a, &P, T0, T0 + HOUR, &ra);
    agg_window_apartment(&d, &P, T0, T0 + HOUR, &rd);
    agg_window_building_add(&b, &ra);
    agg_window_building_add(&b, &rd);
    agg_window_building_finish(&b, 3);
    HVS_CHECK(b.has_use[AGG_HEAT] && near(b.use[AGG_HEAT], 2.0), "building heat %g",
              b.use[AGG_HEAT]);
    HVS_CHECK(near(b.temp_sum / b.temp_ms, 21.0), "building temp %g", b.temp_sum / b.temp_ms);
    HVS_CHECK(b.reporting == 2 && b.known == 3 && b.quality == AGG_Q_PARTIAL,
              "reporting %d known %d quality %s", b.reporting, b.known,
              agg_quality_name(b.quality));
    agg_samples_fini(&a);
    agg_samples_fini(&d);
}

static const agg_room_result_t *room_of(const agg_result_t *r, const char *name) {
    for (int i = 0; i < r->nrooms; i++)
        if (strcmp(r->rooms[i].room, name) == 0)
            return &r->rooms[i];
    return NULL;
}

/* Room stats worked out by hand. The apartment reports at 23:30 (carried in), 00:15, 00:30,
 * 00:45 and 00:50: alive throughout 00:00-01:00, and after 00:50 for G (until 07:05).
 *   bath:   temp 20.0 @23:30, 20.0 @00:15 (keep-alive repeat), 21.0 @00:45; setpoint 22 @23:30;
 *           valve 50 @23:30, 100 @00:30
 *   kid:    appears mid-window: temp 18.0 and valve 80 @00:45, humidity @00:50
 *   living: flat: temp 19.5 @23:30, @00:15, @00:30
 *   attic:  humidity only @00:15 (sorts first, found last: rooms are listed by name) */
static void test_rooms(void) {
    agg_samples_t a = {0};
    hvs_ms_t t_in = T0 - 30 * MIN;
    put(&a, t_in, AGG_TEMP, "bath", 20.0);
    put(&a, t_in, AGG_SETPOINT, "bath", 22.0);
    put(&a, t_in, AGG_VALVE, "bath", 50.0);
    put(&a, t_in, AGG_TEMP, "living", 19.5);
    put(&a, T0 + 15 * MIN, AGG_TEMP, "bath", 20.0);
    put(&a, T0 + 15 * MIN, AGG_TEMP, "living", 19.5);
    put(&a, T0 + 15 * MIN, AGG_HUMIDITY, "attic", 55.0);
    put(&a, T0 + 30 * MIN, AGG_VALVE, "bath", 100.0);
    put(&a, T0 + 30 * MIN, AGG_TEMP, "living", 19.5);
    put(&a, T0 + 45 * MIN, AGG_TEMP, "bath", 21.0);
    put(&a, T0 + 45 * MIN, AGG_TEMP, "kid", 18.0);
    put(&a, T0 + 45 * MIN, AGG_VALVE, "kid", 80.0);
    put(&a, T0 + 50 * MIN, AGG_HUMIDITY, "kid", 41.0);

    agg_result_t r = win(&a, T0, HOUR);
    HVS_REQUIRE(r.nrooms == 4, "4 rooms, got %d", r.nrooms);
    const char *order[] = {"attic", "bath", "kid", "living"};
    for (int i = 0; i < 4; i++)
        HVS_CHECK(strcmp(r.rooms[i].room, order[i]) == 0, "room %d is %s", i, r.rooms[i].room);
    const agg_room_result_t *x = room_of(&r, "bath");
    /* 20.0 for 45 min, 21.0 for 15: mean 20.25, variance 0.75 * 0.25 */
    HVS_CHECK(near(x->temp_sum / x->temp_ms, 20.25) && x->temp_ms == (double)HOUR,
              "bath mean %g over %g ms", x->temp_sum / x->temp_ms, x->temp_ms);
    HVS_CHECK(x->temp_min == 20.0 && x->temp_max == 21.0, "bath min/max %g %g", x->temp_min,
              x->temp_max);
    HVS_CHECK(near(agg_room_temp_std(x), sqrt(0.1875)), "bath std %g", agg_room_temp_std(x));
    HVS_CHECK(near(x->sp_sum / x->sp_ms, 22.0), "bath setpoint carried in: %g",
              x->sp_sum / x->sp_ms);
    HVS_CHECK(near(x->valve_sum / x->valve_ms, 75.0), "bath valve 50 then 100: %g",
              x->valve_sum / x->valve_ms);
    /* 00:15 (temp), 00:30 (valve), 00:45 (temp); the keep-alive repeat at 00:15 is no change */
    HVS_CHECK(x->seen == 3 && x->changes == 1, "bath seen %d changes %d", x->seen, x->changes);

    x = room_of(&r, "kid");
    HVS_CHECK(near(x->temp_sum / x->temp_ms, 18.0) && x->temp_ms == (double)(15 * MIN) &&
                  x->temp_min == 18.0 && x->temp_max == 18.0 && agg_room_temp_std(x) == 0,
              "kid: 18.0 for the last 15 min (%g over %g ms)", x->temp_sum / x->temp_ms,
              x->temp_ms);
    HVS_CHECK(x->sp_ms == 0 && near(x->valve_sum / x->valve_ms, 80.0),
              "kid: no setpoint, valve 80");
    HVS_CHECK(x->seen == 2 && x->changes == 0, "kid: first value is no change: seen %d changes %d",
              x->seen, x->changes);

    x = room_of(&r, "living");
    HVS_CHECK(near(x->temp_sum / x->temp_ms, 19.5) && agg_room_temp_std(x) == 0.0 &&
                  x->temp_min == 19.5 && x->temp_max == 19.5,
              "living flat: mean %g std %g", x->temp_sum / x->temp_ms, agg_room_temp_std(x));
    HVS_CHECK(x->seen == 2 && x->changes == 0 && x->valve_ms == 0 && x->sp_ms == 0,
              "living: seen %d changes %d", x->seen, x->changes);

    x = room_of(&r, "attic");
    HVS_CHECK(x->temp_ms == 0 && x->sp_ms == 0 && x->valve_ms == 0 && x->seen == 1 &&
                  x->changes == 0,
              "attic: humidity only, seen %d", x->seen);

    /* Before 00:00: kid and attic did not exist yet; bath's 23:30 value is its first (no change) */
    r = win(&a, T0 - HOUR, HOUR);
    HVS_CHECK(r.nrooms == 2 && room_of(&r, "bath") && room_of(&r, "living"), "2 rooms before: %d",
              r.nrooms);
    x = room_of(&r, "bath");
    HVS_CHECK(x && x->seen == 1 && x->changes == 0 && x->temp_ms == (double)(30 * MIN),
              "bath before: seen %d changes %d, %g ms", x ? x->seen : -1, x ? x->changes : -1,
              x ? x->temp_ms : 0);

    /* Going silent: alive until 07:05, so 07:00-08:00 has 5 minutes of the held values ... */
    r = win(&a, T0 + 7 * HOUR, HOUR);
    x = room_of(&r, "bath");
    HVS_CHECK(r.nrooms == 4 && x && x->temp_ms == (double)(5 * MIN) &&
                  near(x->temp_sum / x->temp_ms, 21.0) && near(x->valve_sum / x->valve_ms, 100.0) &&
                  x->seen == 0 && x->changes == 0,
              "07:00 hour: bath over %g ms", x ? x->temp_ms : 0);
    /* ... and 08:00-09:00 none: every room listed, every gauge null, nothing seen */
    r = win(&a, T0 + 8 * HOUR, HOUR);
    int empty = 0;
    for (int i = 0; i < r.nrooms; i++)
        empty += r.rooms[i].temp_ms == 0 && r.rooms[i].sp_ms == 0 && r.rooms[i].valve_ms == 0 &&
                 r.rooms[i].seen == 0 && r.rooms[i].changes == 0;
    HVS_CHECK(r.quality == AGG_Q_SILENT && r.nrooms == 4 && empty == 4,
              "silent hour: %d of %d empty", empty, r.nrooms);

    /* Without rooms (windows only summed into a building's): the same apartment values. */
    agg_result_t t;
    agg_window_apartment_totals(&a, &P, T0, T0 + HOUR, &t);
    r = win(&a, T0, HOUR);
    HVS_CHECK(t.nrooms == 0 && t.temp_sum == r.temp_sum && t.temp_ms == r.temp_ms &&
                  t.sp_sum == r.sp_sum && t.gap_sum == r.gap_sum && t.temp_min == r.temp_min &&
                  t.temp_max == r.temp_max && t.seen == r.seen && t.covered_ms == r.covered_ms,
              "totals without rooms: %d rooms, temp %g vs %g", t.nrooms, t.temp_sum, r.temp_sum);
    r.nrooms = 0;
    HVS_CHECK(agg_result_hash(&t) == agg_result_hash(&r), "same hash without the rooms");

    /* Building windows list no rooms. */
    agg_result_t b;
    agg_window_building_begin(&b, T0, T0 + HOUR);
    r = win(&a, T0, HOUR);
    agg_window_building_add(&b, &r);
    agg_window_building_finish(&b, 1);
    HVS_CHECK(b.nrooms == 0, "building rooms %d", b.nrooms);
    agg_samples_fini(&a);
}

/* A late reading that changes only a room's stats (a valve value of a known room at an instant
 * already known: nothing of the apartment's own fields, the room list or the room's reading
 * count moves, only its valve mean) republishes the hour as revision 1. */
static void test_room_revision(void) {
    agg_config_t c = {.params = P, .grace = {5 * MIN, 15 * MIN}, .lateness = 48 * HOUR};
    agg_t *g = agg_new(&c);
    hvs_reading_t r = {0};
    snprintf(r.building_id, sizeof r.building_id, "bldg");
    snprintf(r.apartment_id, sizeof r.apartment_id, "apt");
    snprintf(r.v[0].sensor_type, sizeof r.v[0].sensor_type, "room_temp_c");
    snprintf(r.v[0].room_name, sizeof r.v[0].room_name, "living");
    r.n = 1;
    hvs_err_t err = {0};
    hvs_ms_t wm = HVS_MS_NONE;
    agg_sink_t out = {0};
    for (int q = 0; q <= 12; q++) { /* 00:00 .. 03:00 */
        r.timestamp = T0 + q * 15 * MIN;
        r.v[0].value = 20.0 + 0.5 * q;
        HVS_CHECK(agg_accept(g, &r, 0, wm, &err) == 1, "accept: %s", err.msg);
        wm = r.timestamp;
        agg_advance(g, agg_building(g, "bldg", 0, false), wm, agg_sink_collect, &out, &err);
    }
    char key[128];
    snprintf(key, sizeof key, "bldg/apt/%d/%lld", AGG_W60, (long long)T0);
    const agg_seen_t *e = NULL;
    for (size_t i = 0; i < out.n; i++)
        if (strcmp(out.v[i].key, key) == 0)
            e = &out.v[i];
    HVS_REQUIRE(e && e->rev == 0, "00:00 hour emitted once");
    uint64_t h0 = e->hash;
    snprintf(r.v[0].sensor_type, sizeof r.v[0].sensor_type, "valve_position_pct");
    r.v[0].value = 60;
    r.timestamp = T0 + 15 * MIN; /* same room, same list of rooms, same readings_seen */
    HVS_CHECK(agg_accept(g, &r, 0, wm, &err) == 1, "late valve stored");
    agg_revise(g, agg_building(g, "bldg", 0, false), agg_sink_collect, &out, &err);
    e = NULL;
    for (size_t i = 0; i < out.n; i++)
        if (strcmp(out.v[i].key, key) == 0)
            e = &out.v[i];
    HVS_CHECK(e && e->rev == 1 && e->hash != h0, "revision %u after a room-only change",
              e ? e->rev : 0);
    /* A late temperature at 00:50 equal to the 01:00 one (22.0): in the 01:00 hour only that
     * value's temp_changes moves (1 -> 0), and the hour is revised for it. */
    snprintf(key, sizeof key, "bldg/apt/%d/%lld", AGG_W60, (long long)(T0 + HOUR));
    e = NULL;
    for (size_t i = 0; i < out.n; i++)
        if (strcmp(out.v[i].key, key) == 0)
            e = &out.v[i];
    /* (revised once already: the late valve holds on into it) */
    HVS_REQUIRE(e && e->rev == 1, "01:00 hour at revision 1");
    h0 = e->hash;
    snprintf(r.v[0].sensor_type, sizeof r.v[0].sensor_type, "room_temp_c");
    r.v[0].value = 22.0;
    r.timestamp = T0 + 50 * MIN;
    HVS_CHECK(agg_accept(g, &r, 0, wm, &err) == 1, "late temperature stored");
    agg_revise(g, agg_building(g, "bldg", 0, false), agg_sink_collect, &out, &err);
    HVS_CHECK(e->rev == 2 && e->hash != h0, "01:00 hour revision %u", e->rev);
    agg_building_t *b = agg_building(g, "bldg", 0, false);
    agg_apartment_t *ap = b ? agg_apartment(b, "apt", false) : NULL;
    agg_result_t w1;
    HVS_REQUIRE(ap && agg_window_apartment(&ap->samples, &P, T0 + HOUR, T0 + 2 * HOUR, &w1),
                "01:00 hour");
    /* 01:00 22.0 (= 00:50), 01:15 22.5, 01:30 23.0, 01:45 23.5: three changes */
    HVS_CHECK(w1.nrooms == 1 && w1.rooms[0].changes == 3 && w1.rooms[0].seen == 4,
              "01:00 hour: %d changes, %d seen", w1.nrooms ? w1.rooms[0].changes : -1,
              w1.nrooms ? w1.rooms[0].seen : -1);
    agg_sink_fini(&out);
    agg_destroy(g);
}

static bool same_bits(double x, double y) { return memcmp(&x, &y, sizeof x) == 0; }

/* Every instant and value of `a` is in `back`, bit for bit, and nothing else. */
static void check_same_samples(const agg_apartment_t *a, const agg_apartment_t *back,
                               const char *what) {
    HVS_CHECK(back->samples.ninst == a->samples.ninst && back->samples.ns == a->samples.ns,
              "%s: instants %zu/%zu series %zu/%zu", what, back->samples.ninst, a->samples.ninst,
              back->samples.ns, a->samples.ns);
    for (size_t i = 0; i < a->samples.ninst && i < back->samples.ninst; i++)
        HVS_CHECK(a->samples.inst[i] == back->samples.inst[i], "%s: instant %zu", what, i);
    for (size_t k = 0; k < a->samples.ns; k++) {
        const agg_series_t *s = &a->samples.s[k];
        const agg_series_t *t = agg_samples_find(&back->samples, s->kind, s->room);
        HVS_CHECK(t && t->n == s->n, "%s: series %c%s", what, agg_kind_code(s->kind), s->room);
        for (size_t j = 0; t && j < s->n && j < t->n; j++)
            HVS_CHECK(s->p[j].t == t->p[j].t && same_bits(s->p[j].v, t->p[j].v),
                      "%s: %c%s[%zu] %.17g at %lld, back %.17g at %lld", what,
                      agg_kind_code(s->kind), s->room, j, s->p[j].v, (long long)s->p[j].t,
                      t->p[j].v, (long long)t->p[j].t);
    }
}

/* Format 1: the directory and the blocks give back the same instants and the same doubles bit
 * for bit (short decimals as scaled integers, the rest raw), whatever order the series were
 * created in. */
static void test_bucket_roundtrip(void) {
    agg_apartment_t a = {.id = "apt_1"}, back = {.id = "apt_1"};
    HVS_REQUIRE(T0 % AGG_PERSIST_BLOCK_MS == 0, "T0 starts a block");
    put(&a.samples, T0 + 5 * MIN, AGG_TEMP, "living room; odd=name", 21.25);
    put(&a.samples, T0 + 5 * MIN, AGG_HEAT, "", 75475.7);
    put(&a.samples, T0 + 20 * MIN, AGG_SETPOINT, "bed", 19.5);
    put(&a.samples, T0 + 20 * MIN, AGG_VALVE, "bed", 35.0);
    put(&a.samples, T0 + 20 * MIN, AGG_HUMIDITY, "bed", 48.5);
    put(&a.samples, T0 + 20 * MIN + 7, AGG_TEMP, "bed", 21.900000000000002); /* ms, raw */
    put(&a.samples, T0 + 2 * HOUR, AGG_TEMP, "bed", -0.0);
    put(&a.samples, T0 + 3 * HOUR, AGG_TEMP, "bed", -12.125);
    put(&a.samples, T0 + 4 * HOUR, AGG_TEMP, "bed", 0.1 + 0.2);
    put(&a.samples, T0 + 5 * HOUR, AGG_TEMP, "bed", 1e300);
    put(&a.samples, T0 + 5 * HOUR + 59 * MIN, AGG_TEMP, "bed", 4503599627370497.0);
    agg_samples_add_instant(&a.samples, T0 + 5 * HOUR + 59 * MIN + 59999); /* instant only */
    /* a kept base value whose instant was forgotten */
    agg_samples_add_point(agg_samples_series(&a.samples, AGG_WATER, ""), T0 + 50 * MIN, 7.0, NULL);
    char dir[1024], buf[4096];
    size_t nd = agg_persist_series(&a, dir, sizeof dir);
    size_t n = agg_persist_bucket(&a, T0, buf, sizeof buf);
    hvs_err_t err = {0};
    HVS_CHECK(nd > 1 && agg_persist_parse_series(&back, dir, nd, &err) == 0, "directory: %s",
              err.msg);
    HVS_CHECK(n > 0 && n < sizeof buf && agg_persist_parse_bucket(&back, buf, n, &err) == 0,
              "parse: %s", err.msg);
    HVS_CHECK(!back.stored_text, "format 1 is not text");
    check_same_samples(&a, &back, "block");
    /* 10 instants, 13 values: a few bytes each, against ~500 as text */
    HVS_CHECK(n < 120, "block of %zu bytes", n);
    HVS_CHECK(agg_persist_bucket(&a, T0 + AGG_PERSIST_BLOCK_MS, buf, sizeof buf) == 0,
              "empty block");
    HVS_CHECK(agg_persist_parse_bucket(&back, "garbage", 7, &err) == HVS_ESERDE &&
                  strstr(err.msg, "apt_1"),
              "garbage refused: %s", err.msg);
    agg_samples_fini(&a.samples);
    agg_samples_fini(&back.samples);
}

/* State written before format 1 (text hour buckets, field = hour start ms) still loads, and
 * marks the apartment for a rewrite in format 1. */
static void test_bucket_text(void) {
    agg_apartment_t back = {.id = "apt_001_001"};
    static const char b1[] = "1734210000000+\x1fh\x1d"
                             "75475.7\x1e"
                             "1734211800000+\x1fh\x1d"
                             "75476.2\x1e"
                             "1734212700000+\x1fsbedroom\x1d"
                             "19.5\x1ftkitchen\x1d"
                             "21.900000000000002\x1e"
                             "1734213000000";
    static const char b2[] = "1734213600000+";
    hvs_err_t err = {0};
    HVS_CHECK(agg_persist_parse_bucket(&back, b1, sizeof b1 - 1, &err) == 0 &&
                  agg_persist_parse_bucket(&back, b2, sizeof b2 - 1, &err) == 0,
              "text buckets: %s", err.msg);
    HVS_CHECK(back.stored_text, "text marks the apartment for a rewrite");
    const agg_samples_t *sm = &back.samples;
    HVS_CHECK(sm->ninst == 4 && sm->inst[0] == 1734210000000LL && sm->inst[3] == 1734213600000LL,
              "instants %zu", sm->ninst);
    const agg_series_t *h = agg_samples_find(sm, AGG_HEAT, "");
    const agg_series_t *t = agg_samples_find(sm, AGG_TEMP, "kitchen");
    HVS_CHECK(h && h->n == 2 && h->p[1].v == 75476.2 && h->p[1].t == 1734211800000LL,
              "heat counter");
    HVS_CHECK(t && t->n == 1 && same_bits(t->p[0].v, 21.900000000000002), "temperature");
    /* and what it loaded is written back in format 1 and reads the same */
    agg_apartment_t again = {.id = "apt_001_001"};
    char dir[1024], buf[4096];
    size_t nd = agg_persist_series(&back, dir, sizeof dir);
    HVS_CHECK(agg_persist_parse_series(&again, dir, nd, &err) == 0, "directory: %s", err.msg);
    for (hvs_ms_t s = agg_persist_block_of(1734210000000LL); s <= 1734213600000LL;
         s += AGG_PERSIST_BLOCK_MS) {
        size_t n = agg_persist_bucket(&back, s, buf, sizeof buf);
        HVS_CHECK(n == 0 || agg_persist_parse_bucket(&again, buf, n, &err) == 0, "block: %s",
                  err.msg);
    }
    check_same_samples(&back, &again, "text to format 1");
    agg_samples_fini(&back.samples);
    agg_samples_fini(&again.samples);
}

/* A truncated or garbled stored value is a bad_state error (or, cut at an entry boundary, a
 * shorter valid block), never a crash or a read past it (run under ASan/valgrind). */
static void test_bucket_corrupt(void) {
    agg_apartment_t a = {.id = "apt_c"};
    put(&a.samples, T0 + 1000, AGG_HEAT, "", 100.5);
    put(&a.samples, T0 + 1000, AGG_TEMP, "kitchen", 1.0 / 3.0); /* raw 8 bytes */
    put(&a.samples, T0 + 15 * MIN, AGG_TEMP, "kitchen", 20.5);
    char dir[256], buf[256];
    size_t nd = agg_persist_series(&a, dir, sizeof dir);
    size_t n = agg_persist_bucket(&a, T0, buf, sizeof buf);
    HVS_REQUIRE(nd > 1 && n > 1 && n < sizeof buf, "encoded");
    hvs_err_t err = {0};
    size_t bad = 0;
    for (size_t cut = 1; cut < n; cut++) { /* every truncation */
        agg_apartment_t b = {.id = "apt_c"};
        HVS_REQUIRE(agg_persist_parse_series(&b, dir, nd, &err) == 0, "directory");
        char *v = malloc(cut); /* exactly `cut` bytes: ASan sees a read past it */
        HVS_REQUIRE(v, "oom");
        memcpy(v, buf, cut);
        int rc = agg_persist_parse_bucket(&b, v, cut, &err);
        HVS_CHECK(rc == 0 || (rc == HVS_ESERDE && strstr(err.msg, "apt_c") &&
                              strcmp(err.reason, "bad_state") == 0),
                  "cut at %zu: rc %d %s", cut, rc, err.msg);
        bad += rc != 0;
        free(v);
        agg_samples_fini(&b.samples);
    }
    HVS_CHECK(bad >= n / 2, "%zu of %zu truncations refused", bad, n - 1);
    for (size_t i = 0; i < n; i++) /* every byte garbled, two ways */
        for (int x = 0; x < 2; x++) {
            agg_apartment_t b = {.id = "apt_c"};
            HVS_REQUIRE(agg_persist_parse_series(&b, dir, nd, &err) == 0, "directory");
            char v[256];
            memcpy(v, buf, n);
            v[i] = x ? (char)0xff : (char)(v[i] ^ 0x55);
            int rc = agg_persist_parse_bucket(&b, v, n, &err);
            HVS_CHECK(rc == 0 || rc == HVS_ESERDE, "garbled byte %zu: rc %d", i, rc);
            agg_samples_fini(&b.samples);
        }
    /* named cases */
    agg_apartment_t b = {.id = "apt_c"};
    HVS_CHECK(agg_persist_parse_bucket(&b, buf, n, &err) == HVS_ESERDE &&
                  strstr(err.msg, "not in its directory"),
              "block without its directory: %s", err.msg);
    buf[0] = 2;
    HVS_CHECK(agg_persist_parse_bucket(&b, buf, n, &err) == HVS_ESERDE &&
                  strstr(err.msg, "unknown format"),
              "unknown version: %s", err.msg);
    HVS_CHECK(agg_persist_parse_series(&b, dir, nd - 1, &err) == HVS_ESERDE, "cut directory");
    agg_samples_fini(&b.samples);
    agg_apartment_t c = {.id = "apt_c"};
    char dup[] = "\x01h\x00h\x00";
    HVS_CHECK(agg_persist_parse_series(&c, dup, sizeof dup - 1, &err) == HVS_ESERDE,
              "repeated directory entry: %s", err.msg);
    agg_samples_fini(&c.samples);
    agg_samples_fini(&a.samples);
}

/* ---- order independence ------------------------------------------------------------------- */

typedef struct rec {
    hvs_reading_t r;
    hvs_ms_t arrival;
} rec_t;

static int cmp_rec(const void *a, const void *b) {
    const rec_t *x = a, *y = b;
    return x->arrival < y->arrival ? -1 : x->arrival > y->arrival;
}

/* Feed the records in arrival order the way the worker does: a single partition, thresholds
 * checked after each reading, revisions at "batch ends" every `batch` readings. */
static void replay(const rec_t *recs, size_t n, size_t batch, agg_sink_t *out) {
    agg_config_t c = {.params = P, .grace = {5 * MIN, 15 * MIN}, .lateness = 48 * HOUR};
    agg_t *g = agg_new(&c);
    hvs_ms_t max_t = HVS_MS_NONE, th[3], last[3];
    agg_thresholds(g, HVS_MS_NONE, last);
    hvs_err_t err = {0};
    for (size_t i = 0; i < n; i++) {
        int rc = agg_accept(g, &recs[i].r, 0, max_t, &err);
        HVS_CHECK(rc >= 0, "accept: %s", err.msg);
        if (recs[i].r.timestamp > max_t)
            max_t = recs[i].r.timestamp;
        agg_thresholds(g, max_t, th);
        if (memcmp(th, last, sizeof th) != 0) {
            memcpy(last, th, sizeof th);
            size_t nb;
            agg_building_t **bs = agg_buildings(g, &nb);
            for (size_t k = 0; k < nb; k++)
                agg_advance(g, bs[k], max_t, agg_sink_collect, out, &err);
        }
        if ((i + 1) % batch == 0 || i + 1 == n) {
            size_t nb;
            agg_building_t **bs = agg_buildings(g, &nb);
            for (size_t k = 0; k < nb; k++)
                agg_revise(g, bs[k], agg_sink_collect, out, &err);
        }
    }
    /* The stream ends: the watermark moves on (idle advance) and closes the rest. */
    size_t nb;
    agg_building_t **bs = agg_buildings(g, &nb);
    for (size_t k = 0; k < nb; k++)
        agg_advance(g, bs[k], max_t + 3 * HOUR, agg_sink_collect, out, &err);
    agg_sink_sort(out);
    agg_destroy(g);
}

static void test_order_independence(void) {
    /* Two buildings x 3 apartments x 2 days, readings every 15 min (some skipped: unchanged or
     * lost), delivered with a random delay: most on time, some minutes late, a few hours late,
     * one apartment's tablet offline for 5 hours then delivering everything at once. */
    enum { NB = 2, NA = 3, STEPS = 192 };
    rec_t *recs = calloc(NB * NA * STEPS, sizeof *recs);
    size_t n = 0;
    uint64_t x = 42;
#define RND() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, (double)(x >> 11) / 9007199254740992.0)
    for (int b = 0; b < NB; b++)
        for (int a = 0; a < NA; a++) {
            double heat = 1000 * (a + 1), temp = 20;
            for (int s = 1; s <= STEPS; s++) {
                heat += RND() < 0.3 ? 0 : 0.3 * RND();
                temp += (RND() - 0.5) * 0.4;
                if (RND() < 0.15)
                    continue; /* nothing sent */
                rec_t *r = &recs[n++];
                snprintf(r->r.building_id, sizeof r->r.building_id, "b%d", b);
                snprintf(r->r.apartment_id, sizeof r->r.apartment_id, "a%d", a);
                r->r.timestamp = T0 + s * 15 * MIN;
                snprintf(r->r.v[0].sensor_type, sizeof r->r.v[0].sensor_type, "heating_energy_kwh");
                r->r.v[0].value = round(heat * 10) / 10;
                snprintf(r->r.v[1].sensor_type, sizeof r->r.v[1].sensor_type, "room_temp_c");
                snprintf(r->r.v[1].room_name, sizeof r->r.v[1].room_name, "living");
                r->r.v[1].value = round(temp * 10) / 10;
                r->r.n = 2;
                if (RND() < 0.5) { /* room stats ride along: valves and another room's humidity */
                    snprintf(r->r.v[2].sensor_type, sizeof r->r.v[2].sensor_type,
                             "valve_position_pct");
                    snprintf(r->r.v[2].room_name, sizeof r->r.v[2].room_name, "living");
                    r->r.v[2].value = round(RND() * 100);
                    snprintf(r->r.v[3].sensor_type, sizeof r->r.v[3].sensor_type, "humidity_pct");
                    snprintf(r->r.v[3].room_name, sizeof r->r.v[3].room_name, "bath");
                    r->r.v[3].value = 40;
                    r->r.n = 4;
                }
                double u = RND();
                hvs_ms_t delay = u < 0.85   ? 0
                                 : u < 0.97 ? (hvs_ms_t)(RND() * 40 * MIN)
                                            : (hvs_ms_t)(RND() * 6 * HOUR);
                if (b == 1 && a == 2 && s >= 40 && s < 60)
                    delay = (60 - s) * 15 * MIN; /* offline tablet */
                r->arrival = r->r.timestamp + delay;
            }
        }
    /* in event-time order vs in arrival order with several batch sizes */
    rec_t *sorted = malloc(n * sizeof *sorted);
    memcpy(sorted, recs, n * sizeof *recs);
    for (size_t i = 0; i < n; i++)
        sorted[i].arrival = sorted[i].r.timestamp * 8 + (hvs_ms_t)(i % 8); /* stable by time */
    qsort(sorted, n, sizeof *sorted, cmp_rec);
    qsort(recs, n, sizeof *recs, cmp_rec);
    agg_sink_t ref = {0};
    replay(sorted, n, 1000000, &ref);
    HVS_CHECK(ref.n > NB * (NA + 1) * 40, "windows emitted: %zu", ref.n);
    size_t batches[] = {1, 7, 100, 1000000};
    for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
        agg_sink_t got = {0};
        replay(recs, n, batches[bi], &got);
        size_t same = 0;
        bool keys = got.n == ref.n;
        for (size_t i = 0; keys && i < got.n; i++) {
            keys = strcmp(got.v[i].key, ref.v[i].key) == 0;
            same += keys && got.v[i].hash == ref.v[i].hash;
        }
        HVS_CHECK(keys && same == ref.n, "batch %zu: %zu windows vs %zu, %zu equal", batches[bi],
                  got.n, ref.n, same);
        agg_sink_fini(&got);
    }
    /* Delivered twice over (every reading duplicated, the copy later): the same windows. */
    rec_t *twice = malloc(2 * n * sizeof *twice);
    for (size_t i = 0; i < n; i++) {
        twice[2 * i] = recs[i];
        twice[2 * i + 1] = recs[i];
        twice[2 * i + 1].arrival += 20 * MIN;
    }
    qsort(twice, 2 * n, sizeof *twice, cmp_rec);
    agg_sink_t dup = {0};
    replay(twice, 2 * n, 50, &dup);
    size_t same = 0;
    for (size_t i = 0; i < dup.n && dup.n == ref.n; i++)
        same += strcmp(dup.v[i].key, ref.v[i].key) == 0 && dup.v[i].hash == ref.v[i].hash;
    HVS_CHECK(same == ref.n, "duplicates: %zu of %zu windows equal", same, ref.n);
    agg_sink_fini(&dup);
    free(twice);
    agg_sink_fini(&ref);
    free(sorted);
    free(recs);
}

static void test_accept(void) {
    agg_config_t c = {.params = P, .grace = {5 * MIN, 15 * MIN}, .lateness = 48 * HOUR};
    agg_t *g = agg_new(&c);
    hvs_reading_t r = {0};
    snprintf(r.building_id, sizeof r.building_id, "bldg");
    snprintf(r.apartment_id, sizeof r.apartment_id, "apt");
    snprintf(r.v[0].sensor_type, sizeof r.v[0].sensor_type, "heating_energy_kwh");
    snprintf(r.v[1].sensor_type, sizeof r.v[1].sensor_type, "valve_position_pct");
    r.v[0].value = 5;
    r.v[1].value = 40;
    r.n = 2;
    r.timestamp = T0;
    hvs_err_t err = {0};
    HVS_CHECK(agg_accept(g, &r, 0, HVS_MS_NONE, &err) == 1, "first: stored");
    HVS_CHECK(agg_accept(g, &r, 0, T0, &err) == 0, "same again: duplicate");
    r.v[0].value = 6; /* same time, another value: the first stays */
    HVS_CHECK(agg_accept(g, &r, 0, T0, &err) == 0 && agg_stats(g)->conflicts == 1, "conflict");
    r.timestamp = T0 - 49 * HOUR;
    HVS_CHECK(agg_accept(g, &r, 0, T0, &err) == HVS_EINVAL && strcmp(err.reason, "too_late") == 0,
              "too late: %s", err.reason);
    r.timestamp = T0 - 47 * HOUR;
    HVS_CHECK(agg_accept(g, &r, 0, T0, &err) == 1, "within lateness");
    agg_building_t *b = agg_building(g, "bldg", 0, false);
    agg_apartment_t *a = b ? agg_apartment(b, "apt", false) : NULL;
    HVS_CHECK(a && a->samples.ns == 2, "valves are kept for the rooms: %zu series",
              a ? a->samples.ns : 0);
    /* Hostile input: ever new room names. A reading of 32 new rooms is taken (2 + 32 series);
     * the next two would pass AGG_MAX_SERIES and are refused whole, nothing of them stored. */
    size_t ns_before = a ? a->samples.ns : 0;
    int accepted = 0, refused = 0;
    for (int k = 0; k < 3; k++) {
        r.n = 32;
        for (int j = 0; j < 32; j++) {
            snprintf(r.v[j].sensor_type, sizeof r.v[j].sensor_type, "room_temp_c");
            snprintf(r.v[j].room_name, sizeof r.v[j].room_name, "room_%d_%d", k, j);
            r.v[j].value = 20;
        }
        r.timestamp = T0 + (k + 1) * 15 * MIN;
        int rc = agg_accept(g, &r, 0, T0, &err);
        accepted += rc == 1;
        refused += rc == HVS_EINVAL && strcmp(err.reason, AGG_R_TOO_MANY_ROOMS) == 0;
    }
    HVS_CHECK(accepted == 1 && refused == 2 && a && a->samples.ns == ns_before + 32 &&
                  a->samples.ninst == 3,
              "too_many_rooms: %d accepted, %d refused, %zu series, %zu instants", accepted,
              refused, a ? a->samples.ns : 0, a ? a->samples.ninst : 0);
    agg_destroy(g);
}

/* The per-building watermark (aggregate.h): values worked out from the rule, two buildings of
 * one partition apart in event time. */
static void test_building_watermark(void) {
    agg_config_t c = {.params = P,
                      .grace = {5 * MIN, 15 * MIN},
                      .lateness = 48 * HOUR,
                      .ooo = 1 * MIN,
                      .idle = 30 * 1000};
    agg_t *g = agg_new(&c);
    agg_building_t *a = agg_building(g, "a", 0, true), *b = agg_building(g, "b", 0, true);
    HVS_CHECK(a && b && agg_building_wm(g, a, 0) == HVS_MS_NONE, "no event: no watermark");
    hvs_ms_t now = 1000000;
    agg_building_observe(g, a, T0 + 30 * 24 * HOUR, now); /* a is a month ahead of b */
    agg_building_observe(g, b, T0, now);
    HVS_CHECK_EQ_INT(agg_building_wm(g, b, now), T0 - MIN);
    HVS_CHECK_EQ_INT(agg_building_wm(g, a, now), T0 + 30 * 24 * HOUR - MIN);
    /* idle: 30 s of wall time free, then by the wall time beyond */
    HVS_CHECK_EQ_INT(agg_building_wm(g, b, now + 30000), T0 - MIN);
    HVS_CHECK_EQ_INT(agg_building_wm(g, b, now + 50000), T0 - MIN + 20000);
    /* touched (its partition has readings to read): keeps what it earned, and the idle clock
     * restarts from its newest event (time.h): past the earned 20 s only 50 s of wall time on */
    agg_building_touch(g, b, now + 50000);
    HVS_CHECK_EQ_INT(agg_building_wm(g, b, now + 90000), T0 - MIN + 20000);
    HVS_CHECK_EQ_INT(agg_building_wm(g, b, now + 110000), T0 - MIN + 30000);
    /* an older event never moves it back; a newer one moves it on */
    agg_building_observe(g, b, T0 - HOUR, now + 110000);
    HVS_CHECK_EQ_INT(agg_building_wm(g, b, now + 110000), T0 - MIN + 30000);
    agg_building_observe(g, b, T0 + HOUR, now + 110000);
    HVS_CHECK_EQ_INT(agg_building_wm(g, b, now + 110000), T0 + HOUR - MIN);
    /* a reading of b a month behind a's newest is b's business only: accepted */
    hvs_reading_t r = {0};
    snprintf(r.building_id, sizeof r.building_id, "b");
    snprintf(r.apartment_id, sizeof r.apartment_id, "apt");
    snprintf(r.v[0].sensor_type, sizeof r.v[0].sensor_type, "heating_energy_kwh");
    r.v[0].value = 5;
    r.n = 1;
    r.timestamp = T0 + 2 * HOUR;
    hvs_err_t err = {0};
    HVS_CHECK(agg_accept(g, &r, 0, agg_building_wm(g, b, now), &err) == 1, "b accepted: %s",
              err.msg);
    /* restored from the stored state: observed at its value, idle from `now` on */
    agg_building_t *d = agg_building(g, "d", 1, true);
    agg_building_restore(g, d, T0, HVS_MS_NONE);
    HVS_CHECK_EQ_INT(agg_building_wm(g, d, now + 3600000), T0);
    agg_building_touch(g, d, now);
    HVS_CHECK_EQ_INT(agg_building_wm(g, d, now + 40000), T0 + 10000);
    agg_destroy(g);
}

static const hvs_test_case_t cases[] = {
    {"regular", test_regular},
    {"gap_and_meter_events", test_gap_and_meter_events},
    {"silent_and_building", test_silent_and_building},
    {"rooms", test_rooms},
    {"room_revision", test_room_revision},
    {"bucket_roundtrip", test_bucket_roundtrip},
    {"bucket_text", test_bucket_text},
    {"bucket_corrupt", test_bucket_corrupt},
    {"accept", test_accept},
    {"order_independence", test_order_independence},
    {"building_watermark", test_building_watermark},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
