/*
 * backfill.h - `hvs-weather --backfill FROM..TO`: historical hourly weather for every building
 * of `topology` from an Open-Meteo-compatible archive API (the historical endpoint,
 * <archive>/v1/archive?...&start_date=YYYY-MM-DD&end_date=YYYY-MM-DD, the forecast API's JSON
 * shape), published as OBSERVED Weather records (publish.h) to weather.hourly.
 *
 * Requests: per building, the days FROM..TO (both inclusive, UTC) in chunks of `chunk_days`
 * (the last one shorter), one chunk after the other (so a building's records go out in hour
 * order, the issue order the features worker expects), buildings in parallel through the live
 * poller's client (client.h: same concurrency, timeouts, retries, backoff, 429 handling).
 * Each answer is validated whole by wx_openmeteo_parse (openmeteo.h) as if read at the end of
 * its last day; only its hours inside the chunk that are over on the wall clock and carry at
 * least one value are published.
 *
 * Records: kind OBSERVED, issued_at = the end of the hour (when it was observed), the
 * publisher's provider (the worker uses HVS_WEATHER_ARCHIVE_PROVIDER, "open-meteo-archive",
 * so backfilled hours are told apart from the live poller's). Nothing depends on when the
 * backfill runs: re-running a range republishes the same records under the same keys.
 *
 * A permanent failure (an answer other than 200 after the retries, a refused body) stops the
 * run: nothing more is requested, the error names the building, the chunk's dates, the URL and
 * what went wrong. Records of chunks already done stay published (re-running is harmless).
 *
 * Ownership: the caller's publisher, producer and metrics are borrowed. Thread-safety: one
 * thread. Errors: 0, HVS_EINVAL (bad range or setting), HVS_EIO (a permanent fetch failure or
 * bad answer), HVS_ENOMEM, or the producer's error.
 */
#ifndef WX_BACKFILL_H
#define WX_BACKFILL_H

#include <stddef.h>

#include "client.h"
#include "hvs/topology.h"
#include "publish.h"

typedef struct wx_backfill_conf {
    const char *archive_url;   /* base URL; <base>/v1/archive is requested */
    const char *hourly;        /* the `hourly` parameter (openmeteo.h names) */
    hvs_ms_t from_day, to_day; /* 00:00 UTC of the first and the last day (inclusive) */
    int chunk_days;            /* days per request, 1..92 */
    wx_client_conf_t client;
} wx_backfill_conf_t;

typedef struct wx_backfill_stats {
    size_t buildings, requests, hours; /* hours: records queued */
} wx_backfill_stats_t;

/* "YYYY-MM-DD..YYYY-MM-DD" (FROM <= TO, TO not after today UTC): 00:00 UTC of both days. */
int wx_backfill_range(const char *s, hvs_ms_t now, hvs_ms_t *from_day, hvs_ms_t *to_day,
                      hvs_err_t *err);

/* <base>/v1/archive?latitude=..&longitude=..&start_date=..&end_date=..&hourly=..
 * &windspeed_unit=ms&timezone=GMT: the length, or -1 when it does not fit. */
int wx_archive_url(char *buf, size_t len, const char *base, double latitude, double longitude,
                   const char *hourly, hvs_ms_t start_day, hvs_ms_t end_day);

/* Backfill the buildings b[0..n) (those without usable coordinates are skipped with a warning). */
int wx_backfill_run(const wx_backfill_conf_t *conf, const hvs_building_t *b, size_t n,
                    wx_publisher_t *pub, hvs_producer_t *prod, const char *topic,
                    hvs_metrics_t *metrics, wx_backfill_stats_t *stats, hvs_err_t *err);

#endif
