/* fleet_pipeline.c - a simulated fleet through the pipeline in process (fleet_pipeline.h). */
#include "fleet_pipeline.h"

#include <math.h>
#include <time.h>

#include "../../tools/simulator/output.h"
#include "../../workers/aggregator/output.h"
#include "aggregate.h"
#include "aggregates.h"
#include "delivery.h"
#include "engine.h"
#include "hvs/alertbook.h"
#include "hvs/features.h"
#include "hvs/kafka.h"
#include "hvs_test.h"
#include "rules.h"
#include "vectors.h"
#include "weather.h"

#define HOUR FP_HOUR
#define MIN 60000LL
#define DAY FP_DAY
#define NPART FP_NPART

struct fp_priv {
    sim_conf_t simconf;
    agg_t *agg;
    agg_output_t *aout;
    hvs_decoder_t *dec_agg, *dec_vec;
    fx_input_t *fin;
    fx_output_t *fout;
    fx_t *fx;
    sc_input_t *scin;
    sc_state_t *st;
    sc_batch_t *bt;
    sc_watches_t *watches;
    sc_rule_conf_t rconf;
    hvs_test_proc_t broker;
    hvs_ms_t agg_wm[NPART], fx_agg_wm[NPART], fx_wx_wm[NPART], fx_acted[NPART];
    hvs_ms_t agg_th[NPART][3];
    /* vectors that came before a residual model served, in arrival order */
    sc_vector_t *held;
    size_t nheld, capheld;
};

/* The pipeline's callbacks have no opaque pointer of ours: one pipeline per process. */
static fp_t *g;

int fp_building(const fp_t *p, const char *id) {
    for (int b = 0; b < p->c.buildings; b++)
        if (strcmp(p->fleet->buildings[b].id, id) == 0)
            return b;
    return -1;
}

static int aindex(int b, const char *id) {
    const sim_building_t *bl = &g->fleet->buildings[b];
    for (uint32_t a = 0; a < bl->napartments && a < (uint32_t)g->c.apartments; a++)
        if (strcmp(bl->apartments[a].id, id) == 0)
            return b * g->c.apartments + (int)a;
    return -1;
}

const sim_apartment_t *fp_apartment(const fp_t *p, int apt) {
    return &p->fleet->buildings[apt / p->c.apartments].apartments[apt % p->c.apartments];
}

bool fp_is_benign(int kind) {
    return kind == SIM_EP_VACATION || kind == SIM_EP_GUESTS || kind == SIM_EP_MANUAL_OVERRIDE ||
           kind == SIM_EP_NIGHT_SHIFT;
}

bool fp_overlaps(const fp_t *p, int apt, hvs_ms_t from, hvs_ms_t to, bool fault) {
    const sim_apartment_t *ap = fp_apartment(p, apt);
    for (int k = 0; k < ap->nepisodes; k++) {
        const sim_episode_t *e = &ap->episodes[k];
        bool f = sim_episode_is_fault((sim_episode_kind_t)e->kind);
        if ((fault ? f : fp_is_benign(e->kind)) && e->start < to && e->end > from)
            return true;
    }
    return false;
}

/* What emit_score (workers/scorer/main.c) publishes, to the score hook. */
static int keep_score(void *o, sc_building_t *b, sc_apartment_t *a, hvs_ms_t hour, hvs_err_t *err) {
    (void)o, (void)err;
    g->n.scored++;
    int bi = fp_building(g, b->id), i = bi >= 0 ? aindex(bi, a->id) : -1;
    const sc_model_t *m = sc_model_get(a, hour);
    const sc_agg_t *ag = sc_agg_get(a, hour);
    if (i < 0 || !m || !g->c.score)
        return 0;
    bool res = m->res_ident != SC_IDENT_NONE, cls = m->cls_ident != SC_IDENT_NONE;
    double rule = ag ? ag->rule_score : NAN;
    fp_score_t s = {
        .apt = i,
        .hour = hour,
        .revision = (int64_t)m->rev * 65536 + (ag ? ag->rev + 1 : 0),
        .combined = sc_combine(ag ? ag->rule_score : 0, res ? m->e_res : 0, cls ? m->e_cls : 0),
        .rule_score = isfinite(rule) ? rule : 0,
        .residual_e = res ? sc_residual_evidence(&g->scc, m->residual_z) : 0,
        .residual_z = res ? m->residual_z : NAN,
        .prob = cls && isfinite(m->prob) ? m->prob : NAN,
        .strongest = ag && ag->nfired ? ag->fired[0].rule + 1 : 0,
        .has_agg = ag != NULL,
        .has_res = res,
        .has_cls = cls};
    for (int k = 0; ag && k < ag->nfired; k++)
        s.rules |= hvs_alertbook_rule_bit(sc_rule_name(ag->fired[k].rule));
    g->c.score(g->c.opaque, g, &s);
    return 0;
}

static int no_finding(void *o, const sc_finding_t *f, hvs_err_t *err) {
    (void)o, (void)f, (void)err;
    return 0;
}

static const sc_batch_hooks_t hooks = {keep_score, no_finding, NULL};

/* The scorer's on_aggregate (main.c) through the same library call. */
static int sc_aggregate(int32_t p, const sc_aggregate_t *in, hvs_err_t *err) {
    sc_applied_t r;
    int rc = sc_apply_aggregate(g->priv->st, &g->priv->rconf, p, in, false, &r, err);
    if (rc || !r.publish)
        return rc;
    return keep_score(NULL, r.b, r.a, in->hour, err);
}

static int sc_vector_in(const sc_vector_t *v, int32_t p, hvs_err_t *err) {
    struct fp_priv *q = g->priv;
    int b = fp_building(g, v->building);
    double area = b >= 0 ? g->fleet->buildings[b].heated_area_m2 : NAN;
    int rc = sc_batch_add(q->bt, v, p, false, g->res_ref, g->cls_ref, area, err);
    if (rc == 0 && sc_batch_size(q->bt) >= 5000)
        rc = sc_batch_run(q->bt, q->st, q->watches, &g->scc, &hooks, err);
    return rc;
}

/* The features worker's vectors: through its writer and the scorer's reader. */
static int on_vector(void *o, const fx_vector_t *v, hvs_err_t *err) {
    (void)o;
    struct fp_priv *q = g->priv;
    g->n.vectors++;
    if (strcmp(v->entity, HVS_FS_BUILDING) == 0 || v->hour < g->c.score_from)
        return 0;
    const void *buf;
    size_t len;
    avro_value_t *val;
    static sc_vector_t sv;
    hvs_err_t why = {0};
    int rc = fx_output_encode(q->fout, v, &buf, &len, err);
    if (rc)
        return rc;
    if (hvs_decoder_decode(q->dec_vec, buf, len, &val, &why) ||
        sc_input_vector(q->scin, val, g->now, DAY, &sv, &why)) {
        g->n.dead_vec++;
        return 0;
    }
    int b = fp_building(g, sv.building);
    int32_t p = b >= 0 ? g->bpart[b] : 0;
    if (g->res_ref)
        return sc_vector_in(&sv, p, err);
    if (q->nheld == q->capheld) {
        q->capheld = q->capheld ? 2 * q->capheld : 4096;
        q->held = realloc(q->held, q->capheld * sizeof *q->held);
        HVS_REQUIRE(q->held, "oom");
    }
    q->held[q->nheld++] = sv;
    return 0;
}

static int no_alert(void *o, const fx_dq_alert_t *a, hvs_err_t *err) {
    (void)o, (void)a, (void)err;
    return 0;
}

static const fx_sink_t sink = {on_vector, no_alert, NULL};

/* The features worker's watermark: the smaller of its two inputs', acted on by quarter hours. */
static int fx_step(int32_t p, hvs_err_t *err) {
    struct fp_priv *q = g->priv;
    hvs_ms_t a = q->fx_agg_wm[p], w = q->fx_wx_wm[p];
    if (a == HVS_MS_NONE || w == HVS_MS_NONE)
        return 0;
    hvs_ms_t wm = a < w ? a : w, qh = wm - wm % (HOUR / 4);
    if (qh == q->fx_acted[p])
        return 0;
    q->fx_acted[p] = qh;
    return fx_advance(q->fx, p, wm, false, &sink, err);
}

static hvs_ms_t fx_wm(int32_t p) {
    hvs_ms_t a = g->priv->fx_agg_wm[p], w = g->priv->fx_wx_wm[p];
    return a == HVS_MS_NONE ? w : w == HVS_MS_NONE ? a : a < w ? a : w;
}

/* The aggregator's hourly windows: Avro out, decoded back by each consumer's reader. */
static int on_window(void *o, const agg_building_t *b, const agg_apartment_t *apt, int size,
                     const agg_result_t *r, uint32_t revision, hvs_err_t *err) {
    (void)o;
    struct fp_priv *q = g->priv;
    if (size != AGG_W60)
        return 0;
    g->n.windows++;
    const void *buf;
    size_t len;
    avro_value_t *v;
    hvs_err_t why = {0};
    int rc = agg_output_encode(q->aout, b->id, apt ? apt->id : NULL, r, revision, g->now, &buf,
                               &len, err);
    if (rc)
        return rc;
    static fx_aggregate_t fa;
    static sc_aggregate_t sa;
    if (hvs_decoder_decode(q->dec_agg, buf, len, &v, &why) ||
        fx_input_aggregate(q->fin, v, g->now, DAY, &fa, &why)) {
        g->n.dead_agg++;
        return 0;
    }
    int32_t p = b->partition;
    if (fa.hour.hour < g->c.history_end)
        tr_history_put_hour(g->hist, fa.building, fa.entity, &fa.hour);
    if (apt && fa.hour.hour >= g->c.score_from - DAY) { /* the rules look back at most a day */
        if (sc_input_aggregate(q->scin, v, g->now, DAY, &sa, &why))
            g->n.dead_agg++;
        else if ((rc = sc_aggregate(p, &sa, err)))
            return rc;
        int bi = fp_building(g, b->id), i = bi >= 0 ? aindex(bi, apt->id) : -1;
        if (i >= 0 && g->c.water && fa.hour.hour >= g->c.score_from)
            g->c.water(g->c.opaque, g, i, fa.hour.hour, fa.hour.water);
    }
    if (fa.hour.hour + HOUR > q->fx_agg_wm[p] || q->fx_agg_wm[p] == HVS_MS_NONE)
        q->fx_agg_wm[p] = fa.hour.hour + HOUR;
    rc = fx_on_aggregate(q->fx, p, &fa, fx_wm(p), false, &sink, &why);
    if (rc == HVS_EINVAL) {
        g->n.dead_agg++;
        return 0;
    }
    return rc ? rc : fx_step(p, err);
}

/* A reading into the aggregator, as its handle(): validate, accept, watermark, thresholds. */
static void aggregate_reading(const sim_record_t *rec) {
    struct fp_priv *q = g->priv;
    static hvs_reading_t r;
    hvs_err_t why = {0}, err = {0};
    if (rec->corrupt == SIM_CORRUPT_SYNTAX) {
        g->n.refused++; /* undecodable bytes: the decoder's dead letter */
        return;
    }
    sim_record_to_reading(g->fleet, rec, &r);
    g->n.readings++;
    if (hvs_reading_validate(&r, g->now, DAY, &why)) {
        g->n.refused++;
        return;
    }
    int32_t p = g->bpart[rec->building];
    int rc = agg_accept(q->agg, &r, p, q->agg_wm[p], &why);
    if (rc == HVS_EINVAL) {
        g->n.too_late += strcmp(why.reason, AGG_R_TOO_LATE) == 0;
        g->n.refused++;
        return;
    }
    HVS_REQUIRE(rc >= 0, "accept: %s", why.msg);
    if (q->agg_wm[p] == HVS_MS_NONE || r.timestamp > q->agg_wm[p])
        q->agg_wm[p] = r.timestamp;
    hvs_ms_t th[3];
    agg_thresholds(q->agg, q->agg_wm[p], th);
    if (memcmp(th, q->agg_th[p], sizeof th) == 0)
        return;
    memcpy(q->agg_th[p], th, sizeof th);
    size_t nb;
    agg_building_t **bs = agg_buildings(q->agg, &nb);
    for (size_t i = 0; i < nb; i++)
        if (bs[i]->partition == p)
            HVS_REQUIRE(agg_advance(q->agg, bs[i], q->agg_wm[p], on_window, NULL, &err) == 0,
                        "advance: %s", err.msg);
}

static void weather_in(int b, hvs_ms_t hour, const hvs_feat_wx_t *rec) {
    struct fp_priv *q = g->priv;
    fx_weather_t w = {.hour = hour, .rec = *rec};
    snprintf(w.building, sizeof w.building, "%s", g->fleet->buildings[b].id);
    if (hour < g->c.history_end)
        tr_history_put_weather(g->hist, w.building, hour, rec);
    int32_t p = g->bpart[b];
    if (q->fx_wx_wm[p] == HVS_MS_NONE || rec->issued_at > q->fx_wx_wm[p])
        q->fx_wx_wm[p] = rec->issued_at;
    hvs_err_t err = {0};
    HVS_REQUIRE(fx_on_weather(q->fx, p, &w, fx_wm(p), false, &sink, &err) == 0 &&
                    fx_step(p, &err) == 0,
                "weather: %s", err.msg);
}

/* Weather published by step t: the observation of hour h at h + 1 h 10 min, forecasts issued at
 * 00/06/12/18 UTC available 2 h later, 72 h ahead. */
static void weather_step(hvs_ms_t t) {
    const sim_conf_t *sc = &g->priv->simconf;
    for (int b = 0; b < g->c.buildings; b++) {
        const sim_building_t *bl = &g->fleet->buildings[b];
        if (t % HOUR == 15 * MIN) {
            hvs_ms_t h = t - HOUR - 15 * MIN;
            sim_weather_t w;
            sim_weather_observed(&sc->weather, bl->latitude, bl->longitude, sc->elevation_m,
                                 h + HOUR / 2, &w);
            hvs_feat_wx_t obs = {h + HOUR + 10 * MIN, true,
                                 w.temperature_c,     w.relative_humidity_pct,
                                 w.cloud_cover_pct,   w.shortwave_radiation_wm2,
                                 w.wind_speed_ms};
            weather_in(b, h, &obs);
        }
        if ((t - 2 * HOUR) % (6 * HOUR) == 0) {
            hvs_ms_t issue = t - 2 * HOUR;
            for (int l = 1; l <= 72; l++) {
                hvs_ms_t h = issue + l * HOUR;
                sim_weather_t w;
                sim_weather_forecast(&sc->weather, bl->latitude, bl->longitude, sc->elevation_m,
                                     issue, h + HOUR / 2, &w);
                hvs_feat_wx_t fc = {t,
                                    false,
                                    w.temperature_c,
                                    w.relative_humidity_pct,
                                    w.cloud_cover_pct,
                                    w.shortwave_radiation_wm2,
                                    w.wind_speed_ms};
                weather_in(b, h, &fc);
            }
        }
    }
}

/* End of a simulated hour, as the end of each worker's batch: the aggregator's revisions, the
 * scorer's queued vectors scored. */
static void end_batch(void) {
    struct fp_priv *q = g->priv;
    hvs_err_t err = {0};
    size_t nb;
    agg_building_t **bs = agg_buildings(q->agg, &nb);
    for (size_t i = 0; i < nb; i++)
        HVS_REQUIRE(agg_revise(q->agg, bs[i], on_window, NULL, &err) == 0, "revise: %s", err.msg);
    if (g->res_ref && sc_batch_size(q->bt))
        HVS_REQUIRE(sc_batch_run(q->bt, q->st, q->watches, &g->scc, &hooks, &err) == 0, "score: %s",
                    err.msg);
}

/* ---- topology on a real topic ---------------------------------------------------------------- */

static void load_topology(void) {
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_test_devbroker_start(&g->priv->broker, NULL) == 0, "devbroker");
    hvs_kafka_conf_t kc = {.brokers = g->priv->broker.addr, .client_id = "fleet_pipeline"};
    hvs_producer_t *p;
    HVS_REQUIRE(hvs_producer_new(&kc, &p, &err) == 0 &&
                    sim_output_topology(g->fleet, g->c.start, NULL, p, g->serde, &err) == 0 &&
                    hvs_producer_flush(p, 30000, &err) == 0,
                "topology out: %s", err.msg);
    hvs_producer_destroy(p);
    HVS_REQUIRE(hvs_topology_new(&kc, g->serde, "topology", &g->topo, &err) == 0, "topology: %s",
                err.msg);
    int64_t deadline = hvs_test_now_ms() + 60000;
    bool all = false;
    while (!all && hvs_test_now_ms() < deadline) {
        hvs_topology_poll(g->topo, 1000);
        all = true;
        for (int b = 0; b < g->c.buildings; b++)
            all = all && hvs_topology_find(g->topo, g->fleet->buildings[b].id);
    }
    HVS_REQUIRE(all, "topology: every building read back");
    for (int b = 0; b < g->c.buildings; b++)
        g->bpart[b] = hvs_topology_find(g->topo, g->fleet->buildings[b].id)->partition % NPART;
}

/* ---- training -------------------------------------------------------------------------------- */

static int info(void *opaque, const char *building, tr_building_info_t *out) {
    fp_t *p = opaque;
    int b = fp_building(p, building);
    if (b < 0)
        return -1;
    *out = (tr_building_info_t){p->fleet->buildings[b].heated_area_m2,
                                p->fleet->buildings[b].commissioned,
                                p->fleet->buildings[b].calendar, NULL};
    return 0;
}

static const int horizons[] = {1};

void fp_train_config(tr_config_t *c) {
    *c = (tr_config_t){.folds = 3,
                       .fold_days = 14,
                       .min_train_days = 60,
                       .horizons = horizons,
                       .nhorizons = 1,
                       .per_hour = 1,
                       .max_rows = 400000,
                       .max_wape = 0.6,
                       .min_improvement = 0.02,
                       .auto_approve = true,
                       .monotone = true,
                       .weather_wait = 2 * HOUR,
                       .leak_sample = 100,
                       .top_k = 5,
                       .min_labels = 20};
    c->xgb = (hvs_train_params_t){.rounds = 200,
                                  .eta = 0.1,
                                  .max_depth = 6,
                                  .nthread = 2,
                                  .seed = 3,
                                  .min_child_weight = 5,
                                  .subsample = 0.8,
                                  .colsample = 0.8};
}

hvs_model_ref_t *fp_train(fp_t *p, tr_task_t task, const tr_config_t *c, hvs_ms_t from, hvs_ms_t to,
                          int version, hvs_model_ref_t *champion, tr_result_t *res) {
    tr_result_t r;
    hvs_err_t err = {0};
    memset(res, 0, sizeof *res);
    int rc = tr_train(p->hist, task, tr_task_name(task), NULL, 0, from, to, info, p, c, champion,
                      &r, &err);
    if (rc == HVS_ESTATE) {
        res->status = HVS_MODEL_REJECTED;
        snprintf(res->reason, sizeof res->reason, "not trained: %.280s", err.msg);
        return NULL;
    }
    HVS_REQUIRE(rc == 0, "%s: %s", tr_task_name(task), err.msg);
    memcpy(res->name, r.name, sizeof res->name);
    memcpy(res->reason, r.reason, sizeof res->reason);
    res->task = r.task, res->status = r.status;
    res->metrics = r.metrics, res->naive = r.naive, res->champion = r.champion;
    res->rows = r.rows, res->eval_rows = r.eval_rows, res->seconds = r.seconds;
    res->label_days = r.label_days, res->labelled_days = r.labelled_days;
    res->fault_days = r.fault_days;
    res->train_start = r.train_start, res->train_end = r.train_end;
    hvs_model_ref_t *ref = NULL;
    if (r.status == HVS_MODEL_APPROVED) {
        hvs_encoder_t *enc;
        tr_record_t rec;
        const void *buf;
        size_t len;
        HVS_REQUIRE(hvs_encoder_new(p->serde, HVS_SCHEMA_MODEL_VERSION, "models", &enc, &err) == 0,
                    "encoder");
        HVS_REQUIRE(tr_record_build(&r, version, to, c, &rec, &err) == 0 &&
                        hvs_registry_encode(p->serde, enc, &rec.rec, &buf, &len, &err) == 0,
                    "record: %s", err.msg);
        void *copy = malloc(len);
        HVS_REQUIRE(copy, "oom");
        memcpy(copy, buf, len);
        HVS_REQUIRE(hvs_registry_load_record(p->serde, copy, len, &ref, &err) == 0, "load: %s",
                    err.msg);
        free(copy);
        tr_record_fini(&rec);
        hvs_encoder_destroy(enc);
    }
    tr_result_fini(&r);
    return ref;
}

void fp_serve(fp_t *p, hvs_model_ref_t *res, hvs_model_ref_t *cls) {
    struct fp_priv *q = p->priv;
    if (p->res_ref && p->res_ref != res)
        hvs_registry_release(p->res_ref);
    if (p->cls_ref && p->cls_ref != cls)
        hvs_registry_release(p->cls_ref);
    p->res_ref = res, p->cls_ref = cls;
    if (!res || !q->nheld)
        return;
    /* the waiting vectors, as a scorer serving these versions would have seen them */
    hvs_err_t err = {0};
    for (size_t i = 0; i < q->nheld; i++) {
        int b = fp_building(p, q->held[i].building);
        HVS_REQUIRE(sc_vector_in(&q->held[i], b >= 0 ? p->bpart[b] : 0, &err) == 0, "score: %s",
                    err.msg);
    }
    HVS_REQUIRE(sc_batch_run(q->bt, q->st, q->watches, &p->scc, &hooks, &err) == 0, "score: %s",
                err.msg);
    free(q->held);
    q->held = NULL;
    q->nheld = q->capheld = 0;
}

/* ---- the stream ------------------------------------------------------------------------------- */

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void fp_run(const fp_conf_t *conf, fp_t **out) {
    HVS_REQUIRE(!g, "one pipeline per process");
    HVS_REQUIRE(conf->buildings <= 64, "at most 64 buildings");
    g = calloc(1, sizeof *g);
    HVS_REQUIRE(g && (g->priv = calloc(1, sizeof *g->priv)), "oom");
    *out = g;
    struct fp_priv *q = g->priv;
    g->c = *conf;
    hvs_ms_t end = conf->start + conf->days * DAY;
    hvs_err_t err = {0};
    sim_fleet_params_t fp;
    sim_fleet_params_default(&fp);
    fp.seed = conf->seed;
    fp.start = conf->start;
    fp.end = end;
    fp.buildings = conf->buildings;
    fp.apartments_per_building = conf->apartments;
    fp.new_building_fraction = 0;
    HVS_REQUIRE(sim_fleet_new(&fp, &g->fleet, &err) == 0, "fleet: %s", err.msg);
    sim_conf_default(&q->simconf, conf->seed);
    HVS_REQUIRE(hvs_serde_new(NULL, &g->serde, &err) == 0, "serde");
    load_topology();
    sim_delivery_conf_t dc;
    sim_delivery_conf_default(&dc);
    uint32_t apts[64];
    for (int b = 0; b < conf->buildings; b++)
        apts[b] = g->fleet->buildings[b].napartments;
    sim_delivery_t *d;
    sim_t *sim;
    HVS_REQUIRE(
        sim_delivery_new(&dc, conf->seed, (uint32_t)conf->buildings, apts, NULL, &d, &err) == 0 &&
            sim_new(g->fleet, &q->simconf, d, conf->labels, &sim, &err) == 0,
        "sim: %s", err.msg);
    agg_config_t ac = {.params = {15 * MIN, 375 * MIN, 24 * HOUR, 48 * HOUR, {20, 600}},
                       .grace = {5 * MIN, 15 * MIN},
                       .lateness = 48 * HOUR};
    fx_config_t fc = {.weather_wait = 2 * HOUR,
                      .upgrade_window = 48 * HOUR,
                      .default_region = "CH",
                      .ndq = 1,
                      .dq_limit = 0.05,
                      .dq_min_vectors = 24};
    fc.dq_features[0] = hvs_features_index("temperature_c");
    HVS_REQUIRE((q->agg = agg_new(&ac)) && (q->fx = fx_new(&fc, g->topo)) &&
                    (q->st = sc_state_new()) && (q->bt = sc_batch_new()),
                "oom");
    sc_watch_conf_t wc;
    sc_watch_conf_default(&wc);
    HVS_REQUIRE((q->watches = sc_watches_new(&wc)), "oom");
    sc_score_conf_default(&g->scc);
    sc_rule_conf_default(&q->rconf);
    HVS_REQUIRE(agg_output_new(g->serde, "aggregates.hourly", &q->aout, &err) == 0 &&
                    hvs_decoder_new(g->serde, HVS_SCHEMA_AGGREGATE, &q->dec_agg, &err) == 0 &&
                    hvs_decoder_new(g->serde, HVS_SCHEMA_FEATURE_VECTOR, &q->dec_vec, &err) == 0 &&
                    fx_input_new(g->serde, &q->fin, &err) == 0 &&
                    fx_output_new(g->serde, "features.hourly", &q->fout, &err) == 0 &&
                    sc_input_new(g->serde, &q->scin, &err) == 0,
                "codecs: %s", err.msg);
    size_t hist_hours = (size_t)((conf->history_end - conf->start) / HOUR) + 24;
    HVS_REQUIRE(
        (g->hist = tr_history_new(hist_hours, (size_t)(conf->buildings * (conf->apartments + 1)))),
        "oom");
    for (int p = 0; p < NPART; p++) {
        q->agg_wm[p] = q->fx_agg_wm[p] = q->fx_wx_wm[p] = q->fx_acted[p] = HVS_MS_NONE;
        agg_thresholds(q->agg, HVS_MS_NONE, q->agg_th[p]);
    }
    double t0 = mono();
    sim_record_t r;
    for (hvs_ms_t t = conf->start + SIM_STEP_MS; t <= end + 3 * HOUR; t += SIM_STEP_MS) {
        g->now = t;
        if (t <= end)
            HVS_REQUIRE(sim_step(sim, t, &err) == 0, "step: %s", err.msg);
        while (sim_delivery_pop(d, t, &r))
            aggregate_reading(&r);
        weather_step(t);
        if (t % HOUR == 0) {
            end_batch();
            if (conf->hour)
                conf->hour(conf->opaque, g, t);
        }
        if (t == conf->train_at) {
            printf("stream: %.0f days in %.1f s (%llu readings records, %llu refused of which "
                   "%llu too late, %llu hourly windows, %llu vectors)\n",
                   (double)(t - conf->start) / DAY, mono() - t0, (unsigned long long)g->n.readings,
                   (unsigned long long)g->n.refused, (unsigned long long)g->n.too_late,
                   (unsigned long long)g->n.windows, (unsigned long long)g->n.vectors);
            double t1 = mono();
            if (conf->train)
                conf->train(conf->opaque, g);
            printf("training: %.1f s\n", mono() - t1);
            t0 = mono();
        }
    }
    end_batch();
    printf("stream: the last %.0f days in %.1f s (%llu hourly windows, %llu vectors in all, %llu "
           "scores, dead letters %llu aggregates / %llu vectors)\n",
           (double)(end - conf->train_at) / DAY, mono() - t0, (unsigned long long)g->n.windows,
           (unsigned long long)g->n.vectors, (unsigned long long)g->n.scored,
           (unsigned long long)g->n.dead_agg, (unsigned long long)g->n.dead_vec);
    sim_destroy(sim);
    sim_delivery_destroy(d);
}

void fp_destroy(fp_t *p) {
    if (!p)
        return;
    struct fp_priv *q = p->priv;
    if (p->res_ref)
        hvs_registry_release(p->res_ref);
    if (p->cls_ref)
        hvs_registry_release(p->cls_ref);
    if (q) {
        sc_watches_destroy(q->watches);
        sc_batch_destroy(q->bt);
        sc_state_destroy(q->st);
        sc_input_destroy(q->scin);
        fx_output_destroy(q->fout);
        fx_input_destroy(q->fin);
        fx_destroy(q->fx);
        hvs_decoder_destroy(q->dec_agg);
        hvs_decoder_destroy(q->dec_vec);
        agg_output_destroy(q->aout);
        agg_destroy(q->agg);
        free(q->held);
        hvs_test_proc_stop(&q->broker);
    }
    tr_history_destroy(p->hist);
    hvs_topology_destroy(p->topo);
    hvs_serde_destroy(p->serde);
    sim_fleet_destroy(p->fleet);
    free(q);
    free(p);
    if (g == p)
        g = NULL;
}
