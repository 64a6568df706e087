/* client.c - curl multi fetcher with retries, backoff, 429 pauses (see client.h). */
#include "client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hvs/log.h"
#include "hvs/time.h"
#include "hvs/vec.h"

#define MAX_RETRY_AFTER_MS (3600 * 1000LL)
#define DEFAULT_BACKOFF_MAX_MS (60 * 1000LL)
#define SLOT_KEEP_BYTES (256 * 1024)

typedef struct host {
    char *key;            /* scheme://host:port */
    int64_t paused_until; /* monotonic ms; 0 = not paused */
} host_t;

typedef struct req {
    struct req *next;
    char *url;
    char *inm, *ims;
    bool priority;
    wx_done_fn done;
    void *opaque;
    size_t host; /* index into hosts */
    int attempts;
    int64_t not_before; /* monotonic ms */
    int64_t submitted;  /* monotonic ms */
} req_t;

typedef struct slot {
    CURL *easy;
    req_t *req; /* NULL = free */
    struct curl_slist *headers;
    char *buf;
    size_t len, cap;
    bool too_large;
    size_t max_body;
    char etag[256], last_modified[64], retry_after[64];
    int64_t started_ms;
} slot_t;

/* A FIFO of requests. */
typedef struct queue {
    req_t *head, *tail;
    size_t n;
} queue_t;

struct wx_client {
    wx_client_conf_t conf;
    char *user_agent;
    CURLM *multi;
    slot_t *slots;
    int nslots;                 /* concurrency + 1 (the priority reserve) */
    int busy;                   /* slots in use */
    queue_t prio, fresh, retry; /* retry: requests waiting out a backoff */
    host_t *hosts;
    size_t nhosts, hosts_cap;
    bool draining;
    uint64_t rng;
    hvs_metrics_t *metrics;
    hvs_metric_t *m_retries, *m_429, *m_latency;
};

/* ---- small helpers ------------------------------------------------------------------------- */

static void q_push(queue_t *q, req_t *r) {
    r->next = NULL;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    q->n++;
}

/* Remove r, whose predecessor is prev (NULL when r is the head). */
static void q_unlink(queue_t *q, req_t *prev, req_t *r) {
    if (prev)
        prev->next = r->next;
    else
        q->head = r->next;
    if (q->tail == r)
        q->tail = prev;
    q->n--;
    r->next = NULL;
}

static void req_free(req_t *r) {
    if (!r)
        return;
    free(r->url);
    free(r->inm);
    free(r->ims);
    free(r);
}

static uint64_t rng_next(wx_client_t *c) {
    /* xorshift64*: jitter only, not security */
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static int64_t backoff_delay(wx_client_t *c, int attempt) {
    int64_t cap = c->conf.backoff_max_ms > 0 ? c->conf.backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    int64_t d = c->conf.backoff_ms;
    for (int k = 1; k < attempt && d < cap; k++)
        d *= 2;
    if (d > cap)
        d = cap;
    if (d <= 0)
        return 0;
    return (int64_t)(rng_next(c) % (uint64_t)(d + 1)); /* full jitter: [0, d] */
}

/* scheme://host:port of a URL (lower-cased scheme and host); NULL on a URL curl cannot parse. */
static char *host_key(const char *url) {
    CURLU *u = curl_url();
    if (!u)
        return NULL;
    char *scheme = NULL, *host = NULL, *port = NULL, *key = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        size_t n = strlen(scheme) + strlen(host) + strlen(port) + 5;
        key = malloc(n);
        if (key) {
            snprintf(key, n, "%s://%s:%s", scheme, host, port);
            for (char *p = key; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        }
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return key;
}

static int host_index(wx_client_t *c, const char *url, size_t *out) {
    char *key = host_key(url);
    if (!key)
        return HVS_EINVAL;
    for (size_t i = 0; i < c->nhosts; i++)
        if (strcmp(c->hosts[i].key, key) == 0) {
            free(key);
            *out = i;
            return 0;
        }
    host_t *g = hvs_vec_grow(c->hosts, &c->hosts_cap, c->nhosts + 1, sizeof *c->hosts, 4);
    if (!g) {
        free(key);
        return HVS_ENOMEM;
    }
    c->hosts = g;
    c->hosts[c->nhosts] = (host_t){.key = key};
    *out = c->nhosts++;
    return 0;
}

static void count_outcome(wx_client_t *c, const char *outcome) {
    if (!c->metrics)
        return;
    char lbl[64];
    snprintf(lbl, sizeof lbl, "outcome=\"%s\"", outcome);
    hvs_metric_inc(hvs_metrics_counter(c->metrics, "hvs_weather_requests_total",
                                       "HTTP attempts by outcome", lbl));
}

int64_t wx_retry_after_ms(const char *value, int64_t now_s) {
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (!*value)
        return -1;
    if (isdigit((unsigned char)*value)) {
        char *end;
        long long s = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end)
            return -1;
        return s > MAX_RETRY_AFTER_MS / 1000 ? MAX_RETRY_AFTER_MS : (int64_t)s * 1000;
    }
    time_t t = curl_getdate(value, NULL);
    if (t == (time_t)-1)
        return -1;
    int64_t d = ((int64_t)t - now_s) * 1000;
    return d < 0 ? 0 : d;
}

/* ---- curl callbacks ------------------------------------------------------------------------ */

static size_t on_write(char *data, size_t size, size_t nmemb, void *opaque) {
    slot_t *s = opaque;
    size_t n = size * nmemb;
    if (n > s->max_body || s->len > s->max_body - n) {
        s->too_large = true;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 16384;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return 0;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

/* Keep the value of header `name` (case-insensitive) from a raw header line into dst. */
static void grab_header(const char *line, size_t n, const char *name, char *dst, size_t dstlen) {
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= dstlen) {
        dst[0] = '\0'; /* too long to keep: as if absent */
        return;
    }
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *opaque) {
    slot_t *s = opaque;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new response (e.g. after 100 Continue): forget the previous one's headers */
        s->etag[0] = s->last_modified[0] = s->retry_after[0] = '\0';
        return n;
    }
    grab_header(data, n, "ETag", s->etag, sizeof s->etag);
    grab_header(data, n, "Last-Modified", s->last_modified, sizeof s->last_modified);
    grab_header(data, n, "Retry-After", s->retry_after, sizeof s->retry_after);
    return n;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

int wx_client_new(const wx_client_conf_t *conf, hvs_metrics_t *metrics, wx_client_t **out,
                  hvs_err_t *err) {
    if (conf->concurrency < 1 || conf->max_body < 1)
        return hvs_err_set(err, HVS_EINVAL, "bad_value", "client: concurrency and max_body >= 1");
    wx_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "weather client");
    c->conf = *conf;
    c->metrics = metrics;
    c->rng = (uint64_t)hvs_time_now_ms() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
    if (!c->rng)
        c->rng = 1;
    c->nslots = conf->concurrency + 1;
    if (conf->user_agent && !(c->user_agent = strdup(conf->user_agent)))
        goto oom;
    c->conf.user_agent = c->user_agent;
    if (!(c->slots = calloc((size_t)c->nslots, sizeof *c->slots)) ||
        !(c->multi = curl_multi_init()))
        goto oom;
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->nslots + 4);
    for (int i = 0; i < c->nslots; i++) {
        slot_t *s = &c->slots[i];
        CURL *e = s->easy = curl_easy_init();
        if (!e)
            goto oom;
        s->max_body = conf->max_body;
        int bad = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) ||
                  curl_easy_setopt(e, CURLOPT_WRITEDATA, s) ||
                  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) ||
                  curl_easy_setopt(e, CURLOPT_HEADERDATA, s) ||
                  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) ||
                  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)conf->connect_timeout_ms) ||
                  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)conf->timeout_ms) ||
                  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)conf->max_body) ||
                  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "") ||
                  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) ||
                  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") ||
                  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) ||
                  curl_easy_setopt(e, CURLOPT_USERAGENT,
                                   c->user_agent ? c->user_agent : "hvs-weather");
        if (bad) {
            wx_client_destroy(c);
            return hvs_err_set(err, HVS_EIO, "curl", "curl_easy_setopt failed");
        }
    }
    if (metrics) {
        c->m_retries = hvs_metrics_counter(metrics, "hvs_weather_retries_total",
                                           "attempts repeated after a retryable failure", NULL);
        c->m_429 = hvs_metrics_counter(metrics, "hvs_weather_rate_limited_total",
                                       "HTTP 429 answers (the host is paused for Retry-After)",
                                       NULL);
        c->m_latency = hvs_metrics_histogram(
            metrics, "hvs_weather_request_seconds", "duration of one HTTP attempt", NULL,
            hvs_metrics_latency_buckets, hvs_metrics_latency_nbuckets);
    }
    *out = c;
    return 0;
oom:
    wx_client_destroy(c);
    return hvs_err_set(err, HVS_ENOMEM, "oom", "weather client");
}

static void q_free(queue_t *q) {
    for (req_t *r = q->head, *n; r; r = n) {
        n = r->next;
        req_free(r);
    }
    q->head = q->tail = NULL;
    q->n = 0;
}

void wx_client_destroy(wx_client_t *c) {
    if (!c)
        return;
    for (int i = 0; c->slots && i < c->nslots; i++) {
        slot_t *s = &c->slots[i];
        if (s->req && c->multi)
            curl_multi_remove_handle(c->multi, s->easy);
        req_free(s->req);
        curl_slist_free_all(s->headers);
        if (s->easy)
            curl_easy_cleanup(s->easy);
        free(s->buf);
    }
    free(c->slots);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    q_free(&c->prio);
    q_free(&c->fresh);
    q_free(&c->retry);
    for (size_t i = 0; i < c->nhosts; i++)
        free(c->hosts[i].key);
    free(c->hosts);
    free(c->user_agent);
    free(c);
}

int wx_client_submit(wx_client_t *c, const wx_request_t *rq, hvs_err_t *err) {
    if (c->draining && !rq->priority)
        return hvs_err_set(err, HVS_ESTATE, "draining", "client is draining: %s", rq->url);
    req_t *r = calloc(1, sizeof *r);
    if (!r || !(r->url = strdup(rq->url)) ||
        (rq->if_none_match && !(r->inm = strdup(rq->if_none_match))) ||
        (rq->if_modified_since && !(r->ims = strdup(rq->if_modified_since)))) {
        req_free(r);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "request %s", rq->url);
    }
    int rc = host_index(c, r->url, &r->host);
    if (rc) {
        req_free(r);
        return hvs_err_set(err, rc, "bad_url", "cannot parse URL %.200s", rq->url);
    }
    r->priority = rq->priority;
    r->done = rq->done;
    r->opaque = rq->opaque;
    r->submitted = hvs_time_mono_ms();
    q_push(r->priority ? &c->prio : &c->fresh, r);
    return 0;
}

size_t wx_client_inflight(const wx_client_t *c) { return (size_t)c->busy; }
size_t wx_client_queued(const wx_client_t *c) { return c->prio.n + c->fresh.n + c->retry.n; }

/* ---- running ------------------------------------------------------------------------------- */

static void finish(wx_client_t *c, req_t *r, wx_result_t *res) {
    res->attempts = r->attempts;
    res->seconds = (double)(hvs_time_mono_ms() - r->submitted) / 1000.0;
    if (r->done)
        r->done(r->opaque, res);
    req_free(r);
}

static void cancel(wx_client_t *c, req_t *r, const char *why) {
    wx_result_t res;
    memset(&res, 0, sizeof res);
    res.outcome = WX_OUT_CANCELLED;
    snprintf(res.error, sizeof res.error, "%s", why);
    finish(c, r, &res);
}

static int start(wx_client_t *c, slot_t *s, req_t *r, hvs_err_t *err) {
    s->len = 0;
    s->too_large = false;
    s->etag[0] = s->last_modified[0] = s->retry_after[0] = '\0';
    curl_slist_free_all(s->headers);
    s->headers = NULL;
    char line[600];
    struct curl_slist *h = NULL;
    bool oom = false;
    if (r->inm) {
        snprintf(line, sizeof line, "If-None-Match: %s", r->inm);
        oom |= !(h = curl_slist_append(h, line));
    }
    if (r->ims && !oom) {
        struct curl_slist *h2;
        snprintf(line, sizeof line, "If-Modified-Since: %s", r->ims);
        oom |= !(h2 = curl_slist_append(h, line));
        if (h2)
            h = h2;
    }
    if (oom) {
        curl_slist_free_all(h);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "headers");
    }
    s->headers = h;
    if (curl_easy_setopt(s->easy, CURLOPT_URL, r->url) ||
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers))
        return hvs_err_set(err, HVS_EIO, "curl", "curl_easy_setopt for %s", r->url);
    CURLMcode mc = curl_multi_add_handle(c->multi, s->easy);
    if (mc != CURLM_OK)
        return hvs_err_set(err, HVS_EIO, "curl", "curl_multi_add_handle: %s",
                           curl_multi_strerror(mc));
    r->attempts++;
    s->req = r;
    s->started_ms = hvs_time_mono_ms();
    c->busy++;
    return 0;
}

static slot_t *free_slot(wx_client_t *c, bool priority) {
    if (c->busy >= (priority ? c->nslots : c->conf.concurrency))
        return NULL;
    for (int i = 0; i < c->nslots; i++)
        if (!c->slots[i].req)
            return &c->slots[i];
    return NULL;
}

/* Next startable request of q (due, host not paused), unlinked; NULL if none. */
static req_t *take(wx_client_t *c, queue_t *q, int64_t now) {
    bool any_host_open = false;
    for (size_t i = 0; i < c->nhosts; i++)
        any_host_open |= c->hosts[i].paused_until <= now;
    if (!any_host_open)
        return NULL;
    for (req_t *prev = NULL, *r = q->head; r; prev = r, r = r->next)
        if (r->not_before <= now && c->hosts[r->host].paused_until <= now) {
            q_unlink(q, prev, r);
            return r;
        }
    return NULL;
}

static int start_ready(wx_client_t *c, hvs_err_t *err) {
    int64_t now = hvs_time_mono_ms();
    queue_t *order[3] = {&c->prio, &c->retry, &c->fresh};
    for (int k = 0; k < 3; k++) {
        for (;;) {
            slot_t *s = free_slot(c, k == 0);
            if (!s)
                break;
            req_t *r = take(c, order[k], now);
            if (!r)
                break;
            int rc = start(c, s, r, err);
            if (rc) {
                req_free(r);
                return rc;
            }
        }
    }
    return 0;
}

/* When the earliest waiting request could start (monotonic ms; <= now: at once), or
 * INT64_MAX when nothing waits. */
static int64_t next_due(const wx_client_t *c, int64_t now) {
    int64_t t = INT64_MAX;
    const queue_t *qs[3] = {&c->prio, &c->retry, &c->fresh};
    for (int k = 0; k < 3; k++)
        for (const req_t *r = qs[k]->head; r; r = r->next) {
            int64_t d = r->not_before;
            if (c->hosts[r->host].paused_until > d)
                d = c->hosts[r->host].paused_until;
            if (d < t)
                t = d;
            if (t <= now)
                return t;
        }
    return t;
}

static const char *status_class(long status) {
    if (status == 304)
        return "not_modified";
    if (status == 429)
        return "http_429";
    if (status >= 500)
        return "http_5xx";
    if (status >= 400)
        return "http_4xx";
    if (status >= 200 && status < 300)
        return "ok";
    return "http_other";
}

/* One attempt ended. Retry it (re-queued) or finish it (callback). */
static void completed(wx_client_t *c, slot_t *s, CURLcode code) {
    req_t *r = s->req;
    s->req = NULL;
    c->busy--;
    curl_multi_remove_handle(c->multi, s->easy);
    int64_t now = hvs_time_mono_ms();
    double secs = (double)(now - s->started_ms) / 1000.0;
    hvs_metric_observe(c->m_latency, secs);
    wx_result_t res;
    memset(&res, 0, sizeof res);
    res.last_seconds = secs;
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    bool retry = false;
    int64_t delay = -1;
    const char *outcome;
    if (code == CURLE_OK) {
        res.outcome = WX_OUT_HTTP;
        res.status = status;
        outcome = status_class(status);
        if (status == 429) {
            hvs_metric_inc(c->m_429);
            int64_t ra = wx_retry_after_ms(s->retry_after, (int64_t)time(NULL));
            delay = ra >= 0 ? ra : backoff_delay(c, r->attempts);
            int64_t until = now + delay;
            if (c->hosts[r->host].paused_until < until)
                c->hosts[r->host].paused_until = until;
            hvs_log_warn("weather", "HTTP 429 from %s: pausing it for %lld ms (Retry-After \"%s\")",
                         c->hosts[r->host].key, (long long)delay, s->retry_after);
            retry = true;
        } else if (status >= 500) {
            delay = backoff_delay(c, r->attempts);
            int64_t ra = status == 503 ? wx_retry_after_ms(s->retry_after, (int64_t)time(NULL))
                                       : -1;
            if (ra > delay)
                delay = ra;
            retry = true;
        }
        if (status >= 300 && status != 304)
            snprintf(res.error, sizeof res.error, "HTTP %ld", status);
    } else {
        if (s->too_large || code == CURLE_FILESIZE_EXCEEDED) {
            res.outcome = WX_OUT_TOO_LARGE;
            outcome = "too_large";
            snprintf(res.error, sizeof res.error, "body larger than %zu bytes", c->conf.max_body);
        } else {
            if (code == CURLE_OPERATION_TIMEDOUT) {
                res.outcome = WX_OUT_TIMEOUT;
                outcome = "timeout";
            } else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
                       code == CURLE_COULDNT_RESOLVE_PROXY) {
                res.outcome = WX_OUT_CONNECT;
                outcome = "connect_error";
            } else {
                res.outcome = WX_OUT_TRANSFER;
                outcome = "transfer_error";
            }
            snprintf(res.error, sizeof res.error, "%s", curl_easy_strerror(code));
            delay = backoff_delay(c, r->attempts);
            retry = true;
        }
    }
    count_outcome(c, outcome);
    if (retry && r->attempts <= c->conf.retries && !c->draining) {
        hvs_metric_inc(c->m_retries);
        hvs_log_debug("weather", "%s: %s (attempt %d); retrying in %lld ms", r->url,
                      res.error[0] ? res.error : outcome, r->attempts, (long long)delay);
        r->not_before = now + (delay > 0 ? delay : 0);
        q_push(&c->retry, r);
        return;
    }
    res.body = s->buf;
    res.len = s->len;
    memcpy(res.etag, s->etag, sizeof res.etag);
    memcpy(res.last_modified, s->last_modified, sizeof res.last_modified);
    if (!res.body) {
        res.body = (char *)"";
        res.len = 0;
    }
    char *given = res.body;
    finish(c, r, &res);
    if (given == s->buf && res.body == NULL) {
        /* the callback took the buffer */
        s->buf = NULL;
        s->cap = 0;
    } else if (s->cap > SLOT_KEEP_BYTES) {
        /* do not keep a hostile-sized buffer per slot for the life of the process */
        free(s->buf);
        s->buf = NULL;
        s->cap = 0;
    }
    s->len = 0;
}

static int pump(wx_client_t *c, hvs_err_t *err) {
    int running = 0;
    CURLMcode mc = curl_multi_perform(c->multi, &running);
    if (mc != CURLM_OK)
        return hvs_err_set(err, HVS_EIO, "curl", "curl_multi_perform: %s", curl_multi_strerror(mc));
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        for (int i = 0; i < c->nslots; i++)
            if (c->slots[i].req && c->slots[i].easy == m->easy_handle) {
                completed(c, &c->slots[i], m->data.result);
                break;
            }
    }
    return 0;
}

int wx_client_run(wx_client_t *c, int timeout_ms, hvs_err_t *err) {
    int rc = start_ready(c, err);
    if (rc == 0)
        rc = pump(c, err);
    if (rc)
        return rc;
    int64_t now = hvs_time_mono_ms(), due = next_due(c, now);
    bool can_start = due <= now && c->busy < c->conf.concurrency;
    int wait = timeout_ms;
    if (can_start)
        wait = 0;
    else if (due != INT64_MAX && due - now < wait)
        wait = (int)(due - now);
    if (c->busy == 0) {
        if (wait > 0)
            usleep((useconds_t)wait * 1000);
    } else if (wait > 0) {
        long ct = -1;
        curl_multi_timeout(c->multi, &ct);
        if (ct >= 0 && ct < wait)
            wait = (int)ct;
        CURLMcode mc = curl_multi_poll(c->multi, NULL, 0, wait, NULL);
        if (mc != CURLM_OK)
            return hvs_err_set(err, HVS_EIO, "curl", "curl_multi_poll: %s",
                               curl_multi_strerror(mc));
    }
    rc = pump(c, err);
    if (rc == 0)
        rc = start_ready(c, err);
    return rc;
}

void wx_client_stop(wx_client_t *c) {
    c->draining = true;
    queue_t *qs[2] = {&c->retry, &c->fresh}; /* priority requests (the clock) still go */
    for (int k = 0; k < 2; k++) {
        /* callbacks cannot queue ordinary requests any more, so the queues only shrink */
        req_t *r;
        while ((r = qs[k]->head)) {
            q_unlink(qs[k], NULL, r);
            cancel(c, r, "shutting down");
        }
    }
}
