/* weather_server.c - the simulated weather in the Open-Meteo format (see weather_server.h). */
#include "weather_server.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/fmt.h"
#include "hvs/http.h"
#include "rng.h"

#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)
#define MAX_HOURS ((92 + 16) * 24)

struct sim_weather_server {
    sim_weather_server_conf_t conf;
    hvs_http_t *http;
    _Atomic uint64_t requests;
};

typedef enum { V_TEMP, V_RH, V_CLOUD, V_GHI, V_WIND, V_COUNT } var_t;
static const struct {
    const char *name, *unit;
} vars[V_COUNT] = {
    [V_TEMP] = {"temperature_2m", "°C"}, [V_RH] = {"relativehumidity_2m", "%"},
    [V_CLOUD] = {"cloudcover", "%"},     [V_GHI] = {"shortwave_radiation", "W/m²"},
    [V_WIND] = {"windspeed_10m", "m/s"},
};

static int answer(hvs_http_response_t *resp, int status, hvs_strbuf_t *b) {
    if (b->oom) {
        free(b->p);
        return -1;
    }
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = b->p;
    resp->body_len = b->len;
    return 0;
}

static int error_400(hvs_http_response_t *resp, const char *fmt, ...) {
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    hvs_strbuf_t b = {0};
    /* The reason names our own parameters, no quotes or backslashes in them. */
    for (char *p = reason; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '?';
    hvs_strbuf_printf(&b, "{\"error\":true,\"reason\":\"%s\"}", reason);
    return answer(resp, 400, &b);
}

/* Find `name` in a percent-encoded query; decode its value into out. 1 found, 0 absent,
 * -1 malformed or too long. */
static int query_get(const char *query, const char *name, char *out, size_t outlen) {
    size_t nlen = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            size_t o = 0;
            for (const char *v = p + nlen + 1; v < end; v++) {
                char c = *v;
                if (c == '%') {
                    if (end - v < 3)
                        return -1;
                    char hex[3] = {v[1], v[2], 0};
                    char *e;
                    long x = strtol(hex, &e, 16);
                    if (*e)
                        return -1;
                    c = (char)x;
                    v += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                if (o + 1 >= outlen)
                    return -1;
                out[o++] = c;
            }
            out[o] = '\0';
            return 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_date(const char *s, hvs_ms_t *out) {
    int y, m, d;
    char extra;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3 || y < 1970 || y > 2199 || m < 1 ||
        m > 12 || d < 1 || d > 31)
        return -1;
    char iso[32];
    snprintf(iso, sizeof iso, "%04d-%02d-%02dT00:00:00Z", y, m, d);
    hvs_err_t err;
    return hvs_time_parse_iso8601(iso, out, &err) == 0 ? 0 : -1;
}

static int handle_forecast(sim_weather_server_t *s, const char *query, hvs_http_response_t *resp) {
    const sim_weather_server_conf_t *c = &s->conf;
    char buf[1024];
    double lat, lon;
    if (query_get(query, "latitude", buf, sizeof buf) != 1 || parse_double(buf, -90, 90, &lat))
        return error_400(resp, "Parameter latitude must be a number in [-90, 90]");
    if (query_get(query, "longitude", buf, sizeof buf) != 1 || parse_double(buf, -180, 180, &lon))
        return error_400(resp, "Parameter longitude must be a number in [-180, 180]");
    bool want[V_COUNT] = {false};
    int nwant = 0;
    int rc = query_get(query, "hourly", buf, sizeof buf);
    if (rc < 0)
        return error_400(resp, "Parameter hourly is malformed");
    if (rc == 0) {
        for (int v = 0; v < V_COUNT; v++)
            want[v] = true;
        nwant = V_COUNT;
    } else {
        char *save = NULL;
        for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int v = 0;
            while (v < V_COUNT && strcmp(tok, vars[v].name) != 0)
                v++;
            if (v == V_COUNT)
                return error_400(resp,
                                 "Cannot initialize WeatherVariable from invalid String "
                                 "value %.60s for key hourly",
                                 tok);
            nwant += !want[v];
            want[v] = true;
        }
        if (nwant == 0)
            return error_400(resp, "Parameter hourly is empty");
    }
    hvs_ms_t now = atomic_load(c->now_ms);
    hvs_ms_t from, to;
    char b2[64];
    int has_start = query_get(query, "start_date", buf, 64);
    int has_end = query_get(query, "end_date", b2, sizeof b2);
    if (has_start < 0 || has_end < 0 || has_start != has_end)
        return error_400(resp, "Parameters start_date and end_date go together (YYYY-MM-DD)");
    if (has_start) {
        if (parse_date(buf, &from) || parse_date(b2, &to))
            return error_400(resp, "Invalid date: expected YYYY-MM-DD");
        to += DAY_MS;
        if (to <= from || (to - from) / HOUR_MS > MAX_HOURS)
            return error_400(resp, "start_date must not be after end_date, at most %d days",
                             MAX_HOURS / 24);
    } else {
        double past = 0, days = 7;
        if ((rc = query_get(query, "past_days", buf, 64)) < 0 ||
            (rc == 1 && (parse_double(buf, 0, 92, &past) || past != floor(past))))
            return error_400(resp, "Parameter past_days must be an integer in [0, 92]");
        if ((rc = query_get(query, "forecast_days", buf, 64)) < 0 ||
            (rc == 1 && (parse_double(buf, 0, 16, &days) || days != floor(days))))
            return error_400(resp, "Parameter forecast_days must be an integer in [0, 16]");
        hvs_ms_t today = now - ((now % DAY_MS) + DAY_MS) % DAY_MS;
        from = today - (hvs_ms_t)past * DAY_MS;
        to = today + (hvs_ms_t)days * DAY_MS;
        if (to <= from)
            return error_400(resp, "past_days and forecast_days are both 0");
    }

    /* Hours before now are observed; later ones come from the newest forecast run. */
    hvs_ms_t issued = sim_weather_latest_issue(now);
    size_t n = (size_t)((to - from) / HOUR_MS);
    sim_weather_t *w = malloc(n * sizeof *w);
    if (!w)
        return -1;
    for (size_t i = 0; i < n; i++) {
        hvs_ms_t t = from + (hvs_ms_t)i * HOUR_MS;
        if (t <= now)
            sim_weather_observed(c->weather, lat, lon, c->elevation_m, t, &w[i]);
        else
            sim_weather_forecast(c->weather, lat, lon, c->elevation_m, issued, t, &w[i]);
    }
    hvs_strbuf_t b = {0};
    hvs_strbuf_printf(
        &b,
        "{\"latitude\":%.4f,\"longitude\":%.4f,\"generationtime_ms\":0.1,"
        "\"utc_offset_seconds\":0,\"timezone\":\"GMT\",\"timezone_abbreviation\":\"GMT\","
        "\"elevation\":%.1f,\"hourly_units\":{\"time\":\"iso8601\"",
        lat, lon, c->elevation_m);
    for (int v = 0; v < V_COUNT; v++)
        if (want[v])
            hvs_strbuf_printf(&b, ",\"%s\":\"%s\"", vars[v].name, vars[v].unit);
    hvs_strbuf_printf(&b, "},\"hourly\":{\"time\":[");
    for (size_t i = 0; i < n; i++) {
        char iso[40];
        hvs_time_format_iso8601(w[i].time, iso, sizeof iso);
        iso[16] = '\0'; /* "YYYY-MM-DDTHH:MM", as Open-Meteo writes local times */
        hvs_strbuf_printf(&b, "%s\"%s\"", i ? "," : "", iso);
    }
    hvs_strbuf_printf(&b, "]");
    for (int v = 0; v < V_COUNT; v++) {
        if (!want[v])
            continue;
        hvs_strbuf_printf(&b, ",\"%s\":[", vars[v].name);
        for (size_t i = 0; i < n; i++) {
            double x = v == V_TEMP    ? w[i].temperature_c
                       : v == V_RH    ? w[i].relative_humidity_pct
                       : v == V_CLOUD ? w[i].cloud_cover_pct
                       : v == V_GHI   ? w[i].shortwave_radiation_wm2
                                      : w[i].wind_speed_ms;
            if (v == V_RH || v == V_CLOUD)
                hvs_strbuf_printf(&b, "%s%.0f", i ? "," : "", x);
            else
                hvs_strbuf_printf(&b, "%s%.1f", i ? "," : "", x);
        }
        hvs_strbuf_printf(&b, "]");
    }
    hvs_strbuf_printf(&b, "}}");
    free(w);
    return answer(resp, 200, &b);
}

static int handle(void *opaque, const char *method, const char *path, const char *query,
                  const char *body, size_t body_len, hvs_http_response_t *resp) {
    (void)body, (void)body_len;
    sim_weather_server_t *s = opaque;
    uint64_t n = atomic_fetch_add(&s->requests, 1);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return error_400(resp, "Only GET");
    /* Deterministic fault injection by request number. */
    uint64_t k = sim_hash2(s->conf.weather->seed, n);
    if (s->conf.fail_rate > 0 && sim_noise_u01(k) < s->conf.fail_rate) {
        hvs_strbuf_t b = {0};
        hvs_strbuf_printf(&b, "{\"error\":true,\"reason\":\"Service temporarily unavailable\"}");
        return answer(resp, 503, &b);
    }
    if (strcmp(path, "/v1/status") == 0) {
        char a[40], i[40];
        hvs_ms_t now = atomic_load(s->conf.now_ms);
        hvs_strbuf_t b = {0};
        hvs_strbuf_printf(&b, "{\"now\":\"%s\",\"issued_at\":\"%s\"}",
                          hvs_time_format_iso8601(now, a, sizeof a),
                          hvs_time_format_iso8601(sim_weather_latest_issue(now), i, sizeof i));
        return answer(resp, 200, &b);
    }
    if (strcmp(path, "/v1/forecast") != 0) {
        hvs_strbuf_t b = {0};
        hvs_strbuf_printf(&b, "{\"error\":true,\"reason\":\"Not found\"}");
        return answer(resp, 404, &b);
    }
    int rc = handle_forecast(s, query, resp);
    if (rc == 0 && resp->status == 200 && s->conf.garbage_rate > 0 &&
        sim_noise_u01(k ^ 0x9a7b) < s->conf.garbage_rate)
        resp->body_len /= 2; /* cut short, as by a dropped connection behind a proxy */
    return rc;
}

int sim_weather_server_start(uint16_t port, const sim_weather_server_conf_t *conf,
                             sim_weather_server_t **out, hvs_err_t *err) {
    sim_weather_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    s->conf = *conf;
    if (s->conf.elevation_m == 0)
        s->conf.elevation_m = 408;
    int rc = hvs_http_start(port, conf->bind_any, NULL, NULL, NULL, &s->http, err);
    if (rc == HVS_OK)
        rc = hvs_http_route(s->http, "/v1/", handle, s, err);
    if (rc != HVS_OK) {
        sim_weather_server_stop(s);
        return rc;
    }
    *out = s;
    return HVS_OK;
}

uint16_t sim_weather_server_port(const sim_weather_server_t *s) { return hvs_http_port(s->http); }

void sim_weather_server_stop(sim_weather_server_t *s) {
    if (!s)
        return;
    hvs_http_stop(s->http);
    free(s);
}
