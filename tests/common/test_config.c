/*
 * config + topics: defaults, file < environment precedence, every kind of invalid value rejected
 * with the key's name, pass-through of librdkafka properties, secrets masked in the effective
 * configuration log, topic renames and dead-letter names.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/config.h"
#include "hvs/log.h"
#include "hvs/topics.h"
#include "hvs_test.h"

typedef struct demo_cfg {
    char *brokers;
    char *password;
    int64_t port;
    double ratio;
    bool enabled;
    int64_t lateness_ms;
    char *required;
} demo_cfg_t;

static const hvs_cfg_entry_t demo_entries[] = {
    {"HVS_KAFKA_BROKERS", HVS_CFG_STRING, "127.0.0.1:9092", 0, 0, offsetof(demo_cfg_t, brokers), 0,
     "bootstrap"},
    {"HVS_DEMO_PASSWORD", HVS_CFG_STRING, NULL, 0, 0, offsetof(demo_cfg_t, password),
     HVS_CFG_SECRET, "a secret"},
    {"HVS_DEMO_PORT", HVS_CFG_INT, "8080", 1, 65535, offsetof(demo_cfg_t, port), 0, "a port"},
    {"HVS_DEMO_RATIO", HVS_CFG_DOUBLE, "0.05", 0, 1, offsetof(demo_cfg_t, ratio), 0, "a ratio"},
    {"HVS_DEMO_ENABLED", HVS_CFG_BOOL, "false", 0, 0, offsetof(demo_cfg_t, enabled), 0, "a flag"},
    {"HVS_DEMO_LATENESS", HVS_CFG_DURATION, "48h", 0, 7 * 86400000.0,
     offsetof(demo_cfg_t, lateness_ms), 0, "a duration"},
    {"HVS_DEMO_REQUIRED", HVS_CFG_STRING, "x", 0, 0, offsetof(demo_cfg_t, required),
     HVS_CFG_REQUIRED, "required"},
};

/* Load the demo table from `env` (NULL-terminated) and optional file; returns rc. */
static int load(demo_cfg_t *cfg, char **env, const char *file, hvs_config_passthrough_t *pt,
                hvs_err_t *err) {
    memset(cfg, 0, sizeof *cfg);
    hvs_cfg_section_t sec = {"demo", demo_entries, sizeof demo_entries / sizeof demo_entries[0],
                             cfg};
    hvs_err_clear(err);
    return hvs_config_load(&sec, 1, file, env, pt, err);
}

static void release(demo_cfg_t *cfg, hvs_config_passthrough_t *pt) {
    hvs_cfg_section_t sec = {"demo", demo_entries, sizeof demo_entries / sizeof demo_entries[0],
                             cfg};
    hvs_config_fini(&sec, 1, pt);
}

static void test_defaults(void) {
    demo_cfg_t cfg;
    hvs_err_t err;
    char *env[] = {"PATH=/usr/bin", NULL};
    HVS_CHECK_EQ_INT(load(&cfg, env, NULL, NULL, &err), 0);
    HVS_CHECK_EQ_STR(cfg.brokers, "127.0.0.1:9092");
    HVS_CHECK(cfg.password == NULL, "unset string stays NULL");
    HVS_CHECK_EQ_INT(cfg.port, 8080);
    HVS_CHECK_NEAR(cfg.ratio, 0.05, 1e-12);
    HVS_CHECK(!cfg.enabled, "default false");
    HVS_CHECK_EQ_INT(cfg.lateness_ms, 48LL * 3600 * 1000);
    release(&cfg, NULL);
}

static void test_env_overrides_file(void) {
    char path[] = "/tmp/hvs-test-config-XXXXXX";
    int fd = mkstemp(path);
    HVS_REQUIRE(fd >= 0, "mkstemp");
    const char *text = "# comment\n\nHVS_DEMO_PORT=9000\nexport HVS_DEMO_RATIO = 0.5\n"
                       "HVS_DEMO_ENABLED=\"yes\"\nHVS_KAFKA_SASL_MECHANISM=PLAIN\n";
    HVS_REQUIRE(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write");
    close(fd);
    demo_cfg_t cfg;
    hvs_err_t err;
    hvs_config_passthrough_t pt;
    char *env[] = {"HVS_DEMO_PORT=9001", "HVS_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                   "HVS_KAFKA_SASL_MECHANISM=SCRAM-SHA-512", "HVS_DEMO_LATENESS=90m", NULL};
    HVS_CHECK_EQ_INT(load(&cfg, env, path, &pt, &err), 0);
    HVS_CHECK_EQ_INT(cfg.port, 9001);      /* env beats file */
    HVS_CHECK_NEAR(cfg.ratio, 0.5, 1e-12); /* file beats default */
    HVS_CHECK(cfg.enabled, "quoted yes from file");
    HVS_CHECK_EQ_INT(cfg.lateness_ms, 90LL * 60 * 1000);
    /* pass-through: two properties, env replaced the file's sasl.mechanism */
    HVS_CHECK_EQ_INT(pt.n, 4);
    int found_proto = 0, found_mech = 0;
    for (size_t i = 0; i + 1 < pt.n; i += 2) {
        if (strcmp(pt.kv[i], "security.protocol") == 0 && strcmp(pt.kv[i + 1], "SASL_SSL") == 0)
            found_proto = 1;
        if (strcmp(pt.kv[i], "sasl.mechanism") == 0 && strcmp(pt.kv[i + 1], "SCRAM-SHA-512") == 0)
            found_mech = 1;
    }
    HVS_CHECK(found_proto && found_mech, "pass-through properties translated");
    HVS_CHECK(pt.kv[pt.n] == NULL, "pass-through list NULL-terminated");
    release(&cfg, &pt);
    unlink(path);
}

/* Each invalid setting fails with HVS_ECONFIG and names its key. */
static void test_rejections(void) {
    static const struct {
        const char *assignment;
        const char *key;
        const char *reason;
    } cases[] = {
        {"HVS_DEMO_PORT=70000", "HVS_DEMO_PORT", "out_of_range"},
        {"HVS_DEMO_PORT=0", "HVS_DEMO_PORT", "out_of_range"},
        {"HVS_DEMO_PORT=80x", "HVS_DEMO_PORT", "bad_value"},
        {"HVS_DEMO_PORT=", "HVS_DEMO_PORT", "bad_value"},
        {"HVS_DEMO_RATIO=1.5", "HVS_DEMO_RATIO", "out_of_range"},
        {"HVS_DEMO_RATIO=nan", "HVS_DEMO_RATIO", "bad_value"},
        {"HVS_DEMO_ENABLED=maybe", "HVS_DEMO_ENABLED", "bad_value"},
        {"HVS_DEMO_LATENESS=2w", "HVS_DEMO_LATENESS", "bad_value"},
        {"HVS_DEMO_LATENESS=8d", "HVS_DEMO_LATENESS", "out_of_range"},
        {"HVS_DEMO_PORTT=1", "HVS_DEMO_PORTT", "unknown_key"},
        {"HVS_DEMO_=1", "HVS_DEMO_", "unknown_key"},
        {"HVS_REDIS_URL=redis://x", "HVS_REDIS_URL", "unknown_key"}, /* common: no row here */
        {"HVS_TOPIC_READINGS_RAWW=x", "HVS_TOPIC_READINGS_RAWW", "unknown_key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        demo_cfg_t cfg;
        hvs_err_t err;
        char *env[] = {(char *)cases[i].assignment, NULL};
        int rc = load(&cfg, env, NULL, NULL, &err);
        HVS_CHECK(rc == HVS_ECONFIG, "%s: rc %d", cases[i].assignment, rc);
        HVS_CHECK(strstr(err.msg, cases[i].key) != NULL, "%s: message \"%s\" names the key",
                  cases[i].assignment, err.msg);
        HVS_CHECK_EQ_STR(err.reason, cases[i].reason);
        release(&cfg, NULL);
    }
    /* A secret's bad value is never echoed. */
    static const hvs_cfg_entry_t secret_int[] = {
        {"HVS_DEMO_TOKEN", HVS_CFG_INT, NULL, 0, 0, 0, HVS_CFG_SECRET, "secret int"}};
    int64_t token = 0;
    hvs_cfg_section_t sec = {"s", secret_int, 1, &token};
    char *env[] = {"HVS_DEMO_TOKEN=hunter2", NULL};
    hvs_err_t err;
    HVS_CHECK_EQ_INT(hvs_config_load(&sec, 1, NULL, env, NULL, &err), HVS_ECONFIG);
    HVS_CHECK(strstr(err.msg, "hunter2") == NULL, "secret not echoed: %s", err.msg);
    HVS_CHECK(strstr(err.msg, "HVS_DEMO_TOKEN") != NULL, "key named: %s", err.msg);
    /* A file line that is not an assignment names the file and line. */
    char path[] = "/tmp/hvs-test-config-XXXXXX";
    int fd = mkstemp(path);
    HVS_REQUIRE(fd >= 0, "mkstemp");
    HVS_REQUIRE(write(fd, "HVS_DEMO_PORT=1\ngarbage\n", 24) == 24, "write");
    close(fd);
    demo_cfg_t cfg;
    char *noenv[] = {NULL};
    HVS_CHECK_EQ_INT(load(&cfg, noenv, path, NULL, &err), HVS_ECONFIG);
    char where[64];
    snprintf(where, sizeof where, "%s:2", path);
    HVS_CHECK(strstr(err.msg, where) != NULL, "file:line in \"%s\"", err.msg);
    release(&cfg, NULL);
    unlink(path);
    /* A missing file is an error, not silently ignored. */
    HVS_CHECK_EQ_INT(load(&cfg, noenv, "/nonexistent/hvs.conf", NULL, &err), HVS_ECONFIG);
    release(&cfg, NULL);
}

static void test_secrets_masked(void) {
    char path[] = "/tmp/hvs-test-log-XXXXXX";
    int fd = mkstemp(path);
    HVS_REQUIRE(fd >= 0, "mkstemp");
    FILE *out = fdopen(fd, "w+");
    hvs_log_init("test", HVS_LOG_INFO, out);
    demo_cfg_t cfg;
    hvs_err_t err;
    hvs_config_passthrough_t pt;
    char *env[] = {"HVS_DEMO_PASSWORD=s3cret-pw", "HVS_KAFKA_BROKERS=u:brokerpw@kafka:9092",
                   "HVS_KAFKA_SASL_PASSWORD=saslpw", "HVS_KAFKA_CLIENT_RACK=zone-a", NULL};
    HVS_CHECK_EQ_INT(load(&cfg, env, NULL, &pt, &err), 0);
    hvs_cfg_section_t sec = {"demo", demo_entries, sizeof demo_entries / sizeof demo_entries[0],
                             &cfg};
    hvs_config_log_effective(&sec, 1, &pt);
    fflush(out);
    rewind(out);
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, out);
    buf[n] = '\0';
    HVS_CHECK(strstr(buf, "s3cret-pw") == NULL, "secret setting masked");
    HVS_CHECK(strstr(buf, "saslpw") == NULL, "sasl.password masked");
    HVS_CHECK(strstr(buf, "brokerpw") == NULL, "password inside a URL masked");
    HVS_CHECK(strstr(buf, "zone-a") != NULL, "ordinary property shown");
    HVS_CHECK(strstr(buf, "\"HVS_DEMO_PORT\"") != NULL, "every setting logged");
    hvs_log_init("test", HVS_LOG_INFO, NULL);
    fclose(out);
    unlink(path);
    release(&cfg, &pt);
}

static void test_durations(void) {
    int64_t ms;
    HVS_CHECK(hvs_config_parse_duration("250ms", &ms) == 0 && ms == 250, "250ms");
    HVS_CHECK(hvs_config_parse_duration("1.5s", &ms) == 0 && ms == 1500, "1.5s");
    HVS_CHECK(hvs_config_parse_duration("2d", &ms) == 0 && ms == 172800000, "2d");
    HVS_CHECK(hvs_config_parse_duration("1500", &ms) == 0 && ms == 1500, "plain ms");
    HVS_CHECK(hvs_config_parse_duration("-1s", &ms) != 0, "negative rejected");
    HVS_CHECK(hvs_config_parse_duration("5 m", &ms) != 0, "space rejected");
    HVS_CHECK(hvs_config_parse_duration("", &ms) != 0, "empty rejected");
}

static void test_topics(void) {
    hvs_err_t err;
    char *env[] = {"HVS_TOPIC_READINGS_RAW=site1.readings", NULL};
    HVS_CHECK_EQ_INT(hvs_topics_configure(env, 6, &err), 0);
    HVS_CHECK_EQ_STR(hvs_topic_name("readings.raw"), "site1.readings");
    HVS_CHECK_EQ_STR(hvs_topic_name("alerts"), "alerts");
    char buf[HVS_TOPIC_NAME_MAX];
    HVS_CHECK_EQ_STR(hvs_topic_dlq_name("site1.readings", buf, sizeof buf), "readings.dlq");
    HVS_CHECK_EQ_STR(hvs_topic_dlq_name("features.hourly", buf, sizeof buf), "features.hourly.dlq");
    HVS_CHECK_EQ_STR(hvs_topic_dlq_name("not.in.table", buf, sizeof buf), "not.in.table.dlq");
    const hvs_topic_t *models = hvs_topic_get("models");
    HVS_REQUIRE(models != NULL, "models topic");
    HVS_CHECK(models->compacted && hvs_topic_partitions(models) == 1, "models compacted, 1 part");
    /* co-partitioning: every building-keyed topic has the same count */
    size_t n;
    const hvs_topic_t *all = hvs_topics_all(&n);
    size_t keyed = 0;
    for (size_t i = 0; i < n; i++) {
        if (all[i].building_keyed) {
            keyed++;
            HVS_CHECK_EQ_INT(hvs_topic_partitions(&all[i]), 6);
        }
        if (all[i].dlq_logical)
            HVS_CHECK(hvs_topic_get(all[i].dlq_logical) != NULL, "%s has its DLQ in the table",
                      all[i].logical);
    }
    HVS_CHECK_EQ_INT(keyed, 11);
    char *bad[] = {"HVS_TOPIC_ALERTS=bad topic!", NULL};
    HVS_CHECK_EQ_INT(hvs_topics_configure(bad, 0, &err), HVS_ECONFIG);
    HVS_CHECK(strstr(err.msg, "HVS_TOPIC_ALERTS") != NULL, "names the key: %s", err.msg);
    char *none[] = {NULL};
    /* 1025 partitions would leave the workers' per-partition tables short: refused, unchanged */
    HVS_CHECK_EQ_INT(hvs_topics_configure(none, 1025, &err), HVS_ECONFIG);
    HVS_CHECK_EQ_INT(hvs_topic_partitions(hvs_topic_get("readings.raw")), 6);
    HVS_CHECK_EQ_INT(hvs_topics_configure(none, 1024, &err), 0);
    HVS_CHECK_EQ_INT(hvs_topics_configure(none, HVS_TOPIC_DEFAULT_PARTITIONS, &err), 0);
    HVS_CHECK_EQ_STR(hvs_topic_name("readings.raw"), "readings.raw");
}


/* The scoped strictness (config.h): a table like the aggregator's, HVS_AGG_* rows and one common
 * row, loaded from an explicit envp; the log captured to count the warning lines. */
typedef struct agg_like {
    int64_t lateness_ms;
    char *redis_url;
} agg_like_t;

static const hvs_cfg_entry_t agg_like_entries[] = {
    {"HVS_AGG_LATENESS", HVS_CFG_DURATION, "48h", 0, 0, offsetof(agg_like_t, lateness_ms), 0,
     "lateness"},
    {"HVS_REDIS_URL", HVS_CFG_STRING, "redis://127.0.0.1", 0, 0, offsetof(agg_like_t, redis_url), 0,
     "redis"},
};

typedef struct scoped_result {
    int rc;
    hvs_err_t err;
    char log[8192];
    int warn_lines; /* lines of the "outside every known prefix" warning */
    agg_like_t cfg;
} scoped_result_t;

static void load_scoped(char **env, const char *file, scoped_result_t *r) {
    memset(r, 0, sizeof *r);
    FILE *out = tmpfile();
    HVS_REQUIRE(out != NULL, "tmpfile");
    hvs_log_init("test", HVS_LOG_INFO, out);
    hvs_cfg_section_t sec = {"aggregator", agg_like_entries, 2, &r->cfg};
    hvs_err_clear(&r->err);
    r->rc = hvs_config_load(&sec, 1, file, env, NULL, &r->err);
    hvs_config_fini(&sec, 1, NULL);
    fflush(out);
    rewind(out);
    size_t n = fread(r->log, 1, sizeof r->log - 1, out);
    r->log[n] = '\0';
    for (const char *at = r->log; (at = strstr(at, "outside every known prefix")) != NULL; at++)
        r->warn_lines++;
    hvs_log_init("test", HVS_LOG_INFO, NULL);
    fclose(out);
}

static void test_scoped_own_prefix_typo_refused(void) {
    char *env[] = {"HVS_FC_HORIZON=48", "HVS_AGG_LATENES=1h", NULL};
    scoped_result_t r;
    load_scoped(env, NULL, &r);
    HVS_CHECK_EQ_INT(r.rc, HVS_ECONFIG);
    HVS_CHECK_EQ_STR(r.err.reason, "unknown_key");
    HVS_CHECK(strstr(r.err.msg, "HVS_AGG_LATENES") != NULL, "names the typo: %s", r.err.msg);
    /* the same in a file: refused with file:line */
    char path[] = "/tmp/hvs-test-config-XXXXXX";
    int fd = mkstemp(path);
    HVS_REQUIRE(fd >= 0, "mkstemp");
    HVS_REQUIRE(write(fd, "HVS_AGG_LATENESS=2h\nHVS_AGG_SILENCEE=1h\n", 39) == 39, "write");
    close(fd);
    char *none[] = {NULL};
    load_scoped(none, path, &r);
    HVS_CHECK_EQ_INT(r.rc, HVS_ECONFIG);
    HVS_CHECK(strstr(r.err.msg, "HVS_AGG_SILENCEE") && strstr(r.err.msg, ":2"),
              "names the typo and the line: %s", r.err.msg);
    unlink(path);
    /* a common prefix is every program's own: a typo there is refused as well */
    char *common[] = {"HVS_REDIS_ULR=redis://x", NULL};
    load_scoped(common, NULL, &r);
    HVS_CHECK(r.rc == HVS_ECONFIG && strstr(r.err.msg, "HVS_REDIS_ULR"), "common typo: %s",
              r.err.msg);
    char *shutdown[] = {"HVS_SHUTDOWN_TIMOUT=5s", NULL};
    load_scoped(shutdown, NULL, &r);
    HVS_CHECK(r.rc == HVS_ECONFIG && strstr(r.err.msg, "HVS_SHUTDOWN_TIMOUT"), "common typo: %s",
              r.err.msg);
}

static void test_scoped_other_worker_accepted(void) {
    /* one ConfigMap for the pipeline: the forecaster's, simulator's, scorer's names here */
    char *env[] = {"HVS_FC_HORIZON=48",       "HVS_SIM_BUILDINGS=3",
                   "HVS_SCORE_NO_SUCH=1",     "HVS_AGG_LATENESS=3h",
                   "HVS_TOPIC_ALERTS=x.al",   "HVS_CONFIG_FILE=",
                   "HVS_REDIS_URL=redis://r", NULL};
    scoped_result_t r;
    load_scoped(env, NULL, &r);
    HVS_CHECK_EQ_INT(r.rc, 0);
    HVS_CHECK_EQ_INT(r.cfg.lateness_ms, 3 * 3600000LL);
    HVS_CHECK_EQ_INT(r.warn_lines, 0);
    HVS_CHECK(strstr(r.log, "HVS_FC_HORIZON") == NULL, "silently: %s", r.log);
    /* the table names each worker's prefix */
    const hvs_cfg_prefix_t *p = hvs_config_prefix_of("HVS_AGG_LATENESS");
    HVS_CHECK(p && p->owner && strcmp(p->owner, "hvs-aggregator") == 0, "HVS_AGG_ owner");
    p = hvs_config_prefix_of("HVS_KAFKA_BROKERS");
    HVS_CHECK(p && !p->owner, "HVS_KAFKA_ is common");
    HVS_CHECK(hvs_config_prefix_of("HVS_SRC") == NULL, "HVS_SRC is no prefix");
}

static void test_scoped_unknown_warned_once(void) {
    char path[] = "/tmp/hvs-test-config-XXXXXX";
    int fd = mkstemp(path);
    HVS_REQUIRE(fd >= 0, "mkstemp");
    HVS_REQUIRE(write(fd, "HVS_SRC=/home/me/src\n", 21) == 21, "write");
    close(fd);
    char *env[] = {"HVS_SRC=/home/me/src",
                   "HVS_AGG_LATENESS=1h",
                   "HVS_AGGREGATOR_WINDOW=1h",
                   "HVS_FC_HORIZON=48",
                   "HVS=1",
                   NULL};
    scoped_result_t r;
    load_scoped(env, path, &r);
    unlink(path);
    HVS_CHECK_EQ_INT(r.rc, 0);
    HVS_CHECK_EQ_INT(r.cfg.lateness_ms, 3600000);
    HVS_CHECK_EQ_INT(r.warn_lines, 1);
    HVS_CHECK(strstr(r.log, "\"names\":\"HVS_SRC, HVS_AGGREGATOR_WINDOW\"") != NULL,
              "one line listing both, HVS_SRC once: %s", r.log);
    HVS_CHECK(strstr(r.log, "\"count\":2") != NULL, "count: %s", r.log);
    HVS_CHECK(strstr(r.log, "HVS_FC_HORIZON") == NULL, "another worker's not listed: %s", r.log);
    /* none of them: no warning */
    char *clean[] = {"HVS_AGG_LATENESS=1h", "PATH=/bin", NULL};
    load_scoped(clean, NULL, &r);
    HVS_CHECK(r.rc == 0 && r.warn_lines == 0, "clean: rc %d, %d warnings", r.rc, r.warn_lines);
}

static const hvs_test_case_t cases[] = {
    {"defaults", test_defaults},
    {"env_overrides_file", test_env_overrides_file},
    {"rejections", test_rejections},
    {"secrets_masked", test_secrets_masked},
    {"durations", test_durations},
    {"topics", test_topics},
    {"scoped_own_prefix_typo_refused", test_scoped_own_prefix_typo_refused},
    {"scoped_other_worker_accepted", test_scoped_other_worker_accepted},
    {"scoped_unknown_warned_once", test_scoped_unknown_warned_once},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
