/* poller.c - locations, rounds, clock stamping, processing and outage alerts (see poller.h). */
#include "poller.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/log.h"
#include "hvs/time.h"
#include "hvs/vec.h"
#include "openmeteo.h"

#define CLOCK_MIN_GAP_MS 100
#define ALERT_REPEAT_MS HVS_MS_HOUR
#define URL_MAX 2048

enum { P_GOOD, P_UNCHANGED, P_BAD, P_FAILED, P_SKIPPED, P_COUNT };
static const char *const poll_results[P_COUNT] = {"good", "unchanged", "bad", "failed", "skipped"};
enum { U_NOT_MODIFIED, U_IDENTICAL };

typedef struct loc loc_t;
struct loc {
    wx_poller_t *p;
    char *id;
    double lat, lon;
    char *url;
    int64_t offset; /* ms after round start */
    bool invalid;   /* coordinates unusable: never polled */
    bool busy;      /* in flight, or its response waits for a clock reading */
    bool removed;   /* gone from topology (freed when not busy) */
    bool stale;     /* moved while busy: drop that result, poll again */
    bool cond_sent; /* the request in flight carried validators */
    bool seen;      /* wx_poller_sync: still in topology */
    uint64_t round; /* round it was last submitted in (0 = never) */
    char *etag, *last_modified;
    uint64_t body_hash;
    bool have_good; /* etag / last_modified / body_hash belong to a good response */
    wx_history_t hist;
    hvs_ms_t last_success, since; /* clock ms */
    uint32_t failures;            /* polls without a good response since the last good one */
    char last_error[256];
    bool alerting;
    hvs_ms_t alert_first, alert_last;
};

typedef struct pending {
    loc_t *loc;
    int unchanged; /* -1: a body to parse; else U_NOT_MODIFIED / U_IDENTICAL */
    char *body;
    size_t len;
    uint64_t hash;
    char etag[256], last_modified[64];
    uint64_t seq;
} pending_t;

struct wx_poller {
    wx_poller_conf_t conf;
    char *base_url, *clock_url, *hourly;
    unsigned want;
    wx_client_t *client;
    wx_publisher_t *pub;
    hvs_alerter_t *alerter;
    loc_t **locs; /* sorted by id */
    size_t nlocs, locs_cap;
    loc_t **zombies; /* removed but busy */
    size_t nzombies, zombies_cap;
    loc_t **order; /* this round's not yet submitted locations, by offset */
    size_t norder, order_cap, cursor;
    bool started, stopping;
    uint64_t round;
    int64_t round_start; /* monotonic ms */
    size_t round_submitted, round_finished;
    bool round_reported;
    size_t rs[P_COUNT], rpub[2];
    pending_t *pend;
    size_t npend, pend_cap;
    uint64_t seq;
    /* the clock */
    bool clock_inflight;
    uint64_t clock_covers; /* pending with seq below this wait for the request in flight */
    int64_t clock_last_submit;
    int clock_state; /* 0 nothing new, 1 a reading, -1 a failure */
    hvs_ms_t clock_result;
    uint64_t clock_result_covers;
    char clock_error[300];
    bool have_clock;
    hvs_ms_t clock_value;
    int64_t clock_mono;
    hvs_ms_t rate_value; /* an earlier reading, >= 1 s of wall time before, for the rate */
    int64_t rate_mono;
    double clock_rate; /* clock ms per wall ms (1 until measured; 0 = frozen) */
    bool clock_warned_back;
    wx_hours_t scratch;
    int fatal;
    hvs_err_t fatal_err;
    size_t in_outage;
    hvs_metrics_t *metrics;
    hvs_metric_t *m_polls[P_COUNT], *m_records[2], *m_unchanged[2], *m_round, *m_last_round,
        *m_locations, *m_outage, *m_alerts, *m_clock_err, *m_fetch;
};

uint64_t wx_hash64(const void *data, size_t len) {
    const unsigned char *b = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- clock ------------------------------------------------------------------------------ */

/* Clock time now, for outage checks: the wall clock, or the last reading advanced by the wall
 * time since at the clock's measured rate (an accelerated simulation runs at 900x);
 * HVS_MS_NONE before the first reading. */
static hvs_ms_t est_now(const wx_poller_t *p) {
    if (!p->clock_url)
        return hvs_time_now_ms();
    if (!p->have_clock)
        return HVS_MS_NONE;
    return p->clock_value +
           (hvs_ms_t)((double)(hvs_time_mono_ms() - p->clock_mono) * p->clock_rate);
}

static void clock_reading(wx_poller_t *p, hvs_ms_t now) {
    int64_t mono = hvs_time_mono_ms();
    if (!p->have_clock) {
        p->clock_rate = 1.0;
        p->rate_value = now;
        p->rate_mono = mono;
    } else if (mono - p->rate_mono >= 1000) {
        double r = (double)(now - p->rate_value) / (double)(mono - p->rate_mono);
        p->clock_rate = r < 0 ? 1.0 : r > 1e6 ? 1e6 : r; /* went back (restart): assume 1x */
        p->rate_value = now;
        p->rate_mono = mono;
    }
    p->have_clock = true;
    p->clock_value = now;
    p->clock_mono = mono;
}

static void on_clock_done(void *opaque, wx_result_t *r) {
    wx_poller_t *p = opaque;
    p->clock_inflight = false;
    p->clock_result_covers = p->clock_covers;
    p->clock_state = -1;
    if (r->outcome == WX_OUT_CANCELLED) {
        snprintf(p->clock_error, sizeof p->clock_error, "cancelled (%s)", r->error);
        return;
    }
    if (r->outcome != WX_OUT_HTTP || r->status != 200) {
        snprintf(p->clock_error, sizeof p->clock_error, "%s", r->error[0] ? r->error : "no answer");
        return;
    }
    json_error_t je;
    json_t *j = json_loadb(r->body, r->len, 0, &je);
    const char *s = json_string_value(json_object_get(j, "now"));
    hvs_ms_t now;
    hvs_err_t e = {0};
    if (!s) {
        snprintf(p->clock_error, sizeof p->clock_error, "answer has no \"now\" string: %.80s",
                 r->body);
    } else if (hvs_time_parse_iso8601(s, &now, &e) || now < HVS_MS_MIN_EVENT) {
        snprintf(p->clock_error, sizeof p->clock_error,
                 "\"now\" = \"%.60s\" is not a plausible "
                 "ISO-8601 time",
                 s);
    } else {
        if (p->have_clock && now < p->clock_value && !p->clock_warned_back) {
            hvs_log_warn("weather",
                         "clock %s went back from %lld to %lld ms (simulator restarted?)",
                         p->clock_url, (long long)p->clock_value, (long long)now);
            p->clock_warned_back = true;
        }
        p->clock_state = 1;
        p->clock_result = now;
        clock_reading(p, now);
    }
    json_decref(j);
}

static int request_clock(wx_poller_t *p, hvs_err_t *err) {
    if (!p->clock_url || p->clock_inflight)
        return 0;
    wx_request_t rq = {.url = p->clock_url, .priority = true, .done = on_clock_done, .opaque = p};
    int rc = wx_client_submit(p->client, &rq, err);
    if (rc)
        return rc;
    p->clock_inflight = true;
    p->clock_covers = p->seq;
    p->clock_last_submit = hvs_time_mono_ms();
    return 0;
}

/* ---- locations ------------------------------------------------------------------------------ */

static void loc_free(loc_t *l) {
    if (!l)
        return;
    free(l->id);
    free(l->url);
    free(l->etag);
    free(l->last_modified);
    wx_history_fini(&l->hist);
    free(l);
}

static void forget_validators(loc_t *l) {
    free(l->etag);
    free(l->last_modified);
    l->etag = l->last_modified = NULL;
    l->have_good = false;
    l->body_hash = 0;
}

/* A removed location that is no longer busy is freed. */
static void release(wx_poller_t *p, loc_t *l) {
    if (!l->removed || l->busy)
        return;
    for (size_t i = 0; i < p->nzombies; i++)
        if (p->zombies[i] == l) {
            p->zombies[i] = p->zombies[--p->nzombies];
            break;
        }
    loc_free(l);
}

static int set_fatal(wx_poller_t *p, int rc, const hvs_err_t *e) {
    if (!p->fatal) {
        p->fatal = rc;
        p->fatal_err = *e;
    }
    return rc;
}

static void on_fetch_done(void *opaque, wx_result_t *r);

static int submit(wx_poller_t *p, loc_t *l, hvs_err_t *err) {
    wx_request_t rq = {.url = l->url,
                       .if_none_match = l->have_good ? l->etag : NULL,
                       .if_modified_since = l->have_good ? l->last_modified : NULL,
                       .done = on_fetch_done,
                       .opaque = l};
    int rc = wx_client_submit(p->client, &rq, err);
    if (rc)
        return rc;
    l->cond_sent = rq.if_none_match || rq.if_modified_since;
    l->busy = true;
    l->stale = false;
    l->round = p->round;
    p->round_submitted++;
    if (l->since == HVS_MS_NONE)
        l->since = est_now(p);
    return 0;
}

/* The poll of l ended (any way). */
static void poll_ended(wx_poller_t *p, loc_t *l, int result) {
    l->busy = false;
    if (l->round == p->round)
        p->round_finished++;
    if (result >= 0) {
        hvs_metric_inc(p->m_polls[result]);
        p->rs[result]++;
    }
}

static int check_outage(wx_poller_t *p, loc_t *l, hvs_ms_t now) {
    if (l->failures == 0 || l->since == HVS_MS_NONE || now == HVS_MS_NONE ||
        now - l->since < p->conf.outage_ms)
        return 0;
    if (l->alerting && now - l->alert_last < ALERT_REPEAT_MS)
        return 0;
    char last_ok[40] = "never", since[40], failures[24], summary[512];
    if (l->last_success != HVS_MS_NONE)
        hvs_time_format_iso8601(l->last_success, last_ok, sizeof last_ok);
    hvs_time_format_iso8601(l->since, since, sizeof since);
    snprintf(failures, sizeof failures, "%u", l->failures);
    snprintf(summary, sizeof summary,
             "no good weather response for %s since %s (%u failed polls; last: %s)", l->id, since,
             l->failures, l->last_error);
    const char *evidence[] = {"source",     "weather",     "url", l->url,     "last_success",
                              last_ok,      "since",       since, "failures", failures,
                              "last_error", l->last_error, NULL};
    hvs_alert_t a = {.building_id = l->id,
                     .type = HVS_ALERT_DATA_QUALITY,
                     .severity = HVS_SEVERITY_WARNING,
                     .score = (double)(now - l->since) / (double)HVS_MS_HOUR,
                     .summary = summary,
                     .evidence = evidence,
                     .first_seen = l->alerting ? l->alert_first : now,
                     .updated_at = now};
    hvs_err_t e = {0};
    int rc = hvs_alerter_send(p->alerter, &a, &e);
    if (rc)
        return set_fatal(p, rc, &e);
    if (!l->alerting) {
        l->alerting = true;
        l->alert_first = now;
        p->in_outage++;
        hvs_metric_set(p->m_outage, (double)p->in_outage);
    }
    l->alert_last = now;
    hvs_metric_inc(p->m_alerts);
    hvs_log_fields(HVS_LOG_WARN, "weather", summary, HVS_LFS("building", l->id),
                   HVS_LFS("alert", "DATA_QUALITY"));
    return 0;
}

/* No good response this poll: `reason` is a bad-response reason (bad = true) or a failure. */
static void poll_failed(wx_poller_t *p, loc_t *l, bool bad, const char *reason, const char *fmt,
                        ...) HVS_PRINTF(5, 6);
static void poll_failed(wx_poller_t *p, loc_t *l, bool bad, const char *reason, const char *fmt,
                        ...) {
    char detail[300], msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(l->last_error, sizeof l->last_error, "%s: %.200s", reason, detail);
    snprintf(msg, sizeof msg, "%s for %s (%s): %s; nothing published for it this round",
             bad ? "bad response" : "no response", l->id, reason, detail);
    hvs_log_fields(HVS_LOG_WARN, "weather", msg, HVS_LFS("building", l->id),
                   HVS_LFS("reason", reason), HVS_LFS("url", l->url));
    if (bad && p->metrics) {
        char lbl[96];
        snprintf(lbl, sizeof lbl, "reason=\"%s\"", reason);
        hvs_metric_inc(hvs_metrics_counter(p->metrics, "hvs_weather_bad_responses_total",
                                           "responses refused, by reason", lbl));
    }
    l->failures++;
    if (l->since == HVS_MS_NONE)
        l->since = est_now(p);
    poll_ended(p, l, bad ? P_BAD : P_FAILED);
    check_outage(p, l, est_now(p));
}

static void poll_succeeded(wx_poller_t *p, loc_t *l, hvs_ms_t now, bool unchanged) {
    if (l->alerting) {
        char since[40];
        hvs_time_format_iso8601(l->since, since, sizeof since);
        hvs_log_fields(HVS_LOG_INFO, "weather", "weather recovered after an outage",
                       HVS_LFS("building", l->id), HVS_LFS("since", since),
                       HVS_LFI("failures", l->failures),
                       HVS_LFD("outage_hours", (double)(now - l->since) / (double)HVS_MS_HOUR));
        l->alerting = false;
        p->in_outage--;
        hvs_metric_set(p->m_outage, (double)p->in_outage);
    }
    l->failures = 0;
    l->last_success = now;
    l->since = now;
    l->last_error[0] = '\0';
    poll_ended(p, l, unchanged ? P_UNCHANGED : P_GOOD);
}

static int add_pending(wx_poller_t *p, loc_t *l, int unchanged, wx_result_t *r, uint64_t hash) {
    pending_t *g = hvs_vec_grow(p->pend, &p->pend_cap, p->npend + 1, sizeof *p->pend, 64);
    if (!g)
        return HVS_ENOMEM;
    p->pend = g;
    pending_t *it = &p->pend[p->npend++];
    memset(it, 0, sizeof *it);
    it->loc = l;
    it->unchanged = unchanged;
    it->hash = hash;
    it->seq = p->seq++;
    if (unchanged < 0) {
        it->body = r->body; /* taken from the client */
        it->len = r->len;
        r->body = NULL;
        memcpy(it->etag, r->etag, sizeof it->etag);
        memcpy(it->last_modified, r->last_modified, sizeof it->last_modified);
    }
    return 0;
}

/* The "reason" of an Open-Meteo error body ({"error":true,"reason":"..."}), for the log. */
static void api_reason(const char *body, size_t len, char *out, size_t outlen) {
    out[0] = '\0';
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *s = json_string_value(json_object_get(j, "reason"));
    if (s)
        snprintf(out, outlen, ": %.150s", s);
    json_decref(j);
}

static void on_fetch_done(void *opaque, wx_result_t *r) {
    loc_t *l = opaque;
    wx_poller_t *p = l->p;
    hvs_metric_observe(p->m_fetch, r->seconds);
    if (r->outcome == WX_OUT_CANCELLED || l->removed || l->stale) {
        bool again = l->stale && !l->removed && !p->stopping && r->outcome != WX_OUT_CANCELLED;
        poll_ended(p, l, -1);
        release(p, l);
        if (again) {
            hvs_err_t e = {0};
            int rc = submit(p, l, &e);
            if (rc)
                set_fatal(p, rc, &e);
        }
        return;
    }
    int rc = 0;
    switch (r->outcome) {
    case WX_OUT_HTTP:
        if (r->status == 200) {
            uint64_t h = wx_hash64(r->body, r->len);
            rc = add_pending(p, l, l->have_good && h == l->body_hash ? U_IDENTICAL : -1, r, h);
        } else if (r->status == 304 && !l->cond_sent) {
            poll_failed(p, l, true, "unexpected_not_modified",
                        "HTTP 304 to a request without validators");
        } else if (r->status == 304 && !l->have_good) {
            /* what was published was forgotten meanwhile (wx_poller_forget): ask again, whole */
            poll_ended(p, l, -1);
            if (!p->stopping) {
                hvs_err_t e = {0};
                if ((rc = submit(p, l, &e)))
                    set_fatal(p, rc, &e);
            }
            rc = 0;
        } else if (r->status == 304) {
            rc = add_pending(p, l, U_NOT_MODIFIED, r, 0);
        } else {
            char why[200];
            api_reason(r->body, r->len, why, sizeof why);
            poll_failed(p, l, true, "http_error", "HTTP %ld after %d attempt(s)%s", r->status,
                        r->attempts, why);
        }
        break;
    case WX_OUT_TOO_LARGE: poll_failed(p, l, true, "too_large", "%s", r->error); break;
    default: {
        const char *why = r->outcome == WX_OUT_TIMEOUT   ? "timeout"
                          : r->outcome == WX_OUT_CONNECT ? "connect_error"
                                                         : "transfer_error";
        poll_failed(p, l, false, why, "%s after %d attempt(s)", r->error, r->attempts);
    }
    }
    if (rc) {
        hvs_err_t e;
        hvs_err_set(&e, rc, "oom", "pending response of %s", l->id);
        set_fatal(p, rc, &e);
    }
}

/* A stamped response: parse (or replay), publish what changed, remember the validators. */
static int process(wx_poller_t *p, pending_t *it, hvs_ms_t now, hvs_err_t *err) {
    loc_t *l = it->loc;
    if (l->removed || l->stale) {
        bool again = l->stale && !l->removed && !p->stopping;
        poll_ended(p, l, -1);
        release(p, l);
        return again ? submit(p, l, err) : 0;
    }
    wx_hours_t *hs = &p->scratch;
    hvs_err_t e = {0};
    if (it->unchanged >= 0) {
        if (wx_history_last_response(&l->hist, now, hs))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "history of %s", l->id);
        hvs_metric_inc(p->m_unchanged[it->unchanged]);
    } else {
        wx_parse_opts_t o = {.now = now, .want = p->want, .latitude = l->lat, .longitude = l->lon};
        int rc = wx_openmeteo_parse(it->body, it->len, &o, hs, &e);
        if (rc == HVS_ENOMEM) {
            *err = e;
            return rc;
        }
        if (rc) {
            poll_failed(p, l, true, e.reason, "%s", e.msg);
            return 0;
        }
    }
    size_t counts[2] = {0, 0};
    hvs_ms_t cut = now - (hvs_ms_t)(p->conf.past_days + 1) * HVS_MS_DAY;
    wx_location_ref_t ref = {l->id, l->lat, l->lon};
    int rc = wx_publish(p->pub, &l->hist, &ref, hs->h, hs->n, now, cut, counts, err);
    for (int k = 0; k < 2; k++) {
        hvs_metric_add(p->m_records[k], (double)counts[k]);
        p->rpub[k] += counts[k];
    }
    if (rc)
        return rc;
    if (it->unchanged < 0) {
        forget_validators(l);
        if ((it->etag[0] && !(l->etag = strdup(it->etag))) ||
            (it->last_modified[0] && !(l->last_modified = strdup(it->last_modified))))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "validators of %s", l->id);
        l->body_hash = it->hash;
        l->have_good = true;
    }
    poll_succeeded(p, l, now, it->unchanged >= 0);
    return 0;
}

/* Process the pending responses with seq < covers (all when covers is UINT64_MAX) at `now`;
 * now = HVS_MS_NONE drops them as failures (the clock could not be read). */
static int process_pending(wx_poller_t *p, uint64_t covers, hvs_ms_t now, const char *clock_error,
                           hvs_err_t *err) {
    size_t kept = 0;
    int rc = 0;
    for (size_t i = 0; i < p->npend; i++) {
        pending_t it = p->pend[i];
        if (it.seq >= covers || rc) {
            p->pend[kept++] = it;
            continue;
        }
        if (now == HVS_MS_NONE) {
            loc_t *l = it.loc;
            if (l->removed || l->stale) {
                poll_ended(p, l, -1);
                release(p, l);
            } else {
                poll_failed(p, l, false, "clock_unavailable", "clock %s: %s", p->clock_url,
                            clock_error);
            }
        } else {
            rc = process(p, &it, now, err);
        }
        free(it.body);
    }
    p->npend = kept;
    return rc;
}

/* ---- rounds -------------------------------------------------------------------------------- */

static int cmp_offset(const void *a, const void *b) {
    const loc_t *x = *(loc_t *const *)a, *y = *(loc_t *const *)b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* This round's order: every usable location not yet submitted in it, by offset. */
static int build_order(wx_poller_t *p) {
    loc_t **g = hvs_vec_grow(p->order, &p->order_cap, p->nlocs ? p->nlocs : 1, sizeof *p->order,
                             64);
    if (!g)
        return HVS_ENOMEM;
    p->order = g;
    p->norder = 0;
    for (size_t i = 0; i < p->nlocs; i++)
        if (!p->locs[i]->invalid && p->locs[i]->round != p->round)
            p->order[p->norder++] = p->locs[i];
    qsort(p->order, p->norder, sizeof *p->order, cmp_offset);
    p->cursor = 0;
    return 0;
}

static void report_round(wx_poller_t *p) {
    double secs = (double)(hvs_time_mono_ms() - p->round_start) / 1000.0;
    p->round_reported = true;
    if (p->round_submitted == 0)
        return; /* no buildings (yet) */
    hvs_metric_observe(p->m_round, secs);
    hvs_metric_set(p->m_last_round, secs);
    hvs_log_fields(HVS_LOG_INFO, "weather", "poll round complete", HVS_LFI("round", p->round),
                   HVS_LFI("polls", p->round_submitted), HVS_LFD("seconds", secs),
                   HVS_LFI("good", p->rs[P_GOOD]), HVS_LFI("unchanged", p->rs[P_UNCHANGED]),
                   HVS_LFI("bad", p->rs[P_BAD]), HVS_LFI("failed", p->rs[P_FAILED]),
                   HVS_LFI("skipped", p->rs[P_SKIPPED]), HVS_LFI("observed", p->rpub[0]),
                   HVS_LFI("forecast", p->rpub[1]));
}

static int begin_round(wx_poller_t *p, int64_t mono, hvs_err_t *err) {
    if (p->started && !p->round_reported)
        hvs_log_warn("weather",
                     "round %llu not finished when the next began: %zu of %zu polls open",
                     (unsigned long long)p->round, p->round_submitted - p->round_finished,
                     p->round_submitted);
    if (!p->started || mono - (p->round_start + p->conf.interval_ms) >= p->conf.interval_ms)
        p->round_start = mono; /* first round, or far behind: restart the phase */
    else
        p->round_start += p->conf.interval_ms;
    p->started = true;
    p->round++;
    p->round_submitted = p->round_finished = 0;
    p->round_reported = false;
    memset(p->rs, 0, sizeof p->rs);
    memset(p->rpub, 0, sizeof p->rpub);
    if (build_order(p))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "round order");
    int rc = request_clock(p, err);
    if (rc)
        return rc;
    hvs_ms_t now = est_now(p);
    for (size_t i = 0; i < p->nlocs && !p->fatal; i++)
        check_outage(p, p->locs[i], now);
    return 0;
}

/* ---- public --------------------------------------------------------------------------------- */

int wx_poller_new(const wx_poller_conf_t *conf, wx_publisher_t *pub, hvs_alerter_t *alerter,
                  hvs_metrics_t *metrics, wx_poller_t **out, hvs_err_t *err) {
    wx_poller_t *p = calloc(1, sizeof *p);
    if (!p)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "poller");
    p->conf = *conf;
    p->pub = pub;
    p->alerter = alerter;
    p->metrics = metrics;
    int rc = 0;
    if (!(p->base_url = strdup(conf->base_url)) || !(p->hourly = strdup(conf->hourly)) ||
        (conf->clock_url && conf->clock_url[0] && !(p->clock_url = strdup(conf->clock_url)))) {
        rc = hvs_err_set(err, HVS_ENOMEM, "oom", "poller");
        goto fail;
    }
    p->conf.base_url = p->base_url;
    p->conf.hourly = p->hourly;
    p->conf.clock_url = p->clock_url;
    if ((rc = wx_openmeteo_hourly_mask(p->hourly, &p->want, err)))
        goto fail;
    if (conf->interval_ms <= 0 || conf->spread_ms < 0 || conf->outage_ms <= 0) {
        rc = hvs_err_set(err, HVS_EINVAL, "bad_value", "poller: interval and outage must be > 0");
        goto fail;
    }
    if ((rc = wx_client_new(&conf->client, metrics, &p->client, err)))
        goto fail;
    if (metrics) {
        for (int k = 0; k < P_COUNT; k++) {
            char lbl[48];
            snprintf(lbl, sizeof lbl, "result=\"%s\"", poll_results[k]);
            p->m_polls[k] = hvs_metrics_counter(metrics, "hvs_weather_polls_total",
                                                "polls of a location by result", lbl);
        }
        p->m_records[WX_OBSERVED] = hvs_metrics_counter(
            metrics, "hvs_weather_records_total", "Weather records published", "kind=\"OBSERVED\"");
        p->m_records[WX_FORECAST] = hvs_metrics_counter(
            metrics, "hvs_weather_records_total", "Weather records published", "kind=\"FORECAST\"");
        p->m_unchanged[U_NOT_MODIFIED] = hvs_metrics_counter(
            metrics, "hvs_weather_unchanged_total",
            "responses not parsed again: HTTP 304 or an identical body", "how=\"not_modified\"");
        p->m_unchanged[U_IDENTICAL] = hvs_metrics_counter(
            metrics, "hvs_weather_unchanged_total",
            "responses not parsed again: HTTP 304 or an identical body", "how=\"identical_body\"");
        static const double round_bounds[] = {0.1, 0.25, 0.5, 1,   2.5,  5,    10,  30,
                                              60,  120,  300, 600, 1800, 3600, 7200};
        p->m_round = hvs_metrics_histogram(metrics, "hvs_weather_round_seconds",
                                           "start of a poll round to the end of its last poll",
                                           NULL, round_bounds,
                                           sizeof round_bounds / sizeof round_bounds[0]);
        p->m_last_round = hvs_metrics_gauge(metrics, "hvs_weather_last_round_seconds",
                                            "duration of the last complete poll round", NULL);
        p->m_fetch = hvs_metrics_histogram(
            metrics, "hvs_weather_fetch_seconds",
            "one location's poll, submit to answer, retries included", NULL,
            hvs_metrics_latency_buckets, hvs_metrics_latency_nbuckets);
        p->m_locations = hvs_metrics_gauge(metrics, "hvs_weather_locations",
                                           "locations polled (buildings in topology)", NULL);
        p->m_outage = hvs_metrics_gauge(metrics, "hvs_weather_locations_in_outage",
                                        "locations with an open outage alert", NULL);
        p->m_alerts = hvs_metrics_counter(metrics, "hvs_weather_alerts_total",
                                          "DATA_QUALITY outage alerts published", NULL);
        p->m_clock_err = hvs_metrics_counter(metrics, "hvs_weather_clock_errors_total",
                                             "clock readings that failed", NULL);
    }
    *out = p;
    return 0;
fail:
    wx_poller_destroy(p);
    return rc;
}

void wx_poller_destroy(wx_poller_t *p) {
    if (!p)
        return;
    wx_client_destroy(p->client); /* aborts transfers without callbacks */
    for (size_t i = 0; i < p->npend; i++)
        free(p->pend[i].body);
    free(p->pend);
    for (size_t i = 0; i < p->nlocs; i++)
        loc_free(p->locs[i]);
    for (size_t i = 0; i < p->nzombies; i++)
        loc_free(p->zombies[i]);
    free(p->locs);
    free(p->zombies);
    free(p->order);
    wx_hours_fini(&p->scratch);
    free(p->base_url);
    free(p->clock_url);
    free(p->hourly);
    free(p);
}

static int cmp_id(const void *key, const void *elem) {
    return strcmp((const char *)key, (*(loc_t *const *)elem)->id);
}

static int cmp_loc(const void *a, const void *b) {
    return strcmp((*(loc_t *const *)a)->id, (*(loc_t *const *)b)->id);
}

static bool valid_coords(double lat, double lon) {
    return isfinite(lat) && isfinite(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180;
}

/* The request URL for coordinates: *url malloc'd, or NULL when the coordinates are unusable.
 * 0 or HVS_ENOMEM. */
static int make_url(const wx_poller_t *p, double lat, double lon, char **url) {
    *url = NULL;
    if (!valid_coords(lat, lon))
        return 0;
    char buf[URL_MAX];
    if (wx_openmeteo_url(buf, sizeof buf, p->base_url, lat, lon, p->hourly, p->conf.past_days,
                         p->conf.forecast_days) < 0 ||
        !(*url = strdup(buf)))
        return HVS_ENOMEM;
    return 0;
}

static void locate(loc_t *l, double lat, double lon, char *url) {
    l->lat = lat;
    l->lon = lon;
    free(l->url);
    l->url = url;
    l->invalid = url == NULL;
    if (l->invalid)
        hvs_log_warn("weather",
                     "building %s has no usable location (latitude %g, longitude %g): "
                     "not polled",
                     l->id, lat, lon);
}

int wx_poller_sync(wx_poller_t *p, const hvs_building_t *b, size_t n, hvs_err_t *err) {
    /* Prepare everything that allocates first, so a failure leaves the locations as they were. */
    loc_t **next = calloc(n ? n : 1, sizeof *next);
    char **urls = calloc(n ? n : 1, sizeof *urls);
    bool *fresh = calloc(n ? n : 1, sizeof *fresh), *moved = calloc(n ? n : 1, sizeof *moved);
    int64_t spread = p->conf.spread_ms < p->conf.interval_ms ? p->conf.spread_ms
                                                             : p->conf.interval_ms;
    bool oom = !next || !urls || !fresh || !moved;
    for (size_t i = 0; i < p->nlocs; i++)
        p->locs[i]->seen = false;
    for (size_t i = 0; i < n && !oom; i++) {
        loc_t **found = p->nlocs ? bsearch(b[i].id, p->locs, p->nlocs, sizeof *p->locs, cmp_id)
                                 : NULL;
        loc_t *l = found ? *found : NULL;
        if (l && l->seen)
            l = NULL; /* a repeated id: the topology gives each once, but do not share a loc */
        if (l) {
            l->seen = true;
            moved[i] = l->lat != b[i].latitude || l->lon != b[i].longitude;
            if (moved[i])
                oom = make_url(p, b[i].latitude, b[i].longitude, &urls[i]) != 0;
        } else {
            fresh[i] = true;
            if (!(l = calloc(1, sizeof *l)) || !(l->id = strdup(b[i].id)) ||
                make_url(p, b[i].latitude, b[i].longitude, &urls[i])) {
                if (l)
                    free(l->id);
                free(l);
                l = NULL;
                oom = true;
            }
        }
        next[i] = l;
    }
    size_t nremoved = 0;
    for (size_t i = 0; i < p->nlocs && !oom; i++)
        nremoved += !p->locs[i]->seen;
    if (!oom && nremoved) {
        loc_t **g = hvs_vec_grow(p->zombies, &p->zombies_cap, p->nzombies + nremoved, sizeof *g,
                                 16);
        if (g)
            p->zombies = g;
        oom = !g;
    }
    if (oom) {
        for (size_t i = 0; next && i < n; i++) {
            if (urls)
                free(urls[i]);
            if (fresh && fresh[i] && next[i]) {
                free(next[i]->id);
                free(next[i]);
            }
        }
        free(next);
        free(urls);
        free(fresh);
        free(moved);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "%zu locations", n);
    }
    /* Commit. */
    size_t added = 0, nmoved = 0;
    for (size_t i = 0; i < n; i++) {
        loc_t *l = next[i];
        if (fresh[i]) {
            l->p = p;
            l->last_success = l->since = HVS_MS_NONE;
            uint64_t h = wx_hash64(l->id, strlen(l->id));
            l->offset = spread > 0 ? (int64_t)(h % (uint64_t)spread) : 0;
            locate(l, b[i].latitude, b[i].longitude, urls[i]);
            added++;
        } else if (moved[i]) {
            locate(l, b[i].latitude, b[i].longitude, urls[i]);
            forget_validators(l);
            nmoved++;
            if (l->busy)
                l->stale = true; /* its answer is for the old place: dropped, then polled again */
            else
                l->round = 0; /* polled again in this round */
        }
    }
    for (size_t i = 0; i < p->nlocs; i++) {
        loc_t *l = p->locs[i];
        if (l->seen)
            continue;
        if (l->alerting) {
            p->in_outage--;
            hvs_metric_set(p->m_outage, (double)p->in_outage);
        }
        if (l->busy) {
            l->removed = true;
            p->zombies[p->nzombies++] = l;
        } else {
            loc_free(l);
        }
    }
    free(p->locs);
    free(urls);
    free(fresh);
    free(moved);
    qsort(next, n, sizeof *next, cmp_loc);
    p->locs = next;
    p->nlocs = n;
    p->locs_cap = n ? n : 1;
    hvs_metric_set(p->m_locations, (double)n);
    if (added || nremoved || nmoved)
        hvs_log_info("weather", "locations: %zu (%zu new, %zu moved, %zu removed)", n, added,
                     nmoved, nremoved);
    if (p->started && build_order(p))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "round order");
    return 0;
}

static int drive(wx_poller_t *p, int timeout_ms, hvs_err_t *err) {
    int rc = wx_client_run(p->client, timeout_ms, err);
    if (rc)
        return rc;
    if (p->fatal) {
        *err = p->fatal_err;
        return p->fatal;
    }
    if (!p->clock_url) {
        rc = process_pending(p, UINT64_MAX, hvs_time_now_ms(), NULL, err);
    } else {
        if (p->clock_state == 1) {
            rc = process_pending(p, p->clock_result_covers, p->clock_result, NULL, err);
        } else if (p->clock_state == -1) {
            hvs_metric_inc(p->m_clock_err);
            hvs_log_warn("weather", "clock %s could not be read: %s", p->clock_url, p->clock_error);
            rc = process_pending(p, p->clock_result_covers, HVS_MS_NONE, p->clock_error, err);
        }
        p->clock_state = 0;
        if (rc == 0 && p->npend > 0 && !p->clock_inflight &&
            hvs_time_mono_ms() - p->clock_last_submit >= CLOCK_MIN_GAP_MS)
            rc = request_clock(p, err);
    }
    if (rc == 0 && p->fatal) {
        *err = p->fatal_err;
        rc = p->fatal;
    }
    if (rc == 0 && p->started && !p->round_reported && p->cursor == p->norder &&
        p->round_finished == p->round_submitted)
        report_round(p);
    return rc;
}

int wx_poller_step(wx_poller_t *p, int timeout_ms, hvs_err_t *err) {
    int64_t mono = hvs_time_mono_ms();
    int rc = 0;
    if (!p->started || mono >= p->round_start + p->conf.interval_ms)
        rc = begin_round(p, mono, err);
    for (; rc == 0 && p->cursor < p->norder && p->round_start + p->order[p->cursor]->offset <= mono;
         p->cursor++) {
        loc_t *l = p->order[p->cursor];
        if (l->busy) {
            hvs_metric_inc(p->m_polls[P_SKIPPED]);
            p->rs[P_SKIPPED]++;
            continue;
        }
        rc = submit(p, l, err);
    }
    if (rc)
        return rc;
    /* wake for the next slot of the round */
    if (p->cursor < p->norder) {
        int64_t until = p->round_start + p->order[p->cursor]->offset - mono;
        if (until < timeout_ms)
            timeout_ms = until > 0 ? (int)until : 0;
    }
    int64_t next_round = p->round_start + p->conf.interval_ms - mono;
    if (next_round < timeout_ms)
        timeout_ms = next_round > 0 ? (int)next_round : 0;
    return drive(p, timeout_ms, err);
}

int wx_poller_drain(wx_poller_t *p, int timeout_ms, hvs_err_t *err) {
    p->stopping = true;
    wx_client_stop(p->client);
    int64_t deadline = hvs_time_mono_ms() + timeout_ms;
    int rc = 0;
    while (rc == 0 &&
           (wx_client_inflight(p->client) > 0 || wx_client_queued(p->client) > 0 || p->npend > 0)) {
        int64_t left = deadline - hvs_time_mono_ms();
        if (left <= 0) {
            hvs_log_warn("weather",
                         "shutdown: %zu transfers still in flight, %zu responses unstamped "
                         "after %d ms; dropped (polled again at the next start)",
                         wx_client_inflight(p->client), p->npend, timeout_ms);
            break;
        }
        rc = drive(p, left > 100 ? 100 : (int)left, err);
    }
    return rc;
}

void wx_poller_forget(wx_poller_t *p) {
    for (size_t i = 0; i < p->nlocs; i++) {
        wx_history_clear(&p->locs[i]->hist);
        forget_validators(p->locs[i]);
    }
    hvs_log_warn("weather",
                 "forgot what was published for %zu locations: the next poll of each "
                 "publishes all of its hours again",
                 p->nlocs);
}

size_t wx_poller_locations(const wx_poller_t *p) { return p->nlocs; }
