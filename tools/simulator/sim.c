/* sim.c - the 15-minute step of every room, meter and sensor (see sim.h). */
#include "sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)
#define NEIGHBOUR_TEMP_C 20.5 /* the typical flat next door */

struct sim {
    sim_fleet_t *fleet;
    sim_conf_t conf;
    sim_delivery_t *delivery;
    const sim_label_sink_t *labels;
    sim_stats_t stats;
    hvs_ms_t last_t;
    hvs_ms_t *shock_day; /* per building: the UTC day whose shocks were labelled */
};

void sim_conf_default(sim_conf_t *c, uint64_t seed) {
    memset(c, 0, sizeof *c);
    sim_weather_conf_default(&c->weather, seed);
    c->elevation_m = 430;
    c->temp_deadband_c = 0.2;
    c->valve_deadband_pct = 10;
    c->heartbeat_ms = 6 * HOUR_MS;
    c->valve_sensors = true;
    c->variability = 1.0;
}

int sim_new(sim_fleet_t *fleet, const sim_conf_t *conf, sim_delivery_t *delivery,
            const sim_label_sink_t *labels, sim_t **out, hvs_err_t *err) {
    sim_t *s = calloc(1, sizeof *s);
    if (!s)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    s->shock_day = calloc(fleet->nbuildings, sizeof *s->shock_day);
    if (!s->shock_day) {
        free(s);
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    }
    for (uint32_t i = 0; i < fleet->nbuildings; i++)
        s->shock_day[i] = INT64_MIN;
    s->fleet = fleet;
    s->conf = *conf;
    s->delivery = delivery;
    s->labels = labels;
    s->last_t = INT64_MIN;
    *out = s;
    return HVS_OK;
}

void sim_destroy(sim_t *s) {
    if (!s)
        return;
    free(s->shock_day);
    free(s);
}

const sim_stats_t *sim_get_stats(const sim_t *s) { return &s->stats; }
const sim_conf_t *sim_get_conf(const sim_t *s) { return &s->conf; }

bool sim_episode_active(const sim_episode_t *e, hvs_ms_t t) { return t >= e->start && t < e->end; }

/* What the calendar and the household say about one local hour. */
typedef struct presence {
    double home; /* share of the household at home, 0..1 */
    bool awake;
} presence_t;

static bool in_span(double h, double from, double to) {
    return from <= to ? (h >= from && h < to) : (h >= from || h < to);
}

/*
 * The household's presence at local hour h. `free_day` = weekend, holiday or a bridge day
 * taken off; `school` = a school day for the children.
 */
static presence_t household_presence(sim_household_kind_t hh, double h, bool free_day,
                                     bool school) {
    presence_t p = {1.0, true};
    switch (hh) {
    case SIM_HH_WORKING:
        p.awake = !in_span(h, free_day ? 23.5 : 23.0, free_day ? 8.0 : 6.5);
        if (!free_day && in_span(h, 7.5, 17.5))
            p.home = 0.05;
        else if (free_day && in_span(h, 10.0, 18.0))
            p.home = 0.6;
        break;
    case SIM_HH_FAMILY:
        p.awake = !in_span(h, 22.5, free_day ? 7.5 : 6.5);
        if (!free_day) {
            if (in_span(h, 7.5, 12.0))
                p.home = school ? 0.1 : 0.45;
            else if (in_span(h, 12.0, 15.5))
                p.home = school ? 0.3 : 0.45;
            else if (in_span(h, 15.5, 17.5))
                p.home = 0.55;
        } else if (in_span(h, 10.0, 17.0)) {
            p.home = 0.65;
        }
        break;
    case SIM_HH_RETIRED:
        p.awake = !in_span(h, 22.5, 7.0);
        if (in_span(h, 9.5, 11.5) || in_span(h, 14.0, 16.0))
            p.home = 0.6;
        break;
    case SIM_HH_NIGHT:
        if (!free_day) {
            p.awake = !in_span(h, 8.0, 15.0);
            if (in_span(h, 20.5, 7.0))
                p.home = 0.02;
        } else {
            p.awake = !in_span(h, 2.0, 10.0);
        }
        break;
    default: break;
    }
    return p;
}

/* Share of the day's hot water drawn in the hour starting at h (sums to ~1 over a day). */
static double water_shape(double h, bool awake) {
    if (!awake)
        return 0.004;
    if (in_span(h, 6.0, 9.0))
        return 0.11;
    if (in_span(h, 17.0, 22.0))
        return 0.075;
    if (in_span(h, 9.0, 17.0))
        return 0.022;
    return 0.03;
}

static double quantise(double v, double step) { return round(v / step) * step; }

static void emit_labels(sim_t *s, sim_building_t *b, sim_apartment_t *a, hvs_ms_t t) {
    for (int e = 0; e < a->nepisodes; e++) {
        sim_episode_t *ep = &a->episodes[e];
        if (ep->labelled || ep->start > t)
            continue;
        ep->labelled = true;
        sim_label_t l;
        sim_episode_label(b, a, ep, &l);
        sim_label_emit(s->labels, &l);
        s->stats.labels++;
    }
}

static void emit_shocks(sim_t *s, sim_building_t *b, hvs_ms_t t) {
    hvs_ms_t day = t - t % DAY_MS;
    if (s->shock_day[b->index] == day)
        return;
    s->shock_day[b->index] = day;
    sim_label_t shocks[8];
    int n = sim_weather_shocks(&s->conf.weather, b->latitude, b->longitude, day, day + DAY_MS,
                               shocks, 8);
    for (int i = 0; i < n && i < 8; i++) {
        shocks[i].building = (int32_t)b->index;
        sim_label_emit(s->labels, &shocks[i]);
        s->stats.labels++;
    }
}

typedef struct step_ctx {
    hvs_ms_t t, mid;
    double dt; /* seconds */
    sim_weather_t w;
    double local_hour;
    hvs_day_info_t day;
} step_ctx_t;

/* Active episode effects on one apartment at instant t. */
typedef struct effects {
    bool vacation;
    int guests;
    double override_c;                                 /* 0 = none */
    double heat_recovery;                              /* effective */
    const sim_episode_t *room_fault[SIM_MAX_ROOMS][3]; /* valve/radiator, sensor */
} effects_t;

static void collect_effects(const sim_apartment_t *a, hvs_ms_t t, effects_t *fx) {
    memset(fx, 0, sizeof *fx);
    fx->heat_recovery = a->heat_recovery;
    for (int e = 0; e < a->nepisodes; e++) {
        const sim_episode_t *ep = &a->episodes[e];
        if (ep->start > t)
            break; /* sorted by start */
        if (!sim_episode_active(ep, t))
            continue;
        switch ((sim_episode_kind_t)ep->kind) {
        case SIM_EP_VACATION: fx->vacation = true; break;
        case SIM_EP_GUESTS: fx->guests += (int)ep->level; break;
        case SIM_EP_MANUAL_OVERRIDE: fx->override_c = ep->level; break;
        case SIM_EP_EFFICIENCY_LOSS: {
            /* Falls linearly over the first half of the episode, then stays low. */
            double ramp = 0.5 * (double)(ep->end - ep->start);
            double f = fmin(1.0, (double)(t - ep->start) / ramp);
            double eff = a->heat_recovery - (a->heat_recovery - ep->level) * f;
            if (eff < fx->heat_recovery)
                fx->heat_recovery = eff;
            break;
        }
        case SIM_EP_STUCK_VALVE:
        case SIM_EP_NO_HEAT_RESPONSE:
            if (ep->room >= 0 && ep->room < SIM_MAX_ROOMS)
                fx->room_fault[ep->room][0] = ep;
            break;
        case SIM_EP_SENSOR_FLATLINE:
        case SIM_EP_SENSOR_DRIFT:
        case SIM_EP_SENSOR_NOISE:
            if (ep->room >= 0 && ep->room < SIM_MAX_ROOMS)
                fx->room_fault[ep->room][1] = ep;
            break;
        default: break;
        }
    }
}

static void add_value(sim_record_t *r, sim_sensor_t sensor, int room, double v) {
    if (r->n >= SIM_MAX_VALUES)
        return;
    r->v[r->n].sensor = (uint8_t)sensor;
    r->v[r->n].room = (int8_t)room;
    r->v[r->n].value = v;
    r->n++;
}

static int step_apartment(sim_t *s, sim_building_t *b, sim_apartment_t *a, const step_ctx_t *c,
                          hvs_err_t *err) {
    const sim_conf_t *conf = &s->conf;
    sim_rng_t *rng = &a->rng;
    effects_t fx;
    collect_effects(a, c->t, &fx);
    bool occupied = c->t >= a->occupied_since && !fx.vacation;

    /* Presence: a bridge day is taken off by about half the households. */
    bool bridge_off = c->day.bridge_day &&
                      sim_noise_u01(sim_hash3(s->fleet->params.seed, (uint64_t)c->t / DAY_MS,
                                              ((uint64_t)b->index << 20) | a->index)) < 0.5;
    bool free_day = !c->day.workday || bridge_off;
    bool school = c->day.workday && !c->day.school_holiday;
    presence_t p = household_presence((sim_household_kind_t)a->household, c->local_hour, free_day,
                                      school);
    if (!occupied)
        p.home = 0, p.awake = false;
    double people = (a->persons + fx.guests) * p.home;
    double var = conf->variability;

    /* Internal gains: people (~100 W awake, 70 W asleep), appliances, cooking peaks. */
    double gains = people * (p.awake ? 100.0 : 70.0) + a->area_m2 * (occupied ? 1.5 : 0.3);
    if (occupied && p.awake && p.home > 0.3)
        gains += a->area_m2 * 2.5;
    if (occupied && p.home > 0.3 && in_span(c->local_hour, 17.5, 19.5))
        gains += 450.0;
    gains *= exp(0.35 * var * sim_rng_normal(rng));

    /* Window airing: a few short bursts a day while someone is home and awake. */
    if (occupied && p.awake && p.home > 0.3 && a->airing_left_h <= 0) {
        double per_step = a->airing_rate * var / 64.0 *
                          (in_span(c->local_hour, 6.0, 9.5) ? 2.5 : 1.0);
        if (sim_rng_bernoulli(rng, per_step))
            a->airing_left_h = sim_rng_uniform(rng, 0.15, 0.6);
    }
    double airing_h = a->airing_left_h > 0 ? 45.0 * fmin(1.0, a->airing_left_h / 0.25) : 0.0;
    a->airing_left_h -= c->dt / 3600.0;

    /* Apartment mean temperature of the last step, for the coupling between rooms. */
    double t_apt = 0, area = 0;
    for (int k = 0; k < a->nrooms; k++) {
        t_apt += a->rooms[k].temp_c * a->rooms[k].area_m2;
        area += a->rooms[k].area_m2;
    }
    t_apt /= area;

    double heat_j = 0;
    for (int k = 0; k < a->nrooms; k++) {
        sim_room_t *r = &a->rooms[k];
        double share = r->area_m2 / area;
        /* Setpoint schedule. */
        double sp = a->comfort_c + r->comfort_offset_c;
        bool asleep_hours = a->household == SIM_HH_NIGHT && !free_day
                                ? in_span(c->local_hour, 8.0, 15.0)
                                : in_span(c->local_hour, a->setback_from_h, a->setback_to_h);
        if (a->night_setback_c > 0 && asleep_hours)
            sp -= a->night_setback_c;
        if (a->day_setback && p.home < 0.2 && p.awake)
            sp -= 2.0;
        if (fx.override_c > 0)
            sp = fx.override_c;
        if (c->t < a->occupied_since)
            sp = 17.0; /* empty: kept from freezing and drying out */
        if (fx.vacation)
            sp = 6.0; /* the valve's frost-protection mark */
        r->setpoint_c = quantise(fmin(30.0, fmax(5.0, sp)), 0.5);

        /* Thermostatic valve: proportional on the true temperature, band 1.5 K. */
        double valve = (r->setpoint_c + 0.5 - r->temp_c) / 1.5;
        valve = fmin(1.0, fmax(0.0, valve));
        double q_heat = valve * r->q_max_w;
        const sim_episode_t *hw = fx.room_fault[k][0];
        if (hw && hw->kind == SIM_EP_STUCK_VALVE) {
            valve = hw->level;
            q_heat = valve * r->q_max_w;
        } else if (hw && hw->kind == SIM_EP_NO_HEAT_RESPONSE) {
            q_heat = 0.0; /* air-locked or blocked: the valve opens, nothing comes */
        }
        r->valve = valve;

        double room_gains = gains * share;
        if (k == 0 && p.awake)
            room_gains *= 1.4; /* the living room gets the evening */
        double q_sol = c->w.shortwave_radiation_wm2 * r->window_m2 * r->solar_factor;
        double h_out = r->h_out + r->h_vent * (a->heat_recovery - fx.heat_recovery);
        if (k < 2)
            h_out += airing_h * share * 2.0;
        double g = h_out + r->h_in + r->h_nb;
        double t_eq = (h_out * c->w.temperature_c + r->h_in * t_apt + r->h_nb * NEIGHBOUR_TEMP_C +
                       q_sol + room_gains + q_heat) /
                      g;
        r->temp_c = t_eq + (r->temp_c - t_eq) * exp(-g * c->dt / r->cap_j_per_k);
        heat_j += q_heat * c->dt;

        /* What the room sensor says. */
        double reported = r->temp_c + r->sensor_bias_c;
        const sim_episode_t *sf = fx.room_fault[k][1];
        if (!sf) {
            r->flat_value_c = NAN;
        } else if (sf->kind == SIM_EP_SENSOR_FLATLINE) {
            if (isnan(r->flat_value_c))
                r->flat_value_c = r->reported_temp_c;
            reported = r->flat_value_c;
        } else if (sf->kind == SIM_EP_SENSOR_DRIFT) {
            reported += sf->level * (double)(c->t - sf->start) / (double)DAY_MS;
        } else if (sf->kind == SIM_EP_SENSOR_NOISE) {
            reported += sf->level * sim_rng_normal(rng);
        }
        r->reported_temp_c = fmin(60.0, fmax(-30.0, quantise(reported, 0.1)));
    }
    a->heat_kwh += heat_j / 3.6e6;

    /* Hot water: Poisson-many draws of ~12 l around the day's shape. */
    if (occupied && people > 0) {
        double litres = (a->persons + fx.guests) * a->water_l_per_person *
                        water_shape(c->local_hour, p.awake) * (c->dt / 3600.0) *
                        fmin(1.0, p.home * 1.3);
        int draws = sim_rng_poisson(rng, litres / 12.0);
        for (int i = 0; i < draws; i++)
            a->water_l += fmin(90.0, sim_rng_exponential(rng, 12.0));
    }

    s->stats.heat_kwh[b->archetype] += heat_j / 3.6e6;
    s->stats.area_years[b->archetype] += a->area_m2 * c->dt / (365.25 * 86400.0);

    /* Change-based reporting. */
    sim_record_t rec;
    rec.building = b->index;
    rec.apartment = a->index;
    rec.timestamp = rec.measured_at = c->t;
    rec.n = 0;
    rec.corrupt = SIM_CORRUPT_NONE;
    rec.duplicate = 0;
    bool all = !a->started || (conf->heartbeat_ms > 0 && c->t - a->last_sent >= conf->heartbeat_ms);
    double heat_q = floor(a->heat_kwh * 10.0 + 1e-9) / 10.0;
    double water_q = floor(a->water_l * 10.0 + 1e-9) / 10.0;
    int sensors = 2 + a->nrooms * (conf->valve_sensors ? 3 : 2);
    s->stats.values_sampled += (uint64_t)sensors;
    if (all || heat_q != a->sent_heat)
        add_value(&rec, SIM_S_HEAT_KWH, -1, heat_q), a->sent_heat = heat_q;
    if (all || water_q != a->sent_water)
        add_value(&rec, SIM_S_HOT_WATER_L, -1, water_q), a->sent_water = water_q;
    for (int k = 0; k < a->nrooms; k++) {
        sim_room_t *r = &a->rooms[k];
        if (all || fabs(r->reported_temp_c - r->sent_temp) >= conf->temp_deadband_c - 1e-9)
            add_value(&rec, SIM_S_ROOM_TEMP, k, r->reported_temp_c),
                r->sent_temp = r->reported_temp_c;
        if (all || r->setpoint_c != r->sent_setpoint)
            add_value(&rec, SIM_S_SETPOINT, k, r->setpoint_c), r->sent_setpoint = r->setpoint_c;
        if (conf->valve_sensors) {
            double vq = round(r->valve * 100.0);
            if (all || fabs(vq - r->sent_valve) >= conf->valve_deadband_pct ||
                ((vq == 0 || vq == 100) && vq != r->sent_valve))
                add_value(&rec, SIM_S_VALVE, k, vq), r->sent_valve = vq;
        }
    }
    if (rec.n == 0)
        return HVS_OK;
    a->started = true;
    if (all)
        a->last_sent = c->t;
    s->stats.records++;
    s->stats.values_sent += rec.n;
    return sim_delivery_push(s->delivery, &rec, err);
}

int sim_step(sim_t *s, hvs_ms_t t, hvs_err_t *err) {
    if (t % SIM_STEP_MS != 0)
        return hvs_err_set(err, HVS_EINVAL, "bad_value", "step at %lld: not a multiple of 15 min",
                           (long long)t);
    step_ctx_t c = {.t = t, .mid = t - SIM_STEP_MS / 2, .dt = SIM_STEP_MS / 1000.0};
    for (uint32_t i = 0; i < s->fleet->nbuildings; i++) {
        sim_building_t *b = &s->fleet->buildings[i];
        if (t < b->commissioned)
            continue;
        emit_shocks(s, b, t);
        sim_weather_observed(&s->conf.weather, b->latitude, b->longitude, s->conf.elevation_m,
                             c.mid, &c.w);
        c.local_hour = hvs_calendar_local_hour(b->calendar, c.mid);
        hvs_calendar_day(b->calendar, c.mid, &c.day);
        for (uint32_t k = 0; k < b->napartments; k++) {
            sim_apartment_t *a = &b->apartments[k];
            emit_labels(s, b, a, t);
            int rc = step_apartment(s, b, a, &c, err);
            if (rc != HVS_OK)
                return rc;
        }
    }
    s->stats.steps++;
    s->last_t = t;
    return HVS_OK;
}
