/*
 * aggregates.h - an apartment's hourly Aggregate into the scorer's state: its hour's half of the
 * apartment's ring (heating, the rooms' evidence) and the rules judged on it (rules.h), and
 * whether the hour is to be published now (docs/design.md section 6, "Scoring").
 *
 * Published when the vector's half of the hour is there, and either this aggregate is live or
 * that half came live (a rebuild's quiet replay publishes nothing the lost state had published,
 * but a score published during the rebuild without this half must be completed).
 *
 * Ownership: the state's (state.h). Thread-safety: none. Errors: HVS_ENOMEM.
 */
#ifndef SC_AGGREGATES_H
#define SC_AGGREGATES_H

#include <stdbool.h>

#include "input.h"
#include "rules.h"
#include "state.h"

typedef struct sc_applied {
    sc_building_t *b; /* NULL for a building-level record (skipped) */
    sc_apartment_t *a;
    bool too_old;     /* older than the ring: skipped */
    bool publish;     /* the hour is to be published (the vector's half is there) */
    int fired;        /* rules fired on the hour */
    int rooms_capped; /* rooms beyond SC_ROOMS, not judged */
} sc_applied_t;

int sc_apply_aggregate(sc_state_t *st, const sc_rule_conf_t *rc, int32_t p,
                       const sc_aggregate_t *in, bool quiet, sc_applied_t *out, hvs_err_t *err);

#endif
