/*
 * The topic table. Every building-keyed topic shares one partition count so the pipeline is
 * co-partitioned (docs/design.md §2); `models` is one partition (a small compacted registry).
 * Dead-letter topics are not co-partitioned: they are read by people and tools, not joined.
 */
#include "hvs/topics.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAYS(n) ((int64_t)(n)*24 * 3600 * 1000)
#define DLQ_PARTITIONS 3

/* logical, env, schema, keyed, compacted, partitions, retention, dlq, doc */
static hvs_topic_t g_topics[] = {
    {"readings.raw", "HVS_TOPIC_READINGS_RAW", HVS_SCHEMA_READING, true, false, 0, DAYS(7),
     "readings.dlq", "one apartment's readings at one instant (devices, simulator, hvsctl ingest)",
     "", 0},
    {"topology", "HVS_TOPIC_TOPOLOGY", HVS_SCHEMA_BUILDING, true, true, 0, -1, "topology.dlq",
     "buildings: archetype, commissioning date, location, apartments (compacted)", "", 0},
    {"aggregates.15m", "HVS_TOPIC_AGGREGATES_15M", HVS_SCHEMA_AGGREGATE, true, false, 0, DAYS(14),
     "aggregates.15m.dlq", "15-minute building totals (feeds the refresher)", "", 0},
    {"aggregates.hourly", "HVS_TOPIC_AGGREGATES_HOURLY", HVS_SCHEMA_AGGREGATE, true, false, 0,
     DAYS(30), "aggregates.hourly.dlq", "hourly per-apartment and per-building aggregates", "", 0},
    {"weather.hourly", "HVS_TOPIC_WEATHER_HOURLY", HVS_SCHEMA_WEATHER, true, false, 0, DAYS(30),
     "weather.hourly.dlq", "observed and forecast weather hours with issued_at", "", 0},
    {"features.hourly", "HVS_TOPIC_FEATURES_HOURLY", HVS_SCHEMA_FEATURE_VECTOR, true, false, 0,
     DAYS(30), "features.hourly.dlq", "named feature vectors with quality flags", "", 0},
    {"scores.anomaly", "HVS_TOPIC_SCORES_ANOMALY", HVS_SCHEMA_ANOMALY_SCORE, true, false, 0,
     DAYS(14), "scores.anomaly.dlq", "anomaly scores with model version and reasons", "", 0},
    {"forecasts.baseline", "HVS_TOPIC_FORECASTS_BASELINE", HVS_SCHEMA_FORECAST, true, false, 0,
     DAYS(14), "forecasts.baseline.dlq", "72 hourly points with intervals per building", "", 0},
    {"forecasts.refreshed", "HVS_TOPIC_FORECASTS_REFRESHED", HVS_SCHEMA_FORECAST, true, false, 0,
     DAYS(7), "forecasts.refreshed.dlq", "next 1-3 h, baseline + correction, every 15 min", "", 0},
    {"alerts", "HVS_TOPIC_ALERTS", HVS_SCHEMA_ALERT, true, false, 0, DAYS(90), "alerts.dlq",
     "alerts for downstream apps", "", 0},
    {"alerts.feedback", "HVS_TOPIC_ALERTS_FEEDBACK", HVS_SCHEMA_FEEDBACK, true, false, 0, -1,
     "alerts.feedback.dlq", "technician labels (training data: kept forever)", "", 0},
    {"models", "HVS_TOPIC_MODELS", HVS_SCHEMA_MODEL_VERSION, false, true, 1, -1, "models.dlq",
     "model registry: versions, approvals, model bytes (compacted, key = <name>#<version>)", "",
     HVS_TOPIC_MODELS_MAX_MESSAGE},

    {"readings.dlq", "HVS_TOPIC_READINGS_DLQ", HVS_SCHEMA_DEAD_LETTER, false, false, DLQ_PARTITIONS,
     DAYS(30), NULL, "dead letters of readings.raw", "", 0},
    {"topology.dlq", "HVS_TOPIC_TOPOLOGY_DLQ", HVS_SCHEMA_DEAD_LETTER, false, false, DLQ_PARTITIONS,
     DAYS(30), NULL, "dead letters of topology", "", 0},
    {"aggregates.15m.dlq", "HVS_TOPIC_AGGREGATES_15M_DLQ", HVS_SCHEMA_DEAD_LETTER, false, false,
     DLQ_PARTITIONS, DAYS(30), NULL, "dead letters of aggregates.15m", "", 0},
    {"aggregates.hourly.dlq", "HVS_TOPIC_AGGREGATES_HOURLY_DLQ", HVS_SCHEMA_DEAD_LETTER, false,
     false, DLQ_PARTITIONS, DAYS(30), NULL, "dead letters of aggregates.hourly", "", 0},
    {"weather.hourly.dlq", "HVS_TOPIC_WEATHER_HOURLY_DLQ", HVS_SCHEMA_DEAD_LETTER, false, false,
     DLQ_PARTITIONS, DAYS(30), NULL, "dead letters of weather.hourly", "", 0},
    {"features.hourly.dlq", "HVS_TOPIC_FEATURES_HOURLY_DLQ", HVS_SCHEMA_DEAD_LETTER, false, false,
     DLQ_PARTITIONS, DAYS(30), NULL, "dead letters of features.hourly", "", 0},
    {"scores.anomaly.dlq", "HVS_TOPIC_SCORES_ANOMALY_DLQ", HVS_SCHEMA_DEAD_LETTER, false, false,
     DLQ_PARTITIONS, DAYS(30), NULL, "dead letters of scores.anomaly", "", 0},
    {"forecasts.baseline.dlq", "HVS_TOPIC_FORECASTS_BASELINE_DLQ", HVS_SCHEMA_DEAD_LETTER, false,
     false, DLQ_PARTITIONS, DAYS(30), NULL, "dead letters of forecasts.baseline", "", 0},
    {"forecasts.refreshed.dlq", "HVS_TOPIC_FORECASTS_REFRESHED_DLQ", HVS_SCHEMA_DEAD_LETTER, false,
     false, DLQ_PARTITIONS, DAYS(30), NULL, "dead letters of forecasts.refreshed", "", 0},
    {"alerts.dlq", "HVS_TOPIC_ALERTS_DLQ", HVS_SCHEMA_DEAD_LETTER, false, false, DLQ_PARTITIONS,
     DAYS(30), NULL, "dead letters of alerts", "", 0},
    {"alerts.feedback.dlq", "HVS_TOPIC_ALERTS_FEEDBACK_DLQ", HVS_SCHEMA_DEAD_LETTER, false, false,
     DLQ_PARTITIONS, DAYS(30), NULL, "dead letters of alerts.feedback", "", 0},
    {"models.dlq", "HVS_TOPIC_MODELS_DLQ", HVS_SCHEMA_DEAD_LETTER, false, false, 1, DAYS(30), NULL,
     "dead letters of models", "", 0},
};

#define NTOPICS (sizeof g_topics / sizeof g_topics[0])

static int g_partitions = HVS_TOPIC_DEFAULT_PARTITIONS;
static int g_configured;

static void set_defaults(void) {
    for (size_t i = 0; i < NTOPICS; i++)
        if (!g_topics[i].name[0])
            snprintf(g_topics[i].name, sizeof g_topics[i].name, "%s", g_topics[i].logical);
    g_configured = 1;
}

/* Legal Kafka topic name: [a-zA-Z0-9._-], 1..249 chars. */
static int topic_name_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= HVS_TOPIC_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

static const char *env_lookup(char *const *envp, const char *name) {
    size_t n = strlen(name);
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

int hvs_topics_configure(char *const *envp, int partitions, hvs_err_t *err) {
    extern char **environ;
    if (!envp)
        envp = environ;
    if (partitions > HVS_MAX_PARTITIONS)
        return hvs_err_set(err, HVS_ECONFIG, "bad_partitions",
                           "%d partitions: at most %d per topic", partitions, HVS_MAX_PARTITIONS);
    if (partitions > 0)
        g_partitions = partitions;
    for (size_t i = 0; i < NTOPICS; i++) {
        const char *v = env_lookup(envp, g_topics[i].env);
        if (v && !topic_name_valid(v))
            return hvs_err_set(err, HVS_ECONFIG, "bad_topic_name",
                               "%s=\"%.64s\": a topic name is 1-199 characters of [a-zA-Z0-9._-]",
                               g_topics[i].env, v);
        snprintf(g_topics[i].name, sizeof g_topics[i].name, "%s", v ? v : g_topics[i].logical);
    }
    g_configured = 1;
    return HVS_OK;
}

const hvs_topic_t *hvs_topics_all(size_t *n) {
    if (!g_configured)
        set_defaults();
    if (n)
        *n = NTOPICS;
    return g_topics;
}

const hvs_topic_t *hvs_topic_get(const char *logical) {
    if (!g_configured)
        set_defaults();
    for (size_t i = 0; i < NTOPICS; i++)
        if (strcmp(g_topics[i].logical, logical) == 0)
            return &g_topics[i];
    return NULL;
}

const char *hvs_topic_name(const char *logical) {
    const hvs_topic_t *t = hvs_topic_get(logical);
    return t ? t->name : logical;
}

const hvs_topic_t *hvs_topic_by_name(const char *name) {
    if (!g_configured)
        set_defaults();
    for (size_t i = 0; i < NTOPICS; i++)
        if (strcmp(g_topics[i].name, name) == 0)
            return &g_topics[i];
    return NULL;
}

int hvs_topic_partitions(const hvs_topic_t *t) {
    return t->building_keyed ? g_partitions : t->partitions;
}

const char *hvs_topic_dlq_name(const char *name, char *buf, size_t buflen) {
    const hvs_topic_t *t = hvs_topic_by_name(name);
    if (t && t->dlq_logical)
        snprintf(buf, buflen, "%s", hvs_topic_name(t->dlq_logical));
    else
        snprintf(buf, buflen, "%s.dlq", name);
    return buf;
}
