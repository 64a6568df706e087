/*
 * app.h - what every executable does at start and stop, in one place:
 *   --help / --version, configuration (common table + the worker's own), JSON logging, the
 *   effective configuration logged with secrets masked, SIGTERM/SIGINT handling (a flag; the
 *   consume loop finishes its batch, commits and leaves), the topic table's renames, the metrics
 *   registry, and the HTTP server for /metrics, /healthz, /readyz.
 *
 * Common settings (every worker): HVS_KAFKA_BROKERS, HVS_KAFKA_GROUP (default hvs-<worker>),
 * HVS_KAFKA_FETCH_WAIT_MAX_MS, HVS_KAFKA_* pass-through, HVS_REDIS_URL, HVS_SCHEMA_REGISTRY_URL,
 * HVS_HTTP_PORT (0 = any, -1 = off), HVS_HTTP_BIND_ANY, HVS_HTTP_ADMIN_TOKEN (secret: the
 * bearer token of mutating HTTP routes, http.h; tools send it), HVS_LOG_LEVEL,
 * HVS_TOPIC_PARTITIONS, HVS_TOPIC_<NAME>, HVS_SHUTDOWN_TIMEOUT (duration, default 10s: the bound
 * of the whole shutdown, see hvs_app_shutdown_left_ms), HVS_CALENDAR_FILE, HVS_PROFILE and
 * HVS_PROFILE_FILE (read by the executables that use them: hvs_profile_load, profile.h).
 *
 * Ownership: hvs_app_t is the caller's (usually on main's stack); hvs_app_init fills it and
 * hvs_app_fini frees what init allocated (safe after a failed init).
 * Thread-safety: init/fini on the main thread; hvs_app_running/hvs_app_request_stop are
 * async-signal-safe and callable from any thread.
 * Errors: hvs_app_init returns 0 to run, 1 when it already did what was asked (--help,
 * --version: exit 0), or a negative hvs_rc_t (it logged why: exit non-zero).
 */
#ifndef HVS_APP_H
#define HVS_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "hvs/config.h"
#include "hvs/err.h"
#include "hvs/http.h"
#include "hvs/kafka.h"
#include "hvs/metrics.h"

typedef struct hvs_common_config {
    char *kafka_brokers;
    char *kafka_group;
    int64_t kafka_fetch_wait_max_ms;
    char *redis_url;
    char *schema_registry_url;
    int64_t http_port;
    bool http_bind_any;
    char *http_admin_token; /* NULL = none */
    char *log_level;
    int64_t topic_partitions;
    char *calendar_file; /* HVS_CALENDAR_FILE; NULL = the built-in regions only (calendar.h) */
    char *profile;       /* HVS_PROFILE: what the deployment meters (profile.h), default heat */
    char *profile_file;  /* HVS_PROFILE_FILE; NULL = the built-in profiles only */
    int64_t shutdown_timeout_ms;
} hvs_common_config_t;

typedef struct hvs_app {
    const char *worker; /* "aggregator" */
    char client_id[64]; /* "hvs-aggregator" */
    hvs_common_config_t cfg;
    hvs_config_passthrough_t kafka_props;
    hvs_cfg_section_t sections[4]; /* common + the worker's own */
    size_t nsections;
    hvs_metrics_t *metrics;
    hvs_http_t *http;
} hvs_app_t;

/* What a worker tells hvs_app_init about itself. */
typedef struct hvs_app_spec {
    const char *worker;             /* short name: "aggregator", "devbroker", "hvsctl" */
    const char *summary;            /* one line for --help */
    const char *usage;              /* extra usage text for --help (may be NULL) */
    const hvs_cfg_section_t *extra; /* the worker's own tables (may be NULL) */
    size_t nextra;                  /* at most 3 */
    bool no_http;                   /* CLI tools: no server */
    bool quiet;                     /* CLI tools: log the effective config at debug, not info */
    bool log_stderr;                /* stdout carries data (tools): logs go to stderr */
    bool no_watchdog; /* do not end the process at the shutdown bound (see below; tests) */
    /* Command-line flags for the worker's own settings: with flag_prefix "HVS_SIM_", the flag
     * "--apartments-per-building 20" (or "--apartments-per-building=20") sets the row
     * HVS_SIM_APARTMENTS_PER_BUILDING of an extra section, overriding file and environment; a
     * boolean row's flag may stand alone ("--clean" = true). Any other argument is an error.
     * NULL: arguments other than --help/--version/--config are left to the caller. */
    const char *flag_prefix;
    /* A worker's state (usually a static struct: large, zeroed, living for the process), handed
     * to run and then to cleanup, which frees what run created (also after a failed run). */
    void *state;
    void (*cleanup)(void *state);
} hvs_app_spec_t;

int hvs_app_init(hvs_app_t *app, const hvs_app_spec_t *spec, int argc, char **argv, hvs_err_t *err);
void hvs_app_fini(hvs_app_t *app);

/* A worker's whole main(): hvs_app_init, then run(app, spec->state, err) when init says to
 * run, a failure logged with its reason and message, spec->cleanup(spec->state), hvs_app_fini.
 * Returns the process exit status: 0 (ran and returned 0, or --help/--version), 1 otherwise. */
typedef int (*hvs_app_run_fn)(hvs_app_t *app, void *state, hvs_err_t *err);
int hvs_app_main(const hvs_app_spec_t *spec, int argc, char **argv, hvs_app_run_fn run);

/* For workers whose every batch allocates and frees the same megabytes (librdkafka's fetch and
 * decompression buffers, the producer's copies, the state's commands): keep freed memory in the
 * heap (up to 64 MB) and serve blocks below 4 MB from it, instead of returning them to the
 * kernel and faulting them in again at the next batch. Call first thing in main. */
void hvs_app_keep_heap(void);

/* Readiness for /readyz (set by the worker's loop; thread-safe). */
void hvs_app_set_ready(hvs_app_t *app, hvs_http_ready_fn fn, void *opaque);

/* The kafka conf for this app (pointers into app; valid until fini). */
void hvs_app_kafka_conf(const hvs_app_t *app, hvs_kafka_conf_t *conf);

bool hvs_app_running(void);
void hvs_app_request_stop(void);

/*
 * The shutdown bound (HVS_SHUTDOWN_TIMEOUT). The clock starts at the first SIGTERM/SIGINT or
 * hvs_app_request_stop, or at hvs_app_shutdown_begin (the loop leaving for any other reason, e.g.
 * an error): everything shutdown waits for (the batch's flush, the final flush, the consumer's
 * close, the producer's destroy) waits at most hvs_app_shutdown_left_ms(): the whole bound before
 * the clock starts, then what is left of it (0 once passed). What was not acknowledged in time
 * is logged by whoever gave up, which calls hvs_app_shutdown_incomplete; hvs_app_main then exits
 * 1 even when run returned 0. Thread-safe; begin is idempotent.
 */
void hvs_app_shutdown_begin(void);
/* The guarantee: hvs_app_init starts a watchdog thread (unless spec->no_watchdog) that ends the
 * process with _exit(1) 1.5 s after the bound has passed, logging "shutdown bound passed" with
 * the count `fn` reports as undelivered (the stage's producer, hvs_app_set_unacknowledged; -1
 * when none): a blocking teardown (librdkafka's destroy of a handle whose broker is gone) cannot
 * stretch the shutdown. A worker that needs longer after SIGTERM raises HVS_SHUTDOWN_TIMEOUT. */
void hvs_app_set_unacknowledged(int (*fn)(void *opaque), void *opaque);
int64_t hvs_app_shutdown_left_ms(void);
void hvs_app_shutdown_incomplete(void);
bool hvs_app_shutdown_was_incomplete(void);

#endif
