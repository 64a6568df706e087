/*
 * Schema catalog, encoders and decoders with the Confluent wire header, and the Schema Registry
 * client (see hvs/serde.h).
 *
 * Decoding always reads with the message's writer schema (so a message is valid exactly when
 * its writer could have produced it), then, when the writer is not the reader's schema, copies
 * the value into the reader schema by field name (serde_json.c), filling defaults.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/embedded.h"
#include "hvs/log.h"
#include "hvs/serde.h"
#include "serde_internal.h"

#define MAX_MESSAGE (16 * 1024 * 1024) /* far above anything the pipeline sends */

static const char *const kind_names[HVS_SCHEMA_COUNT] = {
    "Reading",  "DeadLetter", "Building", "Aggregate", "Weather",     "FeatureVector",
    "AnomalyScore", "Forecast", "Alert",  "Feedback",  "ModelVersion",
};

typedef struct writer_schema {
    int32_t id;
    avro_schema_t schema;
    int kind;            /* hvs_schema_kind_t it is a version of, or -1 */
} writer_schema_t;

/* A registration already made: (kind, subject) -> id, so encoders re-created for the same
 * topic do not POST again. */
typedef struct subject_id {
    int kind;
    char subject[256];
    int32_t id;
} subject_id_t;

struct hvs_serde {
    char *registry_url;
    subject_id_t *subj;
    size_t nsubj, capsubj;
    CURL *curl;
    writer_schema_t *ws;
    size_t nws, capws;
    avro_schema_t current[HVS_SCHEMA_COUNT];
    char *current_json[HVS_SCHEMA_COUNT];
    int32_t current_id[HVS_SCHEMA_COUNT]; /* fixed table; registry ids are per subject */
    hvs_defaults_t *defaults;
};

struct hvs_encoder {
    hvs_serde_t *serde;
    int kind;
    int32_t id;
    avro_value_iface_t *iface;
    avro_value_t value;
    avro_writer_t writer;
    char *buf;
    size_t cap;
};

typedef struct dec_cache {
    int32_t id;
    struct skim_node *skim; /* the writer schema compiled for the bounds pre-check */
    avro_value_iface_t *iface;
    avro_value_t value;
    int same_as_reader;
} dec_cache_t;

struct hvs_decoder {
    hvs_serde_t *serde;
    int kind;
    avro_value_iface_t *reader_iface;
    avro_value_t reader_value;
    avro_reader_t reader;
    dec_cache_t *cache;
    size_t ncache, capcache;
    int32_t last_id;
};

const char *hvs_schema_name(hvs_schema_kind_t kind) {
    static char names[HVS_SCHEMA_COUNT][48];
    if ((int)kind < 0 || kind >= HVS_SCHEMA_COUNT)
        return NULL;
    if (!names[kind][0])
        snprintf(names[kind], sizeof names[kind], "hvacstream.%s", kind_names[kind]);
    return names[kind];
}

int hvs_schema_kind_from_name(const char *name) {
    if (!name)
        return -1;
    if (strncmp(name, "hvacstream.", 11) == 0)
        name += 11;
    for (int k = 0; k < HVS_SCHEMA_COUNT; k++)
        if (strcmp(kind_names[k], name) == 0)
            return k;
    return -1;
}

static int kind_of_schema(avro_schema_t s) {
    char full[256];
    return hvs_schema_kind_from_name(hvs_serde_fullname(s, full, sizeof full));
}

static writer_schema_t *find_ws(hvs_serde_t *s, int32_t id) {
    for (size_t i = 0; i < s->nws; i++)
        if (s->ws[i].id == id)
            return &s->ws[i];
    return NULL;
}

/* Takes ownership of `schema`. */
static int add_ws(hvs_serde_t *s, int32_t id, avro_schema_t schema, hvs_err_t *err) {
    if (s->nws == s->capws) {
        size_t cap = s->capws ? s->capws * 2 : 32;
        writer_schema_t *n = realloc(s->ws, cap * sizeof *n);
        if (!n) {
            avro_schema_decref(schema);
            return hvs_err_set(err, HVS_ENOMEM, NULL, "schema catalog: out of memory");
        }
        s->ws = n;
        s->capws = cap;
    }
    s->ws[s->nws++] = (writer_schema_t){id, schema, kind_of_schema(schema)};
    return HVS_OK;
}

static int parse_schema(const char *text, size_t len, const char *what, avro_schema_t *out,
                        hvs_err_t *err) {
    if (avro_schema_from_json_length(text, len, out) != 0)
        return hvs_err_set(err, HVS_ESERDE, "bad_schema", "schema %s: %s", what,
                           avro_strerror());
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
        snprintf(file, sizeof file, "%s.avsc", kind_names[k]);
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
    if (rc == HVS_OK && registry_url && *registry_url) {
        size_t n = strlen(registry_url);
        while (n && registry_url[n - 1] == '/')
            n--;
        s->registry_url = strndup(registry_url, n);
        s->curl = curl_easy_init();
        if (!s->registry_url || !s->curl)
            rc = hvs_err_set(err, HVS_ENOMEM, NULL, "serde: cannot create HTTP client");
    } else if (rc == HVS_OK) {
        rc = load_fixed_table(s, err);
    }
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
    hvs_defaults_free(s->defaults);
    if (s->curl)
        curl_easy_cleanup(s->curl);
    free(s->registry_url);
    free(s->subj);
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
    writer_schema_t *have = find_ws(s, id);
    if (have) {
        int same = avro_schema_equal(have->schema, schema);
        avro_schema_decref(schema);
        return same ? HVS_OK
                    : hvs_err_set(err, HVS_EINVAL, "schema_id_taken",
                                  "schema id %d is already bound to another schema", (int)id);
    }
    return add_ws(s, id, schema, err);
}

/* ---- Schema Registry ------------------------------------------------------------------------ */

typedef struct http_buf {
    char *p;
    size_t len;
} http_buf_t;

static size_t http_collect(char *ptr, size_t size, size_t nmemb, void *ud) {
    http_buf_t *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > 4 * 1024 * 1024)
        return 0; /* a schema response is never this large: refuse */
    char *np = realloc(b->p, b->len + n + 1);
    if (!np)
        return 0;
    memcpy(np + b->len, ptr, n);
    b->p = np;
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

/* One request; *out is the parsed JSON body of a 2xx answer (caller decrefs). */
static int registry_call(hvs_serde_t *s, const char *path, const char *body, json_t **out,
                         hvs_err_t *err) {
    char url[1024];
    snprintf(url, sizeof url, "%s%s", s->registry_url, path);
    http_buf_t b = {NULL, 0};
    CURL *c = s->curl;
    curl_easy_reset(c);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/vnd.schemaregistry.v1+json");
    hdrs = curl_slist_append(hdrs, "Content-Type: application/vnd.schemaregistry.v1+json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    int rc = HVS_OK;
    if (cc != CURLE_OK) {
        rc = hvs_err_set(err, HVS_EIO, HVS_SERDE_R_REGISTRY, "schema registry %s: %s", url,
                         curl_easy_strerror(cc));
    } else if (status < 200 || status > 299) {
        rc = hvs_err_set(err, status == 404 ? HVS_ENOTFOUND : HVS_EIO, HVS_SERDE_R_REGISTRY,
                         "schema registry %s: HTTP %ld %.200s", url, status, b.p ? b.p : "");
    } else {
        json_error_t jerr;
        *out = b.p ? json_loads(b.p, 0, &jerr) : NULL;
        if (!*out)
            rc = hvs_err_set(err, HVS_EIO, HVS_SERDE_R_REGISTRY,
                             "schema registry %s: answer is not JSON", url);
    }
    free(b.p);
    return rc;
}

static int registry_register(hvs_serde_t *s, int kind, const char *topic, int32_t *id,
                             hvs_err_t *err) {
    char subject[256], path[512];
    snprintf(subject, sizeof subject, "%s-value", topic ? topic : hvs_schema_name(kind));
    for (size_t i = 0; i < s->nsubj; i++)
        if (s->subj[i].kind == kind && strcmp(s->subj[i].subject, subject) == 0) {
            *id = s->subj[i].id;
            return HVS_OK;
        }
    snprintf(path, sizeof path, "/subjects/%s/versions", subject);
    json_t *req = json_pack("{s:s}", "schema", s->current_json[kind]);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    json_t *resp = NULL;
    int rc = registry_call(s, path, body, &resp, err);
    free(body);
    if (rc)
        return rc;
    json_t *jid = json_object_get(resp, "id");
    if (!json_is_integer(jid) || json_integer_value(jid) <= 0 ||
        json_integer_value(jid) > INT32_MAX) {
        json_decref(resp);
        return hvs_err_set(err, HVS_EIO, HVS_SERDE_R_REGISTRY,
                           "schema registry %s: answer has no valid id", path);
    }
    *id = (int32_t)json_integer_value(jid);
    json_decref(resp);
    if (s->nsubj == s->capsubj) {
        size_t cap = s->capsubj ? s->capsubj * 2 : 8;
        subject_id_t *n = realloc(s->subj, cap * sizeof *n);
        if (!n)
            return hvs_err_set(err, HVS_ENOMEM, NULL, "schema registry cache: out of memory");
        s->subj = n;
        s->capsubj = cap;
    }
    s->subj[s->nsubj].kind = kind;
    snprintf(s->subj[s->nsubj].subject, sizeof s->subj[s->nsubj].subject, "%s", subject);
    s->subj[s->nsubj++].id = *id;
    if (!find_ws(s, *id)) {
        avro_schema_t copy = avro_schema_incref(s->current[kind]);
        return add_ws(s, *id, copy, err);
    }
    return HVS_OK;
}

static int registry_fetch(hvs_serde_t *s, int32_t id, hvs_err_t *err) {
    char path[64];
    snprintf(path, sizeof path, "/schemas/ids/%d", (int)id);
    json_t *resp = NULL;
    int rc = registry_call(s, path, NULL, &resp, err);
    if (rc == HVS_ENOTFOUND)
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_UNKNOWN_SCHEMA,
                           "schema id %d is unknown to the schema registry", (int)id);
    if (rc)
        return rc;
    const char *text = json_string_value(json_object_get(resp, "schema"));
    if (!text) {
        json_decref(resp);
        return hvs_err_set(err, HVS_EIO, HVS_SERDE_R_REGISTRY,
                           "schema registry: id %d answer has no schema", (int)id);
    }
    avro_schema_t schema;
    rc = parse_schema(text, strlen(text), "from the registry", &schema, err);
    json_decref(resp);
    return rc ? rc : add_ws(s, id, schema, err);
}

/* ---- encoder -------------------------------------------------------------------------------- */

int hvs_encoder_new(hvs_serde_t *s, hvs_schema_kind_t kind, const char *topic, hvs_encoder_t **out,
                    hvs_err_t *err) {
    if ((int)kind < 0 || kind >= HVS_SCHEMA_COUNT)
        return hvs_err_set(err, HVS_EINVAL, NULL, "encoder: invalid kind %d", (int)kind);
    int32_t id = s->current_id[kind];
    if (s->registry_url) {
        int rc = registry_register(s, kind, topic, &id, err);
        if (rc)
            return rc;
    }
    hvs_encoder_t *e = calloc(1, sizeof *e);
    if (!e)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "encoder: out of memory");
    e->serde = s;
    e->kind = kind;
    e->id = id;
    e->cap = 4096;
    e->buf = malloc(e->cap);
    e->iface = avro_generic_class_from_schema(s->current[kind]);
    if (!e->buf || !e->iface || avro_generic_value_new(e->iface, &e->value) != 0) {
        if (e->iface)
            avro_value_iface_decref(e->iface);
        free(e->buf);
        free(e);
        return hvs_err_set(err, HVS_ENOMEM, NULL, "encoder: %s", avro_strerror());
    }
    e->writer = avro_writer_memory(e->buf + HVS_SERDE_HEADER_LEN,
                                   (int64_t)(e->cap - HVS_SERDE_HEADER_LEN));
    *out = e;
    return HVS_OK;
}

void hvs_encoder_destroy(hvs_encoder_t *e) {
    if (!e)
        return;
    avro_value_decref(&e->value);
    avro_value_iface_decref(e->iface);
    if (e->writer)
        avro_writer_free(e->writer);
    free(e->buf);
    free(e);
}

avro_value_t *hvs_encoder_value(hvs_encoder_t *e) {
    avro_value_reset(&e->value);
    /* Defaults are schema-valid by construction; failures would be a schema bug. */
    hvs_serde_apply_defaults(e->serde->defaults, &e->value, NULL);
    return &e->value;
}

avro_value_t *hvs_encoder_value_bare(hvs_encoder_t *e) {
    avro_value_reset(&e->value);
    return &e->value;
}

int32_t hvs_encoder_schema_id(const hvs_encoder_t *e) { return e->id; }

static void write_header(char *buf, int32_t id) {
    buf[0] = 0;
    buf[1] = (char)((uint32_t)id >> 24);
    buf[2] = (char)((uint32_t)id >> 16);
    buf[3] = (char)((uint32_t)id >> 8);
    buf[4] = (char)(uint32_t)id;
}

int hvs_encoder_encode(hvs_encoder_t *e, const void **buf, size_t *len, hvs_err_t *err) {
    for (;;) {
        avro_writer_memory_set_dest(e->writer, e->buf + HVS_SERDE_HEADER_LEN,
                                    (int64_t)(e->cap - HVS_SERDE_HEADER_LEN));
        int rc = avro_value_write(e->writer, &e->value);
        if (rc == 0)
            break;
        if (rc != ENOSPC)
            return hvs_err_set(err, HVS_ESERDE, "avro_encode", "encoding %s: %s",
                               hvs_schema_name(e->kind), avro_strerror());
        if (e->cap >= MAX_MESSAGE)
            return hvs_err_set(err, HVS_ESERDE, "too_large", "encoding %s: larger than %d bytes",
                               hvs_schema_name(e->kind), MAX_MESSAGE);
        char *nb = realloc(e->buf, e->cap * 2);
        if (!nb)
            return hvs_err_set(err, HVS_ENOMEM, NULL, "encoder: out of memory");
        e->buf = nb;
        e->cap *= 2;
    }
    write_header(e->buf, e->id);
    *buf = e->buf;
    *len = HVS_SERDE_HEADER_LEN + (size_t)avro_writer_tell(e->writer);
    return HVS_OK;
}

/* ---- bounds pre-check ----------------------------------------------------------------------
 * avro-c allocates whatever a length prefix says before it finds the bytes missing, and does not
 * free it when the read then fails: one corrupt message can cost gigabytes. So the body is first
 * walked against the writer schema, checking every length and block count against the bytes that
 * remain; only a body that fits is handed to avro-c. 1 = ran out of bytes, -1 = invalid. */

#define PRECHECK_MAX_DEPTH 64

/* A writer schema compiled once for the pre-check: a node per schema position. */
typedef struct skim_node {
    avro_type_t type;
    int64_t n;                    /* fixed size, enum symbol count, union branch count */
    size_t nkids;
    struct skim_node **kids;      /* record fields, union branches, array/map item */
} skim_node_t;

static void skim_free(skim_node_t *k) {
    if (!k)
        return;
    for (size_t i = 0; i < k->nkids; i++)
        skim_free(k->kids[i]);
    free(k->kids);
    free(k);
}

static skim_node_t *skim_compile(avro_schema_t sc, int depth) {
    if (depth > PRECHECK_MAX_DEPTH)
        return NULL;
    while (avro_typeof(sc) == AVRO_LINK)
        sc = avro_schema_link_target(sc);
    skim_node_t *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->type = avro_typeof(sc);
    avro_schema_t kids[512];
    size_t nk = 0;
    switch (k->type) {
    case AVRO_ENUM: k->n = avro_schema_enum_number_of_symbols(sc); break;
    case AVRO_FIXED: k->n = avro_schema_fixed_size(sc); break;
    case AVRO_ARRAY: kids[nk++] = avro_schema_array_items(sc); break;
    case AVRO_MAP: kids[nk++] = avro_schema_map_values(sc); break;
    case AVRO_UNION:
        k->n = (int64_t)avro_schema_union_size(sc);
        for (int64_t i = 0; i < k->n && nk < 512; i++)
            kids[nk++] = avro_schema_union_branch(sc, (int)i);
        break;
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(sc) && nk < 512; i++)
            kids[nk++] = avro_schema_record_field_get_by_index(sc, (int)i);
        break;
    default: break;
    }
    if (nk) {
        k->kids = calloc(nk, sizeof *k->kids);
        if (!k->kids) {
            free(k);
            return NULL;
        }
        for (size_t i = 0; i < nk; i++) {
            k->kids[i] = skim_compile(kids[i], depth + 1);
            k->nkids = i + 1;
            if (!k->kids[i]) {
                skim_free(k);
                return NULL;
            }
        }
    }
    return k;
}

static int read_varint(const unsigned char **p, const unsigned char *end, int64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return 1;
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return -1; /* more than 10 bytes */
}

/* Skip a length-prefixed string; map keys and string/bytes values. */
static int skip_len(const unsigned char **p, const unsigned char *end) {
    int64_t n;
    int rc = read_varint(p, end, &n);
    if (rc)
        return rc;
    if (n < 0)
        return -1;
    if (end - *p < n)
        return 1;
    *p += n;
    return 0;
}

static int precheck(const skim_node_t *k, const unsigned char **p, const unsigned char *end) {
    int64_t n;
    int rc;
    switch (k->type) {
    case AVRO_NULL: return 0;
    case AVRO_BOOLEAN:
        if (*p >= end)
            return 1;
        return *(*p)++ > 1 ? -1 : 0;
    case AVRO_INT32:
    case AVRO_INT64: return read_varint(p, end, &n);
    case AVRO_ENUM:
        if ((rc = read_varint(p, end, &n)))
            return rc;
        return n < 0 || n >= k->n ? -1 : 0;
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
    case AVRO_FIXED: {
        int64_t size = k->type == AVRO_FLOAT ? 4 : k->type == AVRO_DOUBLE ? 8 : k->n;
        if (end - *p < size)
            return 1;
        *p += size;
        return 0;
    }
    case AVRO_STRING:
    case AVRO_BYTES: return skip_len(p, end);
    case AVRO_ARRAY:
    case AVRO_MAP:
        for (;;) {
            if ((rc = read_varint(p, end, &n)))
                return rc;
            if (n == 0)
                return 0;
            if (n < 0) { /* negative count: a byte size follows */
                int64_t bytes;
                if ((rc = read_varint(p, end, &bytes)))
                    return rc;
                if (bytes < 0)
                    return -1;
                n = -n;
            }
            /* every element takes at least one byte, except arrays of null */
            if (n > end - *p && !(k->kids[0]->type == AVRO_NULL && k->type == AVRO_ARRAY))
                return 1;
            if (n > 1000000)
                return -1;
            for (int64_t i = 0; i < n; i++) {
                if (k->type == AVRO_MAP && (rc = skip_len(p, end)))
                    return rc;
                if ((rc = precheck(k->kids[0], p, end)))
                    return rc;
            }
        }
    case AVRO_UNION:
        if ((rc = read_varint(p, end, &n)))
            return rc;
        if (n < 0 || n >= k->n)
            return -1;
        return precheck(k->kids[n], p, end);
    case AVRO_RECORD:
        for (size_t i = 0; i < k->nkids; i++)
            if ((rc = precheck(k->kids[i], p, end)))
                return rc;
        return 0;
    default: return -1;
    }
}

/* ---- decoder -------------------------------------------------------------------------------- */

int hvs_serde_read_header(const void *buf, size_t len, int32_t *schema_id, hvs_err_t *err) {
    const unsigned char *p = buf;
    if (!buf || len < HVS_SERDE_HEADER_LEN)
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_TRUNCATED,
                           "message of %zu bytes is shorter than the 5-byte wire header", len);
    if (p[0] != 0)
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_BAD_MAGIC,
                           "first byte is 0x%02x, not the wire-format magic 0x00", p[0]);
    *schema_id = (int32_t)(((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) |
                           ((uint32_t)p[3] << 8) | p[4]);
    return HVS_OK;
}

int hvs_decoder_new(hvs_serde_t *s, int kind, hvs_decoder_t **out, hvs_err_t *err) {
    if (kind < -1 || kind >= HVS_SCHEMA_COUNT)
        return hvs_err_set(err, HVS_EINVAL, NULL, "decoder: invalid kind %d", kind);
    hvs_decoder_t *d = calloc(1, sizeof *d);
    if (!d)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "decoder: out of memory");
    d->serde = s;
    d->kind = kind;
    d->reader = avro_reader_memory("", 0);
    if (kind >= 0) {
        d->reader_iface = avro_generic_class_from_schema(s->current[kind]);
        if (!d->reader_iface || avro_generic_value_new(d->reader_iface, &d->reader_value)) {
            hvs_decoder_destroy(d);
            return hvs_err_set(err, HVS_ENOMEM, NULL, "decoder: %s", avro_strerror());
        }
    }
    *out = d;
    return HVS_OK;
}

void hvs_decoder_destroy(hvs_decoder_t *d) {
    if (!d)
        return;
    for (size_t i = 0; i < d->ncache; i++) {
        skim_free(d->cache[i].skim);
        avro_value_decref(&d->cache[i].value);
        avro_value_iface_decref(d->cache[i].iface);
    }
    free(d->cache);
    if (d->reader_iface) {
        avro_value_decref(&d->reader_value);
        avro_value_iface_decref(d->reader_iface);
    }
    if (d->reader)
        avro_reader_free(d->reader);
    free(d);
}

int32_t hvs_decoder_last_schema_id(const hvs_decoder_t *d) { return d->last_id; }

static dec_cache_t *decoder_entry(hvs_decoder_t *d, int32_t id, hvs_err_t *err) {
    for (size_t i = 0; i < d->ncache; i++)
        if (d->cache[i].id == id)
            return &d->cache[i];
    writer_schema_t *ws = find_ws(d->serde, id);
    if (!ws && d->serde->registry_url) {
        if (registry_fetch(d->serde, id, err) != HVS_OK)
            return NULL;
        ws = find_ws(d->serde, id);
    }
    if (!ws) {
        hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_UNKNOWN_SCHEMA,
                    "schema id %d is not in the schema table", (int)id);
        return NULL;
    }
    if (d->kind >= 0 && ws->kind != d->kind) {
        hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_SCHEMA_MISMATCH,
                    "schema id %d is a %s, expected a %s", (int)id,
                    ws->kind >= 0 ? hvs_schema_name(ws->kind) : "record of another name",
                    hvs_schema_name(d->kind));
        return NULL;
    }
    if (d->ncache == d->capcache) {
        size_t cap = d->capcache ? d->capcache * 2 : 4;
        dec_cache_t *n = realloc(d->cache, cap * sizeof *n);
        if (!n) {
            hvs_err_set(err, HVS_ENOMEM, NULL, "decoder: out of memory");
            return NULL;
        }
        d->cache = n;
        d->capcache = cap;
    }
    dec_cache_t *c = &d->cache[d->ncache];
    c->id = id;
    c->same_as_reader = d->kind < 0 || avro_schema_equal(ws->schema, d->serde->current[d->kind]);
    /* Equal to the reader's: decode into values of the reader's own schema object, so users
     * that recognise it by pointer (reading.c's layout check) take their fast path. */
    avro_schema_t vs = c->same_as_reader && d->kind >= 0 ? d->serde->current[d->kind] : ws->schema;
    c->skim = skim_compile(ws->schema, 0);
    c->iface = c->skim ? avro_generic_class_from_schema(vs) : NULL;
    if (!c->iface || avro_generic_value_new(c->iface, &c->value)) {
        if (c->iface)
            avro_value_iface_decref(c->iface);
        skim_free(c->skim);
        hvs_err_set(err, HVS_ENOMEM, NULL, "decoder: %s", avro_strerror());
        return NULL;
    }
    d->ncache++;
    return c;
}

int hvs_decoder_decode(hvs_decoder_t *d, const void *buf, size_t len, avro_value_t **out,
                       hvs_err_t *err) {
    int32_t id;
    int rc = hvs_serde_read_header(buf, len, &id, err);
    if (rc)
        return rc;
    if (len > MAX_MESSAGE)
        return hvs_err_set(err, HVS_ESERDE, "too_large", "message of %zu bytes exceeds %d", len,
                           MAX_MESSAGE);
    dec_cache_t *c = decoder_entry(d, id, err);
    if (!c)
        return err ? err->code : HVS_ESERDE;
    const unsigned char *body = (const unsigned char *)buf + HVS_SERDE_HEADER_LEN;
    const unsigned char *end = (const unsigned char *)buf + len, *pos = body;
    int pre = precheck(c->skim, &pos, end);
    if (pre != 0)
        return hvs_err_set(err, HVS_ESERDE, pre > 0 ? HVS_SERDE_R_TRUNCATED : HVS_SERDE_R_AVRO,
                           "schema id %d: %zu-byte body %s at byte %td", (int)id,
                           len - HVS_SERDE_HEADER_LEN,
                           pre > 0 ? "ends before its record does" : "is not valid Avro",
                           pos - body);
    if (pos != end)
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_TRAILING,
                           "schema id %d: %zu-byte body has %td bytes after its record", (int)id,
                           len - HVS_SERDE_HEADER_LEN, end - pos);
    avro_reader_memory_set_source(d->reader, (const char *)buf + HVS_SERDE_HEADER_LEN,
                                  (int64_t)(len - HVS_SERDE_HEADER_LEN));
    avro_value_reset(&c->value);
    if (avro_value_read(d->reader, &c->value) != 0) {
        const char *why = avro_strerror();
        /* avro-c reports running out of input as "Cannot read ...": that is truncation. */
        int truncated = strstr(why, "Cannot read") != NULL;
        return hvs_err_set(err, HVS_ESERDE, truncated ? HVS_SERDE_R_TRUNCATED : HVS_SERDE_R_AVRO,
                           "schema id %d: body of %zu bytes: %s", (int)id,
                           len - HVS_SERDE_HEADER_LEN, why);
    }
    char extra;
    /* avro_reader_is_eof only knows files: probe for one more byte instead. */
    if (avro_read(d->reader, &extra, 1) == 0)
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_TRAILING,
                           "schema id %d: %zu-byte body has bytes after its record", (int)id,
                           len - HVS_SERDE_HEADER_LEN);
    d->last_id = id;
    if (c->same_as_reader) {
        *out = &c->value;
        return HVS_OK;
    }
    avro_value_reset(&d->reader_value);
    rc = hvs_serde_resolve_copy(d->serde->defaults, &c->value, &d->reader_value, "", err);
    if (rc)
        return rc;
    *out = &d->reader_value;
    return HVS_OK;
}

int hvs_serde_value_from_json(hvs_serde_t *s, avro_value_t *v, const char *json, size_t len,
                              hvs_err_t *err) {
    json_error_t jerr;
    json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!j)
        return hvs_err_set(err, HVS_ESERDE, HVS_SERDE_R_JSON_SYNTAX, "JSON: %s (column %d)",
                           jerr.text, jerr.column);
    avro_value_reset(v);
    int rc = hvs_serde_set_json(s->defaults, v, j, "", err);
    json_decref(j);
    return rc;
}

int hvs_serde_value_defaults(hvs_serde_t *s, avro_value_t *record, hvs_err_t *err) {
    return hvs_serde_apply_defaults(s->defaults, record, err);
}

/* The field `name` of v, through a union's current branch. */
static int field(avro_value_t *v, const char *name, avro_value_t *out) {
    avro_value_t f;
    if (avro_value_get_by_name(v, name, &f, NULL))
        return -1;
    if (avro_value_get_type(&f) == AVRO_UNION)
        return avro_value_get_current_branch(&f, out) ? -1 : 0;
    *out = f;
    return 0;
}

const char *hvs_serde_field_str(avro_value_t *v, const char *name) {
    avro_value_t f;
    const char *s = NULL;
    size_t n;
    if (field(v, name, &f) || avro_value_get_type(&f) != AVRO_STRING)
        return NULL;
    return avro_value_get_string(&f, &s, &n) ? NULL : s;
}

int64_t hvs_serde_field_long(avro_value_t *v, const char *name) {
    avro_value_t f;
    int64_t l = 0;
    int32_t i = 0;
    if (field(v, name, &f))
        return 0;
    if (avro_value_get_type(&f) == AVRO_INT32)
        return avro_value_get_int(&f, &i) ? 0 : i;
    if (avro_value_get_type(&f) != AVRO_INT64 || avro_value_get_long(&f, &l))
        return 0;
    return l;
}

double hvs_serde_field_double(avro_value_t *v, const char *name) {
    avro_value_t f;
    double d;
    if (field(v, name, &f) || avro_value_get_type(&f) != AVRO_DOUBLE || avro_value_get_double(&f, &d) ||
        !isfinite(d))
        return NAN;
    return d;
}
