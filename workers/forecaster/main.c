/*
 * hvs-forecaster - aggregates.hourly (building rows) + weather.hourly (+ topology, models) ->
 * forecasts.baseline: every hour of event time, and whenever a new weather forecast run
 * arrives, each building's next 72 hours with 80 % intervals, stamped with the model version,
 * flagged when the weather is unlike the version's training data; the latest per building in
 * Redis (one GET); live accuracy per version and horizon bucket, MODEL_DRIFT when a version's
 * day-ahead error runs above its backtest (docs/design.md section 12).
 *
 * A stage on the one runner (stage.h), which polls, publishes, commits and dead-letters; this
 * file is the configuration and the stage's callbacks:
 *   handle       decodes and validates (the feature worker's input.h: the same inputs, the same
 *                rules; the Kafka key must be the building id; bad -> dead letter); the
 *                engine (engine.h) stores the hour or weather and queues the issues it makes
 *                ready;
 *   end_batch    the engine predicts the queued issues (batched per model version) and the
 *                forecasts and alerts are queued on the producer;
 *   write_state  rings, issue bookkeeping, accuracy and the latest forecasts into the runner's
 *                state batch (state.h), written with the offsets once the broker acknowledged.
 * Models: the forecast/ names followed on `models` (model_registry.h) and swapped between batches (a
 * batch's issues hold their version until the batch is done). Lost state: the runner rebuilds
 * a partition by replaying both inputs from HVS_FC_REBUILD_WINDOW ago, quietly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "hvs/alert.h"
#include "hvs/app.h"
#include "hvs/calendar.h"
#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/model_registry.h"
#include "hvs/profile.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/stage.h"
#include "hvs/topics.h"
#include "hvs/topology.h"
#include "input.h"
#include "output.h"
#include "state.h"

#define HOUR HVS_MS_HOUR

typedef struct settings {
    int64_t every_ms, weather_wait_ms, stale_ms, mature_ms, building_ms, max_future_ms, rebuild_ms,
        latest_ttl_ms, ood_horizon, degrade_days, drift_min_points, interval_window_h;
    double ood_min_share, ood_margin_c, degrade_factor, rules_default, rules_base;
    char *region, *rules;
} settings_t;

#define S(f) offsetof(settings_t, f)
static const hvs_cfg_entry_t fc_entries[] = {
    {"HVS_FC_EVERY", HVS_CFG_DURATION, "1h", 900000, 86400000, S(every_ms), 0,
     "issue period (event time): each building's forecast is made as of every boundary"},
    {"HVS_FC_WEATHER_WAIT", HVS_CFG_DURATION, "3h", 0, 604800000, S(weather_wait_ms), 0,
     "an issue waits for weather issued after it until the aggregates are this far past it"},
    {"HVS_FC_STALE_WEATHER", HVS_CFG_DURATION, "12h", 3600000, 604800000, S(stale_ms), 0,
     "no weather forecast run issued within this before an issue: flag stale_weather"},
    {"HVS_FC_MATURE", HVS_CFG_DURATION, "30d", 0, 31536000000.0, S(mature_ms), 0,
     "buildings younger than this (since commissioning) get the rules forecast"},
    {"HVS_FC_BUILDING_AGE", HVS_CFG_DURATION, "180d", 0, 31536000000.0, S(building_ms), 0,
     "from this age a building's own forecast/building:<id> serves it, when approved"},
    {"HVS_FC_DEFAULT_REGION", HVS_CFG_STRING, "CH", 0, 0, S(region), 0,
     "holiday region (calendar) of buildings without one"},
    {"HVS_FC_OOD_MIN_SHARE", HVS_CFG_DOUBLE, "0.001", 0, 1, S(ood_min_share), 0,
     "a horizon whose temperature x irradiance bin held less than this share of the version's "
     "training rows is out of distribution; one with less than it colder and darker, or warmer "
     "and sunnier, raises FORECAST_LOW_CONFIDENCE"},
    {"HVS_FC_OOD_MARGIN", HVS_CFG_DOUBLE, "3", 0, 50, S(ood_margin_c), 0,
     "degC beyond the training profile's temperature range that is out of distribution"},
    {"HVS_FC_OOD_HORIZON", HVS_CFG_INT, "36", 1, 72, S(ood_horizon), 0,
     "horizons judged for out_of_distribution and FORECAST_LOW_CONFIDENCE"},
    {"HVS_FC_INTERVAL_WINDOW", HVS_CFG_INT, "96", 0, FC_CAL_MAX_WINDOW, S(interval_window_h), 0,
     "hours of a building's own scored forecasts that rescale its 80 % intervals (0: the "
     "backtest's alone)"},
    {"HVS_FC_DEGRADE_FACTOR", HVS_CFG_DOUBLE, "1.5", 1, 100, S(degrade_factor), 0,
     "live 7-day day-ahead WAPE above this times the version's backtest WAPE is a bad day"},
    {"HVS_FC_DEGRADE_DAYS", HVS_CFG_INT, "3", 1, 30, S(degrade_days), 0,
     "bad days in a row that raise MODEL_DRIFT"},
    {"HVS_FC_DRIFT_MIN_POINTS", HVS_CFG_INT, "48", 1, 100000000, S(drift_min_points), 0,
     "day-ahead points a partition's 7-day window needs before a version is judged"},
    {"HVS_FC_RULES", HVS_CFG_STRING, "old_poorly_insulated:1.6,modern_high_density:0.8,passive:0.3",
     0, 0, S(rules), 0,
     "rules forecast of young buildings: <archetype>:<W per m2 of heated area per K below 18 "
     "degC>, comma-separated"},
    {"HVS_FC_RULES_DEFAULT", HVS_CFG_DOUBLE, "1.0", 0, 100, S(rules_default), 0,
     "W/(m2 K) of an archetype not in HVS_FC_RULES"},
    {"HVS_FC_RULES_BASE", HVS_CFG_DOUBLE, "0", 0, 1000, S(rules_base), 0,
     "W/m2 the rules add whatever the weather (distribution losses)"},
    {"HVS_FC_LATEST_TTL", HVS_CFG_DURATION, "3h", 60000, 604800000, S(latest_ttl_ms), 0,
     "time to live of a building's latest forecast in Redis (wall clock)"},
    {"HVS_FC_MAX_FUTURE", HVS_CFG_DURATION, "10d", 0, 31536000000.0, S(max_future_ms), 0,
     "inputs stamped later than now plus this are refused (timestamp_in_future)"},
    /* an issue's intervals read the forecasts of the 167 h before it, which read 168 h of lags */
    {"HVS_FC_REBUILD_WINDOW", HVS_CFG_DURATION, "15d", 86400000, 31536000000.0, S(rebuild_ms), 0,
     "after Redis lost the state, the inputs are replayed from this long ago (message time)"},
};
static settings_t settings;
static hvs_stage_settings_t stage_settings; /* HVS_FC_BATCH, _FLUSH_TIMEOUT, _STALL_TIMEOUT */
static const hvs_cfg_section_t fc_section = {"forecaster", fc_entries,
                                             sizeof fc_entries / sizeof fc_entries[0], &settings};

#define MAX_RULES 32

typedef struct worker {
    hvs_app_t *app;
    hvs_stage_t *stage;
    hvs_serde_t *serde;
    hvs_decoder_t *dec_agg, *dec_wx;
    fx_input_t *input;
    fc_output_t *out;
    hvs_alerter_t *alerter;
    hvs_topology_t *topo;
    hvs_registry_t *reg;
    hvs_redis_t *redis;
    hvs_redis_batch_t *rb;
    fc_t *fc;
    const char *topic_agg, *topic_wx, *topic_out;
    hvs_ms_t now;
    fc_rule_t rules[MAX_RULES];
    char rule_names[MAX_RULES][64];
    size_t nrules;
    fc_stats_t seen; /* the engine's counters already added to the metrics */
    hvs_metric_t *m_in[2], *m_forecasts, *m_points, *m_rules, *m_alerts[2], *m_no_area, *m_scored,
        *m_swaps, *m_flags[FC_FLAG_COUNT];
    hvs_metrics_t *metrics;
} worker_t;

/* ---- the engine's callbacks ----------------------------------------------------------------- */

static int info(void *opaque, const char *building, fc_info_t *out) {
    worker_t *w = opaque;
    const hvs_building_t *b = hvs_topology_find(w->topo, building);
    if (!b)
        return -1;
    *out = (fc_info_t){hvs_building_area(b), b->commissioning, b->archetype, b->holiday_region};
    return 0;
}

static hvs_model_ref_t *acquire(void *opaque, const char *name) {
    worker_t *w = opaque;
    return hvs_registry_acquire(w->reg, name);
}

static int on_forecast(void *opaque, const fc_forecast_t *f, bool quiet, hvs_err_t *err) {
    worker_t *w = opaque;
    fc_building_t *b = fc_building(w->fc, f->building, f->partition, false);
    if (!b)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "latest forecast of %s", f->building);
    /* an issue made again older than the newest (a revision beyond the re-issue reach) is
     * published, but the building's latest stays the newest issue's */
    if (b->issued == HVS_MS_NONE || f->issued_at >= b->issued) {
        char *json = fc_output_json(f);
        if (!json)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "latest forecast of %s", f->building);
        free(b->latest);
        b->latest = json;
    }
    if (quiet)
        return 0;
    const void *buf;
    size_t len;
    int rc = fc_output_encode(w->out, f, &buf, &len, err);
    if (rc == 0)
        rc = hvs_producer_send(hvs_stage_producer(w->stage), w->topic_out, RD_KAFKA_PARTITION_UA,
                               f->building, strlen(f->building), buf, len, err);
    return rc;
}

static int on_alert(void *opaque, const fc_alert_t *a, hvs_err_t *err) {
    worker_t *w = opaque;
    bool drift = a->type == HVS_ALERT_MODEL_DRIFT;
    hvs_alert_t al = {.building_id = drift ? a->entity : a->building,
                      .type = a->type,
                      .severity = HVS_SEVERITY_WARNING,
                      .score = a->score,
                      .summary = a->summary,
                      .evidence = a->evidence,
                      .model = a->model,
                      .first_seen = a->first_seen,
                      .updated_at = a->first_seen};
    hvs_log_warn("forecaster", "%s", a->summary);
    return hvs_alerter_send(w->alerter, &al, err);
}

/* ---- the stage's callbacks ------------------------------------------------------------------ */

static int begin_batch(void *opaque, hvs_err_t *err) {
    (void)err;
    worker_t *w = opaque;
    w->now = hvs_stage_now(w->stage);
    hvs_topology_poll(w->topo, 0);
    hvs_registry_poll(w->reg, 0); /* a new version serves from this batch on */
    return 0;
}

static int handle(void *opaque, const rd_kafka_message_t *m, hvs_err_t *why) {
    worker_t *w = opaque;
    bool agg = strcmp(rd_kafka_topic_name(m->rkt), w->topic_agg) == 0;
    bool quiet = hvs_stage_replaying(w->stage);
    hvs_metric_inc(w->m_in[agg ? 0 : 1]);
    if (!m->payload)
        return hvs_err_set(why, HVS_EINVAL, "empty_value", "message without a value");
    avro_value_t *v;
    int rc;
    if (agg) {
        fx_aggregate_t a;
        if (hvs_decoder_decode(w->dec_agg, m->payload, m->len, &v, why) ||
            fx_input_aggregate(w->input, v, w->now, settings.max_future_ms, &a, why) ||
            hvs_id_check_key(m, a.building, why))
            return HVS_EINVAL;
        if (strcmp(a.entity, HVS_FS_BUILDING) != 0)
            return 0; /* an apartment's row: the forecast is the building's */
        rc = fc_on_aggregate(w->fc, m->partition, a.building, &a.hour, quiet, why);
    } else {
        fx_weather_t x;
        if (hvs_decoder_decode(w->dec_wx, m->payload, m->len, &v, why) ||
            fx_input_weather(w->input, v, w->now, settings.max_future_ms, &x, why) ||
            hvs_id_check_key(m, x.building, why))
            return HVS_EINVAL;
        rc = fc_on_weather(w->fc, m->partition, x.building, x.hour, &x.rec, quiet, why);
    }
    return rc == HVS_EINVAL ? HVS_ESTATE : rc; /* the input was valid: a failure is ours */
}

static void update_metrics(worker_t *w) {
    fc_stats_t *s = fc_stats(w->fc), *o = &w->seen;
    hvs_metric_add(w->m_forecasts, (double)(s->issued - o->issued));
    hvs_metric_add(w->m_points, (double)(s->points - o->points));
    hvs_metric_add(w->m_rules, (double)(s->rules - o->rules));
    hvs_metric_add(w->m_alerts[0], (double)(s->low_confidence_alerts - o->low_confidence_alerts));
    hvs_metric_add(w->m_alerts[1], (double)(s->drift_alerts - o->drift_alerts));
    hvs_metric_add(w->m_no_area, (double)(s->no_area - o->no_area));
    hvs_metric_add(w->m_scored, (double)(s->scored - o->scored));
    for (int i = 0; i < FC_FLAG_COUNT; i++)
        hvs_metric_add(w->m_flags[i], (double)(s->by_flag[i] - o->by_flag[i]));
    *o = *s;
    /* live accuracy per version and bucket over this member's partitions: the 7 whole days
     * before the newest day the accuracy has points for */
    size_t nv;
    fc_version_acc_t **vs = fc_versions(w->fc, &nv);
    size_t np;
    const int32_t *parts = hvs_stage_partitions(w->stage, &np);
    for (size_t i = 0; i < nv; i++) {
        hvs_ms_t until = HVS_MS_NONE;
        for (int b = 0; b < FC_BUCKETS; b++)
            for (int d = 0; d < FC_WAPE_DAYS; d++)
                if (vs[i]->d[b][d].day != HVS_MS_NONE && vs[i]->d[b][d].day > until)
                    until = vs[i]->d[b][d].day;
        if (until == HVS_MS_NONE)
            continue;
        for (int b = 0; b < FC_BUCKETS; b++) {
            char lbl[400];
            if (hvs_metrics_label_escape(lbl, sizeof lbl, fc_ident(w->fc, vs[i]->ident)) < 0)
                continue;
            char labels[480];
            snprintf(labels, sizeof labels, "model=\"%s\",bucket=\"%s\"", lbl, fc_bucket_name(b));
            hvs_metric_t *g = hvs_metrics_gauge(
                w->metrics, "hvs_forecaster_live_wape",
                "rolling 7-day WAPE of the served forecasts against the actuals", labels);
            double x = fc_live_wape(w->fc, vs[i]->ident, b, until, parts, np, NULL);
            if (isfinite(x))
                hvs_metric_set(g, x);
        }
    }
}

static int end_batch(void *opaque, hvs_err_t *err) {
    worker_t *w = opaque;
    return fc_flush(w->fc, err);
}

static int write_state(void *opaque, hvs_err_t *err) {
    worker_t *w = opaque;
    int rc = fc_state_save(w->fc, hvs_stage_state_batch(w->stage), settings.latest_ttl_ms, err);
    update_metrics(w);
    return rc;
}

static int assigned(void *opaque, int32_t p, hvs_err_t *err) {
    worker_t *w = opaque;
    if (hvs_stage_rebuilding(w->stage, p)) {
        /* without its epoch, what Redis holds of p is a rebuild that did not finish (killed
         * part way): loaded, its issue marks would skip what the replay must make again */
        hvs_log_info("forecaster", "partition %d assigned: rebuilding, starting empty", (int)p);
        return 0;
    }
    size_t n = 0;
    int rc = fc_state_load_partition(w->fc, w->redis, w->rb, p, &n, err);
    if (rc == 0)
        hvs_log_info("forecaster", "partition %d assigned: %zu buildings loaded", (int)p, n);
    return rc;
}

static void revoked(void *opaque, int32_t p) {
    worker_t *w = opaque;
    fc_drop_partition(w->fc, p); /* its state was written before the last commit */
    hvs_log_info("forecaster", "partition %d revoked", (int)p);
}

static int ready(void *opaque, char *why, size_t whylen) {
    worker_t *w = opaque;
    return hvs_registry_ready(w->reg, w->topo, why, whylen);
}

static void stopping(void *opaque) {
    worker_t *w = opaque;
    fc_stats_t *s = fc_stats(w->fc);
    hvs_log_info("forecaster",
                 "stopping: forecasts=%llu points=%llu rules=%llu out_of_distribution=%llu "
                 "no_area=%llu scored=%llu",
                 (unsigned long long)s->issued, (unsigned long long)s->points,
                 (unsigned long long)s->rules, (unsigned long long)s->ood_forecasts,
                 (unsigned long long)s->no_area, (unsigned long long)s->scored);
}

static const hvs_stage_def_t fc_stage = {
    .name = "forecaster",
    .begin_batch = begin_batch,
    .handle = handle,
    .end_batch = end_batch,
    .write_state = write_state,
    .assigned = assigned,
    .revoked = revoked,
    .ready = ready,
    .stopping = stopping,
};

/* ---- start-up ------------------------------------------------------------------------------- */

static void on_swap(void *opaque, const char *name, const hvs_model_ref_t *old,
                    const hvs_model_ref_t *now) {
    worker_t *w = opaque;
    hvs_metric_inc(w->m_swaps);
    hvs_registry_log_swap("forecaster", name, old, now);
}

/* HVS_FC_RULES: "<archetype>:<W/(m2 K)>,..." */
static int parse_rules(worker_t *w, const char *list, hvs_err_t *err) {
    const char *p = list;
    while (p && *p) {
        const char *end = strchr(p, ','), *colon = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!colon || colon >= p + len || (size_t)(colon - p) >= sizeof w->rule_names[0] ||
            w->nrules == MAX_RULES)
            return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                               "HVS_FC_RULES: \"%.*s\" is not <archetype>:<W per m2 K>", (int)len,
                               p);
        char *e;
        double k = strtod(colon + 1, &e);
        if (e != p + len || !(k >= 0) || k > 100)
            return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                               "HVS_FC_RULES: \"%.*s\": a coefficient 0..100 W/(m2 K)", (int)len,
                               p);
        snprintf(w->rule_names[w->nrules], sizeof w->rule_names[0], "%.*s", (int)(colon - p), p);
        w->rules[w->nrules] = (fc_rule_t){w->rule_names[w->nrules], k};
        w->nrules++;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static int run(hvs_app_t *app, void *state, hvs_err_t *err) {
    worker_t *w = state;
    w->app = app;
    int rc;
    if ((rc = hvs_profile_load(app->cfg.profile, app->cfg.profile_file, err)))
        return rc; /* first: readings, rows and models follow the profile */
    if ((rc = parse_rules(w, settings.rules, err)))
        return rc;
    if (settings.building_ms < settings.mature_ms)
        return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                           "HVS_FC_BUILDING_AGE must not be below HVS_FC_MATURE");
    hvs_calendar_t *probe = NULL;
    if ((rc = hvs_calendar_load(app->cfg.calendar_file, err)) ||
        (rc = hvs_calendar_new(settings.region, &probe, err)))
        return rc; /* an unknown default region stops start-up */
    hvs_calendar_destroy(probe);
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    w->topic_agg = hvs_topic_name("aggregates.hourly");
    w->topic_wx = hvs_topic_name("weather.hourly");
    w->topic_out = hvs_topic_name("forecasts.baseline");
    const char *inputs[] = {w->topic_agg, w->topic_wx};
    const char *outputs[] = {w->topic_out, hvs_topic_name("alerts"), NULL};
    hvs_stage_conf_t sc = {.inputs = inputs,
                           .outputs = outputs,
                           .ninputs = 2,
                           .settings = &stage_settings,
                           .rebuild_ms = settings.rebuild_ms};
    hvs_registry_opts_t ro = {
        .prefix = "forecast/", .load_models = true, .on_swap = on_swap, .opaque = w};
    if ((rc = hvs_serde_new(app->cfg.schema_registry_url, &w->serde, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_AGGREGATE, &w->dec_agg, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_WEATHER, &w->dec_wx, err)) ||
        (rc = fx_input_new(w->serde, &w->input, err)) ||
        (rc = fc_output_new(w->serde, w->topic_out, &w->out, err)) ||
        (rc = hvs_redis_connect(app->cfg.redis_url, NULL, &w->redis, err)))
        return rc;
    sc.redis = w->redis;
    sc.state_ns = FC_NS; /* a rebuild starts from no keys of its partition ... */
    static const char *const keep[] = {"latest", NULL};
    sc.state_keep = keep; /* ... but the served output clients read */
    w->metrics = app->metrics;
    hvs_metrics_t *ms = app->metrics;
    w->m_swaps = hvs_metrics_counter(ms, "hvs_forecaster_model_swaps_total",
                                     "model versions that started serving", NULL);
    if ((rc = hvs_stage_new(app, &fc_stage, &sc, w->serde, w, &w->stage, err)) ||
        (rc = hvs_alerter_new(w->serde, hvs_stage_producer(w->stage), &w->alerter, err)) ||
        (rc = hvs_topology_new(&kc, w->serde, hvs_topic_name("topology"), &w->topo, err)) ||
        (rc = hvs_registry_new(&kc, w->serde, hvs_topic_name("models"), &ro, &w->reg, err)))
        return rc;
    fc_config_t c = {.every = settings.every_ms,
                     .from = HVS_MS_NONE,
                     .weather_wait = settings.weather_wait_ms,
                     .stale_after = settings.stale_ms,
                     .mature_ms = settings.mature_ms,
                     .building_ms = settings.building_ms,
                     .default_region = settings.region,
                     .ood_min_share = settings.ood_min_share,
                     .ood_margin_c = settings.ood_margin_c,
                     .ood_horizon = (int)settings.ood_horizon,
                     .interval_window_h = (int)settings.interval_window_h,
                     .degrade_factor = settings.degrade_factor,
                     .degrade_days = (int)settings.degrade_days,
                     .drift_min_points = settings.drift_min_points,
                     .rules = w->rules,
                     .nrules = w->nrules,
                     .rules_default = settings.rules_default,
                     .rules_base = settings.rules_base};
    fc_callbacks_t cb = {info, acquire, on_forecast, on_alert, w};
    if ((rc = fc_new(&c, &cb, &w->fc, err)))
        return rc;
    if (!(w->rb = hvs_redis_batch_new()))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "forecaster state");
    w->m_in[0] = hvs_metrics_counter(ms, "hvs_forecaster_inputs_total", "messages consumed",
                                     "topic=\"aggregates\"");
    w->m_in[1] = hvs_metrics_counter(ms, "hvs_forecaster_inputs_total", "messages consumed",
                                     "topic=\"weather\"");
    w->m_forecasts = hvs_metrics_counter(ms, "hvs_forecaster_forecasts_total",
                                         "forecasts made (published unless rebuilding)", NULL);
    w->m_points = hvs_metrics_counter(ms, "hvs_forecaster_points_total", "forecast points made",
                                      NULL);
    w->m_rules = hvs_metrics_counter(ms, "hvs_forecaster_rules_forecasts_total",
                                     "forecasts made by the rules (no model serves the building)",
                                     NULL);
    w->m_alerts[0] = hvs_metrics_counter(ms, "hvs_forecaster_alerts_total", "alerts raised",
                                         "type=\"FORECAST_LOW_CONFIDENCE\"");
    w->m_alerts[1] = hvs_metrics_counter(ms, "hvs_forecaster_alerts_total", "alerts raised",
                                         "type=\"MODEL_DRIFT\"");
    w->m_no_area = hvs_metrics_counter(
        ms, "hvs_forecaster_skipped_total",
        "issues skipped: the building has no heated area (or is not in topology)",
        "reason=\"no_area\"");
    w->m_scored = hvs_metrics_counter(ms, "hvs_forecaster_scored_points_total",
                                      "forecast points scored against their actual", NULL);
    for (int i = 0; i < FC_FLAG_COUNT; i++) {
        char lbl[64];
        snprintf(lbl, sizeof lbl, "flag=\"%s\"", fc_flag_name(i));
        w->m_flags[i] = hvs_metrics_counter(ms, "hvs_forecaster_flagged_total",
                                            "forecasts published with the flag", lbl);
    }
    hvs_topology_poll(w->topo, 30000);
    hvs_registry_poll(w->reg, 30000);
    hvs_log_info("forecaster", "consuming %s + %s -> %s (feature set %s)", w->topic_agg,
                 w->topic_wx, w->topic_out, hvs_features_version());
    return hvs_stage_run(w->stage, err);
}

static void worker_free(void *state) {
    worker_t *w = state;
    fc_destroy(w->fc); /* releases the batch's model refs */
    hvs_registry_destroy(w->reg);
    hvs_topology_destroy(w->topo);
    hvs_alerter_destroy(w->alerter); /* borrows the stage's producer */
    hvs_stage_destroy(w->stage);
    hvs_redis_batch_destroy(w->rb);
    hvs_redis_destroy(w->redis);
    fc_output_destroy(w->out);
    fx_input_destroy(w->input);
    hvs_decoder_destroy(w->dec_agg);
    hvs_decoder_destroy(w->dec_wx);
    hvs_serde_destroy(w->serde);
}

int main(int argc, char **argv) {
    static worker_t w; /* large, zeroed, living for the process */
    hvs_cfg_section_t sections[] = {fc_section,
                                    *hvs_stage_settings_section(&stage_settings, "HVS_FC_")};
    hvs_app_spec_t spec = {
        .worker = "forecaster",
        .summary = "aggregates.hourly + weather.hourly -> forecasts.baseline (72 h per building, "
                   "80 % intervals, out-of-distribution flags, live accuracy)",
        .usage = "Usage: hvs-forecaster [--every 1h] [--mature 30d] ... (every HVS_FC_* is a flag)",
        .extra = sections,
        .nextra = 2,
        .state = &w,
        .cleanup = worker_free,
        .flag_prefix = "HVS_FC_",
    };
    return hvs_app_main(&spec, argc, argv, run);
}
