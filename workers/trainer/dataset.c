/* dataset.c - rows from the history through the feature definition (see dataset.h). */
#include "dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/featstore.h"
#include "hvs/task_rows.h"

#define HOUR HVS_MS_HOUR

/* The task names, columns and scaling are the domain's (task_rows.h): serving workers build
 * their rows through the same function. */
const char *tr_task_name(tr_task_t t) { return hvs_taskrow_task_name((hvs_task_t)t); }

int tr_task_parse(const char *name) { return hvs_taskrow_task_parse(name); }

const char *const *tr_task_features(tr_task_t t, size_t *n) {
    return hvs_taskrow_columns((hvs_task_t)t, n);
}

void tr_rows_fini(tr_rows_t *r) {
    free(r->x), free(r->y), free(r->scale), free(r->naive), free(r->horizon);
    free(r->hour), free(r->as_of), free(r->group), free(r->series), free(r->standin);
    memset(r, 0, sizeof *r);
}

static int grow1(void **p, size_t size) {
    void *n = realloc(*p, size);
    if (!n)
        return HVS_ENOMEM;
    *p = n;
    return 0;
}

int tr_rows_grow(tr_rows_t *r) {
    if (r->n < r->cap)
        return 0;
    size_t cap = r->cap ? r->cap * 2 : 4096;
    if (grow1((void **)&r->x, cap * r->ncols * sizeof *r->x) ||
        grow1((void **)&r->y, cap * sizeof *r->y) ||
        grow1((void **)&r->scale, cap * sizeof *r->scale) ||
        grow1((void **)&r->naive, cap * sizeof *r->naive) ||
        grow1((void **)&r->horizon, cap * sizeof *r->horizon) ||
        grow1((void **)&r->hour, cap * sizeof *r->hour) ||
        grow1((void **)&r->as_of, cap * sizeof *r->as_of) ||
        grow1((void **)&r->group, cap * sizeof *r->group) ||
        grow1((void **)&r->series, cap * sizeof *r->series) ||
        grow1((void **)&r->standin, cap * sizeof *r->standin))
        return HVS_ENOMEM;
    r->cap = cap;
    return 0;
}

static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static bool wanted(const tr_select_t *sel, const char *id) {
    if (!sel->buildings)
        return true;
    for (size_t i = 0; i < sel->nbuildings; i++)
        if (strcmp(sel->buildings[i], id) == 0)
            return true;
    return false;
}

/* The anomaly row's as_of: as the features worker sets it. */
static hvs_ms_t stream_as_of(const hvs_feat_history_t *v, hvs_ms_t hour, hvs_ms_t wait) {
    const hvs_feat_wx_t *w = hvs_feat_wx_get(v, hour, hour + HOUR + wait);
    if (w && w->observed)
        return w->issued_at > hour + HOUR ? w->issued_at : hour + HOUR;
    return hour + HOUR + wait;
}

/* The row's columns through the domain's builder, cast to the floats XGBoost reads. */
static int task_row(tr_task_t task, const double *x, double area, float *row, size_t n,
                    hvs_err_t *err) {
    double cols[HVS_TASKROW_MAX_COLS];
    int rc = hvs_taskrow_build((hvs_task_t)task, x, area, cols, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        row[i] = (float)cols[i];
    return 0;
}

/* ---- weather stand-ins (dataset.h) ---------------------------------------------------------- */

/* The hours whose weather hvs_features_compute reads at as_of (features.h): the target hour and
 * its temperature lags; the rolling means read hours before A <= as_of, never still to come. */
static const int standin_lags[] = {0, 24, 48, 168};
#define STANDIN_HOURS (sizeof standin_lags / sizeof standin_lags[0])

/* The newest observation of an hour with a temperature, or NULL. */
static const hvs_feat_wx_t *observation_of(const hvs_feat_history_t *v, hvs_ms_t hour) {
    if (!v->wx || v->nwx == 0)
        return NULL;
    const hvs_feat_wx_hour_t *w = &v->wx[hvs_feat_slot(hour, v->nwx)];
    if (w->hour != hour)
        return NULL;
    for (int i = w->n - 1; i >= 0; i--)
        if (w->v[i].observed && isfinite(w->v[i].temp))
            return &w->v[i];
    return NULL;
}

/* A writable copy of one building's weather ring, patched for one row at a time and restored:
 * the history stays untouched (const) and a building that needs no stand-in is never copied. */
typedef struct standin {
    hvs_feat_wx_hour_t *ring;
    size_t n;
    const hvs_feat_wx_hour_t *of; /* the ring it copies (NULL: none yet) */
} standin_t;

/*
 * The features of (hour, as_of) on v, with stand-ins when on: an hour still to come at as_of
 * with no record issued by then in v and an observation in obs (the whole history: in the leak
 * check v is the cut one) reads a forecast issued at as_of carrying the observation's values.
 * *stood gets the hours stood in. v->wx must be sc->of's content or a private ring (writable:
 * the leak check's cut copy, passed as `own`). HVS_ENOMEM.
 */
static int compute_row(standin_t *sc, bool on, const hvs_feat_history_t *v,
                       const hvs_feat_history_t *obs, hvs_feat_wx_hour_t *own, hvs_calendar_t *cal,
                       hvs_ms_t hour, hvs_ms_t as_of, double *x, unsigned *flags, int *stood,
                       hvs_err_t *err) {
    *stood = 0;
    const hvs_feat_wx_t *rec[STANDIN_HOURS] = {0};
    hvs_ms_t hrs[STANDIN_HOURS];
    size_t need = 0;
    hour = hvs_time_window_start(hour, HOUR);
    for (size_t i = 0; on && v->nwx && i < STANDIN_HOURS; i++) {
        hvs_ms_t hh = hour - (hvs_ms_t)standin_lags[i] * HOUR;
        bool dup = false; /* two lags in one slot of a short ring: read the same slot */
        for (size_t j = 0; j < need; j++)
            dup |= hvs_feat_slot(hrs[j], v->nwx) == hvs_feat_slot(hh, v->nwx);
        if (hh + HOUR <= as_of || dup || hvs_feat_wx_get(v, hh, as_of))
            continue;
        if ((rec[need] = observation_of(obs, hh)))
            hrs[need++] = hh;
    }
    if (need == 0) { /* what serving computes */
        hvs_features_compute(v, cal, hour, as_of, x, flags);
        return 0;
    }
    hvs_feat_wx_hour_t *ring = own;
    if (!ring) {
        if (!sc->ring || sc->n < v->nwx) {
            free(sc->ring);
            sc->of = NULL;
            if (!(sc->ring = malloc(v->nwx * sizeof *sc->ring)))
                return hvs_err_set(err, HVS_ENOMEM, "oom", "weather stand-in ring");
            sc->n = v->nwx;
        }
        if (sc->of != v->wx) {
            memcpy(sc->ring, v->wx, v->nwx * sizeof *sc->ring);
            sc->of = v->wx;
        }
        ring = sc->ring;
    }
    hvs_feat_wx_hour_t saved[STANDIN_HOURS];
    for (size_t i = 0; i < need; i++) {
        hvs_feat_wx_hour_t *slot = &ring[hvs_feat_slot(hrs[i], v->nwx)];
        saved[i] = *slot;
        /* the only record the row can read of that hour: any other was issued after as_of */
        hvs_feat_wx_t f = *rec[i];
        f.issued_at = as_of;
        f.observed = false;
        slot->hour = hrs[i];
        slot->n = 1;
        slot->v[0] = f;
    }
    hvs_feat_history_t pv = *v;
    pv.wx = ring;
    hvs_features_compute(&pv, cal, hour, as_of, x, flags);
    for (size_t i = need; i-- > 0;)
        ring[hvs_feat_slot(hrs[i], v->nwx)] = saved[i];
    *stood = (int)need;
    return 0;
}

static int add_row(tr_rows_t *r, size_t ncols, const hvs_feat_history_t *v, hvs_calendar_t *cal,
                   const tr_select_t *sel, standin_t *sc, hvs_ms_t hour, hvs_ms_t as_of,
                   double target, double area, int32_t g, int32_t s, hvs_err_t *err) {
    if (tr_rows_grow(r))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "training rows");
    double x[HVS_FEATURES_COUNT];
    unsigned flags;
    int stood;
    int rc = compute_row(sc, sel->weather_standin, v, v, NULL, cal, hour, as_of, x, &flags, &stood,
                         err);
    if (rc)
        return rc;
    float *row = &r->x[r->n * r->ncols];
    if ((rc = task_row(sel->task, x, area, row, ncols, err)))
        return rc;
    if (sel->extra)
        row[ncols] = (float)sel->extra(v, hour, as_of);
    hvs_task_t t = (hvs_task_t)sel->task;
    const hvs_feat_hour_t *back = hvs_feat_hour_get(v, hour - 168 * HOUR);
    r->y[r->n] = (float)hvs_taskrow_target(t, target, area);
    r->scale[r->n] = (float)hvs_taskrow_divisor(t, area);
    r->naive[r->n] = back && isfinite(back->use) ? (float)hvs_taskrow_target(t, back->use, area)
                                                 : NAN;
    r->horizon[r->n] = (float)x[0];
    r->hour[r->n] = hour;
    r->as_of[r->n] = as_of;
    r->group[r->n] = g;
    r->series[r->n] = s;
    r->standin[r->n] = (uint8_t)stood;
    r->nstandin += stood > 0;
    r->n++;
    return 0;
}

int tr_rows_build(const tr_history_t *h, const tr_select_t *sel, tr_info_fn info, void *opaque,
                  tr_rows_t *out, hvs_err_t *err) {
    memset(out, 0, sizeof *out);
    if (sel->task == TR_REFRESH || (sel->task == TR_ANOMALY_CLASSIFIER && !sel->labels))
        return hvs_err_set(err, HVS_EINVAL, "bad_task",
                           "%s rows do not come from the history without labels",
                           tr_task_name(sel->task));
    size_t ncols = hvs_taskrow_ncols((hvs_task_t)sel->task);
    out->ncols = ncols + (sel->extra ? 1 : 0);
    int rc = 0;
    standin_t sc = {0};
    uint64_t rs = sel->seed ? sel->seed : 0x9e3779b97f4a7c15ull;
    for (size_t g = 0; g < h->nb; g++) {
        const tr_building_t *b = h->b[g];
        if (!wanted(sel, b->id))
            continue;
        tr_building_info_t bi = {.area_m2 = NAN, .commissioning = HVS_MS_NONE};
        if (info(opaque, b->id, &bi) || !bi.cal)
            continue;
        if (isnan(hvs_taskrow_divisor((hvs_task_t)sel->task, bi.area_m2))) {
            if (bi.no_area)
                bi.no_area(opaque, b->id); /* not in silence (issue 18) */
            continue;                      /* no area: no scale for a shared model */
        }
        for (size_t si = 0; si < b->ns; si++) {
            const tr_series_t *s = b->s[si];
            bool building = strcmp(s->id, HVS_FS_BUILDING) == 0;
            if ((sel->task == TR_FORECAST) != building)
                continue;
            hvs_feat_history_t v;
            tr_history_view(h, b, s, bi.commissioning, &v);
            if (sel->task == TR_FORECAST && sel->day_ahead) {
                for (hvs_ms_t day = hvs_time_day_start(sel->from); day < sel->to;
                     day += HVS_MS_DAY) {
                    hvs_ms_t as_of = day - 12 * HOUR;
                    for (int k = 0; k < 24; k++) {
                        hvs_ms_t hour = day + k * HOUR;
                        const hvs_feat_hour_t *t = hvs_feat_hour_get(&v, hour);
                        if (hour < sel->from || hour >= sel->to || !t || !isfinite(t->use))
                            continue;
                        if ((rc = add_row(out, ncols, &v, bi.cal, sel, &sc, hour, as_of, t->use,
                                          bi.area_m2, (int32_t)g, (int32_t)si, err)))
                            goto fail;
                    }
                }
                continue;
            }
            for (hvs_ms_t hour = hvs_time_window_start(sel->from, HOUR); hour < sel->to;
                 hour += HOUR) {
                const hvs_feat_hour_t *t = hvs_feat_hour_get(&v, hour);
                if (!t || !isfinite(t->use))
                    continue;
                if (sel->task == TR_ANOMALY_CLASSIFIER) {
                    int lab = tr_labels_get(sel->labels, b->id, s->id, hvs_time_day_start(hour));
                    if ((lab >= 0 || sel->all_days) &&
                        (rc = add_row(out, ncols, &v, bi.cal, sel, &sc, hour,
                                      stream_as_of(&v, hour, sel->weather_wait),
                                      lab >= 0 ? lab : NAN, bi.area_m2, (int32_t)g, (int32_t)si,
                                      err)))
                        goto fail;
                    continue;
                }
                if (sel->task == TR_ANOMALY_RESIDUAL) {
                    if ((rc = add_row(out, ncols, &v, bi.cal, sel, &sc, hour,
                                      stream_as_of(&v, hour, sel->weather_wait), t->use, bi.area_m2,
                                      (int32_t)g, (int32_t)si, err)))
                        goto fail;
                    continue;
                }
                size_t k = sel->per_hour > 0 && (size_t)sel->per_hour < sel->nhorizons
                               ? (size_t)sel->per_hour
                               : sel->nhorizons;
                for (size_t j = 0; j < k; j++) {
                    int hz = k == sel->nhorizons ? sel->horizons[j]
                                                 : sel->horizons[next_rand(&rs) % sel->nhorizons];
                    if ((rc = add_row(out, ncols, &v, bi.cal, sel, &sc, hour,
                                      hour + HOUR - (hvs_ms_t)hz * HOUR, t->use, bi.area_m2,
                                      (int32_t)g, (int32_t)si, err)))
                        goto fail;
                }
            }
        }
    }
    free(sc.ring);
    return 0;
fail:
    free(sc.ring);
    tr_rows_fini(out);
    return rc;
}

/* ---- leak check ----------------------------------------------------------------------------- */

int tr_leak_check(const tr_history_t *h, const tr_select_t *sel, tr_info_fn info, void *opaque,
                  const tr_rows_t *r, size_t sample, hvs_err_t *err) {
    if (r->n == 0)
        return 0;
    size_t ncols = hvs_taskrow_ncols((hvs_task_t)sel->task);
    hvs_feat_hour_t *hours = malloc(h->ring * sizeof *hours);
    hvs_feat_wx_hour_t *wx = malloc(h->ring * sizeof *wx);
    if (!hours || !wx) {
        free(hours), free(wx);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "leak check");
    }
    int rc = 0;
    size_t step = r->n / (sample ? sample : 1);
    if (step == 0)
        step = 1;
    float *row = malloc(r->ncols * sizeof *row);
    for (size_t i = 0; row && i < r->n && rc == 0; i += step) {
        const tr_building_t *b = h->b[r->group[i]];
        const tr_series_t *s = b->s[r->series[i]];
        tr_building_info_t bi = {.area_m2 = NAN, .commissioning = HVS_MS_NONE};
        if (info(opaque, b->id, &bi) || !bi.cal)
            continue;
        hvs_ms_t as_of = r->as_of[i];
        /* the history as it stood at as_of */
        for (size_t k = 0; k < h->ring; k++) {
            if (k < s->ring) { /* an apartment's ring may be shorter (history.h) */
                hours[k] = s->hours[k];
                if (hours[k].hour != HVS_MS_NONE && hours[k].hour + HOUR > as_of)
                    hours[k].hour = HVS_MS_NONE;
            }
            wx[k] = b->wx[k];
            int w = 0;
            for (int q = 0; q < wx[k].n; q++)
                if (wx[k].v[q].issued_at <= as_of)
                    wx[k].v[w++] = wx[k].v[q];
            wx[k].n = w;
        }
        hvs_feat_history_t v = {hours, s->ring, wx, h->ring, bi.commissioning}, whole;
        tr_history_view(h, b, s, bi.commissioning, &whole);
        double x[HVS_FEATURES_COUNT];
        unsigned flags;
        int stood;
        /* stand-ins qualify on the cut history; only their values come from the whole one */
        if ((rc = compute_row(NULL, sel->weather_standin, &v, &whole, wx, bi.cal, r->hour[i], as_of,
                              x, &flags, &stood, err)) ||
            (rc = task_row(sel->task, x, bi.area_m2, row, ncols, err)))
            break;
        if (sel->extra)
            row[ncols] = (float)sel->extra(&v, r->hour[i], as_of);
        const float *got = &r->x[i * r->ncols];
        for (size_t c = 0; c < r->ncols; c++)
            if (!(row[c] == got[c] || (isnan(row[c]) && isnan(got[c])))) {
                size_t nf;
                const char *const *f = tr_task_features(sel->task, &nf);
                rc = hvs_err_set(err, HVS_EINVAL, "leakage",
                                 "feature %s of %s at hour %lld as of %lld uses data after as_of "
                                 "(%g with the future, %g without)",
                                 c < nf ? f[c] : "extra", b->id, (long long)r->hour[i],
                                 (long long)as_of, got[c], row[c]);
                break;
            }
        if (rc == 0 && (stood > 0) != (r->standin && r->standin[i] > 0))
            rc = hvs_err_set(err, HVS_EINVAL, "leakage",
                             "row of %s at hour %lld as of %lld: %d hours of observed weather "
                             "stand in for forecasts, the row is flagged with %d",
                             b->id, (long long)r->hour[i], (long long)as_of, stood,
                             r->standin ? (int)r->standin[i] : 0);
    }
    free(row);
    free(hours);
    free(wx);
    return rc;
}
