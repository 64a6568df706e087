/*
 * Internal to the serde module (serde.c, serde_json.c): schema defaults and value resolution.
 * Not part of the common library's public contract.
 */
#ifndef HVS_SERDE_INTERNAL_H
#define HVS_SERDE_INTERNAL_H

#include <avro.h>
#include <jansson.h>

#include "hvs/err.h"

/* (record full name, field) -> default JSON, scanned from schema texts. Owns its json refs. */
typedef struct hvs_defaults hvs_defaults_t;

hvs_defaults_t *hvs_defaults_new(void);
void hvs_defaults_free(hvs_defaults_t *d);
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
