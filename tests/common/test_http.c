/*
 * http: real HTTP over loopback. libcurl for the ordinary requests (/metrics body and content
 * type, /healthz, /readyz 200 and 503 with the callback's reason, 404, 405 with Allow, 413, a
 * worker route with method, path, query and body, handler failures -> 500, long query -> 414) and
 * a raw socket for what curl would smooth over (413 answered from the announced Content-Length
 * before any body is sent; a chunked body over the limit; HEAD).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "hvs/http.h"
#include "hvs/log.h"
#include "hvs/metrics.h"
#include "hvs_test.h"

typedef struct body {
    char *buf;
} body_t;

static long request(int port, const char *method, const char *path, const char *payload,
                    size_t plen, body_t *b, char *ctype, size_t ctlen) {
    char url[8192];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    free(b->buf);
    b->buf = NULL;
    return hvs_test_http(method, url, payload, plen, &b->buf, ctype, ctlen);
}

/* Send raw bytes (errors ignored: the server may close early), read the answer until close or
 * timeout into out. Returns the status of the first line, or -1. */
static int raw_http(int port, const char *head, const char *body, size_t body_len, char *out,
                    size_t outlen, int64_t *elapsed_ms) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int64_t t0 = hvs_test_now_ms();
    send(fd, head, strlen(head), MSG_NOSIGNAL);
    for (size_t off = 0; body && off < body_len;) {
        ssize_t n = send(fd, body + off, body_len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, out + got, outlen - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == outlen - 1)
            break;
    }
    out[got] = '\0';
    if (elapsed_ms)
        *elapsed_ms = hvs_test_now_ms() - t0;
    close(fd);
    int status = -1;
    if (sscanf(out, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    return status;
}

/* A worker route: echoes method, path, query and the body as JSON. */
static int echo_route(void *opaque, const char *method, const char *path, const char *query,
                      const char *body, size_t body_len, hvs_http_response_t *resp) {
    atomic_int *calls = opaque;
    atomic_fetch_add(calls, 1);
    resp->status = 201;
    size_t cap = 256 + body_len;
    resp->body = malloc(cap);
    resp->body_len = (size_t)snprintf(resp->body, cap,
                                      "{\"method\":\"%s\",\"path\":\"%s\",\"query\":\"%s\","
                                      "\"len\":%zu,\"body\":\"%s\",\"nul\":%d}",
                                      method, path, query, body_len, body, body[body_len] == '\0');
    return 0;
}

static int failing_route(void *opaque, const char *method, const char *path, const char *query,
                         const char *body, size_t body_len, hvs_http_response_t *resp) {
    if (strstr(path, "status")) {
        resp->status = 42; /* not an HTTP status */
        return 0;
    }
    resp->body = strdup("partial"); /* must be freed by the server even on failure */
    resp->body_len = 7;
    return -1;
}

static int text_route(void *opaque, const char *method, const char *path, const char *query,
                      const char *body, size_t body_len, hvs_http_response_t *resp) {
    resp->status = 204;
    resp->content_type = "text/csv";
    return 0;
}

/* Conditional answers: request headers are readable inside the handler, extra response headers
 * go out (and bad ones are refused). */
static int cond_route(void *opaque, const char *method, const char *path, const char *query,
                      const char *body, size_t body_len, hvs_http_response_t *resp) {
    const char *inm = hvs_http_request_header("If-None-Match");
    if (inm && strcmp(inm, "\"v1\"") == 0) {
        resp->status = 304;
        return 0;
    }
    if (hvs_http_response_header(resp, "ETag", "\"v1\"") ||
        hvs_http_response_header(resp, "Retry-After", "7") ||
        hvs_http_response_header(resp, "X-Bad", "a\r\nInjected: 1") != HVS_EINVAL ||
        hvs_http_response_header(resp, "X:Bad", "v") != HVS_EINVAL)
        return -1;
    resp->body = strdup("{}");
    resp->body_len = 2;
    return 0;
}

static atomic_int g_ready;
static int ready_cb(void *opaque, char *why, size_t whylen) {
    if (atomic_load(&g_ready))
        return 1;
    snprintf(why, whylen, "consumer lag %d s", atomic_load((atomic_int *)opaque));
    return 0;
}

static void test_server(void) {
    hvs_metrics_t *m = hvs_metrics_new();
    hvs_metric_t *hits = hvs_metrics_counter(m, "hvs_test_hits_total", "hits", "route=\"x\"");
    hvs_metric_add(hits, 41);
    hvs_metric_inc(hits);
    hvs_http_t *h = NULL;
    hvs_err_t err;
    atomic_int lag = 17;
    HVS_REQUIRE(hvs_http_start(0, 0, m, ready_cb, &lag, &h, &err) == 0, "start: %s", err.msg);
    int port = hvs_http_port(h);
    HVS_CHECK(port > 0, "bound port %d", port);
    atomic_int calls = 0;
    HVS_CHECK_EQ_INT(hvs_http_route(h, "/v1/echo", echo_route, &calls, &err), 0);
    HVS_CHECK_EQ_INT(hvs_http_route(h, "/v1/fail", failing_route, NULL, &err), 0);
    HVS_CHECK_EQ_INT(hvs_http_route(h, "/v1/empty", text_route, NULL, &err), 0);
    HVS_CHECK_EQ_INT(hvs_http_route(h, "/v1/cond", cond_route, NULL, &err), 0);
    HVS_CHECK_EQ_INT(hvs_http_route(h, "relative", text_route, NULL, &err), HVS_EINVAL);
    HVS_CHECK_EQ_INT(hvs_http_route(h, "/x", NULL, NULL, &err), HVS_EINVAL);
    body_t body = {NULL}, *b = &body;
    char ct[128];

    /* /metrics: the registry's text, Prometheus content type */
    HVS_CHECK_EQ_INT(request(port, "GET", "/metrics", NULL, 0, b, ct, sizeof ct), 200);
    HVS_CHECK(strstr(ct, "text/plain; version=0.0.4") == ct, "content type %s", ct);
    HVS_CHECK(strstr(b->buf, "# TYPE hvs_test_hits_total counter\n") != NULL &&
                  strstr(b->buf, "\nhvs_test_hits_total{route=\"x\"} 42\n") != NULL,
              "metrics body:\n%s", b->buf);
    hvs_metric_inc(hits); /* a later scrape sees the new value */
    request(port, "GET", "/metrics", NULL, 0, b, NULL, 0);
    HVS_CHECK(strstr(b->buf, "hvs_test_hits_total{route=\"x\"} 43\n") != NULL, "updated");

    HVS_CHECK_EQ_INT(request(port, "GET", "/healthz", NULL, 0, b, ct, sizeof ct), 200);
    HVS_CHECK_EQ_STR(b->buf, "ok\n");
    /* /readyz follows the callback, with its reason while not ready */
    HVS_CHECK_EQ_INT(request(port, "GET", "/readyz", NULL, 0, b, NULL, 0), 503);
    HVS_CHECK_EQ_STR(b->buf, "not ready: consumer lag 17 s\n");
    atomic_store(&g_ready, 1);
    HVS_CHECK_EQ_INT(request(port, "GET", "/readyz", NULL, 0, b, NULL, 0), 200);
    atomic_store(&g_ready, 0);
    atomic_store(&lag, 3);
    HVS_CHECK_EQ_INT(request(port, "GET", "/readyz", NULL, 0, b, NULL, 0), 503);
    HVS_CHECK_EQ_STR(b->buf, "not ready: consumer lag 3 s\n");

    HVS_CHECK_EQ_INT(request(port, "GET", "/nope", NULL, 0, b, NULL, 0), 404);
    HVS_CHECK_EQ_INT(request(port, "GET", "/", NULL, 0, b, NULL, 0), 404);
    HVS_CHECK_EQ_INT(request(port, "GET", "/metricsx", NULL, 0, b, NULL, 0), 404);
    HVS_CHECK_EQ_INT(request(port, "POST", "/metrics", "x", 1, b, NULL, 0), 405);
    HVS_CHECK_EQ_INT(request(port, "DELETE", "/healthz", NULL, 0, b, NULL, 0), 405);
    HVS_CHECK_EQ_INT(request(port, "PUT", "/readyz", "x", 1, b, NULL, 0), 405);
    char raw[4096];
    HVS_CHECK_EQ_INT(raw_http(port,
                              "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n",
                              NULL, 0, raw, sizeof raw, NULL),
                     405);
    HVS_CHECK(strstr(raw, "\r\nAllow: GET, HEAD\r\n") != NULL, "Allow header:\n%s", raw);
    /* HEAD: the headers of GET, no body */
    HVS_CHECK_EQ_INT(raw_http(port,
                              "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                              NULL, 0, raw, sizeof raw, NULL),
                     200);
    HVS_CHECK(strstr(raw, "\r\n\r\n") && strstr(raw, "\r\n\r\n")[4] == '\0', "no body:\n%s", raw);

    /* a worker route: method, decoded path, query re-encoded unambiguously, the body */
    HVS_CHECK_EQ_INT(
        request(port, "POST", "/v1/echo/b1?k=v&x=a%26b%3Dc", "hello", 5, b, ct, sizeof ct), 201);
    HVS_CHECK_EQ_STR(b->buf,
                     "{\"method\":\"POST\",\"path\":\"/v1/echo/b1\","
                     "\"query\":\"k=v&x=a%26b%3Dc\",\"len\":5,\"body\":\"hello\",\"nul\":1}");
    HVS_CHECK_EQ_STR(ct, "application/json");
    HVS_CHECK_EQ_INT(request(port, "GET", "/v1/echo", NULL, 0, b, NULL, 0), 201);
    HVS_CHECK_EQ_STR(b->buf, "{\"method\":\"GET\",\"path\":\"/v1/echo\",\"query\":\"\",\"len\":0,"
                             "\"body\":\"\",\"nul\":1}");
    /* a body of exactly 1 MiB is accepted */
    size_t big = 1024 * 1024;
    char *payload = malloc(big + 10);
    memset(payload, 'x', big + 10);
    HVS_CHECK_EQ_INT(request(port, "PUT", "/v1/echo", payload, big, b, NULL, 0), 201);
    HVS_CHECK(strstr(b->buf, "\"len\":1048576,") != NULL, "1 MiB body arrived whole");
    int before = atomic_load(&calls);
    HVS_CHECK_EQ_INT(request(port, "POST", "/v1/echo", payload, big + 1, b, NULL, 0), 413);
    HVS_CHECK_EQ_INT(atomic_load(&calls), before); /* the handler never saw it */
    /* Content-Length says 100 MB and nothing follows: answered at once, not after a timeout */
    int64_t ms = 0;
    HVS_CHECK_EQ_INT(raw_http(port,
                              "POST /v1/echo HTTP/1.1\r\nHost: x\r\n"
                              "Content-Length: 100000000\r\n\r\n",
                              NULL, 0, raw, sizeof raw, &ms),
                     413);
    HVS_CHECK(ms < 2000, "413 before the body (%lld ms)", (long long)ms);
    /* chunked, no length announced: counted as it arrives */
    size_t chunk = 64 * 1024, nchunks = 17;
    size_t clen = nchunks * (chunk + 16) + 8;
    char *chunked = malloc(clen);
    size_t o = 0;
    for (size_t i = 0; i < nchunks; i++) {
        o += (size_t)sprintf(chunked + o, "%zx\r\n", chunk);
        memset(chunked + o, 'y', chunk);
        o += chunk;
        o += (size_t)sprintf(chunked + o, "\r\n");
    }
    o += (size_t)sprintf(chunked + o, "0\r\n\r\n");
    HVS_CHECK_EQ_INT(raw_http(port,
                              "POST /v1/echo HTTP/1.1\r\nHost: x\r\n"
                              "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                              chunked, o, raw, sizeof raw, NULL),
                     413);
    HVS_CHECK_EQ_INT(atomic_load(&calls), before);
    free(chunked);
    free(payload);

    /* handler failures */
    HVS_CHECK_EQ_INT(request(port, "GET", "/v1/fail", NULL, 0, b, NULL, 0), 500);
    HVS_CHECK_EQ_INT(request(port, "GET", "/v1/fail/status", NULL, 0, b, NULL, 0), 500);
    HVS_CHECK_EQ_INT(request(port, "GET", "/v1/empty", NULL, 0, b, ct, sizeof ct), 204);
    HVS_CHECK_EQ_STR(ct, "text/csv");
    /* extra response headers; request headers inside the handler; none outside one */
    HVS_CHECK_EQ_INT(raw_http(port, "GET /v1/cond HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                              NULL, 0, raw, sizeof raw, NULL),
                     200);
    HVS_CHECK(strstr(raw, "\r\nETag: \"v1\"\r\n") && strstr(raw, "\r\nRetry-After: 7\r\n") &&
                  !strstr(raw, "Injected"),
              "headers: %s", raw);
    HVS_CHECK_EQ_INT(raw_http(port,
                              "GET /v1/cond HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"v1\"\r\n"
                              "Connection: close\r\n\r\n",
                              NULL, 0, raw, sizeof raw, NULL),
                     304);
    HVS_CHECK(hvs_http_request_header("Host") == NULL, "outside a handler");
    /* a query longer than 4 KiB once encoded */
    char path[6000] = "/v1/echo?q=";
    memset(path + strlen(path), 'z', 4200);
    path[11 + 4200] = '\0';
    HVS_CHECK_EQ_INT(request(port, "GET", path, NULL, 0, b, NULL, 0), 414);

    /* A second server on the same port fails with a message naming it. */
    hvs_http_t *h2 = NULL;
    HVS_CHECK_EQ_INT(hvs_http_start((uint16_t)port, 0, m, NULL, NULL, &h2, &err), HVS_EIO);
    char want[16];
    snprintf(want, sizeof want, "%d", port);
    HVS_CHECK(strstr(err.msg, want) != NULL, "names the port: %s", err.msg);
    free(b->buf);
    hvs_http_stop(h);
    hvs_http_stop(NULL);
    /* after stop the port is closed */
    HVS_CHECK(raw_http(port, "GET /healthz HTTP/1.0\r\n\r\n", NULL, 0, raw, sizeof raw, NULL) == -1,
              "stopped");
    hvs_metrics_destroy(m);
}

/* bind_any = 1 listens on all interfaces, no metrics registry: /metrics answers 500. */
static void test_bind_any(void) {
    hvs_http_t *h = NULL;
    hvs_err_t err;
    HVS_REQUIRE(hvs_http_start(0, 1, NULL, NULL, NULL, &h, &err) == 0, "start any: %s", err.msg);
    body_t body = {NULL};
    HVS_CHECK_EQ_INT(request(hvs_http_port(h), "GET", "/readyz", NULL, 0, &body, NULL, 0), 200);
    HVS_CHECK_EQ_INT(request(hvs_http_port(h), "GET", "/metrics", NULL, 0, &body, NULL, 0), 500);
    free(body.buf);
    hvs_http_stop(h);
}

static void global_cleanup(void) { curl_global_cleanup(); }

static const hvs_test_case_t cases[] = {
    {"metrics_health_routes_limits_and_headers", test_server},
    {"bind_any_without_registry", test_bind_any},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    hvs_test_cleanup(global_cleanup);
    return hvs_test_main(cases, argc, argv);
}
