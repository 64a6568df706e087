/*
 * alertbook.h - the alerter's book of apartment alerts (docs/design.md section 9): every alert
 * it judged, raised or not, with why, as hvs-alerter keeps it in Redis and `hvsctl alerts`
 * reads it back.
 *
 * An entry is one alert id ("<apartment>#<YYYY-MM-DD>#<TYPE>", alert.h) and its disposition:
 *   CANDIDATE   an episode above the open threshold, waiting for a place in its team's daily
 *               top-k list (it may enter a later day's list while it lasts);
 *   RAISED      published on `alerts` (in a daily list with its rank, or CRITICAL: at once);
 *   SUPPRESSED  a known benign pattern explains it (`reason`); never published;
 *   EXPIRED     its episode ended without it making a list; never published.
 * The workflow status (UNSEEN .. RESOLVED_*) and the technician's last feedback belong to raised
 * entries.
 *
 * Redis (the hash tag keeps a building's keys in one cluster slot):
 *   hvs:{B}:al:alerts   HASH alert id -> hvs_alertbook_format text (one line, '|'-separated,
 *                       '%'-escaped strings, version prefix "a1")
 *   hvs:al:buildings    SET of buildings with an alert book (what hvsctl lists)
 *
 * Ownership: hvs_alertbook_entry_t is a plain value (fixed buffers, longer text is cut at a UTF-8
 * boundary). Thread-safety: pure functions. Errors: format returns the length or -1 when buf is
 * too small; parse returns 0, or HVS_EINVAL with err naming the field that does not parse.
 */
#ifndef HVS_ALERTBOOK_H
#define HVS_ALERTBOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/alert.h"
#include "hvs/err.h"
#include "hvs/time.h"

typedef enum hvs_alertbook_disposition {
    HVS_ALERTBOOK_CANDIDATE = 0,
    HVS_ALERTBOOK_RAISED,
    HVS_ALERTBOOK_SUPPRESSED,
    HVS_ALERTBOOK_EXPIRED
} hvs_alertbook_disposition_t;

#define HVS_ALERTBOOK_ID_MAX 300
#define HVS_ALERTBOOK_NAME_MAX 96
#define HVS_ALERTBOOK_TEXT_MAX 512
#define HVS_ALERTBOOK_LINE_MAX 4096 /* enough for any entry's text */

typedef struct hvs_alertbook_entry {
    char id[HVS_ALERTBOOK_ID_MAX];
    char building[HVS_ALERTBOOK_ID_MAX], apartment[HVS_ALERTBOOK_ID_MAX];
    char team[HVS_ALERTBOOK_NAME_MAX];  /* "" = the default team */
    char model[HVS_ALERTBOOK_NAME_MAX]; /* "<name>:<version>" of the best hour, "" = rules */
    hvs_alert_type_t type;
    hvs_alert_severity_t severity;
    hvs_alert_status_t status;
    hvs_alertbook_disposition_t disposition;
    char reason[HVS_ALERTBOOK_NAME_MAX];  /* why suppressed / expired, e.g. "vacancy" */
    bool open;                            /* its episode still lasts */
    double score;                         /* highest hourly score of the episode */
    int rank;                             /* place in the daily list it was raised in; 0 none */
    hvs_ms_t first_seen, updated_at;      /* first and latest hour of the episode (event time) */
    hvs_ms_t list_day;                    /* UTC day of the list that raised it; 0 none */
    uint32_t rules;                       /* hvs_alertbook_rule bits of every hour */
    int hours;                            /* hours at or above the open threshold */
    double max_rule, max_z, max_prob;     /* strongest evidence of each kind (NaN none) */
    char reasons[HVS_ALERTBOOK_TEXT_MAX]; /* the best hour's reasons, "; "-joined */
    /* the latest accepted feedback (raised entries) */
    hvs_ms_t feedback_at; /* labelled_at; 0 none */
    char technician[HVS_ALERTBOOK_NAME_MAX], root_cause[HVS_ALERTBOOK_NAME_MAX];
    char comment[HVS_ALERTBOOK_TEXT_MAX];
} hvs_alertbook_entry_t;

/* The scorer's rule names (AnomalyScore.rules) as bits; unknown names have no bit. */
typedef enum hvs_alertbook_rule {
    HVS_RULE_STUCK_VALVE = 1u << 0,
    HVS_RULE_NO_HEAT_RESPONSE = 1u << 1,
    HVS_RULE_SENSOR_FLATLINE = 1u << 2,
    HVS_RULE_SENSOR_MISMATCH = 1u << 3,
    HVS_RULE_CONSUMPTION_WITHOUT_DEMAND = 1u << 4
} hvs_alertbook_rule_t;
#define HVS_RULE_COUNT 5

uint32_t hvs_alertbook_rule_bit(const char *name);
const char *hvs_alertbook_rule_name(int i); /* of bit 1 << i */

/* The UTC day (ms) an alert id names ("<entity>#<YYYY-MM-DD>#<TYPE>"), HVS_MS_NONE if none. */
hvs_ms_t hvs_alertbook_id_day(const char *id);

const char *hvs_alertbook_disposition_name(hvs_alertbook_disposition_t d); /* "CANDIDATE", ... */
int hvs_alertbook_disposition_parse(const char *s, hvs_alertbook_disposition_t *out);
int hvs_alert_status_parse(const char *s, hvs_alert_status_t *out); /* 0 or -1 */

/* Copy the string src into dst (cap bytes, NUL-terminated); a longer text is cut before the
 * UTF-8 character that does not fit whole. Returns the bytes kept. */
size_t hvs_alertbook_copy(char *dst, size_t cap, const char *src);

/* The entry as one line of text (no newline); its length, or -1 when it does not fit in len. */
int hvs_alertbook_format(const hvs_alertbook_entry_t *e, char *buf, size_t len);
/* Parse what hvs_alertbook_format wrote (n bytes, not NUL-terminated). */
int hvs_alertbook_parse(const char *s, size_t n, hvs_alertbook_entry_t *e, hvs_err_t *err);

/* The alert record of a raised entry (strings point into e and into ev, which holds the
 * evidence pairs: evtext[HVS_ALERTBOOK_EVIDENCE][48] values, names static). */
#define HVS_ALERTBOOK_EVIDENCE 12
void hvs_alertbook_to_alert(const hvs_alertbook_entry_t *e, hvs_alert_t *a,
                            const char *ev[2 * HVS_ALERTBOOK_EVIDENCE + 1],
                            char evtext[HVS_ALERTBOOK_EVIDENCE][HVS_ALERTBOOK_NAME_MAX],
                            char *summary, size_t summary_len);

#endif
