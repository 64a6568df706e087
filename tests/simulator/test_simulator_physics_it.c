/*
 * test_simulator_physics_it - runs the real hvs-simulator (clean delivery) and checks, on the
 * JSON lines it writes, what a building physicist would: determinism, heating against outdoor
 * temperature per archetype, passive against old, the effect of sun, counters, vacations, and
 * the signature of every labelled fault in its window.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs_test.h"
#include "sim_data.h"

#define DAY 86400000LL
#define HOUR 3600000LL

static char g_dir[256];

static char *run_sim(const char *args, const char *tag, size_t *len) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s --out jsonl --labels-out %s/%s.labels --weather-out %s/%s.weather "
             "--topology-out %s/%s.topology %s 2>%s/%s.log",
             HVS_TEST_SIMULATOR, g_dir, tag, g_dir, tag, g_dir, tag, args, g_dir, tag);
    char *out = NULL;
    int rc = hvs_test_run(cmd, NULL, 0, &out, len);
    HVS_REQUIRE(rc == 0, "simulator failed (%d): %s", rc, cmd);
    return out;
}

static char *path(const char *tag, const char *ext) {
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s.%s", g_dir, tag, ext);
    return buf[i];
}

/* Least squares y = a + b x1 + c x2 (3x3 normal equations by Cramer's rule). */
static void fit2(const double *y, const double *x1, const double *x2, int n, double *a, double *b,
                 double *c) {
    double s[3][3] = {{0}}, t[3] = {0};
    for (int i = 0; i < n; i++) {
        double v[3] = {1, x1[i], x2 ? x2[i] : 0};
        for (int r = 0; r < 3; r++) {
            t[r] += v[r] * y[i];
            for (int q = 0; q < 3; q++)
                s[r][q] += v[r] * v[q];
        }
    }
    if (!x2)
        s[2][2] = 1; /* c = 0 */
#define DET(m)                                                                                     \
    (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -                                           \
     m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +                                           \
     m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))
    double d = DET(s), out[3];
    for (int k = 0; k < 3; k++) {
        double m[3][3];
        memcpy(m, s, sizeof m);
        for (int r = 0; r < 3; r++)
            m[r][k] = t[r];
        out[k] = DET(m) / d;
    }
    *a = out[0], *b = out[1], *c = out[2];
}

static double corr(const double *x, const double *y, int n) {
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++)
        mx += x[i], my += y[i];
    mx /= n, my /= n;
    for (int i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxy / sqrt(sxx * syy);
}

/* An apartment's heating energy between two instants from its reported counter. */
static double apt_heat(const sd_series_t *s, int64_t from, int64_t to) {
    double a = sd_counter_at(s, 0, from), b = sd_counter_at(s, 0, to);
    return isnan(a) || isnan(b) ? NAN : b - a;
}

/* Room values of one sensor inside [from, to). */
static int room_values(const sd_series_t *s, int sensor, int room, int64_t from, int64_t to,
                       double *out, int64_t *ts, int max) {
    int n = 0;
    for (size_t i = 0; i < s->n && n < max; i++)
        if (s->ev[i].sensor == sensor && s->ev[i].room == room && s->ev[i].ts >= from &&
            s->ev[i].ts < to) {
            if (ts)
                ts[n] = s->ev[i].ts;
            out[n++] = s->ev[i].value;
        }
    return n;
}

/* The last reported value of a room sensor at or before t. */
static double room_at(const sd_series_t *s, int sensor, int room, int64_t t) {
    return sd_value_at(s, sensor, room, t);
}

static double mean_outdoor(const sd_building_t *b, int64_t from, int64_t to) {
    double s = 0;
    int n = 0;
    for (size_t i = 0; i < b->nweather; i++)
        if (b->weather[i].time >= from && b->weather[i].time < to)
            s += b->weather[i].temp, n++;
    return n ? s / n : NAN;
}

#define START_MS 1728950400000LL /* 2024-10-15T00:00:00Z */
#define RUN_DAYS 100
#define NB 6
#define NA 12

static void check_determinism(const char *out, size_t len) {
    size_t len2, len3;
    char *again = run_sim("--clean --seed 11 --start 2024-10-15T00:00:00Z --days 100 "
                          "--buildings 6 --apartments-per-building 12 --new-building-fraction 0 "
                          "--fault-rate 4 --vacation-rate 1.5 --guest-rate 1 --override-rate 1",
                          "again", &len2);
    HVS_CHECK(len2 == len && memcmp(out, again, len) == 0, "same seed: outputs differ (%zu vs %zu)",
              len, len2);
    size_t l1, l2;
    char *lab1 = sd_read_file(path("phys", "labels"), &l1);
    char *lab2 = sd_read_file(path("again", "labels"), &l2);
    HVS_CHECK(lab1 && lab2 && l1 == l2 && memcmp(lab1, lab2, l1) == 0, "same seed: labels differ");
    char *other = run_sim("--clean --seed 12 --start 2024-10-15T00:00:00Z --days 100 "
                          "--buildings 6 --apartments-per-building 12 --new-building-fraction 0 "
                          "--fault-rate 4 --vacation-rate 1.5 --guest-rate 1 --override-rate 1",
                          "other", &len3);
    HVS_CHECK(len3 != len || memcmp(out, other, len) != 0, "another seed: same output");
    free(again);
    free(other);
    free(lab1);
    free(lab2);
}

/* Daily heat per building against daily weather. */
static void check_heating_vs_weather(sim_data_t *d) {
    double intensity[NB];
    for (int b = 0; b < NB; b++) {
        double heat[RUN_DAYS], temp[RUN_DAYS], total = 0;
        double hs[RUN_DAYS], ts[RUN_DAYS], gs[RUN_DAYS];
        int n = 0, ns = 0, days = 0;
        for (int day = 1; day < RUN_DAYS - 1; day++) {
            int64_t t0 = START_MS + day * DAY;
            double h = 0, tm, g;
            for (int a = 0; a < NA; a++)
                h += apt_heat(&d->apt[b][a], t0, t0 + DAY);
            if (isnan(h) || !sd_daily_weather(&d->b[b], t0, &tm, &g))
                continue;
            total += h;
            days++;
            heat[n] = h, temp[n] = tm, n++;
            /* The sun's effect is judged where heating never stops (below 8 degC): on mild
             * days heating is clipped at zero and no straight line fits. */
            /* The sun, judged where it acts: heat from 09 to 14 UTC against the temperature and
             * irradiance of those hours, on days cold enough that heating never stops. Slow
             * confounders (Christmas trips, vacations) barely move within a day's window. */
            if (tm < 8) {
                int64_t w0 = t0 + 9 * HOUR, w1 = t0 + 14 * HOUR;
                double hw = 0, tw = 0, gw = 0;
                for (int a = 0; a < NA; a++)
                    hw += apt_heat(&d->apt[b][a], w0, w1);
                for (size_t i = 0; i < d->b[b].nweather; i++)
                    if (d->b[b].weather[i].time >= w0 && d->b[b].weather[i].time < w1)
                        tw += d->b[b].weather[i].temp / 5, gw += d->b[b].weather[i].ghi / 5;
                if (!isnan(hw))
                    hs[ns] = hw, ts[ns] = tw, gs[ns] = gw, ns++;
            }
        }
        HVS_REQUIRE(n > 80, "building %d: only %d days with data", b, n);
        double r = corr(temp, heat, n);
        double a0, bt, cg;
        HVS_REQUIRE(ns > 30, "building %d: only %d cold days", b, ns);
        fit2(hs, ts, gs, ns, &a0, &bt, &cg);
        intensity[b] = total / d->b[b].area_m2 / days * 365.25;
        printf("building %d %-22s area %5.0f m2: r(heat,T)=%.3f  dHeat/dT=%.1f kWh/K  "
               "midday dHeat/dGHI=%.3f kWh per W/m2  %.0f kWh/m2a (Oct-Jan pace)\n",
               b, d->b[b].archetype, d->b[b].area_m2, r, bt, cg, intensity[b]);
        HVS_CHECK(r < -0.75, "building %d (%s): heating not driven by cold, r=%.3f", b,
                  d->b[b].archetype, r);
        HVS_CHECK(bt < 0, "building %d: colder hours must need more heat (slope %.2f)", b, bt);
        HVS_CHECK(cg < 0,
                  "building %d: sunny days must need less heat at equal temperature "
                  "(GHI coefficient %.3f)",
                  b, cg);
    }
    /* Buildings 0, 1, 2 are modern, old and passive. */
    HVS_CHECK(!strcmp(d->b[1].archetype, "old_poorly_insulated") &&
                  !strcmp(d->b[2].archetype, "passive"),
              "archetypes of the first buildings: %s %s", d->b[1].archetype, d->b[2].archetype);
    HVS_CHECK(intensity[2] < 0.3 * intensity[1], "passive %.1f vs old %.1f kWh/m2a", intensity[2],
              intensity[1]);
    HVS_CHECK(intensity[0] < 0.6 * intensity[1] && intensity[0] > intensity[2],
              "modern %.1f between passive %.1f and old %.1f", intensity[0], intensity[2],
              intensity[1]);
}

static void check_counters(sim_data_t *d) {
    int decreases = 0;
    for (int b = 0; b < NB; b++)
        for (int a = 0; a < NA; a++) {
            sd_series_t *s = &d->apt[b][a];
            double last[2] = {-1, -1};
            for (size_t i = 0; i < s->n; i++) {
                int k = s->ev[i].sensor;
                if (k > 1)
                    continue;
                if (s->ev[i].value < last[k])
                    decreases++;
                last[k] = s->ev[i].value;
            }
        }
    HVS_CHECK_EQ_INT(decreases, 0);
}

static double median(double *v, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    return n ? v[n / 2] : NAN;
}

static void check_labels(sim_data_t *d) {
    int by_type[32] = {0};
    static const char *const faults[] = {"stuck_valve",  "no_heat_response", "sensor_flatline",
                                         "sensor_drift", "sensor_noise",     "efficiency_loss"};
    int checked[6] = {0}, ok[6] = {0};
    static double buf[20000], buf2[20000];
    static int64_t tbuf[20000];
    for (size_t i = 0; i < d->nlabels; i++) {
        sd_label_t *l = &d->labels[i];
        HVS_CHECK(l->start < l->end, "label %zu (%s): start %lld >= end %lld", i, l->type,
                  (long long)l->start, (long long)l->end);
        HVS_CHECK(l->start >= START_MS - 365 * DAY && l->start < START_MS + RUN_DAYS * DAY,
                  "label %zu (%s) starts outside the run", i, l->type);
        int f = -1;
        for (int k = 0; k < 6; k++)
            if (!strcmp(l->type, faults[k]))
                f = k;
        if (!strcmp(l->category, "fault"))
            HVS_CHECK(f >= 0, "unknown fault type %s", l->type);
        if (!strcmp(l->category, "benign"))
            HVS_CHECK(f < 0, "benign label of a fault type %s", l->type);
        if (f < 0)
            continue;
        by_type[f]++;
        /* Judge only faults alone in their apartment: a vacation or a second fault in the
         * same window blurs any signature. */
        bool alone = true;
        for (size_t j = 0; j < d->nlabels; j++) {
            sd_label_t *o = &d->labels[j];
            /* Sensor faults do not change energy: they do not blur an efficiency loss. */
            bool harmless = f == 5 && !strncmp(o->type, "sensor_", 7);
            if (j != i && o->building == l->building && o->apartment == l->apartment &&
                strcmp(o->type, "night_shift") && strcmp(o->type, "move_in") && !harmless &&
                o->start < l->end && l->start < o->end)
                alone = false;
        }
        if (!alone)
            continue;
        HVS_REQUIRE(l->building >= 0 && l->apartment >= 0 && l->apartment < d->b[l->building].napts,
                    "fault label %zu without a known apartment", i);
        bool room_level = f != 5;
        HVS_CHECK(!room_level || (l->room >= 0 && l->room < d->b[l->building].nrooms[l->apartment]),
                  "room fault %s without a known room", l->type);
        sd_series_t *s = &d->apt[l->building][l->apartment];
        int64_t from = l->start + DAY / 2, to = l->end;
        if (to > START_MS + RUN_DAYS * DAY)
            to = START_MS + RUN_DAYS * DAY;
        if (to - from < DAY)
            continue; /* too short inside the run to judge */
        double outdoor = mean_outdoor(&d->b[l->building], from, to);
        switch (f) {
        case 0: { /* stuck valve: heating on while the room is well above its setpoint */
            int n = room_values(s, 2, l->room, from, to, buf, tbuf, 20000), above = 0;
            for (int k = 0; k < n; k++)
                if (buf[k] > room_at(s, 3, l->room, tbuf[k]) + 2.0)
                    above++;
            double heat = apt_heat(s, from, to);
            checked[f]++;
            if (n > 0 && above > n * 0.6 && heat > 0)
                ok[f]++;
            else
                printf("stuck valve %zu: %d/%d reports above setpoint+2, heat %.1f\n", i, above, n,
                       heat);
            break;
        }
        case 1: { /* no heat response: the valve stays open, the room below its setpoint */
            /* Only where physics makes it visible: in a well-insulated block the neighbours
             * and the flat's other rooms keep a radiator-less room near its setpoint. */
            if (!(outdoor < 8) || strcmp(d->b[l->building].archetype, "old_poorly_insulated"))
                break;
            int nv = room_values(s, 4, l->room, from, to, buf, NULL, 20000);
            double valve = median(buf, nv);
            int n = room_values(s, 2, l->room, from, to, buf, tbuf, 20000);
            for (int k = 0; k < n; k++)
                buf2[k] = buf[k] - room_at(s, 3, l->room, tbuf[k]);
            double gap = median(buf2, n);
            checked[f]++;
            if (valve >= 50 && gap < -0.5)
                ok[f]++;
            else
                printf("no heat %zu: valve median %.0f, temp - setpoint median %.2f (T_out %.1f)\n",
                       i, valve, gap, outdoor);
            break;
        }
        case 2: { /* flat line: one value the whole window */
            int n = room_values(s, 2, l->room, l->start + 2 * HOUR, to, buf, NULL, 20000);
            bool flat = n > 0;
            for (int k = 1; k < n; k++)
                flat = flat && buf[k] == buf[0];
            checked[f]++;
            ok[f] += flat;
            break;
        }
        case 3: { /* drift: the reported-minus-setpoint trend has the label's sign and size */
            int n = room_values(s, 2, l->room, from, to, buf, tbuf, 20000);
            double *x = buf2;
            for (int k = 0; k < n; k++) {
                x[k] = (double)(tbuf[k] - l->start) / DAY;
                buf[k] -= room_at(s, 3, l->room, tbuf[k]);
            }
            double a0, slope, c0;
            fit2(buf, x, NULL, n, &a0, &slope, &c0);
            checked[f]++;
            if (n >= 5 && slope * l->magnitude > 0 && fabs(slope) > 0.5 * fabs(l->magnitude))
                ok[f]++;
            else
                printf("drift %zu: slope %.3f K/day, label %.3f (n=%d)\n", i, slope, l->magnitude,
                       n);
            break;
        }
        case 4: { /* noise: successive reports jump by far more than a room can change */
            int n = room_values(s, 2, l->room, from, to, buf, NULL, 20000);
            double sd = 0;
            for (int k = 1; k < n; k++)
                sd += (buf[k] - buf[k - 1]) * (buf[k] - buf[k - 1]);
            sd = n > 1 ? sqrt(sd / (n - 1)) : 0;
            checked[f]++;
            if (sd > 1.0)
                ok[f]++;
            else
                printf("noise %zu: successive-difference rms %.2f\n", i, sd);
            break;
        }
        case 5: { /* efficiency loss: more heat per degree-day late in the window than before */
            /* Heat recovery is lost over the first half of the episode: judge its second half
             * (as much of it as the run holds) against the 14 days before it started. */
            int64_t late0 = l->start + (l->end - l->start) / 2;
            int64_t late1 = l->end < START_MS + RUN_DAYS * DAY ? l->end : START_MS + RUN_DAYS * DAY;
            if (l->start - 14 * DAY < START_MS || late1 - late0 < 7 * DAY)
                break;
            double hdd_before = 0, hdd_late = 0;
            for (int64_t t = l->start - 14 * DAY; t < l->start; t += HOUR)
                hdd_before += fmax(0, 18 - mean_outdoor(&d->b[l->building], t, t + HOUR)) / 24;
            for (int64_t t = late0; t < late1; t += HOUR)
                hdd_late += fmax(0, 18 - mean_outdoor(&d->b[l->building], t, t + HOUR)) / 24;
            double before = apt_heat(s, l->start - 14 * DAY, l->start) / hdd_before;
            double late = apt_heat(s, late0, late1) / hdd_late;
            checked[f]++;
            if (late > 1.15 * before)
                ok[f]++;
            else
                printf("efficiency loss %zu: %.3f kWh/Kd before, %.3f late\n", i, before, late);
            break;
        }
        }
    }
    for (int k = 0; k < 6; k++) {
        printf("fault %-17s labelled %3d, judged %3d, signature seen %3d\n", faults[k], by_type[k],
               checked[k], ok[k]);
        HVS_CHECK(by_type[k] > 0, "no %s injected", faults[k]);
        HVS_CHECK(checked[k] > 0, "no %s could be judged", faults[k]);
        /* Each judged fault shows its signature; a tenth may be blurred by an overlapping
         * episode (a vacation, another fault in the same room). */
        HVS_CHECK(ok[k] >= checked[k] * 0.9, "%s: signature in %d of %d", faults[k], ok[k],
                  checked[k]);
    }
    HVS_CHECK(checked[0] + checked[1] + checked[2] + checked[3] + checked[4] > 20,
              "too few faults judged");
}

static void check_vacations(sim_data_t *d) {
    int judged = 0, low = 0;
    for (size_t i = 0; i < d->nlabels; i++) {
        sd_label_t *l = &d->labels[i];
        if (strcmp(l->type, "vacation") != 0)
            continue;
        HVS_CHECK(!strcmp(l->category, "benign"), "vacation must be benign");
        int64_t from = l->start + 2 * DAY, to = l->end;
        if (to - from < 2 * DAY || l->start - 10 * DAY < START_MS || to > START_MS + RUN_DAYS * DAY)
            continue;
        bool alone = true; /* a fault in the same flat (a stuck valve) heats regardless */
        for (size_t j = 0; j < d->nlabels; j++)
            if (!strcmp(d->labels[j].category, "fault") && d->labels[j].building == l->building &&
                d->labels[j].apartment == l->apartment && d->labels[j].start < l->end &&
                l->start < d->labels[j].end)
                alone = false;
        if (!alone)
            continue;
        sd_series_t *s = &d->apt[l->building][l->apartment];
        double during = apt_heat(s, from, to) / ((double)(to - from) / DAY);
        double before = apt_heat(s, l->start - 10 * DAY, l->start) / 10.0;
        if (!(before > 1.0))
            continue; /* nothing to compare with (passive building in mild weather) */
        judged++;
        if (during < 0.25 * before)
            low++;
        else
            printf("vacation %zu: %.2f kWh/day during, %.2f before\n", i, during, before);
    }
    printf("vacations judged %d, near-zero heating in %d\n", judged, low);
    HVS_CHECK(judged >= 5, "too few vacations judged (%d)", judged);
    HVS_CHECK(low >= judged * 0.9, "vacations with near-zero heating: %d of %d", low, judged);
}

/* ---- the fixture: one simulated run, loaded, on first use ------------------------------- */

static char *sim_out;
static size_t sim_len;
static sim_data_t *data;

static void teardown(void) {
    if (data) {
        sim_data_fini(data);
        free(data);
        data = NULL;
    }
    free(sim_out);
    sim_out = NULL;
    if (g_dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
        hvs_test_run(cmd, NULL, 0, NULL, NULL);
        g_dir[0] = 0;
    }
}

static sim_data_t *fixture(void) {
    if (data)
        return data;
    snprintf(g_dir, sizeof g_dir, "/tmp/hvs-sim-phys-XXXXXX");
    HVS_REQUIRE(mkdtemp(g_dir), "mkdtemp");
    hvs_test_cleanup(teardown);
    int64_t t0 = hvs_test_now_ms();
    sim_out = run_sim(
        "--clean --seed 11 --start 2024-10-15T00:00:00Z --days 100 --buildings 6 "
        "--apartments-per-building 12 --new-building-fraction 0 --fault-rate 4 --vacation-rate 1.5 --guest-rate 1 --override-rate 1",
        "phys", &sim_len);
    printf("simulated 6 x 12 apartments x 100 days in %lld ms: %zu bytes\n",
           (long long)(hvs_test_now_ms() - t0), sim_len);
    sim_data_t *d = calloc(1, sizeof *d);
    HVS_REQUIRE(d, "oom");
    sim_data_load(d, sim_out, sim_len, path("phys", "labels"), path("phys", "weather"),
                  path("phys", "topology"));
    HVS_CHECK_EQ_INT(d->bad_lines, 0);
    for (int b = 0; b < NB; b++) {
        HVS_REQUIRE(d->b[b].present && d->b[b].napts == NA, "building %d not in the topology", b);
        HVS_REQUIRE(d->b[b].nweather >= RUN_DAYS * 24 - 1, "building %d: %zu weather hours", b,
                    d->b[b].nweather);
        for (int a = 0; a < NA; a++) {
            HVS_REQUIRE(d->apt[b][a].n > 0, "apartment %d/%d sent nothing", b, a);
            sd_sort(&d->apt[b][a]);
        }
    }
    data = d;
    return data;
}

static void case_counters(void) { check_counters(fixture()); }
static void case_heating_vs_weather(void) { check_heating_vs_weather(fixture()); }
static void case_labels(void) { check_labels(fixture()); }
static void case_vacations(void) { check_vacations(fixture()); }
static void case_determinism(void) {
    fixture();
    check_determinism(sim_out, sim_len);
}

static const hvs_test_case_t cases[] = {
    {"counters_never_decrease", case_counters},
    {"heating_follows_weather_and_archetype", case_heating_vs_weather},
    {"fault_labels_show_their_signature", case_labels},
    {"vacations_near_zero_heating", case_vacations},
    {"same_seed_same_output", case_determinism},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
