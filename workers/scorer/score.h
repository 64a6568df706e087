/*
 * score.h - from an apartment-hour's two halves to one anomaly score (docs/design.md section 6,
 * "Scoring"): the residual standardised by the apartment's own recent residuals, each strategy's
 * evidence on one [0, 1] scale, their combination, and the reasons as text.
 *
 * Residual: r = observed - expected (kWh). Its spread is the apartment's recent residuals in the
 * ring (the hours before this one, at most SC_RING): z = (r - median) / max(1.4826 MAD,
 * min_spread), robust to the faults it is looking for; NaN with fewer than spread_min residuals.
 * Evidence of the residual: 0 up to |z| = z_low, rising linearly to 1 at z_high.
 * Evidence of the classifier: its probability. Evidence of the rules: rules.h.
 * Combined score: the noisy-OR 1 - (1 - e_rules)(1 - e_residual)(1 - e_classifier): any one
 * strong strategy ranks an hour high, and independent weak signs add up. The strategies see
 * different faults (the residual drift and efficiency loss, the classifier and the rules stuck
 * valves and dead radiators), so the combination is what ranks.
 *
 * Ownership: pure functions; text goes into the caller's buffer. Thread-safety: none needed.
 */
#ifndef SC_SCORE_H
#define SC_SCORE_H

#include <stddef.h>

#include "apartment.h"

typedef struct sc_score_conf {
    double z_low, z_high; /* residual evidence 0 at z_low, 1 at z_high */
    double min_spread;    /* kWh: the floor of the residual spread */
    int spread_min;       /* residuals needed before z is computed */
    double explain_min;   /* model evidence from which contributions are computed */
} sc_score_conf_t;

void sc_score_conf_default(sc_score_conf_t *c);

/* The standardised residual of `hour` (its slot holds observed and expected) against the
 * residuals of the ring's earlier hours. NaN when either is unknown or history is short. */
double sc_residual_z(const sc_score_conf_t *c, sc_apartment_t *a, hvs_ms_t hour);

/* Evidence of a standardised residual (either sign), in [0, 1]; 0 for NaN. */
double sc_residual_evidence(const sc_score_conf_t *c, double z);

/* The noisy-OR of three evidences (NaN counts as 0). */
double sc_combine(double e_rules, double e_residual, double e_classifier);

/* The residual as a reason ("heating 3.1 kWh above expected 0.9 kWh at -4.0 degC"); 0 when
 * there is none to give. */
size_t sc_residual_reason(const sc_model_t *m, char *buf, size_t cap);
/* A contribution as a reason ("comfort_gap_c 3.2 raises expected heating by 0.41 kWh"). */
size_t sc_contrib_reason(const sc_model_t *m, const sc_contrib_t *k, char *buf, size_t cap);

#endif
