/*
 * score.h - from an apartment-hour's two halves to one anomaly score (docs/design.md section 6,
 * "Scoring"): the residual standardised by the apartment's own recent residuals, each strategy's
 * evidence on one [0, 1] scale, their combination, and the reasons as text.
 * * Residual: r = observed - expected (kWh) summed over the `window` hours ending with the hour
 * (6): a meter reports its counter when it changes, so an hour's heat arrives in lumps that
 * only sum out over hours (energy is conserved over hours, not within one). Its spread is the
 * apartment's own earlier window sums in the ring that do not overlap this one: z = (r -
 * median) / max(1.4826 MAD, min_spread x sqrt(window)), robust to the faults it is looking for;
 * NaN without a complete window or with fewer than spread_min earlier ones.
 * Evidence of the residual: 0 up to |z| = z_low, rising linearly to residual_weight (0.5) at
 * z_high. A consumption residual alone cannot tell a fault from an occupant's doing (a
 * vacation, guests, a raised setpoint: seed 004's alert fatigue), so it counts as "as likely
 * as not" at most: alone it never outranks a physical symptom (a rule, >= 0.6) or the
 * feedback-trained classifier's confident probability, and with either it adds up. (The
 * quality test's first run, with full weight, filled the daily top 5 with residual-only days.)
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
    double z_low, z_high;   /* residual evidence 0 at z_low, 1 at z_high */
    double min_spread;      /* kWh: the floor of the residual spread */
    int spread_min;         /* residuals needed before z is computed */
    double explain_min;     /* model evidence from which contributions are computed */
    int window;             /* hours the residual is summed over */
    double residual_weight; /* the residual's evidence at most */
} sc_score_conf_t;

void sc_score_conf_default(sc_score_conf_t *c);

/* The standardised window residual of `hour` (its half holds observed and expected) against the
 * ring's earlier windows; *sum and *expected get the window's residual and expected heat (NaN
 * when the window is incomplete). NaN when incomplete or history is short. */
double sc_residual_z(const sc_score_conf_t *c, sc_apartment_t *a, hvs_ms_t hour, double *sum,
                     double *expected);

/* Evidence of a standardised residual (either sign), in [0, 1]; 0 for NaN. */
double sc_residual_evidence(const sc_score_conf_t *c, double z);

/* The noisy-OR of three evidences (NaN counts as 0). */
double sc_combine(double e_rules, double e_residual, double e_classifier);

/* The residual as a reason ("heating 3.10 kWh above the 5.40 kWh expected over 6 h at -4.0 degC
 * (z 5.2)"); 0 when there is none to give. */
size_t sc_residual_reason(const sc_score_conf_t *c, const sc_model_t *m, char *buf, size_t cap);
/* A contribution as a reason ("comfort_gap_c 3.2 raises expected heating by 0.41 kWh"). */
size_t sc_contrib_reason(const sc_model_t *m, const sc_contrib_t *k, char *buf, size_t cap);

#endif
