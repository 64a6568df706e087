/* backfill.c - historical weather from an archive API onto weather.hourly (see backfill.h). */
#include "backfill.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/app.h"
#include "hvs/log.h"

#define DAY HVS_MS_DAY
#define HOUR HVS_MS_HOUR

static int parse_day(const char *s, size_t len, hvs_ms_t *out) {
    int y, m, d, used = 0;
    char buf[16];
    if (len != 10)
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    if (sscanf(buf, "%4d-%2d-%2d%n", &y, &m, &d, &used) != 3 || used != 10 || m < 1 || m > 12 ||
        d < 1 || d > 31 || y < 1970)
        return -1;
    int64_t days = hvs_time_days_from_civil(y, m, d);
    int64_t yy;
    int mm, dd;
    hvs_time_civil_from_days(days, &yy, &mm, &dd);
    if (yy != y || mm != m || dd != d) /* 2024-02-30 */
        return -1;
    *out = (hvs_ms_t)days * DAY;
    return 0;
}

static void format_day(hvs_ms_t day, char buf[16]) {
    int64_t y;
    int m, d;
    hvs_time_civil_from_days(day / DAY, &y, &m, &d);
    snprintf(buf, 16, "%04d-%02d-%02d", (int)(y % 10000), m % 100, d % 100);
}

int wx_backfill_range(const char *s, hvs_ms_t now, hvs_ms_t *from_day, hvs_ms_t *to_day,
                      hvs_err_t *err) {
    const char *dots = s ? strstr(s, "..") : NULL;
    if (!dots || parse_day(s, (size_t)(dots - s), from_day) ||
        parse_day(dots + 2, strlen(dots + 2), to_day))
        return hvs_err_set(err, HVS_EINVAL, "bad_range",
                           "backfill range \"%.60s\": expected YYYY-MM-DD..YYYY-MM-DD (UTC days, "
                           "both included)",
                           s ? s : "");
    if (*from_day > *to_day)
        return hvs_err_set(err, HVS_EINVAL, "bad_range",
                           "backfill range \"%.60s\": the first day is after the last", s);
    if (*to_day > hvs_time_day_start(now))
        return hvs_err_set(err, HVS_EINVAL, "bad_range",
                           "backfill range \"%.60s\": the last day is in the future (the archive "
                           "holds the past only)",
                           s);
    return 0;
}

int wx_archive_url(char *buf, size_t len, const char *base, double latitude, double longitude,
                   const char *hourly, hvs_ms_t start_day, hvs_ms_t end_day) {
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    char a[16], b[16];
    format_day(start_day, a);
    format_day(end_day, b);
    int n = snprintf(buf, len,
                     "%.*s/v1/archive?latitude=%.4f&longitude=%.4f&start_date=%s&end_date=%s"
                     "&hourly=%s&windspeed_unit=ms&timezone=GMT",
                     (int)blen, base, latitude, longitude, a, b, hourly);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

typedef struct bf_loc bf_loc_t;

typedef struct bf_run {
    const wx_backfill_conf_t *conf;
    wx_client_t *client;
    wx_publisher_t *pub;
    hvs_producer_t *prod;
    const char *topic;
    unsigned want;
    wx_hours_t scratch;
    wx_backfill_stats_t *stats;
    size_t active; /* locations with a request out */
    int fatal;
    hvs_err_t fatal_err;
} bf_run_t;

struct bf_loc {
    bf_run_t *run;
    const char *id;
    double lat, lon;
    hvs_ms_t chunk_start, chunk_end; /* days of the request out */
    char url[1024];
};

static void set_fatal(bf_run_t *r, int rc, const hvs_err_t *e) {
    if (!r->fatal) {
        r->fatal = rc;
        r->fatal_err = *e;
    }
}

static void on_done(void *opaque, wx_result_t *res);

/* Request the location's next chunk (from chunk_start), or finish it. */
static int submit_chunk(bf_loc_t *l, hvs_err_t *err) {
    bf_run_t *r = l->run;
    const wx_backfill_conf_t *c = r->conf;
    if (l->chunk_start > c->to_day)
        return 0; /* done */
    l->chunk_end = l->chunk_start + (hvs_ms_t)(c->chunk_days - 1) * DAY;
    if (l->chunk_end > c->to_day)
        l->chunk_end = c->to_day;
    if (wx_archive_url(l->url, sizeof l->url, c->archive_url, l->lat, l->lon, c->hourly,
                       l->chunk_start, l->chunk_end) < 0)
        return hvs_err_set(err, HVS_EINVAL, "bad_value", "archive URL too long for %s", l->id);
    wx_request_t rq = {.url = l->url, .done = on_done, .opaque = l};
    int rc = wx_client_submit(r->client, &rq, err);
    if (rc == 0) {
        r->active++;
        r->stats->requests++;
    }
    return rc;
}

/* Publish the chunk's hours: inside the chunk, over on the wall clock, not all null. */
static int publish_chunk(bf_loc_t *l, const wx_hours_t *hs, hvs_err_t *err) {
    bf_run_t *r = l->run;
    wx_location_ref_t ref = {l->id, l->lat, l->lon};
    hvs_ms_t wall = hvs_time_now_ms(), lo = l->chunk_start, hi = l->chunk_end + DAY;
    size_t klen = strlen(l->id);
    for (size_t i = 0; i < hs->n; i++) {
        wx_hour_t h = hs->h[i];
        if (h.hour < lo || h.hour >= hi || h.hour + HOUR > wall || !h.present)
            continue;
        h.kind = WX_OBSERVED;
        const void *buf;
        size_t len;
        int rc = wx_publisher_encode(r->pub, &ref, &h, h.hour + HOUR, &buf, &len, err);
        if (rc == 0)
            rc = hvs_producer_send(r->prod, r->topic, RD_KAFKA_PARTITION_UA, l->id, klen, buf, len,
                                   err);
        if (rc)
            return rc;
        r->stats->hours++;
    }
    return 0;
}

static void on_done(void *opaque, wx_result_t *res) {
    bf_loc_t *l = opaque;
    bf_run_t *r = l->run;
    r->active--;
    if (r->fatal || res->outcome == WX_OUT_CANCELLED)
        return;
    char a[16], b[16];
    format_day(l->chunk_start, a);
    format_day(l->chunk_end, b);
    hvs_err_t e = {0};
    if (res->outcome != WX_OUT_HTTP || res->status != 200) {
        char st[32] = "";
        if (res->outcome == WX_OUT_HTTP)
            snprintf(st, sizeof st, "HTTP %ld: ", res->status);
        hvs_err_set(&e, HVS_EIO, "fetch_failed",
                    "building %s, days %s..%s: %s%s after %d attempt(s) (%s)", l->id, a, b, st,
                    res->error[0] ? res->error : "no answer", res->attempts, l->url);
        set_fatal(r, HVS_EIO, &e);
        return;
    }
    wx_parse_opts_t o = {.now = l->chunk_end + DAY,
                         .want = r->want,
                         .latitude = l->lat,
                         .longitude = l->lon,
                         .max_hours = (size_t)(l->chunk_end - l->chunk_start + DAY) / HOUR + 48};
    int rc = wx_openmeteo_parse(res->body, res->len, &o, &r->scratch, &e);
    if (rc) {
        hvs_err_t f;
        hvs_err_set(&f, rc == HVS_ENOMEM ? rc : HVS_EIO, e.reason,
                    "building %s, days %s..%s: bad answer (%s): %s (%s)", l->id, a, b, e.reason,
                    e.msg, l->url);
        set_fatal(r, f.code, &f);
        return;
    }
    if ((rc = publish_chunk(l, &r->scratch, &e))) {
        set_fatal(r, rc, &e);
        return;
    }
    hvs_log_debug("weather", "backfill %s %s..%s: %zu hours answered", l->id, a, b, r->scratch.n);
    l->chunk_start = l->chunk_end + DAY;
    if ((rc = submit_chunk(l, &e)))
        set_fatal(r, rc, &e);
}

static bool usable(double lat, double lon) {
    return isfinite(lat) && isfinite(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180;
}

int wx_backfill_run(const wx_backfill_conf_t *conf, const hvs_building_t *b, size_t n,
                    wx_publisher_t *pub, hvs_producer_t *prod, const char *topic,
                    hvs_metrics_t *metrics, wx_backfill_stats_t *stats, hvs_err_t *err) {
    memset(stats, 0, sizeof *stats);
    if (conf->chunk_days < 1 || conf->chunk_days > 92)
        return hvs_err_set(err, HVS_EINVAL, "bad_value", "chunk of %d days: expected 1..92",
                           conf->chunk_days);
    bf_run_t r = {.conf = conf, .pub = pub, .prod = prod, .topic = topic, .stats = stats};
    int rc = wx_openmeteo_hourly_mask(conf->hourly, &r.want, err);
    if (rc)
        return rc;
    bf_loc_t *locs = calloc(n ? n : 1, sizeof *locs);
    if (!locs)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "%zu locations", n);
    if ((rc = wx_client_new(&conf->client, metrics, &r.client, err))) {
        free(locs);
        return rc;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!usable(b[i].latitude, b[i].longitude)) {
            hvs_log_warn("weather",
                         "building %s has no usable location (latitude %g, longitude %g): "
                         "not backfilled",
                         b[i].id, b[i].latitude, b[i].longitude);
            continue;
        }
        bf_loc_t *l = &locs[stats->buildings++];
        *l = (bf_loc_t){.run = &r,
                        .id = b[i].id,
                        .lat = b[i].latitude,
                        .lon = b[i].longitude,
                        .chunk_start = conf->from_day};
        rc = submit_chunk(l, err);
    }
    while (rc == 0 && !r.fatal && r.active > 0 && hvs_app_running()) {
        rc = wx_client_run(r.client, 100, err);
        hvs_producer_poll(prod);
    }
    if (rc == 0 && r.fatal) {
        *err = r.fatal_err;
        rc = r.fatal;
    } else if (rc == 0 && r.active > 0) {
        rc = hvs_err_set(err, HVS_EIO, "stopped", "stopped before the backfill was done");
    }
    wx_client_destroy(r.client);
    wx_hours_fini(&r.scratch);
    free(locs);
    return rc;
}
