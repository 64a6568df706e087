/*
 * test_task_rows - training rows and serving rows are the same bits. A synthetic building (a
 * building series and two flats, 40 days with gaps, room temperatures, observed weather and
 * 6-hourly forecasts, a few hours without any weather) goes through the trainer's path
 * (tr_rows_build: forecast at several horizons, forecast day-ahead, anomaly-residual,
 * anomaly-classifier on every apartment-day). For every row, the entity-hour's FeatureVector is
 * computed at the row's as_of from the same history, encoded by the features worker's own
 * writer (vectors.c, what goes to features.hourly), decoded, and turned into a row by the
 * serving path (hvs_taskrow_from_vector): its doubles equal hvs_taskrow_build's on the computed
 * features, and cast to float they equal the trainer's row bit for bit (memcmp, NaN patterns
 * included); the decoded target in the task's unit equals the trainer's target. The comparison
 * is shown to be sharp: serving forecast rows without the per-m2 scaling differ. Hand-computed:
 * 12.5 kWh over 250 m2 is 0.05 per m2 and back; the errors (refresh, no area, another feature
 * set); the known target scales.
 * A digest of every trainer row is printed (unchanged across a refactoring of dataset.c).
 */
#include <math.h>

#include "dataset.h"
#include "hvs/featstore.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "hvs/task_rows.h"
#include "hvs_test.h"
#include "vectors.h"

#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define DAYS 40
#define AREA 250.0
#define START 1704067200000LL /* 2024-01-01 */

static hvs_calendar_t *cal;
static hvs_serde_t *serde;
static fx_output_t *fxo;
static hvs_decoder_t *dec;

static int info(void *opaque, const char *building, tr_building_info_t *out) {
    (void)opaque, (void)building;
    *out = (tr_building_info_t){AREA, START - 400 * DAY, cal, NULL};
    return 0;
}

static uint64_t rs = 7;
static double uni(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (double)(rs >> 11) / 9007199254740992.0;
}

/* The observed temperature of each hour (NaN: none), as the history last made got it. */
static double observed_temp[DAYS * 24];

/* apt_hours: the apartments' ring (0: the building's); backfill: observed weather only, issued
 * at each hour's end as hvs-weather --backfill publishes it, no forecast. */
static tr_history_t *make_history_wx(size_t apt_hours, bool backfill) {
    tr_history_t *h = tr_history_new(60 * 24, 10);
    if (apt_hours)
        tr_history_set_apartment_hours(h, apt_hours);
    static const char *const ents[] = {HVS_FS_BUILDING, "apt_1", "apt_2"};
    for (int k = 0; k < DAYS * 24; k++) {
        hvs_ms_t hr = START + (hvs_ms_t)k * HOUR;
        double temp = 4 - 8 * sin(k / 24.0) + 3 * uni();
        for (int e = 0; e < 3; e++) {
            if ((k + 5 * e) % 37 == 0)
                continue; /* an hour that never came */
            double use = (e ? 2.0 : 40.0) * (1 + 0.05 * (18 - temp)) * (0.8 + 0.4 * uni());
            if ((k + e) % 53 == 0)
                use = NAN; /* came without a heat reading */
            double room = e ? 20.5 + uni() : NAN, set = e ? 21.0 : NAN;
            hvs_feat_hour_t x = {hr, use, NAN, room, set, e ? set - room : NAN, 0, NAN, NAN, 0, 0};
            HVS_REQUIRE(tr_history_put_hour(h, "bldg_1", ents[e], &x) >= 0, "put hour");
        }
        observed_temp[k] = NAN;
        if (k % 97 == 5)
            continue; /* an hour without any weather */
        for (int l = 6; !backfill && l <= 72; l += 6) {
            hvs_ms_t issue = hvs_time_window_start(hr - l * HOUR, 6 * HOUR);
            hvs_feat_wx_t f = {issue,       false, temp + 0.1 * l * (uni() - 0.5), 70, 40,
                               120 * uni(), 3};
            HVS_REQUIRE(tr_history_put_weather(h, "bldg_1", hr, &f) >= 0, "put forecast");
        }
        if (k % 11 != 3) { /* now and then the observation is missing */
            hvs_feat_wx_t o = {
                hr + HOUR + (backfill ? 0 : 60000), true, temp, 75, 30, 100 * uni(), 2.5};
            HVS_REQUIRE(tr_history_put_weather(h, "bldg_1", hr, &o) >= 0, "put observation");
            observed_temp[k] = temp;
        }
    }
    return h;
}

static tr_history_t *make_history_apt(size_t apt_hours) {
    return make_history_wx(apt_hours, false);
}

static tr_history_t *make_history(void) { return make_history_apt(0); }

static uint64_t fnv(uint64_t d, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        d = (d ^ b[i]) * 1099511628211ull;
    return d;
}

/* Every row of r through the serving path; returns the rows that differ from the trainer's. */
static size_t serve_rows(const tr_history_t *h, const tr_select_t *sel, const tr_rows_t *r,
                         uint64_t *digest) {
    tr_task_t task = sel->task;
    size_t ncols = hvs_taskrow_ncols((hvs_task_t)task), bad = 0, bad_y = 0;
    HVS_REQUIRE(ncols == r->ncols, "%s: %zu columns, trainer %zu", tr_task_name(task), ncols,
                r->ncols);
    for (size_t i = 0; i < r->n; i++) {
        const tr_building_t *b = h->b[r->group[i]];
        const tr_series_t *s = b->s[r->series[i]];
        tr_building_info_t bi;
        info(NULL, b->id, &bi);
        hvs_feat_history_t v;
        tr_history_view(h, b, s, bi.commissioning, &v);
        double x[HVS_FEATURES_COUNT];
        unsigned flags;
        hvs_features_compute(&v, bi.cal, r->hour[i], r->as_of[i], x, &flags);
        const hvs_feat_hour_t *t = hvs_feat_hour_get(&v, r->hour[i]);
        fx_vector_t fv = {.building = b->id,
                          .entity = s->id,
                          .hour = r->hour[i],
                          .as_of = r->as_of[i],
                          .x = x,
                          .flags = flags,
                          .target = t ? t->use : NAN};
        const void *buf;
        size_t len;
        avro_value_t *val;
        hvs_err_t err = {0};
        HVS_REQUIRE(fx_output_encode(fxo, &fv, &buf, &len, &err) == 0 &&
                        hvs_decoder_decode(dec, buf, len, &val, &err) == 0,
                    "FeatureVector round trip: %s", err.msg);
        double served[HVS_TASKROW_MAX_COLS], direct[HVS_TASKROW_MAX_COLS];
        float f[HVS_TASKROW_MAX_COLS];
        HVS_REQUIRE(hvs_taskrow_from_vector((hvs_task_t)task, val, AREA, served, &err) == 0 &&
                        hvs_taskrow_build((hvs_task_t)task, x, AREA, direct, &err) == 0,
                    "%s row: %s", tr_task_name(task), err.msg);
        for (size_t c = 0; c < ncols; c++)
            f[c] = (float)served[c];
        if (memcmp(served, direct, ncols * sizeof *served) != 0 ||
            memcmp(f, &r->x[i * r->ncols], ncols * sizeof *f) != 0) {
            if (bad++ < 3)
                for (size_t c = 0; c < ncols; c++)
                    if (memcmp(&f[c], &r->x[i * r->ncols + c], sizeof *f) != 0)
                        fprintf(stderr, "%s row %zu column %s: served %a, trainer %a\n",
                                tr_task_name(task), i,
                                hvs_taskrow_columns((hvs_task_t)task, NULL)[c], (double)f[c],
                                (double)r->x[i * r->ncols + c]);
        }
        /* the target as a serving worker would score it: from the vector, in the task's unit */
        if (task != TR_ANOMALY_CLASSIFIER) {
            avro_value_t tf, tb;
            double tv = NAN;
            if (avro_value_get_by_name(val, "target", &tf, NULL) == 0 &&
                avro_value_get_current_branch(&tf, &tb) == 0 &&
                avro_value_get_type(&tb) == AVRO_DOUBLE)
                avro_value_get_double(&tb, &tv);
            float y = (float)hvs_taskrow_target((hvs_task_t)task, tv, AREA);
            float sc = (float)hvs_taskrow_divisor((hvs_task_t)task, AREA);
            bad_y += memcmp(&y, &r->y[i], sizeof y) != 0 ||
                     memcmp(&sc, &r->scale[i], sizeof sc) != 0;
        }
        *digest = fnv(*digest, &r->x[i * r->ncols], r->ncols * sizeof *r->x);
        *digest = fnv(*digest, &r->y[i], sizeof *r->y);
        *digest = fnv(*digest, &r->scale[i], sizeof *r->scale);
        *digest = fnv(*digest, &r->naive[i], sizeof *r->naive);
        *digest = fnv(*digest, &r->horizon[i], sizeof *r->horizon);
        *digest = fnv(*digest, &r->as_of[i], sizeof *r->as_of);
    }
    HVS_CHECK(bad_y == 0, "%s: %zu of %zu targets or scales differ", tr_task_name(task), bad_y,
              r->n);
    return bad;
}

/* Rows that change when forecast rows are served without the per-m2 scaling. */
static size_t unscaled_differ(const tr_history_t *h, const tr_rows_t *r) {
    size_t differ = 0, ncols = r->ncols;
    for (size_t i = 0; i < r->n; i++) {
        const tr_building_t *b = h->b[r->group[i]];
        hvs_feat_history_t v;
        tr_history_view(h, b, b->s[r->series[i]], START - 400 * DAY, &v);
        double x[HVS_FEATURES_COUNT], row[HVS_TASKROW_MAX_COLS];
        unsigned flags;
        hvs_features_compute(&v, cal, r->hour[i], r->as_of[i], x, &flags);
        HVS_REQUIRE(hvs_taskrow_build(HVS_TASK_FORECAST, x, 1.0, row, NULL) == 0, "area 1");
        float f[HVS_TASKROW_MAX_COLS];
        for (size_t c = 0; c < ncols; c++)
            f[c] = (float)row[c];
        differ += memcmp(f, &r->x[i * ncols], ncols * sizeof *f) != 0;
    }
    return differ;
}

static void test_trainer_equals_serving(void) {
    tr_history_t *h = make_history();
    static const int horizons[] = {1, 6, 13, 24, 36, 72};
    tr_labels_t labels;
    tr_labels_init(&labels);
    hvs_ms_t from = START + (DAYS - 4) * DAY, to = START + DAYS * DAY;
    for (int d = 0; d < 4; d++) {
        char id[64];
        snprintf(id, sizeof id, "apt_1#2024-02-%02d#ANOMALY", 6 + d);
        HVS_REQUIRE(tr_labels_put(&labels, id, "bldg_1", "apt_1", from + d * DAY,
                                  d % 2 ? TR_LABEL_POSITIVE : TR_LABEL_NEGATIVE, 1) == 1,
                    "label %s", id);
    }
    struct {
        const char *what;
        tr_select_t sel;
    } cases[] = {
        {"forecast at 6 horizons",
         {.task = TR_FORECAST,
          .from = from,
          .to = to,
          .horizons = horizons,
          .nhorizons = 6,
          .seed = 3,
          .weather_standin = true}},
        {"forecast day-ahead",
         {.task = TR_FORECAST, .from = from, .to = to, .day_ahead = true, .weather_standin = true}},
        {"anomaly-residual",
         {.task = TR_ANOMALY_RESIDUAL,
          .from = from,
          .to = to,
          .weather_wait = 2 * HOUR,
          .weather_standin = true}},
        {"anomaly-classifier (every apartment-day)",
         {.task = TR_ANOMALY_CLASSIFIER,
          .from = from,
          .to = to,
          .weather_wait = 2 * HOUR,
          .labels = &labels,
          .all_days = true,
          .weather_standin = true}},
    };
    uint64_t digest = 14695981039346656037ull;
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        tr_rows_t r;
        hvs_err_t err = {0};
        HVS_REQUIRE(tr_rows_build(h, &cases[k].sel, info, NULL, &r, &err) == 0, "%s: %s",
                    cases[k].what, err.msg);
        size_t nan_cells = 0;
        for (size_t i = 0; i < r.n * r.ncols; i++)
            nan_cells += isnan(r.x[i]);
        HVS_CHECK(r.n > 40 && nan_cells > 0, "%s: %zu rows, %zu missing cells", cases[k].what, r.n,
                  nan_cells);
        size_t bad = serve_rows(h, &cases[k].sel, &r, &digest);
        printf("%-42s %5zu rows x %2zu columns, %5zu missing cells, %zu served rows differ\n",
               cases[k].what, r.n, r.ncols, nan_cells, bad);
        HVS_CHECK(bad == 0, "%s: serving rows equal the trainer's bit for bit (%zu of %zu differ)",
                  cases[k].what, bad, r.n);
        HVS_CHECK(r.nstandin == 0,
                  "%s: weather stand-ins on, none used where forecasts exist (%zu)", cases[k].what,
                  r.nstandin);
        if (cases[k].sel.task == TR_FORECAST)
            HVS_CHECK(unscaled_differ(h, &r) > r.n / 2,
                      "%s: without the per-m2 scaling most rows would differ", cases[k].what);
        tr_rows_fini(&r);
    }
    printf("trainer rows digest %016llx\n", (unsigned long long)digest);
    tr_labels_fini(&labels);
    tr_history_destroy(h);
}

static int col(hvs_task_t t, const char *name) {
    size_t n;
    const char *const *c = hvs_taskrow_columns(t, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(c[i], name) == 0)
            return (int)i;
    return -1;
}

/* The columns trained models were fitted on, in their order: changing them invalidates every
 * published model, so they are pinned here, written out by hand. */
static void test_columns_pinned(void) {
    size_t n;
    const char *const *c = hvs_taskrow_columns(HVS_TASK_FORECAST, &n);
    HVS_CHECK_EQ_INT(n, 49);
    HVS_CHECK_EQ_STR(c[0], "horizon_h");
    HVS_CHECK_EQ_STR(c[16], "days_since_holiday");
    HVS_CHECK_EQ_STR(c[46], "temp_x_radiation");
    HVS_CHECK_EQ_STR(c[47], "comfort_gap_prev");
    HVS_CHECK_EQ_STR(c[48], "building_age_days");
    c = hvs_taskrow_columns(HVS_TASK_ANOMALY_RESIDUAL, &n);
    HVS_CHECK_EQ_INT(n, 52); /* feature set 2: the rooms' three, before the building's age */
    HVS_CHECK_EQ_STR(c[0], "hour");
    HVS_CHECK_EQ_STR(c[40], "wind_speed_ms");
    HVS_CHECK_EQ_STR(c[41], "hdh");
    HVS_CHECK_EQ_STR(c[44], "room_temp_c");
    HVS_CHECK_EQ_STR(c[46], "comfort_gap_c");
    HVS_CHECK_EQ_STR(c[47], "comfort_gap_prev");
    HVS_CHECK_EQ_STR(c[48], "valve_mean_pct");
    HVS_CHECK_EQ_STR(c[49], "room_temp_std_c");
    HVS_CHECK_EQ_STR(c[50], "room_flat_hours");
    HVS_CHECK_EQ_STR(c[51], "building_age_days");
    HVS_CHECK(hvs_taskrow_columns(HVS_TASK_ANOMALY_CLASSIFIER, NULL) == c, "classifier = residual");
}

static void test_by_hand(void) {
    double x[HVS_FEATURES_COUNT], row[HVS_TASKROW_MAX_COLS];
    for (int i = 0; i < HVS_FEATURES_COUNT; i++)
        x[i] = NAN;
    x[hvs_features_index("use_lag_24")] = 12.5;
    x[hvs_features_index("temperature_c")] = -3.25;
    x[hvs_features_index("horizon_h")] = 7;
    hvs_err_t err = {0};
    int iu = col(HVS_TASK_FORECAST, "use_lag_24"), it = col(HVS_TASK_FORECAST, "temperature_c");
    HVS_REQUIRE(iu >= 0 && it >= 0 &&
                    hvs_taskrow_build(HVS_TASK_FORECAST, x, 250.0, row, &err) == 0,
                "forecast row: %s", err.msg);
    HVS_CHECK(row[iu] == 0.05 && row[it] == -3.25 &&
                  row[col(HVS_TASK_FORECAST, "horizon_h")] == 7 &&
                  isnan(row[col(HVS_TASK_FORECAST, "use_roll_24_mean")]),
              "forecast: 12.5 kWh over 250 m2 is %g per m2, temperature not scaled, NaN stays NaN",
              row[iu]);
    HVS_CHECK(hvs_taskrow_to_kwh(HVS_TARGET_PER_HEATED_M2, 0.05, 250.0) == 12.5 &&
                  hvs_taskrow_to_kwh(HVS_TARGET_PER_HEATED_M2, row[iu], 250.0) == 12.5,
              "0.05 per m2 x 250 m2 is 12.5 kWh");
    HVS_CHECK(hvs_taskrow_target(HVS_TASK_FORECAST, 12.5, 250.0) == 0.05 &&
                  hvs_taskrow_divisor(HVS_TASK_FORECAST, 250.0) == 250.0,
              "forecast target per m2, divisor the area");
    HVS_CHECK(hvs_taskrow_build(HVS_TASK_ANOMALY_RESIDUAL, x, 250.0, row, &err) == 0 &&
                  row[col(HVS_TASK_ANOMALY_RESIDUAL, "use_lag_24")] == 12.5 &&
                  col(HVS_TASK_ANOMALY_RESIDUAL, "horizon_h") < 0 &&
                  hvs_taskrow_target(HVS_TASK_ANOMALY_RESIDUAL, 12.5, 250.0) == 12.5 &&
                  hvs_taskrow_divisor(HVS_TASK_ANOMALY_RESIDUAL, 250.0) == 1.0 &&
                  hvs_taskrow_to_kwh(HVS_TARGET_KWH, 12.5, NAN) == 12.5,
              "anomaly-residual: kWh as they are, no horizon column");
    HVS_CHECK(isnan(hvs_taskrow_to_kwh(HVS_TARGET_PROBABILITY, 0.7, 250.0)) &&
                  isnan(hvs_taskrow_to_kwh(HVS_TARGET_PER_HEATED_M2, 0.05, 0)) &&
                  isnan(hvs_taskrow_to_kwh((hvs_target_scale_t)9, 1, 1)),
              "no kWh from a probability, without an area, or of an unknown scale");
    double keep = row[0] = 42;
    HVS_CHECK(hvs_taskrow_build(HVS_TASK_FORECAST, x, 0, row, &err) == HVS_EINVAL &&
                  strcmp(err.reason, "no_area") == 0 &&
                  hvs_taskrow_build(HVS_TASK_FORECAST, x, NAN, row, &err) == HVS_EINVAL &&
                  row[0] == keep,
              "forecast rows need an area: %s", err.msg);
    HVS_CHECK(hvs_taskrow_build(HVS_TASK_REFRESH, x, 250.0, row, &err) == HVS_EINVAL &&
                  strcmp(err.reason, "bad_task") == 0 && hvs_taskrow_ncols(HVS_TASK_REFRESH) == 4 &&
                  hvs_taskrow_scale(HVS_TASK_REFRESH) == HVS_TARGET_PER_HEATED_M2,
              "refresh: columns listed, rows not from features: %s", err.msg);
    HVS_CHECK(hvs_taskrow_build((hvs_task_t)17, x, 250.0, row, &err) == HVS_EINVAL &&
                  hvs_taskrow_ncols((hvs_task_t)17) == 0,
              "an unknown task");
    /* the names the trainer writes as params.target_scale, and nothing else */
    HVS_CHECK(hvs_taskrow_scale_known("per_heated_m2") && hvs_taskrow_scale_known("kwh") &&
                  hvs_taskrow_scale_known("probability") && hvs_taskrow_scale_known(NULL) &&
                  !hvs_taskrow_scale_known("per_parsec") && !hvs_taskrow_scale_known("") &&
                  !hvs_taskrow_scale_known("PER_HEATED_M2"),
              "known target scales: per_heated_m2, kwh, probability, absent");
    for (int t = 0; t < HVS_TASK_COUNT; t++)
        HVS_CHECK(hvs_taskrow_scale_parse(hvs_taskrow_scale_name(
                      hvs_taskrow_scale((hvs_task_t)t))) == (int)hvs_taskrow_scale((hvs_task_t)t) &&
                      hvs_taskrow_task_parse(hvs_taskrow_task_name((hvs_task_t)t)) == t &&
                      (int)t == tr_task_parse(hvs_taskrow_task_name((hvs_task_t)t)),
                  "task %s: name and scale round trip, the trainer's task of the same number",
                  hvs_taskrow_task_name((hvs_task_t)t));
    /* a vector of another feature set is not served */
    fx_vector_t fv = {.building = "b",
                      .entity = "apt",
                      .hour = START,
                      .as_of = START + HOUR,
                      .x = x,
                      .target = NAN};
    const void *buf;
    size_t len;
    avro_value_t *val, f;
    HVS_REQUIRE(fx_output_encode(fxo, &fv, &buf, &len, &err) == 0 &&
                    hvs_decoder_decode(dec, buf, len, &val, &err) == 0,
                "vector: %s", err.msg);
    HVS_CHECK(hvs_taskrow_from_vector(HVS_TASK_ANOMALY_RESIDUAL, val, NAN, row, &err) == 0 &&
                  row[col(HVS_TASK_ANOMALY_RESIDUAL, "use_lag_24")] == 12.5,
              "an apartment's vector: no area needed: %s", err.msg);
    avro_value_get_by_name(val, "feature_set_version", &f, NULL);
    avro_value_set_string(&f, "fs-0-00000000");
    HVS_CHECK(hvs_taskrow_from_vector(HVS_TASK_ANOMALY_RESIDUAL, val, NAN, row, &err) ==
                      HVS_ESERDE &&
                  strcmp(err.reason, "feature_mismatch") == 0,
              "another feature set refused: %s", err.msg);
}

/* Apartment series in a ring of 20 days beside the building's 60 (issue 18: the window of
 * three winters for the building, the apartments' memory as before): the apartments keep only
 * their last 20 days, the building all 40; anomaly rows over all 40 days come from what each
 * series holds, equal the serving path's, and pass the leak check. */
static void test_apartment_ring(void) {
    tr_history_t *h = make_history_apt(20 * 24);
    tr_select_t sel = {.task = TR_ANOMALY_RESIDUAL,
                       .from = START,
                       .to = START + DAYS * DAY,
                       .weather_wait = 2 * HOUR};
    tr_rows_t r;
    hvs_err_t err = {0};
    HVS_REQUIRE(tr_rows_build(h, &sel, info, NULL, &r, &err) == 0, "rows: %s", err.msg);
    const tr_building_t *b = h->b[0];
    hvs_ms_t first[3] = {INT64_MAX, INT64_MAX, INT64_MAX};
    for (size_t i = 0; i < r.n; i++)
        if (r.hour[i] < first[r.series[i]])
            first[r.series[i]] = r.hour[i];
    HVS_CHECK(b->ns == 3 && b->s[0]->ring == 60 * 24 && b->s[1]->ring == 20 * 24 &&
                  b->s[2]->ring == 20 * 24,
              "rings: building %zu, apartments %zu h", b->s[0]->ring, b->s[1]->ring);
    HVS_CHECK(first[0] == INT64_MAX, "anomaly rows come from the apartments alone");
    tr_select_t fsel = {.task = TR_FORECAST, .from = START, .to = sel.to, .day_ahead = true};
    tr_rows_t fr;
    HVS_REQUIRE(tr_rows_build(h, &fsel, info, NULL, &fr, &err) == 0, "rows: %s", err.msg);
    HVS_CHECK(fr.n > 0 && fr.hour[0] < START + 2 * DAY,
              "the building's forecast rows from its first days (first %lld h)",
              fr.n ? (long long)((fr.hour[0] - START) / HOUR) : -1LL);
    tr_rows_fini(&fr);
    /* an apartment's rows are of its last 20 days, except where the hour 20 days later never
     * came: its slot still holds the older hour (a ring's way) */
    size_t old_rows = 0, stale = 0;
    for (size_t i = 0; i < r.n; i++)
        if (r.hour[i] < START + (DAYS - 20) * DAY) {
            hvs_feat_history_t v;
            tr_history_view(h, b, b->s[r.series[i]], HVS_MS_NONE, &v);
            old_rows++;
            stale += hvs_feat_hour_get(&v, r.hour[i] + 20 * DAY) == NULL && v.nhours == 20 * 24;
        }
    for (int e = 1; e < 3; e++)
        HVS_CHECK(first[e] < START + (DAYS - 19) * DAY, "%s: rows of its last 20 days",
                  b->s[e]->id);
    HVS_CHECK(old_rows == stale && old_rows * 10 < r.n,
              "apartment rows older than their ring: %zu of %zu, each where the hour 20 days "
              "later never came (%zu)",
              old_rows, r.n, stale);
    uint64_t digest = 0;
    HVS_CHECK(serve_rows(h, &sel, &r, &digest) == 0, "apartment rows equal serving rows");
    HVS_CHECK(tr_leak_check(h, &sel, info, NULL, &r, 100, &err) == 0, "leak check: %s", err.msg);
    tr_rows_fini(&r);
    tr_history_destroy(h);
}

static double observed_at(hvs_ms_t hour) {
    hvs_ms_t k = (hour - START) / HOUR;
    return k >= 0 && k < DAYS * 24 ? observed_temp[k] : NAN;
}

/* A column that reads the target hour's own consumption: known only once the hour is over. */
static double leaky_use(const hvs_feat_history_t *h, hvs_ms_t target, hvs_ms_t as_of) {
    (void)as_of;
    const hvs_feat_hour_t *t = hvs_feat_hour_get(h, target);
    return t ? t->use : NAN;
}

static bool rows_equal(const tr_rows_t *a, const tr_rows_t *b) {
    return a->n == b->n && a->ncols == b->ncols &&
           memcmp(a->x, b->x, a->n * a->ncols * sizeof *a->x) == 0 &&
           memcmp(a->y, b->y, a->n * sizeof *a->y) == 0 &&
           memcmp(a->naive, b->naive, a->n * sizeof *a->naive) == 0 &&
           memcmp(a->horizon, b->horizon, a->n * sizeof *a->horizon) == 0 &&
           memcmp(a->hour, b->hour, a->n * sizeof *a->hour) == 0 &&
           memcmp(a->as_of, b->as_of, a->n * sizeof *a->as_of) == 0;
}

/* Issue 18: history from a weather backfill holds observations only. Forecast rows at horizons
 * 1-72 without stand-ins have no weather of the target hour; with them every row whose hour was
 * observed carries the observed temperature as a forecast issued at as_of (lead = horizon - 1),
 * the temperature lags beyond 24 / 48 h likewise, flagged with the hours stood in; nothing else
 * of the row changes. The leak check accepts those rows, rejects them with the flag cleared or
 * without the stand-in exception, and still catches a column that reads the future. With
 * forecasts in the history (live), rows with and without stand-ins are the same bits. */
static void test_weather_standin(void) {
    static const int horizons[] = {1, 6, 13, 24, 25, 36, 49, 72};
    hvs_ms_t from = START + 10 * DAY, to = START + DAYS * DAY;
    tr_select_t sel = {.task = TR_FORECAST,
                       .from = from,
                       .to = to,
                       .horizons = horizons,
                       .nhorizons = 8,
                       .seed = 3};
    hvs_err_t err = {0};
    tr_rows_t off, on;
    /* live history: forecasts of every hour, the stand-in never applies */
    tr_history_t *h = make_history();
    HVS_REQUIRE(tr_rows_build(h, &sel, info, NULL, &off, &err) == 0, "rows: %s", err.msg);
    sel.weather_standin = true;
    HVS_REQUIRE(tr_rows_build(h, &sel, info, NULL, &on, &err) == 0, "rows: %s", err.msg);
    HVS_CHECK(off.n > 1000 && rows_equal(&off, &on) && on.nstandin == 0,
              "live history: %zu rows with stand-ins on equal those without, bit for bit "
              "(%zu stood in)",
              on.n, on.nstandin);
    tr_rows_fini(&off), tr_rows_fini(&on);
    tr_history_destroy(h);

    h = make_history_wx(0, true);
    int t_c = col(HVS_TASK_FORECAST, "temperature_c"),
        f_c = col(HVS_TASK_FORECAST, "weather_is_forecast"),
        l_c = col(HVS_TASK_FORECAST, "weather_lead_h"), hdh_c = col(HVS_TASK_FORECAST, "hdh"),
        l24_c = col(HVS_TASK_FORECAST, "temp_lag_24"),
        l48_c = col(HVS_TASK_FORECAST, "temp_lag_48");
    HVS_REQUIRE(t_c >= 0 && f_c >= 0 && l_c >= 0 && hdh_c >= 0 && l24_c >= 0 && l48_c >= 0,
                "forecast columns");
    /* the columns a stand-in may change: the weather of hours still to come and what derives
     * from it */
    static const char *const wx_cols[] = {
        "temperature_c", "relative_humidity_pct", "cloud_cover_pct", "shortwave_radiation_wm2",
        "wind_speed_ms", "weather_is_forecast",   "weather_lead_h",  "hdh",
        "temp_x_hour",   "temp_x_radiation",      "temp_lag_24",     "temp_lag_48",
        "temp_lag_168"};
    bool may[HVS_TASKROW_MAX_COLS] = {0};
    for (size_t i = 0; i < sizeof wx_cols / sizeof *wx_cols; i++)
        if (col(HVS_TASK_FORECAST, wx_cols[i]) >= 0)
            may[col(HVS_TASK_FORECAST, wx_cols[i])] = true;
    sel.weather_standin = false;
    HVS_REQUIRE(tr_rows_build(h, &sel, info, NULL, &off, &err) == 0, "rows: %s", err.msg);
    sel.weather_standin = true;
    HVS_REQUIRE(tr_rows_build(h, &sel, info, NULL, &on, &err) == 0, "rows: %s", err.msg);
    HVS_REQUIRE(on.n == off.n && on.n > 1000, "backfill: %zu rows, %zu without stand-ins", on.n,
                off.n);
    size_t wx_off = 0, expect = 0, flagged = 0, carried = 0, right = 0, flag_ok = 0, other_same = 0;
    for (size_t i = 0; i < on.n; i++) {
        const float *a = &off.x[i * off.ncols], *b = &on.x[i * on.ncols];
        hvs_ms_t hr = on.hour[i];
        int hz = (int)on.horizon[i];
        double t = observed_at(hr), t24 = observed_at(hr - 24 * HOUR),
               t48 = observed_at(hr - 48 * HOUR);
        wx_off += isfinite(a[t_c]);
        int stood = isfinite(t) + (hz > 24 && isfinite(t24)) + (hz > 48 && isfinite(t48));
        expect += isfinite(t);
        flagged += stood > 0;
        carried += isfinite(b[t_c]);
        /* computed here: the observation as a forecast issued at as_of */
        right += isfinite(t) && b[t_c] == (float)t && b[f_c] == 1.0f && b[l_c] == (float)(hz - 1) &&
                 b[hdh_c] == (float)(t < 18 ? 18 - t : 0) &&
                 (hz <= 24 || !isfinite(t24) || b[l24_c] == (float)t24) &&
                 (hz <= 48 || !isfinite(t48) || b[l48_c] == (float)t48);
        flag_ok += on.standin[i] == stood;
        bool same = true;
        for (size_t c = 0; c < on.ncols; c++)
            if (!may[c] && memcmp(&a[c], &b[c], sizeof *a) != 0)
                same = false;
        other_same += same;
    }
    printf("backfilled history: %zu forecast rows; target-hour weather in %zu without stand-ins, "
           "%zu with (%zu stood in)\n",
           on.n, wx_off, carried, on.nstandin);
    HVS_CHECK(wx_off == 0, "without stand-ins no forecast row has target-hour weather (%zu)",
              wx_off);
    HVS_CHECK(expect > on.n * 9 / 10 && carried == expect && right == expect,
              "with stand-ins every row of an observed hour carries it (%zu, %zu expected), as a "
              "forecast issued at as_of with the observed temperature (%zu right)",
              carried, expect, right);
    HVS_CHECK(flag_ok == on.n && on.nstandin == flagged,
              "rows flagged with the hours stood in (%zu of %zu; %zu rows flagged, %zu expected)",
              flag_ok, on.n, on.nstandin, flagged);
    HVS_CHECK(other_same == on.n, "the other columns unchanged (%zu of %zu rows)", other_same,
              on.n);
    /* the leak check: stand-ins accepted, their flag checked, real leaks still caught */
    HVS_CHECK(tr_leak_check(h, &sel, info, NULL, &on, 300, &err) == 0, "leak check: %s", err.msg);
    tr_select_t nosel = sel;
    nosel.weather_standin = false;
    HVS_CHECK(tr_leak_check(h, &nosel, info, NULL, &on, 300, &err) == HVS_EINVAL &&
                  strstr(err.msg, "temperature_c"),
              "without the stand-in exception the observed values are leakage: %s", err.msg);
    size_t first = 0;
    while (first < on.n && on.standin[first] == 0)
        first++;
    HVS_REQUIRE(first < on.n, "a stood-in row");
    on.standin[first] = 0;
    HVS_CHECK(tr_leak_check(h, &sel, info, NULL, &on, on.n, &err) == HVS_EINVAL &&
                  strstr(err.msg, "stand in"),
              "a stand-in without its flag is rejected: %s", err.msg);
    tr_rows_fini(&on);
    sel.extra = leaky_use;
    HVS_REQUIRE(tr_rows_build(h, &sel, info, NULL, &on, &err) == 0, "rows: %s", err.msg);
    HVS_CHECK(tr_leak_check(h, &sel, info, NULL, &on, 300, &err) == HVS_EINVAL &&
                  strstr(err.msg, "extra"),
              "a column reading the target hour's consumption is still caught: %s", err.msg);
    tr_rows_fini(&on);
    /* the day-ahead evaluation rows get them too: the backtest scores what was trained */
    tr_select_t da = {
        .task = TR_FORECAST, .from = from, .to = to, .day_ahead = true, .weather_standin = true};
    HVS_REQUIRE(tr_rows_build(h, &da, info, NULL, &on, &err) == 0, "rows: %s", err.msg);
    HVS_CHECK(on.n > 500 && on.nstandin > on.n * 9 / 10, "day-ahead rows: %zu of %zu stood in",
              on.nstandin, on.n);
    tr_rows_fini(&on);
    tr_rows_fini(&off);
    tr_history_destroy(h);
}

/* The calendar, the features worker's writer and a FeatureVector decoder, made on first use. */
static void teardown(void) {
    hvs_decoder_destroy(dec);
    fx_output_destroy(fxo);
    hvs_serde_destroy(serde);
    hvs_calendar_destroy(cal);
}

static void setup(void) {
    if (cal)
        return;
    hvs_log_init("test", HVS_LOG_WARN, NULL);
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_calendar_new("CH-ZH", &cal, &err) == 0 &&
                    hvs_serde_new(NULL, &serde, &err) == 0 &&
                    fx_output_new(serde, "features.hourly", &fxo, &err) == 0 &&
                    hvs_decoder_new(serde, HVS_SCHEMA_FEATURE_VECTOR, &dec, &err) == 0,
                "setup: %s", err.msg);
    hvs_test_cleanup(teardown);
}

static void case_direct_writer(void) {
    setup();
    HVS_CHECK(fx_output_direct(fxo), "the features worker's direct writer in use");
}

static void case_by_hand(void) {
    setup();
    test_by_hand();
    test_columns_pinned();
}

static void case_trainer_equals_serving(void) {
    setup();
    test_trainer_equals_serving();
}

static void case_apartment_ring(void) {
    setup();
    test_apartment_ring();
}

static void case_weather_standin(void) {
    setup();
    test_weather_standin();
}

static const hvs_test_case_t cases[] = {
    {"direct_writer_in_use", case_direct_writer},
    {"apartment_ring_shorter_than_window", case_apartment_ring},
    {"by_hand", case_by_hand},
    {"trainer_rows_equal_serving_rows", case_trainer_equals_serving},
    {"weather_standin_after_backfill", case_weather_standin},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
