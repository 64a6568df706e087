/*
 * serde.h - Avro messages with the Confluent wire header.
 *
 * Wire format of every Kafka value: byte 0 = magic 0, bytes 1..4 = schema id (big-endian),
 * then the Avro binary body. Schemas are the files in schemas/ compiled into the binary.
 *
 * Schema ids: with a Schema Registry URL (HVS_SCHEMA_REGISTRY_URL), an encoder registers its
 * schema under subject "<topic>-value" (TopicNameStrategy, what Confluent tooling expects) and a
 * decoder fetches unknown ids over REST (libcurl), both cached for the life of the hvs_serde_t.
 * Without one, ids come from the fixed table schemas/schema-ids.tsv (also compiled in), which
 * also lists older versions of each record so their bytes stay readable.
 *
 * Evolution: a decoder reads each message with its own writer schema, then copies it into the
 * reader schema by field name; reader fields the writer lacks take their schema default
 * (avro-c 1.11's own resolver refuses them, so this module does it), writer fields the reader
 * lacks are dropped, enums map by symbol (a symbol the reader lacks takes the reader enum's
 * "default" symbol, else schema_mismatch), int/long/float promote to wider numbers.
 *
 * Ownership:
 *  - hvs_serde_t owns every schema, the id cache and the HTTP client; create one per worker
 *    (or per thread) with hvs_serde_new, free with hvs_serde_destroy (NULL-safe) after every
 *    encoder/decoder made from it is destroyed.
 *  - Encoders and decoders are reusable (no per-message allocation on the hot path); the value
 *    an encoder hands out and the value a decoder returns are owned by it and valid until the
 *    next call on it or its destruction.
 *  - JSON strings returned by hvs_serde_value_to_json are malloc'd; the caller frees them.
 * Thread-safety: none of these objects is thread-safe; use one per thread.
 * Errors: 0 or negative hvs_rc_t; `err->reason` is one of the HVS_SERDE_R_* strings below, which
 * become the dead-letter reason.
 */
#ifndef HVS_SERDE_H
#define HVS_SERDE_H

#include <avro.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"

/* Records of docs/design.md §2; the Avro full name is "hvacstream.<Name>". */
typedef enum hvs_schema_kind {
    HVS_SCHEMA_READING = 0,
    HVS_SCHEMA_DEAD_LETTER,
    HVS_SCHEMA_BUILDING,
    HVS_SCHEMA_AGGREGATE,
    HVS_SCHEMA_WEATHER,
    HVS_SCHEMA_FEATURE_VECTOR,
    HVS_SCHEMA_ANOMALY_SCORE,
    HVS_SCHEMA_FORECAST,
    HVS_SCHEMA_ALERT,
    HVS_SCHEMA_FEEDBACK,
    HVS_SCHEMA_MODEL_VERSION,
    HVS_SCHEMA_COUNT
} hvs_schema_kind_t;

/* Dead-letter reasons produced by this module. */
#define HVS_SERDE_R_TRUNCATED "truncated"              /* fewer bytes than header/body need */
#define HVS_SERDE_R_BAD_MAGIC "bad_magic"              /* first byte is not 0 */
#define HVS_SERDE_R_UNKNOWN_SCHEMA "unknown_schema_id" /* id in no table and not in the registry */
#define HVS_SERDE_R_SCHEMA_MISMATCH "schema_mismatch"  /* writer schema cannot resolve to reader */
#define HVS_SERDE_R_AVRO "avro_decode"                 /* body is not valid Avro for its schema */
#define HVS_SERDE_R_TRAILING "trailing_bytes"          /* body longer than its record */
#define HVS_SERDE_R_JSON_SYNTAX "json_syntax"          /* text is not JSON */
#define HVS_SERDE_R_JSON_MISSING "json_missing_field"  /* required field absent */
#define HVS_SERDE_R_JSON_TYPE "json_wrong_type"        /* JSON type does not fit the field */
#define HVS_SERDE_R_REGISTRY "schema_registry"         /* registry unreachable or refused */

#define HVS_SERDE_HEADER_LEN 5
/* Largest wire message encoded or decoded: far above anything the pipeline sends. */
#define HVS_SERDE_MAX_MESSAGE (16 * 1024 * 1024)

typedef struct hvs_serde hvs_serde_t;
typedef struct hvs_encoder hvs_encoder_t;
typedef struct hvs_decoder hvs_decoder_t;

/*
 * Create the schema catalog. `registry_url` NULL or "" = fixed id table.
 * Returns 0 and *out, or an error (bad schema text is a build bug and reported as HVS_ESERDE).
 */
int hvs_serde_new(const char *registry_url, hvs_serde_t **out, hvs_err_t *err);
void hvs_serde_destroy(hvs_serde_t *s);

/* Avro full name of a kind ("hvacstream.Reading"); NULL for an invalid kind. */
const char *hvs_schema_name(hvs_schema_kind_t kind);
/* Kind for a full or short name ("hvacstream.Reading" or "Reading"); -1 if none. */
int hvs_schema_kind_from_name(const char *name);
/* The current (reader) schema of a kind; borrowed from `s`. */
avro_schema_t hvs_serde_schema(hvs_serde_t *s, hvs_schema_kind_t kind);

/*
 * Add a writer schema under an id at run time (tests, tools). Takes a copy of the JSON.
 * Fails with HVS_EINVAL if the id is already bound to a different schema.
 */
int hvs_serde_add_schema(hvs_serde_t *s, int32_t id, const char *schema_json, hvs_err_t *err);

/* Parse the 5-byte header: 0 and *schema_id, or HVS_ESERDE with reason truncated/bad_magic. */
int hvs_serde_read_header(const void *buf, size_t len, int32_t *schema_id, hvs_err_t *err);

/*
 * Encoder for one kind, producing to `topic` (the registry subject is "<topic>-value"; `topic`
 * may be NULL with the fixed table). Resolves the schema id now, so registry errors surface here.
 */
int hvs_encoder_new(hvs_serde_t *s, hvs_schema_kind_t kind, const char *topic, hvs_encoder_t **out,
                    hvs_err_t *err);
void hvs_encoder_destroy(hvs_encoder_t *e);
/* The value to fill for the next message: reset each call, with every schema default set.
 * Owned by e. */
avro_value_t *hvs_encoder_value(hvs_encoder_t *e);
/* The same without the defaults, for writers that set every field themselves (hot paths:
 * applying defaults costs more than a small record's own fields). A union left unset makes
 * hvs_encoder_encode fail; other fields keep their reset value (0, "", empty array). */
avro_value_t *hvs_encoder_value_bare(hvs_encoder_t *e);
/*
 * Encode the value with its wire header into e's buffer; *buf and *len are valid until the next call.
 * Fails (HVS_ESERDE) if a union field without a default was never given a branch, or the
 * message would exceed 16 MiB. The value starts with every schema default already set.
 */
int hvs_encoder_encode(hvs_encoder_t *e, const void **buf, size_t *len, hvs_err_t *err);
int32_t hvs_encoder_schema_id(const hvs_encoder_t *e);

/*
 * Decoder into the current schema of `kind`; kind = -1 decodes with each message's own writer
 * schema (for tools like `hvsctl tail` that show any topic).
 */
int hvs_decoder_new(hvs_serde_t *s, int kind, hvs_decoder_t **out, hvs_err_t *err);
void hvs_decoder_destroy(hvs_decoder_t *d);
/*
 * Decode one wire-format message. On success *out points at a value owned by d, valid until the
 * next decode. On failure err->reason is one of the HVS_SERDE_R_* strings.
 */
int hvs_decoder_decode(hvs_decoder_t *d, const void *buf, size_t len, avro_value_t **out,
                       hvs_err_t *err);
/* Writer schema id of the last successfully decoded message. */
int32_t hvs_decoder_last_schema_id(const hvs_decoder_t *d);
/*
 * For direct readers (wire.h): the Avro body of a message whose header is valid, whose size is
 * within HVS_SERDE_MAX_MESSAGE and whose writer schema equals d's reader schema - the only
 * bodies with the layout they parse - and its length in *body_len. NULL for any other message
 * (an older writer, an unknown id, a bad header...), which goes to hvs_decoder_decode: that
 * decides and says why. Resolving an id may fetch it from the registry, as a decode would.
 */
const unsigned char *hvs_decoder_direct_body(hvs_decoder_t *d, const void *buf, size_t len,
                                             size_t *body_len);

/*
 * The shape of a schema as a compact string, e.g. "R{a:string,b:null|long,c:array<int>}" - what
 * decides its binary layout: field names and order, types, union branches, enum symbols, fixed
 * sizes (names of named types only for records; logical types and docs are left out). A direct
 * reader or writer compares it with the layout it was written for and stays off when they
 * differ. 0, or HVS_EINVAL when buf is too small.
 */
int hvs_serde_layout(avro_schema_t schema, char *buf, size_t len);
/* Does `schema` render to exactly `layout`? (false for NULL) */
bool hvs_serde_has_layout(avro_schema_t schema, const char *layout);

/* Fields of a decoded record by name, for readers that pick a few (no copy: a string points
 * into v and lives as long as it). A field may be a union with null; a missing field or null
 * reads as NULL / 0; an int field reads as a long; a double reads as NaN when missing, null or
 * not finite. */
const char *hvs_serde_field_str(avro_value_t *v, const char *name);
int64_t hvs_serde_field_long(avro_value_t *v, const char *name);
double hvs_serde_field_double(avro_value_t *v, const char *name);

/* Fields of a record being encoded, by name: 0, or -1 when the field is missing or of another
 * type (avro_strerror() says which). The optional setters fill a ["null", T] union: null for a
 * NULL string / a non-finite double. hvs_serde_set_strings appends n strings to an array. */
int hvs_serde_set_str(avro_value_t *rec, const char *name, const char *s);
int hvs_serde_set_opt_str(avro_value_t *rec, const char *name, const char *s);
int hvs_serde_set_long(avro_value_t *rec, const char *name, int64_t v);
int hvs_serde_set_double(avro_value_t *rec, const char *name, double v);
int hvs_serde_set_opt_double(avro_value_t *rec, const char *name, double v);
int hvs_serde_set_strings(avro_value_t *rec, const char *name, const char *const *s, int n);

/*
 * Natural JSON for a value: records as objects, unions as the plain branch value (or null),
 * bytes as a string of \u00XX escapes (Avro JSON convention), enums as their symbol string,
 * timestamp-millis as the integer. *json is malloc'd, caller frees.
 */
int hvs_serde_value_to_json(const avro_value_t *v, char **json, hvs_err_t *err);
/*
 * Fill `v` (a value of a record schema, e.g. from hvs_encoder_value) from natural JSON: unions
 * pick the first branch the JSON type fits, absent fields take their schema default, absent
 * fields without one fail with HVS_SERDE_R_JSON_MISSING naming the field path, mistyped ones
 * with HVS_SERDE_R_JSON_TYPE, text that is not JSON with HVS_SERDE_R_JSON_SYNTAX.
 */
int hvs_serde_value_from_json(hvs_serde_t *s, avro_value_t *v, const char *json, size_t len,
                              hvs_err_t *err);

/*
 * Set every field of `record` that has a schema default to it (nested records too). Encoders do
 * this for the top-level value; call it for records appended to arrays or chosen in unions.
 */
int hvs_serde_value_defaults(hvs_serde_t *s, avro_value_t *record, hvs_err_t *err);

#endif
