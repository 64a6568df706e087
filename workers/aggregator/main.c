/*
 * hvs-aggregator - readings.raw -> aggregates.15m (building totals) and aggregates.hourly (per
 * apartment and per building), each window counted exactly once (DESIGN.md §4-§5).
 *
 * The loop (librdkafka's consumer example, with the effects made durable before the commit):
 *   poll a batch -> decode, validate, dead-letter the bad -> store the good (aggregate.c) ->
 *   close what the watermarks allow (first emissions, revisions) -> flush the producer ->
 *   write the state to Redis (persist.c) -> commit the batch's offsets.
 * A crash anywhere replays the uncommitted messages onto the stored state: duplicates change
 * nothing, windows recompute to the same values, and an already published value is recognised
 * by its hash and not published again (or published again identically, same revision).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregate.h"
#include "hvs/dlq.h"
#include "hvs/app.h"
#include "hvs/log.h"
#include "hvs/reading.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs/topology.h"
#include "output.h"
#include "persist.h"

#define MAX_PARTS 1024

/* Where a batch's time goes (hvs_aggregator_phase_seconds_total): the profile an operator
 * needs to tell a slow Redis from a slow broker from a busy worker. */
enum { PH_POLL, PH_PROCESS, PH_PUBLISH_WAIT, PH_STATE_WRITE, PH_COMMIT, PHASES };
static const char *const phase_names[PHASES] = {"poll", "process", "publish_wait", "state_write",
                                                 "commit"};

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct settings {
    int64_t sample_ms, silence_ms, max_interp_ms, max_pair_ms, grace15_ms, grace60_ms;
    int64_t lateness_ms, idle_ms, max_future_ms, ooo_ms, batch, flush_timeout_ms, stall_ms;
    double max_heating_kw, max_water_lph;
    char *unknown;
} settings_t;

#define S(f) offsetof(settings_t, f)
static const hvs_cfg_entry_t agg_entries[] = {
    {"HVS_AGG_SAMPLE_INTERVAL", HVS_CFG_DURATION, "15m", 1000, 86400000, S(sample_ms), 0,
     "devices sample this often and send what changed"},
    {"HVS_AGG_SILENCE", HVS_CFG_DURATION, "375m", 1000, 604800000, S(silence_ms), 0,
     "an apartment that sends nothing for longer is silent (a gap), not just unchanged "
     "(devices send everything at least every 6 h)"},
    {"HVS_AGG_MAX_INTERPOLATION", HVS_CFG_DURATION, "24h", 900000, 604800000, S(max_interp_ms), 0,
     "a counter increase across a gap is spread over at most this long before it"},
    {"HVS_AGG_MAX_GAP_EXAMINED", HVS_CFG_DURATION, "48h", 3600000, 2592000000.0, S(max_pair_ms), 0,
     "longer counter intervals count as gaps without looking (bounds the state kept)"},
    {"HVS_AGG_GRACE_15M", HVS_CFG_DURATION, "5m", 0, 86400000, S(grace15_ms), 0,
     "a 15-minute window is emitted when the watermark passes its end plus this"},
    {"HVS_AGG_GRACE_HOURLY", HVS_CFG_DURATION, "15m", 0, 86400000, S(grace60_ms), 0,
     "an hourly window is emitted when the watermark passes its end plus this"},
    {"HVS_AGG_LATENESS", HVS_CFG_DURATION, "48h", 0, 2592000000.0, S(lateness_ms), 0,
     "readings older than the watermark minus this go to the dead-letter topic (too_late)"},
    {"HVS_AGG_IDLE_TIMEOUT", HVS_CFG_DURATION, "30s", 0, 86400000, S(idle_ms), 0,
     "a partition without data for this long advances its watermark by the wall clock"},
    {"HVS_AGG_OUT_OF_ORDERNESS", HVS_CFG_DURATION, "0", 0, 86400000, S(ooo_ms), 0,
     "watermark = newest event time seen minus this"},
    {"HVS_AGG_MAX_FUTURE", HVS_CFG_DURATION, "1d", 0, 31536000000.0, S(max_future_ms), 0,
     "readings stamped later than now plus this are refused (timestamp_in_future)"},
    {"HVS_AGG_MAX_HEATING_KW", HVS_CFG_DOUBLE, "20", 0.1, 10000, S(max_heating_kw), 0,
     "most heating power an apartment can draw: more in one sampling interval means lost "
     "reports (spread), more on average over an interval is an implausible jump"},
    {"HVS_AGG_MAX_WATER_LPH", HVS_CFG_DOUBLE, "600", 1, 1e6, S(max_water_lph), 0,
     "the same for hot water, litres per hour"},
    {"HVS_AGG_UNKNOWN", HVS_CFG_STRING, "accept", 0, 0, S(unknown), 0,
     "readings of buildings/apartments not in topology: accept | dlq"},
    {"HVS_AGG_BATCH", HVS_CFG_INT, "5000", 1, 1000000, S(batch), 0,
     "messages per batch (one flush, one Redis round trip, one commit each)"},
    {"HVS_AGG_FLUSH_TIMEOUT", HVS_CFG_DURATION, "30s", 1000, 600000, S(flush_timeout_ms), 0,
     "longest wait for the broker to acknowledge a batch's aggregates"},
    {"HVS_AGG_STALL_TIMEOUT", HVS_CFG_DURATION, "60s", 1000, 86400000, S(stall_ms), 0,
     "exit (to be restarted) when messages wait in the assigned partitions but none arrive for "
     "this long: a consumer that stopped fetching must not look alive"},
};
static settings_t settings;
static const hvs_cfg_section_t agg_section = {"aggregator", agg_entries,
                                              sizeof agg_entries / sizeof agg_entries[0], &settings};

typedef struct worker {
    hvs_app_t *app;
    hvs_serde_t *serde;
    hvs_decoder_t *dec;
    hvs_reading_codec_t *codec;
    hvs_consumer_t *cons;
    hvs_producer_t *prod;
    hvs_dlq_t *dlq;
    hvs_redis_t *redis;
    hvs_redis_batch_t *rb;
    agg_t *agg;
    hvs_topology_t *topo;
    agg_output_t *out[AGG_WSIZES];
    const char *topic_in, *topic_out[AGG_WSIZES];
    hvs_watermark_t *wm;
    int32_t parts[MAX_PARTS];
    size_t nparts;
    hvs_ms_t th[MAX_PARTS][3];   /* last thresholds acted on, per partition (agg_thresholds) */
    bool dlq_unknown;
    int fatal;
    hvs_err_t fatal_err;
    hvs_reading_t reading;
    hvs_ms_t now;
    int64_t behind;        /* consumer lag at the last batch end */
    hvs_metric_t *m_phase[PHASES];
    double waited;         /* publish_wait + state_write of the current batch */
    hvs_metric_t *m_in, *m_dlq, *m_emitted[AGG_WSIZES], *m_revisions, *m_dup, *m_lag, *m_behind, *m_batch_ms;
} worker_t;

/* ---- partitions come and go ---------------------------------------------------------------- */

static void on_assigned(void *opaque, const rd_kafka_topic_partition_list_t *added) {
    worker_t *w = opaque;
    for (int i = 0; i < added->cnt && !w->fatal; i++) {
        int32_t p = added->elems[i].partition;
        hvs_ms_t wm;
        if (agg_persist_load(w->redis, w->rb, w->agg, p, &wm, &w->fatal_err)) {
            w->fatal = 1; /* cannot run without its state: exit, restart, retry */
            return;
        }
        if (wm != HVS_MS_NONE)
            hvs_watermark_observe(w->wm, p, wm + settings.ooo_ms, hvs_time_now_ms());
        agg_partition_loaded(w->agg, p, wm);
        if (p >= 0 && p < MAX_PARTS)
            agg_thresholds(w->agg, wm, w->th[p]);
        if (w->nparts < MAX_PARTS)
            w->parts[w->nparts++] = p;
        hvs_log_info("aggregator", "partition %d assigned: state loaded, watermark %lld", (int)p,
                     (long long)wm);
    }
}

static void on_revoked(void *opaque, const rd_kafka_topic_partition_list_t *removed) {
    worker_t *w = opaque;
    for (int i = 0; i < removed->cnt; i++) {
        int32_t p = removed->elems[i].partition;
        agg_drop_partition(w->agg, p); /* its state was written before the last commit */
        hvs_watermark_remove(w->wm, p);
        for (size_t k = 0; k < w->nparts; k++)
            if (w->parts[k] == p) {
                w->parts[k] = w->parts[--w->nparts];
                break;
            }
        hvs_log_info("aggregator", "partition %d revoked", (int)p);
    }
}

/* ---- windows out ----------------------------------------------------------------------------- */

static int emit(void *opaque, const agg_building_t *b, const agg_apartment_t *a, int size,
                const agg_result_t *r, uint32_t revision, hvs_err_t *err) {
    worker_t *w = opaque;
    const void *buf;
    size_t len;
    int rc = agg_output_encode(w->out[size], b->id, a ? a->id : NULL, r, revision, w->now, &buf,
                               &len, err);
    if (rc == 0)
        rc = hvs_producer_send(w->prod, w->topic_out[size], RD_KAFKA_PARTITION_UA, b->id,
                               strlen(b->id), buf, len, err);
    if (rc == 0) {
        hvs_metric_inc(w->m_emitted[size]);
        if (revision > 0)
            hvs_metric_inc(w->m_revisions);
    }
    return rc;
}


static void set_known(worker_t *w, agg_building_t *b) {
    if (w->topo) {
        int k = hvs_topology_apartments(w->topo, b->id);
        b->known_apartments = k > 0 ? k : 0;
    }
}

/* After every reading (and when idle): act on thresholds the partition's watermark crossed. */
static int advance_partition(worker_t *w, int32_t p) {
    if (p < 0 || p >= MAX_PARTS)
        return 0;
    hvs_ms_t wm = hvs_watermark_partition(w->wm, p, w->now), th[3];
    agg_thresholds(w->agg, wm, th);
    if (memcmp(th, w->th[p], sizeof th) == 0)
        return 0;
    memcpy(w->th[p], th, sizeof th);
    size_t n;
    agg_building_t **bs = agg_buildings(w->agg, &n);
    for (size_t i = 0; i < n; i++) {
        if (bs[i]->partition != p)
            continue;
        set_known(w, bs[i]);
        hvs_err_t e = {0};
        if (agg_advance(w->agg, bs[i], wm, emit, w, &e)) {
            w->fatal = 1;
            w->fatal_err = e;
            return -1;
        }
    }
    return 0;
}

/* ---- one message ---------------------------------------------------------------------------- */

static int dead_letter(worker_t *w, const rd_kafka_message_t *m, const hvs_err_t *why) {
    hvs_err_t e = {0};
    char lbl[96];
    snprintf(lbl, sizeof lbl, "reason=\"%s\"", why->reason);
    hvs_metric_inc(hvs_metrics_counter(w->app->metrics, "hvs_aggregator_dead_letters_total",
                                       "readings sent to the dead-letter topic", lbl));
    hvs_log_warn("aggregator", "%s [%d] offset %lld -> dead letter (%s): %s", w->topic_in,
                 (int)m->partition, (long long)m->offset, why->reason, why->msg);
    if (hvs_dlq_send_message(w->dlq, m, why, &e)) {
        w->fatal = 1;
        w->fatal_err = e;
        return -1;
    }
    return 0;
}

static int handle(worker_t *w, const rd_kafka_message_t *m) {
    hvs_err_t why = {0};
    avro_value_t *v;
    hvs_reading_t *r = &w->reading;
    hvs_metric_inc(w->m_in);
    if (!m->payload)
        return dead_letter(w, m, &(hvs_err_t){.code = HVS_EINVAL, .reason = "empty_value",
                                              .msg = "message without a value"});
    if (hvs_decoder_decode(w->dec, m->payload, m->len, &v, &why) ||
        hvs_reading_from_avro(w->codec, v, r, &why) ||
        hvs_reading_validate(r, w->now, settings.max_future_ms, &why))
        return dead_letter(w, m, &why);
    if (w->dlq_unknown) {
        int n = hvs_topology_apartments(w->topo, r->building_id);
        if (n < 0) {
            hvs_err_set(&why, HVS_EINVAL, AGG_R_UNKNOWN_BUILDING, "building %s is not in topology",
                        r->building_id);
            return dead_letter(w, m, &why);
        }
        if (!hvs_topology_has_apartment(w->topo, r->building_id, r->apartment_id)) {
            hvs_err_set(&why, HVS_EINVAL, AGG_R_UNKNOWN_APARTMENT,
                        "apartment %s is not in topology of %s", r->apartment_id, r->building_id);
            return dead_letter(w, m, &why);
        }
    }
    hvs_ms_t wm = hvs_watermark_partition(w->wm, m->partition, w->now);
    int rc = agg_accept(w->agg, r, m->partition, wm, &why);
    if (rc == HVS_EINVAL)
        return dead_letter(w, m, &why);
    if (rc < 0) {
        w->fatal = 1;
        w->fatal_err = why;
        return -1;
    }
    if (rc == 0)
        hvs_metric_inc(w->m_dup);
    hvs_watermark_observe(w->wm, m->partition, r->timestamp, w->now);
    return advance_partition(w, m->partition);
}

/* End of a batch (or an idle poll): idle partitions' watermarks advance by the wall clock;
 * revisions of what the batch changed; publish; make the state durable (not the commit). */
static int close_and_persist(worker_t *w, hvs_err_t *err) {
    for (size_t i = 0; i < w->nparts; i++)
        if (advance_partition(w, w->parts[i])) {
            *err = w->fatal_err;
            return HVS_EKAFKA;
        }
    size_t n;
    agg_building_t **bs = agg_buildings(w->agg, &n);
    hvs_ms_t lag = 0;
    for (size_t i = 0; i < n; i++) {
        set_known(w, bs[i]);
        hvs_ms_t wm = hvs_watermark_partition(w->wm, bs[i]->partition, w->now);
        if (wm != HVS_MS_NONE && w->now - wm > lag)
            lag = w->now - wm;
        int rc = agg_revise(w->agg, bs[i], emit, w, err);
        if (rc)
            return rc;
    }
    hvs_metric_set(w->m_lag, (double)lag / 1000.0);
    w->behind = hvs_consumer_lag(w->cons);
    hvs_metric_set(w->m_behind, (double)w->behind);
    /* The state is encoded while the broker acknowledges the outputs, and sent only after:
     * state in Redis must never claim a window the broker does not have. A failed flush ends
     * the process, so the prepared (and taken) changes are never needed again. */
    hvs_ms_t wms[MAX_PARTS];
    for (size_t i = 0; i < w->nparts; i++)
        wms[i] = hvs_watermark_partition(w->wm, w->parts[i], w->now);
    int rc = agg_persist_prepare(w->rb, w->agg, w->parts, wms, w->nparts, err);
    if (rc)
        return rc;
    double t0 = mono_s();
    rc = hvs_producer_flush(w->prod, (int)settings.flush_timeout_ms, err);
    double t1 = mono_s();
    hvs_metric_add(w->m_phase[PH_PUBLISH_WAIT], t1 - t0);
    w->waited = t1 - t0;
    if (rc)
        return rc;
    rc = agg_persist_exec(w->redis, w->rb, err);
    double t2 = mono_s();
    hvs_metric_add(w->m_phase[PH_STATE_WRITE], t2 - t1);
    w->waited += t2 - t1;
    return rc;
}

static int ready(void *opaque, char *why, size_t whylen) {
    worker_t *w = opaque;
    if (hvs_consumer_assignment_size(w->cons) <= 0) {
        snprintf(why, whylen, "no partitions assigned yet");
        return 0;
    }
    return 1;
}

static int run(worker_t *w, hvs_err_t *err) {
    hvs_app_t *app = w->app;
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    w->topic_in = hvs_topic_name("readings.raw");
    w->topic_out[AGG_W15] = hvs_topic_name("aggregates.15m");
    w->topic_out[AGG_W60] = hvs_topic_name("aggregates.hourly");
    w->dlq_unknown = strcmp(settings.unknown, "dlq") == 0;
    if (!w->dlq_unknown && strcmp(settings.unknown, "accept") != 0)
        return hvs_err_set(err, HVS_ECONFIG, "bad_value", "HVS_AGG_UNKNOWN must be accept or dlq, not '%s'",
                           settings.unknown);
    agg_config_t ac = {
        .params = {settings.sample_ms, settings.silence_ms, settings.max_interp_ms,
                   settings.max_pair_ms, {settings.max_heating_kw, settings.max_water_lph}},
        .grace = {settings.grace15_ms, settings.grace60_ms},
        .lateness = settings.lateness_ms,
    };
    int rc;
    if ((rc = hvs_serde_new(app->cfg.schema_registry_url, &w->serde, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_READING, &w->dec, err)) ||
        (rc = hvs_reading_codec_new(w->serde, &w->codec, err)) ||
        (rc = agg_output_new(w->serde, w->topic_out[AGG_W15], &w->out[AGG_W15], err)) ||
        (rc = agg_output_new(w->serde, w->topic_out[AGG_W60], &w->out[AGG_W60], err)) ||
        (rc = hvs_redis_connect(app->cfg.redis_url, NULL, &w->redis, err)) ||
        (rc = hvs_producer_new(&kc, &w->prod, err)) ||
        (rc = hvs_dlq_new(w->prod, w->serde, "aggregator", &w->dlq, err)))
        return rc;
    if (!(w->rb = hvs_redis_batch_new()) || !(w->agg = agg_new(&ac)) ||
        !(w->wm = hvs_watermark_new(settings.ooo_ms, settings.idle_ms)))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "aggregator state");
    if ((rc = hvs_topology_new(&kc, w->serde, hvs_topic_name("topology"), &w->topo, err)))
        return rc;
    /* With HVS_AGG_UNKNOWN=dlq the whole topology must be known before the first reading. */
    hvs_topology_poll(w->topo, 30000);
    if (w->dlq_unknown && !hvs_topology_caught_up(w->topo))
        return hvs_err_set(err, HVS_ETIMEOUT, "topology", "topology not read within 30 s");
    for (size_t p = 0; p < MAX_PARTS; p++)
        agg_thresholds(w->agg, HVS_MS_NONE, w->th[p]);
    hvs_metrics_t *ms = app->metrics;
    w->m_in = hvs_metrics_counter(ms, "hvs_aggregator_readings_total", "Reading messages consumed", NULL);
    w->m_dup = hvs_metrics_counter(ms, "hvs_aggregator_duplicates_total",
                                   "readings already stored (replays, duplicates)", NULL);
    w->m_emitted[AGG_W15] = hvs_metrics_counter(ms, "hvs_aggregator_windows_total",
                                                "aggregates published", "size=\"15m\"");
    w->m_emitted[AGG_W60] = hvs_metrics_counter(ms, "hvs_aggregator_windows_total",
                                                "aggregates published", "size=\"1h\"");
    w->m_revisions = hvs_metrics_counter(ms, "hvs_aggregator_revisions_total",
                                         "aggregates re-published because late data changed them", NULL);
    w->m_lag = hvs_metrics_gauge(ms, "hvs_aggregator_watermark_lag_seconds",
                                 "wall clock minus the oldest partition watermark", NULL);
    w->m_behind = hvs_metrics_gauge(ms, "hvs_aggregator_consumer_lag_messages",
                                    "messages of the assigned partitions not yet consumed (-1: unknown)",
                                    NULL);
    hvs_metric_set(w->m_behind, -1);
    for (int i = 0; i < PHASES; i++) {
        char lbl[48];
        snprintf(lbl, sizeof lbl, "phase=\"%s\"", phase_names[i]);
        w->m_phase[i] = hvs_metrics_counter(ms, "hvs_aggregator_phase_seconds_total",
                                            "time of the consume loop by phase", lbl);
    }
    w->m_batch_ms = hvs_metrics_histogram(ms, "hvs_aggregator_batch_seconds",
                                          "poll to commit of one batch", NULL,
                                          hvs_metrics_latency_buckets, hvs_metrics_latency_nbuckets);
    const char *topics[] = {w->topic_in};
    hvs_consumer_hooks_t hooks = {.on_assigned = on_assigned, .on_revoked = on_revoked, .opaque = w};
    if ((rc = hvs_consumer_new(&kc, topics, 1, &hooks, &w->cons, err)))
        return rc;
    hvs_app_set_ready(app, ready, w);
    size_t max = (size_t)settings.batch;
    rd_kafka_message_t **msgs = calloc(max, sizeof *msgs);
    if (!msgs)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "batch");
    hvs_log_info("aggregator", "consuming %s -> %s, %s", w->topic_in, w->topic_out[AGG_W15],
                 w->topic_out[AGG_W60]);
    rc = 0;
    hvs_ms_t last_progress = hvs_time_mono_ms();
    while (hvs_app_running() && rc == 0) {
        size_t n = 0;
        hvs_err_t perr = {0};
        double tp = mono_s();
        int prc = hvs_consumer_poll_batch(w->cons, msgs, max, 200, &n, &perr);
        hvs_ms_t t0 = hvs_time_mono_ms();
        double tq = mono_s();
        hvs_metric_add(w->m_phase[PH_POLL], tq - tp);
        if (w->fatal) {
            *err = w->fatal_err;
            rc = HVS_EREDIS;
        } else if (prc && strcmp(perr.reason, "fatal") == 0) {
            *err = perr;
            rc = prc;
        } else if (prc) {
            hvs_log_error("aggregator", "%s", perr.msg); /* e.g. offset_out_of_range: go on loudly */
        }
        w->now = hvs_time_now_ms();
        if (w->topo)
            hvs_topology_poll(w->topo, 0);
        for (size_t i = 0; i < n && rc == 0; i++)
            if (handle(w, msgs[i]) && w->fatal) {
                *err = w->fatal_err;
                rc = HVS_EKAFKA;
            }
        w->waited = 0;
        if (rc == 0)
            rc = close_and_persist(w, err);
        double tc = mono_s();
        /* processing = the batch's time minus what close_and_persist spent waiting */
        hvs_metric_add(w->m_phase[PH_PROCESS], tc - tq - w->waited);
        if (rc == 0 && n > 0) {
            hvs_err_t cerr = {0};
            if (hvs_consumer_commit_batch(w->cons, msgs, n, &cerr))
                hvs_log_warn("aggregator", "commit: %s (the batch will be replayed, harmlessly)",
                             cerr.msg);
            hvs_metric_add(w->m_phase[PH_COMMIT], mono_s() - tc);
            hvs_metric_observe(w->m_batch_ms, (double)(hvs_time_mono_ms() - t0) / 1000.0);
        }
        hvs_consumer_release(msgs, n);
        hvs_producer_poll(w->prod);
        hvs_ms_t mono = hvs_time_mono_ms();
        if (n > 0 || w->behind <= 0)
            last_progress = mono;
        else if (rc == 0 && mono - last_progress > settings.stall_ms)
            rc = hvs_err_set(err, HVS_EKAFKA, "stalled",
                             "%lld messages wait in the assigned partitions but none arrived for "
                             "%lld ms; exiting to be restarted",
                             (long long)w->behind, (long long)settings.stall_ms);
    }
    free(msgs);
    agg_stats_t *st = agg_stats(w->agg);
    hvs_log_info("aggregator",
                 "stopping: accepted=%llu duplicates=%llu too_late=%llu conflicts=%llu emitted=%llu "
                 "revisions=%llu windows_computed=%llu",
                 (unsigned long long)st->accepted, (unsigned long long)st->duplicates,
                 (unsigned long long)st->too_late, (unsigned long long)st->conflicts,
                 (unsigned long long)st->emitted, (unsigned long long)st->revisions,
                 (unsigned long long)st->windows_computed);
    hvs_err_t cerr = {0};
    hvs_consumer_close(w->cons, &cerr);
    return rc;
}

static void worker_free(worker_t *w) {
    hvs_consumer_destroy(w->cons);
    hvs_topology_free(w->topo);
    hvs_dlq_destroy(w->dlq);
    hvs_producer_destroy(w->prod);
    hvs_redis_batch_destroy(w->rb);
    hvs_redis_destroy(w->redis);
    agg_output_free(w->out[0]);
    agg_output_free(w->out[1]);
    hvs_reading_codec_destroy(w->codec);
    hvs_decoder_destroy(w->dec);
    hvs_serde_destroy(w->serde);
    hvs_watermark_destroy(w->wm);
    agg_free(w->agg);
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
        .worker = "aggregator",
        .summary = "readings.raw -> 15-minute and hourly aggregates, each window counted once",
        .usage = "Usage: hvs-aggregator [--lateness 48h] [--silence 1h] ... (every HVS_AGG_* is a flag)",
        .extra = &agg_section,
        .nextra = 1,
        .flag_prefix = "HVS_AGG_",
    };
    return hvs_app_main(&spec, argc, argv, run_worker);
}
