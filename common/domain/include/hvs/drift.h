/*
 * drift.h - population stability of served feature values against a model version's training
 * profile (docs/design.md section 7), over a rolling window of event time: what the scorer's
 * MODEL_DRIFT check computes.
 *
 * Bins, per feature, from its profile (hvs_feature_profile_t: quantiles q_0..q_{m-1} at
 * ascending probabilities p_0..p_{m-1}, and a missing rate r):
 *  - the distinct quantile values u_1 < ... < u_k are the edges; bins are right-closed, as the
 *    quantiles are (P(x <= q_j) ~ p_j): (-inf, u_1], (u_1, u_2], ..., (u_k, +inf), so values
 *    below the first edge or above the last fall in the outer bins, and a value equal to an
 *    edge belongs to the bin that edge closes;
 *  - expected share of a bin = (1 - r) * (F(upper edge) - F(lower edge)), F(-inf) = 0,
 *    F(+inf) = 1, from the profile's own probabilities (nothing assumes deciles). F(u) is p_j
 *    for an edge that appears once. A run of equal quantiles q_a = ... = q_b = u is a point mass
 *    (a 0/1 flag, a constant, a feature that is mostly 0): the zero-width bins between them are
 *    merged into the bin u closes, so a value equal to u goes in that bin, and F(u) is taken
 *    halfway between p_b and p_{b+1} (1 after the last quantile): the quantiles only say that
 *    F(u) lies in [p_b, p_{b+1}), and p_b alone would understate every point mass, so a flag's
 *    own distribution would read as drift;
 *  - one more bin, "missing" (NaN), expects r;
 *  - a profile without quantiles (a feature the trainer never saw) has one value bin, 1 - r;
 *    a feature without a profile (name NULL) is not measured (PSI NaN).
 *
 * PSI = sum over bins of (a - e) * ln(a / e), a the served share and e the expected one, both
 * floored at HVS_DRIFT_EPSILON (1e-4) so an empty bin costs a finite amount (not renormalised
 * after the floor). Usual reading: < 0.1 stable, 0.1-0.25 moderate, > 0.25 a shift.
 *
 * The window: a ring of one-hour slots (window_ms / 1 h of them), addressed by event hour like
 * the project's other rings: slot = hour mod n with the hour stamped, so a slot left from an
 * older hour reads as empty and is reset by the first value of its new hour. The PSI at
 * now_hour counts the hours (now_hour - n, now_hour]; a window holding fewer than min_count
 * rows reports NaN. Counts are uint32 (saturating); hvs_drift_add allocates nothing.
 *
 * Slot text (for Redis; one slot, so a restart restores exactly what was counted):
 *     d1 <hour start, ms> <rows> <layout fingerprint, 16 hex> <count> <count> ...
 * counts in bin order (per feature its value bins, then missing), a run of k > 1 zeros written
 * "0*k", tokens separated by single spaces. The fingerprint hashes the bins (edges and expected
 * shares): text from another profile is refused, and so is text whose counts of a feature do
 * not add up to its rows.
 *
 * Ownership: hvs_drift_new copies what it needs of the profile (the ref may be released);
 * hvs_drift_destroy frees (NULL-safe); slot text goes into the caller's hvs_strbuf_t.
 * Thread-safety: one thread per monitor (or the caller's lock); the const calls only read.
 * Errors: 0 or negative hvs_rc_t with err filled: HVS_EINVAL "bad_argument" (window not a whole
 * number of hours in 1..HVS_DRIFT_MAX_SLOTS, no features, a profile whose quantiles are not
 * finite and ascending at strictly ascending probabilities in [0, 1], or whose missing rate is
 * outside [0, 1]: what the registry's refs satisfy), HVS_ENOMEM, HVS_ESERDE "bad_drift_slot"
 * (text that is not a slot of this monitor, naming what is wrong).
 */
#ifndef HVS_DRIFT_H
#define HVS_DRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/fmt.h"
#include "hvs/model_registry.h"
#include "hvs/time.h"

#define HVS_DRIFT_EPSILON 1e-4
#define HVS_DRIFT_MIN_COUNT 100u /* rows in the window before a PSI is reported (min_count 0) */
#define HVS_DRIFT_MAX_SLOTS 720  /* 30 days of hours */

typedef struct hvs_drift hvs_drift_t;

/* A monitor of nfeatures columns (the model's, in its order) against profile[0..nfeatures)
 * (e.g. ref->profile, ref->nfeatures). window_ms: a whole number of hours; min_count: rows the
 * window needs before a PSI is reported (0: HVS_DRIFT_MIN_COUNT). */
int hvs_drift_new(const hvs_feature_profile_t *profile, size_t nfeatures, hvs_ms_t window_ms,
                  uint32_t min_count, hvs_drift_t **out, hvs_err_t *err);
void hvs_drift_destroy(hvs_drift_t *d);

/* Count one row (nfeatures values, NaN = missing) into the slot of the hour holding
 * event_time (any time within the hour). Returns 0 when counted, 1 when the slot already holds
 * a newer hour (the value is too old for the ring: not counted). */
int hvs_drift_add(hvs_drift_t *d, hvs_ms_t event_time, const double *row);

/* The PSI of each feature over the window ending with the hour holding now (psi_out:
 * nfeatures doubles; NaN for a feature without a profile, or every feature when the window
 * holds fewer than min_count rows); *n_values (may be NULL): the rows in the window. */
void hvs_drift_psi(const hvs_drift_t *d, hvs_ms_t now, double *psi_out, size_t *n_values);

/* The bins of a feature: its number of value bins k + 1 (0 when it has no profile), the k
 * upper edges of all but the last, and the k + 2 expected shares (value bins, then missing).
 * The pointers are d's. */
size_t hvs_drift_bins(const hvs_drift_t *d, size_t feature, const double **upper,
                      const double **expected);

/* The slot of the hour holding `hour` as text appended to out (an empty slot of that hour when
 * the ring holds another one there). HVS_ENOMEM when out ran out of memory. */
int hvs_drift_slot_encode(const hvs_drift_t *d, hvs_ms_t hour, hvs_strbuf_t *out, hvs_err_t *err);
/* Restore a slot from its text: replaces the slot of its hour unless that holds a newer hour
 * (then nothing changes and 1 is returned); 0 restored; HVS_ESERDE "bad_drift_slot". */
int hvs_drift_slot_decode(hvs_drift_t *d, const char *text, size_t len, hvs_err_t *err);

#endif
