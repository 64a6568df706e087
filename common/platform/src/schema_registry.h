/*
 * schema_registry.h - the Confluent Schema Registry REST client the serde catalogue uses when
 * HVS_SCHEMA_REGISTRY_URL is set (internal to the serde module: callers go through serde.h).
 *
 * Two calls: register a schema under a subject (POST /subjects/<subject>/versions) and fetch a
 * schema by id (GET /schemas/ids/<id>), over libcurl with a 3 s connect and 10 s total timeout.
 * Registrations are cached for the life of the client, so encoders re-created for the same topic
 * do not POST again.
 * Ownership: hvs_schema_registry_new / hvs_schema_registry_destroy (NULL-safe).
 * Thread-safety: none (one CURL handle); it belongs to one hvs_serde_t.
 * Errors: reason HVS_SERDE_R_REGISTRY (unreachable, non-2xx, not JSON, no id) or
 * HVS_SERDE_R_UNKNOWN_SCHEMA (an id the registry does not know).
 */
#ifndef HVS_SCHEMA_REGISTRY_H
#define HVS_SCHEMA_REGISTRY_H

#include <stdint.h>

#include "hvs/err.h"

typedef struct hvs_schema_registry hvs_schema_registry_t;

/* Client of the registry at `url` (trailing slashes ignored). 0 and *out, or HVS_ENOMEM. */
int hvs_schema_registry_new(const char *url, hvs_schema_registry_t **out, hvs_err_t *err);
void hvs_schema_registry_destroy(hvs_schema_registry_t *r);

/*
 * Register `schema_json` under `subject` (or find it registered by this client before) and
 * return its id in *id. 0, or HVS_EIO / HVS_ENOTFOUND / HVS_ENOMEM with err filled.
 */
int hvs_schema_registry_register(hvs_schema_registry_t *r, const char *subject,
                                 const char *schema_json, int32_t *id, hvs_err_t *err);

/*
 * The schema text the registry holds for `id`. 0 and *schema_json (malloc'd, the caller frees),
 * or HVS_ESERDE with reason HVS_SERDE_R_UNKNOWN_SCHEMA when the registry does not know the id,
 * or HVS_EIO / HVS_ENOMEM.
 */
int hvs_schema_registry_fetch(hvs_schema_registry_t *r, int32_t id, char **schema_json,
                              hvs_err_t *err);

#endif
