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
        {"HVS_LOG_LEVL", "debug"},            /* a typo under a common prefix */
        {"HVS_KAFKA_BROKRES", "127.0.0.1:1"}, /* librdkafka knows no "brokres" */
        {"HVS_TOPIC_READINGS_RAWW", "r"},     /* no such topic */
        {"HVS_KAFKA_FETCH_WAIT_MAX_MS", "abc"},
        {"HVS_TOPIC_ALERTS", "has space"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clear_hvs_env();
        setenv(cases[i].name, cases[i].value, 1);
        hvs_app_t app;
        hvs_app_spec_t spec = {.worker = "apptest",
                               .no_watchdog = true,
                               .summary = "test",
                               .no_http = true,
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
    hvs_app_spec_t spec = {.worker = "apptest", .no_watchdog = true, .summary = "test"};
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

static int admin_calls;
static int admin_route(void *opaque, const char *method, const char *path, const char *query,
                       const char *body, size_t body_len, hvs_http_response_t *resp) {
    admin_calls++;
    resp->status = 202;
    return 0;
}

/* HVS_HTTP_ADMIN_TOKEN reaches the server before any route (a bad one stops start-up naming
 * it); a worker's POST route then needs it. */
static void test_admin_token(void) {
    clear_hvs_env();
    setenv("HVS_HTTP_PORT", "0", 1);
    setenv("HVS_HTTP_ADMIN_TOKEN", "too short", 1);
    hvs_app_t app;
    hvs_app_spec_t spec = {
        .worker = "apptest", .no_watchdog = true, .summary = "test", .quiet = true};
    hvs_err_t err;
    hvs_err_clear(&err);
    HVS_CHECK(hvs_app_init(&app, &spec, 0, NULL, &err) < 0, "a bad token accepted");
    HVS_CHECK(strstr(err.msg, "HVS_HTTP_ADMIN_TOKEN") != NULL, "names the key: %s", err.msg);
    hvs_app_fini(&app);

    setenv("HVS_HTTP_ADMIN_TOKEN", "app-test-token-0123456789", 1);
    HVS_REQUIRE(hvs_app_init(&app, &spec, 0, NULL, &err) == 0, "init: %s", err.msg);
    HVS_CHECK_EQ_STR(app.cfg.http_admin_token, "app-test-token-0123456789");
    HVS_REQUIRE(hvs_http_route(app.http, "/train", admin_route, NULL, &err) == 0, "route");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/train", hvs_http_port(app.http));
    HVS_CHECK_EQ_INT(hvs_test_http("POST", url, "", 0, NULL, NULL, 0), 401);
    HVS_CHECK_EQ_INT(admin_calls, 0);
    hvs_app_fini(&app);
    clear_hvs_env();
}

/* A worker's own table reached by flags: --foo-bar v, --foo-bar=v, a bare boolean flag. */
typedef struct flag_settings {
    int64_t apartments;
    double rate;
    bool clean;
    char *out;
} flag_settings_t;

static const hvs_cfg_entry_t flag_entries[] = {
    {"HVS_FT_APARTMENTS_PER_BUILDING", HVS_CFG_INT, "0", 0, 500,
     offsetof(flag_settings_t, apartments), 0, "apartments"},
    {"HVS_FT_DUP_RATE", HVS_CFG_DOUBLE, "0.5", 0, 1, offsetof(flag_settings_t, rate), 0, "rate"},
    {"HVS_FT_CLEAN", HVS_CFG_BOOL, "false", 0, 0, offsetof(flag_settings_t, clean), 0, "clean"},
    {"HVS_FT_OUT", HVS_CFG_STRING, "kafka", 0, 0, offsetof(flag_settings_t, out), 0, "out"},
};

static int init_with_flags(int argc, char **argv, flag_settings_t *fs, hvs_err_t *err) {
    clear_hvs_env();
    memset(fs, 0, sizeof *fs);
    static hvs_cfg_section_t sec;
    sec = (hvs_cfg_section_t){"ft", flag_entries, sizeof flag_entries / sizeof flag_entries[0], fs};
    hvs_app_spec_t spec = {.worker = "apptest",
                           .no_watchdog = true,
                           .summary = "test",
                           .no_http = true,
                           .quiet = true,
                           .extra = &sec,
                           .nextra = 1,
                           .flag_prefix = "HVS_FT_"};
    hvs_app_t app;
    hvs_err_clear(err);
    int rc = hvs_app_init(&app, &spec, argc, argv, err);
    hvs_app_fini(&app);
    return rc;
}

static void test_flags(void) {
    flag_settings_t fs;
    hvs_err_t err;
    char *good[] = {
        "prog", "--apartments-per-building", "20", "--dup-rate=0.25", "--clean", "--out", "jsonl",
        NULL};
    HVS_CHECK_EQ_INT(init_with_flags(7, good, &fs, &err), 0);
    HVS_CHECK_EQ_INT(fs.apartments, 20);
    HVS_CHECK_NEAR(fs.rate, 0.25, 1e-12);
    HVS_CHECK(fs.clean, "--clean alone means true");
    /* hvs_app_fini freed the strings; what matters is the value went through the table. */
    char *boolval[] = {"prog", "--clean=false", NULL};
    HVS_CHECK_EQ_INT(init_with_flags(2, boolval, &fs, &err), 0);
    HVS_CHECK(!fs.clean, "--clean=false");
    /* A flag wins over the environment. */
    clear_hvs_env();
    char *over[] = {"prog", "--dup-rate", "0.75", NULL};
    setenv("HVS_FT_DUP_RATE", "0.1", 1);
    hvs_err_clear(&err);
    static hvs_cfg_section_t sec;
    sec = (hvs_cfg_section_t){"ft", flag_entries, 4, &fs};
    hvs_app_spec_t spec = {.worker = "apptest",
                           .no_watchdog = true,
                           .summary = "t",
                           .no_http = true,
                           .quiet = true,
                           .extra = &sec,
                           .nextra = 1,
                           .flag_prefix = "HVS_FT_"};
    hvs_app_t app;
    HVS_CHECK_EQ_INT(hvs_app_init(&app, &spec, 3, over, &err), 0);
    HVS_CHECK_NEAR(fs.rate, 0.75, 1e-12);
    hvs_app_fini(&app);

    static const struct {
        int argc;
        char *argv[4];
        const char *words;
    } bad[] = {
        {2, {"prog", "--no-such-flag"}, "--no-such-flag"},
        {2, {"prog", "--apartments-per-building"}, "needs a value"},
        {3, {"prog", "--apartments-per-building", "900"}, "HVS_FT_APARTMENTS_PER_BUILDING"},
        {3, {"prog", "--dup-rate", "lots"}, "HVS_FT_DUP_RATE"},
        {2, {"prog", "stray"}, "stray"},
        {3, {"prog", "--kafka-brokers", "x"}, "--kafka-brokers"}, /* common rows are env only */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = init_with_flags(bad[i].argc, (char **)bad[i].argv, &fs, &err);
        HVS_CHECK(rc < 0, "case %zu accepted", i);
        HVS_CHECK(strstr(err.msg, bad[i].words) != NULL, "case %zu: \"%s\" lacks \"%s\"", i,
                  err.msg, bad[i].words);
    }
    clear_hvs_env();
}

static void global_cleanup(void) { curl_global_cleanup(); }

static const hvs_test_case_t cases[] = {
    {"bad_setting_stops_startup_naming_key", test_rejects_bad_settings},
    {"flags_set_worker_settings", test_flags},
    {"endpoints_readiness_and_sigterm", test_endpoints_and_signal},
    {"admin_token_setting", test_admin_token},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    hvs_log_init("apptest", HVS_LOG_ERROR, NULL);
    hvs_test_cleanup(global_cleanup);
    return hvs_test_main(cases, argc, argv);
}
