/*
 * topics.h - the pipeline's topic table (docs/design.md §2): one row per topic with its partitions,
 * compaction, retention, value schema and dead-letter topic. hvs-devbroker creates topics from it
 * and `hvsctl topics create` creates them on a real cluster, so both agree.
 *
 * Names: each logical name ("readings.raw") can be renamed by an environment variable
 * HVS_TOPIC_<NAME> with dots/dashes as underscores, upper case (HVS_TOPIC_READINGS_RAW).
 * hvs_topics_configure applies renames and the partition count; call it once at start-up before
 * any other thread runs. All returned strings are static (owned by this module).
 * Thread-safety: read-only after hvs_topics_configure.
 */
#ifndef HVS_TOPICS_H
#define HVS_TOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/serde.h"

#define HVS_TOPIC_NAME_MAX 200
#define HVS_TOPIC_DEFAULT_PARTITIONS 12
/* Most partitions a building-keyed topic may have: the bound of HVS_TOPIC_PARTITIONS, of
 * `hvsctl topics create --partitions` and `hvs-devbroker --partitions`, and the size of the
 * per-partition tables of the workers that keep state per partition (aggregator, features). */
#define HVS_MAX_PARTITIONS 1024

typedef struct hvs_topic {
    const char *logical;     /* "readings.raw": the name in docs/design.md and code */
    const char *env;         /* "HVS_TOPIC_READINGS_RAW" */
    int schema;              /* hvs_schema_kind_t of the values */
    bool building_keyed;     /* co-partitioned: uses the shared partition count */
    bool compacted;          /* cleanup.policy=compact */
    int partitions;          /* fixed count when !building_keyed */
    int64_t retention_ms;    /* -1 = forever */
    const char *dlq_logical; /* logical name of its dead-letter topic; NULL for a DLQ itself */
    const char *doc;
    char name[HVS_TOPIC_NAME_MAX]; /* effective name after renames */
    int64_t max_message_bytes;     /* topic max.message.bytes; 0 = the broker's default (~1 MB) */
} hvs_topic_t;

/* Largest record on `models` (a ModelVersion with its trees): topic max.message.bytes, and the
 * message.max.bytes of the producers that write there (trainer, hvsctl model). */
#define HVS_TOPIC_MODELS_MAX_MESSAGE 16777216 /* 16 MiB */
#define HVS_TOPIC_STR_(x) #x
#define HVS_TOPIC_MODELS_MAX_MESSAGE_STR HVS_TOPIC_STR_(16777216)

/* Apply HVS_TOPIC_* renames from `envp` (NULL = environ) and the shared partition count
 * (`partitions` <= 0 keeps the default). Fails with HVS_ECONFIG on an empty/oversized name or a
 * partition count above HVS_MAX_PARTITIONS (nothing is changed then). */
int hvs_topics_configure(char *const *envp, int partitions, hvs_err_t *err);

/* Every topic; *n gets the count. */
const hvs_topic_t *hvs_topics_all(size_t *n);
/* Row for a logical name, or NULL. */
const hvs_topic_t *hvs_topic_get(const char *logical);
/* Effective name for a logical name; the logical name itself if unknown. */
const char *hvs_topic_name(const char *logical);
/* Row whose effective name is `name`, or NULL. */
const hvs_topic_t *hvs_topic_by_name(const char *name);
/* Effective partition count of a row. */
int hvs_topic_partitions(const hvs_topic_t *t);
/*
 * Effective dead-letter topic name for a source topic's effective name: the table's DLQ for
 * known topics (readings.raw -> readings.dlq), else "<name>.dlq".
 * Writes into buf; returns buf.
 */
const char *hvs_topic_dlq_name(const char *name, char *buf, size_t buflen);

#endif
