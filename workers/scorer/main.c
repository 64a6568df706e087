/*
 * hvs-scorer - features.hourly + aggregates.hourly (+ topology, models) -> scores.anomaly: one
 * AnomalyScore per apartment-hour, from physics rules on the rooms' evidence, the residual of
 * the serving anomaly-residual model standardised by the apartment's own recent residuals, and
 * the anomaly-classifier's probability, combined into one score with reasons a technician can
 * read (docs/design.md section 6, "Scoring").
 *
 * A stage on the one runner (stage.h), which polls, publishes, commits and dead-letters; this
 * file is the configuration and the stage's callbacks:
 *   handle       decodes and validates (input.h; the Kafka key must be the building id; bad ->
 *                dead letter); an aggregate writes its hour's half of the apartment's ring and
 *                the rules judge it (rules.h); a feature vector is queued with the model
 *                versions its building's age and scope call for;
 *   end_batch    scores the queued vectors together (batch.h: one prediction call per model,
 *                contributions only for what can enter a top-k), publishes, and encodes the
 *                changed slots into the runner's state batch, which the runner writes to Redis
 *                once the broker acknowledged the scores.
 * The latest score of an apartment-hour is the same whatever the interleaving of the two topics,
 * batch boundaries or crashes (apartment.h); its `revision` orders the emissions.
 * Model scope per building (seed 001's cold start): younger than HVS_SCORE_MATURE, rules only;
 * from HVS_SCORE_BUILDING_AGE its own anomaly-residual/building:<id> if one serves, else its
 * archetype's, else global; anomaly-classifier/global for every mature building. Versions are
 * followed on `models` (model_registry.h) and swapped between batches; every score names them.
 * Drift (watch.h): every row a version scores is counted against its training profile per
 * partition; a feature whose PSI over HVS_SCORE_DRIFT_WINDOW passes HVS_SCORE_PSI_LIMIT, or a
 * per-apartment feature stuck on one improbable value (seed 004's fillna(0)), raises
 * MODEL_DRIFT on `alerts` naming <model>:<version> and the features; the trainer retrains on it.
 * Lost state: the runner rebuilds a partition whose state vanished by replaying both inputs
 * from HVS_SCORE_REBUILD_WINDOW ago, quietly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregates.h"
#include "batch.h"
#include "hvs/alert.h"
#include "hvs/app.h"
#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/model_registry.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/stage.h"
#include "hvs/task_rows.h"
#include "hvs/topics.h"
#include "hvs/topology.h"
#include "input.h"
#include "output.h"
#include "rules.h"
#include "score.h"
#include "state.h"
#include "watch.h"

typedef struct settings {
    int64_t mature_ms, building_ms, max_future_ms, rebuild_ms;
    double valve_open, valve_half, valve_closed, stuck_open_min, stuck_below, stuck_above, gap,
        mismatch, no_heat_kwh, demand_kwh;
    int64_t stuck_hours, no_response_hours, flatline_hours, mismatch_hours, demand_hours;
    double z_low, z_high, min_spread, explain_min, residual_weight;
    int64_t spread_min, residual_hours;
    double psi_limit, const_max_share;
    int64_t drift_window_ms, drift_min_rows, const_rows, const_hours;
} settings_t;

#define S(f) offsetof(settings_t, f)
static const hvs_cfg_entry_t sc_entries[] = {
    {"HVS_SCORE_MATURE", HVS_CFG_DURATION, "30d", 0, 31536000000.0, S(mature_ms), 0,
     "buildings younger than this (event time since commissioning) are scored by rules only"},
    {"HVS_SCORE_BUILDING_AGE", HVS_CFG_DURATION, "180d", 0, 31536000000.0, S(building_ms), 0,
     "from this age a building's own anomaly-residual/building:<id> serves it, when approved"},
    {"HVS_SCORE_MAX_FUTURE", HVS_CFG_DURATION, "1d", 0, 31536000000.0, S(max_future_ms), 0,
     "inputs stamped later than now plus this are refused (timestamp_in_future)"},
    {"HVS_SCORE_REBUILD_WINDOW", HVS_CFG_DURATION, "4d", 86400000, 31536000000.0, S(rebuild_ms), 0,
     "after Redis lost the state, the inputs are replayed from this long ago (message time)"},
    {"HVS_SCORE_VALVE_OPEN", HVS_CFG_DOUBLE, "90", 0, 100, S(valve_open), 0,
     "percent from which a valve counts as open (stuck_valve)"},
    {"HVS_SCORE_VALVE_HALF", HVS_CFG_DOUBLE, "50", 0, 100, S(valve_half), 0,
     "percent from which a valve asks for heat (no_heat_response)"},
    {"HVS_SCORE_VALVE_CLOSED", HVS_CFG_DOUBLE, "5", 0, 100, S(valve_closed), 0,
     "percent up to which a valve counts as closed"},
    {"HVS_SCORE_STUCK_OPEN_MIN", HVS_CFG_DOUBLE, "30", 0, 100, S(stuck_open_min), 0,
     "a valve this open while its room is well above setpoint is stuck open"},
    {"HVS_SCORE_STUCK_BELOW", HVS_CFG_DOUBLE, "2.0", 0, 20, S(stuck_below), 0,
     "degC below setpoint with the valve open and the apartment heating: stuck valve"},
    {"HVS_SCORE_STUCK_ABOVE", HVS_CFG_DOUBLE, "1.5", 0, 20, S(stuck_above), 0,
     "degC above setpoint with the valve open: stuck open"},
    {"HVS_SCORE_GAP", HVS_CFG_DOUBLE, "2.0", 0, 20, S(gap), 0,
     "comfort gap (degC below setpoint) of no_heat_response and of a valve stuck closed"},
    {"HVS_SCORE_MISMATCH", HVS_CFG_DOUBLE, "3.0", 0, 20, S(mismatch), 0,
     "degC a room's distance to setpoint differs from its neighbours' (sensor_mismatch)"},
    {"HVS_SCORE_NO_HEAT_KWH", HVS_CFG_DOUBLE, "0.05", 0, 100, S(no_heat_kwh), 0,
     "apartment heating per hour up to which it counts as none"},
    {"HVS_SCORE_DEMAND_KWH", HVS_CFG_DOUBLE, "0.3", 0, 100, S(demand_kwh), 0,
     "apartment heating per hour from which every valve closed is consumption_without_demand"},
    {"HVS_SCORE_STUCK_HOURS", HVS_CFG_INT, "6", 1, 72, S(stuck_hours), 0,
     "hours a stuck_valve condition must hold"},
    {"HVS_SCORE_NO_RESPONSE_HOURS", HVS_CFG_INT, "6", 1, 72, S(no_response_hours), 0,
     "hours a no_heat_response condition must hold"},
    {"HVS_SCORE_FLATLINE_HOURS", HVS_CFG_INT, "12", 1, 72, S(flatline_hours), 0,
     "hours a room's temperature must stay unchanged (sensor_flatline)"},
    {"HVS_SCORE_MISMATCH_HOURS", HVS_CFG_INT, "6", 1, 72, S(mismatch_hours), 0,
     "hours a sensor_mismatch condition must hold"},
    {"HVS_SCORE_DEMAND_HOURS", HVS_CFG_INT, "6", 1, 72, S(demand_hours), 0,
     "hours a consumption_without_demand condition must hold"},
    {"HVS_SCORE_Z_LOW", HVS_CFG_DOUBLE, "3", 0, 100, S(z_low), 0,
     "standardised residual from which it is evidence"},
    {"HVS_SCORE_Z_HIGH", HVS_CFG_DOUBLE, "6", 0, 100, S(z_high), 0,
     "standardised residual at which its evidence is full"},
    {"HVS_SCORE_MIN_SPREAD", HVS_CFG_DOUBLE, "0.05", 0.001, 100, S(min_spread), 0,
     "kWh: floor of an apartment's residual spread (a quiet apartment's noise is not zero)"},
    {"HVS_SCORE_SPREAD_MIN", HVS_CFG_INT, "24", 2, 72, S(spread_min), 0,
     "earlier window residuals an apartment needs before its residual is standardised"},
    {"HVS_SCORE_RESIDUAL_WEIGHT", HVS_CFG_DOUBLE, "0.5", 0, 1, S(residual_weight), 0,
     "the residual's evidence at most: alone it cannot tell a fault from an occupant's doing"},
    {"HVS_SCORE_RESIDUAL_HOURS", HVS_CFG_INT, "6", 1, 24, S(residual_hours), 0,
     "hours the residual is summed over (meters report in lumps; energy adds up over hours)"},
    {"HVS_SCORE_EXPLAIN_MIN", HVS_CFG_DOUBLE, "0.3", 0, 1, S(explain_min), 0,
     "model evidence from which TreeSHAP contributions are computed for the reasons"},
    {"HVS_SCORE_PSI_LIMIT", HVS_CFG_DOUBLE, "0.2", 0.01, 100, S(psi_limit), 0,
     "population stability index of a feature (over the drift window, against the version's "
     "training profile) above which MODEL_DRIFT is raised"},
    {"HVS_SCORE_DRIFT_WINDOW", HVS_CFG_DURATION, "24h", 3600000, 604800000, S(drift_window_ms), 0,
     "event time the PSI is computed over (whole hours)"},
    {"HVS_SCORE_DRIFT_MIN_ROWS", HVS_CFG_INT, "100", 1, 100000000, S(drift_min_rows), 0,
     "rows a model's window needs on a partition before its PSI is judged"},
    {"HVS_SCORE_CONST_ROWS", HVS_CFG_INT, "20", 2, 100000000, S(const_rows), 0,
     "consecutive rows with one identical per-apartment feature value that raise MODEL_DRIFT"},
    {"HVS_SCORE_CONST_HOURS", HVS_CFG_INT, "3", 1, 1000, S(const_hours), 0,
     "distinct event hours those rows must span"},
    {"HVS_SCORE_CONST_MAX_SHARE", HVS_CFG_DOUBLE, "0.2", 0, 1, S(const_max_share), 0,
     "the profile's share of the constant value's bin up to which it is suspicious"},
};
static settings_t settings;
static hvs_stage_settings_t stage_settings; /* HVS_SCORE_BATCH, _FLUSH_TIMEOUT, _STALL_TIMEOUT */
static const hvs_cfg_section_t sc_section = {"scorer", sc_entries,
                                             sizeof sc_entries / sizeof sc_entries[0], &settings};

#define MODEL_CACHE 64

typedef struct cached_model {
    char name[256];
    hvs_model_ref_t *ref; /* NULL: none serves (or unusable) */
} cached_model_t;

typedef struct worker {
    hvs_app_t *app;
    hvs_stage_t *stage;
    const char *topic_vec, *topic_agg, *topic_out;
    hvs_serde_t *serde;
    hvs_decoder_t *dec_vec, *dec_agg;
    sc_input_t *input;
    sc_output_t *out;
    hvs_redis_t *redis;
    hvs_redis_batch_t *rb;
    hvs_topology_t *topo;
    hvs_registry_t *reg;
    sc_state_t *st;
    sc_batch_t *batch;
    sc_watches_t *watches;
    hvs_alerter_t *alerter;
    sc_rule_conf_t rules;
    sc_score_conf_t score;
    cached_model_t cache[MODEL_CACHE]; /* this batch's acquired versions */
    size_t ncache;
    hvs_ms_t now;
    sc_aggregate_t agg; /* decode buffers (large: reused) */
    sc_vector_t vec;
    hvs_metric_t *m_in[2], *m_scores, *m_skipped[4], *m_rules[SC_RULE_COUNT], *m_strategy[5],
        *m_explained, *m_swaps, *m_drift[2];
    uint64_t explained_seen;
} worker_t;

enum { SKIP_BUILDING_LEVEL, SKIP_TOO_OLD, SKIP_UNKNOWN_BUILDING, SKIP_ROOMS_CAPPED };
static const char *const skip_names[4] = {"building_level", "too_old", "unknown_building",
                                          "rooms_capped"};

/* ---- models --------------------------------------------------------------------------------- */

/* The serving version of `name` for this batch (acquired once, released in end_batch). */
static hvs_model_ref_t *model(worker_t *w, const char *name, hvs_task_t task) {
    for (size_t i = 0; i < w->ncache; i++)
        if (strcmp(w->cache[i].name, name) == 0)
            return w->cache[i].ref;
    if (w->ncache == MODEL_CACHE)
        return NULL;
    cached_model_t *c = &w->cache[w->ncache++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->ref = hvs_registry_acquire(w->reg, name);
    if (c->ref && !hvs_model_ref_fits(c->ref, task)) {
        hvs_log_error("scorer", "%s: its columns are not this build's %s columns: not used",
                      c->ref->ident, hvs_taskrow_task_name(task));
        hvs_registry_release(c->ref);
        c->ref = NULL;
    }
    return c->ref;
}

static void release_models(worker_t *w) {
    for (size_t i = 0; i < w->ncache; i++)
        if (w->cache[i].ref)
            hvs_registry_release(w->cache[i].ref);
    w->ncache = 0;
}

/* The residual and classifier versions for a building at an hour (docs/design.md section 6). */
static void choose_models(worker_t *w, const hvs_building_t *b, hvs_ms_t hour,
                          hvs_model_ref_t **res, hvs_model_ref_t **cls) {
    *res = *cls = NULL;
    if (!b || hour - b->commissioning < settings.mature_ms)
        return; /* cold start: rules only */
    char name[512];
    if (hour - b->commissioning >= settings.building_ms) {
        snprintf(name, sizeof name, "anomaly-residual/building:%s", b->id);
        *res = model(w, name, HVS_TASK_ANOMALY_RESIDUAL);
    }
    if (!*res && b->archetype[0]) {
        snprintf(name, sizeof name, "anomaly-residual/archetype:%s", b->archetype);
        *res = model(w, name, HVS_TASK_ANOMALY_RESIDUAL);
    }
    if (!*res)
        *res = model(w, "anomaly-residual/global", HVS_TASK_ANOMALY_RESIDUAL);
    *cls = model(w, "anomaly-classifier/global", HVS_TASK_ANOMALY_CLASSIFIER);
}

/* ---- outputs -------------------------------------------------------------------------------- */

/* "<name>:<version>" into its parts (names hold ':' themselves: the version is after the last). */
static void split_ident(const char *ident, char *name, size_t cap, int *version) {
    const char *c = strrchr(ident, ':');
    size_t n = c ? (size_t)(c - ident) : strlen(ident);
    snprintf(name, cap, "%.*s", (int)n, ident);
    *version = c ? atoi(c + 1) : 0;
}

static int emit_score(void *opaque, sc_building_t *b, sc_apartment_t *a, hvs_ms_t hour,
                      hvs_err_t *err) {
    worker_t *w = opaque;
    const sc_model_t *m = sc_model_get(a, hour);
    const sc_agg_t *g = sc_agg_get(a, hour); /* NULL: the aggregate's half is not here (yet) */
    if (!m)
        return 0;
    const char *res = sc_ident_get(&w->st->idents, m->res_ident);
    const char *cls = sc_ident_get(&w->st->idents, m->cls_ident);
    sc_score_out_t o = {.building = b->id,
                        .apartment = a->id,
                        .hour = hour,
                        .scored_at = w->now,
                        .revision = (int64_t)m->rev * 65536 + (g ? g->rev + 1 : 0),
                        .probability = cls ? m->prob : NAN,
                        .expected = res ? m->expected : NAN,
                        .observed = m->observed,
                        .rule_score = g ? g->rule_score : NAN,
                        .residual_z = res ? m->residual_z : NAN,
                        .model_name = "rules"};
    o.score = sc_combine(g ? g->rule_score : 0, res ? m->e_res : 0, cls ? m->e_cls : 0);
    o.strategy = res && cls ? SC_STRATEGY_COMBINED
                 : res      ? SC_STRATEGY_RESIDUAL
                 : cls      ? SC_STRATEGY_CLASSIFIER
                            : SC_STRATEGY_RULES;
    char name[256];
    if (res || cls)
        split_ident(res ? res : cls, name, sizeof name, &o.model_version), o.model_name = name;
    if (res)
        o.models[o.nmodels++] = res;
    if (cls)
        o.models[o.nmodels++] = cls;
    char text[SC_OUT_REASONS][256];
    for (int i = 0; g && i < g->nfired; i++) {
        o.rules[o.nrules++] = sc_rule_name(g->fired[i].rule);
        if (sc_rule_reason(a, &g->fired[i], text[o.nreasons], sizeof text[0]))
            o.reasons[o.nreasons] = text[o.nreasons], o.nreasons++;
    }
    if (res && m->e_res > 0 && sc_residual_reason(&w->score, m, text[o.nreasons], sizeof text[0]))
        o.reasons[o.nreasons] = text[o.nreasons], o.nreasons++;
    for (int i = 0; i < m->ncontrib && o.nreasons < SC_OUT_REASONS; i++)
        if (sc_contrib_reason(m, &m->contrib[i], text[o.nreasons], sizeof text[0]))
            o.reasons[o.nreasons] = text[o.nreasons], o.nreasons++;
    const void *buf;
    size_t len;
    int rc = sc_output_encode(w->out, &o, &buf, &len, err);
    if (rc == 0)
        rc = hvs_producer_send(hvs_stage_producer(w->stage), w->topic_out, RD_KAFKA_PARTITION_UA,
                               b->id, strlen(b->id), buf, len, err);
    if (rc == 0) {
        hvs_metric_inc(w->m_scores);
        hvs_metric_inc(w->m_strategy[o.strategy]);
    }
    return rc;
}

/* A drift or constant-feature finding as a MODEL_DRIFT alert on `alerts`, stamped in event time
 * (one per version, partition, kind and day: watch.h). Its entity is the version on the
 * partition ("<name>:<version>@p<P>"): the population a member sees. */
static int emit_drift(void *opaque, const sc_finding_t *f, hvs_err_t *err) {
    worker_t *w = opaque;
    char entity[256], summary[512], part[16], rows[32], names[SC_FINDING_FEATURES][80],
        vals[SC_FINDING_FEATURES][32], since[32];
    snprintf(entity, sizeof entity, "%s@p%d", f->ident, (int)f->partition);
    snprintf(part, sizeof part, "%d", (int)f->partition);
    snprintf(rows, sizeof rows, "%zu", f->rows);
    const char *ev[4 + 2 * SC_FINDING_FEATURES + 4 + 1];
    int n = 0;
    ev[n++] = "partition", ev[n++] = part, ev[n++] = "rows", ev[n++] = rows;
    for (int i = 0; i < f->n; i++) {
        snprintf(names[i], sizeof names[i], "%s:%s", f->constant ? "constant" : "psi",
                 f->feature[i]);
        snprintf(vals[i], sizeof vals[i], "%.4g", f->value[i]);
        ev[n++] = names[i], ev[n++] = vals[i];
    }
    if (f->constant) {
        snprintf(since, sizeof since, "%lld", (long long)f->since);
        ev[n++] = "since", ev[n++] = since;
        snprintf(summary, sizeof summary,
                 "%s: %s arrived as %g in %zu consecutive rows since %lld (partition %d), a value "
                 "its training profile makes rare: an upstream change is suspected",
                 f->ident, f->feature[0], f->value[0], f->rows, (long long)f->since,
                 (int)f->partition);
    } else {
        snprintf(summary, sizeof summary,
                 "%s: %s drifted (PSI %.2f over the last %lld h, %zu rows, partition %d)", f->ident,
                 f->feature[0], f->worst, (long long)(settings.drift_window_ms / HVS_MS_HOUR),
                 f->rows, (int)f->partition);
    }
    ev[n] = NULL;
    hvs_alert_t al = {.building_id = entity,
                      .type = HVS_ALERT_MODEL_DRIFT,
                      .severity = f->constant || f->worst > 2 * settings.psi_limit
                                      ? HVS_SEVERITY_CRITICAL
                                      : HVS_SEVERITY_WARNING,
                      .score = f->constant ? 1.0 : f->worst,
                      .summary = summary,
                      .evidence = ev,
                      .model = f->ident,
                      .first_seen = f->hour,
                      .updated_at = f->hour};
    hvs_log_warn("scorer", "%s", summary);
    hvs_metric_inc(w->m_drift[f->constant]);
    return hvs_alerter_send(w->alerter, &al, err);
}

/* ---- inputs --------------------------------------------------------------------------------- */

static int on_aggregate(worker_t *w, int32_t p, const sc_aggregate_t *in, bool quiet,
                        hvs_err_t *err) {
    sc_applied_t r;
    int rc = sc_apply_aggregate(w->st, &w->rules, p, in, quiet, &r, err);
    if (rc)
        return rc;
    if (!r.b)
        hvs_metric_inc(w->m_skipped[SKIP_BUILDING_LEVEL]);
    if (r.too_old)
        hvs_metric_inc(w->m_skipped[SKIP_TOO_OLD]);
    for (int i = 0; i < r.rooms_capped; i++)
        hvs_metric_inc(w->m_skipped[SKIP_ROOMS_CAPPED]);
    const sc_agg_t *g = r.a ? sc_agg_get(r.a, in->hour) : NULL;
    for (int i = 0; g && i < r.fired && !quiet; i++)
        hvs_metric_inc(w->m_rules[g->fired[i].rule]);
    return r.publish ? emit_score(w, r.b, r.a, in->hour, err) : 0;
}

static int on_vector(worker_t *w, int32_t p, const sc_vector_t *v, bool quiet, hvs_err_t *err) {
    if (!v->apartment[0]) {
        hvs_metric_inc(w->m_skipped[SKIP_BUILDING_LEVEL]);
        return 0;
    }
    const hvs_building_t *b = hvs_topology_find(w->topo, v->building);
    if (!b)
        hvs_metric_inc(w->m_skipped[SKIP_UNKNOWN_BUILDING]); /* scored by the rules alone */
    hvs_model_ref_t *res, *cls;
    choose_models(w, b, v->hour, &res, &cls);
    return sc_batch_add(w->batch, v, p, quiet, res, cls, hvs_building_area(b), err);
}

/* ---- the stage's callbacks ------------------------------------------------------------------ */

static int begin_batch(void *opaque, hvs_err_t *err) {
    (void)err;
    worker_t *w = opaque;
    w->now = hvs_stage_now(w->stage);
    hvs_topology_poll(w->topo, 0);
    hvs_registry_poll(w->reg, 0); /* a new version swaps in between batches */
    return 0;
}

static int handle(void *opaque, const rd_kafka_message_t *m, hvs_err_t *why) {
    worker_t *w = opaque;
    bool is_vec = strcmp(rd_kafka_topic_name(m->rkt), w->topic_vec) == 0;
    bool quiet = hvs_stage_replaying(w->stage);
    hvs_metric_inc(w->m_in[is_vec]);
    if (!m->payload)
        return hvs_err_set(why, HVS_EINVAL, "empty_value", "message without a value");
    avro_value_t *v;
    int rc;
    if (is_vec) {
        if (sc_input_vector_bytes(w->input, w->dec_vec, m->payload, m->len, w->now,
                                  settings.max_future_ms, &w->vec, why) ||
            hvs_id_check_key(m, w->vec.building, why))
            return HVS_EINVAL;
        rc = on_vector(w, m->partition, &w->vec, quiet, why);
    } else {
        if (hvs_decoder_decode(w->dec_agg, m->payload, m->len, &v, why) ||
            sc_input_aggregate(w->input, v, w->now, settings.max_future_ms, &w->agg, why) ||
            hvs_id_check_key(m, w->agg.building, why))
            return HVS_EINVAL;
        rc = on_aggregate(w, m->partition, &w->agg, quiet, why);
    }
    return rc == HVS_EINVAL ? HVS_ESTATE : rc; /* past validation nothing is the input's fault */
}

/* The batch's vectors scored and published; then its state encoded into the runner's state
 * batch while the broker is still acknowledging the scores (the runner writes it, with the
 * offsets it covers, only once they are acknowledged). */
static int end_batch(void *opaque, hvs_err_t *err) {
    worker_t *w = opaque;
    sc_batch_hooks_t hooks = {emit_score, emit_drift, w};
    int rc = sc_batch_run(w->batch, w->st, w->watches, &w->score, &hooks, err);
    release_models(w);
    const sc_batch_stats_t *bs = sc_batch_stats(w->batch);
    hvs_metric_add(w->m_explained, (double)(bs->explained - w->explained_seen));
    w->explained_seen = bs->explained;
    hvs_redis_batch_t *state = hvs_stage_state_batch(w->stage);
    if (rc == 0)
        rc = sc_state_save(w->st, state, err);
    if (rc == 0)
        rc = sc_watches_save(w->watches, state, err);
    return rc;
}

static hvs_model_ref_t *lookup_model(void *opaque, const char *name) {
    worker_t *w = opaque;
    return hvs_registry_acquire(w->reg, name);
}

static int assigned(void *opaque, int32_t p, hvs_err_t *err) {
    worker_t *w = opaque;
    if (hvs_stage_rebuilding(w->stage, p)) {
        /* without its epoch, what Redis holds of p is a rebuild that did not finish (killed
         * part way): loaded, the replay would score on top of it (revisions counted twice) */
        hvs_log_info("scorer", "partition %d assigned: rebuilding, starting empty", (int)p);
        return 0;
    }
    size_t n = 0;
    int rc = sc_state_load_partition(w->st, w->redis, w->rb, p, &n, err);
    if (rc == 0)
        rc = sc_watches_load_partition(w->watches, w->redis, w->rb, p, lookup_model, w, err);
    if (rc == 0)
        hvs_log_info("scorer", "partition %d assigned: %zu buildings loaded", (int)p, n);
    return rc;
}

static void revoked(void *opaque, int32_t p) {
    worker_t *w = opaque;
    sc_state_drop_partition(w->st, p); /* its state was written before the last commit */
    sc_watches_drop_partition(w->watches, p);
    hvs_log_info("scorer", "partition %d revoked", (int)p);
}

static int ready(void *opaque, char *why, size_t whylen) {
    worker_t *w = opaque;
    return hvs_registry_ready(w->reg, w->topo, why, whylen);
}

static void stopping(void *opaque) {
    worker_t *w = opaque;
    const sc_batch_stats_t *bs = sc_batch_stats(w->batch);
    hvs_log_info(
        "scorer", "stopping: vectors=%llu predicted=%llu explained=%llu (%.3f s) too_old=%llu",
        (unsigned long long)bs->vectors, (unsigned long long)bs->predicted,
        (unsigned long long)bs->explained, bs->explain_seconds, (unsigned long long)bs->too_old);
}

static const hvs_stage_def_t sc_stage = {
    .name = "scorer",
    .begin_batch = begin_batch,
    .handle = handle,
    .end_batch = end_batch,
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
    hvs_registry_log_swap("scorer", name, old, now);
}

static void apply_settings(worker_t *w) {
    sc_rule_conf_t *r = &w->rules;
    *r = (sc_rule_conf_t){.valve_open = settings.valve_open,
                          .valve_half = settings.valve_half,
                          .valve_closed = settings.valve_closed,
                          .stuck_open_min = settings.stuck_open_min,
                          .stuck_below_c = settings.stuck_below,
                          .stuck_above_c = settings.stuck_above,
                          .no_response_gap_c = settings.gap,
                          .mismatch_c = settings.mismatch,
                          .no_heat_kwh = settings.no_heat_kwh,
                          .demand_kwh = settings.demand_kwh,
                          .stuck_hours = (int)settings.stuck_hours,
                          .no_response_hours = (int)settings.no_response_hours,
                          .flatline_hours = (int)settings.flatline_hours,
                          .mismatch_hours = (int)settings.mismatch_hours,
                          .demand_hours = (int)settings.demand_hours};
    w->score = (sc_score_conf_t){.z_low = settings.z_low,
                                 .z_high = settings.z_high,
                                 .min_spread = settings.min_spread,
                                 .spread_min = (int)settings.spread_min,
                                 .explain_min = settings.explain_min,
                                 .window = (int)settings.residual_hours,
                                 .residual_weight = settings.residual_weight};
}

static int run(hvs_app_t *app, void *state, hvs_err_t *err) {
    worker_t *w = state;
    w->app = app;
    if (!(settings.z_high > settings.z_low))
        return hvs_err_set(err, HVS_ECONFIG, "bad_value", "HVS_SCORE_Z_HIGH must exceed _Z_LOW");
    apply_settings(w);
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    w->topic_vec = hvs_topic_name("features.hourly");
    w->topic_agg = hvs_topic_name("aggregates.hourly");
    w->topic_out = hvs_topic_name("scores.anomaly");
    const char *inputs[] = {w->topic_agg, w->topic_vec};
    const char *outputs[] = {w->topic_out, hvs_topic_name("alerts"), NULL};
    hvs_stage_conf_t sc = {.inputs = inputs,
                           .outputs = outputs,
                           .ninputs = 2,
                           .settings = &stage_settings,
                           .rebuild_ms = settings.rebuild_ms};
    hvs_registry_opts_t ro = {
        .prefix = "anomaly-", .load_models = true, .on_swap = on_swap, .opaque = w};
    int rc;
    if ((rc = hvs_serde_new(app->cfg.schema_registry_url, &w->serde, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_FEATURE_VECTOR, &w->dec_vec, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_AGGREGATE, &w->dec_agg, err)) ||
        (rc = sc_input_new(w->serde, &w->input, err)) ||
        (rc = sc_output_new(w->serde, w->topic_out, &w->out, err)) ||
        (rc = hvs_redis_connect(app->cfg.redis_url, NULL, &w->redis, err)))
        return rc;
    sc.redis = w->redis;
    sc.state_ns = "sc"; /* a rebuild starts from no keys of its partition */
    hvs_metrics_t *ms = app->metrics;
    w->m_swaps = hvs_metrics_counter(ms, "hvs_scorer_model_swaps_total",
                                     "model versions that started serving", NULL);
    if ((rc = hvs_stage_new(app, &sc_stage, &sc, w->serde, w, &w->stage, err)) ||
        (rc = hvs_topology_new(&kc, w->serde, hvs_topic_name("topology"), &w->topo, err)) ||
        (rc = hvs_registry_new(&kc, w->serde, hvs_topic_name("models"), &ro, &w->reg, err)))
        return rc;
    sc_watch_conf_t wc = {.psi_limit = settings.psi_limit,
                          .window_ms = settings.drift_window_ms / HVS_MS_HOUR * HVS_MS_HOUR,
                          .min_count = (uint32_t)settings.drift_min_rows,
                          .const_rows = (int)settings.const_rows,
                          .const_hours = (int)settings.const_hours,
                          .const_max_share = settings.const_max_share};
    if ((rc = hvs_alerter_new(w->serde, hvs_stage_producer(w->stage), &w->alerter, err)))
        return rc;
    if (!(w->rb = hvs_redis_batch_new()) || !(w->st = sc_state_new()) ||
        !(w->batch = sc_batch_new()) || !(w->watches = sc_watches_new(&wc)))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "scorer state");
    w->m_drift[0] = hvs_metrics_counter(ms, "hvs_scorer_drift_alerts_total",
                                        "MODEL_DRIFT alerts raised", "kind=\"psi\"");
    w->m_drift[1] = hvs_metrics_counter(ms, "hvs_scorer_drift_alerts_total",
                                        "MODEL_DRIFT alerts raised", "kind=\"constant\"");
    w->m_in[0] = hvs_metrics_counter(ms, "hvs_scorer_inputs_total", "messages consumed",
                                     "topic=\"aggregates\"");
    w->m_in[1] = hvs_metrics_counter(ms, "hvs_scorer_inputs_total", "messages consumed",
                                     "topic=\"features\"");
    w->m_scores = hvs_metrics_counter(ms, "hvs_scorer_scores_total", "scores published", NULL);
    w->m_explained = hvs_metrics_counter(ms, "hvs_scorer_explained_total",
                                         "scores explained by TreeSHAP contributions", NULL);
    for (int i = 0; i < 4; i++) {
        char lbl[64];
        snprintf(lbl, sizeof lbl, "reason=\"%s\"", skip_names[i]);
        w->m_skipped[i] = hvs_metrics_counter(ms, "hvs_scorer_skipped_total",
                                              "records or parts of them not scored", lbl);
    }
    for (int i = 0; i < SC_RULE_COUNT; i++) {
        char lbl[64];
        snprintf(lbl, sizeof lbl, "rule=\"%s\"", sc_rule_name(i));
        w->m_rules[i] = hvs_metrics_counter(ms, "hvs_scorer_rules_fired_total",
                                            "apartment-hours on which a rule fired", lbl);
    }
    static const char *const strat[5] = {"rules", "residual", "classifier", "unknown", "combined"};
    for (int i = 0; i < 5; i++) {
        char lbl[64];
        snprintf(lbl, sizeof lbl, "strategy=\"%s\"", strat[i]);
        w->m_strategy[i] = hvs_metrics_counter(ms, "hvs_scorer_scores_by_strategy_total",
                                               "scores published by strategy", lbl);
    }
    hvs_topology_poll(w->topo, 30000);
    hvs_registry_poll(w->reg, 30000);
    hvs_log_info("scorer", "consuming %s + %s -> %s (feature set %s)", w->topic_agg, w->topic_vec,
                 w->topic_out, hvs_features_version());
    return hvs_stage_run(w->stage, err);
}

static void worker_free(void *state) {
    worker_t *w = state;
    release_models(w);
    hvs_registry_destroy(w->reg);
    hvs_topology_destroy(w->topo);
    hvs_alerter_destroy(w->alerter); /* borrows the stage's producer */
    hvs_stage_destroy(w->stage);
    sc_watches_destroy(w->watches);
    sc_batch_destroy(w->batch);
    sc_state_destroy(w->st);
    hvs_redis_batch_destroy(w->rb);
    hvs_redis_destroy(w->redis);
    sc_output_destroy(w->out);
    sc_input_destroy(w->input);
    hvs_decoder_destroy(w->dec_vec);
    hvs_decoder_destroy(w->dec_agg);
    hvs_serde_destroy(w->serde);
}

int main(int argc, char **argv) {
    static worker_t w; /* large, zeroed, living for the process */
    hvs_cfg_section_t sections[] = {sc_section,
                                    *hvs_stage_settings_section(&stage_settings, "HVS_SCORE_")};
    hvs_app_spec_t spec = {
        .worker = "scorer",
        .summary = "features.hourly + aggregates.hourly -> scores.anomaly (rules, residual and "
                   "classifier, combined, with reasons)",
        .usage = "Usage: hvs-scorer [--mature 30d] [--valve-open 90] ... (every HVS_SCORE_* is a "
                 "flag)",
        .extra = sections,
        .nextra = 2,
        .state = &w,
        .cleanup = worker_free,
        .flag_prefix = "HVS_SCORE_",
    };
    return hvs_app_main(&spec, argc, argv, run);
}
