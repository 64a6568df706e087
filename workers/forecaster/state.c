/*
 * state.c - the forecaster's Redis state (state.h).
 */
#include "state.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/fmt.h"

#define HOUR HVS_MS_HOUR

static int add(hvs_redis_batch_t *batch, int argc, const char **argv, const size_t *lens,
               hvs_err_t *err) {
    return hvs_redis_batch_add(batch, argc, argv, lens)
               ? hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch")
               : 0;
}

static void acc_encode(const fc_t *g, const fc_acc_slot_t *s, hvs_strbuf_t *b) {
    hvs_strbuf_printf(b, "%" PRId64, s->hour);
    for (int k = 0; k < FC_BUCKETS; k++) {
        const char *id = fc_ident(g, s->p[k].ident);
        if (id)
            hvs_strbuf_printf(b, "\n%d %.9g %s", k, (double)s->p[k].pred, id);
    }
}

static void version_encode(const fc_t *g, const fc_version_acc_t *v, hvs_strbuf_t *b) {
    hvs_strbuf_printf(b, "%.17g %d %" PRId64, fc_ident_backtest_wape(g, v->ident), v->bad_days,
                      v->judged);
    for (int k = 0; k < FC_BUCKETS; k++)
        for (int d = 0; d < FC_WAPE_DAYS; d++)
            if (v->d[k][d].day != HVS_MS_NONE)
                hvs_strbuf_printf(b, "\n%d %" PRId64 " %.17g %.17g %" PRId64, k, v->d[k][d].day,
                                  v->d[k][d].e, v->d[k][d].y, v->d[k][d].n);
}

/* The building's changed calibration slots: one SETRANGE per run of them in the ring, once the
 * string holds the whole ring (a first SET of all of it: a string grown by SETRANGE keeps twice
 * its length allocated - bench_forecaster measured 44 KB a building instead of 32). */
static int cal_save(hvs_redis_batch_t *batch, fc_building_t *b, hvs_err_t *err) {
    char key[700];
    int rc = 0;
    bool any = false;
    for (size_t i = 0; i < sizeof b->cal_dirty / sizeof *b->cal_dirty; i++)
        any |= b->cal_dirty[i] != 0;
    if (any && !b->cal_sized) {
        if (hvs_redis_key(key, sizeof key, b->fs->id, err, "fc:cal") < 0)
            return HVS_EINVAL;
        const char *a[] = {"SET", key, (const char *)b->cal};
        size_t lens[] = {3, strlen(key), sizeof b->cal};
        memset(b->cal_dirty, 0, sizeof b->cal_dirty);
        b->cal_sized = true;
        return add(batch, 3, a, lens, err);
    }
    for (size_t s = 0; s < FC_CAL_HOURS && rc == 0;) {
        if (!(b->cal_dirty[s / 64] & (1ull << (s % 64)))) {
            s++;
            continue;
        }
        size_t e = s;
        while (e < FC_CAL_HOURS && (b->cal_dirty[e / 64] & (1ull << (e % 64))))
            e++;
        if (hvs_redis_key(key, sizeof key, b->fs->id, err, "fc:cal") < 0)
            return HVS_EINVAL;
        char off[24];
        snprintf(off, sizeof off, "%zu", s * sizeof(fc_cal_slot_t));
        const char *a[] = {"SETRANGE", key, off, (const char *)&b->cal[s]};
        size_t lens[] = {8, strlen(key), strlen(off), (e - s) * sizeof(fc_cal_slot_t)};
        rc = add(batch, 4, a, lens, err);
        s = e;
    }
    memset(b->cal_dirty, 0, sizeof b->cal_dirty);
    return rc;
}

int fc_state_save(fc_t *g, hvs_redis_batch_t *batch, int64_t latest_ttl_ms, hvs_err_t *err) {
    size_t n;
    fc_building_t **bs = fc_buildings(g, &n);
    char key[700], v[256], ttl[32];
    snprintf(ttl, sizeof ttl, "%lld", (long long)latest_ttl_ms);
    int rc = 0;
    hvs_strbuf_t sb = {0};
    for (size_t i = 0; i < n && rc == 0; i++) {
        fc_building_t *b = bs[i];
        if ((rc = hvs_fs_save(batch, b->fs, err)))
            break;
        if (b->dirty) {
            if (hvs_redis_key(key, sizeof key, b->fs->id, err, "fc:st") < 0)
                return HVS_EINVAL;
            snprintf(v, sizeof v,
                     "3 %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64,
                     b->agg_time, b->wx_time, b->issued, b->ood_day, b->next_run, b->since);
            const char *a[] = {"SET", key, v};
            if ((rc = add(batch, 3, a, NULL, err)))
                break;
            b->dirty = false;
        }
        for (size_t s = 0; s < FC_ACC_SLOTS && rc == 0; s++) {
            if (!(b->acc_dirty[s / 64] & (1ull << (s % 64))))
                continue;
            if (hvs_redis_key(key, sizeof key, b->fs->id, err, "fc:acc") < 0)
                return HVS_EINVAL;
            char f[16];
            snprintf(f, sizeof f, "%zu", s);
            if (b->acc[s].hour == HVS_MS_NONE) {
                const char *a[] = {"HDEL", key, f};
                rc = add(batch, 3, a, NULL, err);
                continue;
            }
            sb.len = 0;
            acc_encode(g, &b->acc[s], &sb);
            if (sb.oom)
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "state");
            const char *a[] = {"HSET", key, f, sb.p};
            if (rc == 0)
                rc = add(batch, 4, a, NULL, err);
        }
        memset(b->acc_dirty, 0, sizeof b->acc_dirty);
        if (rc == 0 && (rc = cal_save(batch, b, err)))
            break;
        if (rc == 0 && b->latest) {
            if (hvs_redis_key(key, sizeof key, b->fs->id, err, "fc:latest") < 0)
                return HVS_EINVAL;
            const char *a[] = {"SET", key, b->latest, "PX", ttl};
            rc = add(batch, 5, a, NULL, err);
            free(b->latest);
            b->latest = NULL;
        }
    }
    size_t nv;
    fc_version_acc_t **vs = fc_versions(g, &nv);
    for (size_t i = 0; i < nv && rc == 0; i++) {
        if (!vs[i]->dirty)
            continue;
        char hk[48];
        snprintf(hk, sizeof hk, "hvs:fc:acc:%d", (int)vs[i]->partition);
        sb.len = 0;
        version_encode(g, vs[i], &sb);
        if (sb.oom)
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "state");
        const char *a[] = {"HSET", hk, fc_ident(g, vs[i]->ident), sb.p};
        if (rc == 0 && (rc = add(batch, 4, a, NULL, err)) == 0)
            vs[i]->dirty = false;
    }
    free(sb.p);
    return rc;
}

static const redisReply *reply(hvs_redis_batch_t *b, size_t i, int type) {
    const redisReply *r = hvs_redis_batch_reply(b, i);
    return r && r->type == type ? r : NULL;
}

static int bad(hvs_err_t *err, const char *key, const char *field) {
    return hvs_err_set(err, HVS_ESERDE, "bad_state", "%s %s does not parse", key,
                       field ? field : "");
}

/* "<bucket> <pred> <version>" lines after the hour. */
static int acc_decode(fc_t *g, const char *v, fc_acc_slot_t *s) {
    char *end;
    s->hour = strtoll(v, &end, 10);
    memset(s->p, 0, sizeof s->p);
    if (end == v)
        return -1;
    for (const char *l = strchr(end, '\n'); l; l = strchr(l + 1, '\n')) {
        int k, off = 0;
        double pred;
        if (sscanf(l + 1, "%d %lf %n", &k, &pred, &off) != 2 || k < 0 || k >= FC_BUCKETS || !off)
            return -1;
        const char *id = l + 1 + off, *nl = strchr(id, '\n');
        char name[400];
        size_t len = nl ? (size_t)(nl - id) : strlen(id);
        if (len == 0 || len >= sizeof name)
            return -1;
        memcpy(name, id, len);
        name[len] = 0;
        s->p[k] = (fc_acc_point_t){(float)pred, fc_ident_intern(g, name, NAN)};
    }
    return 0;
}

static int version_decode(fc_t *g, const char *ident, int32_t p, const char *v) {
    double bw;
    int bad_days;
    long long judged;
    if (sscanf(v, "%lf %d %lld", &bw, &bad_days, &judged) != 3)
        return -1;
    uint16_t id = fc_ident_intern(g, ident, bw);
    fc_version_acc_t *va = id ? fc_version(g, id, p, true) : NULL;
    if (!va)
        return -2;
    va->bad_days = bad_days;
    va->judged = judged;
    for (const char *l = strchr(v, '\n'); l; l = strchr(l + 1, '\n')) {
        int k;
        long long day, n;
        double e, y;
        if (sscanf(l + 1, "%d %lld %lf %lf %lld", &k, &day, &e, &y, &n) != 5 || k < 0 ||
            k >= FC_BUCKETS)
            return -1;
        va->d[k][(size_t)(day / HVS_MS_DAY) % FC_WAPE_DAYS] = (fc_wape_day_t){day, e, y, n};
    }
    return 0;
}

int fc_state_load_partition(fc_t *g, hvs_redis_t *r, hvs_redis_batch_t *batch, int32_t p, size_t *n,
                            hvs_err_t *err) {
    char **ids = NULL;
    size_t nids = 0;
    bool epoch;
    *n = 0;
    int rc = hvs_fs_partition_ns(r, batch, FC_NS, p, &ids, &nids, &epoch, err);
    for (size_t i = 0; i < nids && rc == 0; i++) {
        hvs_fs_building_t *fs = NULL;
        if ((rc = hvs_fs_load_ns(r, batch, FC_NS, ids[i], p, &fs, err)) || !fs)
            continue;
        fc_building_t *b = calloc(1, sizeof *b);
        if (!b) {
            hvs_fs_building_destroy(fs);
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", ids[i]);
            break;
        }
        b->fs = fs;
        b->agg_time = b->wx_time = b->issued = b->since = b->ood_day = HVS_MS_NONE;
        b->next_run = b->q_agg = b->q_wx = b->loud_from = b->re_from = b->re_to = HVS_MS_NONE;
        for (int k = 0; k < FC_ACC_SLOTS; k++)
            b->acc[k].hour = HVS_MS_NONE;
        char sk[700], ak[700], ck[700];
        if (hvs_redis_key(sk, sizeof sk, ids[i], err, "fc:st") < 0 ||
            hvs_redis_key(ak, sizeof ak, ids[i], err, "fc:acc") < 0 ||
            hvs_redis_key(ck, sizeof ck, ids[i], err, "fc:cal") < 0) {
            hvs_fs_building_destroy(fs), free(b);
            rc = HVS_EINVAL;
            break;
        }
        hvs_redis_batch_reset(batch);
        const char *a1[] = {"GET", sk}, *a2[] = {"HGETALL", ak}, *a3[] = {"GET", ck};
        if ((rc = add(batch, 2, a1, NULL, err)) || (rc = add(batch, 2, a2, NULL, err)) ||
            (rc = add(batch, 2, a3, NULL, err)) || (rc = hvs_redis_batch_exec(r, batch, err))) {
            hvs_fs_building_destroy(fs), free(b);
            break;
        }
        const redisReply *st = reply(batch, 0, REDIS_REPLY_STRING);
        const redisReply *acc = reply(batch, 1, REDIS_REPLY_ARRAY);
        /* version 2 had no `since`: its issue times are then not bounded below */
        long long x[6] = {0, 0, 0, 0, 0, HVS_MS_NONE};
        if (st &&
            sscanf(st->str, "3 %lld %lld %lld %lld %lld %lld", &x[0], &x[1], &x[2], &x[3], &x[4],
                   &x[5]) != 6 &&
            sscanf(st->str, "2 %lld %lld %lld %lld %lld", &x[0], &x[1], &x[2], &x[3], &x[4]) != 5)
            rc = bad(err, sk, NULL);
        if (st && rc == 0) {
            b->agg_time = x[0], b->wx_time = x[1], b->issued = x[2], b->ood_day = x[3];
            b->next_run = x[4], b->since = x[5];
        }
        for (size_t k = 0; rc == 0 && acc && k + 1 < acc->elements; k += 2) {
            const redisReply *f = acc->element[k], *v = acc->element[k + 1];
            fc_acc_slot_t s;
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
                acc_decode(g, v->str, &s) || s.hour == HVS_MS_NONE)
                rc = bad(err, ak, f->type == REDIS_REPLY_STRING ? f->str : NULL);
            else
                b->acc[(size_t)(s.hour / HOUR) % FC_ACC_SLOTS] = s;
        }
        /* a prefix written by SETRANGE (zeros before a run: empty slots) */
        const redisReply *cal = reply(batch, 2, REDIS_REPLY_STRING);
        if (cal && cal->len > sizeof b->cal)
            rc = bad(err, ck, NULL);
        else if (cal) {
            memcpy(b->cal, cal->str, cal->len / sizeof(fc_cal_slot_t) * sizeof(fc_cal_slot_t));
            b->cal_sized = cal->len == sizeof b->cal;
        }
        if (rc == 0 && fc_adopt(g, b))
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "adopting %s", ids[i]);
        if (rc) {
            hvs_fs_building_destroy(fs), free(b);
            break;
        }
        (*n)++;
    }
    hvs_fs_ids_free(ids, nids);
    if (rc)
        return rc;
    char hk[48];
    snprintf(hk, sizeof hk, "hvs:fc:acc:%d", (int)p);
    hvs_redis_batch_reset(batch);
    const char *a[] = {"HGETALL", hk};
    if ((rc = add(batch, 2, a, NULL, err)) || (rc = hvs_redis_batch_exec(r, batch, err)))
        return rc;
    const redisReply *h = reply(batch, 0, REDIS_REPLY_ARRAY);
    for (size_t k = 0; h && k + 1 < h->elements; k += 2) {
        const redisReply *f = h->element[k], *v = h->element[k + 1];
        int d = f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING
                    ? version_decode(g, f->str, p, v->str)
                    : -1;
        if (d == -2)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "accuracy of %s", hk);
        if (d)
            return bad(err, hk, f->type == REDIS_REPLY_STRING ? f->str : NULL);
    }
    return 0;
}
