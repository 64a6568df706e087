/*
 * hvsctl train as a real process against the real HTTP server (hvs_http, as hvs-trainer runs
 * it) with an admin token: without HVS_HTTP_ADMIN_TOKEN it is refused (exit 1, the 401 named),
 * with the wrong one too, with the right one the route runs; a server on all interfaces without
 * a token refuses it (403). No broker is needed: train talks HTTP only.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "hvs/http.h"
#include "hvs/log.h"
#include "hvs_test.h"

#define TOKEN "hvsctl-train-token-0123456789"

static atomic_int calls;

static int train_route(void *opaque, const char *method, const char *path, const char *query,
                       const char *body, size_t body_len, hvs_http_response_t *resp) {
    atomic_fetch_add(&calls, 1);
    resp->status = 202;
    resp->body = strdup("{\"queued\":\"all\"}\n");
    resp->body_len = strlen(resp->body);
    return 0;
}

/* `hvsctl train all` against port with `env` before it; stdout into *out, stderr into err. */
static int train(const char *env, int port, char **out) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "env -u HVS_HTTP_ADMIN_TOKEN %s %s train all --trainer "
             "http://127.0.0.1:%d 2>&1",
             env, HVS_TEST_HVSCTL, port);
    free(*out);
    *out = NULL;
    return hvs_test_run(cmd, NULL, 0, out, NULL);
}

static void test_token(void) {
    hvs_http_t *h = NULL;
    hvs_err_t err;
    HVS_REQUIRE(hvs_http_start(0, 0, NULL, NULL, NULL, &h, &err) == 0, "start: %s", err.msg);
    HVS_REQUIRE(hvs_http_set_admin_token(h, TOKEN, &err) == 0, "token: %s", err.msg);
    HVS_REQUIRE(hvs_http_route(h, "/train", train_route, NULL, &err) == 0, "route");
    int port = hvs_http_port(h);
    char *out = NULL;
    HVS_CHECK_EQ_INT(train("", port, &out), 1);
    HVS_CHECK(out && strstr(out, "answered 401") && strstr(out, "unset here"), "%s", out);
    HVS_CHECK_EQ_INT(train("HVS_HTTP_ADMIN_TOKEN=not-the-token-0123456789", port, &out), 1);
    HVS_CHECK(out && strstr(out, "answered 401") && strstr(out, "not it"), "%s", out);
    HVS_CHECK_EQ_INT(atomic_load(&calls), 0);
    HVS_CHECK_EQ_INT(train("HVS_HTTP_ADMIN_TOKEN=" TOKEN, port, &out), 0);
    HVS_CHECK(out && strstr(out, "{\"queued\":\"all\"}"), "%s", out);
    HVS_CHECK_EQ_INT(atomic_load(&calls), 1);
    hvs_http_stop(h);

    /* all interfaces, no token: refused whatever hvsctl sends */
    HVS_REQUIRE(hvs_http_start(0, 1, NULL, NULL, NULL, &h, &err) == 0, "start any: %s", err.msg);
    HVS_REQUIRE(hvs_http_route(h, "/train", train_route, NULL, &err) == 0, "route");
    HVS_CHECK_EQ_INT(train("HVS_HTTP_ADMIN_TOKEN=" TOKEN, hvs_http_port(h), &out), 1);
    HVS_CHECK(out && strstr(out, "answered 403"), "%s", out);
    HVS_CHECK_EQ_INT(atomic_load(&calls), 1);
    free(out);
    hvs_http_stop(h);
}

static const hvs_test_case_t cases[] = {
    {"train_sends_admin_token", test_token},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
