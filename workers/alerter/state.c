/* state.c - the alerter's buildings, apartments, alert book and their Redis state (state.h). */
#include "state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/vec.h"

#define KEY_MAX 700
#define TEXT_MAX (HVS_ALERTBOOK_LINE_MAX + 512)

al_state_t *al_state_new(void) { return calloc(1, sizeof(al_state_t)); }

static void building_free(al_building_t *b) {
    if (!b)
        return;
    for (size_t i = 0; i < b->napts; i++) {
        al_apartment_fini(b->apts[i]);
        free(b->apts[i]->id);
        free(b->apts[i]);
    }
    for (size_t i = 0; i < b->nentries; i++)
        free(b->entries[i]);
    for (size_t i = 0; i < b->nheld; i++)
        free(b->held[i].value);
    free(b->held);
    free(b->apts);
    free(b->entries);
    free(b->id);
    free(b);
}

void al_state_destroy(al_state_t *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        building_free(s->b[i]);
    free(s->b);
    free(s->text);
    free(s);
}

al_building_t *al_state_building(al_state_t *s, const char *id, int32_t partition, bool create) {
    size_t at;
    bool found;
    HVS_VEC_BSEARCH_STR(s->b, s->n, ->id, id, at, found);
    if (found)
        return s->b[at];
    if (!create)
        return NULL;
    al_building_t **g = hvs_vec_grow(s->b, &s->cap, s->n + 1, sizeof *s->b, 64);
    if (!g)
        return NULL;
    s->b = g;
    al_building_t *b = calloc(1, sizeof *b);
    if (!b || !(b->id = strdup(id))) {
        free(b);
        return NULL;
    }
    b->partition = partition;
    hvs_vec_open(s->b, s->n, at, sizeof *s->b);
    s->b[at] = b;
    s->n++;
    return b;
}

/* ---- an apartment's waiting hours and water ---------------------------------------------- */

static size_t slot_of(hvs_ms_t hour, size_t cap) {
    return (size_t)(hour / HVS_MS_HOUR) & (cap - 1);
}

al_hour_t *al_apartment_hour(const al_apartment_t *a, hvs_ms_t hour) {
    if (!a->hcap)
        return NULL;
    al_hour_t *h = &a->hours[slot_of(hour, a->hcap)];
    return h->hour == hour ? h : NULL;
}

/* Double the hours' table until every waiting hour has a slot of its own. */
static int grow_hours(al_apartment_t *a) {
    for (size_t cap = a->hcap ? 2 * a->hcap : 32;; cap *= 2) {
        al_hour_t *t = calloc(cap, sizeof *t);
        if (!t)
            return HVS_ENOMEM;
        bool ok = true;
        for (size_t i = 0; i < a->hcap && ok; i++) {
            if (!a->hours[i].hour)
                continue;
            al_hour_t *d = &t[slot_of(a->hours[i].hour, cap)];
            if (d->hour)
                ok = false;
            else
                *d = a->hours[i];
        }
        if (!ok) {
            free(t);
            continue;
        }
        free(a->hours);
        a->hours = t, a->hcap = cap;
        return 0;
    }
}

int al_apartment_put_hour(al_apartment_t *a, const al_hour_t *h, const char *reason) {
    al_hour_t *slot = a->hcap ? &a->hours[slot_of(h->hour, a->hcap)] : NULL;
    while (!slot || (slot->hour && slot->hour != h->hour)) {
        if (grow_hours(a))
            return HVS_ENOMEM;
        slot = &a->hours[slot_of(h->hour, a->hcap)];
    }
    if (slot->hour == h->hour && slot->revision > h->revision)
        return 0;
    char *copy = reason ? strdup(reason) : NULL;
    if (reason && !copy)
        return HVS_ENOMEM;
    free(slot->reason);
    *slot = *h;
    slot->reason = copy;
    a->dirty = true;
    return 1;
}

void al_apartment_take_hour(al_apartment_t *a, hvs_ms_t hour) {
    al_hour_t *h = al_apartment_hour(a, hour);
    if (!h)
        return;
    free(h->reason);
    memset(h, 0, sizeof *h);
    a->dirty = true;
}

int al_apartment_water(const al_apartment_t *a, hvs_ms_t hour) {
    if (!a->wcap)
        return -1;
    size_t i = slot_of(hour, a->wcap);
    return a->water_hour[i] == hour ? a->water_use[i] : -1;
}

static int grow_water(al_apartment_t *a) {
    for (size_t cap = a->wcap ? 2 * a->wcap : 128;; cap *= 2) {
        hvs_ms_t *th = calloc(cap, sizeof *th);
        int8_t *tu = calloc(cap, 1);
        bool ok = th && tu;
        for (size_t i = 0; i < a->wcap && ok; i++) {
            hvs_ms_t h = a->water_hour[i];
            if (!h || h < a->water_from)
                continue;
            size_t k = slot_of(h, cap);
            if (th[k])
                ok = false;
            else
                th[k] = h, tu[k] = a->water_use[i];
        }
        if (!ok) {
            free(th);
            free(tu);
            if (!th || !tu)
                return HVS_ENOMEM;
            continue;
        }
        free(a->water_hour);
        free(a->water_use);
        a->water_hour = th, a->water_use = tu, a->wcap = cap;
        return 0;
    }
}

int al_apartment_put_water(al_apartment_t *a, hvs_ms_t hour, int8_t use) {
    if (hour < a->water_from)
        return 0; /* no hour still to judge looks back that far */
    size_t i = 0;
    while (!a->wcap || (a->water_hour[i = slot_of(hour, a->wcap)] && a->water_hour[i] != hour &&
                        a->water_hour[i] >= a->water_from))
        if (grow_water(a))
            return HVS_ENOMEM;
    a->water_hour[i] = hour;
    a->water_use[i] = use;
    a->dirty = true;
    return 0;
}

void al_apartment_fini(al_apartment_t *a) {
    for (size_t i = 0; i < a->hcap; i++)
        free(a->hours[i].reason);
    free(a->hours);
    free(a->water_hour);
    free(a->water_use);
    a->hours = NULL, a->hcap = 0;
    a->water_hour = NULL, a->water_use = NULL, a->wcap = 0;
}

al_apartment_t *al_building_apartment(al_building_t *b, const char *id, bool create) {
    size_t at;
    bool found;
    HVS_VEC_BSEARCH_STR(b->apts, b->napts, ->id, id, at, found);
    if (found)
        return b->apts[at];
    if (!create)
        return NULL;
    al_apartment_t **g = hvs_vec_grow(b->apts, &b->capa, b->napts + 1, sizeof *b->apts, 16);
    if (!g)
        return NULL;
    b->apts = g;
    al_apartment_t *a = calloc(1, sizeof *a);
    if (!a || !(a->id = strdup(id))) {
        free(a);
        return NULL;
    }
    hvs_vec_open(b->apts, b->napts, at, sizeof *b->apts);
    b->apts[at] = a;
    b->napts++;
    return a;
}

al_entry_t *al_building_entry(al_building_t *b, const char *id, bool create) {
    size_t at;
    bool found;
    HVS_VEC_BSEARCH_STR(b->entries, b->nentries, ->e.id, id, at, found);
    if (found)
        return b->entries[at];
    if (!create)
        return NULL;
    al_entry_t **g = hvs_vec_grow(b->entries, &b->cape, b->nentries + 1, sizeof *b->entries, 16);
    if (!g)
        return NULL;
    b->entries = g;
    al_entry_t *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    snprintf(x->e.id, sizeof x->e.id, "%s", id);
    x->before = NAN;
    x->e.score = x->e.max_rule = x->e.max_z = x->e.max_prob = NAN;
    hvs_vec_open(b->entries, b->nentries, at, sizeof *b->entries);
    b->entries[at] = x;
    b->nentries++;
    return x;
}

int al_building_hold(al_building_t *b, int64_t offset, const void *value, size_t len) {
    for (size_t i = 0; i < b->nheld; i++)
        if (b->held[i].offset == offset && !b->held[i].gone)
            return 0; /* the same record again (a replay) */
    al_held_t *g = hvs_vec_grow(b->held, &b->capheld, b->nheld + 1, sizeof *b->held, 4);
    if (!g)
        return HVS_ENOMEM;
    b->held = g;
    void *copy = malloc(len ? len : 1);
    if (!copy)
        return HVS_ENOMEM;
    memcpy(copy, value, len);
    size_t at = b->nheld;
    while (at > 0 && b->held[at - 1].offset > offset)
        at--;
    memmove(&b->held[at + 1], &b->held[at], (b->nheld - at) * sizeof *b->held);
    b->held[at] = (al_held_t){offset, copy, len, true, false};
    b->nheld++;
    return 0;
}

void al_building_release(al_building_t *b, size_t i) {
    if (i < b->nheld)
        b->held[i].gone = true;
}

static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

double al_entry_score_until(const al_entry_t *x, hvs_ms_t day) {
    double m = x->before;
    for (int i = 0; i < AL_DAY_MAX; i++)
        if (x->days[i].day && x->days[i].day <= day && (isnan(m) || x->days[i].max > m))
            m = x->days[i].max;
    return m;
}

void al_entry_note_hour(al_entry_t *x, hvs_ms_t hour, double score) {
    hvs_ms_t day = hvs_time_day_start(hour);
    int oldest = 0;
    for (int i = 0; i < AL_DAY_MAX; i++) {
        if (x->days[i].day == day) {
            if (score > x->days[i].max)
                x->days[i].max = (float)score;
            return;
        }
        if (x->days[i].day < x->days[oldest].day)
            oldest = i;
    }
    /* a new day takes an empty slot or the oldest, whose highest score moves to `before` */
    if (x->days[oldest].day && (isnan(x->before) || x->days[oldest].max > x->before))
        x->before = x->days[oldest].max;
    x->days[oldest] = (al_day_max_t){day, (float)score};
}

void al_state_drop_partition(al_state_t *s, int32_t p) {
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->b[i]->partition == p)
            building_free(s->b[i]);
        else
            s->b[k++] = s->b[i];
    }
    s->n = k;
    if (p >= 0 && p < HVS_MAX_PARTITIONS)
        s->part[p] = (al_partition_t){0};
}

/* ---- apartment text ------------------------------------------------------------------------- */

typedef struct out {
    char *p;
    size_t n, cap;
    bool full;
} out_t;

static void outf(out_t *o, const char *fmt, ...) HVS_PRINTF(2, 3);
#include <stdarg.h>
static void outf(out_t *o, const char *fmt, ...) {
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->n)
        o->full = true;
    else
        o->n += (size_t)n;
}

/* Line 1: "p2|open|type|first|below|sup_from|sup_until|sup_type|water_from|sup_cause"; line 2:
 * waiting hours "hour,rev,score,rule,z,prob,rules;..."; line 3: water "hour,use;..." (from
 * water_from on); then one line per waiting hour with a reason: "hour|model|reasons". Floats as
 * %.9g (float round trip), NaN as "nan". */
int al_apartment_format(const al_apartment_t *a, char *buf, size_t len) {
    out_t o = {buf, 0, len, len == 0};
    outf(&o, "p2|%d|%d|%lld|%d|%lld|%lld|%d|%lld|%s\n", a->open ? 1 : 0, (int)a->open_type,
         (long long)a->open_first, a->below, (long long)a->sup_from, (long long)a->sup_until,
         (int)a->sup_type, (long long)a->water_from, a->sup_cause);
    for (size_t i = 0; i < a->hcap; i++) {
        const al_hour_t *h = &a->hours[i];
        if (h->hour)
            outf(&o, "%lld,%lld,%.9g,%.9g,%.9g,%.9g,%u;", (long long)h->hour,
                 (long long)h->revision, h->score, h->rule_score, h->z, h->prob,
                 (unsigned)h->rules);
    }
    outf(&o, "\n");
    for (size_t i = 0; i < a->wcap; i++)
        if (a->water_hour[i] && a->water_hour[i] >= a->water_from)
            outf(&o, "%lld,%d;", (long long)a->water_hour[i], a->water_use[i]);
    for (size_t i = 0; i < a->hcap; i++)
        if (a->hours[i].hour && a->hours[i].reason)
            outf(&o, "\n%lld|%s", (long long)a->hours[i].hour, a->hours[i].reason);
    return o.full ? -1 : (int)o.n;
}

static const char *line_end(const char *p, const char *end) {
    const char *q = memchr(p, '\n', (size_t)(end - p));
    return q ? q : end;
}

/* Parse the NUL-terminated text s of n bytes (sscanf reads up to the NUL). */
static int apartment_parse(al_apartment_t *a, char *s, size_t n) {
    char *end = s + n, *e1 = (char *)line_end(s, end);
    char head[512];
    size_t hl = (size_t)(e1 - s);
    if (hl >= sizeof head)
        return -1;
    memcpy(head, s, hl);
    head[hl] = '\0';
    int open, type, below, sup_type, used = 0;
    long long first, from, until, wfrom;
    if (sscanf(head, "p2|%d|%d|%lld|%d|%lld|%lld|%d|%lld|%n", &open, &type, &first, &below, &from,
               &until, &sup_type, &wfrom, &used) != 8 ||
        used == 0)
        return -1;
    al_apartment_fini(a);
    a->open = open != 0, a->open_type = (hvs_alert_type_t)type, a->open_first = first;
    a->below = below, a->sup_from = from, a->sup_until = until;
    a->sup_type = (hvs_alert_type_t)sup_type;
    a->water_from = wfrom;
    snprintf(a->sup_cause, sizeof a->sup_cause, "%s", head + used);
    if (e1 == end)
        return 0;
    char *p = e1 + 1, *e2 = (char *)line_end(p, end);
    while (p < e2) {
        long long hour, rev;
        float sc, ru, z, pr;
        unsigned rules;
        int k = 0;
        if (sscanf(p, "%lld,%lld,%g,%g,%g,%g,%u;%n", &hour, &rev, &sc, &ru, &z, &pr, &rules, &k) !=
                7 ||
            k == 0 || hour <= 0)
            return -1;
        al_hour_t h = {hour, rev, sc, ru, z, pr, rules, NULL};
        if (al_apartment_put_hour(a, &h, NULL) < 0)
            return -1;
        p += k;
    }
    if (e2 == end)
        return 0;
    p = e2 + 1;
    char *e3 = (char *)line_end(p, end);
    while (p < e3) {
        long long hour;
        int use, k = 0;
        if (sscanf(p, "%lld,%d;%n", &hour, &use, &k) != 2 || k == 0 || hour <= 0)
            return -1;
        if (al_apartment_put_water(a, hour, (int8_t)use) < 0)
            return -1;
        p += k;
    }
    while (e3 < end) {
        p = e3 + 1;
        e3 = (char *)line_end(p, end);
        *e3 = '\0'; /* the copy's own byte (the NUL at n, or a newline) */
        long long hour;
        int k = 0;
        if (sscanf(p, "%lld|%n", &hour, &k) != 1 || k == 0)
            return -1;
        al_hour_t *h = al_apartment_hour(a, hour);
        if (!h || !(h->reason = strdup(p + k)))
            return -1;
    }
    return 0;
}

int al_apartment_parse(al_apartment_t *a, const char *s, size_t n) {
    char *t = malloc(n + 1); /* s need not be NUL-terminated: sscanf must not read past n */
    if (!t)
        return -1;
    memcpy(t, s, n);
    t[n] = '\0';
    int rc = apartment_parse(a, t, n);
    free(t);
    return rc;
}

/* An entry: its alert book line, then "x1|raised_hour|before|day,max;...". */
static int entry_format(const al_entry_t *x, char *buf, size_t len) {
    int n = hvs_alertbook_format(&x->e, buf, len);
    if (n < 0)
        return -1;
    out_t o = {buf, (size_t)n, len, false};
    outf(&o, "\nx1|%lld|%.9g|", (long long)x->raised_hour, x->before);
    for (int i = 0; i < AL_DAY_MAX; i++)
        if (x->days[i].day)
            outf(&o, "%lld,%.9g;", (long long)x->days[i].day, x->days[i].max);
    return o.full ? -1 : (int)o.n;
}

static int entry_parse(al_entry_t *x, const char *s, size_t n, hvs_err_t *err) {
    const char *nl = memchr(s, '\n', n);
    int rc = hvs_alertbook_parse(s, nl ? (size_t)(nl - s) : n, &x->e, err);
    x->before = NAN;
    memset(x->days, 0, sizeof x->days);
    x->raised_hour = 0;
    if (rc || !nl)
        return rc;
    char tail[512];
    size_t tl = n - (size_t)(nl + 1 - s);
    if (tl >= sizeof tail)
        return hvs_err_set(err, HVS_EINVAL, "bad_entry", "%s: ranking data too long", x->e.id);
    memcpy(tail, nl + 1, tl);
    tail[tl] = '\0';
    long long raised;
    float before;
    int k = 0;
    if (sscanf(tail, "x1|%lld|%g|%n", &raised, &before, &k) != 2 || k == 0)
        return hvs_err_set(err, HVS_EINVAL, "bad_entry", "%s: bad ranking data", x->e.id);
    x->raised_hour = raised, x->before = before;
    const char *p = tail + k;
    for (int i = 0; i < AL_DAY_MAX && *p; i++) {
        long long day;
        float m;
        int used = 0;
        if (sscanf(p, "%lld,%g;%n", &day, &m, &used) != 2 || used == 0)
            return hvs_err_set(err, HVS_EINVAL, "bad_entry", "%s: bad day maxima", x->e.id);
        x->days[i] = (al_day_max_t){day, m};
        p += used;
    }
    return 0;
}

/* ---- load ----------------------------------------------------------------------------------- */

static const redisReply *reply(hvs_redis_batch_t *b, size_t i, int type) {
    const redisReply *r = hvs_redis_batch_reply(b, i);
    return r && r->type == type ? r : NULL;
}

static int add(hvs_redis_batch_t *b, int argc, const char **argv, const size_t *argl,
               hvs_err_t *err) {
    return hvs_redis_batch_add(b, argc, argv, argl)
               ? hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch")
               : 0;
}

static int load_buildings(al_state_t *s, hvs_redis_t *r, hvs_redis_batch_t *rb, int32_t p,
                          size_t *nb, hvs_err_t *err) {
    size_t first = 0;
    char key[KEY_MAX];
    hvs_redis_batch_reset(rb);
    for (size_t i = 0; i < s->n; i++) {
        al_building_t *b = s->b[i];
        if (b->partition != p)
            continue;
        const char *k3[4][2] = {
            {"HGETALL", NULL}, {"HGETALL", NULL}, {"GET", NULL}, {"HGETALL", NULL}};
        static const char *const suffix[4] = {"al:apts", "al:alerts", "al:listed", "al:held"};
        for (int j = 0; j < 4; j++) {
            if (hvs_redis_key(key, sizeof key, b->id, err, "%s", suffix[j]) < 0)
                return HVS_EINVAL;
            k3[j][1] = key;
            int rc = add(rb, 2, k3[j], NULL, err);
            if (rc)
                return rc;
        }
    }
    int rc = hvs_redis_batch_exec(r, rb, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < s->n; i++) {
        al_building_t *b = s->b[i];
        if (b->partition != p)
            continue;
        const redisReply *ha = reply(rb, first, REDIS_REPLY_ARRAY),
                         *he = reply(rb, first + 1, REDIS_REPLY_ARRAY),
                         *li = reply(rb, first + 2, REDIS_REPLY_STRING),
                         *hd = reply(rb, first + 3, REDIS_REPLY_ARRAY);
        first += 4;
        for (size_t j = 0; hd && j + 1 < hd->elements; j += 2) {
            const redisReply *k = hd->element[j], *v = hd->element[j + 1];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || v->len % 2)
                continue;
            unsigned char *bytes = malloc(v->len / 2 + 1);
            bool ok = bytes != NULL;
            for (size_t q = 0; ok && q < v->len / 2; q++) {
                int hi = hexval(v->str[2 * q]), lo = hexval(v->str[2 * q + 1]);
                ok = hi >= 0 && lo >= 0;
                if (ok)
                    bytes[q] = (unsigned char)(hi << 4 | lo);
            }
            int hrc = ok ? al_building_hold(b, strtoll(k->str, NULL, 10), bytes, v->len / 2) : 0;
            free(bytes);
            if (hrc)
                return hvs_err_set(err, HVS_ENOMEM, "oom", "held feedback of %s", b->id);
            if (!ok)
                hvs_log_warn("alerter", "%s: unreadable held feedback %s skipped", b->id, k->str);
        }
        for (size_t j = 0; j < b->nheld; j++)
            b->held[j].dirty = false;
        for (size_t j = 0; ha && j + 1 < ha->elements; j += 2) {
            const redisReply *k = ha->element[j], *v = ha->element[j + 1];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            al_apartment_t *a = al_building_apartment(b, k->str, true);
            if (!a)
                return hvs_err_set(err, HVS_ENOMEM, "oom", "apartment %s/%s", b->id, k->str);
            if (al_apartment_parse(a, v->str, v->len))
                hvs_log_warn("alerter", "%s/%s: unreadable apartment state skipped", b->id, k->str);
        }
        for (size_t j = 0; he && j + 1 < he->elements; j += 2) {
            const redisReply *k = he->element[j], *v = he->element[j + 1];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            al_entry_t *x = al_building_entry(b, k->str, true);
            hvs_err_t bad = {0};
            if (!x)
                return hvs_err_set(err, HVS_ENOMEM, "oom", "alert %s", k->str);
            if (entry_parse(x, v->str, v->len, &bad))
                hvs_log_warn("alerter", "%s: unreadable alert entry %s kept as read: %s", b->id,
                             k->str, bad.msg);
        }
        b->listed = li ? strtoll(li->str, NULL, 10) : 0;
        b->known = true;
        (*nb)++;
    }
    return 0;
}

int al_state_load_partition(al_state_t *s, hvs_redis_t *r, hvs_redis_batch_t *rb, int32_t p,
                            size_t *nbuildings, hvs_err_t *err) {
    al_state_drop_partition(s, p); /* a stale copy from an earlier assignment */
    *nbuildings = 0;
    char key[48];
    snprintf(key, sizeof key, "hvs:al:part:%d", (int)p);
    hvs_redis_batch_reset(rb);
    const char *a1[] = {"HGETALL", key};
    int rc = add(rb, 2, a1, NULL, err);
    if (rc == 0)
        rc = hvs_redis_batch_exec(r, rb, err);
    if (rc)
        return rc;
    const redisReply *h = reply(rb, 0, REDIS_REPLY_ARRAY);
    al_partition_t *pt = &s->part[p];
    *pt = (al_partition_t){.present = true};
    char **ids = NULL;
    size_t nids = 0;
    for (size_t j = 0; h && j + 1 < h->elements; j += 2) {
        const redisReply *k = h->element[j], *v = h->element[j + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, "done") == 0)
            pt->done = strtoll(v->str, NULL, 10);
        else if (strcmp(k->str, "swm") == 0)
            pt->swm = strtoll(v->str, NULL, 10);
        else if (strcmp(k->str, "awm") == 0)
            pt->awm = strtoll(v->str, NULL, 10);
        else if (strncmp(k->str, "b:", 2) == 0 && hvs_id_check(k->str + 2, "building", err) == 0)
            nids++;
    }
    (void)ids;
    for (size_t j = 0; h && j + 1 < h->elements; j += 2) {
        const redisReply *k = h->element[j];
        if (k->type == REDIS_REPLY_STRING && strncmp(k->str, "b:", 2) == 0 &&
            hvs_id_check(k->str + 2, "building", err) == 0 &&
            !al_state_building(s, k->str + 2, p, true))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "building %s", k->str + 2);
    }
    return nids ? load_buildings(s, r, rb, p, nbuildings, err) : 0;
}

/* ---- save ----------------------------------------------------------------------------------- */

static int save_building(al_state_t *s, hvs_redis_batch_t *batch, al_building_t *b,
                         hvs_err_t *err) {
    char key[KEY_MAX], num[32];
    int rc = 0;
    if (!b->known) {
        char part[48], field[HVS_ID_MAX + 8];
        snprintf(part, sizeof part, "hvs:al:part:%d", (int)b->partition);
        snprintf(field, sizeof field, "b:%s", b->id);
        const char *a1[] = {"HSET", part, field, "1"};
        const char *a2[] = {"SADD", "hvs:al:buildings", b->id};
        if ((rc = add(batch, 4, a1, NULL, err)) || (rc = add(batch, 3, a2, NULL, err)))
            return rc;
        b->known = true;
    }
    if (b->listed_dirty) {
        if (hvs_redis_key(key, sizeof key, b->id, err, "al:listed") < 0)
            return HVS_EINVAL;
        snprintf(num, sizeof num, "%lld", (long long)b->listed);
        const char *a[] = {"SET", key, num};
        if ((rc = add(batch, 3, a, NULL, err)))
            return rc;
        b->listed_dirty = false;
    }
    for (size_t i = 0; i < b->napts; i++) {
        al_apartment_t *a = b->apts[i];
        if (!a->dirty)
            continue;
        int n;
        while ((n = al_apartment_format(a, s->text, s->textcap)) < 0) {
            /* many hours waiting (an input far ahead of another): a larger buffer */
            char *t = s->textcap < (64u << 20) ? realloc(s->text, 2 * s->textcap) : NULL;
            if (!t)
                return hvs_err_set(err, HVS_ENOMEM, "state_too_large", "apartment %s/%s", b->id,
                                   a->id);
            s->text = t, s->textcap *= 2;
        }
        if (hvs_redis_key(key, sizeof key, b->id, err, "al:apts") < 0)
            return HVS_EINVAL;
        const char *av[] = {"HSET", key, a->id, s->text};
        size_t al[] = {4, strlen(key), strlen(a->id), (size_t)n};
        if ((rc = add(batch, 4, av, al, err)))
            return rc;
        a->dirty = false;
    }
    size_t k = 0;
    for (size_t i = 0; i < b->nheld; i++) {
        al_held_t *h = &b->held[i];
        if (h->dirty || h->gone) {
            char off[24];
            snprintf(off, sizeof off, "%lld", (long long)h->offset);
            if (hvs_redis_key(key, sizeof key, b->id, err, "al:held") < 0)
                return HVS_EINVAL;
            if (h->gone) {
                const char *av[] = {"HDEL", key, off};
                rc = add(batch, 3, av, NULL, err);
            } else {
                char *hex = malloc(2 * h->len + 1);
                if (!hex)
                    return hvs_err_set(err, HVS_ENOMEM, "oom", "held feedback");
                for (size_t q = 0; q < h->len; q++)
                    snprintf(hex + 2 * q, 3, "%02x", ((const unsigned char *)h->value)[q]);
                const char *av[] = {"HSET", key, off, hex};
                size_t al[] = {4, strlen(key), strlen(off), 2 * h->len};
                rc = add(batch, 4, av, al, err);
                free(hex);
            }
            if (rc)
                return rc;
            h->dirty = false;
        }
        if (h->gone)
            free(h->value);
        else
            b->held[k++] = *h;
    }
    b->nheld = k;
    k = 0;
    for (size_t i = 0; i < b->nentries; i++) {
        al_entry_t *x = b->entries[i];
        if (x->dirty || x->gone) {
            if (hvs_redis_key(key, sizeof key, b->id, err, "al:alerts") < 0)
                return HVS_EINVAL;
            if (x->gone) {
                const char *av[] = {"HDEL", key, x->e.id};
                rc = add(batch, 3, av, NULL, err);
            } else {
                int n = entry_format(x, s->text, s->textcap);
                if (n < 0)
                    return hvs_err_set(err, HVS_EINVAL, "state_too_large", "alert %s", x->e.id);
                const char *av[] = {"HSET", key, x->e.id, s->text};
                size_t al[] = {4, strlen(key), strlen(x->e.id), (size_t)n};
                rc = add(batch, 4, av, al, err);
            }
            if (rc)
                return rc;
            x->dirty = false;
        }
        if (x->gone)
            free(x);
        else
            b->entries[k++] = x;
    }
    b->nentries = k;
    return 0;
}

int al_state_save(al_state_t *s, hvs_redis_batch_t *batch, hvs_err_t *err) {
    if (!s->text) {
        if (!(s->text = malloc(TEXT_MAX)))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "state text");
        s->textcap = TEXT_MAX;
    }
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0; i++)
        rc = save_building(s, batch, s->b[i], err);
    for (int p = 0; p < HVS_MAX_PARTITIONS && rc == 0; p++) {
        al_partition_t *pt = &s->part[p];
        if (!pt->present || !pt->dirty)
            continue;
        char key[48], d[24], sw[24], aw[24];
        snprintf(key, sizeof key, "hvs:al:part:%d", p);
        snprintf(d, sizeof d, "%lld", (long long)pt->done);
        snprintf(sw, sizeof sw, "%lld", (long long)pt->swm);
        snprintf(aw, sizeof aw, "%lld", (long long)pt->awm);
        const char *av[] = {"HSET", key, "done", d, "swm", sw, "awm", aw};
        rc = add(batch, 8, av, NULL, err);
        pt->dirty = false;
    }
    return rc;
}
