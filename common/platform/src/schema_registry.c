/* The Schema Registry REST client (see schema_registry.h). */
#include "schema_registry.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/serde.h"

/* A registration already made: (subject, schema text) -> id. */
typedef struct subject_id {
    char subject[256];
    char *schema_json;
    int32_t id;
} subject_id_t;

struct hvs_schema_registry {
    char *url;
    CURL *curl;
    subject_id_t *subj;
    size_t nsubj, capsubj;
};

int hvs_schema_registry_new(const char *url, hvs_schema_registry_t **out, hvs_err_t *err) {
    hvs_schema_registry_t *r = calloc(1, sizeof *r);
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        n--;
    if (r) {
        r->url = strndup(url, n);
        r->curl = curl_easy_init();
    }
    if (!r || !r->url || !r->curl) {
        hvs_schema_registry_destroy(r);
        return hvs_err_set(err, HVS_ENOMEM, NULL, "serde: cannot create HTTP client");
    }
    *out = r;
    return HVS_OK;
}

void hvs_schema_registry_destroy(hvs_schema_registry_t *r) {
    if (!r)
        return;
    if (r->curl)
        curl_easy_cleanup(r->curl);
    for (size_t i = 0; i < r->nsubj; i++)
        free(r->subj[i].schema_json);
    free(r->subj);
    free(r->url);
    free(r);
}

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
static int registry_call(hvs_schema_registry_t *r, const char *path, const char *body, json_t **out,
                         hvs_err_t *err) {
    char url[1024];
    snprintf(url, sizeof url, "%s%s", r->url, path);
    http_buf_t b = {NULL, 0};
    CURL *c = r->curl;
    curl_easy_reset(c);
    struct curl_slist *hdrs = curl_slist_append(NULL,
                                                "Accept: application/vnd.schemaregistry.v1+json");
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

int hvs_schema_registry_register(hvs_schema_registry_t *r, const char *subject,
                                 const char *schema_json, int32_t *id, hvs_err_t *err) {
    for (size_t i = 0; i < r->nsubj; i++)
        if (strcmp(r->subj[i].subject, subject) == 0 &&
            strcmp(r->subj[i].schema_json, schema_json) == 0) {
            *id = r->subj[i].id;
            return HVS_OK;
        }
    char path[512];
    snprintf(path, sizeof path, "/subjects/%s/versions", subject);
    json_t *req = json_pack("{s:s}", "schema", schema_json);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    json_t *resp = NULL;
    int rc = registry_call(r, path, body, &resp, err);
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
    if (r->nsubj == r->capsubj) {
        size_t cap = r->capsubj ? r->capsubj * 2 : 8;
        subject_id_t *n = realloc(r->subj, cap * sizeof *n);
        if (!n)
            return hvs_err_set(err, HVS_ENOMEM, NULL, "schema registry cache: out of memory");
        r->subj = n;
        r->capsubj = cap;
    }
    subject_id_t *e = &r->subj[r->nsubj];
    e->schema_json = strdup(schema_json);
    if (!e->schema_json)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "schema registry cache: out of memory");
    snprintf(e->subject, sizeof e->subject, "%s", subject);
    e->id = *id;
    r->nsubj++;
    return HVS_OK;
}

int hvs_schema_registry_fetch(hvs_schema_registry_t *r, int32_t id, char **schema_json,
                              hvs_err_t *err) {
    char path[64];
    snprintf(path, sizeof path, "/schemas/ids/%d", (int)id);
    json_t *resp = NULL;
    int rc = registry_call(r, path, NULL, &resp, err);
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
    *schema_json = strdup(text);
    json_decref(resp);
    return *schema_json ? HVS_OK : hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
}
