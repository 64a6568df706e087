/*
 * poller.h - the engine of hvs-weather: the buildings of `topology` as locations, polled once
 * per interval through the client (client.h), each response validated (openmeteo.h), stamped
 * with the clock, and what changed published (publish.h); outages alerted (alert.h).
 *
 * Rounds: every `interval` a round starts; each location's request is due at round start plus
 * a fixed offset in [0, min(spread, interval)) taken from a hash of its id, so requests spread
 * evenly and a building keeps its slot from round to round. A building new in topology is polled
 * at its slot of the current round (at once when that slot has passed). A location whose
 * previous poll is still busy at its slot is skipped this round (hvs_weather_polls_total
 * {result="skipped"}). A round is complete when each of its polls ended; its duration is
 * hvs_weather_round_seconds.
 *
 * The clock ("now", N): without clock_url the wall clock; with it, the JSON {"now": ISO-8601}
 * it answers (the simulator's /v1/status). A response is stamped with a clock reading taken
 * after it arrived: the wall clock when it is processed, or the answer of a clock request
 * started after it arrived (one such request at a time, at most every 100 ms, and at every
 * round start; responses that arrive meanwhile wait for the next one). So issued_at is never
 * earlier than the moment the values were fetched. An hour h of a response stamped N is
 * OBSERVED when h + 1 h <= N. When a clock request fails, the responses waiting for it are
 * dropped (polled again next round) and counted as failures ("clock_unavailable"). Between
 * readings, time for outage checks is the last reading advanced by the wall time since at the
 * clock's measured rate (from readings at least 1 s apart; 1x until known).
 *
 * Unchanged answers: requests carry If-None-Match / If-Modified-Since from the last good
 * response of the location when it gave ETag / Last-Modified; a 304, or a 200 whose body hashes
 * (64-bit FNV-1a) the same as the last good one, is not parsed again: the last response is
 * replayed from the history at the new N (only FORECAST -> OBSERVED transitions publish).
 *
 * Bad responses (HTTP errors, too large, every openmeteo.h reason, a 304 to an unconditional
 * request): a warn log naming the building, the URL and what was wrong,
 * hvs_weather_bad_responses_total{reason}, and nothing of that response is used.
 *
 * Outage: a building without a good response for `outage` (clock time) since its last good one
 * (or since its first poll) gets a building-level DATA_QUALITY alert (evidence: source=weather,
 * url, last_success, since, failures, last_error), re-published at most once per clock hour
 * while it lasts (same alert id: first_seen stays); recovery is logged.
 *
 * Ownership: the poller owns its locations, client and buffers; publisher, alerter and metrics
 * are borrowed (must outlive it). Strings in conf are copied.
 * Thread-safety: one thread. Errors: 0 or negative hvs_rc_t; a failure to queue a record or an
 * alert (the producer's queue stayed full) is returned and is fatal to the worker.
 */
#ifndef WX_POLLER_H
#define WX_POLLER_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "hvs/alert.h"
#include "hvs/metrics.h"
#include "hvs/topology.h"
#include "publish.h"

typedef struct wx_poller_conf {
    const char *base_url;
    const char *clock_url; /* NULL or "": wall clock */
    const char *hourly;    /* Open-Meteo variable names, comma-separated */
    int past_days, forecast_days;
    int64_t interval_ms, spread_ms, outage_ms;
    wx_client_conf_t client;
} wx_poller_conf_t;

typedef struct wx_poller wx_poller_t;

int wx_poller_new(const wx_poller_conf_t *conf, wx_publisher_t *pub, hvs_alerter_t *alerter,
                  hvs_metrics_t *metrics, wx_poller_t **out, hvs_err_t *err);
void wx_poller_destroy(wx_poller_t *p);

/* Make the locations the buildings of topology (b sorted by id, as hvs_topology_buildings
 * gives them): new ones added, removed ones dropped (after their poll in flight ends), moved
 * ones polled again at once. Buildings without valid coordinates are skipped with a warning. */
int wx_poller_sync(wx_poller_t *p, const hvs_building_t *b, size_t n, hvs_err_t *err);

/* Start rounds (if not yet), submit what is due, drive transfers for up to timeout_ms, process
 * what arrived. */
int wx_poller_step(wx_poller_t *p, int timeout_ms, hvs_err_t *err);

/* Shutdown: nothing new is submitted, queued requests are cancelled, in-flight ones finish and
 * are processed, for at most timeout_ms. */
int wx_poller_drain(wx_poller_t *p, int timeout_ms, hvs_err_t *err);

/* Deliveries were lost: forget what was published (and the cached validators), so the next
 * poll of every location publishes all of its hours again. */
void wx_poller_forget(wx_poller_t *p);

size_t wx_poller_locations(const wx_poller_t *p);

/* 64-bit FNV-1a (the identical-body check). */
uint64_t wx_hash64(const void *data, size_t len);

#endif
