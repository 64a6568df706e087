/*
 * hvsctl: the operator's command line for hvacstream. Settings come from HVS_* like every
 * worker (HVS_KAFKA_BROKERS, HVS_SCHEMA_REGISTRY_URL, ...); see `hvsctl --help`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/log.h"
#include "hvs/profile.h"
#include "hvsctl.h"

static const char *const usage =
    "Usage: hvsctl COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  topics create [--partitions N] [--replication N]   create the pipeline's topics (idempotent)\n"
    "  topics list                                         topics on the cluster\n"
    "  tail TOPIC [--from-beginning] [--max N] [--follow] [--partition P]\n"
    "                                                      print a topic as JSON lines\n"
    "  ingest [FILE|-] [--topic T] [--timeout S]           raw meter JSON lines -> readings.raw\n"
    "  weather import FILE [--building ID] ...             own hourly weather (CSV, JSON lines)\n"
    "                                                      -> weather.hourly, OBSERVED\n"
    "  topology load FILE|list|show ID|delete ID           onboard buildings (JSON lines or CSV,\n"
    "                                                      validated whole) on `topology`\n"
    "  dlq show [--topic T] [--max N] [--follow]           dead letters with their reasons\n"
    "  model list|show|approve|reject|rollback|export ...  model versions, approval, rollback,\n"
    "                                                      export for Python\n"
    "  train NAME|all [--trainer URL]                     train a model now (hvs-trainer)\n"
    "  alerts list|show|ack|resolve ...                    the alert book (Redis): the daily list,\n"
    "                                                      an alert, a technician's feedback\n"
    "  score --model NAME[:VERSION] FILE.csv|FILE.jsonl     score feature rows with a model -> CSV\n"
    "\n"
    "`hvsctl COMMAND --help` explains a command.";

bool hvsctl_wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

long hvsctl_parse_count(const char *opt, const char *value) {
    char *end;
    long v = value ? strtol(value, &end, 10) : -1;
    if (!value || *end || v < 0) {
        fprintf(stderr, "hvsctl: %s needs a non-negative number\n", opt);
        return -1;
    }
    return v;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--version") == 0) {
        /* hvs_app_init prints --help (with every setting) and --version */
        hvs_app_t app;
        hvs_app_spec_t spec = {.worker = "hvsctl",
                               .summary = "operate hvacstream",
                               .usage = usage,
                               .no_http = true,
                               .quiet = true};
        char *help_argv[] = {argv[0], argc < 2 ? "--help" : argv[1], NULL};
        hvs_err_t err;
        int rc = hvs_app_init(&app, &spec, 2, help_argv, &err);
        hvs_app_fini(&app);
        return argc < 2 ? 2 : (rc > 0 ? 0 : 1);
    }
    static const struct {
        const char *name;
        int (*fn)(hvs_app_t *, int, char **);
    } commands[] = {
        /* clang-format off */
        {"topics", hvsctl_topics},
        {"tail", hvsctl_tail},
        {"ingest", hvsctl_ingest},
        {"dlq", hvsctl_dlq},
        {"model", hvsctl_model},
        {"train", hvsctl_train},
        {"alerts", hvsctl_alerts},
        {"weather", hvsctl_weather},
        {"score", hvsctl_score},
        {"topology", hvsctl_topology},
        /* clang-format on */
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        hvs_app_t app;
        hvs_app_spec_t spec = {.worker = "hvsctl",
                               .summary = "operate hvacstream",
                               .usage = usage,
                               .no_http = true,
                               .quiet = true,
                               .log_stderr = true};
        hvs_err_t err;
        /* Commands parse their own options; the app reads only the environment. */
        int rc = hvs_app_init(&app, &spec, 0, NULL, &err);
        if (rc != 0) {
            fprintf(stderr, "hvsctl: %s\n", err.msg);
            hvs_app_fini(&app);
            return 2;
        }
        /* Tools talk to people: logs (warnings and up) go to stderr, results to stdout. */
        hvs_log_level_t level = HVS_LOG_WARN;
        hvs_log_level_parse(app.cfg.log_level, &level);
        hvs_log_init("hvsctl", level == HVS_LOG_INFO ? HVS_LOG_WARN : level, stderr);
        /* the deployment's profile (profile.h): ingest's sensors, score's rows and models */
        if (hvs_profile_load(app.cfg.profile, app.cfg.profile_file, &err)) {
            fprintf(stderr, "hvsctl: %s\n", err.msg);
            hvs_app_fini(&app);
            return 2;
        }
        rc = commands[i].fn(&app, argc - 2, argv + 2);
        hvs_app_fini(&app);
        return rc;
    }
    fprintf(stderr, "hvsctl: unknown command \"%s\"\n\n%s\n", argv[1], usage);
    return 2;
}
