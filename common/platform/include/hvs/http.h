/*
 * http.h - the small embedded HTTP server (libmicrohttpd) every worker runs:
 *   GET /metrics  Prometheus text of the worker's registry
 *   GET /healthz  200 "ok" while the process is alive
 *   GET /readyz   200 when the readiness callback says ready, else 503 with its reason
 * plus routes a worker adds (e.g. the serving API, the trainer's POST /train). Anything else:
 * 404; non-GET/HEAD on the fixed routes: 405 with "Allow: GET, HEAD". Request bodies larger than
 * 1 MiB are refused with 413 (before reading the body when Content-Length announces it).
 *
 * Admin requests: every method other than GET and HEAD on a worker route is mutating (so route
 * handlers must not change state on GET/HEAD). Once hvs_http_set_admin_token set a token, a
 * mutating request needs "Authorization: Bearer <token>", compared in constant time before the
 * body is read and before the handler runs: missing or wrong -> 401 with WWW-Authenticate:
 * Bearer. Without a token, mutating requests are open when the server listens on 127.0.0.1 only
 * (local tools) and refused with 403 when it listens on all interfaces. /metrics, /healthz and
 * /readyz never need the token (probes and scrapers).
 *
 * Limits: one thread per connection, at most 128 connections, at most 8 from one client address
 * (further ones are closed as soon as they are accepted), so one client's idle sockets cannot
 * take the slots the probes need (the kubelet probes from the node's address; a client sharing
 * the probe's address, e.g. everything on 127.0.0.1, does starve it until its sockets go). A
 * connection idle for 5 s (no complete request yet, or kept alive between requests) is closed
 * (a route handler may take longer: the limit is on the client's silence).
 * Malformed requests, as libmicrohttpd 0.9.75 handles them: a request line with a space that is
 * not HTTP/1.x answers 400 at once; a line without a space is closed at once without an answer;
 * a line starting with a NUL byte counts as an empty line (skipped, RFC 9112 §2.2), so the
 * connection waits for a request line and is closed by the 5 s idle limit.
 *
 * Ownership: hvs_http_start borrows the metrics registry and callbacks (they must outlive the
 * server); hvs_http_stop stops the threads and frees the server (NULL-safe).
 * Thread-safety: handlers run on libmicrohttpd's threads, concurrently with the worker: a
 * readiness callback or route handler must only read thread-safe state (atomics, mutexes).
 * Errors: 0 or negative hvs_rc_t; a port in use is HVS_EIO naming the port.
 */
#ifndef HVS_HTTP_H
#define HVS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/metrics.h"

typedef struct hvs_http hvs_http_t;

/* Ready: return 1; not ready: return 0 and write the reason into why (NUL-terminated). */
typedef int (*hvs_http_ready_fn)(void *opaque, char *why, size_t whylen);

#define HVS_HTTP_MAX_HEADERS 4

typedef struct hvs_http_response {
    int status;               /* e.g. 200 */
    const char *content_type; /* static string; NULL = "application/json" */
    char *body;               /* malloc'd by the handler, freed by the server */
    size_t body_len;
    /* Optional extra response headers (ETag, Last-Modified, Retry-After, ...), set with
     * hvs_http_response_header; left zeroed by handlers that need none. */
    struct {
        char name[48];
        char value[208];
    } headers[HVS_HTTP_MAX_HEADERS];
    size_t nheaders;
} hvs_http_response_t;

/* Add a response header (copied): 0, or HVS_EINVAL when there is no room, the name or value is
 * too long, or either holds a CR/LF (header injection). */
int hvs_http_response_header(hvs_http_response_t *resp, const char *name, const char *value);

/* A request header of the request being handled, inside a route handler on its own thread
 * (case-insensitive name); NULL when absent or outside a handler. Valid until the handler
 * returns. */
const char *hvs_http_request_header(const char *name);

/*
 * Route handler: fill resp and return 0; a negative return (or a status outside 100..599)
 * answers 500. `path` is the decoded path; `query` is "k=v&k2=v2" percent-encoded again from the
 * decoded arguments (so it is unambiguous), "" if none; a query over 4 KiB answers 414 before
 * the handler runs. `body` is NUL-terminated (body_len excludes the NUL), valid during the call.
 */
typedef int (*hvs_http_handler_fn)(void *opaque, const char *method, const char *path,
                                   const char *query, const char *body, size_t body_len,
                                   hvs_http_response_t *resp);

/* Start on 127.0.0.1 (bind_any = 0) or all interfaces (bind_any = 1); port 0 = any free port. */
int hvs_http_start(uint16_t port, int bind_any, hvs_metrics_t *metrics, hvs_http_ready_fn ready,
                   void *ready_opaque, hvs_http_t **out, hvs_err_t *err);
/* Require "Authorization: Bearer <token>" on mutating requests (above); the token is copied.
 * NULL or "" = none. 0, or HVS_EINVAL when it is shorter than 16 or longer than 256 characters or
 * holds anything but visible ASCII. Call it right after start: routes added later are guarded
 * from their first request. */
int hvs_http_set_admin_token(hvs_http_t *h, const char *token, hvs_err_t *err);
/* Add a route for paths starting with `prefix` (before or after start; at most 16 routes). */
int hvs_http_route(hvs_http_t *h, const char *prefix, hvs_http_handler_fn fn, void *opaque,
                   hvs_err_t *err);
/* The port actually bound. */
uint16_t hvs_http_port(const hvs_http_t *h);
void hvs_http_stop(hvs_http_t *h);

#endif
