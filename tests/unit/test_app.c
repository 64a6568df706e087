/*
 * app: the start-up every executable shares. An unknown or out-of-range HVS_* setting stops
 * start-up naming the key; a good configuration brings up /healthz, /readyz (503 until the
 * worker says ready, then 200), /metrics with the build info; SIGTERM flips the run flag.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>

#include "hvs/app.h"
#include "hvs/log.h"
#include "hvs_test.h"

typedef struct body {
    char *buf;
} body_t;

/* GET path on the app's port; the body replaces b->buf. */
static long http_get(int port, const char *path, body_t *b) {
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    free(b->buf);
    return hvs_test_http("GET", url, NULL, 0, &b->buf, NULL, 0);
}

static void clear_hvs_env(void) {
    extern char **environ;
    for (;;) {
        char *found = NULL;
        for (char **e = environ; *e; e++)
            if (strncmp(*e, "HVS_", 4) == 0) {
                found = *e;
                break;
            }
        if (!found)
            break;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(strchr(found, '=') - found), found);
        unsetenv(name);
    }
}

static int ready_flag;
static int worker_ready(void *opaque, char *why, size_t whylen) {
    (void)opaque;
    if (!ready_flag)
        snprintf(why, whylen, "consumer not assigned yet");
    return ready_flag;
}

static void test_rejects_bad_settings(void) {
    static const struct {
        const char *name, *value;
    } cases[] = {
        {"HVS_HTTP_PORT", "70000"},
        {"HVS_TOPIC_PARTITIONS", "0"},
        {"HVS_LOG_LEVEL", "loud"},
        {"HVS_NO_SUCH_SETTING", "1"},
        {"HVS_KAFKA_FETCH_WAIT_MAX_MS", "abc"},
        {"HVS_TOPIC_ALERTS", "has space"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clear_hvs_env();
        setenv(cases[i].name, cases[i].value, 1);
        hvs_app_t app;
        hvs_app_spec_t spec = {.worker = "apptest", .summary = "test", .no_http = true,
                               .quiet = true};
        hvs_err_t err;
        hvs_err_clear(&err);
        int rc = hvs_app_init(&app, &spec, 0, NULL, &err);
        HVS_CHECK(rc < 0, "%s=%s accepted", cases[i].name, cases[i].value);
        HVS_CHECK(strstr(err.msg, cases[i].name) != NULL, "message \"%s\" names %s", err.msg,
                  cases[i].name);
        hvs_app_fini(&app);
    }
    clear_hvs_env();
}

static void test_endpoints_and_signal(void) {
    clear_hvs_env();
    setenv("HVS_HTTP_PORT", "0", 1);
    setenv("HVS_KAFKA_BROKERS", "127.0.0.1:1", 1);
    setenv("HVS_REDIS_URL", "redis://:pw@127.0.0.1:6399/2", 1);
    hvs_app_t app;
    hvs_app_spec_t spec = {.worker = "apptest", .summary = "test"};
    hvs_err_t err;
    int rc = hvs_app_init(&app, &spec, 0, NULL, &err);
    HVS_REQUIRE(rc == 0, "init: %s", err.msg);
    HVS_CHECK_EQ_STR(app.cfg.kafka_group, "hvs-apptest");
    HVS_CHECK_EQ_STR(app.cfg.redis_url, "redis://:pw@127.0.0.1:6399/2");
    HVS_REQUIRE(app.http != NULL, "http server started");
    int port = hvs_http_port(app.http);
    body_t body = {NULL}, *b = &body;
    HVS_CHECK_EQ_INT(http_get(port, "/healthz", b), 200);
    HVS_CHECK_EQ_INT(http_get(port, "/readyz", b), 503);
    HVS_CHECK(strstr(b->buf, "starting") != NULL, "readyz reason before a callback: %s", b->buf);
    hvs_app_set_ready(&app, worker_ready, NULL);
    HVS_CHECK_EQ_INT(http_get(port, "/readyz", b), 503);
    HVS_CHECK(strstr(b->buf, "consumer not assigned") != NULL, "worker's reason: %s", b->buf);
    ready_flag = 1;
    HVS_CHECK_EQ_INT(http_get(port, "/readyz", b), 200);
    HVS_CHECK_EQ_INT(http_get(port, "/metrics", b), 200);
    HVS_CHECK(strstr(b->buf, "hvs_build_info{version=\"" HVS_VERSION "\",worker=\"apptest\"} 1") !=
                  NULL,
              "build info in /metrics:\n%s", b->buf);

    HVS_CHECK(hvs_app_running(), "running before the signal");
    raise(SIGTERM);
    HVS_CHECK(!hvs_app_running(), "SIGTERM requests a stop");
    HVS_CHECK_EQ_INT(http_get(port, "/readyz", b), 503);
    HVS_CHECK(strstr(b->buf, "shutting down") != NULL, "not ready while stopping: %s", b->buf);
    free(b->buf);
    hvs_app_fini(&app);
    clear_hvs_env();
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    hvs_log_init("apptest", HVS_LOG_ERROR, NULL);
    test_rejects_bad_settings();
    test_endpoints_and_signal();
    curl_global_cleanup();
    return hvs_test_done();
}
