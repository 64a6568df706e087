/* rooms.c - an Aggregate's rooms, validated, and their hourly summary (hvs/rooms.h). */
#include "hvs/rooms.h"

#include <math.h>
#include <string.h>

#include "hvs/fields.h"

enum { R_NAME, R_MEAN, R_MIN, R_MAX, R_STD, R_SP, R_VALVE, R_CHANGES, R_SEEN, R_N };
static const char *const room_fields[R_N] = {"room",           "temp_mean_c",  "temp_min_c",
                                             "temp_max_c",     "temp_std_c",   "setpoint_mean_c",
                                             "valve_mean_pct", "temp_changes", "readings_seen"};

/* The same as paths in the records' error messages (static: the checks run for every room). */
static const char *const room_paths[R_N] = {
    "rooms[].room",           "rooms[].temp_mean_c",  "rooms[].temp_min_c",
    "rooms[].temp_max_c",     "rooms[].temp_std_c",   "rooms[].setpoint_mean_c",
    "rooms[].valve_mean_pct", "rooms[].temp_changes", "rooms[].readings_seen"};

/* The ranges of hvs_room_raw_t.v, in its order (room_fields[R_MEAN + k]). */
static const double room_lo[6] = {-30, -30, -30, 0, 0, 0}, room_hi[6] = {60, 60, 60, 90, 40, 100};

/* Field `i` of a room record as it came: 1 present, 0 null (or absent), -1 not of the schema. */
static int raw_double(avro_value_t *r, int i, hvs_room_raw_t *raw, hvs_err_t *err) {
    avro_value_t f;
    size_t idx;
    if (avro_value_get_by_name(r, room_fields[i], &f, &idx))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "rooms[].%s missing", room_fields[i]);
    int p = hvs_fields_get(r, (int)idx, &f);
    double *v = &raw->v[i - R_MEAN];
    if (p < 0 || (p == 1 && avro_value_get_double(&f, v)))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "rooms[].%s is not a double",
                           room_fields[i]);
    if (p == 1)
        raw->has |= 1u << (i - R_MEAN);
    return 0;
}

static int raw_count(avro_value_t *r, int i, int64_t *v, hvs_err_t *err) {
    avro_value_t f;
    size_t idx;
    if (avro_value_get_by_name(r, room_fields[i], &f, &idx))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "%s missing", room_paths[i]);
    return hvs_fields_long(r, (int)idx, v, room_paths[i], err);
}

static int check_count(int64_t x, int i, int *v, hvs_err_t *err) {
    if (x < 0 || x > 65535)
        return hvs_err_set(err, HVS_EINVAL, HVS_R_OUT_OF_RANGE, "%s = %lld", room_paths[i],
                           (long long)x);
    *v = (int)x;
    return 0;
}

int hvs_rooms_check(const hvs_room_raw_t *raw, size_t i, hvs_room_t *out, hvs_err_t *err) {
    int rc = hvs_id_check_n(raw->name, raw->name_len, room_paths[R_NAME], err);
    if (rc)
        return rc;
    if (raw->name_len == 0)
        return hvs_err_set(err, HVS_EINVAL, "bad_id", "rooms[%zu].room is empty", i);
    memcpy(out->name, raw->name, raw->name_len);
    out->name[raw->name_len] = '\0';
    double *dst[6] = {&out->temp_mean, &out->temp_min, &out->temp_max,
                      &out->temp_std,  &out->setpoint, &out->valve};
    for (int k = 0; k < 6; k++) {
        if ((rc = hvs_fields_check_double((raw->has >> k) & 1u, raw->v[k], room_lo[k], room_hi[k],
                                          dst[k], room_paths[R_MEAN + k], err)))
            return rc;
        *dst[k] = hvs_feat_round(*dst[k], k == 5 ? HVS_FEAT_PER_PCT : HVS_FEAT_PER_C);
    }
    if ((rc = check_count(raw->changes, R_CHANGES, &out->changes, err)) ||
        (rc = check_count(raw->seen, R_SEEN, &out->seen, err)))
        return rc;
    return 0;
}

int hvs_rooms_check_count(size_t count, int max, hvs_err_t *err) {
    if (count > (size_t)max)
        return hvs_err_set(err, HVS_EINVAL, HVS_R_OUT_OF_RANGE, "%zu rooms (at most %d)", count,
                           max);
    return 0;
}

int hvs_rooms_read(avro_value_t *agg, hvs_room_t *out, int max, int *n, hvs_err_t *err) {
    avro_value_t rooms;
    size_t count = 0;
    *n = 0;
    if (avro_value_get_by_name(agg, "rooms", &rooms, NULL) || avro_value_get_size(&rooms, &count))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "rooms missing");
    int rc = hvs_rooms_check_count(count, max, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < count; i++) {
        avro_value_t r, f;
        hvs_room_raw_t raw = {0};
        size_t idx;
        if (avro_value_get_by_index(&rooms, i, &r, NULL))
            return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "rooms[%zu] unreadable", i);
        if (avro_value_get_by_name(&r, "room", &f, &idx))
            return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "rooms[%zu].room missing", i);
        if (avro_value_get_type(&f) != AVRO_STRING ||
            avro_value_get_string(&f, &raw.name, &raw.name_len))
            return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "rooms[].room is not a string");
        raw.name_len = raw.name_len ? raw.name_len - 1 : 0; /* avro-c counts the NUL */
        for (int k = R_MEAN; k <= R_VALVE; k++)
            if ((rc = raw_double(&r, k, &raw, err)))
                return rc;
        if ((rc = raw_count(&r, R_CHANGES, &raw.changes, err)) ||
            (rc = raw_count(&r, R_SEEN, &raw.seen, err)) ||
            (rc = hvs_rooms_check(&raw, i, &out[i], err)))
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
