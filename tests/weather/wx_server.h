/*
 * wx_server.h - a loopback Open-Meteo-compatible server for hvs-weather's tests and benchmark,
 * on the project's HTTP server (hvs/http.h, libmicrohttpd). GET /v1/forecast answers per
 * location (chosen by latitude) according to its scenario; GET /v1/status answers a clock
 * {"now": ISO} when one is set (test time at `speed` x, so hours pass in seconds).
 *
 * The good body: hours base-24h .. base-2h and base+2h .. base+47h (base = the hour the server
 * started in, or of the clock's start), so none crosses the OBSERVED/FORECAST boundary of the
 * wall clock during a test; values are a deterministic function of latitude and hour (the body
 * is byte-identical on every request); one value and one whole hour are null; the variable
 * names are echoed from the request's `hourly` (as Open-Meteo does).
 *
 * Ownership: start allocates, stop frees (NULL-safe; a slow answer in progress is cut short).
 * Thread-safety: handlers run on libmicrohttpd's threads; every function here may be called
 * from the test thread meanwhile (one mutex).
 */
#ifndef WX_SERVER_H
#define WX_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "hvs/time.h"

typedef enum wx_scn {
    WX_SCN_GOOD = 0,
    WX_SCN_500_THEN_GOOD, /* first request 500, then good */
    WX_SCN_429_THEN_GOOD, /* first request 429 with Retry-After: 1, then good */
    WX_SCN_SLOW,          /* every answer after slow_ms (beyond the client's timeout) */
    WX_SCN_TRUNCATED,     /* the good body cut in half */
    WX_SCN_UNEQUAL,       /* relative humidity one entry short */
    WX_SCN_STRING,        /* a temperature as a JSON string */
    WX_SCN_ABSURD,        /* a temperature of 75 degC */
    WX_SCN_TZ,            /* utc_offset_seconds 3600, timezone Europe/Zurich */
    WX_SCN_ETAG,          /* good, with ETag and Last-Modified; a matching If-None-Match -> 304 */
    WX_SCN_TOO_LARGE,     /* a valid body padded past 5 MiB */
    WX_SCN_404,           /* 404 with an Open-Meteo error body */
    WX_SCN_DOWN,          /* 503 always */
} wx_scn_t;

typedef struct wx_server wx_server_t;

#define WX_SERVER_LOG_MAX 32

typedef struct wx_server_log {
    int requests;
    int64_t arrived_ms[WX_SERVER_LOG_MAX];     /* wall clock, per request */
    hvs_ms_t arrived_clock[WX_SERVER_LOG_MAX]; /* the server's clock at arrival (clock set) */
    int conditional;                           /* requests with a matching If-None-Match */
    int not_modified;                          /* 304 answers */
    int64_t first_good_ms;                     /* wall clock when the first good body was sent */
} wx_server_log_t;

/* Value of `name` in a percent-encoded query string, decoded into out: 1 found, 0 not. */
int wx_query_get(const char *q, const char *name, char *out, size_t outlen);
int wx_server_start(wx_server_t **out);
void wx_server_stop(wx_server_t *s);
uint16_t wx_server_port(const wx_server_t *s);

void wx_server_set(wx_server_t *s, double latitude, wx_scn_t scn);
void wx_server_set_slow_ms(wx_server_t *s, int ms);
/* /v1/status answers t0 + (wall time since this call) * speed. */
void wx_server_set_clock(wx_server_t *s, hvs_ms_t t0, double speed);
hvs_ms_t wx_server_clock_now(wx_server_t *s);
hvs_ms_t wx_server_base_hour(const wx_server_t *s);

/* What GOOD answers for a location with these hourly names (malloc'd; caller frees). */
char *wx_server_good_body(wx_server_t *s, double latitude, double longitude, const char *hourly,
                          size_t *len);
/* Requests seen for a location (0 when it has none). */
int wx_server_log(wx_server_t *s, double latitude, wx_server_log_t *out);
uint64_t wx_server_requests(wx_server_t *s);

/* ---- reading topics back in tests ---- */
#include <jansson.h>
/* The value of a Prometheus sample "name{labels}" (or "name") in text; -1 when absent. */
double wx_test_metric(const char *text, const char *sample);

#endif
