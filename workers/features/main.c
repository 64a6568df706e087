/*
 * hvs-features - aggregates.hourly + weather.hourly (+ topology) -> features.hourly: one
 * FeatureVector per apartment-hour and building-hour, computed by the one feature definition
 * (features.h) from state kept in Redis (featstore.h), and DATA_QUALITY alerts when critical
 * features go missing.
 *
 * The loop (as the aggregator's): poll a batch -> decode, validate, dead-letter the bad -> feed
 * the engine (engine.c), which emits vectors now or once the hour's observed weather arrives
 * (or it timed out) -> flush the producer -> write the state (rings, pending vectors,
 * watermarks) to Redis -> commit. A crash replays the uncommitted messages onto the stored state:
 * slots are rewritten with the same values and the same vectors are emitted again (at least
 * once, identical).
 * Time: per partition the smaller of the two inputs' watermarks (aggregates by window end,
 * weather by issue time), each advancing by the wall clock when idle.
 * Lost state: a partition whose group has committed offsets but whose epoch marker is missing
 * in Redis (flushed, a new empty Redis) is rebuilt: both input topics are rewound (to
 * HVS_FEAT_REBUILD_WINDOW ago by timestamp, or their start) and replayed quietly up to the
 * committed offsets, so no vector is computed from empty lags.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "hvs/dlq.h"
#include "hvs/alert.h"
#include "hvs/app.h"
#include "hvs/featstore.h"
#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs/topology.h"
#include "input.h"
#include "vectors.h"

#define MAX_PARTS 1024
#define HOUR HVS_MS_HOUR

typedef struct settings {
    int64_t weather_wait_ms, upgrade_ms, idle_ms, max_future_ms, batch, flush_timeout_ms,
        rebuild_ms, dq_min;
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
    {"HVS_FEAT_BATCH", HVS_CFG_INT, "5000", 1, 1000000, S(batch), 0,
     "messages per batch (one flush, one Redis round trip, one commit each)"},
    {"HVS_FEAT_FLUSH_TIMEOUT", HVS_CFG_DURATION, "30s", 1000, 600000, S(flush_timeout_ms), 0,
     "longest wait for the broker to acknowledge a batch's vectors"},
    {"HVS_FEAT_REBUILD_WINDOW", HVS_CFG_DURATION, "10d", 86400000, 31536000000.0, S(rebuild_ms), 0,
     "after Redis lost the state, the inputs are replayed from this long ago (message time)"},
};
static settings_t settings;
static const hvs_cfg_section_t fx_section = {"features", fx_entries,
                                             sizeof fx_entries / sizeof fx_entries[0], &settings};

typedef struct part {
    int64_t replay_until[2];   /* per input topic: offsets below are replayed quietly */
    hvs_ms_t wm_hour;          /* watermark hour last acted on */
    hvs_ms_t assigned_mono;    /* when it was assigned (monotonic) */
    bool assigned;
} part_t;

typedef struct worker {
    hvs_app_t *app;
    const char *topic_agg, *topic_wx, *topic_out;
    hvs_serde_t *serde;
    hvs_decoder_t *dec_agg, *dec_wx;
    fx_input_t *input;
    fx_output_t *out;
    hvs_redis_t *redis;
    hvs_redis_batch_t *rb;
    hvs_consumer_t *cons;
    hvs_producer_t *prod;
    hvs_dlq_t *dlq;
    hvs_alerter_t *alerter;
    hvs_topology_t *topo;
    hvs_watermark_t *wm[2];      /* per input topic: aggregates, weather */
    fx_t *fx;
    fx_sink_t sink;
    part_t parts[MAX_PARTS];
    int fatal;
    hvs_err_t fatal_err;
    hvs_ms_t now;
    uint64_t missing_seen[HVS_FEATURES_COUNT];
    hvs_metric_t *m_in[2], *m_dlq, *m_vectors, *m_upgrades, *m_weak, *m_alerts, *m_load,
        *m_batch, *m_missing[HVS_FEATURES_COUNT], *m_rebuilds;
} worker_t;

static int topic_index(const worker_t *w, const char *topic) {
    return strcmp(topic, w->topic_agg) == 0 ? 0 : 1;
}

/* The partition's watermark: the smaller of the two inputs' (one racing ahead in a replay must
 * not make the other's records late), or the one that has seen anything. */
static hvs_ms_t watermark(const worker_t *w, int32_t p) {
    hvs_ms_t a = hvs_watermark_partition(w->wm[0], p, w->now);
    hvs_ms_t b = hvs_watermark_partition(w->wm[1], p, w->now);
    if (a == HVS_MS_NONE)
        return b;
    if (b == HVS_MS_NONE) /* no weather seen yet: wait for it as long as an idle partition */
        return hvs_time_mono_ms() - w->parts[p].assigned_mono < settings.idle_ms ? HVS_MS_NONE : a;
    return a < b ? a : b;
}

/* ---- partitions come and go ---------------------------------------------------------------- */

/* Before assignment: a partition whose group committed offsets but whose state is gone from
 * Redis is rewound and replayed quietly up to those offsets. */
static void on_assigning(void *opaque, rd_kafka_topic_partition_list_t *added) {
    worker_t *w = opaque;
    for (int i = 0; i < added->cnt && !w->fatal; i++) {
        int32_t p = added->elems[i].partition;
        if (p < 0 || p >= MAX_PARTS)
            continue;
        bool first = true; /* each partition number once: both topics are decided together */
        for (int k = 0; k < i; k++)
            first &= added->elems[k].partition != p;
        if (!first)
            continue;
        bool committed = false;
        for (int k = 0; k < added->cnt; k++)
            committed |= added->elems[k].partition == p && added->elems[k].offset > 0;
        char **ids;
        size_t n;
        bool epoch;
        if (hvs_fs_partition(w->redis, w->rb, p, &ids, &n, &epoch, &w->fatal_err)) {
            w->fatal = 1;
            return;
        }
        hvs_fs_ids_free(ids, n);
        part_t *ps = &w->parts[p];
        ps->replay_until[0] = ps->replay_until[1] = -1;
        if (epoch || !committed)
            continue;
        hvs_metric_inc(w->m_rebuilds);
        hvs_log_warn("features", "partition %d: state missing from Redis although the group has "
                     "committed offsets: rebuilding by replaying the inputs", (int)p);
        rd_kafka_topic_partition_list_t *times = rd_kafka_topic_partition_list_new(2);
        for (int k = 0; k < added->cnt; k++)
            if (added->elems[k].partition == p) {
                ps->replay_until[topic_index(w, added->elems[k].topic)] = added->elems[k].offset;
                rd_kafka_topic_partition_list_add(times, added->elems[k].topic, p)->offset =
                    hvs_time_now_ms() - settings.rebuild_ms;
            }
        /* by message time where the broker supports it (the devbroker does not): else the start */
        rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(hvs_consumer_handle(w->cons), times, 10000);
        for (int k = 0; k < added->cnt; k++) {
            if (added->elems[k].partition != p)
                continue;
            rd_kafka_topic_partition_t *t =
                rd_kafka_topic_partition_list_find(times, added->elems[k].topic, p);
            added->elems[k].offset = !e && t && !t->err && t->offset >= 0 ? t->offset
                                                                         : RD_KAFKA_OFFSET_BEGINNING;
        }
        rd_kafka_topic_partition_list_destroy(times);
    }
}

static void on_assigned(void *opaque, const rd_kafka_topic_partition_list_t *added) {
    worker_t *w = opaque;
    for (int i = 0; i < added->cnt && !w->fatal; i++) {
        int32_t p = added->elems[i].partition;
        if (p < 0 || p >= MAX_PARTS || w->parts[p].assigned)
            continue;
        w->parts[p].assigned = true;
        w->parts[p].wm_hour = HVS_MS_NONE;
        w->parts[p].assigned_mono = hvs_time_mono_ms();
        hvs_ms_t t0 = hvs_time_mono_ms();
        char **ids;
        size_t n;
        bool epoch;
        if (hvs_fs_partition(w->redis, w->rb, p, &ids, &n, &epoch, &w->fatal_err)) {
            w->fatal = 1;
            return;
        }
        size_t loaded = 0;
        for (size_t k = 0; k < n && !w->fatal; k++) {
            hvs_fs_building_t *b;
            if (hvs_fs_load(w->redis, w->rb, ids[k], p, &b, &w->fatal_err)) {
                w->fatal = 1;
                break;
            }
            if (!b)
                continue;
            if (fx_adopt(w->fx, b)) {
                w->fatal = 1;
                hvs_err_set(&w->fatal_err, HVS_ENOMEM, "oom", "adopting %s", ids[k]);
                break;
            }
            fx_building_t *fb = fx_building(w->fx, ids[k], p, false);
            if (fb && fx_load_pending(w->redis, w->rb, fb, &w->fatal_err))
                w->fatal = 1;
            loaded++;
        }
        hvs_fs_ids_free(ids, n);
        /* the watermarks the state was saved with */
        for (int t = 0; t < 2 && !w->fatal; t++) {
            redisReply *rep = NULL;
            hvs_err_t e = {0};
            if (hvs_redis_command(w->redis, &rep, &e, "HGET hvs:fs:wm %d:%c", (int)p, "aw"[t]) == 0 &&
                rep && rep->type == REDIS_REPLY_STRING)
                hvs_watermark_observe(w->wm[t], p, strtoll(rep->str, NULL, 10), hvs_time_now_ms());
            if (rep)
                freeReplyObject(rep);
        }
        hvs_metric_observe(w->m_load, (double)(hvs_time_mono_ms() - t0) / 1000.0);
        hvs_log_info("features", "partition %d assigned: %zu buildings loaded", (int)p, loaded);
    }
}

static void on_revoked(void *opaque, const rd_kafka_topic_partition_list_t *removed) {
    worker_t *w = opaque;
    for (int i = 0; i < removed->cnt; i++) {
        int32_t p = removed->elems[i].partition;
        if (p < 0 || p >= MAX_PARTS || !w->parts[p].assigned)
            continue;
        w->parts[p].assigned = false;
        fx_drop_partition(w->fx, p); /* its state was written before the last commit */
        hvs_watermark_remove(w->wm[0], p);
        hvs_watermark_remove(w->wm[1], p);
        hvs_log_info("features", "partition %d revoked", (int)p);
    }
}

/* ---- outputs -------------------------------------------------------------------------------- */

static int emit_vector(void *opaque, const fx_vector_t *v, hvs_err_t *err) {
    worker_t *w = opaque;
    const void *buf;
    size_t len;
    int rc = fx_output_encode(w->out, v, &buf, &len, err);
    if (rc == 0)
        rc = hvs_producer_send(w->prod, w->topic_out, RD_KAFKA_PARTITION_UA, v->building,
                               strlen(v->building), buf, len, err);
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
    snprintf(summary, sizeof summary, "%s missing in %.1f %% of %d feature vectors of %s", a->feature,
             a->rate * 100, a->n, a->building);
    const char *ev[] = {"source", "features", "feature", a->feature, "missing_rate", rate,
                        "vectors", n, "missing", miss, NULL};
    hvs_alert_t al = {.building_id = a->building, .type = HVS_ALERT_DATA_QUALITY,
                      .severity = a->rate >= 0.2 ? HVS_SEVERITY_CRITICAL : HVS_SEVERITY_WARNING,
                      .score = a->rate, .summary = summary, .evidence = ev,
                      .first_seen = a->day, .updated_at = w->now};
    hvs_log_warn("features", "%s", summary);
    hvs_metric_inc(w->m_alerts);
    return hvs_alerter_send(w->alerter, &al, err);
}

static int dead_letter(worker_t *w, const rd_kafka_message_t *m, const hvs_err_t *why) {
    char lbl[96];
    snprintf(lbl, sizeof lbl, "reason=\"%s\"", why->reason);
    hvs_metric_inc(hvs_metrics_counter(w->app->metrics, "hvs_features_dead_letters_total",
                                       "inputs sent to a dead-letter topic", lbl));
    hvs_log_warn("features", "%s [%d] offset %lld -> dead letter (%s): %s",
                 rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset, why->reason,
                 why->msg);
    hvs_err_t e = {0};
    if (hvs_dlq_send_message(w->dlq, m, why, &e)) {
        w->fatal = 1;
        w->fatal_err = e;
        return -1;
    }
    return 0;
}

/* ---- one message ---------------------------------------------------------------------------- */

static int advance_partition(worker_t *w, int32_t p, bool quiet) {
    hvs_ms_t wm = watermark(w, p);
    if (wm == HVS_MS_NONE)
        return 0;
    hvs_ms_t h = hvs_time_window_start(wm, HOUR / 4);
    if (h == w->parts[p].wm_hour)
        return 0; /* act on quarter-hour steps of the watermark: cheap, and deterministic */
    w->parts[p].wm_hour = h;
    hvs_err_t e = {0};
    if (fx_advance(w->fx, p, wm, quiet, &w->sink, &e)) {
        w->fatal = 1;
        w->fatal_err = e;
        return -1;
    }
    return 0;
}

static int handle(worker_t *w, const rd_kafka_message_t *m) {
    int t = topic_index(w, rd_kafka_topic_name(m->rkt));
    int32_t p = m->partition;
    if (p < 0 || p >= MAX_PARTS)
        return 0;
    bool quiet = m->offset < w->parts[p].replay_until[t];
    hvs_metric_inc(w->m_in[t]);
    hvs_err_t why = {0};
    avro_value_t *v;
    if (!m->payload)
        return quiet ? 0 : dead_letter(w, m, &(hvs_err_t){.code = HVS_EINVAL, .reason = "empty_value",
                                                          .msg = "message without a value"});
    int rc;
    hvs_ms_t event;
    if (t == 0) {
        fx_aggregate_t a;
        if (hvs_decoder_decode(w->dec_agg, m->payload, m->len, &v, &why) ||
            fx_input_aggregate(w->input, v, w->now, settings.max_future_ms, &a, &why))
            return quiet ? 0 : dead_letter(w, m, &why);
        event = a.hour.hour + HOUR;
        hvs_watermark_observe(w->wm[0], p, event, w->now);
        rc = fx_on_aggregate(w->fx, p, &a, watermark(w, p), quiet, &w->sink, &why);
    } else {
        fx_weather_t x;
        if (hvs_decoder_decode(w->dec_wx, m->payload, m->len, &v, &why) ||
            fx_input_weather(w->input, v, w->now, settings.max_future_ms, &x, &why))
            return quiet ? 0 : dead_letter(w, m, &why);
        event = x.rec.issued_at;
        hvs_watermark_observe(w->wm[1], p, event, w->now);
        rc = fx_on_weather(w->fx, p, &x, watermark(w, p), quiet, &w->sink, &why);
    }
    if (rc == HVS_EINVAL)
        return quiet ? 0 : dead_letter(w, m, &why);
    if (rc) {
        w->fatal = 1;
        w->fatal_err = why;
        return -1;
    }
    return advance_partition(w, p, quiet);
}

/* End of a batch: idle partitions advance; publish; make the state durable (not the commit). */
static int close_and_persist(worker_t *w, hvs_err_t *err) {
    for (int32_t p = 0; p < MAX_PARTS; p++)
        if (w->parts[p].assigned && advance_partition(w, p, false)) {
            *err = w->fatal_err;
            return HVS_EKAFKA;
        }
    int rc = hvs_producer_flush(w->prod, (int)settings.flush_timeout_ms, err);
    if (rc)
        return rc;
    hvs_redis_batch_reset(w->rb);
    size_t n;
    fx_building_t **bs = fx_buildings(w->fx, &n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = hvs_fs_save(w->rb, bs[i]->fs, err);
        if (rc == 0)
            rc = fx_save_pending(w->rb, bs[i], err);
    }
    for (int32_t p = 0; p < MAX_PARTS && rc == 0; p++)
        for (int t = 0; t < 2 && rc == 0 && w->parts[p].assigned; t++) {
            hvs_ms_t wm = hvs_watermark_partition(w->wm[t], p, w->now);
            if (wm == HVS_MS_NONE)
                continue;
            char pf[16], v[32];
            snprintf(pf, sizeof pf, "%d:%c", (int)p, "aw"[t]);
            snprintf(v, sizeof v, "%lld", (long long)wm);
            const char *a[] = {"HSET", "hvs:fs:wm", pf, v};
            if (hvs_redis_batch_add(w->rb, 4, a, NULL))
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
        }
    if (rc == 0 && hvs_redis_batch_size(w->rb))
        rc = hvs_redis_batch_exec(w->redis, w->rb, err);
    if (rc == 0 && hvs_redis_batch_errors(w->rb))
        rc = hvs_err_set(err, HVS_EREDIS, "reply_error", "%zu state writes refused by Redis",
                         hvs_redis_batch_errors(w->rb));
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
    if (hvs_consumer_assignment_size(w->cons) <= 0) {
        snprintf(why, whylen, "no partitions assigned yet");
        return 0;
    }
    if (!hvs_topology_caught_up(w->topo)) {
        snprintf(why, whylen, "topology not read yet");
        return 0;
    }
    return 1;
}

static int parse_dq(fx_config_t *c, const char *list, hvs_err_t *err) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    c->ndq = 0;
    for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        int i = hvs_features_index(t);
        if (i < 0)
            return hvs_err_set(err, HVS_ECONFIG, "bad_value", "HVS_FEAT_DQ_FEATURES: no feature %s", t);
        if (c->ndq == FX_DQ_MAX)
            return hvs_err_set(err, HVS_ECONFIG, "bad_value", "HVS_FEAT_DQ_FEATURES: at most %d",
                               FX_DQ_MAX);
        c->dq_features[c->ndq++] = i;
    }
    return 0;
}

static int run(worker_t *w, hvs_err_t *err) {
    hvs_app_t *app = w->app;
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    w->topic_agg = hvs_topic_name("aggregates.hourly");
    w->topic_wx = hvs_topic_name("weather.hourly");
    w->topic_out = hvs_topic_name("features.hourly");
    fx_config_t fc = {.weather_wait = settings.weather_wait_ms, .upgrade_window = settings.upgrade_ms,
                      .default_region = settings.region, .dq_limit = settings.dq_limit,
                      .dq_min_vectors = (int)settings.dq_min};
    int rc;
    if ((rc = parse_dq(&fc, settings.dq_features, err)))
        return rc;
    hvs_calendar_t *probe = NULL;
    if ((rc = hvs_calendar_new(settings.region, &probe, err)))
        return rc; /* an unknown default region stops start-up */
    hvs_calendar_destroy(probe);
    if ((rc = hvs_serde_new(app->cfg.schema_registry_url, &w->serde, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_AGGREGATE, &w->dec_agg, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_WEATHER, &w->dec_wx, err)) ||
        (rc = fx_input_new(w->serde, &w->input, err)) ||
        (rc = fx_output_new(w->serde, w->topic_out, &w->out, err)) ||
        (rc = hvs_redis_connect(app->cfg.redis_url, NULL, &w->redis, err)) ||
        (rc = hvs_producer_new(&kc, &w->prod, err)) ||
        (rc = hvs_dlq_new(w->prod, w->serde, "features", &w->dlq, err)) ||
        (rc = hvs_alerter_new(w->serde, w->prod, &w->alerter, err)) ||
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
    w->m_vectors = hvs_metrics_counter(ms, "hvs_features_vectors_total", "feature vectors published", NULL);
    w->m_upgrades = hvs_metrics_counter(ms, "hvs_features_upgrades_total",
                                        "vectors re-published when the observed weather arrived", NULL);
    w->m_alerts = hvs_metrics_counter(ms, "hvs_features_dq_alerts_total", "DATA_QUALITY alerts raised", NULL);
    w->m_rebuilds = hvs_metrics_counter(ms, "hvs_features_rebuilds_total",
                                        "partitions rebuilt after Redis lost their state", NULL);
    w->m_load = hvs_metrics_histogram(ms, "hvs_features_state_load_seconds",
                                      "loading a partition's state from Redis", NULL,
                                      hvs_metrics_latency_buckets, hvs_metrics_latency_nbuckets);
    w->m_batch = hvs_metrics_histogram(ms, "hvs_features_batch_seconds", "poll to commit of one batch",
                                       NULL, hvs_metrics_latency_buckets, hvs_metrics_latency_nbuckets);
    for (int i = 0; i < HVS_FEATURES_COUNT; i++) {
        char lbl[96];
        snprintf(lbl, sizeof lbl, "feature=\"%s\"", hvs_features_names()[i]);
        w->m_missing[i] = hvs_metrics_counter(ms, "hvs_features_missing_total",
                                              "vectors published with the feature missing", lbl);
    }
    const char *topics[] = {w->topic_agg, w->topic_wx};
    hvs_consumer_hooks_t hooks = {.on_assigned = on_assigned, .on_revoked = on_revoked,
                                  .on_assigning = on_assigning, .opaque = w};
    if ((rc = hvs_consumer_new(&kc, topics, 2, &hooks, &w->cons, err)))
        return rc;
    hvs_app_set_ready(app, ready, w);
    size_t max = (size_t)settings.batch;
    rd_kafka_message_t **msgs = calloc(max, sizeof *msgs);
    if (!msgs)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "batch");
    hvs_log_info("features", "consuming %s + %s -> %s (feature set %s)", w->topic_agg, w->topic_wx,
                 w->topic_out, hvs_features_version());
    rc = 0;
    while (hvs_app_running() && rc == 0) {
        size_t n = 0;
        hvs_err_t perr = {0};
        int prc = hvs_consumer_poll_batch(w->cons, msgs, max, 200, &n, &perr);
        hvs_ms_t t0 = hvs_time_mono_ms();
        if (w->fatal) {
            *err = w->fatal_err;
            rc = HVS_EREDIS;
        } else if (prc && strcmp(perr.reason, "fatal") == 0) {
            *err = perr;
            rc = prc;
        } else if (prc) {
            hvs_log_error("features", "%s", perr.msg);
        }
        w->now = hvs_time_now_ms();
        hvs_topology_poll(w->topo, 0);
        for (size_t i = 0; i < n && rc == 0; i++)
            if (handle(w, msgs[i]) && w->fatal) {
                *err = w->fatal_err;
                rc = HVS_EKAFKA;
            }
        if (rc == 0)
            rc = close_and_persist(w, err);
        if (rc == 0 && n > 0) {
            hvs_err_t cerr = {0};
            if (hvs_consumer_commit_batch(w->cons, msgs, n, &cerr))
                hvs_log_warn("features", "commit: %s (the batch will be replayed, harmlessly)",
                             cerr.msg);
            hvs_metric_observe(w->m_batch, (double)(hvs_time_mono_ms() - t0) / 1000.0);
        }
        hvs_consumer_release(msgs, n);
        hvs_producer_poll(w->prod);
    }
    free(msgs);
    fx_stats_t *st = fx_stats(w->fx);
    hvs_log_info("features",
                 "stopping: aggregates=%llu weather=%llu vectors=%llu waited=%llu weak=%llu "
                 "upgrades=%llu stale=%llu",
                 (unsigned long long)st->aggregates, (unsigned long long)st->weather,
                 (unsigned long long)st->vectors, (unsigned long long)st->waited,
                 (unsigned long long)st->weak, (unsigned long long)st->upgrades,
                 (unsigned long long)st->stale);
    hvs_err_t cerr = {0};
    hvs_consumer_close(w->cons, &cerr);
    return rc;
}

static void worker_free(worker_t *w) {
    hvs_consumer_destroy(w->cons);
    hvs_topology_free(w->topo);
    hvs_alerter_free(w->alerter);
    hvs_dlq_destroy(w->dlq);
    hvs_producer_destroy(w->prod);
    hvs_redis_batch_destroy(w->rb);
    hvs_redis_destroy(w->redis);
    fx_output_free(w->out);
    fx_input_free(w->input);
    hvs_decoder_destroy(w->dec_agg);
    hvs_decoder_destroy(w->dec_wx);
    hvs_serde_destroy(w->serde);
    hvs_watermark_destroy(w->wm[0]);
    hvs_watermark_destroy(w->wm[1]);
    fx_free(w->fx);
}

/* The worker's state lives for the process (static: large, zeroed). */
static int run_worker(hvs_app_t *app, hvs_err_t *err) {
    static worker_t w;
    w.app = app;
    int rc = run(&w, err);
    worker_free(&w);
    return rc;
}

int main(int argc, char **argv) {
    hvs_app_spec_t spec = {
        .worker = "features",
        .summary = "aggregates.hourly + weather.hourly -> features.hourly (the one feature definition)",
        .usage = "Usage: hvs-features [--weather-wait 2h] [--dq-limit 0.05] ... (every HVS_FEAT_* is a flag)",
        .extra = &fx_section,
        .nextra = 1,
        .flag_prefix = "HVS_FEAT_",
    };
    return hvs_app_main(&spec, argc, argv, run_worker);
}
