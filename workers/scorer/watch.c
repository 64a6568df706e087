/* watch.c - drift and constant-feature findings per served model version (watch.h). */
#include "watch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/drift.h"
#include "hvs/fmt.h"
#include "hvs/log.h"
#include "hvs/vec.h"

#define HOUR HVS_MS_HOUR
#define MAX_SLOTS 168

void sc_watch_conf_default(sc_watch_conf_t *c) {
    *c = (sc_watch_conf_t){.psi_limit = 0.2,
                           .window_ms = 24 * HOUR,
                           .min_count = 100,
                           .const_rows = 20,
                           .const_hours = 3,
                           .const_max_share = 0.2};
}

/* Calendar and clock features: not watched for drift. */
static const char *const clock_features[] = {"horizon_h",
                                             "hour",
                                             "weekday",
                                             "month",
                                             "is_weekend",
                                             "hour_sin",
                                             "hour_cos",
                                             "weekday_sin",
                                             "weekday_cos",
                                             "doy_sin",
                                             "doy_cos",
                                             "is_holiday",
                                             "is_bridge_day",
                                             "is_school_holiday",
                                             "is_christmas_period",
                                             "days_until_holiday",
                                             "days_since_holiday",
                                             "building_age_days",
                                             NULL};

/* Per-apartment features that different apartments never share exactly for hours. */
static bool per_apartment(const char *name) {
    return strncmp(name, "use_", 4) == 0 || !strcmp(name, "room_temp_c") ||
           !strcmp(name, "comfort_gap_c") || !strcmp(name, "comfort_gap_prev");
}

static bool clock_feature(const char *name) {
    for (int i = 0; clock_features[i]; i++)
        if (!strcmp(name, clock_features[i]))
            return true;
    return false;
}

typedef struct tracker {
    double v; /* NaN: no run */
    hvs_ms_t first, last;
    int hours, rows;
    hvs_ms_t day; /* the UTC day this feature was last found constant */
} tracker_t;

typedef struct watch {
    char *ident;
    int32_t p;
    hvs_drift_t *d;
    size_t ncols;
    char **cols;
    bool *psi_on, *const_on;
    tracker_t *tr;
    hvs_ms_t newest, psi_day;
    hvs_ms_t dirty_hours[MAX_SLOTS];
    size_t ndirty;
    bool dirty;
} watch_t;

struct sc_watches {
    sc_watch_conf_t conf;
    watch_t **w;
    size_t n, cap;
};

sc_watches_t *sc_watches_new(const sc_watch_conf_t *c) {
    sc_watches_t *w = calloc(1, sizeof *w);
    if (w)
        w->conf = *c;
    return w;
}

static void watch_free(watch_t *x) {
    if (!x)
        return;
    for (size_t i = 0; i < x->ncols && x->cols; i++)
        free(x->cols[i]);
    free(x->cols);
    free(x->psi_on);
    free(x->const_on);
    free(x->tr);
    hvs_drift_destroy(x->d);
    free(x->ident);
    free(x);
}

void sc_watches_destroy(sc_watches_t *w) {
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        watch_free(w->w[i]);
    free(w->w);
    free(w);
}

static watch_t *watch_new(const sc_watches_t *ws, int32_t p, const hvs_model_ref_t *ref,
                          hvs_err_t *err) {
    watch_t *x = calloc(1, sizeof *x);
    if (!x || !(x->ident = strdup(ref->ident)) ||
        !(x->cols = calloc(ref->nfeatures, sizeof *x->cols)) ||
        !(x->psi_on = calloc(ref->nfeatures, sizeof *x->psi_on)) ||
        !(x->const_on = calloc(ref->nfeatures, sizeof *x->const_on)) ||
        !(x->tr = calloc(ref->nfeatures, sizeof *x->tr))) {
        watch_free(x);
        hvs_err_set(err, HVS_ENOMEM, "oom", "watch of %s", ref->ident);
        return NULL;
    }
    x->ncols = ref->nfeatures;
    for (size_t j = 0; j < x->ncols; j++) {
        if (!(x->cols[j] = strdup(ref->features[j]))) {
            watch_free(x);
            hvs_err_set(err, HVS_ENOMEM, "oom", "watch of %s", ref->ident);
            return NULL;
        }
        x->psi_on[j] = !clock_feature(ref->features[j]);
        x->const_on[j] = per_apartment(ref->features[j]);
        x->tr[j] = (tracker_t){.v = NAN, .day = HVS_MS_NONE};
    }
    if (hvs_drift_new(ref->profile, ref->nfeatures, ws->conf.window_ms, ws->conf.min_count, &x->d,
                      err)) {
        watch_free(x);
        return NULL;
    }
    x->p = p;
    x->newest = x->psi_day = HVS_MS_NONE;
    return x;
}

static watch_t *find(sc_watches_t *ws, int32_t p, const char *ident) {
    for (size_t i = 0; i < ws->n; i++)
        if (ws->w[i]->p == p && !strcmp(ws->w[i]->ident, ident))
            return ws->w[i];
    return NULL;
}

static int insert(sc_watches_t *ws, watch_t *x, hvs_err_t *err) {
    watch_t **g = hvs_vec_grow(ws->w, &ws->cap, ws->n + 1, sizeof *ws->w, 16);
    if (!g) {
        watch_free(x);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "watches");
    }
    ws->w = g;
    ws->w[ws->n++] = x;
    return 0;
}

/* Expected share of the profile bin holding v (1 when the feature has no profile). */
static double bin_share(const watch_t *x, size_t j, double v) {
    const double *upper, *expected;
    size_t nb = hvs_drift_bins(x->d, j, &upper, &expected);
    if (nb == 0)
        return 1;
    size_t i = 0;
    while (i + 1 < nb && v > upper[i])
        i++;
    return expected[i];
}

static hvs_ms_t day_of(hvs_ms_t h) { return h - ((h % HVS_MS_DAY) + HVS_MS_DAY) % HVS_MS_DAY; }

/* The drift finding over the window ending with the hour just completed. */
static int check_drift(sc_watches_t *ws, watch_t *x, sc_finding_t *f) {
    if (x->newest == HVS_MS_NONE || day_of(x->newest) == x->psi_day)
        return 0;
    double psi[4096];
    if (x->ncols > sizeof psi / sizeof psi[0])
        return 0;
    size_t rows = 0;
    hvs_drift_psi(x->d, x->newest, psi, &rows);
    *f = (sc_finding_t){.ident = x->ident, .partition = x->p, .hour = x->newest, .rows = rows};
    for (size_t j = 0; j < x->ncols; j++) {
        if (!x->psi_on[j] || !(psi[j] > ws->conf.psi_limit))
            continue;
        if (psi[j] > f->worst)
            f->worst = psi[j];
        int pos = f->n;
        while (pos > 0 && f->value[pos - 1] < psi[j])
            pos--;
        if (pos >= SC_FINDING_FEATURES)
            continue;
        int n = f->n < SC_FINDING_FEATURES ? f->n : SC_FINDING_FEATURES - 1;
        memmove(&f->value[pos + 1], &f->value[pos], (size_t)(n - pos) * sizeof f->value[0]);
        memmove(&f->feature[pos + 1], &f->feature[pos], (size_t)(n - pos) * sizeof f->feature[0]);
        f->value[pos] = psi[j];
        f->feature[pos] = x->cols[j];
        f->n = n + 1;
    }
    if (f->n == 0)
        return 0;
    x->psi_day = day_of(x->newest);
    x->dirty = true;
    return 1;
}

static void mark_slot(watch_t *x, hvs_ms_t hour) {
    for (size_t i = 0; i < x->ndirty; i++)
        if (x->dirty_hours[i] == hour)
            return;
    if (x->ndirty < MAX_SLOTS)
        x->dirty_hours[x->ndirty++] = hour;
}

int sc_watches_add(sc_watches_t *ws, int32_t p, const hvs_model_ref_t *ref, hvs_ms_t hour,
                   const double *row, sc_finding_t out[2], hvs_err_t *err) {
    watch_t *x = find(ws, p, ref->ident);
    if (!x) {
        if (!(x = watch_new(ws, p, ref, err)) || insert(ws, x, err))
            return err->code ? err->code : HVS_ENOMEM;
    }
    int nf = 0;
    if (x->newest == HVS_MS_NONE || hour > x->newest) {
        nf += check_drift(ws, x, &out[nf]);
        x->newest = hour;
        x->dirty = true;
    }
    if (hvs_drift_add(x->d, hour, row) == 0)
        mark_slot(x, hour);
    const sc_watch_conf_t *c = &ws->conf;
    for (size_t j = 0; j < x->ncols && nf < 2; j++) {
        if (!x->const_on[j] || isnan(row[j]))
            continue;
        tracker_t *t = &x->tr[j];
        if (row[j] == t->v) {
            t->rows++;
            if (hour != t->last)
                t->hours++, t->last = hour;
        } else {
            *t = (tracker_t){row[j], hour, hour, 1, 1, t->day};
        }
        x->dirty = true;
        if (t->rows >= c->const_rows && t->hours >= c->const_hours && day_of(hour) != t->day &&
            bin_share(x, j, t->v) <= c->const_max_share) {
            out[nf] = (sc_finding_t){.ident = x->ident,
                                     .partition = p,
                                     .hour = hour,
                                     .constant = true,
                                     .n = 1,
                                     .rows = (size_t)t->rows,
                                     .since = t->first};
            out[nf].feature[0] = x->cols[j];
            out[nf].value[0] = t->v;
            nf++;
            t->day = day_of(hour);
        }
    }
    return nf;
}

void sc_watches_drop_partition(sc_watches_t *ws, int32_t p) {
    size_t k = 0;
    for (size_t i = 0; i < ws->n; i++) {
        if (ws->w[i]->p == p)
            watch_free(ws->w[i]);
        else
            ws->w[k++] = ws->w[i];
    }
    ws->n = k;
}

/* ---- Redis ---------------------------------------------------------------------------------- */

static void watch_text(const watch_t *x, hvs_strbuf_t *b) {
    hvs_strbuf_printf(b, "w1 %lld %lld %zu", (long long)x->newest, (long long)x->psi_day, x->ncols);
    for (size_t j = 0; j < x->ncols; j++) {
        char v[HVS_FMT_MAX + 1];
        v[hvs_fmt_double(v, x->tr[j].v)] = '\0';
        hvs_strbuf_printf(b, " %s %lld %lld %d %d %lld", v, (long long)x->tr[j].first,
                          (long long)x->tr[j].last, x->tr[j].hours, x->tr[j].rows,
                          (long long)x->tr[j].day);
    }
}

static int watch_read(watch_t *x, const char *text) {
    char *e;
    const char *s = text;
    if (strncmp(s, "w1 ", 3))
        return -1;
    s += 3;
    long long newest = strtoll(s, &e, 10), pd;
    s = e;
    pd = strtoll(s, &e, 10), s = e;
    unsigned long n = strtoul(s, &e, 10);
    if (e == s || n != x->ncols)
        return -1;
    s = e;
    for (size_t j = 0; j < x->ncols; j++) {
        tracker_t t;
        t.v = strtod(s, &e);
        if (e == s)
            return -1;
        s = e;
        t.first = strtoll(s, &e, 10), s = e;
        t.last = strtoll(s, &e, 10), s = e;
        t.hours = (int)strtol(s, &e, 10), s = e;
        t.rows = (int)strtol(s, &e, 10), s = e;
        t.day = strtoll(s, &e, 10);
        if (e == s)
            return -1;
        s = e;
        x->tr[j] = t;
    }
    if (*s)
        return -1;
    x->newest = newest, x->psi_day = pd;
    return 0;
}

int sc_watches_save(sc_watches_t *ws, hvs_redis_batch_t *batch, hvs_err_t *err) {
    for (size_t i = 0; i < ws->n; i++) {
        watch_t *x = ws->w[i];
        if (!x->dirty && x->ndirty == 0)
            continue;
        char key[48], field[256];
        snprintf(key, sizeof key, "hvs:sc:drift:%d", (int)x->p);
        hvs_strbuf_t b = {0};
        int rc = 0;
        if (x->dirty) {
            watch_text(x, &b);
            snprintf(field, sizeof field, "%s|w", x->ident);
            if (b.oom)
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "watch text");
            else {
                const char *a[] = {"HSET", key, field, b.p};
                if (hvs_redis_batch_add(batch, 4, a, NULL))
                    rc = hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
            }
        }
        for (size_t k = 0; k < x->ndirty && rc == 0; k++) {
            b.len = 0;
            if (b.p)
                b.p[0] = '\0';
            if ((rc = hvs_drift_slot_encode(x->d, x->dirty_hours[k], &b, err)))
                break;
            long long slot = (x->dirty_hours[k] / HOUR) % (ws->conf.window_ms / HOUR);
            snprintf(field, sizeof field, "%s|s%lld", x->ident, slot);
            const char *a[] = {"HSET", key, field, b.p};
            if (hvs_redis_batch_add(batch, 4, a, NULL))
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
        }
        free(b.p);
        if (rc)
            return rc;
        x->dirty = false;
        x->ndirty = 0;
    }
    return 0;
}

int sc_watches_load_partition(sc_watches_t *ws, hvs_redis_t *r, hvs_redis_batch_t *rb, int32_t p,
                              sc_watch_lookup_fn lookup, void *opaque, hvs_err_t *err) {
    sc_watches_drop_partition(ws, p);
    char key[48];
    snprintf(key, sizeof key, "hvs:sc:drift:%d", (int)p);
    hvs_redis_batch_reset(rb);
    const char *a[] = {"HGETALL", key};
    if (hvs_redis_batch_add(rb, 2, a, NULL))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    int rc = hvs_redis_batch_exec(r, rb, err);
    if (rc)
        return rc;
    const redisReply *h = hvs_redis_batch_reply(rb, 0);
    if (!h || h->type != REDIS_REPLY_ARRAY)
        return 0;
    /* the trackers first: they create the watches the slots go into */
    for (int pass = 0; pass < 2 && rc == 0; pass++)
        for (size_t i = 0; i + 1 < h->elements && rc == 0; i += 2) {
            const redisReply *f = h->element[i], *v = h->element[i + 1];
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            const char *bar = strrchr(f->str, '|');
            if (!bar || (pass == 0) != (strcmp(bar, "|w") == 0))
                continue;
            char ident[256];
            snprintf(ident, sizeof ident, "%.*s", (int)(bar - f->str), f->str);
            watch_t *x = find(ws, p, ident);
            if (pass == 0) {
                char name[256];
                const char *colon = strrchr(ident, ':');
                snprintf(name, sizeof name, "%.*s", colon ? (int)(colon - ident) : 0, ident);
                hvs_model_ref_t *ref = colon ? lookup(opaque, name) : NULL;
                if (ref && !strcmp(ref->ident, ident) && !x) {
                    if ((x = watch_new(ws, p, ref, err)) && (rc = insert(ws, x, err)) == 0 &&
                        watch_read(x, v->str) != 0)
                        hvs_log_warn("scorer", "%s %s: unreadable watch state, started afresh", key,
                                     f->str);
                    if (!x && rc == 0)
                        rc = err->code ? err->code : HVS_ENOMEM;
                }
                if (ref)
                    hvs_registry_release(ref);
                continue;
            }
            if (!x)
                continue; /* a version that no longer serves */
            hvs_err_t e = {0};
            if (hvs_drift_slot_decode(x->d, v->str, v->len, &e) < 0)
                hvs_log_warn("scorer", "%s %s: %s", key, f->str, e.msg);
        }
    return rc;
}
