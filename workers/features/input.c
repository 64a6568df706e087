/* input.c - Aggregate and Weather values into the feature worker's structs (see input.h). */
#include "input.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/featstore.h"
#include "hvs/fields.h"
#include "hvs/ids.h"
#include "hvs/layouts.h"
#include "hvs/rooms.h"
#include "hvs/wire.h"

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
    bool agg_direct; /* the current Aggregate is HVS_LAYOUT_AGGREGATE */
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
    in->agg_direct = hvs_serde_has_layout(in->agg, HVS_LAYOUT_AGGREGATE);
    *out = in;
    return 0;
}

bool fx_input_aggregate_direct(const fx_input_t *in) { return in->agg_direct; }

void fx_input_destroy(fx_input_t *in) { free(in); }

/* An hourly Aggregate as it came, before any check: filled from an avro-c value or straight
 * from the message's bytes, then judged by check_aggregate alone. Strings point into the value
 * or the message; building/apartment NULL = null. */
typedef struct agg_raw {
    const char *building, *apartment;
    size_t building_len, apartment_len;
    int64_t ws, size, rev;
    unsigned has; /* bit k: v[k] present */
    double v[5];  /* heating_kwh, hot_water_litres, room_temp_mean_c, setpoint_mean_c,
                     comfort_gap_mean_c */
    size_t nrooms;
    hvs_room_raw_t rooms[HVS_ROOMS_MAX]; /* the direct reader's; the avro-c way reads its own */
} agg_raw_t;

static const char *const value_names[5] = {"heating_kwh", "hot_water_litres", "room_temp_mean_c",
                                           "setpoint_mean_c", "comfort_gap_mean_c"};
static const double value_lo[5] = {0, 0, -30, 0, -60}, value_hi[5] = {1e6, 1e8, 60, 40, 60};

static int check_id(const char *s, size_t n, char *dst, const char *name, hvs_err_t *err) {
    dst[0] = '\0';
    if (!s)
        return 0;
    int rc = hvs_id_check_n(s, n, name, err); /* the one id rule: bad_id / id_too_long */
    if (rc)
        return rc;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* Every check of an Aggregate, in one place: `v` is the avro-c value it came from (its rooms
 * are read from it), or NULL when it was read directly (raw->rooms). */
static int check_aggregate(const agg_raw_t *raw, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                           fx_aggregate_t *out, hvs_err_t *err) {
    int rc;
    if ((rc = check_id(raw->building, raw->building_len, out->building, "building_id", err)) ||
        (rc = check_id(raw->apartment, raw->apartment_len, out->entity, "apartment_id", err)))
        return rc;
    if (!out->building[0])
        return hvs_err_set(err, HVS_EINVAL, FX_R_BAD_ID, "building_id is empty");
    if (!out->entity[0])
        strcpy(out->entity, HVS_FS_BUILDING);
    else if (strcmp(out->entity, HVS_FS_BUILDING) == 0)
        return hvs_err_set(err, HVS_EINVAL, FX_R_BAD_ID, "apartment_id \"-\" is reserved");
    if (raw->size != HVS_MS_HOUR || raw->ws % HVS_MS_HOUR != 0)
        return hvs_err_set(err, HVS_EINVAL, FX_R_BAD_WINDOW,
                           "window of %lld ms at %lld is not an hour on the hour",
                           (long long)raw->size, (long long)raw->ws);
    if (raw->rev < 0 || raw->rev > UINT32_MAX)
        return hvs_err_set(err, HVS_EINVAL, FX_R_OUT_OF_RANGE, "revision %lld",
                           (long long)raw->rev);
    if ((rc = hvs_fields_time(raw->ws, now, max_future, "window_start", err)))
        return rc;
    hvs_feat_hour_t *h = &out->hour;
    h->hour = raw->ws;
    h->revision = (uint32_t)raw->rev;
    hvs_room_t rooms[HVS_ROOMS_MAX];
    int nrooms = 0;
    if (strcmp(out->entity, HVS_FS_BUILDING) != 0) {
        if (v)
            rc = hvs_rooms_read(v, rooms, HVS_ROOMS_MAX, &nrooms, err);
        else if (!(rc = hvs_rooms_check_count(raw->nrooms, HVS_ROOMS_MAX, err)))
            for (; (size_t)nrooms < raw->nrooms && rc == 0; nrooms++)
                rc = hvs_rooms_check(&raw->rooms[nrooms], (size_t)nrooms, &rooms[nrooms], err);
        if (rc)
            return rc;
    }
    hvs_rooms_summarize(rooms, nrooms, h);
    double *dst[5] = {&h->use, &h->water, &h->room_temp, &h->setpoint, &h->comfort_gap};
    for (int k = 0; k < 5; k++)
        if ((rc = hvs_fields_check_double((raw->has >> k) & 1u, raw->v[k], value_lo[k], value_hi[k],
                                          dst[k], value_names[k], err)))
            return rc;
    h->water = NAN; /* checked, not kept: no feature reads it (features.h) */
    hvs_feat_hour_round(h);
    return 0;
}

/* A string field of an avro-c value as it came (NULL for null). */
static int raw_string(avro_value_t *v, int idx, const char **s, size_t *n, const char *name,
                      hvs_err_t *err) {
    avro_value_t f;
    int p = hvs_fields_get(v, idx, &f);
    *s = NULL;
    *n = 0;
    if (p < 0 || (p == 1 && avro_value_get_string(&f, s, n)))
        return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "%s is not a string", name);
    *n = *n ? *n - 1 : 0; /* avro-c counts the terminating NUL */
    return 0;
}

int fx_input_aggregate(const fx_input_t *in, avro_value_t *v, hvs_ms_t now, hvs_ms_t max_future,
                       fx_aggregate_t *out, hvs_err_t *err) {
    if (avro_value_get_schema(v) != in->agg &&
        !avro_schema_equal(avro_value_get_schema(v), in->agg))
        return hvs_err_set(err, HVS_ESERDE, FX_R_BAD_SCHEMA,
                           "not an Aggregate of the current schema");
    agg_raw_t raw;
    raw.has = 0;
    int rc;
    if ((rc = raw_string(v, in->ai[A_BUILDING], &raw.building, &raw.building_len, "building_id",
                         err)) ||
        (rc = raw_string(v, in->ai[A_APARTMENT], &raw.apartment, &raw.apartment_len, "apartment_id",
                         err)) ||
        (rc = hvs_fields_long(v, in->ai[A_WS], &raw.ws, "window_start", err)) ||
        (rc = hvs_fields_long(v, in->ai[A_SIZE], &raw.size, "window_size_ms", err)) ||
        (rc = hvs_fields_long(v, in->ai[A_REV], &raw.rev, "revision", err)))
        return rc;
    for (int k = 0; k < 5; k++) {
        avro_value_t f;
        int p = hvs_fields_get(v, in->ai[A_HEAT + k], &f);
        if (p < 0 || (p == 1 && avro_value_get_double(&f, &raw.v[k])))
            return hvs_err_set(err, HVS_ESERDE, HVS_R_BAD_SCHEMA, "%s is not a double",
                               value_names[k]);
        raw.has |= (unsigned)p << k;
    }
    return check_aggregate(&raw, v, now, max_future, out, err);
}

/* The body of a current-schema Aggregate straight into *raw (wire.h); false when anything is
 * not as this reader takes it (the avro-c way then decides). */
static bool read_direct(const unsigned char *body, size_t len, agg_raw_t *raw) {
    hvs_wire_in_t w = hvs_wire_in(body, len);
    size_t n;
    raw->has = 0;
    raw->building = hvs_wire_string(&w, &raw->building_len);
    raw->apartment = hvs_wire_branch(&w, 2) ? hvs_wire_string(&w, &raw->apartment_len) : NULL;
    raw->ws = hvs_wire_long(&w);
    (void)hvs_wire_long(&w); /* window_end */
    raw->size = hvs_wire_long(&w);
    raw->rev = hvs_wire_int(&w);
    /* heating, water, room temperature mean, then min and max (not kept), setpoint, gap */
    static const int slot[7] = {0, 1, 2, -1, -1, 3, 4};
    for (int k = 0; k < 7; k++)
        if (hvs_wire_branch(&w, 2)) {
            double d = hvs_wire_double(&w);
            if (slot[k] >= 0) {
                raw->v[slot[k]] = d;
                raw->has |= 1u << slot[k];
            }
        }
    (void)hvs_wire_int(&w); /* readings_expected, readings_seen */
    (void)hvs_wire_int(&w);
    for (int k = 0; k < 2; k++) /* reporting_apartments, known_apartments */
        if (hvs_wire_branch(&w, 2))
            (void)hvs_wire_int(&w);
    int32_t quality = hvs_wire_int(&w);
    if (quality < 0 || quality >= 5)
        return false;
    for (int64_t k; !w.bad && (k = hvs_wire_block(&w)) > 0;) /* flags */
        for (int64_t i = 0; i < k && !w.bad; i++)
            (void)hvs_wire_string(&w, &n);
    (void)hvs_wire_long(&w); /* emitted_at */
    raw->nrooms = 0;
    for (int64_t k; !w.bad && (k = hvs_wire_block(&w)) > 0;) {
        if (k > HVS_ROOMS_MAX - (int64_t)raw->nrooms)
            return false; /* too many: the avro-c way says so */
        for (int64_t i = 0; i < k && !w.bad; i++) {
            hvs_room_raw_t *r = &raw->rooms[raw->nrooms++];
            r->name = hvs_wire_string(&w, &r->name_len);
            r->has = 0;
            for (int j = 0; j < 6; j++)
                if (hvs_wire_branch(&w, 2)) {
                    r->v[j] = hvs_wire_double(&w);
                    r->has |= 1u << j;
                }
            r->seen = hvs_wire_int(&w);
            r->changes = hvs_wire_int(&w);
        }
    }
    if (hvs_wire_branch(&w, 2)) /* uncounted_kwh */
        (void)hvs_wire_double(&w);
    return !w.bad && w.p == w.end;
}

int fx_input_aggregate_message(const fx_input_t *in, hvs_decoder_t *d, const void *buf, size_t len,
                               hvs_ms_t now, hvs_ms_t max_future, fx_aggregate_t *out, bool *direct,
                               hvs_err_t *err) {
    const unsigned char *body;
    size_t n;
    agg_raw_t raw;
    if (direct)
        *direct = false;
    if (in->agg_direct && (body = hvs_decoder_direct_body(d, buf, len, &n)) &&
        read_direct(body, n, &raw)) {
        if (direct)
            *direct = true;
        return check_aggregate(&raw, NULL, now, max_future, out, err);
    }
    avro_value_t *v;
    int rc = hvs_decoder_decode(d, buf, len, &v, err);
    return rc ? rc : fx_input_aggregate(in, v, now, max_future, out, err);
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
