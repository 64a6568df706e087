/*
 * metrics + http: the exposition text parsed back line by line (values, cumulative buckets,
 * escaping), type conflicts refused, concurrent increments from threads summing exactly, and the
 * server's routes over real HTTP on loopback (libcurl): /metrics, 404, 405, 413, a worker route.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>

#include "hvs/http.h"
#include "hvs/log.h"
#include "hvs/metrics.h"
#include "hvs_test.h"

/* Value of the exposition line starting with `series ` in text, or NAN. */
static double series_value(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}

static hvs_metric_t *g_counter;
static void *bump(void *arg) {
    (void)arg;
    for (int i = 0; i < 100000; i++)
        hvs_metric_inc(g_counter);
    return NULL;
}

static void test_render(void) {
    hvs_metrics_t *m = hvs_metrics_new();
    hvs_metric_t *c1 = hvs_metrics_counter(m, "hvs_test_messages_total", "messages\nseen \\ ok",
                                           "topic=\"a\"");
    hvs_metric_t *c2 = hvs_metrics_counter(m, "hvs_test_messages_total", "x", "topic=\"b\"");
    HVS_CHECK(c1 && c2 && c1 != c2, "two series of one family");
    HVS_CHECK(hvs_metrics_counter(m, "hvs_test_messages_total", "x", "topic=\"a\"") == c1,
              "same name and labels -> same series");
    HVS_CHECK(hvs_metrics_gauge(m, "hvs_test_messages_total", "x", NULL) == NULL,
              "type conflict refused");
    HVS_CHECK(hvs_metrics_counter(m, "9bad-name", "x", NULL) == NULL, "bad name refused");
    hvs_metric_add(c1, 3);
    hvs_metric_add(c1, -1); /* ignored: counters only go up */
    hvs_metric_inc(c2);
    hvs_metric_t *g = hvs_metrics_gauge(m, "hvs_test_lag", "lag", NULL);
    hvs_metric_set(g, -2.5);
    static const double bounds[] = {0.01, 0.1, 1};
    hvs_metric_t *h = hvs_metrics_histogram(m, "hvs_test_latency_seconds", "lat", "stage=\"x\"",
                                            bounds, 3);
    double obs[] = {0.005, 0.01, 0.05, 0.5, 2, 3};
    for (size_t i = 0; i < 6; i++)
        hvs_metric_observe(h, obs[i]);
    char *text;
    size_t len;
    HVS_REQUIRE(hvs_metrics_render(m, &text, &len, NULL) == 0, "render");
    HVS_CHECK(strlen(text) == len, "length");
    HVS_CHECK(strstr(text, "# HELP hvs_test_messages_total messages\\nseen \\\\ ok\n") != NULL,
              "help escaped:\n%s", text);
    HVS_CHECK(strstr(text, "# TYPE hvs_test_messages_total counter\n") != NULL, "type line");
    HVS_CHECK_NEAR(series_value(text, "hvs_test_messages_total{topic=\"a\"}"), 3, 0);
    HVS_CHECK_NEAR(series_value(text, "hvs_test_messages_total{topic=\"b\"}"), 1, 0);
    HVS_CHECK_NEAR(series_value(text, "hvs_test_lag"), -2.5, 0);
    HVS_CHECK_NEAR(series_value(text, "hvs_test_latency_seconds_bucket{stage=\"x\",le=\"0.01\"}"),
                   2, 0);
    HVS_CHECK_NEAR(series_value(text, "hvs_test_latency_seconds_bucket{stage=\"x\",le=\"0.1\"}"),
                   3, 0);
    HVS_CHECK_NEAR(series_value(text, "hvs_test_latency_seconds_bucket{stage=\"x\",le=\"1\"}"), 4,
                   0);
    HVS_CHECK_NEAR(series_value(text, "hvs_test_latency_seconds_bucket{stage=\"x\",le=\"+Inf\"}"),
                   6, 0);
    HVS_CHECK_NEAR(series_value(text, "hvs_test_latency_seconds_sum{stage=\"x\"}"), 5.565, 1e-9);
    HVS_CHECK_NEAR(series_value(text, "hvs_test_latency_seconds_count{stage=\"x\"}"), 6, 0);
    free(text);

    g_counter = hvs_metrics_counter(m, "hvs_test_concurrent_total", "c", NULL);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, bump, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    HVS_CHECK_NEAR(hvs_metric_value(g_counter), 400000, 0);
    hvs_metrics_destroy(m);
}

typedef struct body {
    char *buf;
} body_t;

static long request(int port, const char *method, const char *path, const char *payload,
                    size_t plen, body_t *b, char *ctype, size_t ctlen) {
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    free(b->buf);
    return hvs_test_http(method, url, payload, plen, &b->buf, ctype, ctlen);
}

/* A worker route: echoes method, path, query and body length as JSON. */
static int echo_route(void *opaque, const char *method, const char *path, const char *query,
                      const char *body, size_t body_len, hvs_http_response_t *resp) {
    (void)opaque;
    (void)body;
    resp->status = 201;
    resp->body = malloc(256);
    resp->body_len = (size_t)snprintf(resp->body, 256,
                                      "{\"method\":\"%s\",\"path\":\"%s\",\"query\":\"%s\","
                                      "\"len\":%zu}",
                                      method, path, query, body_len);
    return 0;
}

static void test_server(void) {
    hvs_metrics_t *m = hvs_metrics_new();
    hvs_metric_inc(hvs_metrics_counter(m, "hvs_test_hits_total", "hits", NULL));
    hvs_http_t *h = NULL;
    hvs_err_t err;
    HVS_REQUIRE(hvs_http_start(0, 0, m, NULL, NULL, &h, &err) == 0, "start: %s", err.msg);
    int port = hvs_http_port(h);
    HVS_CHECK(port > 0, "bound port %d", port);
    HVS_CHECK_EQ_INT(hvs_http_route(h, "/v1/echo", echo_route, NULL, &err), 0);
    body_t body = {NULL}, *b = &body;
    char ct[128];
    HVS_CHECK_EQ_INT(request(port, "GET", "/metrics", NULL, 0, b, ct, sizeof ct), 200);
    HVS_CHECK(strstr(ct, "text/plain; version=0.0.4") == ct, "content type %s", ct);
    HVS_CHECK_NEAR(series_value(b->buf, "hvs_test_hits_total"), 1, 0);
    HVS_CHECK_EQ_INT(request(port, "GET", "/healthz", NULL, 0, b, NULL, 0), 200);
    HVS_CHECK_EQ_INT(request(port, "GET", "/readyz", NULL, 0, b, NULL, 0), 200); /* no callback */
    HVS_CHECK_EQ_INT(request(port, "GET", "/nope", NULL, 0, b, NULL, 0), 404);
    HVS_CHECK_EQ_INT(request(port, "POST", "/metrics", "x", 1, b, NULL, 0), 405);
    HVS_CHECK_EQ_INT(request(port, "POST", "/v1/echo/b1?k=v", "hello", 5, b, ct, sizeof ct), 201);
    HVS_CHECK_EQ_STR(b->buf, "{\"method\":\"POST\",\"path\":\"/v1/echo/b1\",\"query\":\"k=v\","
                             "\"len\":5}");
    HVS_CHECK_EQ_STR(ct, "application/json");
    size_t big = 1024 * 1024 + 10;
    char *payload = malloc(big);
    memset(payload, 'x', big);
    HVS_CHECK_EQ_INT(request(port, "POST", "/v1/echo", payload, big, b, NULL, 0), 413);
    free(payload);
    /* A second server on the same port fails with a message naming it. */
    hvs_http_t *h2 = NULL;
    HVS_CHECK_EQ_INT(hvs_http_start((uint16_t)port, 0, m, NULL, NULL, &h2, &err), HVS_EIO);
    char want[16];
    snprintf(want, sizeof want, "%d", port);
    HVS_CHECK(strstr(err.msg, want) != NULL, "names the port: %s", err.msg);
    free(b->buf);
    hvs_http_stop(h);
    hvs_metrics_destroy(m);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    test_render();
    test_server();
    curl_global_cleanup();
    return hvs_test_done();
}
