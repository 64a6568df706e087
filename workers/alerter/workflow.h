/*
 * workflow.h - a technician's feedback on a raised alert (docs/design.md section 9):
 *
 *   UNSURE           UNSEEN / INVESTIGATING -> INVESTIGATING (acknowledged, no verdict yet);
 *                    on a resolved alert it is refused (invalid_transition): an acknowledgement
 *                    does not reopen a verdict; a verdict is corrected by the other verdict;
 *   TRUE_POSITIVE    any -> RESOLVED_TRUE_POSITIVE
 *   FALSE_POSITIVE   any -> RESOLVED_FALSE_POSITIVE; with a benign root cause (benign_causes)
 *                    new alerts of the apartment and type are suppressed until labelled_at +
 *                    fp_suppress_ms (judge.h)
 * Refused, with the dead-letter reason: an alert the book does not hold (unknown_alert), one it
 * holds but never raised (alert_not_raised: candidates and suppressed alerts were never shown),
 * feedback naming another apartment than the alert's (feedback_mismatch), feedback older than
 * the alert's latest accepted one (stale_feedback). The same feedback again (same label and
 * labelled_at) changes nothing and is not an error (a re-sent record).
 *
 * Ownership: borrows its arguments. Thread-safety: pure but for *x and *a. Errors: HVS_EINVAL
 * with why filled (the reasons above).
 */
#ifndef AL_WORKFLOW_H
#define AL_WORKFLOW_H

#include "hvs/feedback.h"
#include "state.h"

#define AL_R_UNKNOWN_ALERT "unknown_alert"
#define AL_R_NOT_RAISED "alert_not_raised"
#define AL_R_INVALID_TRANSITION "invalid_transition"
#define AL_R_MISMATCH "feedback_mismatch"
#define AL_R_STALE "stale_feedback"

/* Whether cause is in the comma-separated list (exact, case-sensitive). */
bool al_workflow_benign(const char *list, const char *cause);

/* Apply f to entry x (NULL: unknown) of apartment a (NULL: unknown). 1 applied (x to publish),
 * 0 nothing changed (a duplicate), HVS_EINVAL refused. */
int al_workflow_apply(al_entry_t *x, al_apartment_t *a, const hvs_feedback_t *f,
                      const char *benign_causes, int64_t fp_suppress_ms, hvs_err_t *why);

#endif
