/* train.c - one training run: rows, leak check, backtest, final fit, stress test, profile, gate
 * (see train.h). */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hvs/featstore.h"
#include "hvs/log.h"

#define HOUR HVS_MS_HOUR

const double tr_profile_p[TR_NQ] = {0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99};
const double tr_temp_edges[12] = {-30, -20, -15, -10, -5, 0, 5, 10, 15, 20, 25, 45};
const double tr_irr_edges[11] = {0, 25, 50, 100, 150, 200, 300, 400, 500, 700, 1400};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void tr_metrics(const float *y, const float *pred, const float *scale, size_t n, hvs_model_metrics_t *m) {
    double sa = 0, sy = 0, se = 0, mean = 0, sp = 0;
    size_t k = 0, np = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(y[i]) && isfinite(pred[i])) {
            mean += y[i] * scale[i];
            k++;
        }
    mean = k ? mean / k : 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i]) || !isfinite(pred[i]))
            continue;
        double a = y[i] * scale[i], p = pred[i] * scale[i], e = fabs(a - p);
        sa += e;
        sy += fabs(a);
        se += e * e;
        if (a > 0.1 * mean) {
            sp += e / a;
            np++;
        }
    }
    *m = (hvs_model_metrics_t){.mape = np ? 100.0 * sp / np : NAN, .wape = sy > 0 ? sa / sy : NAN,
                               .rmse = k ? sqrt(se / k) : NAN, .mae = k ? sa / k : NAN,
                               .precision_at_k = NAN, .recall_at_k = NAN, .n_eval = (int)k};
}

/* Rows i with keep(i) into a new dense matrix. */
static int subset(const tr_rows_t *r, bool (*keep)(const tr_rows_t *, size_t, const void *),
                  const void *arg, float **x, float **y, size_t *n) {
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++)
        k += keep(r, i, arg);
    *x = malloc((k ? k : 1) * r->ncols * sizeof **x);
    *y = malloc((k ? k : 1) * sizeof **y);
    if (!*x || !*y) {
        free(*x), free(*y);
        return HVS_ENOMEM;
    }
    size_t j = 0;
    for (size_t i = 0; i < r->n; i++)
        if (keep(r, i, arg)) {
            memcpy(&(*x)[j * r->ncols], &r->x[i * r->ncols], r->ncols * sizeof **x);
            (*y)[j++] = r->y[i];
        }
    *n = k;
    return 0;
}

typedef struct span {
    hvs_ms_t lo, hi;
} span_t;

static bool in_span(const tr_rows_t *r, size_t i, const void *arg) {
    const span_t *s = arg;
    return r->hour[i] >= s->lo && r->hour[i] < s->hi;
}

static void monotone_of(const tr_task_t task, size_t ncols, int8_t *mono) {
    size_t n;
    const char *const *f = tr_task_features(task, &n);
    for (size_t i = 0; i < ncols; i++) {
        mono[i] = 0;
        if (i >= n)
            continue;
        /* colder -> more heating: every feature that grows with outdoor temperature is
         * non-increasing, every one that grows with the cold is non-decreasing */
        if (!strcmp(f[i], "temperature_c") || !strcmp(f[i], "temp_x_hour") ||
            !strcmp(f[i], "temp_x_radiation") || !strcmp(f[i], "temp_roll_24_mean") ||
            !strncmp(f[i], "temp_lag_", 9))
            mono[i] = -1;
        else if (!strcmp(f[i], "hdh") || !strcmp(f[i], "hdh_roll_24_mean"))
            mono[i] = 1;
    }
}

/* Fit on rows of [lo, hi), the last 10 % of those hours validating. */
static int fit(const tr_rows_t *r, tr_task_t task, hvs_ms_t lo, hvs_ms_t hi, const tr_config_t *c,
               hvs_model_t **out, size_t *nrows, hvs_err_t *err) {
    hvs_ms_t cut = hi - (hi - lo) / 10;
    cut = hvs_time_window_start(cut, HOUR);
    span_t tr = {lo, cut}, va = {cut, hi};
    float *xt, *yt, *xv, *yv;
    size_t nt, nv;
    if (subset(r, in_span, &tr, &xt, &yt, &nt))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "training matrix");
    if (subset(r, in_span, &va, &xv, &yv, &nv)) {
        free(xt), free(yt);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "validation matrix");
    }
    int rc = 0;
    if (nt < 200) {
        rc = hvs_err_set(err, HVS_ESTATE, "too_few_rows", "%zu training rows", nt);
    } else {
        int8_t mono[512];
        monotone_of(task, r->ncols, mono);
        hvs_train_params_t p = c->xgb;
        p.monotone = c->monotone ? mono : NULL;
        rc = hvs_model_train(xt, yt, NULL, nt, r->ncols, xv, yv, nv, &p, out, NULL, err);
    }
    if (nrows)
        *nrows = nt + nv;
    free(xt), free(yt), free(xv), free(yv);
    return rc;
}

static int predict_rows(hvs_model_t *m, const tr_rows_t *r, float *out, hvs_err_t *err) {
    for (size_t i = 0; i < r->n; i += 4096) {
        size_t k = r->n - i < 4096 ? r->n - i : 4096;
        int rc = hvs_model_predict(m, &r->x[i * r->ncols], k, &out[i], err);
        if (rc)
            return rc;
    }
    return 0;
}

/* The champion's predictions on rows of our columns: it reads its own feature list. */
static int predict_champion(hvs_model_ref_t *ch, tr_task_t task, const tr_rows_t *r, float *out,
                            hvs_err_t *err) {
    size_t n;
    const char *const *f = tr_task_features(task, &n);
    int map[512];
    for (size_t i = 0; i < ch->nfeatures; i++) {
        map[i] = -1;
        for (size_t k = 0; k < n; k++)
            if (strcmp(ch->features[i], f[k]) == 0)
                map[i] = (int)k;
        if (map[i] < 0)
            return hvs_err_set(err, HVS_ESTATE, "feature_mismatch", "champion reads %s", ch->features[i]);
    }
    float *row = malloc(ch->nfeatures * 4096 * sizeof *row);
    if (!row)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "champion rows");
    int rc = 0;
    for (size_t i = 0; i < r->n && rc == 0; i += 4096) {
        size_t k = r->n - i < 4096 ? r->n - i : 4096;
        for (size_t j = 0; j < k; j++)
            for (size_t c = 0; c < ch->nfeatures; c++)
                row[j * ch->nfeatures + c] = r->x[(i + j) * r->ncols + (size_t)map[c]];
        rc = hvs_model_predict(ch->model, row, k, &out[i], err);
    }
    free(row);
    return rc;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int profile(const tr_rows_t *r, tr_result_t *out, tr_task_t task) {
    out->quantiles = calloc(out->nfeatures * TR_NQ, sizeof *out->quantiles);
    out->missing = calloc(out->nfeatures, sizeof *out->missing);
    float *col = malloc((r->n ? r->n : 1) * sizeof *col);
    if (!out->quantiles || !out->missing || !col) {
        free(col);
        return HVS_ENOMEM;
    }
    for (size_t c = 0; c < out->nfeatures; c++) {
        size_t k = 0;
        for (size_t i = 0; i < r->n; i++)
            if (isfinite(r->x[i * r->ncols + c]))
                col[k++] = r->x[i * r->ncols + c];
        out->missing[c] = r->n ? 1.0 - (double)k / r->n : 1.0;
        if (k)
            qsort(col, k, sizeof *col, cmp_float);
        for (int q = 0; q < TR_NQ; q++)
            out->quantiles[c * TR_NQ + q] = k ? col[(size_t)(tr_profile_p[q] * (k - 1) + 0.5)] : NAN;
    }
    free(col);
    size_t n;
    const char *const *f = tr_task_features(task, &n);
    int it = -1, ig = -1;
    for (size_t c = 0; c < n; c++) {
        if (!strcmp(f[c], "temperature_c"))
            it = (int)c;
        if (!strcmp(f[c], "shortwave_radiation_wm2"))
            ig = (int)c;
    }
    for (size_t i = 0; it >= 0 && ig >= 0 && i < r->n; i++) {
        float t = r->x[i * r->ncols + (size_t)it], g = r->x[i * r->ncols + (size_t)ig];
        if (!isfinite(t) || !isfinite(g))
            continue;
        int a = 0, b = 0;
        while (a < 10 && t >= tr_temp_edges[a + 1])
            a++;
        while (b < 9 && g >= tr_irr_edges[b + 1])
            b++;
        out->joint[a * 10 + b]++;
    }
    return 0;
}

/* Outdoor temperature swept at each sampled row's irradiance: predictions must not rise. */
static int stress(const tr_rows_t *r, tr_task_t task, hvs_model_t *m, tr_result_t *out, hvs_err_t *err) {
    size_t n;
    const char *const *f = tr_task_features(task, &n);
    int it = -1, ih = -1, ix = -1, ir = -1, ihr = -1, ig = -1;
    for (size_t c = 0; c < n; c++) {
        if (!strcmp(f[c], "temperature_c")) it = (int)c;
        if (!strcmp(f[c], "hdh")) ih = (int)c;
        if (!strcmp(f[c], "temp_x_hour")) ix = (int)c;
        if (!strcmp(f[c], "temp_x_radiation")) ir = (int)c;
        if (!strcmp(f[c], "hour")) ihr = (int)c;
        if (!strcmp(f[c], "shortwave_radiation_wm2")) ig = (int)c;
    }
    if (it < 0 || r->n == 0)
        return 0;
    enum { STEPS = 19 };
    float *rows = malloc(STEPS * r->ncols * sizeof *rows), pred[STEPS];
    if (!rows)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "stress rows");
    size_t sample = r->n < 300 ? r->n : 300, step = r->n / sample;
    int bad = 0, tested = 0;
    for (size_t k = 0; k < sample; k++) {
        const float *base = &r->x[k * step * r->ncols];
        float ghi = ig >= 0 && isfinite(base[ig]) ? base[ig] : 0, hr = ihr >= 0 ? base[ihr] : 12;
        for (int s = 0; s < STEPS; s++) {
            float *row = &rows[s * r->ncols], t = -20.0f + 2.5f * s;
            memcpy(row, base, r->ncols * sizeof *row);
            row[it] = t;
            if (ih >= 0) row[ih] = t < 18 ? 18 - t : 0;
            if (ix >= 0) row[ix] = t * hr;
            if (ir >= 0) row[ir] = t * ghi / 1000.0f;
            if (ig >= 0) row[ig] = ghi;
        }
        int rc = hvs_model_predict(m, rows, STEPS, pred, err);
        if (rc) {
            free(rows);
            return rc;
        }
        tested++;
        for (int s = 1; s < STEPS; s++)
            if (pred[s] > pred[s - 1] + 1e-6f) {
                bad++;
                break;
            }
    }
    free(rows);
    out->monotone_violations = bad;
    out->stress_rows = tested;
    return 0;
}

/* Append a fold's scored rows to the result (keep_eval). */
static int keep_eval_rows(tr_result_t *out, const tr_rows_t *e, const float *pred, size_t at, int fold) {
    size_t n = at + e->n;
    out->eval_ncols = e->ncols;
    float *x = realloc(out->eval_x, n * e->ncols * sizeof *x);
    if (x)
        out->eval_x = x;
    float *y = realloc(out->eval_y, n * sizeof *y), *p = realloc(out->eval_pred, n * sizeof *p);
    if (y)
        out->eval_y = y;
    if (p)
        out->eval_pred = p;
    float *nv = realloc(out->eval_naive, n * sizeof *nv), *sc = realloc(out->eval_scale, n * sizeof *sc);
    if (nv)
        out->eval_naive = nv;
    if (sc)
        out->eval_scale = sc;
    hvs_ms_t *h = realloc(out->eval_hour, n * sizeof *h);
    if (h)
        out->eval_hour = h;
    int32_t *g = realloc(out->eval_group, n * sizeof *g), *f = realloc(out->eval_fold, n * sizeof *f);
    if (g)
        out->eval_group = g;
    if (f)
        out->eval_fold = f;
    if (!x || !y || !p || !nv || !sc || !h || !g || !f)
        return HVS_ENOMEM;
    memcpy(&out->eval_x[at * e->ncols], e->x, e->n * e->ncols * sizeof *x);
    for (size_t i = 0; i < e->n; i++) {
        out->eval_y[at + i] = e->y[i];
        out->eval_pred[at + i] = pred[i];
        out->eval_naive[at + i] = e->naive[i];
        out->eval_scale[at + i] = e->scale[i];
        out->eval_hour[at + i] = e->hour[i];
        out->eval_group[at + i] = e->group[i];
        out->eval_fold[at + i] = fold;
    }
    return 0;
}

static const int bucket_lo[TR_BUCKETS] = {1, 7, 25, 49}, bucket_hi[TR_BUCKETS] = {6, 24, 48, 72};

int tr_train(const tr_history_t *h, tr_task_t task, const char *name, const char *const *buildings,
             size_t nbuildings, hvs_ms_t from, hvs_ms_t to, tr_info_fn info, void *opaque,
             const tr_config_t *c, hvs_model_ref_t *champion, tr_result_t *out, hvs_err_t *err) {
    double t0 = now_s();
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    out->task = task;
    out->features = tr_task_features(task, &out->nfeatures);
    out->train_start = from;
    out->train_end = to;
    for (int b = 0; b < TR_BUCKETS; b++)
        out->bucket_wape[b] = NAN;
    tr_select_t sel = {.task = task, .from = from, .to = to, .horizons = c->horizons,
                       .nhorizons = c->nhorizons, .per_hour = c->per_hour,
                       .weather_wait = c->weather_wait, .seed = 17, .buildings = buildings,
                       .nbuildings = nbuildings, .extra = c->extra};
    tr_rows_t rows = {0}, eval = {0};
    int rc = tr_rows_build(h, &sel, info, opaque, &rows, err);
    if (rc)
        return rc;
    if (c->max_rows && rows.n > c->max_rows) { /* thin evenly, keeping time order */
        size_t keep = 0, step = (rows.n + c->max_rows - 1) / c->max_rows;
        for (size_t i = 0; i < rows.n; i += step, keep++) {
            memmove(&rows.x[keep * rows.ncols], &rows.x[i * rows.ncols], rows.ncols * sizeof *rows.x);
            rows.y[keep] = rows.y[i], rows.scale[keep] = rows.scale[i], rows.naive[keep] = rows.naive[i];
            rows.horizon[keep] = rows.horizon[i], rows.hour[keep] = rows.hour[i];
            rows.as_of[keep] = rows.as_of[i], rows.group[keep] = rows.group[i];
            rows.series[keep] = rows.series[i];
        }
        rows.n = keep;
    }
    out->rows = rows.n;
    /* the protocol's leak guard */
    rc = tr_leak_check(h, &sel, info, opaque, &rows, c->leak_sample ? c->leak_sample : 200, err);
    if (rc == HVS_EINVAL) {
        out->status = HVS_MODEL_REJECTED;
        snprintf(out->reason, sizeof out->reason, "leak check: %.280s", err->msg);
        hvs_err_set(err, HVS_OK, NULL, "%s", "");
        rc = 0;
        goto done;
    }
    if (rc)
        goto done;
    /* rolling-origin backtest */
    hvs_ms_t fold_ms = (hvs_ms_t)c->fold_days * HVS_MS_DAY;
    hvs_ms_t first_test = hvs_time_day_start(to) - (hvs_ms_t)c->folds * fold_ms;
    if (first_test - from < (hvs_ms_t)c->min_train_days * HVS_MS_DAY) {
        rc = hvs_err_set(err, HVS_ESTATE, "too_little_history",
                         "%s: %.0f days of history, a backtest needs %d + %d x %d", name,
                         (double)(to - from) / HVS_MS_DAY, c->min_train_days, c->folds, c->fold_days);
        goto done;
    }
    size_t cap = 0, ne = 0;
    float *ey = NULL, *ep = NULL, *es = NULL, *en = NULL, *ec = NULL;
    float *by[TR_BUCKETS] = {0};
    (void)by;
    double bsum_e[TR_BUCKETS] = {0}, bsum_y[TR_BUCKETS] = {0};
    bool champ_ok = champion != NULL;
    for (int k = 0; k < c->folds && rc == 0; k++) {
        hvs_ms_t ts = first_test + k * fold_ms, te = ts + fold_ms;
        hvs_model_t *m = NULL;
        if ((rc = fit(&rows, task, from, ts, c, &m, NULL, err)))
            break;
        tr_select_t es_sel = sel;
        es_sel.from = ts;
        es_sel.to = te;
        es_sel.day_ahead = task == TR_FORECAST;
        es_sel.per_hour = 0;
        es_sel.extra = c->extra;
        if ((rc = tr_rows_build(h, &es_sel, info, opaque, &eval, err))) {
            hvs_model_free(m);
            break;
        }
        if (ne + eval.n > cap) {
            cap = (ne + eval.n) * 2;
            float **arrs[] = {&ey, &ep, &es, &en, &ec};
            for (size_t a = 0; a < 5; a++) {
                float *p = realloc(*arrs[a], cap * sizeof *p);
                if (!p) {
                    rc = hvs_err_set(err, HVS_ENOMEM, "oom", "evaluation");
                    break;
                }
                *arrs[a] = p;
            }
        }
        if (rc == 0)
            rc = predict_rows(m, &eval, ep + ne, err);
        if (rc == 0 && champ_ok && predict_champion(champion, task, &eval, ec + ne, err)) {
            champ_ok = false; /* a champion over other columns: no comparison */
            hvs_log_warn("trainer", "%s: champion %s not comparable: %s", name, champion->ident, err->msg);
        }
        for (size_t i = 0; rc == 0 && i < eval.n; i++) {
            ey[ne + i] = eval.y[i];
            es[ne + i] = eval.scale[i];
            en[ne + i] = eval.naive[i];
        }
        if (rc == 0 && c->keep_eval && keep_eval_rows(out, &eval, ep + ne, ne, k))
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "evaluation rows");
        ne += rc == 0 ? eval.n : 0;
        /* per horizon bucket (forecast): the fold's sampled rows of the test days */
        if (rc == 0 && task == TR_FORECAST) {
            span_t sp = {ts, te};
            for (size_t i = 0; i < rows.n; i++) {
                if (!in_span(&rows, i, &sp))
                    continue;
                float p;
                if (hvs_model_predict(m, &rows.x[i * rows.ncols], 1, &p, err))
                    break;
                for (int b = 0; b < TR_BUCKETS; b++)
                    if (rows.horizon[i] >= bucket_lo[b] && rows.horizon[i] <= bucket_hi[b]) {
                        bsum_e[b] += fabs((double)(rows.y[i] - p) * rows.scale[i]);
                        bsum_y[b] += fabs((double)rows.y[i] * rows.scale[i]);
                    }
            }
        }
        tr_rows_free(&eval);
        hvs_model_free(m);
    }
    if (rc == 0) {
        out->eval_rows = ne;
        tr_metrics(ey, ep, es, ne, &out->metrics);
        /* the naive baseline scored on the rows where it exists; the model on the same rows */
        tr_metrics(ey, en, es, ne, &out->naive);
        if (champ_ok) {
            tr_metrics(ey, ec, es, ne, &out->champion);
            out->has_champion = true;
        }
        for (int b = 0; b < TR_BUCKETS; b++)
            out->bucket_wape[b] = bsum_y[b] > 0 ? bsum_e[b] / bsum_y[b] : NAN;
    }
    free(ey), free(ep), free(es), free(en), free(ec);
    if (rc)
        goto done;
    /* final model on the whole window */
    if ((rc = fit(&rows, task, from, to, c, &out->model, NULL, err)))
        goto done;
    if ((rc = stress(&rows, task, out->model, out, err)))
        goto done;
    if (profile(&rows, out, task)) {
        rc = hvs_err_set(err, HVS_ENOMEM, "oom", "profile");
        goto done;
    }
    /* the gate */
    double w = out->metrics.wape, wn = out->naive.wape;
    if (!isfinite(w)) {
        out->status = HVS_MODEL_REJECTED;
        snprintf(out->reason, sizeof out->reason, "no held-out hours to score");
    } else if (isfinite(wn) && w >= wn) {
        out->status = HVS_MODEL_REJECTED;
        snprintf(out->reason, sizeof out->reason, "does not beat seasonal naive: WAPE %.4f vs %.4f", w, wn);
    } else if (c->max_wape > 0 && w > c->max_wape) {
        out->status = HVS_MODEL_REJECTED;
        snprintf(out->reason, sizeof out->reason, "WAPE %.4f above the limit %.4f", w, c->max_wape);
    } else if (out->monotone_violations > 0 && c->monotone) {
        out->status = HVS_MODEL_REJECTED;
        snprintf(out->reason, sizeof out->reason, "stress test: %d of %d rows heat less when colder",
                 out->monotone_violations, out->stress_rows);
    } else if (out->has_champion && isfinite(out->champion.wape) &&
               w > out->champion.wape * (1.0 - c->min_improvement)) {
        out->status = HVS_MODEL_PENDING_APPROVAL;
        snprintf(out->reason, sizeof out->reason,
                 "WAPE %.4f does not beat the champion's %.4f by %.0f %%: for a person to decide", w,
                 out->champion.wape, c->min_improvement * 100);
    } else if (c->auto_approve) {
        out->status = HVS_MODEL_APPROVED;
        snprintf(out->reason, sizeof out->reason, "auto-approved: WAPE %.4f (naive %.4f%s)", w, wn,
                 out->has_champion ? ", beats the champion" : ", no champion");
    } else {
        out->status = HVS_MODEL_PENDING_APPROVAL;
        snprintf(out->reason, sizeof out->reason, "WAPE %.4f (naive %.4f): awaiting approval", w, wn);
    }
done:
    tr_rows_free(&rows);
    out->seconds = now_s() - t0;
    return rc;
}

void tr_result_free(tr_result_t *r) {
    hvs_model_free(r->model);
    free(r->quantiles);
    free(r->missing);
    free(r->eval_x), free(r->eval_y), free(r->eval_pred), free(r->eval_naive), free(r->eval_scale);
    free(r->eval_hour), free(r->eval_group), free(r->eval_fold);
    memset(r, 0, sizeof *r);
}

int tr_record_build(const tr_result_t *r, int version, hvs_ms_t now, const tr_config_t *c,
                    tr_record_t *out, hvs_err_t *err) {
    memset(out, 0, sizeof *out);
    unsigned char *ubj = NULL;
    size_t lu = 0, lz = 0;
    int rc = r->model ? hvs_model_save(r->model, &ubj, &lu, err) : 0;
    if (rc)
        return rc;
    if (ubj) {
        rc = hvs_zlib_compress(ubj, lu, &out->z, &lz, err);
        free(ubj);
        if (rc)
            return rc;
    }
    for (size_t i = 0; r->quantiles && i < r->nfeatures; i++)
        out->profile[i] = (hvs_feature_profile_t){r->features[i], &r->quantiles[i * TR_NQ],
                                                  tr_profile_p, TR_NQ, r->missing[i]};
    size_t np = 0;
#define P(k, fmt, v)                                                                               \
    do {                                                                                           \
        if (np < TR_PARAMS) {                                                                      \
            snprintf(out->values[np], sizeof out->values[np], fmt, v);                            \
            out->argv[2 * np] = k;                                                                 \
            out->argv[2 * np + 1] = out->values[np];                                               \
            np++;                                                                                  \
        }                                                                                          \
    } while (0)
    P("task", "%s", tr_task_name(r->task));
    P("tree_method", "%s", "hist");
    P("eta", "%g", c->xgb.eta > 0 ? c->xgb.eta : 0.05);
    P("max_depth", "%d", c->xgb.max_depth > 0 ? c->xgb.max_depth : 6);
    P("rounds_max", "%d", c->xgb.rounds > 0 ? c->xgb.rounds : 400);
    P("monotone", "%s", c->monotone ? "temperature-" : "off");
    P("target_scale", "%s", r->task == TR_FORECAST ? "per_heated_m2" : "kwh");
    P("folds", "%d", c->folds);
    P("fold_days", "%d", c->fold_days);
    P("rows", "%zu", r->rows);
    P("naive_wape", "%.6f", r->naive.wape);
    P("wape_h1_6", "%.6f", r->bucket_wape[0]);
    P("wape_h7_24", "%.6f", r->bucket_wape[1]);
    P("wape_h25_48", "%.6f", r->bucket_wape[2]);
    P("wape_h49_72", "%.6f", r->bucket_wape[3]);
    P("stress_violations", "%d", r->monotone_violations);
    P("stress_rows", "%d", r->stress_rows);
    P("train_seconds", "%.1f", r->seconds);
#undef P
    out->argv[2 * np] = NULL;
    out->rec = (hvs_model_record_t){
        .name = r->name, .version = version, .status = r->status, .features = r->features,
        .nfeatures = r->nfeatures, .train_start = r->train_start, .train_end = r->train_end,
        .created_at = now, .metrics = r->metrics, .champion = r->has_champion ? &r->champion : NULL,
        .profile = r->quantiles ? out->profile : NULL, .nprofile = r->quantiles ? r->nfeatures : 0,
        .temp_edges = tr_temp_edges, .irr_edges = tr_irr_edges, .ntemp = 12, .nirr = 11,
        .counts = r->joint, .params = out->argv, .model = out->z, .model_len = lz,
        .decided_by = r->status == HVS_MODEL_APPROVED || r->status == HVS_MODEL_REJECTED ? "trainer" : NULL,
        .decision_reason = r->reason[0] ? r->reason : NULL,
        .decided_at = r->status == HVS_MODEL_APPROVED || r->status == HVS_MODEL_REJECTED ? now : HVS_MS_NONE};
    return 0;
}

void tr_record_free(tr_record_t *r) {
    free(r->z);
    r->z = NULL;
}
