/*
 * config.h - table-driven configuration from HVS_* environment variables and an optional file.
 *
 * A component declares its settings as a table of hvs_cfg_entry_t rows (name, type, default,
 * bounds, offsetof(target struct, field), flags, help), like Redis's static_configs[]. One table
 * gives parsing, validation, --help and the effective-config log.
 *
 * Sources, later wins: the row's default < the config file < the environment. The file is named
 * by HVS_CONFIG_FILE (or passed explicitly) and holds "HVS_NAME=value" lines; '#' comments.
 * Validation: a value that does not parse or is out of bounds and a missing HVS_CFG_REQUIRED
 * value stop start-up: hvs_config_load returns HVS_ECONFIG with the key's name in err->msg.
 * Unknown names are scoped, so that one ConfigMap can serve every worker and a user's own HVS_SRC
 * stops nothing; by the name's HVS_<WORD>_ prefix, for a name no table row knows:
 *   - the prefix of a row of the loaded tables (the program's own, e.g. HVS_AGG_ in
 *     hvs-aggregator) or a common prefix of hvs_config_prefixes (owner NULL: HVS_REDIS_,
 *     HVS_HTTP_, HVS_LOG_, HVS_SCHEMA_, HVS_SHUTDOWN_, HVS_CONFIG_): refused, HVS_ECONFIG with
 *     reason "unknown_key" and the name in err->msg (a typo);
 *   - another program's prefix in hvs_config_prefixes (HVS_FC_ in hvs-aggregator): accepted
 *     silently, ignored;
 *   - any other (HVS_SRC, HVS_AGGREGATOR_X): accepted, and one warn line per load lists them all.
 * HVS_KAFKA_* and HVS_TOPIC_* are the exceptions below; a typo there is refused by their
 * validators (HVS_KAFKA_BROKRES: hvs_app_init's librdkafka check, "No such configuration
 * property"; HVS_TOPIC_READINGS_RAWW: not a topic of topics.h's table, refused here).
 * Pass-through prefixes: HVS_KAFKA_<PROP> (not itself a row) becomes the librdkafka property
 * <prop> lower-cased with '_' -> '.', e.g. HVS_KAFKA_SECURITY_PROTOCOL -> security.protocol.
 * HVS_TOPIC_<NAME> renames a topic of topics.h's table (and HVS_TOPIC_PARTITIONS is a row).
 *
 * Ownership: string fields of the target struct are malloc'd by the loader and freed by
 * hvs_config_fini (pointers are set to NULL). The pass-through list is owned by hvs_config_t.
 * Thread-safety: load once at start-up, before threads.
 */
#ifndef HVS_CONFIG_H
#define HVS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hvs/err.h"

typedef enum hvs_cfg_type {
    HVS_CFG_STRING,   /* char *            */
    HVS_CFG_INT,      /* int64_t            */
    HVS_CFG_DOUBLE,   /* double             */
    HVS_CFG_BOOL,     /* bool: true/false/1/0/yes/no/on/off */
    HVS_CFG_DURATION, /* int64_t ms: "250ms", "30s", "5m", "48h", "2d", or a plain ms number */
} hvs_cfg_type_t;

#define HVS_CFG_SECRET 0x1u   /* masked in logs and dumps */
#define HVS_CFG_REQUIRED 0x2u /* must be set (no default) */

typedef struct hvs_cfg_entry {
    const char *name; /* "HVS_KAFKA_BROKERS" */
    hvs_cfg_type_t type;
    const char *def; /* default as text; NULL = unset (strings stay NULL) */
    double min, max; /* bounds for INT/DOUBLE/DURATION(ms); min == max == 0: unbounded */
    size_t offset;   /* offsetof(struct, field) */
    unsigned flags;
    const char *help;
} hvs_cfg_entry_t;

/* A table and the struct it fills. */
typedef struct hvs_cfg_section {
    const char *title; /* "common", "aggregator": a heading for --help */
    const hvs_cfg_entry_t *entries;
    size_t n;
    void *target;
} hvs_cfg_section_t;

/* librdkafka properties collected from HVS_KAFKA_* pass-through: key, value, ..., NULL. */
typedef struct hvs_config_passthrough {
    char **kv;
    size_t n; /* number of strings (2 per property), excluding the NULL */
} hvs_config_passthrough_t;

/* Who reads the names under an HVS_<WORD>_ prefix: owner "hvs-aggregator" for HVS_AGG_, NULL for
 * the common prefixes every program reads. The one table of known prefixes, ended by {NULL}. */
typedef struct hvs_cfg_prefix {
    const char *prefix; /* "HVS_AGG_" */
    const char *owner;  /* "hvs-aggregator"; NULL = common */
} hvs_cfg_prefix_t;
extern const hvs_cfg_prefix_t hvs_config_prefixes[];
/* The row of hvs_config_prefixes for `name`'s HVS_<WORD>_ prefix, or NULL. */
const hvs_cfg_prefix_t *hvs_config_prefix_of(const char *name);

/*
 * Load every section from defaults, `file` (NULL = $HVS_CONFIG_FILE if set) and `envp`
 * (NULL = environ). Fills the targets and `pt` (may be NULL to ignore pass-through).
 * On error the targets may be partly filled: call hvs_config_fini anyway.
 */
int hvs_config_load(const hvs_cfg_section_t *sections, size_t nsections, const char *file,
                    char *const *envp, hvs_config_passthrough_t *pt, hvs_err_t *err);
void hvs_config_fini(const hvs_cfg_section_t *sections, size_t nsections,
                     hvs_config_passthrough_t *pt);

/* One line per setting, "HVS_X = value" with secrets as "****", written to the log (info). */
void hvs_config_log_effective(const hvs_cfg_section_t *sections, size_t nsections,
                              const hvs_config_passthrough_t *pt);
/* --help text: every setting with type, default, bounds and help. */
void hvs_config_print_help(FILE *out, const hvs_cfg_section_t *sections, size_t nsections);

/* Parse a duration ("30s", "48h", "250ms", "1500") to ms: 0 or HVS_EINVAL. */
int hvs_config_parse_duration(const char *s, int64_t *ms);

#endif
