/* model.c - XGBoost through its C API, and the hvs-linear correction model (see hvs/model.h). */
#include "hvs/model.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xgboost/c_api.h>
#include <zlib.h>

#include "hvs/fmt.h"

struct hvs_model {
    BoosterHandle bst; /* NULL: an hvs-linear model */
    size_t ncols;
    /* hvs-linear: nsel rows of ncols + 1 coefficients, in the caller's order; `order` sorts
     * them by selector value for the nearest-row search */
    int selector;
    size_t nsel;
    float *selv;
    double *coef;
    size_t *order;
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

const char *hvs_model_format(const hvs_model_t *m) {
    return m->bst ? HVS_MODEL_FORMAT_XGBOOST : HVS_MODEL_FORMAT_LINEAR;
}

void hvs_model_destroy(hvs_model_t *m) {
    if (!m)
        return;
    if (m->bst)
        XGBoosterFree(m->bst);
    free(m->selv);
    free(m->coef);
    free(m->order);
    free(m);
}

/* ---- hvs-linear ----------------------------------------------------------------------------- */

/* Insertion sort of row indices by selector value: nsel is small (horizons), and it keeps the
 * comparison free of qsort's context-less callback. */
static void sort_rows(const float *selv, size_t *order, size_t n) {
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 1; i < n; i++) {
        size_t k = order[i], j = i;
        while (j > 0 && selv[order[j - 1]] > selv[k]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
}

int hvs_model_linear_new(size_t ncols, int selector, size_t nsel, const float *selector_values,
                         const double *coef, hvs_model_t **out, hvs_err_t *err) {
    if (out)
        *out = NULL;
    if (!out || !coef)
        return hvs_err_set(err, HVS_EINVAL, "bad_model", "hvs-linear: no coefficients");
    if (ncols == 0 || ncols > HVS_MODEL_MAX_COLUMNS)
        return hvs_err_set(err, HVS_EINVAL, "bad_model", "hvs-linear: %zu columns (1..%d)", ncols,
                           HVS_MODEL_MAX_COLUMNS);
    if (selector < -1 || (selector >= 0 && (size_t)selector >= ncols))
        return hvs_err_set(err, HVS_EINVAL, "bad_model", "hvs-linear: selector column %d of %zu",
                           selector, ncols);
    if (nsel == 0 || nsel > HVS_MODEL_LINEAR_MAX_ROWS || (selector < 0 && nsel != 1))
        return hvs_err_set(err, HVS_EINVAL, "bad_model", "hvs-linear: %zu coefficient rows%s", nsel,
                           selector < 0 ? " without a selector (must be 1)" : "");
    if (selector >= 0 && !selector_values)
        return hvs_err_set(err, HVS_EINVAL, "bad_model", "hvs-linear: no selector values");
    size_t w = ncols + 1;
    for (size_t i = 0; i < nsel; i++) {
        float sv = selector_values ? selector_values[i] : 0.0f;
        if (!isfinite(sv))
            return hvs_err_set(err, HVS_EINVAL, "bad_model",
                               "hvs-linear: row %zu selector value %g", i, (double)sv);
        for (size_t k = 0; k < w; k++)
            if (!isfinite(coef[i * w + k]))
                return hvs_err_set(err, HVS_EINVAL, "bad_model",
                                   "hvs-linear: row %zu coefficient %zu is %g", i, k,
                                   coef[i * w + k]);
    }
    hvs_model_t *m = calloc(1, sizeof *m);
    if (m) {
        m->selv = malloc(nsel * sizeof *m->selv);
        m->coef = malloc(nsel * w * sizeof *m->coef);
        m->order = malloc(nsel * sizeof *m->order);
    }
    if (!m || !m->selv || !m->coef || !m->order) {
        hvs_model_destroy(m);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "hvs-linear model");
    }
    m->ncols = ncols;
    m->selector = selector;
    m->nsel = nsel;
    for (size_t i = 0; i < nsel; i++)
        m->selv[i] = selector_values ? selector_values[i] : 0.0f;
    memcpy(m->coef, coef, nsel * w * sizeof *m->coef);
    sort_rows(m->selv, m->order, nsel);
    for (size_t i = 1; i < nsel; i++)
        if (m->selv[m->order[i]] == m->selv[m->order[i - 1]]) {
            int rc = hvs_err_set(err, HVS_EINVAL, "bad_model",
                                 "hvs-linear: selector value %g on rows %zu and %zu",
                                 (double)m->selv[m->order[i]], m->order[i - 1], m->order[i]);
            hvs_model_destroy(m);
            return rc;
        }
    *out = m;
    return 0;
}

int hvs_model_linear_coef(const hvs_model_t *m, int *selector, size_t *nsel,
                          const float **selector_values, const double **coef) {
    if (!m || m->bst)
        return HVS_EINVAL;
    if (selector)
        *selector = m->selector;
    if (nsel)
        *nsel = m->nsel;
    if (selector_values)
        *selector_values = m->selv;
    if (coef)
        *coef = m->coef;
    return 0;
}

/* The coefficient row for selector value s: the equal one, else the nearest (ties: the lower
 * value); SIZE_MAX for NaN. */
static size_t linear_row(const hvs_model_t *m, float s) {
    if (m->selector < 0)
        return 0;
    if (isnan(s))
        return SIZE_MAX;
    size_t lo = 0, hi = m->nsel; /* first sorted position with a value >= s */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->selv[m->order[mid]] < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == m->nsel)
        return m->order[m->nsel - 1];
    if (lo == 0 || m->selv[m->order[lo]] == s)
        return m->order[lo];
    /* in double: float differences may round to a false tie */
    double below = (double)s - m->selv[m->order[lo - 1]], above = (double)m->selv[m->order[lo]] - s;
    return above < below ? m->order[lo] : m->order[lo - 1];
}

static void linear_predict(const hvs_model_t *m, const float *x, size_t nrows, float *out) {
    size_t w = m->ncols + 1;
    for (size_t r = 0; r < nrows; r++) {
        const float *row = x + r * m->ncols;
        size_t k = linear_row(m, m->selector >= 0 ? row[m->selector] : 0.0f);
        if (k == SIZE_MAX) {
            out[r] = NAN;
            continue;
        }
        const double *b = m->coef + k * w;
        double y = b[0];
        for (size_t i = 0; i < m->ncols; i++)
            if (!isnan(row[i])) /* a missing input brings no correction */
                y += b[i + 1] * row[i];
        out[r] = (float)y;
    }
}

static int linear_save(const hvs_model_t *m, unsigned char **bytes, size_t *len, hvs_err_t *err) {
    hvs_strbuf_t b = {0};
    size_t w = m->ncols + 1;
    hvs_strbuf_printf(&b, "hvs-linear 1\ncolumns %zu\nselector %d\nrows %zu\n", m->ncols,
                      m->selector, m->nsel);
    for (size_t i = 0; i < m->nsel; i++) {
        /* %.17g: every double (and float) reads back to the same bits */
        hvs_strbuf_printf(&b, "%.17g", (double)m->selv[i]);
        for (size_t k = 0; k < w; k++)
            hvs_strbuf_printf(&b, " %.17g", m->coef[i * w + k]);
        hvs_strbuf_printf(&b, "\n");
    }
    if (b.oom) {
        free(b.p);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "hvs-linear text");
    }
    *bytes = (unsigned char *)b.p;
    *len = b.len;
    return 0;
}

/* A cursor over the text: one line at a time, one token at a time. */
typedef struct lin_text {
    const char *p, *end;  /* the rest of the text */
    const char *line_end; /* end of the current line */
    size_t lineno;
} lin_text_t;

/* Move to the next line; false at the end of the text. */
static bool lin_next_line(lin_text_t *t) {
    if (t->line_end && t->line_end < t->end)
        t->p = t->line_end + 1; /* past the '\n' */
    if (t->p >= t->end)
        return false;
    const char *nl = memchr(t->p, '\n', (size_t)(t->end - t->p));
    t->line_end = nl ? nl : t->end;
    t->lineno++;
    return true;
}

/* The next token of the line into buf (NUL-terminated); 0 when the line has no more, else its
 * length (>= cap: too long for any number, buf holds its start). */
static size_t lin_token(lin_text_t *t, char *buf, size_t cap) {
    while (t->p < t->line_end && (*t->p == ' ' || *t->p == '\t' || *t->p == '\r'))
        t->p++;
    const char *s = t->p;
    while (t->p < t->line_end && *t->p != ' ' && *t->p != '\t' && *t->p != '\r')
        t->p++;
    size_t n = (size_t)(t->p - s), c = n < cap ? n : cap - 1;
    memcpy(buf, s, c);
    buf[c] = 0;
    return n;
}

/* A whole token as a finite double (the C locale's '.'; the writer prints in it too). */
static bool parse_double(const char *s, size_t n, size_t cap, double *d) {
    char *e;
    errno = 0;
    *d = n < cap ? strtod(s, &e) : NAN;
    return n < cap && e != s && *e == 0 && errno == 0 && isfinite(*d);
}

static bool parse_long(const char *s, size_t n, size_t cap, long *l) {
    char *e;
    errno = 0;
    *l = n < cap ? strtol(s, &e, 10) : 0;
    return n < cap && e != s && *e == 0 && errno == 0;
}

#define CORRUPT(...) hvs_err_set(err, HVS_ESERDE, "corrupt_model", "hvs-linear: " __VA_ARGS__)

/* "<key> <integer>" on its own line. */
static int lin_header(lin_text_t *t, const char *key, long *v, hvs_err_t *err) {
    char tok[64], val[64], extra[8];
    if (!lin_next_line(t) || !lin_token(t, tok, sizeof tok))
        return CORRUPT("ends before the \"%s\" line", key);
    if (strcmp(tok, key) != 0)
        return CORRUPT("line %zu is \"%s ...\", expected \"%s\"", t->lineno, tok, key);
    size_t n = lin_token(t, val, sizeof val);
    if (!n || !parse_long(val, n, sizeof val, v) || lin_token(t, extra, sizeof extra))
        return CORRUPT("line %zu: \"%s\" wants one integer", t->lineno, key);
    return 0;
}

static int linear_load(const char *text, size_t len, size_t ncols, hvs_model_t **out,
                       hvs_err_t *err) {
    lin_text_t t = {text, text + len, NULL, 0};
    char tok[64];
    long ver, cols, sel, rows;
    hvs_err_t e = {0};
    int rc;
    if ((rc = lin_header(&t, "hvs-linear", &ver, err)))
        return rc;
    if (ver != 1)
        return CORRUPT("version %ld, this build reads 1", ver);
    if ((rc = lin_header(&t, "columns", &cols, err)) ||
        (rc = lin_header(&t, "selector", &sel, err)) || (rc = lin_header(&t, "rows", &rows, err)))
        return rc;
    if (cols <= 0 || cols > HVS_MODEL_MAX_COLUMNS || (size_t)cols != ncols)
        return CORRUPT("%ld columns, expected %zu", cols, ncols);
    if (sel < -1 || sel >= cols)
        return CORRUPT("selector column %ld of %ld", sel, cols);
    if (rows <= 0 || rows > HVS_MODEL_LINEAR_MAX_ROWS)
        return CORRUPT("%ld rows", rows);
    size_t nr = (size_t)rows, w = ncols + 1;
    /* each number takes at least two bytes with its separator: bounds the allocation by the
     * text's own length before trusting the row count */
    if (nr * (w + 1) * 2 > (size_t)(t.end - t.p) + 1)
        return CORRUPT("%zu rows of %zu numbers do not fit in %zu bytes (truncated)", nr, w + 1,
                       (size_t)(t.end - t.p));
    float *selv = malloc(nr * sizeof *selv);
    double *coef = malloc(nr * w * sizeof *coef);
    if (!selv || !coef) {
        rc = hvs_err_set(err, HVS_ENOMEM, "oom", "hvs-linear %zu rows", nr);
        goto done;
    }
    for (size_t i = 0; i < nr; i++) {
        if (!lin_next_line(&t)) {
            rc = CORRUPT("truncated: %zu of %zu rows", i, nr);
            goto done;
        }
        size_t k = 0, tn;
        double d;
        for (; (tn = lin_token(&t, tok, sizeof tok)) > 0; k++) {
            if (k > w)
                continue; /* counted, reported below */
            if (!parse_double(tok, tn, sizeof tok, &d)) {
                rc = CORRUPT("line %zu: \"%s\" is not a finite number", t.lineno, tok);
                goto done;
            }
            if (k == 0) {
                selv[i] = (float)d;
                if (!isfinite(selv[i])) {
                    rc = CORRUPT("line %zu: selector value %s out of range", t.lineno, tok);
                    goto done;
                }
            } else {
                coef[i * w + k - 1] = d;
            }
        }
        if (k != w + 1) {
            rc = CORRUPT("line %zu has %zu numbers, expected %zu (selector value, intercept, %zu "
                         "coefficients)",
                         t.lineno, k, w + 1, ncols);
            goto done;
        }
    }
    /* nothing but the final newline after the last row */
    if (t.line_end < t.end && t.line_end + 1 < t.end) {
        rc = CORRUPT("garbage after the %zu rows (line %zu)", nr, t.lineno + 1);
        goto done;
    }
    rc = hvs_model_linear_new(ncols, (int)sel, nr, selv, coef, out, &e);
    if (rc == HVS_EINVAL) /* well-formed text, but not a valid model */
        rc = hvs_err_set(err, HVS_ESERDE, "corrupt_model", "%s", e.msg);
    else if (rc && err)
        *err = e;
done:
    free(selv);
    free(coef);
    return rc;
}

/* The validation metric of the last EvalOneIter line: "[i]\tvalid-rmse:0.123". */
static double parse_metric(const char *s) {
    const char *c = s ? strrchr(s, ':') : NULL;
    return c ? atof(c + 1) : NAN;
}

int hvs_model_train(const float *x, const float *y, const float *w, size_t nrows, size_t ncols,
                    const float *xv, const float *yv, size_t nv, const hvs_train_params_t *p,
                    hvs_model_t **out, hvs_train_report_t *report, hvs_err_t *err) {
    if (!x || !y || nrows == 0 || ncols == 0 || ncols > HVS_MODEL_MAX_COLUMNS)
        return hvs_err_set(err, HVS_EINVAL, "bad_train_set", "%zu rows x %zu columns", nrows,
                           ncols);
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
        {"booster", "gbtree"},
        {"tree_method", "hist"},
        {"objective", obj},
        {"eta", num[0]},
        {"max_depth", num[1]},
        {"min_child_weight", num[2]},
        {"subsample", num[3]},
        {"colsample_bytree", num[4]},
        {"lambda", num[5]},
        {"nthread", num[6]},
        {"seed", num[7]},
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
            o += (size_t)snprintf(mono + o, sizeof mono - o, "%s%d", i ? "," : "",
                                  (int)p->monotone[i]);
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
    if (!m || !x || !out)
        return hvs_err_set(err, HVS_EINVAL, "bad_argument",
                           "predict without model, rows or output");
    if (!m->bst) {
        linear_predict(m, x, nrows, out);
        return 0;
    }
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

/* hvs-linear contributions: b_i * x_i of the row the selector picks (0 for a NaN input), the
 * intercept as the bias; NaN throughout when the selector is NaN (the prediction is NaN). */
static void linear_contributions(const hvs_model_t *m, const float *x, size_t nrows, float *out) {
    size_t w = m->ncols + 1;
    for (size_t r = 0; r < nrows; r++) {
        const float *row = x + r * m->ncols;
        float *o = out + r * w;
        size_t k = linear_row(m, m->selector >= 0 ? row[m->selector] : 0.0f);
        if (k == SIZE_MAX) {
            for (size_t i = 0; i < w; i++)
                o[i] = NAN;
            continue;
        }
        const double *b = m->coef + k * w;
        for (size_t i = 0; i < m->ncols; i++)
            o[i] = isnan(row[i]) ? 0.0f : (float)(b[i + 1] * row[i]);
        o[m->ncols] = (float)b[0];
    }
}

int hvs_model_contributions(hvs_model_t *m, const float *x, size_t nrows, float *out,
                            hvs_err_t *err) {
    if (nrows == 0)
        return 0;
    if (!m || !x || !out)
        return hvs_err_set(err, HVS_EINVAL, "bad_argument",
                           "contributions without model, rows or output");
    if (!m->bst) {
        linear_contributions(m, x, nrows, out);
        return 0;
    }
    /* TreeSHAP has no in-place entry point in 1.7: it needs a DMatrix, built per call over the
     * caller's rows (one thread: serving threads parallelise, not XGBoost) */
    char arr[256];
    snprintf(arr, sizeof arr,
             "{\"data\":[%llu,true],\"shape\":[%zu,%zu],\"typestr\":\"<f4\",\"version\":3}",
             (unsigned long long)(uintptr_t)x, nrows, m->ncols);
    DMatrixHandle dm = NULL;
    if (XGDMatrixCreateFromDense(arr, "{\"missing\":NaN,\"nthread\":1}", &dm))
        return xgb_fail(err, "contributions matrix");
    /* type 2: exact TreeSHAP contributions, the bias (expected margin) last */
    const char *conf = "{\"type\":2,\"training\":false,\"iteration_begin\":0,"
                       "\"iteration_end\":0,\"strict_shape\":false}";
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *res = NULL;
    int rc = 0;
    if (XGBoosterPredictFromDMatrix(m->bst, dm, conf, &shape, &dim, &res))
        rc = xgb_fail(err, "contributions");
    else if (dim != 2 || shape[0] != nrows || shape[1] != m->ncols + 1)
        /* a multi-output model would give a 3-d answer: not one this project trains */
        rc = hvs_err_set(err, HVS_EMODEL, "xgboost",
                         "contributions of %zu rows x %zu columns came back in %llu dimensions",
                         nrows, m->ncols, (unsigned long long)dim);
    else
        memcpy(out, res, nrows * (m->ncols + 1) * sizeof *out);
    XGDMatrixFree(dm);
    return rc;
}

int hvs_model_save(hvs_model_t *m, unsigned char **bytes, size_t *len, hvs_err_t *err) {
    if (!m->bst)
        return linear_save(m, bytes, len, err);
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
    /* XGBoost's UBJ and JSON both start with '{': the text format cannot be mistaken for them */
    static const char magic[] = HVS_MODEL_FORMAT_LINEAR " ";
    if (len >= sizeof magic - 1 && memcmp(bytes, magic, sizeof magic - 1) == 0)
        return linear_load(bytes, len, ncols, out, err);
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
        return hvs_err_set(err, HVS_ESERDE, "corrupt_model",
                           "model has %llu features, expected %zu", (unsigned long long)nf, ncols);
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

int hvs_zlib_compress(const void *in, size_t len, unsigned char **out, size_t *outlen,
                      hvs_err_t *err) {
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
            return hvs_err_set(err, HVS_ESERDE, "corrupt_model",
                               "model bytes do not decompress (zlib %d)", zr);
        }
        if (zr == Z_OK && z.avail_out == 0) {
            if (n > max_out) {
                inflateEnd(&z);
                free(b);
                return hvs_err_set(err, HVS_ESERDE, "too_large", "model larger than %zu bytes",
                                   max_out);
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
