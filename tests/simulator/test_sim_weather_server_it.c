/*
 * weather server over real HTTP on loopback: the Open-Meteo shape, past hours observed and
 * later ones from the newest forecast run at the simulated now, date ranges, every bad
 * parameter a 400 with a reason, and the injected failures.
 */
#include <jansson.h>
#include <math.h>

#include "hvs_test.h"
#include "weather_server.h"

#define HOUR 3600000LL
#define NOW 1730463000000LL /* 2024-11-01T12:10:00Z */

static sim_weather_conf_t wconf;
static _Atomic int64_t sim_now = NOW;

static json_t *get(uint16_t port, const char *query, long *status) {
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/%s", port, query);
    char *body = NULL;
    *status = hvs_test_http("GET", url, NULL, 0, &body, NULL, 0);
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    return j;
}

static void test_forecast(uint16_t port) {
    long st;
    json_t *j = get(port,
                    "forecast?latitude=47.37&longitude=8.54&hourly=temperature_2m,"
                    "shortwave_radiation,cloudcover&past_days=1&forecast_days=3",
                    &st);
    HVS_REQUIRE(st == 200 && j, "forecast: %ld", st);
    json_t *h = json_object_get(j, "hourly");
    json_t *time = json_object_get(h, "time"), *temp = json_object_get(h, "temperature_2m");
    json_t *ghi = json_object_get(h, "shortwave_radiation");
    HVS_CHECK_EQ_INT(json_array_size(time), 4 * 24);
    HVS_CHECK_EQ_INT(json_array_size(temp), 4 * 24);
    HVS_CHECK(json_object_get(h, "relativehumidity_2m") == NULL, "only what was asked");
    HVS_CHECK(!strcmp(json_string_value(json_array_get(time, 0)), "2024-10-31T00:00"),
              "first hour %s", json_string_value(json_array_get(time, 0)));
    HVS_CHECK(!strcmp(json_string_value(
                          json_object_get(json_object_get(j, "hourly_units"), "temperature_2m")),
                      "°C"),
              "units");
    hvs_ms_t from = 1730332800000LL; /* 2024-10-31T00:00Z */
    hvs_ms_t issued = sim_weather_latest_issue(NOW);
    HVS_CHECK_EQ_INT(issued, 1730440800000LL); /* the 06 UTC run, out at 08 UTC */
    int observed_ok = 0, forecast_ok = 0, nobs = 0, nfc = 0;
    for (size_t i = 0; i < json_array_size(time); i++) {
        hvs_ms_t t = from + (hvs_ms_t)i * HOUR;
        sim_weather_t w;
        if (t <= NOW) {
            sim_weather_observed(&wconf, 47.37, 8.54, 430, t, &w);
            nobs++;
            observed_ok += fabs(json_number_value(json_array_get(temp, i)) - w.temperature_c) <
                           0.051;
        } else {
            sim_weather_forecast(&wconf, 47.37, 8.54, 430, issued, t, &w);
            nfc++;
            forecast_ok += fabs(json_number_value(json_array_get(temp, i)) - w.temperature_c) <
                               0.051 &&
                           fabs(json_number_value(json_array_get(ghi, i)) -
                                w.shortwave_radiation_wm2) < 0.051;
        }
    }
    HVS_CHECK(nobs == 37 && observed_ok == nobs, "observed hours %d of %d", observed_ok, nobs);
    HVS_CHECK(nfc == 59 && forecast_ok == nfc, "forecast hours %d of %d", forecast_ok, nfc);
    json_decref(j);

    j = get(port, "forecast?latitude=46.2&longitude=6.14&start_date=2024-01-01&end_date=2024-01-02",
            &st);
    HVS_CHECK(st == 200 &&
                  json_array_size(json_object_get(json_object_get(j, "hourly"), "time")) == 48,
              "date range: %ld", st);
    HVS_CHECK(json_object_get(json_object_get(j, "hourly"), "windspeed_10m") != NULL,
              "all variables by default");
    json_decref(j);

    /* The server follows the simulated clock. */
    sim_now = NOW + 24 * HOUR;
    j = get(port, "status", &st);
    HVS_CHECK(st == 200 &&
                  !strcmp(json_string_value(json_object_get(j, "now")), "2024-11-02T12:10:00.000Z"),
              "status now");
    json_decref(j);
    sim_now = NOW;
}

static void test_bad_parameters(uint16_t port) {
    static const char *const bad[] = {
        "forecast?longitude=8",
        "forecast?latitude=91&longitude=8",
        "forecast?latitude=abc&longitude=8",
        "forecast?latitude=47&longitude=8.5x",
        "forecast?latitude=nan&longitude=8",
        "forecast?latitude=47&longitude=8&hourly=temperature_2m,snow",
        "forecast?latitude=47&longitude=8&hourly=",
        "forecast?latitude=47&longitude=8&past_days=93",
        "forecast?latitude=47&longitude=8&past_days=1.5",
        "forecast?latitude=47&longitude=8&forecast_days=17",
        "forecast?latitude=47&longitude=8&forecast_days=0&past_days=0",
        "forecast?latitude=47&longitude=8&start_date=2024-01-01",
        "forecast?latitude=47&longitude=8&start_date=2024-01-05&end_date=2024-01-01",
        "forecast?latitude=47&longitude=8&start_date=2024-13-01&end_date=2024-13-02",
        "forecast?latitude=47&longitude=8&start_date=2020-01-01&end_date=2024-01-01",
        "forecast?latitude=47%ZZ&longitude=8",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long st;
        json_t *j = get(port, bad[i], &st);
        HVS_CHECK(st == 400, "%s: %ld", bad[i], st);
        HVS_CHECK(j && json_is_true(json_object_get(j, "error")) &&
                      json_string_length(json_object_get(j, "reason")) > 5,
                  "%s: no reason", bad[i]);
        json_decref(j);
    }
    long st;
    json_t *j = get(port, "nothing", &st);
    HVS_CHECK(st == 404, "unknown path %ld", st);
    json_decref(j);
}

static void test_faults(void) {
    sim_weather_server_conf_t c = {
        .weather = &wconf, .now_ms = &sim_now, .elevation_m = 430, .fail_rate = 1.0};
    sim_weather_server_t *s;
    hvs_err_t err;
    HVS_REQUIRE(sim_weather_server_start(0, &c, &s, &err) == 0, "start");
    long st;
    json_t *j = get(sim_weather_server_port(s), "forecast?latitude=47&longitude=8", &st);
    HVS_CHECK(st == 503, "fail rate 1: %ld", st);
    json_decref(j);
    sim_weather_server_stop(s);
    c.fail_rate = 0, c.garbage_rate = 1.0;
    HVS_REQUIRE(sim_weather_server_start(0, &c, &s, &err) == 0, "start");
    j = get(sim_weather_server_port(s), "forecast?latitude=47&longitude=8", &st);
    HVS_CHECK(st == 200 && j == NULL, "garbage rate 1: %ld and JSON that does not parse", st);
    json_decref(j);
    /* A port in use is an error naming it. */
    sim_weather_server_t *s2 = NULL;
    int rc = sim_weather_server_start(sim_weather_server_port(s), &c, &s2, &err);
    HVS_CHECK(rc < 0 && s2 == NULL, "second server on the same port");
    sim_weather_server_stop(s);
}

/* The server the forecast and parameter cases ask, started by the first of them. */
static sim_weather_server_t *server;

static void stop_server(void) {
    if (server)
        sim_weather_server_stop(server);
    server = NULL;
}

static uint16_t server_port(void) {
    if (!server) {
        sim_weather_server_conf_t c = {.weather = &wconf, .now_ms = &sim_now, .elevation_m = 430};
        hvs_err_t err;
        HVS_REQUIRE(sim_weather_server_start(0, &c, &server, &err) == 0, "start: %s", err.msg);
        hvs_test_cleanup(stop_server);
    }
    return sim_weather_server_port(server);
}

static void case_forecast(void) { test_forecast(server_port()); }
static void case_bad_parameters(void) { test_bad_parameters(server_port()); }
/* The fault servers run alone, as they always did: the shared one is stopped first. */
static void case_faults(void) {
    stop_server();
    test_faults();
}

static const hvs_test_case_t cases[] = {
    {"forecast", case_forecast},
    {"bad_parameters", case_bad_parameters},
    {"faults", case_faults},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    sim_weather_conf_default(&wconf, 9);
    return hvs_test_main(cases, argc, argv);
}
