/*
 * calendar.h - local time and the calendar effects on energy use (seed 001, challenge 2):
 * public holidays of a country or canton, bridge days, school holidays, the Christmas period,
 * and the local UTC offset (daylight saving time). Shared by the simulator (occupancy) and the
 * features worker (calendar features), so training and serving see the same calendar.
 *
 * Regions ("holiday_region" of a Building): "CH" (federal: New Year, Good Friday, Easter Monday,
 * Ascension, Whit Monday, 1 August, Christmas, St Stephen's) and the cantons "CH-ZH", "CH-BE",
 * "CH-BS", "CH-GE", "CH-VD", "CH-LU", "CH-TI" with their own holidays (e.g. Berchtoldstag 2 Jan,
 * Labour Day 1 May in ZH/BS/TI, Jeûne genevois in GE, Lundi du Jeûne in VD, Corpus Christi,
 * Assumption, Immaculate Conception in LU/TI), and "DE-BY" (Bavaria). Every region's time zone
 * is Central European (CET/CEST, EU rule: summer time from the last Sunday of March 01:00 UTC
 * to the last Sunday of October 01:00 UTC). Moveable feasts follow Gregorian Easter.
 * School holidays are the region's usual pattern (sports holidays in February, two weeks
 * around Easter, summer from early July for five to six weeks, two weeks in October, Christmas
 * to the first week of January), computed by rule for any year: an approximation of the
 * published dates, not a copy of them.
 * Bridge day: a working day (Mon-Fri, not a holiday) between a holiday and a weekend or another
 * holiday (e.g. the Friday after Ascension). Christmas period: 24 December to 6 January.
 *
 * Dates are local calendar dates (year, month 1-12, day 1-31). hvs_calendar_day takes a UTC
 * instant and classifies the local date it falls on.
 *
 * Ownership: hvs_calendar_new returns a calendar the caller frees with hvs_calendar_destroy
 * (NULL-safe); it caches computed years internally. Strings in hvs_day_info_t are static.
 * Thread-safety: a calendar is not thread-safe (its cache fills lazily); use one per thread.
 * Errors: hvs_calendar_new returns HVS_EINVAL (reason "unknown_region", message naming it) for
 * a region it does not know, HVS_ENOMEM when out of memory. Years outside 1970-2199 classify
 * as plain days (no holidays).
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

int hvs_calendar_new(const char *region, hvs_calendar_t **out, hvs_err_t *err);
void hvs_calendar_destroy(hvs_calendar_t *c);
const char *hvs_calendar_region(const hvs_calendar_t *c);
/* The regions known, NULL-terminated (static). */
const char *const *hvs_calendar_regions(void);

/* Local UTC offset in ms at UTC instant t (3600000 in winter, 7200000 in summer). */
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
 * is empty or unknown gets the default region's, and an unknown region is warned about once
 * (naming the first building that had it), not per vector. The set owns its calendars
 * (hvs_calendars_destroy, NULL-safe); same thread-safety as a calendar.
 */
typedef struct hvs_calendars hvs_calendars_t;
/* NULL on ENOMEM; default_region must be known (checked here: NULL too when it is not). */
hvs_calendars_t *hvs_calendars_new(const char *default_region, const char *component);
void hvs_calendars_destroy(hvs_calendars_t *cs);
/* The calendar of region (NULL or "": the default); NULL only on ENOMEM. */
hvs_calendar_t *hvs_calendars_get(hvs_calendars_t *cs, const char *region, const char *building);

#endif
