#include "windows.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

static const char *const flag_names[AGG_FLAG_COUNT] = {"counter_reset", "meter_replaced",
                                                       "implausible_jump", "late_data"};
static const char *const quality_names[] = {"COMPLETE", "PARTIAL", "SILENT", "INTERPOLATED",
                                            "UNKNOWN"};

const char *agg_flag_name(int i) { return i >= 0 && i < AGG_FLAG_COUNT ? flag_names[i] : "?"; }
const char *agg_quality_name(agg_quality_t q) {
    return (unsigned)q <= AGG_Q_UNKNOWN ? quality_names[q] : "UNKNOWN";
}

static hvs_ms_t max_ms(hvs_ms_t a, hvs_ms_t b) { return a > b ? a : b; }
static hvs_ms_t min_ms(hvs_ms_t a, hvs_ms_t b) { return a < b ? a : b; }

/* End of the alive stretch that starts at instant i (see the liveness rule). */
static hvs_ms_t alive_end(const agg_samples_t *a, const agg_params_t *p, size_t i) {
    hvs_ms_t r = a->inst[i];
    if (i + 1 == a->ninst)
        return r + p->silence_ms;
    hvs_ms_t next = a->inst[i + 1];
    return next - r <= p->silence_ms ? next : min_ms(next, r + p->sample_ms);
}

/* Alive time inside [from, to). */
static hvs_ms_t alive_in(const agg_samples_t *a, const agg_params_t *p, hvs_ms_t from,
                         hvs_ms_t to) {
    if (a->ninst == 0 || to <= from)
        return 0;
    ptrdiff_t j = agg_instants_floor(a->inst, a->ninst, from);
    hvs_ms_t sum = 0;
    for (size_t i = j < 0 ? 0 : (size_t)j; i < a->ninst && a->inst[i] < to; i++) {
        hvs_ms_t s0 = max_ms(a->inst[i], from), s1 = min_ms(alive_end(a, p, i), to);
        if (s1 > s0)
            sum += s1 - s0;
    }
    return sum;
}

bool agg_pair_alive(const agg_samples_t *a, const agg_params_t *p, int k, hvs_ms_t ta, hvs_ms_t tb,
                    double d) {
    /* Send-on-change: an increase too large for one sampling interval proves reports were lost. */
    if (d > p->max_rate_per_h[k] * (double)p->sample_ms / 3.6e6)
        return false;
    if (tb - ta <= p->silence_ms)
        return true;
    if (tb - ta > p->max_pair_ms)
        return false;
    ptrdiff_t j = agg_instants_floor(a->inst, a->ninst, ta);
    if (j < 0)
        return false;
    for (size_t i = (size_t)j; i + 1 < a->ninst && a->inst[i] < tb; i++)
        if (a->inst[i + 1] - a->inst[i] > p->silence_ms)
            return false;
    return true;
}

/* Increase of a counter between two values, with the flag it earns (see the rule above). */
double agg_counter_delta(const agg_params_t *p, int k, hvs_ms_t ta, double va, hvs_ms_t tb,
                         double vb, unsigned *flag) {
    double dt_h = (double)max_ms(tb - ta, p->sample_ms) / 3.6e6;
    double cap = p->max_rate_per_h[k] * dt_h;
    if (k == AGG_HEAT && p->heat_unit_kwh > 0 && p->heat_unit_kwh != 1) {
        va *= p->heat_unit_kwh;
        vb *= p->heat_unit_kwh;
    }
    double d = vb - va;
    *flag = 0;
    if (d < 0) {
        *flag = vb <= cap ? AGG_F_METER_REPLACED : AGG_F_COUNTER_RESET;
        return vb <= cap ? vb : 0;
    }
    if (d > cap) {
        *flag = AGG_F_IMPLAUSIBLE_JUMP;
        return 0;
    }
    return d;
}

/* Consumption of one counter attributed to [ws, we). */
static void counter_window(const agg_samples_t *a, const agg_params_t *p, const agg_series_t *s,
                           int k, agg_result_t *out) {
    if (!s || s->n == 0 || s->p[0].t >= out->we)
        return; /* no value before the window's end: unknown */
    hvs_ms_t ws = out->ws, we = out->we;
    double sum = 0;
    /* First pair whose end lies after ws: pairs ending at or before ws cannot reach into it. */
    ptrdiff_t f = agg_points_floor(s->p, s->n, ws);
    size_t first = f < 1 ? 1 : (size_t)f + 1;
    for (size_t i = first; i < s->n; i++) {
        hvs_ms_t ta = s->p[i - 1].t, tb = s->p[i].t;
        if (ta >= we)
            break;
        unsigned flag;
        double d = agg_counter_delta(p, k, ta, s->p[i - 1].v, tb, s->p[i].v, &flag);
        if (tb > ws && tb <= we) {
            out->flags |= flag;
            if (flag == AGG_F_IMPLAUSIBLE_JUMP && k == AGG_HEAT)
                out->uncounted_kwh += (s->p[i].v - s->p[i - 1].v) *
                                      (p->heat_unit_kwh > 0 ? p->heat_unit_kwh : 1);
        }
        bool alive = agg_pair_alive(a, p, k, ta, tb, d);
        hvs_ms_t lo = alive ? max_ms(ta, tb - p->sample_ms) : max_ms(ta, tb - p->max_interp_ms);
        hvs_ms_t ov = min_ms(tb, we) - max_ms(lo, ws);
        if (ov > 0 && d != 0)
            sum += d * (double)ov / (double)(tb - lo);
        if (ov > 0 && !alive && d > 0)
            out->interpolated = true;
    }
    /* After the newest value, "unchanged" holds only while the apartment stays alive. */
    hvs_ms_t last = s->p[s->n - 1].t;
    if (last < we) {
        hvs_ms_t from = max_ms(last, ws);
        if (alive_in(a, p, from, we) < we - from)
            return; /* went silent: unknown until a later value closes the gap */
    }
    out->has_use[k] = true;
    out->use[k] = sum;
}

static bool is_room_kind(agg_kind_t k) { return k != AGG_HEAT && k != AGG_WATER; }

/* rooms[] of out: one entry per room that has a per-room value before out->we, sorted by name;
 * room_of[k] = the entry of series k (or -1), ser[r][kind - AGG_TEMP] = room r's series of that
 * kind (or -1). Series are sorted by (kind, room), so within a kind one forward scan over the
 * sorted entries finds or places every room. */
enum { ROOM_KINDS = AGG_KIND_COUNT - AGG_TEMP };
static void list_rooms(const agg_samples_t *a, size_t ns, agg_result_t *out, int *room_of,
                       int (*ser)[ROOM_KINDS]) {
    out->nrooms = 0;
    int at = 0, kind = -1;
    for (size_t k = 0; k < ns; k++) {
        const agg_series_t *s = &a->s[k];
        room_of[k] = -1;
        if (!is_room_kind(s->kind) || s->n == 0 || s->p[0].t >= out->we)
            continue;
        if ((int)s->kind != kind) {
            kind = (int)s->kind;
            at = 0;
        }
        int c = 1;
        while (at < out->nrooms && (c = strcmp(out->rooms[at].room, s->room)) < 0)
            at++;
        if (at < out->nrooms && c == 0) {
            ser[at][s->kind - AGG_TEMP] = (int)k;
            room_of[k] = at++;
            continue;
        }
        /* a new room; nrooms <= ns <= AGG_MAX_ROOMS: each entry comes from a series of its own */
        if (at < out->nrooms) {
            size_t tail = (size_t)(out->nrooms - at);
            memmove(&out->rooms[at + 1], &out->rooms[at], tail * sizeof out->rooms[0]);
            memmove(&ser[at + 1], &ser[at], tail * sizeof ser[0]);
            for (size_t q = 0; q < k; q++) /* entries after `at` moved up by one */
                if (room_of[q] >= at)
                    room_of[q]++;
        }
        agg_room_result_t *rr = &out->rooms[at];
        memset(rr, 0, sizeof *rr);
        rr->room = s->room;
        rr->temp_min = INFINITY;
        rr->temp_max = -INFINITY;
        for (int q = 0; q < ROOM_KINDS; q++)
            ser[at][q] = -1;
        ser[at][s->kind - AGG_TEMP] = (int)k;
        out->nrooms++;
        room_of[k] = at++;
    }
}

/* A room's readings_seen and temp_changes: its series' points in [ws, we). */
static void room_counts(const agg_samples_t *a, int (*ser)[ROOM_KINDS], agg_result_t *out) {
    for (int r = 0; r < out->nrooms; r++) {
        size_t pos[ROOM_KINDS], end[ROOM_KINDS], nk = 0;
        const agg_series_t *sp[ROOM_KINDS];
        for (int q = 0; q < ROOM_KINDS; q++) {
            if (ser[r][q] < 0)
                continue;
            const agg_series_t *s = &a->s[ser[r][q]];
            size_t lo = (size_t)(agg_points_floor(s->p, s->n, out->ws - 1) + 1);
            size_t hi = lo;
            while (hi < s->n && s->p[hi].t < out->we) /* a window holds a few points */
                hi++;
            if (s->kind == AGG_TEMP)
                for (size_t i = lo > 0 ? lo : 1; i < hi; i++)
                    out->rooms[r].changes += s->p[i].v != s->p[i - 1].v;
            if (hi > lo) {
                sp[nk] = s;
                pos[nk] = lo;
                end[nk++] = hi;
            }
        }
        /* distinct times over the room's series: a merge */
        while (nk > 0) {
            hvs_ms_t t = out->we;
            for (size_t i = 0; i < nk; i++)
                if (pos[i] < end[i] && sp[i]->p[pos[i]].t < t)
                    t = sp[i]->p[pos[i]].t;
            if (t >= out->we)
                break;
            out->rooms[r].seen++;
            for (size_t i = 0; i < nk; i++)
                if (pos[i] < end[i] && sp[i]->p[pos[i]].t == t)
                    pos[i]++;
        }
    }
}

static bool apartment_window(const agg_samples_t *a, const agg_params_t *p, hvs_ms_t ws,
                             hvs_ms_t we, bool rooms, agg_result_t *out) {
    memset(out, 0, offsetof(agg_result_t, rooms)); /* rooms[] is large: cleared as listed */
    out->ws = ws;
    out->we = we;
    out->temp_min = INFINITY;
    out->temp_max = -INFINITY;
    out->expected = (int)((we - ws) / p->sample_ms);
    if (a->ninst == 0 || a->inst[0] >= we)
        return false;
    out->span_ms = we - max_ms(ws, a->inst[0]);

    for (int k = AGG_HEAT; k <= AGG_WATER; k++)
        counter_window(a, p, agg_samples_find(a, (agg_kind_t)k, ""), k, out);

    /* Gauges and coverage, stretch by stretch between instants; rooms in the same pass. */
    ptrdiff_t cur[AGG_MAX_SERIES];
    int pair_of[AGG_MAX_SERIES], room_of[AGG_MAX_SERIES], ser[AGG_MAX_ROOMS][ROOM_KINDS];
    size_t ns = a->ns < AGG_MAX_SERIES ? a->ns : AGG_MAX_SERIES;
    agg_room_result_t scratch = {0}; /* where room sums go when no rooms are wanted */
    if (rooms) {
        list_rooms(a, ns, out, room_of, ser);
        for (size_t i = 0; i < ns; i++)
            pair_of[i] = a->s[i].kind == AGG_TEMP && room_of[i] >= 0
                             ? ser[room_of[i]][AGG_SETPOINT - AGG_TEMP]
                             : -1;
    } else {
        /* a temperature pairs with its room's setpoint: series are sorted by (kind, room), so
         * one merge of the two kinds' runs finds every pair */
        size_t sp = 0;
        while (sp < ns && a->s[sp].kind != AGG_SETPOINT)
            sp++;
        for (size_t i = 0; i < ns; i++) {
            room_of[i] = -1;
            pair_of[i] = -1;
            if (a->s[i].kind != AGG_TEMP)
                continue;
            int c = 1;
            while (sp < ns && a->s[sp].kind == AGG_SETPOINT &&
                   (c = strcmp(a->s[sp].room, a->s[i].room)) < 0)
                sp++;
            if (sp < ns && a->s[sp].kind == AGG_SETPOINT && c == 0)
                pair_of[i] = (int)sp;
        }
    }
    for (size_t i = 0; i < ns; i++)
        cur[i] = -1;
    ptrdiff_t j0 = agg_instants_floor(a->inst, a->ninst, ws);
    for (size_t i = j0 < 0 ? 0 : (size_t)j0; i < a->ninst && a->inst[i] < we; i++) {
        hvs_ms_t r = a->inst[i];
        hvs_ms_t s0 = max_ms(r, ws), s1 = min_ms(alive_end(a, p, i), we);
        if (s1 <= s0)
            continue;
        double len = (double)(s1 - s0);
        out->covered_ms += s1 - s0;
        for (size_t k = 0; k < ns; k++) {
            const agg_series_t *s = &a->s[k];
            if (s->kind != AGG_TEMP && s->kind != AGG_SETPOINT && (s->kind != AGG_VALVE || !rooms))
                continue;
            /* instants rise: the floor moves forward a point or two at a time */
            if (cur[k] < 0) /* no point yet: searched once there is one at or before r */
                cur[k] = s->n && s->p[0].t <= r ? agg_points_floor(s->p, s->n, r) : -1;
            else
                while ((size_t)cur[k] + 1 < s->n && s->p[cur[k] + 1].t <= r)
                    cur[k]++;
        }
        for (size_t k = 0; k < ns; k++) {
            const agg_series_t *s = &a->s[k];
            if (cur[k] < 0)
                continue;
            double v = s->p[cur[k]].v;
            /* a value before we: its room is listed */
            agg_room_result_t *rr = rooms ? &out->rooms[room_of[k]] : &scratch;
            if (s->kind == AGG_SETPOINT) {
                out->sp_sum += v * len;
                out->sp_ms += len;
                rr->sp_sum += v * len;
                rr->sp_ms += len;
            } else if (s->kind == AGG_VALVE) {
                rr->valve_sum += v * len;
                rr->valve_ms += len;
            } else if (s->kind == AGG_TEMP) {
                out->temp_sum += v * len;
                out->temp_ms += len;
                if (v < out->temp_min)
                    out->temp_min = v;
                if (v > out->temp_max)
                    out->temp_max = v;
                if (rr->temp_ms == 0)
                    rr->temp_ref = v;
                double d = v - rr->temp_ref;
                rr->temp_sum += v * len;
                rr->temp_ms += len;
                rr->temp_dev_sum += d * len;
                rr->temp_dev_sq += d * d * len;
                if (v < rr->temp_min)
                    rr->temp_min = v;
                if (v > rr->temp_max)
                    rr->temp_max = v;
                int q = pair_of[k];
                if (q >= 0 && cur[q] >= 0) {
                    out->gap_sum += (a->s[q].p[cur[q]].v - v) * len;
                    out->gap_ms += len;
                }
            }
        }
    }
    if (rooms)
        room_counts(a, ser, out);
    else
        out->nrooms = 0;
    /* Instants in (ws, we]. */
    ptrdiff_t lo = agg_instants_floor(a->inst, a->ninst, ws);
    ptrdiff_t hi = agg_instants_floor(a->inst, a->ninst, we);
    out->seen = (int)(hi - lo);

    if (out->covered_ms == 0 && !out->interpolated)
        out->quality = AGG_Q_SILENT;
    else if (out->interpolated)
        out->quality = AGG_Q_INTERPOLATED;
    else if (out->covered_ms < out->span_ms || out->uncounted_kwh > 0)
        out->quality = AGG_Q_PARTIAL;
    else
        out->quality = AGG_Q_COMPLETE;
    return true;
}

bool agg_window_apartment(const agg_samples_t *a, const agg_params_t *p, hvs_ms_t ws, hvs_ms_t we,
                          agg_result_t *out) {
    return apartment_window(a, p, ws, we, true, out);
}

bool agg_window_apartment_totals(const agg_samples_t *a, const agg_params_t *p, hvs_ms_t ws,
                                 hvs_ms_t we, agg_result_t *out) {
    return apartment_window(a, p, ws, we, false, out);
}

double agg_room_temp_std(const agg_room_result_t *r) {
    if (!(r->temp_ms > 0))
        return 0;
    double m = r->temp_dev_sum / r->temp_ms;
    double var = r->temp_dev_sq / r->temp_ms - m * m;
    return var > 0 ? sqrt(var) : 0;
}

void agg_window_building_begin(agg_result_t *b, hvs_ms_t ws, hvs_ms_t we) {
    memset(b, 0, offsetof(agg_result_t, rooms)); /* a building lists no rooms */
    b->ws = ws;
    b->we = we;
    b->temp_min = INFINITY;
    b->temp_max = -INFINITY;
    b->quality = AGG_Q_COMPLETE;
}

void agg_window_building_add(agg_result_t *b, const agg_result_t *r) {
    for (int k = 0; k < 2; k++)
        if (r->has_use[k]) {
            b->has_use[k] = true;
            b->use[k] += r->use[k];
        }
    b->interpolated |= r->interpolated;
    b->uncounted_kwh += r->uncounted_kwh;
    b->temp_sum += r->temp_sum;
    b->temp_ms += r->temp_ms;
    b->sp_sum += r->sp_sum;
    b->sp_ms += r->sp_ms;
    b->gap_sum += r->gap_sum;
    b->gap_ms += r->gap_ms;
    if (r->temp_min < b->temp_min)
        b->temp_min = r->temp_min;
    if (r->temp_max > b->temp_max)
        b->temp_max = r->temp_max;
    b->covered_ms += r->covered_ms;
    b->span_ms += r->span_ms;
    b->seen += r->seen;
    b->expected += r->expected;
    b->flags |= r->flags;
    if (r->covered_ms > 0)
        b->reporting++;
    if (r->quality == AGG_Q_PARTIAL || r->quality == AGG_Q_SILENT)
        b->quality = AGG_Q_PARTIAL;
    else if (r->quality == AGG_Q_INTERPOLATED && b->quality == AGG_Q_COMPLETE)
        b->quality = AGG_Q_INTERPOLATED;
    b->known++; /* apartments added; finish replaces it with the topology's count if larger */
}

void agg_window_building_finish(agg_result_t *b, int known_apartments) {
    int added = b->known;
    if (known_apartments > added)
        b->known = known_apartments;
    if (b->reporting == 0 && !b->interpolated)
        b->quality = AGG_Q_SILENT;
    else if (b->reporting < b->known && b->quality != AGG_Q_PARTIAL)
        b->quality = AGG_Q_PARTIAL;
}

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdULL;
}

static uint64_t dbits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

uint64_t agg_result_hash(const agg_result_t *r) {
    uint64_t h = 1469598103934665603ULL;
    for (int k = 0; k < 2; k++)
        h = mix(h, r->has_use[k] ? dbits(r->use[k]) : 0x7ff8dead);
    h = mix(h, dbits(r->temp_sum));
    h = mix(h, dbits(r->temp_ms));
    h = mix(h, dbits(r->temp_min));
    h = mix(h, dbits(r->temp_max));
    h = mix(h, dbits(r->sp_sum));
    h = mix(h, dbits(r->sp_ms));
    h = mix(h, dbits(r->gap_sum));
    h = mix(h, dbits(r->gap_ms));
    h = mix(h, (uint64_t)r->seen << 32 | (uint32_t)r->expected);
    h = mix(h, (uint64_t)r->flags << 8 | (uint64_t)r->quality);
    h = mix(h, (uint64_t)(uint32_t)r->reporting << 32 | (uint32_t)r->known);
    h = mix(h, (uint64_t)(uint32_t)r->nrooms);
    if (r->uncounted_kwh != 0) /* only then: results from before the field hash as they did */
        h = mix(h, dbits(r->uncounted_kwh));
    for (int i = 0; i < r->nrooms; i++) {
        const agg_room_result_t *rr = &r->rooms[i];
        for (const unsigned char *c = (const unsigned char *)rr->room; *c; c++)
            h = mix(h, *c);
        h = mix(h, dbits(rr->temp_sum));
        h = mix(h, dbits(rr->temp_ms));
        h = mix(h, dbits(rr->temp_min));
        h = mix(h, dbits(rr->temp_max));
        h = mix(h, dbits(rr->temp_dev_sum));
        h = mix(h, dbits(rr->temp_dev_sq));
        h = mix(h, dbits(rr->sp_sum));
        h = mix(h, dbits(rr->sp_ms));
        h = mix(h, dbits(rr->valve_sum));
        h = mix(h, dbits(rr->valve_ms));
        h = mix(h, (uint64_t)(uint32_t)rr->seen << 32 | (uint32_t)rr->changes);
    }
    return h;
}
