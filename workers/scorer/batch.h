/*
 * batch.h - a batch's feature vectors scored together (docs/design.md section 6, "Scoring"):
 *
 *   1. per model version, every row that uses it predicted in one call (task_rows.h builds the
 *      rows: the model is fed exactly what it was trained on);
 *   2. in arrival order, each vector's half written into its apartment's slot: observed and
 *      expected heating, the residual standardised against the ring's earlier hours, the
 *      classifier's probability, each one's evidence (arrival order matters: the ring a residual
 *      is standardised against is the one its topic's order built);
 *   3. TreeSHAP contributions, one call per model, only for the vectors whose model evidence
 *      reaches explain_min (the scores that can enter a daily top-k); the top SC_CONTRIB_MAX
 *      by size kept with the slot;
 *   4. the emit callback for each vector not replayed quietly.
 * Every row a model scored is also counted by the watch of that version (watch.h), in arrival
 * order; its findings go to the finding callback (not while replaying quietly).
 *
 * Model choice is the caller's (sc_batch_add takes the versions, acquired for the batch).
 *
 * Ownership: the batch owns its buffers (grown once, reused); model refs are borrowed and must
 * stay acquired until sc_batch_run returns. Thread-safety: one thread.
 * Errors: HVS_ENOMEM, a model's prediction errors (HVS_EMODEL): fatal for the batch.
 */
#ifndef SC_BATCH_H
#define SC_BATCH_H

#include <stdbool.h>

#include "hvs/model_registry.h"
#include "input.h"
#include "score.h"
#include "state.h"
#include "watch.h"

typedef struct sc_batch sc_batch_t;

typedef struct sc_batch_stats {
    uint64_t vectors, predicted, explained, too_old;
    double explain_seconds; /* time spent on contributions */
} sc_batch_stats_t;

/* Called for each apartment-hour to publish (a vector not replayed quietly, or replayed after
 * its aggregate's half came live): its building, apartment and hour. */
typedef int (*sc_emit_fn)(void *opaque, sc_building_t *b, sc_apartment_t *a, hvs_ms_t hour,
                          hvs_err_t *err);

/* Called for each drift or constant-feature finding (watch.h). */
typedef int (*sc_finding_fn)(void *opaque, const sc_finding_t *f, hvs_err_t *err);

typedef struct sc_batch_hooks {
    sc_emit_fn emit;
    sc_finding_fn finding;
    void *opaque;
} sc_batch_hooks_t;

sc_batch_t *sc_batch_new(void);
void sc_batch_destroy(sc_batch_t *b);

/* Queue one apartment's vector with the models that score it (either may be NULL) and the
 * building's heated area. */
int sc_batch_add(sc_batch_t *bt, const sc_vector_t *v, int32_t partition, bool quiet,
                 hvs_model_ref_t *res, hvs_model_ref_t *cls, double area, hvs_err_t *err);
size_t sc_batch_size(const sc_batch_t *bt);

/* Score the queued vectors into `st`, count them into `ws`, and emit; empties the batch. */
int sc_batch_run(sc_batch_t *bt, sc_state_t *st, sc_watches_t *ws, const sc_score_conf_t *c,
                 const sc_batch_hooks_t *hooks, hvs_err_t *err);

const sc_batch_stats_t *sc_batch_stats(const sc_batch_t *bt);

#endif
