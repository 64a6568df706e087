/* model_registry.c - ModelVersion records and the serving side of the registry (see hvs/model_registry.h; docs/internals/model-registry.md). */
#include "hvs/model_registry.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/features.h"
#include "hvs/follow.h"
#include "hvs/log.h"
#include "hvs/profile.h"
#include "hvs/task_rows.h"
#include "hvs/time.h"
#include "hvs/vec.h"

static const char *const status_names[] = {"PENDING_APPROVAL", "APPROVED", "REJECTED", "ARCHIVED"};

const char *hvs_model_status_name(hvs_model_status_t s) {
    return (unsigned)s < 4 ? status_names[s] : "?";
}

int hvs_model_status_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, status_names[i]) == 0)
            return i;
    return -1;
}

int hvs_registry_key(char *buf, size_t len, const char *name, int version) {
    int n = snprintf(buf, len, "%s#%d", name, version);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

/* ---- reading a record ----------------------------------------------------------------------- */

static double metric(avro_value_t *v, const char *name) {
    avro_value_t m, f, b;
    double d;
    if (avro_value_get_by_name(v, "metrics", &m, NULL) ||
        avro_value_get_by_name(&m, name, &f, NULL) || avro_value_get_current_branch(&f, &b) ||
        avro_value_get_type(&b) != AVRO_DOUBLE || avro_value_get_double(&b, &d))
        return NAN;
    return d;
}

static void ref_free(hvs_model_ref_t *r) {
    if (!r)
        return;
    hvs_model_destroy(r->model);
    for (size_t i = 0; i < r->nfeatures; i++)
        free(r->features[i]);
    free(r->features);
    free(r->feature_index);
    free(r->probe);
    free(r->profile);
    free(r->profile_values);
    for (size_t i = 0; i < 2 * r->nparams; i++)
        free(r->params[i]);
    free(r->params);
    free(r->joint.temp_edges);
    free(r->joint.irr_edges);
    free(r->joint.counts);
    free(r->name);
    free(r);
}

const char *hvs_model_ref_param(const hvs_model_ref_t *r, const char *key) {
    for (size_t i = 0; r && i < r->nparams; i++)
        if (strcmp(r->params[2 * i], key) == 0)
            return r->params[2 * i + 1];
    return NULL;
}

bool hvs_model_ref_fits(const hvs_model_ref_t *r, hvs_task_t t) {
    size_t n;
    const char *const *cols = hvs_taskrow_columns(t, &n);
    if (!r || n == 0 || r->nfeatures != n || !r->model || hvs_model_columns(r->model) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(r->features[i], cols[i]) != 0)
            return false;
    return true;
}

int64_t hvs_joint_histogram_count(const hvs_joint_histogram_t *h, double t, double g, size_t *ti,
                                  size_t *gi) {
    if (!h->counts || !isfinite(t) || !isfinite(g))
        return -1;
    size_t a = 0, b = 0;
    while (a + 2 < h->ntemp && t >= h->temp_edges[a + 1])
        a++;
    while (b + 2 < h->nirr && g >= h->irr_edges[b + 1])
        b++;
    if (ti)
        *ti = a;
    if (gi)
        *gi = b;
    return h->counts[a * (h->nirr - 1) + b];
}

int hvs_joint_histogram_bracketed(const hvs_joint_histogram_t *h, double t, double g,
                                  int64_t min_count, int64_t *below_out, int64_t *above_out) {
    size_t a, b;
    if (hvs_joint_histogram_count(h, t, g, &a, &b) < 0)
        return -1;
    size_t nt = h->ntemp - 1, ng = h->nirr - 1;
    int64_t below = 0, above = 0; /* colder and darker; warmer and sunnier */
    for (size_t i = 0; i < nt; i++)
        for (size_t j = 0; j < ng; j++) {
            int64_t c = h->counts[i * ng + j];
            if (i <= a && j <= b)
                below += c;
            if (i >= a && j >= b)
                above += c;
        }
    if (below_out)
        *below_out = below;
    if (above_out)
        *above_out = above;
    return below >= min_count && above >= min_count;
}

/* An array of doubles of the record into a malloc'd copy; the count, or 0 when absent or bad. */
static size_t doubles_of(avro_value_t *arr, double **out) {
    size_t n = 0;
    *out = NULL;
    if (avro_value_get_size(arr, &n) || n == 0 || n > 1024 || !(*out = malloc(n * sizeof **out)))
        return 0;
    for (size_t i = 0; i < n; i++) {
        avro_value_t x;
        if (avro_value_get_by_index(arr, i, &x, NULL) || avro_value_get_double(&x, &(*out)[i]) ||
            !isfinite((*out)[i]) || (i && !((*out)[i] > (*out)[i - 1]))) {
            free(*out);
            *out = NULL;
            return 0;
        }
    }
    return n;
}

/* The record's params, metrics and joint histogram onto r (model_registry.h: an unusable
 * histogram is left out; only HVS_ENOMEM fails). */
static int extras_decode(avro_value_t *v, hvs_model_ref_t *r, hvs_err_t *err) {
    r->metrics = (hvs_model_metrics_t){metric(v, "mape"),
                                       metric(v, "wape"),
                                       metric(v, "rmse"),
                                       metric(v, "mae"),
                                       metric(v, "precision_at_k"),
                                       metric(v, "recall_at_k"),
                                       -1};
    avro_value_t params, jh, br, f;
    size_t np = 0;
    if (avro_value_get_by_name(v, "params", &params, NULL) == 0 &&
        avro_value_get_size(&params, &np) == 0 && np) {
        if (!(r->params = calloc(2 * np, sizeof *r->params)))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "params of %s", r->ident);
        for (size_t i = 0; i < np; i++) {
            avro_value_t x;
            const char *key, *val;
            size_t vl;
            if (avro_value_get_by_index(&params, i, &x, &key) ||
                avro_value_get_string(&x, &val, &vl))
                continue;
            char **kv = &r->params[2 * r->nparams];
            if (!(kv[0] = strdup(key)) || !(kv[1] = strdup(val))) {
                free(kv[0]);
                kv[0] = NULL;
                return hvs_err_set(err, HVS_ENOMEM, "oom", "params of %s", r->ident);
            }
            r->nparams++;
        }
    }
    hvs_joint_histogram_t *j = &r->joint;
    if (avro_value_get_by_name(v, "joint_histogram", &jh, NULL) ||
        avro_value_get_current_branch(&jh, &br) || avro_value_get_type(&br) != AVRO_RECORD)
        return 0;
    if (avro_value_get_by_name(&br, "temperature_edges_c", &f, NULL) == 0)
        j->ntemp = doubles_of(&f, &j->temp_edges);
    if (avro_value_get_by_name(&br, "irradiance_edges_wm2", &f, NULL) == 0)
        j->nirr = doubles_of(&f, &j->irr_edges);
    size_t nc = 0;
    bool ok = j->ntemp >= 2 && j->nirr >= 2 &&
              avro_value_get_by_name(&br, "counts", &f, NULL) == 0 &&
              avro_value_get_size(&f, &nc) == 0 && nc == (j->ntemp - 1) * (j->nirr - 1) &&
              (j->counts = malloc(nc * sizeof *j->counts));
    for (size_t i = 0; ok && i < nc; i++) {
        avro_value_t x;
        ok = avro_value_get_by_index(&f, i, &x, NULL) == 0 &&
             avro_value_get_long(&x, &j->counts[i]) == 0 && j->counts[i] >= 0;
        j->total += ok ? j->counts[i] : 0;
    }
    if (!ok) {
        free(j->temp_edges), free(j->irr_edges), free(j->counts);
        *j = (hvs_joint_histogram_t){0};
    }
    return 0;
}

void hvs_registry_release(hvs_model_ref_t *ref) {
    if (ref && atomic_fetch_sub(&ref->refs, 1) == 1)
        ref_free(ref);
}

/* Entry p of the record's profile into vals[*nv..] (quantiles, then probabilities; grown as
 * needed): its length (0 for a feature never seen in training) and missing rate, or -1 when it
 * is not a usable profile (the rules of model_registry.h), -2 when memory ran out. */
static long profile_entry(avro_value_t *p, double **vals, size_t *nv, size_t *cap, double *mr) {
    avro_value_t q, pr, m, x;
    size_t nq = 0, npr = 0;
    if (avro_value_get_by_name(p, "quantiles", &q, NULL) ||
        avro_value_get_by_name(p, "probabilities", &pr, NULL) ||
        avro_value_get_by_name(p, "missing_rate", &m, NULL) || avro_value_get_double(&m, mr) ||
        avro_value_get_size(&q, &nq) || avro_value_get_size(&pr, &npr) || nq != npr ||
        nq > HVS_MODEL_PROFILE_MAX_QUANTILES || !(*mr >= 0 && *mr <= 1))
        return -1;
    if (*nv + 2 * nq > *cap) {
        size_t nc = (*nv + 2 * nq) * 2;
        double *g = realloc(*vals, nc * sizeof *g);
        if (!g)
            return -2;
        *vals = g;
        *cap = nc;
    }
    double *qs = *vals + *nv, *ps = qs + nq;
    size_t nan = 0;
    for (size_t j = 0; j < nq; j++) {
        if (avro_value_get_by_index(&q, j, &x, NULL) || avro_value_get_double(&x, &qs[j]) ||
            avro_value_get_by_index(&pr, j, &x, NULL) || avro_value_get_double(&x, &ps[j]))
            return -1;
        nan += isnan(qs[j]);
    }
    if (nq && nan == nq) /* the trainer's mark of a feature it never saw: no values to bin */
        return 0;
    for (size_t j = 0; j < nq; j++)
        if (!isfinite(qs[j]) || !(ps[j] >= 0 && ps[j] <= 1) ||
            (j && (!(ps[j] > ps[j - 1]) || qs[j] < qs[j - 1])))
            return -1;
    *nv += 2 * nq;
    return (long)nq;
}

/* The record's training profile onto r->profile, in r's column order. A later entry of the same
 * name replaces an earlier one (as for the probe); unusable entries leave the feature without
 * one. Only HVS_ENOMEM fails: the profile never decides whether a version serves. */
static int profile_decode(avro_value_t *v, hvs_model_ref_t *r, hvs_err_t *err) {
    size_t n = r->nfeatures, nv = 0, cap = 0, np = 0;
    double *vals = NULL;
    size_t *off = calloc(n, sizeof *off);
    r->profile = calloc(n, sizeof *r->profile);
    if (!off || !r->profile) {
        free(off);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "profile of %s", r->ident);
    }
    avro_value_t prof;
    if (avro_value_get_by_name(v, "profile", &prof, NULL) == 0 &&
        avro_value_get_size(&prof, &np) == 0)
        for (size_t k = 0; k < np; k++) {
            avro_value_t p, x;
            const char *pn;
            size_t pl;
            if (avro_value_get_by_index(&prof, k, &p, NULL) ||
                avro_value_get_by_name(&p, "name", &x, NULL) || avro_value_get_string(&x, &pn, &pl))
                continue;
            for (size_t i = 0; i < n; i++) {
                if (strcmp(r->features[i], pn) != 0)
                    continue;
                size_t at = nv;
                double mr = 0;
                long nq = profile_entry(&p, &vals, &nv, &cap, &mr);
                if (nq == -2) {
                    free(off);
                    free(vals);
                    return hvs_err_set(err, HVS_ENOMEM, "oom", "profile of %s", r->ident);
                }
                r->profile[i] = nq < 0 ? (hvs_feature_profile_t){0}
                                       : (hvs_feature_profile_t){r->features[i], NULL, NULL,
                                                                 (size_t)nq, mr};
                off[i] = at;
            }
        }
    /* pointers only now: vals moved while it grew */
    for (size_t i = 0; i < n; i++)
        if (r->profile[i].nq) {
            r->profile[i].quantiles = vals + off[i];
            r->profile[i].probabilities = vals + off[i] + r->profile[i].nq;
        }
    r->profile_values = vals;
    free(off);
    return 0;
}

static int load_value(avro_value_t *v, hvs_model_ref_t **out, hvs_err_t *err) {
    const char *name = hvs_serde_field_str(v, "name"),
               *fsv = hvs_serde_field_str(v, "feature_set_version");
    const char *fmt = hvs_serde_field_str(v, "model_format"),
               *comp = hvs_serde_field_str(v, "compression");
    int version = (int)hvs_serde_field_long(v, "version");
    if (!name || !fsv || !fmt || !comp)
        return hvs_err_set(err, HVS_ESERDE, "bad_record", "ModelVersion without name or formats");
    if (strcmp(fsv, hvs_features_version()) != 0)
        return hvs_err_set(err, HVS_ESERDE, "feature_mismatch",
                           "%s v%d: feature set %s, this build computes %s", name, version, fsv,
                           hvs_features_version());
    /* a prediction in a unit this build cannot turn back into kWh must not serve: the
     * workers would publish numbers off by the building's area (or worse) */
    const char *scale = NULL;
    avro_value_t params, ps;
    size_t scale_len;
    bool has_params = avro_value_get_by_name(v, "params", &params, NULL) == 0;
    if (has_params && avro_value_get_by_name(&params, "target_scale", &ps, NULL) == 0 &&
        avro_value_get_string(&ps, &scale, &scale_len))
        scale = "";
    int tscale = hvs_taskrow_scale_parse(scale);
    if (tscale < 0)
        return hvs_err_set(
            err, HVS_ESERDE, "unknown_target_scale",
            "%s v%d: target scale \"%s\", this build knows %s, %s, %s (or none: kWh)", name,
            version, scale, hvs_taskrow_scale_name(HVS_TARGET_KWH),
            hvs_taskrow_scale_name(HVS_TARGET_PER_HEATED_M2),
            hvs_taskrow_scale_name(HVS_TARGET_PROBABILITY));
    /* a model of another deployment's profile (profile.h) predicts another quantity: a heat
     * model must never serve an EV-charging site, nor the reverse. Absent: heat (the models
     * written before profiles existed) */
    const char *mprof = NULL;
    size_t prof_len;
    if (!has_params || avro_value_get_by_name(&params, "profile", &ps, NULL) != 0 ||
        avro_value_get_string(&ps, &mprof, &prof_len))
        mprof = HVS_PROFILE_DEFAULT;
    if (strcmp(mprof, hvs_profile_active()->name) != 0)
        return hvs_err_set(err, HVS_ESERDE, "profile_mismatch",
                           "%s v%d: a model of profile %s, this deployment's profile is %s "
                           "(HVS_PROFILE)",
                           name, version, mprof, hvs_profile_active()->name);
    bool linear = strcmp(fmt, HVS_MODEL_FORMAT_LINEAR) == 0;
    if ((!linear && strcmp(fmt, HVS_MODEL_FORMAT_XGBOOST) != 0) ||
        (strcmp(comp, "zlib") != 0 && strcmp(comp, "none") != 0))
        return hvs_err_set(err, HVS_ESERDE, "corrupt_model", "%s v%d: format %s/%s not served",
                           name, version, fmt, comp);
    hvs_model_ref_t *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))) {
        free(r);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "model %s", name);
    }
    r->version = version;
    r->target_scale = (hvs_target_scale_t)tscale;
    snprintf(r->ident, sizeof r->ident, "%s:%d", name, version);
    atomic_init(&r->refs, 1);
    int rc = 0;
    avro_value_t arr, item;
    size_t n = 0;
    if (avro_value_get_by_name(v, "feature_names", &arr, NULL) || avro_value_get_size(&arr, &n) ||
        n == 0 || n > 4096) {
        rc = hvs_err_set(err, HVS_ESERDE, "feature_mismatch", "%s: %zu feature names", r->ident, n);
        goto fail;
    }
    r->features = calloc(n, sizeof *r->features);
    r->feature_index = calloc(n, sizeof *r->feature_index);
    r->probe = calloc(n, sizeof *r->probe);
    if (!r->features || !r->feature_index || !r->probe) {
        rc = hvs_err_set(err, HVS_ENOMEM, "oom", "model %s", r->ident);
        goto fail;
    }
    r->nfeatures = n;
    for (size_t i = 0; i < n; i++) {
        const char *s;
        size_t sl;
        if (avro_value_get_by_index(&arr, i, &item, NULL) ||
            avro_value_get_string(&item, &s, &sl) || !(r->features[i] = strdup(s))) {
            rc = hvs_err_set(err, HVS_ESERDE, "bad_record", "%s: feature %zu", r->ident, i);
            goto fail;
        }
        r->feature_index[i] = hvs_features_index(s);
        /* an hvs-linear model's other inputs (recent forecast errors) come from its worker */
        if (r->feature_index[i] < 0 && !linear) {
            rc = hvs_err_set(err, HVS_ESERDE, "feature_mismatch", "%s: %s is not a feature of %s",
                             r->ident, s, hvs_features_version());
            goto fail;
        }
        r->probe[i] = NAN;
    }
    /* the probe row: each feature's median from the training profile */
    avro_value_t prof;
    size_t np = 0;
    if (avro_value_get_by_name(v, "profile", &prof, NULL) == 0 &&
        avro_value_get_size(&prof, &np) == 0)
        for (size_t k = 0; k < np; k++) {
            avro_value_t p, q, pr, x;
            const char *pn;
            size_t pl, nq = 0;
            if (avro_value_get_by_index(&prof, k, &p, NULL) ||
                avro_value_get_by_name(&p, "name", &x, NULL) ||
                avro_value_get_string(&x, &pn, &pl) ||
                avro_value_get_by_name(&p, "quantiles", &q, NULL) ||
                avro_value_get_by_name(&p, "probabilities", &pr, NULL) ||
                avro_value_get_size(&q, &nq))
                continue;
            for (size_t i = 0; i < n; i++)
                if (strcmp(r->features[i], pn) == 0)
                    for (size_t j = 0; j < nq; j++) {
                        avro_value_t a, b;
                        double qa, pb;
                        if (avro_value_get_by_index(&q, j, &a, NULL) == 0 &&
                            avro_value_get_by_index(&pr, j, &b, NULL) == 0 &&
                            avro_value_get_double(&a, &qa) == 0 &&
                            avro_value_get_double(&b, &pb) == 0 && fabs(pb - 0.5) < 1e-9)
                            r->probe[i] = qa;
                    }
        }
    if ((rc = profile_decode(v, r, err)) || (rc = extras_decode(v, r, err)))
        goto fail;
    avro_value_t bf;
    const void *bytes;
    size_t blen;
    if (avro_value_get_by_name(v, "model_bytes", &bf, NULL) ||
        avro_value_get_bytes(&bf, &bytes, &blen)) {
        rc = hvs_err_set(err, HVS_ESERDE, "corrupt_model", "%s: no model bytes", r->ident);
        goto fail;
    }
    unsigned char *raw = NULL;
    size_t rawlen = blen;
    if (strcmp(comp, "zlib") == 0) {
        if ((rc = hvs_zlib_decompress(bytes, blen, HVS_MODEL_MAX_BYTES, &raw, &rawlen, err)))
            goto fail;
    } else if (blen > HVS_MODEL_MAX_BYTES) {
        rc = hvs_err_set(err, HVS_ESERDE, "too_large", "%s: %zu bytes", r->ident, blen);
        goto fail;
    }
    rc = hvs_model_load(raw ? raw : bytes, rawlen, n, &r->model, err);
    free(raw);
    if (rc)
        goto fail;
    /* the kind the bytes are must be the one the record declares (and was validated for) */
    if (strcmp(hvs_model_format(r->model), fmt) != 0) {
        rc = hvs_err_set(err, HVS_ESERDE, "corrupt_model",
                         "%s: the record says %s, its bytes are %s", r->ident, fmt,
                         hvs_model_format(r->model));
        goto fail;
    }
    float *row = malloc(n * sizeof *row), pred = NAN;
    if (!row) {
        rc = hvs_err_set(err, HVS_ENOMEM, "oom", "probe");
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        row[i] = (float)r->probe[i];
    rc = hvs_model_predict(r->model, row, 1, &pred, err);
    free(row);
    if (rc == 0 && !isfinite(pred))
        rc = hvs_err_set(err, HVS_ESERDE, "probe_failed", "%s predicts %g on its probe row",
                         r->ident, pred);
    if (rc)
        goto fail;
    *out = r;
    return 0;
fail:
    ref_free(r);
    return rc;
}

int hvs_registry_load_record(hvs_serde_t *s, const void *record, size_t len, hvs_model_ref_t **out,
                             hvs_err_t *err) {
    hvs_decoder_t *dec;
    int rc = hvs_decoder_new(s, HVS_SCHEMA_MODEL_VERSION, &dec, err);
    if (rc)
        return rc;
    avro_value_t *v;
    rc = hvs_decoder_decode(dec, record, len, &v, err);
    if (rc == 0)
        rc = load_value(v, out, err);
    hvs_decoder_destroy(dec);
    return rc;
}

/* ---- the registry --------------------------------------------------------------------------- */

typedef struct active {
    char *name;
    hvs_model_ref_t *ref; /* NULL: none serves */
} active_t;

struct hvs_registry {
    hvs_serde_t *serde;
    hvs_decoder_t *dec;
    hvs_follow_t *follow;
    hvs_registry_opts_t opts;
    hvs_model_info_t *v; /* sorted by (name, version) */
    size_t n, cap;
    active_t *act;
    size_t nact, capact;
    pthread_mutex_t lock; /* act[].ref against acquire */
    uint64_t refused, bad;
    bool dirty;
    hvs_log_limit_t skip_log; /* a storm of bad records must not flood the logs */
};

static void info_free(hvs_model_info_t *i) {
    free(i->name);
    free(i->feature_set_version);
    free(i->decided_by);
    free(i->decision_reason);
    free((void *)i->record);
}

int hvs_registry_new(const hvs_kafka_conf_t *conf, hvs_serde_t *s, const char *topic,
                     const hvs_registry_opts_t *opts, hvs_registry_t **out, hvs_err_t *err) {
    hvs_registry_t *r = calloc(1, sizeof *r);
    if (!r)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "registry");
    r->serde = s;
    if (opts)
        r->opts = *opts;
    pthread_mutex_init(&r->lock, NULL);
    int rc = hvs_decoder_new(s, HVS_SCHEMA_MODEL_VERSION, &r->dec, err);
    if (rc == 0)
        rc = hvs_follow_new(conf, topic, "registry", &r->follow, err);
    if (rc) {
        hvs_registry_destroy(r);
        return rc;
    }
    *out = r;
    return 0;
}

void hvs_registry_destroy(hvs_registry_t *r) {
    if (!r)
        return;
    hvs_follow_destroy(r->follow);
    hvs_decoder_destroy(r->dec);
    for (size_t i = 0; i < r->n; i++)
        info_free(&r->v[i]);
    free(r->v);
    for (size_t i = 0; i < r->nact; i++) {
        hvs_registry_release(r->act[i].ref);
        free(r->act[i].name);
    }
    free(r->act);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static int cmp_info(const char *name, int version, const hvs_model_info_t *b) {
    int c = strcmp(name, b->name);
    return c ? c : (version > b->version) - (version < b->version);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* A record of `models` that cannot be used: counted (hvs_registry_bad) and logged, rate-limited.
 * `models` is followed without a group, so there is no dead-letter path. */
static void skip(hvs_registry_t *r, const rd_kafka_message_t *m, const hvs_err_t *e) {
    r->bad++;
    if (hvs_log_limit_take(&r->skip_log, e->reason, hvs_time_mono_ms(), "registry",
                           "skipped models records"))
        hvs_log_warn("registry", "skipped a models record at offset %lld (%s): %s",
                     (long long)m->offset, e->reason, e->msg);
}

static void on_record(void *opaque, const rd_kafka_message_t *m) {
    hvs_registry_t *r = opaque;
    avro_value_t *v;
    hvs_err_t e = {0};
    if (!m->payload) {
        hvs_err_set(&e, HVS_EINVAL, "empty_value", "a tombstone (versions are never deleted)");
        skip(r, m, &e);
        return;
    }
    if (hvs_decoder_decode(r->dec, m->payload, m->len, &v, &e)) {
        skip(r, m, &e);
        return;
    }
    const char *name = hvs_serde_field_str(v, "name");
    avro_value_t f;
    int status;
    if (!name || avro_value_get_by_name(v, "status", &f, NULL) ||
        avro_value_get_enum(&f, &status)) {
        hvs_err_set(&e, HVS_ESERDE, "bad_record", "ModelVersion without a name or a status");
        skip(r, m, &e);
        return;
    }
    if (r->opts.prefix && strncmp(name, r->opts.prefix, strlen(r->opts.prefix)) != 0)
        return;
    int version = (int)hvs_serde_field_long(v, "version");
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_info(name, version, &r->v[mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    hvs_model_info_t *i;
    if (lo < r->n && cmp_info(name, version, &r->v[lo]) == 0) {
        i = &r->v[lo];
        info_free(i);
    } else {
        hvs_model_info_t *nv = hvs_vec_grow(r->v, &r->cap, r->n + 1, sizeof *nv, 16);
        if (!nv) {
            hvs_err_set(&e, HVS_ENOMEM, "oom", "%s v%d: out of memory", name, version);
            skip(r, m, &e);
            return;
        }
        r->v = nv;
        memmove(&r->v[lo + 1], &r->v[lo], (r->n - lo) * sizeof *r->v);
        r->n++;
        i = &r->v[lo];
    }
    memset(i, 0, sizeof *i);
    void *copy = malloc(m->len);
    if (copy)
        memcpy(copy, m->payload, m->len);
    avro_value_t arr;
    size_t nf = 0;
    if (avro_value_get_by_name(v, "feature_names", &arr, NULL) == 0)
        avro_value_get_size(&arr, &nf);
    *i = (hvs_model_info_t){
        .name = strdup(name),
        .version = version,
        .status = (hvs_model_status_t)status,
        .created_at = hvs_serde_field_long(v, "created_at"),
        .train_start = hvs_serde_field_long(v, "train_start"),
        .train_end = hvs_serde_field_long(v, "train_end"),
        .feature_set_version = dup_or_null(hvs_serde_field_str(v, "feature_set_version")),
        .nfeatures = nf,
        .decided_by = dup_or_null(hvs_serde_field_str(v, "decided_by")),
        .decision_reason = dup_or_null(hvs_serde_field_str(v, "decision_reason")),
        .wape = metric(v, "wape"),
        .mape = metric(v, "mape"),
        .rmse = metric(v, "rmse"),
        .mae = metric(v, "mae"),
        .record = copy,
        .record_len = copy ? m->len : 0};
    r->dirty = true;
}

static active_t *active_of(hvs_registry_t *r, const char *name, bool create) {
    for (size_t i = 0; i < r->nact; i++)
        if (strcmp(r->act[i].name, name) == 0)
            return &r->act[i];
    if (!create)
        return NULL;
    active_t *na = hvs_vec_grow(r->act, &r->capact, r->nact + 1, sizeof *na, 8);
    char *nm = strdup(name);
    if (!na || !nm) {
        free(nm);
        return NULL;
    }
    r->act = na;
    r->act[r->nact] = (active_t){nm, NULL};
    return &r->act[r->nact++];
}

/* Make a the active one of its name (or none). */
static void swap_in(hvs_registry_t *r, active_t *a, hvs_model_ref_t *ref) {
    pthread_mutex_lock(&r->lock);
    hvs_model_ref_t *old = a->ref;
    a->ref = ref;
    pthread_mutex_unlock(&r->lock);
    if (ref)
        hvs_log_info("registry", "%s: now serving v%d (was %d)", a->name, ref->version,
                     old ? old->version : 0);
    else
        hvs_log_warn("registry", "%s: no approved version left, none serves", a->name);
    if (r->opts.on_swap)
        r->opts.on_swap(r->opts.opaque, a->name, old, ref);
    hvs_registry_release(old);
}

/* The version that should serve each name: the highest approved one that validates; load,
 * validate and swap where it changed. A version that fails is marked and passed over. */
static void reconcile(hvs_registry_t *r) {
    for (size_t i = 0; i < r->n;) {
        size_t j = i;
        while (j < r->n && strcmp(r->v[j].name, r->v[i].name) == 0)
            j++;
        pthread_mutex_lock(&r->lock); /* act may move: acquire reads it */
        active_t *a = active_of(r, r->v[i].name, true);
        pthread_mutex_unlock(&r->lock);
        size_t first = i;
        i = j;
        if (!a || !r->opts.load_models)
            continue;
        int cur = a->ref ? a->ref->version : 0;
        bool done = false;
        for (size_t k = j; k-- > first && !done;) {
            hvs_model_info_t *want = &r->v[k];
            if (want->status != HVS_MODEL_APPROVED || want->refused)
                continue;
            if (want->version == cur) {
                done = true; /* already serving */
                break;
            }
            hvs_model_ref_t *ref = NULL;
            hvs_err_t e = {0};
            avro_value_t *v;
            int rc = want->record
                         ? hvs_decoder_decode(r->dec, want->record, want->record_len, &v, &e)
                         : hvs_err_set(&e, HVS_ENOMEM, "oom", "record copy");
            if (rc == 0)
                rc = load_value(v, &ref, &e);
            if (rc) {
                r->refused++;
                want->refused = true;
                hvs_log_error("registry", "%s v%d refused (%s): %s", want->name, want->version,
                              e.reason, e.msg);
                continue; /* the next approved one down */
            }
            swap_in(r, a, ref);
            done = true;
        }
        if (!done && a->ref)
            swap_in(r, a, NULL);
    }
}

int hvs_registry_poll(hvs_registry_t *r, int timeout_ms) {
    int n = hvs_follow_poll(r->follow, timeout_ms, on_record, r);
    hvs_log_limit_flush(&r->skip_log, hvs_time_mono_ms(), "registry", "skipped models records");
    if (r->dirty) {
        r->dirty = false;
        reconcile(r);
    }
    return n;
}

bool hvs_registry_caught_up(const hvs_registry_t *r) { return hvs_follow_caught_up(r->follow); }

hvs_model_ref_t *hvs_registry_acquire(hvs_registry_t *r, const char *name) {
    hvs_model_ref_t *ref = NULL;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nact; i++)
        if (strcmp(r->act[i].name, name) == 0 && r->act[i].ref) {
            ref = r->act[i].ref;
            atomic_fetch_add(&ref->refs, 1);
            break;
        }
    pthread_mutex_unlock(&r->lock);
    return ref;
}

const hvs_model_info_t *hvs_registry_versions(const hvs_registry_t *r, size_t *n) {
    *n = r->n;
    return r->v;
}

int hvs_registry_active_version(const hvs_registry_t *r, const char *name) {
    for (size_t i = 0; i < r->nact; i++)
        if (strcmp(r->act[i].name, name) == 0)
            return r->act[i].ref ? r->act[i].ref->version : 0;
    return 0;
}

uint64_t hvs_registry_refused(const hvs_registry_t *r) { return r->refused; }
uint64_t hvs_registry_bad(const hvs_registry_t *r) { return r->bad; }

/* ---- writing records ------------------------------------------------------------------------ */

static int set_s(avro_value_t *v, const char *name, const char *s) {
    avro_value_t f;
    return avro_value_get_by_name(v, name, &f, NULL) || avro_value_set_string(&f, s);
}

static int set_l(avro_value_t *v, const char *name, int64_t l) {
    avro_value_t f;
    return avro_value_get_by_name(v, name, &f, NULL) || avro_value_set_long(&f, l);
}

/* ["null", string] */
static int set_os(avro_value_t *v, const char *name, const char *s) {
    avro_value_t f, b;
    if (avro_value_get_by_name(v, name, &f, NULL))
        return -1;
    return s ? avro_value_set_branch(&f, 1, &b) || avro_value_set_string(&b, s)
             : avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
}

static int set_od(avro_value_t *rec, const char *name, double d) {
    avro_value_t f, b;
    if (avro_value_get_by_name(rec, name, &f, NULL))
        return -1;
    return isfinite(d) ? avro_value_set_branch(&f, 1, &b) || avro_value_set_double(&b, d)
                       : avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
}

static int set_metrics(avro_value_t *m, const hvs_model_metrics_t *x) {
    avro_value_t f, b;
    int bad = set_od(m, "mape", x->mape) || set_od(m, "wape", x->wape) ||
              set_od(m, "rmse", x->rmse) || set_od(m, "mae", x->mae) ||
              set_od(m, "precision_at_k", x->precision_at_k) ||
              set_od(m, "recall_at_k", x->recall_at_k) ||
              avro_value_get_by_name(m, "n_eval", &f, NULL);
    if (bad)
        return -1;
    return x->n_eval >= 0 ? avro_value_set_branch(&f, 1, &b) || avro_value_set_int(&b, x->n_eval)
                          : avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
}

static int append_doubles(avro_value_t *arr, const double *d, size_t n) {
    avro_value_t item;
    for (size_t i = 0; i < n; i++)
        if (avro_value_append(arr, &item, NULL) || avro_value_set_double(&item, d[i]))
            return -1;
    return 0;
}

int hvs_registry_encode(hvs_serde_t *s, hvs_encoder_t *enc, const hvs_model_record_t *rec,
                        const void **buf, size_t *len, hvs_err_t *err) {
    const char *fmt = rec->model_format ? rec->model_format : HVS_MODEL_FORMAT_XGBOOST;
    /* a record no registry would serve is a writer's bug: refuse it here, not in every reader */
    if (strcmp(fmt, HVS_MODEL_FORMAT_XGBOOST) != 0 && strcmp(fmt, HVS_MODEL_FORMAT_LINEAR) != 0)
        return hvs_err_set(err, HVS_EINVAL, "bad_record", "ModelVersion %s v%d: model format %s",
                           rec->name, rec->version, fmt);
    avro_value_t *v = hvs_encoder_value(enc);
    avro_value_t f, b, item, sub;
    int bad = set_s(v, "name", rec->name) || avro_value_get_by_name(v, "version", &f, NULL) ||
              avro_value_set_int(&f, rec->version) ||
              avro_value_get_by_name(v, "status", &f, NULL) ||
              avro_value_set_enum(&f, (int)rec->status) ||
              set_s(v, "feature_set_version", hvs_features_version()) ||
              set_l(v, "train_start", rec->train_start) || set_l(v, "train_end", rec->train_end) ||
              set_l(v, "created_at", rec->created_at) || set_s(v, "code_version", HVS_VERSION) ||
              set_s(v, "model_format", fmt) || set_s(v, "compression", "zlib") ||
              set_os(v, "sha256", NULL) || set_os(v, "decided_by", rec->decided_by) ||
              set_os(v, "decision_reason", rec->decision_reason);
    bad = bad || avro_value_get_by_name(v, "decided_at", &f, NULL) ||
          (rec->decided_at != HVS_MS_NONE
               ? avro_value_set_branch(&f, 1, &b) || avro_value_set_long(&b, rec->decided_at)
               : avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b));
    bad = bad || avro_value_get_by_name(v, "feature_names", &f, NULL);
    for (size_t i = 0; !bad && i < rec->nfeatures; i++)
        bad = avro_value_append(&f, &item, NULL) || avro_value_set_string(&item, rec->features[i]);
    bad = bad || avro_value_get_by_name(v, "metrics", &f, NULL) || set_metrics(&f, &rec->metrics);
    bad = bad || avro_value_get_by_name(v, "champion_metrics", &f, NULL);
    if (!bad && rec->champion) {
        bad = avro_value_set_branch(&f, 1, &b) || hvs_serde_value_defaults(s, &b, NULL) ||
              set_metrics(&b, rec->champion);
    } else if (!bad) {
        bad = avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
    }
    bad = bad || avro_value_get_by_name(v, "profile", &f, NULL);
    for (size_t i = 0; !bad && i < rec->nprofile; i++) {
        const hvs_feature_profile_t *p = &rec->profile[i];
        bad = avro_value_append(&f, &item, NULL) || hvs_serde_value_defaults(s, &item, NULL) ||
              set_s(&item, "name", p->name) ||
              avro_value_get_by_name(&item, "quantiles", &sub, NULL) ||
              append_doubles(&sub, p->quantiles, p->nq) ||
              avro_value_get_by_name(&item, "probabilities", &sub, NULL) ||
              append_doubles(&sub, p->probabilities, p->nq) ||
              avro_value_get_by_name(&item, "missing_rate", &sub, NULL) ||
              avro_value_set_double(&sub, p->missing_rate);
    }
    bad = bad || avro_value_get_by_name(v, "joint_histogram", &f, NULL);
    if (!bad && rec->temp_edges && rec->irr_edges && rec->counts && rec->ntemp > 1 &&
        rec->nirr > 1) {
        bad = avro_value_set_branch(&f, 1, &b) ||
              avro_value_get_by_name(&b, "temperature_edges_c", &sub, NULL) ||
              append_doubles(&sub, rec->temp_edges, rec->ntemp) ||
              avro_value_get_by_name(&b, "irradiance_edges_wm2", &sub, NULL) ||
              append_doubles(&sub, rec->irr_edges, rec->nirr) ||
              avro_value_get_by_name(&b, "counts", &sub, NULL);
        for (size_t i = 0; !bad && i < (rec->ntemp - 1) * (rec->nirr - 1); i++)
            bad = avro_value_append(&sub, &item, NULL) ||
                  avro_value_set_long(&item, rec->counts[i]);
    } else if (!bad) {
        bad = avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
    }
    bad = bad || avro_value_get_by_name(v, "params", &f, NULL);
    for (const char *const *p = rec->params; !bad && p && p[0] && p[1]; p += 2)
        bad = avro_value_add(&f, p[0], &item, NULL, NULL) || avro_value_set_string(&item, p[1]);
    bad = bad || avro_value_get_by_name(v, "folds", &f, NULL);
    for (size_t i = 0; !bad && i < rec->nfolds; i++) {
        const hvs_model_fold_t *k = &rec->folds[i];
        bad = avro_value_append(&f, &item, NULL) || hvs_serde_value_defaults(s, &item, NULL) ||
              set_l(&item, "train_start", k->train_start) ||
              set_l(&item, "train_end", k->train_end) ||
              set_l(&item, "test_start", k->test_start) || set_l(&item, "test_end", k->test_end) ||
              avro_value_get_by_name(&item, "n_eval", &sub, NULL) ||
              avro_value_set_int(&sub, k->n_eval) || set_od(&item, "wape", k->wape) ||
              set_od(&item, "naive_wape", k->naive_wape) ||
              set_od(&item, "actual_sum", k->actual_sum);
    }
    bad = bad || avro_value_get_by_name(v, "model_bytes", &f, NULL) ||
          avro_value_set_bytes(&f, (void *)(uintptr_t)rec->model, rec->model_len);
    if (bad)
        return hvs_err_set(err, HVS_ESERDE, "avro_encode", "ModelVersion %s v%d: %s", rec->name,
                           rec->version, avro_strerror());
    return hvs_encoder_encode(enc, buf, len, err);
}

int hvs_registry_restatus(hvs_serde_t *s, hvs_encoder_t *enc, const void *record, size_t len,
                          hvs_model_status_t status, const char *by, const char *reason,
                          hvs_ms_t at, const void **buf, size_t *outlen, hvs_err_t *err) {
    hvs_decoder_t *dec;
    int rc = hvs_decoder_new(s, HVS_SCHEMA_MODEL_VERSION, &dec, err);
    if (rc)
        return rc;
    avro_value_t *v;
    rc = hvs_decoder_decode(dec, record, len, &v, err);
    if (rc == 0) {
        avro_value_t *out = hvs_encoder_value(enc), f, b;
        if (avro_value_copy_fast(out, v)) {
            rc = hvs_err_set(err, HVS_ESERDE, "avro_encode", "copy: %s", avro_strerror());
        } else if (avro_value_get_by_name(out, "status", &f, NULL) ||
                   avro_value_set_enum(&f, (int)status) || set_os(out, "decided_by", by) ||
                   set_os(out, "decision_reason", reason) ||
                   avro_value_get_by_name(out, "decided_at", &f, NULL) ||
                   avro_value_set_branch(&f, 1, &b) || avro_value_set_long(&b, at)) {
            rc = hvs_err_set(err, HVS_ESERDE, "avro_encode", "status: %s", avro_strerror());
        } else {
            rc = hvs_encoder_encode(enc, buf, outlen, err);
        }
    }
    hvs_decoder_destroy(dec);
    return rc;
}

int hvs_registry_model_bytes(hvs_serde_t *s, const void *record, size_t len, unsigned char **out,
                             size_t *outlen, hvs_err_t *err) {
    hvs_decoder_t *dec;
    int rc = hvs_decoder_new(s, HVS_SCHEMA_MODEL_VERSION, &dec, err);
    if (rc)
        return rc;
    avro_value_t *v, f;
    const void *bytes;
    size_t blen;
    rc = hvs_decoder_decode(dec, record, len, &v, err);
    const char *comp = rc == 0 ? hvs_serde_field_str(v, "compression") : NULL;
    if (rc == 0 && (avro_value_get_by_name(v, "model_bytes", &f, NULL) ||
                    avro_value_get_bytes(&f, &bytes, &blen) || !comp))
        rc = hvs_err_set(err, HVS_ESERDE, "corrupt_model", "record without model bytes");
    if (rc == 0 && strcmp(comp, "zlib") == 0) {
        rc = hvs_zlib_decompress(bytes, blen, HVS_MODEL_MAX_BYTES, out, outlen, err);
    } else if (rc == 0) {
        *out = malloc(blen ? blen : 1);
        if (!*out)
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "model bytes");
        else
            memcpy(*out, bytes, blen), *outlen = blen;
    }
    hvs_decoder_destroy(dec);
    return rc;
}

int hvs_registry_ready(const hvs_registry_t *r, const hvs_topology_t *t, char *why, size_t whylen) {
    if (t && !hvs_topology_caught_up(t)) {
        snprintf(why, whylen, "topology not read yet");
        return 0;
    }
    if (!hvs_registry_caught_up(r)) {
        snprintf(why, whylen, "models not read yet");
        return 0;
    }
    return 1;
}

void hvs_registry_log_swap(const char *component, const char *name, const hvs_model_ref_t *old,
                           const hvs_model_ref_t *now) {
    hvs_log_info(component, "%s: %s now serves (was %s)", name, now ? now->ident : "none",
                 old ? old->ident : "none");
}
