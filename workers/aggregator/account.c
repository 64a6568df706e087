#include "account.h"

#include "hvs/pack.h"

#include <stdlib.h>
#include <string.h>

#include "hvs/fmt.h"
#include "hvs/vec.h"

#define HOUR_MS 3600000LL

static agg_day_t *find_day(agg_account_t *acc, hvs_ms_t day, bool create) {
    size_t at = acc->n;
    while (at > 0 && acc->d[at - 1].day > day) /* usually the newest day */
        at--;
    if (at > 0 && acc->d[at - 1].day == day)
        return &acc->d[at - 1];
    if (!create)
        return NULL;
    agg_day_t *nd = hvs_vec_grow(acc->d, &acc->cap, acc->n + 1, sizeof *nd, 4);
    if (!nd)
        return NULL;
    acc->d = nd;
    memmove(&acc->d[at + 1], &acc->d[at], (acc->n - at) * sizeof *acc->d);
    acc->d[at] = (agg_day_t){.day = day};
    acc->n++;
    return &acc->d[at];
}

agg_day_t *agg_account_set(agg_account_t *acc, hvs_ms_t ws, double counted, double uncounted,
                           double *delta) {
    hvs_ms_t day = hvs_time_window_start(ws, AGG_DAY_MS);
    int h = (int)((ws - day) / HOUR_MS);
    agg_day_t *d = find_day(acc, day, true);
    if (!d)
        return NULL;
    uint32_t bit = 1u << h;
    *delta = uncounted - ((d->hours & bit) ? d->uncounted[h] : 0);
    if (!(d->hours & bit) || d->counted[h] != counted || d->uncounted[h] != uncounted)
        d->dirty = true;
    d->hours |= bit;
    d->counted[h] = counted;
    d->uncounted[h] = uncounted;
    return d;
}

double agg_day_counted(const agg_day_t *d) {
    double s = 0;
    for (int h = 0; h < AGG_DAY_HOURS; h++)
        if (d->hours & (1u << h))
            s += d->counted[h];
    return s;
}

double agg_day_uncounted(const agg_day_t *d) {
    double s = 0;
    for (int h = 0; h < AGG_DAY_HOURS; h++)
        if (d->hours & (1u << h))
            s += d->uncounted[h];
    return s;
}

bool agg_account_closed(const agg_account_t *acc, size_t i) {
    return i + 1 < acc->n || (acc->d[i].hours & (1u << (AGG_DAY_HOURS - 1)));
}

bool agg_account_due(const agg_account_t *acc, size_t i, double share) {
    const agg_day_t *d = &acc->d[i];
    if (d->alerted || !agg_account_closed(acc, i))
        return false;
    double u = agg_day_uncounted(d), total = agg_day_counted(d) + u;
    return u > 0 && u > share * total;
}

size_t agg_day_encode(const agg_day_t *d, char *buf) {
    size_t n = 0, cap = AGG_DAY_TEXT_MAX;
    char head[2] = {1, d->alerted ? 1 : 0};
    hvs_pack_put_bytes(buf, cap, &n, head, 2);
    for (int h = 0; h < AGG_DAY_HOURS; h++) {
        if (!(d->hours & (1u << h)))
            continue;
        char hb = (char)h;
        hvs_pack_put_bytes(buf, cap, &n, &hb, 1);
        hvs_pack_put_double(buf, cap, &n, d->counted[h]);
        hvs_pack_put_double(buf, cap, &n, d->uncounted[h]);
    }
    return n;
}

static int parse_binary(agg_day_t *d, const char *v, size_t len) {
    const unsigned char *p = (const unsigned char *)v + 2, *end = (const unsigned char *)v + len;
    if (len < 2 || v[1] > 1)
        return -1;
    d->alerted = v[1] == 1;
    while (p < end) {
        unsigned h = *p++;
        double c, u;
        if (h >= AGG_DAY_HOURS || (d->hours & (1u << h)) || hvs_pack_get_double(&p, end, &c) ||
            hvs_pack_get_double(&p, end, &u))
            return -1;
        d->hours |= 1u << h;
        d->counted[h] = c;
        d->uncounted[h] = u;
    }
    return 0;
}

int agg_account_parse(agg_account_t *acc, hvs_ms_t day, const char *v, size_t len, hvs_err_t *err) {
    char text[AGG_DAY_TEXT_MAX + 1];
    if (len > 0 && v[0] == 1) { /* format 1; text starts with '0' or '1' */
        agg_day_t d = {.day = day};
        if (day % AGG_DAY_MS != 0 || parse_binary(&d, v, len))
            return hvs_err_set(err, HVS_ESERDE, "bad_state",
                               "stored day account %lld: bad format-1 value (%zu bytes)",
                               (long long)day, len);
        agg_day_t *slot = find_day(acc, day, true);
        if (!slot)
            return hvs_err_set(err, HVS_ENOMEM, "oom", "day account");
        *slot = d;
        return 0;
    }
    if (len == 0 || len > AGG_DAY_TEXT_MAX || (v[0] != '0' && v[0] != '1') ||
        (len > 1 && v[1] != ' ') || day % AGG_DAY_MS != 0)
        return hvs_err_set(err, HVS_ESERDE, "bad_state", "stored day account %lld: '%.80s'",
                           (long long)day, v);
    memcpy(text, v, len);
    text[len] = 0;
    agg_day_t d = {.day = day, .alerted = v[0] == '1'};
    for (char *p = text + 1; *p;) {
        char *e;
        long h = strtol(p + 1, &e, 10);
        if (*p != ' ' || e == p + 1 || *e != ':' || h < 0 || h >= AGG_DAY_HOURS)
            return hvs_err_set(err, HVS_ESERDE, "bad_state", "stored day account %lld: '%.80s'",
                               (long long)day, v);
        double c = strtod(e + 1, &p);
        if (p == e + 1 || *p != ':')
            return hvs_err_set(err, HVS_ESERDE, "bad_state", "stored day account %lld: '%.80s'",
                               (long long)day, v);
        e = p + 1;
        double u = strtod(e, &p);
        if (p == e || (*p && *p != ' '))
            return hvs_err_set(err, HVS_ESERDE, "bad_state", "stored day account %lld: '%.80s'",
                               (long long)day, v);
        d.hours |= 1u << h;
        d.counted[h] = c;
        d.uncounted[h] = u;
    }
    agg_day_t *slot = find_day(acc, day, true);
    if (!slot)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "day account");
    *slot = d;
    return 0;
}

size_t agg_account_forget(agg_account_t *acc, hvs_ms_t before, hvs_ms_t *dropped, size_t cap) {
    size_t k = 0;
    while (k < acc->n && k < cap && acc->d[k].day + AGG_DAY_MS <= before) {
        dropped[k] = acc->d[k].day;
        k++;
    }
    if (k > 0) {
        memmove(acc->d, &acc->d[k], (acc->n - k) * sizeof *acc->d);
        acc->n -= k;
    }
    return k;
}

void agg_account_fini(agg_account_t *acc) {
    free(acc->d);
    *acc = (agg_account_t){0};
}
