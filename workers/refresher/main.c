/*
 * hvs-refresher - aggregates.15m (building totals) + forecasts.baseline (+ topology, models) ->
 * forecasts.refreshed: serve and refresh. On every 15-minute boundary of event time, each
 * building's next 1-3 hours: its baseline corrected by what the last hours actually did (the
 * trainer's refresh/<scope> model, or an online fit of the building's own errors until one is
 * approved), the quarters of the current hour already measured taken as they are; published and
 * written to Redis as the building's latest "next hours" (one GET) (docs/design.md section 8).
 *
 * A stage on the one runner (stage.h), which polls, publishes, commits and dead-letters; this
 * file is the configuration and the stage's callbacks:
 *   handle       decodes and validates (input.h; the Kafka key must be the building id; bad ->
 *                dead letter); the engine (engine.h) stores the quarter or baseline, makes again
 *                the ticks a late input changed and the ticks the watermarks now allow; the
 *                refreshes are queued on the producer;
 *   end_batch    releases the batch's model refs;
 *   write_state  rings, baselines, ticks and the latest refreshes into the runner's state batch
 *                (state.h), written with the offsets once the broker acknowledged.
 * Models: the refresh/ names followed on `models` (model_registry.h), swapped between batches.
 * Lost state: the runner rebuilds a partition by replaying both inputs from
 * HVS_RF_REBUILD_WINDOW ago, quietly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "hvs/app.h"
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

typedef struct settings {
    int64_t grace_ms, baseline_wait_ms, reissue_ms, online_min, latest_ttl_ms, max_future_ms,
        rebuild_ms;
    double forget, ridge;
} settings_t;

#define S(f) offsetof(settings_t, f)
static const hvs_cfg_entry_t rf_entries[] = {
    {"HVS_RF_GRACE", HVS_CFG_DURATION, "15m", 0, 86400000, S(grace_ms), 0,
     "a tick is made once the partition's quarters reached this far past it (a quarter that "
     "arrives later makes the tick again)"},
    {"HVS_RF_BASELINE_WAIT", HVS_CFG_DURATION, "2h", 0, 86400000, S(baseline_wait_ms), 0,
     "a tick waits for the baseline issued at its hour until the quarters are this far past it"},
    {"HVS_RF_REISSUE", HVS_CFG_DURATION, "4h", 0, 86400000, S(reissue_ms), 0,
     "a late quarter or baseline makes the building's ticks again up to this far back"},
    {"HVS_RF_FORGET", HVS_CFG_DOUBLE, "0.98", 0.5, 1, S(forget), 0,
     "online correction: weight of an error per hour of its age (0.98: half-life ~34 h)"},
    {"HVS_RF_RIDGE", HVS_CFG_DOUBLE, "0.1", 0, 100, S(ridge), 0,
     "online correction: shrinkage of the lag coefficients, relative to the lags' weighted "
     "mean square"},
    {"HVS_RF_ONLINE_MIN", HVS_CFG_INT, "24", 4, RF_RING_HOURS, S(online_min), 0,
     "online correction: hours of known error a horizon's fit needs (fewer: uncorrected)"},
    {"HVS_RF_LATEST_TTL", HVS_CFG_DURATION, "1h", 60000, 604800000, S(latest_ttl_ms), 0,
     "time to live of a building's latest refresh in Redis (wall clock)"},
    {"HVS_RF_MAX_FUTURE", HVS_CFG_DURATION, "10d", 0, 31536000000.0, S(max_future_ms), 0,
     "inputs stamped later than now plus this are refused (timestamp_in_future)"},
    /* the ring's 128 hours (the online fit's window) and the lags before them */
    {"HVS_RF_REBUILD_WINDOW", HVS_CFG_DURATION, "6d", 86400000, 31536000000.0, S(rebuild_ms), 0,
     "after Redis lost the state, the inputs are replayed from this long ago (message time)"},
};
static settings_t settings;
static hvs_stage_settings_t stage_settings; /* HVS_RF_BATCH, _FLUSH_TIMEOUT, _STALL_TIMEOUT */
static const hvs_cfg_section_t rf_section = {"refresher", rf_entries,
                                             sizeof rf_entries / sizeof rf_entries[0], &settings};

/* Input alignment (stage.h, HVS_STAGE_HOLD; docs/design.md section 8 "Inputs"): while the other
 * input has messages to read, a quarter (its end) waits until the partition's baselines reached
 * its hour (issue time + QUARTER_LEAD_MS) and a baseline (its issue) until the quarters reached
 * it (BASELINE_LEAD_MS): the order the pipeline makes them in, the baseline of hour T after the
 * quarters up to T, before the quarters of T's hour. Read far ahead, either input would claim ring
 * slots of hours the ticks behind still read (the online fit's 128 hours, the lags), and
 * baselines would fill the RF_BASELINES_MAX kept. */
#define QUARTER_LEAD_MS HVS_MS_HOUR
#define BASELINE_LEAD_MS 0

typedef struct align {
    hvs_ms_t t_in[2];   /* per input (0 quarters, 1 baselines): the latest event time handled */
    hvs_ms_t held_t[2]; /* per input: the event time of its message handed back, or NONE */
} align_t;

typedef struct worker {
    hvs_app_t *app;
    hvs_stage_t *stage;
    hvs_serde_t *serde;
    hvs_decoder_t *dec_agg, *dec_fc;
    rf_input_t *input;
    rf_output_t *out;
    hvs_topology_t *topo;
    hvs_registry_t *reg;
    hvs_redis_t *redis;
    hvs_redis_batch_t *rb;
    rf_t *rf;
    const char *topic_agg, *topic_fc, *topic_out;
    hvs_ms_t now;
    rf_stats_t seen; /* the engine's counters already added to the metrics */
    align_t al[HVS_MAX_PARTITIONS];
    hvs_metric_t *m_in[2], *m_refreshes, *m_again, *m_ticks, *m_no_baseline, *m_no_area, *m_swaps,
        *m_flags[RF_FLAG_COUNT];
} worker_t;

/* ---- the engine's callbacks ----------------------------------------------------------------- */

static int info(void *opaque, const char *building, rf_info_t *out) {
    worker_t *w = opaque;
    const hvs_building_t *b = hvs_topology_find(w->topo, building);
    if (!b)
        return -1;
    *out = (rf_info_t){hvs_building_area(b), b->archetype};
    return 0;
}

static hvs_model_ref_t *acquire(void *opaque, const char *name) {
    worker_t *w = opaque;
    return hvs_registry_acquire(w->reg, name);
}

static bool quiet(void *opaque, int32_t p) {
    worker_t *w = opaque;
    return hvs_stage_rebuilding(w->stage, p);
}

static bool base_pending(void *opaque, int32_t p) {
    worker_t *w = opaque;
    /* not polled yet (-1: not known yet), polled in this batch and not handled yet, or held */
    return hvs_stage_input_lag(w->stage, w->topic_fc, p) != 0;
}

static int emit(void *opaque, rf_building_t *b, const rf_refresh_t *r, bool q, hvs_err_t *err) {
    worker_t *w = opaque;
    return rf_output_emit(w->out, hvs_stage_producer(w->stage), w->topic_out, b, r, q, err);
}

/* ---- the stage's callbacks ------------------------------------------------------------------ */

static void align_reset(worker_t *w, int32_t p) {
    w->al[p] = (align_t){{HVS_MS_NONE, HVS_MS_NONE}, {HVS_MS_NONE, HVS_MS_NONE}};
}

/* Whether a message of input t (0 quarters, 1 baselines) at event time te runs ahead of the
 * other input, which still has messages to read: hand it back (stage.h). The other's time
 * counts its own message handed back, so the two are never held for each other (a quarter is
 * held only more than an hour ahead of a held baseline, a baseline only ahead of a held
 * quarter); NONE (nothing of it handled yet) holds. */
static bool runs_ahead(worker_t *w, int t, int32_t p, hvs_ms_t te) {
    int o = 1 - t;
    const align_t *a = &w->al[p];
    if (hvs_stage_input_lag(w->stage, o ? w->topic_fc : w->topic_agg, p) == 0)
        return false; /* caught up: nothing to wait for (live) */
    hvs_ms_t to = a->t_in[o];
    if (a->held_t[o] != HVS_MS_NONE && (to == HVS_MS_NONE || a->held_t[o] > to))
        to = a->held_t[o];
    return to == HVS_MS_NONE || te > to + (t == 0 ? QUARTER_LEAD_MS : BASELINE_LEAD_MS);
}

/* Align input t's message of event time te on p: true when it is held. */
static bool held(worker_t *w, int t, int32_t p, hvs_ms_t te) {
    align_t *a = &w->al[p];
    if (runs_ahead(w, t, p, te)) {
        a->held_t[t] = te;
        return true;
    }
    a->held_t[t] = HVS_MS_NONE;
    if (a->t_in[t] == HVS_MS_NONE || te > a->t_in[t])
        a->t_in[t] = te;
    return false;
}

static int begin_batch(void *opaque, hvs_err_t *err) {
    (void)err;
    worker_t *w = opaque;
    w->now = hvs_stage_now(w->stage);
    hvs_topology_poll(w->topo, 0);
    hvs_registry_poll(w->reg, 0); /* a new version serves from this batch on */
    return 0;
}

static int handle_input(worker_t *w, const rd_kafka_message_t *m, bool agg, hvs_err_t *why) {
    bool q = hvs_stage_replaying(w->stage);
    if (!m->payload)
        return hvs_err_set(why, HVS_EINVAL, "empty_value", "message without a value");
    avro_value_t *v;
    int rc;
    if (agg) {
        rf_quarter_t a;
        if (hvs_decoder_decode(w->dec_agg, m->payload, m->len, &v, why) ||
            rf_input_quarter(w->input, v, w->now, settings.max_future_ms, &a, why) ||
            hvs_id_check_key(m, a.building, why))
            return HVS_EINVAL;
        if (held(w, 0, m->partition, a.start + RF_QUARTER_MS))
            return HVS_STAGE_HOLD;
        if (a.apartment)
            return 0; /* the refresh is the building's */
        rc = rf_on_quarter(w->rf, m->partition, a.building, a.start, a.kwh, q, why);
    } else {
        char building[HVS_ID_MAX + 1];
        rf_baseline_in_t in;
        if (hvs_decoder_decode(w->dec_fc, m->payload, m->len, &v, why) ||
            rf_input_baseline(w->input, v, w->now, settings.max_future_ms, building, &in, why) ||
            hvs_id_check_key(m, building, why))
            return HVS_EINVAL;
        if (held(w, 1, m->partition, in.issued_at))
            return HVS_STAGE_HOLD;
        rc = rf_on_baseline(w->rf, m->partition, building, &in, q, why);
    }
    return rc == HVS_EINVAL ? HVS_ESTATE : rc; /* the input was valid: a failure is ours */
}

static int handle(void *opaque, const rd_kafka_message_t *m, hvs_err_t *why) {
    worker_t *w = opaque;
    bool agg = strcmp(rd_kafka_topic_name(m->rkt), w->topic_agg) == 0;
    int rc = handle_input(w, m, agg, why);
    if (rc != HVS_STAGE_HOLD) /* a message handed back is counted once, when it goes through */
        hvs_metric_inc(w->m_in[agg ? 0 : 1]);
    return rc;
}

static void update_metrics(worker_t *w) {
    rf_stats_t *s = rf_stats(w->rf), *o = &w->seen;
    hvs_metric_add(w->m_refreshes, (double)(s->refreshes - o->refreshes));
    hvs_metric_add(w->m_again, (double)(s->again - o->again));
    hvs_metric_add(w->m_ticks, (double)(s->ticks - o->ticks));
    hvs_metric_add(w->m_no_baseline, (double)(s->no_baseline - o->no_baseline));
    hvs_metric_add(w->m_no_area, (double)(s->no_area - o->no_area));
    for (int i = 0; i < RF_FLAG_COUNT; i++)
        hvs_metric_add(w->m_flags[i], (double)(s->by_flag[i] - o->by_flag[i]));
    *o = *s;
}

static int end_batch(void *opaque, hvs_err_t *err) {
    worker_t *w = opaque;
    return rf_flush(w->rf, err);
}

static int write_state(void *opaque, hvs_err_t *err) {
    worker_t *w = opaque;
    /* the outputs are acknowledged: the latest refreshes first (apart, see state.h) */
    int rc = rf_state_save_latest(w->rf, w->redis, w->rb, settings.latest_ttl_ms, err);
    if (rc == 0)
        rc = rf_state_save(w->rf, hvs_stage_state_batch(w->stage), err);
    update_metrics(w);
    return rc;
}

static int assigned(void *opaque, int32_t p, hvs_err_t *err) {
    worker_t *w = opaque;
    align_reset(w, p);
    if (hvs_stage_rebuilding(w->stage, p)) {
        /* without its epoch, what Redis holds of p is a rebuild that did not finish */
        hvs_log_info("refresher", "partition %d assigned: rebuilding, starting empty", (int)p);
        return rf_partition(w->rf, p, true)
                   ? 0
                   : hvs_err_set(err, HVS_ENOMEM, "oom", "partition %d", (int)p);
    }
    size_t n = 0;
    int rc = rf_state_load_partition(w->rf, w->redis, w->rb, p, &n, err);
    if (rc == 0)
        hvs_log_info("refresher", "partition %d assigned: %zu buildings loaded", (int)p, n);
    return rc;
}

static void revoked(void *opaque, int32_t p) {
    worker_t *w = opaque;
    rf_drop_partition(w->rf, p); /* its state was written before the last commit */
    align_reset(w, p);
    hvs_log_info("refresher", "partition %d revoked", (int)p);
}

static int ready(void *opaque, char *why, size_t whylen) {
    worker_t *w = opaque;
    return hvs_registry_ready(w->reg, w->topo, why, whylen);
}

static void stopping(void *opaque) {
    worker_t *w = opaque;
    rf_stats_t *s = rf_stats(w->rf);
    hvs_log_info("refresher",
                 "stopping: ticks=%llu refreshes=%llu again=%llu online=%llu no_baseline=%llu "
                 "no_area=%llu",
                 (unsigned long long)s->ticks, (unsigned long long)s->refreshes,
                 (unsigned long long)s->again, (unsigned long long)s->online,
                 (unsigned long long)s->no_baseline, (unsigned long long)s->no_area);
}

static const hvs_stage_def_t rf_stage = {
    .name = "refresher",
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
    hvs_registry_log_swap("refresher", name, old, now);
}

static int run(hvs_app_t *app, void *state, hvs_err_t *err) {
    worker_t *w = state;
    w->app = app;
    int rc;
    if ((rc = hvs_profile_load(app->cfg.profile, app->cfg.profile_file, err)))
        return rc; /* first: a site of a kwh profile is corrected in kWh, its models that profile's */
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    w->topic_agg = hvs_topic_name("aggregates.15m");
    w->topic_fc = hvs_topic_name("forecasts.baseline");
    w->topic_out = hvs_topic_name("forecasts.refreshed");
    const char *inputs[] = {w->topic_agg, w->topic_fc};
    const char *outputs[] = {w->topic_out, NULL};
    hvs_stage_conf_t sc = {.inputs = inputs,
                           .outputs = outputs,
                           .ninputs = 2,
                           .settings = &stage_settings,
                           .rebuild_ms = settings.rebuild_ms};
    hvs_registry_opts_t ro = {
        .prefix = "refresh/", .load_models = true, .on_swap = on_swap, .opaque = w};
    if ((rc = hvs_serde_new(app->cfg.schema_registry_url, &w->serde, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_AGGREGATE, &w->dec_agg, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_FORECAST, &w->dec_fc, err)) ||
        (rc = rf_input_new(w->serde, &w->input, err)) ||
        (rc = rf_output_new(w->serde, w->topic_out, &w->out, err)) ||
        (rc = hvs_redis_connect(app->cfg.redis_url, NULL, &w->redis, err)))
        return rc;
    sc.redis = w->redis;
    sc.state_ns = "rf"; /* a rebuild starts from no keys of its partition ... */
    static const char *const keep[] = {"latest", NULL};
    sc.state_keep = keep; /* ... but the served output clients read */
    hvs_metrics_t *ms = app->metrics;
    w->m_swaps = hvs_metrics_counter(ms, "hvs_refresher_model_swaps_total",
                                     "refresh model versions that started serving", NULL);
    if ((rc = hvs_stage_new(app, &rf_stage, &sc, w->serde, w, &w->stage, err)) ||
        (rc = hvs_topology_new(&kc, w->serde, hvs_topic_name("topology"), &w->topo, err)) ||
        (rc = hvs_registry_new(&kc, w->serde, hvs_topic_name("models"), &ro, &w->reg, err)))
        return rc;
    rf_config_t c = {.grace = settings.grace_ms,
                     .baseline_wait = settings.baseline_wait_ms,
                     .reissue = settings.reissue_ms,
                     .forget = settings.forget,
                     .ridge = settings.ridge,
                     .online_min = (int)settings.online_min};
    for (int32_t p = 0; p < HVS_MAX_PARTITIONS; p++)
        align_reset(w, p);
    rf_callbacks_t cb = {info, acquire, quiet, emit, w, base_pending};
    if ((rc = rf_new(&c, &cb, &w->rf, err)))
        return rc;
    if (!(w->rb = hvs_redis_batch_new()))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "refresher state");
    w->m_in[0] = hvs_metrics_counter(ms, "hvs_refresher_inputs_total", "messages consumed",
                                     "topic=\"aggregates\"");
    w->m_in[1] = hvs_metrics_counter(ms, "hvs_refresher_inputs_total", "messages consumed",
                                     "topic=\"baselines\"");
    w->m_refreshes = hvs_metrics_counter(ms, "hvs_refresher_refreshes_total",
                                         "refreshes made (published unless rebuilding)", NULL);
    w->m_again = hvs_metrics_counter(ms, "hvs_refresher_reissued_total",
                                     "refreshes made again after a late quarter or baseline", NULL);
    w->m_ticks = hvs_metrics_counter(ms, "hvs_refresher_ticks_total",
                                     "15-minute ticks made (one per building and tick)", NULL);
    w->m_no_baseline = hvs_metrics_counter(
        ms, "hvs_refresher_skipped_total",
        "building ticks skipped: no baseline issued by the tick covers its next hour",
        "reason=\"no_baseline\"");
    w->m_no_area = hvs_metrics_counter(
        ms, "hvs_refresher_skipped_total",
        "building ticks skipped: the building has no heated area (or is not in topology)",
        "reason=\"no_area\"");
    for (int i = 0; i < RF_FLAG_COUNT; i++) {
        char lbl[64];
        snprintf(lbl, sizeof lbl, "flag=\"%s\"", rf_flag_name(i));
        w->m_flags[i] = hvs_metrics_counter(ms, "hvs_refresher_flagged_total",
                                            "refreshes published with the flag", lbl);
    }
    hvs_topology_poll(w->topo, 30000);
    hvs_registry_poll(w->reg, 30000);
    hvs_log_info("refresher", "consuming %s + %s -> %s", w->topic_agg, w->topic_fc, w->topic_out);
    return hvs_stage_run(w->stage, err);
}

static void worker_free(void *state) {
    worker_t *w = state;
    rf_destroy(w->rf);
    hvs_registry_destroy(w->reg);
    hvs_topology_destroy(w->topo);
    hvs_stage_destroy(w->stage);
    hvs_redis_batch_destroy(w->rb);
    hvs_redis_destroy(w->redis);
    rf_output_destroy(w->out);
    rf_input_destroy(w->input);
    hvs_decoder_destroy(w->dec_agg);
    hvs_decoder_destroy(w->dec_fc);
    hvs_serde_destroy(w->serde);
}

int main(int argc, char **argv) {
    static worker_t w; /* zeroed, living for the process */
    hvs_cfg_section_t sections[] = {rf_section,
                                    *hvs_stage_settings_section(&stage_settings, "HVS_RF_")};
    hvs_app_spec_t spec = {
        .worker = "refresher",
        .summary = "aggregates.15m + forecasts.baseline -> forecasts.refreshed (the next 1-3 h "
                   "of each building every 15 minutes, corrected by the last hours' errors)",
        .usage =
            "Usage: hvs-refresher [--grace 15m] [--forget 0.98] ... (every HVS_RF_* is a flag)",
        .extra = sections,
        .nextra = 2,
        .state = &w,
        .cleanup = worker_free,
        .flag_prefix = "HVS_RF_",
    };
    return hvs_app_main(&spec, argc, argv, run);
}
