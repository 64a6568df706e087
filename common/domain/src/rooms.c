/* rooms.c - an Aggregate's rooms, validated, and their hourly summary (hvs/rooms.h). */
#include "hvs/rooms.h"

#include <math.h>
#include <string.h>

#include "hvs/fields.h"

enum { R_NAME, R_MEAN, R_MIN, R_MAX, R_STD, R_SP, R_VALVE, R_CHANGES, R_SEEN, R_N };
static const char *const room_fields[R_N] = {"room",           "temp_mean_c",  "temp_min_c",
                                             "temp_max_c",     "temp_std_c",   "setpoint_mean_c",
                                             "valve_mean_pct", "temp_changes", "readings_seen"};

/* A required double field of a room record: NaN when null, else finite and within [lo, hi]. */
static int get(avro_value_t *r, int i, double lo, double hi, double *v, hvs_err_t *err) {
    avro_value_t f;
    int rc;
    size_t idx;
    if (avro_value_get_by_name(r, room_fields[i], &f, &idx))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "rooms[].%s missing", room_fields[i]);
    char name[64];
    snprintf(name, sizeof name, "rooms[].%s", room_fields[i]);
    if ((rc = hvs_fields_double_opt(r, (int)idx, lo, hi, v, name, err)))
        return rc;
    return 0;
}

static int get_count(avro_value_t *r, int i, int *v, hvs_err_t *err) {
    avro_value_t f;
    size_t idx;
    int64_t x;
    char name[64];
    snprintf(name, sizeof name, "rooms[].%s", room_fields[i]);
    if (avro_value_get_by_name(r, room_fields[i], &f, &idx))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "%s missing", name);
    int rc = hvs_fields_long(r, (int)idx, &x, name, err);
    if (rc)
        return rc;
    if (x < 0 || x > 65535)
        return hvs_err_set(err, HVS_EINVAL, HVS_R_OUT_OF_RANGE, "%s = %lld", name, (long long)x);
    *v = (int)x;
    return 0;
}

int hvs_rooms_read(avro_value_t *agg, hvs_room_t *out, int max, int *n, hvs_err_t *err) {
    avro_value_t rooms;
    size_t count = 0;
    *n = 0;
    if (avro_value_get_by_name(agg, "rooms", &rooms, NULL) || avro_value_get_size(&rooms, &count))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "rooms missing");
    if (count > (size_t)max)
        return hvs_err_set(err, HVS_EINVAL, HVS_R_OUT_OF_RANGE, "%zu rooms (at most %d)", count,
                           max);
    for (size_t i = 0; i < count; i++) {
        avro_value_t r;
        hvs_room_t *o = &out[i];
        int rc;
        if (avro_value_get_by_index(&rooms, i, &r, NULL))
            return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "rooms[%zu] unreadable", i);
        size_t idx;
        avro_value_t f;
        if (avro_value_get_by_name(&r, "room", &f, &idx))
            return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "rooms[%zu].room missing", i);
        if ((rc = hvs_fields_id(&r, (int)idx, o->name, "rooms[].room", err)))
            return rc;
        if (!o->name[0])
            return hvs_err_set(err, HVS_EINVAL, "bad_id", "rooms[%zu].room is empty", i);
        if ((rc = get(&r, R_MEAN, -30, 60, &o->temp_mean, err)) ||
            (rc = get(&r, R_MIN, -30, 60, &o->temp_min, err)) ||
            (rc = get(&r, R_MAX, -30, 60, &o->temp_max, err)) ||
            (rc = get(&r, R_STD, 0, 90, &o->temp_std, err)) ||
            (rc = get(&r, R_SP, 0, 40, &o->setpoint, err)) ||
            (rc = get(&r, R_VALVE, 0, 100, &o->valve, err)) ||
            (rc = get_count(&r, R_CHANGES, &o->changes, err)) ||
            (rc = get_count(&r, R_SEEN, &o->seen, err)))
            return rc;
    }
    *n = (int)count;
    return 0;
}

void hvs_rooms_summarize(const hvs_room_t *rooms, int n, hvs_feat_hour_t *h) {
    double valve = 0, sd = 0;
    int nv = 0, ns = 0;
    uint32_t with = 0, flat = 0;
    for (int i = 0; i < n; i++) {
        if (isfinite(rooms[i].valve))
            valve += rooms[i].valve, nv++;
        if (isfinite(rooms[i].temp_std))
            sd += rooms[i].temp_std, ns++;
        if (i < 32) {
            with |= 1u << i;
            if (isfinite(rooms[i].temp_mean) && rooms[i].changes == 0)
                flat |= 1u << i;
        }
    }
    h->valve = nv ? valve / nv : NAN;
    h->temp_std = ns ? sd / ns : NAN;
    h->rooms = with;
    h->flat = flat;
}
