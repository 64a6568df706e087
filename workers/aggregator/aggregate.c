#include "aggregate.h"

#include "hvs/vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const hvs_ms_t agg_window_ms[AGG_WSIZES] = {15 * 60 * 1000LL, 60 * 60 * 1000LL};
#define HOUR_MS (3600 * 1000LL)
#define INF_MS INT64_MAX

struct agg {
    agg_config_t conf;
    agg_stats_t stats;
    agg_building_t **list;
    size_t n, cap;
    int32_t *index; /* open addressing over list positions, -1 = empty */
    size_t icap;
};

static hvs_ms_t max_ms(hvs_ms_t a, hvs_ms_t b) { return a > b ? a : b; }
static hvs_ms_t min_ms(hvs_ms_t a, hvs_ms_t b) { return a < b ? a : b; }

static uint64_t fnv(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

agg_t *agg_new(const agg_config_t *conf) {
    agg_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->conf = *conf;
    return g;
}

const agg_config_t *agg_config(const agg_t *g) { return &g->conf; }
agg_stats_t *agg_stats(agg_t *g) { return &g->stats; }

static void free_strs(char **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void apartment_free(agg_apartment_t *a) {
    if (!a)
        return;
    free(a->id);
    agg_samples_fini(&a->samples);
    free(a->marks.m);
    free(a->buckets);
    agg_account_fini(&a->account);
    free(a);
}

static void building_free(agg_building_t *b) {
    if (!b)
        return;
    for (size_t i = 0; i < b->napts; i++)
        apartment_free(b->apts[i]);
    free(b->apts);
    for (int s = 0; s < AGG_WSIZES; s++)
        free(b->marks[s].m);
    free(b->changed);
    free_strs(b->del_marks, b->ndel_marks);
    free_strs(b->del_apts, b->ndel_apts);
    free_strs(b->del_days, b->ndel_days);
    free(b->id);
    free(b);
}

void agg_destroy(agg_t *g) {
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        building_free(g->list[i]);
    free(g->list);
    free(g->index);
    free(g);
}

static int reindex(agg_t *g, size_t icap) {
    int32_t *idx = malloc(icap * sizeof *idx);
    if (!idx)
        return HVS_ENOMEM;
    for (size_t i = 0; i < icap; i++)
        idx[i] = -1;
    for (size_t i = 0; i < g->n; i++) {
        size_t h = fnv(g->list[i]->id) & (icap - 1);
        while (idx[h] >= 0)
            h = (h + 1) & (icap - 1);
        idx[h] = (int32_t)i;
    }
    free(g->index);
    g->index = idx;
    g->icap = icap;
    return 0;
}

agg_building_t *agg_building(agg_t *g, const char *id, int32_t partition, bool create) {
    if (g->icap) {
        size_t h = fnv(id) & (g->icap - 1);
        for (; g->index[h] >= 0; h = (h + 1) & (g->icap - 1))
            if (strcmp(g->list[g->index[h]]->id, id) == 0)
                return g->list[g->index[h]];
    }
    if (!create)
        return NULL;
    if ((g->n + 1) * 2 > g->icap && reindex(g, g->icap ? g->icap * 2 : 64))
        return NULL;
    agg_building_t **nl = hvs_vec_grow(g->list, &g->cap, g->n + 1, sizeof *g->list, 32);
    if (!nl)
        return NULL;
    g->list = nl;
    agg_building_t *b = calloc(1, sizeof *b);
    if (!b || !(b->id = strdup(id))) {
        free(b);
        return NULL;
    }
    b->partition = partition;
    for (int s = 0; s < AGG_WSIZES; s++)
        b->through[s] = HVS_MS_NONE;
    b->dirty_lo = INF_MS;
    b->dirty_hi = HVS_MS_NONE;
    b->horizon = HVS_MS_NONE;
    b->ev_max = b->ev_seen = b->wm_floor = b->wm_saved = HVS_MS_NONE;
    agg_thresholds(g, HVS_MS_NONE, b->th);
    b->persist_meta = true;
    g->list[g->n++] = b;
    size_t h = fnv(id) & (g->icap - 1);
    while (g->index[h] >= 0)
        h = (h + 1) & (g->icap - 1);
    g->index[h] = (int32_t)(g->n - 1);
    return b;
}

agg_building_t **agg_buildings(agg_t *g, size_t *n) {
    *n = g->n;
    return g->list;
}

void agg_drop_partition(agg_t *g, int32_t partition) {
    size_t w = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (g->list[i]->partition == partition)
            building_free(g->list[i]);
        else
            g->list[w++] = g->list[i];
    }
    g->n = w;
    if (g->icap)
        reindex(g, g->icap); /* on ENOMEM the old index stays: lookups may miss, never crash */
}

agg_apartment_t *agg_apartment(agg_building_t *b, const char *id, bool create) {
    size_t lo;
    bool found;
    HVS_VEC_BSEARCH_STR(b->apts, b->napts, ->id, id, lo, found);
    if (found)
        return b->apts[lo];
    if (!create)
        return NULL;
    agg_apartment_t **na = hvs_vec_grow(b->apts, &b->capapts, b->napts + 1, sizeof *b->apts, 16);
    if (!na)
        return NULL;
    b->apts = na;
    agg_apartment_t *a = calloc(1, sizeof *a);
    if (!a || !(a->id = strdup(id))) {
        free(a);
        return NULL;
    }
    a->dirty_lo = INF_MS;
    a->dirty_hi = HVS_MS_NONE;
    hvs_vec_open(b->apts, b->napts, lo, sizeof *b->apts);
    b->apts[lo] = a;
    b->napts++;
    b->persist_meta = true;
    return a;
}

agg_marker_t *agg_markers_find(agg_markers_t *m, hvs_ms_t ws) {
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->m[mid].ws == ws)
            return &m->m[mid];
        if (m->m[mid].ws < ws)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int agg_markers_set(agg_markers_t *m, hvs_ms_t ws, uint32_t rev, uint64_t hash) {
    agg_marker_t *f = agg_markers_find(m, ws);
    if (f) {
        f->rev = rev;
        f->hash = hash;
        return 0;
    }
    agg_marker_t *nm = hvs_vec_grow(m->m, &m->cap, m->n + 1, sizeof *m->m, 64);
    if (!nm)
        return HVS_ENOMEM;
    m->m = nm;
    size_t at = m->n;
    while (at > 0 && m->m[at - 1].ws > ws)
        at--;
    memmove(&m->m[at + 1], &m->m[at], (m->n - at) * sizeof *m->m);
    m->m[at] = (agg_marker_t){ws, rev, hash};
    m->n++;
    return 0;
}

int agg_mark_field(char *buf, size_t len, int size, hvs_ms_t ws, const char *apt) {
    int n = snprintf(buf, len, "%d:%lld:%s", size == AGG_W15 ? 15 : 60,
                     (long long)(hvs_time_window_start(ws, AGG_MARK_BLOCK_MS) / HOUR_MS),
                     apt ? apt : "");
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int agg_day_field(char *buf, size_t len, hvs_ms_t day, const char *apt) {
    int n = snprintf(buf, len, "%lld:%s", (long long)day, apt);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int agg_apartment_touch(agg_apartment_t *a, hvs_ms_t t) {
    hvs_ms_t h = hvs_time_window_start(t, HOUR_MS);
    for (size_t i = a->nbuckets; i > 0; i--) /* recent first: usually the last one */
        if (a->buckets[i - 1] == h)
            return 0;
    hvs_ms_t *nb = hvs_vec_grow(a->buckets, &a->capbuckets, a->nbuckets + 1, sizeof *nb, 8);
    if (!nb)
        return HVS_ENOMEM;
    a->buckets = nb;
    a->buckets[a->nbuckets++] = h;
    return 0;
}

static int push_str(char ***v, size_t *n, size_t *cap, const char *s) {
    if (*n > 0 && strcmp((*v)[*n - 1], s) == 0)
        return 0; /* the same block's field again (agg_mark_field) */
    char **nv = hvs_vec_grow(*v, cap, *n + 1, sizeof *nv, 16);
    if (!nv)
        return HVS_ENOMEM;
    *v = nv;
    if (!((*v)[*n] = strdup(s)))
        return HVS_ENOMEM;
    (*n)++;
    return 0;
}

static int cmp_ms(const void *x, const void *y) {
    hvs_ms_t a = *(const hvs_ms_t *)x, b = *(const hvs_ms_t *)y;
    return a < b ? -1 : a > b;
}

void agg_meter_params(const agg_t *g, const agg_building_t *b, const agg_apartment_t *apt,
                      hvs_ms_t at, agg_params_t *out) {
    *out = g->conf.params;
    const agg_meter_t *m = apt->meter.set ? &apt->meter : &b->meter;
    const agg_samples_t *a = &apt->samples;
    if (!m->set)
        return;
    out->max_rate_per_h[AGG_HEAT] = m->max_kw;
    out->heat_unit_kwh = m->unit_kwh;
    hvs_ms_t s = m->interval_ms;
    if (m->learn) {
        s = 0;
        ptrdiff_t j = agg_instants_floor(a->inst, a->ninst, at);
        hvs_ms_t gaps[8];
        size_t n = 0;
        for (; j >= 1 && n < 8; j--)
            gaps[n++] = a->inst[j] - a->inst[j - 1];
        if (n > 0) {
            qsort(gaps, n, sizeof gaps[0], cmp_ms);
            s = gaps[(n - 1) / 2]; /* the lower median: a real value, no rounding */
        }
    }
    if (s <= 0)
        return;
    s = max_ms(1000, min_ms(s, out->max_interp_ms));
    out->sample_ms = s;
    out->silence_ms = max_ms(out->silence_ms, 2 * s);
}

/* Next point of s after t, INF_MS if none. */
static hvs_ms_t next_point(const agg_series_t *s, hvs_ms_t t) {
    ptrdiff_t i = agg_points_floor(s->p, s->n, t);
    return (size_t)(i + 1) < s->n ? s->p[i + 1].t : INF_MS;
}

/*
 * Which already computed windows can a new value at t change? (windows.h's rule, run
 * backwards.) Counter pairs ending at t reach back S when alive or up to Lmax across a gap; a
 * new instant changes liveness around it; a gauge value holds until the series' next value.
 */
int agg_accept(agg_t *g, const hvs_reading_t *r, int32_t partition, hvs_ms_t wm, hvs_err_t *err) {
    agg_params_t mp;
    const agg_params_t *p = &mp;
    hvs_ms_t t = r->timestamp;
    if (wm != HVS_MS_NONE && t < wm - g->conf.lateness) {
        g->stats.too_late++;
        char a[32], b[32];
        return hvs_err_set(
            err, HVS_EINVAL, AGG_R_TOO_LATE,
            "reading at %s is older than the watermark %s minus the allowed lateness",
            hvs_time_format_iso8601(t, a, sizeof a), hvs_time_format_iso8601(wm, b, sizeof b));
    }
    agg_building_t *b = agg_building(g, r->building_id, partition, true);
    agg_apartment_t *a = b ? agg_apartment(b, r->apartment_id, true) : NULL;
    if (!a)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "no memory for %s/%s", r->building_id,
                           r->apartment_id);
    agg_samples_t *sm = &a->samples;
    agg_meter_params(g, b, a, t, &mp);
    size_t fresh = 0;
    for (size_t i = 0; i < r->n; i++) {
        int k = agg_kind_of(r->v[i].sensor_type);
        if (k >= 0 && !agg_samples_find(sm, (agg_kind_t)k,
                                        k == AGG_HEAT || k == AGG_WATER ? "" : r->v[i].room_name))
            fresh++;
    }
    if (sm->ns + fresh > AGG_MAX_SERIES)
        return hvs_err_set(err, HVS_EINVAL, AGG_R_TOO_MANY_ROOMS,
                           "%s/%s would have %zu series (rooms x sensors), more than %d",
                           r->building_id, r->apartment_id, sm->ns + fresh, AGG_MAX_SERIES);
    int ins = agg_samples_add_instant(sm, t);
    if (ins < 0)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "no memory for %s/%s", r->building_id,
                           r->apartment_id);
    bool any = ins == 1;
    hvs_ms_t lower = t - p->sample_ms, upper = t + p->silence_ms + p->sample_ms;
    for (size_t i = 0; i < r->n; i++) {
        int k = agg_kind_of(r->v[i].sensor_type);
        if (k < 0)
            continue;
        agg_series_t *s = agg_samples_series(sm, (agg_kind_t)k, r->v[i].room_name);
        if (!s)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "no memory for %s/%s", r->building_id,
                               r->apartment_id);
        int rc = agg_samples_add_point(s, t, r->v[i].value, &g->stats.conflicts);
        if (rc < 0)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "no memory for %s/%s", r->building_id,
                               r->apartment_id);
        if (rc == 0)
            continue;
        any = true;
        hvs_ms_t next = next_point(s, t);
        if (k == AGG_HEAT || k == AGG_WATER) {
            if (next != INF_MS)
                upper = max_ms(upper, next);
            ptrdiff_t j = agg_points_floor(s->p, s->n, t);
            unsigned flag;
            double d = j > 0 ? agg_counter_delta(p, k, s->p[j - 1].t, s->p[j - 1].v, t, s->p[j].v,
                                                 &flag)
                             : 0;
            if (j > 0 && !agg_pair_alive(sm, p, k, s->p[j - 1].t, t, d))
                lower = min_ms(lower, max_ms(s->p[j - 1].t, t - p->max_interp_ms));
            /* t splits the pair (prev, next): whatever that pair was spread over changes too
             * (a late reading inside an interpolated gap turns its windows back to measured). */
            if (j > 0 && next != INF_MS)
                lower = min_ms(lower, max_ms(s->p[j - 1].t, next - p->max_interp_ms));
        } else {
            upper = max_ms(upper, next); /* holds until the next value, or for good */
            /* and decides whether the next temperature counts as a change (temp_changes) of
             * the window that value is in, which may start at `next` */
            if (k == AGG_TEMP && next != INF_MS)
                upper = max_ms(upper, next + 1);
        }
    }
    if (!any) {
        g->stats.duplicates++;
        return 0;
    }
    if (ins == 1) {
        ptrdiff_t i = agg_instants_floor(sm->inst, sm->ninst, t);
        hvs_ms_t prev = i > 0 ? sm->inst[i - 1] : HVS_MS_NONE;
        hvs_ms_t next = (size_t)(i + 1) < sm->ninst ? sm->inst[i + 1] : INF_MS;
        if (prev == HVS_MS_NONE) {
            upper = max_ms(upper, next); /* the apartment exists earlier than it did */
        } else if (t - prev > p->silence_ms) {
            lower = min_ms(lower, prev + p->sample_ms);
        } else if (next != INF_MS && next - prev > p->silence_ms) {
            /* t closes part of a gap: counter intervals across it may turn alive */
            lower = min_ms(lower, t - p->max_interp_ms - p->sample_ms);
            upper = max_ms(upper, next + p->sample_ms);
            for (size_t k = 0; k < sm->ns; k++)
                if (sm->s[k].kind == AGG_HEAT || sm->s[k].kind == AGG_WATER)
                    upper = max_ms(upper, next_point(&sm->s[k], t));
        }
    }
    if (agg_apartment_touch(a, t))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "no memory for %s/%s", r->building_id,
                           r->apartment_id);
    /* Only windows already emitted need a second look; the rest are computed when they close. */
    hvs_ms_t emitted = b->through[AGG_W15] > b->through[AGG_W60] ? b->through[AGG_W15]
                                                                 : b->through[AGG_W60];
    if (emitted != HVS_MS_NONE && lower < emitted) {
        a->dirty_lo = min_ms(a->dirty_lo, lower);
        a->dirty_hi = max_ms(a->dirty_hi, upper);
        b->dirty_lo = min_ms(b->dirty_lo, lower);
        b->dirty_hi = max_ms(b->dirty_hi, upper);
    }
    g->stats.accepted++;
    return 1;
}

static int note_change(agg_building_t *b, agg_apartment_t *a, int size, hvs_ms_t ws) {
    struct agg_mark_ref *nc = hvs_vec_grow(b->changed, &b->capchanged, b->nchanged + 1, sizeof *nc,
                                           64);
    if (!nc)
        return HVS_ENOMEM;
    b->changed = nc;
    b->changed[b->nchanged++] = (struct agg_mark_ref){a, size, ws};
    return 0;
}

/* Publish r unless the same value was already published for this window. */
static int publish(agg_t *g, agg_building_t *b, agg_apartment_t *a, int size, agg_result_t *r,
                   agg_emit_fn emit, void *opaque, hvs_err_t *err) {
    agg_markers_t *ms = a ? &a->marks : &b->marks[size];
    uint64_t h = agg_result_hash(r);
    agg_marker_t *m = agg_markers_find(ms, r->ws);
    if (m && m->hash == h)
        return 0;
    uint32_t rev = m ? m->rev + 1 : 0;
    if (rev > 0) {
        r->flags |= AGG_F_LATE_DATA;
        g->stats.revisions++;
    }
    int rc = emit(opaque, b, a, size, r, rev, err);
    if (rc)
        return rc;
    g->stats.emitted++;
    if (agg_markers_set(ms, r->ws, rev, h) || note_change(b, a, size, r->ws))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "no memory for markers of %s", b->id);
    return 0;
}

/* The building window [ws, ws + size), and for hourly windows each apartment's too. */
static int compute_window(agg_t *g, agg_building_t *b, int size, hvs_ms_t ws, agg_emit_fn emit,
                          void *opaque, hvs_err_t *err) {
    hvs_ms_t we = ws + agg_window_ms[size];
    agg_result_t br, ar;
    agg_window_building_begin(&br, ws, we);
    int rc = 0;
    for (size_t i = 0; i < b->napts && rc == 0; i++) {
        agg_apartment_t *a = b->apts[i];
        g->stats.windows_computed++;
        agg_params_t p;
        agg_meter_params(g, b, a, we, &p);
        /* only hourly apartment windows are published: the others need no rooms */
        bool ok = size == AGG_W60 ? agg_window_apartment(&a->samples, &p, ws, we, &ar)
                                  : agg_window_apartment_totals(&a->samples, &p, ws, we, &ar);
        if (!ok)
            continue;
        agg_window_building_add(&br, &ar);
        if (size == AGG_W60) /* unchanged windows are recognised by their hash */
            rc = publish(g, b, a, size, &ar, emit, opaque, err);
    }
    if (rc)
        return rc;
    if (br.known == 0 && b->known_apartments == 0)
        return 0; /* no apartment existed yet */
    agg_window_building_finish(&br, b->known_apartments);
    return publish(g, b, NULL, size, &br, emit, opaque, err);
}

static void forget(agg_building_t *b, hvs_ms_t horizon, hvs_ms_t instants_horizon) {
    char field[600];
    for (int s = 0; s < AGG_WSIZES; s++) {
        agg_markers_t *m = &b->marks[s];
        size_t k = 0;
        while (k < m->n && m->m[k].ws < horizon) {
            if (agg_mark_field(field, sizeof field, s, m->m[k].ws, "") > 0)
                push_str(&b->del_marks, &b->ndel_marks, &b->capdel_marks, field);
            k++;
        }
        if (k > 0) /* m->m is NULL while nothing was ever marked */
            memmove(m->m, &m->m[k], (m->n - k) * sizeof *m->m);
        m->n -= k;
    }
    size_t w = 0;
    for (size_t i = 0; i < b->napts; i++) {
        agg_apartment_t *a = b->apts[i];
        agg_markers_t *m = &a->marks;
        size_t k = 0;
        while (k < m->n && m->m[k].ws < horizon) {
            if (agg_mark_field(field, sizeof field, AGG_W60, m->m[k].ws, a->id) > 0)
                push_str(&b->del_marks, &b->ndel_marks, &b->capdel_marks, field);
            k++;
        }
        if (k > 0) /* m->m is NULL while nothing was ever marked */
            memmove(m->m, &m->m[k], (m->n - k) * sizeof *m->m);
        m->n -= k;
        /* Stored hour buckets of what is dropped get rewritten (or deleted) by persist. */
        agg_samples_t *sm = &a->samples;
        for (size_t j = 0; j + 1 < sm->ninst && sm->inst[j + 1] < instants_horizon; j++)
            agg_apartment_touch(a, sm->inst[j]);
        for (size_t q = 0; q < sm->ns; q++)
            for (size_t j = 0; j + 1 < sm->s[q].n && sm->s[q].p[j + 1].t < horizon; j++)
                agg_apartment_touch(a, sm->s[q].p[j].t);
        agg_samples_prune(sm, horizon, instants_horizon);
        /* day accounts: a day wholly before the horizon has no window left to revise */
        hvs_ms_t days[8];
        size_t nd;
        while ((nd = agg_account_forget(&a->account, horizon, days, 8)) > 0)
            for (size_t q = 0; q < nd; q++)
                if (agg_day_field(field, sizeof field, days[q], a->id) > 0)
                    push_str(&b->del_days, &b->ndel_days, &b->capdel_days, field);
        if (sm->ninst == 0 || agg_samples_last(sm) < instants_horizon) {
            for (size_t q = 0; q < a->account.n; q++)
                if (agg_day_field(field, sizeof field, a->account.d[q].day, a->id) > 0)
                    push_str(&b->del_days, &b->ndel_days, &b->capdel_days, field);
            /* Silent for longer than anything can still change: forget it, with the markers
             * of its windows still kept (silent windows after its last reading) and the
             * references to them that the next persist would follow. */
            for (size_t q = 0; q < m->n; q++)
                if (agg_mark_field(field, sizeof field, AGG_W60, m->m[q].ws, a->id) > 0)
                    push_str(&b->del_marks, &b->ndel_marks, &b->capdel_marks, field);
            size_t c = 0;
            for (size_t q = 0; q < b->nchanged; q++)
                if (b->changed[q].apt != a)
                    b->changed[c++] = b->changed[q];
            b->nchanged = c;
            push_str(&b->del_apts, &b->ndel_apts, &b->capdel_apts, a->id);
            apartment_free(a);
            b->persist_meta = true;
            continue;
        }
        b->apts[w++] = a;
    }
    b->napts = w;
}

void agg_thresholds(const agg_t *g, hvs_ms_t wm, hvs_ms_t out[3]) {
    const agg_config_t *c = &g->conf;
    if (wm == HVS_MS_NONE) {
        out[0] = out[1] = out[2] = HVS_MS_NONE;
        return;
    }
    out[0] = hvs_time_window_start(wm - c->grace[AGG_W15], agg_window_ms[AGG_W15]);
    out[1] = hvs_time_window_start(wm - c->grace[AGG_W60], agg_window_ms[AGG_W60]);
    out[2] = hvs_time_window_start(wm - c->lateness - c->params.max_interp_ms, HOUR_MS) - HOUR_MS;
}

void agg_partition_loaded(agg_t *g, int32_t partition, hvs_ms_t wm) {
    size_t n;
    agg_building_t **bs = agg_buildings(g, &n);
    for (size_t i = 0; i < n; i++) {
        agg_building_t *b = bs[i];
        if (b->partition != partition)
            continue;
        hvs_ms_t bwm = b->wm_floor != HVS_MS_NONE ? b->wm_floor : wm;
        agg_thresholds(g, bwm, b->th);
        b->horizon = b->th[2];
        if (b->wm_floor == HVS_MS_NONE && wm != HVS_MS_NONE)
            agg_building_restore(g, b, wm, HVS_MS_NONE);
    }
}

/* time.h's watermark rule, per building: the same rule, so a building alone on a partition
 * behaves as the partition did. */
hvs_ms_t agg_building_wm(const agg_t *g, const agg_building_t *b, hvs_ms_t now) {
    if (b->ev_max == HVS_MS_NONE)
        return b->wm_floor;
    return hvs_watermark_rule(b->ev_max, b->ev_seen, b->wm_floor, g->conf.ooo, g->conf.idle, now);
}

void agg_building_observe(const agg_t *g, agg_building_t *b, hvs_ms_t t, hvs_ms_t now) {
    b->wm_floor = agg_building_wm(g, b, now); /* an event after a quiet spell keeps its gain */
    if (b->ev_max == HVS_MS_NONE || t > b->ev_max)
        b->ev_max = t;
    b->ev_seen = now;
}

void agg_building_touch(const agg_t *g, agg_building_t *b, hvs_ms_t now) {
    if (b->ev_max == HVS_MS_NONE)
        return;
    b->wm_floor = agg_building_wm(g, b, now);
    b->ev_seen = now;
}

void agg_building_restore(const agg_t *g, agg_building_t *b, hvs_ms_t wm, hvs_ms_t now) {
    b->ev_max = hvs_time_add_sat(wm, g->conf.ooo);
    b->wm_floor = b->wm_saved = wm;
    b->ev_seen = now;
}

int agg_revise(agg_t *g, agg_building_t *b, agg_emit_fn emit, void *opaque, hvs_err_t *err) {
    int rc = 0;
    if (b->dirty_lo < b->dirty_hi && b->horizon != HVS_MS_NONE) {
        for (int s = 0; s < AGG_WSIZES && rc == 0; s++) {
            hvs_ms_t size = agg_window_ms[s];
            if (b->through[s] == HVS_MS_NONE)
                continue;
            hvs_ms_t from = max_ms(hvs_time_window_start(b->dirty_lo, size), b->horizon);
            hvs_ms_t to = min_ms(b->dirty_hi, b->through[s]);
            for (hvs_ms_t ws = from; ws < to && rc == 0; ws += size)
                rc = compute_window(g, b, s, ws, emit, opaque, err);
        }
    }
    if (rc)
        return rc;
    for (size_t i = 0; i < b->napts; i++) {
        b->apts[i]->dirty_lo = INF_MS;
        b->apts[i]->dirty_hi = HVS_MS_NONE;
    }
    b->dirty_lo = INF_MS;
    b->dirty_hi = HVS_MS_NONE;
    return 0;
}

/* If no apartment of b is alive anywhere in the window [ws, ws + size) — none reported within
 * the silence threshold before its end, none reports inside it — the start of the first window
 * that may hold life again (INF_MS when none is known yet); else ws. */
static hvs_ms_t silent_until(const agg_t *g, const agg_building_t *b, hvs_ms_t ws, hvs_ms_t size) {
    hvs_ms_t next = INF_MS;
    for (size_t i = 0; i < b->napts; i++) {
        const agg_samples_t *sm = &b->apts[i]->samples;
        if (!sm->ninst)
            continue;
        agg_params_t p;
        agg_meter_params(g, b, b->apts[i], ws + size, &p);
        hvs_ms_t reach = p.silence_ms + p.sample_ms;
        ptrdiff_t k = agg_instants_floor(sm->inst, sm->ninst, ws + size);
        if (k >= 0 && sm->inst[k] + reach >= ws)
            return ws; /* alive (or provisionally so) in the window */
        if ((size_t)(k + 1) < sm->ninst)
            next = min_ms(next, sm->inst[k + 1]);
    }
    return next == INF_MS ? INF_MS : max_ms(ws + size, hvs_time_window_start(next, size));
}

int agg_advance(agg_t *g, agg_building_t *b, hvs_ms_t wm, agg_emit_fn emit, void *opaque,
                hvs_err_t *err) {
    if (wm == HVS_MS_NONE || b->napts == 0)
        return 0;
    /* 1. Revisions first, under the horizon they were accepted under. */
    int rc = agg_revise(g, b, emit, opaque, err);
    if (rc)
        return rc;
    hvs_ms_t th[3];
    agg_thresholds(g, wm, th);
    if (b->horizon == HVS_MS_NONE || th[2] > b->horizon)
        b->horizon = th[2];
    /* 2. First emissions up to the watermark minus grace — but not across a silence: windows
     * in which no apartment is alive (every one quiet for longer than the silence threshold, or
     * not started yet) are all SILENT and nothing is published for them (a building whose
     * devices stopped must not publish every hour of a watermark leap; a late reading that
     * fills the gap still publishes the windows it touches, as revisions of never-published
     * windows do). */
    hvs_ms_t first = INF_MS;
    for (size_t i = 0; i < b->napts; i++)
        if (b->apts[i]->samples.ninst)
            first = min_ms(first, agg_samples_first(&b->apts[i]->samples));
    for (int s = 0; s < AGG_WSIZES && rc == 0; s++) {
        hvs_ms_t size = agg_window_ms[s];
        if (b->through[s] == HVS_MS_NONE) {
            if (first == INF_MS)
                continue;
            b->through[s] = max_ms(hvs_time_window_start(first, size), b->horizon);
            b->persist_meta = true;
        }
        while (rc == 0 && b->through[s] + size <= th[s]) {
            hvs_ms_t next = silent_until(g, b, b->through[s], size);
            if (next > b->through[s]) { /* nobody alive before `next`: skip there */
                b->through[s] = min_ms(next, hvs_time_window_start(th[s], size));
                b->persist_meta = true;
                continue;
            }
            rc = compute_window(g, b, s, b->through[s], emit, opaque, err);
            if (rc == 0) {
                b->through[s] += size;
                b->persist_meta = true;
            }
        }
    }
    if (rc)
        return rc;
    /* 3. Forget what can no longer change. */
    forget(b, b->horizon, b->horizon - g->conf.params.max_pair_ms);
    return 0;
}
