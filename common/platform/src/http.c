/*
 * Embedded HTTP server (see hvs/http.h) on libmicrohttpd, one thread per connection (poll()
 * rather than select() so high descriptor numbers work): probes and scrapes are few, a slow
 * client must never stall the worker's own threads, and a slow route handler (a test's stub
 * upstream) must not stall the probes either, which a small thread pool would allow.
 */
#include "hvs/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hvs/log.h"

#define MAX_ROUTES 16
#define MAX_BODY (1024 * 1024)
/* Connection limits (http.h). Threads are cheap while idle, so the total is well above what a
 * pod ever sees (two probes, one scraper, an operator); the per-address limit is what keeps one
 * client's sockets from using them all. */
#define CONN_LIMIT 128u
#define PER_IP_LIMIT 8u
#define IDLE_TIMEOUT_S 5u
#define MAX_TOKEN 256
#define MIN_TOKEN 16
/* libmicrohttpd logs each connection it refuses: at most LOG_BURST lines per LOG_WINDOW_S. */
#define LOG_BURST 10
#define LOG_WINDOW_S 10

typedef struct route {
    char prefix[128];
    hvs_http_handler_fn fn;
    void *opaque;
} route_t;

struct hvs_http {
    struct MHD_Daemon *daemon;
    uint16_t port;
    hvs_metrics_t *metrics;
    hvs_http_ready_fn ready;
    void *ready_opaque;
    int bind_any;
    pthread_mutex_t lock; /* routes, the token and the log budget */
    route_t routes[MAX_ROUTES];
    size_t nroutes;
    char token[MAX_TOKEN + 1]; /* "" = none configured */
    size_t token_len;
    time_t log_window; /* start of the current log budget window */
    int log_lines;     /* lines logged in it */
    long log_dropped;  /* lines not logged since the last report */
};

/* Per-request state: the body as it is uploaded. */
typedef struct request {
    char *body;
    size_t len, cap;
    int too_large;
    int answered; /* refused before the body was read (413, 401, 403): the rest is discarded */
    int admin_ok; /* the admin check passed (mutating request to a worker route) */
} request_t;

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *ctype,
                               char *body, size_t len, enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The connection whose route handler runs on this thread (hvs_http_request_header). */
static _Thread_local struct MHD_Connection *tl_conn;

int hvs_http_response_header(hvs_http_response_t *resp, const char *name, const char *value) {
    if (!resp || !name || !value || resp->nheaders >= HVS_HTTP_MAX_HEADERS ||
        strlen(name) >= sizeof resp->headers[0].name ||
        strlen(value) >= sizeof resp->headers[0].value || !name[0] || strpbrk(name, "\r\n:") ||
        strpbrk(value, "\r\n"))
        return HVS_EINVAL;
    snprintf(resp->headers[resp->nheaders].name, sizeof resp->headers[0].name, "%s", name);
    snprintf(resp->headers[resp->nheaders].value, sizeof resp->headers[0].value, "%s", value);
    resp->nheaders++;
    return HVS_OK;
}

const char *hvs_http_request_header(const char *name) {
    return tl_conn && name ? MHD_lookup_connection_value(tl_conn, MHD_HEADER_KIND, name) : NULL;
}

/* A route handler's answer, with the extra headers it set. */
static enum MHD_Result respond_route(struct MHD_Connection *conn, const hvs_http_response_t *resp) {
    const char *ctype = resp->content_type ? resp->content_type : "application/json";
    struct MHD_Response *r = resp->body ? MHD_create_response_from_buffer(
                                              resp->body_len, resp->body, MHD_RESPMEM_MUST_FREE)
                                        : MHD_create_response_from_buffer(0, (void *)"",
                                                                          MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(resp->body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    for (size_t i = 0; i < resp->nheaders && i < HVS_HTTP_MAX_HEADERS; i++)
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *t) {
    return respond(conn, status, "text/plain; charset=utf-8", (char *)t, strlen(t),
                   MHD_RESPMEM_MUST_COPY);
}

/* 405 names what the fixed routes do allow (RFC 9110 requires Allow). */
static enum MHD_Result respond_405(struct MHD_Connection *conn) {
    static const char msg[] = "method not allowed\n";
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg,
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, r);
    MHD_destroy_response(r);
    return ret;
}

/*
 * The query string for route handlers, rebuilt from libmicrohttpd's decoded arguments and
 * percent-encoded again, so a decoded '&' or '=' inside a value cannot forge another argument.
 */
typedef struct query_buf {
    char buf[4096];
    size_t len;
    int overflow;
} query_buf_t;

static void q_put(query_buf_t *q, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p && !q->overflow; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        size_t need = plain ? 1 : 3;
        if (q->len + need >= sizeof q->buf) {
            q->overflow = 1;
            break;
        }
        if (plain) {
            q->buf[q->len++] = (char)*p;
        } else {
            q->buf[q->len++] = '%';
            q->buf[q->len++] = hex[*p >> 4];
            q->buf[q->len++] = hex[*p & 15];
        }
    }
    q->buf[q->len] = '\0';
}

static void q_sep(query_buf_t *q, char c) {
    if (q->len + 1 >= sizeof q->buf) {
        q->overflow = 1;
        return;
    }
    q->buf[q->len++] = c;
    q->buf[q->len] = '\0';
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value) {
    (void)kind;
    query_buf_t *q = cls;
    if (q->len)
        q_sep(q, '&');
    q_put(q, key);
    q_sep(q, '=');
    q_put(q, value ? value : "");
    return q->overflow ? MHD_NO : MHD_YES;
}

/* A request that changes something: every method but GET and HEAD (RFC 9110's safe methods; a
 * route handler must not change state on those). Routes are guarded by method rather than by a
 * flag at registration so a route added later is protected without anyone remembering to. */
static int is_mutating(const char *method) {
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

/* Equal without a data-dependent early exit: the time depends on the configured token's length
 * only, never on how many leading bytes a guess got right. */
static int token_equal(const char *given, size_t glen, const char *want, size_t wlen) {
    unsigned diff = glen != wlen;
    for (size_t i = 0; i < wlen; i++)
        diff |= (unsigned)((unsigned char)want[i] ^ (unsigned char)(i < glen ? given[i] : 0));
    return diff == 0;
}

static enum MHD_Result respond_refused(struct MHD_Connection *conn, unsigned status,
                                       const char *challenge, const char *msg) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(msg), (void *)msg,
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (challenge)
        MHD_add_response_header(r, "WWW-Authenticate", challenge);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The admin check of a mutating request to a worker route (http.h): 0 = go on, 1 = refused (an
 * answer is queued in *ret). */
static int refuse_unauthorized(hvs_http_t *h, struct MHD_Connection *conn, enum MHD_Result *ret) {
    char want[MAX_TOKEN + 1];
    pthread_mutex_lock(&h->lock);
    size_t wlen = h->token_len;
    memcpy(want, h->token, wlen + 1);
    pthread_mutex_unlock(&h->lock);
    if (wlen == 0) {
        if (!h->bind_any)
            return 0; /* loopback only: the local tools (hvsctl train) need no secret */
        *ret = respond_refused(conn, MHD_HTTP_FORBIDDEN, NULL,
                               "admin token not configured (HVS_HTTP_ADMIN_TOKEN)\n");
        return 1;
    }
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *given = NULL;
    if (auth && strncasecmp(auth, "Bearer", 6) == 0 && (auth[6] == ' ' || auth[6] == '\t')) {
        given = auth + 7;
        while (*given == ' ' || *given == '\t')
            given++;
    }
    int ok = given && token_equal(given, strlen(given), want, wlen);
    memset(want, 0, sizeof want);
    if (ok)
        return 0;
    /* RFC 6750 §3: no error code when no credentials came, invalid_token for a wrong one */
    *ret = respond_refused(conn, MHD_HTTP_UNAUTHORIZED,
                           given ? "Bearer realm=\"hvacstream\", error=\"invalid_token\""
                                 : "Bearer realm=\"hvacstream\"",
                           "admin token missing or wrong\n");
    return 1;
}

/* The worker route serving `url` (copied out under the lock); fn NULL when none. */
static route_t find_route(hvs_http_t *h, const char *url) {
    route_t route = {.fn = NULL};
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->nroutes; i++)
        if (strncmp(url, h->routes[i].prefix, strlen(h->routes[i].prefix)) == 0) {
            route = h->routes[i];
            break;
        }
    pthread_mutex_unlock(&h->lock);
    return route;
}

static int is_fixed(const char *url) {
    return strcmp(url, "/metrics") == 0 || strcmp(url, "/healthz") == 0 ||
           strcmp(url, "/readyz") == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    (void)version;
    hvs_http_t *h = cls;
    request_t *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        /* The admin check comes first, before the body is read: an unauthenticated client must
         * not make us buffer a megabyte, nor learn anything from a 413. */
        enum MHD_Result ret;
        if (is_mutating(method) && !is_fixed(url) && find_route(h, url).fn) {
            if (refuse_unauthorized(h, conn, &ret)) {
                req->answered = 1;
                return ret;
            }
            req->admin_ok = 1;
        }
        /* A declared length over the limit is refused before the body is read (no 100 Continue
         * is sent, libmicrohttpd closes the connection after the answer). */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (end != cl && n > MAX_BODY) {
                req->too_large = 1;
                req->answered = 1;
                return respond_text(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                                    "request body larger than 1 MiB\n");
            }
        }
        return MHD_YES;
    }
    if (req->answered) { /* libmicrohttpd may still hand us the body: dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        if (req->len + *upload_size > MAX_BODY) {
            req->too_large = 1;
        } else if (!req->too_large) {
            if (req->len + *upload_size + 1 > req->cap) {
                size_t cap = (req->len + *upload_size + 1) * 2;
                char *nb = realloc(req->body, cap);
                if (!nb)
                    return MHD_NO;
                req->body = nb;
                req->cap = cap;
            }
            memcpy(req->body + req->len, upload, *upload_size);
            req->len += *upload_size;
            req->body[req->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (req->too_large)
        return respond_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than 1 MiB\n");

    if (is_fixed(url)) {
        if (is_mutating(method))
            return respond_405(conn);
        if (strcmp(url, "/healthz") == 0)
            return respond_text(conn, MHD_HTTP_OK, "ok\n");
        if (strcmp(url, "/readyz") == 0) {
            char why[256] = "not ready";
            int ok = h->ready ? h->ready(h->ready_opaque, why, sizeof why) : 1;
            if (ok)
                return respond_text(conn, MHD_HTTP_OK, "ready\n");
            char msg[300];
            snprintf(msg, sizeof msg, "not ready: %s\n", why);
            return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
        }
        char *text = NULL;
        size_t len = 0;
        hvs_err_t err;
        if (!h->metrics || hvs_metrics_render(h->metrics, &text, &len, &err) != HVS_OK)
            return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics unavailable\n");
        return respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len,
                       MHD_RESPMEM_MUST_FREE);
    }

    route_t route = find_route(h, url);
    if (!route.fn)
        return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    /* again when the route appeared while the body arrived: never a handler without the check */
    enum MHD_Result refused;
    if (is_mutating(method) && !req->admin_ok && refuse_unauthorized(h, conn, &refused))
        return refused;
    query_buf_t q;
    q.len = 0;
    q.overflow = 0;
    q.buf[0] = '\0';
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_arg, &q);
    if (q.overflow)
        return respond_text(conn, MHD_HTTP_URI_TOO_LONG, "query string too long\n");
    hvs_http_response_t resp = {.status = 200};
    tl_conn = conn;
    int rc = route.fn(route.opaque, method, url, q.buf, req->body ? req->body : "", req->len,
                      &resp);
    tl_conn = NULL;
    if (rc < 0 || resp.status < 100 || resp.status > 599) {
        free(resp.body);
        hvs_log_warn("http", "handler for %s %s failed (rc %d, status %d)", method, url, rc,
                     resp.status);
        return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
    }
    return respond_route(conn, &resp);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)conn;
    (void)toe;
    request_t *req = *con_cls;
    if (req) {
        free(req->body);
        free(req);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    hvs_http_t *h = cls;
    time_t now = time(NULL);
    long dropped = 0;
    pthread_mutex_lock(&h->lock);
    if (now - h->log_window >= LOG_WINDOW_S) {
        dropped = h->log_dropped;
        h->log_window = now;
        h->log_lines = 0;
        h->log_dropped = 0;
    }
    int skip = h->log_lines >= LOG_BURST;
    if (skip)
        h->log_dropped++;
    else
        h->log_lines++;
    pthread_mutex_unlock(&h->lock);
    if (dropped)
        hvs_log_warn("http", "libmicrohttpd: %ld more messages in %d s not logged", dropped,
                     LOG_WINDOW_S);
    if (skip)
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    hvs_log_warn("http", "libmicrohttpd: %s", msg);
}

int hvs_http_start(uint16_t port, int bind_any, hvs_metrics_t *metrics, hvs_http_ready_fn ready,
                   void *ready_opaque, hvs_http_t **out, hvs_err_t *err) {
    hvs_http_t *h = calloc(1, sizeof *h);
    if (!h)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "http: out of memory");
    pthread_mutex_init(&h->lock, NULL);
    h->metrics = metrics;
    h->ready = ready;
    h->ready_opaque = ready_opaque;
    h->bind_any = bind_any != 0;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(bind_any ? INADDR_ANY : INADDR_LOOPBACK);
    h->daemon = MHD_start_daemon(
        MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
            MHD_USE_ERROR_LOG,
        port, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        /* idle (no request yet, headers trickling, kept alive between requests): closed soon,
         * since a probe or a scrape sends its request at once */
        MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S,
        /* one thread per connection: bounded, and one client address cannot take them all
         * (more are closed as soon as they are accepted) */
        MHD_OPTION_CONNECTION_LIMIT, CONN_LIMIT, MHD_OPTION_PER_IP_CONNECTION_LIMIT, PER_IP_LIMIT,
        MHD_OPTION_END);
    if (!h->daemon) {
        pthread_mutex_destroy(&h->lock);
        free(h);
        return hvs_err_set(err, HVS_EIO, "http_listen",
                           "http: cannot listen on %s:%u (port in use?)",
                           bind_any ? "0.0.0.0" : "127.0.0.1", (unsigned)port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    *out = h;
    return HVS_OK;
}

int hvs_http_route(hvs_http_t *h, const char *prefix, hvs_http_handler_fn fn, void *opaque,
                   hvs_err_t *err) {
    if (!prefix || prefix[0] != '/' || strlen(prefix) >= sizeof h->routes[0].prefix || !fn)
        return hvs_err_set(err, HVS_EINVAL, NULL, "http route \"%s\": invalid",
                           prefix ? prefix : "(null)");
    pthread_mutex_lock(&h->lock);
    if (h->nroutes == MAX_ROUTES) {
        pthread_mutex_unlock(&h->lock);
        return hvs_err_set(err, HVS_EINVAL, NULL, "http route %s: at most %d routes", prefix,
                           MAX_ROUTES);
    }
    route_t *r = &h->routes[h->nroutes++];
    snprintf(r->prefix, sizeof r->prefix, "%s", prefix);
    r->fn = fn;
    r->opaque = opaque;
    pthread_mutex_unlock(&h->lock);
    return HVS_OK;
}

int hvs_http_set_admin_token(hvs_http_t *h, const char *token, hvs_err_t *err) {
    size_t n = token ? strlen(token) : 0;
    if (n && (n < MIN_TOKEN || n > MAX_TOKEN))
        return hvs_err_set(err, HVS_EINVAL, "bad_value",
                           "admin token: %zu characters, expected %d to %d", n, MIN_TOKEN,
                           MAX_TOKEN);
    for (size_t i = 0; i < n; i++)
        if (token[i] <= ' ' || token[i] > '~') /* it travels in a header: visible ASCII only */
            return hvs_err_set(err, HVS_EINVAL, "bad_value",
                               "admin token: only visible ASCII characters (no spaces)");
    pthread_mutex_lock(&h->lock);
    memset(h->token, 0, sizeof h->token);
    if (n)
        memcpy(h->token, token, n);
    h->token_len = n;
    pthread_mutex_unlock(&h->lock);
    return HVS_OK;
}

uint16_t hvs_http_port(const hvs_http_t *h) { return h ? h->port : 0; }

void hvs_http_stop(hvs_http_t *h) {
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    pthread_mutex_destroy(&h->lock);
    memset(h->token, 0, sizeof h->token);
    free(h);
}
