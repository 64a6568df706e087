#include "output.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "hvs/layouts.h"
#include "hvs/wire.h"

enum {
    F_BUILDING,
    F_APARTMENT,
    F_WS,
    F_WE,
    F_SIZE,
    F_REV,
    F_HEAT,
    F_WATER,
    F_TMEAN,
    F_TMIN,
    F_TMAX,
    F_SP,
    F_GAP,
    F_EXPECTED,
    F_SEEN,
    F_REPORTING,
    F_KNOWN,
    F_QUALITY,
    F_FLAGS,
    F_EMITTED,
    F_ROOMS,
    F_UNCOUNTED,
    F_COUNT
};
static const char *const field_names[F_COUNT] = {"building_id",
                                                 "apartment_id",
                                                 "window_start",
                                                 "window_end",
                                                 "window_size_ms",
                                                 "revision",
                                                 "heating_kwh",
                                                 "hot_water_litres",
                                                 "room_temp_mean_c",
                                                 "room_temp_min_c",
                                                 "room_temp_max_c",
                                                 "setpoint_mean_c",
                                                 "comfort_gap_mean_c",
                                                 "readings_expected",
                                                 "readings_seen",
                                                 "reporting_apartments",
                                                 "known_apartments",
                                                 "quality",
                                                 "flags",
                                                 "emitted_at",
                                                 "rooms",
                                                 "uncounted_kwh"};

/* Fields of a RoomStats record (an item of "rooms"). */
enum {
    RF_ROOM,
    RF_TMEAN,
    RF_TMIN,
    RF_TMAX,
    RF_TSTD,
    RF_SP,
    RF_VALVE,
    RF_SEEN,
    RF_CHANGES,
    RF_COUNT
};
static const char *const room_field_names[RF_COUNT] = {
    "room",           "temp_mean_c",   "temp_min_c",  "temp_max_c", "temp_std_c", "setpoint_mean_c",
    "valve_mean_pct", "readings_seen", "temp_changes"};

struct agg_output {
    hvs_encoder_t *enc;
    int idx[F_COUNT];
    int ridx[RF_COUNT];
    bool can_direct;     /* the current schema is HVS_LAYOUT_AGGREGATE */
    bool direct;         /* use write_direct (can_direct, unless a test turned it off) */
    bool last_direct;    /* the last message came from write_direct */
    int32_t id;          /* schema id of the encoder (the direct writer's header) */
    hvs_wire_out_t wire; /* the direct writer's message, reused */
};

bool agg_output_layout_direct(avro_schema_t aggregate) {
    return hvs_serde_has_layout(aggregate, HVS_LAYOUT_AGGREGATE);
}

int agg_output_new(hvs_serde_t *s, const char *topic, agg_output_t **out, hvs_err_t *err) {
    agg_output_t *o = calloc(1, sizeof *o);
    if (!o)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "aggregate output");
    avro_schema_t sc = hvs_serde_schema(s, HVS_SCHEMA_AGGREGATE);
    /* encode sets every field itself (no defaults applied): a field it does not know of
     * would go out as zero */
    if (avro_schema_record_size(sc) != F_COUNT) {
        free(o);
        return hvs_err_set(err, HVS_ESERDE, "bad_schema",
                           "Aggregate has %zu fields, output.c sets %d",
                           avro_schema_record_size(sc), F_COUNT);
    }
    for (int i = 0; i < F_COUNT; i++) {
        o->idx[i] = avro_schema_record_field_get_index(sc, field_names[i]);
        if (o->idx[i] < 0) {
            free(o);
            return hvs_err_set(err, HVS_ESERDE, "bad_schema", "Aggregate schema lacks %s",
                               field_names[i]);
        }
    }
    avro_schema_t ra = avro_schema_record_field_get(sc, "rooms");
    avro_schema_t rs = ra && is_avro_array(ra) ? avro_schema_array_items(ra) : NULL;
    if (!rs || !is_avro_record(rs) || avro_schema_record_size(rs) != RF_COUNT) {
        free(o);
        return hvs_err_set(err, HVS_ESERDE, "bad_schema",
                           "Aggregate.rooms is not an array of %d-field records", RF_COUNT);
    }
    for (int i = 0; i < RF_COUNT; i++) {
        o->ridx[i] = avro_schema_record_field_get_index(rs, room_field_names[i]);
        if (o->ridx[i] < 0) {
            free(o);
            return hvs_err_set(err, HVS_ESERDE, "bad_schema", "RoomStats lacks %s",
                               room_field_names[i]);
        }
    }
    int rc = hvs_encoder_new(s, HVS_SCHEMA_AGGREGATE, topic, &o->enc, err);
    if (rc) {
        free(o);
        return rc;
    }
    o->id = hvs_encoder_schema_id(o->enc);
    o->can_direct = o->direct = agg_output_layout_direct(sc);
    *out = o;
    return 0;
}

void agg_output_destroy(agg_output_t *o) {
    if (!o)
        return;
    hvs_encoder_destroy(o->enc);
    hvs_wire_out_free(&o->wire);
    free(o);
}

bool agg_output_direct(const agg_output_t *o) { return o->direct; }

bool agg_output_last_direct(const agg_output_t *o) { return o->last_direct; }

void agg_output_use_direct(agg_output_t *o, bool on) { o->direct = on && o->can_direct; }

static int set_opt_double(avro_value_t *rec, int idx, bool has, double v) {
    avro_value_t f, b;
    if (avro_value_get_by_index(rec, (size_t)idx, &f, NULL))
        return -1;
    if (!has || !isfinite(v))
        return avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
    return avro_value_set_branch(&f, 1, &b) || avro_value_set_double(&b, v);
}

static int set_opt_int(avro_value_t *rec, int idx, bool has, int v) {
    avro_value_t f, b;
    if (avro_value_get_by_index(rec, (size_t)idx, &f, NULL))
        return -1;
    if (!has)
        return avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
    return avro_value_set_branch(&f, 1, &b) || avro_value_set_int(&b, v);
}

static int set_long(avro_value_t *rec, int idx, int64_t v) {
    avro_value_t f;
    return avro_value_get_by_index(rec, (size_t)idx, &f, NULL) || avro_value_set_long(&f, v);
}

static int set_int(avro_value_t *rec, int idx, int v) {
    avro_value_t f;
    return avro_value_get_by_index(rec, (size_t)idx, &f, NULL) || avro_value_set_int(&f, v);
}

static int set_room(const agg_output_t *o, avro_value_t *rec, const agg_room_result_t *rr) {
    avro_value_t f;
    avro_wrapped_buffer_t name; /* lent, not copied: the samples outlive this encode */
    bool t = rr->temp_ms > 0;
    return avro_value_get_by_index(rec, (size_t)o->ridx[RF_ROOM], &f, NULL) ||
           avro_wrapped_buffer_new_string(&name, rr->room) ||
           avro_value_give_string_len(&f, &name) ||
           set_opt_double(rec, o->ridx[RF_TMEAN], t, t ? rr->temp_sum / rr->temp_ms : 0) ||
           set_opt_double(rec, o->ridx[RF_TMIN], t, rr->temp_min) ||
           set_opt_double(rec, o->ridx[RF_TMAX], t, rr->temp_max) ||
           set_opt_double(rec, o->ridx[RF_TSTD], t, agg_room_temp_std(rr)) ||
           set_opt_double(rec, o->ridx[RF_SP], rr->sp_ms > 0,
                          rr->sp_ms > 0 ? rr->sp_sum / rr->sp_ms : 0) ||
           set_opt_double(rec, o->ridx[RF_VALVE], rr->valve_ms > 0,
                          rr->valve_ms > 0 ? rr->valve_sum / rr->valve_ms : 0) ||
           set_int(rec, o->ridx[RF_SEEN], rr->seen) ||
           set_int(rec, o->ridx[RF_CHANGES], rr->changes);
}

/* ---- direct writer: the same bytes as the avro-c path below, field by field in schema order
 * (HVS_LAYOUT_AGGREGATE); the values and the null rules (absent or not finite = null) are the
 * same as set_opt_double's. Checked byte-for-byte against avro-c by
 * tests/aggregator/test_agg_output.c. */

static void put_opt_double(hvs_wire_out_t *w, bool has, double v) {
    hvs_wire_put_opt_double(w, has && isfinite(v), v);
}

static void put_room(hvs_wire_out_t *w, const agg_room_result_t *rr) {
    bool t = rr->temp_ms > 0;
    hvs_wire_put_string(w, rr->room, strlen(rr->room));
    put_opt_double(w, t, t ? rr->temp_sum / rr->temp_ms : 0);
    put_opt_double(w, t, rr->temp_min);
    put_opt_double(w, t, rr->temp_max);
    put_opt_double(w, t, agg_room_temp_std(rr));
    put_opt_double(w, rr->sp_ms > 0, rr->sp_ms > 0 ? rr->sp_sum / rr->sp_ms : 0);
    put_opt_double(w, rr->valve_ms > 0, rr->valve_ms > 0 ? rr->valve_sum / rr->valve_ms : 0);
    hvs_wire_put_int(w, rr->seen);
    hvs_wire_put_int(w, rr->changes);
}

/* Writers' errors are sticky (wire.h): one check at the end. */
static int write_direct(agg_output_t *o, const char *building, const char *apartment,
                        const agg_result_t *r, uint32_t revision, hvs_ms_t emitted_at,
                        const void **buf, size_t *len, hvs_err_t *err) {
    hvs_wire_out_t *w = &o->wire;
    bool bld = apartment == NULL, t = r->temp_ms > 0;
    hvs_wire_header(w, o->id);
    hvs_wire_put_string(w, building, strlen(building));
    hvs_wire_put_opt_string(w, apartment);
    hvs_wire_put_long(w, r->ws);
    hvs_wire_put_long(w, r->we);
    hvs_wire_put_long(w, r->we - r->ws);
    hvs_wire_put_int(w, (int32_t)revision);
    put_opt_double(w, r->has_use[AGG_HEAT], r->use[AGG_HEAT]);
    put_opt_double(w, r->has_use[AGG_WATER], r->use[AGG_WATER]);
    put_opt_double(w, t, t ? r->temp_sum / r->temp_ms : 0);
    put_opt_double(w, t, r->temp_min);
    put_opt_double(w, t, r->temp_max);
    put_opt_double(w, r->sp_ms > 0, r->sp_ms > 0 ? r->sp_sum / r->sp_ms : 0);
    put_opt_double(w, r->gap_ms > 0, r->gap_ms > 0 ? r->gap_sum / r->gap_ms : 0);
    hvs_wire_put_int(w, r->expected);
    hvs_wire_put_int(w, r->seen);
    hvs_wire_put_opt_int(w, bld, r->reporting);
    hvs_wire_put_opt_int(w, bld, r->known);
    hvs_wire_put_int(w, (int32_t)r->quality);
    hvs_wire_put_bit_names(w, r->flags, AGG_FLAG_COUNT, agg_flag_name);
    hvs_wire_put_long(w, emitted_at);
    if (r->nrooms > 0) {
        hvs_wire_put_long(w, r->nrooms);
        for (int i = 0; i < r->nrooms; i++)
            put_room(w, &r->rooms[i]);
    }
    hvs_wire_put_long(w, 0);
    put_opt_double(w, r->uncounted_kwh > 0, r->uncounted_kwh);
    if (w->oom)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "Aggregate %s/%s: out of memory", building,
                           apartment ? apartment : "-");
    if (w->len > HVS_SERDE_MAX_MESSAGE) /* as hvs_encoder_encode refuses it */
        return hvs_err_set(err, HVS_ESERDE, "too_large", "encoding %s: larger than %d bytes",
                           hvs_schema_name(HVS_SCHEMA_AGGREGATE), HVS_SERDE_MAX_MESSAGE);
    *buf = w->buf;
    *len = w->len;
    o->last_direct = true;
    return HVS_OK;
}

/* ---- avro-c path: the reference, and the writer when the schema is not HVS_LAYOUT_AGGREGATE */

int agg_output_encode(agg_output_t *o, const char *building, const char *apartment,
                      const agg_result_t *r, uint32_t revision, hvs_ms_t emitted_at,
                      const void **buf, size_t *len, hvs_err_t *err) {
    o->last_direct = false;
    if (o->direct)
        return write_direct(o, building, apartment, r, revision, emitted_at, buf, len, err);
    avro_value_t *v = hvs_encoder_value_bare(o->enc); /* every field is set below */
    avro_value_t f, b, item;
    bool bld = apartment == NULL;
    int bad = avro_value_get_by_index(v, (size_t)o->idx[F_BUILDING], &f, NULL) ||
              avro_value_set_string(&f, building);
    bad = bad || avro_value_get_by_index(v, (size_t)o->idx[F_APARTMENT], &f, NULL) ||
          (bld ? avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b)
               : avro_value_set_branch(&f, 1, &b) || avro_value_set_string(&b, apartment));
    bad = bad || set_long(v, o->idx[F_WS], r->ws) || set_long(v, o->idx[F_WE], r->we) ||
          set_long(v, o->idx[F_SIZE], r->we - r->ws) || set_int(v, o->idx[F_REV], (int)revision);
    bad = bad || set_opt_double(v, o->idx[F_HEAT], r->has_use[AGG_HEAT], r->use[AGG_HEAT]) ||
          set_opt_double(v, o->idx[F_WATER], r->has_use[AGG_WATER], r->use[AGG_WATER]);
    bool t = r->temp_ms > 0;
    bad = bad || set_opt_double(v, o->idx[F_TMEAN], t, t ? r->temp_sum / r->temp_ms : 0) ||
          set_opt_double(v, o->idx[F_TMIN], t, r->temp_min) ||
          set_opt_double(v, o->idx[F_TMAX], t, r->temp_max) ||
          set_opt_double(v, o->idx[F_SP], r->sp_ms > 0, r->sp_ms > 0 ? r->sp_sum / r->sp_ms : 0) ||
          set_opt_double(v, o->idx[F_GAP], r->gap_ms > 0,
                         r->gap_ms > 0 ? r->gap_sum / r->gap_ms : 0);
    bad = bad || set_int(v, o->idx[F_EXPECTED], r->expected) ||
          set_int(v, o->idx[F_SEEN], r->seen) ||
          set_opt_int(v, o->idx[F_REPORTING], bld, r->reporting) ||
          set_opt_int(v, o->idx[F_KNOWN], bld, r->known);
    bad = bad || avro_value_get_by_index(v, (size_t)o->idx[F_QUALITY], &f, NULL) ||
          avro_value_set_enum(&f, (int)r->quality);
    bad = bad || avro_value_get_by_index(v, (size_t)o->idx[F_FLAGS], &f, NULL) ||
          avro_value_reset(&f);
    for (int i = 0; i < AGG_FLAG_COUNT && !bad; i++)
        if (r->flags & (1u << i))
            bad = avro_value_append(&f, &item, NULL) ||
                  avro_value_set_string(&item, agg_flag_name(i));
    bad = bad || set_long(v, o->idx[F_EMITTED], emitted_at) ||
          set_opt_double(v, o->idx[F_UNCOUNTED], r->uncounted_kwh > 0, r->uncounted_kwh);
    bad = bad || avro_value_get_by_index(v, (size_t)o->idx[F_ROOMS], &f, NULL) ||
          avro_value_reset(&f);
    for (int i = 0; i < r->nrooms && !bad; i++)
        bad = avro_value_append(&f, &item, NULL) || set_room(o, &item, &r->rooms[i]);
    if (bad)
        return hvs_err_set(err, HVS_ESERDE, "avro_encode", "Aggregate %s/%s: %s", building,
                           apartment ? apartment : "-", avro_strerror());
    return hvs_encoder_encode(o->enc, buf, len, err);
}
