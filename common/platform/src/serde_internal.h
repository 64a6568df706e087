/*
 * Internal to the serde module; not part of the platform library's public contract.
 *
 * The module's files and what each owns:
 *   serde_catalog.c    the schema catalogue: embedded reader schemas, the fixed id table
 *                      (schema-ids.tsv), writer schemas by id, and the choice between the fixed
 *                      table and the Schema Registry (hvs_serde_new/destroy, names and kinds)
 *   schema_registry.c  the Schema Registry REST client (schema_registry.h)
 *   serde_precheck.c   the bounds pre-check of a binary Avro body before avro-c reads it
 *   serde.c            encoders, decoders, the wire header and field accessors
 *   serde_json.c       natural JSON <-> Avro, schema defaults, resolution of older writers
 */
#ifndef HVS_SERDE_INTERNAL_H
#define HVS_SERDE_INTERNAL_H

#include <avro.h>
#include <jansson.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/serde.h"
#include "schema_registry.h"


/* (record full name, field) -> default JSON, scanned from schema texts. Owns its json refs. */
typedef struct hvs_defaults hvs_defaults_t;

/* A writer schema known by id: the fixed table's, one registered or fetched from the registry,
 * or one added at run time. */
typedef struct hvs_writer_schema {
    int32_t id;
    avro_schema_t schema; /* owned by the catalogue */
    int kind;             /* hvs_schema_kind_t it is a version of, or -1 */
} hvs_writer_schema_t;

/* The catalogue (serde_catalog.c). Encoders and decoders read `current` and `defaults`. */
struct hvs_serde {
    hvs_schema_registry_t *registry; /* NULL: ids from the fixed table */
    hvs_writer_schema_t *ws;
    size_t nws, capws;
    avro_schema_t current[HVS_SCHEMA_COUNT];
    char *current_json[HVS_SCHEMA_COUNT];
    int32_t current_id[HVS_SCHEMA_COUNT]; /* fixed table; registry ids are per subject */
    hvs_defaults_t *defaults;
};

/* ---- catalogue (serde_catalog.c) ------------------------------------------------------------ */

/*
 * Writer schema of `id`: known already, else fetched from the registry when there is one.
 * Returns it (owned by `s`, valid until hvs_serde_destroy), or NULL with err->reason
 * HVS_SERDE_R_UNKNOWN_SCHEMA, HVS_SERDE_R_REGISTRY or an out-of-memory error.
 */
const hvs_writer_schema_t *hvs_serde_writer(hvs_serde_t *s, int32_t id, hvs_err_t *err);

/*
 * Schema id an encoder of `kind` writing to `topic` puts in its header: the fixed table's, or
 * the id the registry gives for subject "<topic>-value" (registering the schema; a NULL topic
 * uses the record's full name). 0 and *id, or an error (HVS_SERDE_R_REGISTRY).
 */
int hvs_serde_encoder_id(hvs_serde_t *s, hvs_schema_kind_t kind, const char *topic, int32_t *id,
                         hvs_err_t *err);

/* ---- bounds pre-check (serde_precheck.c) ---------------------------------------------------- */

/* A writer schema compiled once for the pre-check. */
typedef struct hvs_serde_precheck hvs_serde_precheck_t;

/* Compile `schema`; NULL when out of memory or nested deeper than the pre-check follows (64).
 * Free with hvs_serde_precheck_destroy (NULL-safe). */
hvs_serde_precheck_t *hvs_serde_precheck_new(avro_schema_t schema);
void hvs_serde_precheck_destroy(hvs_serde_precheck_t *k);

/*
 * Walk one binary Avro value of the compiled schema from *p, checking every length and block
 * count against the bytes before `end`. 0 = fits (*p is just past the value), 1 = the bytes end
 * before the value does, -1 = not valid Avro (*p is where that was found).
 */
int hvs_serde_precheck_run(const hvs_serde_precheck_t *k, const unsigned char **p,
                           const unsigned char *end);

/* ---- JSON, defaults and resolution (serde_json.c) ------------------------------------------- */

/* An empty defaults table, or NULL when out of memory; hvs_defaults_destroy (NULL-safe) frees
 * it and every default it holds. */
hvs_defaults_t *hvs_defaults_new(void);
void hvs_defaults_destroy(hvs_defaults_t *d);
/* Record every field default found anywhere in `schema_json`. */
int hvs_defaults_scan(hvs_defaults_t *d, const char *schema_json, hvs_err_t *err);
/* Default of record `fullname` field `field`, or NULL. Borrowed. */
json_t *hvs_defaults_get(const hvs_defaults_t *d, const char *fullname, const char *field);

/* Set every field of record `v` that has a default to it (nested records too). The field
 * defaults of each record schema are looked up once and memoized in `d` by schema pointer. */
int hvs_serde_apply_defaults(hvs_defaults_t *d, avro_value_t *v, hvs_err_t *err);

/* Set `v` from JSON `j` (natural mapping); `path` names the field for errors. */
int hvs_serde_set_json(hvs_defaults_t *d, avro_value_t *v, json_t *j, const char *path,
                       hvs_err_t *err);

/* Copy writer-schema value `src` into reader-schema value `dst` (already reset): record fields
 * by name, reader-only fields from defaults, enums by symbol, numeric promotions. */
int hvs_serde_resolve_copy(hvs_defaults_t *d, avro_value_t *src, avro_value_t *dst,
                           const char *path, hvs_err_t *err);

/* Full name "ns.name" of a named schema into buf. */
const char *hvs_serde_fullname(avro_schema_t s, char *buf, size_t len);

#endif
