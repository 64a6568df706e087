/*
 * hvs-features - aggregates.hourly + weather.hourly (+ topology) -> features.hourly: one
 * FeatureVector per apartment-hour and building-hour, computed by the one feature definition
 * (features.h) from state kept in Redis (featstore.h), and DATA_QUALITY alerts when critical
 * features go missing.
 *
 * A stage on the one runner (stage.h), which polls, publishes, commits and dead-letters; this
 * file is the configuration and the stage's callbacks: handle decodes, validates (input.h; the
 * Kafka key must be the record's building id; bad -> dead letter) and feeds the engine (engine.c), which emits vectors now or once the hour's observed
 * weather arrives (or it timed out); end_batch advances idle partitions; write_state (after the
 * broker acknowledged the vectors) writes the rings, pending vectors and watermarks to Redis.
 * A crash replays the uncommitted messages onto the stored state: slots are rewritten with the
 * same values and the same vectors are emitted again (at least once, identical).
 * Time: per partition the smaller of the two inputs' watermarks (aggregates by window end,
 * weather by issue time), each advancing by the wall clock when idle and caught up (an input
 * with messages left to read is never idle). The inputs are kept within LEAD_MS of each other
 * (stage.h, HVS_STAGE_HOLD): a record further ahead waits while the other input has messages
 * left, so a replay gives the live vectors whichever topic the consumer reads first.
 * Lost state: the runner notices a partition whose state is gone from Redis (flushed, a new
 * empty Redis) and rebuilds it: both input topics are rewound (to HVS_FEAT_REBUILD_WINDOW ago by
 * timestamp, or their start) and replayed quietly (hvs_stage_replaying) up to where processing
 * had got, so no vector is computed from empty lags.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "hvs/alert.h"
#include "hvs/app.h"
#include "hvs/calendar.h"
#include "hvs/featstore.h"
#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/profile.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/stage.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs/topology.h"
#include "input.h"
#include "vectors.h"

#define HOUR HVS_MS_HOUR

typedef struct settings {
    int64_t weather_wait_ms, upgrade_ms, idle_ms, max_future_ms, rebuild_ms, dq_min;
    double dq_limit;
    char *region, *dq_features;
} settings_t;

#define S(f) offsetof(settings_t, f)
static const hvs_cfg_entry_t fx_entries[] = {
    {"HVS_FEAT_WEATHER_WAIT", HVS_CFG_DURATION, "2h", 0, 604800000, S(weather_wait_ms), 0,
     "a vector waits this long past its hour's end (event time) for the observed weather, then "
     "goes out with the latest forecast (flagged)"},
    {"HVS_FEAT_UPGRADE_WINDOW", HVS_CFG_DURATION, "48h", 3600000, 604800000, S(upgrade_ms), 0,
     "an observation arriving this long after its hour still re-emits the hour's vectors"},
    {"HVS_FEAT_IDLE_TIMEOUT", HVS_CFG_DURATION, "30s", 0, 86400000, S(idle_ms), 0,
     "a partition without data for this long advances its watermark by the wall clock"},
    {"HVS_FEAT_MAX_FUTURE", HVS_CFG_DURATION, "1d", 0, 31536000000.0, S(max_future_ms), 0,
     "inputs stamped later than now plus this are refused (timestamp_in_future)"},
    {"HVS_FEAT_DEFAULT_REGION", HVS_CFG_STRING, "CH", 0, 0, S(region), 0,
     "holiday region (calendar) of buildings whose topology names none"},
    {"HVS_FEAT_DQ_FEATURES", HVS_CFG_STRING, "temperature_c", 0, 0, S(dq_features), 0,
     "critical features (comma-separated names) watched for missing values"},
    {"HVS_FEAT_DQ_LIMIT", HVS_CFG_DOUBLE, "0.05", 0, 1, S(dq_limit), 0,
     "missing share of a critical feature (per building and day) that raises DATA_QUALITY"},
    {"HVS_FEAT_DQ_MIN_VECTORS", HVS_CFG_INT, "24", 1, 1000000, S(dq_min), 0,
     "vectors a building-day needs before its missing share is judged"},
    {"HVS_FEAT_REBUILD_WINDOW", HVS_CFG_DURATION, "10d", 86400000, 31536000000.0, S(rebuild_ms), 0,
     "after Redis lost the state, the inputs are replayed from this long ago (message time)"},
};
static settings_t settings;
static hvs_stage_settings_t stage_settings; /* HVS_FEAT_BATCH, _FLUSH_TIMEOUT, _STALL_TIMEOUT */
static const hvs_cfg_section_t fx_section = {"features", fx_entries,
                                             sizeof fx_entries / sizeof fx_entries[0], &settings};

/* Input alignment (stage.h, HVS_STAGE_HOLD): how far one input's event time (aggregates: window
 * end; weather: issue time) may run ahead of the other's while the other still has messages to
 * read. Weather issued more than a day ahead of the aggregates would overwrite hours of the
 * 14-day weather ring (HVS_FS_HOURS) they still need; aggregates far ahead of the weather only
 * pile up vectors waiting for it. */
#define LEAD_MS (24 * HOUR)

typedef struct part {
    hvs_ms_t t_in[2];       /* per input: the latest event time handled (no idle advance) */
    hvs_ms_t held_t[2];     /* per input: the event time of its message held back, or NONE */
    hvs_ms_t wm_hour;       /* watermark hour last acted on */
    bool replayed;          /* a rebuild replayed input: flush what it held back when it ends */
    hvs_ms_t assigned_mono; /* when it was assigned (monotonic) */
} part_t;

typedef struct worker {
    hvs_app_t *app;
    hvs_stage_t *stage;
    const char *topic_agg, *topic_wx, *topic_out;
    hvs_serde_t *serde;
    hvs_decoder_t *dec_agg, *dec_wx;
    fx_input_t *input;
    fx_output_t *out;
    hvs_redis_t *redis;
    hvs_redis_batch_t *rb;
    hvs_alerter_t *alerter;
    hvs_topology_t *topo;
    hvs_watermark_t *wm[2]; /* per input topic: aggregates, weather */
    fx_t *fx;
    fx_sink_t sink;
    part_t parts[HVS_MAX_PARTITIONS];
    hvs_ms_t now;
    /* the inputs' lags on lag_p while handle() runs (constant within one message; each lookup
     * asks librdkafka for the partition's watermarks under its lock), lag_p -1 when not set */
    int32_t lag_p;
    int64_t lag[2];
    uint64_t missing_seen[HVS_FEATURES_COUNT];
    hvs_metric_t *m_in[2], *m_vectors, *m_upgrades, *m_alerts, *m_load,
        *m_missing[HVS_FEATURES_COUNT], *m_rebuilds;
} worker_t;

static int topic_index(const worker_t *w, const char *topic) {
    return strcmp(topic, w->topic_agg) == 0 ? 0 : 1;
}

static const char *input_topic(const worker_t *w, int t) {
    return t == 0 ? w->topic_agg : w->topic_wx;
}

static int64_t input_lag(const worker_t *w, int t, int32_t p) {
    return p == w->lag_p ? w->lag[t] : hvs_stage_input_lag(w->stage, input_topic(w, t), p);
}

/* Input t's watermark on p. While the input still has messages to read (its lag is not 0, or
 * not known yet) it is what it has handled, never advanced by the wall clock: a replayed input
 * that is slower, or held back, is not idle (so the result does not depend on timing). Caught
 * up and quiet for the idle timeout, it advances by the wall clock (a feed that is really
 * missing: its hours go out flagged once their wait passes). */
static hvs_ms_t input_wm(const worker_t *w, int t, int32_t p, bool *pending) {
    *pending = input_lag(w, t, p) != 0;
    return *pending ? w->parts[p].t_in[t] : hvs_watermark_partition(w->wm[t], p, w->now);
}

/* The partition's watermark: the smaller of the two inputs' (one racing ahead in a replay must
 * not make the other's records late), or the one that has seen anything. */
static hvs_ms_t watermark(const worker_t *w, int32_t p) {
    bool apend, bpend;
    hvs_ms_t a = input_wm(w, 0, p, &apend);
    hvs_ms_t b = input_wm(w, 1, p, &bpend);
    if (a == HVS_MS_NONE)
        return b;
    if (b == HVS_MS_NONE) /* no weather seen yet: wait for it while it has messages to read, and
                           * as long as an idle partition once caught up */
        return bpend || hvs_time_mono_ms() - w->parts[p].assigned_mono < settings.idle_ms
                   ? HVS_MS_NONE
                   : a;
    return a < b ? a : b;
}

/* Whether a message of input t at event time te runs too far ahead of the other input, which
 * still has messages to read: hand it back (stage.h). The other's time counts its own held
 * message, so the two are never held for each other; NONE (nothing of it handled yet) holds. */
static bool runs_ahead(const worker_t *w, int t, int32_t p, hvs_ms_t te) {
    int o = 1 - t;
    if (input_lag(w, o, p) == 0)
        return false; /* caught up: nothing to wait for (live) */
    hvs_ms_t to = w->parts[p].t_in[o];
    if (w->parts[p].held_t[o] != HVS_MS_NONE && (to == HVS_MS_NONE || w->parts[p].held_t[o] > to))
        to = w->parts[p].held_t[o];
    return to == HVS_MS_NONE || te > to + LEAD_MS;
}

/* Input t handled a message of event time te on p. */
static void handled(worker_t *w, int t, int32_t p, hvs_ms_t te) {
    part_t *pt = &w->parts[p];
    pt->held_t[t] = HVS_MS_NONE;
    if (pt->t_in[t] == HVS_MS_NONE || te > pt->t_in[t])
        pt->t_in[t] = te;
}

/* ---- partitions come and go ---------------------------------------------------------------- */

static int assigned(void *opaque, int32_t p, hvs_err_t *err) {
    worker_t *w = opaque;
    w->parts[p].wm_hour = HVS_MS_NONE;
    for (int t = 0; t < 2; t++)
        w->parts[p].t_in[t] = w->parts[p].held_t[t] = HVS_MS_NONE;
    w->parts[p].replayed = false;
    w->parts[p].assigned_mono = hvs_time_mono_ms();
    if (hvs_stage_rebuilding(w->stage, p)) {
        /* without its epoch, what Redis holds of p is a rebuild that did not finish (killed
         * part way): loaded, its series would take the replayed hours on top */
        hvs_log_info("features", "partition %d assigned: rebuilding, starting empty", (int)p);
        return 0;
    }
    hvs_ms_t t0 = hvs_time_mono_ms();
    char **ids;
    size_t n;
    bool epoch;
    int rc = hvs_fs_partition(w->redis, w->rb, p, &ids, &n, &epoch, err);
    if (rc)
        return rc;
    size_t loaded = 0;
    for (size_t k = 0; k < n && rc == 0; k++) {
        hvs_fs_building_t *b;
        if ((rc = hvs_fs_load(w->redis, w->rb, ids[k], p, &b, err)))
            break;
        if (!b)
            continue;
        if (fx_adopt(w->fx, b)) {
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "adopting %s", ids[k]);
            break;
        }
        fx_building_t *fb = fx_building(w->fx, ids[k], p, false);
        if (fb)
            rc = fx_load_pending(w->redis, w->rb, fb, err);
        loaded++;
    }
    hvs_fs_ids_free(ids, n);
    if (rc)
        return rc;
    /* the watermarks the state was saved with */
    hvs_ms_t saved[2] = {HVS_MS_NONE, HVS_MS_NONE};
    for (int t = 0; t < 2; t++) {
        redisReply *rep = NULL;
        hvs_err_t e = {0};
        char field[16]; /* formatted here: hiredis's formatter knows no %c */
        snprintf(field, sizeof field, "%d:%c", (int)p, "aw"[t]);
        if (hvs_redis_command(w->redis, &rep, &e, "HGET hvs:fs:wm %s", field) == 0 && rep &&
            rep->type == REDIS_REPLY_STRING) {
            saved[t] = strtoll(rep->str, NULL, 10);
            hvs_watermark_observe(w->wm[t], p, saved[t], hvs_time_now_ms());
        }
        if (rep)
            freeReplyObject(rep);
    }
    hvs_metric_observe(w->m_load, (double)(hvs_time_mono_ms() - t0) / 1000.0);
    hvs_log_info("features", "partition %d assigned: %zu buildings loaded, watermarks %lld / %lld",
                 (int)p, loaded, (long long)saved[0], (long long)saved[1]);
    return 0;
}

static void revoked(void *opaque, int32_t p) {
    worker_t *w = opaque;
    fx_drop_partition(w->fx, p); /* its state was written before the last commit */
    hvs_watermark_remove(w->wm[0], p);
    hvs_watermark_remove(w->wm[1], p);
    hvs_log_info("features", "partition %d revoked", (int)p);
}

/* ---- outputs -------------------------------------------------------------------------------- */

static int emit_vector(void *opaque, const fx_vector_t *v, hvs_err_t *err) {
    worker_t *w = opaque;
    const void *buf;
    size_t len;
    int rc = fx_output_encode(w->out, v, &buf, &len, err);
    if (rc == 0)
        rc = hvs_producer_send(hvs_stage_producer(w->stage), w->topic_out, RD_KAFKA_PARTITION_UA,
                               v->building, strlen(v->building), buf, len, err);
    if (rc == 0) {
        hvs_metric_inc(w->m_vectors);
        if (v->upgrade)
            hvs_metric_inc(w->m_upgrades);
    }
    return rc;
}

static int emit_alert(void *opaque, const fx_dq_alert_t *a, hvs_err_t *err) {
    worker_t *w = opaque;
    char rate[32], n[32], miss[32], summary[256];
    snprintf(rate, sizeof rate, "%.3f", a->rate);
    snprintf(n, sizeof n, "%d", a->n);
    snprintf(miss, sizeof miss, "%d", a->missing);
    snprintf(summary, sizeof summary, "%s missing in %.1f %% of %d feature vectors of %s",
             a->feature, a->rate * 100, a->n, a->building);
    const char *ev[] = {"source",       "features", "feature", a->feature,
                        "missing_rate", rate,       "vectors", n,
                        "missing",      miss,       NULL};
    hvs_alert_t al = {.building_id = a->building,
                      .type = HVS_ALERT_DATA_QUALITY,
                      .severity = a->rate >= 0.2 ? HVS_SEVERITY_CRITICAL : HVS_SEVERITY_WARNING,
                      .score = a->rate,
                      .summary = summary,
                      .evidence = ev,
                      .first_seen = a->day,
                      .updated_at = w->now};
    hvs_log_warn("features", "%s", summary);
    hvs_metric_inc(w->m_alerts);
    return hvs_alerter_send(w->alerter, &al, err);
}

/* ---- the stage's callbacks ------------------------------------------------------------------ */

static int advance_partition(worker_t *w, int32_t p, bool quiet, hvs_err_t *err) {
    int rc;
    if (quiet) {
        w->parts[p].replayed = true;
    } else if (w->parts[p].replayed && !hvs_stage_rebuilding(w->stage, p)) {
        w->parts[p].replayed = false;
        if ((rc = fx_flush_unsent(w->fx, p, &w->sink, err)))
            return rc == HVS_EINVAL ? HVS_ESTATE : rc;
    }
    hvs_ms_t wm = watermark(w, p);
    if (wm == HVS_MS_NONE)
        return 0;
    hvs_ms_t h = hvs_time_window_start(wm, HOUR / 4);
    if (h == w->parts[p].wm_hour)
        return 0; /* act on quarter-hour steps of the watermark: cheap, and deterministic */
    w->parts[p].wm_hour = h;
    rc = fx_advance(w->fx, p, wm, quiet, &w->sink, err);
    return rc == HVS_EINVAL ? HVS_ESTATE : rc; /* an output that fails is never a bad input */
}

static int begin_batch(void *opaque, hvs_err_t *err) {
    worker_t *w = opaque;
    w->now = hvs_stage_now(w->stage);
    hvs_topology_poll(w->topo, 0);
    return 0;
}

/* One aggregate or weather record: HVS_EINVAL (why filled) sends it to the dead-letter topic,
 * (the runner does not while a rebuild replays it quietly: it was judged when it first came). */
static int handle_one(worker_t *w, const rd_kafka_message_t *m, hvs_err_t *why) {
    int t = topic_index(w, rd_kafka_topic_name(m->rkt));
    int32_t p = m->partition;
    bool quiet = hvs_stage_replaying(w->stage); /* rebuilding lost state: publish nothing */
    hvs_metric_inc(w->m_in[t]);
    avro_value_t *v;
    if (!m->payload)
        return hvs_err_set(why, HVS_EINVAL, "empty_value", "message without a value");
    int rc;
    if (t == 0) {
        fx_aggregate_t a;
        if (fx_input_aggregate_message(w->input, w->dec_agg, m->payload, m->len, w->now,
                                       settings.max_future_ms, &a, NULL, why) ||
            hvs_id_check_key(m, a.building, why))
            return HVS_EINVAL;
        if (runs_ahead(w, 0, p, a.hour.hour + HOUR)) {
            w->parts[p].held_t[0] = a.hour.hour + HOUR;
            return HVS_STAGE_HOLD;
        }
        handled(w, 0, p, a.hour.hour + HOUR);
        hvs_watermark_observe(w->wm[0], p, a.hour.hour + HOUR, w->now);
        rc = fx_on_aggregate(w->fx, p, &a, watermark(w, p), quiet, &w->sink, why);
    } else {
        fx_weather_t x;
        if (hvs_decoder_decode(w->dec_wx, m->payload, m->len, &v, why) ||
            fx_input_weather(w->input, v, w->now, settings.max_future_ms, &x, why) ||
            hvs_id_check_key(m, x.building, why))
            return HVS_EINVAL;
        if (runs_ahead(w, 1, p, x.rec.issued_at)) {
            w->parts[p].held_t[1] = x.rec.issued_at;
            return HVS_STAGE_HOLD;
        }
        handled(w, 1, p, x.rec.issued_at);
        hvs_watermark_observe(w->wm[1], p, x.rec.issued_at, w->now);
        rc = fx_on_weather(w->fx, p, &x, watermark(w, p), quiet, &w->sink, why);
    }
    if (rc == HVS_EINVAL)
        return HVS_EINVAL;
    if (rc)
        return rc;
    return advance_partition(w, p, quiet, why);
}

static int handle(void *opaque, const rd_kafka_message_t *m, hvs_err_t *why) {
    worker_t *w = opaque;
    for (int t = 0; t < 2; t++)
        w->lag[t] = hvs_stage_input_lag(w->stage, input_topic(w, t), m->partition);
    w->lag_p = m->partition;
    int rc = handle_one(w, m, why);
    w->lag_p = -1;
    return rc;
}

/* End of a batch (or an idle poll): idle partitions advance by the wall clock. */
static int end_batch(void *opaque, hvs_err_t *err) {
    worker_t *w = opaque;
    size_t np;
    const int32_t *parts = hvs_stage_partitions(w->stage, &np);
    for (size_t i = 0; i < np; i++) {
        int rc = advance_partition(w, parts[i], hvs_stage_rebuilding(w->stage, parts[i]), err);
        if (rc)
            return rc;
    }
    return 0;
}

/* The vectors are acknowledged: rings, pending vectors and watermarks into the runner's state
 * batch (written with the offsets they cover, in one transaction). */
static int write_state(void *opaque, hvs_err_t *err) {
    worker_t *w = opaque;
    int rc = 0;
    hvs_redis_batch_t *rb = hvs_stage_state_batch(w->stage); /* applied by the runner */
    size_t n;
    fx_building_t **bs = fx_buildings(w->fx, &n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = hvs_fs_save(rb, bs[i]->fs, err);
        if (rc == 0)
            rc = fx_save_pending(rb, bs[i], err);
    }
    size_t np;
    const int32_t *parts = hvs_stage_partitions(w->stage, &np);
    for (size_t i = 0; i < np && rc == 0; i++)
        for (int t = 0; t < 2 && rc == 0; t++) {
            hvs_ms_t wm = hvs_watermark_partition(w->wm[t], parts[i], w->now);
            if (wm == HVS_MS_NONE)
                continue;
            char pf[16], v[32];
            snprintf(pf, sizeof pf, "%d:%c", (int)parts[i], "aw"[t]);
            snprintf(v, sizeof v, "%lld", (long long)wm);
            const char *a[] = {"HSET", "hvs:fs:wm", pf, v};
            if (hvs_redis_batch_add(rb, 4, a, NULL))
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
        }
    /* metrics from the engine's counters */
    fx_stats_t *st = fx_stats(w->fx);
    for (int i = 0; i < HVS_FEATURES_COUNT; i++) {
        hvs_metric_add(w->m_missing[i], (double)(st->missing[i] - w->missing_seen[i]));
        w->missing_seen[i] = st->missing[i];
    }
    return rc;
}

static int ready(void *opaque, char *why, size_t whylen) {
    worker_t *w = opaque;
    if (!hvs_topology_caught_up(w->topo)) {
        snprintf(why, whylen, "topology not read yet");
        return 0;
    }
    return 1;
}

static void stopping(void *opaque) {
    worker_t *w = opaque;
    fx_stats_t *st = fx_stats(w->fx);
    hvs_log_info("features",
                 "stopping: aggregates=%llu weather=%llu vectors=%llu waited=%llu weak=%llu "
                 "upgrades=%llu stale=%llu",
                 (unsigned long long)st->aggregates, (unsigned long long)st->weather,
                 (unsigned long long)st->vectors, (unsigned long long)st->waited,
                 (unsigned long long)st->weak, (unsigned long long)st->upgrades,
                 (unsigned long long)st->stale);
}

static const hvs_stage_def_t fx_stage = {
    .name = "features",
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

static int parse_dq(fx_config_t *c, const char *list, hvs_err_t *err) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    c->ndq = 0;
    for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        int i = hvs_features_index(t);
        if (i < 0)
            return hvs_err_set(err, HVS_ECONFIG, "bad_value", "HVS_FEAT_DQ_FEATURES: no feature %s",
                               t);
        if (c->ndq == FX_DQ_MAX)
            return hvs_err_set(err, HVS_ECONFIG, "bad_value", "HVS_FEAT_DQ_FEATURES: at most %d",
                               FX_DQ_MAX);
        c->dq_features[c->ndq++] = i;
    }
    return 0;
}

static int run(hvs_app_t *app, void *state, hvs_err_t *err) {
    worker_t *w = state;
    w->app = app;
    w->lag_p = -1;
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    w->topic_agg = hvs_topic_name("aggregates.hourly");
    w->topic_wx = hvs_topic_name("weather.hourly");
    w->topic_out = hvs_topic_name("features.hourly");
    fx_config_t fc = {.weather_wait = settings.weather_wait_ms,
                      .upgrade_window = settings.upgrade_ms,
                      .default_region = settings.region,
                      .dq_limit = settings.dq_limit,
                      .dq_min_vectors = (int)settings.dq_min};
    const char *inputs[] = {w->topic_agg, w->topic_wx};
    const char *outputs[] = {w->topic_out, hvs_topic_name("alerts"), NULL};
    hvs_stage_conf_t sc = {.inputs = inputs,
                           .outputs = outputs,
                           .ninputs = 2,
                           .settings = &stage_settings,
                           .rebuild_ms = settings.rebuild_ms};
    int rc;
    if ((rc = hvs_profile_load(app->cfg.profile, app->cfg.profile_file, err)))
        return rc; /* first: readings, rows and models follow the profile */
    if ((rc = parse_dq(&fc, settings.dq_features, err)))
        return rc;
    hvs_calendar_t *probe = NULL;
    if ((rc = hvs_calendar_load(app->cfg.calendar_file, err)) ||
        (rc = hvs_calendar_new(settings.region, &probe, err)))
        return rc; /* an unknown default region stops start-up */
    hvs_calendar_destroy(probe);
    if ((rc = hvs_serde_new(app->cfg.schema_registry_url, &w->serde, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_AGGREGATE, &w->dec_agg, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_WEATHER, &w->dec_wx, err)) ||
        (rc = fx_input_new(w->serde, &w->input, err)) ||
        (rc = fx_output_new(w->serde, w->topic_out, &w->out, err)) ||
        (rc = hvs_redis_connect(app->cfg.redis_url, NULL, &w->redis, err)))
        return rc;
    sc.redis = w->redis;     /* the runner writes the state with the offsets it covers */
    sc.state_ns = HVS_FS_NS; /* a rebuild starts from no keys of its partition */
    if ((rc = hvs_stage_new(app, &fx_stage, &sc, w->serde, w, &w->stage, err)) ||
        (rc = hvs_alerter_new(w->serde, hvs_stage_producer(w->stage), &w->alerter, err)) ||
        (rc = hvs_topology_new(&kc, w->serde, hvs_topic_name("topology"), &w->topo, err)))
        return rc;
    if (!(w->rb = hvs_redis_batch_new()) || !(w->fx = fx_new(&fc, w->topo)) ||
        !(w->wm[0] = hvs_watermark_new(0, settings.idle_ms)) ||
        !(w->wm[1] = hvs_watermark_new(0, settings.idle_ms)))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "features state");
    w->sink = (fx_sink_t){emit_vector, emit_alert, w};
    hvs_topology_poll(w->topo, 30000);
    hvs_metrics_t *ms = app->metrics;
    w->m_in[0] = hvs_metrics_counter(ms, "hvs_features_inputs_total", "messages consumed",
                                     "topic=\"aggregates\"");
    w->m_in[1] = hvs_metrics_counter(ms, "hvs_features_inputs_total", "messages consumed",
                                     "topic=\"weather\"");
    w->m_vectors = hvs_metrics_counter(ms, "hvs_features_vectors_total",
                                       "feature vectors published", NULL);
    w->m_upgrades = hvs_metrics_counter(ms, "hvs_features_upgrades_total",
                                        "vectors re-published when the observed weather arrived",
                                        NULL);
    w->m_alerts = hvs_metrics_counter(ms, "hvs_features_dq_alerts_total",
                                      "DATA_QUALITY alerts raised", NULL);
    w->m_rebuilds = hvs_metrics_counter(ms, "hvs_features_rebuilds_total",
                                        "partitions rebuilt after Redis lost their state", NULL);
    w->m_load = hvs_metrics_histogram(ms, "hvs_features_state_load_seconds",
                                      "loading a partition's state from Redis", NULL,
                                      hvs_metrics_latency_buckets, hvs_metrics_latency_nbuckets);
    for (int i = 0; i < HVS_FEATURES_COUNT; i++) {
        char lbl[96];
        snprintf(lbl, sizeof lbl, "feature=\"%s\"", hvs_features_names()[i]);
        w->m_missing[i] = hvs_metrics_counter(ms, "hvs_features_missing_total",
                                              "vectors published with the feature missing", lbl);
    }
    hvs_log_info("features", "consuming %s + %s -> %s (feature set %s)", w->topic_agg, w->topic_wx,
                 w->topic_out, hvs_features_version());
    return hvs_stage_run(w->stage, err);
}

static void worker_free(void *state) {
    worker_t *w = state;
    hvs_topology_destroy(w->topo);
    hvs_alerter_destroy(w->alerter); /* borrows the stage's producer */
    hvs_stage_destroy(w->stage);
    hvs_redis_batch_destroy(w->rb);
    hvs_redis_destroy(w->redis);
    fx_output_destroy(w->out);
    fx_input_destroy(w->input);
    hvs_decoder_destroy(w->dec_agg);
    hvs_decoder_destroy(w->dec_wx);
    hvs_serde_destroy(w->serde);
    hvs_watermark_destroy(w->wm[0]);
    hvs_watermark_destroy(w->wm[1]);
    fx_destroy(w->fx);
}

int main(int argc, char **argv) {
    static worker_t w;   /* large, zeroed, living for the process */
    hvs_app_keep_heap(); /* page faults were ~5 % of the worker's CPU */
    hvs_cfg_section_t sections[] = {fx_section,
                                    *hvs_stage_settings_section(&stage_settings, "HVS_FEAT_")};
    hvs_app_spec_t spec = {
        .worker = "features",
        .summary =
            "aggregates.hourly + weather.hourly -> features.hourly (the one feature definition)",
        .usage =
            "Usage: hvs-features [--weather-wait 2h] [--dq-limit 0.05] ... (every HVS_FEAT_* is a flag)",
        .extra = sections,
        .nextra = 2,
        .state = &w,
        .cleanup = worker_free,
        .flag_prefix = "HVS_FEAT_",
    };
    return hvs_app_main(&spec, argc, argv, run);
}
