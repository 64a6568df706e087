#include "persist.h"

#include "hvs/pack.h"

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


hvs_ms_t agg_persist_block_of(hvs_ms_t t) { return hvs_time_window_start(t, AGG_PERSIST_BLOCK_MS); }

/* Format 1 (docs/design.md §5): version byte, the block's start in hours, then per instant in
 * time order varint(dt) (dt from the previous entry, the first from the start: dt/1000 << 2 | 2 |
 * reported when whole seconds, else dt << 2 | reported), varint(number of values), and per value
 * varint(series slot) then the value (pack.h). A merge of the instants and every series from
 * the block's start (one binary search each, then linear). */
size_t agg_persist_bucket(const agg_apartment_t *a, hvs_ms_t start, char *buf, size_t cap) {
    const agg_samples_t *sm = &a->samples;
    hvs_ms_t end = start + AGG_PERSIST_BLOCK_MS, prev = start;
    size_t n = 0, ns = sm->ns < AGG_MAX_SERIES ? sm->ns : AGG_MAX_SERIES; /* accept bounds it */
    size_t pos[AGG_MAX_SERIES];
    size_t ii = (size_t)(agg_instants_floor(sm->inst, sm->ninst, start - 1) + 1);
    for (size_t k = 0; k < ns; k++)
        pos[k] = (size_t)(agg_points_floor(sm->s[k].p, sm->s[k].n, start - 1) + 1);
    for (;;) {
        hvs_ms_t t = end;
        if (ii < sm->ninst && sm->inst[ii] < t)
            t = sm->inst[ii];
        for (size_t k = 0; k < ns; k++)
            if (pos[k] < sm->s[k].n && sm->s[k].p[pos[k]].t < t)
                t = sm->s[k].p[pos[k]].t;
        if (t >= end)
            break;
        if (n == 0) {
            hvs_pack_put_bytes(buf, cap, &n, "\x01", 1);
            hvs_pack_put_varint(buf, cap, &n, (uint64_t)(start / HOUR_MS));
        }
        uint64_t dt = (uint64_t)(t - prev), inst = 0;
        prev = t;
        if (ii < sm->ninst && sm->inst[ii] == t) {
            inst = 1;
            ii++;
        }
        hvs_pack_put_varint(buf, cap, &n,
                            dt % 1000 == 0 ? (dt / 1000) << 2 | 2 | inst : dt << 2 | inst);
        uint64_t nv = 0;
        for (size_t k = 0; k < ns; k++)
            nv += pos[k] < sm->s[k].n && sm->s[k].p[pos[k]].t == t;
        hvs_pack_put_varint(buf, cap, &n, nv);
        for (size_t k = 0; k < ns; k++) {
            const agg_series_t *s = &sm->s[k];
            if (pos[k] >= s->n || s->p[pos[k]].t != t)
                continue;
            hvs_pack_put_varint(buf, cap, &n, s->slot);
            hvs_pack_put_double(buf, cap, &n, s->p[pos[k]].v);
            pos[k]++;
        }
    }
    return n;
}

/* Format 1's directory: version byte, then per slot its kind code, room length (one byte) and
 * room. */
size_t agg_persist_series(const agg_apartment_t *a, char *buf, size_t cap) {
    const agg_samples_t *sm = &a->samples;
    size_t n = 0;
    hvs_pack_put_bytes(buf, cap, &n, "\x01", 1);
    for (size_t slot = 0; slot < sm->nslots; slot++)
        for (size_t k = 0; k < sm->ns; k++) {
            const agg_series_t *s = &sm->s[k];
            if (s->slot != slot)
                continue;
            size_t rl = strlen(s->room);
            char head[2] = {agg_kind_code(s->kind), (char)(rl < 255 ? rl : 255)};
            hvs_pack_put_bytes(buf, cap, &n, head, 2);
            hvs_pack_put_bytes(buf, cap, &n, s->room, rl < 255 ? rl : 255);
        }
    return n;
}

int agg_persist_parse_series(agg_apartment_t *a, const char *v, size_t len, hvs_err_t *err) {
    const unsigned char *p = (const unsigned char *)v, *end = p + len;
    if (len == 0 || *p++ != 1)
        return hvs_err_set(err, HVS_ESERDE, "bad_state",
                           "stored series directory of %s: unknown format", a->id);
    for (size_t slot = 0; p < end; slot++) {
        char room[256];
        int k = end - p >= 2 ? agg_kind_from_code((char)p[0]) : -1;
        size_t rl = end - p >= 2 ? p[1] : 0;
        if (k < 0 || rl > HVS_READING_ID_MAX || (size_t)(end - p - 2) < rl ||
            slot >= AGG_MAX_SERIES)
            return hvs_err_set(err, HVS_ESERDE, "bad_state",
                               "stored series directory of %s: bad entry %zu", a->id, slot);
        memcpy(room, p + 2, rl);
        room[rl] = 0;
        p += 2 + rl;
        agg_series_t *s = agg_samples_series(&a->samples, (agg_kind_t)k, room);
        if (!s)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", a->id);
        if (s->slot != slot) /* loaded first, so slots follow it; a repeated entry lands here */
            return hvs_err_set(err, HVS_ESERDE, "bad_state",
                               "stored series directory of %s: entry %zu repeats %c%s", a->id, slot,
                               agg_kind_code((agg_kind_t)k), room);
    }
    a->samples.slots_saved = a->samples.nslots;
    return 0;
}

static int parse_block(agg_apartment_t *a, const unsigned char *p, const unsigned char *end,
                       hvs_err_t *err) {
    uint64_t h, x, nv;
    if (hvs_pack_get_varint(&p, end, &h) || h > (uint64_t)(INT64_MAX / HOUR_MS) - 24)
        return hvs_err_set(err, HVS_ESERDE, "bad_state", "stored block of %s: bad start", a->id);
    hvs_ms_t t = (hvs_ms_t)h * HOUR_MS, bend = t + AGG_PERSIST_BLOCK_MS;
    size_t entry = 0;
    for (; p < end; entry++) {
        if (hvs_pack_get_varint(&p, end, &x) || hvs_pack_get_varint(&p, end, &nv))
            return hvs_err_set(err, HVS_ESERDE, "bad_state", "stored block of %s: entry %zu cut",
                               a->id, entry);
        uint64_t dt = x & 2 ? (x >> 2) * 1000 : x >> 2;
        if ((x & 2 && (x >> 2) > (uint64_t)AGG_PERSIST_BLOCK_MS) || dt >= (uint64_t)(bend - t) ||
            (entry > 0 && dt == 0) || nv > AGG_MAX_SERIES)
            return hvs_err_set(err, HVS_ESERDE, "bad_state",
                               "stored block of %s: entry %zu out of order or out of the block",
                               a->id, entry);
        t += (hvs_ms_t)dt;
        if ((x & 1) && agg_samples_add_instant(&a->samples, t) < 0)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", a->id);
        for (uint64_t i = 0; i < nv; i++) {
            uint64_t slot;
            double val;
            if (hvs_pack_get_varint(&p, end, &slot) || hvs_pack_get_double(&p, end, &val))
                return hvs_err_set(err, HVS_ESERDE, "bad_state",
                                   "stored block of %s: value of entry %zu cut or bad", a->id,
                                   entry);
            agg_series_t *s = NULL;
            for (size_t k = 0; k < a->samples.ns && !s; k++)
                if (a->samples.s[k].slot == slot)
                    s = &a->samples.s[k];
            if (!s || slot >= a->samples.slots_saved)
                return hvs_err_set(err, HVS_ESERDE, "bad_state",
                                   "stored block of %s: series %llu not in its directory", a->id,
                                   (unsigned long long)slot);
            if (agg_samples_add_point(s, t, val, NULL) < 0)
                return hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", a->id);
        }
    }
    return 0;
}

int agg_persist_parse_bucket(agg_apartment_t *a, const char *v, size_t len, hvs_err_t *err) {
    if (len > 0 && v[0] == 1) /* text starts with a digit */
        return parse_block(a, (const unsigned char *)v + 1, (const unsigned char *)v + len, err);
    if (len > 0 && !(v[0] >= '0' && v[0] <= '9'))
        return hvs_err_set(err, HVS_ESERDE, "bad_state",
                           "stored bucket of %s: unknown format (first byte 0x%02x)", a->id,
                           (unsigned char)v[0]);
    a->stored_text = true;
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

static int cmp_ms(const void *x, const void *y) {
    hvs_ms_t a = *(const hvs_ms_t *)x, b = *(const hvs_ms_t *)y;
    return (a > b) - (a < b);
}

/* An apartment's changed blocks (its stale hours mapped to their blocks) with its series directory,
 * or - loaded from text - its whole key again. */
static int save_samples(hvs_redis_batch_t *batch, agg_building_t *b, agg_apartment_t *a,
                        sbuf_t *buf, hvs_err_t *err) {
    char key[700], p[32];
    int rc = 0;
    agg_samples_t *sm = &a->samples;
    if (a->stored_text) { /* every block again, nothing of the text left */
        hvs_ms_t lo = agg_samples_first(sm), hi = agg_samples_last(sm);
        for (size_t k = 0; k < sm->ns; k++)
            if (sm->s[k].n) {
                lo = lo == HVS_MS_NONE || sm->s[k].p[0].t < lo ? sm->s[k].p[0].t : lo;
                hi = hi == HVS_MS_NONE || sm->s[k].p[sm->s[k].n - 1].t > hi
                         ? sm->s[k].p[sm->s[k].n - 1].t
                         : hi;
            }
        a->nbuckets = 0;
        for (hvs_ms_t t = lo == HVS_MS_NONE ? 0 : agg_persist_block_of(lo);
             lo != HVS_MS_NONE && t <= hi && rc == 0; t += AGG_PERSIST_BLOCK_MS)
            rc = agg_apartment_touch(a, t);
        if (rc)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "blocks of %s/%s", b->id, a->id);
        sm->slots_saved = 0;
    }
    if (a->nbuckets == 0 && !a->stored_text)
        return 0;
    if ((rc = key_of(key, sizeof key, b->id, err, "agg:s:%s", a->id)))
        return rc;
    if (a->stored_text) {
        const char *a1[] = {"DEL", key};
        if ((rc = add(batch, 2, a1, NULL, err)))
            return rc;
        a->stored_text = false;
    }
    /* The directory goes with every write of blocks, not only when a series was added: a
     * FLUSHALL between the stage's state check and this write leaves just this transaction's
     * keys, and a block must never be stored without the directory naming its series (the next
     * start would fail to load it instead of rebuilding; found by the fault suite's
     * redis_flush). A few hundred bytes per apartment written. */
    {
        size_t n = agg_persist_series(a, buf->p, buf->cap);
        const char *a1[] = {"HSET", key, "d", buf->p};
        size_t lens[] = {4, strlen(key), 1, n};
        if (n > buf->cap) /* at most 64 x 257 bytes: the buffer starts at 64 KiB */
            return hvs_err_set(err, HVS_ENOMEM, "oom", "directory of %s/%s", b->id, a->id);
        if ((rc = add(batch, 4, a1, lens, err)))
            return rc;
        sm->slots_saved = sm->nslots;
    }
    for (size_t j = 0; j < a->nbuckets; j++)
        a->buckets[j] = agg_persist_block_of(a->buckets[j]);
    if (a->nbuckets > 1)
        qsort(a->buckets, a->nbuckets, sizeof *a->buckets, cmp_ms);
    for (size_t j = 0; j < a->nbuckets && rc == 0; j++) {
        if (j > 0 && a->buckets[j] == a->buckets[j - 1])
            continue;
        snprintf(p, sizeof p, "%lld", (long long)(a->buckets[j] / HOUR_MS));
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
            size_t lens[] = {4, strlen(key), strlen(p), n};
            rc = add(batch, 4, a1, lens, err);
        }
    }
    a->nbuckets = 0;
    return rc;
}

/* The markers of ms in the block starting at bs (format 1): 0x01, then per marker in window
 * order varint((ws - bs) / window), varint revision, the 8 bytes of its hash, little-endian.
 * At most 24 markers: 1 + 24 x 23 bytes. */
#define MARK_BLOCK_MAX (1 + (AGG_MARK_BLOCK_MS / (15 * 60 * 1000)) * 23)
static size_t mark_block(const agg_markers_t *ms, int size, hvs_ms_t bs, char *buf) {
    size_t n = 0, cap = MARK_BLOCK_MAX;
    hvs_ms_t w = agg_window_ms[size];
    for (size_t i = 0; i < ms->n; i++) {
        const agg_marker_t *m = &ms->m[i];
        if (m->ws < bs || m->ws >= bs + AGG_MARK_BLOCK_MS)
            continue;
        if (n == 0)
            hvs_pack_put_bytes(buf, cap, &n, "\x01", 1);
        hvs_pack_put_varint(buf, cap, &n, (uint64_t)((m->ws - bs) / w));
        hvs_pack_put_varint(buf, cap, &n, m->rev);
        char h[8];
        for (int k = 0; k < 8; k++)
            h[k] = (char)(m->hash >> (8 * k));
        hvs_pack_put_bytes(buf, cap, &n, h, 8);
    }
    return n;
}

static int parse_mark_block(agg_markers_t *ms, int size, hvs_ms_t bs, const char *v, size_t len,
                            const char *what, hvs_err_t *err) {
    const unsigned char *p = (const unsigned char *)v + 1, *end = (const unsigned char *)v + len;
    hvs_ms_t w = agg_window_ms[size];
    uint64_t prev = 0;
    for (size_t i = 0; p < end; i++) {
        uint64_t off, rev, hash = 0;
        if (hvs_pack_get_varint(&p, end, &off) || hvs_pack_get_varint(&p, end, &rev) ||
            end - p < 8 || off >= (uint64_t)(AGG_MARK_BLOCK_MS / w) || (i > 0 && off <= prev) ||
            rev > UINT32_MAX)
            return hvs_err_set(err, HVS_ESERDE, "bad_state", "stored markers %.200s: entry %zu",
                               what, i);
        for (int k = 0; k < 8; k++)
            hash |= (uint64_t)p[k] << (8 * k);
        p += 8;
        prev = off;
        if (agg_markers_set(ms, bs + (hvs_ms_t)off * w, (uint32_t)rev, hash))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "loading %.200s", what);
    }
    return 0;
}

/* One marker block written (or deleted when it has none left). */
static int save_mark_block(hvs_redis_batch_t *batch, const char *key, const agg_markers_t *ms,
                           int size, hvs_ms_t ws, const char *apt, hvs_err_t *err) {
    char field[700], v[MARK_BLOCK_MAX];
    if (agg_mark_field(field, sizeof field, size, ws, apt) < 0)
        return 0; /* no such name was ever stored */
    size_t n = ms ? mark_block(ms, size, hvs_time_window_start(ws, AGG_MARK_BLOCK_MS), v) : 0;
    if (n == 0) {
        const char *a1[] = {"HDEL", key, field};
        return add(batch, 3, a1, NULL, err);
    }
    const char *a1[] = {"HSET", key, field, v};
    size_t lens[] = {4, strlen(key), strlen(field), n};
    return add(batch, 4, a1, lens, err);
}

static int cmp_ref(const void *x, const void *y) {
    const struct agg_mark_ref *a = x, *b = y;
    if (a->apt != b->apt)
        return (uintptr_t)a->apt < (uintptr_t)b->apt ? -1 : 1;
    if (a->size != b->size)
        return a->size - b->size;
    hvs_ms_t p = hvs_time_window_start(a->ws, AGG_MARK_BLOCK_MS);
    hvs_ms_t q = hvs_time_window_start(b->ws, AGG_MARK_BLOCK_MS);
    return (p > q) - (p < q);
}

static int cmp_str(const void *x, const void *y) {
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Every block of ms. */
static int save_all_marks(hvs_redis_batch_t *batch, const char *key, const agg_markers_t *ms,
                          int size, const char *apt, hvs_err_t *err) {
    int rc = 0;
    for (size_t i = 0; i < ms->n && rc == 0; i++)
        if (i == 0 || hvs_time_window_start(ms->m[i].ws, AGG_MARK_BLOCK_MS) !=
                          hvs_time_window_start(ms->m[i - 1].ws, AGG_MARK_BLOCK_MS))
            rc = save_mark_block(batch, key, ms, size, ms->m[i].ws, apt, err);
    return rc;
}

/* The marker blocks of b that changed or lost markers; all of them when its hash held text. */
static int save_marks(hvs_redis_batch_t *batch, agg_building_t *b, hvs_err_t *err) {
    char key[700];
    int rc = 0;
    if (!b->nchanged && !b->ndel_marks && !b->mk_text)
        return 0;
    if ((rc = key_of(key, sizeof key, b->id, err, "agg:mk")))
        return rc;
    if (b->mk_text) {
        const char *a1[] = {"DEL", key};
        rc = add(batch, 2, a1, NULL, err);
        for (int s = 0; s < AGG_WSIZES && rc == 0; s++)
            rc = save_all_marks(batch, key, &b->marks[s], s, "", err);
        for (size_t i = 0; i < b->napts && rc == 0; i++)
            rc = save_all_marks(batch, key, &b->apts[i]->marks, AGG_W60, b->apts[i]->id, err);
        b->mk_text = false;
        b->nchanged = 0;
    }
    /* blocks that lost markers: by name (their apartment may be gone) */
    if (b->ndel_marks > 1) /* qsort(NULL, 0) is undefined */
        qsort(b->del_marks, b->ndel_marks, sizeof *b->del_marks, cmp_str);
    for (size_t i = 0; i < b->ndel_marks && rc == 0; i++) {
        if (i > 0 && strcmp(b->del_marks[i], b->del_marks[i - 1]) == 0)
            continue;
        char *e1, *e2;
        long size = strtol(b->del_marks[i], &e1, 10);
        long long h = *e1 == ':' ? strtoll(e1 + 1, &e2, 10) : 0;
        if (*e1 != ':' || *e2 != ':')
            continue; /* agg_mark_field's own names: cannot happen */
        int si = size == 15 ? AGG_W15 : AGG_W60;
        const agg_markers_t *ms = &b->marks[si];
        if (e2[1]) {
            agg_apartment_t *a = agg_apartment(b, e2 + 1, false);
            ms = a ? &a->marks : NULL;
        }
        rc = save_mark_block(batch, key, ms, si, (hvs_ms_t)h * HOUR_MS, e2 + 1, err);
    }
    for (size_t i = 0; i < b->ndel_marks; i++)
        free(b->del_marks[i]);
    b->ndel_marks = 0;
    /* blocks with changed markers, each once */
    if (b->nchanged > 1)
        qsort(b->changed, b->nchanged, sizeof *b->changed, cmp_ref);
    for (size_t i = 0; i < b->nchanged && rc == 0; i++) {
        struct agg_mark_ref *m = &b->changed[i];
        if (i > 0 && cmp_ref(m, m - 1) == 0)
            continue;
        const agg_markers_t *ms = m->apt ? &m->apt->marks : &b->marks[m->size];
        rc = save_mark_block(batch, key, ms, m->size, m->ws, m->apt ? m->apt->id : "", err);
    }
    b->nchanged = 0;
    return rc;
}

static int save_building(hvs_redis_batch_t *batch, agg_building_t *b, sbuf_t *buf, hvs_err_t *err) {
    char key[700], num[3][32];
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
    for (size_t i = 0; i < b->napts && rc == 0; i++)
        rc = save_samples(batch, b, b->apts[i], buf, err);
    if (rc == 0)
        rc = save_marks(batch, b, err);
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
            const redisReply *v = mk->element[k + 1];
            char *e1, *e2;
            long size = strtol(f, &e1, 10);
            if (*e1 != ':')
                continue;
            long long ws = strtoll(e1 + 1, &e2, 10);
            if (*e2 != ':')
                continue;
            const char *apt = e2 + 1;
            agg_markers_t *ms;
            if (*apt) {
                agg_apartment_t *a = agg_apartment(b, apt, false);
                if (!a)
                    continue;
                ms = &a->marks;
            } else {
                ms = &b->marks[size == 15 ? AGG_W15 : AGG_W60];
            }
            if (v->len > 0 && v->str[0] == 1) { /* format 1: ws is the block's hour */
                if ((size != 15 && size != 60) || ws < 0 ||
                    ws > (long long)(INT64_MAX / HOUR_MS) - 24)
                    rc = hvs_err_set(err, HVS_ESERDE, "bad_state",
                                     "stored marker field '%.100s' of %.100s", f, ids[i]);
                else
                    rc = parse_mark_block(ms, size == 15 ? AGG_W15 : AGG_W60,
                                          (hvs_ms_t)ws * HOUR_MS, v->str, v->len, f, err);
                continue;
            }
            unsigned rev = 0; /* text, before format 1: "<rev> <hash>" per window */
            unsigned long long hash = 0;
            b->mk_text = true;
            if (sscanf(v->str, "%u %llu", &rev, &hash) != 2)
                continue;
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
                /* the directory first: the blocks name their series by its slots */
                for (size_t q = 0; h && q + 1 < h->elements && rc == 0; q += 2)
                    if (strcmp(h->element[q]->str, "d") == 0)
                        rc = agg_persist_parse_series(bs[i]->apts[k], h->element[q + 1]->str,
                                                      h->element[q + 1]->len, err);
                for (size_t q = 0; h && q + 1 < h->elements && rc == 0; q += 2)
                    if (strcmp(h->element[q]->str, "d") != 0)
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
