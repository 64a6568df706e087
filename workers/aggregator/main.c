/*
 * hvs-aggregator - readings.raw -> aggregates.15m (building totals) and aggregates.hourly (per
 * apartment and per building), each window counted exactly once (docs/design.md §4-§5).
 *
 * A stage on the one runner (stage.h), which polls, publishes, commits and dead-letters; this
 * file is the configuration and the stage's callbacks:
 *   handle: decode, validate (ids by ids.h, and the Kafka key must be the building id, else
 *           the reading's state would live in another partition's worker; bad -> dead letter),
 *           store the good (aggregate.c), act on the thresholds the building's watermark
 *           crossed (first emissions; event time is per building, aggregate.h);
 *   end_batch: idle buildings advance, revisions of what the batch changed, state encoded;
 *   (the runner writes that state to Redis with the offsets it covers, in one transaction, once
 *   the broker acknowledged the outputs: persist.c encodes, the runner applies);
 *   assigned / revoked: a partition's state loaded from Redis / dropped.
 * A crash anywhere replays the uncommitted messages onto the stored state: duplicates change
 * nothing, windows recompute to the same values, and an already published value is recognised
 * by its hash and not published again (or published again identically, same revision).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "hvs/alert.h"
#include "hvs/app.h"
#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/profile.h"
#include "hvs/reading.h"
#include "hvs/redis.h"
#include "hvs/serde.h"
#include "hvs/stage.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs/topology.h"
#include "output.h"
#include "persist.h"

typedef struct settings {
    int64_t sample_ms, silence_ms, max_interp_ms, max_pair_ms, grace15_ms, grace60_ms;
    int64_t lateness_ms, idle_ms, max_future_ms, ooo_ms;
    double max_heating_kw, max_water_lph, uncounted_share;
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
     "readings older than their building's watermark minus this go to the dead-letter topic "
     "(too_late)"},
    {"HVS_AGG_IDLE_TIMEOUT", HVS_CFG_DURATION, "30s", 0, 86400000, S(idle_ms), 0,
     "a building without data for this long (its partition caught up) advances its watermark "
     "by the wall clock"},
    {"HVS_AGG_OUT_OF_ORDERNESS", HVS_CFG_DURATION, "0", 0, 86400000, S(ooo_ms), 0,
     "a building's watermark = its newest event time seen minus this"},
    {"HVS_AGG_MAX_FUTURE", HVS_CFG_DURATION, "1d", 0, 31536000000.0, S(max_future_ms), 0,
     "readings stamped later than now plus this are refused (timestamp_in_future)"},
    {"HVS_AGG_MAX_HEATING_KW", HVS_CFG_DOUBLE, "20", 0.1, 10000, S(max_heating_kw), 0,
     "most heating power an apartment meter (topology's default meter kind) can measure (a "
     "profile's meter_max_kw replaces it, profile.h): more "
     "in one sampling interval means lost reports (spread), more on average over an interval "
     "is an implausible jump (uncounted)"},
    {"HVS_AGG_UNCOUNTED_ALERT_SHARE", HVS_CFG_DOUBLE, "0.05", 0, 1, S(uncounted_share), 0,
     "a meter whose uncounted heating energy (implausible jumps) passes this share of a UTC "
     "day's energy raises a DATA_QUALITY alert (one per meter and day)"},
    {"HVS_AGG_MAX_WATER_LPH", HVS_CFG_DOUBLE, "600", 1, 1e6, S(max_water_lph), 0,
     "the same for hot water, litres per hour"},
    {"HVS_AGG_UNKNOWN", HVS_CFG_STRING, "accept", 0, 0, S(unknown), 0,
     "readings of buildings/apartments not in topology: accept | dlq"},
};
static settings_t settings;
static hvs_stage_settings_t stage_settings; /* HVS_AGG_BATCH, _FLUSH_TIMEOUT, _STALL_TIMEOUT */
static const hvs_cfg_section_t agg_section = {
    "aggregator", agg_entries, sizeof agg_entries / sizeof agg_entries[0], &settings};

typedef struct worker {
    hvs_app_t *app;
    hvs_stage_t *stage;
    hvs_serde_t *serde;
    hvs_decoder_t *dec;
    hvs_reading_codec_t *codec;
    hvs_redis_t *redis;
    hvs_redis_batch_t *rb;
    agg_t *agg;
    hvs_topology_t *topo;
    agg_output_t *out[AGG_WSIZES];
    const char *topic_in, *topic_out[AGG_WSIZES];
    hvs_watermark_t *wm; /* per partition: the lag metric, the fallback of old stored state */
    bool dlq_unknown;
    hvs_reading_t reading;
    hvs_ms_t now;
    bool quiet; /* end_batch is advancing a partition that is still being rebuilt */
    hvs_metric_t *m_in, *m_emitted[AGG_WSIZES], *m_revisions, *m_dup, *m_lag;
    hvs_metric_t *m_uncounted, *m_alerts;
    hvs_alerter_t *alerter;
} worker_t;

/* ---- partitions come and go ---------------------------------------------------------------- */

static int assigned(void *opaque, int32_t p, hvs_err_t *err) {
    worker_t *w = opaque;
    hvs_ms_t wm = HVS_MS_NONE;
    /* without its epoch, what Redis holds of p is a rebuild that did not finish (killed part
     * way): loaded, its windows would take the replayed readings a second time */
    bool rebuilding = hvs_stage_rebuilding(w->stage, p);
    int rc = rebuilding ? 0 : agg_persist_load(w->redis, w->rb, w->agg, p, &wm, err);
    if (rc)
        return rc;
    hvs_ms_t now = hvs_time_now_ms();
    if (wm != HVS_MS_NONE)
        hvs_watermark_observe(w->wm, p, wm + settings.ooo_ms, now);
    agg_partition_loaded(w->agg, p, wm);
    size_t n;
    agg_building_t **bs = agg_buildings(w->agg, &n);
    for (size_t i = 0; i < n; i++)
        if (bs[i]->partition == p) /* the idle clock of a restored building starts now */
            agg_building_touch(w->agg, bs[i], now);
    hvs_log_info("aggregator", "partition %d assigned: %s, watermark %lld", (int)p,
                 rebuilding ? "rebuilding, starting empty" : "state loaded", (long long)wm);
    return 0;
}

static void revoked(void *opaque, int32_t p) {
    worker_t *w = opaque;
    agg_drop_partition(w->agg, p); /* its state was written before the last commit */
    hvs_watermark_remove(w->wm, p);
    hvs_log_info("aggregator", "partition %d revoked", (int)p);
}

/* ---- windows out ----------------------------------------------------------------------------- */

/* The DATA_QUALITY alert of day d of a meter whose uncounted share passed the limit (marked
 * sent without sending while quiet: a rebuild replays what was published before the loss). */
static int send_day_alert(worker_t *w, const agg_building_t *b, const agg_apartment_t *a,
                          agg_day_t *d, hvs_err_t *err) {
    d->alerted = true;
    d->dirty = true;
    if (w->quiet || hvs_stage_replaying(w->stage))
        return 0;
    double uncounted = agg_day_uncounted(d), counted = agg_day_counted(d);
    double share = uncounted / (counted + uncounted);
    char unc[32], cnt[32], sh[32], lim[32], summary[640];
    snprintf(unc, sizeof unc, "%.3f", uncounted);
    snprintf(cnt, sizeof cnt, "%.3f", counted);
    snprintf(sh, sizeof sh, "%.4f", share);
    snprintf(lim, sizeof lim, "%.4f", settings.uncounted_share);
    snprintf(summary, sizeof summary,
             "heat meter of %.100s/%.100s: %.1f %% of the day's energy uncounted (%.1f kWh in "
             "implausible jumps; capacity or unit of the meter in topology?)",
             b->id, a->id, share * 100, uncounted);
    const char *ev[] = {"source",          "aggregator", "uncounted_kwh", unc, "counted_kwh", cnt,
                        "uncounted_share", sh,           "limit",         lim, NULL};
    hvs_alert_t al = {.building_id = b->id,
                      .apartment_id = a->id,
                      .type = HVS_ALERT_DATA_QUALITY,
                      .severity = share >= 0.2 ? HVS_SEVERITY_CRITICAL : HVS_SEVERITY_WARNING,
                      .score = share,
                      .summary = summary,
                      .evidence = ev,
                      .first_seen = d->day,
                      .updated_at = w->now};
    hvs_log_warn("aggregator", "%s", summary);
    hvs_metric_inc(w->m_alerts);
    return hvs_alerter_send(w->alerter, &al, err);
}

/* A publication (first or revision) of an apartment's hourly window: its counted and uncounted
 * energy replace what the meter's day account held for that hour (account.h: a revision
 * adjusts the day by its difference, a replay changes nothing), and every closed day of the
 * meter not yet alerted is judged. The account is state: it is written with the batch and
 * survives restarts. The metric adds what the account's uncounted energy grew by. */
static int note_quality(worker_t *w, const agg_building_t *b, agg_apartment_t *a,
                        const agg_result_t *r, hvs_err_t *err) {
    double delta;
    double counted = r->has_use[AGG_HEAT] ? r->use[AGG_HEAT] : 0;
    if (!agg_account_set(&a->account, r->ws, counted, r->uncounted_kwh, &delta))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "day account of %s/%s", b->id, a->id);
    if (delta > 0 && !w->quiet && !hvs_stage_replaying(w->stage))
        hvs_metric_add(w->m_uncounted, delta);
    for (size_t i = 0; i < a->account.n; i++) {
        int rc;
        if (agg_account_due(&a->account, i, settings.uncounted_share) &&
            (rc = send_day_alert(w, b, a, &a->account.d[i], err)))
            return rc;
    }
    return 0;
}

static int emit(void *opaque, const agg_building_t *b, const agg_apartment_t *a, int size,
                const agg_result_t *r, uint32_t revision, hvs_err_t *err) {
    worker_t *w = opaque;
    /* the day accounts are state, rebuilt with the rest (quietly when replaying); the
     * aggregator owns the apartment (emit's view of it is read-only for the windows; the
     * accounts are the worker's) */
    int rc = 0;
    if (a && size == AGG_W60 && (rc = note_quality(w, b, (agg_apartment_t *)a, r, err)))
        return rc;
    /* Rebuilding lost state: a replayed reading's windows were published before the loss;
     * the marker is recorded, nothing is sent. Only the replayed readings are quiet: the rest
     * of the batch in which the replay ends is new and published (a partition stays
     * "rebuilding" until that batch's state write, so that alone must not silence it). */
    if (hvs_stage_replaying(w->stage) || w->quiet)
        return 0;
    const void *buf;
    size_t len;
    rc = agg_output_encode(w->out[size], b->id, a ? a->id : NULL, r, revision, w->now, &buf, &len,
                           err);
    if (rc == 0)
        rc = hvs_producer_send(hvs_stage_producer(w->stage), w->topic_out[size],
                               RD_KAFKA_PARTITION_UA, b->id, strlen(b->id), buf, len, err);
    if (rc == 0) {
        hvs_metric_inc(w->m_emitted[size]);
        if (revision > 0)
            hvs_metric_inc(w->m_revisions);
    }
    return rc;
}

/* A meter of building tb from topology (its own or an apartment's), the kind's defaults
 * applied. */
static agg_meter_t meter_of(const hvs_building_t *tb, const hvs_meter_t *tm) {
    agg_meter_t m = {0};
    if (!tb || !tm || !tm->given)
        return m; /* the configured apartment meters */
    m.set = true;
    m.unit_kwh = hvs_energy_unit_kwh(tm->unit);
    m.interval_ms = tm->interval_ms;
    m.learn = tm->kind != HVS_METER_APARTMENT_HEAT && tm->interval_ms == 0;
    if (tm->interval_ms == 0 && tm->kind == HVS_METER_APARTMENT_HEAT)
        m.interval_ms = settings.sample_ms;
    if (isfinite(tm->max_kw))
        m.max_kw = tm->max_kw;
    else if (tm->kind == HVS_METER_APARTMENT_HEAT)
        m.max_kw = settings.max_heating_kw;
    else if (tm->kind == HVS_METER_NETWORK)
        m.max_kw = 1e6; /* 1 GW */
    else { /* building or substation: 250 W per heated m2 (given or the flats'), or 2 MW */
        double area = hvs_building_area(tb);
        m.max_kw = isfinite(area) && area > 0 ? 0.25 * area : 2000;
    }
    return m;
}

/* An apartment's own meter (Apartment.meter), unset when it has none: the building's counts. */
static void set_apartment_meter(const hvs_building_t *tb, agg_apartment_t *a) {
    a->meter = (agg_meter_t){0};
    if (!tb)
        return;
    const hvs_meter_t *tm = hvs_building_meter(tb, a->id);
    if (tm != &tb->meter)
        a->meter = meter_of(tb, tm);
}

static void set_known(worker_t *w, agg_building_t *b) {
    if (w->topo) {
        int k = hvs_topology_apartments(w->topo, b->id);
        b->known_apartments = k > 0 ? k : 0;
        const hvs_building_t *tb = hvs_topology_find(w->topo, b->id);
        b->meter = meter_of(tb, tb ? &tb->meter : NULL);
        for (size_t i = 0; i < b->napts; i++)
            set_apartment_meter(tb, b->apts[i]);
    }
}

/* After every reading of b (and when idle): act on thresholds b's watermark crossed. */
static int advance_building(worker_t *w, agg_building_t *b, hvs_err_t *err) {
    hvs_ms_t wm = agg_building_wm(w->agg, b, w->now), th[3];
    agg_thresholds(w->agg, wm, th);
    if (memcmp(th, b->th, sizeof th) == 0)
        return 0;
    memcpy(b->th, th, sizeof th);
    set_known(w, b);
    int rc = agg_advance(w->agg, b, wm, emit, w, err);
    return rc == HVS_EINVAL ? HVS_ESTATE : rc; /* never mistaken for a bad record */
}

/* ---- the stage's callbacks ------------------------------------------------------------------ */

static int begin_batch(void *opaque, hvs_err_t *err) {
    worker_t *w = opaque;
    w->now = hvs_stage_now(w->stage);
    if (w->topo)
        hvs_topology_poll(w->topo, 0);
    return 0;
}

/* One reading: HVS_EINVAL (why filled) sends it to the dead-letter topic. */
static int handle(void *opaque, const rd_kafka_message_t *m, hvs_err_t *why) {
    worker_t *w = opaque;
    hvs_reading_t *r = &w->reading;
    hvs_metric_inc(w->m_in);
    if (!m->payload)
        return hvs_err_set(why, HVS_EINVAL, "empty_value", "message without a value");
    int rc;
    if ((rc = hvs_reading_decode(w->codec, w->dec, m->payload, m->len, r, NULL, why)) ||
        (rc = hvs_reading_validate(r, w->now, settings.max_future_ms, why)) ||
        (rc = hvs_id_check_key(m, r->building_id, why)))
        return HVS_EINVAL; /* whatever failed, it is this record that is bad */
    if (w->dlq_unknown) {
        if (hvs_topology_apartments(w->topo, r->building_id) < 0)
            return hvs_err_set(why, HVS_EINVAL, AGG_R_UNKNOWN_BUILDING,
                               "building %s is not in topology", r->building_id);
        if (!hvs_topology_has_apartment(w->topo, r->building_id, r->apartment_id))
            return hvs_err_set(why, HVS_EINVAL, AGG_R_UNKNOWN_APARTMENT,
                               "apartment %s is not in topology of %s", r->apartment_id,
                               r->building_id);
    }
    /* its meters decide which windows a reading changes (a building's first reading changes
     * none: nothing of it was published yet); its own watermark whether it is too late */
    agg_building_t *ob = agg_building(w->agg, r->building_id, m->partition, false);
    if (ob)
        set_known(w, ob);
    hvs_ms_t wm = ob ? agg_building_wm(w->agg, ob, w->now) : HVS_MS_NONE;
    rc = agg_accept(w->agg, r, m->partition, wm, why);
    if (rc < 0)
        return rc; /* HVS_EINVAL: refused (too late, conflicting); else fatal */
    /* a new building: its meters, before its first windows; an apartment new to its building:
     * its own meter (its first reading was accepted under the building's) */
    if (!ob && w->topo && (ob = agg_building(w->agg, r->building_id, m->partition, false)))
        set_known(w, ob);
    agg_apartment_t *oa = ob && w->topo ? agg_apartment(ob, r->apartment_id, false) : NULL;
    if (oa && !oa->meter.set)
        set_apartment_meter(hvs_topology_find(w->topo, ob->id), oa);
    if (rc == 0)
        hvs_metric_inc(w->m_dup);
    hvs_watermark_observe(w->wm, m->partition, r->timestamp, w->now);
    agg_building_t *rb = agg_building(w->agg, r->building_id, m->partition, false);
    if (!rb) /* stored just now */
        return hvs_err_set(why, HVS_ESTATE, "state", "building %s vanished", r->building_id);
    agg_building_observe(w->agg, rb, r->timestamp, w->now);
    if ((rc = advance_building(w, rb, why)))
        return rc;
    if (hvs_stage_replaying(w->stage) || hvs_stage_rebuilding(w->stage, m->partition)) {
        /* Rebuilding lost state: count a revision for every reading that changes a published
         * window, not once per batch. The lost markers held the revisions already published,
         * counted once per batch of the batches of that time; per reading the rebuilt count
         * is never lower, so what is published after the rebuild outranks (highest revision
         * wins downstream) every earlier value of the window instead of losing to it. It also
         * leaves end_batch's revisions with only the new readings' changes, to publish. */
        agg_building_t *b = agg_building(w->agg, r->building_id, m->partition, false);
        if (b)
            set_known(w, b);
        if (b && (rc = agg_revise(w->agg, b, emit, w, why)))
            return rc == HVS_EINVAL ? HVS_ESTATE : rc;
    }
    return 0;
}

/* End of a batch (or an idle poll): idle buildings' watermarks advance by the wall clock;
 * revisions of what the batch changed; the state encoded while the broker acknowledges. */
static int end_batch(void *opaque, hvs_err_t *err) {
    worker_t *w = opaque;
    size_t np;
    const int32_t *parts = hvs_stage_partitions(w->stage, &np);
    int rc;
    /* per partition: 1 behind, 2 being rebuilt */
    unsigned char state[HVS_MAX_PARTITIONS] = {0};
    for (size_t i = 0; i < np; i++) {
        if (parts[i] < 0 || parts[i] >= HVS_MAX_PARTITIONS)
            continue;
        /* readings still waiting to be read: the partition is behind, not idle (an idle advance
         * would make the pending readings of its buildings late; which building they are of is
         * unknown until read, so none of them is idle) */
        if (hvs_stage_input_lag(w->stage, w->topic_in, parts[i]) > 0) {
            hvs_watermark_touch(w->wm, parts[i], w->now);
            state[parts[i]] |= 1;
        }
        if (hvs_stage_rebuilding(w->stage, parts[i]))
            state[parts[i]] |= 2;
    }
    size_t n;
    agg_building_t **bs = agg_buildings(w->agg, &n);
    for (size_t i = 0; i < n; i++) {
        int32_t p = bs[i]->partition;
        unsigned char st = p >= 0 && p < HVS_MAX_PARTITIONS ? state[p] : 0;
        if (st & 1)
            agg_building_touch(w->agg, bs[i], w->now);
        /* an idle advance of a partition still being rebuilt closes replayed windows */
        w->quiet = (st & 2) != 0;
        rc = advance_building(w, bs[i], err);
        w->quiet = false;
        if (rc)
            return rc;
    }
    bs = agg_buildings(w->agg, &n);
    hvs_ms_t lag = 0;
    for (size_t i = 0; i < n; i++) {
        /* the watermark the state written with this batch's offsets holds (persist.h) */
        hvs_ms_t bwm = agg_building_wm(w->agg, bs[i], w->now);
        if (bwm != bs[i]->wm_saved) {
            bs[i]->wm_floor = bs[i]->wm_saved = bwm;
            bs[i]->persist_wm = true;
        }
        set_known(w, bs[i]);
        hvs_ms_t wm = hvs_watermark_partition(w->wm, bs[i]->partition, w->now);
        if (wm != HVS_MS_NONE && w->now - wm > lag)
            lag = w->now - wm;
        if ((rc = agg_revise(w->agg, bs[i], emit, w, err)))
            return rc == HVS_EINVAL ? HVS_ESTATE : rc;
    }
    hvs_metric_set(w->m_lag, (double)lag / 1000.0);
    /* Encoded now into the runner's state batch, applied by the runner only after the flush:
     * state in Redis must never claim a window the broker does not have. A failed flush ends the
     * process, so the prepared (and taken) changes are never needed again. */
    hvs_ms_t wms[HVS_MAX_PARTITIONS];
    for (size_t i = 0; i < np; i++)
        wms[i] = hvs_watermark_partition(w->wm, parts[i], w->now);
    return agg_persist_prepare(hvs_stage_state_batch(w->stage), w->agg, parts, wms, np, err);
}

static void stopping(void *opaque) {
    worker_t *w = opaque;
    agg_stats_t *st = agg_stats(w->agg);
    hvs_log_info(
        "aggregator",
        "stopping: accepted=%llu duplicates=%llu too_late=%llu conflicts=%llu emitted=%llu "
        "revisions=%llu windows_computed=%llu",
        (unsigned long long)st->accepted, (unsigned long long)st->duplicates,
        (unsigned long long)st->too_late, (unsigned long long)st->conflicts,
        (unsigned long long)st->emitted, (unsigned long long)st->revisions,
        (unsigned long long)st->windows_computed);
}

static const hvs_stage_def_t agg_stage = {
    .name = "aggregator",
    .begin_batch = begin_batch,
    .handle = handle,
    .end_batch = end_batch,
    .assigned = assigned,
    .revoked = revoked,
    .stopping = stopping,
};

/* ---- start-up ------------------------------------------------------------------------------- */

static int run(hvs_app_t *app, void *state, hvs_err_t *err) {
    worker_t *w = state;
    w->app = app;
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    w->topic_in = hvs_topic_name("readings.raw");
    w->topic_out[AGG_W15] = hvs_topic_name("aggregates.15m");
    w->topic_out[AGG_W60] = hvs_topic_name("aggregates.hourly");
    int rc;
    if ((rc = hvs_profile_load(app->cfg.profile, app->cfg.profile_file, err)))
        return rc;
    /* the profile's meter (a charger's 150 kW) where topology gives none; heat: the setting */
    if (hvs_profile_active()->meter_max_kw > 0)
        settings.max_heating_kw = hvs_profile_active()->meter_max_kw;
    w->dlq_unknown = strcmp(settings.unknown, "dlq") == 0;
    if (!w->dlq_unknown && strcmp(settings.unknown, "accept") != 0)
        return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                           "HVS_AGG_UNKNOWN must be accept or dlq, not '%s'", settings.unknown);
    agg_config_t ac = {
        .params = {settings.sample_ms,
                   settings.silence_ms,
                   settings.max_interp_ms,
                   settings.max_pair_ms,
                   {settings.max_heating_kw, settings.max_water_lph},
                   1.0},
        .grace = {settings.grace15_ms, settings.grace60_ms},
        .lateness = settings.lateness_ms,
        .ooo = settings.ooo_ms,
        .idle = settings.idle_ms,
    };
    const char *inputs[] = {w->topic_in};
    /* a lost partition is replayed from as far back as a reading can still change a window
     * (lateness) plus the longest counter interval examined before it */
    const char *outputs[] = {w->topic_out[AGG_W15], w->topic_out[AGG_W60], hvs_topic_name("alerts"),
                             NULL};
    hvs_stage_conf_t sc = {.inputs = inputs,
                           .outputs = outputs,
                           .ninputs = 1,
                           .settings = &stage_settings,
                           .rebuild_ms = settings.lateness_ms + settings.max_pair_ms};
    if ((rc = hvs_serde_new(app->cfg.schema_registry_url, &w->serde, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_READING, &w->dec, err)) ||
        (rc = hvs_reading_codec_new(w->serde, &w->codec, err)) ||
        (rc = agg_output_new(w->serde, w->topic_out[AGG_W15], &w->out[AGG_W15], err)) ||
        (rc = agg_output_new(w->serde, w->topic_out[AGG_W60], &w->out[AGG_W60], err)) ||
        (rc = hvs_redis_connect(app->cfg.redis_url, NULL, &w->redis, err)))
        return rc;
    sc.redis = w->redis;
    sc.state_ns = "agg"; /* a rebuild starts from no keys of its partition */
    if ((rc = hvs_stage_new(app, &agg_stage, &sc, w->serde, w, &w->stage, err)))
        return rc;
    if (!(w->rb = hvs_redis_batch_new()) || !(w->agg = agg_new(&ac)) ||
        !(w->wm = hvs_watermark_new(settings.ooo_ms, settings.idle_ms)))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "aggregator state");
    if ((rc = hvs_topology_new(&kc, w->serde, hvs_topic_name("topology"), &w->topo, err)) ||
        (rc = hvs_alerter_new(w->serde, hvs_stage_producer(w->stage), &w->alerter, err)))
        return rc;
    /* With HVS_AGG_UNKNOWN=dlq the whole topology must be known before the first reading. */
    hvs_topology_poll(w->topo, 30000);
    if (w->dlq_unknown && !hvs_topology_caught_up(w->topo))
        return hvs_err_set(err, HVS_ETIMEOUT, "topology", "topology not read within 30 s");
    hvs_metrics_t *ms = app->metrics;
    w->m_in = hvs_metrics_counter(ms, "hvs_aggregator_readings_total", "Reading messages consumed",
                                  NULL);
    w->m_dup = hvs_metrics_counter(ms, "hvs_aggregator_duplicates_total",
                                   "readings already stored (replays, duplicates)", NULL);
    w->m_emitted[AGG_W15] = hvs_metrics_counter(ms, "hvs_aggregator_windows_total",
                                                "aggregates published", "size=\"15m\"");
    w->m_emitted[AGG_W60] = hvs_metrics_counter(ms, "hvs_aggregator_windows_total",
                                                "aggregates published", "size=\"1h\"");
    w->m_revisions = hvs_metrics_counter(ms, "hvs_aggregator_revisions_total",
                                         "aggregates re-published because late data changed them",
                                         NULL);
    w->m_uncounted = hvs_metrics_counter(
        ms, "hvs_aggregator_uncounted_kwh_total",
        "heating energy refused as implausible jumps (first emissions of apartment hours), kWh",
        NULL);
    w->m_alerts = hvs_metrics_counter(ms, "hvs_aggregator_alerts_total",
                                      "DATA_QUALITY alerts raised (uncounted heating energy)",
                                      NULL);
    w->m_lag = hvs_metrics_gauge(ms, "hvs_aggregator_watermark_lag_seconds",
                                 "wall clock minus the oldest partition watermark", NULL);
    hvs_log_info("aggregator", "consuming %s -> %s, %s", w->topic_in, w->topic_out[AGG_W15],
                 w->topic_out[AGG_W60]);
    return hvs_stage_run(w->stage, err);
}

static void worker_free(void *state) {
    worker_t *w = state;
    hvs_alerter_destroy(w->alerter); /* borrows the stage's producer */
    hvs_topology_destroy(w->topo);
    hvs_stage_destroy(w->stage);
    hvs_redis_batch_destroy(w->rb);
    hvs_redis_destroy(w->redis);
    agg_output_destroy(w->out[0]);
    agg_output_destroy(w->out[1]);
    hvs_reading_codec_destroy(w->codec);
    hvs_decoder_destroy(w->dec);
    hvs_serde_destroy(w->serde);
    hvs_watermark_destroy(w->wm);
    agg_destroy(w->agg);
}

int main(int argc, char **argv) {
    static worker_t w;   /* large, zeroed, living for the process */
    hvs_app_keep_heap(); /* page faults from the fetch buffers were ~9 % of its CPU */
    hvs_cfg_section_t sections[] = {agg_section,
                                    *hvs_stage_settings_section(&stage_settings, "HVS_AGG_")};
    hvs_app_spec_t spec = {
        .worker = "aggregator",
        .summary = "readings.raw -> 15-minute and hourly aggregates, each window counted once",
        .usage =
            "Usage: hvs-aggregator [--lateness 48h] [--silence 1h] ... (every HVS_AGG_* is a flag)",
        .extra = sections,
        .nextra = 2,
        .state = &w,
        .cleanup = worker_free,
        .flag_prefix = "HVS_AGG_",
    };
    return hvs_app_main(&spec, argc, argv, run);
}
