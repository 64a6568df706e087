/* aggregates.c - an apartment's hourly Aggregate into the scorer's state (aggregates.h). */
#include "aggregates.h"

#include <string.h>

int sc_apply_aggregate(sc_state_t *st, const sc_rule_conf_t *rc, int32_t p,
                       const sc_aggregate_t *in, bool quiet, sc_applied_t *out, hvs_err_t *err) {
    memset(out, 0, sizeof *out);
    if (!in->apartment[0])
        return 0;
    sc_building_t *b = sc_state_building(st, in->building, p, true);
    sc_apartment_t *a = b ? sc_state_apartment(b, in->apartment, true) : NULL;
    if (!a)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "state of %s/%s", in->building, in->apartment);
    out->b = b;
    out->a = a;
    sc_agg_t *g = sc_agg_take(a, in->hour);
    if (!g) {
        out->too_old = true;
        return 0;
    }
    if (g->rev > in->revision)
        return 0; /* an older revision than the ring holds */
    g->rev = in->revision;
    g->live = !quiet;
    g->heat_kwh = (float)in->heat_kwh;
    g->nrooms = 0;
    for (int i = 0; i < in->nrooms; i++) {
        const hvs_room_t *r = &in->rooms[i];
        int ix = g->nrooms < SC_ROOMS ? sc_room_intern(a, r->name) : -1;
        if (ix < 0) {
            out->rooms_capped++;
            continue;
        }
        g->rooms[g->nrooms++] = (sc_room_t){.name = (uint8_t)ix,
                                            .temp_mean = (float)r->temp_mean,
                                            .setpoint = (float)r->setpoint,
                                            .valve = (float)r->valve,
                                            .changes = (uint16_t)r->changes,
                                            .seen = (uint16_t)r->seen};
    }
    out->fired = sc_rules_judge(rc, a, in->hour);
    const sc_model_t *m = sc_model_get(a, in->hour);
    out->publish = m && (!quiet || m->live);
    return 0;
}
