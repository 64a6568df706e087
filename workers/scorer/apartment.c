/*
 * apartment.c - the scorer's per-apartment ring of hours, its binary blocks in Redis and the
 * text of earlier versions (apartment.h).
 */
#include "apartment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/fmt.h"
#include "hvs/pack.h"

/* ---- idents --------------------------------------------------------------------------------- */

uint16_t sc_ident_intern(sc_idents_t *t, const char *ident) {
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->s[i], ident) == 0)
            return (uint16_t)i;
    if (t->n >= SC_IDENT_NONE)
        return SC_IDENT_NONE;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **s = realloc(t->s, cap * sizeof *s);
        if (!s)
            return SC_IDENT_NONE;
        t->s = s;
        t->cap = cap;
    }
    if (!(t->s[t->n] = strdup(ident)))
        return SC_IDENT_NONE;
    return (uint16_t)t->n++;
}

const char *sc_ident_get(const sc_idents_t *t, uint16_t i) { return i < t->n ? t->s[i] : NULL; }

void sc_idents_free(sc_idents_t *t) {
    for (size_t i = 0; i < t->n; i++)
        free(t->s[i]);
    free(t->s);
    memset(t, 0, sizeof *t);
}

/* ---- the ring ------------------------------------------------------------------------------- */

void sc_agg_clear(sc_agg_t *g, hvs_ms_t hour) {
    memset(g, 0, sizeof *g);
    g->hour = hour;
    g->rev = -1;
    g->heat_kwh = NAN;
}

void sc_model_clear(sc_model_t *m, hvs_ms_t hour) {
    memset(m, 0, sizeof *m);
    m->hour = hour;
    m->rev = -1;
    m->observed = m->expected = m->residual_z = m->prob = NAN;
    m->resid_w = m->expected_w = NAN;
    m->outdoor_c = NAN;
    m->res_ident = m->cls_ident = SC_IDENT_NONE;
}

sc_apartment_t *sc_apartment_new(const char *id) {
    sc_apartment_t *a = calloc(1, sizeof *a);
    if (!a || !(a->id = strdup(id))) {
        free(a);
        return NULL;
    }
    for (size_t i = 0; i < SC_RING; i++) {
        sc_agg_clear(&a->slots[i].agg, HVS_MS_NONE);
        sc_model_clear(&a->slots[i].model, HVS_MS_NONE);
    }
    return a;
}

void sc_apartment_destroy(sc_apartment_t *a) {
    if (!a)
        return;
    free(a->id);
    free(a);
}

size_t sc_slot_index(hvs_ms_t hour) {
    int64_t h = hour / HVS_MS_HOUR;
    int64_t m = h % SC_RING;
    return (size_t)(m < 0 ? m + SC_RING : m);
}

sc_agg_t *sc_agg_get(sc_apartment_t *a, hvs_ms_t hour) {
    sc_agg_t *g = &a->slots[sc_slot_index(hour)].agg;
    return g->hour == hour && g->rev >= 0 ? g : NULL;
}

sc_model_t *sc_model_get(sc_apartment_t *a, hvs_ms_t hour) {
    sc_model_t *m = &a->slots[sc_slot_index(hour)].model;
    return m->hour == hour && m->rev >= 0 ? m : NULL;
}

static void mark(sc_apartment_t *a, size_t i) { a->dirty[i / 64] |= 1ULL << (i % 64); }

sc_agg_t *sc_agg_take(sc_apartment_t *a, hvs_ms_t hour) {
    size_t i = sc_slot_index(hour);
    sc_agg_t *g = &a->slots[i].agg;
    if (g->hour != HVS_MS_NONE && g->hour > hour)
        return NULL;
    if (g->hour != hour)
        sc_agg_clear(g, hour);
    mark(a, i);
    return g;
}

sc_model_t *sc_model_take(sc_apartment_t *a, hvs_ms_t hour) {
    size_t i = sc_slot_index(hour);
    sc_model_t *m = &a->slots[i].model;
    if (m->hour != HVS_MS_NONE && m->hour > hour)
        return NULL;
    if (m->hour != hour)
        sc_model_clear(m, hour);
    mark(a, i);
    return m;
}

int sc_room_intern(sc_apartment_t *a, const char *name) {
    for (int i = 0; i < a->nnames; i++)
        if (strcmp(a->names[i], name) == 0)
            return i;
    if (a->nnames == SC_ROOMS || strlen(name) >= SC_ROOM_NAME)
        return -1;
    snprintf(a->names[a->nnames], SC_ROOM_NAME, "%s", name);
    return a->nnames++;
}

/* ---- text ----------------------------------------------------------------------------------- */

typedef struct wr {
    char *p;
    size_t len, cap;
    bool full;
} wr_t;

static void put(wr_t *w, const char *s, size_t n) {
    if (w->full || w->len + n + 1 >= w->cap) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void put_sep(wr_t *w) {
    if (w->len)
        put(w, " ", 1);
}

static void put_num(wr_t *w, double v) {
    char b[HVS_FMT_MAX];
    put_sep(w);
    put(w, b, hvs_fmt_double(b, v));
}

static void put_int(wr_t *w, int64_t v) {
    char b[HVS_FMT_MAX];
    put_sep(w);
    put(w, b, hvs_fmt_int64(b, v));
}

/* Strings as <length>:<bytes>: ids may hold spaces. */
static void put_str(wr_t *w, const char *s) {
    size_t n = s ? strlen(s) : 0;
    put_int(w, (int64_t)n);
    put(w, ":", 1);
    if (n)
        put(w, s, n);
}

#define SC_TEXT_VERSION 2 /* 2: each half with its own hour */

size_t sc_slot_encode(const sc_apartment_t *a, const sc_idents_t *t, const sc_slot_t *s, char *buf,
                      size_t cap) {
    wr_t w = {buf, 0, cap, false};
    put_int(&w, SC_TEXT_VERSION);
    const sc_agg_t *g = &s->agg;
    put_int(&w, g->hour == HVS_MS_NONE ? -1 : g->hour);
    put_int(&w, g->rev);
    put_num(&w, g->heat_kwh);
    put_num(&w, g->rule_score);
    put_int(&w, g->nrooms);
    for (int i = 0; i < g->nrooms; i++) {
        const sc_room_t *r = &g->rooms[i];
        put_str(&w, a->names[r->name]);
        put_num(&w, r->temp_mean);
        for (int k = 0; k < 3; k++) /* min, max, std: in the text, never read (rules.h) */
            put_num(&w, NAN);
        put_num(&w, r->setpoint);
        put_num(&w, r->valve);
        put_int(&w, r->changes);
        put_int(&w, r->seen);
    }
    put_int(&w, g->nfired);
    for (int i = 0; i < g->nfired; i++) {
        const sc_fired_t *f = &g->fired[i];
        put_int(&w, f->rule);
        put_str(&w, f->room >= 0 ? a->names[f->room] : "");
        put_int(&w, f->hours);
        put_int(&w, f->variant);
        put_num(&w, f->strength);
        put_num(&w, f->a);
        put_num(&w, f->b);
        put_num(&w, f->c);
        put_num(&w, f->d);
    }
    const sc_model_t *m = &s->model;
    put_int(&w, m->hour == HVS_MS_NONE ? -1 : m->hour);
    put_int(&w, m->rev);
    put_num(&w, m->observed);
    put_num(&w, m->expected);
    put_num(&w, m->residual_z);
    put_num(&w, m->resid_w);
    put_num(&w, m->expected_w);
    put_num(&w, m->prob);
    put_num(&w, m->outdoor_c);
    put_num(&w, m->e_res);
    put_num(&w, m->e_cls);
    put_str(&w, sc_ident_get(t, m->res_ident));
    put_str(&w, sc_ident_get(t, m->cls_ident));
    put_int(&w, m->explained);
    put_int(&w, m->ncontrib);
    for (int i = 0; i < m->ncontrib; i++) {
        put_int(&w, m->contrib[i].feature);
        put_num(&w, m->contrib[i].value);
        put_num(&w, m->contrib[i].contrib);
    }
    put(&w, " ;", 2); /* the end: a text cut anywhere is refused */
    if (w.full)
        return 0;
    buf[w.len] = '\0';
    return w.len;
}

/* Each half of `in` replaces the ring's when it holds a newer hour, or the same hour at a higher
 * revision (text and blocks of one slot may both be stored during an upgrade: the newest wins,
 * whatever order they load in). */
static void merge_slot(sc_slot_t *ring, const sc_slot_t *in) {
    const sc_agg_t *g = &in->agg;
    if (g->hour != HVS_MS_NONE && (ring->agg.hour == HVS_MS_NONE || g->hour > ring->agg.hour ||
                                   (g->hour == ring->agg.hour && g->rev > ring->agg.rev)))
        ring->agg = *g;
    const sc_model_t *m = &in->model;
    if (m->hour != HVS_MS_NONE && (ring->model.hour == HVS_MS_NONE || m->hour > ring->model.hour ||
                                   (m->hour == ring->model.hour && m->rev > ring->model.rev)))
        ring->model = *m;
}

typedef struct rd {
    const char *p, *end;
    bool bad;
} rd_t;

static void skip_sep(rd_t *r) {
    if (r->p < r->end && *r->p == ' ')
        r->p++;
}

static double get_num(rd_t *r) {
    skip_sep(r);
    char tmp[HVS_FMT_MAX + 1];
    size_t n = 0;
    while (r->p + n < r->end && r->p[n] != ' ' && r->p[n] != ':' && n < HVS_FMT_MAX)
        n++;
    if (n == 0 || n == HVS_FMT_MAX) {
        r->bad = true;
        return NAN;
    }
    memcpy(tmp, r->p, n);
    tmp[n] = '\0';
    char *e;
    double v = strtod(tmp, &e);
    if (*e)
        r->bad = true;
    r->p += n;
    return v;
}

static int64_t get_int(rd_t *r, int64_t lo, int64_t hi) {
    double v = get_num(r);
    if (!(v >= (double)lo && v <= (double)hi) || v != floor(v)) {
        r->bad = true;
        return lo;
    }
    return (int64_t)v;
}

/* A <length>:<bytes> string into out (cap bytes with the NUL). */
static void get_str(rd_t *r, char *out, size_t cap) {
    int64_t n = get_int(r, 0, (int64_t)cap - 1);
    if (r->bad || r->p >= r->end || *r->p != ':' || r->end - r->p - 1 < n) {
        r->bad = true;
        out[0] = '\0';
        return;
    }
    r->p++;
    memcpy(out, r->p, (size_t)n);
    out[n] = '\0';
    r->p += n;
}

int sc_slot_decode(sc_apartment_t *a, sc_idents_t *t, const char *text, size_t len) {
    rd_t r = {text, text + len, false};
    sc_slot_t s;
    if (get_int(&r, 0, 1000) != SC_TEXT_VERSION)
        return -1;
    hvs_ms_t ah = get_int(&r, -1, INT64_MAX / 2);
    if (r.bad || (ah != -1 && ah % HVS_MS_HOUR))
        return -1;
    sc_agg_clear(&s.agg, ah == -1 ? HVS_MS_NONE : ah);
    sc_agg_t *g = &s.agg;
    g->rev = (int32_t)get_int(&r, -1, INT32_MAX);
    g->heat_kwh = (float)get_num(&r);
    g->rule_score = (float)get_num(&r);
    g->nrooms = (uint8_t)get_int(&r, 0, SC_ROOMS);
    char name[256];
    for (int i = 0; i < g->nrooms && !r.bad; i++) {
        sc_room_t *rm = &g->rooms[i];
        get_str(&r, name, sizeof name);
        int ix = sc_room_intern(a, name);
        if (ix < 0)
            return -1;
        rm->name = (uint8_t)ix;
        rm->temp_mean = (float)get_num(&r);
        for (int k = 0; k < 3; k++) /* min, max, std: no rule reads them */
            get_num(&r);
        rm->setpoint = (float)get_num(&r);
        rm->valve = (float)get_num(&r);
        rm->changes = (uint16_t)get_int(&r, 0, UINT16_MAX);
        rm->seen = (uint16_t)get_int(&r, 0, UINT16_MAX);
    }
    g->nfired = (uint8_t)get_int(&r, 0, SC_FIRED_MAX);
    for (int i = 0; i < g->nfired && !r.bad; i++) {
        sc_fired_t *f = &g->fired[i];
        f->rule = (uint8_t)get_int(&r, 0, 255);
        get_str(&r, name, sizeof name);
        int ix = name[0] ? sc_room_intern(a, name) : -1;
        if (name[0] && ix < 0)
            return -1;
        f->room = (int8_t)ix;
        f->hours = (uint8_t)get_int(&r, 0, 255);
        f->variant = (uint8_t)get_int(&r, 0, 255);
        f->strength = (float)get_num(&r);
        f->a = (float)get_num(&r);
        f->b = (float)get_num(&r);
        f->c = (float)get_num(&r);
        f->d = (float)get_num(&r);
    }
    hvs_ms_t mh = get_int(&r, -1, INT64_MAX / 2);
    if (r.bad || (mh != -1 && mh % HVS_MS_HOUR))
        return -1;
    sc_model_clear(&s.model, mh == -1 ? HVS_MS_NONE : mh);
    sc_model_t *m = &s.model;
    m->rev = (int32_t)get_int(&r, -1, INT32_MAX);
    m->observed = (float)get_num(&r);
    m->expected = (float)get_num(&r);
    m->residual_z = (float)get_num(&r);
    m->resid_w = (float)get_num(&r);
    m->expected_w = (float)get_num(&r);
    m->prob = (float)get_num(&r);
    m->outdoor_c = (float)get_num(&r);
    m->e_res = (float)get_num(&r);
    m->e_cls = (float)get_num(&r);
    char ident[512];
    get_str(&r, ident, sizeof ident);
    m->res_ident = ident[0] ? sc_ident_intern(t, ident) : SC_IDENT_NONE;
    get_str(&r, ident, sizeof ident);
    m->cls_ident = ident[0] ? sc_ident_intern(t, ident) : SC_IDENT_NONE;
    m->explained = (uint8_t)get_int(&r, 0, 2);
    m->ncontrib = (uint8_t)get_int(&r, 0, SC_CONTRIB_MAX);
    for (int i = 0; i < m->ncontrib && !r.bad; i++) {
        m->contrib[i].feature = (int16_t)get_int(&r, -1, INT16_MAX);
        m->contrib[i].value = (float)get_num(&r);
        m->contrib[i].contrib = (float)get_num(&r);
    }
    if (r.bad || r.end - r.p != 2 || memcmp(r.p, " ;", 2) != 0)
        return -1;
    hvs_ms_t any = s.agg.hour != HVS_MS_NONE ? s.agg.hour : s.model.hour;
    if (any == HVS_MS_NONE || (s.agg.hour != HVS_MS_NONE && s.model.hour != HVS_MS_NONE &&
                               sc_slot_index(s.agg.hour) != sc_slot_index(s.model.hour)))
        return -1;
    merge_slot(&a->slots[sc_slot_index(any)], &s);
    return 0;
}

/* ---- blocks --------------------------------------------------------------------------------- */

enum { SB_AGG = 1, SB_MODEL = 2, SB_AGG_ODD = 4, SB_MODEL_ODD = 8 };
#define BLOCK_FORMAT 1
#define BLOCK_IDENT_MAX 511 /* longest ident a block holds (the text format's bound) */

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t z) { return (int64_t)(z >> 1) ^ -(int64_t)(z & 1); }

typedef struct bw {
    char *buf;
    size_t cap, n;
} bw_t;

static void bw_varint(bw_t *w, uint64_t v) { hvs_pack_put_varint(w->buf, w->cap, &w->n, v); }
static void bw_float(bw_t *w, float v) { hvs_pack_put_float(w->buf, w->cap, &w->n, v); }
static void bw_str(bw_t *w, const char *s) {
    size_t len = strlen(s);
    bw_varint(w, len);
    hvs_pack_put_bytes(w->buf, w->cap, &w->n, s, len);
}

/* A whole hour as its ring cycle (hour / 1 h = slot + cycle * SC_RING, sc_slot_index's floor
 * modulo), any other as its milliseconds. */
static void bw_hour(bw_t *w, hvs_ms_t hour, size_t slot) {
    bool whole = hour % HVS_MS_HOUR == 0;
    bw_varint(w, zigzag(whole ? (hour / HVS_MS_HOUR - (int64_t)slot) / SC_RING : hour));
}

static void bw_agg(bw_t *w, const sc_agg_t *g) {
    bw_varint(w, (uint64_t)((int64_t)g->rev + 1));
    bw_float(w, g->heat_kwh);
    bw_float(w, g->rule_score);
    bw_varint(w, g->nrooms);
    for (int i = 0; i < g->nrooms; i++) {
        const sc_room_t *r = &g->rooms[i];
        bw_varint(w, r->name);
        bw_float(w, r->temp_mean);
        bw_float(w, r->setpoint);
        bw_float(w, r->valve);
        bw_varint(w, r->changes);
        bw_varint(w, r->seen);
    }
    bw_varint(w, g->nfired);
    for (int i = 0; i < g->nfired; i++) {
        const sc_fired_t *f = &g->fired[i];
        bw_varint(w, f->rule);
        bw_varint(w, (uint64_t)(f->room + 1));
        bw_varint(w, f->hours);
        bw_varint(w, f->variant);
        bw_float(w, f->strength);
        bw_float(w, f->a);
        bw_float(w, f->b);
        bw_float(w, f->c);
        bw_float(w, f->d);
    }
}

/* The block's ident table: the state's ident indices its model halves use, in first use. */
typedef struct block_idents {
    uint16_t of[2 * SC_BLOCK_HOURS];
    size_t n;
} block_idents_t;

static uint64_t local_ident(block_idents_t *bi, uint16_t ident) {
    if (ident == SC_IDENT_NONE)
        return 0;
    for (size_t i = 0; i < bi->n; i++)
        if (bi->of[i] == ident)
            return i + 1;
    bi->of[bi->n++] = ident;
    return bi->n;
}

static void bw_model(bw_t *w, const sc_model_t *m, block_idents_t *bi) {
    bw_varint(w, (uint64_t)((int64_t)m->rev + 1));
    const float x[] = {m->observed, m->expected,  m->residual_z, m->resid_w, m->expected_w,
                       m->prob,     m->outdoor_c, m->e_res,      m->e_cls};
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        bw_float(w, x[i]);
    bw_varint(w, local_ident(bi, m->res_ident));
    bw_varint(w, local_ident(bi, m->cls_ident));
    bw_varint(w, m->explained);
    bw_varint(w, m->ncontrib);
    for (int i = 0; i < m->ncontrib; i++) {
        bw_varint(w, (uint64_t)(m->contrib[i].feature + 1));
        bw_float(w, m->contrib[i].value);
        bw_float(w, m->contrib[i].contrib);
    }
}

size_t sc_block_encode(const sc_apartment_t *a, const sc_idents_t *t, size_t block, char *buf,
                       size_t cap) {
    bw_t w = {buf, cap, 0};
    const sc_slot_t *slots = &a->slots[block * SC_BLOCK_HOURS];
    /* the idents first: the table precedes the slots that index it */
    block_idents_t bi = {.n = 0};
    for (size_t i = 0; i < SC_BLOCK_HOURS; i++)
        if (slots[i].model.hour != HVS_MS_NONE) {
            local_ident(&bi, slots[i].model.res_ident);
            local_ident(&bi, slots[i].model.cls_ident);
        }
    hvs_pack_put_bytes(buf, cap, &w.n, (const char[]){BLOCK_FORMAT}, 1);
    bw_varint(&w, block);
    bw_varint(&w, a->nnames);
    for (int i = 0; i < a->nnames; i++)
        bw_str(&w, a->names[i]);
    bw_varint(&w, bi.n);
    for (size_t i = 0; i < bi.n; i++) {
        const char *s = sc_ident_get(t, bi.of[i]);
        bw_str(&w, s ? s : "");
    }
    for (size_t i = 0; i < SC_BLOCK_HOURS; i++) {
        const sc_agg_t *g = &slots[i].agg;
        const sc_model_t *m = &slots[i].model;
        size_t slot = block * SC_BLOCK_HOURS + i;
        uint64_t mask = 0;
        if (g->hour != HVS_MS_NONE)
            mask |= SB_AGG | (g->hour % HVS_MS_HOUR ? SB_AGG_ODD : 0);
        if (m->hour != HVS_MS_NONE)
            mask |= SB_MODEL | (m->hour % HVS_MS_HOUR ? SB_MODEL_ODD : 0);
        bw_varint(&w, mask);
        if (mask & SB_AGG) {
            bw_hour(&w, g->hour, slot);
            bw_agg(&w, g);
        }
        if (mask & SB_MODEL) {
            bw_hour(&w, m->hour, slot);
            bw_model(&w, m, &bi);
        }
    }
    return w.n;
}

typedef struct br {
    const unsigned char *p, *end;
    bool bad;
} br_t;

static uint64_t br_varint(br_t *r, uint64_t max) {
    uint64_t v = 0;
    if (r->bad || hvs_pack_get_varint(&r->p, r->end, &v) || v > max) {
        r->bad = true;
        return 0;
    }
    return v;
}

static float br_float(br_t *r) {
    float v = NAN;
    if (r->bad || hvs_pack_get_float(&r->p, r->end, &v))
        r->bad = true;
    return v;
}

/* A string of at most max bytes: *s points into the block, not terminated. */
static size_t br_str(br_t *r, size_t max, const char **s) {
    size_t len = (size_t)br_varint(r, max);
    if (r->bad || (size_t)(r->end - r->p) < len) {
        r->bad = true;
        return 0;
    }
    *s = (const char *)r->p;
    r->p += len;
    return len;
}

static hvs_ms_t br_hour(br_t *r, bool odd, size_t slot) {
    int64_t v = unzigzag(br_varint(r, UINT64_MAX));
    if (odd)
        return v;
    int64_t s = (int64_t)slot;
    if (v > (INT64_MAX / HVS_MS_HOUR - s) / SC_RING || v < (INT64_MIN / HVS_MS_HOUR) / SC_RING) {
        r->bad = true;
        return HVS_MS_NONE;
    }
    return (v * SC_RING + s) * HVS_MS_HOUR;
}

static void br_agg(br_t *r, sc_agg_t *g, size_t nnames) {
    g->rev = (int32_t)((int64_t)br_varint(r, (uint64_t)INT32_MAX + 1) - 1);
    g->heat_kwh = br_float(r);
    g->rule_score = br_float(r);
    g->nrooms = (uint8_t)br_varint(r, SC_ROOMS);
    for (int i = 0; i < g->nrooms && !r->bad; i++) {
        sc_room_t *m = &g->rooms[i];
        m->name = (uint8_t)br_varint(r, nnames ? nnames - 1 : 0);
        r->bad |= nnames == 0;
        m->temp_mean = br_float(r);
        m->setpoint = br_float(r);
        m->valve = br_float(r);
        m->changes = (uint16_t)br_varint(r, UINT16_MAX);
        m->seen = (uint16_t)br_varint(r, UINT16_MAX);
    }
    g->nfired = (uint8_t)br_varint(r, SC_FIRED_MAX);
    for (int i = 0; i < g->nfired && !r->bad; i++) {
        sc_fired_t *f = &g->fired[i];
        f->rule = (uint8_t)br_varint(r, UINT8_MAX);
        f->room = (int8_t)((int)br_varint(r, nnames) - 1);
        f->hours = (uint8_t)br_varint(r, UINT8_MAX);
        f->variant = (uint8_t)br_varint(r, UINT8_MAX);
        f->strength = br_float(r);
        f->a = br_float(r);
        f->b = br_float(r);
        f->c = br_float(r);
        f->d = br_float(r);
    }
}

static void br_model(br_t *r, sc_model_t *m, const uint16_t *idents, size_t nidents) {
    m->rev = (int32_t)((int64_t)br_varint(r, (uint64_t)INT32_MAX + 1) - 1);
    float *x[] = {&m->observed, &m->expected,  &m->residual_z, &m->resid_w, &m->expected_w,
                  &m->prob,     &m->outdoor_c, &m->e_res,      &m->e_cls};
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        *x[i] = br_float(r);
    uint64_t res = br_varint(r, nidents), cls = br_varint(r, nidents);
    m->res_ident = res ? idents[res - 1] : SC_IDENT_NONE;
    m->cls_ident = cls ? idents[cls - 1] : SC_IDENT_NONE;
    m->explained = (uint8_t)br_varint(r, 2);
    m->ncontrib = (uint8_t)br_varint(r, SC_CONTRIB_MAX);
    for (int i = 0; i < m->ncontrib && !r->bad; i++) {
        m->contrib[i].feature = (int16_t)((int64_t)br_varint(r, (uint64_t)INT16_MAX + 1) - 1);
        m->contrib[i].value = br_float(r);
        m->contrib[i].contrib = br_float(r);
    }
}

int sc_block_decode(sc_apartment_t *a, sc_idents_t *t, size_t block, const char *v, size_t len) {
    br_t r = {(const unsigned char *)v, (const unsigned char *)v + len, false};
    if (block >= SC_BLOCKS || len < 1 || *r.p++ != BLOCK_FORMAT ||
        br_varint(&r, SC_BLOCKS) != block)
        return -1;
    /* the names: read first, interned only once the whole block has parsed */
    const char *names[SC_ROOMS];
    size_t name_len[SC_ROOMS];
    size_t nnames = (size_t)br_varint(&r, SC_ROOMS);
    for (size_t i = 0; i < nnames && !r.bad; i++) {
        names[i] = "";
        name_len[i] = br_str(&r, SC_ROOM_NAME - 1, &names[i]);
    }
    /* the idents too: slots hold the block's own indices until then */
    size_t nidents = (size_t)br_varint(&r, 2 * SC_BLOCK_HOURS);
    uint16_t local[2 * SC_BLOCK_HOURS];
    const char *ident[2 * SC_BLOCK_HOURS];
    size_t ident_len[2 * SC_BLOCK_HOURS];
    for (size_t i = 0; i < nidents && !r.bad; i++) {
        local[i] = (uint16_t)i;
        ident[i] = "";
        ident_len[i] = br_str(&r, BLOCK_IDENT_MAX, &ident[i]);
    }
    sc_slot_t got[SC_BLOCK_HOURS];
    for (size_t i = 0; i < SC_BLOCK_HOURS && !r.bad; i++) {
        size_t slot = block * SC_BLOCK_HOURS + i;
        sc_agg_clear(&got[i].agg, HVS_MS_NONE);
        sc_model_clear(&got[i].model, HVS_MS_NONE);
        uint64_t mask = br_varint(&r, SB_AGG | SB_MODEL | SB_AGG_ODD | SB_MODEL_ODD);
        if (((mask & SB_AGG_ODD) && !(mask & SB_AGG)) ||
            ((mask & SB_MODEL_ODD) && !(mask & SB_MODEL)))
            r.bad = true;
        if (mask & SB_AGG) {
            hvs_ms_t h = br_hour(&r, mask & SB_AGG_ODD, slot);
            br_agg(&r, &got[i].agg, nnames);
            got[i].agg.hour = h;
            r.bad |= h == HVS_MS_NONE || sc_slot_index(h) != slot;
        }
        if (mask & SB_MODEL) {
            hvs_ms_t h = br_hour(&r, mask & SB_MODEL_ODD, slot);
            br_model(&r, &got[i].model, local, nidents);
            got[i].model.hour = h;
            r.bad |= h == HVS_MS_NONE || sc_slot_index(h) != slot;
        }
    }
    if (r.bad || r.p != r.end)
        return -1;
    char tmp[SC_ROOMS][SC_ROOM_NAME];
    size_t added = 0;
    for (size_t i = 0; i < nnames; i++) {
        memcpy(tmp[i], names[i], name_len[i]);
        tmp[i][name_len[i]] = '\0';
        bool known = false;
        for (int k = 0; k < a->nnames; k++)
            known |= strcmp(a->names[k], tmp[i]) == 0;
        added += !known;
    }
    if (a->nnames + added > SC_ROOMS) /* before interning any: a left as it was */
        return -1;
    int map[SC_ROOMS];
    for (size_t i = 0; i < nnames; i++)
        map[i] = sc_room_intern(a, tmp[i]);
    uint16_t imap[2 * SC_BLOCK_HOURS];
    for (size_t i = 0; i < nidents; i++) {
        char id[BLOCK_IDENT_MAX + 1];
        memcpy(id, ident[i], ident_len[i]);
        id[ident_len[i]] = '\0';
        imap[i] = ident_len[i] ? sc_ident_intern(t, id) : SC_IDENT_NONE;
    }
    for (size_t i = 0; i < SC_BLOCK_HOURS; i++) {
        sc_model_t *m = &got[i].model;
        if (m->res_ident != SC_IDENT_NONE)
            m->res_ident = imap[m->res_ident];
        if (m->cls_ident != SC_IDENT_NONE)
            m->cls_ident = imap[m->cls_ident];
        sc_agg_t *g = &got[i].agg;
        for (int k = 0; k < g->nrooms; k++)
            g->rooms[k].name = (uint8_t)map[g->rooms[k].name];
        for (int k = 0; k < g->nfired; k++)
            if (g->fired[k].room >= 0)
                g->fired[k].room = (int8_t)map[g->fired[k].room];
        merge_slot(&a->slots[block * SC_BLOCK_HOURS + i], &got[i]);
    }
    return 0;
}
