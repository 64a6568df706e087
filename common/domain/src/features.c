/* features.c - the one feature definition (see hvs/features.h for the rules). */
#include "hvs/features.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define H HVS_MS_HOUR

static const char *const names[HVS_FEATURES_COUNT] = {
    "horizon_h",
    "hour",
    "weekday",
    "month",
    "is_weekend",
    "hour_sin",
    "hour_cos",
    "weekday_sin",
    "weekday_cos",
    "doy_sin",
    "doy_cos",
    "is_holiday",
    "is_bridge_day",
    "is_school_holiday",
    "is_christmas_period",
    "days_until_holiday",
    "days_since_holiday",
    "use_lag_24",
    "use_lag_48",
    "use_lag_168",
    "temp_lag_24",
    "temp_lag_48",
    "temp_lag_168",
    "use_roll_3_mean",
    "use_roll_3_std",
    "use_roll_3_min",
    "use_roll_3_max",
    "use_roll_24_mean",
    "use_roll_24_std",
    "use_roll_24_min",
    "use_roll_24_max",
    "use_roll_168_mean",
    "use_roll_168_std",
    "use_roll_168_min",
    "use_roll_168_max",
    "temp_roll_24_mean",
    "hdh_roll_24_mean",
    "temperature_c",
    "relative_humidity_pct",
    "cloud_cover_pct",
    "shortwave_radiation_wm2",
    "wind_speed_ms",
    "weather_is_forecast",
    "weather_lead_h",
    "hdh",
    "temp_x_hour",
    "temp_x_radiation",
    "room_temp_c",
    "setpoint_c",
    "comfort_gap_c",
    "comfort_gap_prev",
    "valve_mean_pct",
    "room_temp_std_c",
    "room_flat_hours",
    "building_age_days",
};

static const char *const flag_names[HVS_FEAT_FLAG_COUNT] = {
    "missing_weather", "weather_forecast", "lag_24_missing", "lag_168_missing", "history_short"};

const char *const *hvs_features_names(void) { return names; }

int hvs_features_index(const char *name) {
    for (int i = 0; i < HVS_FEATURES_COUNT; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

static int entity_idx[HVS_FEATURES_ENTITY_COUNT];
static pthread_once_t entity_once = PTHREAD_ONCE_INIT;

static void entity_init(void) {
    static const char *const entity[HVS_FEATURES_ENTITY_COUNT] = {
        "use_lag_24",       "use_lag_48",       "use_lag_168",      "use_roll_3_mean",
        "use_roll_3_std",   "use_roll_3_min",   "use_roll_3_max",   "use_roll_24_mean",
        "use_roll_24_std",  "use_roll_24_min",  "use_roll_24_max",  "use_roll_168_mean",
        "use_roll_168_std", "use_roll_168_min", "use_roll_168_max", "room_temp_c",
        "setpoint_c",       "comfort_gap_c",    "comfort_gap_prev", "valve_mean_pct",
        "room_temp_std_c",  "room_flat_hours"};
    for (int i = 0; i < HVS_FEATURES_ENTITY_COUNT; i++)
        entity_idx[i] = hvs_features_index(entity[i]);
}

const int *hvs_features_entity_indices(void) {
    pthread_once(&entity_once, entity_init);
    return entity_idx;
}

const char *hvs_features_version(void) {
    static char v[32];
    if (!v[0]) {
        uint32_t h = 2166136261u;
        for (int i = 0; i < HVS_FEATURES_COUNT; i++) {
            for (const char *p = names[i]; *p; p++)
                h = (h ^ (unsigned char)*p) * 16777619u;
            h = (h ^ 0u) * 16777619u; /* the NUL separates names */
        }
        snprintf(v, sizeof v, "fs-%d-%08x", HVS_FEATURES_REVISION, (unsigned)h);
    }
    return v;
}

const char *hvs_features_flag_name(int bit) {
    return bit >= 0 && bit < HVS_FEAT_FLAG_COUNT ? flag_names[bit] : "";
}

double hvs_feat_round(double v, double per) {
    return isfinite(v) && fabs(v) < 1e12 ? round(v * per) / per + 0.0 : v;
}

void hvs_feat_hour_round(hvs_feat_hour_t *h) {
    h->use = hvs_feat_round(h->use, HVS_FEAT_PER_KWH);
    h->water = hvs_feat_round(h->water, HVS_FEAT_PER_L);
    h->room_temp = hvs_feat_round(h->room_temp, HVS_FEAT_PER_C);
    h->setpoint = hvs_feat_round(h->setpoint, HVS_FEAT_PER_C);
    h->comfort_gap = hvs_feat_round(h->comfort_gap, HVS_FEAT_PER_C);
    h->valve = hvs_feat_round(h->valve, HVS_FEAT_PER_PCT);
    h->temp_std = hvs_feat_round(h->temp_std, HVS_FEAT_PER_C);
}

size_t hvs_feat_slot(hvs_ms_t hour, size_t n) {
    int64_t k = hour >= 0 ? hour / H : -((-hour + H - 1) / H);
    int64_t m = k % (int64_t)n;
    return (size_t)(m < 0 ? m + (int64_t)n : m);
}

const hvs_feat_hour_t *hvs_feat_hour_get(const hvs_feat_history_t *h, hvs_ms_t hour) {
    if (!h->hours || h->nhours == 0)
        return NULL;
    const hvs_feat_hour_t *s = &h->hours[hvs_feat_slot(hour, h->nhours)];
    return s->hour == hour ? s : NULL;
}

const hvs_feat_wx_t *hvs_feat_wx_get(const hvs_feat_history_t *h, hvs_ms_t hour, hvs_ms_t as_of) {
    if (!h->wx || h->nwx == 0)
        return NULL;
    const hvs_feat_wx_hour_t *w = &h->wx[hvs_feat_slot(hour, h->nwx)];
    if (w->hour != hour)
        return NULL;
    /* Sorted by issued_at: the last one at or before as_of; at equal times an observation
     * sorts after a forecast, so it wins. */
    for (int i = w->n - 1; i >= 0; i--)
        if (w->v[i].issued_at <= as_of)
            return &w->v[i];
    return NULL;
}

static int wx_before(const hvs_feat_wx_t *a, const hvs_feat_wx_t *b) {
    if (a->issued_at != b->issued_at)
        return a->issued_at < b->issued_at;
    return !a->observed && b->observed;
}

static bool same_value(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

int hvs_feat_wx_add(hvs_feat_wx_hour_t *wh, hvs_ms_t hour, const hvs_feat_wx_t *rec) {
    if (wh->hour != hour) {
        wh->hour = hour;
        wh->n = 0;
    }
    for (int i = 0; i < wh->n; i++) {
        hvs_feat_wx_t *o = &wh->v[i];
        if (o->issued_at == rec->issued_at && o->observed == rec->observed) {
            if (same_value(o->temp, rec->temp) && same_value(o->rh, rec->rh) &&
                same_value(o->cloud, rec->cloud) && same_value(o->ghi, rec->ghi) &&
                same_value(o->wind, rec->wind))
                return 0;
            *o = *rec;
            return 1;
        }
    }
    if (wh->n == HVS_FEAT_WX_KEEP) {
        if (wx_before(rec, &wh->v[0]))
            return 0; /* older than everything kept */
        memmove(&wh->v[0], &wh->v[1], (HVS_FEAT_WX_KEEP - 1) * sizeof wh->v[0]);
        wh->n--;
    }
    int at = wh->n;
    while (at > 0 && wx_before(rec, &wh->v[at - 1])) {
        wh->v[at] = wh->v[at - 1];
        at--;
    }
    wh->v[at] = *rec;
    wh->n++;
    return 1;
}

/* Consumption of hour `hour` if usable at as_of. */
static double use_at(const hvs_feat_history_t *h, hvs_ms_t hour, hvs_ms_t as_of) {
    if (hour + H > as_of)
        return NAN;
    const hvs_feat_hour_t *s = hvs_feat_hour_get(h, hour);
    return s && isfinite(s->use) ? s->use : NAN;
}

static double temp_at(const hvs_feat_history_t *h, hvs_ms_t hour, hvs_ms_t as_of) {
    const hvs_feat_wx_t *w = hvs_feat_wx_get(h, hour, as_of);
    return w && isfinite(w->temp) ? w->temp : NAN;
}

/* A cursor walking a ring backwards hour by hour from `hour`: the slot of each next hour is the
 * previous one's minus 1 (mod n), so the windows below need one division, not two per hour. */
typedef struct walk {
    hvs_ms_t hour;
    size_t slot, n;
} walk_t;

static walk_t walk_at(hvs_ms_t hour, size_t n) {
    return (walk_t){hour, n ? hvs_feat_slot(hour, n) : 0, n};
}

static void walk_back(walk_t *w) {
    w->hour -= H;
    w->slot = w->slot ? w->slot - 1 : w->n - 1;
}

/* Rings of many entities do not stay in cache between their vectors: ask for the slots a few
 * steps ahead of the walk (backwards, across the wrap) while this one is read. */
#define WALK_AHEAD 6
static void walk_prefetch(const void *ring, size_t size, const walk_t *w) {
    if (ring && w->n > WALK_AHEAD) {
        size_t s = w->slot >= WALK_AHEAD ? w->slot - WALK_AHEAD : w->slot + w->n - WALK_AHEAD;
        __builtin_prefetch((const char *)ring + s * size);
    }
}

/* use_at / temp_at of the walk's hour (the same results, its slot known). */
static double walk_use(const hvs_feat_history_t *h, const walk_t *w, hvs_ms_t as_of) {
    if (w->hour + H > as_of || !h->hours || !w->n)
        return NAN;
    const hvs_feat_hour_t *s = &h->hours[w->slot];
    return s->hour == w->hour && isfinite(s->use) ? s->use : NAN;
}

static double walk_temp(const hvs_feat_history_t *h, const walk_t *w, hvs_ms_t as_of) {
    if (!h->wx || !w->n)
        return NAN;
    const hvs_feat_wx_hour_t *x = &h->wx[w->slot];
    if (x->hour != w->hour)
        return NAN;
    for (int i = x->n - 1; i >= 0; i--)
        if (x->v[i].issued_at <= as_of)
            return isfinite(x->v[i].temp) ? x->v[i].temp : NAN;
    return NAN;
}

typedef struct stats {
    int n;
    double sum, sumsq, min, max;
} stats_t;

static void stats_add(stats_t *s, double v) {
    if (!isfinite(v))
        return;
    if (s->n == 0 || v < s->min)
        s->min = v;
    if (s->n == 0 || v > s->max)
        s->max = v;
    s->n++;
    s->sum += v;
    s->sumsq += v * v;
}

/* mean, std, min, max into out[0..3]; missing unless at least half of w hours are present. */
static void stats_out(const stats_t *s, int w, double *out, int count) {
    if (s->n * 2 < w || s->n == 0) {
        for (int i = 0; i < count; i++)
            out[i] = NAN;
        return;
    }
    double mean = s->sum / s->n;
    out[0] = mean;
    if (count > 1) {
        double var = s->sumsq / s->n - mean * mean;
        out[1] = var > 0 ? sqrt(var) : 0.0;
        out[2] = s->min;
        out[3] = s->max;
    }
}

/* The longest run of hours back from `self` in which one room's temperature stayed unchanged
 * (NaN when the hour has no room with a temperature). */
static double flat_hours(const hvs_feat_history_t *h, const hvs_feat_hour_t *self) {
    uint32_t run = self->flat & self->rooms;
    int k = 0;
    while (run && k < 168) {
        k++;
        const hvs_feat_hour_t *o = hvs_feat_hour_get(h, self->hour - (hvs_ms_t)k * H);
        run &= o ? o->flat : 0u;
    }
    return (double)k;
}

static double hdh_of(double t) { return isfinite(t) ? (t < 18.0 ? 18.0 - t : 0.0) : NAN; }

static void compute(const hvs_feat_history_t *h, hvs_calendar_t *cal, hvs_ms_t target_hour,
                    hvs_ms_t as_of, bool entity, double *out, unsigned *flags);

void hvs_features_compute(const hvs_feat_history_t *h, hvs_calendar_t *cal, hvs_ms_t target_hour,
                          hvs_ms_t as_of, double *out, unsigned *flags) {
    compute(h, cal, target_hour, as_of, true, out, flags);
}

void hvs_features_compute_context(const hvs_feat_history_t *h, hvs_calendar_t *cal,
                                  hvs_ms_t target_hour, hvs_ms_t as_of, double *out,
                                  unsigned *flags) {
    compute(h, cal, target_hour, as_of, false, out, flags);
    const int *idx = hvs_features_entity_indices();
    for (int i = 0; i < HVS_FEATURES_ENTITY_COUNT; i++)
        out[idx[i]] = NAN;
    *flags &= ~(unsigned)HVS_FEAT_F_ENTITY;
}

/* The vector; without `entity` its use lags and windows (the costly part of the entity part)
 * are left out. */
static void compute(const hvs_feat_history_t *h, hvs_calendar_t *cal, hvs_ms_t target_hour,
                    hvs_ms_t as_of, bool entity, double *out, unsigned *flags) {
    const double two_pi = 6.283185307179586;
    hvs_ms_t Ht = hvs_time_window_start(target_hour, H);
    hvs_ms_t T = as_of;
    hvs_ms_t A = hvs_time_window_start(T, H);
    if (A > Ht)
        A = Ht;
    unsigned f = 0;
    int k = 0;
    double horizon = (double)(Ht + H - T) / (double)H;
    out[k++] = horizon > 0 ? horizon : 0.0;

    /* time, local */
    hvs_day_info_t day;
    hvs_calendar_day(cal, Ht, &day);
    double lh = hvs_calendar_local_hour(cal, Ht);
    int hour = (int)floor(lh);
    int64_t doy_days = hvs_time_days_from_civil(day.year, day.month, day.day) -
                       hvs_time_days_from_civil(day.year, 1, 1);
    out[k++] = hour;
    out[k++] = day.weekday;
    out[k++] = day.month;
    out[k++] = day.weekend ? 1 : 0;
    out[k++] = sin(two_pi * lh / 24.0);
    out[k++] = cos(two_pi * lh / 24.0);
    out[k++] = sin(two_pi * day.weekday / 7.0);
    out[k++] = cos(two_pi * day.weekday / 7.0);
    out[k++] = sin(two_pi * (double)doy_days / 365.25);
    out[k++] = cos(two_pi * (double)doy_days / 365.25);
    /* calendar */
    out[k++] = day.holiday ? 1 : 0;
    out[k++] = day.bridge_day ? 1 : 0;
    out[k++] = day.school_holiday ? 1 : 0;
    out[k++] = day.christmas_period ? 1 : 0;
    out[k++] = day.days_until_holiday;
    out[k++] = day.days_since_holiday;
    /* lags */
    static const int lags[3] = {24, 48, 168};
    for (int i = 0; i < 3; i++)
        out[k++] = entity ? use_at(h, Ht - lags[i] * H, T) : NAN;
    if (isnan(out[k - 3]))
        f |= HVS_FEAT_F_LAG_24_MISSING;
    if (isnan(out[k - 1]))
        f |= HVS_FEAT_F_LAG_168_MISSING;
    for (int i = 0; i < 3; i++)
        out[k++] = temp_at(h, Ht - lags[i] * H, T);
    /* rolling consumption over [A - w, A): the windows are prefixes of one walk back from A,
     * each window's stats taken when the walk has covered it (the same sums in the same order) */
    static const int wins[3] = {3, 24, 168};
    stats_t s = {0};
    walk_t wk = walk_at(A, h->nhours);
    for (int i = 0, j = 1; i < 3; i++) {
        for (; entity && j <= wins[i]; j++) {
            walk_back(&wk);
            walk_prefetch(h->hours, sizeof *h->hours, &wk);
            stats_add(&s, walk_use(h, &wk, T));
        }
        stats_out(&s, wins[i], &out[k], 4);
        if (wins[i] == 168 && s.n * 2 < 168)
            f |= HVS_FEAT_F_HISTORY_SHORT;
        k += 4;
    }
    stats_t st = {0}, sh = {0};
    walk_t ww = walk_at(A, h->nwx);
    for (int j = 1; j <= 24; j++) {
        walk_back(&ww);
        double t = walk_temp(h, &ww, T);
        stats_add(&st, t);
        stats_add(&sh, hdh_of(t));
    }
    stats_out(&st, 24, &out[k++], 1);
    stats_out(&sh, 24, &out[k++], 1);
    /* weather of the target hour */
    const hvs_feat_wx_t *w = hvs_feat_wx_get(h, Ht, T);
    double temp = w ? w->temp : NAN, ghi = w ? w->ghi : NAN;
    out[k++] = temp;
    out[k++] = w ? w->rh : NAN;
    out[k++] = w ? w->cloud : NAN;
    out[k++] = ghi;
    out[k++] = w ? w->wind : NAN;
    out[k++] = w ? (w->observed ? 0.0 : 1.0) : NAN;
    out[k++] = w ? (double)(Ht - w->issued_at) / (double)H : NAN;
    if (!w || !isfinite(temp))
        f |= HVS_FEAT_F_MISSING_WEATHER;
    else if (!w->observed && Ht + H <= T)
        f |= HVS_FEAT_F_WEATHER_FORECAST;
    out[k++] = hdh_of(temp);
    out[k++] = isfinite(temp) ? temp * hour : NAN;
    out[k++] = isfinite(temp) && isfinite(ghi) ? temp * ghi / 1000.0 : NAN;
    /* comfort: the target hour's own when it is over at T, and the last usable hour's */
    const hvs_feat_hour_t *self = Ht + H <= T ? hvs_feat_hour_get(h, Ht) : NULL;
    out[k++] = self ? self->room_temp : NAN;
    out[k++] = self ? self->setpoint : NAN;
    out[k++] = self ? self->comfort_gap : NAN;
    const hvs_feat_hour_t *prev = hvs_feat_hour_get(h, A - H); /* A <= T: always usable */
    out[k++] = prev ? prev->comfort_gap : NAN;
    bool rooms = self && self->rooms; /* an hour without rooms: none of theirs is known */
    out[k++] = rooms ? self->valve : NAN;
    out[k++] = rooms ? self->temp_std : NAN;
    out[k++] = rooms ? flat_hours(h, self) : NAN;
    out[k++] = h->commissioning != HVS_MS_NONE
                   ? (double)(Ht - h->commissioning) / (double)HVS_MS_DAY
                   : NAN;
    *flags = f;
}
