/* fleet.c - drawing the fleet and its episodes from the seed (see fleet.h). */
#include "fleet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)
#define YEAR_DAYS 365.25

/* Loss per m2 and time constants give ~120 / ~30 / ~8 kWh/m2a of space heat a year on the Swiss plateau once
 * internal and solar gains are counted (measured: see the README's simulator section). */
static const sim_archetype_t archetypes[SIM_ARCH_COUNT] = {
    [SIM_ARCH_MODERN] = {"modern_high_density", "standard", 0.62, 0.45, 0.70, 60, 40, 66, 1995,
                         2018, 0.22},
    [SIM_ARCH_OLD] = {"old_poorly_insulated", "poor", 1.10, 0.70, 0.0, 35, 16, 48, 1935, 1975,
                      0.16},
    [SIM_ARCH_PASSIVE] = {"passive", "passive", 0.38, 0.40, 0.85, 150, 12, 32, 2008, 2022, 0.28},
};

const sim_archetype_t *sim_archetype(sim_archetype_kind_t k) {
    return (unsigned)k < SIM_ARCH_COUNT ? &archetypes[k] : NULL;
}

static const char *const episode_names[SIM_EP_COUNT] = {
    [SIM_EP_STUCK_VALVE] = "stuck_valve",
    [SIM_EP_NO_HEAT_RESPONSE] = "no_heat_response",
    [SIM_EP_SENSOR_FLATLINE] = "sensor_flatline",
    [SIM_EP_SENSOR_DRIFT] = "sensor_drift",
    [SIM_EP_SENSOR_NOISE] = "sensor_noise",
    [SIM_EP_EFFICIENCY_LOSS] = "efficiency_loss",
    [SIM_EP_VACATION] = "vacation",
    [SIM_EP_GUESTS] = "guests",
    [SIM_EP_MANUAL_OVERRIDE] = "manual_override",
    [SIM_EP_NIGHT_SHIFT] = "night_shift",
    [SIM_EP_MOVE_IN] = "move_in",
};

const char *sim_episode_name(sim_episode_kind_t k) {
    return (unsigned)k < SIM_EP_COUNT ? episode_names[k] : "unknown";
}

bool sim_episode_is_fault(sim_episode_kind_t k) { return k < SIM_EP_FAULT_COUNT; }

void sim_fleet_params_default(sim_fleet_params_t *p) {
    memset(p, 0, sizeof *p);
    p->seed = 1;
    p->buildings = 10;
    p->new_building_fraction = 0.2;
    p->fault_rate = 0.6;
    p->vacation_rate = 3;
    p->guest_rate = 4;
    p->override_rate = 3;
    p->night_shift_fraction = 0.05;
    p->regions = "CH-ZH,CH-BE,CH-BS,CH-LU,CH-VD,CH-GE";
    p->teams = 2;
}

/* Towns of the Swiss plateau for each region: buildings scatter a few km around them. */
static const struct {
    const char *region;
    double lat, lon;
} towns[] = {
    {"CH-ZH", 47.377, 8.540}, {"CH-BE", 46.948, 7.447}, {"CH-BS", 47.558, 7.588},
    {"CH-LU", 47.050, 8.309}, {"CH-VD", 46.520, 6.633}, {"CH-GE", 46.204, 6.143},
    {"CH-TI", 46.004, 8.951}, {"CH", 47.000, 7.900},    {"DE-BY", 47.700, 9.700},
};

static int town_of(const char *region) {
    for (size_t i = 0; i < sizeof towns / sizeof towns[0]; i++)
        if (strcmp(towns[i].region, region) == 0)
            return (int)i;
    return -1;
}

/* Split the comma-separated region list into up to 16 known regions. */
static int parse_regions(const char *list, char out[][8], int max, hvs_err_t *err) {
    int n = 0;
    const char *p = list ? list : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[16];
        if (len == 0 || len >= sizeof name || len >= 8)
            return hvs_err_set(err, HVS_EINVAL, "bad_value", "regions: bad entry in \"%.60s\"",
                               list);
        memcpy(name, p, len);
        name[len] = '\0';
        if (town_of(name) < 0)
            return hvs_err_set(err, HVS_EINVAL, "bad_value",
                               "regions: no town known for \"%s\" (known: CH-ZH CH-BE CH-BS "
                               "CH-LU CH-VD CH-GE CH-TI CH DE-BY)",
                               name);
        if (n == max)
            break;
        memcpy(out[n++], name, len + 1);
        p += len + (comma ? 1 : 0);
    }
    if (n == 0)
        return hvs_err_set(err, HVS_EINVAL, "bad_value", "regions: none given");
    return n;
}

static hvs_ms_t days_ms(double d) { return (hvs_ms_t)(d * (double)DAY_MS); }

static hvs_ms_t year_start_ms(int year) {
    /* Days from 1970-01-01 to year-01-01 (proleptic Gregorian). */
    long days = 0;
    for (int y = 1970; y < year; y++)
        days += (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 366 : 365;
    return (hvs_ms_t)days * DAY_MS;
}

/* Room layout by number of rooms: living room first, bathrooms warmer, bedrooms cooler. */
static const struct {
    const char *name;
    double share;   /* of the apartment's floor */
    double comfort; /* offset from the household's preference */
} room_kinds[SIM_MAX_ROOMS] = {
    {"living_room", 0.36, 0.0}, {"bedroom", 0.22, -1.0},   {"kitchen", 0.16, -0.5},
    {"bathroom", 0.08, 1.0},    {"bedroom_2", 0.18, -1.0},
};

static void make_room(const sim_archetype_t *arch, const sim_building_t *b, sim_apartment_t *a,
                      int k, double area_total, double share_sum, sim_rng_t *rng) {
    sim_room_t *r = &a->rooms[k];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", room_kinds[k].name);
    r->area_m2 = area_total * room_kinds[k].share / share_sum;
    r->window_m2 = r->area_m2 * arch->window_ratio * sim_rng_uniform(rng, 0.7, 1.3);
    if (k == 3)
        r->window_m2 *= 0.3; /* bathrooms: a small window, if any */
    /* Top and ground floors lose more through roof and floor slab. */
    int top = (int)((b->napartments + 3) / 4);
    double exposure = (a->floor == 0 || a->floor >= top) ? 1.3 : 1.0;
    double trans = arch->loss_w_per_k_m2 * r->area_m2 * exposure * exp(0.15 * sim_rng_normal(rng));
    r->h_vent = 0.34 * arch->ach * r->area_m2 * 2.5;
    r->h_out = trans + r->h_vent * (1.0 - a->heat_recovery);
    r->h_in = 6.0 + 0.4 * r->area_m2;
    /* Neighbours above, below and beside keep an empty flat from cooling far: it is why a
     * vacation shows near-zero heating in a block. Less contact on the top and ground floors. */
    r->h_nb = (exposure > 1.0 ? 0.9 : 1.5) * r->area_m2;
    r->cap_j_per_k = (r->h_out + r->h_nb) * arch->tau_h * 3600.0 * sim_rng_uniform(rng, 0.85, 1.15);
    /* Radiators are sized for -8 degC outside with a margin: old systems generously. */
    double margin = b->archetype == SIM_ARCH_OLD ? 1.8 : 1.4;
    r->q_max_w = fmax(250.0, margin * r->h_out * 29.0);
    r->solar_factor = sim_rng_uniform(rng, 0.12, 0.32); /* orientation x shading x g-value */
    r->comfort_offset_c = room_kinds[k].comfort + 0.4 * sim_rng_normal(rng);
    r->sensor_bias_c = 0.15 * sim_rng_normal(rng);
    r->flat_value_c = NAN;
    r->temp_c = 20.0 + sim_rng_uniform(rng, -0.5, 0.5);
    r->setpoint_c = 20.0;
    r->reported_temp_c = r->temp_c;
    r->sent_temp = r->sent_setpoint = r->sent_valve = NAN;
}

static void add_episode(sim_apartment_t *a, sim_episode_kind_t kind, int room, hvs_ms_t start,
                        hvs_ms_t end, double level) {
    if (a->nepisodes >= SIM_MAX_EPISODES)
        return;
    a->episodes[a->nepisodes++] = (sim_episode_t){
        .kind = (uint8_t)kind, .room = (int8_t)room, .start = start, .end = end, .level = level};
}

/* Does [start, end) meet a household episode (vacation, guests, override) already planned? */
static bool meets_household_episode(const sim_apartment_t *a, hvs_ms_t start, hvs_ms_t end) {
    for (int i = 0; i < a->nepisodes; i++) {
        const sim_episode_t *e = &a->episodes[i];
        if (e->kind >= SIM_EP_VACATION && e->kind <= SIM_EP_MANUAL_OVERRIDE && e->start < end &&
            start < e->end)
            return true;
    }
    return false;
}

/* Poisson-many episodes of one kind over [from, to), each with its duration and level. */
static void plan_kind(sim_apartment_t *a, sim_rng_t *rng, sim_episode_kind_t kind, double per_year,
                      hvs_ms_t from, hvs_ms_t to) {
    if (per_year <= 0 || to <= from)
        return;
    double years = (double)(to - from) / (double)DAY_MS / YEAR_DAYS;
    int n = sim_rng_poisson(rng, per_year * years);
    for (int i = 0; i < n; i++) {
        hvs_ms_t start = from + (hvs_ms_t)(sim_rng_u01(rng) * (double)(to - from));
        start -= start % (15 * 60 * 1000);
        double days = 1, level = 0;
        int room = -1;
        switch (kind) {
        case SIM_EP_STUCK_VALVE:
            days = sim_rng_uniform(rng, 2, 20), level = sim_rng_uniform(rng, 0.6, 1.0);
            room = sim_rng_int(rng, 0, a->nrooms - 1);
            break;
        case SIM_EP_NO_HEAT_RESPONSE:
            days = sim_rng_uniform(rng, 2, 14);
            room = sim_rng_int(rng, 0, a->nrooms - 1);
            break;
        case SIM_EP_SENSOR_FLATLINE:
            days = sim_rng_uniform(rng, 2, 20);
            room = sim_rng_int(rng, 0, a->nrooms - 1);
            break;
        case SIM_EP_SENSOR_DRIFT:
            days = sim_rng_uniform(rng, 5, 30);
            level = sim_rng_uniform(rng, 0.2, 0.8) * (sim_rng_bernoulli(rng, 0.5) ? 1 : -1);
            room = sim_rng_int(rng, 0, a->nrooms - 1);
            break;
        case SIM_EP_SENSOR_NOISE:
            days = sim_rng_uniform(rng, 1, 5), level = sim_rng_uniform(rng, 1.5, 3.0);
            room = sim_rng_int(rng, 0, a->nrooms - 1);
            break;
        case SIM_EP_EFFICIENCY_LOSS:
            days = sim_rng_uniform(rng, 21, 75), level = sim_rng_uniform(rng, 0.05, 0.25);
            break;
        case SIM_EP_VACATION: days = sim_rng_uniform(rng, 4, 21); break;
        case SIM_EP_GUESTS:
            days = sim_rng_uniform(rng, 2, 7), level = sim_rng_int(rng, 1, 3);
            break;
        case SIM_EP_MANUAL_OVERRIDE:
            days = sim_rng_uniform(rng, 1, 4), level = sim_rng_uniform(rng, 24, 26);
            break;
        default: return;
        }
        hvs_ms_t end = start + days_ms(days);
        end -= end % (15 * 60 * 1000);
        /* One household plan at a time: nobody has guests or overrides while away. */
        if (!sim_episode_is_fault(kind) && meets_household_episode(a, start, end))
            continue;
        add_episode(a, kind, room, start, end, level);
    }
}

static int cmp_episode(const void *x, const void *y) {
    const sim_episode_t *a = x, *b = y;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return (int)a->kind - (int)b->kind;
}

static void plan_episodes(const sim_fleet_params_t *p, sim_building_t *b, sim_apartment_t *a,
                          sim_rng_t *rng) {
    hvs_ms_t from = a->occupied_since > p->start ? a->occupied_since : p->start;
    /* Faults: one Poisson process split over the kinds; efficiency loss only where there is
     * heat recovery to lose. */
    static const double weights[SIM_EP_FAULT_COUNT] = {0.25, 0.2, 0.15, 0.15, 0.1, 0.15};
    double total = 0;
    for (int k = 0; k < SIM_EP_FAULT_COUNT; k++)
        total += (k == SIM_EP_EFFICIENCY_LOSS && a->heat_recovery <= 0) ? 0 : weights[k];
    for (int k = 0; k < SIM_EP_FAULT_COUNT; k++) {
        if (k == SIM_EP_EFFICIENCY_LOSS && a->heat_recovery <= 0)
            continue;
        plan_kind(a, rng, (sim_episode_kind_t)k, p->fault_rate * weights[k] / total, from, p->end);
    }
    plan_kind(a, rng, SIM_EP_VACATION, p->vacation_rate, from, p->end);
    /* Christmas with the family: a third of households leave for a few days. */
    for (int y = 1970 + (int)((double)from / (double)DAY_MS / YEAR_DAYS) - 1;
         year_start_ms(y) < p->end; y++) {
        hvs_ms_t leave = year_start_ms(y + 1) - days_ms(9 - sim_rng_uniform(rng, 0, 2.5));
        leave -= leave % (15 * 60 * 1000);
        hvs_ms_t back = leave + days_ms(sim_rng_uniform(rng, 3, 10));
        back -= back % (15 * 60 * 1000);
        if (sim_rng_bernoulli(rng, 0.35) && leave >= from && leave < p->end &&
            !meets_household_episode(a, leave, back))
            add_episode(a, SIM_EP_VACATION, -1, leave, back, 0);
    }
    plan_kind(a, rng, SIM_EP_GUESTS, p->guest_rate, from, p->end);
    plan_kind(a, rng, SIM_EP_MANUAL_OVERRIDE, p->override_rate, from, p->end);
    if (a->household == SIM_HH_NIGHT)
        add_episode(a, SIM_EP_NIGHT_SHIFT, -1, from, p->end, 0);
    if (b->commissioned > p->start && a->occupied_since < p->end)
        add_episode(a, SIM_EP_MOVE_IN, -1, a->occupied_since, a->occupied_since + days_ms(14), 0);
    qsort(a->episodes, (size_t)a->nepisodes, sizeof a->episodes[0], cmp_episode);
}

static void make_apartment(const sim_fleet_params_t *p, sim_building_t *b, uint32_t i) {
    const sim_archetype_t *arch = &archetypes[b->archetype];
    sim_apartment_t *a = &b->apartments[i];
    memset(a, 0, sizeof *a);
    sim_rng_t rng;
    uint64_t key = sim_hash3(p->seed, 0xa9a97e77ULL, ((uint64_t)b->index << 20) | i);
    sim_rng_seed(&rng, key);
    sim_rng_seed(&a->rng, sim_hash2(key, 0x52554eULL));
    a->index = i;
    snprintf(a->id, sizeof a->id, "apt_%03u_%03u", b->index + 1, i + 1);
    a->floor = (int)(i / 4);
    a->nrooms = sim_rng_int(&rng, 2, SIM_MAX_ROOMS);
    a->area_m2 = (22.0 + 18.0 * a->nrooms) * sim_rng_uniform(&rng, 0.85, 1.2);
    double u = sim_rng_u01(&rng);
    if (u < p->night_shift_fraction)
        a->household = SIM_HH_NIGHT;
    else if (u < p->night_shift_fraction + 0.40)
        a->household = SIM_HH_WORKING;
    else if (u < p->night_shift_fraction + 0.70)
        a->household = a->nrooms >= 3 ? SIM_HH_FAMILY : SIM_HH_WORKING;
    else
        a->household = SIM_HH_RETIRED;
    switch (a->household) {
    case SIM_HH_FAMILY: a->persons = sim_rng_int(&rng, 3, 5); break;
    default: a->persons = sim_rng_int(&rng, 1, 2); break;
    }
    a->comfort_c = fmin(24.0, fmax(19.0, 21.2 + 0.8 * sim_rng_normal(&rng)));
    a->night_setback_c = sim_rng_bernoulli(&rng, 0.6) ? sim_rng_uniform(&rng, 1.5, 3.0) : 0.0;
    a->day_setback = a->household == SIM_HH_WORKING && sim_rng_bernoulli(&rng, 0.25);
    {
        /* Own stream, so that adding the set-back times left every other draw as it was.
         * Thermostats are programmed in quarter hours. */
        sim_rng_t sb;
        sim_rng_seed(&sb, sim_hash2(key, 0x53455442ULL));
        a->setback_from_h = floor(sim_rng_uniform(&sb, 21.5, 23.5) * 4.0) / 4.0;
        a->setback_to_h = floor(sim_rng_uniform(&sb, 5.0, 7.5) * 4.0) / 4.0;
    }
    a->airing_rate = sim_rng_uniform(&rng, 0.3, 2.0);
    a->water_l_per_person = sim_rng_uniform(&rng, 30, 55);
    a->heat_recovery = arch->heat_recovery > 0
                           ? arch->heat_recovery * sim_rng_uniform(&rng, 0.92, 1.05)
                           : 0.0;
    if (a->heat_recovery > 0.92)
        a->heat_recovery = 0.92;
    /* Move-ins: in a building commissioned during the run, apartments fill over ~4 months;
     * elsewhere everyone lives there already. A few stay empty. */
    if (b->commissioned > p->start)
        a->occupied_since = b->commissioned + days_ms(sim_rng_exponential(&rng, 35.0)) +
                            days_ms(sim_rng_uniform(&rng, 3, 10));
    else
        a->occupied_since = b->commissioned;
    if (sim_rng_bernoulli(&rng, 0.03))
        a->occupied_since = p->end + DAY_MS; /* empty all run: kept at the minimum setpoint */
    a->occupied_since -= a->occupied_since % (15 * 60 * 1000);
    double share_sum = 0;
    for (int k = 0; k < a->nrooms; k++)
        share_sum += room_kinds[k].share;
    for (int k = 0; k < a->nrooms; k++)
        make_room(arch, b, a, k, a->area_m2, share_sum, &rng);
    /* Counters of meters installed long ago are not at zero. */
    if (b->commissioned <= p->start) {
        double age_years = (double)(p->start - b->commissioned) / (double)DAY_MS / YEAR_DAYS;
        if (age_years > 15)
            age_years = 15; /* meters are replaced every ~15 years */
        a->heat_kwh = floor(age_years * a->area_m2 * 60.0 * sim_rng_uniform(&rng, 0.7, 1.3));
        a->water_l = floor(age_years * a->persons * 40.0 * 365.0 * sim_rng_uniform(&rng, 0.7, 1.3));
    }
    a->sent_heat = a->sent_water = NAN;
    a->last_sent = INT64_MIN;
    plan_episodes(p, b, a, &rng);
}

int sim_fleet_new(const sim_fleet_params_t *p, sim_fleet_t **out, hvs_err_t *err) {
    if (p->buildings < 1 || p->buildings > 1000)
        return hvs_err_set(err, HVS_EINVAL, "bad_value", "buildings: %d not in 1..1000",
                           p->buildings);
    if (p->apartments_per_building < 0 || p->apartments_per_building > 500)
        return hvs_err_set(err, HVS_EINVAL, "bad_value",
                           "apartments per building: %d not in 0..500", p->apartments_per_building);
    if (p->teams < 0 || p->teams > 26)
        return hvs_err_set(err, HVS_EINVAL, "bad_value", "teams: %d not in 0..26", p->teams);
    if (p->end <= p->start)
        return hvs_err_set(err, HVS_EINVAL, "bad_value", "the simulated period is empty");
    char regions[16][8];
    int nregions = parse_regions(p->regions, regions, 16, err);
    if (nregions < 0)
        return nregions;

    sim_fleet_t *f = calloc(1, sizeof *f);
    if (!f)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    f->params = *p;
    f->params.regions = NULL; /* not kept: the caller's string */
    f->buildings = calloc((size_t)p->buildings, sizeof *f->buildings);
    if (!f->buildings) {
        free(f);
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    }
    f->nbuildings = (uint32_t)p->buildings;
    for (uint32_t i = 0; i < f->nbuildings; i++) {
        sim_building_t *b = &f->buildings[i];
        sim_rng_t rng;
        sim_rng_seed(&rng, sim_hash3(p->seed, 0xb1d9ULL, i));
        b->index = i;
        snprintf(b->id, sizeof b->id, "bldg_%03u", i + 1);
        /* no draw from the stream: the fleet is the same whatever the number of teams */
        if (p->teams > 0)
            snprintf(b->team, sizeof b->team, "team-%c", 'a' + (int)(i % (uint32_t)p->teams));
        /* The first three cover every archetype; then 40 % modern, 40 % old, 20 % passive. */
        double u = sim_rng_u01(&rng);
        b->archetype = i < 3 ? (sim_archetype_kind_t)i
                             : (u < 0.4   ? SIM_ARCH_MODERN
                                : u < 0.8 ? SIM_ARCH_OLD
                                          : SIM_ARCH_PASSIVE);
        const sim_archetype_t *arch = &archetypes[b->archetype];
        const char *region = regions[sim_rng_int(&rng, 0, nregions - 1)];
        snprintf(b->region, sizeof b->region, "%s", region);
        int t = town_of(region);
        b->latitude = towns[t].lat + sim_rng_uniform(&rng, -0.05, 0.05);
        b->longitude = towns[t].lon + sim_rng_uniform(&rng, -0.07, 0.07);
        b->construction_year = sim_rng_int(&rng, arch->year_min, arch->year_max);
        bool is_new = i > 0 && sim_rng_bernoulli(&rng, p->new_building_fraction);
        if (is_new) {
            /* Commissioned in the first half of the run: the cold-start case. */
            hvs_ms_t c = p->start +
                         (hvs_ms_t)(sim_rng_uniform(&rng, 0.05, 0.5) * (double)(p->end - p->start));
            b->commissioned = c - c % DAY_MS;
            int year = 1970 + (int)((double)b->commissioned / (double)DAY_MS / YEAR_DAYS);
            b->construction_year = year;
            if (b->archetype == SIM_ARCH_OLD)
                b->archetype = SIM_ARCH_MODERN; /* nobody builds old buildings */
            arch = &archetypes[b->archetype];
        } else {
            b->commissioned = year_start_ms(b->construction_year + 1);
        }
        b->napartments = p->apartments_per_building > 0
                             ? (uint32_t)p->apartments_per_building
                             : (uint32_t)sim_rng_int(&rng, arch->apartments_min,
                                                     arch->apartments_max);
        int rc = hvs_calendar_new(b->region, &b->calendar, err);
        if (rc != HVS_OK) {
            sim_fleet_destroy(f);
            return rc;
        }
        b->apartments = calloc(b->napartments, sizeof *b->apartments);
        if (!b->apartments) {
            sim_fleet_destroy(f);
            return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
        }
        for (uint32_t k = 0; k < b->napartments; k++) {
            make_apartment(p, b, k);
            b->heated_area_m2 += b->apartments[k].area_m2;
        }
        f->napartments += b->napartments;
    }
    *out = f;
    return HVS_OK;
}

void sim_fleet_destroy(sim_fleet_t *f) {
    if (!f)
        return;
    for (uint32_t i = 0; i < f->nbuildings; i++) {
        free(f->buildings[i].apartments);
        hvs_calendar_destroy(f->buildings[i].calendar);
    }
    free(f->buildings);
    free(f);
}

void sim_episode_label(const sim_building_t *b, const sim_apartment_t *a, const sim_episode_t *e,
                       sim_label_t *out) {
    sim_episode_kind_t k = (sim_episode_kind_t)e->kind;
    *out = (sim_label_t){
        .building = (int32_t)b->index,
        .apartment = (int32_t)a->index,
        .room = e->room,
        .category = sim_episode_is_fault(k) ? "fault" : "benign",
        .type = sim_episode_name(k),
        .start = e->start,
        .end = e->end,
        .magnitude = e->level,
    };
}
