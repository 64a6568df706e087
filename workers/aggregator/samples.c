#include "samples.h"

#include "hvs/vec.h"

#include <stdlib.h>
#include <string.h>

#include "hvs/err.h"
#include "hvs/profile.h"

/* Heat's sensor of each channel and its Redis code; which sensor feeds a channel is the
 * deployment's profile's (profile.h). */
static const struct {
    const char *sensor;
    char code;
} kinds[AGG_KIND_COUNT] = {
    [AGG_HEAT] = {"heating_energy_kwh", 'h'},  [AGG_WATER] = {"hot_water_litres", 'w'},
    [AGG_TEMP] = {"room_temp_c", 't'},         [AGG_SETPOINT] = {"setpoint_temp_c", 's'},
    [AGG_VALVE] = {"valve_position_pct", 'v'}, [AGG_HUMIDITY] = {"humidity_pct", 'u'},
};

/* The channel (profile.h, in agg_kind_t's order) the deployment's profile feeds from a sensor. */
_Static_assert((int)HVS_CH_USE == AGG_HEAT && (int)HVS_CH_WATER == AGG_WATER &&
                   (int)HVS_CH_TEMP == AGG_TEMP && (int)HVS_CH_SETPOINT == AGG_SETPOINT &&
                   (int)HVS_CH_VALVE == AGG_VALVE && (int)HVS_CH_HUMIDITY == AGG_HUMIDITY &&
                   (int)HVS_CH_COUNT == AGG_KIND_COUNT,
               "profile channels and aggregator kinds in one order");

int agg_kind_of(const char *sensor_type) {
    const hvs_profile_t *p = hvs_profile_active();
    for (size_t i = 0; i < p->nsensors; i++)
        if (strcmp(p->sensors[i].type, sensor_type) == 0)
            return (int)p->channel[i];
    return -1;
}

const char *agg_kind_name(agg_kind_t k) {
    if ((unsigned)k >= AGG_KIND_COUNT)
        return "?";
    const char *s = hvs_profile_channel_sensor((hvs_profile_channel_t)k);
    return s ? s : kinds[k].sensor; /* a channel the profile leaves unfed: heat's name */
}
char agg_kind_code(agg_kind_t k) { return (unsigned)k < AGG_KIND_COUNT ? kinds[k].code : '?'; }

int agg_kind_from_code(char c) {
    for (int k = 0; k < AGG_KIND_COUNT; k++)
        if (kinds[k].code == c)
            return k;
    return -1;
}

static bool is_counter(agg_kind_t k) { return k == AGG_HEAT || k == AGG_WATER; }

const agg_series_t *agg_samples_find(const agg_samples_t *a, agg_kind_t kind, const char *room) {
    for (size_t i = 0; i < a->ns; i++)
        if (a->s[i].kind == kind && (is_counter(kind) || strcmp(a->s[i].room, room) == 0))
            return &a->s[i];
    return NULL;
}

/* Series are kept sorted by (kind, room): sums over rooms then run in one order whatever order
 * the readings (or a reload from Redis) created them in, so results agree to the last bit. */
static int series_cmp(const agg_series_t *s, agg_kind_t kind, const char *room) {
    if (s->kind != kind)
        return s->kind < kind ? -1 : 1;
    return strcmp(s->room, room);
}

agg_series_t *agg_samples_series(agg_samples_t *a, agg_kind_t kind, const char *room) {
    const char *r0 = is_counter(kind) || !room ? "" : room;
    const agg_series_t *found = agg_samples_find(a, kind, r0);
    if (found)
        return (agg_series_t *)found;
    agg_series_t *ns = hvs_vec_grow(a->s, &a->caps, a->ns + 1, sizeof *a->s, 8);
    if (!ns)
        return NULL;
    a->s = ns;
    char *r = strdup(r0);
    if (!r)
        return NULL;
    size_t at = a->ns;
    while (at > 0 && series_cmp(&a->s[at - 1], kind, r0) > 0)
        at--;
    memmove(&a->s[at + 1], &a->s[at], (a->ns - at) * sizeof *a->s);
    agg_series_t *s = &a->s[at];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->room = r;
    s->slot = (uint8_t)
                  a->nslots++; /* < AGG_MAX_SERIES: callers bound ns, series are never dropped */
    a->ns++;
    return s;
}

ptrdiff_t agg_points_floor(const agg_point_t *p, size_t n, hvs_ms_t x) {
    size_t lo = 0, hi = n; /* first index with t > x */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p[mid].t <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

ptrdiff_t agg_instants_floor(const hvs_ms_t *t, size_t n, hvs_ms_t x) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

int agg_samples_add_instant(agg_samples_t *a, hvs_ms_t t) {
    ptrdiff_t i = agg_instants_floor(a->inst, a->ninst, t);
    if (i >= 0 && a->inst[i] == t)
        return 0;
    hvs_ms_t *ni = hvs_vec_grow(a->inst, &a->capinst, a->ninst + 1, sizeof *a->inst, 16);
    if (!ni)
        return HVS_ENOMEM;
    a->inst = ni;
    size_t at = (size_t)(i + 1);
    memmove(&a->inst[at + 1], &a->inst[at], (a->ninst - at) * sizeof *a->inst);
    a->inst[at] = t;
    a->ninst++;
    return 1;
}

int agg_samples_add_point(agg_series_t *s, hvs_ms_t t, double v, uint64_t *conflicts) {
    ptrdiff_t i = agg_points_floor(s->p, s->n, t);
    if (i >= 0 && s->p[i].t == t) {
        if (s->p[i].v != v && conflicts)
            (*conflicts)++;
        return 0;
    }
    agg_point_t *np = hvs_vec_grow(s->p, &s->cap, s->n + 1, sizeof *s->p, 16);
    if (!np)
        return HVS_ENOMEM;
    s->p = np;
    size_t at = (size_t)(i + 1);
    memmove(&s->p[at + 1], &s->p[at], (s->n - at) * sizeof *s->p);
    s->p[at].t = t;
    s->p[at].v = v;
    s->n++;
    return 1;
}

size_t agg_samples_prune(agg_samples_t *a, hvs_ms_t values_horizon, hvs_ms_t instants_horizon) {
    size_t dropped = 0;
    hvs_ms_t horizon = values_horizon;
    ptrdiff_t k = agg_instants_floor(a->inst, a->ninst, instants_horizon - 1);
    if (k > 0) {
        memmove(a->inst, &a->inst[k], (a->ninst - (size_t)k) * sizeof *a->inst);
        a->ninst -= (size_t)k;
        dropped += (size_t)k;
    }
    for (size_t i = 0; i < a->ns; i++) {
        agg_series_t *s = &a->s[i];
        ptrdiff_t j = agg_points_floor(s->p, s->n, horizon - 1);
        if (j > 0) {
            memmove(s->p, &s->p[j], (s->n - (size_t)j) * sizeof *s->p);
            s->n -= (size_t)j;
            dropped += (size_t)j;
        }
    }
    return dropped;
}

hvs_ms_t agg_samples_last(const agg_samples_t *a) {
    return a->ninst ? a->inst[a->ninst - 1] : HVS_MS_NONE;
}
hvs_ms_t agg_samples_first(const agg_samples_t *a) { return a->ninst ? a->inst[0] : HVS_MS_NONE; }

void agg_samples_fini(agg_samples_t *a) {
    for (size_t i = 0; i < a->ns; i++) {
        free(a->s[i].room);
        free(a->s[i].p);
    }
    free(a->s);
    free(a->inst);
    memset(a, 0, sizeof *a);
}
