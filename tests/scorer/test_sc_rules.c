/*
 * test_sc_rules - the scorer's pure parts on hand-built apartments:
 *   - each rule fires on the hour its condition has held for its duration (not an hour
 *     earlier), with the strength and reason numbers the rule states, and not on the benign
 *     look-alikes (a cold morning after a night set-back, a vacant apartment's quiet sensors,
 *     a room warmer than its neighbours with its valve closed);
 *   - the residual's standardisation against a hand-computed median and MAD, its floor, and the
 *     history it needs;
 *   - the noisy-OR combination;
 *   - a slot's text reads back to the same slot (room names with spaces, NaN, idents);
 *   - the ring's binary blocks read back bit for bit (NaN payloads, -0, infinities, hours
 *     before 1970 and off the hour, fired rules, idents, contributions), one block's bytes are
 *     the layout apartment.h documents, built here by hand; every truncation, a trailing byte
 *     and a block read under another block's name are refused without touching the ring; a
 *     text slot and a block holding the same slot keep the newer half, in either order.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "apartment.h"
#include "hvs_test.h"
#include "rules.h"
#include "score.h"

#define HOUR HVS_MS_HOUR
#define T0 (1700000000000LL / HOUR * HOUR)

static sc_rule_conf_t conf;

typedef struct room_in {
    const char *name;
    double temp, setpoint, valve;
    int changes;
} room_in_t;

/* Hour k of apartment a: its aggregate half with these rooms and heating, then judged. */
static int put_hour(sc_apartment_t *a, int k, double heat, const room_in_t *rooms, int n) {
    hvs_ms_t h = T0 + (hvs_ms_t)k * HOUR;
    sc_agg_t *g = sc_agg_take(a, h);
    HVS_REQUIRE(g, "half of hour %d", k);
    g->rev = 0;
    g->heat_kwh = (float)heat;
    g->nrooms = 0;
    for (int i = 0; i < n; i++) {
        int ix = sc_room_intern(a, rooms[i].name);
        HVS_REQUIRE(ix >= 0, "room %s", rooms[i].name);
        g->rooms[g->nrooms++] = (sc_room_t){.name = (uint8_t)ix,
                                            .temp_mean = (float)rooms[i].temp,
                                            .setpoint = (float)rooms[i].setpoint,
                                            .valve = (float)rooms[i].valve,
                                            .changes = (uint16_t)rooms[i].changes,
                                            .seen = 4};
    }
    return sc_rules_judge(&conf, a, h);
}

static const sc_fired_t *fired(sc_apartment_t *a, int k, int rule) {
    sc_agg_t *g = sc_agg_get(a, T0 + (hvs_ms_t)k * HOUR);
    for (int i = 0; g && i < g->nfired; i++)
        if (g->fired[i].rule == rule)
            return &g->fired[i];
    return NULL;
}

/* A healthy neighbour room: at setpoint, valve modulating, its temperature changing. */
static room_in_t healthy(const char *name) { return (room_in_t){name, 20.0, 20.0, 35, 3}; }

/* Stuck valve (open, room cold and not warming, the apartment heating): fires at hour 5 (six
 * hours 0..5), strength 0.6 then rising 0.4/6 per hour to 1 at hour 11; the reason quotes the
 * valve, hours, temperature and setpoint. */
static void test_stuck_valve(void) {
    sc_apartment_t *a = sc_apartment_new("apt_1");
    for (int k = 0; k < 14; k++) {
        room_in_t r[2] = {{"living_room", 16.2, 21.0, 100, 1}, healthy("bedroom")};
        put_hour(a, k, 0.8, r, 2);
        const sc_fired_t *f = fired(a, k, SC_RULE_STUCK_VALVE);
        if (k < 5) {
            HVS_CHECK(!f, "hour %d: not yet", k);
            continue;
        }
        HVS_REQUIRE(f, "hour %d: stuck valve fired", k);
        HVS_CHECK_EQ_INT(f->hours, k + 1);
        double want = 0.6 + 0.4 * (k + 1 - 6) / 6.0;
        HVS_CHECK_NEAR(f->strength, want > 1 ? 1 : want, 1e-6);
    }
    const sc_fired_t *f = fired(a, 13, SC_RULE_STUCK_VALVE);
    char text[256];
    sc_rule_reason(a, f, text, sizeof text);
    HVS_CHECK_EQ_STR(text, "living room valve 100 % for 14 h, 16.2 °C vs setpoint 21.0 °C");
    HVS_CHECK_NEAR(sc_agg_get(a, T0 + 13 * HOUR)->rule_score, 1.0, 1e-6);
    /* a missing hour ends the run: hour 20 after a gap (hours 14..15 absent) starts again */
    for (int k = 16; k < 21; k++) {
        room_in_t r[2] = {{"living_room", 16.2, 21.0, 100, 1}, healthy("bedroom")};
        put_hour(a, k, 0.8, r, 2);
    }
    HVS_CHECK(!fired(a, 20, SC_RULE_STUCK_VALVE), "run restarted after the gap: 5 h < 6 h");
    sc_apartment_destroy(a);
}

/* Stuck open: the room well above setpoint with its valve still open. */
static void test_stuck_open_hot(void) {
    sc_apartment_t *a = sc_apartment_new("apt_2");
    for (int k = 0; k < 6; k++) {
        room_in_t r[2] = {{"kitchen", 24.0, 21.0, 60, 2}, healthy("bedroom")};
        put_hour(a, k, 1.2, r, 2);
    }
    const sc_fired_t *f = fired(a, 5, SC_RULE_STUCK_VALVE);
    HVS_REQUIRE(f, "stuck open fired");
    char text[256];
    sc_rule_reason(a, f, text, sizeof text);
    HVS_CHECK_EQ_STR(text, "kitchen 24.0 °C, 3.0 above setpoint 21.0 °C with valve 60 % for 6 h");
    sc_apartment_destroy(a);
}

/* A cold morning after the night set-back: valve 100 %, 2.5 degC below setpoint for 6 hours
 * but warming 0.6 degC an hour - the radiator works. No rule. */
static void test_warming_is_benign(void) {
    sc_apartment_t *a = sc_apartment_new("apt_3");
    for (int k = 0; k < 8; k++) {
        room_in_t r[2] = {{"living_room", 17.0 + 0.6 * k, 21.0, 100, 2}, healthy("bedroom")};
        put_hour(a, k, 1.5, r, 2);
        HVS_CHECK(!fired(a, k, SC_RULE_STUCK_VALVE) && !fired(a, k, SC_RULE_NO_HEAT_RESPONSE),
                  "hour %d: warming up is not a fault", k);
    }
    sc_apartment_destroy(a);
}

/* Radiators at capacity (a cold spell, or every setpoint raised): all rooms 2.5 degC short with
 * their valves open and the apartment heating hard - no room is colder than the others, so no
 * stuck valve. */
static void test_capacity_is_benign(void) {
    sc_apartment_t *a = sc_apartment_new("apt_3b");
    for (int k = 0; k < 10; k++) {
        room_in_t r[3] = {{"living_room", 20.5, 23.0, 100, 1},
                          {"bedroom", 19.6, 22.0, 100, 1},
                          {"kitchen", 20.4, 23.0, 100, 1}};
        put_hour(a, k, 2.5, r, 3);
        HVS_CHECK(!fired(a, k, SC_RULE_STUCK_VALVE), "hour %d: at capacity is not stuck", k);
    }
    sc_apartment_destroy(a);
}

/* No heat response: asked for heat (gap >= 2, valve open) and the apartment consumes none. */
static void test_no_heat_response(void) {
    sc_apartment_t *a = sc_apartment_new("apt_4");
    for (int k = 0; k < 7; k++) {
        room_in_t r[2] = {{"living_room", 17.5, 21.0, 80, 1}, {"bedroom", 16.0, 19.0, 90, 1}};
        put_hour(a, k, 0.0, r, 2);
    }
    const sc_fired_t *f = fired(a, 6, SC_RULE_NO_HEAT_RESPONSE);
    HVS_REQUIRE(f, "no heat response fired");
    HVS_CHECK_EQ_INT(f->hours, 7);
    HVS_CHECK(!fired(a, 6, SC_RULE_STUCK_VALVE), "no consumption: not a stuck valve");
    sc_apartment_destroy(a);
}

/* Flatline: a room's temperature unchanged for 12 hours while its neighbour's changes and its
 * setpoint was set back 2 degC. Not when the whole apartment is quiet (vacant), nor before 12
 * hours, nor for a steady room under a steady valve and setpoint. */
static void test_flatline(void) {
    sc_apartment_t *a = sc_apartment_new("apt_5");
    for (int k = 0; k < 12; k++) {
        room_in_t r[2] = {{"bedroom", 19.4, k < 4 ? 19.0 : 17.0, 10, 0}, healthy("living_room")};
        put_hour(a, k, 0.5, r, 2);
        HVS_CHECK((fired(a, k, SC_RULE_SENSOR_FLATLINE) != NULL) == (k == 11), "hour %d", k);
    }
    char text[256];
    sc_rule_reason(a, fired(a, 11, SC_RULE_SENSOR_FLATLINE), text, sizeof text);
    HVS_CHECK_EQ_STR(text, "bedroom temperature unchanged at 19.4 °C for 12 h");
    sc_apartment_destroy(a);

    sc_apartment_t *q = sc_apartment_new("apt_6"); /* vacant: nothing changes anywhere */
    for (int k = 0; k < 20; k++) {
        room_in_t r[2] = {{"bedroom", 15.0, 12.0, 0, 0}, {"living_room", 15.5, 12.0, 0, 0}};
        put_hour(q, k, 0.0, r, 2);
    }
    HVS_CHECK(!fired(q, 19, SC_RULE_SENSOR_FLATLINE), "a quiet apartment is not a flat sensor");
    sc_apartment_destroy(q);

    sc_apartment_t *w = sc_apartment_new("apt_6b"); /* steady: nothing asks the room to move */
    for (int k = 0; k < 20; k++) {
        room_in_t r[2] = {{"bedroom", 19.4, 19.0, 10, 0}, healthy("living_room")};
        put_hour(w, k, 0.5, r, 2);
    }
    HVS_CHECK(!fired(w, 19, SC_RULE_SENSOR_FLATLINE), "a steady room is not a flat sensor");
    sc_apartment_destroy(w);
}

/* Mismatch: a room reads 4 degC warmer (relative to setpoint) than its neighbours while its
 * valve is 70 % open: the radiator's thermostat thinks it is cold. Reading warm with the valve
 * closed (sun on the window) is consistent: no rule. */
static void test_mismatch(void) {
    sc_apartment_t *a = sc_apartment_new("apt_7");
    for (int k = 0; k < 6; k++) {
        room_in_t r[3] = {{"office", 24.5, 20.5, 70, 2}, healthy("bedroom"), healthy("kitchen")};
        put_hour(a, k, 0.7, r, 3);
    }
    const sc_fired_t *f = fired(a, 5, SC_RULE_SENSOR_MISMATCH);
    HVS_REQUIRE(f, "mismatch fired");
    HVS_CHECK_NEAR(f->d, 4.0, 1e-5); /* (24.5 - 20.5) - median(0, 0) */
    sc_apartment_destroy(a);

    sc_apartment_t *b = sc_apartment_new("apt_8");
    for (int k = 0; k < 8; k++) {
        room_in_t r[3] = {{"office", 24.5, 20.5, 0, 2}, healthy("bedroom"), healthy("kitchen")};
        put_hour(b, k, 0.4, r, 3);
    }
    HVS_CHECK(!fired(b, 7, SC_RULE_SENSOR_MISMATCH), "warm with the valve closed is consistent");
    HVS_CHECK(!fired(b, 7, SC_RULE_STUCK_VALVE), "and no stuck valve either");
    sc_apartment_destroy(b);

    /* two rooms, the living room broken cold: the healthy bedroom at its setpoint is 5 degC
     * "off its neighbour" but near its own setpoint - no mismatch for it */
    sc_apartment_t *c2 = sc_apartment_new("apt_8b");
    for (int k = 0; k < 8; k++) {
        room_in_t r[2] = {{"living_room", 16.0, 21.0, 100, 1}, {"bedroom", 20.0, 20.0, 25, 3}};
        put_hour(c2, k, 0.8, r, 2);
    }
    const sc_fired_t *m = fired(c2, 7, SC_RULE_SENSOR_MISMATCH);
    HVS_CHECK(!m || c2->names[m->room][0] == 'l', "the healthy bedroom is not flagged");
    sc_apartment_destroy(c2);
}

/* Consumption without demand: 0.5 kWh an hour while every valve is closed. */
static void test_consumption_without_demand(void) {
    sc_apartment_t *a = sc_apartment_new("apt_9");
    for (int k = 0; k < 6; k++) {
        room_in_t r[2] = {{"bedroom", 21.0, 20.0, 0, 2}, {"living_room", 21.5, 21.0, 2, 2}};
        put_hour(a, k, 0.5, r, 2);
    }
    const sc_fired_t *f = fired(a, 5, SC_RULE_CONSUMPTION_WITHOUT_DEMAND);
    HVS_REQUIRE(f, "consumption without demand fired");
    char text[256];
    sc_rule_reason(a, f, text, sizeof text);
    HVS_CHECK_EQ_STR(text, "heating 0.50 kWh per hour for 6 h with every valve closed");
    sc_apartment_destroy(a);
}

static void put_model(sc_apartment_t *a, int k, double obs, double exp) {
    sc_model_t *m = sc_model_take(a, T0 + (hvs_ms_t)k * HOUR);
    HVS_REQUIRE(m, "model half of hour %d", k);
    m->rev = 0;
    m->observed = (float)obs;
    m->expected = (float)exp;
}

static double z_of(const sc_score_conf_t *c, sc_apartment_t *a, int k, double *sum) {
    double s = NAN, e = NAN;
    double z = sc_residual_z(c, a, T0 + (hvs_ms_t)k * HOUR, &s, &e);
    if (sum)
        *sum = s;
    return z;
}

/* z = (r - median) / max(1.4826 MAD, floor) over the earlier windows of the ring; by hand with a
 * one-hour window, then why the window is six hours: a meter's lumps. */
static void test_residual_z(void) {
    sc_score_conf_t c;
    sc_score_conf_default(&c);
    HVS_CHECK_EQ_INT(c.window, 6);
    c.window = 1;
    sc_apartment_t *a = sc_apartment_new("apt_10");
    /* 30 earlier residuals: 0.1 * ((k % 5) - 2) -> values -0.2..0.2; median 0, MAD 0.1 */
    for (int k = 0; k < 30; k++)
        put_model(a, k, 1.0 + 0.1 * ((k % 5) - 2), 1.0);
    put_model(a, 30, 2.0, 1.0);
    double z = z_of(&c, a, 30, NULL);
    /* residuals (as floats, like the halves hold them): six each of -0.2, -0.1, 0, 0.1, 0.2;
     * median 0; absolute deviations: six 0, twelve 0.1, twelve 0.2 -> MAD = 0.1 */
    double med = (double)(float)(1.0 + 0.1 * 0) - 1.0;
    double mad = (double)(float)(1.0 + 0.1 * 1) - 1.0;
    HVS_CHECK_NEAR(z, (1.0 - med) / (1.4826 * mad), 1e-4);
    HVS_CHECK_NEAR(sc_residual_evidence(&c, z),
                   0.5 * ((fabs(z) - 3) / 3 > 1 ? 1 : (fabs(z) - 3) / 3), 1e-9);
    /* a constant history: the spread is the floor, 0.05 kWh */
    sc_apartment_t *b = sc_apartment_new("apt_11");
    for (int k = 0; k < 30; k++)
        put_model(b, k, 1.0, 1.0);
    put_model(b, 30, 1.5, 1.0);
    HVS_CHECK_NEAR(z_of(&c, b, 30, NULL), 0.5 / 0.05, 1e-6);
    /* too little history: NaN */
    sc_apartment_t *y = sc_apartment_new("apt_12");
    for (int k = 0; k < 10; k++)
        put_model(y, k, 1.0, 1.0);
    HVS_CHECK(isnan(z_of(&c, y, 9, NULL)), "9 earlier residuals < 24");

    /* A healthy flat whose meter reports in lumps: +0.6 kWh every third hour, -0.3 in between
     * (the model expects the smooth mean). Hour by hour it looks absurd (z 18); over six hours
     * it sums to nothing (z 0). A real excess of 0.5 kWh an hour for six hours sums to 3 kWh:
     * z = 3 / (0.05 x sqrt 6). */
    sc_apartment_t *l = sc_apartment_new("apt_13");
    for (int k = 0; k < 72; k++)
        put_model(l, k, 1.0 + (k % 3 == 0 ? 0.6 : -0.3), 1.0);
    HVS_CHECK_NEAR(z_of(&c, l, 69, NULL), (0.6 + 0.3) / 0.05, 1e-4);
    sc_score_conf_default(&c);
    double sum;
    HVS_CHECK_NEAR(z_of(&c, l, 71, &sum), 0.0, 1e-4);
    HVS_CHECK_NEAR(sum, 0.0, 1e-5);
    for (int k = 66; k < 72; k++)
        put_model(l, k, 1.0 + (k % 3 == 0 ? 0.6 : -0.3) + 0.5, 1.0);
    HVS_CHECK_NEAR(z_of(&c, l, 71, &sum), 3.0 / (0.05 * sqrt(6.0)), 1e-3);
    HVS_CHECK_NEAR(sum, 3.0, 1e-5);
    /* an hour of the window missing: no window residual */
    sc_model_take(l, T0 + 68 * HOUR)->observed = NAN;
    HVS_CHECK(isnan(z_of(&c, l, 71, &sum)) && isnan(sum), "incomplete window");
    sc_apartment_destroy(a);
    sc_apartment_destroy(b);
    sc_apartment_destroy(y);
    sc_apartment_destroy(l);
}

static void test_combine(void) {
    HVS_CHECK_NEAR(sc_combine(0, 0, 0), 0, 1e-12);
    HVS_CHECK_NEAR(sc_combine(0.6, 0, 0), 0.6, 1e-12);
    HVS_CHECK_NEAR(sc_combine(0.5, 0.5, 0.5), 0.875, 1e-12);
    HVS_CHECK_NEAR(sc_combine(NAN, 0.3, 2.0), 1.0, 1e-12); /* NaN is 0, > 1 is 1 */
}

static void test_slot_text(void) {
    sc_idents_t ids = {0};
    sc_apartment_t *a = sc_apartment_new("apt 1");
    for (int k = 0; k < 7; k++) {
        room_in_t r[2] = {{"living room", 16.25, 21.0, 100, 1}, {"bed_room", NAN, 19.0, 0, 0}};
        put_hour(a, k, 0.8, r, 2);
    }
    sc_model_t *m = sc_model_take(a, T0 + 6 * HOUR);
    m->rev = 6;
    m->observed = 0.8f;
    m->expected = 0.31f;
    m->residual_z = 4.5f;
    m->resid_w = 2.75f;
    m->res_ident = sc_ident_intern(&ids, "anomaly-residual/archetype:old poorly:3");
    m->explained = 1;
    m->ncontrib = 1;
    m->contrib[0] = (sc_contrib_t){37, -4.0f, 0.25f};
    const sc_slot_t *s = &a->slots[sc_slot_index(T0 + 6 * HOUR)];
    char text[4096];
    size_t n = sc_slot_encode(a, &ids, s, text, sizeof text);
    HVS_REQUIRE(n > 0, "encoded");
    sc_apartment_t *b = sc_apartment_new("apt 1");
    sc_idents_t ids2 = {0};
    HVS_REQUIRE(sc_slot_decode(b, &ids2, text, n) == 0, "decoded: %s", text);
    HVS_REQUIRE(sc_agg_get(b, T0 + 6 * HOUR) && sc_model_get(b, T0 + 6 * HOUR), "read back");
    const sc_slot_t *t = &b->slots[sc_slot_index(T0 + 6 * HOUR)];
    char again[4096];
    size_t n2 = sc_slot_encode(b, &ids2, t, again, sizeof again);
    HVS_CHECK(n2 == n && memcmp(text, again, n) == 0, "same text:\n%s\n%s", text, again);
    HVS_CHECK_EQ_STR(sc_ident_get(&ids2, t->model.res_ident),
                     "anomaly-residual/archetype:old poorly:3");
    HVS_CHECK(isnan(t->agg.rooms[1].temp_mean), "NaN kept");
    HVS_CHECK_EQ_INT(t->agg.nfired, s->agg.nfired);
    HVS_CHECK(!t->agg.live && !t->model.live, "live is not saved");
    HVS_CHECK(sc_slot_decode(b, &ids2, text, n - 3) != 0, "cut text refused");
    /* the halves evict on their own: a newer hour's model half leaves this hour's rooms */
    sc_model_take(b, T0 + (6 + SC_RING) * HOUR)->rev = 0;
    HVS_CHECK(sc_agg_get(b, T0 + 6 * HOUR) && !sc_model_get(b, T0 + 6 * HOUR),
              "the aggregate's half of hour 6 outlives its model half");
    HVS_CHECK(!sc_model_take(b, T0 + 6 * HOUR), "an hour older than the ring holds is refused");
    HVS_CHECK(sc_slot_decode(b, &ids2, "1 5 x", 5) != 0, "garbage refused");
    sc_apartment_destroy(a);
    sc_apartment_destroy(b);
    sc_idents_free(&ids);
    sc_idents_free(&ids2);
}

/* Every block of a, encoded (lens[k], bytes into out[k], SC_BLOCK_MAX_TEST each). */
#define SC_BLOCK_MAX_TEST 16384
static void encode_all(const sc_apartment_t *a, const sc_idents_t *t, char out[][SC_BLOCK_MAX_TEST],
                       size_t *lens) {
    for (size_t k = 0; k < SC_BLOCKS; k++) {
        lens[k] = sc_block_encode(a, t, k, out[k], SC_BLOCK_MAX_TEST);
        HVS_REQUIRE(lens[k] <= SC_BLOCK_MAX_TEST, "block %zu fits", k);
    }
}

static float bits_float(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* A ring with everything a slot holds, through blocks and back: the same bytes again, and the
 * values that text could not carry (NaN payloads, -0) bit for bit. */
static void test_blocks_round_trip(void) {
    sc_idents_t ids = {0};
    sc_apartment_t *a = sc_apartment_new("apt 1");
    for (int k = 0; k < SC_RING; k++) {
        room_in_t r[3] = {{"living room", 16.2 + 0.013 * k, 21.0, 100, k % 2},
                          {"bed_room", k % 5 ? 19.283333 : NAN, 19.0, k % 3 ? 35 : NAN, 3},
                          healthy("kitchen")};
        put_hour(a, k, k % 7 ? 0.8 + 0.001 * k : -0.0, r, 3);
        sc_model_t *m = sc_model_take(a, T0 + (hvs_ms_t)k * HOUR);
        m->rev = k;
        m->observed = k % 4 ? (float)(0.8 + 0.001 * k) : bits_float(0x7fc00123u);
        m->expected = k % 3 ? 0.31f : NAN;
        m->residual_z = k == 9 ? INFINITY : k == 10 ? -INFINITY : 4.5f / (float)(k + 1);
        m->resid_w = 2.75f;
        m->expected_w = bits_float(0xffc00000u);
        m->prob = k % 2 ? 0.125f : NAN;
        m->outdoor_c = -3.7f;
        m->e_res = 0.6f;
        m->e_cls = 1e-30f;
        m->res_ident = sc_ident_intern(&ids, k < 30 ? "anomaly-residual/global:2"
                                                    : "anomaly-residual/archetype:old poorly:3");
        m->cls_ident = k % 2 ? sc_ident_intern(&ids, "anomaly-classifier/global:7") : SC_IDENT_NONE;
        m->explained = (uint8_t)(k % 3);
        m->ncontrib = (uint8_t)(k % 4);
        for (int i = 0; i < m->ncontrib; i++)
            m->contrib[i] = (sc_contrib_t){(int16_t)(i * 17), -4.0f + (float)i / 3, 0.25f * i};
        m->live = true;
    }
    /* a newer hour's model half evicts only that half of slot 5's hour */
    sc_model_take(a, T0 + (5 + SC_RING) * HOUR)->rev = 2;
    int fired_total = 0;
    for (int i = 0; i < SC_RING; i++) {
        a->slots[i].agg.live = a->slots[i].model.live = false;
        fired_total += a->slots[i].agg.nfired;
    }
    HVS_REQUIRE(fired_total > 0, "some rule fired in the ring");
    static char one[SC_BLOCKS][SC_BLOCK_MAX_TEST], two[SC_BLOCKS][SC_BLOCK_MAX_TEST];
    size_t l1[SC_BLOCKS], l2[SC_BLOCKS];
    encode_all(a, &ids, one, l1);
    sc_idents_t ids2 = {0};
    sc_ident_intern(&ids2, "something else:1"); /* other indices: the names travel, not indices */
    sc_apartment_t *b = sc_apartment_new("apt 1");
    for (size_t k = SC_BLOCKS; k-- > 0;) /* any order */
        HVS_REQUIRE(sc_block_decode(b, &ids2, k, one[k], l1[k]) == 0, "block %zu decoded", k);
    encode_all(b, &ids2, two, l2);
    for (size_t k = 0; k < SC_BLOCKS; k++)
        HVS_CHECK(l1[k] == l2[k] && memcmp(one[k], two[k], l1[k]) == 0, "block %zu: same bytes", k);
    const sc_model_t *m0 = sc_model_get(b, T0);
    HVS_REQUIRE(m0, "hour 0's model half");
    uint32_t nb;
    memcpy(&nb, &m0->observed, sizeof nb);
    HVS_CHECK(nb == 0x7fc00123u, "a NaN payload kept: %08x", nb);
    HVS_CHECK(signbit(sc_agg_get(b, T0)->heat_kwh) && sc_agg_get(b, T0)->heat_kwh == 0, "-0 kept");
    HVS_CHECK_EQ_STR(sc_ident_get(&ids2, sc_model_get(b, T0 + 40 * HOUR)->res_ident),
                     "anomaly-residual/archetype:old poorly:3");
    HVS_CHECK(sc_model_get(b, T0 + 9 * HOUR)->residual_z == INFINITY, "infinity kept");
    HVS_CHECK(!sc_model_get(b, T0 + 5 * HOUR) && sc_agg_get(b, T0 + 5 * HOUR) &&
                  sc_model_get(b, T0 + (5 + SC_RING) * HOUR),
              "the halves of slot 5 keep their own hours");
    HVS_CHECK_EQ_INT(b->nnames, 3);
    HVS_CHECK(!b->slots[0].agg.live && !b->slots[0].model.live, "live is not saved");
    /* hours before 1970 and off the hour */
    sc_apartment_t *c = sc_apartment_new("apt 2");
    sc_agg_take(c, -5 * HOUR)->rev = 1;
    sc_model_take(c, T0 + 2 * HOUR + 1234)->rev = 0;
    sc_model_take(c, -(hvs_ms_t)SC_RING * 1000 * HOUR)->rev = 7;
    static char three[SC_BLOCKS][SC_BLOCK_MAX_TEST], four[SC_BLOCKS][SC_BLOCK_MAX_TEST];
    size_t l3[SC_BLOCKS], l4[SC_BLOCKS];
    encode_all(c, &ids, three, l3);
    sc_apartment_t *d = sc_apartment_new("apt 2");
    for (size_t k = 0; k < SC_BLOCKS; k++)
        HVS_REQUIRE(sc_block_decode(d, &ids2, k, three[k], l3[k]) == 0, "block %zu decoded", k);
    encode_all(d, &ids2, four, l4);
    for (size_t k = 0; k < SC_BLOCKS; k++)
        HVS_CHECK(l3[k] == l4[k] && memcmp(three[k], four[k], l3[k]) == 0,
                  "edge hours, block %zu: same bytes", k);
    HVS_CHECK(sc_agg_get(d, -5 * HOUR) && sc_model_get(d, T0 + 2 * HOUR + 1234) &&
                  sc_model_get(d, -(hvs_ms_t)SC_RING * 1000 * HOUR),
              "hours before 1970 and off the hour read back");
    sc_apartment_destroy(a), sc_apartment_destroy(b), sc_apartment_destroy(c);
    sc_apartment_destroy(d);
    sc_idents_free(&ids), sc_idents_free(&ids2);
}

/* One slot's block, byte by byte as apartment.h documents it. */
static void test_block_layout(void) {
    sc_idents_t ids = {0};
    sc_apartment_t *a = sc_apartment_new("apt");
    const hvs_ms_t h = (6558LL * SC_RING + 1) * HOUR; /* slot 1, ring cycle 6558 */
    sc_agg_t *g = sc_agg_take(a, h);
    g->rev = 3;
    g->heat_kwh = 0.5f;
    g->rule_score = 0;
    g->nrooms = 1;
    g->rooms[0] = (sc_room_t){.name = (uint8_t)sc_room_intern(a, "kitchen"),
                              .temp_mean = 21.5f,
                              .setpoint = 21.0f,
                              .valve = 40.0f,
                              .changes = 2,
                              .seen = 4};
    sc_model_t *m = sc_model_take(a, h);
    m->rev = 0;
    m->observed = 0.5f;
    m->res_ident = sc_ident_intern(&ids, "m:1");
    m->explained = 1;
    m->ncontrib = 1;
    m->contrib[0] = (sc_contrib_t){5, 1.5f, -0.25f};
    static const unsigned char head[] = {
        0x01, 0x00,                                          /* format 1, block 0 */
        0x01, 0x07, 'k',  'i',  't',  'c',  'h',  'e',  'n', /* one room name */
        0x01, 0x03, 'm',  ':',  '1',                         /* one ident */
        0x00,                                                /* slot 0: empty */
        0x03,                                                /* slot 1: both halves */
        0xbc, 0x66, 0x04, 0x51, 0x00, 0x01,                  /* cycle 6558, rev 3, 0.5, 0, 1 room */
        0x00, 0xf1, 0x1a, 0xd0, 0x02, 0x80, 0x05,       /* kitchen 21.5, setpoint 21, valve 40 */
        0x02, 0x04, 0x00,                               /* changes 2, seen 4, no rules */
        0xbc, 0x66, 0x01, 0x51,                         /* cycle 6558, rev 0, observed 0.5 */
        0x05, 0x05, 0x05, 0x05, 0x05, 0x05, 0x00, 0x00, /* six unknowns, no evidence */
        0x01, 0x00, 0x01, 0x01,                         /* ident m:1, none, explained 1, 1 */
        0x06, 0xf1, 0x01, 0x8a, 0x03,                   /* feature 5, 1.5, -0.25 */
    };
    unsigned char want[sizeof head + 22];
    memcpy(want, head, sizeof head);
    memset(want + sizeof head, 0, 22); /* slots 2..23: empty */
    char got[512];
    size_t n = sc_block_encode(a, &ids, 0, got, sizeof got);
    HVS_CHECK(n == sizeof want && memcmp(got, want, n) == 0, "the documented bytes (%zu of %zu)", n,
              sizeof want);
    /* every truncation, a trailing byte and another block's name: refused, the ring untouched */
    sc_apartment_t *b = sc_apartment_new("apt");
    int refused = 0;
    for (size_t k = 0; k < n; k++)
        refused += sc_block_decode(b, &ids, 0, got, k) != 0;
    HVS_CHECK(refused == (int)n, "truncations refused: %d of %zu", refused, n);
    got[n] = 0;
    HVS_CHECK(sc_block_decode(b, &ids, 0, got, n + 1) != 0, "a trailing byte refused");
    HVS_CHECK(sc_block_decode(b, &ids, 1, got, n) != 0, "block 0's bytes as block 1 refused");
    HVS_CHECK(sc_block_decode(b, &ids, SC_BLOCKS, got, n) != 0, "a block past the ring refused");
    HVS_CHECK(b->nnames == 0 && !sc_agg_get(b, h) && !sc_model_get(b, h), "ring untouched");
    HVS_CHECK(sc_block_decode(b, &ids, 0, got, n) == 0 && sc_agg_get(b, h) && sc_model_get(b, h),
              "the whole block reads");
    sc_apartment_destroy(a), sc_apartment_destroy(b);
    sc_idents_free(&ids);
}

/* During an upgrade a slot may be stored as text and in a block: the newer half wins, whichever
 * loads first. */
static void test_text_and_block_merge(void) {
    sc_rule_conf_default(&conf);
    sc_idents_t ids = {0};
    sc_apartment_t *old = sc_apartment_new("apt"), *cur = sc_apartment_new("apt");
    room_in_t r[1] = {{"hall", 20.0, 20.0, 30, 2}};
    put_hour(old, 3, 0.4, r, 1);
    put_hour(cur, 3 + SC_RING, 0.9, r, 1); /* the same slot, a ring later */
    sc_model_take(old, T0 + 3 * HOUR)->rev = 4;
    sc_model_take(cur, T0 + (3 + SC_RING) * HOUR)->rev = 1;
    char text[4096], block[SC_BLOCK_MAX_TEST];
    const size_t s = sc_slot_index(T0 + 3 * HOUR), k = s / SC_BLOCK_HOURS;
    size_t tn = sc_slot_encode(old, &ids, &old->slots[s], text, sizeof text);
    size_t bn = sc_block_encode(cur, &ids, k, block, sizeof block);
    for (int order = 0; order < 2; order++) {
        sc_apartment_t *x = sc_apartment_new("apt");
        if (order == 0)
            HVS_REQUIRE(sc_slot_decode(x, &ids, text, tn) == 0 &&
                            sc_block_decode(x, &ids, k, block, bn) == 0,
                        "text then block");
        else
            HVS_REQUIRE(sc_block_decode(x, &ids, k, block, bn) == 0 &&
                            sc_slot_decode(x, &ids, text, tn) == 0,
                        "block then text");
        HVS_CHECK(sc_agg_get(x, T0 + (3 + SC_RING) * HOUR) && !sc_agg_get(x, T0 + 3 * HOUR),
                  "order %d: the newer aggregate half", order);
        HVS_CHECK(sc_model_get(x, T0 + (3 + SC_RING) * HOUR) && !sc_model_get(x, T0 + 3 * HOUR),
                  "order %d: the newer model half", order);
        sc_apartment_destroy(x);
    }
    /* the same hour: the higher revision wins */
    sc_apartment_t *y = sc_apartment_new("apt");
    sc_model_take(y, T0 + 3 * HOUR)->rev = 9;
    bn = sc_block_encode(y, &ids, k, block, sizeof block);
    for (int order = 0; order < 2; order++) {
        sc_apartment_t *x = sc_apartment_new("apt");
        if (order == 0)
            sc_slot_decode(x, &ids, text, tn), sc_block_decode(x, &ids, k, block, bn);
        else
            sc_block_decode(x, &ids, k, block, bn), sc_slot_decode(x, &ids, text, tn);
        const sc_model_t *m = sc_model_get(x, T0 + 3 * HOUR);
        HVS_CHECK(m && m->rev == 9, "order %d: revision 9 over 4 (%d)", order, m ? m->rev : -1);
        HVS_CHECK(sc_agg_get(x, T0 + 3 * HOUR), "order %d: the text's aggregate half kept", order);
        sc_apartment_destroy(x);
    }
    sc_apartment_destroy(old), sc_apartment_destroy(cur), sc_apartment_destroy(y);
    sc_idents_free(&ids);
}

static void setup(void) { sc_rule_conf_default(&conf); }

static void run_stuck(void) { setup(), test_stuck_valve(); }
static void run_open(void) { setup(), test_stuck_open_hot(); }
static void run_warm(void) { setup(), test_warming_is_benign(); }
static void run_nohr(void) { setup(), test_no_heat_response(); }
static void run_capacity(void) { setup(), test_capacity_is_benign(); }
static void run_flat(void) { setup(), test_flatline(); }
static void run_mismatch(void) { setup(), test_mismatch(); }
static void run_demand(void) { setup(), test_consumption_without_demand(); }
static void run_text(void) { setup(), test_slot_text(); }

static void run_blocks(void) { setup(), test_blocks_round_trip(); }

static const hvs_test_case_t cases[] = {
    {"stuck_valve", run_stuck},
    {"stuck_open_hot", run_open},
    {"warming_is_benign", run_warm},
    {"capacity_is_benign", run_capacity},
    {"no_heat_response", run_nohr},
    {"flatline", run_flat},
    {"mismatch", run_mismatch},
    {"consumption_without_demand", run_demand},
    {"residual_z", test_residual_z},
    {"combine", test_combine},
    {"slot_text", run_text},
    {"blocks_round_trip", run_blocks},
    {"block_layout", test_block_layout},
    {"text_and_block_merge", test_text_and_block_merge},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
