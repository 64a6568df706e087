/*
 * fleet_pipeline.h - a simulated fleet streamed in process through the real code of every stage
 * up to the scorer, as the workers would see it (shared by test_sc_quality and
 * test_al_flywheel):
 *   readings -> the aggregator's library (agg_accept, windows closed as each partition's
 *   watermark passes; revisions at the end of every simulated hour, as at the end of a batch)
 *   -> Aggregate records (the aggregator's Avro writer, decoded back) -> the features engine
 *   (with observed weather after each hour and forecasts issued at 00/06/12/18 UTC, available
 *   2 h later, as test_train_quality makes them) -> FeatureVectors (the features worker's Avro
 *   writer, decoded back by the scorer's input) -> the scorer's batch and rules.
 * The topology (holiday regions, commissioning dates, teams) comes from a real `topology` topic
 * on hvs-devbroker: a few hundred bytes, unlike the readings.
 * Hours before history_end feed the trainer's history as its consume loop would. Vectors of
 * hours from score_from are scored; those that arrive before a residual model serves wait and
 * are scored once the `train` hook has set one (fp_serve), in arrival order. Every score the
 * scorer publishes (emit_score in workers/scorer/main.c: the latest of an apartment-hour wins)
 * goes to the `score` hook with its fields.
 *
 * Ownership: fp_run owns everything it makes; fp_destroy frees it (the hooks' state is the
 * caller's). Thread-safety: one thread. Errors: HVS_REQUIRE (a test's setup failure).
 */
#ifndef FLEET_PIPELINE_H
#define FLEET_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "fleet.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs/topology.h"
#include "labels.h"
#include "record.h"
#include "score.h"
#include "sim.h"
#include "train.h"

#define FP_HOUR 3600000LL
#define FP_DAY (24 * FP_HOUR)
#define FP_NPART 12

/* One published score of an apartment-hour, as hvs-scorer's emit_score makes it. */
typedef struct fp_score {
    int apt; /* building index x apartments per building + apartment index */
    hvs_ms_t hour;
    int64_t revision;
    double combined;   /* the published score */
    double rule_score; /* 0 without the aggregate's half */
    double residual_e; /* the residual's evidence (sc_residual_evidence of z); 0 without a model */
    double residual_z; /* NaN without */
    double prob;       /* the classifier's probability; NaN without */
    uint32_t rules;    /* hvs_alertbook_rule bits of the rules fired */
    int strongest;     /* the strongest fired rule + 1; 0 none */
    bool has_agg, has_res, has_cls;
} fp_score_t;

typedef struct fp fp_t;

typedef struct fp_conf {
    uint64_t seed;
    int buildings, apartments; /* per building */
    hvs_ms_t start;
    int days;
    hvs_ms_t history_end;           /* hours before it go to the trainer's history */
    hvs_ms_t train_at;              /* the `train` hook runs once the clock reaches it */
    hvs_ms_t score_from;            /* vectors of hours from here are scored */
    const sim_label_sink_t *labels; /* the simulator's ground truth as it starts (may be NULL) */
    /* hooks (each may be NULL) */
    void (*score)(void *o, fp_t *p, const fp_score_t *s);
    void (*water)(void *o, fp_t *p, int apt, hvs_ms_t hour, double litres); /* an apartment's */
    void (*train)(void *o, fp_t *p);
    void (*hour)(void *o, fp_t *p, hvs_ms_t t); /* end of every simulated hour, after scoring */
    void *opaque;
} fp_conf_t;

struct fp {
    fp_conf_t c;
    sim_fleet_t *fleet;
    hvs_serde_t *serde;
    hvs_topology_t *topo;
    tr_history_t *hist;
    sc_score_conf_t scc;
    hvs_model_ref_t *res_ref, *cls_ref; /* what the scorer serves (fp_serve swaps) */
    hvs_ms_t now;                       /* the simulated wall clock (delivery time) */
    int32_t bpart[64];                  /* each building's partition (topology's) */
    struct {
        uint64_t readings, refused, too_late, windows, vectors, dead_agg, dead_vec, scored;
    } n;
    struct fp_priv *priv;
};

/* Stream the fleet through the pipeline, calling the hooks; *out stays valid until fp_destroy
 * (also after a failed check: hvs_test_cleanup). */
void fp_run(const fp_conf_t *c, fp_t **out);
void fp_destroy(fp_t *p);

/* The models the scorer serves from now on (references taken over; the old ones released).
 * The first residual model also scores the vectors that waited for it. */
void fp_serve(fp_t *p, hvs_model_ref_t *res, hvs_model_ref_t *cls);

/* Building / apartment index of an id; -1 unknown. */
int fp_building(const fp_t *p, const char *id);
const sim_apartment_t *fp_apartment(const fp_t *p, int apt);

/* Ground truth: apartment apt has an episode of the class (fault / benign) overlapping
 * [from, to). */
bool fp_is_benign(int kind);
bool fp_overlaps(const fp_t *p, int apt, hvs_ms_t from, hvs_ms_t to, bool fault);

/* Training with the trainer's code on the history, target hours in [from, to), as a served
 * version (tr_record_build -> encode -> load_record). NULL when the run cannot train
 * (HVS_ESTATE: too few labels; the reason in res->reason, status REJECTED) or its gate did not
 * approve it; *res gets the run's figures (no model or arrays: nothing to fini). champion: the
 * version serving the name now (NULL none), compared as the trainer does. */
hvs_model_ref_t *fp_train(fp_t *p, tr_task_t task, const tr_config_t *c, hvs_ms_t from, hvs_ms_t to,
                          int version, hvs_model_ref_t *champion, tr_result_t *res);
/* The trainer configuration test_sc_quality trains with (top_k, labels filled by the caller). */
void fp_train_config(tr_config_t *c);

#endif
