/*
 * state.c - the refresher's Redis state (state.h).
 */
#include "state.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/fmt.h"
#include "hvs/ids.h"

_Static_assert(sizeof(rf_hour_t) == 28, "rf_hour_t is the ring's 28-byte slot");
_Static_assert(sizeof(rf_baseline_t) == 120, "rf_baseline_t is the 120-byte record of state.h");

static int add(hvs_redis_batch_t *batch, int argc, const char **argv, const size_t *lens,
               hvs_err_t *err) {
    return hvs_redis_batch_add(batch, argc, argv, lens)
               ? hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch")
               : 0;
}

/* The changed ring slots: one SETRANGE per run of them, after a first SET of the whole ring (a
 * string grown by SETRANGE keeps twice its length allocated). */
static int ring_save(hvs_redis_batch_t *batch, rf_building_t *b, hvs_err_t *err) {
    bool any = false;
    for (size_t i = 0; i < sizeof b->ring_dirty / sizeof *b->ring_dirty; i++)
        any |= b->ring_dirty[i] != 0;
    if (!any)
        return 0;
    char key[700];
    if (hvs_redis_key(key, sizeof key, b->id, err, "rf:ring") < 0)
        return HVS_EINVAL;
    int rc = 0;
    if (!b->ring_sized) {
        const char *a[] = {"SET", key, (const char *)b->ring};
        size_t lens[] = {3, strlen(key), sizeof b->ring};
        b->ring_sized = true;
        memset(b->ring_dirty, 0, sizeof b->ring_dirty);
        return add(batch, 3, a, lens, err);
    }
    for (size_t s = 0; s < RF_RING_HOURS && rc == 0;) {
        if (!(b->ring_dirty[s / 64] & (1ull << (s % 64)))) {
            s++;
            continue;
        }
        size_t e = s;
        while (e < RF_RING_HOURS && (b->ring_dirty[e / 64] & (1ull << (e % 64))))
            e++;
        char off[24];
        snprintf(off, sizeof off, "%zu", s * sizeof(rf_hour_t));
        const char *a[] = {"SETRANGE", key, off, (const char *)&b->ring[s]};
        size_t lens[] = {8, strlen(key), strlen(off), (e - s) * sizeof(rf_hour_t)};
        rc = add(batch, 4, a, lens, err);
        s = e;
    }
    memset(b->ring_dirty, 0, sizeof b->ring_dirty);
    return rc;
}

#define BASE_MAGIC "rfb2"

/* The kept baselines (state.h): their count, the records with model = 1 + its index among the
 * names after. */
static void base_encode(const rf_t *g, const rf_building_t *b, hvs_strbuf_t *sb) {
    sb->len = 0;
    uint16_t names[RF_BASELINES_MAX];
    size_t nn = 0;
    uint32_t n = (uint32_t)b->nbase;
    hvs_strbuf_put(sb, BASE_MAGIC, 4);
    hvs_strbuf_put(sb, (const char *)&n, sizeof n);
    for (size_t i = 0; i < b->nbase; i++) {
        rf_baseline_t rec = b->base[i];
        size_t k = 0;
        while (k < nn && names[k] != rec.model)
            k++;
        if (k == nn)
            names[nn++] = rec.model;
        rec.model = (uint16_t)(k + 1);
        hvs_strbuf_put(sb, (const char *)&rec, sizeof rec);
    }
    for (size_t k = 0; k < nn; k++) {
        const char *nm = rf_name(g, names[k]);
        hvs_strbuf_put(sb, nm, strlen(nm) + 1);
    }
}

int rf_state_save(rf_t *g, hvs_redis_batch_t *batch, hvs_err_t *err) {
    size_t np;
    rf_partition_t **ps = rf_partitions(g, &np);
    hvs_strbuf_t sb = {0};
    char key[700];
    int rc = 0;
    for (size_t i = 0; i < np && rc == 0; i++) {
        rf_partition_t *pt = ps[i];
        char pk[48];
        snprintf(pk, sizeof pk, "hvs:rf:part:%d", (int)pt->p);
        char lk[48], tv[24];
        snprintf(lk, sizeof lk, "hvs:rf:lag:%d", (int)pt->p);
        for (size_t k = 0; k < pt->n && rc == 0; k++) {
            rf_building_t *b = pt->b[k];
            if (!b->known) {
                const char *a[] = {"SADD", pk, b->id};
                if ((rc = add(batch, 3, a, NULL, err)))
                    break;
                b->known = true;
            }
            /* a building whose last tick is not the partition's (it waits for its baseline) */
            bool lag = b->last_tick != pt->last_tick;
            if (lag && (!b->lagged || b->tick_saved != b->last_tick)) {
                snprintf(tv, sizeof tv, "%" PRId64, b->last_tick);
                const char *a[] = {"HSET", lk, b->id, tv};
                if ((rc = add(batch, 4, a, NULL, err)))
                    break;
                b->lagged = true, b->tick_saved = b->last_tick;
            } else if (!lag && b->lagged) {
                const char *a[] = {"HDEL", lk, b->id};
                if ((rc = add(batch, 3, a, NULL, err)))
                    break;
                b->lagged = false;
            }
            if ((rc = ring_save(batch, b, err)))
                break;
            if (b->base_dirty) {
                base_encode(g, b, &sb);
                if (sb.oom) {
                    rc = hvs_err_set(err, HVS_ENOMEM, "oom", "baselines of %s", b->id);
                    break;
                }
                if (hvs_redis_key(key, sizeof key, b->id, err, "rf:base") < 0) {
                    rc = HVS_EINVAL;
                    break;
                }
                const char *a[] = {"SET", key, sb.p};
                size_t lens[] = {3, strlen(key), sb.len};
                if ((rc = add(batch, 3, a, lens, err)))
                    break;
                b->base_dirty = false;
            }
        }
        if (rc == 0 && pt->dirty) {
            char tk[48], v[128];
            snprintf(tk, sizeof tk, "hvs:rf:tick:%d", (int)pt->p);
            snprintf(v, sizeof v, "1 %" PRId64 " %" PRId64 " %" PRId64, pt->last_tick, pt->wm_agg,
                     pt->wm_base);
            const char *a[] = {"SET", tk, v};
            if ((rc = add(batch, 3, a, NULL, err)) == 0)
                pt->dirty = false;
        }
    }
    free(sb.p);
    return rc;
}

static int exec_chunk(hvs_redis_t *r, hvs_redis_batch_t *b, hvs_err_t *err) {
    int rc = hvs_redis_batch_exec(r, b, err);
    if (rc == 0)
        rc = hvs_redis_batch_check(b, err);
    hvs_redis_batch_reset(b);
    return rc;
}

int rf_state_save_latest(rf_t *g, hvs_redis_t *r, hvs_redis_batch_t *batch, int64_t latest_ttl_ms,
                         hvs_err_t *err) {
    size_t np;
    rf_partition_t **ps = rf_partitions(g, &np);
    char key[700], ttl[24];
    snprintf(ttl, sizeof ttl, "%" PRId64, latest_ttl_ms);
    int rc = 0;
    hvs_redis_batch_reset(batch);
    for (size_t i = 0; i < np && rc == 0; i++)
        for (size_t k = 0; k < ps[i]->n && rc == 0; k++) {
            rf_building_t *b = ps[i]->b[k];
            if (!b->latest)
                continue;
            if (hvs_redis_key(key, sizeof key, b->id, err, "rf:latest") < 0)
                return HVS_EINVAL;
            const char *a[] = {"SET", key, b->latest, "PX", ttl};
            if ((rc = add(batch, 5, a, NULL, err)))
                break;
            free(b->latest);
            b->latest = NULL;
            if (hvs_redis_batch_size(batch) == RF_LATEST_CHUNK)
                rc = exec_chunk(r, batch, err);
        }
    if (rc == 0 && hvs_redis_batch_size(batch))
        rc = exec_chunk(r, batch, err);
    hvs_redis_batch_reset(batch);
    return rc;
}

static int bad(hvs_err_t *err, const char *key) {
    return hvs_err_set(err, HVS_ESERDE, "bad_state", "%s does not parse", key);
}

static int bad_building(hvs_err_t *err, const char *building, const char *what) {
    return hvs_err_set(err, HVS_ESERDE, "bad_state", "hvs:{%s}:%s does not parse", building, what);
}

/* The baselines (state.h) into b; -1 when they do not parse, -2 on ENOMEM. */
static int base_decode(rf_t *g, rf_building_t *b, const char *s, size_t len) {
    uint32_t n;
    if (len < 4 + sizeof n || memcmp(s, BASE_MAGIC, 4) != 0)
        return -1;
    memcpy(&n, s + 4, sizeof n);
    const char *p = s + 4 + sizeof n, *e = s + len;
    if (n > RF_BASELINES_MAX || (size_t)(e - p) < n * sizeof(rf_baseline_t))
        return -1;
    const char *np = p + n * sizeof(rf_baseline_t);
    const char *names[RF_BASELINES_MAX];
    size_t nn = 0;
    while (np < e && nn < RF_BASELINES_MAX) {
        const char *z = memchr(np, 0, (size_t)(e - np));
        if (!z)
            return -1;
        names[nn++] = np;
        np = z + 1;
    }
    b->nbase = 0;
    for (uint32_t i = 0; i < n; i++) {
        rf_baseline_t rec;
        memcpy(&rec, p + i * sizeof rec, sizeof rec);
        if (rec.model < 1 || rec.model > nn || rec.npoints > RF_BASE_POINTS ||
            (i > 0 && rec.issued_at >= b->base[i - 1].issued_at))
            return -1;
        rf_baseline_t *k = rf_base_append(b);
        if (!k)
            return -2;
        *k = rec;
        if (!(k->model = rf_name_intern(g, names[rec.model - 1])))
            return -2;
    }
    return 0;
}

static const redisReply *reply(hvs_redis_batch_t *b, size_t i, int type) {
    const redisReply *r = hvs_redis_batch_reply(b, i);
    return r && r->type == type ? r : NULL;
}

int rf_state_load_partition(rf_t *g, hvs_redis_t *r, hvs_redis_batch_t *batch, int32_t p, size_t *n,
                            hvs_err_t *err) {
    char pk[48], tk[48];
    snprintf(pk, sizeof pk, "hvs:rf:part:%d", (int)p);
    snprintf(tk, sizeof tk, "hvs:rf:tick:%d", (int)p);
    *n = 0;
    hvs_redis_batch_reset(batch);
    char lk[48];
    snprintf(lk, sizeof lk, "hvs:rf:lag:%d", (int)p);
    const char *a1[] = {"GET", tk}, *a2[] = {"SMEMBERS", pk}, *a3[] = {"HGETALL", lk};
    int rc;
    if ((rc = add(batch, 2, a1, NULL, err)) || (rc = add(batch, 2, a2, NULL, err)) ||
        (rc = add(batch, 2, a3, NULL, err)) || (rc = hvs_redis_batch_exec(r, batch, err)))
        return rc;
    rf_partition_t *pt = rf_partition(g, p, true);
    if (!pt)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "partition %d", (int)p);
    const redisReply *tick = reply(batch, 0, REDIS_REPLY_STRING);
    if (tick) {
        long long x[3];
        if (sscanf(tick->str, "1 %lld %lld %lld", &x[0], &x[1], &x[2]) != 3)
            return bad(err, tk);
        pt->last_tick = x[0], pt->wm_agg = x[1], pt->wm_base = x[2];
    }
    const redisReply *lags = reply(batch, 2, REDIS_REPLY_ARRAY);
    size_t nlag = lags ? lags->elements / 2 : 0;
    char **lag_ids = calloc(nlag ? nlag : 1, sizeof *lag_ids);
    hvs_ms_t *lag_t = calloc(nlag ? nlag : 1, sizeof *lag_t);
    if (!lag_ids || !lag_t) {
        free(lag_ids), free(lag_t);
        return hvs_err_set(err, HVS_ENOMEM, "oom", "partition %d", (int)p);
    }
    for (size_t i = 0; i < nlag && rc == 0; i++) {
        const redisReply *f = lags->element[2 * i], *v = lags->element[2 * i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            rc = bad(err, lk);
        else if (!(lag_ids[i] = strdup(f->str)))
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "partition %d", (int)p);
        else
            lag_t[i] = strtoll(v->str, NULL, 10);
    }
    const redisReply *set = reply(batch, 1, REDIS_REPLY_ARRAY);
    size_t nids = set ? set->elements : 0;
    char **ids = calloc(nids ? nids : 1, sizeof *ids);
    if (!ids)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "partition %d", (int)p);
    for (size_t i = 0; i < nids && rc == 0; i++)
        if (set->element[i]->type != REDIS_REPLY_STRING || !(ids[i] = strdup(set->element[i]->str)))
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "partition %d", (int)p);
    /* every building's ring and baselines in one pipeline */
    hvs_redis_batch_reset(batch);
    char key[700];
    for (size_t i = 0; i < nids && rc == 0; i++) {
        const char *a[] = {"GET", key};
        if (hvs_redis_key(key, sizeof key, ids[i], err, "rf:ring") < 0 ||
            (rc = add(batch, 2, a, NULL, err)))
            rc = rc ? rc : HVS_EINVAL;
        if (rc == 0 && (hvs_redis_key(key, sizeof key, ids[i], err, "rf:base") < 0 ||
                        (rc = add(batch, 2, a, NULL, err))))
            rc = rc ? rc : HVS_EINVAL;
    }
    if (rc == 0 && nids)
        rc = hvs_redis_batch_exec(r, batch, err);
    for (size_t i = 0; i < nids && rc == 0; i++) {
        rf_building_t *b = rf_building(g, ids[i], p, true);
        if (!b) {
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", ids[i]);
            break;
        }
        b->known = true;
        b->last_tick = b->tick_saved = pt->last_tick;
        for (size_t j = 0; j < nlag; j++)
            if (lag_ids[j] && strcmp(lag_ids[j], ids[i]) == 0)
                b->last_tick = b->tick_saved = lag_t[j], b->lagged = true;
        const redisReply *ring = reply(batch, 2 * i, REDIS_REPLY_STRING);
        const redisReply *base = reply(batch, 2 * i + 1, REDIS_REPLY_STRING);
        if (ring && (ring->len > sizeof b->ring || ring->len % sizeof(rf_hour_t))) {
            rc = bad_building(err, ids[i], "rf:ring");
            break;
        }
        if (ring) {
            memcpy(b->ring, ring->str, ring->len);
            b->ring_sized = ring->len == sizeof b->ring;
        }
        int d = base ? base_decode(g, b, base->str, base->len) : 0;
        if (d) {
            rc = d == -2 ? hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", ids[i])
                         : bad_building(err, ids[i], "rf:base");
            break;
        }
        (*n)++;
    }
    for (size_t i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);
    for (size_t i = 0; i < nlag; i++)
        free(lag_ids[i]);
    free(lag_ids), free(lag_t);
    return rc;
}
