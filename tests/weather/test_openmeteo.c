/*
 * test_openmeteo - the Open-Meteo response validator on hand-written bodies: a good one gives the
 * exact hours, values (nulls kept as null, both variable spellings read) and OBSERVED/FORECAST
 * split for a given now (also exactly at an hour's end); each kind of bad response is refused
 * with its own reason; the hourly list, the request URL and Retry-After parsing.
 */
#include <math.h>

#include "client.h"
#include "hvs/log.h"
#include "hvs/time.h"
#include "hvs_test.h"
#include "openmeteo.h"

#define H (3600 * 1000LL)

/* The parts of a body; NULL leaves a member out. */
typedef struct parts {
    const char *lat, *lon, *offset, *tz, *units, *time, *temp, *temp_key, *rh, *rh_key, *cloud,
        *cloud_key, *ghi, *wind, *wind_key, *hourly_raw, *extra;
} parts_t;

static parts_t good(void) {
    parts_t p = {
        .lat = "47.37",
        .lon = "8.54",
        .offset = "0",
        .tz = "\"GMT\"",
        .units = "{\"time\":\"iso8601\",\"temperature_2m\":\"°C\",\"relative_humidity_2m\":\"%\","
                 "\"cloudcover\":\"%\",\"shortwave_radiation\":\"W/m²\",\"windspeed_10m\":\"m/s\"}",
        .time = "[\"2025-01-10T22:00\",\"2025-01-10T23:00\",\"2025-01-11T00:00\","
                "\"2025-01-11T01:00\",\"2025-01-11T02:00\",\"2025-01-11T03:00\"]",
        .temp = "[-1.5,-2,-2.25,null,3.5,4]",
        .temp_key = "temperature_2m",
        .rh = "[80,81,82,83,84,85]",
        .rh_key = "relative_humidity_2m",
        .cloud = "[0,10,20,30,40,100]",
        .cloud_key = "cloudcover",
        .ghi = "[0,0,0,null,120.5,300]",
        .wind = "[1.5,2.5,3.5,null,5.5,119.9]",
        .wind_key = "windspeed_10m",
    };
    return p;
}

static char *build(const parts_t *p) {
    static char buf[8192];
    size_t o = 0;
#define PUT(...) o += (size_t)snprintf(buf + o, sizeof buf - o, __VA_ARGS__)
    PUT("{\"generationtime_ms\":0.2");
    if (p->lat)
        PUT(",\"latitude\":%s", p->lat);
    if (p->lon)
        PUT(",\"longitude\":%s", p->lon);
    if (p->offset)
        PUT(",\"utc_offset_seconds\":%s", p->offset);
    if (p->tz)
        PUT(",\"timezone\":%s,\"timezone_abbreviation\":%s", p->tz, p->tz);
    PUT(",\"elevation\":408.0");
    if (p->units)
        PUT(",\"hourly_units\":%s", p->units);
    if (p->hourly_raw) {
        PUT(",\"hourly\":%s", p->hourly_raw);
    } else {
        PUT(",\"hourly\":{");
        const char *sep = "";
        if (p->time)
            PUT("\"time\":%s", p->time), sep = ",";
        if (p->temp)
            PUT("%s\"%s\":%s", sep, p->temp_key, p->temp), sep = ",";
        if (p->rh)
            PUT("%s\"%s\":%s", sep, p->rh_key, p->rh), sep = ",";
        if (p->cloud)
            PUT("%s\"%s\":%s", sep, p->cloud_key, p->cloud), sep = ",";
        if (p->ghi)
            PUT("%s\"shortwave_radiation\":%s", sep, p->ghi), sep = ",";
        if (p->wind)
            PUT("%s\"%s\":%s", sep, p->wind_key, p->wind);
        PUT("}");
    }
    if (p->extra)
        PUT(",%s", p->extra);
    PUT("}");
#undef PUT
    return buf;
}

static hvs_ms_t iso(const char *s) {
    hvs_ms_t t;
    HVS_REQUIRE(hvs_time_parse_iso8601(s, &t, NULL) == 0, "%s", s);
    return t;
}

static wx_hours_t hours;

static int parse_at(const char *body, size_t len, hvs_ms_t now, hvs_err_t *err) {
    wx_parse_opts_t o = {.now = now, .want = WX_ALL_VARS, .latitude = 47.37, .longitude = 8.54};
    return wx_openmeteo_parse(body, len, &o, &hours, err);
}

/* The body of p must be refused with `reason`. */
static void expect_bad(const char *what, const char *body, const char *reason) {
    hvs_err_t err = {0};
    int rc = parse_at(body, strlen(body), iso("2025-01-11T02:15:00Z"), &err);
    HVS_CHECK(rc == HVS_EINVAL && strcmp(err.reason, reason) == 0,
              "%s: rc %d reason \"%s\" (%s), expected %s", what, rc, err.reason, err.msg, reason);
    HVS_CHECK(hours.n == 0, "%s: no hours from a refused response", what);
}

static void test_good(void) {
    parts_t p = good();
    const char *body = build(&p);
    hvs_err_t err = {0};
    hvs_ms_t now = iso("2025-01-11T02:15:00Z");
    HVS_REQUIRE(parse_at(body, strlen(body), now, &err) == 0, "good: %s", err.msg);
    HVS_CHECK_EQ_INT(hours.n, 6);
    hvs_ms_t t0 = iso("2025-01-10T22:00:00Z");
    static const double temp[] = {-1.5, -2, -2.25, NAN, 3.5, 4};
    static const double rh[] = {80, 81, 82, 83, 84, 85};
    static const double cloud[] = {0, 10, 20, 30, 40, 100};
    static const double ghi[] = {0, 0, 0, NAN, 120.5, 300};
    static const double wind[] = {1.5, 2.5, 3.5, NAN, 5.5, 119.9};
    const double *cols[WX_NVARS] = {temp, rh, cloud, ghi, wind};
    for (size_t i = 0; i < hours.n && i < 6; i++) {
        const wx_hour_t *h = &hours.h[i];
        HVS_CHECK_EQ_INT(h->hour, t0 + (hvs_ms_t)i * H);
        /* 01:00 + 1 h <= 02:15: observed; 02:00 + 1 h > 02:15: forecast */
        HVS_CHECK_EQ_INT(h->kind, i <= 3 ? WX_OBSERVED : WX_FORECAST);
        for (int v = 0; v < WX_NVARS; v++) {
            double want = cols[v][i];
            if (isnan(want)) {
                HVS_CHECK(!(h->present & (1u << v)), "hour %zu var %d null", i, v);
            } else {
                HVS_CHECK(h->present & (1u << v), "hour %zu var %d present", i, v);
                HVS_CHECK(h->v[v] == want, "hour %zu var %d = %g, expected %g", i, v, h->v[v],
                          want);
            }
        }
    }
    /* exactly at the end of 02:00's hour it is observed */
    HVS_REQUIRE(parse_at(body, strlen(body), iso("2025-01-11T03:00:00Z"), &err) == 0, "%s",
                err.msg);
    HVS_CHECK(hours.h[4].kind == WX_OBSERVED && hours.h[5].kind == WX_FORECAST,
              "boundary: 02:00 observed at 03:00, 03:00 forecast");
    HVS_REQUIRE(parse_at(body, strlen(body), iso("2025-01-11T02:59:59.999Z"), &err) == 0, "%s",
                err.msg);
    HVS_CHECK(hours.h[3].kind == WX_OBSERVED && hours.h[4].kind == WX_FORECAST,
              "boundary: 02:00 still forecast 1 ms before 03:00");

    /* the other spellings, full ISO times with a zone, UTC, no units, no coordinates */
    p.temp_key = "temperature_2m";
    p.rh_key = "relativehumidity_2m";
    p.cloud_key = "cloud_cover";
    p.wind_key = "wind_speed_10m";
    p.units = NULL;
    p.lat = p.lon = NULL;
    p.tz = "\"UTC\"";
    p.time = "[\"2025-01-10T22:00:00Z\",\"2025-01-10T23:00:00Z\",\"2025-01-11T00:00:00Z\","
             "\"2025-01-11T01:00:00Z\",\"2025-01-11T02:00:00+00:00\",\"2025-01-11T03:00:00Z\"]";
    body = build(&p);
    HVS_CHECK(parse_at(body, strlen(body), now, &err) == 0 && hours.n == 6 &&
                  hours.h[5].hour == t0 + 5 * H && hours.h[5].v[WX_WIND] == 119.9 &&
                  hours.h[1].v[WX_RH] == 81,
              "alternative spellings: %s", err.msg);

    /* only what was asked for must be there */
    p = good();
    p.wind = NULL;
    p.units = NULL;
    body = build(&p);
    wx_parse_opts_t o = {
        .now = now, .want = WX_ALL_VARS & ~(1u << WX_WIND), .latitude = NAN, .longitude = NAN};
    HVS_CHECK(wx_openmeteo_parse(body, strlen(body), &o, &hours, &err) == 0 && hours.n == 6 &&
                  !(hours.h[0].present & (1u << WX_WIND)),
              "wind not asked: %s", err.msg);
    /* an hour that is null throughout parses (present = 0) */
    p = good();
    p.temp = "[null,-2,-2.25,null,3.5,4]";
    p.rh = "[null,81,82,83,84,85]";
    p.cloud = "[null,10,20,30,40,100]";
    p.ghi = "[null,0,0,null,120.5,300]";
    p.wind = "[null,2.5,3.5,null,5.5,119.9]";
    body = build(&p);
    HVS_CHECK(parse_at(body, strlen(body), now, &err) == 0 && hours.h[0].present == 0,
              "all-null hour: %s", err.msg);
}

static void test_bad(void) {
    parts_t p = good();
    char cut[8192];
    const char *body = build(&p);
    size_t n = strlen(body);
    memcpy(cut, body, n / 2);
    cut[n / 2] = '\0';
    expect_bad("cut in half", cut, WX_R_TRUNCATED);
    memcpy(cut, body, n - 1); /* only the final brace missing */
    cut[n - 1] = '\0';
    expect_bad("last brace missing", cut, WX_R_TRUNCATED);
    expect_bad("empty body", "", WX_R_TRUNCATED);
    expect_bad("HTML", "<html><body>502 Bad Gateway</body></html>", WX_R_INVALID_JSON);
    expect_bad("trailing garbage", "{\"hourly\":{}} x", WX_R_INVALID_JSON);
    expect_bad("NaN literal",
               "{\"utc_offset_seconds\":0,\"hourly\":{\"time\":[\"2025-01-11T00:00\"],"
               "\"temperature_2m\":[NaN]}}",
               WX_R_INVALID_JSON);
    expect_bad("array", "[1,2,3]", WX_R_NOT_OBJECT);

    p = good();
    p.extra = "\"latitude\":47.37";
    expect_bad("duplicate key", build(&p), WX_R_INVALID_JSON);
    p = good();
    p.hourly_raw = "[1]";
    expect_bad("hourly not an object", build(&p), WX_R_MISSING_HOURLY);
    p = good();
    p.hourly_raw = NULL;
    p.time = p.temp = p.rh = p.cloud = p.ghi = p.wind = NULL;
    p.hourly_raw = "{}";
    expect_bad("hourly empty object", build(&p), WX_R_MISSING_TIME);
    {
        char api[] = "{\"error\":true,\"reason\":\"Latitude must be in range of -90 to 90\u00b0\","
                     "\"utc_offset_seconds\":0}";
        expect_bad("API error body", api, WX_R_MISSING_HOURLY);
    }
    p = good();
    p.time = NULL;
    expect_bad("no time", build(&p), WX_R_MISSING_TIME);
    p = good();
    p.time = "\"2025-01-11T00:00\"";
    expect_bad("time not an array", build(&p), WX_R_MISSING_TIME);
    p = good();
    p.ghi = NULL;
    expect_bad("no shortwave_radiation", build(&p), WX_R_MISSING_VARIABLE);
    p = good();
    p.rh = "[80,81,82,83,84]";
    expect_bad("humidity one short", build(&p), WX_R_UNEQUAL);
    p = good();
    p.temp = "[-1.5,-2,-2.25,null,3.5,4,5]";
    expect_bad("temperature one long", build(&p), WX_R_UNEQUAL);
    p = good();
    p.temp = "[-1.5,-2,\"-2.25\",null,3.5,4]";
    expect_bad("string for a number", build(&p), WX_R_NON_NUMERIC);
    p = good();
    p.cloud = "[0,10,true,30,40,100]";
    expect_bad("boolean for a number", build(&p), WX_R_NON_NUMERIC);
    p = good();
    p.wind = "{\"a\":1}";
    expect_bad("object for an array", build(&p), WX_R_NON_NUMERIC);
    p = good();
    p.temp = "[-1.5,-2,-2.25,null,75,4]";
    expect_bad("temperature 75", build(&p), WX_R_OUT_OF_RANGE);
    p = good();
    p.temp = "[-80.5,-2,-2.25,null,3.5,4]";
    expect_bad("temperature -80.5", build(&p), WX_R_OUT_OF_RANGE);
    p = good();
    p.rh = "[80,81,82,83,84,100.5]";
    expect_bad("humidity 100.5", build(&p), WX_R_OUT_OF_RANGE);
    p = good();
    p.cloud = "[-1,10,20,30,40,100]";
    expect_bad("cloud -1", build(&p), WX_R_OUT_OF_RANGE);
    p = good();
    p.ghi = "[0,0,0,null,1500.1,300]";
    expect_bad("radiation 1500.1", build(&p), WX_R_OUT_OF_RANGE);
    p = good();
    p.wind = "[1.5,2.5,3.5,null,5.5,120.5]";
    expect_bad("wind 120.5", build(&p), WX_R_OUT_OF_RANGE);
    p = good();
    p.temp = "[-1.5,-2,-2.25,null,3.5,1e308]";
    expect_bad("temperature 1e308", build(&p), WX_R_OUT_OF_RANGE);
    p = good();
    p.offset = "3600";
    expect_bad("utc_offset_seconds 3600", build(&p), WX_R_TIMEZONE);
    p = good();
    p.offset = NULL;
    expect_bad("utc_offset_seconds missing", build(&p), WX_R_TIMEZONE);
    p = good();
    p.offset = "\"0\"";
    expect_bad("utc_offset_seconds a string", build(&p), WX_R_TIMEZONE);
    p = good();
    p.tz = "\"Europe/Zurich\"";
    expect_bad("timezone Europe/Zurich", build(&p), WX_R_TIMEZONE);
    p = good();
    p.units = "{\"temperature_2m\":\"°F\"}";
    expect_bad("Fahrenheit", build(&p), WX_R_UNIT);
    p.units = "{\"windspeed_10m\":\"km/h\"}";
    expect_bad("km/h", build(&p), WX_R_UNIT);
    p = good();
    p.lat = "52.52";
    expect_bad("another place", build(&p), WX_R_LOCATION);
    p = good();
    p.time = "[\"yesterday\",\"2025-01-10T23:00\",\"2025-01-11T00:00\","
             "\"2025-01-11T01:00\",\"2025-01-11T02:00\",\"2025-01-11T03:00\"]";
    expect_bad("time 'yesterday'", build(&p), WX_R_TIME_UNPARSABLE);
    p.time = "[\"2025-01-10T22:00\",\"2025-01-10T23:00\",\"2025-02-30T00:00\","
             "\"2025-01-11T01:00\",\"2025-01-11T02:00\",\"2025-01-11T03:00\"]";
    expect_bad("February 30", build(&p), WX_R_TIME_UNPARSABLE);
    p.time = "[\"2025-01-10T22:00\",\"2025-01-10T23:00\",1736553600,"
             "\"2025-01-11T01:00\",\"2025-01-11T02:00\",\"2025-01-11T03:00\"]";
    expect_bad("time as a number", build(&p), WX_R_TIME_UNPARSABLE);
    p.time = "[\"2025-01-10T22:00\",\"2025-01-10T23:30\",\"2025-01-11T00:00\","
             "\"2025-01-11T01:00\",\"2025-01-11T02:00\",\"2025-01-11T03:00\"]";
    expect_bad("23:30", build(&p), WX_R_TIME_NOT_ON_HOUR);
    p.time = "[\"2025-01-10T22:00\",\"2025-01-10T23:00\",\"2025-01-10T23:00\","
             "\"2025-01-11T01:00\",\"2025-01-11T02:00\",\"2025-01-11T03:00\"]";
    expect_bad("23:00 twice", build(&p), WX_R_TIME_NOT_INCREASING);
    p.time = "[\"2025-01-10T22:00\",\"2025-01-10T23:00\",\"2025-01-11T00:00\","
             "\"2025-01-10T21:00\",\"2025-01-11T02:00\",\"2025-01-11T03:00\"]";
    expect_bad("back in time", build(&p), WX_R_TIME_NOT_INCREASING);
    p.time = "[\"2025-01-10T22:00\",\"2025-01-10T23:00\",\"2025-01-11T00:00\","
             "\"2025-01-11T01:00\",\"2025-01-11T02:00\",\"2030-01-11T03:00\"]";
    expect_bad("2030", build(&p), WX_R_TIME_OUT_OF_RANGE);
    p = good();
    p.time = "[]";
    p.temp = p.rh = p.cloud = p.ghi = p.wind = "[]";
    expect_bad("no hours", build(&p), WX_R_NO_HOURS);
    p = good();
    body = build(&p);
    hvs_err_t err = {0};
    wx_parse_opts_t o = {.now = iso("2025-01-11T02:15:00Z"),
                         .want = WX_ALL_VARS,
                         .latitude = NAN,
                         .longitude = NAN,
                         .max_hours = 5};
    HVS_CHECK(wx_openmeteo_parse(body, strlen(body), &o, &hours, &err) == HVS_EINVAL &&
                  strcmp(err.reason, WX_R_TOO_MANY_HOURS) == 0,
              "too many hours: %s", err.reason);
    /* the message names what was wrong */
    p = good();
    p.temp = "[-1.5,-2,-2.25,null,75,4]";
    body = build(&p);
    parse_at(body, strlen(body), o.now, &err);
    HVS_CHECK(strstr(err.msg, "temperature_2m[4]") && strstr(err.msg, "75"), "message: %s",
              err.msg);
}

static void test_helpers(void) {
    unsigned want = 0;
    hvs_err_t err = {0};
    HVS_CHECK(wx_openmeteo_hourly_mask("temperature_2m,relativehumidity_2m,cloudcover,"
                                       "shortwave_radiation,windspeed_10m",
                                       &want, &err) == 0 &&
                  want == WX_ALL_VARS,
              "old spellings");
    HVS_CHECK(wx_openmeteo_hourly_mask("cloud_cover,temperature_2m", &want, &err) == 0 &&
                  want == ((1u << WX_CLOUD) | (1u << WX_TEMP)),
              "new spellings, any order");
    HVS_CHECK(wx_openmeteo_hourly_mask("temperature_2m,precipitation", &want, &err) == HVS_EINVAL &&
                  strstr(err.msg, "precipitation"),
              "unknown: %s", err.msg);
    HVS_CHECK(wx_openmeteo_hourly_mask("cloudcover,cloud_cover", &want, &err) == HVS_EINVAL,
              "the same variable twice");
    HVS_CHECK(wx_openmeteo_hourly_mask("", &want, &err) == HVS_EINVAL, "empty");
    char url[512];
    HVS_CHECK(wx_openmeteo_url(url, sizeof url, "http://127.0.0.1:8090/", 47.40321, -8.5,
                               "temperature_2m,cloudcover", 1, 3) > 0,
              "url");
    HVS_CHECK_EQ_STR(url, "http://127.0.0.1:8090/v1/forecast?latitude=47.4032&longitude=-8.5000"
                          "&hourly=temperature_2m,cloudcover&past_days=1&forecast_days=3"
                          "&windspeed_unit=ms&timezone=GMT");
    HVS_CHECK(wx_openmeteo_url(url, 20, "http://127.0.0.1:8090", 0, 0, "x", 1, 3) == -1,
              "does not fit");
    int64_t now_s = 1736560800; /* 2025-01-11T02:00:00Z */
    HVS_CHECK_EQ_INT(wx_retry_after_ms("1", now_s), 1000);
    HVS_CHECK_EQ_INT(wx_retry_after_ms(" 120 ", now_s), 120000);
    HVS_CHECK_EQ_INT(wx_retry_after_ms("Sat, 11 Jan 2025 02:00:30 GMT", now_s), 30000);
    HVS_CHECK_EQ_INT(wx_retry_after_ms("Sat, 11 Jan 2025 01:00:00 GMT", now_s), 0);
    HVS_CHECK_EQ_INT(wx_retry_after_ms("99999999", now_s), 3600 * 1000);
    HVS_CHECK_EQ_INT(wx_retry_after_ms("soon", now_s), -1);
    HVS_CHECK_EQ_INT(wx_retry_after_ms("5s", now_s), -1);
    HVS_CHECK_EQ_INT(wx_retry_after_ms("", now_s), -1);
    double lo, hi;
    wx_var_range(WX_GHI, &lo, &hi);
    HVS_CHECK(lo == 0 && hi == 1500, "radiation range");
    HVS_CHECK_EQ_STR(wx_var_field(WX_WIND), "wind_speed_ms");
}

static void free_hours(void) { wx_hours_fini(&hours); }

static const hvs_test_case_t cases[] = {
    {"good", test_good},
    {"bad", test_bad},
    {"helpers", test_helpers},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    hvs_test_cleanup(free_hours);
    return hvs_test_main(cases, argc, argv);
}
