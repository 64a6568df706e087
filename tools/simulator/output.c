/* output.c - JSON lines and Kafka writers of the simulator (see output.h). */
#include "output.h"

#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/reading.h"
#include "hvs/topics.h"

struct sim_output {
    const sim_fleet_t *fleet;
    FILE *file;
    hvs_producer_t *producer;
    hvs_encoder_t *encoder;
    hvs_reading_codec_t *codec;
    char topic[256];
    hvs_reading_t reading; /* reused: 17 KiB, so never on the stack per call */
    char line[8192];
    uint64_t written;
};

/* Append helpers over a bounded buffer: return false once it is full. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf_t;

static bool put(sbuf_t *b, const char *s, size_t n) {
    if (b->len + n >= b->cap)
        return false;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return true;
}
static bool puts_(sbuf_t *b, const char *s) { return put(b, s, strlen(s)); }

/* Values are quantised to tenths (counters, temperatures) or integers (valve): print exactly
 * that, without printf's cost or 17-digit noise. */
static bool put_value(sbuf_t *b, double v) {
    if (isnan(v))
        return puts_(b, "NaN");
    if (!isfinite(v) || fabs(v) >= 1e15) {
        char tmp[40];
        int n = snprintf(tmp, sizeof tmp, "%.17g", v);
        return put(b, tmp, (size_t)n);
    }
    long long t = llround(v * 10.0);
    char tmp[32];
    int i = sizeof tmp;
    bool neg = t < 0;
    unsigned long long u = neg ? (unsigned long long)(-t) : (unsigned long long)t;
    tmp[--i] = (char)('0' + (int)(u % 10));
    tmp[--i] = '.';
    u /= 10;
    do {
        tmp[--i] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    if (neg)
        tmp[--i] = '-';
    return put(b, tmp + i, sizeof tmp - (size_t)i);
}

/* ISO 8601 like the tablets write it: "2024-10-27T10:30:00Z", milliseconds only if any. */
static char *format_time(hvs_ms_t t, char *buf, size_t cap) {
    hvs_time_format_iso8601(t, buf, cap);
    size_t n = strlen(buf);
    if (n > 5 && strcmp(buf + n - 5, ".000Z") == 0)
        memcpy(buf + n - 5, "Z", 2);
    return buf;
}

size_t sim_format_json(const sim_fleet_t *f, const sim_record_t *r, char *buf, size_t cap) {
    const sim_building_t *b = &f->buildings[r->building];
    const sim_apartment_t *a = &b->apartments[r->apartment];
    char ts[40];
    format_time(r->timestamp, ts, sizeof ts);
    sbuf_t s = {buf, 0, cap};
    bool ok = puts_(&s, "{\"timestamp_str\":\"") && puts_(&s, ts) &&
              puts_(&s, "\",\"building_id\":\"") && puts_(&s, b->id) &&
              puts_(&s, "\",\"apartment_id\":\"") && puts_(&s, a->id) &&
              puts_(&s, "\",\"readings\":[");
    for (int i = 0; ok && i < r->n; i++) {
        const sim_value_t *v = &r->v[i];
        ok = puts_(&s, i ? ",{\"sensor_type\":\"" : "{\"sensor_type\":\"") &&
             puts_(&s, sim_sensor_name((sim_sensor_t)v->sensor)) && puts_(&s, "\"");
        if (ok && v->room >= 0 && v->room < a->nrooms)
            ok = puts_(&s, ",\"room_name\":\"") && puts_(&s, a->rooms[v->room].name) &&
                 puts_(&s, "\"");
        ok = ok && puts_(&s, ",\"value\":") && put_value(&s, v->value) && puts_(&s, "}");
    }
    ok = ok && puts_(&s, "]}");
    if (!ok)
        return 0;
    if (r->corrupt == SIM_CORRUPT_SYNTAX)
        s.len /= 2; /* a line cut in the middle, as by a crashed upload */
    buf[s.len++] = '\n';
    buf[s.len] = '\0';
    return s.len;
}

void sim_record_to_reading(const sim_fleet_t *f, const sim_record_t *r, hvs_reading_t *out) {
    const sim_building_t *b = &f->buildings[r->building];
    const sim_apartment_t *a = &b->apartments[r->apartment];
    snprintf(out->building_id, sizeof out->building_id, "%s", b->id);
    snprintf(out->apartment_id, sizeof out->apartment_id, "%s", a->id);
    snprintf(out->device_id, sizeof out->device_id, "tablet-%s", a->id);
    out->timestamp = r->timestamp;
    out->n = r->n;
    for (int i = 0; i < r->n; i++) {
        const sim_value_t *v = &r->v[i];
        snprintf(out->v[i].sensor_type, sizeof out->v[i].sensor_type, "%s",
                 sim_sensor_name((sim_sensor_t)v->sensor));
        if (v->room >= 0 && v->room < a->nrooms)
            snprintf(out->v[i].room_name, sizeof out->v[i].room_name, "%s", a->rooms[v->room].name);
        else
            out->v[i].room_name[0] = '\0';
        out->v[i].value = v->value;
    }
}

int sim_output_jsonl_new(FILE *f, const sim_fleet_t *fleet, sim_output_t **out, hvs_err_t *err) {
    sim_output_t *o = calloc(1, sizeof *o);
    if (!o)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    o->fleet = fleet;
    o->file = f;
    *out = o;
    return HVS_OK;
}

int sim_output_kafka_new(hvs_producer_t *p, hvs_serde_t *serde, const char *topic,
                         const sim_fleet_t *fleet, sim_output_t **out, hvs_err_t *err) {
    sim_output_t *o = calloc(1, sizeof *o);
    if (!o)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    o->fleet = fleet;
    o->producer = p;
    snprintf(o->topic, sizeof o->topic, "%s", topic);
    int rc = hvs_encoder_new(serde, HVS_SCHEMA_READING, topic, &o->encoder, err);
    if (rc == HVS_OK)
        rc = hvs_reading_codec_new(serde, &o->codec, err);
    if (rc != HVS_OK) {
        sim_output_destroy(o);
        return rc;
    }
    *out = o;
    return HVS_OK;
}

int sim_output_write(sim_output_t *o, const sim_record_t *r, hvs_err_t *err) {
    if (o->file) {
        size_t n = sim_format_json(o->fleet, r, o->line, sizeof o->line);
        if (n == 0)
            return hvs_err_set(err, HVS_EINVAL, "too_long", "record of %s does not fit a line",
                               o->fleet->buildings[r->building].apartments[r->apartment].id);
        if (fwrite(o->line, 1, n, o->file) != n)
            return hvs_err_set(err, HVS_EIO, "write", "writing readings: %s", strerror(errno));
        o->written++;
        return HVS_OK;
    }
    sim_record_to_reading(o->fleet, r, &o->reading);
    avro_value_t *v = hvs_encoder_value(o->encoder);
    int rc = hvs_reading_to_avro(o->codec, &o->reading, "simulator", HVS_MS_NONE, v, err);
    const void *buf;
    size_t len;
    if (rc == HVS_OK)
        rc = hvs_encoder_encode(o->encoder, &buf, &len, err);
    if (rc != HVS_OK)
        return rc;
    if (r->corrupt == SIM_CORRUPT_SYNTAX)
        len = HVS_SERDE_HEADER_LEN + (len - HVS_SERDE_HEADER_LEN) / 2;
    const char *key = o->reading.building_id;
    rc = hvs_producer_send(o->producer, o->topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len,
                           err);
    if (rc == HVS_OK)
        o->written++;
    return rc;
}

uint64_t sim_output_written(const sim_output_t *o) { return o->written; }

void sim_output_destroy(sim_output_t *o) {
    if (!o)
        return;
    hvs_reading_codec_destroy(o->codec);
    hvs_encoder_destroy(o->encoder);
    free(o);
}

/* ---- topology ---------------------------------------------------------------------------- */

char *sim_building_json(const sim_fleet_t *f, const sim_building_t *b, hvs_ms_t updated_at) {
    (void)f;
    const sim_archetype_t *arch = sim_archetype(b->archetype);
    json_t *apts = json_array();
    for (uint32_t i = 0; i < b->napartments; i++) {
        const sim_apartment_t *a = &b->apartments[i];
        json_t *rooms = json_array();
        for (int k = 0; k < a->nrooms; k++)
            json_array_append_new(rooms, json_pack("{s:s, s:f, s:f}", "room_name", a->rooms[k].name,
                                                   "area_m2", round(a->rooms[k].area_m2 * 10) / 10,
                                                   "window_area_m2",
                                                   round(a->rooms[k].window_m2 * 10) / 10));
        json_t *occ = a->occupied_since > b->commissioned ? json_integer(a->occupied_since)
                                                          : json_null();
        json_array_append_new(apts, json_pack("{s:s, s:f, s:i, s:o, s:o}", "apartment_id", a->id,
                                              "area_m2", round(a->area_m2 * 10) / 10, "floor",
                                              a->floor, "rooms", rooms, "occupied_since", occ));
    }
    json_t *o = json_pack("{s:s, s:s, s:I, s:f, s:f, s:f, s:i, s:s, s:s, s:o, s:I, s:b}",
                          "building_id", b->id, "archetype", arch->name, "commissioning_date",
                          (json_int_t)b->commissioned, "latitude", round(b->latitude * 1e4) / 1e4,
                          "longitude", round(b->longitude * 1e4) / 1e4, "heated_area_m2",
                          round(b->heated_area_m2), "construction_year", b->construction_year,
                          "insulation", arch->insulation, "holiday_region", b->region, "apartments",
                          apts, "updated_at", (json_int_t)updated_at, "deleted", 0);
    if (!o)
        return NULL;
    /* last, as in the schema; left out without teams (the default team, null) */
    if (b->team[0] && json_object_set_new(o, "team", json_string(b->team)) != 0) {
        json_decref(o);
        return NULL;
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    return s;
}

int sim_output_topology(const sim_fleet_t *f, hvs_ms_t updated_at, FILE *file, hvs_producer_t *p,
                        hvs_serde_t *serde, hvs_err_t *err) {
    hvs_encoder_t *enc = NULL;
    const char *topic = hvs_topic_name("topology");
    int rc = HVS_OK;
    if (p) {
        rc = hvs_encoder_new(serde, HVS_SCHEMA_BUILDING, topic, &enc, err);
        if (rc != HVS_OK)
            return rc;
    }
    for (uint32_t i = 0; i < f->nbuildings && rc == HVS_OK; i++) {
        const sim_building_t *b = &f->buildings[i];
        char *json = sim_building_json(f, b, updated_at);
        if (!json) {
            rc = hvs_err_set(err, HVS_ENOMEM, NULL, "building %s: out of memory", b->id);
            break;
        }
        if (file && fprintf(file, "%s\n", json) < 0)
            rc = hvs_err_set(err, HVS_EIO, "write", "writing topology: %s", strerror(errno));
        if (rc == HVS_OK && enc) {
            avro_value_t *v = hvs_encoder_value(enc);
            const void *buf;
            size_t len;
            rc = hvs_serde_value_from_json(serde, v, json, strlen(json), err);
            if (rc == HVS_OK)
                rc = hvs_encoder_encode(enc, &buf, &len, err);
            if (rc == HVS_OK)
                rc = hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, b->id, strlen(b->id), buf,
                                       len, err);
        }
        free(json);
    }
    hvs_encoder_destroy(enc);
    return rc;
}

/* ---- labels and weather lines -------------------------------------------------------------- */

static bool putf(sbuf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len)
        return false;
    b->len += (size_t)n;
    return true;
}

size_t sim_format_label(const sim_fleet_t *f, const sim_label_t *l, char *buf, size_t cap) {
    sbuf_t s = {buf, 0, cap};
    const sim_building_t *b = l->building >= 0 && (uint32_t)l->building < f->nbuildings
                                  ? &f->buildings[l->building]
                                  : NULL;
    const sim_apartment_t *a = b && l->apartment >= 0 && (uint32_t)l->apartment < b->napartments
                                   ? &b->apartments[l->apartment]
                                   : NULL;
    char t0[40], t1[40];
    format_time(l->start, t0, sizeof t0);
    format_time(l->end, t1, sizeof t1);
    bool ok = puts_(&s, "{\"building_id\":");
    ok = ok && (b ? putf(&s, "\"%s\"", b->id) : puts_(&s, "null"));
    ok = ok && puts_(&s, ",\"apartment_id\":");
    ok = ok && (a ? putf(&s, "\"%s\"", a->id) : puts_(&s, "null"));
    ok = ok && puts_(&s, ",\"room\":");
    ok = ok &&
         (a && l->room >= 0 && l->room < a->nrooms ? putf(&s, "\"%s\"", a->rooms[l->room].name)
                                                   : puts_(&s, "null"));
    ok = ok &&
         putf(&s,
              ",\"category\":\"%s\",\"type\":\"%s\",\"start\":\"%s\",\"end\":\"%s\","
              "\"start_ms\":%lld,\"end_ms\":%lld,\"magnitude\":%.6g}\n",
              l->category, l->type, t0, t1, (long long)l->start, (long long)l->end, l->magnitude);
    return ok ? s.len : 0;
}

size_t sim_format_weather(const sim_building_t *b, const sim_weather_t *w, char *buf, size_t cap) {
    char ts[40];
    format_time(w->time, ts, sizeof ts);
    int n = snprintf(buf, cap,
                     "{\"building_id\":\"%s\",\"time\":\"%s\",\"temperature_c\":%.2f,"
                     "\"shortwave_radiation\":%.1f,\"cloudcover\":%.0f,\"relative_humidity\":%.0f,"
                     "\"wind_speed\":%.1f}\n",
                     b->id, ts, w->temperature_c, w->shortwave_radiation_wm2, w->cloud_cover_pct,
                     w->relative_humidity_pct, w->wind_speed_ms);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
