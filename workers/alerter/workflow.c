/* workflow.c - feedback moves a raised alert through its statuses (workflow.h). */
#include "workflow.h"

#include <string.h>

bool al_workflow_benign(const char *list, const char *cause) {
    size_t n = strlen(cause);
    if (!n)
        return false;
    for (const char *p = list; p && *p;) {
        const char *c = strchr(p, ',');
        size_t k = c ? (size_t)(c - p) : strlen(p);
        if (k == n && memcmp(p, cause, n) == 0)
            return true;
        p = c ? c + 1 : NULL;
    }
    return false;
}

static hvs_alert_status_t target(hvs_feedback_label_t l) {
    return l == HVS_FEEDBACK_TRUE_POSITIVE    ? HVS_ALERT_RESOLVED_TRUE_POSITIVE
           : l == HVS_FEEDBACK_FALSE_POSITIVE ? HVS_ALERT_RESOLVED_FALSE_POSITIVE
                                              : HVS_ALERT_INVESTIGATING;
}

int al_workflow_apply(al_entry_t *x, al_apartment_t *a, const hvs_feedback_t *f,
                      const char *benign_causes, int64_t fp_suppress_ms, hvs_err_t *why) {
    if (!x)
        return hvs_err_set(why, HVS_EINVAL, AL_R_UNKNOWN_ALERT,
                           "feedback for alert %s of building %s, which the alerter does not hold",
                           f->alert_id, f->building_id);
    hvs_alertbook_entry_t *e = &x->e;
    if (f->apartment_id && f->apartment_id[0] && strcmp(f->apartment_id, e->apartment) != 0)
        return hvs_err_set(why, HVS_EINVAL, AL_R_MISMATCH,
                           "feedback for alert %s names apartment %s, the alert is of %s",
                           f->alert_id, f->apartment_id, e->apartment);
    if (e->disposition != HVS_ALERTBOOK_RAISED)
        return hvs_err_set(why, HVS_EINVAL, AL_R_NOT_RAISED,
                           "feedback for alert %s, which was never raised (%s%s%s)", f->alert_id,
                           hvs_alertbook_disposition_name(e->disposition), e->reason[0] ? ": " : "",
                           e->reason);
    hvs_alert_status_t to = target(f->label);
    if (e->feedback_at && f->labelled_at == e->feedback_at && to == e->status)
        return 0; /* the same feedback again */
    if (e->feedback_at && f->labelled_at < e->feedback_at)
        return hvs_err_set(why, HVS_EINVAL, AL_R_STALE,
                           "feedback for alert %s labelled at %lld, older than the one it holds "
                           "(%lld)",
                           f->alert_id, (long long)f->labelled_at, (long long)e->feedback_at);
    if (to == HVS_ALERT_INVESTIGATING && (e->status == HVS_ALERT_RESOLVED_TRUE_POSITIVE ||
                                          e->status == HVS_ALERT_RESOLVED_FALSE_POSITIVE))
        return hvs_err_set(why, HVS_EINVAL, AL_R_INVALID_TRANSITION,
                           "alert %s is %s: an acknowledgement (UNSURE) does not reopen it",
                           f->alert_id, hvs_alert_status_name(e->status));
    e->status = to;
    e->feedback_at = f->labelled_at;
    hvs_alertbook_copy(e->technician, sizeof e->technician, f->technician_id);
    hvs_alertbook_copy(e->root_cause, sizeof e->root_cause, f->root_cause ? f->root_cause : "");
    hvs_alertbook_copy(e->comment, sizeof e->comment, f->comment ? f->comment : "");
    x->dirty = x->publish = true;
    if (!a)
        return 1;
    if (f->label == HVS_FEEDBACK_FALSE_POSITIVE && f->root_cause &&
        al_workflow_benign(benign_causes, f->root_cause)) {
        a->sup_from = e->first_seen;
        a->sup_until = f->labelled_at + fp_suppress_ms;
        a->sup_type = e->type;
        hvs_alertbook_copy(a->sup_cause, sizeof a->sup_cause, f->root_cause);
        for (char *c = a->sup_cause; *c; c++)
            if ((unsigned char)*c < 0x20)
                *c = ' '; /* the apartment's state text is line-based */
        a->dirty = true;
    } else if (a->sup_until && a->sup_from == e->first_seen && a->sup_type == e->type) {
        /* this alert's benign verdict, corrected: its window goes with it (from the correction
         * on: what it suppressed before stays as judged) */
        if (a->sup_until > f->labelled_at)
            a->sup_until = f->labelled_at;
        a->dirty = true;
    }
    return 1;
}
