/* labels.c - labelled apartment-days (see labels.h). */
#include "labels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/alertbook.h"
#include "hvs/vec.h"

#define LABELS_KEY "hvs:tr:labels"

void tr_labels_init(tr_labels_t *l) { memset(l, 0, sizeof *l); }

static void label_free(tr_label_t *x) {
    free(x->key);
    free(x->building);
    free(x->apartment);
}

void tr_labels_fini(tr_labels_t *l) {
    for (size_t i = 0; i < l->n; i++)
        label_free(&l->v[i]);
    for (size_t i = 0; i < l->ngone; i++)
        free(l->gone[i]);
    free(l->gone);
    free(l->v);
    free(l->by_day);
    tr_labels_init(l);
}

static bool id_ok(const char *s) {
    return s && *s && strlen(s) <= TR_LABEL_ID_MAX && !strchr(s, '|');
}

hvs_ms_t tr_labels_alert_day(const char *id) { return hvs_alertbook_id_day(id); }

/* stored: a retraction read back is kept (an older verdict replayed later must not revive it) */
static int label_put(tr_labels_t *l, const char *alert_id, const char *building,
                     const char *apartment, hvs_ms_t day, tr_verdict_t verdict,
                     hvs_ms_t labelled_at, bool stored) {
    if (!id_ok(alert_id) || !id_ok(building) || !id_ok(apartment) || day == HVS_MS_NONE)
        return HVS_EINVAL;
    char key[2 * TR_LABEL_ID_MAX + 2];
    snprintf(key, sizeof key, "%s|%s", building, alert_id);
    size_t pos;
    bool found;
    HVS_VEC_BSEARCH_STR(l->v, l->n, .key, key, pos, found);
    tr_label_t *x;
    if (found) {
        x = &l->v[pos];
        if (labelled_at < x->labelled_at ||
            (labelled_at == x->labelled_at && verdict == x->verdict))
            return 0;
        if (strcmp(x->apartment, apartment)) {
            char *a = strdup(apartment);
            if (!a)
                return HVS_ENOMEM;
            free(x->apartment);
            x->apartment = a;
        }
    } else {
        if (verdict == TR_LABEL_NONE && !stored)
            return 0; /* retracting what was never said */
        tr_label_t *g = hvs_vec_grow(l->v, &l->cap, l->n + 1, sizeof *g, 64);
        if (!g)
            return HVS_ENOMEM;
        l->v = g;
        tr_label_t n = {strdup(key), strdup(building), strdup(apartment), 0, 0, 0, false};
        if (!n.key || !n.building || !n.apartment) {
            label_free(&n);
            return HVS_ENOMEM;
        }
        hvs_vec_open(l->v, l->n, pos, sizeof *l->v);
        l->v[pos] = n;
        l->n++;
        x = &l->v[pos];
    }
    x->day = day;
    x->verdict = (int8_t)verdict;
    x->labelled_at = labelled_at;
    x->dirty = true;
    l->stale = true;
    return 1;
}

int tr_labels_put(tr_labels_t *l, const char *alert_id, const char *building, const char *apartment,
                  hvs_ms_t day, tr_verdict_t verdict, hvs_ms_t labelled_at) {
    return label_put(l, alert_id, building, apartment, day, verdict, labelled_at, false);
}

static tr_labels_t *sort_ctx;

static int cmp_day(const void *a, const void *b) {
    const tr_label_t *x = &sort_ctx->v[*(const size_t *)a], *y = &sort_ctx->v[*(const size_t *)b];
    int c = strcmp(x->building, y->building);
    if (!c)
        c = strcmp(x->apartment, y->apartment);
    return c ? c : (x->day > y->day) - (x->day < y->day);
}

static int reindex(tr_labels_t *l) {
    if (!l->stale && l->nday == l->n)
        return 0;
    size_t *ix = realloc(l->by_day, (l->n ? l->n : 1) * sizeof *ix);
    if (!ix)
        return HVS_ENOMEM;
    l->by_day = ix;
    for (size_t i = 0; i < l->n; i++)
        ix[i] = i;
    sort_ctx = l; /* one thread owns the set (labels.h) */
    qsort(ix, l->n, sizeof *ix, cmp_day);
    l->nday = l->n;
    l->stale = false;
    return 0;
}

int tr_labels_get(tr_labels_t *l, const char *building, const char *apartment, hvs_ms_t day) {
    if (reindex(l))
        return -1;
    size_t lo = 0, hi = l->nday;
    while (lo < hi) { /* first label of (building, apartment, day) */
        size_t mid = lo + (hi - lo) / 2;
        const tr_label_t *x = &l->v[l->by_day[mid]];
        int c = strcmp(x->building, building);
        if (!c)
            c = strcmp(x->apartment, apartment);
        if (!c)
            c = (x->day > day) - (x->day < day);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    int got = -1;
    for (size_t i = lo; i < l->nday; i++) {
        const tr_label_t *x = &l->v[l->by_day[i]];
        if (x->day != day || strcmp(x->building, building) || strcmp(x->apartment, apartment))
            break;
        if (x->verdict == TR_LABEL_POSITIVE)
            return 1;
        if (x->verdict == TR_LABEL_NEGATIVE)
            got = 0;
    }
    return got < 0 && l->complete ? 0 : got;
}

void tr_labels_count(tr_labels_t *l, hvs_ms_t from, hvs_ms_t to, size_t *pos, size_t *neg) {
    *pos = *neg = 0;
    if (reindex(l))
        return;
    for (size_t i = 0; i < l->nday; i++) {
        const tr_label_t *x = &l->v[l->by_day[i]];
        if (x->day < from || x->day >= to)
            continue;
        if (i > 0) { /* an apartment-day once */
            const tr_label_t *p = &l->v[l->by_day[i - 1]];
            if (p->day == x->day && !strcmp(p->building, x->building) &&
                !strcmp(p->apartment, x->apartment))
                continue;
        }
        int v = tr_labels_get(l, x->building, x->apartment, x->day);
        *pos += v == 1;
        *neg += v == 0 && !l->complete;
    }
}

/* Labels of days before `before` leave memory; their keys are deleted at the next save. */
static int prune(tr_labels_t *l, hvs_ms_t before) {
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].day >= before) {
            l->v[k++] = l->v[i];
            continue;
        }
        char **g = hvs_vec_grow(l->gone, &l->capgone, l->ngone + 1, sizeof *g, 16);
        if (!g) {
            l->v[k++] = l->v[i]; /* kept for now: pruned at a later save */
            continue;
        }
        l->gone = g;
        l->gone[l->ngone++] = l->v[i].key;
        free(l->v[i].building);
        free(l->v[i].apartment);
    }
    if (k != l->n)
        l->stale = true;
    l->n = k;
    return 0;
}

int tr_labels_save(tr_labels_t *l, hvs_redis_batch_t *batch, hvs_ms_t before, hvs_err_t *err) {
    if (before != HVS_MS_NONE)
        prune(l, before);
    for (size_t i = 0; i < l->ngone; i++) {
        if (hvs_redis_batch_addf(batch, "HDEL " LABELS_KEY " %s", l->gone[i]))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "labels batch");
        free(l->gone[i]);
    }
    l->ngone = 0;
    for (size_t i = 0; i < l->n; i++) {
        tr_label_t *x = &l->v[i];
        if (!x->dirty)
            continue;
        char val[TR_LABEL_ID_MAX + 64];
        snprintf(val, sizeof val, "%s|%lld|%d|%lld", x->apartment, (long long)x->day, x->verdict,
                 (long long)x->labelled_at);
        if (hvs_redis_batch_addf(batch, "HSET " LABELS_KEY " %s %s", x->key, val))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "labels batch");
        x->dirty = false;
    }
    return 0;
}

int tr_labels_load(tr_labels_t *l, hvs_redis_t *r, size_t *skipped, hvs_err_t *err) {
    redisReply *rep = NULL;
    *skipped = 0;
    int rc = hvs_redis_command(r, &rep, err, "HGETALL " LABELS_KEY);
    if (rc)
        return rc;
    for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements && rc == 0;
         i += 2) {
        const char *key = rep->element[i]->str, *val = rep->element[i + 1]->str;
        char b[TR_LABEL_ID_MAX + 1], a[TR_LABEL_ID_MAX + 1];
        long long day, at;
        int verdict, used = 0;
        const char *bar = key ? strchr(key, '|') : NULL;
        if (!bar || bar - key > TR_LABEL_ID_MAX || !val ||
            sscanf(val, "%199[^|]|%lld|%d|%lld%n", a, &day, &verdict, &at, &used) != 4 ||
            val[used] || verdict < TR_LABEL_NONE || verdict > TR_LABEL_POSITIVE) {
            ++*skipped; /* one bad value must not cost every other label */
            continue;
        }
        snprintf(b, sizeof b, "%.*s", (int)(bar - key), key);
        int p = label_put(l, bar + 1, b, a, day, (tr_verdict_t)verdict, at, true);
        if (p == HVS_ENOMEM)
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "labels");
        else if (p < 0)
            ++*skipped;
    }
    for (size_t i = 0; i < l->n; i++)
        l->v[i].dirty = false;
    if (rep)
        freeReplyObject(rep);
    return rc;
}
