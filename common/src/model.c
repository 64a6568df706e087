/* model.c - XGBoost through its C API (see hvs/model.h). */
#include "hvs/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xgboost/c_api.h>
#include <zlib.h>

struct hvs_model {
    BoosterHandle bst;
    size_t ncols;
};

static int xgb_fail(hvs_err_t *err, const char *what) {
    return hvs_err_set(err, HVS_EMODEL, "xgboost", "%s: %s", what, XGBGetLastError());
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

size_t hvs_model_columns(const hvs_model_t *m) { return m->ncols; }

void hvs_model_free(hvs_model_t *m) {
    if (!m)
        return;
    if (m->bst)
        XGBoosterFree(m->bst);
    free(m);
}

/* The validation metric of the last EvalOneIter line: "[i]\tvalid-rmse:0.123". */
static double parse_metric(const char *s) {
    const char *c = s ? strrchr(s, ':') : NULL;
    return c ? atof(c + 1) : NAN;
}

int hvs_model_train(const float *x, const float *y, const float *w, size_t nrows, size_t ncols,
                    const float *xv, const float *yv, size_t nv, const hvs_train_params_t *p,
                    hvs_model_t **out, hvs_train_report_t *report, hvs_err_t *err) {
    if (!x || !y || nrows == 0 || ncols == 0 || ncols > 4096)
        return hvs_err_set(err, HVS_EINVAL, "bad_train_set", "%zu rows x %zu columns", nrows, ncols);
    double t0 = now_s();
    DMatrixHandle dtrain = NULL, dvalid = NULL;
    BoosterHandle bst = NULL, best = NULL;
    int rc = 0;
    if (XGDMatrixCreateFromMat(x, (bst_ulong)nrows, (bst_ulong)ncols, NAN, &dtrain) ||
        XGDMatrixSetFloatInfo(dtrain, "label", y, (bst_ulong)nrows) ||
        (w && XGDMatrixSetFloatInfo(dtrain, "weight", w, (bst_ulong)nrows))) {
        rc = xgb_fail(err, "training matrix");
        goto done;
    }
    if (nv && (XGDMatrixCreateFromMat(xv, (bst_ulong)nv, (bst_ulong)ncols, NAN, &dvalid) ||
               XGDMatrixSetFloatInfo(dvalid, "label", yv, (bst_ulong)nv))) {
        rc = xgb_fail(err, "validation matrix");
        goto done;
    }
    DMatrixHandle cache[2] = {dtrain, dvalid};
    if (XGBoosterCreate(cache, nv ? 2 : 1, &bst)) {
        rc = xgb_fail(err, "booster");
        goto done;
    }
    char num[12][32], mono[4096 * 3 + 4];
    snprintf(num[0], sizeof num[0], "%g", p->eta > 0 ? p->eta : 0.05);
    snprintf(num[1], sizeof num[1], "%d", p->max_depth > 0 ? p->max_depth : 6);
    snprintf(num[2], sizeof num[2], "%g", p->min_child_weight > 0 ? p->min_child_weight : 5);
    snprintf(num[3], sizeof num[3], "%g", p->subsample > 0 ? p->subsample : 0.8);
    snprintf(num[4], sizeof num[4], "%g", p->colsample > 0 ? p->colsample : 0.8);
    snprintf(num[5], sizeof num[5], "%g", p->lambda > 0 ? p->lambda : 1);
    snprintf(num[6], sizeof num[6], "%d", p->nthread > 0 ? p->nthread : 2);
    snprintf(num[7], sizeof num[7], "%llu", (unsigned long long)(p->seed % 2147483647u));
    const char *obj = p->objective ? p->objective : "reg:squarederror";
    const char *params[][2] = {
        {"booster", "gbtree"}, {"tree_method", "hist"}, {"objective", obj}, {"eta", num[0]},
        {"max_depth", num[1]}, {"min_child_weight", num[2]}, {"subsample", num[3]},
        {"colsample_bytree", num[4]}, {"lambda", num[5]}, {"nthread", num[6]}, {"seed", num[7]},
        {"verbosity", "0"},
        {"eval_metric", strcmp(obj, "binary:logistic") == 0 ? "logloss" : "rmse"},
    };
    for (size_t i = 0; i < sizeof params / sizeof params[0] && rc == 0; i++)
        if (XGBoosterSetParam(bst, params[i][0], params[i][1]))
            rc = xgb_fail(err, params[i][0]);
    if (rc == 0 && p->monotone) {
        size_t o = 0;
        mono[o++] = '(';
        for (size_t i = 0; i < ncols; i++)
            o += (size_t)snprintf(mono + o, sizeof mono - o, "%s%d", i ? "," : "", (int)p->monotone[i]);
        mono[o++] = ')';
        mono[o] = 0;
        if (XGBoosterSetParam(bst, "monotone_constraints", mono))
            rc = xgb_fail(err, "monotone_constraints");
    }
    int rounds = p->rounds > 0 ? p->rounds : 400;
    int patience = p->early_stopping > 0 ? p->early_stopping : 30;
    int best_it = -1;
    double best_m = INFINITY;
    const char *names[1] = {"valid"};
    for (int it = 0; it < rounds && rc == 0; it++) {
        if (XGBoosterUpdateOneIter(bst, it, dtrain)) {
            rc = xgb_fail(err, "boosting");
            break;
        }
        if (!nv) {
            best_it = it;
            continue;
        }
        const char *line = NULL;
        if (XGBoosterEvalOneIter(bst, it, &dvalid, names, 1, &line)) {
            rc = xgb_fail(err, "evaluation");
            break;
        }
        double m = parse_metric(line);
        if (m < best_m - 1e-12) {
            best_m = m;
            best_it = it;
        } else if (it - best_it >= patience) {
            break;
        }
    }
    if (rc)
        goto done;
    int boosted = 0;
    XGBoosterBoostedRounds(bst, &boosted);
    if (best_it + 1 < boosted) { /* keep the best rounds only */
        if (XGBoosterSlice(bst, 0, best_it + 1, 1, &best)) {
            rc = xgb_fail(err, "slice");
            goto done;
        }
        XGBoosterFree(bst);
        bst = best;
        best = NULL;
    }
    hvs_model_t *m = calloc(1, sizeof *m);
    if (!m) {
        rc = hvs_err_set(err, HVS_ENOMEM, "oom", "model");
        goto done;
    }
    m->bst = bst;
    m->ncols = ncols;
    bst = NULL;
    *out = m;
    if (report)
        *report = (hvs_train_report_t){best_it + 1, nv ? best_m : NAN, now_s() - t0};
done:
    if (bst)
        XGBoosterFree(bst);
    if (dtrain)
        XGDMatrixFree(dtrain);
    if (dvalid)
        XGDMatrixFree(dvalid);
    return rc;
}

int hvs_model_predict(hvs_model_t *m, const float *x, size_t nrows, float *out, hvs_err_t *err) {
    if (nrows == 0)
        return 0;
    char arr[256];
    snprintf(arr, sizeof arr,
             "{\"data\":[%llu,true],\"shape\":[%zu,%zu],\"typestr\":\"<f4\",\"version\":3}",
             (unsigned long long)(uintptr_t)x, nrows, m->ncols);
    /* cache_id 0 and missing NaN: in-place prediction, no DMatrix */
    const char *conf = "{\"type\":0,\"training\":false,\"iteration_begin\":0,\"iteration_end\":0,"
                       "\"strict_shape\":false,\"missing\":NaN,\"cache_id\":0}";
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *res = NULL;
    if (XGBoosterPredictFromDense(m->bst, arr, conf, NULL, &shape, &dim, &res))
        return xgb_fail(err, "predict");
    memcpy(out, res, nrows * sizeof *out);
    return 0;
}

int hvs_model_save(hvs_model_t *m, unsigned char **bytes, size_t *len, hvs_err_t *err) {
    bst_ulong n = 0;
    const char *p = NULL;
    if (XGBoosterSaveModelToBuffer(m->bst, "{\"format\":\"ubj\"}", &n, &p))
        return xgb_fail(err, "save");
    *bytes = malloc(n ? n : 1);
    if (!*bytes)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "model bytes");
    memcpy(*bytes, p, n);
    *len = n;
    return 0;
}

int hvs_model_load(const void *bytes, size_t len, size_t ncols, hvs_model_t **out, hvs_err_t *err) {
    BoosterHandle bst = NULL;
    if (!bytes || len == 0)
        return hvs_err_set(err, HVS_ESERDE, "corrupt_model", "no model bytes");
    if (XGBoosterCreate(NULL, 0, &bst))
        return xgb_fail(err, "booster");
    if (XGBoosterLoadModelFromBuffer(bst, bytes, (bst_ulong)len)) {
        int rc = hvs_err_set(err, HVS_ESERDE, "corrupt_model", "model bytes do not load: %s",
                             XGBGetLastError());
        XGBoosterFree(bst);
        return rc;
    }
    bst_ulong nf = 0;
    XGBoosterGetNumFeature(bst, &nf);
    if (nf != ncols) {
        XGBoosterFree(bst);
        return hvs_err_set(err, HVS_ESERDE, "corrupt_model", "model has %llu features, expected %zu",
                           (unsigned long long)nf, ncols);
    }
    XGBoosterSetParam(bst, "nthread", "1"); /* serving threads parallelise, not XGBoost */
    hvs_model_t *m = calloc(1, sizeof *m);
    if (!m) {
        XGBoosterFree(bst);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "model");
    }
    m->bst = bst;
    m->ncols = ncols;
    *out = m;
    return 0;
}

int hvs_zlib_compress(const void *in, size_t len, unsigned char **out, size_t *outlen, hvs_err_t *err) {
    uLongf cap = compressBound((uLong)len);
    unsigned char *b = malloc(cap);
    if (!b)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "compress");
    if (compress2(b, &cap, in, (uLong)len, 6) != Z_OK) {
        free(b);
        return hvs_err_set(err, HVS_EIO, "zlib", "compress failed");
    }
    *out = b;
    *outlen = cap;
    return 0;
}

int hvs_zlib_decompress(const void *in, size_t len, size_t max_out, unsigned char **out,
                        size_t *outlen, hvs_err_t *err) {
    z_stream z = {0};
    if (inflateInit(&z) != Z_OK)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "inflate");
    size_t cap = len * 4 + 1024, n = 0;
    unsigned char *b = NULL;
    int zr = Z_OK;
    z.next_in = (unsigned char *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    while (zr != Z_STREAM_END) {
        if (cap > max_out + 1)
            cap = max_out + 1;
        unsigned char *nb = realloc(b, cap);
        if (!nb) {
            inflateEnd(&z);
            free(b);
            return hvs_err_set(err, HVS_ENOMEM, "oom", "inflate");
        }
        b = nb;
        z.next_out = b + n;
        z.avail_out = (uInt)(cap - n);
        zr = inflate(&z, Z_NO_FLUSH);
        n = cap - z.avail_out;
        if (zr != Z_OK && zr != Z_STREAM_END) {
            inflateEnd(&z);
            free(b);
            return hvs_err_set(err, HVS_ESERDE, "corrupt_model", "model bytes do not decompress (zlib %d)", zr);
        }
        if (zr == Z_OK && z.avail_out == 0) {
            if (n > max_out) {
                inflateEnd(&z);
                free(b);
                return hvs_err_set(err, HVS_ESERDE, "too_large", "model larger than %zu bytes", max_out);
            }
            cap *= 2;
        } else if (zr == Z_OK && z.avail_in == 0) {
            inflateEnd(&z);
            free(b);
            return hvs_err_set(err, HVS_ESERDE, "corrupt_model", "model bytes end early");
        }
    }
    inflateEnd(&z);
    *out = b;
    *outlen = n;
    return 0;
}
