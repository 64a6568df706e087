/* batch.c - a batch's feature vectors scored together (batch.h). */
#include "batch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/model.h"
#include "hvs/task_rows.h"
#include "hvs/vec.h"

typedef struct item {
    sc_vector_t v;
    int32_t partition;
    bool quiet;
    hvs_model_ref_t *ref[2]; /* residual, classifier */
    double area;
    float pred[2];
    sc_apartment_t *apt;
    sc_building_t *bld;
    sc_model_t *model; /* its half; NULL: too old for the ring */
    int explain;       /* 0 none, 1 residual, 2 classifier */
} item_t;

struct sc_batch {
    item_t *items;
    size_t n, cap;
    float *rows, *out; /* one model's rows and results, grown as needed */
    size_t rows_cap, out_cap;
    size_t *which; /* the items of the current model */
    size_t which_cap;
    sc_batch_stats_t stats;
};

static const hvs_task_t task_of[2] = {HVS_TASK_ANOMALY_RESIDUAL, HVS_TASK_ANOMALY_CLASSIFIER};

sc_batch_t *sc_batch_new(void) { return calloc(1, sizeof(sc_batch_t)); }

void sc_batch_destroy(sc_batch_t *b) {
    if (!b)
        return;
    free(b->items);
    free(b->rows);
    free(b->out);
    free(b->which);
    free(b);
}

size_t sc_batch_size(const sc_batch_t *bt) { return bt->n; }
const sc_batch_stats_t *sc_batch_stats(const sc_batch_t *bt) { return &bt->stats; }

int sc_batch_add(sc_batch_t *bt, const sc_vector_t *v, int32_t partition, bool quiet,
                 hvs_model_ref_t *res, hvs_model_ref_t *cls, double area, hvs_err_t *err) {
    item_t *g = hvs_vec_grow(bt->items, &bt->cap, bt->n + 1, sizeof *bt->items, 256);
    if (!g)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "score batch");
    bt->items = g;
    item_t *it = &bt->items[bt->n++];
    it->v = *v;
    it->partition = partition;
    it->quiet = quiet;
    it->ref[0] = res;
    it->ref[1] = cls;
    it->area = area;
    it->pred[0] = it->pred[1] = NAN;
    it->apt = NULL;
    it->bld = NULL;
    it->model = NULL;
    it->explain = 0;
    return 0;
}

static int grow(sc_batch_t *bt, size_t nrows, size_t width) {
    float *r = hvs_vec_grow(bt->rows, &bt->rows_cap, nrows * width, sizeof *bt->rows, 4096);
    if (!r)
        return -1;
    bt->rows = r;
    float *o = hvs_vec_grow(bt->out, &bt->out_cap, nrows * width, sizeof *bt->out, 4096);
    if (!o)
        return -1;
    bt->out = o;
    size_t *w = hvs_vec_grow(bt->which, &bt->which_cap, nrows, sizeof *bt->which, 256);
    if (!w)
        return -1;
    bt->which = w;
    return 0;
}

/* The rows of the items (k = 0 residual, 1 classifier) that use `ref` and pass `want`, into
 * bt->rows; their indices into bt->which. */
static size_t gather(sc_batch_t *bt, int k, const hvs_model_ref_t *ref, int want_explain,
                     hvs_err_t *err, int *rc) {
    size_t ncols = hvs_taskrow_ncols(task_of[k]);
    size_t n = 0;
    double row[HVS_TASKROW_MAX_COLS];
    for (size_t i = 0; i < bt->n; i++) {
        item_t *it = &bt->items[i];
        if (it->ref[k] != ref || (want_explain && it->explain != k + 1))
            continue;
        if ((*rc = hvs_taskrow_build(task_of[k], it->v.x, it->area, row, err)))
            return 0;
        for (size_t j = 0; j < ncols; j++)
            bt->rows[n * ncols + j] = (float)row[j];
        bt->which[n++] = i;
    }
    return n;
}

/* The distinct model versions of column k, in first-use order, one at a time. */
static hvs_model_ref_t *next_ref(sc_batch_t *bt, int k, size_t *from) {
    for (; *from < bt->n; (*from)++) {
        hvs_model_ref_t *r = bt->items[*from].ref[k];
        if (!r)
            continue;
        bool seen = false;
        for (size_t j = 0; j < *from && !seen; j++)
            seen = bt->items[j].ref[k] == r;
        if (!seen)
            return bt->items[(*from)++].ref[k];
    }
    return NULL;
}

static int predict_all(sc_batch_t *bt, hvs_err_t *err) {
    if (grow(bt, bt->n, HVS_TASKROW_MAX_COLS + 1))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "score batch rows");
    for (int k = 0; k < 2; k++) {
        size_t from = 0;
        hvs_model_ref_t *ref;
        while ((ref = next_ref(bt, k, &from))) {
            int rc = 0;
            size_t n = gather(bt, k, ref, 0, err, &rc);
            if (rc)
                return rc;
            if (n && (rc = hvs_model_predict(ref->model, bt->rows, n, bt->out, err)))
                return rc;
            for (size_t i = 0; i < n; i++) {
                item_t *it = &bt->items[bt->which[i]];
                double p = bt->out[i];
                it->pred[k] = (float)(k == 0 ? hvs_taskrow_to_kwh(ref->target_scale, p, it->area)
                                             : p);
            }
            bt->stats.predicted += n;
        }
    }
    return 0;
}

/* Keep the SC_CONTRIB_MAX largest contributions (by size; ties: the lower column). */
static void top_contribs(sc_model_t *m, const hvs_model_ref_t *ref, const double *x, const float *c,
                         size_t ncols) {
    m->ncontrib = 0;
    for (size_t j = 0; j < ncols; j++) {
        float v = c[j];
        if (!(fabsf(v) > 0) || ref->feature_index[j] < 0)
            continue;
        int pos = m->ncontrib;
        while (pos > 0 && fabsf(m->contrib[pos - 1].contrib) < fabsf(v))
            pos--;
        if (pos >= SC_CONTRIB_MAX)
            continue;
        int n = m->ncontrib < SC_CONTRIB_MAX ? m->ncontrib : SC_CONTRIB_MAX - 1;
        memmove(&m->contrib[pos + 1], &m->contrib[pos], (size_t)(n - pos) * sizeof m->contrib[0]);
        int f = ref->feature_index[j];
        m->contrib[pos] = (sc_contrib_t){(int16_t)f, (float)x[f], v};
        m->ncontrib = (uint8_t)(n + 1);
    }
}

static int explain_all(sc_batch_t *bt, hvs_err_t *err) {
    hvs_ms_t t0 = hvs_time_mono_ms();
    for (int k = 0; k < 2; k++) {
        size_t from = 0;
        hvs_model_ref_t *ref;
        size_t ncols = hvs_taskrow_ncols(task_of[k]);
        while ((ref = next_ref(bt, k, &from))) {
            int rc = 0;
            size_t n = gather(bt, k, ref, 1, err, &rc);
            if (rc)
                return rc;
            if (n == 0)
                continue;
            if ((rc = hvs_model_contributions(ref->model, bt->rows, n, bt->out, err)))
                return rc;
            for (size_t i = 0; i < n; i++) {
                item_t *it = &bt->items[bt->which[i]];
                if (!it->model || it->model->rev != it->v.revision)
                    continue; /* a later revision in the batch took the half over */
                it->model->explained = (uint8_t)(k + 1);
                top_contribs(it->model, ref, it->v.x, bt->out + i * (ncols + 1), ncols);
            }
            bt->stats.explained += n;
        }
    }
    bt->stats.explain_seconds += (double)(hvs_time_mono_ms() - t0) / 1000.0;
    return 0;
}

/* Step 2: one vector's half into its apartment's ring, in arrival order. */
static void apply(item_t *it, sc_state_t *st, const sc_score_conf_t *c) {
    sc_model_t *m = sc_model_take(it->apt, it->v.hour);
    it->model = m;
    if (!m)
        return;
    if (m->rev > it->v.revision)
        return; /* an older revision than the ring holds: nothing changes */
    m->rev = it->v.revision;
    m->live = !it->quiet;
    m->observed = (float)it->v.target;
    m->expected = it->pred[0];
    m->prob = it->pred[1];
    int ti = hvs_features_index("temperature_c");
    m->outdoor_c = ti >= 0 ? (float)it->v.x[ti] : NAN;
    m->res_ident = it->ref[0] ? sc_ident_intern(&st->idents, it->ref[0]->ident) : SC_IDENT_NONE;
    m->cls_ident = it->ref[1] ? sc_ident_intern(&st->idents, it->ref[1]->ident) : SC_IDENT_NONE;
    double sum = NAN, exp_w = NAN;
    m->residual_z = (float)sc_residual_z(c, it->apt, it->v.hour, &sum, &exp_w);
    m->resid_w = (float)sum;
    m->expected_w = (float)exp_w;
    m->e_res = (float)sc_residual_evidence(c, m->residual_z);
    m->e_cls = isfinite(m->prob) ? m->prob : 0;
    m->explained = 0;
    m->ncontrib = 0;
    double best = m->e_res >= m->e_cls ? m->e_res : m->e_cls;
    if (best >= c->explain_min && best > 0)
        it->explain = (m->e_cls > m->e_res && it->ref[1]) ? 2 : it->ref[0] ? 1 : 0;
}

/* Each model's row of the item into its version's watch; findings to the hook. */
static int observe(const item_t *it, sc_watches_t *ws, const sc_batch_hooks_t *hooks,
                   hvs_err_t *err) {
    for (int k = 0; k < 2; k++) {
        if (!it->ref[k])
            continue;
        double row[HVS_TASKROW_MAX_COLS];
        int rc = hvs_taskrow_build(task_of[k], it->v.x, it->area, row, err);
        sc_finding_t f[2];
        int n = rc ? rc : sc_watches_add(ws, it->partition, it->ref[k], it->v.hour, row, f, err);
        if (n < 0)
            return n;
        for (int i = 0; i < n && !it->quiet; i++)
            if ((rc = hooks->finding(hooks->opaque, &f[i], err)))
                return rc;
    }
    return 0;
}

int sc_batch_run(sc_batch_t *bt, sc_state_t *st, sc_watches_t *ws, const sc_score_conf_t *c,
                 const sc_batch_hooks_t *hooks, hvs_err_t *err) {
    int rc = 0;
    if (bt->n == 0)
        return 0;
    for (size_t i = 0; i < bt->n; i++) {
        item_t *it = &bt->items[i];
        it->bld = sc_state_building(st, it->v.building, it->partition, true);
        it->apt = it->bld ? sc_state_apartment(it->bld, it->v.apartment, true) : NULL;
        if (!it->apt) {
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "state of %s/%s", it->v.building,
                             it->v.apartment);
            goto done;
        }
    }
    if ((rc = predict_all(bt, err)))
        goto done;
    for (size_t i = 0; i < bt->n && rc == 0; i++) {
        apply(&bt->items[i], st, c);
        if (!bt->items[i].model)
            bt->stats.too_old++;
        rc = observe(&bt->items[i], ws, hooks, err);
    }
    if (rc)
        goto done;
    if ((rc = explain_all(bt, err)))
        goto done;
    for (size_t i = 0; i < bt->n && rc == 0; i++) {
        item_t *it = &bt->items[i];
        bt->stats.vectors++;
        if (!it->model)
            continue;
        /* replayed quietly, it was published before the state was lost - unless its other
         * half came live since (the score published then lacked this half) */
        const sc_agg_t *g = sc_agg_get(it->apt, it->v.hour);
        if (!it->quiet || (g && g->live))
            rc = hooks->emit(hooks->opaque, it->bld, it->apt, it->v.hour, err);
    }
done:
    bt->n = 0;
    return rc;
}
