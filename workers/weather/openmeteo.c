/* openmeteo.c - Open-Meteo request URL and response validation (see openmeteo.h). */
#include "openmeteo.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/vec.h"

#define DEFAULT_MAX_HOURS (24 * (92 + 16))
#define MAX_PAST (93 * HVS_MS_DAY)
#define MAX_AHEAD (17 * HVS_MS_DAY)
#define MAX_LOCATION_DEG 0.5

/* Accepted spellings per variable: the current Open-Meteo name first, then the older one. */
static const char *const names[WX_NVARS][2] = {
    [WX_TEMP] = {"temperature_2m", NULL},
    [WX_RH] = {"relative_humidity_2m", "relativehumidity_2m"},
    [WX_CLOUD] = {"cloud_cover", "cloudcover"},
    [WX_GHI] = {"shortwave_radiation", NULL},
    [WX_WIND] = {"wind_speed_10m", "windspeed_10m"},
};
static const char *const fields[WX_NVARS] = {
    [WX_TEMP] = "temperature_c",    [WX_RH] = "relative_humidity_pct",
    [WX_CLOUD] = "cloud_cover_pct", [WX_GHI] = "shortwave_radiation_wm2",
    [WX_WIND] = "wind_speed_ms",
};
static const double ranges[WX_NVARS][2] = {
    [WX_TEMP] = {-80, 60}, [WX_RH] = {0, 100},   [WX_CLOUD] = {0, 100},
    [WX_GHI] = {0, 1500},  [WX_WIND] = {0, 120},
};
/* Units Open-Meteo reports in hourly_units for what we ask (wind: windspeed_unit=ms). */
static const char *const units[WX_NVARS][3] = {
    [WX_TEMP] = {"°C", "degC", NULL}, [WX_RH] = {"%", NULL, NULL},
    [WX_CLOUD] = {"%", NULL, NULL},   [WX_GHI] = {"W/m²", "W/m2", "Wm-2"},
    [WX_WIND] = {"m/s", "ms", NULL},
};

void wx_var_range(wx_var_t v, double *lo, double *hi) {
    *lo = ranges[v][0];
    *hi = ranges[v][1];
}

const char *wx_var_field(wx_var_t v) { return (unsigned)v < WX_NVARS ? fields[v] : "?"; }

static int var_of(const char *name, size_t len) {
    for (int v = 0; v < WX_NVARS; v++)
        for (int k = 0; k < 2; k++)
            if (names[v][k] && strlen(names[v][k]) == len && strncmp(names[v][k], name, len) == 0)
                return v;
    return -1;
}

int wx_openmeteo_hourly_mask(const char *hourly, unsigned *want, hvs_err_t *err) {
    *want = 0;
    if (!hourly || !*hourly)
        return hvs_err_set(err, HVS_EINVAL, "bad_value", "hourly variable list is empty");
    for (const char *p = hourly; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int v = var_of(p, len);
        if (v < 0)
            return hvs_err_set(err, HVS_EINVAL, "bad_value",
                               "hourly variable \"%.*s\" is not one of temperature_2m, "
                               "relative(_)humidity_2m, cloud(_)cover, shortwave_radiation, "
                               "wind(_)speed_10m",
                               (int)(len > 60 ? 60 : len), p);
        if (*want & (1u << v))
            return hvs_err_set(err, HVS_EINVAL, "bad_value", "hourly variable \"%.*s\" repeated",
                               (int)(len > 60 ? 60 : len), p);
        *want |= 1u << v;
        p = comma ? comma + 1 : p + len;
    }
    return 0;
}

int wx_openmeteo_url(char *buf, size_t len, const char *base, double latitude, double longitude,
                     const char *hourly, int past_days, int forecast_days) {
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    int n = snprintf(buf, len,
                     "%.*s/v1/forecast?latitude=%.4f&longitude=%.4f&hourly=%s&past_days=%d"
                     "&forecast_days=%d&windspeed_unit=ms&timezone=GMT",
                     (int)blen, base, latitude, longitude, hourly, past_days, forecast_days);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

void wx_hours_fini(wx_hours_t *h) {
    free(h->h);
    h->h = NULL;
    h->n = h->cap = 0;
}

int wx_hours_reserve(wx_hours_t *h, size_t n) {
    wx_hour_t *g = hvs_vec_grow(h->h, &h->cap, n, sizeof *h->h, 128);
    if (!g)
        return HVS_ENOMEM;
    h->h = g;
    return 0;
}

/* "2024-10-27T00:00" (Open-Meteo with timezone=GMT: local time = UTC, no zone written), or
 * full ISO-8601 with a zone. */
static int parse_time(const char *s, size_t len, hvs_ms_t *out) {
    char buf[48];
    if (len == 0 || len > 40 || memchr(s, '\0', len))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (hvs_time_parse_iso8601(buf, out, NULL) == 0)
        return 0;
    buf[len] = 'Z';
    buf[len + 1] = '\0';
    return hvs_time_parse_iso8601(buf, out, NULL) == 0 ? 0 : -1;
}

static int check_zone(json_t *root, hvs_err_t *err) {
    json_t *off = json_object_get(root, "utc_offset_seconds");
    if (!off)
        return hvs_err_set(err, HVS_EINVAL, WX_R_TIMEZONE,
                           "utc_offset_seconds missing: the times' zone is unknown");
    if (!json_is_number(off) || json_number_value(off) != 0)
        return hvs_err_set(err, HVS_EINVAL, WX_R_TIMEZONE,
                           "utc_offset_seconds is %g, not 0 (times must be UTC)",
                           json_is_number(off) ? json_number_value(off) : NAN);
    json_t *tz = json_object_get(root, "timezone");
    if (tz) {
        const char *z = json_string_value(tz);
        if (!z || (strcmp(z, "GMT") != 0 && strcmp(z, "UTC") != 0 && strcmp(z, "Etc/UTC") != 0 &&
                   strcmp(z, "Etc/GMT") != 0))
            return hvs_err_set(err, HVS_EINVAL, WX_R_TIMEZONE, "timezone is \"%.40s\", not GMT/UTC",
                               z ? z : "(not a string)");
    }
    return 0;
}

static int check_location(json_t *root, const wx_parse_opts_t *o, hvs_err_t *err) {
    static const char *const keys[2] = {"latitude", "longitude"};
    double asked[2] = {o->latitude, o->longitude};
    for (int k = 0; k < 2; k++) {
        json_t *j = json_object_get(root, keys[k]);
        if (!j || isnan(asked[k]))
            continue;
        if (!json_is_number(j) || fabs(json_number_value(j) - asked[k]) > MAX_LOCATION_DEG)
            return hvs_err_set(err, HVS_EINVAL, WX_R_LOCATION, "answered %s %g for the asked %.4f",
                               keys[k], json_is_number(j) ? json_number_value(j) : NAN, asked[k]);
    }
    return 0;
}

static int check_units(json_t *root, const json_t *arrays[WX_NVARS], const char *used[WX_NVARS],
                       hvs_err_t *err) {
    json_t *u = json_object_get(root, "hourly_units");
    if (!json_is_object(u))
        return 0; /* optional: the units are what was asked for */
    for (int v = 0; v < WX_NVARS; v++) {
        if (!arrays[v])
            continue;
        json_t *j = json_object_get(u, used[v]);
        if (!j)
            continue;
        const char *s = json_string_value(j);
        int ok = 0;
        for (int k = 0; s && k < 3; k++)
            ok |= units[v][k] && strcmp(s, units[v][k]) == 0;
        if (!ok)
            return hvs_err_set(err, HVS_EINVAL, WX_R_UNIT, "%s is in \"%.20s\", not %s", used[v],
                               s ? s : "(not a string)", units[v][0]);
    }
    return 0;
}

static int parse_root(json_t *root, const wx_parse_opts_t *o, wx_hours_t *out, hvs_err_t *err) {
    if (!json_is_object(root))
        return hvs_err_set(err, HVS_EINVAL, WX_R_NOT_OBJECT, "response is not a JSON object");
    int rc = check_zone(root, err);
    if (rc == 0)
        rc = check_location(root, o, err);
    if (rc)
        return rc;
    json_t *hourly = json_object_get(root, "hourly");
    if (!json_is_object(hourly))
        return hvs_err_set(err, HVS_EINVAL, WX_R_MISSING_HOURLY, "no \"hourly\" object%s",
                           json_object_get(root, "error") ? " (an API error answer)" : "");
    json_t *time = json_object_get(hourly, "time");
    if (!json_is_array(time))
        return hvs_err_set(err, HVS_EINVAL, WX_R_MISSING_TIME, "no \"hourly.time\" array");
    size_t n = json_array_size(time), max = o->max_hours ? o->max_hours : DEFAULT_MAX_HOURS;
    if (n == 0)
        return hvs_err_set(err, HVS_EINVAL, WX_R_NO_HOURS, "\"hourly.time\" is empty");
    if (n > max)
        return hvs_err_set(err, HVS_EINVAL, WX_R_TOO_MANY_HOURS, "%zu hours, more than %zu", n,
                           max);
    const json_t *arrays[WX_NVARS] = {NULL};
    const char *used[WX_NVARS] = {NULL};
    for (int v = 0; v < WX_NVARS; v++) {
        if (!(o->want & (1u << v)))
            continue;
        for (int k = 0; k < 2 && !arrays[v]; k++)
            if (names[v][k] && (arrays[v] = json_object_get(hourly, names[v][k])))
                used[v] = names[v][k];
        if (!arrays[v])
            return hvs_err_set(err, HVS_EINVAL, WX_R_MISSING_VARIABLE, "hourly.%s missing",
                               names[v][1] ? names[v][1] : names[v][0]);
        if (!json_is_array(arrays[v]))
            return hvs_err_set(err, HVS_EINVAL, WX_R_NON_NUMERIC, "hourly.%s is not an array",
                               used[v]);
        if (json_array_size(arrays[v]) != n)
            return hvs_err_set(err, HVS_EINVAL, WX_R_UNEQUAL,
                               "hourly.%s has %zu entries, hourly.time %zu", used[v],
                               json_array_size(arrays[v]), n);
    }
    if ((rc = check_units(root, arrays, used, err)))
        return rc;
    if (wx_hours_reserve(out, n))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "%zu hours", n);
    hvs_ms_t prev = HVS_MS_NONE;
    for (size_t i = 0; i < n; i++) {
        wx_hour_t *h = &out->h[i];
        json_t *t = json_array_get(time, i);
        const char *s = json_string_value(t);
        if (!s || parse_time(s, json_string_length(t), &h->hour))
            return hvs_err_set(err, HVS_EINVAL, WX_R_TIME_UNPARSABLE,
                               "hourly.time[%zu] = \"%.40s\" is not an ISO-8601 time", i,
                               s ? s : "(not a string)");
        if (h->hour % HVS_MS_HOUR != 0)
            return hvs_err_set(err, HVS_EINVAL, WX_R_TIME_NOT_ON_HOUR,
                               "hourly.time[%zu] = \"%.40s\" is not on the hour", i, s);
        if (prev != HVS_MS_NONE && h->hour <= prev)
            return hvs_err_set(err, HVS_EINVAL, WX_R_TIME_NOT_INCREASING,
                               "hourly.time[%zu] = \"%.40s\" does not follow the time before it", i,
                               s);
        if (h->hour < o->now - MAX_PAST || h->hour > o->now + MAX_AHEAD)
            return hvs_err_set(err, HVS_EINVAL, WX_R_TIME_OUT_OF_RANGE,
                               "hourly.time[%zu] = \"%.40s\" is further than 93 days back or "
                               "17 days ahead of now",
                               i, s);
        prev = h->hour;
        h->kind = h->hour + HVS_MS_HOUR <= o->now ? WX_OBSERVED : WX_FORECAST;
        h->present = 0;
        for (int v = 0; v < WX_NVARS; v++) {
            h->v[v] = 0;
            if (!arrays[v])
                continue;
            json_t *x = json_array_get(arrays[v], i);
            if (json_is_null(x))
                continue;
            if (!json_is_number(x)) {
                char shown[48] = "";
                if (json_is_string(x))
                    snprintf(shown, sizeof shown, " (\"%.30s\")", json_string_value(x));
                return hvs_err_set(err, HVS_EINVAL, WX_R_NON_NUMERIC,
                                   "hourly.%s[%zu] is not a number%s", used[v], i, shown);
            }
            double d = json_number_value(x);
            if (!isfinite(d) || d < ranges[v][0] || d > ranges[v][1])
                return hvs_err_set(err, HVS_EINVAL, WX_R_OUT_OF_RANGE,
                                   "hourly.%s[%zu] = %g outside [%g, %g]", used[v], i, d,
                                   ranges[v][0], ranges[v][1]);
            h->v[v] = d;
            h->present |= (uint8_t)(1u << v);
        }
    }
    out->n = n;
    return 0;
}

int wx_openmeteo_parse(const char *body, size_t len, const wx_parse_opts_t *o, wx_hours_t *out,
                       hvs_err_t *err) {
    out->n = 0;
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        int cut = json_error_code(&je) == json_error_premature_end_of_input;
        return hvs_err_set(err, HVS_EINVAL, cut ? WX_R_TRUNCATED : WX_R_INVALID_JSON,
                           "%s at byte %d of %zu: %s", cut ? "cut short" : "not JSON", je.position,
                           len, je.text);
    }
    int rc = parse_root(root, o, out, err);
    json_decref(root);
    if (rc)
        out->n = 0;
    return rc;
}
