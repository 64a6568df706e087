/*
 * rooms.h - the rooms of an apartment's hourly Aggregate (schemas/Aggregate.avsc `rooms`,
 * written by the aggregator: workers/aggregator/windows.h) as plain values, validated, and what
 * the feature definition keeps of them per hour (features.h: valve_mean_pct, room_temp_std_c,
 * room_flat_hours).
 *
 * Reading is hostile-input reading (docs/design.md section 11): a room whose name fails the id
 * rule (bad_id / id_too_long), an empty name (bad_id), a temperature outside -30..60 degC, a
 * setpoint outside 0..40, a valve outside 0..100 %, a negative standard deviation, counts
 * outside 0..65535 (value_out_of_range), NaN or infinite numbers (non_finite), more rooms than
 * the caller's room (value_out_of_range), or fields not of the schema (bad_schema) refuse the
 * record with that reason. An accepted room's numbers are rounded as every reader keeps them
 * (features.h, hvs_feat_round: 0.01 degC, 0.01 %).
 *
 * Summary of an hour's rooms (hvs_rooms_summarize): the mean of the rooms' valve positions, the
 * mean of their within-hour temperature standard deviations, and two bit sets over the rooms in
 * the record's order (the aggregator sorts them by name; the first 32): the rooms listed
 * (`rooms`) and those with a temperature that did not change during the hour (`flat`). NaN / 0
 * when no room says; `rooms` 0 means the hour carried no rooms at all (features.h then reads
 * the room features as missing, whatever valve and temp_std hold).
 *
 * Ownership: the caller's buffers. Thread-safety: pure functions. Errors: 0, or HVS_EINVAL /
 * HVS_ESERDE with err->reason as above and err->msg naming the room and field.
 */
#ifndef HVS_ROOMS_H
#define HVS_ROOMS_H

#include <avro.h>
#include <stdint.h>

#include "hvs/err.h"
#include "hvs/features.h"
#include "hvs/ids.h"

#define HVS_ROOMS_MAX 64 /* the aggregator's cap of series per apartment */

typedef struct hvs_room {
    char name[HVS_ID_MAX + 1];
    double temp_mean, temp_min, temp_max, temp_std, setpoint, valve; /* NaN unknown */
    int changes, seen; /* temperature changes, readings in the hour */
} hvs_room_t;

/* A room as it came, before any check: what a direct reader of the Aggregate's bytes (wire.h)
 * fills, and what hvs_rooms_read takes from an avro-c value, so that both are judged by the one
 * hvs_rooms_check. The name points into the message (or the value). */
typedef struct hvs_room_raw {
    const char *name;
    size_t name_len;
    unsigned has; /* bit k set: v[k] present (not null) */
    double v[6];  /* temp_mean_c, temp_min_c, temp_max_c, temp_std_c, setpoint_mean_c,
                     valve_mean_pct, in schema order */
    int64_t changes, seen;
} hvs_room_raw_t;

/* The rooms of Aggregate record `agg` into out[0..max) (*n of them). */
int hvs_rooms_read(avro_value_t *agg, hvs_room_t *out, int max, int *n, hvs_err_t *err);
/* More rooms than the caller's room is value_out_of_range. */
int hvs_rooms_check_count(size_t count, int max, hvs_err_t *err);
/* Room `i` as it came into *out, by the rules above. */
int hvs_rooms_check(const hvs_room_raw_t *raw, size_t i, hvs_room_t *out, hvs_err_t *err);

/* Fill h's room fields (valve, temp_std, rooms, flat) from n rooms. */
void hvs_rooms_summarize(const hvs_room_t *rooms, int n, hvs_feat_hour_t *h);

#endif
