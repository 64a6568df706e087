/*
 * rules.c - the scorer's physics rules (rules.h).
 */
#include "rules.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR HVS_MS_HOUR
#define WARMING_C 0.5 /* a room that warmed more than this over the run is being heated */
#define MISMATCH_VALVE 20.0
/* A flat sensor must contradict what drives its room: a thermostatic valve is proportional on
 * the room's temperature (a band of 1-2 K), so a valve that moved 30 points in the run moved
 * with some 0.5 K of real temperature; a setpoint moved 1 K sends the valve to an end stop.
 * Either way a working sensor reporting changes of 0.1-0.2 K must have changed. */
#define FLAT_DRIVE_VALVE 30.0
#define FLAT_DRIVE_SETPOINT_C 1.0

void sc_rule_conf_default(sc_rule_conf_t *c) {
    *c = (sc_rule_conf_t){.valve_open = 90,
                          .valve_half = 50,
                          .valve_closed = 5,
                          .stuck_open_min = 30,
                          .stuck_below_c = 2.0,
                          .stuck_above_c = 1.5,
                          .no_response_gap_c = 2.0,
                          .mismatch_c = 3.0,
                          .no_heat_kwh = 0.05,
                          .demand_kwh = 0.3,
                          .stuck_hours = 6,
                          .no_response_hours = 6,
                          .flatline_hours = 12,
                          .mismatch_hours = 6,
                          .demand_hours = 6};
}

static const char *const rule_names[SC_RULE_COUNT] = {"stuck_valve", "no_heat_response",
                                                      "sensor_flatline", "sensor_mismatch",
                                                      "consumption_without_demand"};

const char *sc_rule_name(int rule) {
    return rule >= 0 && rule < SC_RULE_COUNT ? rule_names[rule] : "?";
}

/* The hour's aggregate half, or NULL when the ring does not hold it. */
static const sc_agg_t *agg_at(sc_apartment_t *a, hvs_ms_t h) { return sc_agg_get(a, h); }

static const sc_room_t *room_of(const sc_agg_t *g, int name) {
    for (int i = 0; i < g->nrooms; i++)
        if (g->rooms[i].name == name)
            return &g->rooms[i];
    return NULL;
}

static double gap(const sc_room_t *r) { /* setpoint - temperature: > 0 the room is cold */
    return (double)r->setpoint - (double)r->temp_mean;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* The room's distance to its setpoint minus its neighbours' median; NaN without neighbours. */
static double neighbour_dev(const sc_agg_t *g, const sc_room_t *r) {
    double d[SC_ROOMS];
    int n = 0;
    for (int i = 0; i < g->nrooms; i++) {
        const sc_room_t *o = &g->rooms[i];
        if (o != r && isfinite(gap(o)))
            d[n++] = -gap(o);
    }
    if (n == 0 || !isfinite(gap(r)))
        return NAN;
    qsort(d, (size_t)n, sizeof d[0], cmp_double);
    double med = n % 2 ? d[n / 2] : (d[n / 2 - 1] + d[n / 2]) / 2;
    return -gap(r) - med;
}

enum { C_STUCK_COLD, C_STUCK_HOT, C_STUCK_CLOSED, C_NO_RESPONSE, C_FLAT, C_MISMATCH, C_N };

static bool condition(const sc_rule_conf_t *c, int which, const sc_agg_t *g, const sc_room_t *r) {
    double v = r->valve, heat = g->heat_kwh;
    switch (which) {
    case C_STUCK_COLD: {
        /* colder than its neighbours too: when every room is short of its setpoint with open
         * valves the radiators are at capacity (a cold spell, a raised setpoint), not stuck */
        double dev = neighbour_dev(g, r);
        return v >= c->valve_open && gap(r) >= c->stuck_below_c && heat > c->no_heat_kwh &&
               !(dev > -c->stuck_below_c);
    }
    case C_STUCK_HOT: return v >= c->stuck_open_min && -gap(r) >= c->stuck_above_c;
    case C_STUCK_CLOSED: return v <= c->valve_closed && gap(r) >= c->no_response_gap_c;
    case C_NO_RESPONSE:
        return v >= c->valve_half && gap(r) >= c->no_response_gap_c && heat <= c->no_heat_kwh;
    case C_FLAT: return r->changes == 0 && isfinite(r->temp_mean);
    case C_MISMATCH: {
        /* far from its own setpoint AND from its neighbours, the same way, while its valve
         * (driven by the radiator's own thermostat) says the opposite */
        double dev = neighbour_dev(g, r), own = -gap(r);
        if (!(fabs(dev) >= c->mismatch_c) || !(fabs(own) >= c->mismatch_c) ||
            (dev > 0) != (own > 0))
            return false;
        return dev > 0 ? v >= MISMATCH_VALVE : v <= MISMATCH_VALVE;
    }
    }
    return false;
}

static int rule_of(int which) {
    switch (which) {
    case C_NO_RESPONSE: return SC_RULE_NO_HEAT_RESPONSE;
    case C_FLAT: return SC_RULE_SENSOR_FLATLINE;
    case C_MISMATCH: return SC_RULE_SENSOR_MISMATCH;
    default: return SC_RULE_STUCK_VALVE;
    }
}

static int hours_needed(const sc_rule_conf_t *c, int which) {
    switch (which) {
    case C_NO_RESPONSE: return c->no_response_hours;
    case C_FLAT: return c->flatline_hours;
    case C_MISMATCH: return c->mismatch_hours;
    default: return c->stuck_hours;
    }
}

static float strength(int run, int need) {
    double s = 0.6 + 0.4 * (double)(run - need) / (double)need;
    return (float)(s > 1 ? 1 : s);
}

/* Keep the strongest SC_FIRED_MAX (ties: rule, then room: a fixed order). */
static void keep(sc_agg_t *g, const sc_fired_t *f) {
    int n = g->nfired;
    int pos = n;
    while (pos > 0) {
        const sc_fired_t *o = &g->fired[pos - 1];
        bool before = f->strength > o->strength ||
                      (f->strength == o->strength &&
                       (f->rule < o->rule || (f->rule == o->rule && f->room < o->room)));
        if (!before)
            break;
        pos--;
    }
    if (pos >= SC_FIRED_MAX)
        return;
    if (n == SC_FIRED_MAX)
        n--;
    memmove(&g->fired[pos + 1], &g->fired[pos], (size_t)(n - pos) * sizeof g->fired[0]);
    g->fired[pos] = *f;
    g->nfired = (uint8_t)(n + 1);
}

/* One room and condition: how long it has held back from `hour`, and extra checks on the run. */
static void judge_room(const sc_rule_conf_t *c, sc_apartment_t *a, hvs_ms_t hour, int which,
                       const sc_room_t *now, sc_agg_t *g) {
    int need = hours_needed(c, which);
    if (need <= 0)
        return;
    int run = 0;
    double first_temp = NAN, other_changes = 0, heat_sum = 0;
    double vmin = INFINITY, vmax = -INFINITY, smin = INFINITY, smax = -INFINITY;
    int others = 0;
    for (int k = 0; k < SC_RING; k++) {
        const sc_agg_t *h = agg_at(a, hour - (hvs_ms_t)k * HOUR);
        const sc_room_t *r = h ? room_of(h, now->name) : NULL;
        if (!r || !condition(c, which, h, r))
            break;
        run++;
        first_temp = r->temp_mean;
        if (isfinite(r->valve))
            vmin = fmin(vmin, r->valve), vmax = fmax(vmax, r->valve);
        if (isfinite(r->setpoint))
            smin = fmin(smin, r->setpoint), smax = fmax(smax, r->setpoint);
        if (isfinite(h->heat_kwh))
            heat_sum += h->heat_kwh;
        for (int i = 0; i < h->nrooms; i++)
            if (h->rooms[i].name != now->name) {
                other_changes += h->rooms[i].changes;
                others = 1;
            }
    }
    if (run < need)
        return;
    if (which == C_STUCK_COLD && (double)now->temp_mean - first_temp > WARMING_C)
        return; /* warming up: a cold morning after a set-back, not a stuck valve */
    if (which == C_NO_RESPONSE && (double)now->temp_mean - first_temp > WARMING_C)
        return;
    if (which == C_FLAT && (others ? other_changes < run / 2.0 : !(heat_sum > 0)))
        return; /* the whole apartment is quiet: nobody home, or silent devices */
    if (which == C_FLAT && !(vmax - vmin >= FLAT_DRIVE_VALVE) &&
        !(smax - smin >= FLAT_DRIVE_SETPOINT_C))
        return; /* a steady room under a steady valve: nothing asked its temperature to move */
    sc_fired_t f = {.rule = (uint8_t)rule_of(which),
                    .room = (int8_t)now->name,
                    .hours = (uint8_t)(run > 255 ? 255 : run),
                    .variant = (uint8_t)which,
                    .strength = strength(run, need),
                    .a = now->valve,
                    .b = now->temp_mean,
                    .c = now->setpoint,
                    .d = which == C_MISMATCH ? (float)neighbour_dev(g, now) : g->heat_kwh};
    keep(g, &f);
}

/* consumption_without_demand: the apartment as a whole. */
static void judge_demand(const sc_rule_conf_t *c, sc_apartment_t *a, hvs_ms_t hour, sc_agg_t *g) {
    int need = c->demand_hours;
    if (need <= 0)
        return;
    int run = 0;
    for (int k = 0; k < SC_RING; k++) {
        const sc_agg_t *h = agg_at(a, hour - (hvs_ms_t)k * HOUR);
        if (!h || !(h->heat_kwh >= c->demand_kwh))
            break;
        int valves = 0, closed = 0;
        for (int i = 0; i < h->nrooms; i++)
            if (isfinite(h->rooms[i].valve)) {
                valves++;
                closed += h->rooms[i].valve <= c->valve_closed;
            }
        if (valves == 0 || closed != valves)
            break;
        run++;
    }
    if (run < need)
        return;
    sc_fired_t f = {.rule = SC_RULE_CONSUMPTION_WITHOUT_DEMAND,
                    .room = -1,
                    .variant = C_N,
                    .hours = (uint8_t)(run > 255 ? 255 : run),
                    .strength = strength(run, need),
                    .a = NAN,
                    .b = NAN,
                    .c = NAN,
                    .d = g->heat_kwh};
    keep(g, &f);
}

int sc_rules_judge(const sc_rule_conf_t *c, sc_apartment_t *a, hvs_ms_t hour) {
    sc_agg_t *g = sc_agg_get(a, hour);
    if (!g)
        return 0;
    g->nfired = 0;
    g->rule_score = 0;
    for (int i = 0; i < g->nrooms; i++)
        for (int which = 0; which < C_N; which++)
            judge_room(c, a, hour, which, &g->rooms[i], g);
    judge_demand(c, a, hour, g);
    if (g->nfired)
        g->rule_score = g->fired[0].strength;
    return g->nfired;
}

/* A room name for people: underscores as spaces. */
static void room_label(const sc_apartment_t *a, int room, char *out, size_t cap) {
    snprintf(out, cap, "%s", room >= 0 && room < a->nnames ? a->names[room] : "apartment");
    for (char *p = out; *p; p++)
        if (*p == '_')
            *p = ' ';
}

size_t sc_rule_reason(const sc_apartment_t *a, const sc_fired_t *f, char *buf, size_t cap) {
    char room[SC_ROOM_NAME];
    room_label(a, f->room, room, sizeof room);
    int n;
    switch (f->variant) {
    case C_STUCK_COLD:
    case C_STUCK_CLOSED:
        n = snprintf(buf, cap, "%s valve %.0f %% for %d h, %.1f °C vs setpoint %.1f °C", room, f->a,
                     f->hours, f->b, f->c);
        break;
    case C_STUCK_HOT:
        n = snprintf(buf, cap,
                     "%s %.1f °C, %.1f above setpoint %.1f °C with valve %.0f %% for %d h", room,
                     f->b, f->b - f->c, f->c, f->a, f->hours);
        break;
    case C_NO_RESPONSE:
        n = snprintf(buf, cap,
                     "%s %.1f °C vs setpoint %.1f °C for %d h, valve %.0f %%, apartment heating "
                     "%.2f kWh",
                     room, f->b, f->c, f->hours, f->a, f->d);
        break;
    case C_FLAT:
        n = snprintf(buf, cap, "%s temperature unchanged at %.1f °C for %d h", room, f->b,
                     f->hours);
        break;
    case C_MISMATCH:
        n = snprintf(buf, cap,
                     "%s reads %.1f °C (setpoint %.1f °C), %+.1f °C off its neighbours, valve "
                     "%.0f %%",
                     room, f->b, f->c, f->d, f->a);
        break;
    default:
        n = snprintf(buf, cap, "heating %.2f kWh per hour for %d h with every valve closed", f->d,
                     f->hours);
    }
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}
