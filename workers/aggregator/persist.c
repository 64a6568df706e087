#include "persist.h"

#include "hvs/fmt.h"
#include "hvs/ids.h"
#include "hvs/log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS (3600 * 1000LL)
#define US '\x1f'
#define GS '\x1d'
#define RS '\x1e'
#define BUCKET_MAX (1 << 20)

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf_t;

static int sb_grow(sbuf_t *b, size_t need) {
    if (b->n + need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + need)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np)
        return HVS_ENOMEM;
    b->p = np;
    b->cap = cap;
    return 0;
}

/* Appends src (len bytes) at buf + *n if it fits; *n counts what is needed either way. */
static void put(char *buf, size_t cap, size_t *n, const char *src, size_t len) {
    if (*n + len <= cap)
        memcpy(buf + *n, src, len);
    *n += len;
}

/* The hour's entries in time order: a merge of the instants and every series from the hour's
 * start (one binary search each, then linear). */
size_t agg_persist_bucket(const agg_apartment_t *a, hvs_ms_t hour, char *buf, size_t cap) {
    const agg_samples_t *sm = &a->samples;
    hvs_ms_t end = hour + HOUR_MS;
    size_t n = 0, ns = sm->ns < AGG_MAX_SERIES ? sm->ns : AGG_MAX_SERIES; /* accept bounds it */
    size_t pos[AGG_MAX_SERIES];
    size_t ii = (size_t)(agg_instants_floor(sm->inst, sm->ninst, hour - 1) + 1);
    for (size_t k = 0; k < ns; k++)
        pos[k] = (size_t)(agg_points_floor(sm->s[k].p, sm->s[k].n, hour - 1) + 1);
    char num[40];
    for (;;) {
        hvs_ms_t t = end;
        if (ii < sm->ninst && sm->inst[ii] < t)
            t = sm->inst[ii];
        for (size_t k = 0; k < ns; k++)
            if (pos[k] < sm->s[k].n && sm->s[k].p[pos[k]].t < t)
                t = sm->s[k].p[pos[k]].t;
        if (t >= end)
            break;
        if (n)
            put(buf, cap, &n, "\x1e", 1);
        size_t tl = hvs_fmt_int64(num, t);
        if (ii < sm->ninst && sm->inst[ii] == t) {
            num[tl++] = '+';
            ii++;
        }
        put(buf, cap, &n, num, tl);
        for (size_t k = 0; k < ns; k++) {
            const agg_series_t *s = &sm->s[k];
            if (pos[k] >= s->n || s->p[pos[k]].t != t)
                continue;
            char head[2] = {US, agg_kind_code(s->kind)};
            put(buf, cap, &n, head, 2);
            put(buf, cap, &n, s->room, strlen(s->room));
            char gs = GS;
            put(buf, cap, &n, &gs, 1);
            put(buf, cap, &n, num, hvs_fmt_double(num, s->p[pos[k]].v));
            pos[k]++;
        }
    }
    return n;
}

int agg_persist_parse_bucket(agg_apartment_t *a, const char *v, size_t len, hvs_err_t *err) {
    char tmp[64];
    const char *p = v, *end = v + len;
    while (p < end) {
        const char *e = memchr(p, RS, (size_t)(end - p));
        if (!e)
            e = end;
        /* time */
        const char *q = p;
        while (q < e && *q != US)
            q++;
        size_t tl = (size_t)(q - p);
        if (tl == 0 || tl >= sizeof tmp)
            return hvs_err_set(err, HVS_ESERDE, "bad_state", "stored bucket entry without time");
        memcpy(tmp, p, tl);
        tmp[tl] = 0;
        bool inst = tmp[tl - 1] == '+';
        char *te;
        long long t = strtoll(tmp, &te, 10);
        if (te == tmp || (*te && *te != '+'))
            return hvs_err_set(err, HVS_ESERDE, "bad_state", "stored bucket time '%s'", tmp);
        if (inst && agg_samples_add_instant(&a->samples, t) < 0)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", a->id);
        while (q < e) {
            q++; /* US */
            const char *g = memchr(q, GS, (size_t)(e - q));
            const char *nx = memchr(q, US, (size_t)(e - q));
            if (!nx)
                nx = e;
            if (!g || g > nx || g == q)
                return hvs_err_set(err, HVS_ESERDE, "bad_state", "stored value of %s", a->id);
            int k = agg_kind_from_code(*q);
            char room[HVS_READING_ID_MAX + 1];
            size_t rl = (size_t)(g - q - 1);
            size_t vl = (size_t)(nx - g - 1);
            if (k < 0 || rl > HVS_READING_ID_MAX || vl == 0 || vl >= sizeof tmp)
                return hvs_err_set(err, HVS_ESERDE, "bad_state", "stored value of %s", a->id);
            memcpy(room, q + 1, rl);
            room[rl] = 0;
            memcpy(tmp, g + 1, vl);
            tmp[vl] = 0;
            double val = strtod(tmp, &te);
            if (*te)
                return hvs_err_set(err, HVS_ESERDE, "bad_state", "stored number '%s'", tmp);
            if (a->samples.ns >= AGG_MAX_SERIES &&
                !agg_samples_find(&a->samples, (agg_kind_t)k, room))
                return hvs_err_set(err, HVS_ESERDE, "bad_state",
                                   "stored state of %s has more than %d series", a->id,
                                   AGG_MAX_SERIES);
            agg_series_t *s = agg_samples_series(&a->samples, (agg_kind_t)k, room);
            if (!s || agg_samples_add_point(s, t, val, NULL) < 0)
                return hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", a->id);
            q = nx;
        }
        p = e < end ? e + 1 : end;
    }
    return 0;
}

static int add(hvs_redis_batch_t *b, int argc, const char **argv, const size_t *lens,
               hvs_err_t *err) {
    if (hvs_redis_batch_add(b, argc, argv, lens))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    return 0;
}

/* hvs_redis_key, its refusal made a stage error: HVS_EINVAL from here would read as "this
 * record is bad" and dead-letter an innocent reading (stage.h). */
static int key_of(char *key, size_t cap, const char *id, hvs_err_t *err, const char *fmt, ...)
    HVS_PRINTF(5, 6);
static int key_of(char *key, size_t cap, const char *id, hvs_err_t *err, const char *fmt, ...) {
    char suffix[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(suffix, sizeof suffix, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof suffix)
        return hvs_err_set(err, HVS_ESTATE, "key_too_long", "state key of %.100s: suffix too long",
                           id);
    if (hvs_redis_key(key, cap, id, err, "%s", suffix) < 0) {
        err->code = HVS_ESTATE;
        return HVS_ESTATE;
    }
    return 0;
}

static int save_building(hvs_redis_batch_t *batch, agg_building_t *b, sbuf_t *buf, hvs_err_t *err) {
    char key[700], field[700], num[3][32], p[32];
    size_t lens[8];
    int rc = 0;
    /* the id was validated where the reading came in; a key that cannot be built stops the
     * stage (HVS_ESTATE): nothing of this batch is committed, nothing written under a wrong key */
    if (b->persist_meta) {
        if ((rc = key_of(key, sizeof key, b->id, err, "agg:meta")))
            return rc;
        snprintf(num[0], sizeof num[0], "%lld", (long long)b->through[0]);
        snprintf(num[1], sizeof num[1], "%lld", (long long)b->through[1]);
        snprintf(num[2], sizeof num[2], "%lld", (long long)b->wm_saved);
        const char *a1[] = {"HSET", key, "t15", num[0], "t60", num[1], "wm", num[2]};
        rc = add(batch, b->wm_saved != HVS_MS_NONE ? 8 : 6, a1, NULL, err);
        snprintf(key, sizeof key, "hvs:agg:part:%d", (int)b->partition);
        const char *a2[] = {"SADD", key, b->id};
        rc = rc ? rc : add(batch, 3, a2, NULL, err);
        if (b->napts && rc == 0 && (rc = key_of(key, sizeof key, b->id, err, "agg:apts")) == 0) {
            const char **argv = malloc((b->napts + 2) * sizeof *argv);
            if (!argv)
                return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
            argv[0] = "SADD";
            argv[1] = key;
            for (size_t i = 0; i < b->napts; i++)
                argv[i + 2] = b->apts[i]->id;
            rc = add(batch, (int)b->napts + 2, argv, NULL, err);
            free(argv);
        }
        b->persist_meta = false;
    } else if (b->persist_wm && b->wm_saved != HVS_MS_NONE) {
        if ((rc = key_of(key, sizeof key, b->id, err, "agg:meta")))
            return rc;
        snprintf(num[2], sizeof num[2], "%lld", (long long)b->wm_saved);
        const char *a1[] = {"HSET", key, "wm", num[2]};
        rc = add(batch, 4, a1, NULL, err);
    }
    b->persist_wm = false;
    for (size_t i = 0; i < b->ndel_apts && rc == 0; i++) {
        if ((rc = key_of(key, sizeof key, b->id, err, "agg:s:%s", b->del_apts[i])))
            return rc;
        const char *a1[] = {"DEL", key};
        rc = add(batch, 2, a1, NULL, err);
        if (rc == 0 && (rc = key_of(key, sizeof key, b->id, err, "agg:apts")))
            return rc;
        const char *a2[] = {"SREM", key, b->del_apts[i]};
        rc = rc ? rc : add(batch, 3, a2, NULL, err);
        free(b->del_apts[i]);
    }
    b->ndel_apts = 0;
    for (size_t i = 0; i < b->napts && rc == 0; i++) {
        agg_apartment_t *a = b->apts[i];
        if (a->nbuckets == 0)
            continue;
        if ((rc = key_of(key, sizeof key, b->id, err, "agg:s:%s", a->id)))
            return rc;
        for (size_t j = 0; j < a->nbuckets && rc == 0; j++) {
            snprintf(p, sizeof p, "%lld", (long long)a->buckets[j]);
            size_t n = agg_persist_bucket(a, a->buckets[j], buf->p, buf->cap);
            if (n >= buf->cap) {
                if (n >= BUCKET_MAX || sb_grow(buf, n + 1))
                    return hvs_err_set(err, HVS_ENOMEM, "oom", "bucket of %s/%s", b->id, a->id);
                n = agg_persist_bucket(a, a->buckets[j], buf->p, buf->cap);
            }
            if (n == 0) {
                const char *a1[] = {"HDEL", key, p};
                rc = add(batch, 3, a1, NULL, err);
            } else {
                const char *a1[] = {"HSET", key, p, buf->p};
                lens[0] = 4, lens[1] = strlen(key), lens[2] = strlen(p), lens[3] = n;
                rc = add(batch, 4, a1, lens, err);
            }
        }
        a->nbuckets = 0;
    }
    if (rc == 0 && (b->nchanged || b->ndel_marks) &&
        (rc = key_of(key, sizeof key, b->id, err, "agg:mk")))
        return rc;
    for (size_t i = 0; i < b->nchanged && rc == 0; i++) {
        struct agg_mark_ref *m = &b->changed[i];
        agg_markers_t *ms = m->apt ? &m->apt->marks : &b->marks[m->size];
        agg_marker_t *mk = agg_markers_find(ms, m->ws);
        if (!mk ||
            agg_mark_field(field, sizeof field, m->size, m->ws, m->apt ? m->apt->id : "") < 0)
            continue; /* forgotten meanwhile */
        snprintf(num[0], sizeof num[0], "%u %llu", mk->rev, (unsigned long long)mk->hash);
        const char *a1[] = {"HSET", key, field, num[0]};
        rc = add(batch, 4, a1, NULL, err);
    }
    b->nchanged = 0;
    for (size_t i = 0; i < b->ndel_marks && rc == 0; i++) {
        const char *a1[] = {"HDEL", key, b->del_marks[i]};
        rc = add(batch, 3, a1, NULL, err);
        free(b->del_marks[i]);
    }
    b->ndel_marks = 0;
    return rc;
}

/* The day accounts of b's apartments that changed, and those forgotten (agg:dq). */
static int save_accounts(hvs_redis_batch_t *batch, agg_building_t *b, hvs_err_t *err) {
    char key[700], field[700], val[AGG_DAY_TEXT_MAX + 1];
    bool keyed = false;
    int rc = 0;
    for (size_t i = 0; i < b->napts && rc == 0; i++) {
        agg_apartment_t *a = b->apts[i];
        for (size_t k = 0; k < a->account.n && rc == 0; k++) {
            agg_day_t *d = &a->account.d[k];
            if (!d->dirty)
                continue;
            if (!keyed && (rc = key_of(key, sizeof key, b->id, err, "agg:dq")))
                return rc;
            keyed = true;
            if (agg_day_field(field, sizeof field, d->day, a->id) < 0)
                return hvs_err_set(err, HVS_ESTATE, "key_too_long", "day account of %.100s/%.100s",
                                   b->id, a->id);
            size_t n = agg_day_encode(d, val);
            const char *a1[] = {"HSET", key, field, val};
            size_t lens[] = {4, strlen(key), strlen(field), n};
            rc = add(batch, 4, a1, lens, err);
            d->dirty = false;
        }
    }
    for (size_t i = 0; i < b->ndel_days && rc == 0; i++) {
        if (!keyed && (rc = key_of(key, sizeof key, b->id, err, "agg:dq")))
            return rc;
        keyed = true;
        const char *a1[] = {"HDEL", key, b->del_days[i]};
        rc = add(batch, 3, a1, NULL, err);
    }
    for (size_t i = 0; i < b->ndel_days; i++)
        free(b->del_days[i]);
    b->ndel_days = 0;
    return rc;
}

int agg_persist_prepare(hvs_redis_batch_t *batch, agg_t *g, const int32_t *partitions,
                        const hvs_ms_t *watermarks, size_t nparts, hvs_err_t *err) {
    static sbuf_t buf; /* one consume loop per process: reused, never shrunk */
    if (!buf.p && sb_grow(&buf, 64 * 1024))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "persist buffer");
    hvs_redis_batch_reset(batch);
    size_t n;
    agg_building_t **bs = agg_buildings(g, &n);
    for (size_t i = 0; i < n; i++) {
        int rc = save_building(batch, bs[i], &buf, err);
        if (rc == 0)
            rc = save_accounts(batch, bs[i], err);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < nparts; i++) {
        if (watermarks[i] == HVS_MS_NONE)
            continue;
        char p[16], v[32];
        snprintf(p, sizeof p, "%d", (int)partitions[i]);
        snprintf(v, sizeof v, "%lld", (long long)watermarks[i]);
        const char *a1[] = {"HSET", "hvs:agg:wm", p, v};
        int rc = add(batch, 4, a1, NULL, err);
        if (rc)
            return rc;
    }
    return 0;
}

int agg_persist_exec(hvs_redis_t *r, hvs_redis_batch_t *batch, hvs_err_t *err) {
    if (hvs_redis_batch_size(batch) == 0)
        return 0;
    int rc = hvs_redis_batch_exec(r, batch, err);
    return rc ? rc : hvs_redis_batch_check(batch, err);
}

int agg_persist_save(hvs_redis_t *r, hvs_redis_batch_t *batch, agg_t *g, const int32_t *partitions,
                     const hvs_ms_t *watermarks, size_t nparts, hvs_err_t *err) {
    int rc = agg_persist_prepare(batch, g, partitions, watermarks, nparts, err);
    return rc ? rc : agg_persist_exec(r, batch, err);
}

static const redisReply *reply(hvs_redis_batch_t *b, size_t i, int type) {
    const redisReply *r = hvs_redis_batch_reply(b, i);
    return r && r->type == type ? r : NULL;
}

/* The day accounts of the buildings of partition p that have none yet (just loaded). */
static int load_accounts(hvs_redis_t *r, hvs_redis_batch_t *batch, agg_t *g, int32_t p,
                         hvs_err_t *err) {
    char key[700];
    size_t nbs;
    agg_building_t **bs = agg_buildings(g, &nbs);
    int rc = 0;
    hvs_redis_batch_reset(batch);
    for (size_t i = 0; i < nbs && rc == 0; i++) {
        const char *c1[] = {"HGETALL", key};
        if (bs[i]->partition == p && (rc = key_of(key, sizeof key, bs[i]->id, err, "agg:dq")) == 0)
            rc = add(batch, 2, c1, NULL, err);
    }
    if (rc || hvs_redis_batch_size(batch) == 0)
        return rc;
    if ((rc = hvs_redis_batch_exec(r, batch, err)))
        return rc;
    size_t idx = 0;
    for (size_t i = 0; i < nbs && rc == 0; i++) {
        if (bs[i]->partition != p)
            continue;
        const redisReply *h = reply(batch, idx++, REDIS_REPLY_ARRAY);
        for (size_t q = 0; h && q + 1 < h->elements && rc == 0; q += 2) {
            const char *f = h->element[q]->str;
            char *e;
            long long day = strtoll(f, &e, 10);
            if (e == f || *e != ':')
                return hvs_err_set(err, HVS_ESERDE, "bad_state",
                                   "stored day account field '%.100s' of %.100s", f, bs[i]->id);
            agg_apartment_t *a = agg_apartment(bs[i], e + 1, false);
            bool here = false; /* a day this process already holds is newer than the stored */
            for (size_t k = 0; a && k < a->account.n; k++)
                here = here || a->account.d[k].day == day;
            if (a && !here)
                rc = agg_account_parse(&a->account, day, h->element[q + 1]->str,
                                       h->element[q + 1]->len, err);
        }
    }
    return rc;
}

int agg_persist_load(hvs_redis_t *r, hvs_redis_batch_t *batch, agg_t *g, int32_t p, hvs_ms_t *wm,
                     hvs_err_t *err) {
    char key[700], pf[16];
    *wm = HVS_MS_NONE;
    snprintf(key, sizeof key, "hvs:agg:part:%d", (int)p);
    snprintf(pf, sizeof pf, "%d", (int)p);
    hvs_redis_batch_reset(batch);
    const char *a1[] = {"SMEMBERS", key};
    const char *a2[] = {"HGET", "hvs:agg:wm", pf};
    if (hvs_redis_batch_add(batch, 2, a1, NULL) || hvs_redis_batch_add(batch, 3, a2, NULL))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    int rc = hvs_redis_batch_exec(r, batch, err);
    if (rc)
        return rc;
    const redisReply *w = reply(batch, 1, REDIS_REPLY_STRING);
    if (w)
        *wm = strtoll(w->str, NULL, 10);
    const redisReply *m = reply(batch, 0, REDIS_REPLY_ARRAY);
    if (!m || m->elements == 0)
        return 0;
    size_t nb = m->elements;
    char **ids = calloc(nb, sizeof *ids);
    if (!ids)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "loading partition %d", (int)p);
    for (size_t i = 0; i < nb; i++) {
        const redisReply *e = m->element[i];
        hvs_err_t bad = {0};
        if (e->type == REDIS_REPLY_STRING && hvs_id_check_n(e->str, e->len, "building id", &bad)) {
            /* stored before ids were checked where they enter: its keys cannot be addressed
             * safely, so it is left out (loudly), not loaded and not a reason to stop */
            hvs_log_warn("aggregator", "partition %d: stored building id in %s skipped: %s", (int)p,
                         key, bad.msg);
            continue;
        }
        ids[i] = e->type == REDIS_REPLY_STRING ? strdup(e->str) : NULL;
    }
    /* Round 1: meta, apartment set and markers of every building. */
    hvs_redis_batch_reset(batch);
    for (size_t i = 0; i < nb; i++) {
        if (!ids[i])
            continue;
        static const char *const rest[3] = {"agg:meta", "agg:apts", "agg:mk"};
        for (int k = 0; k < 3 && rc == 0; k++) {
            const char *c[] = {k == 1 ? "SMEMBERS" : "HGETALL", key};
            if ((rc = key_of(key, sizeof key, ids[i], err, "%s", rest[k])) == 0)
                rc = add(batch, 2, c, NULL, err);
        }
    }
    if (rc == 0)
        rc = hvs_redis_batch_exec(r, batch, err);
    size_t slot = 0;
    for (size_t i = 0; i < nb && rc == 0; i++) {
        if (!ids[i])
            continue;
        size_t base = slot;
        slot += 3;
        if (agg_building(g, ids[i], p, false))
            continue; /* already here */
        agg_building_t *b = agg_building(g, ids[i], p, true);
        if (!b) {
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", ids[i]);
            break;
        }
        const redisReply *meta = reply(batch, base, REDIS_REPLY_ARRAY);
        for (size_t k = 0; meta && k + 1 < meta->elements; k += 2) {
            int s = strcmp(meta->element[k]->str, "t15") == 0   ? 0
                    : strcmp(meta->element[k]->str, "t60") == 0 ? 1
                                                                : -1;
            if (s >= 0)
                b->through[s] = strtoll(meta->element[k + 1]->str, NULL, 10);
            else if (strcmp(meta->element[k]->str, "wm") == 0)
                agg_building_restore(g, b, strtoll(meta->element[k + 1]->str, NULL, 10),
                                     HVS_MS_NONE);
        }
        const redisReply *apts = reply(batch, base + 1, REDIS_REPLY_ARRAY);
        for (size_t k = 0; apts && k < apts->elements; k++)
            if (!agg_apartment(b, apts->element[k]->str, true)) {
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", ids[i]);
                break;
            }
        const redisReply *mk = reply(batch, base + 2, REDIS_REPLY_ARRAY);
        for (size_t k = 0; mk && k + 1 < mk->elements && rc == 0; k += 2) {
            const char *f = mk->element[k]->str;
            char *e1, *e2;
            long size = strtol(f, &e1, 10);
            if (*e1 != ':')
                continue;
            long long ws = strtoll(e1 + 1, &e2, 10);
            if (*e2 != ':')
                continue;
            const char *apt = e2 + 1;
            unsigned rev = 0;
            unsigned long long hash = 0;
            if (sscanf(mk->element[k + 1]->str, "%u %llu", &rev, &hash) != 2)
                continue;
            agg_markers_t *ms;
            if (*apt) {
                agg_apartment_t *a = agg_apartment(b, apt, false);
                if (!a)
                    continue;
                ms = &a->marks;
            } else {
                ms = &b->marks[size == 15 ? AGG_W15 : AGG_W60];
            }
            if (agg_markers_set(ms, ws, rev, hash))
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", ids[i]);
        }
        b->persist_meta = false;
    }
    /* Round 2: the samples of every apartment loaded. */
    if (rc == 0) {
        hvs_redis_batch_reset(batch);
        size_t nbs;
        agg_building_t **bs = agg_buildings(g, &nbs);
        for (size_t i = 0; i < nbs && rc == 0; i++) {
            if (bs[i]->partition != p)
                continue;
            for (size_t k = 0; k < bs[i]->napts && rc == 0; k++) {
                const char *c1[] = {"HGETALL", key};
                if ((rc = key_of(key, sizeof key, bs[i]->id, err, "agg:s:%s",
                                 bs[i]->apts[k]->id)) == 0)
                    rc = add(batch, 2, c1, NULL, err);
            }
        }
        if (rc == 0)
            rc = hvs_redis_batch_exec(r, batch, err);
        size_t idx = 0;
        for (size_t i = 0; i < nbs && rc == 0; i++) {
            if (bs[i]->partition != p)
                continue;
            for (size_t k = 0; k < bs[i]->napts && rc == 0; k++) {
                const redisReply *h = reply(batch, idx++, REDIS_REPLY_ARRAY);
                for (size_t q = 0; h && q + 1 < h->elements && rc == 0; q += 2)
                    rc = agg_persist_parse_bucket(bs[i]->apts[k], h->element[q + 1]->str,
                                                  h->element[q + 1]->len, err);
            }
        }
    }
    /* Round 3: the day accounts (uncounted energy) of every apartment loaded. */
    if (rc == 0)
        rc = load_accounts(r, batch, g, p, err);
    for (size_t i = 0; i < nb; i++)
        free(ids[i]);
    free(ids);
    return rc;
}
