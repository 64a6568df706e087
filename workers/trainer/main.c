/*
 * hvs-trainer - aggregates.hourly + weather.hourly (+ alerts.feedback, alerts, topology,
 * models) -> versioned, evaluated models on `models` (docs/design.md section 6).
 *
 * The loop: poll a batch -> add its hours and weather to the training window (history.c) and
 * its feedback to the labels (labels.c) -> write the changes to Redis -> commit -> run at most
 * one queued training job. Jobs are queued every HVS_TRAIN_EVERY of event time (the inputs'
 * newest hour, once caught up), when asked (POST /train?name=...), by a MODEL_DRIFT alert on
 * `alerts` naming a model (at most once per HVS_TRAIN_DRIFT_COOLDOWN of event time per name,
 * and not when a newer version than the drifting one exists), and for new scopes: after each
 * caught-up batch that brought data, a scope with no version yet that has become eligible
 * (one that cannot train yet is retried a day later). The names come from the fleet in
 * topology —
 *   forecast/global, anomaly-residual/global                 every building with history;
 *   forecast/archetype:<a>, anomaly-residual/archetype:<a>   the archetype's mature buildings
 *                                                            (HVS_TRAIN_MATURE_DAYS of data);
 *   forecast/building:<id>                                   once a building has
 *                                                            HVS_TRAIN_BUILDING_DAYS (6 months);
 *   refresh/<scope>                                          after each forecast/<scope> run that
 *                                                            was approved, from its backtest;
 *   anomaly-classifier/global                                once alerts.feedback holds
 *                                                            HVS_TRAIN_MIN_LABELS of each verdict.
 * Each run (train.c, refresh.c) is evaluated against its baseline and the serving champion and
 * published as the next version with the status its gate decided. One job per loop turn keeps
 * the consumer polling between runs (max.poll.interval.ms is raised to cover one run).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "history.h"
#include "hvs/alert.h"
#include "hvs/app.h"
#include "hvs/calendar.h"
#include "hvs/featstore.h"
#include "hvs/feedback.h"
#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/model_registry.h"
#include "hvs/profile.h"
#include "hvs/redis.h"
#include "hvs/rooms.h"
#include "hvs/serde.h"
#include "hvs/stage.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs/topology.h"
#include "hvs/vec.h"
#include "labels.h"
#include "refresh.h"
#include "train.h"

#define WINDOW_START_MIN (-2208988800000LL) /* 1900-01-01 */
#define WINDOW_START_MAX 32503680000000LL   /* 3000-01-01 */
#define HOUR HVS_MS_HOUR
#define MAX_HORIZONS 72

typedef struct settings {
    int64_t window_ms, apt_window_ms, every_ms, mature_ms, building_ms, folds, fold_days,
        min_train_days, per_hour, max_rows, rounds, max_depth, nthread, max_apartments,
        weather_wait_ms, max_record, top_k, min_labels, drift_cooldown_ms;
    double eta, max_wape, min_improvement;
    bool auto_approve, weather_standin;
    char *horizons, *tasks, *region;
} settings_t;

#define S(f) offsetof(settings_t, f)
static const hvs_cfg_entry_t tr_entries[] = {
    /* 1100 d: three winters (a year cost ~5 % WAPE on a real building, issue 18); the bound is
     * 10 years. memory ~8.7 MB, Redis ~2-10 MB per building-year (README "The window"). */
    {"HVS_TRAIN_WINDOW", HVS_CFG_DURATION, "1100d", 86400000, 3660.0 * 86400000, S(window_ms), 0,
     "training window: the hours kept (in Redis) and trained on"},
    {"HVS_TRAIN_APARTMENT_WINDOW", HVS_CFG_DURATION, "200d", 86400000, 3660.0 * 86400000,
     S(apt_window_ms), 0,
     "hours kept of each apartment series (the anomaly tasks' rows), at most the window"},
    {"HVS_TRAIN_EVERY", HVS_CFG_DURATION, "7d", 3600000, 31622400000.0, S(every_ms), 0,
     "retrain every model this often, in event time (the inputs' newest hour)"},
    {"HVS_TRAIN_MATURE_DAYS", HVS_CFG_DURATION, "30d", 0, 3660.0 * 86400000, S(mature_ms), 0,
     "history a building needs to join its archetype's models"},
    {"HVS_TRAIN_BUILDING_DAYS", HVS_CFG_DURATION, "180d", 0, 3660.0 * 86400000, S(building_ms), 0,
     "history a building needs for a forecast model of its own"},
    {"HVS_TRAIN_FOLDS", HVS_CFG_INT, "3", 1, 12, S(folds), 0,
     "backtest folds (held-out time, oldest first)"},
    {"HVS_TRAIN_FOLD_DAYS", HVS_CFG_INT, "14", 1, 90, S(fold_days), 0, "days per backtest fold"},
    {"HVS_TRAIN_MIN_TRAIN_DAYS", HVS_CFG_INT, "28", 7, 365, S(min_train_days), 0,
     "days of training data a fold needs before its test days"},
    {"HVS_TRAIN_HORIZONS", HVS_CFG_STRING, "1,2,3,4,6,9,12,15,18,21,24,27,30,33,36,42,48,60,72", 0,
     0, S(horizons), 0, "forecast horizons (hours) training rows are drawn from"},
    {"HVS_TRAIN_PER_HOUR", HVS_CFG_INT, "4", 1, MAX_HORIZONS, S(per_hour), 0,
     "horizons drawn per target hour (rows = hours x this)"},
    {"HVS_TRAIN_MAX_ROWS", HVS_CFG_INT, "400000", 1000, 100000000, S(max_rows), 0,
     "rows per run at most (thinned evenly in time beyond)"},
    {"HVS_TRAIN_MAX_APARTMENTS", HVS_CFG_INT, "5000", 0, 10000000, S(max_apartments), 0,
     "apartment series kept in the window at most (the anomaly models' sample)"},
    {"HVS_TRAIN_ROUNDS", HVS_CFG_INT, "600", 10, 100000, S(rounds), 0,
     "boosting rounds at most (early stopping)"},
    {"HVS_TRAIN_ETA", HVS_CFG_DOUBLE, "0.05", 0.001, 1, S(eta), 0, "learning rate"},
    {"HVS_TRAIN_MAX_DEPTH", HVS_CFG_INT, "6", 1, 16, S(max_depth), 0, "tree depth"},
    {"HVS_TRAIN_NTHREAD", HVS_CFG_INT, "2", 1, 256, S(nthread), 0, "XGBoost threads"},
    {"HVS_TRAIN_MAX_WAPE", HVS_CFG_DOUBLE, "0.6", 0, 10, S(max_wape), 0,
     "gate: a model above this held-out WAPE is rejected (0 = no limit)"},
    {"HVS_TRAIN_MIN_IMPROVEMENT", HVS_CFG_DOUBLE, "0.02", 0, 1, S(min_improvement), 0,
     "gate: relative WAPE gain over the champion for auto-approval"},
    {"HVS_TRAIN_AUTO_APPROVE", HVS_CFG_BOOL, "true", 0, 0, S(auto_approve), 0,
     "approve a clear improvement without a person (else PENDING_APPROVAL)"},
    {"HVS_TRAIN_TASKS", HVS_CFG_STRING, "forecast,anomaly-residual,anomaly-classifier,refresh", 0,
     0, S(tasks), 0,
     "tasks trained: forecast, anomaly-residual, anomaly-classifier, refresh (needs forecast)"},
    {"HVS_TRAIN_TOP_K", HVS_CFG_INT, "10", 1, 100000, S(top_k), 0,
     "daily alert budget the anomaly tasks are ranked by (precision@k, recall@k)"},
    {"HVS_TRAIN_MIN_LABELS", HVS_CFG_INT, "20", 1, 1000000, S(min_labels), 0,
     "anomaly-classifier trains once the window holds this many labelled fault days and false alarms"},
    {"HVS_TRAIN_DRIFT_COOLDOWN", HVS_CFG_DURATION, "1d", 0, 31622400000.0, S(drift_cooldown_ms), 0,
     "a MODEL_DRIFT alert retrains its model at most this often (event time)"},
    {"HVS_TRAIN_DEFAULT_REGION", HVS_CFG_STRING, "CH", 0, 0, S(region), 0,
     "calendar of buildings whose topology names no holiday region"},
    {"HVS_TRAIN_WEATHER_WAIT", HVS_CFG_DURATION, "2h", 0, 604800000, S(weather_wait_ms), 0,
     "as the features worker's HVS_FEAT_WEATHER_WAIT (anomaly rows' as_of)"},
    {"HVS_TRAIN_WEATHER_STANDIN", HVS_CFG_BOOL, "true", 0, 0, S(weather_standin), 0,
     "forecast training rows: an hour's observed weather stands in for the forecast missing at "
     "the row's as_of (a weather backfill has no forecasts), flagged; serving never does"},
    {"HVS_TRAIN_MAX_RECORD", HVS_CFG_INT, "4194304", 10000, HVS_TOPIC_MODELS_MAX_MESSAGE,
     S(max_record), 0,
     "largest ModelVersion record published, bytes (`models` takes up to 16 MiB; hvs-devbroker "
     "keeps ~5 MiB per partition, so there larger ones push older versions out): a larger model "
     "is not published, loudly"},
};
static settings_t settings;
static hvs_stage_settings_t stage_settings; /* HVS_TRAIN_BATCH, _FLUSH_TIMEOUT, _STALL_TIMEOUT */
static const hvs_cfg_section_t tr_section = {"trainer", tr_entries,
                                             sizeof tr_entries / sizeof tr_entries[0], &settings};

/* A queued training run: the task and name of one scope, over its buildings (NULL: all). */
typedef struct job {
    tr_task_t task;
    char name[200];
    char **ids;
    size_t nids;
    bool new_only;
} job_t;

/* Event time of the last run of a name (new scopes not yet trainable; drift-triggered runs). */
typedef struct tried {
    char name[200];
    hvs_ms_t at;
} tried_t;

typedef struct worker {
    hvs_app_t *app;
    const char *topic_agg, *topic_wx, *topic_models, *topic_alerts, *topic_feedback;
    hvs_serde_t *serde;
    hvs_decoder_t *dec_agg, *dec_wx, *dec_alert, *dec_fb;
    hvs_encoder_t *enc;
    hvs_redis_t *redis;
    hvs_redis_batch_t *rb;
    hvs_stage_t *stage;
    hvs_topology_t *topo;
    hvs_registry_t *reg;
    tr_history_t *hist;
    tr_labels_t labels;
    job_t *jobs; /* FIFO: jobs[head..njobs) */
    size_t njobs, capjobs, head;
    bool scheduled;        /* the queue holds a scheduled round: mark it done when empty */
    hvs_calendars_t *cals; /* the buildings' holiday regions */
    int horizons[MAX_HORIZONS];
    size_t nhorizons;
    bool task_on[TR_TASKS];
    hvs_ms_t newest, last_train;
    bool fresh_input;         /* inputs applied since the last look for new scopes */
    tried_t *tried, *drifted; /* new scopes that could not train yet; drift-triggered runs */
    size_t ntried, captried, ndrifted, capdrifted;
    char requested[160]; /* POST /train: a name, "all", or "" */
    pthread_mutex_t req_lock;
    hvs_metric_t *m_in, *m_skipped, *m_runs, *m_published, *m_rejected, *m_seconds, *m_labels,
        *m_drift, *m_no_area, *m_standin;
    char **no_area; /* buildings said to have no heated area, sorted: said once each */
    size_t nno_area, capno_area;
} worker_t;


/* ---- inputs --------------------------------------------------------------------------------- */

static void request_drift(worker_t *w, const char *model, hvs_ms_t at);

/* Whether an alert id's type is about an apartment's heating (what the anomaly tasks find):
 * ANOMALY and the rules; not data quality, drift or forecast confidence. */
static bool fault_alert(const char *id) {
    const char *t = id ? strrchr(id, '#') : NULL;
    return t && (!strcmp(t + 1, "ANOMALY") || !strncmp(t + 1, "RULE_", 5));
}

/* A technician's verdict on an apartment's alert labels its day. UNSURE is an acknowledgement
 * (the alert is being investigated, design §9): it carries no verdict and changes no label, as
 * the alerter does not let it reopen a resolved alert.
 * The building id was checked by judge; the record is read by the one Feedback decoder
 * (feedback.h), so a verdict without an alert id or technician is refused with its reason.
 * HVS_EINVAL (why filled) dead-letters the record. */
static int handle_feedback(worker_t *w, avro_value_t *v, const char *b, hvs_err_t *why) {
    hvs_feedback_t fb;
    if (hvs_feedback_read(v, &fb, why))
        return HVS_EINVAL; /* missing_alert_id, missing_technician_id, bad_label, ... */
    const char *id = fb.alert_id, *apt = fb.apartment_id;
    if (apt && hvs_id_check(apt, "apartment_id", why))
        return HVS_EINVAL;
    if (!apt || !fault_alert(id) || fb.label == HVS_FEEDBACK_UNSURE)
        return 0; /* a building's or a system's alert, or an acknowledgement: no label */
    tr_verdict_t vd = fb.label == HVS_FEEDBACK_TRUE_POSITIVE ? TR_LABEL_POSITIVE
                                                             : TR_LABEL_NEGATIVE;
    int rc = tr_labels_put(&w->labels, id, b, apt, tr_labels_alert_day(id), vd, fb.labelled_at);
    if (rc == HVS_ENOMEM)
        return hvs_err_set(why, HVS_ENOMEM, "oom", "label of alert %.100s", id);
    if (rc < 0)
        return hvs_err_set(why, HVS_EINVAL, "bad_alert_id",
                           "alert_id \"%.100s\" has no date or is too long to label", id);
    if (rc == 1) {
        hvs_metric_inc(w->m_labels);
        w->fresh_input = true; /* enough labels may make the classifier trainable */
    }
    return 0;
}

/* A MODEL_DRIFT alert names the drifting model as "<name>:<version>". */
static void handle_alert(worker_t *w, avro_value_t *v) {
    int type = -1;
    avro_value_t f;
    if (avro_value_get_by_name(v, "type", &f, NULL) == 0)
        avro_value_get_enum(&f, &type);
    const char *model = hvs_serde_field_str(v, "model");
    if (type == HVS_ALERT_MODEL_DRIFT && model)
        request_drift(w, model, hvs_serde_field_long(v, "updated_at"));
}

/* One record of a grouped input. Whatever cannot be used is bad input of this worker: HVS_EINVAL
 * with the reason sends it to its topic's dead-letter topic (stage.h), logged (rate-limited) and
 * counted there and in hvs_trainer_skipped_total. The features worker dead-letters the same bad
 * aggregates and weather: each dead letter names its worker, and a record the trainer could not
 * use must be findable whatever the other worker did with it. */
static int judge(worker_t *w, const rd_kafka_message_t *m, hvs_err_t *why) {
    if (!m->payload)
        return hvs_err_set(why, HVS_EINVAL, "empty_value", "message without a value");
    const char *topic = rd_kafka_topic_name(m->rkt);
    bool agg = strcmp(topic, w->topic_agg) == 0, fb = strcmp(topic, w->topic_feedback) == 0,
         al = strcmp(topic, w->topic_alerts) == 0;
    avro_value_t *v;
    if (hvs_decoder_decode(agg  ? w->dec_agg
                           : fb ? w->dec_fb
                           : al ? w->dec_alert
                                : w->dec_wx,
                           m->payload, m->len, &v, why))
        return HVS_EINVAL; /* the decoder's reason: truncated, bad_magic, ... */
    if (al) {
        handle_alert(w, v); /* read for MODEL_DRIFT only; whatever else it says is not ours */
        return 0;
    }
    const char *b = hvs_serde_field_str(v, "building_id");
    if (!b)
        return hvs_err_set(why, HVS_EINVAL, HVS_ID_R_BAD, "building_id is missing");
    int rc;
    if ((rc = hvs_id_check(b, "building_id", why)) || (rc = hvs_id_check_key(m, b, why)))
        return rc;
    if (fb)
        return handle_feedback(w, v, b, why);
    if (agg) {
        const char *apt = hvs_serde_field_str(v, "apartment_id");
        if (apt && hvs_id_check(apt, "apartment_id", why))
            return HVS_EINVAL;
        int64_t ws = hvs_serde_field_long(v, "window_start"),
                size = hvs_serde_field_long(v, "window_size_ms");
        if (size != HOUR || ws % HOUR)
            return hvs_err_set(why, HVS_EINVAL, "not_hourly",
                               "window of %lld ms at %lld is not an hour on the hour",
                               (long long)size, (long long)ws);
        if (ws < WINDOW_START_MIN || ws > WINDOW_START_MAX) /* stored by day: days it can name */
            return hvs_err_set(why, HVS_EINVAL, "bad_window",
                               "window start %lld ms is outside years 1900..3000", (long long)ws);
        hvs_feat_hour_t h = {ws,
                             hvs_serde_field_double(v, "heating_kwh"),
                             NAN, /* hot water: no feature reads it (features.h) */
                             hvs_serde_field_double(v, "room_temp_mean_c"),
                             hvs_serde_field_double(v, "setpoint_mean_c"),
                             hvs_serde_field_double(v, "comfort_gap_mean_c"),
                             (uint32_t)hvs_serde_field_long(v, "revision"),
                             NAN,
                             NAN,
                             0,
                             0};
        hvs_room_t
            rooms[HVS_ROOMS_MAX]; /* the rooms' features, as the features worker reads them */
        int nrooms = 0;
        if (apt && hvs_rooms_read(v, rooms, HVS_ROOMS_MAX, &nrooms, why))
            return HVS_EINVAL;
        hvs_rooms_summarize(rooms, nrooms, &h);
        hvs_feat_hour_round(&h); /* the numbers the features worker keeps */
        if (tr_history_put_hour(w->hist, b, apt ? apt : HVS_FS_BUILDING, &h) < 0)
            return hvs_err_set(why, HVS_ENOMEM, "oom", "history of %s", b);
        if (ws + HOUR > w->newest)
            w->newest = ws + HOUR;
    } else {
        int64_t hour = hvs_serde_field_long(v, "hour");
        avro_value_t f;
        int kind = 1;
        if (avro_value_get_by_name(v, "kind", &f, NULL) == 0)
            avro_value_get_enum(&f, &kind);
        hvs_feat_wx_t rec = {hvs_serde_field_long(v, "issued_at"),
                             kind == 0,
                             hvs_serde_field_double(v, "temperature_c"),
                             hvs_serde_field_double(v, "relative_humidity_pct"),
                             hvs_serde_field_double(v, "cloud_cover_pct"),
                             hvs_serde_field_double(v, "shortwave_radiation_wm2"),
                             hvs_serde_field_double(v, "wind_speed_ms")};
        if (hour % HOUR)
            return hvs_err_set(why, HVS_EINVAL, "not_hourly", "hour %lld is not on the hour",
                               (long long)hour);
        if (hour < WINDOW_START_MIN || hour > WINDOW_START_MAX) /* stored by day, as the series */
            return hvs_err_set(why, HVS_EINVAL, "bad_window",
                               "weather hour %lld ms is outside years 1900..3000", (long long)hour);
        tr_history_put_weather(w->hist, b, hour, &rec);
    }
    hvs_metric_inc(w->m_in);
    w->fresh_input = true;
    return 0;
}

static int handle(void *opaque, const rd_kafka_message_t *m, hvs_err_t *why) {
    worker_t *w = opaque;
    int rc = judge(w, m, why);
    if (rc == HVS_EINVAL)
        hvs_metric_inc(w->m_skipped); /* kept: what the trainer could not use, whatever topic */
    return rc;
}

/* ---- what training needs of topology -------------------------------------------------------- */


/* The forecast rows of a building without a heated area (hvs_building_area) were skipped: log
 * and count it once per building, not once per run or fold. */
static void no_area(void *opaque, const char *id) {
    worker_t *w = opaque;
    size_t pos;
    bool found;
    HVS_VEC_BSEARCH_STR(w->no_area, w->nno_area, , id, pos, found);
    if (found)
        return;
    char **grown = hvs_vec_grow(w->no_area, &w->capno_area, w->nno_area + 1, sizeof *grown, 16);
    char *copy = grown ? strdup(id) : NULL;
    if (grown)
        w->no_area = grown;
    if (!copy)
        return; /* out of memory: said again next time */
    hvs_vec_open(w->no_area, w->nno_area, pos, sizeof *w->no_area);
    w->no_area[pos] = copy;
    w->nno_area++;
    const hvs_building_t *b = hvs_topology_find(w->topo, id);
    hvs_log_warn("trainer",
                 "building %s: not forecastable: no heated area (heated_area_m2 absent%s): its "
                 "forecast rows are skipped (hvs_trainer_buildings_skipped_total)",
                 id,
                 !b              ? " and not in topology"
                 : b->napts == 0 ? ", no apartments"
                                 : ", and not every apartment has area_m2");
    hvs_metric_inc(w->m_no_area);
}

static int building_info(void *opaque, const char *id, tr_building_info_t *out) {
    worker_t *w = opaque;
    const hvs_building_t *b = hvs_topology_find(w->topo, id);
    *out = (tr_building_info_t){hvs_building_area(b), b ? b->commissioning : HVS_MS_NONE,
                                hvs_calendars_get(w->cals, b ? b->holiday_region : NULL, id),
                                no_area};
    return 0;
}

/* ---- training ------------------------------------------------------------------------------- */

/* The registry's versions are sorted by name then version: a binary search, not a scan (the
 * new-scopes pass asks this for every scope of the fleet after each caught-up batch). */
static int next_version(worker_t *w, const char *name) {
    size_t n, pos;
    bool found;
    const hvs_model_info_t *v = hvs_registry_versions(w->reg, &n);
    HVS_VEC_BSEARCH_STR(v, n, .name, name, pos, found);
    if (!found)
        return 1;
    while (pos + 1 < n && strcmp(v[pos + 1].name, name) == 0)
        pos++;
    return v[pos].version + 1;
}

static tr_config_t run_config(worker_t *w) {
    tr_config_t c = {.folds = (int)settings.folds,
                     .fold_days = (int)settings.fold_days,
                     .min_train_days = (int)settings.min_train_days,
                     .horizons = w->horizons,
                     .nhorizons = w->nhorizons,
                     .per_hour = (int)settings.per_hour,
                     .max_rows = (size_t)settings.max_rows,
                     .max_wape = settings.max_wape,
                     .min_improvement = settings.min_improvement,
                     .auto_approve = settings.auto_approve,
                     .monotone = hvs_profile_active()->monotone, /* heat's physics */
                     .weather_wait = settings.weather_wait_ms,
                     .leak_sample = 200,
                     .labels = &w->labels,
                     .top_k = (int)settings.top_k,
                     .min_labels = (size_t)settings.min_labels,
                     .weather_standin = settings.weather_standin};
    c.xgb = (hvs_train_params_t){.rounds = (int)settings.rounds,
                                 .eta = settings.eta,
                                 .max_depth = (int)settings.max_depth,
                                 .nthread = (int)settings.nthread,
                                 .seed = 3};
    return c;
}

/* Publish a run's result as the next version of its name; *version gets it (0: not published:
 * its record is too large, which is logged and counted, not an error). */
static int publish(worker_t *w, const tr_result_t *r, const tr_config_t *c, int *version,
                   hvs_err_t *err) {
    *version = 0;
    hvs_metric_add(w->m_seconds, r->seconds);
    tr_record_t rec;
    int v = next_version(w, r->name);
    int rc = tr_record_build(r, v, hvs_time_now_ms(), c, &rec, err);
    const void *buf;
    size_t len;
    char key[200];
    hvs_registry_key(key, sizeof key, r->name, v);
    if (rc == 0)
        rc = hvs_registry_encode(w->serde, w->enc, &rec.rec, &buf, &len, err);
    if (rc == 0 && len > (size_t)settings.max_record) {
        /* the compressed model does not fit a message: say so, publish nothing, keep going */
        hvs_log_error("trainer",
                      "%s v%d not published: its record is %zu bytes, above HVS_TRAIN_MAX_RECORD "
                      "%lld (fewer rounds or shallower trees make smaller models)",
                      r->name, v, len, (long long)settings.max_record);
        hvs_metric_inc(w->m_rejected);
        tr_record_fini(&rec);
        return 0;
    }
    if (rc == 0)
        rc = hvs_producer_send(hvs_stage_producer(w->stage), w->topic_models, RD_KAFKA_PARTITION_UA,
                               key, strlen(key), buf, len, err);
    if (rc == 0)
        rc = hvs_producer_flush(hvs_stage_producer(w->stage), 30000, err);
    tr_record_fini(&rec);
    if (rc)
        return rc;
    *version = v;
    hvs_metric_inc(r->status == HVS_MODEL_REJECTED ? w->m_rejected : w->m_published);
    hvs_log_fields(HVS_LOG_INFO, "trainer", "model version published", HVS_LFS("name", r->name),
                   HVS_LFI("version", v), HVS_LFS("status", hvs_model_status_name(r->status)),
                   HVS_LFS("reason", r->reason));
    hvs_log_info(
        "trainer",
        "%s v%d: WAPE %.4f (baseline %.4f), precision@k %.3f (chance %.3f)%s, %zu rows, %.1f s",
        r->name, v, r->metrics.wape, r->naive.wape, r->metrics.precision_at_k,
        r->naive.precision_at_k, r->has_champion ? ", champion compared" : "", r->rows, r->seconds);
    /* see the new version (and its status) before the next run numbers its own */
    for (int i = 0; i < 50 && next_version(w, r->name) <= v; i++)
        hvs_registry_poll(w->reg, 100);
    return 0;
}

/* refresh/<scope> from a forecast/<scope> run's backtest. */
static int run_refresh(worker_t *w, const tr_result_t *f, int fversion, const tr_config_t *c,
                       hvs_err_t *err) {
    char name[200];
    snprintf(name, sizeof name, "refresh/%s", strchr(f->name, '/') + 1);
    hvs_model_ref_t *champ = hvs_registry_acquire(w->reg, name);
    tr_result_t r;
    int rc = tr_refresh_train(f, name, c, champ, &r, err);
    hvs_registry_release(champ);
    hvs_metric_inc(w->m_runs);
    snprintf(r.baseline, sizeof r.baseline, "%s:%d", f->name, fversion);
    int v;
    if (rc == HVS_ESTATE) {
        hvs_log_info("trainer", "%s not trained: %s", name, err->msg);
        rc = 0;
    } else if (rc == 0) {
        rc = publish(w, &r, c, &v, err);
    }
    tr_result_fini(&r);
    return rc;
}

static int run_one(worker_t *w, tr_task_t task, const char *name, const char *const *ids,
                   size_t nids, hvs_err_t *err) {
    tr_config_t c = run_config(w);
    bool refresh = task == TR_FORECAST && w->task_on[TR_REFRESH];
    c.keep_eval = refresh;
    hvs_ms_t to = hvs_time_window_start(w->newest, HOUR), from = to - settings.window_ms;
    hvs_model_ref_t *champ = hvs_registry_acquire(w->reg, name);
    tr_result_t r;
    int rc = tr_train(w->hist, task, name, ids, nids, from, to, building_info, w, &c, champ, &r,
                      err);
    hvs_registry_release(champ);
    hvs_metric_inc(w->m_runs);
    if (rc == 0 && r.standin_rows) { /* a backfill's history: say how much of it */
        hvs_metric_add(w->m_standin, (double)r.standin_rows);
        hvs_log_info("trainer",
                     "%s: %zu of %zu training rows read observed weather standing in for a "
                     "forecast missing at their as_of (a weather backfill; "
                     "HVS_TRAIN_WEATHER_STANDIN)",
                     name, r.standin_rows, r.rows);
    }
    int v = 0;
    if (rc == HVS_ESTATE) { /* not enough data yet: nothing to publish, not a failure */
        hvs_log_info("trainer", "%s not trained: %s", name, err->msg);
        rc = 0;
    } else if (rc == 0 && (rc = publish(w, &r, &c, &v, err)) == 0 && v && refresh) {
        /* the refresher corrects the serving baseline: coefficients fitted on the errors of a
           version that does not serve would correct the wrong model */
        if (r.status == HVS_MODEL_APPROVED)
            rc = run_refresh(w, &r, v, &c, err);
        else
            hvs_log_info("trainer", "refresh/%s not fitted: %s v%d is %s, not serving",
                         strchr(name, '/') + 1, name, v, hvs_model_status_name(r.status));
    }
    tr_result_fini(&r);
    return rc;
}

/* A scope that had no version and could not train yet (too little data) waits a day of event
 * time before the next attempt: looking for new scopes happens after every caught-up batch. */
#define RETRY_NEW_SCOPE_MS HVS_MS_DAY

static tried_t *tried_find(tried_t *v, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

/* Remember the event time a name was run at (new scopes; drift-triggered runs). */
static void tried_note(tried_t **v, size_t *n, size_t *cap, const char *name, hvs_ms_t at) {
    tried_t *t = tried_find(*v, *n, name);
    if (!t) {
        tried_t *g = hvs_vec_grow(*v, cap, *n + 1, sizeof *g, 8);
        if (!g)
            return; /* it may run again sooner: wasteful, not wrong */
        *v = g;
        t = &g[(*n)++];
        snprintf(t->name, sizeof t->name, "%s", name);
    }
    t->at = at;
}

/* Whether a run of `name` is wanted: `only` names it ("" or "all": every scope; refresh/<scope>
 * means its forecast, which it is fitted from), or, in the new-scopes pass, it has no version yet
 * and was not tried within the last day. */
static bool wanted(worker_t *w, const char *name, const char *only, bool new_only) {
    if (new_only) {
        const tried_t *t = tried_find(w->tried, w->ntried, name);
        return next_version(w, name) == 1 && (!t || w->newest - t->at >= RETRY_NEW_SCOPE_MS);
    }
    if (!strncmp(only, "refresh/", 8) && !strncmp(name, "forecast/", 9))
        return !strcmp(only + 8, name + 9);
    return !only[0] || !strcmp(only, "all") || !strcmp(only, name);
}

static void job_free(job_t *j) {
    for (size_t i = 0; i < j->nids; i++)
        free(j->ids[i]);
    free(j->ids);
}

static int enqueue(worker_t *w, tr_task_t task, const char *name, const char *const *ids,
                   size_t nids, bool new_only) {
    for (size_t i = w->head; i < w->njobs; i++)
        if (strcmp(w->jobs[i].name, name) == 0)
            return 0;
    if (w->head == w->njobs)
        w->head = w->njobs = 0;
    job_t *g = hvs_vec_grow(w->jobs, &w->capjobs, w->njobs + 1, sizeof *g, 16);
    if (!g)
        return HVS_ENOMEM;
    w->jobs = g;
    job_t j = {task, "", NULL, 0, new_only};
    snprintf(j.name, sizeof j.name, "%s", name);
    if (nids && !(j.ids = calloc(nids, sizeof *j.ids)))
        return HVS_ENOMEM;
    for (; j.nids < nids; j.nids++)
        if (!(j.ids[j.nids] = strdup(ids[j.nids]))) {
            job_free(&j);
            return HVS_ENOMEM;
        }
    w->jobs[w->njobs++] = j;
    return 0;
}

static const hvs_building_t *by_archetype_of; /* qsort's context: the loop's thread only */

static int cmp_archetype(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(by_archetype_of[x].archetype, by_archetype_of[y].archetype);
    return c ? c : (x > y) - (x < y); /* the topology's order within an archetype */
}

/* Queue every model wanted (see wanted()): the fleet's scopes for each task. */
static int queue_scopes(worker_t *w, const char *only, bool new_only, hvs_err_t *err) {
    size_t nb;
    const hvs_building_t *bs = hvs_topology_buildings(w->topo, &nb);
    const char **ids = calloc(nb ? nb : 1, sizeof *ids);
    size_t *order = malloc((nb ? nb : 1) * sizeof *order);
    if (!ids || !order) {
        free(ids), free(order);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "scopes");
    }
    for (size_t i = 0; i < nb; i++)
        order[i] = i;
    by_archetype_of = bs;
    qsort(order, nb, sizeof *order, cmp_archetype);
    int rc = 0;
    char name[200];
    for (int t = 0; t <= TR_ANOMALY_RESIDUAL && rc == 0; t++) {
        if (!w->task_on[t])
            continue;
        snprintf(name, sizeof name, "%s/global", tr_task_name((tr_task_t)t));
        if (wanted(w, name, only, new_only))
            rc = enqueue(w, (tr_task_t)t, name, NULL, 0, new_only);
        /* archetypes: their mature buildings (runs of the archetype-sorted order) */
        for (size_t lo = 0, hi; lo < nb && rc == 0; lo = hi) {
            const char *arch = bs[order[lo]].archetype;
            for (hi = lo; hi < nb && !strcmp(bs[order[hi]].archetype, arch); hi++)
                ;
            if (!arch[0])
                continue;
            snprintf(name, sizeof name, "%s/archetype:%s", tr_task_name((tr_task_t)t), arch);
            if (!wanted(w, name, only, new_only))
                continue;
            size_t n = 0;
            for (size_t k = lo; k < hi; k++) {
                const hvs_building_t *b = &bs[order[k]];
                const tr_building_t *hb = tr_history_building(w->hist, b->id, false);
                if (hb && hb->first != HVS_MS_NONE && hb->last - hb->first >= settings.mature_ms)
                    ids[n++] = b->id;
            }
            if (n)
                rc = enqueue(w, (tr_task_t)t, name, ids, n, new_only);
        }
        /* buildings of their own (forecast) */
        for (size_t i = 0; t == TR_FORECAST && i < nb && rc == 0; i++) {
            const tr_building_t *hb = tr_history_building(w->hist, bs[i].id, false);
            snprintf(name, sizeof name, "forecast/building:%s", bs[i].id);
            if (hb && hb->first != HVS_MS_NONE && hb->last - hb->first >= settings.building_ms &&
                wanted(w, name, only, new_only)) {
                const char *one[] = {bs[i].id};
                rc = enqueue(w, TR_FORECAST, name, one, 1, new_only);
            }
        }
    }
    /* the classifier: the fleet's feedback, once there is any */
    snprintf(name, sizeof name, "anomaly-classifier/global");
    if (rc == 0 && w->task_on[TR_ANOMALY_CLASSIFIER] && w->labels.n &&
        wanted(w, name, only, new_only))
        rc = enqueue(w, TR_ANOMALY_CLASSIFIER, name, NULL, 0, new_only);
    free(ids);
    free(order);
    return rc ? hvs_err_set(err, HVS_ENOMEM, "oom", "training queue") : 0;
}

/* The oldest queued job, run and dropped. */
static int run_next_job(worker_t *w, hvs_err_t *err) {
    job_t j = w->jobs[w->head++];
    if (j.new_only)
        hvs_log_info("trainer", "training %s (a new scope: no version yet)", j.name);
    int rc = run_one(w, j.task, j.name, (const char *const *)j.ids, j.nids, err);
    if (rc == 0 && j.new_only && next_version(w, j.name) == 1)
        tried_note(&w->tried, &w->ntried, &w->captried, j.name, w->newest);
    job_free(&j);
    return rc;
}

/* MODEL_DRIFT on "<name>:<version>": retrain that name unless a newer version serves already
 * or it was drift-retrained within the cooldown (event time). A newer version that is pending
 * or was rejected does not count: the drifting one still serves. */
static void request_drift(worker_t *w, const char *model, hvs_ms_t at) {
    const char *colon = strrchr(model, ':');
    char name[200];
    if (!colon || colon == model || (size_t)(colon - model) >= sizeof name)
        return;
    snprintf(name, sizeof name, "%.*s", (int)(colon - model), model);
    int version = atoi(colon + 1);
    hvs_model_ref_t *serving = hvs_registry_acquire(w->reg, name);
    int sv = serving ? serving->version : 0;
    hvs_registry_release(serving);
    if (sv > version) {
        hvs_log_info("trainer", "MODEL_DRIFT on %s: v%d serves now, no retraining", model, sv);
        return;
    }
    const tried_t *t = tried_find(w->drifted, w->ndrifted, name);
    if (t && at - t->at < settings.drift_cooldown_ms) {
        hvs_log_info(
            "trainer",
            "MODEL_DRIFT on %s: retrained for drift %.1f h ago (event time), within the cooldown",
            model, (double)(at - t->at) / HOUR);
        return;
    }
    hvs_err_t e = {0};
    size_t before = w->njobs - w->head; /* the queue restarts at 0 when it was empty */
    if (queue_scopes(w, name, false, &e) == 0 && w->njobs - w->head > before) {
        tried_note(&w->drifted, &w->ndrifted, &w->capdrifted, name, at);
        hvs_metric_inc(w->m_drift);
        hvs_log_info("trainer", "MODEL_DRIFT on %s: retraining %s", model, name);
    }
}

static int respond(hvs_http_response_t *resp, int status, const char *text) {
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = strdup(text);
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    return resp->body ? 0 : -1;
}

/* POST /train?name=<model name or all>: the query arrives percent-encoded again by the server
 * (names hold '/' and ':'), so it is decoded here. */
static int http_train(void *opaque, const char *method, const char *path, const char *query,
                      const char *body, size_t body_len, hvs_http_response_t *resp) {
    (void)path, (void)body, (void)body_len;
    worker_t *w = opaque;
    if (strcmp(method, "POST") != 0)
        return respond(resp, 405, "{\"error\":\"POST /train?name=<model|all>\"}\n");
    const char *q = query ? strstr(query, "name=") : NULL;
    char name[160] = "all";
    if (q) {
        size_t n = strcspn(q + 5, "&"), o = 0;
        if (n == 0 || n >= sizeof name)
            return respond(resp, 400, "{\"error\":\"name empty or too long\"}\n");
        for (size_t i = 0; i < n; i++) {
            char c = q[5 + i];
            if (c == '%' && i + 2 < n + 1) {
                char hex[3] = {q[6 + i], q[7 + i], 0};
                c = (char)strtol(hex, NULL, 16);
                i += 2;
            } else if (c == '+') {
                c = ' ';
            }
            if ((unsigned char)c < 0x20 || c == '"' || c == '\\')
                return respond(resp, 400, "{\"error\":\"bad character in name\"}\n");
            name[o++] = c;
        }
        name[o] = 0;
    }
    pthread_mutex_lock(&w->req_lock);
    snprintf(w->requested, sizeof w->requested, "%s", name);
    pthread_mutex_unlock(&w->req_lock);
    char out[256];
    snprintf(out, sizeof out, "{\"queued\":\"%s\"}\n", name);
    return respond(resp, 202, out);
}

/* ---- the loop ------------------------------------------------------------------------------- */

static int parse_lists(worker_t *w, hvs_err_t *err) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", settings.horizons);
    for (char *s = NULL, *t = strtok_r(buf, ", ", &s); t; t = strtok_r(NULL, ", ", &s)) {
        int h = atoi(t);
        if (h < 1 || h > MAX_HORIZONS || w->nhorizons == MAX_HORIZONS)
            return hvs_err_set(err, HVS_ECONFIG, "bad_value", "HVS_TRAIN_HORIZONS: %s (1..%d)", t,
                               MAX_HORIZONS);
        w->horizons[w->nhorizons++] = h;
    }
    snprintf(buf, sizeof buf, "%s", settings.tasks);
    const hvs_profile_t *prof = hvs_profile_active();
    char off[256] = "";
    size_t on = 0;
    for (char *s = NULL, *t = strtok_r(buf, ", ", &s); t; t = strtok_r(NULL, ", ", &s)) {
        int k = tr_task_parse(t);
        if (k < 0)
            return hvs_err_set(err, HVS_ECONFIG, "bad_value", "HVS_TRAIN_TASKS: no task %s", t);
        /* tr_task_t numbers the tasks as task_rows.h does */
        if (!hvs_profile_task_on(prof, k)) {
            size_t n = strlen(off);
            snprintf(off + n, sizeof off - n, "%s%s", n ? ", " : "", t);
            continue;
        }
        on += !w->task_on[k];
        w->task_on[k] = true;
    }
    if (off[0]) /* once, at start: the profile decides what its quantity's models can be */
        hvs_log_info("trainer", "profile %s: task(s) %s not trained (not the profile's tasks)",
                     prof->name, off);
    if (on == 0)
        return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                           "HVS_TRAIN_TASKS: none of %s is a task of profile %s", settings.tasks,
                           prof->name);
    if (w->task_on[TR_REFRESH] && !w->task_on[TR_FORECAST])
        return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                           "HVS_TRAIN_TASKS: refresh is fitted from forecast runs");
    return w->nhorizons ? 0
                        : hvs_err_set(err, HVS_ECONFIG, "bad_value", "HVS_TRAIN_HORIZONS is empty");
}

/* ---- the stage's callbacks ------------------------------------------------------------------ */

static int begin_batch(void *opaque, hvs_err_t *err) {
    worker_t *w = opaque;
    hvs_topology_poll(w->topo, 0);
    hvs_registry_poll(w->reg, 0);
    return 0;
}

/* The window and the labels the batch changed, before its offsets are committed. */
static int write_state(void *opaque, hvs_err_t *err) {
    worker_t *w = opaque;
    hvs_redis_batch_t *rb = hvs_stage_state_batch(w->stage); /* applied by the runner */
    int rc = tr_history_save(w->hist, rb, err);
    if (rc == 0)
        rc = tr_labels_save(&w->labels, rb,
                            w->newest ? w->newest - settings.window_ms : HVS_MS_NONE, err);
    return rc;
}

/* Between batches: requested, scheduled and new-scope runs are queued, and one runs per turn so
 * the consumer polls (and stays in its group) between runs. */
static int after_batch(void *opaque, const hvs_stage_batch_t *b, hvs_err_t *err) {
    worker_t *w = opaque;
    int rc = 0;
    char req[160];
    pthread_mutex_lock(&w->req_lock);
    snprintf(req, sizeof req, "%s", w->requested);
    w->requested[0] = 0;
    pthread_mutex_unlock(&w->req_lock);
    if (req[0]) {
        hvs_log_info("trainer", "training %s (requested)", req);
        rc = queue_scopes(w, req, false, err);
    }
    /* scheduled runs wait until the inputs are caught up: a backfill trains once, at its end.
     * An idle poll while the member holds no partition reports no lag: right after a restart
     * (the window loaded from Redis) or a lost assignment (a broker outage past the session
     * timeout) the group has not handed it the inputs yet, so that is not caught up - it
     * trained every scope on the window as far as the last commit (test_tr_fault_it). */
    size_t nparts;
    hvs_stage_partitions(w->stage, &nparts);
    bool caught_up = w->newest != 0 && nparts > 0 && b->caught_up;
    bool idle = w->head == w->njobs;
    if (rc == 0 && idle && !w->scheduled && caught_up &&
        w->newest - w->last_train >= settings.every_ms) {
        hvs_log_info("trainer", "training every model (scheduled)");
        w->scheduled = true;
        w->fresh_input = false;
        rc = queue_scopes(w, "", false, err);
    } else if (rc == 0 && idle && caught_up && w->fresh_input) {
        /* between schedules: a scope that became eligible (a building reached 6 months, an
           archetype its first mature building, enough feedback) trains now */
        w->fresh_input = false;
        rc = queue_scopes(w, "", true, err);
    }
    if (rc == 0 && w->head < w->njobs)
        rc = run_next_job(w, err);
    if (rc == 0 && w->scheduled && w->head == w->njobs) {
        w->scheduled = false;
        w->last_train = w->newest;
        char v[32];
        snprintf(v, sizeof v, "%lld", (long long)w->last_train);
        rc = hvs_redis_command(w->redis, NULL, err, "SET hvs:tr:last %s", v);
    }
    return rc;
}

static const hvs_stage_def_t tr_stage = {
    .name = "trainer",
    .begin_batch = begin_batch,
    .handle = handle,
    .write_state = write_state,
    .after_batch = after_batch,
};

/* ---- start-up ------------------------------------------------------------------------------- */

static int run(hvs_app_t *app, void *state, hvs_err_t *err) {
    worker_t *w = state;
    w->app = app;
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    w->topic_agg = hvs_topic_name("aggregates.hourly");
    w->topic_wx = hvs_topic_name("weather.hourly");
    w->topic_models = hvs_topic_name("models");
    w->topic_alerts = hvs_topic_name("alerts");
    w->topic_feedback = hvs_topic_name("alerts.feedback");
    pthread_mutex_init(&w->req_lock, NULL);
    int rc = hvs_profile_load(app->cfg.profile, app->cfg.profile_file, err);
    if (rc || (rc = parse_lists(w, err)))
        return rc; /* the profile first: rows and models follow it */
    /* model records are up to HVS_TOPIC_MODELS_MAX_MESSAGE (the topic is created with it) */
    static const char *const pprops[] = {"message.max.bytes", HVS_TOPIC_MODELS_MAX_MESSAGE_STR,
                                         NULL};
    /* a training run pauses polling for up to minutes: the group must not take the partitions
     * away (the operator's own HVS_KAFKA_MAX_POLL_INTERVAL_MS, if any, comes later and wins) */
    static const char *const cprops[] = {"max.poll.interval.ms", "1800000", NULL};
    const char *inputs[] = {w->topic_agg, w->topic_wx, w->topic_feedback, w->topic_alerts};
    /* a lost partition is replayed over the whole training window */
    const char *outputs[] = {w->topic_models, w->topic_alerts, NULL};
    hvs_stage_conf_t sc = {.rebuild_ms = settings.window_ms,
                           .outputs = outputs,
                           .inputs = inputs,
                           .ninputs = 4,
                           .settings = &stage_settings,
                           .consumer_props = cprops,
                           .producer_props = pprops};
    hvs_registry_opts_t ro = {.load_models = true};
    if ((rc = hvs_serde_new(app->cfg.schema_registry_url, &w->serde, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_AGGREGATE, &w->dec_agg, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_WEATHER, &w->dec_wx, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_ALERT, &w->dec_alert, err)) ||
        (rc = hvs_decoder_new(w->serde, HVS_SCHEMA_FEEDBACK, &w->dec_fb, err)) ||
        (rc = hvs_encoder_new(w->serde, HVS_SCHEMA_MODEL_VERSION, w->topic_models, &w->enc, err)) ||
        (rc = hvs_redis_connect(app->cfg.redis_url, NULL, &w->redis, err)))
        return rc;
    sc.redis = w->redis; /* the runner writes the state with the offsets it covers */
    if ((rc = hvs_stage_new(app, &tr_stage, &sc, w->serde, w, &w->stage, err)) ||
        (rc = hvs_topology_new(&kc, w->serde, hvs_topic_name("topology"), &w->topo, err)) ||
        (rc = hvs_registry_new(&kc, w->serde, w->topic_models, &ro, &w->reg, err)))
        return rc;
    w->hist = tr_history_new((size_t)(settings.window_ms / HOUR) + 24 * 8,
                             (size_t)settings.max_apartments);
    if (!w->hist || !(w->rb = hvs_redis_batch_new()))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "training window");
    tr_history_set_apartment_hours(w->hist, (size_t)(settings.apt_window_ms / HOUR) + 24 * 8);
    if ((rc = hvs_calendar_load(app->cfg.calendar_file, err)))
        return rc;
    if (!(w->cals = hvs_calendars_new(settings.region, "trainer")))
        return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                           "HVS_TRAIN_DEFAULT_REGION %s: not a holiday region this build knows",
                           settings.region);
    size_t bad_labels = 0;
    if ((rc = tr_history_load(w->hist, w->redis, w->rb, err)) ||
        (rc = tr_labels_load(&w->labels, w->redis, &bad_labels, err)))
        return rc;
    if (bad_labels)
        hvs_log_warn("trainer", "%zu stored labels in hvs:tr:labels do not parse: left out",
                     bad_labels);
    for (size_t i = 0; i < w->hist->nb; i++)
        if (w->hist->b[i]->last != HVS_MS_NONE && w->hist->b[i]->last + HOUR > w->newest)
            w->newest = w->hist->b[i]->last + HOUR;
    redisReply *rep = NULL;
    if (hvs_redis_command(w->redis, &rep, err, "GET hvs:tr:last") == 0 && rep &&
        rep->type == REDIS_REPLY_STRING)
        w->last_train = strtoll(rep->str, NULL, 10);
    if (rep)
        freeReplyObject(rep);
    hvs_topology_poll(w->topo, 30000);
    hvs_registry_poll(w->reg, 30000);
    hvs_metrics_t *ms = app->metrics;
    w->m_in = hvs_metrics_counter(ms, "hvs_trainer_inputs_total",
                                  "aggregates and weather records applied", NULL);
    w->m_skipped = hvs_metrics_counter(
        ms, "hvs_trainer_skipped_total",
        "records not used and dead-lettered (<topic>.dlq): undecodable, empty, bad id, key not the "
        "building id, not an hour, feedback without alert id or technician or whose alert id has no "
        "date",
        NULL);
    w->m_runs = hvs_metrics_counter(ms, "hvs_trainer_runs_total", "training runs", NULL);
    w->m_no_area = hvs_metrics_counter(
        ms, "hvs_trainer_buildings_skipped_total",
        "buildings whose forecast rows are skipped, counted once per building: no heated area "
        "(neither heated_area_m2 nor an area_m2 on every apartment)",
        "reason=\"no_heated_area\"");
    w->m_published = hvs_metrics_counter(ms, "hvs_trainer_versions_total",
                                         "versions published (not rejected)", NULL);
    w->m_rejected = hvs_metrics_counter(ms, "hvs_trainer_rejected_total",
                                        "versions published as REJECTED", NULL);
    w->m_seconds = hvs_metrics_counter(ms, "hvs_trainer_train_seconds_total", "time spent training",
                                       NULL);
    w->m_labels = hvs_metrics_counter(
        ms, "hvs_trainer_labels_total",
        "feedback verdicts that changed a label (UNSURE is no verdict)", NULL);
    w->m_drift = hvs_metrics_counter(ms, "hvs_trainer_drift_runs_total",
                                     "runs queued by MODEL_DRIFT alerts", NULL);
    w->m_standin = hvs_metrics_counter(
        ms, "hvs_trainer_weather_standin_rows_total",
        "training rows whose observed weather stood in for a forecast missing at their as_of "
        "(history from a weather backfill; HVS_TRAIN_WEATHER_STANDIN)",
        NULL);
    if (app->http && (rc = hvs_http_route(app->http, "/train", http_train, w, err)))
        return rc;
    hvs_log_info(
        "trainer",
        "training window %lld days (apartments %lld) from %s + %s; %zu buildings and %zu labels "
        "loaded from Redis",
        (long long)(settings.window_ms / HVS_MS_DAY),
        (long long)((w->hist->apt_ring - 24 * 8) * HOUR / HVS_MS_DAY), w->topic_agg, w->topic_wx,
        w->hist->nb, w->labels.n);
    return hvs_stage_run(w->stage, err);
}

static void worker_free(void *state) {
    worker_t *w = state;
    free(w->tried);
    free(w->drifted);
    for (size_t i = 0; i < w->nno_area; i++)
        free(w->no_area[i]);
    free(w->no_area);
    for (size_t i = w->head; i < w->njobs; i++)
        job_free(&w->jobs[i]);
    free(w->jobs);
    tr_labels_fini(&w->labels);
    hvs_decoder_destroy(w->dec_alert);
    hvs_decoder_destroy(w->dec_fb);
    hvs_registry_destroy(w->reg);
    hvs_topology_destroy(w->topo);
    hvs_stage_destroy(w->stage);
    hvs_redis_batch_destroy(w->rb);
    hvs_redis_destroy(w->redis);
    hvs_encoder_destroy(w->enc);
    hvs_decoder_destroy(w->dec_agg);
    hvs_decoder_destroy(w->dec_wx);
    hvs_serde_destroy(w->serde);
    tr_history_destroy(w->hist);
    hvs_calendars_destroy(w->cals);
}

int main(int argc, char **argv) {
    static worker_t w; /* large, zeroed, living for the process */
    hvs_cfg_section_t sections[] = {tr_section,
                                    *hvs_stage_settings_section(&stage_settings, "HVS_TRAIN_")};
    hvs_app_spec_t spec = {
        .worker = "trainer",
        .summary = "aggregates.hourly + weather.hourly -> evaluated XGBoost versions on models",
        .usage =
            "Usage: hvs-trainer [--window 1100d] [--every 7d] ... (every HVS_TRAIN_* is a flag)\n"
            "POST /train?name=<model|all> on the HTTP port trains now.",
        .extra = sections,
        .nextra = 2,
        .state = &w,
        .cleanup = worker_free,
        .flag_prefix = "HVS_TRAIN_",
    };
    return hvs_app_main(&spec, argc, argv, run);
}
