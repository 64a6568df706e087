/*
 * test_fx_engine - the feature worker's state machine in process, its outcomes worked out here:
 * which vectors go out when (observation known / waited for / timed out and upgraded), their
 * as_of and target, the weather they use; replaying the same input twice, any arrival order of
 * weather and aggregates, and a revised hour give the final vectors (latest per entity and hour)
 * and state of a clean run; the missing-weather storm (20 % of a day without temperature)
 * raises a DATA_QUALITY alert with that rate while the affected vectors carry NaN, never 0.
 */
#include <math.h>

#include "engine.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define T0 1733011200000LL /* 2024-12-01T00:00:00Z */
#define MAXV 20000

typedef struct got {
    char key[96];
    hvs_ms_t hour, as_of;
    double x[HVS_FEATURES_COUNT], target;
    unsigned flags;
    bool upgrade;
    uint32_t revision;
    int count;
} got_t;

typedef struct sink {
    got_t v[MAXV];
    size_t n, emitted;
    fx_dq_alert_t alerts[64];
    char alert_feature[64][64];
    size_t nalerts;
} sink_t;

static int on_vector(void *o, const fx_vector_t *v, hvs_err_t *err) {
    (void)err;
    sink_t *s = o;
    char key[96];
    snprintf(key, sizeof key, "%s/%s/%lld", v->building, v->entity, (long long)v->hour);
    s->emitted++;
    got_t *g = NULL;
    for (size_t i = 0; i < s->n && !g; i++)
        if (strcmp(s->v[i].key, key) == 0)
            g = &s->v[i];
    if (!g) {
        HVS_REQUIRE(s->n < MAXV, "sink full");
        g = &s->v[s->n++];
        memset(g, 0, sizeof *g);
        snprintf(g->key, sizeof g->key, "%s", key);
    }
    g->count++;
    if (g->count > 1 && v->revision < g->revision)
        return 0; /* consumers keep the highest revision (equal: the later) */
    g->revision = v->revision;
    g->hour = v->hour;
    g->as_of = v->as_of;
    memcpy(g->x, v->x, sizeof g->x);
    g->target = v->target;
    g->flags = v->flags;
    g->upgrade = v->upgrade;
    return 0;
}

static int on_alert(void *o, const fx_dq_alert_t *a, hvs_err_t *err) {
    (void)err;
    sink_t *s = o;
    if (s->nalerts < 64) {
        s->alerts[s->nalerts] = *a;
        snprintf(s->alert_feature[s->nalerts], 64, "%s", a->feature);
        s->nalerts++;
    }
    return 0;
}

static got_t *find(sink_t *s, const char *b, const char *e, hvs_ms_t hour) {
    char key[96];
    snprintf(key, sizeof key, "%s/%s/%lld", b, e, (long long)hour);
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].key, key) == 0)
            return &s->v[i];
    return NULL;
}

static fx_config_t conf(void) {
    fx_config_t c = {.weather_wait = 2 * HOUR,
                     .upgrade_window = 48 * HOUR,
                     .default_region = "CH-ZH",
                     .dq_limit = 0.05,
                     .dq_min_vectors = 24};
    c.dq_features[0] = hvs_features_index("temperature_c");
    c.ndq = 1;
    return c;
}

/* One input event: an aggregate or a weather record. */
typedef struct event {
    int kind; /* 0 aggregate, 1 weather */
    fx_aggregate_t a;
    fx_weather_t w;
    hvs_ms_t t; /* event time for the watermark */
} event_t;

static event_t ev[4000];
static size_t nev;

static void add_agg(const char *b, const char *e, hvs_ms_t hour, double use, uint32_t rev) {
    event_t *x = &ev[nev++];
    memset(x, 0, sizeof *x);
    x->kind = 0;
    snprintf(x->a.building, sizeof x->a.building, "%s", b);
    snprintf(x->a.entity, sizeof x->a.entity, "%s", e);
    x->a.hour = (hvs_feat_hour_t){hour, use, NAN, 21.0, 21.5, 0.5, rev, NAN, NAN, 0, 0};
    x->t = hour + HOUR;
}

static void add_wx(const char *b, hvs_ms_t hour, hvs_ms_t issued, bool observed, double temp) {
    event_t *x = &ev[nev++];
    memset(x, 0, sizeof *x);
    x->kind = 1;
    snprintf(x->w.building, sizeof x->w.building, "%s", b);
    x->w.hour = hour;
    x->w.rec = (hvs_feat_wx_t){issued, observed, temp, 70, 40, 100, 3};
    x->t = issued;
}

/* Feed events in the given order through a fresh engine (one partition) the way the worker
 * does: the watermark is the smaller of the two inputs' newest event times (one input racing
 * ahead must not make the other late), advance after each; then the stream "ends"
 * (watermark + 3 h). */
static fx_t *run(const event_t *const *order, size_t n, sink_t *s, fx_t *reuse) {
    fx_config_t c = conf();
    fx_t *g = reuse ? reuse : fx_new(&c, NULL);
    fx_sink_t sink = {on_vector, on_alert, s};
    hvs_ms_t wm = HVS_MS_NONE, seen[2] = {HVS_MS_NONE, HVS_MS_NONE};
    hvs_err_t err = {0};
    for (size_t i = 0; i < n; i++) {
        const event_t *x = order[i];
        if (x->t > seen[x->kind])
            seen[x->kind] = x->t;
        wm = seen[0] == HVS_MS_NONE   ? seen[1]
             : seen[1] == HVS_MS_NONE ? seen[0]
             : seen[0] < seen[1]      ? seen[0]
                                      : seen[1];
        int rc = x->kind == 0 ? fx_on_aggregate(g, 0, &x->a, wm, false, &sink, &err)
                              : fx_on_weather(g, 0, &x->w, wm, false, &sink, &err);
        HVS_REQUIRE(rc == 0, "input %zu: %s", i, err.msg);
        HVS_REQUIRE(fx_advance(g, 0, wm, false, &sink, &err) == 0, "advance");
    }
    wm = seen[0] > seen[1] ? seen[0] : seen[1]; /* the stream ended: both inputs idle */
    fx_advance(g, 0, wm + 3 * HOUR, false, &sink, &err);
    return g;
}

static bool same_vec(const got_t *a, const got_t *b) {
    if (a->as_of != b->as_of || a->flags != b->flags ||
        !(a->target == b->target || (isnan(a->target) && isnan(b->target))))
        return false;
    for (int i = 0; i < HVS_FEATURES_COUNT; i++)
        if (!(a->x[i] == b->x[i] || (isnan(a->x[i]) && isnan(b->x[i]))))
            return false;
    return true;
}

static size_t compare(sink_t *ref, sink_t *got, const char *what) {
    size_t same = 0;
    for (size_t i = 0; i < ref->n; i++) {
        got_t *o = NULL;
        for (size_t k = 0; k < got->n && !o; k++)
            if (strcmp(got->v[k].key, ref->v[i].key) == 0)
                o = &got->v[k];
        if (o && same_vec(&ref->v[i], o))
            same++;
        else if (same + 3 > i)
            fprintf(stderr, "  %s: %s differs (as_of %lld vs %lld)\n", what, ref->v[i].key,
                    (long long)ref->v[i].as_of, o ? (long long)o->as_of : -1LL);
    }
    return same;
}

/* Ten days of one building (2 apartments + the building series); weather: a forecast issued
 * 6 h ahead and the observation 20 min after each hour ends. */
static void build_stream(void) {
    nev = 0;
    for (int i = 0; i < 240; i++) {
        hvs_ms_t h = T0 + i * HOUR;
        add_wx("b1", h, h - 6 * HOUR, false, 2.0 + 0.01 * i);
        add_agg("b1", "apt_1", h, 0.5 + 0.01 * (i % 24), 0);
        add_agg("b1", "apt_2", h, 0.7 + 0.02 * (i % 24), 0);
        add_agg("b1", "-", h, 1.2 + 0.03 * (i % 24), 0);
        add_wx("b1", h, h + HOUR + 20 * 60000, true, 3.0 + 0.01 * i);
    }
}

static void test_timing(void) {
    static sink_t s;
    memset(&s, 0, sizeof s);
    fx_config_t c = conf();
    fx_t *g = fx_new(&c, NULL);
    fx_sink_t sink = {on_vector, on_alert, &s};
    hvs_err_t err = {0};
    hvs_ms_t h = T0 + 100 * HOUR;
    /* 1. aggregate first, observation later: waits, then as_of = the observation's issue */
    fx_aggregate_t a = {
        .building = "b1", .entity = "apt_1", .hour = {h, 0.9, NAN, 21, 21.5, 0.5, 0}};
    HVS_CHECK(fx_on_aggregate(g, 0, &a, h + HOUR, false, &sink, &err) == 0 && s.emitted == 0,
              "no observation yet: waits");
    fx_weather_t fc = {
        .building = "b1", .hour = h, .rec = {h - 3 * HOUR, false, 1.5, 70, 40, 100, 3}};
    fx_on_weather(g, 0, &fc, h + HOUR, false, &sink, &err);
    HVS_CHECK(s.emitted == 0, "a forecast does not release it");
    fx_weather_t ob = {
        .building = "b1", .hour = h, .rec = {h + HOUR + 25 * 60000, true, 2.5, 70, 40, 100, 3}};
    fx_on_weather(g, 0, &ob, h + HOUR + 25 * 60000, false, &sink, &err);
    got_t *v = find(&s, "b1", "apt_1", h);
    int it = hvs_features_index("temperature_c"), itf = hvs_features_index("weather_is_forecast");
    HVS_CHECK(v && s.emitted == 1 && v->as_of == h + HOUR + 25 * 60000 && v->x[it] == 2.5 &&
                  v->x[itf] == 0 && v->target == 0.9 && !v->upgrade,
              "released by the observation: as_of %lld temp %g", v ? (long long)v->as_of : 0,
              v ? v->x[it] : 0);
    /* 2. observation known first: emitted at once, as_of = max(hour end, issue) */
    fx_aggregate_t a2 = {
        .building = "b1", .entity = "apt_2", .hour = {h, 1.1, NAN, 21, 21.5, 0.5, 0}};
    fx_on_aggregate(g, 0, &a2, h + 2 * HOUR, false, &sink, &err);
    v = find(&s, "b1", "apt_2", h);
    HVS_CHECK(v && s.emitted == 2 && v->as_of == h + HOUR + 25 * 60000, "at once");
    /* 3. no observation: the watermark passes hour end + 2 h -> out with the forecast, flagged;
     * then the observation upgrades it */
    hvs_ms_t h2 = h + HOUR;
    fx_weather_t fc2 = {
        .building = "b1", .hour = h2, .rec = {h2 - 3 * HOUR, false, 1.0, 70, 40, 100, 3}};
    fx_on_weather(g, 0, &fc2, h + 2 * HOUR, false, &sink, &err);
    fx_aggregate_t a3 = {
        .building = "b1", .entity = "apt_1", .hour = {h2, 0.8, NAN, 21, 21.5, 0.5, 0}};
    fx_on_aggregate(g, 0, &a3, h2 + HOUR, false, &sink, &err);
    fx_advance(g, 0, h2 + 3 * HOUR - 1, false, &sink, &err);
    HVS_CHECK(!find(&s, "b1", "apt_1", h2), "still waiting 1 ms before the deadline");
    fx_advance(g, 0, h2 + 3 * HOUR, false, &sink, &err);
    v = find(&s, "b1", "apt_1", h2);
    HVS_CHECK(v && v->as_of == h2 + 3 * HOUR && v->x[it] == 1.0 && v->x[itf] == 1 &&
                  (v->flags & HVS_FEAT_F_WEATHER_FORECAST),
              "timed out: forecast used and flagged");
    fx_weather_t ob2 = {
        .building = "b1", .hour = h2, .rec = {h2 + 5 * HOUR, true, 1.8, 70, 40, 100, 3}};
    fx_on_weather(g, 0, &ob2, h2 + 5 * HOUR, false, &sink, &err);
    v = find(&s, "b1", "apt_1", h2);
    HVS_CHECK(v && v->count == 2 && v->upgrade && v->as_of == h2 + 5 * HOUR && v->x[it] == 1.8 &&
                  !(v->flags & HVS_FEAT_F_WEATHER_FORECAST),
              "upgraded by the late observation");
    /* 4. nothing at all: missing weather, NaN and flagged */
    hvs_ms_t h3 = h + 10 * HOUR;
    fx_aggregate_t a4 = {
        .building = "b1", .entity = "apt_1", .hour = {h3, 0.8, NAN, 21, 21.5, 0.5, 0}};
    fx_on_aggregate(g, 0, &a4, h3 + 4 * HOUR, false, &sink, &err);
    v = find(&s, "b1", "apt_1", h3);
    HVS_CHECK(v && isnan(v->x[it]) && isnan(v->x[hvs_features_index("hdh")]) &&
                  (v->flags & HVS_FEAT_F_MISSING_WEATHER),
              "late aggregate without any weather: out at once, missing");
    HVS_CHECK(v && v->revision == 0, "weak before the weather reached its deadline: revision %u",
              v ? v->revision : 99);
    /* 5. an observation more than the upgrade window late upgrades nothing; it shows the weather
     * is complete up to the deadline, so the weak vector goes out once more as final ("settled",
     * revision 1), still as of the deadline and without the observation */
    fx_advance(g, 0, h3 + 60 * HOUR, false, &sink, &err);
    size_t before = s.emitted;
    fx_weather_t ob3 = {
        .building = "b1", .hour = h3, .rec = {h3 + 61 * HOUR, true, 1, 70, 40, 100, 3}};
    fx_on_weather(g, 0, &ob3, h3 + 61 * HOUR, false, &sink, &err);
    v = find(&s, "b1", "apt_1", h3);
    HVS_CHECK(s.emitted == before + 1 && v && !v->upgrade && v->revision == 1 &&
                  v->as_of == h3 + 3 * HOUR && isnan(v->x[it]),
              "no upgrade past the window: settled weak vector (revision %u, as_of %lld)",
              v ? v->revision : 99, v ? (long long)v->as_of : 0LL);
    fx_on_weather(g, 0, &ob3, h3 + 61 * HOUR, false, &sink, &err);
    HVS_CHECK(s.emitted == before + 1, "the same observation again changes nothing");
    /* 6. an hour older than the ring can serve: too_late */
    fx_aggregate_t old = {
        .building = "b1",
        .entity = "apt_1",
        .hour = {h3 + 60 * HOUR - (HVS_FS_HOURS - 167) * HOUR, 1, NAN, 21, 21, 0, 0}};
    HVS_CHECK(fx_on_aggregate(g, 0, &old, h3 + 60 * HOUR, false, &sink, &err) == HVS_EINVAL &&
                  strcmp(err.reason, FX_R_TOO_LATE) == 0,
              "too late: %s", err.reason);
    fx_destroy(g);
}

static void test_order_replay_revision(void) {
    build_stream();
    static sink_t ref, got;
    static const event_t *order[4000];
    for (size_t i = 0; i < nev; i++)
        order[i] = &ev[i];
    memset(&ref, 0, sizeof ref);
    fx_t *g = run(order, nev, &ref, NULL);
    HVS_CHECK(ref.n == 240 * 3, "every entity-hour has a vector: %zu", ref.n);
    int ilag = hvs_features_index("use_lag_24");
    got_t *v = find(&ref, "b1", "apt_2", T0 + 200 * HOUR);
    HVS_CHECK(v && fabs(v->x[ilag] - (0.7 + 0.02 * (176 % 24))) < 1e-12 &&
                  fabs(v->target - (0.7 + 0.02 * (200 % 24))) < 1e-12 &&
                  v->as_of == T0 + 201 * HOUR + 20 * 60000,
              "lag and target from the stream");
    /* replay: everything again onto the same engine changes no final vector */
    memcpy(&got, &ref, sizeof got);
    run(order, nev, &got, g);
    HVS_CHECK(compare(&ref, &got, "replay") == ref.n && got.n == ref.n, "replay: same vectors");
    fx_destroy(g);
    /* The weather stream 20 h behind the aggregates (a provider outage, then catch-up; a
     * lagging poller), in its own order: vectors go out weak after 2 h and are upgraded, when
     * the observations come, to exactly the reference's. */
    static event_t shifted[4000];
    const event_t *o2[4000];
    for (size_t i = 0; i < nev; i++) {
        shifted[i] = ev[i];
        if (ev[i].kind == 1)
            shifted[i].t += 20 * HOUR; /* arrival time, for sorting */
    }
    for (size_t i = 0; i < nev; i++)
        o2[i] = &shifted[i];
    for (size_t i = 1; i < nev; i++) /* stable insertion sort by arrival */
        for (size_t j = i; j > 0 && o2[j - 1]->t > o2[j]->t; j--) {
            const event_t *t = o2[j];
            o2[j] = o2[j - 1];
            o2[j - 1] = t;
        }
    for (size_t i = 0; i < nev; i++) /* event time back to the issue time */
        if (shifted[i].kind == 1)
            shifted[i].t = shifted[i].w.rec.issued_at;
    static sink_t late_obs;
    memset(&late_obs, 0, sizeof late_obs);
    fx_t *gl = run(o2, nev, &late_obs, NULL);
    HVS_CHECK(compare(&ref, &late_obs, "late weather") == ref.n && late_obs.emitted > ref.n,
              "weather 20 h late: the same final vectors after %zu emissions (%llu upgrades)",
              late_obs.emitted, (unsigned long long)fx_stats(gl)->upgrades);
    fx_destroy(gl);
    /* All weather first (forecasts and observations), then the aggregates: every observation is
     * known when its aggregate comes, so each vector goes out once, as the reference's. */
    size_t k = 0;
    for (int pass = 1; pass >= 0; pass--)
        for (size_t i = 0; i < nev; i++)
            if (ev[i].kind == pass)
                o2[k++] = &ev[i];
    static sink_t wx_first;
    memset(&wx_first, 0, sizeof wx_first);
    fx_destroy(run(o2, nev, &wx_first, NULL));
    HVS_CHECK(compare(&ref, &wx_first, "weather first") == ref.n && wx_first.emitted == ref.n,
              "weather before all aggregates: the same vectors, each once (%zu)", wx_first.emitted);
    /* a revised hour: its vector goes out again with the new target; state as a clean run */
    size_t n0 = nev;
    add_agg("b1", "apt_1", T0 + 230 * HOUR, 2.5, 1);
    for (size_t i = 0; i < nev; i++)
        order[i] = &ev[i];
    static sink_t rev;
    memset(&rev, 0, sizeof rev);
    fx_t *gr = run(order, nev, &rev, NULL);
    v = find(&rev, "b1", "apt_1", T0 + 230 * HOUR);
    HVS_CHECK(v && v->count == 2 && v->target == 2.5, "revision re-emitted: %d times, target %g",
              v ? v->count : 0, v ? v->target : 0);
    (void)n0;
    /* the clean run: hour 230 of apt_1 is 2.5 from the start */
    build_stream();
    for (size_t i = 0; i < nev; i++)
        if (ev[i].kind == 0 && strcmp(ev[i].a.entity, "apt_1") == 0 &&
            ev[i].a.hour.hour == T0 + 230 * HOUR)
            ev[i].a.hour.use = 2.5;
    for (size_t i = 0; i < nev; i++)
        order[i] = &ev[i];
    static sink_t clean;
    memset(&clean, 0, sizeof clean);
    fx_t *gc = run(order, nev, &clean, NULL);
    got_t *vc = find(&clean, "b1", "apt_1", T0 + 230 * HOUR);
    HVS_CHECK(vc && v && same_vec(vc, v), "revised hour's vector = the clean run's");
    /* every hour after 230 was emitted before the revision arrived (it came last), so only the
     * state is compared for them: rings equal slot for slot */
    size_t nb;
    fx_building_t **br = fx_buildings(gr, &nb), **bc = fx_buildings(gc, &nb);
    hvs_fs_entity_t *er = hvs_fs_entity(br[0]->fs, "apt_1", false),
                    *ec = hvs_fs_entity(bc[0]->fs, "apt_1", false);
    int eq = 0;
    for (size_t i = 0; er && ec && i < HVS_FS_HOURS; i++)
        eq += er->hours[i].hour == ec->hours[i].hour && er->hours[i].use == ec->hours[i].use;
    HVS_CHECK(eq == HVS_FS_HOURS, "state equals the clean run's: %d slots", eq);
    fx_destroy(gr);
    fx_destroy(gc);
}

static void test_missing_weather_storm(void) {
    build_stream();
    /* a day where 20 % of the hours have no weather at all (the provider failed) */
    hvs_ms_t day = T0 + 5 * 24 * HOUR;
    size_t w = 0;
    int dropped = 0;
    for (size_t i = 0; i < nev; i++) {
        bool drop = ev[i].kind == 1 && ev[i].w.hour >= day && ev[i].w.hour < day + 24 * HOUR &&
                    ((ev[i].w.hour - day) / HOUR) % 5 == 0;
        if (drop) {
            dropped += ev[i].w.rec.observed;
            continue;
        }
        ev[w++] = ev[i];
    }
    nev = w;
    HVS_CHECK(dropped == 5, "5 of 24 hours without weather");
    static const event_t *order[4000];
    for (size_t i = 0; i < nev; i++)
        order[i] = &ev[i];
    static sink_t s;
    memset(&s, 0, sizeof s);
    fx_destroy(run(order, nev, &s, NULL));
    int it = hvs_features_index("temperature_c"), nan_t = 0, zeros = 0, flagged = 0;
    for (size_t i = 0; i < s.n; i++)
        if (s.v[i].hour >= day && s.v[i].hour < day + 24 * HOUR) {
            nan_t += isnan(s.v[i].x[it]);
            zeros += s.v[i].x[it] == 0;
            flagged += (s.v[i].flags & HVS_FEAT_F_MISSING_WEATHER) != 0;
        }
    HVS_CHECK(nan_t == 15 && flagged == 15 && zeros == 0,
              "15 vectors (5 hours x 3) with temperature NaN and flagged, none 0: %d %d %d", nan_t,
              flagged, zeros);
    /* the first alert once 24 vectors are in, updates when the rate moved by 5 points; the
     * last one within 5 points of the day's 15 / 72 */
    const fx_dq_alert_t *last = NULL;
    for (size_t i = 0; i < s.nalerts; i++)
        if (s.alerts[i].day == day && strcmp(s.alert_feature[i], "temperature_c") == 0)
            last = &s.alerts[i];
    HVS_CHECK(last && last->n >= 24 && fabs(last->rate - (double)last->missing / last->n) < 1e-12 &&
                  fabs(last->rate - 15.0 / 72.0) < 0.05 && last->rate > 0.05,
              "DATA_QUALITY alert for the day: %zu alerts, last %d of %d", s.nalerts,
              last ? last->missing : -1, last ? last->n : -1);
    size_t other = 0;
    for (size_t i = 0; i < s.nalerts; i++)
        other += s.alerts[i].day != day;
    HVS_CHECK(other == 0, "no alert for the clean days: %zu", other);
}

/* ---- any interleaving of the two inputs: the same latest vectors ---------------------------- */

static uint64_t rng_state;
static double rnd(void) { /* xorshift64*, uniform [0, 1) */
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

#define MESSY_HOURS 144
static event_t aggs[4000], wxs[12000];
static size_t naggs, nwxs;

static void messy_agg(const char *b, const char *e, int i, int delay_h, uint32_t rev) {
    HVS_REQUIRE(naggs < sizeof aggs / sizeof *aggs, "aggregates");
    event_t *x = &aggs[naggs++];
    memset(x, 0, sizeof *x);
    x->kind = 0;
    snprintf(x->a.building, sizeof x->a.building, "%s", b);
    snprintf(x->a.entity, sizeof x->a.entity, "%s", e);
    double use = 0.4 + 0.03 * (i % 24) + 0.05 * (e[0] == '-') + 0.2 * rev;
    x->a.hour = (hvs_feat_hour_t){T0 + i * HOUR, use, NAN, 20.5 + 0.01 * i, 21.0, 0.5, rev, NAN,
                                  NAN,           0,   0};
    x->t = T0 + (i + 1 + delay_h) * HOUR + 60000; /* arrival; event time below */
}

static void messy_wx(const char *b, int hour_i, hvs_ms_t issued, bool obs, double temp) {
    HVS_REQUIRE(nwxs < sizeof wxs / sizeof *wxs, "weather");
    event_t *x = &wxs[nwxs++];
    memset(x, 0, sizeof *x);
    x->kind = 1;
    snprintf(x->w.building, sizeof x->w.building, "%s", b);
    x->w.hour = T0 + hour_i * HOUR;
    x->w.rec = (hvs_feat_wx_t){issued, obs, temp, 70, 40, 100, 3};
    x->t = issued;
}

static int by_arrival(const void *a, const void *b) {
    const event_t *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t;
}

/*
 * Six days of two buildings as the upstream workers publish them: aggregates in order with
 * revisions of earlier hours (1-30 h later), late hours, duplicates and gaps; weather in issue
 * order per building: 6-hourly forecasts 48 h ahead, observations 5 min after each hour, some
 * 3-20 h late, some never, some published again corrected, and a 10 h outage of b2's provider
 * (what was due comes at its end, issued then).
 */
static void messy_stream(void) {
    rng_state = 0x9e3779b97f4a7c15ULL;
    naggs = nwxs = 0;
    const char *bs[] = {"b1", "b2"}, *es[] = {"-", "apt_1", "apt_2"};
    for (int i = 0; i < MESSY_HOURS; i++)
        for (int k = 0; k < 2; k++)
            for (int j = 0; j < 3; j++) {
                double r = rnd();
                if (r < 0.03)
                    continue; /* a gap */
                int delay = r < 0.06 ? 2 + (int)(rnd() * 8) : 0;
                messy_agg(bs[k], es[j], i, delay, 0);
                if (rnd() < 0.03)
                    messy_agg(bs[k], es[j], i, delay, 0); /* a duplicate */
                if (rnd() < 0.1) {                        /* revised later, once or twice */
                    messy_agg(bs[k], es[j], i, delay + 1 + (int)(rnd() * 30), 1);
                    if (rnd() < 0.3)
                        messy_agg(bs[k], es[j], i, delay + 31, 2);
                }
            }
    for (int k = 0; k < 2; k++) {
        hvs_ms_t out_from = T0 + 60 * HOUR, out_to = T0 + 70 * HOUR;
        for (int i = 0; i < MESSY_HOURS; i++) {
            hvs_ms_t h = T0 + i * HOUR;
            if (i % 6 == 0)
                for (int f = 0; f < 48; f++)
                    messy_wx(bs[k], i + f, h, false, 1.0 + 0.02 * (i + f) + 0.1 * k);
            double r = rnd(), temp = 1.5 + 0.02 * i + 0.1 * k;
            if (r < 0.04)
                continue; /* never observed */
            hvs_ms_t issued = h + HOUR + 5 * 60000;
            if (r < 0.12)
                issued = h + (3 + (int)(rnd() * 17)) * HOUR;
            messy_wx(bs[k], i, issued, true, temp);
            if (rnd() < 0.05)
                messy_wx(bs[k], i, issued + 7 * HOUR, true, temp + 0.3); /* corrected */
        }
        for (size_t i = 0; i < nwxs; i++) /* the outage: published at its end */
            if (strcmp(wxs[i].w.building, bs[k]) == 0 && k == 1 &&
                wxs[i].w.rec.issued_at >= out_from && wxs[i].w.rec.issued_at < out_to)
                wxs[i].w.rec.issued_at = wxs[i].t = out_to;
    }
    /* arrival order within each topic (stable: equal times keep the publishing order) */
    for (size_t i = 1; i < naggs; i++)
        for (size_t j = i; j > 0 && by_arrival(&aggs[j - 1], &aggs[j]) > 0; j--) {
            event_t t = aggs[j];
            aggs[j] = aggs[j - 1];
            aggs[j - 1] = t;
        }
    for (size_t i = 1; i < nwxs; i++)
        for (size_t j = i; j > 0 && by_arrival(&wxs[j - 1], &wxs[j]) > 0; j--) {
            event_t t = wxs[j];
            wxs[j] = wxs[j - 1];
            wxs[j - 1] = t;
        }
    for (size_t i = 0; i < naggs; i++) /* an aggregate's event time is its window's end */
        aggs[i].t = aggs[i].a.hour.hour + HOUR;
}

/* The two topics merged: each next event from the aggregates with probability p_agg. */
static size_t interleave(const event_t **order, double p_agg) {
    size_t a = 0, w = 0, n = 0;
    while (a < naggs || w < nwxs)
        order[n++] = w == nwxs || (a < naggs && rnd() < p_agg) ? &aggs[a++] : &wxs[w++];
    return n;
}

/* The reference order: both topics by arrival time, as a worker keeping up would see them. */
static size_t arrival_order(const event_t **order) {
    size_t a = 0, w = 0, n = 0;
    while (a < naggs || w < nwxs) {
        hvs_ms_t ta = a < naggs ? aggs[a].a.hour.hour + HOUR : INT64_MAX;
        order[n++] = w == nwxs || (a < naggs && ta <= wxs[w].t) ? &aggs[a++] : &wxs[w++];
    }
    return n;
}

/* Keys whose latest vector has the reference's revision. */
static size_t same_revisions(const sink_t *ref, const sink_t *got) {
    size_t same = 0;
    for (size_t i = 0; i < ref->n; i++)
        for (size_t k = 0; k < got->n; k++)
            if (strcmp(got->v[k].key, ref->v[i].key) == 0 &&
                got->v[k].revision == ref->v[i].revision)
                same++;
    return same;
}

static void test_any_interleaving(void) {
    messy_stream();
    static const event_t *order[16000];
    static sink_t ref, got;
    size_t n = arrival_order(order);
    memset(&ref, 0, sizeof ref);
    fx_t *g = run(order, n, &ref, NULL);
    fx_stats_t st = *fx_stats(g);
    fx_destroy(g);
    HVS_CHECK(ref.n > 2 * 3 * (MESSY_HOURS - 10) && st.upgrades > 20 && st.weak > 20,
              "reference: %zu entity-hours, %zu vectors, %llu weak, %llu upgrades", ref.n,
              ref.emitted, (unsigned long long)st.weak, (unsigned long long)st.upgrades);
    static const double bias[] = {0.5, 0.9, 0.1, 0.97, 0.03, 0.7, 0.3, 0.5};
    for (size_t t = 0; t < sizeof bias / sizeof *bias + 2; t++) {
        char what[64];
        if (t < sizeof bias / sizeof *bias) {
            rng_state = 1000 + t;
            n = interleave(order, bias[t]);
            snprintf(what, sizeof what, "interleaving %zu (p %.2f)", t, bias[t]);
        } else { /* one topic entirely before the other */
            bool wx_first = t == sizeof bias / sizeof *bias;
            n = 0;
            for (int pass = 0; pass < 2; pass++) {
                bool wx = (pass == 0) == wx_first;
                for (size_t i = 0; i < (wx ? nwxs : naggs); i++)
                    order[n++] = wx ? &wxs[i] : &aggs[i];
            }
            snprintf(what, sizeof what, "%s first", wx_first ? "weather" : "aggregates");
        }
        memset(&got, 0, sizeof got);
        fx_destroy(run(order, n, &got, NULL));
        size_t same = compare(&ref, &got, what), same_rev = same_revisions(&ref, &got);
        HVS_CHECK(same == ref.n && got.n == ref.n && same_rev == ref.n,
                  "%s: %zu of %zu latest vectors equal (%zu revisions), %zu keys, %zu emitted",
                  what, same, ref.n, same_rev, got.n, got.emitted);
    }
}

/* ---- a rebuild after lost state: replayed input quiet, then live ---------------------------- */

typedef struct feeder {
    fx_t *g;
    fx_sink_t sink;
    hvs_ms_t seen[2];
} feeder_t;

/* One event through g the way run() does; quiet as during a rebuild's replay. */
static void feed(feeder_t *f, const event_t *x, bool quiet) {
    hvs_err_t err = {0};
    if (x->t > f->seen[x->kind])
        f->seen[x->kind] = x->t;
    hvs_ms_t wm = f->seen[0] == HVS_MS_NONE   ? f->seen[1]
                  : f->seen[1] == HVS_MS_NONE ? f->seen[0]
                  : f->seen[0] < f->seen[1]   ? f->seen[0]
                                              : f->seen[1];
    int rc = x->kind == 0 ? fx_on_aggregate(f->g, 0, &x->a, wm, quiet, &f->sink, &err)
                          : fx_on_weather(f->g, 0, &x->w, wm, quiet, &f->sink, &err);
    HVS_REQUIRE(rc == 0 && fx_advance(f->g, 0, wm, quiet, &f->sink, &err) == 0, "feed: %s",
                err.msg);
}

/*
 * The state is lost after the worker had handled the first ka aggregates and kw weather records
 * (in the reference's order). What it had published stays on the topic; a new engine replays
 * those records quietly, in another interleaving, then handles the rest live, and sends what the
 * replay held back when both inputs are past the loss. Every entity-hour must end on the
 * reference's latest vector (highest revision), none lost to the quiet replay.
 */
static void test_rebuild_replay(void) {
    messy_stream();
    static const event_t *order[16000];
    static sink_t ref, got;
    size_t n = arrival_order(order);
    memset(&ref, 0, sizeof ref);
    fx_destroy(run(order, n, &ref, NULL));
    static const double at[] = {0.2, 0.5, 0.8};
    for (size_t c = 0; c < sizeof at / sizeof *at; c++) {
        size_t k = (size_t)(at[c] * (double)n), ka = 0, kw = 0;
        memset(&got, 0, sizeof got);
        fx_config_t cf = conf();
        /* the lost worker's life: its outputs are what the topic holds */
        feeder_t before = {
            fx_new(&cf, NULL), {on_vector, on_alert, &got}, {HVS_MS_NONE, HVS_MS_NONE}};
        for (size_t i = 0; i < k; i++) {
            feed(&before, order[i], false);
            ka += order[i]->kind == 0;
            kw += order[i]->kind == 1;
        }
        fx_destroy(before.g);
        /* the rebuild: replayed records (quiet) and new ones (live), merged anew */
        feeder_t after = {
            fx_new(&cf, NULL), {on_vector, on_alert, &got}, {HVS_MS_NONE, HVS_MS_NONE}};
        rng_state = 77 + c;
        size_t ia = 0, iw = 0;
        bool flushed = false;
        while (ia < naggs || iw < nwxs) {
            bool take_a = iw == nwxs || (ia < naggs && rnd() < 0.35);
            if (take_a) {
                feed(&after, &aggs[ia], ia < ka);
                ia++;
            } else {
                feed(&after, &wxs[iw], iw < kw);
                iw++;
            }
            if (!flushed && ia >= ka && iw >= kw) {
                hvs_err_t err = {0};
                HVS_REQUIRE(fx_flush_unsent(after.g, 0, &after.sink, &err) == 0, "flush");
                flushed = true;
            }
        }
        hvs_err_t err = {0};
        hvs_ms_t end = after.seen[0] > after.seen[1] ? after.seen[0] : after.seen[1];
        fx_advance(after.g, 0, end + 3 * HOUR, false, &after.sink, &err);
        fx_destroy(after.g);
        char what[48];
        snprintf(what, sizeof what, "lost at %.0f %%", at[c] * 100);
        size_t same = compare(&ref, &got, what), same_rev = same_revisions(&ref, &got);
        HVS_CHECK(same == ref.n && got.n == ref.n && same_rev == ref.n,
                  "%s (%zu aggregates, %zu weather handled): %zu of %zu latest vectors equal, %zu "
                  "keys",
                  what, ka, kw, same, ref.n, got.n);
    }
}

static const hvs_test_case_t cases[] = {
    {"timing", test_timing},
    {"order_replay_revision", test_order_replay_revision},
    {"missing_weather_storm", test_missing_weather_storm},
    {"any_interleaving", test_any_interleaving},
    {"rebuild_replay", test_rebuild_replay},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
