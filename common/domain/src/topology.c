#include "hvs/topology.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/follow.h"
#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/reading.h"
#include "hvs/time.h"
#include "hvs/vec.h"

typedef hvs_building_t topo_building_t;

struct hvs_topology {
    hvs_follow_t *follow;
    hvs_decoder_t *dec;
    topo_building_t *b; /* sorted by id */
    size_t n, cap;
    uint64_t bad, applied;
    hvs_log_limit_t skip_log; /* a storm of bad records must not flood the logs */
};

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int hvs_topology_new(const hvs_kafka_conf_t *conf, hvs_serde_t *s, const char *topic,
                     hvs_topology_t **out, hvs_err_t *err) {
    hvs_topology_t *t = calloc(1, sizeof *t);
    if (!t)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "topology");
    int rc = hvs_decoder_new(s, HVS_SCHEMA_BUILDING, &t->dec, err);
    if (rc == 0)
        rc = hvs_follow_new(conf, topic, "topology", &t->follow, err);
    if (rc) {
        hvs_topology_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}

void hvs_topology_destroy(hvs_topology_t *t) {
    if (!t)
        return;
    hvs_follow_destroy(t->follow);
    hvs_decoder_destroy(t->dec);
    for (size_t i = 0; i < t->n; i++) {
        for (size_t k = 0; k < t->b[i].napts; k++)
            free(t->b[i].apts[k]);
        free(t->b[i].apts);
        free(t->b[i].apt_meters);
        free(t->b[i].id);
        free(t->b[i].archetype);
        free(t->b[i].holiday_region);
        free(t->b[i].team);
    }
    free(t->b);
    free(t);
}

static topo_building_t *find(const hvs_topology_t *t, const char *id, size_t *at) {
    size_t lo;
    bool found;
    HVS_VEC_BSEARCH_STR(t->b, t->n, .id, id, lo, found);
    if (found)
        return &t->b[lo];
    if (at)
        *at = lo;
    return NULL;
}

static void remove_building(hvs_topology_t *t, const char *id) {
    topo_building_t *b = find(t, id, NULL);
    if (!b)
        return;
    for (size_t k = 0; k < b->napts; k++)
        free(b->apts[k]);
    free(b->apts);
    free(b->apt_meters);
    free(b->id);
    free(b->archetype);
    free(b->holiday_region);
    free(b->team);
    size_t i = (size_t)(b - t->b);
    memmove(&t->b[i], &t->b[i + 1], (t->n - i - 1) * sizeof *t->b);
    t->n--;
}

/* A string field, or of a ["null","string"] union; "" when null or absent. NULL on ENOMEM. */
static char *opt_string(avro_value_t *v, const char *name) {
    avro_value_t f, br;
    const char *s = "";
    size_t len;
    if (avro_value_get_by_name(v, name, &f, NULL) == 0) {
        if (avro_value_get_type(&f) == AVRO_UNION) {
            if (avro_value_get_current_branch(&f, &br) == 0 &&
                avro_value_get_type(&br) == AVRO_STRING)
                avro_value_get_string(&br, &s, &len);
        } else if (avro_value_get_type(&f) == AVRO_STRING) {
            avro_value_get_string(&f, &s, &len);
        }
    }
    return strdup(s);
}

/* A double (or long) field, plain or in a union with null; `dflt` when null or absent. */
static double opt_double(avro_value_t *v, const char *name, double dflt) {
    avro_value_t f, br;
    if (avro_value_get_by_name(v, name, &f, NULL))
        return dflt;
    avro_value_t *x = &f;
    if (avro_value_get_type(&f) == AVRO_UNION) {
        if (avro_value_get_current_branch(&f, &br))
            return dflt;
        x = &br;
    }
    double d;
    int64_t l;
    if (avro_value_get_type(x) == AVRO_DOUBLE && avro_value_get_double(x, &d) == 0)
        return d;
    if (avro_value_get_type(x) == AVRO_INT64 && avro_value_get_long(x, &l) == 0)
        return (double)l;
    return dflt;
}

double hvs_energy_unit_kwh(hvs_energy_unit_t u) {
    return u == HVS_UNIT_MWH ? 1000.0 : u == HVS_UNIT_GJ ? 1e6 / 3600.0 : 1.0;
}

const char *hvs_meter_kind_name(hvs_meter_kind_t k) {
    static const char *const names[] = {"apartment_heat", "building_heat", "substation", "network"};
    return (unsigned)k <= HVS_METER_NETWORK ? names[k] : "?";
}

/* Building.meter or Apartment.meter of record v: absent or null (Building records before v3,
 * apartments before v4) gives given = false. */
static hvs_meter_t get_meter(avro_value_t *v) {
    hvs_meter_t m = {.max_kw = NAN};
    avro_value_t f, br, sub;
    if (avro_value_get_by_name(v, "meter", &f, NULL) || avro_value_get_type(&f) != AVRO_UNION ||
        avro_value_get_current_branch(&f, &br) || avro_value_get_type(&br) != AVRO_RECORD)
        return m;
    m.given = true;
    int e;
    if (avro_value_get_by_name(&br, "kind", &sub, NULL) == 0 &&
        avro_value_get_enum(&sub, &e) == 0 && e >= 0 && e <= HVS_METER_NETWORK)
        m.kind = (hvs_meter_kind_t)e;
    if (avro_value_get_by_name(&br, "unit", &sub, NULL) == 0 &&
        avro_value_get_enum(&sub, &e) == 0 && e >= 0 && e <= HVS_UNIT_GJ)
        m.unit = (hvs_energy_unit_t)e;
    double kw = opt_double(&br, "max_kw", NAN);
    m.max_kw = isfinite(kw) && kw > 0 ? kw : NAN;
    if (avro_value_get_by_name(&br, "interval_s", &sub, NULL) == 0 &&
        avro_value_get_current_branch(&sub, &f) == 0 && avro_value_get_type(&f) == AVRO_INT32 &&
        avro_value_get_int(&f, &e) == 0 && e > 0)
        m.interval_ms = (int64_t)e * 1000;
    return m;
}

struct apt_meter {
    char *id;
    hvs_meter_t meter;
};

static int cmp_apt_meter(const void *a, const void *b) {
    return strcmp(((const struct apt_meter *)a)->id, ((const struct apt_meter *)b)->id);
}

/* Apply one Building value; 0, or -1 (skipped) with why filled. */
static int apply(hvs_topology_t *t, avro_value_t *v, int32_t partition, hvs_err_t *why) {
    avro_value_t f, arr, item, sub, br;
    const char *id;
    size_t len, n = 0;
    int deleted = 0;
    if (avro_value_get_by_name(v, "building_id", &f, NULL) || avro_value_get_string(&f, &id, &len))
        return hvs_err_set(why, HVS_ESERDE, "bad_schema", "no building_id"), -1;
    /* the one id rule (ids.h): a building every worker would refuse must not be known either */
    if (hvs_id_check_n(id, len ? len - 1 : 0, "building_id", why))
        return -1;
    if (avro_value_get_by_name(v, "deleted", &f, NULL) == 0) {
        /* boolean, or a union with null */
        if (avro_value_get_boolean(&f, &deleted) != 0 &&
            !(avro_value_get_current_branch(&f, &br) == 0 &&
              avro_value_get_boolean(&br, &deleted) == 0))
            deleted = 0;
    }
    /* a bad apartment id skips the whole record, as a bad building id does (before anything
     * changes: a skipped record leaves the building as it was), and half a building would look
     * like a known one with fewer flats */
    if (!deleted && avro_value_get_by_name(v, "apartments", &arr, NULL) == 0 &&
        avro_value_get_size(&arr, &n) == 0)
        for (size_t i = 0; i < n; i++) {
            const char *a;
            size_t al;
            char field[48];
            snprintf(field, sizeof field, "apartments[%zu].apartment_id", i);
            if (avro_value_get_by_index(&arr, i, &item, NULL) == 0 &&
                avro_value_get_by_name(&item, "apartment_id", &sub, NULL) == 0 &&
                avro_value_get_string(&sub, &a, &al) == 0 &&
                hvs_id_check_n(a, al ? al - 1 : 0, field, why))
                return -1;
        }
    char *key = strdup(id);
    if (!key)
        return hvs_err_set(why, HVS_ENOMEM, "oom", "building %.100s", id), -1;
    uint64_t version = 0;
    const topo_building_t *old = find(t, key, NULL);
    if (old)
        version = old->version;
    remove_building(t, key);
    if (deleted) {
        free(key);
        return 0;
    }
    if (avro_value_get_by_name(v, "apartments", &arr, NULL) || avro_value_get_size(&arr, &n)) {
        free(key);
        return hvs_err_set(why, HVS_ESERDE, "bad_schema", "building %.100s: no apartments", id), -1;
    }
    char **apts = calloc(n ? n : 1, sizeof *apts);
    double *areas = calloc(n ? n : 1, sizeof *areas);
    struct apt_meter *am = calloc(n ? n : 1, sizeof *am);
    hvs_meter_t *meters = calloc(n ? n : 1, sizeof *meters);
    bool mem = apts && areas && am && meters;
    size_t m = 0;
    for (size_t i = 0; mem && i < n; i++) {
        const char *a;
        size_t al;
        areas[i] = NAN;
        if (avro_value_get_by_index(&arr, i, &item, NULL))
            continue;
        areas[i] = opt_double(&item, "area_m2", NAN);
        if (avro_value_get_by_name(&item, "apartment_id", &sub, NULL) ||
            avro_value_get_string(&sub, &a, &al))
            continue;
        if ((am[m].id = strdup(a)))
            am[m].meter = get_meter(&item), m++;
    }
    /* ids and their meters sorted together */
    if (mem && m > 1)
        qsort(am, m, sizeof *am, cmp_apt_meter);
    for (size_t i = 0; mem && i < m; i++)
        apts[i] = am[i].id, meters[i] = am[i].meter;
    free(am);
    if (!mem) {
        free(meters);
        meters = NULL;
    }
    bool areas_ok = areas != NULL;
    double apts_area = areas ? hvs_topology_area(NAN, areas, n) : NAN;
    free(areas);
    char *arch = opt_string(v, "archetype"), *region = opt_string(v, "holiday_region"),
         *team = opt_string(v, "team");
    topo_building_t *nb = apts && meters && areas_ok && arch && region && team
                              ? hvs_vec_grow(t->b, &t->cap, t->n + 1, sizeof *nb, 64)
                              : NULL;
    if (!nb) {
        for (size_t i = 0; apts && i < m; i++)
            free(apts[i]);
        free(apts);
        free(meters);
        free(key);
        free(arch);
        free(region);
        free(team);
        return hvs_err_set(why, HVS_ENOMEM, "oom", "building %.100s", id), -1;
    }
    t->b = nb;
    size_t at = 0;
    find(t, key, &at);
    memmove(&t->b[at + 1], &t->b[at], (t->n - at) * sizeof *t->b);
    t->b[at] = (topo_building_t){
        .id = key,
        .archetype = arch,
        .holiday_region = region,
        .team = team,
        .commissioning = (hvs_ms_t)opt_double(v, "commissioning_date", 0),
        .latitude = opt_double(v, "latitude", NAN),
        .longitude = opt_double(v, "longitude", NAN),
        .heated_area_m2 = opt_double(v, "heated_area_m2", NAN),
        .apts_area_m2 = apts_area,
        .meter = get_meter(v),
        .apts = apts,
        .apt_meters = meters,
        .napts = m,
        .partition = partition,
        .version = version + 1,
    };
    t->n++;
    return 0;
}

static void on_message(void *opaque, const rd_kafka_message_t *m) {
    hvs_topology_t *t = opaque;
    if (!m->payload) {
        if (m->key) {
            char id[HVS_READING_ID_MAX + 1];
            size_t kl = m->key_len < sizeof id - 1 ? m->key_len : sizeof id - 1;
            memcpy(id, m->key, kl);
            id[kl] = 0;
            remove_building(t, id);
        }
        return;
    }
    avro_value_t *v;
    hvs_err_t e = {0};
    if (hvs_decoder_decode(t->dec, m->payload, m->len, &v, &e) || apply(t, v, m->partition, &e)) {
        t->bad++; /* every one counted; the lines rate-limited */
        if (hvs_log_limit_take(&t->skip_log, e.reason, hvs_time_mono_ms(), "topology",
                               "skipped Building records"))
            hvs_log_warn("topology", "skipped a Building record at [%d] offset %lld (%s): %s",
                         (int)m->partition, (long long)m->offset, e.reason, e.msg[0] ? e.msg : "?");
    } else {
        t->applied++;
    }
}

int hvs_topology_poll(hvs_topology_t *t, int timeout_ms) {
    uint64_t before = t->applied;
    hvs_follow_poll(t->follow, timeout_ms, on_message, t);
    hvs_log_limit_flush(&t->skip_log, hvs_time_mono_ms(), "topology", "skipped Building records");
    return (int)(t->applied - before);
}

bool hvs_topology_caught_up(const hvs_topology_t *t) { return hvs_follow_caught_up(t->follow); }

int hvs_topology_apartments(const hvs_topology_t *t, const char *building) {
    topo_building_t *b = find(t, building, NULL);
    return b ? (int)b->napts : -1;
}

bool hvs_topology_has_apartment(const hvs_topology_t *t, const char *building, const char *apt) {
    topo_building_t *b = find(t, building, NULL);
    return b && bsearch(&apt, b->apts, b->napts, sizeof *b->apts, cmp_str) != NULL;
}

const hvs_meter_t *hvs_building_meter(const hvs_building_t *b, const char *apt) {
    char **at = apt ? bsearch(&apt, b->apts, b->napts, sizeof *b->apts, cmp_str) : NULL;
    if (at && b->apt_meters[at - b->apts].given)
        return &b->apt_meters[at - b->apts];
    return &b->meter;
}

const hvs_building_t *hvs_topology_find(const hvs_topology_t *t, const char *building) {
    return find(t, building, NULL);
}

const hvs_building_t *hvs_topology_buildings(const hvs_topology_t *t, size_t *n) {
    *n = t->n;
    return t->b;
}

double hvs_topology_area(double heated_area_m2, const double *apt_area_m2, size_t napts) {
    if (isfinite(heated_area_m2) && heated_area_m2 > 0)
        return heated_area_m2;
    double sum = 0;
    for (size_t i = 0; i < napts; i++) {
        if (!(isfinite(apt_area_m2[i]) && apt_area_m2[i] > 0))
            return NAN; /* a partial sum would understate the area */
        sum += apt_area_m2[i];
    }
    return napts > 0 ? sum : NAN;
}

double hvs_building_area(const hvs_building_t *b) {
    if (!b)
        return NAN;
    double apts = b->apts_area_m2; /* NaN unless every apartment has an area */
    return hvs_topology_area(b->heated_area_m2, &apts, 1);
}

const char *hvs_building_area_source(const hvs_building_t *b) {
    if (b && isfinite(b->heated_area_m2) && b->heated_area_m2 > 0)
        return "heated_area_m2";
    return isnan(hvs_building_area(b)) ? "none" : "apartments";
}

uint64_t hvs_topology_bad(const hvs_topology_t *t) { return t->bad; }
