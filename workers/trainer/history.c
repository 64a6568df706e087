/* history.c - the trainer's training window (see history.h). */
#include "history.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/featstore.h"
#include "hvs/fmt.h"
#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/vec.h"

#define MARK(bits, s) ((bits)[(s) / 64] |= (uint64_t)1 << ((s) % 64))
#define IS_MARKED(bits, s) (((bits)[(s) / 64] >> ((s) % 64)) & 1u)

tr_history_t *tr_history_new(size_t hours, size_t max_apartments) {
    tr_history_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->ring = hours < 24 ? 24 : hours;
    h->apt_ring = h->ring;
    h->max_apartments = max_apartments;
    return h;
}

static void series_free(tr_series_t *s) {
    if (!s)
        return;
    free(s->id);
    free(s->hours);
    free(s->dirty);
    free(s->stale);
    free(s);
}

static void building_free(tr_building_t *b) {
    if (!b)
        return;
    for (size_t i = 0; i < b->ns; i++)
        series_free(b->s[i]);
    free(b->s);
    free(b->wx);
    free(b->wx_dirty);
    free(b->wx_stale);
    free(b->id);
    free(b);
}

void tr_history_destroy(tr_history_t *h) {
    if (!h)
        return;
    for (size_t i = 0; i < h->nb; i++)
        building_free(h->b[i]);
    free(h->b);
    free(h);
}

static size_t words(const tr_history_t *h) { return (h->ring + 63) / 64; }
static size_t swords(const tr_series_t *s) { return (s->ring + 63) / 64; }

void tr_history_set_apartment_hours(tr_history_t *h, size_t hours) {
    h->apt_ring = hours < 24 ? 24 : hours > h->ring ? h->ring : hours;
}

tr_building_t *tr_history_building(tr_history_t *h, const char *id, bool create) {
    size_t lo;
    bool found;
    HVS_VEC_BSEARCH_STR(h->b, h->nb, ->id, id, lo, found);
    if (found)
        return h->b[lo];
    if (!create)
        return NULL;
    tr_building_t **nb = hvs_vec_grow(h->b, &h->capb, h->nb + 1, sizeof *nb, 16);
    if (!nb)
        return NULL;
    h->b = nb;
    tr_building_t *b = calloc(1, sizeof *b);
    if (b) {
        b->id = strdup(id);
        b->wx = malloc(h->ring * sizeof *b->wx);
        b->wx_dirty = calloc(words(h), sizeof *b->wx_dirty);
    }
    if (!b || !b->id || !b->wx || !b->wx_dirty) {
        building_free(b);
        return NULL;
    }
    for (size_t i = 0; i < h->ring; i++)
        b->wx[i] = (hvs_feat_wx_hour_t){.hour = HVS_MS_NONE};
    b->first = b->last = HVS_MS_NONE;
    b->meta_dirty = true;
    hvs_vec_open(h->b, h->nb, lo, sizeof *h->b);
    h->b[lo] = b;
    h->nb++;
    return b;
}

tr_series_t *tr_history_series(tr_history_t *h, tr_building_t *b, const char *id, bool create) {
    size_t lo;
    bool found;
    HVS_VEC_BSEARCH_STR(b->s, b->ns, ->id, id, lo, found);
    if (found)
        return b->s[lo];
    if (!create)
        return NULL;
    bool apartment = strcmp(id, HVS_FS_BUILDING) != 0;
    if (apartment && h->napartments >= h->max_apartments) {
        h->sampled_out++;
        return NULL;
    }
    tr_series_t **ns = hvs_vec_grow(b->s, &b->caps, b->ns + 1, sizeof *ns, 8);
    if (!ns)
        return NULL;
    b->s = ns;
    tr_series_t *s = calloc(1, sizeof *s);
    if (s) {
        s->ring = apartment ? h->apt_ring : h->ring;
        s->id = strdup(id);
        s->hours = malloc(s->ring * sizeof *s->hours);
        s->dirty = calloc(swords(s), sizeof *s->dirty);
    }
    if (!s || !s->id || !s->hours || !s->dirty) {
        series_free(s);
        return NULL;
    }
    for (size_t i = 0; i < s->ring; i++)
        s->hours[i].hour = HVS_MS_NONE;
    hvs_vec_open(b->s, b->ns, lo, sizeof *b->s);
    b->s[lo] = s;
    b->ns++;
    b->meta_dirty = true;
    h->napartments += apartment;
    return s;
}

static bool same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

/* Day d lost an hour to a newer one: its stored field is rewritten (or deleted) at the next
 * save. *days is a set of *n (capacity *cap). */
static int stale_add(int64_t **days, size_t *n, size_t *cap, int64_t d) {
    for (size_t i = 0; i < *n; i++)
        if ((*days)[i] == d)
            return 0;
    int64_t *g = hvs_vec_grow(*days, cap, *n + 1, sizeof *g, 8);
    if (!g)
        return HVS_ENOMEM;
    *days = g;
    g[(*n)++] = d;
    return 0;
}

static int add_stale(tr_series_t *s, int64_t d) {
    return stale_add(&s->stale, &s->nstale, &s->capstale, d);
}

static int add_wx_stale(tr_building_t *b, int64_t d) {
    return stale_add(&b->wx_stale, &b->nwx_stale, &b->capwx_stale, d);
}

int tr_history_put_hour(tr_history_t *h, const char *building, const char *entity,
                        const hvs_feat_hour_t *hour) {
    tr_building_t *b = tr_history_building(h, building, true);
    if (!b)
        return HVS_ENOMEM;
    tr_series_t *s = tr_history_series(h, b, entity, true);
    if (!s)
        return strcmp(entity, HVS_FS_BUILDING) != 0 && h->napartments >= h->max_apartments
                   ? 0
                   : HVS_ENOMEM;
    size_t slot = hvs_feat_slot(hour->hour, s->ring);
    hvs_feat_hour_t *o = &s->hours[slot];
    if (o->hour == hour->hour) {
        if (hour->revision < o->revision ||
            (hour->revision == o->revision && same(o->use, hour->use) &&
             same(o->water, hour->water) && same(o->room_temp, hour->room_temp) &&
             same(o->setpoint, hour->setpoint) && same(o->comfort_gap, hour->comfort_gap)))
            return 0;
    } else if (o->hour != HVS_MS_NONE && o->hour > hour->hour) {
        return 0; /* older than the window */
    } else if (o->hour != HVS_MS_NONE && hvs_fs_day_of(o->hour) != hvs_fs_day_of(hour->hour) &&
               add_stale(s, hvs_fs_day_of(o->hour))) {
        return HVS_ENOMEM;
    }
    *o = *hour;
    MARK(s->dirty, slot);
    if (b->first == HVS_MS_NONE || hour->hour < b->first)
        b->first = hour->hour;
    if (b->last == HVS_MS_NONE || hour->hour > b->last)
        b->last = hour->hour;
    return 1;
}

int tr_history_put_weather(tr_history_t *h, const char *building, hvs_ms_t hour,
                           const hvs_feat_wx_t *rec) {
    tr_building_t *b = tr_history_building(h, building, true);
    if (!b)
        return HVS_ENOMEM;
    size_t slot = hvs_feat_slot(hour, h->ring);
    hvs_ms_t was = b->wx[slot].hour;
    if (was != HVS_MS_NONE && was > hour)
        return 0;
    if (was != HVS_MS_NONE && was != hour && hvs_fs_day_of(was) != hvs_fs_day_of(hour) &&
        add_wx_stale(b, hvs_fs_day_of(was)))
        return HVS_ENOMEM;
    int rc = hvs_feat_wx_add(&b->wx[slot], hour, rec);
    if (rc == 1)
        MARK(b->wx_dirty, slot);
    return rc;
}

void tr_history_view(const tr_history_t *h, const tr_building_t *b, const tr_series_t *s,
                     hvs_ms_t commissioning, hvs_feat_history_t *out) {
    *out = (hvs_feat_history_t){s ? s->hours : NULL, s ? s->ring : 0, b->wx, h->ring,
                                commissioning};
}

/* ---- Redis ---------------------------------------------------------------------------------- */

static int cmp_day(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* What saving by day needs of a ring: a series' hours or a building's weather. */
typedef struct day_ring {
    const void *slots;
    size_t ring;
    hvs_ms_t (*hour)(const void *slots, size_t i);
    size_t (*encode)(const void *slots, size_t ring, int64_t day, char *buf, size_t cap);
    size_t day_max; /* the most encode writes for a day */
    const uint64_t *dirty;
    const int64_t *stale;
    size_t nstale;
    bool legacy; /* loaded from text fields of one slot each: the key is replaced */
} day_ring_t;

static hvs_ms_t series_hour(const void *x, size_t i) {
    return ((const hvs_feat_hour_t *)x)[i].hour;
}
static hvs_ms_t wx_hour(const void *x, size_t i) { return ((const hvs_feat_wx_hour_t *)x)[i].hour; }
static size_t series_encode(const void *x, size_t ring, int64_t day, char *buf, size_t cap) {
    return hvs_fs_encode_day(x, ring, day, buf, cap);
}
static size_t wx_encode(const void *x, size_t ring, int64_t day, char *buf, size_t cap) {
    return hvs_fs_encode_wx_day(x, ring, day, buf, cap);
}

/* The days r's next save writes: those of its marked slots (all of its hours when the key is
 * replaced) and the stale ones, sorted, each once; *out is the caller's to free. */
static int days_to_write(const day_ring_t *r, int64_t **out, size_t *n) {
    size_t cap = r->nstale + 1;
    for (size_t i = 0; i < r->ring; i++)
        cap += (r->legacy || IS_MARKED(r->dirty, i)) && r->hour(r->slots, i) != HVS_MS_NONE;
    int64_t *d = malloc(cap * sizeof *d);
    if (!d)
        return HVS_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < r->ring; i++)
        if ((r->legacy || IS_MARKED(r->dirty, i)) && r->hour(r->slots, i) != HVS_MS_NONE)
            d[k++] = hvs_fs_day_of(r->hour(r->slots, i));
    for (size_t i = 0; i < r->nstale; i++)
        d[k++] = r->stale[i];
    qsort(d, k, sizeof *d, cmp_day);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || d[u - 1] != d[i])
            d[u++] = d[i];
    *out = d, *n = u;
    return 0;
}

/* Queue the writes of r's changed days: "HSET key d<day> value ..." in chunks of about 1 MB,
 * "HDEL key d<day> ..." for days that hold no hour any more; after "DEL key" when r was loaded
 * from text fields of one slot each (the format before days). The caller clears r's marks. */
static int save_days(hvs_redis_batch_t *batch, const char *key, const day_ring_t *r,
                     hvs_err_t *err) {
    enum { NAME_MAX = 24 };
    bool any = r->legacy || r->nstale;
    for (size_t w = 0; !any && w < (r->ring + 63) / 64; w++)
        any = r->dirty[w] != 0;
    if (!any)
        return 0;
    int64_t *days;
    size_t nd;
    if (days_to_write(r, &days, &nd))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "history of %s", key);
    size_t chunk = (1u << 20) / (NAME_MAX + r->day_max);
    chunk = chunk < 1 ? 1 : chunk > 128 ? 128 : chunk;
    const char **argv = malloc((2 + 2 * chunk) * sizeof *argv);
    size_t *lens = malloc((2 + 2 * chunk) * sizeof *lens);
    char *arena = malloc(chunk * (NAME_MAX + r->day_max));
    char *gone = malloc(nd * NAME_MAX + 1);
    const char **dargv = malloc((2 + nd) * sizeof *dargv);
    int rc = !argv || !lens || !arena || !gone || !dargv ? HVS_ENOMEM : 0;
    if (rc == 0 && r->legacy) {
        const char *a1[] = {"DEL", key};
        rc = hvs_redis_batch_add(batch, 2, a1, NULL);
    }
    size_t ngone = 0;
    for (size_t i = 0; i < nd && rc == 0;) {
        size_t argc = 2, off = 0;
        for (; i < nd && argc < 2 + 2 * chunk; i++) {
            char *name = arena + off;
            size_t nl = (size_t)snprintf(name, NAME_MAX, "d%lld", (long long)days[i]);
            char *val = name + NAME_MAX;
            size_t vl = r->encode(r->slots, r->ring, days[i], val, r->day_max);
            if (vl > r->day_max) { /* day_max bounds every day: a broken bound, not bad data */
                rc = HVS_EINVAL;
                break;
            }
            if (vl == 0) { /* no hour of it left: its field goes */
                char *g = gone + ngone * NAME_MAX;
                memcpy(g, name, nl + 1);
                dargv[2 + ngone++] = g;
                continue;
            }
            off += NAME_MAX + r->day_max;
            argv[argc] = name, lens[argc++] = nl;
            argv[argc] = val, lens[argc++] = vl;
        }
        if (argc > 2) {
            argv[0] = "HSET", lens[0] = 4;
            argv[1] = key, lens[1] = strlen(key);
            rc = hvs_redis_batch_add(batch, (int)argc, argv, lens);
        }
    }
    if (rc == 0 && ngone && !r->legacy) {
        dargv[0] = "HDEL", dargv[1] = key;
        rc = hvs_redis_batch_add(batch, (int)(2 + ngone), dargv, NULL);
    }
    free(argv), free(lens), free(arena), free(gone), free(dargv), free(days);
    if (rc)
        return hvs_err_set(err, rc, rc == HVS_EINVAL ? "day_too_large" : "oom", "history of %s",
                           key);
    return 0;
}

static int save_series(hvs_redis_batch_t *batch, const char *key, tr_series_t *s, hvs_err_t *err) {
    day_ring_t r = {s->hours, s->ring,  series_hour, series_encode, 12 + 24 * (4 * 10 + 7 * 9),
                    s->dirty, s->stale, s->nstale,   s->legacy};
    int rc = save_days(batch, key, &r, err);
    if (rc == 0) {
        memset(s->dirty, 0, swords(s) * sizeof *s->dirty);
        s->nstale = 0;
        s->legacy = false;
    }
    return rc;
}

static int save_weather(hvs_redis_batch_t *batch, const char *key, const tr_history_t *h,
                        tr_building_t *b, hvs_err_t *err) {
    day_ring_t r = {b->wx,       h->ring,     wx_hour,      wx_encode,   HVS_FS_WX_DAY_MAX,
                    b->wx_dirty, b->wx_stale, b->nwx_stale, b->wx_legacy};
    int rc = save_days(batch, key, &r, err);
    if (rc == 0) {
        memset(b->wx_dirty, 0, words(h) * sizeof *b->wx_dirty);
        b->nwx_stale = 0;
        b->wx_legacy = false;
    }
    return rc;
}

int tr_history_save(tr_history_t *h, hvs_redis_batch_t *batch, hvs_err_t *err) {
    char key[700];
    for (size_t i = 0; i < h->nb; i++) {
        tr_building_t *b = h->b[i];
        int rc = 0;
        for (size_t k = 0; k < b->ns && rc == 0; k++) {
            if (hvs_redis_key(key, sizeof key, b->id, err, "tr:h:%s", b->s[k]->id) < 0)
                return HVS_EINVAL; /* err names the id */
            rc = save_series(batch, key, b->s[k], err);
        }
        if (rc == 0 && hvs_redis_key(key, sizeof key, b->id, err, "tr:wx") < 0)
            return HVS_EINVAL;
        if (rc == 0)
            rc = save_weather(batch, key, h, b, err);
        if (rc)
            return rc;
        if (b->meta_dirty) {
            const char *a1[] = {"SADD", "hvs:tr:buildings", b->id};
            if (hvs_redis_batch_add(batch, 3, a1, NULL))
                return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
            if (hvs_redis_key(key, sizeof key, b->id, err, "tr:ents") < 0)
                return HVS_EINVAL;
            for (size_t k = 0; k < b->ns; k++) {
                const char *a2[] = {"SADD", key, b->s[k]->id};
                if (hvs_redis_batch_add(batch, 3, a2, NULL))
                    return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
            }
            b->meta_dirty = false;
        }
    }
    return 0;
}

static const redisReply *reply(hvs_redis_batch_t *b, size_t i, int type) {
    const redisReply *r = hvs_redis_batch_reply(b, i);
    return r && r->type == type ? r : NULL;
}

/* A stored hour into s: slots are re-derived from the stamped hour, so a ring of another
 * length (a changed window) keeps the newest of the hours that now share a slot; the day of the
 * one left out is stale (its field is rewritten without it at the next save). */
static int place_hour(tr_series_t *s, tr_building_t *b, const hvs_feat_hour_t *x) {
    hvs_feat_hour_t *o = &s->hours[hvs_feat_slot(x->hour, s->ring)];
    if (o->hour != HVS_MS_NONE &&
        (o->hour > x->hour || (o->hour == x->hour && o->revision >= x->revision)))
        return o->hour == x->hour ? 0 : add_stale(s, hvs_fs_day_of(x->hour));
    if (o->hour != HVS_MS_NONE && o->hour != x->hour && add_stale(s, hvs_fs_day_of(o->hour)))
        return HVS_ENOMEM;
    *o = *x;
    if (b->first == HVS_MS_NONE || x->hour < b->first)
        b->first = x->hour;
    if (b->last == HVS_MS_NONE || x->hour > b->last)
        b->last = x->hour;
    return 0;
}

/* One stored field of series s (key): a day "d<day>", or a text slot of the format before. */
static int load_field(tr_series_t *s, tr_building_t *b, const char *key, const redisReply *f,
                      const redisReply *v, hvs_err_t *err) {
    hvs_feat_hour_t got[24];
    size_t n = 1;
    bool day = f->type == REDIS_REPLY_STRING && f->len > 1 && f->str[0] == 'd';
    char *end = NULL;
    long long d = day ? strtoll(f->str + 1, &end, 10) : 0;
    if (v->type != REDIS_REPLY_STRING || (day && *end) ||
        (day ? hvs_fs_decode_day(v->str, v->len, d, got)
             : hvs_fs_decode_hour(v->str, v->len, &got[0])))
        return hvs_err_set(err, HVS_ESERDE, "bad_state", "%s field %s does not parse", key,
                           f->type == REDIS_REPLY_STRING ? f->str : "?");
    if (day)
        n = 24;
    s->legacy |= !day;
    for (size_t i = 0; i < n; i++)
        if (got[i].hour != HVS_MS_NONE && place_hour(s, b, &got[i]))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", key);
    return 0;
}

/* A stored hour of weather into b's ring, as place_hour: the newest of the hours that share a
 * slot stays, the day of the one left out is stale. */
static int place_wx(const tr_history_t *h, tr_building_t *b, const hvs_feat_wx_hour_t *w) {
    hvs_feat_wx_hour_t *o = &b->wx[hvs_feat_slot(w->hour, h->ring)];
    if (o->hour != HVS_MS_NONE && o->hour > w->hour)
        return add_wx_stale(b, hvs_fs_day_of(w->hour));
    if (o->hour != HVS_MS_NONE && o->hour != w->hour && add_wx_stale(b, hvs_fs_day_of(o->hour)))
        return HVS_ENOMEM;
    *o = *w;
    return 0;
}

/* One stored field of b's weather (key): a day "d<day>", or a text slot of the format before. */
static int load_wx_field(const tr_history_t *h, tr_building_t *b, const char *key,
                         const redisReply *f, const redisReply *v, hvs_err_t *err) {
    hvs_feat_wx_hour_t *got = malloc(24 * sizeof *got); /* 24 x 0.8 KB: not on the stack */
    if (!got)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", key);
    int rc = 0;
    size_t n = 1;
    bool day = f->type == REDIS_REPLY_STRING && f->len > 1 && f->str[0] == 'd';
    char *end = NULL;
    long long d = day ? strtoll(f->str + 1, &end, 10) : 0;
    if (v->type != REDIS_REPLY_STRING || (day && *end) ||
        (day ? hvs_fs_decode_wx_day(v->str, v->len, d, got)
             : hvs_fs_decode_wx(v->str, v->len, &got[0])))
        rc = hvs_err_set(err, HVS_ESERDE, "bad_state", "%s field %s does not parse", key,
                         f->type == REDIS_REPLY_STRING ? f->str : "?");
    if (day)
        n = 24;
    b->wx_legacy |= !day;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (got[i].hour != HVS_MS_NONE && place_wx(h, b, &got[i]))
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", key);
    free(got);
    return rc;
}

int tr_history_load(tr_history_t *h, hvs_redis_t *r, hvs_redis_batch_t *batch, hvs_err_t *err) {
    hvs_redis_batch_reset(batch);
    const char *a[] = {"SMEMBERS", "hvs:tr:buildings"};
    if (hvs_redis_batch_add(batch, 2, a, NULL))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    int rc = hvs_redis_batch_exec(r, batch, err);
    if (rc)
        return rc;
    const redisReply *m = reply(batch, 0, REDIS_REPLY_ARRAY);
    size_t n = m ? m->elements : 0;
    char **ids = calloc(n ? n : 1, sizeof *ids);
    if (!ids)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "loading history");
    for (size_t i = 0; i < n; i++) {
        const redisReply *x = m->element[i];
        hvs_err_t bad = {0};
        if (x->type == REDIS_REPLY_STRING && hvs_id_check_n(x->str, x->len, "building id", &bad)) {
            /* stored before ids were checked where they enter: left out loudly rather than
             * stopping every start of the trainer */
            hvs_log_warn("trainer", "hvs:tr:buildings: stored building id skipped: %s", bad.msg);
            continue;
        }
        ids[i] = x->type == REDIS_REPLY_STRING ? strdup(x->str) : NULL;
    }
    char key[700];
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!ids[i])
            continue;
        tr_building_t *b = tr_history_building(h, ids[i], true);
        if (!b) {
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", ids[i]);
            break;
        }
        hvs_redis_batch_reset(batch);
        char wkey[700];
        if (hvs_redis_key(key, sizeof key, ids[i], err, "tr:ents") < 0 ||
            hvs_redis_key(wkey, sizeof wkey, ids[i], err, "tr:wx") < 0) {
            rc = HVS_EINVAL;
            break;
        }
        const char *c1[] = {"SMEMBERS", key};
        const char *c2[] = {"HGETALL", wkey};
        if (hvs_redis_batch_add(batch, 2, c1, NULL) || hvs_redis_batch_add(batch, 2, c2, NULL)) {
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
            break;
        }
        if ((rc = hvs_redis_batch_exec(r, batch, err)))
            break;
        const redisReply *ents = reply(batch, 0, REDIS_REPLY_ARRAY),
                         *wx = reply(batch, 1, REDIS_REPLY_ARRAY);
        for (size_t k = 0; wx && k + 1 < wx->elements && rc == 0; k += 2)
            rc = load_wx_field(h, b, wkey, wx->element[k], wx->element[k + 1], err);
        memset(b->wx_dirty, 0, words(h) * sizeof *b->wx_dirty);
        char **eids = NULL;
        size_t ne = ents ? ents->elements : 0;
        if (rc == 0 && ne) {
            eids = calloc(ne, sizeof *eids);
            for (size_t k = 0; eids && k < ne; k++)
                eids[k] = ents->element[k]->type == REDIS_REPLY_STRING
                              ? strdup(ents->element[k]->str)
                              : NULL;
        }
        for (size_t k = 0; eids && k < ne && rc == 0; k++) {
            if (!eids[k])
                continue;
            tr_series_t *s = tr_history_series(h, b, eids[k], true);
            if (!s)
                continue; /* sampled out by the cap */
            hvs_redis_batch_reset(batch);
            if (hvs_redis_key(key, sizeof key, ids[i], err, "tr:h:%s", eids[k]) < 0) {
                rc = HVS_EINVAL;
                break;
            }
            const char *c3[] = {"HGETALL", key};
            if (hvs_redis_batch_add(batch, 2, c3, NULL)) {
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
                break;
            }
            if ((rc = hvs_redis_batch_exec(r, batch, err)))
                break;
            const redisReply *hr = reply(batch, 0, REDIS_REPLY_ARRAY);
            for (size_t q = 0; hr && q + 1 < hr->elements && rc == 0; q += 2)
                rc = load_field(s, b, key, hr->element[q], hr->element[q + 1], err);
            memset(s->dirty, 0, swords(s) * sizeof *s->dirty);
        }
        for (size_t k = 0; eids && k < ne; k++)
            free(eids[k]);
        free(eids);
        memset(b->wx_dirty, 0, words(h) * sizeof *b->wx_dirty);
        b->meta_dirty = false;
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return rc;
}
