/*
 * redis against a real redis-server: URL parsing (and bad URLs named without their password),
 * AUTH (bare, ACL user, %-encoded password) and SELECT really applied, a pipelined batch of 10k
 * commands read back, binary-safe arguments, Lua by SHA surviving SCRIPT FLUSH (NOSCRIPT
 * recovery, the script loaded once per batch, counted by the server), the server stopped before
 * and killed during a batch and restarted on the same port (reconnect, whole batch resent, every
 * key read back), a server that comes up late (connect waits), a server gone beyond the retry
 * budget reported as unreachable, and the key layout.
 */
#include <pthread.h>

#include "hvs/log.h"
#include "hvs/redis.h"
#include "hvs_test.h"

static void test_url(void) {
    char host[64], pw[64];
    int port, db;
    hvs_err_t err;
    HVS_CHECK(hvs_redis_url_parse("redis://:s3cret@cache.local:6380/4", host, sizeof host, &port,
                                  pw, sizeof pw, &db, &err) == 0,
              "full url");
    HVS_CHECK_EQ_STR(host, "cache.local");
    HVS_CHECK_EQ_STR(pw, "s3cret");
    HVS_CHECK_EQ_INT(port, 6380);
    HVS_CHECK_EQ_INT(db, 4);
    HVS_CHECK(hvs_redis_url_parse("redis://user:pw@h", host, sizeof host, &port, pw, sizeof pw, &db,
                                  &err) == 0 &&
                  strcmp(pw, "pw") == 0 && port == 6379 && db == 0,
              "user:pw, defaults");
    HVS_CHECK(hvs_redis_url_parse("redis://:p%40ss%2Fw%3Ard@[::1]:7000/2", host, sizeof host, &port,
                                  pw, sizeof pw, &db, &err) == 0 &&
                  !strcmp(pw, "p@ss/w:rd") && !strcmp(host, "::1") && port == 7000 && db == 2,
              "ipv6 and %%-encoded password: %s %s", host, pw);
    HVS_CHECK(hvs_redis_url_parse("redis://s3cret@h/", host, sizeof host, &port, pw, sizeof pw, &db,
                                  &err) == 0 &&
                  !strcmp(pw, "s3cret") && !strcmp(host, "h") && db == 0,
              "userinfo without ':' is the password, trailing '/'");
    HVS_CHECK(hvs_redis_url_parse("redis://:a@b@h", host, sizeof host, &port, pw, sizeof pw, &db,
                                  &err) == 0 &&
                  !strcmp(pw, "a@b") && !strcmp(host, "h"),
              "'@' in a password");
    static const char *const bad[] = {
        "http://:s3cret@h:1",     "redis://",
        "redis://:s3cret@h:0",    "redis://:s3cret@h:99999",
        "redis://:s3cret@h:12x",  "redis://:s3cret@h/abc",
        "redis://:s3cret@",       "redis://h:+1",
        "redis://:s3cret@h?db=1", "redis://h/1/2",
        "redis://h/-1",           "redis://h x",
        "redis://[::1",           "redis://[zz]:1",
        "redis://:s3%2@h",        "redis://:s3cret%00@h",
        "rediss://:s3cret@h",     "redis://h:6379x",
        "redis://h#frag",         "redis://h:",
        "redis://:s3cret@:6379",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        HVS_CHECK(hvs_redis_url_parse(bad[i], host, sizeof host, &port, pw, sizeof pw, &db, &err) ==
                      HVS_ECONFIG,
                  "%s rejected", bad[i]);
        HVS_CHECK_EQ_STR(err.reason, "bad_url");
        HVS_CHECK(strstr(err.msg, "s3cret") == NULL && strstr(err.msg, "s3%2") == NULL,
                  "password not in \"%s\"", err.msg);
        /* the message names the URL (masked) so the operator knows which setting is wrong */
        char masked[300];
        hvs_redis_url_redact(bad[i], masked, sizeof masked);
        HVS_CHECK(strstr(err.msg, masked) != NULL, "\"%s\" names %s", err.msg, masked);
    }
    hvs_redis_t *r = NULL;
    HVS_CHECK(hvs_redis_connect("redis://:s3cret@h:0", NULL, &r, &err) == HVS_ECONFIG && !r,
              "connect refuses a bad url");
    char masked[128];
    hvs_redis_url_redact("redis://alice:s3cret@h:1/2", masked, sizeof masked);
    HVS_CHECK_EQ_STR(masked, "redis://alice:***@h:1/2");
    hvs_redis_url_redact("redis://s3cret@h", masked, sizeof masked);
    HVS_CHECK_EQ_STR(masked, "redis://***@h");
    hvs_redis_url_redact("redis://h:1", masked, sizeof masked);
    HVS_CHECK_EQ_STR(masked, "redis://h:1");
}

static void test_keys(void) {
    char buf[64];
    hvs_err_t err = {0};
    HVS_CHECK_EQ_INT(
        hvs_redis_key(buf, sizeof buf, "bldg_A123", &err, "lag:%s:%s", "apt_404", "heat"),
        (int)strlen("hvs:{bldg_A123}:lag:apt_404:heat"));
    HVS_CHECK_EQ_STR(buf, "hvs:{bldg_A123}:lag:apt_404:heat");
    /* refused ids say why and name the id's field; the id rule itself is test_ids */
    HVS_CHECK_EQ_INT(hvs_redis_key(buf, sizeof buf, "bad{id}", &err, "x"), HVS_EINVAL);
    HVS_CHECK_EQ_STR(err.reason, "bad_id");
    HVS_CHECK(strstr(err.msg, "byte 3") != NULL, "names the offset: %s", err.msg);
    HVS_CHECK_EQ_INT(hvs_redis_key(buf, sizeof buf, "a}b", &err, "x"), HVS_EINVAL);
    HVS_CHECK_EQ_INT(hvs_redis_key(buf, sizeof buf, "bad\xff", &err, "x"), HVS_EINVAL);
    HVS_CHECK_EQ_INT(hvs_redis_key(buf, sizeof buf, "", &err, "x"), HVS_EINVAL);
    HVS_CHECK_EQ_INT(hvs_redis_key(buf, sizeof buf, NULL, &err, "x"), HVS_EINVAL);
    HVS_CHECK_EQ_INT(hvs_redis_key(buf, 12, "bldg_A123", &err, "too long"), HVS_EINVAL);
    HVS_CHECK_EQ_STR(err.reason, "key_too_long");
}

static long long int_reply(hvs_redis_t *r, const char *cmd) {
    redisReply *rep;
    hvs_err_t err;
    if (hvs_redis_command(r, &rep, &err, cmd) != 0)
        return -1;
    long long v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -2;
    freeReplyObject(rep);
    return v;
}

static void test_auth_select(const hvs_test_proc_t *srv) {
    hvs_redis_t *r, *r3;
    hvs_err_t err;
    char url[200];
    HVS_REQUIRE(hvs_redis_connect(srv->addr, NULL, &r, &err) == 0, "connect: %s", err.msg);
    snprintf(url, sizeof url, "%s/3", srv->addr);
    HVS_REQUIRE(hvs_redis_connect(url, NULL, &r3, &err) == 0, "connect db3");
    redisReply *rep;
    HVS_CHECK(hvs_redis_command(r3, &rep, &err, "SET only_in_3 yes") == 0, "set");
    freeReplyObject(rep);
    HVS_CHECK_EQ_INT(int_reply(r3, "EXISTS only_in_3"), 1);
    HVS_CHECK_EQ_INT(int_reply(r, "EXISTS only_in_3"), 0); /* db 0 does not see it */
    /* Require a password: without it connecting fails, with it it works. */
    HVS_CHECK(hvs_redis_command(r, &rep, &err, "CONFIG SET requirepass hunter2") == 0, "auth on");
    freeReplyObject(rep);
    hvs_redis_t *noauth = NULL;
    HVS_CHECK(hvs_redis_connect(srv->addr, NULL, &noauth, &err) == HVS_EREDIS, "no password");
    HVS_CHECK_EQ_STR(err.reason, "auth");
    snprintf(url, sizeof url, "redis://:hunter2@127.0.0.1:%d/3", srv->port);
    hvs_redis_t *authed;
    HVS_REQUIRE(hvs_redis_connect(url, NULL, &authed, &err) == 0, "with password: %s", err.msg);
    HVS_CHECK_EQ_INT(int_reply(authed, "EXISTS only_in_3"), 1);
    snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d", srv->port);
    HVS_CHECK(hvs_redis_connect(url, NULL, &noauth, &err) == HVS_EREDIS, "wrong password");
    HVS_CHECK(strstr(err.msg, "wrong") == NULL, "password not echoed: %s", err.msg);
    /* a password with URL-special characters, given %-encoded */
    HVS_CHECK(hvs_redis_command(authed, &rep, &err, "CONFIG SET requirepass %s", "p@ss/w:rd") == 0,
              "odd password");
    freeReplyObject(rep);
    hvs_redis_t *odd = NULL;
    snprintf(url, sizeof url, "redis://:p%%40ss%%2Fw%%3Ard@127.0.0.1:%d/3", srv->port);
    HVS_CHECK(hvs_redis_connect(url, NULL, &odd, &err) == 0, "%%-encoded password: %s", err.msg);
    HVS_CHECK_EQ_INT(int_reply(odd, "EXISTS only_in_3"), 1);
    hvs_redis_destroy(odd);
    /* Redis 6 ACL user: AUTH user password, and the connection really is that user */
    HVS_CHECK(hvs_redis_command(authed, &rep, &err,
                                "ACL SETUSER alice on >wonderland ~hvs:* +@all") == 0 &&
                  rep->type == REDIS_REPLY_STATUS,
              "acl user");
    freeReplyObject(rep);
    snprintf(url, sizeof url, "redis://alice:wonderland@127.0.0.1:%d", srv->port);
    hvs_redis_t *alice = NULL;
    HVS_REQUIRE(hvs_redis_connect(url, NULL, &alice, &err) == 0, "as alice: %s", err.msg);
    HVS_CHECK(hvs_redis_command(alice, &rep, &err, "ACL WHOAMI") == 0 && rep->str &&
                  strcmp(rep->str, "alice") == 0,
              "whoami");
    freeReplyObject(rep);
    HVS_CHECK(hvs_redis_command(alice, &rep, &err, "SET notmine 1") == 0 &&
                  rep->type == REDIS_REPLY_ERROR,
              "alice's key pattern applies"); /* proves AUTH went to alice, not default */
    freeReplyObject(rep);
    hvs_redis_destroy(alice);
    snprintf(url, sizeof url, "redis://alice:hunter2@127.0.0.1:%d", srv->port);
    int64_t t0 = hvs_test_now_ms();
    HVS_CHECK(hvs_redis_connect(url, NULL, &noauth, &err) == HVS_EREDIS, "alice, wrong password");
    HVS_CHECK_EQ_STR(err.reason, "auth");
    HVS_CHECK(hvs_test_now_ms() - t0 < 1000, "a wrong password is not retried");
    /* a database the server does not have */
    snprintf(url, sizeof url, "redis://:p%%40ss%%2Fw%%3Ard@127.0.0.1:%d/99", srv->port);
    HVS_CHECK(hvs_redis_connect(url, NULL, &noauth, &err) == HVS_EREDIS, "db 99");
    HVS_CHECK_EQ_STR(err.reason, "bad_db");
    HVS_CHECK(hvs_redis_command(authed, &rep, &err, "ACL DELUSER alice") == 0, "deluser");
    freeReplyObject(rep);
    HVS_CHECK(hvs_redis_command(authed, &rep, &err, "CONFIG SET requirepass %s", "") == 0, "off");
    freeReplyObject(rep);
    hvs_redis_destroy(authed);
    hvs_redis_destroy(r3);
    hvs_redis_destroy(r);
}

static void test_pipeline_and_scripts(const hvs_test_proc_t *srv) {
    hvs_redis_t *r;
    hvs_err_t err;
    HVS_REQUIRE(hvs_redis_connect(srv->addr, NULL, &r, &err) == 0, "connect");
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    char key[64], val[32];
    for (int i = 0; i < 10000; i++) {
        HVS_REQUIRE(hvs_redis_key(key, sizeof key, "bldg_p", NULL, "n:%d", i) > 0, "key");
        snprintf(val, sizeof val, "%d", i * 7);
        const char *argv[] = {"SET", key, val};
        HVS_REQUIRE(hvs_redis_batch_add(b, 3, argv, NULL) == 0, "add");
    }
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "exec 10k: %s", err.msg);
    HVS_CHECK_EQ_INT(hvs_redis_batch_errors(b), 0);
    hvs_redis_batch_reset(b);
    for (int i = 0; i < 10000; i++) {
        HVS_REQUIRE(hvs_redis_key(key, sizeof key, "bldg_p", NULL, "n:%d", i) > 0, "key");
        hvs_redis_batch_addf(b, "GET %s", key);
    }
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "exec gets");
    int wrong = 0;
    for (int i = 0; i < 10000; i++) {
        const redisReply *rep = hvs_redis_batch_reply(b, (size_t)i);
        wrong += !rep || rep->type != REDIS_REPLY_STRING || atoi(rep->str) != i * 7;
    }
    HVS_CHECK_EQ_INT(wrong, 0);
    /* an error reply is reported per command, the rest still answered */
    hvs_redis_batch_reset(b);
    hvs_redis_batch_addf(b, "SET plain x");
    hvs_redis_batch_addf(b, "HSET plain f v"); /* WRONGTYPE */
    hvs_redis_batch_addf(b, "GET plain");
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "mixed batch");
    HVS_CHECK_EQ_INT(hvs_redis_batch_errors(b), 1);
    HVS_CHECK(hvs_redis_batch_reply(b, 1)->type == REDIS_REPLY_ERROR, "wrongtype reported");
    HVS_CHECK_EQ_STR(hvs_redis_batch_reply(b, 2)->str, "x");
    HVS_CHECK(hvs_redis_batch_reply(b, 3) == NULL, "out of range");
    /* binary-safe arguments: NUL, CR LF and a RESP-looking value come back byte for byte */
    static const char bin[] = "a\0b\r\n$3\r\n*1\r\n\xff";
    const char *argv[] = {"SET", "hvs:{b}:bin", bin};
    size_t lens[] = {3, 11, sizeof bin - 1};
    hvs_redis_batch_reset(b);
    HVS_CHECK_EQ_INT(hvs_redis_batch_add(b, 3, argv, lens), 0);
    hvs_redis_batch_addf(b, "GET %s", "hvs:{b}:bin");
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "binary");
    const redisReply *got = hvs_redis_batch_reply(b, 1);
    HVS_CHECK(got && got->type == REDIS_REPLY_STRING && got->len == sizeof bin - 1 &&
                  memcmp(got->str, bin, sizeof bin - 1) == 0,
              "binary value read back");
    HVS_CHECK_EQ_INT(hvs_redis_batch_add(b, 0, argv, lens), HVS_EINVAL);

    /* Lua: an idempotent "max" update, by SHA; still works after SCRIPT FLUSH. */
    static hvs_redis_script_t setmax = {
        "setmax",
        "local v = tonumber(redis.call('GET', KEYS[1]) or '-inf') "
        "if tonumber(ARGV[1]) > v then redis.call('SET', KEYS[1], ARGV[1]) return 1 end return 0",
        ""};
    HVS_REQUIRE(hvs_redis_script_load(r, &setmax, &err) == 0, "load: %s", err.msg);
    HVS_CHECK_EQ_INT(strlen(setmax.sha), 40);
    const char *keys[] = {"hvs:{b}:max"};
    const char *args5[] = {"5"}, *args3[] = {"3"};
    hvs_redis_batch_reset(b);
    hvs_redis_batch_add_script(b, &setmax, 1, keys, 1, args5, NULL);
    hvs_redis_batch_add_script(b, &setmax, 1, keys, 1, args3, NULL);
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "evalsha");
    HVS_CHECK(hvs_redis_batch_reply(b, 0)->integer == 1 &&
                  hvs_redis_batch_reply(b, 1)->integer == 0,
              "script results");
    redisReply *rep;
    HVS_CHECK(hvs_redis_command(r, &rep, &err, "SCRIPT FLUSH") == 0, "flush");
    freeReplyObject(rep);
    const char *args9[] = {"9"};
    hvs_redis_batch_reset(b);
    hvs_redis_batch_add_script(b, &setmax, 1, keys, 1, args9, NULL);
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "evalsha after flush: %s", err.msg);
    HVS_CHECK_EQ_INT(hvs_redis_batch_errors(b), 0);
    HVS_CHECK(hvs_redis_command(r, &rep, &err, "GET hvs:{b}:max") == 0 && rep->str &&
                  strcmp(rep->str, "9") == 0,
              "script ran after NOSCRIPT recovery");
    freeReplyObject(rep);
    /* 500 EVALSHA after a flush: loaded once (the server's own statistics say so), all ran */
    HVS_CHECK(hvs_redis_command(r, &rep, &err, "SCRIPT FLUSH") == 0, "flush");
    freeReplyObject(rep);
    HVS_CHECK(hvs_redis_command(r, &rep, &err, "CONFIG RESETSTAT") == 0, "resetstat");
    freeReplyObject(rep);
    hvs_redis_batch_reset(b);
    char kbuf[64], vbuf[16];
    for (int i = 0; i < 500; i++) {
        HVS_REQUIRE(hvs_redis_key(kbuf, sizeof kbuf, "bldg_s", NULL, "max:%d", i % 50) > 0, "key");
        snprintf(vbuf, sizeof vbuf, "%d", i);
        const char *k[] = {kbuf}, *a[] = {vbuf};
        hvs_redis_batch_add_script(b, &setmax, 1, k, 1, a, NULL);
    }
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0 && hvs_redis_batch_errors(b) == 0,
              "500 evalsha after flush");
    HVS_CHECK(hvs_redis_command(r, &rep, &err, "INFO commandstats") == 0, "info");
    HVS_CHECK(strstr(rep->str, "cmdstat_script|load:calls=1,") != NULL, "loaded once:\n%s",
              rep->str);
    freeReplyObject(rep);
    int maxwrong = 0;
    for (int k = 0; k < 50; k++) {
        char kq[64];
        HVS_REQUIRE(hvs_redis_key(kq, sizeof kq, "bldg_s", NULL, "max:%d", k) > 0, "key");
        HVS_CHECK(hvs_redis_command(r, &rep, &err, "GET %s", kq) == 0, "get");
        maxwrong += !rep->str || atoi(rep->str) != 450 + k; /* the largest i with i % 50 == k */
        freeReplyObject(rep);
    }
    HVS_CHECK_EQ_INT(maxwrong, 0);
    hvs_redis_script_t unloaded = {"never", "return 1", ""};
    HVS_CHECK_EQ_INT(hvs_redis_batch_add_script(b, &unloaded, 1, keys, 0, NULL, NULL), HVS_EINVAL);
    hvs_redis_batch_destroy(b);
    hvs_redis_destroy(r);
}

typedef struct exec_arg {
    hvs_redis_t *r;
    hvs_redis_batch_t *b;
    hvs_err_t err;
    int rc;
} exec_arg_t;

static void *exec_batch(void *p) {
    exec_arg_t *a = p;
    a->rc = hvs_redis_batch_exec(a->r, a->b, &a->err);
    return NULL;
}

typedef struct connect_arg {
    const char *url;
    const hvs_redis_opts_t *opts;
    hvs_redis_t *r;
    hvs_err_t err;
    int rc;
} connect_arg_t;

static void *connect_thread(void *p) {
    connect_arg_t *a = p;
    a->rc = hvs_redis_connect(a->url, a->opts, &a->r, &a->err);
    return NULL;
}

static void test_restart(hvs_test_proc_t *srv) {
    hvs_redis_t *r;
    hvs_err_t err;
    hvs_redis_opts_t opts = {.retry_initial_ms = 20, .retry_max_ms = 200, .retry_budget_ms = 15000};
    HVS_REQUIRE(hvs_redis_connect(srv->addr, &opts, &r, &err) == 0, "connect");
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    char key[64];
    for (int i = 0; i < 2000; i++) {
        HVS_REQUIRE(hvs_redis_key(key, sizeof key, "bldg_r", NULL, "hour:%d", i) > 0, "key");
        hvs_redis_batch_addf(b, "HSET %s kwh %d", key, i);
    }
    /* The server dies; it comes back on the same port while the batch is being retried. */
    int port = srv->port;
    hvs_test_proc_stop(srv);
    /* (started from this thread: the test server dies with the thread that forked it) */
    exec_arg_t arg = {r, b, {0, "", ""}, -1};
    pthread_t t;
    pthread_create(&t, NULL, exec_batch, &arg);
    usleep(700000);
    HVS_REQUIRE(hvs_test_redis_start(srv, port) == 0, "redis restarted");
    pthread_join(t, NULL);
    HVS_CHECK(arg.rc == 0, "batch survived the restart: %s", arg.err.msg);
    HVS_CHECK(hvs_redis_reconnects(r) >= 1, "reconnected");
    hvs_redis_batch_reset(b);
    for (int i = 0; i < 2000; i++) {
        HVS_REQUIRE(hvs_redis_key(key, sizeof key, "bldg_r", NULL, "hour:%d", i) > 0, "key");
        hvs_redis_batch_addf(b, "HGET %s kwh", key);
    }
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "read back");
    int lost = 0;
    for (int i = 0; i < 2000; i++) {
        const redisReply *rep = hvs_redis_batch_reply(b, (size_t)i);
        lost += !rep || rep->type != REDIS_REPLY_STRING || atoi(rep->str) != i;
    }
    HVS_CHECK_EQ_INT(lost, 0);

    /* Killed in the middle of a big batch, back 300 ms later: the whole batch is resent. */
    unsigned long before = hvs_redis_reconnects(r);
    hvs_redis_batch_reset(b);
    const int big = 200000;
    for (int i = 0; i < big; i++) {
        HVS_REQUIRE(hvs_redis_key(key, sizeof key, "bldg_k", NULL, "h:%d", i) > 0, "key");
        hvs_redis_batch_addf(b, "SET %s %d", key, i);
    }
    arg.rc = -1;
    pthread_create(&t, NULL, exec_batch, &arg);
    usleep(20000);
    hvs_test_proc_kill(srv); /* SIGKILL: a crash, not a shutdown */
    usleep(300000);
    HVS_REQUIRE(hvs_test_redis_start(srv, port) == 0, "redis restarted");
    pthread_join(t, NULL);
    HVS_CHECK(arg.rc == 0, "batch survived the crash: %s", arg.err.msg);
    HVS_CHECK(hvs_redis_reconnects(r) > before, "the batch was cut and resent");
    hvs_redis_batch_reset(b);
    for (int i = 0; i < big; i++) {
        HVS_REQUIRE(hvs_redis_key(key, sizeof key, "bldg_k", NULL, "h:%d", i) > 0, "key");
        hvs_redis_batch_addf(b, "GET %s", key);
    }
    HVS_CHECK(hvs_redis_batch_exec(r, b, &err) == 0, "read back");
    lost = 0;
    for (int i = 0; i < big; i++) {
        const redisReply *rep = hvs_redis_batch_reply(b, (size_t)i);
        lost += !rep || rep->type != REDIS_REPLY_STRING || atoi(rep->str) != i;
    }
    HVS_CHECK_EQ_INT(lost, 0);

    /* Gone for good: reported as unreachable once the budget is spent. */
    hvs_redis_t *q;
    hvs_redis_opts_t quick = {.retry_initial_ms = 20, .retry_max_ms = 100, .retry_budget_ms = 500};
    HVS_REQUIRE(hvs_redis_connect(srv->addr, &quick, &q, &err) == 0, "connect");
    hvs_test_proc_stop(srv);
    int64_t t0 = hvs_test_now_ms();
    HVS_CHECK(hvs_redis_batch_exec(q, b, &err) == HVS_EREDIS, "unreachable fails");
    HVS_CHECK_EQ_STR(err.reason, "unreachable");
    HVS_CHECK(hvs_test_now_ms() - t0 < 3000, "within the budget (%lld ms)",
              (long long)(hvs_test_now_ms() - t0));
    hvs_redis_destroy(q);
    hvs_redis_batch_destroy(b);
    hvs_redis_destroy(r);

    /* Connecting to a server that is not there yet: fails after the budget ... */
    hvs_redis_t *late = NULL;
    t0 = hvs_test_now_ms();
    HVS_CHECK(hvs_redis_connect(srv->addr, &quick, &late, &err) == HVS_EREDIS && !late,
              "nobody there");
    HVS_CHECK_EQ_STR(err.reason, "unreachable");
    int64_t took = hvs_test_now_ms() - t0;
    HVS_CHECK(took >= 400 && took < 3000, "gave up after the budget (%lld ms)", (long long)took);
    /* ... and succeeds when it comes up within the budget */
    /* The thread gets its own copy: hvs_test_redis_start below rewrites srv->addr while the
     * thread may be reading it (same text, but still a data race ThreadSanitizer reports). */
    char url[sizeof srv->addr];
    snprintf(url, sizeof url, "%s", srv->addr);
    connect_arg_t ca = {url, &opts, NULL, {0, "", ""}, -1};
    pthread_create(&t, NULL, connect_thread, &ca);
    usleep(500000);
    HVS_REQUIRE(hvs_test_redis_start(srv, port) == 0, "redis started late");
    pthread_join(t, NULL);
    HVS_CHECK(ca.rc == 0 && ca.r, "connect waited for the server: %s", ca.err.msg);
    HVS_CHECK_EQ_INT(int_reply(ca.r, "DBSIZE"), 0);
    hvs_redis_destroy(ca.r);
}

/* The redis-server the cases share, started by the first case that needs it. The restart case
 * stops and starts it again on the same port. */
static hvs_test_proc_t server;
static bool server_started;

static void stop_server(void) { hvs_test_proc_stop(&server); }

static hvs_test_proc_t *redis(void) {
    if (!server_started) {
        HVS_REQUIRE(hvs_test_redis_start(&server, 0) == 0, "redis-server");
        server_started = true;
        hvs_test_cleanup(stop_server);
    }
    return &server;
}

/* MULTI/EXEC: every command's own reply comes back; a command refused while queued applies
 * nothing of the transaction; another client never sees half of it (the transaction is one
 * step for the server: read from a second connection right after). */
static void case_atomic_batch(void) {
    hvs_redis_t *r, *other;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(redis()->addr, NULL, &r, &err) == 0 &&
                    hvs_redis_connect(redis()->addr, NULL, &other, &err) == 0,
                "connect");
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    const char *del[] = {"DEL", "atomic:a", "atomic:n"};
    hvs_redis_batch_add(b, 3, del, NULL);
    HVS_REQUIRE(hvs_redis_batch_exec(r, b, &err) == 0, "del");
    hvs_redis_batch_reset(b);
    const char *set[] = {"SET", "atomic:a", "1"}, *incr[] = {"INCRBY", "atomic:n", "5"},
               *get[] = {"GET", "atomic:a"}, *wrongtype[] = {"HGET", "atomic:a", "f"};
    hvs_redis_batch_add(b, 3, set, NULL);
    hvs_redis_batch_add(b, 3, incr, NULL);
    hvs_redis_batch_add(b, 2, get, NULL);
    hvs_redis_batch_add(b, 3, wrongtype, NULL); /* fails when run, not when queued */
    HVS_CHECK(hvs_redis_batch_exec_atomic(r, b, &err) == 0, "atomic exec: %s", err.msg);
    const redisReply *rp = hvs_redis_batch_reply(b, 1);
    HVS_CHECK(rp && rp->type == REDIS_REPLY_INTEGER && rp->integer == 5, "INCRBY's own reply");
    rp = hvs_redis_batch_reply(b, 2);
    HVS_CHECK(rp && rp->type == REDIS_REPLY_STRING && strcmp(rp->str, "1") == 0, "GET's reply");
    rp = hvs_redis_batch_reply(b, 3);
    HVS_CHECK(rp && rp->type == REDIS_REPLY_ERROR, "WRONGTYPE reported per command");
    HVS_CHECK_EQ_INT(hvs_redis_batch_errors(b), 1);
    /* a command with the wrong arity is refused while queued: nothing applied */
    hvs_redis_batch_reset(b);
    const char *incr2[] = {"INCRBY", "atomic:n", "100"}, *bad[] = {"SET", "atomic:a"};
    hvs_redis_batch_add(b, 3, incr2, NULL);
    hvs_redis_batch_add(b, 2, bad, NULL);
    HVS_CHECK(hvs_redis_batch_exec_atomic(r, b, &err) == HVS_EREDIS, "EXECABORT is an error");
    HVS_CHECK(strstr(err.msg, "EXECABORT") != NULL, "named: %s", err.msg);
    redisReply *rep = NULL;
    HVS_CHECK(hvs_redis_command(other, &rep, &err, "GET atomic:n") == 0 && rep &&
                  rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "5") == 0,
              "the aborted INCRBY was not applied");
    if (rep)
        freeReplyObject(rep);
    hvs_redis_batch_destroy(b);
    hvs_redis_destroy(other);
    hvs_redis_destroy(r);
}

/* A command Redis refuses is reported with its command, key and Redis's answer, so a refused
 * state write can be traced to the building it belongs to. */
static void case_refused_command_names_key(void) {
    hvs_redis_t *r;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_redis_connect(redis()->addr, NULL, &r, &err) == 0, "connect");
    hvs_redis_batch_t *b = hvs_redis_batch_new();
    const char *set[] = {"SET", "hvs:{bldg_w}:agg:mk", "a string"};
    const char *hset[] = {"HSET", "hvs:{bldg_w}:agg:mk", "f", "v"};
    const char *ok[] = {"SET", "hvs:{bldg_w}:other", "1"};
    HVS_REQUIRE(hvs_redis_batch_add(b, 3, set, NULL) == 0 &&
                    hvs_redis_batch_add(b, 4, hset, NULL) == 0 &&
                    hvs_redis_batch_add(b, 3, ok, NULL) == 0,
                "batch");
    HVS_REQUIRE(hvs_redis_batch_exec(r, b, &err) == 0, "exec: %s", err.msg);
    HVS_CHECK_EQ_INT(hvs_redis_batch_check(b, &err), HVS_EREDIS);
    HVS_CHECK_EQ_STR(err.reason, "reply_error");
    HVS_CHECK(strstr(err.msg, "1 of 3") && strstr(err.msg, "HSET hvs:{bldg_w}:agg:mk") &&
                  strstr(err.msg, "WRONGTYPE"),
              "names the command, key and answer: %s", err.msg);
    hvs_redis_batch_reset(b);
    HVS_REQUIRE(hvs_redis_batch_add(b, 3, ok, NULL) == 0 && hvs_redis_batch_exec(r, b, &err) == 0,
                "exec");
    HVS_CHECK_EQ_INT(hvs_redis_batch_check(b, &err), 0);
    hvs_redis_batch_destroy(b);
    hvs_redis_destroy(r);
}

static void case_auth_select(void) { test_auth_select(redis()); }
static void case_pipeline_and_scripts(void) { test_pipeline_and_scripts(redis()); }
static void case_restart(void) { test_restart(redis()); }

static const hvs_test_case_t cases[] = {
    {"url_parsed_bad_ones_named_without_password", test_url},
    {"key_layout_tagged_by_building", test_keys},
    {"auth_acl_user_and_select_really_applied", case_auth_select},
    {"pipelined_batch_binary_safe_lua_survives_flush", case_pipeline_and_scripts},
    {"atomic_batch_all_or_nothing_with_own_replies", case_atomic_batch},
    {"refused_command_names_its_key", case_refused_command_names_key},
    {"restart_crash_and_late_server_reconnect_resend", case_restart},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
