/*
 * test_features - the one feature definition on hand-built histories, every expected value
 * worked out here from the rule in features.h (not by calling the module's helpers): local
 * time and cyclical encodings across DST, Easter-derived holidays of several years, bridge
 * days, the Christmas period, lags across gaps and horizons, rolling stats against a direct
 * computation, HDH and interactions, weather as known at as_of (observation vs forecast
 * issues), comfort features, the version string; and the no-leakage property: over random
 * (as_of, target) pairs, changing anything not yet known at as_of — later hours, weather
 * issued later, the target hour itself — changes no feature.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "hvs/features.h"
#include "hvs/pack.h"
#include "hvs/rooms.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define NH 400
#define NW 400

static hvs_ms_t utc(int y, int mo, int d, int h) {
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h};
    return (hvs_ms_t)timegm(&tm) * 1000;
}

static hvs_feat_hour_t hours[NH];
static hvs_feat_wx_hour_t wx[NW];
static hvs_feat_history_t hist = {hours, NH, wx, NW, HVS_MS_NONE};

static void clear(void) {
    for (int i = 0; i < NH; i++)
        hours[i] = (hvs_feat_hour_t){.hour = HVS_MS_NONE};
    for (int i = 0; i < NW; i++)
        wx[i] = (hvs_feat_wx_hour_t){.hour = HVS_MS_NONE};
    hist.commissioning = HVS_MS_NONE;
}

/* Slots computed here, independently: (hour / 1 h) mod n for hours after 1970. */
static void put_hour(hvs_ms_t h, double use, double room, double sp) {
    hvs_feat_hour_t *s = &hours[(h / HOUR) % NH];
    *s = (hvs_feat_hour_t){.hour = h,
                           .use = use,
                           .water = NAN,
                           .room_temp = room,
                           .setpoint = sp,
                           .comfort_gap = sp - room,
                           /* three rooms; room 0 steady 4 hours in 6, room 1 every third hour */
                           .valve = 20.0 + (double)((h / HOUR) % 50),
                           .temp_std = 0.01 * (double)((h / HOUR) % 7),
                           .rooms = 7,
                           .flat = ((h / HOUR) % 6 < 4 ? 1u : 0u) |
                                   ((h / HOUR) % 3 == 0 ? 2u : 0u)};
}

static void put_wx(hvs_ms_t h, hvs_ms_t issued, bool observed, double t, double ghi) {
    hvs_feat_wx_t r = {.issued_at = issued,
                       .observed = observed,
                       .temp = t,
                       .rh = 80,
                       .cloud = 50,
                       .ghi = ghi,
                       .wind = 3};
    hvs_feat_wx_add(&wx[(h / HOUR) % NW], h, &r);
}

static int idx(const char *name) {
    int i = hvs_features_index(name);
    HVS_REQUIRE(i >= 0, "feature %s", name);
    return i;
}

static double out[HVS_FEATURES_COUNT + 1];
static unsigned flags;

static void compute(hvs_calendar_t *cal, hvs_ms_t target, hvs_ms_t as_of) {
    out[HVS_FEATURES_COUNT] = 12345.0; /* sentinel: nothing written past the last feature */
    hvs_features_compute(&hist, cal, target, as_of, out, &flags);
    HVS_CHECK(out[HVS_FEATURES_COUNT] == 12345.0, "wrote past the feature count");
    /* every case also checks the context part alone: the same bits outside the entity part */
    double ctx[HVS_FEATURES_COUNT];
    unsigned cflags;
    hvs_features_compute_context(&hist, cal, target, as_of, ctx, &cflags);
    const int *ent = hvs_features_entity_indices();
    for (int i = 0, e = 0; i < HVS_FEATURES_COUNT; i++) {
        bool is_ent = e < HVS_FEATURES_ENTITY_COUNT && ent[e] == i;
        e += is_ent;
        if (is_ent)
            HVS_CHECK(isnan(ctx[i]), "context: entity feature %s = %g", hvs_features_names()[i],
                      ctx[i]);
        else
            HVS_CHECK(memcmp(&ctx[i], &out[i], sizeof ctx[i]) == 0, "context: %s %g != %g",
                      hvs_features_names()[i], ctx[i], out[i]);
    }
    HVS_CHECK(cflags == (flags & ~(unsigned)HVS_FEAT_F_ENTITY), "context flags %u of %u", cflags,
              flags);
}

#define F(name) out[idx(name)]
#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

static void test_names_and_version(void) {
    const char *const *n = hvs_features_names();
    uint32_t h = 2166136261u;
    int dup = 0;
    for (int i = 0; i < HVS_FEATURES_COUNT; i++) {
        HVS_REQUIRE(n[i] && n[i][0], "name %d", i);
        for (int j = 0; j < i; j++)
            dup += strcmp(n[i], n[j]) == 0;
        for (const char *p = n[i]; *p; p++) {
            h ^= (unsigned char)*p;
            h *= 16777619u;
        }
        h *= 16777619u; /* h ^ 0 */
    }
    char want[32];
    snprintf(want, sizeof want, "fs-%d-%08x", HVS_FEATURES_REVISION, (unsigned)h);
    HVS_CHECK(dup == 0, "%d duplicate names", dup);
    HVS_CHECK_EQ_STR(hvs_features_version(), want);
    HVS_CHECK(hvs_features_index("no_such_feature") == -1, "unknown name");
    HVS_CHECK(strcmp(hvs_features_flag_name(0), "missing_weather") == 0, "flag names");
}

static void test_time_and_calendar(hvs_calendar_t *zh) {
    clear();
    /* Summer (CEST, UTC+2): 2024-07-01 10:00Z is 12:00 local, a Monday. */
    compute(zh, utc(2024, 7, 1, 10), utc(2024, 7, 1, 11));
    HVS_CHECK(F("hour") == 12 && F("weekday") == 0 && F("month") == 7 && F("is_weekend") == 0,
              "summer local time: hour %g weekday %g", F("hour"), F("weekday"));
    HVS_CHECK(NEAR(F("hour_sin"), sin(2 * M_PI * 12 / 24)) && NEAR(F("hour_cos"), -1.0),
              "hour cyclical");
    int doy = 31 + 29 + 31 + 30 + 31 + 30; /* 1 July 2024, 0-based day of a leap year */
    HVS_CHECK(NEAR(F("doy_sin"), sin(2 * M_PI * doy / 365.25)) &&
                  NEAR(F("doy_cos"), cos(2 * M_PI * doy / 365.25)),
              "day of year cyclical");
    HVS_CHECK(NEAR(F("weekday_sin"), 0.0) && NEAR(F("weekday_cos"), 1.0), "weekday cyclical");
    HVS_CHECK(F("is_school_holiday") == 0 && F("horizon_h") == 0, "no horizon for a past hour");
    /* Winter (CET, UTC+1): 2024-01-14 23:30Z is Monday 00:30 local on 15 January. */
    compute(zh, utc(2024, 1, 14, 23), utc(2024, 1, 15, 0));
    HVS_CHECK(F("hour") == 0 && F("weekday") == 0 && F("month") == 1, "winter: hour %g wd %g",
              F("hour"), F("weekday"));
    /* Saturday */
    compute(zh, utc(2024, 1, 13, 10), utc(2024, 1, 13, 11));
    HVS_CHECK(F("is_weekend") == 1 && F("weekday") == 5, "Saturday");
    /* Easter Monday, by year: Easter computed here from the published dates. */
    struct {
        int y, m, d;
    } em[] = {{2023, 4, 10}, {2024, 4, 1}, {2025, 4, 21}, {2026, 4, 6}};
    for (size_t i = 0; i < 4; i++) {
        compute(zh, utc(em[i].y, em[i].m, em[i].d, 9), utc(em[i].y, em[i].m, em[i].d, 10));
        HVS_CHECK(F("is_holiday") == 1 && F("days_until_holiday") == 0 &&
                      F("days_since_holiday") == 0,
                  "Easter Monday %d", em[i].y);
    }
    /* Ascension 2025 = Easter (20 Apr) + 39 = Thu 29 May; the Friday after is a bridge day;
     * on the Wednesday before, the holiday is 1 day away and Labour Day (1 May, a holiday in
     * Zurich) 27 days back. */
    compute(zh, utc(2025, 5, 29, 9), utc(2025, 5, 29, 10));
    HVS_CHECK(F("is_holiday") == 1, "Ascension 2025");
    compute(zh, utc(2025, 5, 30, 9), utc(2025, 5, 30, 10));
    HVS_CHECK(F("is_bridge_day") == 1 && F("is_holiday") == 0, "bridge day 30 May 2025");
    compute(zh, utc(2025, 5, 28, 9), utc(2025, 5, 28, 10));
    HVS_CHECK(F("days_until_holiday") == 1 && F("days_since_holiday") == 27, "until %g since %g",
              F("days_until_holiday"), F("days_since_holiday"));
    /* Christmas period 24 Dec .. 6 Jan; 23 Dec and 7 Jan are outside. */
    compute(zh, utc(2024, 12, 24, 12), utc(2024, 12, 24, 13));
    double c24 = F("is_christmas_period");
    compute(zh, utc(2025, 1, 6, 12), utc(2025, 1, 6, 13));
    double c6 = F("is_christmas_period");
    compute(zh, utc(2024, 12, 23, 12), utc(2024, 12, 23, 13));
    double c23 = F("is_christmas_period");
    compute(zh, utc(2025, 1, 7, 12), utc(2025, 1, 7, 13));
    double c7 = F("is_christmas_period");
    HVS_CHECK(c24 == 1 && c6 == 1 && c23 == 0 && c7 == 0, "Christmas period %g %g %g %g", c24, c6,
              c23, c7);
    /* Building age */
    hist.commissioning = utc(2024, 6, 1, 0);
    compute(zh, utc(2024, 7, 1, 0), utc(2024, 7, 1, 1));
    HVS_CHECK(NEAR(F("building_age_days"), 30.0), "age %g", F("building_age_days"));
}

static void test_lags_rolls_weather(hvs_calendar_t *zh) {
    clear();
    hvs_ms_t T0 = utc(2024, 11, 1, 0);
    /* 10 days of hours with a known pattern and holes; weather observed 5 min after each hour
     * ended, and a forecast for each hour issued 6 h before it. */
    double use[241];
    for (int i = 0; i <= 240; i++) {
        hvs_ms_t h = T0 + i * HOUR;
        use[i] = (i % 7 == 3 || (i >= 150 && i < 160)) ? NAN : 1.0 + 0.1 * (i % 24) + 0.01 * i;
        if (!isnan(use[i]))
            put_hour(h, use[i], 20.0 + 0.01 * i, 21.0);
        put_wx(h, h - 48 * HOUR, false, 3.0 + 0.05 * i, 110.0 + i);
        put_wx(h, h - 6 * HOUR, false, 4.0 + 0.05 * i, 100.0 + i);
        put_wx(h, h + HOUR + 5 * 60000, true, 5.0 + 0.05 * i, 90.0 + i);
    }
    int ti = 200;
    hvs_ms_t H = T0 + ti * HOUR, T = H + HOUR + 10 * 60000; /* past hour, observation in */
    compute(zh, H, T);
    HVS_CHECK(F("horizon_h") == 0, "horizon %g", F("horizon_h"));
    HVS_CHECK(NEAR(F("use_lag_24"), use[ti - 24]) &&
                  isnan(F("use_lag_48")) == isnan(use[ti - 48]) &&
                  NEAR(F("use_lag_168"), use[ti - 168]),
              "lags %g %g %g", F("use_lag_24"), F("use_lag_48"), F("use_lag_168"));
    /* 200 - 48 = 152 is in the hole */
    HVS_CHECK(isnan(F("use_lag_48")), "lag across the hole is missing");
    HVS_CHECK(NEAR(F("temp_lag_24"), 5.0 + 0.05 * (ti - 24)), "temperature lag: observed wins");
    /* rolling over [H - w, H), computed directly */
    int wins[] = {3, 24, 168};
    const char *wn[] = {"3", "24", "168"};
    for (int k = 0; k < 3; k++) {
        double sum = 0, mn = INFINITY, mx = -INFINITY;
        int n = 0;
        for (int j = ti - wins[k]; j < ti; j++)
            if (!isnan(use[j])) {
                sum += use[j];
                n++;
                mn = fmin(mn, use[j]);
                mx = fmax(mx, use[j]);
            }
        double mean = sum / n, ss = 0;
        for (int j = ti - wins[k]; j < ti; j++)
            if (!isnan(use[j]))
                ss += (use[j] - mean) * (use[j] - mean);
        char a[64], b[64], c[64], d[64];
        snprintf(a, sizeof a, "use_roll_%s_mean", wn[k]);
        snprintf(b, sizeof b, "use_roll_%s_std", wn[k]);
        snprintf(c, sizeof c, "use_roll_%s_min", wn[k]);
        snprintf(d, sizeof d, "use_roll_%s_max", wn[k]);
        HVS_CHECK(fabs(F(a) - mean) < 1e-9 && fabs(F(b) - sqrt(ss / n)) < 1e-9 && F(c) == mn &&
                      F(d) == mx,
                  "roll %d: %g/%g %g/%g %g/%g %g/%g", wins[k], F(a), mean, F(b), sqrt(ss / n), F(c),
                  mn, F(d), mx);
    }
    /* weather of H: the observation (issued H + 1 h 5 min <= T) */
    double t = 5.0 + 0.05 * ti;
    HVS_CHECK(NEAR(F("temperature_c"), t) && F("weather_is_forecast") == 0 &&
                  NEAR(F("weather_lead_h"), -(65.0 / 60.0)),
              "observed weather: %g lead %g", F("temperature_c"), F("weather_lead_h"));
    HVS_CHECK(NEAR(F("hdh"), 18.0 - t) && NEAR(F("temp_x_hour"), t * F("hour")) &&
                  NEAR(F("temp_x_radiation"), t * (90.0 + ti) / 1000.0),
              "hdh %g interactions", F("hdh"));
    double tsum = 0, hsum = 0;
    for (int j = ti - 24; j < ti; j++) {
        tsum += 5.0 + 0.05 * j;
        hsum += fmax(0, 18.0 - (5.0 + 0.05 * j));
    }
    HVS_CHECK(NEAR(F("temp_roll_24_mean"), tsum / 24) && NEAR(F("hdh_roll_24_mean"), hsum / 24),
              "weather rolls");
    HVS_CHECK(NEAR(F("room_temp_c"), 20.0 + 0.01 * ti) && NEAR(F("setpoint_c"), 21.0) &&
                  NEAR(F("comfort_gap_c"), 1.0 - 0.01 * ti),
              "comfort %g", F("comfort_gap_c"));
    /* hour ti - 1 = 199 is one of the holes (199 % 7 == 3) */
    HVS_CHECK(isnan(use[ti - 1]) && isnan(F("comfort_gap_prev")), "previous hour absent: %g",
              F("comfort_gap_prev"));
    compute(zh, H + HOUR, T + HOUR);
    HVS_CHECK(NEAR(F("comfort_gap_prev"), 1.0 - 0.01 * ti), "previous hour present: %g",
              F("comfort_gap_prev"));
    compute(zh, H, T);
    HVS_CHECK(flags == 0, "flags %u", flags);

    /* The same hour as a past hour whose observation is not in yet: the forecast stands in. */
    compute(zh, H, H + HOUR + 60000);
    HVS_CHECK(NEAR(F("temperature_c"), 4.0 + 0.05 * ti) && F("weather_is_forecast") == 1 &&
                  (flags & HVS_FEAT_F_WEATHER_FORECAST),
              "forecast stands in, flagged");

    /* A forecast 30 h ahead (T = H - 29 h): lags 24 and (of course) the target's comfort are
     * beyond the horizon; lag 48 and 168 are known; rolling windows end at floor(T). */
    hvs_ms_t Tf = H - 29 * HOUR + 15 * 60000;
    compute(zh, H, Tf);
    HVS_CHECK(NEAR(F("horizon_h"), 30.0 - 0.25), "horizon %g", F("horizon_h"));
    HVS_CHECK(isnan(F("use_lag_24")) && (flags & HVS_FEAT_F_LAG_24_MISSING) &&
                  NEAR(F("use_lag_168"), use[ti - 168]),
              "horizon-masked lag 24");
    int ai = ti - 29; /* A = floor(T) */
    double s3 = 0;
    int n3 = 0;
    for (int j = ai - 3; j < ai; j++)
        if (!isnan(use[j]))
            s3 += use[j], n3++;
    HVS_CHECK(NEAR(F("use_roll_3_mean"), s3 / n3), "roll 3 ends at A: %g vs %g",
              F("use_roll_3_mean"), s3 / n3);
    HVS_CHECK(NEAR(F("temperature_c"), 3.0 + 0.05 * ti) && NEAR(F("weather_lead_h"), 48.0),
              "the forecast issued 48 h before, the one of 6 h before not yet: %g lead %g",
              F("temperature_c"), F("weather_lead_h"));
    HVS_CHECK(isnan(F("room_temp_c")) && isnan(F("comfort_gap_c")) &&
                  NEAR(F("comfort_gap_prev"), 1.0 - 0.01 * (ai - 1)),
              "comfort of the future hour missing, last known used");
    /* Too early for any forecast of H: missing weather, flagged, never 0. */
    compute(zh, H, H - 49 * HOUR);
    HVS_CHECK(isnan(F("temperature_c")) && isnan(F("hdh")) && isnan(F("temp_x_hour")) &&
                  (flags & HVS_FEAT_F_MISSING_WEATHER),
              "missing weather is NaN and flagged");
    /* Near the start of the history: 168 h windows mostly absent */
    compute(zh, T0 + 30 * HOUR, T0 + 31 * HOUR);
    HVS_CHECK(isnan(F("use_roll_168_mean")) && isnan(F("use_lag_168")) &&
                  (flags & HVS_FEAT_F_HISTORY_SHORT) && (flags & HVS_FEAT_F_LAG_168_MISSING),
              "short history");
    /* A ring slot holding another hour reads as absent: hour T0 + NH h overwrites T0's. */
    put_hour(T0 + NH * HOUR, 99.0, 20, 21);
    compute(zh, T0 + 24 * HOUR, T0 + 25 * HOUR);
    HVS_CHECK(isnan(F("use_lag_24")), "stale ring slot is not hour T0");
}

static void test_weather_records(void) {
    hvs_feat_wx_hour_t w = {.hour = HVS_MS_NONE};
    hvs_ms_t h = utc(2024, 11, 1, 12);
    hvs_feat_wx_t r = {
        .issued_at = h - 10 * HOUR, .temp = 1, .rh = NAN, .cloud = NAN, .ghi = NAN, .wind = NAN};
    HVS_CHECK(hvs_feat_wx_add(&w, h, &r) == 1 && hvs_feat_wx_add(&w, h, &r) == 0, "idempotent");
    enum { N = HVS_FEAT_WX_KEEP + 2 };
    for (int i = 0; i < N; i++) { /* more issues than kept: the newest stay */
        r.issued_at = h - (9 - i) * HOUR;
        r.temp = i;
        hvs_feat_wx_add(&w, h, &r);
    }
    HVS_CHECK(w.n == HVS_FEAT_WX_KEEP && w.v[w.n - 1].temp == N - 1 &&
                  w.v[0].issued_at == h - (9 - (N - HVS_FEAT_WX_KEEP)) * HOUR,
              "kept %d newest issues", w.n);
    r.issued_at = h - 100 * HOUR;
    HVS_CHECK(hvs_feat_wx_add(&w, h, &r) == 0, "an issue older than all kept is ignored");
    /* a revised record of an issue replaces it */
    r = w.v[3];
    r.temp = 42;
    HVS_CHECK(hvs_feat_wx_add(&w, h, &r) == 1 && w.v[3].temp == 42, "same issue, new value");
}

/*
 * No leakage: pick random (target, as_of); compute; then scramble everything that was not known
 * at as_of (hours ending after as_of, the target hour's consumption, weather issued after as_of)
 * and compute again: every feature must be identical (NaN = NaN).
 */
static uint64_t rng_state = 2024;
static double rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    rng_state = x;
    return (double)(x >> 11) / 9007199254740992.0;
}
#define RND() rnd()

static void test_no_leakage(hvs_calendar_t *zh) {
    hvs_ms_t T0 = utc(2024, 10, 1, 0);
    int trials = 0, bad = 0;
    for (int trial = 0; trial < 400; trial++) {
        clear();
        for (int i = 0; i < 300; i++) {
            hvs_ms_t h = T0 + i * HOUR;
            double r[12];
            for (int k = 0; k < 12; k++)
                r[k] = RND();
            if (r[0] < 0.9)
                put_hour(h, r[1] * 5, 19 + r[2] * 3, 21);
            put_wx(h, h - (hvs_ms_t)(r[3] * 48) * HOUR, false, r[4] * 10, r[5] * 500);
            put_wx(h, h - (hvs_ms_t)(r[6] * 6) * HOUR, false, r[7] * 10, r[8] * 500);
            if (r[9] < 0.95)
                put_wx(h, h + HOUR + (hvs_ms_t)(r[10] * 3 * HOUR), true, r[11] * 10, r[11] * 400);
        }
        double r1 = RND(), r2 = RND(), r3 = RND();
        hvs_ms_t target = T0 + (170 + (int)(r1 * 120)) * HOUR;
        hvs_ms_t as_of = target - (hvs_ms_t)(r2 * 73 * HOUR) + (hvs_ms_t)(r3 * 3 * HOUR);
        double a[HVS_FEATURES_COUNT], b[HVS_FEATURES_COUNT];
        unsigned fa, fb;
        hvs_features_compute(&hist, zh, target, as_of, a, &fa);
        for (int i = 0; i < NH; i++)
            if (hours[i].hour != HVS_MS_NONE && hours[i].hour + HOUR > as_of)
                hours[i].use = 1e6 + RND(), hours[i].room_temp = -99, hours[i].comfort_gap = 77,
                hours[i].valve = -5, hours[i].temp_std = 99, hours[i].flat ^= 7u;
            else if (hours[i].hour == target)
                hours[i].use = 1e6 + RND(); /* the target itself, even when over */
        for (int i = 0; i < NW; i++)
            for (int k = 0; k < wx[i].n; k++)
                if (wx[i].v[k].issued_at > as_of)
                    wx[i].v[k].temp = 1e3, wx[i].v[k].ghi = -1,
                    wx[i].v[k].observed = !wx[i].v[k].observed;
        hvs_features_compute(&hist, zh, target, as_of, b, &fb);
        trials++;
        for (int i = 0; i < HVS_FEATURES_COUNT; i++)
            if (!(a[i] == b[i] || (isnan(a[i]) && isnan(b[i])))) {
                if (bad++ < 5)
                    fprintf(stderr, "leak: %s %g -> %g (target %lld as_of %lld)\n",
                            hvs_features_names()[i], a[i], b[i], (long long)target,
                            (long long)as_of);
            }
        if (fa != fb)
            bad++;
    }
    HVS_CHECK(trials == 400 && bad == 0, "%d leaks in %d random (target, as_of) pairs", bad,
              trials);
}

/* The rooms' features, worked out by hand: the hour's own valve and temperature spread, the
 * longest run of hours back from it in which one room stayed flat; missing for an hour without
 * rooms and for an hour not over at as_of. */
static void test_rooms(hvs_calendar_t *zh) {
    clear();
    hvs_ms_t H = utc(2024, 11, 13, 12);
    for (int k = 0; k < 10; k++) { /* hours H-9 .. H */
        hvs_ms_t h = H - (hvs_ms_t)(9 - k) * HOUR;
        hvs_feat_hour_t *s = &hours[(h / HOUR) % NH];
        /* room 0 flat in hours H-9..H-6 and H-2..H; room 2 flat in H-4..H; room 1 never */
        uint32_t flat = (k <= 3 || k >= 7 ? 1u : 0u) | (k >= 5 ? 4u : 0u);
        *s = (hvs_feat_hour_t){.hour = h,
                               .use = 1,
                               .water = NAN,
                               .room_temp = 20,
                               .setpoint = 21,
                               .comfort_gap = 1,
                               .valve = 10.0 * k,
                               .temp_std = 0.05 * k,
                               .rooms = 7,
                               .flat = flat};
    }
    compute(zh, H, H + HOUR);
    HVS_CHECK(NEAR(F("valve_mean_pct"), 90.0) && NEAR(F("room_temp_std_c"), 0.45),
              "valve %g std %g", F("valve_mean_pct"), F("room_temp_std_c"));
    HVS_CHECK(NEAR(F("room_flat_hours"), 5.0), "room 2 flat 5 hours: %g", F("room_flat_hours"));
    compute(zh, H - 3 * HOUR, H + HOUR); /* k = 6: room 2 flat since k = 5 */
    HVS_CHECK(NEAR(F("room_flat_hours"), 2.0), "two hours: %g", F("room_flat_hours"));
    compute(zh, H - 4 * HOUR, H + HOUR); /* k = 5: room 2's first flat hour, room 0 not flat */
    HVS_CHECK(NEAR(F("room_flat_hours"), 1.0), "one hour: %g", F("room_flat_hours"));
    compute(zh, H - 5 * HOUR, H + HOUR); /* k = 4: nobody flat */
    HVS_CHECK(NEAR(F("room_flat_hours"), 0.0), "none: %g", F("room_flat_hours"));
    compute(zh, H, H); /* the hour is not over at as_of: its rooms are not known */
    HVS_CHECK(isnan(F("valve_mean_pct")) && isnan(F("room_temp_std_c")) &&
                  isnan(F("room_flat_hours")),
              "future hour: rooms missing");
    hours[(H / HOUR) % NH].rooms = 0; /* an aggregate without rooms */
    hours[(H / HOUR) % NH].valve = 0;
    compute(zh, H, H + HOUR);
    HVS_CHECK(isnan(F("valve_mean_pct")) && isnan(F("room_flat_hours")),
              "no rooms: missing, never 0 (%g)", F("valve_mean_pct"));
}

/* The Zurich calendar the cases share, made by the first case that needs it. */
static hvs_calendar_t *zh_cal;

/* The readers' rounding (features.h): each number to its resolution, the result the double a
 * decimal literal names, stable when rounded again, and stored by pack.h in at most 3 bytes
 * where the unrounded mean took 9. */
static void test_hour_rounding(void) {
    hvs_feat_hour_t h = {.hour = 0,
                         .use = 1.6000000000058208,
                         .water = 35.5557,
                         .room_temp = 21.283333333333335,
                         .setpoint = NAN,
                         .comfort_gap = -0.001,
                         .valve = 33.333333333333336,
                         .temp_std = 0.123456,
                         .revision = 3,
                         .rooms = 7,
                         .flat = 2};
    size_t before = 0;
    double *x[] = {&h.use, &h.water, &h.room_temp, &h.comfort_gap, &h.valve, &h.temp_std};
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        hvs_pack_put_double(NULL, 0, &before, *x[i]);
    hvs_feat_hour_round(&h);
    HVS_CHECK(h.use == 1.6 && h.water == 35.56 && h.room_temp == 21.28 && h.valve == 33.33 &&
                  h.temp_std == 0.12,
              "rounded: use %.17g water %.17g room %.17g valve %.17g std %.17g", h.use, h.water,
              h.room_temp, h.valve, h.temp_std);
    HVS_CHECK(h.comfort_gap == 0 && !signbit(h.comfort_gap), "-0.001 degC is 0, not -0: %g",
              h.comfort_gap);
    HVS_CHECK(isnan(h.setpoint) && h.revision == 3 && h.rooms == 7 && h.flat == 2 && h.hour == 0,
              "unknown stays unknown; counts and the hour untouched");
    size_t after = 0;
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) {
        size_t one = 0;
        hvs_pack_put_double(NULL, 0, &one, *x[i]);
        HVS_CHECK(one <= 3, "number %zu (%.17g) packs in %zu bytes", i, *x[i], one);
        after += one;
    }
    HVS_CHECK(before >= 40 && after <= 15, "6 numbers: %zu bytes unrounded, %zu rounded", before,
              after);
    hvs_feat_hour_t again = h;
    hvs_feat_hour_round(&again);
    double *y[] = {&again.use,         &again.water, &again.room_temp, &again.setpoint,
                   &again.comfort_gap, &again.valve, &again.temp_std};
    double *z[] = {&h.use,         &h.water, &h.room_temp, &h.setpoint,
                   &h.comfort_gap, &h.valve, &h.temp_std};
    for (size_t i = 0; i < sizeof y / sizeof *y; i++)
        HVS_CHECK(memcmp(y[i], z[i], sizeof(double)) == 0, "rounding twice changes number %zu", i);

    hvs_feat_hour_t e = {.use = -0.0026,
                         .water = 1e13,
                         .room_temp = INFINITY,
                         .setpoint = 20.004999,
                         .comfort_gap = -1.255000001,
                         .valve = 99.996,
                         .temp_std = 1e-9};
    hvs_feat_hour_round(&e);
    HVS_CHECK(e.use == -0.003 && e.water == 1e13 && e.room_temp == INFINITY && e.setpoint == 20 &&
                  e.comfort_gap == -1.26 && e.valve == 100 && e.temp_std == 0 &&
                  !signbit(e.temp_std),
              "edges: use %.17g water %g room %g setpoint %.17g gap %.17g valve %.17g std %g",
              e.use, e.water, e.room_temp, e.setpoint, e.comfort_gap, e.valve, e.temp_std);
}

/* Rooms are rounded as they are read (rooms.h), by every reader: 0.01 degC and 0.01 %. */
static void test_room_rounding(void) {
    hvs_room_raw_t raw = {
        .name = "kitchen",
        .name_len = 7,
        .has = 0x3f,
        .v = {21.283333333333335, 20.95, 21.6049, 0.0471404520791, 20.004999, 33.333333333333336},
        .changes = 2,
        .seen = 4};
    hvs_room_t r;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_rooms_check(&raw, 0, &r, &err) == 0, "a valid room: %s", err.msg);
    HVS_CHECK(r.temp_mean == 21.28 && r.temp_min == 20.95 && r.temp_max == 21.6 &&
                  r.temp_std == 0.05 && r.setpoint == 20 && r.valve == 33.33 && r.changes == 2 &&
                  r.seen == 4,
              "mean %.17g min %.17g max %.17g std %.17g setpoint %.17g valve %.17g", r.temp_mean,
              r.temp_min, r.temp_max, r.temp_std, r.setpoint, r.valve);
    raw.has = 0x3e;
    HVS_REQUIRE(hvs_rooms_check(&raw, 0, &r, &err) == 0, "without a mean: %s", err.msg);
    HVS_CHECK(isnan(r.temp_mean), "a missing mean stays NaN: %g", r.temp_mean);
}

static void free_calendar(void) { hvs_calendar_destroy(zh_cal); }

static hvs_calendar_t *zh(void) {
    if (!zh_cal) {
        hvs_err_t err;
        HVS_REQUIRE(hvs_calendar_new("CH-ZH", &zh_cal, &err) == 0, "calendar");
        hvs_test_cleanup(free_calendar);
    }
    return zh_cal;
}

static void case_time_and_calendar(void) { test_time_and_calendar(zh()); }
static void case_lags_rolls_weather(void) { test_lags_rolls_weather(zh()); }
static void case_no_leakage(void) { test_no_leakage(zh()); }
static void case_rooms(void) { test_rooms(zh()); }

static const hvs_test_case_t cases[] = {
    {"names_and_version", test_names_and_version},
    {"local_time_holidays_and_calendar", case_time_and_calendar},
    {"lags_rolls_and_weather_as_known_at_as_of", case_lags_rolls_weather},
    {"weather_issues_kept_newest_and_revised", test_weather_records},
    {"no_leakage_from_after_as_of", case_no_leakage},
    {"rooms", case_rooms},
    {"hour_numbers_rounded_to_their_resolution", test_hour_rounding},
    {"room_numbers_rounded_as_read", test_room_rounding},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
