/*
 * Start-up and shutdown shared by every executable (see hvs/app.h).
 */
#include "hvs/app.h"

#include <ctype.h>
#include <librdkafka/rdkafka.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hvs/log.h"
#include "hvs/topics.h"

/* Set by the signal handler (on whichever thread the signal lands: an HTTP or librdkafka thread
 * as well as main) and read by the loop and the HTTP thread's readiness answer. A volatile
 * sig_atomic_t is only safe within one thread; a lock-free atomic is both signal-safe (C11
 * 7.14.1.1) and ordered between threads. */
static atomic_int g_stop;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "g_stop must be lock-free to be set in a signal handler");

/* The shutdown bound: when the clock started (CLOCK_MONOTONIC ms, 0 = not yet; set in the signal
 * handler too: clock_gettime is async-signal-safe) and its length. */
static atomic_llong g_shutdown_at;
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "g_shutdown_at is set in a signal handler");
static atomic_llong g_shutdown_timeout_ms = 10000;
static atomic_int g_shutdown_incomplete;

/* The readiness callback the worker installs; read by the HTTP thread. */
static _Atomic(hvs_http_ready_fn) g_ready_fn;
static _Atomic(void *) g_ready_opaque;

static const hvs_cfg_entry_t common_entries[] = {
    {"HVS_KAFKA_BROKERS", HVS_CFG_STRING, "127.0.0.1:9092", 0, 0,
     offsetof(hvs_common_config_t, kafka_brokers), 0, "Kafka bootstrap servers (host:port,...)"},
    {"HVS_KAFKA_GROUP", HVS_CFG_STRING, NULL, 0, 0, offsetof(hvs_common_config_t, kafka_group), 0,
     "consumer group id (default hvs-<worker>)"},
    {"HVS_KAFKA_FETCH_WAIT_MAX_MS", HVS_CFG_INT, "100", 1, 10000,
     offsetof(hvs_common_config_t, kafka_fetch_wait_max_ms), 0,
     "longest a fetch waits for data; the dev broker is not woken by new data, use ~10 there"},
    {"HVS_REDIS_URL", HVS_CFG_STRING, "redis://127.0.0.1:6379", 0, 0,
     offsetof(hvs_common_config_t, redis_url), 0,
     "redis://[:password@]host[:port][/db] (the password is masked in logs)"},
    {"HVS_SCHEMA_REGISTRY_URL", HVS_CFG_STRING, NULL, 0, 0,
     offsetof(hvs_common_config_t, schema_registry_url), 0,
     "Confluent-compatible Schema Registry; unset = the fixed id table in schemas/"},
    {"HVS_HTTP_PORT", HVS_CFG_INT, "0", -1, 65535, offsetof(hvs_common_config_t, http_port), 0,
     "port of /metrics, /healthz, /readyz (0 = any free port, logged; -1 = off)"},
    {"HVS_HTTP_BIND_ANY", HVS_CFG_BOOL, "false", 0, 0, offsetof(hvs_common_config_t, http_bind_any),
     0, "listen on all interfaces (Kubernetes probes) instead of 127.0.0.1"},
    {"HVS_HTTP_ADMIN_TOKEN", HVS_CFG_STRING, NULL, 0, 0,
     offsetof(hvs_common_config_t, http_admin_token), HVS_CFG_SECRET,
     "bearer token every non-GET/HEAD request to a worker route (POST /train) needs; 16-256 "
     "visible characters; unset: those are open on 127.0.0.1 and refused (403) with "
     "HVS_HTTP_BIND_ANY; hvsctl train sends it"},
    {"HVS_LOG_LEVEL", HVS_CFG_STRING, "info", 0, 0, offsetof(hvs_common_config_t, log_level), 0,
     "debug | info | warn | error"},
    {"HVS_TOPIC_PARTITIONS", HVS_CFG_INT, "12", 1, HVS_MAX_PARTITIONS,
     offsetof(hvs_common_config_t, topic_partitions), 0,
     "partition count of every building-keyed topic (must match across the pipeline)"},
    {"HVS_CALENDAR_FILE", HVS_CFG_STRING, NULL, 0, 0, offsetof(hvs_common_config_t, calendar_file),
     0,
     "holiday regions read on top of the built-in ones (format: data/calendar/regions.ini); "
     "read by the executables that build calendars"},
    {"HVS_PROFILE", HVS_CFG_STRING, "heat", 0, 0, offsetof(hvs_common_config_t, profile), 0,
     "what the deployment meters: a profile of data/profiles/profiles.ini (heat, ev_charging, retail) "
     "or of HVS_PROFILE_FILE; the same for every worker of a deployment"},
    {"HVS_PROFILE_FILE", HVS_CFG_STRING, NULL, 0, 0, offsetof(hvs_common_config_t, profile_file), 0,
     "profiles read on top of the built-in ones (format: data/profiles/profiles.ini)"},
    {"HVS_SHUTDOWN_TIMEOUT", HVS_CFG_DURATION, "10s", 0, 3600000,
     offsetof(hvs_common_config_t, shutdown_timeout_ms), 0,
     "longest the shutdown after SIGTERM (or an error) waits for the broker: the last batch's "
     "flush, the final flush, the commit and leaving the group; what is still unacknowledged "
     "then is logged and the exit status is 1"},
};

void hvs_app_shutdown_begin(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    long long unset = 0;
    atomic_compare_exchange_strong(&g_shutdown_at, &unset, now > 0 ? now : 1);
}

int64_t hvs_app_shutdown_left_ms(void) {
    long long at = atomic_load(&g_shutdown_at), timeout = atomic_load(&g_shutdown_timeout_ms);
    if (!at)
        return timeout;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long left = at + timeout - ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    return left > 0 ? left : 0;
}

void hvs_app_shutdown_incomplete(void) { atomic_store(&g_shutdown_incomplete, 1); }

/* What the watchdog reports as undelivered (the stage's producer). */
static _Atomic(int (*)(void *)) g_unacked_fn;
static _Atomic(void *) g_unacked_opaque;

void hvs_app_set_unacknowledged(int (*fn)(void *opaque), void *opaque) {
    atomic_store(&g_unacked_opaque, opaque);
    atomic_store(&g_unacked_fn, fn);
}

/* Past the bound plus this grace, the watchdog ends the process: whatever still waits (a
 * librdkafka handle's teardown, a blocking call of a worker's own) cannot stretch the shutdown. */
#define SHUTDOWN_GRACE_MS 1500

static void *shutdown_watchdog(void *arg) {
    (void)arg;
    for (;;) {
        struct timespec nap = {0, 100 * 1000000L};
        nanosleep(&nap, NULL);
        if (!atomic_load(&g_shutdown_at) || hvs_app_shutdown_left_ms() > 0)
            continue;
        nap.tv_sec = SHUTDOWN_GRACE_MS / 1000;
        nap.tv_nsec = (SHUTDOWN_GRACE_MS % 1000) * 1000000L;
        nanosleep(&nap, NULL);
        int (*fn)(void *) = atomic_load(&g_unacked_fn);
        int undelivered = fn ? fn(atomic_load(&g_unacked_opaque)) : -1;
        hvs_log_fields(HVS_LOG_ERROR, "app",
                       "shutdown bound passed: exiting without waiting any longer (messages not "
                       "acknowledged are replayed on restart)",
                       HVS_LFI("undelivered_messages", undelivered),
                       HVS_LFI("shutdown_timeout_ms", atomic_load(&g_shutdown_timeout_ms)));
        fflush(NULL);
        _exit(1);
    }
    return NULL;
}

static void start_watchdog(void) {
    static atomic_int started;
    if (atomic_exchange(&started, 1))
        return;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, shutdown_watchdog, NULL) != 0)
        hvs_log_warn("app", "no shutdown watchdog thread: the shutdown bound is not enforced");
    pthread_attr_destroy(&attr);
}
bool hvs_app_shutdown_was_incomplete(void) { return atomic_load(&g_shutdown_incomplete); }

static void on_signal(int sig) {
    (void)sig;
    hvs_app_shutdown_begin();
    atomic_store(&g_stop, 1);
}

bool hvs_app_running(void) { return !atomic_load(&g_stop); }

void hvs_app_request_stop(void) {
    hvs_app_shutdown_begin();
    atomic_store(&g_stop, 1);
}

void hvs_app_set_ready(hvs_app_t *app, hvs_http_ready_fn fn, void *opaque) {
    (void)app;
    atomic_store(&g_ready_opaque, opaque);
    atomic_store(&g_ready_fn, fn);
}

static int app_ready(void *opaque, char *why, size_t whylen) {
    (void)opaque;
    if (atomic_load(&g_stop)) {
        snprintf(why, whylen, "shutting down");
        return 0;
    }
    hvs_http_ready_fn fn = atomic_load(&g_ready_fn);
    if (!fn) {
        snprintf(why, whylen, "starting");
        return 0;
    }
    return fn(atomic_load(&g_ready_opaque), why, whylen);
}

/* Every HVS_KAFKA_* pass-through must be a property librdkafka knows, checked now rather than
 * when the first client is created. */
static int check_kafka_props(const hvs_config_passthrough_t *pt, hvs_err_t *err) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = HVS_OK;
    for (size_t i = 0; rc == HVS_OK && i + 1 < pt->n; i += 2) {
        char errstr[256];
        if (rd_kafka_conf_set(conf, pt->kv[i], pt->kv[i + 1], errstr, sizeof errstr) ==
            RD_KAFKA_CONF_OK)
            continue;
        char env[160] = "HVS_KAFKA_";
        size_t k = strlen(env);
        for (const char *c = pt->kv[i]; *c && k + 1 < sizeof env; c++)
            env[k++] = *c == '.' ? '_' : (char)toupper((unsigned char)*c);
        env[k] = '\0';
        rc = hvs_err_set(err, HVS_ECONFIG, "bad_value", "%s (librdkafka property %s): %s", env,
                         pt->kv[i], errstr);
    }
    rd_kafka_conf_destroy(conf);
    return rc;
}

static void print_help(const hvs_app_t *app, const hvs_app_spec_t *spec) {
    printf("%s - %s\n", app->client_id, spec->summary ? spec->summary : "");
    if (spec->usage)
        printf("\n%s\n", spec->usage);
    printf("\nOptions:\n  --help      this text\n  --version   print the version\n"
           "  --config F  read HVS_NAME=value lines from F (the environment wins)\n");
    if (spec->flag_prefix)
        printf(
            "  Every %s* setting below is also a flag: %sFOO_BAR=v is --foo-bar v (flags win).\n",
            spec->flag_prefix, spec->flag_prefix);
    hvs_config_print_help(stdout, app->sections, app->nsections);
}

void hvs_app_kafka_conf(const hvs_app_t *app, hvs_kafka_conf_t *conf) {
    memset(conf, 0, sizeof *conf);
    conf->brokers = app->cfg.kafka_brokers;
    conf->group = app->cfg.kafka_group;
    conf->client_id = app->client_id;
    conf->props = (const char *const *)app->kafka_props.kv;
    conf->fetch_wait_max_ms = (int)app->cfg.kafka_fetch_wait_max_ms;
}

/*
 * Map one "--foo-bar[=v]" flag onto the row PREFIX_FOO_BAR of the worker's sections by setting
 * that environment variable (the config loader then validates it like any other source).
 * Returns how many argv entries it used (1 or 2), or a negative rc.
 */
static int apply_flag(const hvs_app_t *app, const char *prefix, int argc, char **argv, int i,
                      hvs_err_t *err) {
    const char *flag = argv[i] + 2;
    const char *eq = strchr(flag, '=');
    size_t flen = eq ? (size_t)(eq - flag) : strlen(flag);
    char name[128];
    size_t plen = strlen(prefix);
    if (flen == 0 || plen + flen >= sizeof name)
        return hvs_err_set(err, HVS_ECONFIG, "usage", "unknown option %.60s", argv[i]);
    memcpy(name, prefix, plen);
    for (size_t k = 0; k < flen; k++) {
        char c = flag[k];
        if (c == '-')
            c = '_';
        else if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (!((c >= '0' && c <= '9') || c == '_'))
            return hvs_err_set(err, HVS_ECONFIG, "usage", "unknown option %.60s", argv[i]);
        name[plen + k] = c;
    }
    name[plen + flen] = '\0';
    for (size_t s = 1; s < app->nsections; s++) {
        const hvs_cfg_section_t *sec = &app->sections[s];
        for (size_t e = 0; e < sec->n; e++) {
            if (strcmp(sec->entries[e].name, name) != 0)
                continue;
            const char *value;
            int used = 1;
            if (eq) {
                value = eq + 1;
            } else if (sec->entries[e].type == HVS_CFG_BOOL &&
                       (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
                value = "true";
            } else if (i + 1 < argc) {
                value = argv[i + 1];
                used = 2;
            } else {
                return hvs_err_set(err, HVS_ECONFIG, "usage", "%.60s needs a value", argv[i]);
            }
            if (setenv(name, value, 1) != 0)
                return hvs_err_set(err, HVS_ENOMEM, NULL, "setenv %s failed", name);
            return used;
        }
    }
    return hvs_err_set(err, HVS_ECONFIG, "usage", "unknown option %.60s (see --help)", argv[i]);
}

int hvs_app_init(hvs_app_t *app, const hvs_app_spec_t *spec, int argc, char **argv,
                 hvs_err_t *err) {
    memset(app, 0, sizeof *app);
    app->worker = spec->worker;
    if (strncmp(spec->worker, "hvs", 3) == 0)
        snprintf(app->client_id, sizeof app->client_id, "%s", spec->worker);
    else
        snprintf(app->client_id, sizeof app->client_id, "hvs-%s", spec->worker);
    hvs_log_init(spec->worker, HVS_LOG_INFO, spec->log_stderr ? stderr : NULL);

    if (spec->nextra > sizeof app->sections / sizeof app->sections[0] - 1)
        return hvs_err_set(err, HVS_EINVAL, NULL, "too many config sections (%zu)", spec->nextra);
    app->sections[0] = (hvs_cfg_section_t){
        "common", common_entries, sizeof common_entries / sizeof common_entries[0], &app->cfg};
    for (size_t i = 0; i < spec->nextra; i++)
        app->sections[1 + i] = spec->extra[i];
    app->nsections = 1 + spec->nextra;

    const char *config_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(app, spec);
            return 1;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", app->client_id, HVS_VERSION);
            return 1;
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc)
                return hvs_err_set(err, HVS_ECONFIG, "usage", "--config needs a file name");
            config_file = argv[++i];
            continue;
        }
        if (spec->flag_prefix) {
            int used = strncmp(argv[i], "--", 2) == 0
                           ? apply_flag(app, spec->flag_prefix, argc, argv, i, err)
                           : hvs_err_set(err, HVS_ECONFIG, "usage", "unexpected argument %.60s",
                                         argv[i]);
            if (used < 0) {
                hvs_log_error("config", "%s", err ? err->msg : "bad arguments");
                return used;
            }
            i += used - 1;
        }
    }

    int rc = hvs_config_load(app->sections, app->nsections, config_file, NULL, &app->kafka_props,
                             err);
    if (rc != HVS_OK) {
        hvs_log_error("config", "invalid configuration: %s", err ? err->msg : "");
        return rc;
    }
    hvs_log_level_t level;
    if (hvs_log_level_parse(app->cfg.log_level, &level) != HVS_OK) {
        rc = hvs_err_set(err, HVS_ECONFIG, "bad_value",
                         "HVS_LOG_LEVEL=\"%.40s\": expected debug, info, warn or error",
                         app->cfg.log_level);
        hvs_log_error("config", "invalid configuration: %s", err ? err->msg : "");
        return rc;
    }
    hvs_log_set_level(level);
    atomic_store(&g_shutdown_timeout_ms, (long long)app->cfg.shutdown_timeout_ms);
    if (!app->cfg.kafka_brokers || !app->cfg.kafka_brokers[0]) {
        rc = hvs_err_set(err, HVS_ECONFIG, "missing", "HVS_KAFKA_BROKERS is empty");
        hvs_log_error("config", "invalid configuration: %s", err ? err->msg : "");
        return rc;
    }
    rc = check_kafka_props(&app->kafka_props, err);
    if (rc != HVS_OK) {
        hvs_log_error("config", "invalid configuration: %s", err ? err->msg : "");
        return rc;
    }
    if (!app->cfg.kafka_group) {
        char group[96];
        snprintf(group, sizeof group, "%s", app->client_id);
        app->cfg.kafka_group = strdup(group);
        if (!app->cfg.kafka_group)
            return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    }
    rc = hvs_topics_configure(NULL, (int)app->cfg.topic_partitions, err);
    if (rc != HVS_OK) {
        hvs_log_error("config", "invalid configuration: %s", err ? err->msg : "");
        return rc;
    }

    if (!spec->no_watchdog)
        start_watchdog();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (spec->quiet) {
        if (hvs_log_enabled(HVS_LOG_DEBUG))
            hvs_config_log_effective(app->sections, app->nsections, &app->kafka_props);
    } else {
        hvs_log_fields(HVS_LOG_INFO, "app", "starting", HVS_LFS("version", HVS_VERSION),
                       HVS_LFS("client_id", app->client_id));
        hvs_config_log_effective(app->sections, app->nsections, &app->kafka_props);
    }

    app->metrics = hvs_metrics_new();
    if (!app->metrics)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "metrics registry: out of memory");
    char labels[160];
    snprintf(labels, sizeof labels, "version=\"%s\",worker=\"%s\"", HVS_VERSION, spec->worker);
    hvs_metric_set(hvs_metrics_gauge(app->metrics, "hvs_build_info",
                                     "build of this process (always 1)", labels),
                   1);

    if (!spec->no_http && app->cfg.http_port >= 0) {
        rc = hvs_http_start((uint16_t)app->cfg.http_port, app->cfg.http_bind_any, app->metrics,
                            app_ready, NULL, &app->http, err);
        if (rc != HVS_OK) {
            hvs_log_error("http", "cannot start the HTTP server: %s", err ? err->msg : "");
            return rc;
        }
        /* before the worker adds its routes: none is ever served unguarded */
        rc = hvs_http_set_admin_token(app->http, app->cfg.http_admin_token, err);
        if (rc != HVS_OK) {
            char why[HVS_ERR_MSG_MAX];
            snprintf(why, sizeof why, "%s", err ? err->msg : "invalid");
            rc = hvs_err_set(err, HVS_ECONFIG, "bad_value", "HVS_HTTP_ADMIN_TOKEN: %s", why);
            hvs_log_error("config", "invalid configuration: %s", err ? err->msg : "");
            return rc;
        }
        if (app->cfg.http_bind_any && !(app->cfg.http_admin_token && app->cfg.http_admin_token[0]))
            hvs_log_warn("http", "HVS_HTTP_ADMIN_TOKEN is not set: mutating routes (POST "
                                 "/train) answer 403 on all interfaces");
        hvs_log_fields(HVS_LOG_INFO, "http", "serving /metrics /healthz /readyz",
                       HVS_LFI("port", hvs_http_port(app->http)),
                       HVS_LFB("bind_any", app->cfg.http_bind_any));
    }
    return HVS_OK;
}

void hvs_app_fini(hvs_app_t *app) {
    if (!app)
        return;
    hvs_http_stop(app->http);
    app->http = NULL;
    hvs_metrics_destroy(app->metrics);
    app->metrics = NULL;
    hvs_config_fini(app->sections, app->nsections, &app->kafka_props);
    atomic_store(&g_ready_fn, NULL);
}

int hvs_app_main(const hvs_app_spec_t *spec, int argc, char **argv, hvs_app_run_fn run) {
    hvs_app_t app;
    hvs_err_t err = {0};
    int rc = hvs_app_init(&app, spec, argc, argv, &err);
    if (rc == 1) {
        hvs_app_fini(&app);
        return 0;
    }
    if (rc == HVS_OK) {
        rc = run(&app, spec->state, &err);
        if (rc != HVS_OK)
            hvs_log_error(spec->worker, "%s: %s", err.reason[0] ? err.reason : "error", err.msg);
        if (spec->cleanup)
            spec->cleanup(spec->state);
    }
    hvs_app_fini(&app);
    return rc == HVS_OK && !hvs_app_shutdown_was_incomplete() ? 0 : 1;
}

void hvs_app_keep_heap(void) {
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 16 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
}
