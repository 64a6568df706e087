/* input.c - Aggregate and Weather values into the feature worker's structs (see input.h). */
#include "input.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/featstore.h"
#include "hvs/fields.h"
#include "hvs/ids.h"
#include "hvs/rooms.h"

enum { A_BUILDING, A_APARTMENT, A_WS, A_SIZE, A_REV, A_HEAT, A_WATER, A_TEMP, A_SP, A_GAP, A_N };
static const char *const agg_fields[A_N] = {
    "building_id", "apartment_id",     "window_start",     "window_size_ms",  "revision",
    "heating_kwh", "hot_water_litres", "room_temp_mean_c", "setpoint_mean_c", "comfort_gap_mean_c"};

enum { W_BUILDING, W_HOUR, W_ISSUED, W_KIND, W_TEMP, W_RH, W_CLOUD, W_GHI, W_WIND, W_N };
static const char *const wx_fields[W_N] = {"building_id",     "hour",
                                           "issued_at",       "kind",
                                           "temperature_c",   "relative_humidity_pct",
                                           "cloud_cover_pct", "shortwave_radiation_wm2",
                                           "wind_speed_ms"};

struct fx_input {
    avro_schema_t agg, wx;
    int ai[A_N], wi[W_N];
};

int fx_input_new(hvs_serde_t *s, fx_input_t **out, hvs_err_t *err) {
    fx_input_t *in = calloc(1, sizeof *in);
    if (!in)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "feature input");
    in->agg = hvs_serde_schema(s, HVS_SCHEMA_AGGREGATE);
    in->wx = hvs_serde_schema(s, HVS_SCHEMA_WEATHER);
    for (int i = 0; i < A_N; i++)
        if ((in->ai[i] = avro_schema_record_field_get_index(in->agg, agg_fields[i])) < 0) {
            free(in);
            return hvs_err_set(err, HVS_ESERDE, "bad_schema", "Aggregate lacks %s", agg_fields[i]);
        }
    for (int i = 0; i < W_N; i++)
        if ((in->wi[i] = avro_schema_record_field_get_index(in->wx, wx_fields[i])) < 0) {
            free(in);
            return hvs_err_set(err, HVS_ESERDE, "bad_schema", "Weather lacks %s", wx_fields[i]);
        }
    *out = in;
    return 0;
}

void fx_input_destroy(fx_input_t *in) { free(in); }

int fx_input_aggregate(const fx_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                       fx_aggregate_t *out, hvs_err_t *err) {
    if (avro_value_get_schema(v) != in->agg &&
        !avro_schema_equal(avro_value_get_schema(v), in->agg))
        return hvs_err_set(err, HVS_ESERDE, FX_R_BAD_SCHEMA,
                           "not an Aggregate of the current schema");
    int64_t ws, size, rev;
    int rc;
    if ((rc = hvs_fields_id(v, in->ai[A_BUILDING], out->building, "building_id", err)) ||
        (rc = hvs_fields_id(v, in->ai[A_APARTMENT], out->entity, "apartment_id", err)) ||
        (rc = hvs_fields_long(v, in->ai[A_WS], &ws, "window_start", err)) ||
        (rc = hvs_fields_long(v, in->ai[A_SIZE], &size, "window_size_ms", err)) ||
        (rc = hvs_fields_long(v, in->ai[A_REV], &rev, "revision", err)))
        return rc;
    if (!out->building[0])
        return hvs_err_set(err, HVS_EINVAL, FX_R_BAD_ID, "building_id is empty");
    if (!out->entity[0])
        strcpy(out->entity, HVS_FS_BUILDING);
    else if (strcmp(out->entity, HVS_FS_BUILDING) == 0)
        return hvs_err_set(err, HVS_EINVAL, FX_R_BAD_ID, "apartment_id \"-\" is reserved");
    if (size != HVS_MS_HOUR || ws % HVS_MS_HOUR != 0)
        return hvs_err_set(err, HVS_EINVAL, FX_R_BAD_WINDOW,
                           "window of %lld ms at %lld is not an hour on the hour", (long long)size,
                           (long long)ws);
    if (rev < 0 || rev > UINT32_MAX)
        return hvs_err_set(err, HVS_EINVAL, FX_R_OUT_OF_RANGE, "revision %lld", (long long)rev);
    if ((rc = hvs_fields_time(ws, now, max_future, "window_start", err)))
        return rc;
    hvs_feat_hour_t *h = &out->hour;
    h->hour = ws;
    h->revision = (uint32_t)rev;
    hvs_room_t rooms[HVS_ROOMS_MAX];
    int nrooms = 0;
    if (strcmp(out->entity, HVS_FS_BUILDING) != 0 &&
        (rc = hvs_rooms_read(v, rooms, HVS_ROOMS_MAX, &nrooms, err)))
        return rc;
    hvs_rooms_summarize(rooms, nrooms, h);
    if ((rc = hvs_fields_double_opt(v, in->ai[A_HEAT], 0, 1e6, &h->use, "heating_kwh", err)) ||
        (rc = hvs_fields_double_opt(v, in->ai[A_WATER], 0, 1e8, &h->water, "hot_water_litres",
                                    err)) ||
        (rc = hvs_fields_double_opt(v, in->ai[A_TEMP], -30, 60, &h->room_temp, "room_temp_mean_c",
                                    err)) ||
        (rc = hvs_fields_double_opt(v, in->ai[A_SP], 0, 40, &h->setpoint, "setpoint_mean_c",
                                    err)) ||
        (rc = hvs_fields_double_opt(v, in->ai[A_GAP], -60, 60, &h->comfort_gap,
                                    "comfort_gap_mean_c", err)))
        return rc;
    return 0;
}

int fx_input_weather(const fx_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                     fx_weather_t *out, hvs_err_t *err) {
    if (avro_value_get_schema(v) != in->wx && !avro_schema_equal(avro_value_get_schema(v), in->wx))
        return hvs_err_set(err, HVS_ESERDE, FX_R_BAD_SCHEMA, "not a Weather of the current schema");
    int64_t hour, issued;
    int rc;
    if ((rc = hvs_fields_id(v, in->wi[W_BUILDING], out->building, "building_id", err)) ||
        (rc = hvs_fields_long(v, in->wi[W_HOUR], &hour, "hour", err)) ||
        (rc = hvs_fields_long(v, in->wi[W_ISSUED], &issued, "issued_at", err)))
        return rc;
    if (!out->building[0])
        return hvs_err_set(err, HVS_EINVAL, FX_R_BAD_ID, "building_id is empty");
    if (hour % HVS_MS_HOUR != 0)
        return hvs_err_set(err, HVS_EINVAL, FX_R_BAD_WINDOW, "hour %lld is not on the hour",
                           (long long)hour);
    /* forecasts reach days ahead: the hour may lie up to 16 days after now */
    if ((rc = hvs_fields_time(issued, now, max_future, "issued_at", err)) ||
        (rc = hvs_fields_time(hour, now, max_future + 16 * HVS_MS_DAY, "hour", err)))
        return rc;
    avro_value_t f;
    int kind;
    if (hvs_fields_get(v, in->wi[W_KIND], &f) != 1 || avro_value_get_enum(&f, &kind))
        return hvs_err_set(err, HVS_ESERDE, FX_R_BAD_SCHEMA, "kind missing");
    out->hour = hour;
    hvs_feat_wx_t *r = &out->rec;
    r->issued_at = issued;
    r->observed = kind == 0; /* WeatherKind: OBSERVED, FORECAST */
    if (r->observed && issued < hour + HVS_MS_HOUR)
        return hvs_err_set(err, HVS_EINVAL, FX_R_OUT_OF_RANGE,
                           "observation of an hour issued before the hour ended");
    if ((rc = hvs_fields_double_opt(v, in->wi[W_TEMP], -80, 60, &r->temp, "temperature_c", err)) ||
        (rc = hvs_fields_double_opt(v, in->wi[W_RH], 0, 100, &r->rh, "relative_humidity_pct",
                                    err)) ||
        (rc = hvs_fields_double_opt(v, in->wi[W_CLOUD], 0, 100, &r->cloud, "cloud_cover_pct",
                                    err)) ||
        (rc = hvs_fields_double_opt(v, in->wi[W_GHI], 0, 1500, &r->ghi, "shortwave_radiation_wm2",
                                    err)) ||
        (rc = hvs_fields_double_opt(v, in->wi[W_WIND], 0, 120, &r->wind, "wind_speed_ms", err)))
        return rc;
    return 0;
}
