/*
 * client.h - the HTTP fetcher of hvs-weather: one libcurl multi handle driving up to
 * `concurrency` transfers at once on a pool of reused easy handles (so connections, DNS and
 * TLS sessions are reused), from a queue of requests.
 *
 * Per request: connect timeout and total timeout per attempt; the body is capped at max_body
 * bytes (announced or received: the transfer is aborted, outcome WX_OUT_TOO_LARGE, no retry).
 * Retries (at most `retries` after the first attempt) for 5xx answers, timeouts, connection
 * and transfer errors, with exponential backoff and full jitter: attempt k (1-based) waits a
 * uniformly random time in [0, min(backoff_max, backoff * 2^(k-1))] (a 503's Retry-After, when
 * larger, wins). HTTP 429 is retried too, within the same budget, after the server's
 * Retry-After (seconds or an HTTP date; capped at 1 h; absent = the backoff), and pauses every
 * request to that host (scheme://host:port) until then. Other answers (2xx, 304, 4xx) are final.
 * A slow or failing request only ever holds its own slot: the others keep going.
 * Priority requests (the clock) go before queued ones and may use one slot beyond the limit.
 *
 * Stopping (shutdown): wx_client_stop cancels queued ordinary requests and pending retries
 * (their callbacks run with WX_OUT_CANCELLED), finishes later attempts without retrying them,
 * and refuses new requests except priority ones (which still run); in-flight transfers go on (wx_client_run) until
 * they end or the caller gives up and frees the client.
 *
 * Metrics (when a registry is given): hvs_weather_requests_total{outcome} per attempt
 * (ok, not_modified, http_4xx, http_429, http_5xx, timeout, connect_error, transfer_error,
 * too_large), hvs_weather_retries_total, hvs_weather_rate_limited_total (429 answers),
 * hvs_weather_request_seconds (per attempt).
 *
 * Ownership: the client owns its curl handles, queue and buffers; a request's strings are
 * copied at submit; the result passed to the callback is the client's, except `body`, which
 * the callback may take (set r->body = NULL, then free() it). Callbacks run inside
 * wx_client_run/wx_client_stop, never re-entrantly; they may submit new requests.
 * wx_client_destroy aborts what is in flight without callbacks.
 * Thread-safety: one thread. curl_global_init must have run (main does it at start).
 * Errors: 0 or negative hvs_rc_t (HVS_ENOMEM, HVS_EIO for a curl multi failure).
 */
#ifndef WX_CLIENT_H
#define WX_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/metrics.h"

typedef struct wx_client_conf {
    int concurrency;            /* parallel transfers (>= 1) */
    int64_t connect_timeout_ms; /* per attempt */
    int64_t timeout_ms;         /* whole transfer, per attempt */
    int retries;                /* further attempts after the first */
    int64_t backoff_ms;         /* base of the exponential backoff */
    int64_t backoff_max_ms;     /* cap of one backoff wait (0 = 60 s) */
    size_t max_body;            /* bytes */
    const char *user_agent;     /* may be NULL */
} wx_client_conf_t;

typedef enum wx_outcome {
    WX_OUT_HTTP = 0, /* an HTTP answer: see status */
    WX_OUT_TIMEOUT,
    WX_OUT_CONNECT,
    WX_OUT_TRANSFER, /* reset, cut short, protocol error, ... */
    WX_OUT_TOO_LARGE,
    WX_OUT_CANCELLED, /* dropped by wx_client_stop */
} wx_outcome_t;

typedef struct wx_result {
    wx_outcome_t outcome;
    long status; /* WX_OUT_HTTP: the status of the last attempt */
    char *body;  /* NUL-terminated; may be taken by the callback */
    size_t len;
    char etag[256]; /* "" when absent (or too long to keep) */
    char last_modified[64];
    int attempts;
    double seconds;      /* submit (or first start) to completion, retries included */
    double last_seconds; /* the last attempt alone */
    char error[256];     /* what went wrong, for logs ("" on 2xx/304) */
} wx_result_t;

typedef void (*wx_done_fn)(void *opaque, wx_result_t *r);

typedef struct wx_request {
    const char *url;
    const char *if_none_match;     /* may be NULL */
    const char *if_modified_since; /* may be NULL */
    bool priority;
    wx_done_fn done;
    void *opaque;
} wx_request_t;

typedef struct wx_client wx_client_t;

int wx_client_new(const wx_client_conf_t *conf, hvs_metrics_t *metrics, wx_client_t **out,
                  hvs_err_t *err);
void wx_client_destroy(wx_client_t *c);

/* Queue a request (started by the next wx_client_run). */
int wx_client_submit(wx_client_t *c, const wx_request_t *req, hvs_err_t *err);

/* Start what may start, wait up to timeout_ms for progress (less when a retry or a paused host
 * is due), run the callbacks of finished requests. */
int wx_client_run(wx_client_t *c, int timeout_ms, hvs_err_t *err);

/* See "Stopping" above. */
void wx_client_stop(wx_client_t *c);

size_t wx_client_inflight(const wx_client_t *c);
size_t wx_client_queued(const wx_client_t *c); /* waiting to start, retries included */

/* Retry-After value (delta seconds or HTTP date) as a delay from `now_s` (epoch seconds):
 * ms >= 0, or -1 when it does not parse. */
int64_t wx_retry_after_ms(const char *value, int64_t now_s);

#endif
