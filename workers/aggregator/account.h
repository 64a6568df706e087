/*
 * account.h - the uncounted-energy account of one heat meter (an apartment's heating counter):
 * per UTC day, the counted and the uncounted heating energy (kWh; implausible jumps, windows.h)
 * of each of its hourly windows as last published. The day's share uncounted / (counted +
 * uncounted) is judged against HVS_AGG_UNCOUNTED_ALERT_SHARE once the day is closed (its last
 * hour published, or an hour of a later day), and again whenever a revision changes it; the
 * DATA_QUALITY alert goes out once per meter and day (alerted).
 *
 * Each hour holds the values of its latest publication, replaced (never added to) by a revision,
 * and the day's sums are taken over the hours in hour order: publishing a window twice (a replay)
 * or revising it leaves the account as if that value alone had been published. The account is
 * state (persist.h, key hvs:{B}:agg:dq), written in the batch's exactly-once state write, so a
 * restart continues the day where the last committed batch left it.
 *
 * Ownership: agg_account_t is embedded in its apartment (zeroed = empty) and freed with
 * agg_account_fini. Thread-safety: none. Errors: HVS_ENOMEM; a stored value that does not
 * parse is HVS_ESERDE.
 */
#ifndef AGG_ACCOUNT_H
#define AGG_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/time.h"

#define AGG_DAY_MS 86400000LL
#define AGG_DAY_HOURS 24

typedef struct agg_day {
    hvs_ms_t day;   /* UTC midnight */
    uint32_t hours; /* bit h: the window of hour h was published */
    bool alerted;   /* the day's DATA_QUALITY alert is out */
    bool dirty;     /* changed since the last state write */
    double counted[AGG_DAY_HOURS], uncounted[AGG_DAY_HOURS];
} agg_day_t;

typedef struct agg_account {
    agg_day_t *d; /* sorted by day */
    size_t n, cap;
} agg_account_t;

/* Record the hourly window starting at ws as published with (counted, uncounted) kWh; *delta =
 * uncounted minus what that hour held before (0 before). Returns the day, or NULL on ENOMEM. */
agg_day_t *agg_account_set(agg_account_t *acc, hvs_ms_t ws, double counted, double uncounted,
                           double *delta);
/* The day's sums over its published hours. */
double agg_day_counted(const agg_day_t *d);
double agg_day_uncounted(const agg_day_t *d);
/* Whether day i of acc is closed: its last hour published, or an hour of a later day. */
bool agg_account_closed(const agg_account_t *acc, size_t i);
/* Whether day i is due its alert: closed, not alerted, uncounted > 0 and above share x total. */
bool agg_account_due(const agg_account_t *acc, size_t i, double share);

/* The stored value of a day, format 1: 0x01, alerted (0x00|0x01), then per published hour its
 * hour byte, counted and uncounted kWh (pack.h doubles: read back bit for bit). Returns the
 * length (at most AGG_DAY_TEXT_MAX). Parse reads it and the text of before format 1:
 * "<alerted 0|1>" then " <hour>:<counted>:<uncounted>" per published hour. */
#define AGG_DAY_TEXT_MAX (2 + AGG_DAY_HOURS * 70)
size_t agg_day_encode(const agg_day_t *d, char *buf);
/* Parse a stored day into acc (replacing that day). */
int agg_account_parse(agg_account_t *acc, hvs_ms_t day, const char *v, size_t len, hvs_err_t *err);

/* Drop the days that ended at or before `before`; *dropped gets each dropped day (up to cap;
 * returns how many were dropped). */
size_t agg_account_forget(agg_account_t *acc, hvs_ms_t before, hvs_ms_t *dropped, size_t cap);
void agg_account_fini(agg_account_t *acc);

#endif
