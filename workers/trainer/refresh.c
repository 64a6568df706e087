/* refresh.c - per-horizon correction coefficients from a forecast's backtest (see refresh.h). */
#include "refresh.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/lsq.h"

#define HOUR HVS_MS_HOUR
#define NCOLS 4 /* horizon_h, err_lag_1..3 */

typedef struct ev {
    int32_t g;
    int fold;
    hvs_ms_t hour;
    double err; /* actual - baseline, per m2 */
    double y, scale;
} ev_t;

static int cmp_ev(const void *a, const void *b) {
    const ev_t *x = a, *y = b;
    if (x->g != y->g)
        return (x->g > y->g) - (x->g < y->g);
    return (x->hour > y->hour) - (x->hour < y->hour);
}

/* The error of hour t in the sorted run [lo, hi) of one building, NaN when not scored. */
static double err_at(const ev_t *e, size_t lo, size_t hi, size_t near, hvs_ms_t t) {
    size_t i = near;
    while (i > lo && e[i].hour > t)
        i--;
    while (i + 1 < hi && e[i].hour < t)
        i++;
    return e[i].hour == t ? e[i].err : NAN;
}

static int rows_of(const tr_result_t *f, tr_rows_t *r, double *actual, hvs_err_t *err) {
    size_t n = f->eval_rows;
    ev_t *e = malloc((n ? n : 1) * sizeof *e);
    if (!e)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "refresh rows");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(f->eval_y[i]) && isfinite(f->eval_pred[i]))
            e[k++] = (ev_t){f->eval_group[i], f->eval_fold[i],
                            f->eval_hour[i],  (double)f->eval_y[i] - f->eval_pred[i],
                            f->eval_y[i],     f->eval_scale[i]};
    qsort(e, k, sizeof *e, cmp_ev);
    int rc = 0;
    for (size_t lo = 0, hi; lo < k; lo = hi) {
        for (hi = lo; hi < k && e[hi].g == e[lo].g; hi++)
            ;
        for (size_t i = lo; i < hi; i++) {
            double lag[3] = {e[i].err, err_at(e, lo, hi, i, e[i].hour - HOUR),
                             err_at(e, lo, hi, i, e[i].hour - 2 * HOUR)};
            for (int h = 1; h <= TR_REFRESH_HORIZONS; h++) {
                /* the target hour's row: its error and actual */
                size_t j = i;
                while (j + 1 < hi && e[j].hour < e[i].hour + h * HOUR)
                    j++;
                if (e[j].hour != e[i].hour + h * HOUR)
                    continue;
                if (tr_rows_grow(r)) {
                    rc = hvs_err_set(err, HVS_ENOMEM, "oom", "refresh rows");
                    goto done;
                }
                float *row = &r->x[r->n * NCOLS];
                row[0] = (float)h;
                for (int q = 0; q < 3; q++)
                    row[1 + q] = (float)lag[q];
                r->y[r->n] = (float)e[j].err;
                r->scale[r->n] = (float)e[j].scale;
                r->naive[r->n] = 0;
                r->horizon[r->n] = (float)h;
                r->hour[r->n] = e[j].hour;
                r->group[r->n] = e[j].fold; /* the fold of the target hour: the split below */
                r->series[r->n] = e[j].g;
                r->as_of[r->n] = e[i].hour + HOUR; /* the refresh instant: hour H complete */
                actual[r->n] = e[j].y;
                r->n++; /* at most 3 per scored hour: actual[] holds that many */
            }
        }
    }
done:
    free(e);
    return rc;
}

/* One out-of-sample prediction at horizon h of a target hour (near_*). */
typedef struct nv {
    int32_t g, h, fold;
    hvs_ms_t hour;
    double err, y, scale;
} nv_t;

static int cmp_nv(const void *a, const void *b) {
    const nv_t *x = a, *y = b;
    if (x->g != y->g)
        return (x->g > y->g) - (x->g < y->g);
    if (x->hour != y->hour)
        return (x->hour > y->hour) - (x->hour < y->hour);
    return (x->h > y->h) - (x->h < y->h);
}

/* The error of (hour, horizon h) in the sorted run [lo, hi) of one building, NaN when none. */
static double nv_err(const nv_t *e, size_t lo, size_t hi, hvs_ms_t hour, int h) {
    nv_t key = {.g = e[lo].g, .h = h, .hour = hour};
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_nv(&e[mid], &key);
        if (c == 0)
            return e[mid].err;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NAN;
}

/*
 * The rows as the refresher sees them (refresh.h): at the instant I, the errors of the hours
 * I - 1, I - 2, I - 3 h as their newest hourly baseline forecast them (horizon 1), and the target
 * the error of hour I + h - 1 h as the baseline issued at I forecast it (horizon h).
 */
static int rows_near(const tr_result_t *f, tr_rows_t *r, double *actual, hvs_err_t *err) {
    size_t n = f->near_n;
    nv_t *e = malloc((n ? n : 1) * sizeof *e);
    if (!e)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "refresh rows");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(f->near_y[i]) && isfinite(f->near_pred[i]) && f->near_h[i] >= 1 &&
            f->near_h[i] <= TR_REFRESH_HORIZONS)
            e[k++] = (nv_t){f->near_group[i],
                            f->near_h[i],
                            f->near_fold[i],
                            f->near_hour[i],
                            (double)f->near_y[i] - f->near_pred[i],
                            f->near_y[i],
                            f->near_scale[i]};
    qsort(e, k, sizeof *e, cmp_nv);
    int rc = 0;
    for (size_t lo = 0, hi; lo < k && rc == 0; lo = hi) {
        for (hi = lo; hi < k && e[hi].g == e[lo].g; hi++)
            ;
        for (size_t j = lo; j < hi; j++) {
            hvs_ms_t inst = e[j].hour - (hvs_ms_t)(e[j].h - 1) * HOUR;
            if (tr_rows_grow(r)) {
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "refresh rows");
                break;
            }
            float *row = &r->x[r->n * NCOLS];
            row[0] = (float)e[j].h;
            for (int q = 1; q <= 3; q++)
                row[q] = (float)nv_err(e, lo, hi, inst - q * HOUR, 1);
            r->y[r->n] = (float)e[j].err;
            r->scale[r->n] = (float)e[j].scale;
            r->naive[r->n] = 0;
            r->horizon[r->n] = (float)e[j].h;
            r->hour[r->n] = e[j].hour;
            r->group[r->n] = e[j].fold;
            r->series[r->n] = e[j].g;
            r->as_of[r->n] = inst;
            actual[r->n] = e[j].y;
            r->n++;
        }
    }
    free(e);
    return rc;
}

/* Ridge least squares per horizon on one side of the split: the rows of folds other than
 * test_fold (train_side) or of test_fold, or, with split, the rows before / from that hour.
 * coef: horizons x (NCOLS + 1), the horizon column's own coefficient 0. */
static int fit(const tr_rows_t *r, int test_fold, bool train_side, hvs_ms_t split, double *coef) {
    for (int h = 1; h <= TR_REFRESH_HORIZONS; h++) {
        double a[NCOLS][NCOLS] = {{0}}, b[NCOLS] = {0};
        size_t used = 0;
        for (size_t i = 0; i < r->n; i++) {
            bool side = split ? r->hour[i] < split : r->group[i] != test_fold;
            if ((int)r->horizon[i] != h || side != train_side)
                continue;
            double z[NCOLS] = {1};
            for (int q = 1; q < NCOLS; q++)
                z[q] = isfinite(r->x[i * NCOLS + q]) ? r->x[i * NCOLS + q] : 0;
            for (int p = 0; p < NCOLS; p++) {
                for (int q = 0; q < NCOLS; q++)
                    a[p][q] += z[p] * z[q];
                b[p] += z[p] * r->y[i];
            }
            used++;
        }
        if (used < 50)
            return -1;
        double tr = 0;
        for (int p = 1; p < NCOLS; p++)
            tr += a[p][p];
        for (int p = 1; p < NCOLS; p++) /* a little shrinkage toward "no correction" */
            a[p][p] += 1e-3 * tr / (NCOLS - 1) + 1e-12;
        double x[NCOLS];
        if (hvs_lsq_solve(NCOLS, &a[0][0], b, x))
            return -1;
        double *row = &coef[(h - 1) * (NCOLS + 1)];
        row[0] = x[0]; /* intercept */
        row[1] = 0;    /* horizon_h: the selector */
        for (int q = 1; q < NCOLS; q++)
            row[1 + q] = x[q];
    }
    return 0;
}

static int linear(const double *coef, hvs_model_t **m, hvs_err_t *err) {
    static const float sel[TR_REFRESH_HORIZONS] = {1, 2, 3};
    return hvs_model_linear_new(NCOLS, 0, TR_REFRESH_HORIZONS, sel, coef, m, err);
}

/* Scores of the test side: corrected (model), uncorrected, and the champion's. */
static void score(const tr_rows_t *r, const double *actual, const float *corr, int test_fold,
                  hvs_ms_t split, hvs_model_metrics_t *m, double *bucket) {
    size_t k = 0;
    float *y = malloc((r->n ? r->n : 1) * sizeof *y), *p = malloc((r->n ? r->n : 1) * sizeof *p),
          *s = malloc((r->n ? r->n : 1) * sizeof *s);
    double be[TR_REFRESH_HORIZONS] = {0}, by[TR_REFRESH_HORIZONS] = {0};
    for (size_t i = 0; y && p && s && i < r->n; i++) {
        bool test = split ? r->hour[i] >= split : r->group[i] == test_fold;
        if (!test)
            continue;
        /* baseline = actual - error; corrected = baseline + correction */
        double base = actual[i] - r->y[i], c = corr ? (isfinite(corr[i]) ? corr[i] : 0) : 0;
        y[k] = (float)actual[i];
        p[k] = (float)(base + c);
        s[k] = r->scale[i];
        int h = (int)r->horizon[i] - 1;
        be[h] += fabs(actual[i] - base - c) * r->scale[i];
        by[h] += fabs(actual[i]) * r->scale[i];
        k++;
    }
    if (y && p && s)
        tr_metrics(y, p, s, k, m);
    else
        *m = (hvs_model_metrics_t){NAN, NAN, NAN, NAN, NAN, NAN, 0};
    for (int h = 0; bucket && h < TR_REFRESH_HORIZONS; h++)
        bucket[h] = by[h] > 0 ? be[h] / by[h] : NAN;
    free(y), free(p), free(s);
}

static int predict_all(hvs_model_t *m, const tr_rows_t *r, float *out, hvs_err_t *err) {
    for (size_t i = 0; i < r->n; i += 4096) {
        size_t k = r->n - i < 4096 ? r->n - i : 4096;
        int rc = hvs_model_predict(m, &r->x[i * NCOLS], k, &out[i], err);
        if (rc)
            return rc;
    }
    return 0;
}

int tr_refresh_train(const tr_result_t *f, const char *name, const tr_config_t *c,
                     hvs_model_ref_t *champion, tr_result_t *out, hvs_err_t *err) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    out->task = TR_REFRESH;
    out->features = tr_task_features(TR_REFRESH, &out->nfeatures);
    out->train_start = f->train_start;
    out->train_end = f->train_end;
    for (int b = 0; b < TR_BUCKETS; b++)
        out->bucket_wape[b] = NAN;
    if (!f->near_n && (!f->eval_rows || !f->eval_y))
        return hvs_err_set(err, HVS_ESTATE, "no_backtest",
                           "%s: the forecast run kept no backtest rows", name);
    tr_rows_t r = {.ncols = NCOLS};
    size_t most = f->near_n ? f->near_n : f->eval_rows * TR_REFRESH_HORIZONS;
    double *actual = malloc((most ? most : 1) * sizeof *actual);
    float *corr = NULL, *cc = NULL;
    if (!actual)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "refresh rows");
    /* the hourly baselines' errors when the run kept them, else the day-ahead backtest's */
    int rc = f->near_n ? rows_near(f, &r, actual, err) : rows_of(f, &r, actual, err);
    if (rc)
        goto done;
    out->rows = r.n;
    int last = 0;
    for (size_t i = 0; i < r.n; i++)
        last = r.group[i] > last ? r.group[i] : last;
    /* one fold: split it in time instead */
    hvs_ms_t split = 0;
    if (last == 0 && r.n) {
        hvs_ms_t lo = r.hour[0], hi = r.hour[0];
        for (size_t i = 0; i < r.n; i++)
            lo = r.hour[i] < lo ? r.hour[i] : lo, hi = r.hour[i] > hi ? r.hour[i] : hi;
        split = hvs_time_window_start(lo + (hi - lo) / 2, HOUR);
    }
    double coef[TR_REFRESH_HORIZONS * (NCOLS + 1)];
    hvs_model_t *bt = NULL;
    if (fit(&r, last, true, split, coef)) {
        rc = hvs_err_set(err, HVS_ESTATE, "too_few_rows",
                         "%s: %zu refresh rows: too few per horizon to fit", name, r.n);
        goto done;
    }
    corr = malloc((r.n ? r.n : 1) * sizeof *corr);
    cc = malloc((r.n ? r.n : 1) * sizeof *cc);
    if (!corr || !cc) {
        rc = hvs_err_set(err, HVS_ENOMEM, "oom", "refresh predictions");
        goto done;
    }
    if ((rc = linear(coef, &bt, err)) || (rc = predict_all(bt, &r, corr, err))) {
        hvs_model_destroy(bt);
        goto done;
    }
    hvs_model_destroy(bt);
    score(&r, actual, corr, last, split, &out->metrics, out->bucket_wape);
    score(&r, actual, NULL, last, split, &out->naive, NULL);
    if (champion) {
        if (tr_predict_champion(champion, TR_REFRESH, &r, cc, err) == 0) {
            score(&r, actual, cc, last, split, &out->champion, NULL);
            out->has_champion = true;
        } else {
            hvs_err_set(err, HVS_OK, NULL, "%s", "");
        }
    }
    out->eval_rows = (size_t)out->metrics.n_eval;
    /* the served coefficients: every row */
    if (fit(&r, -1, true, 0, coef)) {
        rc = hvs_err_set(err, HVS_ESTATE, "too_few_rows", "%s: %zu refresh rows", name, r.n);
        goto done;
    }
    if ((rc = linear(coef, &out->model, err)))
        goto done;
    if (tr_profile(&r, out, TR_REFRESH)) {
        rc = hvs_err_set(err, HVS_ENOMEM, "oom", "profile");
        goto done;
    }
    double w = out->metrics.wape, wn = out->naive.wape;
    if (!isfinite(w) || !isfinite(wn)) {
        out->status = HVS_MODEL_REJECTED;
        snprintf(out->reason, sizeof out->reason, "no held-out hours to score");
    } else if (w >= wn) {
        out->status = HVS_MODEL_REJECTED;
        snprintf(out->reason, sizeof out->reason,
                 "the correction does not help: WAPE %.4f vs %.4f uncorrected", w, wn);
    } else if (tr_gate_short_of_champion(out, c, w)) {
        /* PENDING_APPROVAL, the reason set */
    } else {
        out->status = c->auto_approve ? HVS_MODEL_APPROVED : HVS_MODEL_PENDING_APPROVAL;
        snprintf(out->reason, sizeof out->reason,
                 "%s: 1-3 h WAPE %.4f corrected vs %.4f uncorrected",
                 c->auto_approve ? "auto-approved" : "awaiting approval", w, wn);
    }
done:
    free(actual), free(corr), free(cc);
    tr_rows_fini(&r);
    return rc;
}
