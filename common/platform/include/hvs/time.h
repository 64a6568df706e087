/*
 * time.h - event time: UTC epoch milliseconds, windows, ISO-8601, per-partition watermarks.
 *
 * Windows are aligned to the epoch (UTC): [start, start+size). A watermark is the event time up
 * to which a partition is believed complete: max event time seen - allowed out-of-orderness.
 * An idle partition (no event for `idle_timeout_ms` of wall time) advances by the wall time that
 * passed since it went idle, so windows still close when a partition goes quiet. It advances
 * from its own newest event (never to the wall clock: a replay of old data moves by the wall time
 * it pauses, not to today), and only while nothing of it waits to be read (hvs_watermark_touch).
 * idle_timeout_ms 0 never advances by wall time: a replay's result is then independent of timing.
 * The watermark of a set of partitions is the minimum over every partition seen so far, idle ones
 * counting with their advanced watermark. A partition's watermark never goes back: an event after
 * an idle spell continues from what the idle advance reached (that event is then late).
 * Partitions that have seen no event yet are not counted; remove revoked ones.
 *
 * Ownership: hvs_watermark_t is _new/_destroy (NULL-safe); it grows as partitions appear.
 * Thread-safety: none (one per consumer thread). Functions taking "now" take it as an argument
 * so tests and replays control the clock.
 * Errors: parse functions return 0 or HVS_EINVAL.
 */
#ifndef HVS_TIME_H
#define HVS_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"

typedef int64_t hvs_ms_t;

#define HVS_MS_SECOND INT64_C(1000)
#define HVS_MS_MINUTE (60 * HVS_MS_SECOND)
#define HVS_MS_15MIN (15 * HVS_MS_MINUTE)
#define HVS_MS_HOUR (60 * HVS_MS_MINUTE)
#define HVS_MS_DAY (24 * HVS_MS_HOUR)
#define HVS_MS_NONE INT64_MIN /* "no time yet" */

/* 2000-01-01T00:00:00Z: earliest event time we accept. */
#define HVS_MS_MIN_EVENT INT64_C(946684800000)

hvs_ms_t hvs_time_now_ms(void);  /* wall clock, UTC */
hvs_ms_t hvs_time_mono_ms(void); /* monotonic, for timeouts */

/* Start of the window of `size` ms containing t (floor, also for t < 0; HVS_MS_NONE when the
 * floor is below the int64 range; t itself when size <= 0). */
hvs_ms_t hvs_time_window_start(hvs_ms_t t, hvs_ms_t size);
/* Start of t's UTC day. */
hvs_ms_t hvs_time_day_start(hvs_ms_t t);
/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12, day 1-31), and back. */
int64_t hvs_time_days_from_civil(int64_t y, int m, int d);
void hvs_time_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/*
 * Parse ISO-8601 / RFC 3339: "2024-10-27T10:30:00Z", with optional fraction, "+02:00" offsets,
 * space instead of 'T'. A missing zone is rejected (we never guess local time).
 */
int hvs_time_parse_iso8601(const char *s, hvs_ms_t *out, hvs_err_t *err);
/* "2024-10-27T10:30:00.000Z" into buf (>= 25 bytes); returns buf. */
char *hvs_time_format_iso8601(hvs_ms_t t, char *buf, size_t buflen);

/* Is t a plausible event time at wall time `now`: >= 2000-01-01 and <= now + max_future_ms. */
bool hvs_time_plausible(hvs_ms_t t, hvs_ms_t now, hvs_ms_t max_future_ms);

/* a + b clamped to the int64 range (times near the ends stay ordered). */
hvs_ms_t hvs_time_add_sat(hvs_ms_t a, hvs_ms_t b);

/*
 * The one watermark rule, for any stream of events (a partition here, a building in the
 * aggregator): the newest event time max_event minus out_of_orderness_ms, advanced by the wall
 * time spent idle beyond idle_timeout_ms (0: never) since last_seen, never below floor
 * (what was already reported; HVS_MS_NONE: none). Pure.
 */
hvs_ms_t hvs_watermark_rule(hvs_ms_t max_event, hvs_ms_t last_seen, hvs_ms_t floor,
                            hvs_ms_t out_of_orderness_ms, hvs_ms_t idle_timeout_ms, hvs_ms_t now);

typedef struct hvs_watermark hvs_watermark_t;

hvs_watermark_t *hvs_watermark_new(hvs_ms_t out_of_orderness_ms, hvs_ms_t idle_timeout_ms);
void hvs_watermark_destroy(hvs_watermark_t *w);
/* An event with event time t was seen on partition p at wall time now. */
void hvs_watermark_observe(hvs_watermark_t *w, int32_t partition, hvs_ms_t t, hvs_ms_t now);
/* Watermark of one partition (HVS_MS_NONE if it has seen nothing). */
hvs_ms_t hvs_watermark_partition(const hvs_watermark_t *w, int32_t partition, hvs_ms_t now);
/* Minimum over every partition seen (idle ones count with their advanced watermark);
 * HVS_MS_NONE if none has seen an event. */
hvs_ms_t hvs_watermark_current(const hvs_watermark_t *w, hvs_ms_t now);
/* Partition p is not idle at `now` although no event came: it still has messages waiting to
 * be read (a consumer behind, not a quiet producer). What idleness already earned is kept; the
 * idle clock restarts. Callers touch every partition with pending input at the end of a batch,
 * so a partition's own pending data can never be made late by an idle advance. Unknown
 * partitions are ignored. */
void hvs_watermark_touch(hvs_watermark_t *w, int32_t partition, hvs_ms_t now);
/* Forget a partition (revoked). */
void hvs_watermark_remove(hvs_watermark_t *w, int32_t partition);

#endif
