/* featstore.c - feature state in memory and Redis (see hvs/featstore.h for the key layout). */
#include "hvs/featstore.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/fmt.h"
#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/pack.h"
#include "hvs/vec.h"

#define SLOT(h) hvs_feat_slot((h), HVS_FS_HOURS)
_Static_assert(HVS_FS_HOURS % HVS_FS_BLOCK_HOURS == 0, "a ring is whole blocks");
#define MARK(bits, s) ((bits)[(s) / 64] |= (uint64_t)1 << ((s) % 64))
#define IS_MARKED(bits, s) (((bits)[(s) / 64] >> ((s) % 64)) & 1u)

static void clear_rings(hvs_fs_building_t *b) {
    for (size_t i = 0; i < HVS_FS_HOURS; i++)
        b->wx[i] = (hvs_feat_wx_hour_t){.hour = HVS_MS_NONE};
}

hvs_fs_building_t *hvs_fs_building_new(const char *id, int32_t partition) {
    return hvs_fs_building_new_ns(id, partition, HVS_FS_NS);
}

hvs_fs_building_t *hvs_fs_building_new_ns(const char *id, int32_t partition, const char *ns) {
    hvs_fs_building_t *b = calloc(1, sizeof *b);
    if (!b || strlen(ns) >= sizeof b->ns || !(b->id = strdup(id))) {
        free(b);
        return NULL;
    }
    snprintf(b->ns, sizeof b->ns, "%s", ns);
    b->partition = partition;
    clear_rings(b);
    b->meta_dirty = true;
    return b;
}

void hvs_fs_building_destroy(hvs_fs_building_t *b) {
    if (!b)
        return;
    for (size_t i = 0; i < b->nents; i++) {
        free(b->ents[i]->id);
        free(b->ents[i]);
    }
    free(b->ents);
    free(b->id);
    free(b);
}

hvs_fs_entity_t *hvs_fs_entity(hvs_fs_building_t *b, const char *id, bool create) {
    size_t lo;
    bool found;
    HVS_VEC_BSEARCH_STR(b->ents, b->nents, ->id, id, lo, found);
    if (found)
        return b->ents[lo];
    if (!create)
        return NULL;
    hvs_fs_entity_t **ne = hvs_vec_grow(b->ents, &b->capents, b->nents + 1, sizeof *ne, 16);
    if (!ne)
        return NULL;
    b->ents = ne;
    hvs_fs_entity_t *e = calloc(1, sizeof *e);
    if (!e || !(e->id = strdup(id))) {
        free(e);
        return NULL;
    }
    for (size_t i = 0; i < HVS_FS_HOURS; i++)
        e->hours[i].hour = HVS_MS_NONE;
    hvs_vec_open(b->ents, b->nents, lo, sizeof *b->ents);
    b->ents[lo] = e;
    b->nents++;
    b->meta_dirty = true;
    return e;
}

static bool same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

int hvs_fs_put_hour(hvs_fs_entity_t *e, const hvs_feat_hour_t *h) {
    size_t s = SLOT(h->hour);
    hvs_feat_hour_t *o = &e->hours[s];
    if (o->hour == h->hour) {
        if (h->revision < o->revision)
            return 0;
        if (h->revision == o->revision && same(o->use, h->use) && same(o->water, h->water) &&
            same(o->room_temp, h->room_temp) && same(o->setpoint, h->setpoint) &&
            same(o->comfort_gap, h->comfort_gap))
            return 0;
    } else if (o->hour != HVS_MS_NONE && o->hour > h->hour) {
        return 0; /* the slot already serves a newer hour: h is older than the ring */
    }
    *o = *h;
    MARK(e->dirty, s);
    return 1;
}

int hvs_fs_put_weather(hvs_fs_building_t *b, hvs_ms_t hour, const hvs_feat_wx_t *rec) {
    size_t s = SLOT(hour);
    if (b->wx[s].hour != HVS_MS_NONE && b->wx[s].hour > hour)
        return 0;
    int rc = hvs_feat_wx_add(&b->wx[s], hour, rec);
    if (rc == 1)
        MARK(b->wx_dirty, s);
    return rc;
}

const hvs_feat_wx_hour_t *hvs_fs_weather(const hvs_fs_building_t *b, hvs_ms_t hour) {
    const hvs_feat_wx_hour_t *w = &b->wx[SLOT(hour)];
    return w->hour == hour ? w : NULL;
}

void hvs_fs_view(const hvs_fs_building_t *b, const hvs_fs_entity_t *e, hvs_ms_t commissioning,
                 hvs_feat_history_t *out) {
    out->hours = e ? e->hours : NULL;
    out->nhours = e ? HVS_FS_HOURS : 0;
    out->wx = b->wx;
    out->nwx = HVS_FS_HOURS;
    out->commissioning = commissioning;
}

/* ---- encodings ------------------------------------------------------------------------------ */

typedef struct out {
    char *buf;
    size_t cap, n;
} out_t;

static void put(out_t *o, const char *s, size_t len) {
    if (o->n + len <= o->cap)
        memcpy(o->buf + o->n, s, len);
    o->n += len;
}

static void put_num(out_t *o, double v, char sep) {
    char tmp[HVS_FMT_MAX + 1];
    size_t n = 0;
    if (sep)
        tmp[n++] = sep;
    n += hvs_fmt_double(tmp + n, v);
    put(o, tmp, n);
}

static void put_int(out_t *o, int64_t v, char sep) {
    char tmp[HVS_FMT_MAX + 1];
    size_t n = 0;
    if (sep)
        tmp[n++] = sep;
    n += hvs_fmt_int64(tmp + n, v);
    put(o, tmp, n);
}

size_t hvs_fs_encode_hour(const hvs_feat_hour_t *h, char *buf, size_t cap) {
    out_t o = {buf, cap, 0};
    put_int(&o, h->hour, 0);
    put_int(&o, h->revision, ' ');
    put_num(&o, h->use, ' ');
    put_num(&o, h->water, ' ');
    put_num(&o, h->room_temp, ' ');
    put_num(&o, h->setpoint, ' ');
    put_num(&o, h->comfort_gap, ' ');
    put_num(&o, h->valve, ' ');
    put_num(&o, h->temp_std, ' ');
    put_int(&o, h->rooms, ' ');
    put_int(&o, h->flat, ' ');
    return o.n;
}

size_t hvs_fs_encode_wx(const hvs_feat_wx_hour_t *w, char *buf, size_t cap) {
    out_t o = {buf, cap, 0};
    put_int(&o, w->hour, 0);
    for (int i = 0; i < w->n; i++) {
        const hvs_feat_wx_t *r = &w->v[i];
        put_int(&o, r->issued_at, '|');
        put_int(&o, r->observed ? 1 : 0, ' ');
        put_num(&o, r->temp, ' ');
        put_num(&o, r->rh, ' ');
        put_num(&o, r->cloud, ' ');
        put_num(&o, r->ghi, ' ');
        put_num(&o, r->wind, ' ');
    }
    return o.n;
}

/* Numbers separated by single spaces into v[0..want); p advanced past them. -1 if malformed. */
static int read_nums(const char **pp, const char *end, double *v, int want) {
    const char *p = *pp;
    char tmp[64];
    for (int i = 0; i < want; i++) {
        if (i > 0) {
            if (p >= end || *p != ' ')
                return -1;
            p++;
        }
        const char *q = p;
        while (q < end && *q != ' ' && *q != '|')
            q++;
        size_t len = (size_t)(q - p);
        if (len == 0 || len >= sizeof tmp)
            return -1;
        memcpy(tmp, p, len);
        tmp[len] = 0;
        char *e;
        v[i] = strtod(tmp, &e);
        if (*e)
            return -1;
        p = q;
    }
    *pp = p;
    return 0;
}

/* 11 numbers; an hour stored before the rooms (feature set 1) has the first 7 and no rooms. */
int hvs_fs_decode_hour(const char *v, size_t len, hvs_feat_hour_t *out) {
    double x[11] = {0, 0, 0, 0, 0, 0, 0, NAN, NAN, 0, 0};
    const char *p = v;
    if (read_nums(&p, v + len, x, 7) || x[1] < 0 || x[1] > 4294967295.0)
        return -1;
    if (p != v + len) {
        if (*p != ' ')
            return -1;
        p++;
        if (read_nums(&p, v + len, x + 7, 4) || p != v + len)
            return -1;
        for (int i = 9; i < 11; i++)
            if (!(x[i] >= 0 && x[i] <= 4294967295.0) || x[i] != floor(x[i]))
                return -1;
    }
    *out = (hvs_feat_hour_t){.hour = (hvs_ms_t)x[0],
                             .revision = (uint32_t)x[1],
                             .use = x[2],
                             .water = x[3],
                             .room_temp = x[4],
                             .setpoint = x[5],
                             .comfort_gap = x[6],
                             .valve = x[7],
                             .temp_std = x[8],
                             .rooms = (uint32_t)x[9],
                             .flat = (uint32_t)x[10]};
    return 0;
}

int hvs_fs_decode_wx(const char *v, size_t len, hvs_feat_wx_hour_t *out) {
    const char *p = v, *end = v + len;
    double hour;
    if (read_nums(&p, end, &hour, 1))
        return -1;
    *out = (hvs_feat_wx_hour_t){.hour = (hvs_ms_t)hour};
    while (p < end) {
        if (*p != '|' || out->n >= HVS_FEAT_WX_KEEP)
            return -1;
        p++;
        double x[7];
        if (read_nums(&p, end, x, 7) || (x[1] != 0 && x[1] != 1))
            return -1;
        out->v[out->n++] = (hvs_feat_wx_t){.issued_at = (hvs_ms_t)x[0],
                                           .observed = x[1] == 1,
                                           .temp = x[2],
                                           .rh = x[3],
                                           .cloud = x[4],
                                           .ghi = x[5],
                                           .wind = x[6]};
    }
    return 0;
}

/* ---- the ring in blocks ---------------------------------------------------------------------
 * An entity's ring is stored as HVS_FS_BLOCKS fields "b<k>", block k holding slots
 * [k * HVS_FS_BLOCK_HOURS, (k + 1) * HVS_FS_BLOCK_HOURS): one hash field per slot cost Redis more
 * for the field (~60 bytes) than for its value. A block's value, in pack.h varints and doubles:
 * byte 1 (the format), varint k (a value under another field's name is refused), then per slot
 * in order a varint mask of what follows - 0 for an empty slot:
 *   BH_PRESENT; the hour: the zigzag varint of its cycle (hour / 1 h - slot) / HVS_FS_HOURS, or
 *   with BH_ODD_HOUR (an hour not on a whole hour) of its milliseconds; varint revision; a
 *   double per BH_USE.. bit set (use, water, room_temp, setpoint, comfort_gap, valve,
 *   temp_std; NaN is the bit clear); with BH_ROOMS varints rooms and flat.
 * A metered hour without rooms takes ~6 bytes (0.347 kWh is 2).
 */
enum {
    BH_PRESENT = 1,
    BH_ODD_HOUR = 2,
    BH_USE = 4, /* the first of BH_NUMBERS bits, one per number */
    BH_ROOMS = 1 << 9,
    BH_NUMBERS = 7,
};
#define BLOCK_FORMAT 1
/* format, block, then per slot: mask, hour, revision (10 bytes each at most), numbers, rooms */
#define BLOCK_MAX (2 + 10 + HVS_FS_BLOCK_HOURS * (5 * 10 + BH_NUMBERS * HVS_PACK_DOUBLE_MAX))

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t z) { return (int64_t)(z >> 1) ^ -(int64_t)(z & 1); }

static void hour_numbers(const hvs_feat_hour_t *h, double *x) {
    x[0] = h->use, x[1] = h->water, x[2] = h->room_temp, x[3] = h->setpoint;
    x[4] = h->comfort_gap, x[5] = h->valve, x[6] = h->temp_std;
}

/* An hour's mask: present, off the hour, the numbers it has, rooms. */
static uint64_t hour_mask(const hvs_feat_hour_t *h, const double *x) {
    uint64_t mask = BH_PRESENT | (h->hour % HVS_MS_HOUR == 0 ? 0 : BH_ODD_HOUR);
    for (int i = 0; i < BH_NUMBERS; i++)
        mask |= isnan(x[i]) ? 0 : (uint64_t)BH_USE << i;
    return mask | (h->rooms || h->flat ? BH_ROOMS : 0);
}

/* What follows an hour's mask and time: revision, numbers, rooms. */
static void put_hour_body(char *buf, size_t cap, size_t *n, const hvs_feat_hour_t *h, uint64_t mask,
                          const double *x) {
    hvs_pack_put_varint(buf, cap, n, h->revision);
    for (int i = 0; i < BH_NUMBERS; i++)
        if (mask & ((uint64_t)BH_USE << i))
            hvs_pack_put_double(buf, cap, n, x[i]);
    if (mask & BH_ROOMS) {
        hvs_pack_put_varint(buf, cap, n, h->rooms);
        hvs_pack_put_varint(buf, cap, n, h->flat);
    }
}

static int get_hour_body(const unsigned char **p, const unsigned char *end, uint64_t mask,
                         hvs_feat_hour_t *h) {
    uint64_t rev, rooms = 0, flat = 0;
    if (hvs_pack_get_varint(p, end, &rev) || rev > UINT32_MAX)
        return -1;
    double x[BH_NUMBERS];
    for (int j = 0; j < BH_NUMBERS; j++) {
        x[j] = NAN;
        if ((mask & ((uint64_t)BH_USE << j)) && hvs_pack_get_double(p, end, &x[j]))
            return -1;
    }
    if ((mask & BH_ROOMS) &&
        (hvs_pack_get_varint(p, end, &rooms) || hvs_pack_get_varint(p, end, &flat) ||
         rooms > UINT32_MAX || flat > UINT32_MAX))
        return -1;
    h->revision = (uint32_t)rev;
    h->use = x[0], h->water = x[1], h->room_temp = x[2], h->setpoint = x[3];
    h->comfort_gap = x[4], h->valve = x[5], h->temp_std = x[6];
    h->rooms = (uint32_t)rooms, h->flat = (uint32_t)flat;
    return 0;
}

size_t hvs_fs_encode_block(const hvs_feat_hour_t *ring, size_t block, char *buf, size_t cap) {
    size_t n = 0;
    hvs_pack_put_bytes(buf, cap, &n, (const char[]){BLOCK_FORMAT}, 1);
    hvs_pack_put_varint(buf, cap, &n, block);
    for (size_t s = block * HVS_FS_BLOCK_HOURS; s < (block + 1) * HVS_FS_BLOCK_HOURS; s++) {
        const hvs_feat_hour_t *h = &ring[s];
        if (h->hour == HVS_MS_NONE) {
            hvs_pack_put_varint(buf, cap, &n, 0);
            continue;
        }
        double x[BH_NUMBERS];
        hour_numbers(h, x);
        uint64_t mask = hour_mask(h, x);
        hvs_pack_put_varint(buf, cap, &n, mask);
        /* whole hours: hour / 1 h = slot + cycle * HVS_FS_HOURS exactly (SLOT's floor modulo) */
        hvs_pack_put_varint(buf, cap, &n,
                            zigzag(mask & BH_ODD_HOUR
                                       ? h->hour
                                       : (h->hour / HVS_MS_HOUR - (int64_t)s) / HVS_FS_HOURS));
        put_hour_body(buf, cap, &n, h, mask, x);
    }
    return n;
}

int hvs_fs_decode_block(const char *v, size_t len, size_t block, hvs_feat_hour_t *out) {
    const unsigned char *p = (const unsigned char *)v, *end = p + len;
    uint64_t k;
    if (block >= HVS_FS_BLOCKS || len < 1 || *p++ != BLOCK_FORMAT ||
        hvs_pack_get_varint(&p, end, &k) || k != block)
        return -1;
    for (size_t i = 0; i < HVS_FS_BLOCK_HOURS; i++) {
        int64_t s = (int64_t)(block * HVS_FS_BLOCK_HOURS + i);
        hvs_feat_hour_t *h = &out[i];
        uint64_t mask, t;
        if (hvs_pack_get_varint(&p, end, &mask))
            return -1;
        if (mask == 0) {
            *h = (hvs_feat_hour_t){.hour = HVS_MS_NONE};
            continue;
        }
        if (!(mask & BH_PRESENT) || mask >= (BH_ROOMS << 1) || hvs_pack_get_varint(&p, end, &t))
            return -1;
        int64_t ht = unzigzag(t);
        if ((mask & BH_ODD_HOUR) && ht < INT64_MIN + HVS_MS_HOUR)
            return -1; /* no slot: hvs_feat_slot's arithmetic needs an hour to spare */
        if (mask & BH_ODD_HOUR)
            h->hour = ht;
        else if (ht > (INT64_MAX / HVS_MS_HOUR - s) / HVS_FS_HOURS ||
                 ht < (INT64_MIN / HVS_MS_HOUR) / HVS_FS_HOURS)
            return -1;
        else
            h->hour = (ht * HVS_FS_HOURS + s) * HVS_MS_HOUR;
        if (get_hour_body(&p, end, mask, h) || h->hour == HVS_MS_NONE || SLOT(h->hour) != (size_t)s)
            return -1;
    }
    return p == end ? 0 : -1;
}

/* ---- the weather ring in blocks ---------------------------------------------------------------
 * A building's weather ring is stored as the entity rings are, HVS_FS_BLOCKS fields "b<k>" in
 * hvs:{B}:<ns>:wx, block k holding slots [k * HVS_FS_BLOCK_HOURS, (k + 1) * HVS_FS_BLOCK_HOURS).
 * A value: byte 3 (the format), varint k, then per slot a varint: 0 for an empty slot, else
 * WH_PRESENT (| WH_ODD_HOUR for an hour not on a whole hour), then the hour as the blocks' (the
 * zigzag varint of its cycle, or of its milliseconds), then the hour's records (wx_body).
 * Records (oldest issue first, as hvs_feat_wx_add keeps them): varint count, then per record a
 * varint x = observed | unit << 1 | zigzag(delta) << 3 with delta = issued_at - hour in the
 * unit's steps (0: ms, 1: s, 2: h), or, when that does not fit, x = observed | 3 << 1 and the
 * zigzag varint of issued_at itself; a varint mask of the numbers present (temp, rh, cloud, ghi,
 * wind; NaN the bit clear) and those numbers as pack.h doubles. A forecast issued on a whole
 * hour with one-decimal values takes 10-20 bytes; as text it took ~45, and a field per slot
 * ~60 more in Redis. */
enum { WH_PRESENT = 1, WH_ODD_HOUR = 2 };
#define WX_BLOCK_FORMAT 3
#define WX_NUMBERS 5
/* the most one slot takes: header, hour, count, then per record x, issued_at, mask (10 bytes
 * each at most) and the numbers */
#define WX_SLOT_MAX (3 * 10 + HVS_FEAT_WX_KEEP * (3 * 10 + WX_NUMBERS * HVS_PACK_DOUBLE_MAX))

static void wx_numbers(const hvs_feat_wx_t *r, double *x) {
    x[0] = r->temp, x[1] = r->rh, x[2] = r->cloud, x[3] = r->ghi, x[4] = r->wind;
}

static void put_wx_body(char *buf, size_t cap, size_t *n, const hvs_feat_wx_hour_t *w) {
    hvs_pack_put_varint(buf, cap, n, (uint64_t)w->n);
    for (int i = 0; i < w->n; i++) {
        const hvs_feat_wx_t *r = &w->v[i];
        int64_t d;
        uint64_t unit = 3;
        if (!__builtin_sub_overflow(r->issued_at, w->hour, &d))
            unit = d % HVS_MS_HOUR == 0 ? 2 : d % 1000 == 0 ? 1 : 0;
        int64_t steps = unit == 2 ? d / HVS_MS_HOUR : unit == 1 ? d / 1000 : d;
        if (unit < 3 && zigzag(steps) >> 61 != 0)
            unit = 3; /* would not fit beside the flags */
        uint64_t obs = r->observed ? 1u : 0u;
        if (unit < 3) {
            hvs_pack_put_varint(buf, cap, n, obs | unit << 1 | zigzag(steps) << 3);
        } else {
            hvs_pack_put_varint(buf, cap, n, obs | unit << 1);
            hvs_pack_put_varint(buf, cap, n, zigzag(r->issued_at));
        }
        double x[WX_NUMBERS];
        wx_numbers(r, x);
        uint64_t mask = 0;
        for (int j = 0; j < WX_NUMBERS; j++)
            mask |= isnan(x[j]) ? 0 : 1u << j;
        hvs_pack_put_varint(buf, cap, n, mask);
        for (int j = 0; j < WX_NUMBERS; j++)
            if (mask & (1u << j))
                hvs_pack_put_double(buf, cap, n, x[j]);
    }
}

/* The records of hour w->hour (already set); -1 on anything put_wx_body does not write. */
static int get_wx_body(const unsigned char **p, const unsigned char *end, hvs_feat_wx_hour_t *w) {
    uint64_t count;
    if (hvs_pack_get_varint(p, end, &count) || count > HVS_FEAT_WX_KEEP)
        return -1;
    w->n = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t x, mask;
        if (hvs_pack_get_varint(p, end, &x))
            return -1;
        static const int64_t per[3] = {1, 1000, HVS_MS_HOUR};
        unsigned unit = (unsigned)(x >> 1) & 3;
        int64_t at;
        uint64_t abs;
        if (unit == 3) {
            if (x >> 3 || hvs_pack_get_varint(p, end, &abs))
                return -1;
            at = unzigzag(abs);
        } else if (__builtin_mul_overflow(unzigzag(x >> 3), per[unit], &at) ||
                   __builtin_add_overflow(at, w->hour, &at)) {
            return -1;
        }
        if (hvs_pack_get_varint(p, end, &mask) || mask >= (1u << WX_NUMBERS))
            return -1;
        double v[WX_NUMBERS];
        for (int j = 0; j < WX_NUMBERS; j++) {
            v[j] = NAN;
            if ((mask & (1u << j)) && hvs_pack_get_double(p, end, &v[j]))
                return -1;
        }
        const hvs_feat_wx_t *pv = w->n > 0 ? &w->v[w->n - 1] : NULL;
        if (pv && !(pv->issued_at < at || (pv->issued_at == at && !pv->observed && (x & 1))))
            return -1; /* as hvs_feat_wx_add keeps them: by issue, a forecast before an
                          observation of the same instant, none twice */
        w->v[w->n++] = (hvs_feat_wx_t){.issued_at = at,
                                       .observed = x & 1,
                                       .temp = v[0],
                                       .rh = v[1],
                                       .cloud = v[2],
                                       .ghi = v[3],
                                       .wind = v[4]};
    }
    return 0;
}

size_t hvs_fs_encode_wx_block(const hvs_feat_wx_hour_t *ring, size_t block, char *buf, size_t cap) {
    size_t n = 0;
    hvs_pack_put_bytes(buf, cap, &n, (const char[]){WX_BLOCK_FORMAT}, 1);
    hvs_pack_put_varint(buf, cap, &n, block);
    for (size_t s = block * HVS_FS_BLOCK_HOURS; s < (block + 1) * HVS_FS_BLOCK_HOURS; s++) {
        const hvs_feat_wx_hour_t *w = &ring[s];
        if (w->hour == HVS_MS_NONE) {
            hvs_pack_put_varint(buf, cap, &n, 0);
            continue;
        }
        bool odd = w->hour % HVS_MS_HOUR != 0;
        hvs_pack_put_varint(buf, cap, &n, WH_PRESENT | (odd ? WH_ODD_HOUR : 0));
        hvs_pack_put_varint(
            buf, cap, &n,
            zigzag(odd ? w->hour : (w->hour / HVS_MS_HOUR - (int64_t)s) / HVS_FS_HOURS));
        put_wx_body(buf, cap, &n, w);
    }
    return n;
}

int hvs_fs_decode_wx_block(const char *v, size_t len, size_t block, hvs_feat_wx_hour_t *out) {
    const unsigned char *p = (const unsigned char *)v, *end = p + len;
    uint64_t k;
    if (block >= HVS_FS_BLOCKS || len < 1 || *p++ != WX_BLOCK_FORMAT ||
        hvs_pack_get_varint(&p, end, &k) || k != block)
        return -1;
    for (size_t i = 0; i < HVS_FS_BLOCK_HOURS; i++) {
        int64_t s = (int64_t)(block * HVS_FS_BLOCK_HOURS + i);
        hvs_feat_wx_hour_t *w = &out[i];
        uint64_t head, t;
        if (hvs_pack_get_varint(&p, end, &head))
            return -1;
        *w = (hvs_feat_wx_hour_t){.hour = HVS_MS_NONE};
        if (head == 0)
            continue;
        if (!(head & WH_PRESENT) || head > (WH_PRESENT | WH_ODD_HOUR) ||
            hvs_pack_get_varint(&p, end, &t))
            return -1;
        int64_t ht = unzigzag(t);
        if ((head & WH_ODD_HOUR) && ht < INT64_MIN + HVS_MS_HOUR)
            return -1; /* no slot: hvs_feat_slot's arithmetic needs an hour to spare */
        if (head & WH_ODD_HOUR)
            w->hour = ht;
        else if (ht > (INT64_MAX / HVS_MS_HOUR - s) / HVS_FS_HOURS ||
                 ht < (INT64_MIN / HVS_MS_HOUR) / HVS_FS_HOURS)
            return -1;
        else
            w->hour = (ht * HVS_FS_HOURS + s) * HVS_MS_HOUR;
        if (w->hour == HVS_MS_NONE || SLOT(w->hour) != (size_t)s || get_wx_body(&p, end, w))
            return -1;
    }
    return p == end ? 0 : -1;
}

/* ---- a ring's hours by UTC day ---------------------------------------------------------------
 * For a ring of any length (the trainer's window): field "d<day>" (day = hour / 24 h, floor)
 * holds the ring's hours of that day. Value: byte 2 (the format), zigzag varint day (a value
 * under another day's name is refused), then per hour of the day, 0..23, a varint mask as the
 * blocks' (0: the ring holds no hour there), with BH_ODD_HOUR the zigzag varint of the hour's
 * milliseconds, then revision, numbers and rooms as the blocks'. Keyed by the day itself, not a
 * slot, so the bytes do not depend on the ring's length: a window changed between a save and a
 * load places every stored hour where the new ring wants it. */
#define DAY_FORMAT 2
#define DAY_MS (24 * HVS_MS_HOUR)

int64_t hvs_fs_day_of(hvs_ms_t hour) {
    int64_t q = hour / DAY_MS; /* floor, without negating (INT64_MIN) */
    return hour % DAY_MS < 0 ? q - 1 : q;
}

size_t hvs_fs_encode_day(const hvs_feat_hour_t *ring, size_t nslots, int64_t day, char *buf,
                         size_t cap) {
    size_t n = 0, held = 0;
    hvs_pack_put_bytes(buf, cap, &n, (const char[]){DAY_FORMAT}, 1);
    hvs_pack_put_varint(buf, cap, &n, zigzag(day));
    for (int64_t i = 0; i < 24; i++) {
        hvs_ms_t at = (day * 24 + i) * HVS_MS_HOUR;
        const hvs_feat_hour_t *h = &ring[hvs_feat_slot(at, nslots)];
        /* the slot may hold another day's hour (one ring earlier or later) */
        if (h->hour == HVS_MS_NONE || h->hour < at || h->hour >= at + HVS_MS_HOUR) {
            hvs_pack_put_varint(buf, cap, &n, 0);
            continue;
        }
        double x[BH_NUMBERS];
        hour_numbers(h, x);
        uint64_t mask = hour_mask(h, x);
        hvs_pack_put_varint(buf, cap, &n, mask);
        if (mask & BH_ODD_HOUR)
            hvs_pack_put_varint(buf, cap, &n, zigzag(h->hour));
        put_hour_body(buf, cap, &n, h, mask, x);
        held++;
    }
    return held ? n : 0;
}

int hvs_fs_decode_day(const char *v, size_t len, int64_t day, hvs_feat_hour_t *out) {
    const unsigned char *p = (const unsigned char *)v, *end = p + len;
    uint64_t d;
    if (len < 1 || *p++ != DAY_FORMAT || hvs_pack_get_varint(&p, end, &d) || unzigzag(d) != day ||
        day > INT64_MAX / DAY_MS - 1 || day < INT64_MIN / DAY_MS + 1)
        return -1;
    for (int64_t i = 0; i < 24; i++) {
        hvs_feat_hour_t *h = &out[i];
        hvs_ms_t at = (day * 24 + i) * HVS_MS_HOUR;
        uint64_t mask, t;
        if (hvs_pack_get_varint(&p, end, &mask))
            return -1;
        *h = (hvs_feat_hour_t){.hour = HVS_MS_NONE};
        if (mask == 0)
            continue;
        if (!(mask & BH_PRESENT) || mask >= (BH_ROOMS << 1))
            return -1;
        h->hour = at;
        if ((mask & BH_ODD_HOUR) && hvs_pack_get_varint(&p, end, &t))
            return -1;
        if (mask & BH_ODD_HOUR)
            h->hour = unzigzag(t);
        if (h->hour < at || h->hour >= at + HVS_MS_HOUR || get_hour_body(&p, end, mask, h))
            return -1;
    }
    return p == end ? 0 : -1;
}

/* The weather of a ring of any length by UTC day, the same way: field "d<day>", value byte 4
 * (the format), zigzag varint day, then per hour of the day, 0..23, a varint as the weather
 * blocks' slots (0: the ring holds no hour there; WH_PRESENT, | WH_ODD_HOUR with the zigzag
 * varint of the hour's milliseconds) and the hour's records (wx_body). */
#define WX_DAY_FORMAT 4

size_t hvs_fs_encode_wx_day(const hvs_feat_wx_hour_t *ring, size_t nslots, int64_t day, char *buf,
                            size_t cap) {
    size_t n = 0, held = 0;
    hvs_pack_put_bytes(buf, cap, &n, (const char[]){WX_DAY_FORMAT}, 1);
    hvs_pack_put_varint(buf, cap, &n, zigzag(day));
    for (int64_t i = 0; i < 24; i++) {
        hvs_ms_t at = (day * 24 + i) * HVS_MS_HOUR;
        const hvs_feat_wx_hour_t *w = &ring[hvs_feat_slot(at, nslots)];
        if (w->hour == HVS_MS_NONE || w->hour < at || w->hour >= at + HVS_MS_HOUR) {
            hvs_pack_put_varint(buf, cap, &n, 0);
            continue;
        }
        bool odd = w->hour != at;
        hvs_pack_put_varint(buf, cap, &n, WH_PRESENT | (odd ? WH_ODD_HOUR : 0));
        if (odd)
            hvs_pack_put_varint(buf, cap, &n, zigzag(w->hour));
        put_wx_body(buf, cap, &n, w);
        held++;
    }
    return held ? n : 0;
}

int hvs_fs_decode_wx_day(const char *v, size_t len, int64_t day, hvs_feat_wx_hour_t *out) {
    const unsigned char *p = (const unsigned char *)v, *end = p + len;
    uint64_t d;
    if (len < 1 || *p++ != WX_DAY_FORMAT || hvs_pack_get_varint(&p, end, &d) ||
        unzigzag(d) != day || day > INT64_MAX / DAY_MS - 1 || day < INT64_MIN / DAY_MS + 1)
        return -1;
    for (int64_t i = 0; i < 24; i++) {
        hvs_feat_wx_hour_t *w = &out[i];
        hvs_ms_t at = (day * 24 + i) * HVS_MS_HOUR;
        uint64_t head, t;
        *w = (hvs_feat_wx_hour_t){.hour = HVS_MS_NONE};
        if (hvs_pack_get_varint(&p, end, &head))
            return -1;
        if (head == 0)
            continue;
        if (!(head & WH_PRESENT) || head > (WH_PRESENT | WH_ODD_HOUR))
            return -1;
        w->hour = at;
        if (head & WH_ODD_HOUR) {
            if (hvs_pack_get_varint(&p, end, &t))
                return -1;
            w->hour = unzigzag(t);
        }
        if (w->hour < at || w->hour >= at + HVS_MS_HOUR || get_wx_body(&p, end, w))
            return -1;
    }
    return p == end ? 0 : -1;
}

/* ---- Redis ---------------------------------------------------------------------------------- */

/* Queue "HSET key b<k> block ..." of the weather ring's blocks with a marked slot (an all-empty
 * block is left out), after "DEL key" when the ring was loaded with fields of one slot each (the
 * text before blocks; its load marked every slot). */
static int hset_wx_blocks(hvs_redis_batch_t *batch, const char *key, hvs_fs_building_t *b,
                          hvs_err_t *err) {
    enum { BMAX = 2 + 10 + HVS_FS_BLOCK_HOURS * WX_SLOT_MAX };
    const char *argv[2 + 2 * HVS_FS_BLOCKS];
    size_t lens[sizeof argv / sizeof *argv];
    char names[HVS_FS_BLOCKS][8];
    bool write[HVS_FS_BLOCKS];
    size_t nwrite = 0;
    for (size_t k = 0; k < HVS_FS_BLOCKS; k++) {
        bool marked = false, filled = false;
        for (size_t s = k * HVS_FS_BLOCK_HOURS; s < (k + 1) * HVS_FS_BLOCK_HOURS; s++) {
            marked |= IS_MARKED(b->wx_dirty, s);
            filled |= b->wx[s].hour != HVS_MS_NONE;
        }
        nwrite += write[k] = marked && filled;
    }
    int rc = 0;
    if (b->wx_legacy) {
        const char *del[] = {"DEL", key};
        rc = hvs_redis_batch_add(batch, 2, del, NULL);
    }
    char *arena = nwrite ? malloc(nwrite * BMAX) : NULL;
    if (nwrite && !arena)
        rc = HVS_ENOMEM;
    size_t argc = 2, used = 0;
    for (size_t k = 0; rc == 0 && k < HVS_FS_BLOCKS; k++) {
        if (!write[k])
            continue;
        snprintf(names[k], sizeof names[k], "b%zu", k);
        argv[argc] = names[k], lens[argc++] = strlen(names[k]);
        argv[argc] = arena + used;
        lens[argc] = hvs_fs_encode_wx_block(b->wx, k, arena + used, BMAX);
        if (lens[argc++] > BMAX) /* BMAX bounds every block: a broken bound, not bad data */
            rc = HVS_EINVAL;
        used += BMAX;
    }
    if (rc == 0 && argc > 2) {
        argv[0] = "HSET", lens[0] = 4;
        argv[1] = key, lens[1] = strlen(key);
        rc = hvs_redis_batch_add(batch, (int)argc, argv, lens);
    }
    free(arena);
    if (rc)
        return rc == HVS_EINVAL
                   ? hvs_err_set(err, rc, "block_too_large", "feature state of %s", key)
                   : hvs_err_set(err, HVS_ENOMEM, "oom", "feature state of %s", key);
    memset(b->wx_dirty, 0, sizeof b->wx_dirty);
    b->wx_legacy = false;
    return 0;
}

/* Queue "HSET key b<k> block ..." of the blocks with a marked slot (an all-empty block is left
 * out: a slot never empties again), after "HDEL key 0 .. 335" when the entity was loaded with
 * fields of one slot each (the format before blocks; its load marked every slot). */
static int hset_blocks(hvs_redis_batch_t *batch, const char *key, hvs_fs_entity_t *e,
                       hvs_err_t *err) {
    const char
        *argv[2 + 2 * HVS_FS_BLOCKS > 2 + HVS_FS_HOURS ? 2 + 2 * HVS_FS_BLOCKS : 2 + HVS_FS_HOURS];
    size_t lens[sizeof argv / sizeof *argv];
    char names[HVS_FS_HOURS][8];
    int rc = 0;
    if (e->legacy) {
        argv[0] = "HDEL", argv[1] = key;
        for (size_t s = 0; s < HVS_FS_HOURS; s++) {
            snprintf(names[s], sizeof names[s], "%zu", s);
            argv[2 + s] = names[s];
        }
        rc = hvs_redis_batch_add(batch, 2 + HVS_FS_HOURS, argv, NULL);
    }
    bool write[HVS_FS_BLOCKS];
    size_t nwrite = 0;
    for (size_t k = 0; k < HVS_FS_BLOCKS; k++) {
        bool marked = false, filled = false;
        for (size_t s = k * HVS_FS_BLOCK_HOURS; s < (k + 1) * HVS_FS_BLOCK_HOURS; s++) {
            marked |= IS_MARKED(e->dirty, s);
            filled |= e->hours[s].hour != HVS_MS_NONE;
        }
        nwrite += write[k] = marked && filled;
    }
    char *arena = nwrite ? malloc(nwrite * BLOCK_MAX) : NULL;
    if (nwrite && !arena)
        rc = HVS_ENOMEM;
    size_t argc = 2, used = 0;
    for (size_t k = 0; rc == 0 && k < HVS_FS_BLOCKS; k++) {
        if (!write[k])
            continue;
        snprintf(names[k], sizeof names[k], "b%zu", k);
        argv[argc] = names[k], lens[argc++] = strlen(names[k]);
        argv[argc] = arena + used;
        lens[argc] = hvs_fs_encode_block(e->hours, k, arena + used, BLOCK_MAX);
        if (lens[argc++] > BLOCK_MAX) /* BLOCK_MAX bounds every block: a broken bound */
            rc = HVS_EINVAL;
        used += BLOCK_MAX;
    }
    if (rc == 0 && argc > 2) {
        argv[0] = "HSET", lens[0] = 4;
        argv[1] = key, lens[1] = strlen(key);
        rc = hvs_redis_batch_add(batch, (int)argc, argv, lens);
    }
    free(arena);
    if (rc)
        return rc == HVS_EINVAL
                   ? hvs_err_set(err, rc, "block_too_large", "feature state of %s", key)
                   : hvs_err_set(err, HVS_ENOMEM, "oom", "feature state of %s", key);
    memset(e->dirty, 0, sizeof e->dirty);
    e->legacy = false;
    return 0;
}

static bool any_marked(const uint64_t *marks) {
    uint64_t any = 0;
    for (size_t w = 0; w < (HVS_FS_HOURS + 63) / 64; w++)
        any |= marks[w];
    return any != 0;
}

int hvs_fs_save(hvs_redis_batch_t *batch, hvs_fs_building_t *b, hvs_err_t *err) {
    char key[700];
    int rc = 0;
    for (size_t i = 0; i < b->nents && rc == 0; i++) {
        if (!any_marked(b->ents[i]->dirty)) /* before formatting its key: most are clean */
            continue;
        if (hvs_redis_key(key, sizeof key, b->id, err, "%s:h:%s", b->ns, b->ents[i]->id) < 0)
            return HVS_EINVAL;
        rc = hset_blocks(batch, key, b->ents[i], err);
    }
    /* formatted even when clean: it also checks the building's id (one per building) */
    if (rc == 0 && hvs_redis_key(key, sizeof key, b->id, err, "%s:wx", b->ns) < 0)
        return HVS_EINVAL;
    if (rc == 0 && any_marked(b->wx_dirty))
        rc = hset_wx_blocks(batch, key, b, err);
    if (rc == 0 && b->meta_dirty) {
        char part[48];
        snprintf(part, sizeof part, "hvs:%s:part:%d", b->ns, (int)b->partition);
        const char *a1[] = {"SADD", part, b->id};
        char epoch[48];
        snprintf(epoch, sizeof epoch, "hvs:%s:epoch:%d", b->ns, (int)b->partition);
        const char *a2[] = {"SET", epoch, "1"};
        if (hvs_redis_batch_add(batch, 3, a1, NULL) || hvs_redis_batch_add(batch, 3, a2, NULL))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
        if (b->nents) {
            if (hvs_redis_key(key, sizeof key, b->id, err, "%s:ents", b->ns) < 0)
                return HVS_EINVAL;
            const char **argv = malloc((b->nents + 2) * sizeof *argv);
            if (!argv)
                return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
            argv[0] = "SADD";
            argv[1] = key;
            for (size_t i = 0; i < b->nents; i++)
                argv[i + 2] = b->ents[i]->id;
            rc = hvs_redis_batch_add(batch, (int)b->nents + 2, argv, NULL);
            free(argv);
            if (rc)
                return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
        }
        b->meta_dirty = false;
    }
    return rc;
}

void hvs_fs_ids_free(char **ids, size_t n) {
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}

static const redisReply *reply(hvs_redis_batch_t *b, size_t i, int type) {
    const redisReply *r = hvs_redis_batch_reply(b, i);
    return r && r->type == type ? r : NULL;
}

int hvs_fs_partition(hvs_redis_t *r, hvs_redis_batch_t *batch, int32_t p, char ***ids, size_t *n,
                     bool *has_epoch, hvs_err_t *err) {
    return hvs_fs_partition_ns(r, batch, HVS_FS_NS, p, ids, n, has_epoch, err);
}

int hvs_fs_partition_ns(hvs_redis_t *r, hvs_redis_batch_t *batch, const char *ns, int32_t p,
                        char ***ids, size_t *n, bool *has_epoch, hvs_err_t *err) {
    char part[48], epoch[48];
    snprintf(part, sizeof part, "hvs:%.8s:part:%d", ns, (int)p);
    snprintf(epoch, sizeof epoch, "hvs:%.8s:epoch:%d", ns, (int)p);
    hvs_redis_batch_reset(batch);
    const char *a1[] = {"SMEMBERS", part};
    const char *a2[] = {"EXISTS", epoch};
    if (hvs_redis_batch_add(batch, 2, a1, NULL) || hvs_redis_batch_add(batch, 2, a2, NULL))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    int rc = hvs_redis_batch_exec(r, batch, err);
    if (rc)
        return rc;
    const redisReply *m = reply(batch, 0, REDIS_REPLY_ARRAY);
    const redisReply *e = reply(batch, 1, REDIS_REPLY_INTEGER);
    *has_epoch = e && e->integer == 1;
    *n = 0;
    *ids = calloc(m && m->elements ? m->elements : 1, sizeof **ids);
    if (!*ids)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "partition %d", (int)p);
    for (size_t i = 0; m && i < m->elements; i++) {
        const redisReply *x = m->element[i];
        hvs_err_t bad = {0};
        if (x->type == REDIS_REPLY_STRING && hvs_id_check_n(x->str, x->len, "building id", &bad)) {
            /* stored before ids were checked where they enter: left out loudly rather than
             * stopping every assignment of the partition */
            hvs_log_warn("featstore", "%s: stored building id skipped: %s", part, bad.msg);
            continue;
        }
        if (x->type == REDIS_REPLY_STRING && ((*ids)[*n] = strdup(x->str)))
            (*n)++;
    }
    return 0;
}

int hvs_fs_load(hvs_redis_t *r, hvs_redis_batch_t *batch, const char *id, int32_t partition,
                hvs_fs_building_t **out, hvs_err_t *err) {
    return hvs_fs_load_ns(r, batch, HVS_FS_NS, id, partition, out, err);
}

/* A stored field's block: k for "b<k>" (k < HVS_FS_BLOCKS, written as the save writes it),
 * -1 for another name (a text slot of the format before blocks: "<slot>"), -2 for a name that
 * starts like a block but is not one of them (nothing writes it: refused as bad state). */
static int block_of(const redisReply *f) {
    if (f->type != REDIS_REPLY_STRING || f->len < 1 || f->str[0] != 'b')
        return -1;
    char canon[8];
    unsigned long k = f->len > 1 && f->len < 6 ? strtoul(f->str + 1, NULL, 10) : HVS_FS_BLOCKS;
    if (k >= HVS_FS_BLOCKS)
        return -2;
    int n = snprintf(canon, sizeof canon, "b%lu", k);
    return (size_t)n == f->len && memcmp(canon, f->str, f->len) == 0 ? (int)k : -2;
}

/* A stored hour into its slot unless the slot holds a newer one (a key holds one copy of each
 * slot; this only makes the order of the fields irrelevant). */
static void take_hour(hvs_fs_entity_t *e, const hvs_feat_hour_t *h) {
    if (h->hour == HVS_MS_NONE)
        return;
    hvs_feat_hour_t *o = &e->hours[SLOT(h->hour)];
    if (o->hour == HVS_MS_NONE || h->hour > o->hour ||
        (h->hour == o->hour && h->revision >= o->revision))
        *o = *h;
}

int hvs_fs_load_ns(hvs_redis_t *r, hvs_redis_batch_t *batch, const char *ns, const char *id,
                   int32_t partition, hvs_fs_building_t **out, hvs_err_t *err) {
    char key[700];
    *out = NULL;
    hvs_redis_batch_reset(batch);
    char wkey[700];
    if (hvs_redis_key(key, sizeof key, id, err, "%s:ents", ns) < 0 ||
        hvs_redis_key(wkey, sizeof wkey, id, err, "%s:wx", ns) < 0)
        return HVS_EINVAL;
    const char *a1[] = {"SMEMBERS", key};
    const char *a2[] = {"HGETALL", wkey};
    if (hvs_redis_batch_add(batch, 2, a1, NULL) || hvs_redis_batch_add(batch, 2, a2, NULL))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    int rc = hvs_redis_batch_exec(r, batch, err);
    if (rc)
        return rc;
    const redisReply *ents = reply(batch, 0, REDIS_REPLY_ARRAY);
    const redisReply *wx = reply(batch, 1, REDIS_REPLY_ARRAY);
    if ((!ents || ents->elements == 0) && (!wx || wx->elements == 0))
        return 0;
    hvs_fs_building_t *b = hvs_fs_building_new_ns(id, partition, ns);
    if (!b)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", id);
    for (size_t i = 0; wx && i + 1 < wx->elements; i += 2) {
        hvs_feat_wx_hour_t got[HVS_FS_BLOCK_HOURS];
        const redisReply *f = wx->element[i], *v = wx->element[i + 1];
        int k = block_of(f);
        bool blocked = k >= 0;
        size_t n = blocked ? HVS_FS_BLOCK_HOURS : 1, block = blocked ? (size_t)k : 0;
        if (k == -2 || v->type != REDIS_REPLY_STRING ||
            (blocked ? hvs_fs_decode_wx_block(v->str, v->len, block, got)
                     : hvs_fs_decode_wx(v->str, v->len, &got[0]))) {
            hvs_fs_building_destroy(b);
            return hvs_err_set(err, HVS_ESERDE, "bad_state", "%s: field %s does not parse", wkey,
                               f->str ? f->str : "(null)");
        }
        b->wx_legacy |= !blocked;
        for (size_t j = 0; j < n; j++) { /* the newer hour of a slot, whatever the order */
            hvs_feat_wx_hour_t *o = got[j].hour == HVS_MS_NONE ? NULL : &b->wx[SLOT(got[j].hour)];
            if (o && (o->hour == HVS_MS_NONE || o->hour <= got[j].hour))
                *o = got[j];
        }
    }
    for (size_t i = 0; ents && i < ents->elements; i++)
        if (ents->element[i]->type != REDIS_REPLY_STRING ||
            !hvs_fs_entity(b, ents->element[i]->str, true)) {
            hvs_fs_building_destroy(b);
            return hvs_err_set(err, HVS_ENOMEM, "oom", "loading %s", id);
        }
    /* round 2: every entity's ring */
    hvs_redis_batch_reset(batch);
    for (size_t i = 0; i < b->nents; i++) {
        if (hvs_redis_key(key, sizeof key, id, err, "%s:h:%s", b->ns, b->ents[i]->id) < 0) {
            hvs_fs_building_destroy(b);
            return HVS_EINVAL;
        }
        const char *a3[] = {"HGETALL", key};
        if (hvs_redis_batch_add(batch, 2, a3, NULL)) {
            hvs_fs_building_destroy(b);
            return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
        }
    }
    rc = b->nents ? hvs_redis_batch_exec(r, batch, err) : 0;
    for (size_t i = 0; rc == 0 && i < b->nents; i++) {
        const redisReply *h = reply(batch, i, REDIS_REPLY_ARRAY);
        hvs_fs_entity_t *e = b->ents[i];
        for (size_t k = 0; h && k + 1 < h->elements; k += 2) {
            const redisReply *f = h->element[k], *v = h->element[k + 1];
            hvs_feat_hour_t got[HVS_FS_BLOCK_HOURS];
            int bk = block_of(f);
            bool blocked = bk >= 0;
            size_t n = blocked ? HVS_FS_BLOCK_HOURS : 1, block = blocked ? (size_t)bk : 0;
            if (bk == -2 || v->type != REDIS_REPLY_STRING ||
                (blocked ? hvs_fs_decode_block(v->str, v->len, block, got)
                         : hvs_fs_decode_hour(v->str, v->len, &got[0]))) {
                rc = hvs_err_set(err, HVS_ESERDE, "bad_state",
                                 "hvs:{%s}:%s:h:%s field %s does not parse", id, b->ns, e->id,
                                 f->str ? f->str : "(null)");
                break;
            }
            e->legacy |= !blocked;
            for (size_t j = 0; j < n; j++)
                take_hour(e, &got[j]);
        }
    }
    if (rc) {
        hvs_fs_building_destroy(b);
        return rc;
    }
    for (size_t i = 0; i < b->nents; i++) /* a slot-per-field entity is rewritten in blocks */
        memset(b->ents[i]->dirty, b->ents[i]->legacy ? 0xff : 0, sizeof b->ents[i]->dirty);
    memset(b->wx_dirty, b->wx_legacy ? 0xff : 0, sizeof b->wx_dirty); /* text: rewritten */
    b->meta_dirty = false;
    *out = b;
    return 0;
}
