/*
 * calendar.h - local time and the calendar effects on energy use (seed 001, challenge 2):
 * public holidays of a country, state or canton, bridge days, school holidays, the Christmas
 * period, and the local UTC offset (daylight saving time). Shared by the simulator (occupancy)
 * and the features worker (calendar features), so training and serving see the same calendar.
 *
 * Regions ("holiday_region" of a Building) come from a region file (format and the list in
 * data/calendar/regions.ini, embedded into the library at build time): each region has a code
 * ("CH-ZH", "DE-BE", "FR", "US-NY"), an optional parent it inherits holidays, school holidays
 * and zone from, an IANA time zone, holiday rules (fixed dates, Easter offsets, n-th or last
 * weekday of a month, weekday on/after a date, observed-day rules, year ranges) and school
 * holiday spans by rule - an approximation of the published dates, not a copy of them. Users
 * extend or override it with their own file (HVS_CALENDAR_FILE, read by hvs_calendar_load).
 * Local time is the region's zone in ICU's tz database (offset per UTC instant, transitions
 * cached per calendar, so the per-vector lookup is two comparisons between transitions).
 * Bridge day: a working day (Mon-Fri, not a holiday) between a holiday and a weekend or another
 * holiday (e.g. the Friday after Ascension). Christmas period: 24 December to 6 January.
 *
 * Dates are local calendar dates (year, month 1-12, day 1-31). hvs_calendar_day takes a UTC
 * instant and classifies the local date it falls on.
 *
 * Ownership: hvs_calendar_new returns a calendar the caller frees with hvs_calendar_destroy
 * (NULL-safe); it caches computed years and the current zone offset internally. Strings in
 * hvs_day_info_t and from hvs_calendar_region/_zone/_regions live as long as the process (a
 * region database replaced by hvs_calendar_load is kept, never freed).
 * Thread-safety: a calendar is not thread-safe (its caches fill lazily, even through the const
 * functions); use one per thread. hvs_calendar_load: at start-up, before calendars are made in
 * other threads; the first hvs_calendar_new without it loads the built-in file (locked).
 * Errors: hvs_calendar_new returns HVS_EINVAL (reason "unknown_region", message naming it) for
 * a region the database does not hold, HVS_ENOMEM when out of memory. hvs_calendar_load
 * returns HVS_EINVAL (reason "calendar_file") with "FILE:LINE: what" for a file it cannot read,
 * a malformed line, an undefined parent, a parent loop, a drop of a holiday not inherited, or a
 * region without a zone ICU knows; the database in use is then unchanged. Years outside
 * 1970-2199 classify as plain days (no holidays).
 */
#ifndef HVS_CALENDAR_H
#define HVS_CALENDAR_H

#include <stdbool.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/time.h"

typedef struct hvs_calendar hvs_calendar_t;

typedef struct hvs_day_info {
    int year, month, day;     /* local date */
    int weekday;              /* 0 = Monday .. 6 = Sunday */
    bool weekend;             /* Saturday or Sunday */
    bool holiday;             /* public holiday in the region */
    const char *holiday_name; /* "Ascension", ...; "" when not a holiday */
    bool bridge_day;
    bool school_holiday;
    bool christmas_period;  /* 24 Dec .. 6 Jan */
    bool workday;           /* !weekend && !holiday */
    int days_until_holiday; /* 0 on a holiday; capped at 366 */
    int days_since_holiday; /* 0 on a holiday; capped at 366 */
} hvs_day_info_t;

/* Loads the region database: the built-in file, then `path` (NULL or "": none) on top - a
 * section of a known region extends it, a new one adds a region. Logs the region count. */
int hvs_calendar_load(const char *path, hvs_err_t *err);
int hvs_calendar_new(const char *region, hvs_calendar_t **out, hvs_err_t *err);
void hvs_calendar_destroy(hvs_calendar_t *c);
const char *hvs_calendar_region(const hvs_calendar_t *c);
/* The region's IANA time zone ("Europe/Zurich"). */
const char *hvs_calendar_zone(const hvs_calendar_t *c);
/* The version of ICU's tz database ("2022e"). */
const char *hvs_calendar_tz_version(void);
/* The regions known, NULL-terminated, in file order (kept for the process, see Ownership). */
const char *const *hvs_calendar_regions(void);

/* Local UTC offset in ms at UTC instant t (in Zurich 3600000 in winter, 7200000 in summer). */
hvs_ms_t hvs_calendar_utc_offset(const hvs_calendar_t *c, hvs_ms_t t);
/* Local date of UTC instant t, classified. */
void hvs_calendar_day(hvs_calendar_t *c, hvs_ms_t t, hvs_day_info_t *out);
/* Classify a local date directly. */
void hvs_calendar_date(hvs_calendar_t *c, int year, int month, int day, hvs_day_info_t *out);
/* Local time of day of UTC instant t in hours [0, 24), e.g. 7.25 for 07:15 local. */
double hvs_calendar_local_hour(const hvs_calendar_t *c, hvs_ms_t t);

/* Gregorian Easter Sunday of a year (month 3 or 4, day). */
void hvs_calendar_easter(int year, int *month, int *day);

/*
 * The calendars of the regions a worker's buildings name, each made on first use: what every
 * worker that computes features keeps (features, trainer, forecaster). A building whose region
 * is empty or unknown gets the default region's, and an unknown region is warned about once per
 * building (naming the building and the region), not per vector. The set owns its calendars
 * (hvs_calendars_destroy, NULL-safe); same thread-safety as a calendar.
 */
typedef struct hvs_calendars hvs_calendars_t;
/* NULL on ENOMEM; default_region must be known (checked here: NULL too when it is not). */
hvs_calendars_t *hvs_calendars_new(const char *default_region, const char *component);
void hvs_calendars_destroy(hvs_calendars_t *cs);
/* The calendar of region (NULL or "": the default); NULL only on ENOMEM. */
hvs_calendar_t *hvs_calendars_get(hvs_calendars_t *cs, const char *region, const char *building);

#endif
