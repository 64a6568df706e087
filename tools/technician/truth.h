/*
 * truth.h - hvs-technician's ground truth and verdicts: the simulator's labels file
 * (`hvs-simulator --labels-out FILE`, JSON lines written by tools/simulator/output.c
 * sim_format_label) read into memory, and the verdict a technician who always finds the truth
 * would give an alert.
 *
 * Labels file: one JSON object per line, {"building_id": "bldg_001" | null, "apartment_id":
 * "apt_001_003" | null, "room": ... , "category": "fault" | "benign" | "delivery" | "weather",
 * "type": "stuck_valve" | "vacation" | ..., "start_ms": N, "end_ms": N, ...}. The ids are the
 * fleet's own (sim_building_t.id, sim_apartment_t.id): the same strings the simulator puts in
 * its Reading records, hence in every Aggregate, score and Alert; no mapping is needed. Only
 * "fault" and "benign" labels of one apartment (both ids non-null) are kept; the others
 * (delivery, weather, building-level) say nothing of an apartment's alert.
 * The file may still be growing (a simulation running beside the technician):
 * tech_truth_refresh reads the complete lines appended since the last call.
 *
 * Verdict of an alert on apartment A of building B with evidence span [lo, hi] (first_seen -
 * margin, updated_at + margin): a fault label of B/A whose [start_ms, end_ms) overlaps it ->
 * TRUE_POSITIVE, root cause the fault's type; else a benign one -> FALSE_POSITIVE, root cause
 * the benign type's name (vacation, guest_stay, manual_override, night_shift, move_in); else
 * FALSE_POSITIVE "no_fault_found". Of several overlapping labels the one overlapping most wins
 * (then the earliest start, then the first in the file).
 *
 * Ownership: tech_truth_t is the caller's; tech_truth_open fills it, tech_truth_fini frees it
 * (safe after a failed open). Root causes returned are static or owned by the truth (valid until
 * fini). Thread-safety: one thread. Errors: 0, or HVS_EIO (the file) / HVS_EINVAL (a line that
 * is not a label, naming its line number) / HVS_ENOMEM, err filled.
 */
#ifndef HVS_TECH_TRUTH_H
#define HVS_TECH_TRUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hvs/err.h"
#include "hvs/feedback.h"
#include "hvs/time.h"

typedef struct tech_label {
    char *building, *apartment, *type;
    bool fault; /* else benign */
    hvs_ms_t start, end;
    size_t seq; /* order in the file */
} tech_label_t;

typedef struct tech_truth {
    char *path;
    FILE *file;
    long lineno;
    char *pending; /* an incomplete last line, kept until its newline arrives */
    size_t npending;
    tech_label_t *labels; /* sorted by (building, apartment) once refreshed */
    size_t n, cap;
    size_t ignored; /* lines of other categories or levels */
} tech_truth_t;

int tech_truth_open(tech_truth_t *t, const char *path, hvs_err_t *err);
/* Read what was appended since the last call. */
int tech_truth_refresh(tech_truth_t *t, hvs_err_t *err);
void tech_truth_fini(tech_truth_t *t);

/* The benign type's root cause ("guests" -> "guest_stay"; others keep their name). */
const char *tech_benign_cause(const char *type);

/* The verdict on an apartment's alert; *cause is static or the truth's. */
hvs_feedback_label_t tech_truth_judge(const tech_truth_t *t, const char *building,
                                      const char *apartment, hvs_ms_t lo, hvs_ms_t hi,
                                      const char **cause);

/* A deterministic draw in [0, 1) from (seed, id, salt): the same for every run. */
double tech_draw(uint64_t seed, const char *id, uint64_t salt);

/* How the technician answers (hvs-technician's HVS_TECH_* settings). */
typedef struct tech_conf {
    hvs_ms_t margin_ms, delay_ms; /* evidence span margin; labelled_at = updated_at + delay */
    uint64_t seed;                /* of the draws */
    double error_rate, unanswered;
} tech_conf_t;

typedef struct tech_answer {
    bool answered;              /* false: left unanswered (the draw of salt 1) */
    hvs_feedback_label_t truth; /* the ground truth's verdict (tech_truth_judge) */
    const char *truth_cause;
    hvs_feedback_label_t label; /* what the technician says: the truth, or flipped by */
    const char *cause;          /* a mistake (the draw of salt 2) */
    bool mistaken;
    hvs_ms_t labelled_at;
} tech_answer_t;

/* The answer to an apartment's alert `id` of `type` (hvs_alert_type_t) with evidence from
 * first_seen to updated_at: left unanswered by the draw (seed, id, 1) < unanswered; else the
 * truth's verdict over [first_seen - margin, updated_at + margin], flipped when the draw
 * (seed, id, 2) < error_rate (a missed fault is "no_fault_found", a false alarm taken for a
 * fault gets the fault the alert's type suggests); labelled at updated_at + delay. The same
 * answer for every run. The caller refreshes the truth first. */
void tech_answer(const tech_truth_t *t, const tech_conf_t *c, const char *id, const char *building,
                 const char *apartment, int type, hvs_ms_t first_seen, hvs_ms_t updated_at,
                 tech_answer_t *out);

#endif
