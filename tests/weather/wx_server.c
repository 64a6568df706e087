/* wx_server.c - loopback Open-Meteo test server (see wx_server.h). */
#include "wx_server.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hvs/fmt.h"
#include "hvs/http.h"
#include "hvs_test.h"

#define HOUR_MS 3600000LL
#define MAX_LOCS 64
#define NVARS 5

typedef struct entry {
    long long key;
    wx_scn_t scn;
    wx_server_log_t log;
} entry_t;

struct wx_server {
    hvs_http_t *http;
    pthread_mutex_t lock;
    entry_t locs[MAX_LOCS];
    int nlocs;
    int slow_ms;
    bool clock_set;
    hvs_ms_t clock_t0;
    int64_t clock_wall0;
    double clock_speed;
    hvs_ms_t base;
    atomic_bool stopping;
    _Atomic uint64_t requests;
};

static const char *const var_names[NVARS][2] = {
    {"temperature_2m", NULL},
    {"relative_humidity_2m", "relativehumidity_2m"},
    {"cloud_cover", "cloudcover"},
    {"shortwave_radiation", NULL},
    {"wind_speed_10m", "windspeed_10m"},
};
static const char *const var_units[NVARS] = {"°C", "%", "%", "W/m²", "m/s"};

static long long lat_key(double lat) { return llround(lat * 1e4); }

static int64_t wall_ms(void) { return hvs_time_now_ms(); }

/* ---- the body ------------------------------------------------------------------------------ */

enum { V_PLAIN = 0, V_UNEQUAL = 1, V_STRING = 2, V_ABSURD = 4, V_TZ = 8 };

/* Hour offsets from base in the body. */
static int hour_offsets(int *off) {
    int n = 0;
    for (int h = -24; h <= -2; h++)
        off[n++] = h;
    for (int h = 2; h <= 47; h++)
        off[n++] = h;
    return n;
}

/* The value of variable v at hour index k (hours since the epoch) for latitude key lk, printed
 * into out; "null" for the holes: hour offset 3 (all) and shortwave at offset -10. */
static void value_text(int v, long long k, long long lk, int off, char *out, size_t len) {
    if (off == 3 || (v == 3 && off == -10)) {
        snprintf(out, len, "null");
        return;
    }
    long long m = (k * 7 + lk) % 1000;
    switch (v) {
    case 0: snprintf(out, len, "%.1f", -5.0 + (double)((k * 7 + lk) % 300) / 10.0); break;
    case 1: snprintf(out, len, "%lld", 40 + (k * 13 + lk) % 60); break;
    case 2: snprintf(out, len, "%lld", (k * 29 + lk) % 101); break;
    case 3:
        snprintf(out, len, "%.1f",
                 (k % 24 >= 8 && k % 24 <= 16) ? (double)((k * 17 + lk) % 800) + 0.5 : 0.0);
        break;
    default: snprintf(out, len, "%.1f", (double)(m % 200) / 10.0); break;
    }
}

/* names: the requested name per variable (NULL = not requested). */
static char *body_for(const wx_server_t *s, double lat, double lon, const char *const names[NVARS],
                      int variant, size_t *len) {
    hvs_strbuf_t b = {0};
    int off[80], n = hour_offsets(off);
    long long lk = lat_key(lat);
    hvs_strbuf_printf(&b, "{\"latitude\":%.4f,\"longitude\":%.4f,\"generationtime_ms\":0.05,", lat,
                      lon);
    if (variant & V_TZ)
        hvs_strbuf_printf(&b, "\"utc_offset_seconds\":3600,\"timezone\":\"Europe/Zurich\","
                              "\"timezone_abbreviation\":\"CET\",");
    else
        hvs_strbuf_printf(
            &b, "\"utc_offset_seconds\":0,\"timezone\":\"GMT\",\"timezone_abbreviation\":\"GMT\",");
    hvs_strbuf_printf(&b, "\"elevation\":408.0,\"hourly_units\":{\"time\":\"iso8601\"");
    for (int v = 0; v < NVARS; v++)
        if (names[v])
            hvs_strbuf_printf(&b, ",\"%s\":\"%s\"", names[v], var_units[v]);
    hvs_strbuf_printf(&b, "},\"hourly\":{\"time\":[");
    for (int i = 0; i < n; i++) {
        char iso[40];
        hvs_time_format_iso8601(s->base + off[i] * HOUR_MS, iso, sizeof iso);
        iso[16] = '\0';
        hvs_strbuf_printf(&b, "%s\"%s\"", i ? "," : "", iso);
    }
    hvs_strbuf_printf(&b, "]");
    for (int v = 0; v < NVARS; v++) {
        if (!names[v])
            continue;
        hvs_strbuf_printf(&b, ",\"%s\":[", names[v]);
        int count = (variant & V_UNEQUAL) && v == 1 ? n - 1 : n;
        for (int i = 0; i < count; i++) {
            char t[32];
            long long k = (s->base + off[i] * HOUR_MS) / HOUR_MS;
            value_text(v, k, lk, off[i], t, sizeof t);
            if (v == 0 && i == 30 && (variant & V_STRING))
                hvs_strbuf_printf(&b, "%s\"%s\"", i ? "," : "", t);
            else if (v == 0 && i == 31 && (variant & V_ABSURD))
                hvs_strbuf_printf(&b, "%s75.0", i ? "," : "");
            else
                hvs_strbuf_printf(&b, "%s%s", i ? "," : "", t);
        }
        hvs_strbuf_printf(&b, "]");
    }
    hvs_strbuf_printf(&b, "}}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* Value of `name` in a percent-encoded query, decoded into out: 1 found, 0 not. */
int wx_query_get(const char *q, const char *name, char *out, size_t outlen) {
    size_t nl = strlen(name);
    for (const char *p = q; p && *p;) {
        const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t o = 0;
            for (const char *v = p + nl + 1; v < end && o + 1 < outlen; v++) {
                if (*v == '%' && end - v >= 3) {
                    char hex[3] = {v[1], v[2], 0};
                    out[o++] = (char)strtol(hex, NULL, 16);
                    v += 2;
                } else {
                    out[o++] = *v == '+' ? ' ' : *v;
                }
            }
            out[o] = '\0';
            return 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

static int answer(hvs_http_response_t *resp, int status, char *body, size_t len) {
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = body;
    resp->body_len = len;
    return 0;
}

static int answer_text(hvs_http_response_t *resp, int status, const char *text) {
    char *b = strdup(text);
    if (!b)
        return -1;
    return answer(resp, status, b, strlen(b));
}

static hvs_ms_t clock_now_locked(wx_server_t *s) {
    return s->clock_t0 + (hvs_ms_t)((double)(wall_ms() - s->clock_wall0) * s->clock_speed);
}

static int handle(void *opaque, const char *method, const char *path, const char *query,
                  const char *body, size_t body_len, hvs_http_response_t *resp) {
    (void)method, (void)body, (void)body_len;
    wx_server_t *s = opaque;
    atomic_fetch_add(&s->requests, 1);
    if (strcmp(path, "/v1/status") == 0) {
        pthread_mutex_lock(&s->lock);
        bool set = s->clock_set;
        hvs_ms_t now = set ? clock_now_locked(s) : 0;
        pthread_mutex_unlock(&s->lock);
        if (!set)
            return answer_text(resp, 404, "{\"error\":true,\"reason\":\"no clock\"}");
        char iso[40], text[80];
        snprintf(text, sizeof text, "{\"now\":\"%s\"}",
                 hvs_time_format_iso8601(now, iso, sizeof iso));
        return answer_text(resp, 200, text);
    }
    if (strcmp(path, "/v1/forecast") != 0)
        return answer_text(resp, 404, "{\"error\":true,\"reason\":\"Not found\"}");
    char a[64], o[64], hourly[512];
    if (!wx_query_get(query, "latitude", a, sizeof a) ||
        !wx_query_get(query, "longitude", o, sizeof o))
        return answer_text(resp, 400, "{\"error\":true,\"reason\":\"latitude and longitude\"}");
    double lat = atof(a), lon = atof(o);
    const char *names[NVARS] = {NULL};
    if (wx_query_get(query, "hourly", hourly, sizeof hourly)) {
        char *save = NULL;
        for (char *t = strtok_r(hourly, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int v = 0;
            while (v < NVARS && strcmp(t, var_names[v][0]) != 0 &&
                   !(var_names[v][1] && strcmp(t, var_names[v][1]) == 0))
                v++;
            if (v == NVARS)
                return answer_text(resp, 400, "{\"error\":true,\"reason\":\"unknown variable\"}");
            names[v] = var_names[v][0] && strcmp(t, var_names[v][0]) == 0 ? var_names[v][0]
                                                                          : var_names[v][1];
        }
    } else {
        for (int v = 0; v < NVARS; v++)
            names[v] = var_names[v][0];
    }
    const char *inm = hvs_http_request_header("If-None-Match");
    pthread_mutex_lock(&s->lock);
    entry_t *e = NULL;
    for (int i = 0; i < s->nlocs && !e; i++)
        if (s->locs[i].key == lat_key(lat))
            e = &s->locs[i];
    wx_scn_t scn = e ? e->scn : WX_SCN_GOOD;
    int nth = 0;
    char etag[64];
    snprintf(etag, sizeof etag, "\"v1-%lld\"", lat_key(lat));
    bool match = inm && strcmp(inm, etag) == 0;
    if (e) {
        nth = e->log.requests++;
        if (nth < WX_SERVER_LOG_MAX) {
            e->log.arrived_ms[nth] = wall_ms();
            e->log.arrived_clock[nth] = s->clock_set ? clock_now_locked(s) : 0;
        }
        if (scn == WX_SCN_ETAG && match)
            e->log.conditional++;
    }
    int slow = s->slow_ms;
    pthread_mutex_unlock(&s->lock);

    int variant = V_PLAIN;
    switch (scn) {
    case WX_SCN_500_THEN_GOOD:
        if (nth == 0)
            return answer_text(resp, 500, "{\"error\":true,\"reason\":\"Internal Server Error\"}");
        break;
    case WX_SCN_429_THEN_GOOD:
        if (nth == 0) {
            hvs_http_response_header(resp, "Retry-After", "1");
            return answer_text(resp, 429, "{\"error\":true,\"reason\":\"Too many requests\"}");
        }
        break;
    case WX_SCN_SLOW:
        for (int waited = 0; waited < slow && !atomic_load(&s->stopping); waited += 20)
            usleep(20000);
        break;
    case WX_SCN_UNEQUAL: variant = V_UNEQUAL; break;
    case WX_SCN_STRING: variant = V_STRING; break;
    case WX_SCN_ABSURD: variant = V_ABSURD; break;
    case WX_SCN_TZ: variant = V_TZ; break;
    case WX_SCN_ETAG:
        if (match) {
            pthread_mutex_lock(&s->lock);
            e->log.not_modified++;
            pthread_mutex_unlock(&s->lock);
            resp->status = 304;
            hvs_http_response_header(resp, "ETag", etag);
            return 0;
        }
        hvs_http_response_header(resp, "ETag", etag);
        hvs_http_response_header(resp, "Last-Modified", "Sat, 11 Jan 2025 00:00:00 GMT");
        break;
    case WX_SCN_404:
        return answer_text(resp, 404, "{\"error\":true,\"reason\":\"No data for this location\"}");
    case WX_SCN_DOWN:
        return answer_text(resp, 503, "{\"error\":true,\"reason\":\"Service unavailable\"}");
    default: break;
    }
    size_t len;
    char *b = body_for(s, lat, lon, names, variant, &len);
    if (!b)
        return -1;
    if (scn == WX_SCN_TRUNCATED) {
        len /= 2;
    } else if (scn == WX_SCN_TOO_LARGE) {
        size_t big = 5u * 1024 * 1024 + len;
        char *nb = realloc(b, big + 1);
        if (!nb) {
            free(b);
            return -1;
        }
        b = nb;
        memset(b + len, ' ', big - len); /* still valid JSON: trailing whitespace */
        len = big;
        b[len] = '\0';
    }
    if (e) {
        pthread_mutex_lock(&s->lock);
        if (!e->log.first_good_ms && scn != WX_SCN_TRUNCATED && scn != WX_SCN_TOO_LARGE &&
            variant == V_PLAIN)
            e->log.first_good_ms = wall_ms();
        pthread_mutex_unlock(&s->lock);
    }
    return answer(resp, 200, b, len);
}

/* ---- public -------------------------------------------------------------------------------- */

int wx_server_start(wx_server_t **out) {
    wx_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    pthread_mutex_init(&s->lock, NULL);
    s->slow_ms = 8000;
    s->base = hvs_time_window_start(hvs_time_now_ms(), HOUR_MS);
    hvs_err_t err;
    if (hvs_http_start(0, 0, NULL, NULL, NULL, &s->http, &err) ||
        hvs_http_route(s->http, "/v1/", handle, s, &err)) {
        fprintf(stderr, "wx_server: %s\n", err.msg);
        wx_server_stop(s);
        return -1;
    }
    *out = s;
    return 0;
}

void wx_server_stop(wx_server_t *s) {
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    hvs_http_stop(s->http);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

uint16_t wx_server_port(const wx_server_t *s) { return hvs_http_port(s->http); }

void wx_server_set(wx_server_t *s, double latitude, wx_scn_t scn) {
    pthread_mutex_lock(&s->lock);
    entry_t *e = NULL;
    for (int i = 0; i < s->nlocs && !e; i++)
        if (s->locs[i].key == lat_key(latitude))
            e = &s->locs[i];
    if (!e && s->nlocs < MAX_LOCS) {
        e = &s->locs[s->nlocs++];
        memset(e, 0, sizeof *e);
        e->key = lat_key(latitude);
    }
    if (e)
        e->scn = scn;
    pthread_mutex_unlock(&s->lock);
}

void wx_server_set_slow_ms(wx_server_t *s, int ms) {
    pthread_mutex_lock(&s->lock);
    s->slow_ms = ms;
    pthread_mutex_unlock(&s->lock);
}

void wx_server_set_clock(wx_server_t *s, hvs_ms_t t0, double speed) {
    pthread_mutex_lock(&s->lock);
    s->clock_set = true;
    s->clock_t0 = t0;
    s->clock_wall0 = wall_ms();
    s->clock_speed = speed;
    s->base = hvs_time_window_start(t0, HOUR_MS);
    pthread_mutex_unlock(&s->lock);
}

hvs_ms_t wx_server_clock_now(wx_server_t *s) {
    pthread_mutex_lock(&s->lock);
    hvs_ms_t t = s->clock_set ? clock_now_locked(s) : hvs_time_now_ms();
    pthread_mutex_unlock(&s->lock);
    return t;
}

hvs_ms_t wx_server_base_hour(const wx_server_t *s) { return s->base; }

char *wx_server_good_body(wx_server_t *s, double latitude, double longitude, const char *hourly,
                          size_t *len) {
    const char *names[NVARS] = {NULL};
    char copy[512];
    snprintf(copy, sizeof copy, "%s", hourly);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        for (int v = 0; v < NVARS; v++)
            for (int k = 0; k < 2; k++)
                if (var_names[v][k] && strcmp(t, var_names[v][k]) == 0)
                    names[v] = var_names[v][k];
    pthread_mutex_lock(&s->lock);
    char *b = body_for(s, latitude, longitude, names, V_PLAIN, len);
    pthread_mutex_unlock(&s->lock);
    return b;
}

int wx_server_log(wx_server_t *s, double latitude, wx_server_log_t *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->nlocs; i++)
        if (s->locs[i].key == lat_key(latitude))
            *out = s->locs[i].log;
    pthread_mutex_unlock(&s->lock);
    return out->requests;
}

uint64_t wx_server_requests(wx_server_t *s) { return atomic_load(&s->requests); }

/* ---- topics and metrics ------------------------------------------------------------------- */

double wx_test_metric(const char *text, const char *sample) {
    if (!text)
        return -1;
    size_t n = strlen(sample);
    for (const char *p = text; (p = strstr(p, sample)); p += n)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return atof(p + n + 1);
    return -1;
}
