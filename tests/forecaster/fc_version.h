/*
 * fc_version.h - a small forecast version for the forecaster's tests, trained by the trainer's
 * own code (tr_train: one 5-day fold, test-sized trees) on a history the test built, stamped
 * APPROVED (what is served is the point, not the gate), and its ModelVersion record encoded
 * as the trainer publishes it: so every test serves what the trainer really writes (params,
 * intervals, profile, joint histogram).
 *
 * Ownership: *rec is malloc'd (the caller frees it); *ref, when asked for, is a served ref the
 * caller releases (hvs_registry_release). Errors: fatal (HVS_REQUIRE).
 */
#ifndef FC_VERSION_H
#define FC_VERSION_H

#include <stddef.h>

#include "dataset.h"
#include "history.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"

typedef struct fc_version_spec {
    const char *name;  /* "forecast/global", ... */
    const char *only;  /* one building's rows (NULL: every building) */
    hvs_ms_t from, to; /* target hours trained on */
    int version;       /* the record's version */
    int rounds, depth; /* trees */
    int nthread;
    tr_info_fn info;
} fc_version_spec_t;

/* Train and encode; *ref (when not NULL) gets the version loaded as the registry serves it. */
void fc_version_make(const tr_history_t *h, const fc_version_spec_t *s, hvs_serde_t *serde,
                     void **rec, size_t *len, hvs_model_ref_t **ref);

#endif
