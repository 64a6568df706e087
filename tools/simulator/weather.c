/* weather.c - the simulated weather as a pure function of seed, place and time (weather.h). */
#include "weather.h"

#include <math.h>
#include <string.h>

#include "rng.h"

#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)
#define PI 3.14159265358979323846

/* Keys of the independent noise processes. */
enum {
    K_TEMP_FAST = 1,
    K_TEMP_SLOW,
    K_PRESSURE_FAST,
    K_PRESSURE_SLOW,
    K_CLOUD,
    K_WIND,
    K_LOCAL,
    K_SHOCK,
    K_FC_TEMP,
    K_FC_CLOUD,
    K_FC_WIND,
};

void sim_weather_conf_default(sim_weather_conf_t *c, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->seed = seed;
    c->shock_rate_per_day = 0.05;
    c->forecast_error_scale = 1.0;
    c->mean_temp_c = 11.5;       /* at sea level: ~8.7 degC at 430 m, the plateau's mean */
    c->season_amplitude_c = 8.6; /* high-pressure spells add ~0.5 K of contrast */
}

static uint64_t key(const sim_weather_conf_t *c, uint64_t what) { return sim_hash2(c->seed, what); }

/* Fractional day of the year (0 = 1 Jan) of instant t; close enough for seasons. */
static double day_of_year(hvs_ms_t t) {
    double days = (double)t / (double)DAY_MS;
    return fmod(days, 365.2425);
}

double sim_weather_clear_sky(double lat, double lon, hvs_ms_t t) {
    double doy = day_of_year(t);
    double decl = 23.44 * PI / 180.0 * sin(2 * PI * (284.0 + doy) / 365.0);
    double solar_hour = fmod((double)t / (double)HOUR_MS, 24.0) + lon / 15.0;
    double ha = (solar_hour - 12.0) * 15.0 * PI / 180.0;
    double phi = lat * PI / 180.0;
    double s = sin(phi) * sin(decl) + cos(phi) * cos(decl) * cos(ha);
    if (s <= 0.0)
        return 0.0;
    return 1098.0 * s * exp(-0.057 / s); /* Haurwitz's clear-sky model */
}

/* A shock that starts on UTC day `day`, if any. */
typedef struct shock {
    bool storm; /* else a cold front */
    hvs_ms_t start;
    double hours;         /* storm: duration; front: the drop's ramp is 2 h */
    double magnitude;     /* storm: extra wind m/s; front: K drop */
    double recovery_days; /* front */
} shock_t;

static bool shock_of_day(const sim_weather_conf_t *c, int64_t day, shock_t *s) {
    uint64_t k = sim_hash2(key(c, K_SHOCK), (uint64_t)day);
    if (sim_noise_u01(k) >= c->shock_rate_per_day)
        return false;
    s->storm = sim_noise_u01(k + 1) < 0.5;
    /* Daytime starts: the morning's forecast is wrong by the afternoon. */
    s->start = day * DAY_MS + (hvs_ms_t)((8.0 + 9.0 * sim_noise_u01(k + 2)) * (double)HOUR_MS);
    s->hours = s->storm ? 2.0 + 5.0 * sim_noise_u01(k + 3) : 2.0;
    s->magnitude = s->storm ? 6.0 + 10.0 * sim_noise_u01(k + 4) : 4.0 + 4.0 * sim_noise_u01(k + 4);
    s->recovery_days = 1.0 + 2.0 * sim_noise_u01(k + 5);
    return true;
}

/* Effects of the shocks started by `known_until` (all of them: INT64_MAX) on instant t. */
typedef struct shock_effect {
    double temp, cloud_min, wind;
} shock_effect_t;

static void shock_effects(const sim_weather_conf_t *c, hvs_ms_t t, hvs_ms_t known_until,
                          shock_effect_t *e) {
    memset(e, 0, sizeof *e);
    if (c->shock_rate_per_day <= 0)
        return;
    int64_t today = (int64_t)floor((double)t / (double)DAY_MS);
    for (int64_t d = today - 10; d <= today; d++) {
        shock_t s;
        if (!shock_of_day(c, d, &s) || s.start > t || s.start > known_until)
            continue;
        double h = (double)(t - s.start) / (double)HOUR_MS;
        if (s.storm) {
            if (h < s.hours) {
                e->cloud_min = 0.97;
                e->wind += s.magnitude;
                e->temp -= 1.5;
            }
        } else {
            double ramp = h < 2.0 ? h / 2.0 : exp(-(h - 2.0) / (24.0 * s.recovery_days));
            e->temp -= s.magnitude * ramp;
            if (h < 6.0)
                e->cloud_min = fmax(e->cloud_min, 0.85);
            if (h < 3.0)
                e->wind += 5.0;
        }
    }
}

/* The undisturbed state; shocks and forecast errors are applied on top. */
typedef struct state {
    double temp, cloud, wind, pressure, winter, summer, solar_hour;
} state_t;

static void base_state(const sim_weather_conf_t *c, double lat, double lon, double elevation_m,
                       hvs_ms_t t, state_t *s) {
    double days = (double)t / (double)DAY_MS;
    double doy = day_of_year(t);
    double season = cos(2 * PI * (doy - 20.0) / 365.2425); /* 1 in late January */
    s->winter = fmax(0.0, season);
    s->summer = fmax(0.0, -season);
    /* Weather systems, shared by the whole region: a pressure index and temperature swings of
     * a few days and of a week or two. */
    s->pressure = 0.8 * sim_noise_smooth(key(c, K_PRESSURE_FAST), days, 3.5) +
                  0.6 * sim_noise_smooth(key(c, K_PRESSURE_SLOW), days, 9.0);
    double anomaly = 2.6 * sim_noise_smooth(key(c, K_TEMP_FAST), days, 2.5) +
                     1.6 * sim_noise_smooth(key(c, K_TEMP_SLOW), days, 8.0);
    /* High pressure: clear and cold in winter (radiative cooling), warm in summer. */
    anomaly += s->pressure > 0 ? s->pressure * (2.2 * s->summer - 2.4 * s->winter) : 0.0;
    /* A little local weather, correlated over ~0.5 degrees. */
    uint64_t cell = sim_hash3(key(c, K_LOCAL), (uint64_t)(int64_t)floor(lat * 2.0),
                              (uint64_t)(int64_t)floor(lon * 2.0));
    anomaly += 0.5 * sim_noise_smooth(cell, days, 2.0);

    double x = 0.35 - 1.5 * s->pressure + 0.9 * sim_noise_smooth(key(c, K_CLOUD), days, 0.35) +
               0.4 * s->winter;
    s->cloud = 1.0 / (1.0 + exp(-2.0 * x));

    s->solar_hour = fmod(fmod((double)t / (double)HOUR_MS, 24.0) + lon / 15.0 + 24.0, 24.0);
    double amplitude = (1.8 + 5.0 * (1.0 - s->cloud)) * (0.6 + 0.8 * s->summer);
    double diurnal = 0.5 * amplitude * cos(2 * PI * (s->solar_hour - 15.0) / 24.0);
    s->temp = c->mean_temp_c - c->season_amplitude_c * season - 0.0065 * elevation_m + anomaly +
              diurnal;
    s->wind = fmax(0.3, 2.2 + 1.8 * fabs(sim_noise_smooth(key(c, K_WIND), days, 1.2)) -
                            0.8 * s->pressure);
}

static void finish(double lat, double lon, hvs_ms_t t, const state_t *s, sim_weather_t *out) {
    double cloud = fmin(1.0, fmax(0.0, s->cloud));
    out->time = t;
    out->temperature_c = s->temp;
    out->cloud_cover_pct = 100.0 * cloud;
    out->shortwave_radiation_wm2 = sim_weather_clear_sky(lat, lon, t) *
                                   (1.0 - 0.75 * pow(cloud, 3.4));
    double rh = 58.0 + 32.0 * cloud + 12.0 * cos(2 * PI * (s->solar_hour - 5.0) / 24.0) -
                0.6 * (s->temp - 10.0);
    out->relative_humidity_pct = fmin(100.0, fmax(15.0, rh));
    out->wind_speed_ms = fmax(0.0, s->wind);
}

static void apply_shocks(const sim_weather_conf_t *c, hvs_ms_t t, hvs_ms_t known_until,
                         state_t *s) {
    shock_effect_t e;
    shock_effects(c, t, known_until, &e);
    s->temp += e.temp;
    s->cloud = fmax(s->cloud, e.cloud_min);
    s->wind += e.wind;
}

void sim_weather_observed(const sim_weather_conf_t *c, double lat, double lon, double elevation_m,
                          hvs_ms_t t, sim_weather_t *out) {
    state_t s;
    base_state(c, lat, lon, elevation_m, t, &s);
    apply_shocks(c, t, INT64_MAX, &s);
    finish(lat, lon, t, &s, out);
}

void sim_weather_forecast(const sim_weather_conf_t *c, double lat, double lon, double elevation_m,
                          hvs_ms_t issued_at, hvs_ms_t t, sim_weather_t *out) {
    if (t <= issued_at) {
        sim_weather_observed(c, lat, lon, elevation_m, t, out);
        return;
    }
    state_t s;
    base_state(c, lat, lon, elevation_m, t, &s);
    apply_shocks(c, t, issued_at, &s); /* what had not started at issue is not foreseen */
    double lead = (double)(t - issued_at) / (double)HOUR_MS;
    double k = c->forecast_error_scale;
    uint64_t issue = (uint64_t)issued_at;
    /* Errors correlated along the lead (the same model run), growing with it. */
    s.temp += k * (0.55 + 0.026 * lead) *
              sim_noise_smooth(sim_hash2(key(c, K_FC_TEMP), issue), lead, 18.0);
    s.cloud += k * (0.08 + 0.003 * lead) *
               sim_noise_smooth(sim_hash2(key(c, K_FC_CLOUD), issue), lead, 10.0);
    s.wind += k * (0.5 + 0.02 * lead) *
              sim_noise_smooth(sim_hash2(key(c, K_FC_WIND), issue), lead, 12.0);
    finish(lat, lon, t, &s, out);
}

hvs_ms_t sim_weather_latest_issue(hvs_ms_t now) {
    hvs_ms_t avail = now - 2 * HOUR_MS; /* a run is published two hours after its issue time */
    hvs_ms_t period = 6 * HOUR_MS;
    hvs_ms_t r = avail % period;
    if (r < 0)
        r += period;
    return avail - r;
}

int sim_weather_shocks(const sim_weather_conf_t *c, double lat, double lon, hvs_ms_t from,
                       hvs_ms_t to, sim_label_t *out, int max) {
    (void)lat, (void)lon; /* shocks are regional */
    int n = 0;
    if (c->shock_rate_per_day <= 0)
        return 0;
    int64_t d0 = (int64_t)floor((double)from / (double)DAY_MS);
    int64_t d1 = (int64_t)floor((double)(to - 1) / (double)DAY_MS);
    for (int64_t d = d0; d <= d1; d++) {
        shock_t s;
        if (!shock_of_day(c, d, &s) || s.start < from || s.start >= to)
            continue;
        if (n < max)
            out[n] = (sim_label_t){
                .building = -1,
                .apartment = -1,
                .room = -1,
                .category = "weather",
                .type = s.storm ? "storm" : "cold_front",
                .start = s.start,
                .end = s.start + (hvs_ms_t)((s.storm ? s.hours : 2.0 + 24.0 * s.recovery_days) *
                                            (double)HOUR_MS),
                .magnitude = s.magnitude,
            };
        n++;
    }
    return n;
}
