/*
 * The schema catalogue (see hvs/serde.h and serde_internal.h): the reader schema of every record
 * kind, compiled in from the .avsc files of schemas/; writer schemas by id, from the fixed table
 * schemas/schema-ids.tsv (also compiled in, with older versions of each record) or, with a
 * Schema Registry URL, registered and fetched through schema_registry.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/embedded.h"
#include "hvs/serde.h"
#include "serde_internal.h"

#define NAMESPACE "hvacstream."

/* Full names, written out rather than assembled on first use: a name built lazily into a static
 * buffer would be written by whichever thread asked first (a data race between workers' threads,
 * each with its own hvs_serde_t). */
static const char *const kind_names[HVS_SCHEMA_COUNT] = {
    NAMESPACE "Reading", NAMESPACE "DeadLetter",    NAMESPACE "Building",     NAMESPACE "Aggregate",
    NAMESPACE "Weather", NAMESPACE "FeatureVector", NAMESPACE "AnomalyScore", NAMESPACE "Forecast",
    NAMESPACE "Alert",   NAMESPACE "Feedback",      NAMESPACE "ModelVersion",
};
#define SHORT_NAME(k) (kind_names[k] + sizeof NAMESPACE - 1)

const char *hvs_schema_name(hvs_schema_kind_t kind) {
    if ((int)kind < 0 || kind >= HVS_SCHEMA_COUNT)
        return NULL;
    return kind_names[kind];
}

int hvs_schema_kind_from_name(const char *name) {
    if (!name)
        return -1;
    if (strncmp(name, NAMESPACE, sizeof NAMESPACE - 1) == 0)
        name += sizeof NAMESPACE - 1;
    for (int k = 0; k < HVS_SCHEMA_COUNT; k++)
        if (strcmp(SHORT_NAME(k), name) == 0)
            return k;
    return -1;
}

static int kind_of_schema(avro_schema_t s) {
    char full[256];
    return hvs_schema_kind_from_name(hvs_serde_fullname(s, full, sizeof full));
}

static hvs_writer_schema_t *find_ws(hvs_serde_t *s, int32_t id) {
    for (size_t i = 0; i < s->nws; i++)
        if (s->ws[i].id == id)
            return &s->ws[i];
    return NULL;
}

/* Takes ownership of `schema`. */
static int add_ws(hvs_serde_t *s, int32_t id, avro_schema_t schema, hvs_err_t *err) {
    if (s->nws == s->capws) {
        size_t cap = s->capws ? s->capws * 2 : 32;
        hvs_writer_schema_t *n = realloc(s->ws, cap * sizeof *n);
        if (!n) {
            avro_schema_decref(schema);
            return hvs_err_set(err, HVS_ENOMEM, NULL, "schema catalog: out of memory");
        }
        s->ws = n;
        s->capws = cap;
    }
    s->ws[s->nws++] = (hvs_writer_schema_t){id, schema, kind_of_schema(schema)};
    return HVS_OK;
}

static int parse_schema(const char *text, size_t len, const char *what, avro_schema_t *out,
                        hvs_err_t *err) {
    if (avro_schema_from_json_length(text, len, out) != 0)
        return hvs_err_set(err, HVS_ESERDE, "bad_schema", "schema %s: %s", what, avro_strerror());
    return HVS_OK;
}

/* The fixed table: "id<TAB>record<TAB>file" lines of schema-ids.tsv. */
static int load_fixed_table(hvs_serde_t *s, hvs_err_t *err) {
    const struct hvs_embedded_file *tsv = hvs_embedded_find("schema-ids.tsv");
    if (!tsv)
        return hvs_err_set(err, HVS_ESERDE, "bad_schema", "schema-ids.tsv is not compiled in");
    char *text = strndup((const char *)tsv->data, tsv->len);
    if (!text)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    int rc = HVS_OK;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && rc == HVS_OK;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char record[128], file[256];
        int id;
        if (sscanf(line, "%d\t%127s\t%255s", &id, record, file) != 3 || id <= 0) {
            rc = hvs_err_set(err, HVS_ESERDE, "bad_schema", "schema-ids.tsv: bad line \"%s\"",
                             line);
            break;
        }
        const struct hvs_embedded_file *f = hvs_embedded_find(file);
        if (!f) {
            rc = hvs_err_set(err, HVS_ESERDE, "bad_schema", "schema-ids.tsv: %s not compiled in",
                             file);
            break;
        }
        avro_schema_t schema;
        rc = parse_schema((const char *)f->data, f->len, file, &schema, err);
        if (rc == HVS_OK)
            rc = add_ws(s, id, schema, err);
        int kind = hvs_schema_kind_from_name(record);
        if (rc == HVS_OK && kind >= 0 && strchr(file, '/') == NULL)
            s->current_id[kind] = id;
    }
    free(text);
    return rc;
}

int hvs_serde_new(const char *registry_url, hvs_serde_t **out, hvs_err_t *err) {
    hvs_serde_t *s = calloc(1, sizeof *s);
    if (!s)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "serde: out of memory");
    s->defaults = hvs_defaults_new();
    int rc = s->defaults ? HVS_OK : hvs_err_set(err, HVS_ENOMEM, NULL, "serde: out of memory");
    for (int k = 0; rc == HVS_OK && k < HVS_SCHEMA_COUNT; k++) {
        char file[64];
        snprintf(file, sizeof file, "%s.avsc", SHORT_NAME(k));
        const struct hvs_embedded_file *f = hvs_embedded_find(file);
        if (!f) {
            rc = hvs_err_set(err, HVS_ESERDE, "bad_schema", "%s is not compiled in", file);
            break;
        }
        s->current_json[k] = strndup((const char *)f->data, f->len);
        if (!s->current_json[k]) {
            rc = hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
            break;
        }
        rc = parse_schema(s->current_json[k], f->len, file, &s->current[k], err);
        if (rc == HVS_OK)
            rc = hvs_defaults_scan(s->defaults, s->current_json[k], err);
    }
    if (rc == HVS_OK && registry_url && *registry_url)
        rc = hvs_schema_registry_new(registry_url, &s->registry, err);
    else if (rc == HVS_OK)
        rc = load_fixed_table(s, err);
    if (rc != HVS_OK) {
        hvs_serde_destroy(s);
        return rc;
    }
    *out = s;
    return HVS_OK;
}

void hvs_serde_destroy(hvs_serde_t *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->nws; i++)
        avro_schema_decref(s->ws[i].schema);
    free(s->ws);
    for (int k = 0; k < HVS_SCHEMA_COUNT; k++) {
        if (s->current[k])
            avro_schema_decref(s->current[k]);
        free(s->current_json[k]);
    }
    hvs_defaults_destroy(s->defaults);
    hvs_schema_registry_destroy(s->registry);
    free(s);
}

avro_schema_t hvs_serde_schema(hvs_serde_t *s, hvs_schema_kind_t kind) {
    return ((int)kind >= 0 && kind < HVS_SCHEMA_COUNT) ? s->current[kind] : NULL;
}

int hvs_serde_add_schema(hvs_serde_t *s, int32_t id, const char *schema_json, hvs_err_t *err) {
    avro_schema_t schema;
    int rc = parse_schema(schema_json, strlen(schema_json), "added at run time", &schema, err);
    if (rc)
        return rc;
    hvs_writer_schema_t *have = find_ws(s, id);
    if (have) {
        int same = avro_schema_equal(have->schema, schema);
        avro_schema_decref(schema);
        return same ? HVS_OK
                    : hvs_err_set(err, HVS_EINVAL, "schema_id_taken",
                                  "schema id %d is already bound to another schema", (int)id);
    }
    return add_ws(s, id, schema, err);
}

const hvs_writer_schema_t *hvs_serde_writer(hvs_serde_t *s, int32_t id, hvs_err_t *err) {
    hvs_writer_schema_t *ws = find_ws(s, id);
    if (ws)
        return ws;
    if (s->registry) {
        char *text = NULL;
        avro_schema_t schema;
        int rc = hvs_schema_registry_fetch(s->registry, id, &text, err);
        if (rc == HVS_OK)
            rc = parse_schema(text, strlen(text), "from the registry", &schema, err);
        free(text);
        if (rc == HVS_OK)
            rc = add_ws(s, id, schema, err);
        if (rc != HVS_OK)
            return NULL;
        ws = find_ws(s, id);
    }
    if (!ws)
        hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_UNKNOWN_SCHEMA,
                    "schema id %d is not in the schema table", (int)id);
    return ws;
}

int hvs_serde_encoder_id(hvs_serde_t *s, hvs_schema_kind_t kind, const char *topic, int32_t *id,
                         hvs_err_t *err) {
    if (!s->registry) {
        *id = s->current_id[kind];
        return HVS_OK;
    }
    /* TopicNameStrategy, what Confluent tooling expects */
    char subject[256];
    snprintf(subject, sizeof subject, "%s-value", topic ? topic : hvs_schema_name(kind));
    int rc = hvs_schema_registry_register(s->registry, subject, s->current_json[kind], id, err);
    if (rc)
        return rc;
    /* Decoders of this catalogue then know the id without asking the registry. */
    if (!find_ws(s, *id))
        return add_ws(s, *id, avro_schema_incref(s->current[kind]), err);
    return HVS_OK;
}
