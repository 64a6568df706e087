/* sim_data.c - the simulator's outputs read back for tests (see sim_data.h). */
#include "sim_data.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/time.h"

char *sd_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

/* "bldg_003" -> 2; "apt_003_012" -> 2 and 11; -1 when the id is not one of ours. */
static int building_of(const char *id) {
    int b;
    return id && sscanf(id, "bldg_%d", &b) == 1 && b >= 1 && b <= SD_MAX_BUILDINGS ? b - 1 : -1;
}
static int apartment_of(const char *id, int *b) {
    int bb, a;
    if (!id || sscanf(id, "apt_%d_%d", &bb, &a) != 2 || bb < 1 || bb > SD_MAX_BUILDINGS || a < 1 ||
        a > SD_MAX_APTS)
        return -1;
    *b = bb - 1;
    return a - 1;
}

static int sensor_of(const char *s) {
    static const char *const names[] = {"heating_energy_kwh", "hot_water_litres", "room_temp_c",
                                        "setpoint_temp_c", "valve_position_pct"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return SD_OTHER;
}

static int room_of(const sd_building_t *b, int a, const char *name) {
    if (!name)
        return -1;
    for (int k = 0; k < b->nrooms[a]; k++)
        if (strcmp(b->room_names[a][k], name) == 0)
            return k;
    /* Without topology: the simulator's fixed order. */
    static const char *const order[] = {"living_room", "bedroom", "kitchen", "bathroom",
                                        "bedroom_2"};
    for (int k = 0; k < 5; k++)
        if (strcmp(order[k], name) == 0)
            return k;
    return -1;
}

static void push(sd_series_t *s, const sd_event_t *e) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->ev = realloc(s->ev, s->cap * sizeof *s->ev);
        if (!s->ev)
            abort();
    }
    s->ev[s->n++] = *e;
}

static int64_t parse_ts(const char *s) {
    hvs_ms_t t;
    hvs_err_t err;
    return s && hvs_time_parse_iso8601(s, &t, &err) == 0 ? t : INT64_MIN;
}

/* Call fn with every JSON object of a JSON-lines file (lines that do not parse are skipped). */
static void each_json_line(sim_data_t *d, const char *path, void (*fn)(sim_data_t *, json_t *)) {
    size_t len;
    char *txt = sd_read_file(path, &len);
    if (!txt)
        return;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        if (o)
            fn(d, o);
        json_decref(o);
    }
    free(txt);
}

static void topology_line(sim_data_t *d, json_t *o) {
    {
        int bi = building_of(json_string_value(json_object_get(o, "building_id")));
        if (bi >= 0) {
            sd_building_t *b = &d->b[bi];
            b->present = true;
            snprintf(b->archetype, sizeof b->archetype, "%s",
                     json_string_value(json_object_get(o, "archetype")));
            b->area_m2 = json_number_value(json_object_get(o, "heated_area_m2"));
            b->lat = json_number_value(json_object_get(o, "latitude"));
            b->lon = json_number_value(json_object_get(o, "longitude"));
            b->commissioned = json_integer_value(json_object_get(o, "commissioning_date"));
            json_t *apts = json_object_get(o, "apartments");
            b->napts = (int)json_array_size(apts);
            for (size_t a = 0; a < json_array_size(apts) && a < SD_MAX_APTS; a++) {
                json_t *rooms = json_object_get(json_array_get(apts, a), "rooms");
                b->nrooms[a] = (int)json_array_size(rooms);
                for (size_t k = 0; k < json_array_size(rooms) && k < SD_MAX_ROOMS; k++)
                    snprintf(
                        b->room_names[a][k], sizeof b->room_names[a][k], "%s",
                        json_string_value(json_object_get(json_array_get(rooms, k), "room_name")));
            }
        }
    }
}

static void weather_line(sim_data_t *d, json_t *o) {
    {
        int bi = building_of(json_string_value(json_object_get(o, "building_id")));
        if (bi >= 0) {
            sd_building_t *b = &d->b[bi];
            b->weather = realloc(b->weather, (b->nweather + 1) * sizeof *b->weather);
            if (!b->weather)
                abort();
            b->weather[b->nweather++] = (sd_weather_t){
                parse_ts(json_string_value(json_object_get(o, "time"))),
                json_number_value(json_object_get(o, "temperature_c")),
                json_number_value(json_object_get(o, "shortwave_radiation")),
                json_number_value(json_object_get(o, "cloudcover"))};
        }
    }
}

static void label_line(sim_data_t *d, json_t *o) {
    {
        sd_label_t l = {
            .building = building_of(json_string_value(json_object_get(o, "building_id"))),
            .apartment = -1,
            .room = -1};
        int b2 = -1;
        l.apartment = apartment_of(json_string_value(json_object_get(o, "apartment_id")), &b2);
        snprintf(l.category, sizeof l.category, "%s",
                 json_string_value(json_object_get(o, "category")));
        snprintf(l.type, sizeof l.type, "%s", json_string_value(json_object_get(o, "type")));
        l.start = json_integer_value(json_object_get(o, "start_ms"));
        l.end = json_integer_value(json_object_get(o, "end_ms"));
        l.magnitude = json_number_value(json_object_get(o, "magnitude"));
        if (l.building >= 0 && l.apartment >= 0)
            l.room = room_of(&d->b[l.building], l.apartment,
                             json_string_value(json_object_get(o, "room")));
        d->labels = realloc(d->labels, (d->nlabels + 1) * sizeof *d->labels);
        if (!d->labels)
            abort();
        d->labels[d->nlabels++] = l;
    }
}

int sim_data_load(sim_data_t *d, const char *readings, size_t len, const char *labels_path,
                  const char *weather_path, const char *topology_path) {
    memset(d, 0, sizeof *d);
    if (topology_path)
        each_json_line(d, topology_path, topology_line);
    if (weather_path)
        each_json_line(d, weather_path, weather_line);
    if (labels_path)
        each_json_line(d, labels_path, label_line);
    const char *p = readings, *end = readings ? readings + len : NULL;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        d->lines++;
        json_error_t jerr;
        json_t *o = json_loadb(p, n, 0, &jerr);
        if (!o) {
            d->bad_lines++;
            if (memmem(p, n, "NaN", 3))
                d->nan_lines++;
        } else {
            int b = -1;
            int a = apartment_of(json_string_value(json_object_get(o, "apartment_id")), &b);
            int64_t ts = parse_ts(json_string_value(json_object_get(o, "timestamp_str")));
            json_t *rs = json_object_get(o, "readings");
            for (size_t i = 0; a >= 0 && i < json_array_size(rs); i++) {
                json_t *r = json_array_get(rs, i);
                sd_event_t e = {
                    .ts = ts,
                    .line = (int64_t)d->lines,
                    .sensor = (uint8_t)sensor_of(
                        json_string_value(json_object_get(r, "sensor_type"))),
                    .room = (int8_t)room_of(&d->b[b], a,
                                            json_string_value(json_object_get(r, "room_name"))),
                    .value = json_number_value(json_object_get(r, "value"))};
                push(&d->apt[b][a], &e);
            }
            json_decref(o);
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

void sim_data_fini(sim_data_t *d) {
    for (int b = 0; b < SD_MAX_BUILDINGS; b++) {
        free(d->b[b].weather);
        for (int a = 0; a < SD_MAX_APTS; a++)
            free(d->apt[b][a].ev);
    }
    free(d->labels);
    memset(d, 0, sizeof *d);
}

static int cmp_event(const void *x, const void *y) {
    const sd_event_t *a = x, *b = y;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return a->line < b->line ? -1 : a->line > b->line;
}

void sd_sort(sd_series_t *s) {
    if (s->n)
        qsort(s->ev, s->n, sizeof *s->ev, cmp_event);
}

double sd_value_at(const sd_series_t *s, int sensor, int room, int64_t t) {
    /* Binary search for the last event at or before t, then walk back to the sensor (the
     * heartbeat bounds the walk to ~6 h of events). */
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->ev[mid].ts <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i-- > 0;)
        if (s->ev[i].sensor == sensor && s->ev[i].room == room)
            return s->ev[i].value;
    return NAN;
}

double sd_counter_at(const sd_series_t *s, int sensor, int64_t t) {
    return sd_value_at(s, sensor, -1, t);
}

bool sd_daily_weather(const sd_building_t *b, int64_t day, double *temp, double *ghi) {
    double st = 0, sg = 0;
    int n = 0;
    for (size_t i = 0; i < b->nweather; i++) {
        if (b->weather[i].time >= day && b->weather[i].time < day + 86400000LL) {
            st += b->weather[i].temp;
            sg += b->weather[i].ghi;
            n++;
        }
    }
    if (n < 20)
        return false;
    *temp = st / n;
    *ghi = sg / n;
    return true;
}
