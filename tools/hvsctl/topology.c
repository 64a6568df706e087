/*
 * hvsctl topology: onboard buildings onto the compacted `topology` topic (key building_id) and
 * look at what is there.
 *   load FILE   JSON lines of the Building record's natural JSON, or CSV with one row per
 *               apartment. The whole file is validated first; any error (every one printed,
 *               "line N: building B: what") and nothing is produced. Else every building is
 *               produced, flushed, and each delivery checked.
 *   list        the topic read to its end: latest record per key, tombstones and deleted = true
 *               remove; one line per building.
 *   show ID     the building's JSON and diagnostics (area rule, region, apartments).
 *   delete ID   a Kafka tombstone (null value) for ID: the followers (hvs_topology) remove it.
 * Field names come from the Building schema (Building.avsc), not a list of our own: a field
 * added to the schema is accepted in JSON lines and as a CSV column without a change here.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hvs/calendar.h"
#include "hvs/fmt.h"
#include "hvs/ids.h"
#include "hvs/kafka.h"
#include "hvs/profile.h"
#include "hvs/serde.h"
#include "hvs/task_rows.h"
#include "hvs/text.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs/topology.h"
#include "hvs/vec.h"
#include "hvsctl.h"

static const char *const help =
    "Usage: hvsctl topology load FILE [--format jsonl|csv] [--topic T] [--timeout S] [--dry-run]\n"
    "       hvsctl topology list [--topic T]\n"
    "       hvsctl topology show ID [--topic T]\n"
    "       hvsctl topology delete ID [--topic T] [--timeout S] [--force]\n"
    "\n"
    "load: buildings onto the compacted topology topic (key building_id), from JSON lines (one\n"
    "  Building record per line, its natural JSON as `hvsctl tail topology` prints it) or, for a\n"
    "  FILE ending in .csv (or --format csv), CSV with a header row and one row per apartment:\n"
    "  the building's columns (any Building field: building_id, archetype, commissioning_date,\n"
    "  latitude, longitude, heated_area_m2, construction_year, insulation, holiday_region,\n"
    "  team, ...) repeated on every row of the building and equal on each, then apartment_id\n"
    "  and apartment_<field> for the apartment's fields (apartment_area_m2, apartment_floor,\n"
    "  apartment_occupied_since). Heat meters: meter_kind, meter_unit, meter_max_kw,\n"
    "  meter_interval_s for the building's `meter`, apartment_meter_kind, ... for an\n"
    "  apartment's own (all empty: none). An empty cell is null; a row with an empty\n"
    "  apartment_id adds no apartment. Rooms: JSON lines only.\n"
    "  Timestamps (commissioning_date, updated_at, occupied_since) are epoch milliseconds or\n"
    "  ISO-8601 (\"2021-09-01\" or \"2021-09-01T00:00:00Z\"); updated_at defaults to now.\n"
    "  Checked before anything is produced: building_id, archetype, commissioning_date,\n"
    "  latitude (-90..90) and longitude (-180..180) present; holiday_region known to the\n"
    "  calendar; heated_area_m2 and apartment areas > 0 when given; apartment ids unique in a\n"
    "  building; a building once per file; field names and types as in the Building schema;\n"
    "  a meter's kind (apartment_heat, building_heat, substation, network) and unit (kWh, MWh,\n"
    "  GJ) known, max_kw > 0 and interval_s a whole number of seconds in [1, 86400] when given.\n"
    "  Any error: every one printed, exit 1, nothing produced. Otherwise all are produced and\n"
    "  every delivery checked (\"loaded N buildings\"); loading again is safe (latest wins).\n"
    "  --dry-run validates only. A building with no heated area (heated_area_m2 absent and not\n"
    "  every apartment with an area) loads with a warning: it cannot be forecast.\n"
    "list: the buildings on the topic (latest record per key; tombstones, deleted = true gone).\n"
    "show ID: the building's JSON, then diagnostics lines starting with '#' (heated area,\n"
    "  holiday region, apartments, and the heat meter that counts each apartment).\n"
    "delete ID: a tombstone for ID (refused for an unknown ID unless --force).\n"
    "Exit status: 0 done, 1 invalid file, unknown building or Kafka failure, 2 usage.";

/* ---- schema-driven checks ------------------------------------------------------------------ */

/* A field's type with a ["null", T] union unwrapped; *nullable set. AVRO_NULL when the record
 * has no such field. */
static avro_schema_t field_schema(avro_schema_t rec, const char *name) {
    /* by index, with the name compared: avro_schema_record_field_get matched "lat" */
    int i = avro_schema_record_field_get_index(rec, name);
    if (i < 0 || strcmp(avro_schema_record_field_name(rec, i), name) != 0)
        return NULL;
    return avro_schema_record_field_get_by_index(rec, i);
}

static avro_type_t field_type(avro_schema_t rec, const char *name, bool *nullable,
                              avro_schema_t *out) {
    avro_schema_t f = field_schema(rec, name);
    *nullable = false;
    if (!f)
        return AVRO_NULL;
    if (avro_typeof(f) == AVRO_UNION) {
        avro_schema_t u = f;
        size_t others = 0;
        for (size_t b = 0; b < avro_schema_union_size(u); b++) {
            avro_schema_t bs = avro_schema_union_branch(u, (int)b);
            if (avro_typeof(bs) == AVRO_NULL)
                *nullable = true;
            else
                f = bs, others++;
        }
        if (others != 1)
            return AVRO_UNION;
    }
    if (out)
        *out = f;
    return avro_typeof(f);
}

static bool scalar(avro_type_t t) {
    return t == AVRO_STRING || t == AVRO_INT32 || t == AVRO_INT64 || t == AVRO_DOUBLE ||
           t == AVRO_FLOAT || t == AVRO_BOOLEAN || t == AVRO_ENUM;
}

/* ---- load ---------------------------------------------------------------------------------- */

typedef struct seen {
    char *id;
    long line;
} seen_t;

typedef struct loaded {
    char *id;
    void *buf;
    size_t len;
} loaded_t;

typedef struct loader {
    hvs_serde_t *s;
    hvs_encoder_t *enc;
    avro_schema_t bschema, aschema, mschema; /* Building, Apartment, Meter */
    hvs_ms_t now;
    long errors, bad_lines, warnings;
    long last_bad_line;
    seen_t *seen; /* buildings so far, sorted by id */
    size_t nseen, capseen;
    loaded_t *out;
    size_t nout, capout;
} loader_t;

/* One error: "line N: building B: what" on stderr; counted once per line for the summary. */
static void fail_at(loader_t *L, long line, const char *id, const char *fmt, ...) HVS_PRINTF(4, 5);
static void fail_at(loader_t *L, long line, const char *id, const char *fmt, ...) {
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (id && *id)
        fprintf(stderr, "line %ld: building %s: %s\n", line, id, what);
    else
        fprintf(stderr, "line %ld: %s\n", line, what);
    L->errors++;
    if (line != L->last_bad_line)
        L->bad_lines++, L->last_bad_line = line;
}

/* A long (timestamp) field given as an ISO-8601 string or date becomes epoch ms in place. */
static int fix_timestamp(loader_t *L, json_t *obj, const char *name, long line, const char *id,
                         const char *where) {
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    char iso[64];
    if (strlen(s) == 10) /* a date: its midnight UTC */
        snprintf(iso, sizeof iso, "%sT00:00:00Z", s);
    else
        snprintf(iso, sizeof iso, "%.60s", s);
    hvs_ms_t ms;
    hvs_err_t e;
    if (hvs_time_parse_iso8601(iso, &ms, &e) != 0) {
        fail_at(L, line, id, "%s%s \"%.60s\" is neither epoch ms nor ISO-8601 (%s)", where, name, s,
                e.msg);
        return -1;
    }
    json_object_set_new(obj, name, json_integer(ms));
    return 0;
}

/* Unknown field names (typos) and ISO timestamps of one record (Building or Apartment). */
static void check_fields(loader_t *L, json_t *obj, avro_schema_t rec, long line, const char *id,
                         const char *where) {
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, k, v) {
        bool nullable;
        avro_type_t t = field_type(rec, k, &nullable, NULL);
        if (!field_schema(rec, k))
            fail_at(L, line, id, "%sunknown field \"%s\" (not in the Building schema)", where, k);
        else if (t == AVRO_INT64)
            fix_timestamp(L, obj, k, line, id, where);
    }
}

/* A required number in [lo, hi]. */
static void check_coord(loader_t *L, json_t *b, const char *name, double lo, double hi, long line,
                        const char *id) {
    json_t *v = json_object_get(b, name);
    if (!v || json_is_null(v))
        fail_at(L, line, id, "missing %s", name);
    else if (!json_is_number(v))
        fail_at(L, line, id, "%s is not a number", name);
    else if (!(json_number_value(v) >= lo && json_number_value(v) <= hi))
        fail_at(L, line, id, "%s %g out of range [%g, %g]", name, json_number_value(v), lo, hi);
}

/* An optional area: null/absent, or a number > 0. */
static void check_area(loader_t *L, json_t *obj, const char *name, long line, const char *id,
                       const char *where) {
    json_t *v = json_object_get(obj, name);
    if (!v || json_is_null(v))
        return;
    if (!json_is_number(v))
        fail_at(L, line, id, "%s%s is not a number", where, name);
    else if (!(json_number_value(v) > 0) || !isfinite(json_number_value(v)))
        fail_at(L, line, id, "%s%s must be > 0 m2 (got %g)", where, name, json_number_value(v));
}

static const char *const meter_kinds[] = {"apartment_heat", "building_heat", "substation",
                                          "network", NULL};
static const char *const energy_units[] = {"kWh", "MWh", "GJ", NULL};

static bool one_of(const char *s, const char *const *list) {
    for (; s && *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

/* An optional heat meter (Building.meter, Apartment.meter): null/absent, or an object with a
 * known kind and unit (defaults when absent), max_kw > 0 and interval_s in [1 s, 1 day]. */
static void check_meter(loader_t *L, json_t *obj, long line, const char *id, const char *where) {
    json_t *m = json_object_get(obj, "meter");
    if (!m || json_is_null(m))
        return;
    if (!json_is_object(m)) {
        fail_at(L, line, id, "%smeter is not an object", where);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v) {
        if (!field_schema(L->mschema, k))
            fail_at(L, line, id, "%smeter: unknown field \"%s\" (kind, unit, max_kw, interval_s)",
                    where, k);
    }
    v = json_object_get(m, "kind");
    if (v && !json_is_null(v) && !one_of(json_string_value(v), meter_kinds))
        fail_at(L, line, id,
                "%smeter kind must be apartment_heat, building_heat, substation or network", where);
    v = json_object_get(m, "unit");
    if (v && !json_is_null(v) && !one_of(json_string_value(v), energy_units))
        fail_at(L, line, id, "%smeter unit must be kWh, MWh or GJ", where);
    v = json_object_get(m, "max_kw");
    if (v && !json_is_null(v) &&
        !(json_is_number(v) && json_number_value(v) > 0 && isfinite(json_number_value(v))))
        fail_at(L, line, id, "%smeter max_kw must be a number > 0 kW", where);
    v = json_object_get(m, "interval_s");
    if (v && !json_is_null(v) &&
        !(json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 86400))
        fail_at(L, line, id, "%smeter interval_s must be a whole number of seconds in [1, 86400]",
                where);
}

static int cmp_loaded(const void *a, const void *b) {
    return strcmp(((const loaded_t *)a)->id, ((const loaded_t *)b)->id);
}

/* Whether the deployment's forecasts need a heated area (profile.h: heat's per_heated_m2
 * does, a charging site's kwh does not). */
static bool area_needed(void) {
    return hvs_taskrow_scale(HVS_TASK_FORECAST) == HVS_TARGET_PER_HEATED_M2;
}

/* The heated area a building's JSON gives, by the one rule (hvs_topology_area); *napts and
 * *missing (apartments without an area) for the diagnostics. */
static double json_area(json_t *b, size_t *napts, size_t *missing) {
    json_t *apts = json_object_get(b, "apartments");
    size_t n = json_is_array(apts) ? json_array_size(apts) : 0;
    double *a = calloc(n ? n : 1, sizeof *a);
    *missing = 0;
    for (size_t i = 0; a && i < n; i++) {
        json_t *x = json_object_get(json_array_get(apts, i), "area_m2");
        a[i] = json_is_number(x) ? json_number_value(x) : NAN;
        if (!(a[i] > 0))
            (*missing)++;
    }
    json_t *h = json_object_get(b, "heated_area_m2");
    double area = a ? hvs_topology_area(json_is_number(h) ? json_number_value(h) : NAN, a, n) : NAN;
    free(a);
    *napts = n;
    return area;
}

/* Why the apartments give no area: "no apartments" or "K of N apartments without area_m2". */
static void area_why(char *out, size_t cap, size_t missing, size_t napts) {
    if (napts == 0)
        snprintf(out, cap, "no apartments");
    else
        snprintf(out, cap, "%zu of %zu apartments without area_m2", missing, napts);
}

/*
 * Validate one building (from a JSON line, or the rows of a CSV building: apt_lines gives each
 * apartment's row, NULL for JSON lines) and, when valid, encode it into L->out.
 */
static void check_building(loader_t *L, json_t *b, long line, const long *apt_lines) {
    if (!json_is_object(b)) {
        fail_at(L, line, NULL, "not a JSON object");
        return;
    }
    long errors = L->errors;
    json_t *idv = json_object_get(b, "building_id");
    const char *id = json_string_value(idv);
    hvs_err_t e;
    if (!idv || json_is_null(idv)) {
        fail_at(L, line, NULL, "missing building_id");
        return;
    }
    if (!id) {
        fail_at(L, line, NULL, "building_id is not a string");
        return;
    }
    if (hvs_id_check(id, "building_id", &e) != 0) {
        fail_at(L, line, NULL, "%s", e.msg);
        return;
    }
    size_t pos;
    bool found;
    HVS_VEC_BSEARCH_STR(L->seen, L->nseen, .id, id, pos, found);
    if (found) { /* said, and the rest of the line still checked */
        fail_at(L, line, id, "duplicate building (already on line %ld)", L->seen[pos].line);
    } else {
        seen_t *g = hvs_vec_grow(L->seen, &L->capseen, L->nseen + 1, sizeof *g, 64);
        char *copy = g ? strdup(id) : NULL;
        if (!copy) {
            fail_at(L, line, id, "out of memory");
            return;
        }
        L->seen = g;
        hvs_vec_open(L->seen, L->nseen++, pos, sizeof *L->seen);
        L->seen[pos] = (seen_t){copy, line};
    }

    check_fields(L, b, L->bschema, line, id, "");
    json_t *arch = json_object_get(b, "archetype");
    if (!json_is_string(arch) || !*json_string_value(arch))
        fail_at(L, line, id, "missing archetype");
    json_t *cd = json_object_get(b, "commissioning_date");
    if (!cd || json_is_null(cd))
        fail_at(L, line, id, "missing commissioning_date");
    check_coord(L, b, "latitude", -90, 90, line, id);
    check_coord(L, b, "longitude", -180, 180, line, id);
    check_area(L, b, "heated_area_m2", line, id, "");
    check_meter(L, b, line, id, "");
    json_t *region = json_object_get(b, "holiday_region");
    if (json_is_string(region)) {
        hvs_calendar_t *cal = NULL;
        if (hvs_calendar_new(json_string_value(region), &cal, &e) != 0)
            fail_at(L, line, id, "unknown holiday_region \"%s\" (%s)", json_string_value(region),
                    e.msg);
        hvs_calendar_destroy(cal);
    }
    if (json_is_true(json_object_get(b, "deleted")))
        fail_at(L, line, id, "deleted: true (use `hvsctl topology delete %s`)", id);
    json_t *apts = json_object_get(b, "apartments");
    if (apts && !json_is_array(apts) && !json_is_null(apts))
        fail_at(L, line, id, "apartments is not an array");
    size_t n = json_is_array(apts) ? json_array_size(apts) : 0;
    for (size_t i = 0; i < n; i++) {
        long al = apt_lines ? apt_lines[i] : line;
        json_t *a = json_array_get(apts, i);
        char where[64];
        snprintf(where, sizeof where, "apartments[%zu]: ", i);
        if (!json_is_object(a)) {
            fail_at(L, al, id, "%snot an object", where);
            continue;
        }
        const char *aid = json_string_value(json_object_get(a, "apartment_id"));
        if (!aid) {
            fail_at(L, al, id, "%smissing apartment_id", where);
            continue;
        }
        snprintf(where, sizeof where, "apartment %.40s: ", aid);
        if (hvs_id_check(aid, "apartment_id", &e) != 0)
            fail_at(L, al, id, "%s", e.msg);
        for (size_t k = 0; k < i; k++)
            if (json_is_object(json_array_get(apts, k)) &&
                json_equal(json_object_get(json_array_get(apts, k), "apartment_id"),
                           json_object_get(a, "apartment_id"))) {
                if (apt_lines)
                    fail_at(L, al, id, "duplicate apartment %s (also on line %ld)", aid,
                            apt_lines[k]);
                else
                    fail_at(L, al, id, "duplicate apartment %s", aid);
                break;
            }
        check_fields(L, a, L->aschema, al, id, where);
        check_area(L, a, "area_m2", al, id, where);
        check_meter(L, a, al, id, where);
    }
    if (!json_object_get(b, "updated_at") || json_is_null(json_object_get(b, "updated_at")))
        json_object_set_new(b, "updated_at", json_integer(L->now));
    if (L->errors != errors)
        return;
    /* the schema's own checks (types, required fields) through the one JSON -> Avro path */
    char *text = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER);
    const void *buf;
    size_t len;
    if (!text ||
        hvs_serde_value_from_json(L->s, hvs_encoder_value(L->enc), text, strlen(text), &e) != 0 ||
        hvs_encoder_encode(L->enc, &buf, &len, &e) != 0) {
        fail_at(L, line, id, "%s", text ? e.msg : "out of memory");
        free(text);
        return;
    }
    free(text);
    loaded_t *o = hvs_vec_grow(L->out, &L->capout, L->nout + 1, sizeof *o, 64);
    void *copyb = o ? malloc(len) : NULL;
    char *oid = copyb ? strdup(id) : NULL;
    if (!oid) {
        free(copyb);
        fail_at(L, line, id, "out of memory");
        return;
    }
    L->out = o;
    memcpy(copyb, buf, len);
    L->out[L->nout++] = (loaded_t){oid, copyb, len};
    size_t na, missing;
    if (isnan(json_area(b, &na, &missing)) && area_needed()) {
        char why[96];
        area_why(why, sizeof why, missing, na);
        fprintf(stderr,
                "line %ld: building %s: warning: no heated area (heated_area_m2 absent; %s): not "
                "forecastable\n",
                line, id, why);
        L->warnings++;
    }
}

/* One JSON line. */
static void load_jsonl_line(loader_t *L, const char *line, size_t len, long lineno) {
    json_error_t je;
    json_t *b = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!b) {
        fail_at(L, lineno, NULL, "not JSON: %s (column %d)", je.text, je.column);
        return;
    }
    check_building(L, b, lineno, NULL);
    json_decref(b);
}

/* ---- CSV ------------------------------------------------------------------------------------ */

#define CSV_MAX_COLS 64

typedef struct csv_col {
    char name[64];
    bool apartment; /* apartment_id or apartment_<field> */
    const char *field;
    const char *meter; /* meter_<sub>: `field` is "meter", this the Meter field; else NULL */
    avro_type_t type;
} csv_col_t;

/* The object a column's value goes into: obj, or its meter (created when create). */
static json_t *col_obj(json_t *obj, const csv_col_t *c, bool create) {
    if (!c->meter)
        return obj;
    json_t *m = json_object_get(obj, "meter");
    if (!m && create) {
        m = json_object();
        json_object_set_new(obj, "meter", m);
    }
    return m;
}

static const char *col_field(const csv_col_t *c) { return c->meter ? c->meter : c->field; }

typedef struct csv_building {
    char *id;
    json_t *obj; /* the building's fields, apartments appended */
    long line;   /* its first row */
    long *apt_lines;
    size_t napts, cap;
} csv_building_t;

/* A cell as the JSON value of a field of type t; NULL (error printed) when it does not parse. */
static json_t *csv_value(loader_t *L, const csv_col_t *c, const char *cell, long line,
                         const char *id) {
    if (!*cell)
        return json_null();
    char *end;
    errno = 0;
    switch (c->type) {
    case AVRO_DOUBLE:
    case AVRO_FLOAT: {
        double d = strtod(cell, &end);
        if (*end || errno || !isfinite(d))
            break;
        return json_real(d);
    }
    case AVRO_INT32:
    case AVRO_INT64: {
        long long v = strtoll(cell, &end, 10);
        if (!*end && !errno)
            return json_integer(v);
        if (c->type == AVRO_INT64)
            return json_string(cell); /* an ISO timestamp: converted with the building */
        break;
    }
    case AVRO_BOOLEAN:
        if (strcmp(cell, "true") == 0 || strcmp(cell, "false") == 0)
            return json_boolean(cell[0] == 't');
        break;
    default: return json_string(cell);
    }
    fail_at(L, line, id, "%s \"%.60s\" is not a %s", c->name, cell,
            c->type == AVRO_BOOLEAN ? "boolean (true/false)"
            : c->type == AVRO_INT32 ? "whole number"
                                    : "number");
    return NULL;
}

static void load_csv(loader_t *L, FILE *in) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    csv_col_t cols[CSV_MAX_COLS];
    int ncols = -1, id_col = -1, apt_col = -1;
    csv_building_t *bs = NULL;
    size_t nbs = 0, capbs = 0;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        char *text = line;
        if (ncols < 0 && strncmp(text, "\xEF\xBB\xBF", 3) == 0)
            text += 3; /* a spreadsheet's UTF-8 byte order mark */
        char *cells[CSV_MAX_COLS];
        int n = hvs_text_csv_split(text, cells, CSV_MAX_COLS);
        if (n < 0 || n > CSV_MAX_COLS) {
            fail_at(L, lineno, NULL, "malformed CSV (unterminated quote or over %d cells)",
                    CSV_MAX_COLS);
            if (ncols < 0)
                break;
            continue;
        }
        if (ncols < 0) { /* the header */
            ncols = n;
            for (int i = 0; i < n; i++) {
                csv_col_t *c = &cols[i];
                snprintf(c->name, sizeof c->name, "%s", cells[i]);
                c->apartment = strncmp(c->name, "apartment_", 10) == 0;
                c->field = strcmp(c->name, "apartment_id") == 0 ? "apartment_id"
                           : c->apartment                       ? c->name + 10
                                                                : c->name;
                bool nullable;
                c->meter = NULL;
                if (strncmp(c->field, "meter_", 6) == 0) {
                    c->meter = c->field + 6;
                    c->field = "meter";
                    c->type = field_type(L->mschema, c->meter, &nullable, NULL);
                } else {
                    c->type = field_type(c->apartment ? L->aschema : L->bschema, c->field,
                                         &nullable, NULL);
                }
                if (strcmp(c->name, "building_id") == 0)
                    id_col = i;
                if (strcmp(c->name, "apartment_id") == 0)
                    apt_col = i;
                if (!scalar(c->type))
                    fail_at(L, lineno, NULL,
                            "column \"%s\" is not a %s field (see "
                            "`hvsctl topology --help`)",
                            c->name, c->apartment ? "scalar Apartment" : "scalar Building");
                for (int k = 0; k < i; k++)
                    if (strcmp(cols[k].name, c->name) == 0)
                        fail_at(L, lineno, NULL, "column \"%s\" twice", c->name);
            }
            if (id_col < 0)
                fail_at(L, lineno, NULL, "the header has no building_id column");
            if (L->errors)
                break; /* rows cannot be read without their header */
            continue;
        }
        if (n != ncols) {
            fail_at(L, lineno, NULL, "%d cells, the header has %d", n, ncols);
            continue;
        }
        const char *id = cells[id_col];
        if (!*id) {
            fail_at(L, lineno, NULL, "missing building_id");
            continue;
        }
        size_t at = 0;
        for (at = 0; at < nbs && strcmp(bs[at].id, id) != 0; at++)
            ;
        json_t *bld = NULL, *apt = NULL;
        bool first = at == nbs;
        if (first) {
            csv_building_t *g = hvs_vec_grow(bs, &capbs, nbs + 1, sizeof *g, 16);
            if (!g)
                break;
            bs = g;
            char *copy = strdup(id);
            json_t *obj = json_object();
            if (!copy || !obj || json_object_set_new(obj, "apartments", json_array())) {
                free(copy), json_decref(obj);
                fail_at(L, lineno, id, "out of memory");
                break;
            }
            bs[nbs++] = (csv_building_t){copy, obj, lineno, NULL, 0, 0};
        }
        csv_building_t *cb = &bs[at];
        bld = cb->obj;
        bool row_ok = true;
        if (apt_col >= 0 && *cells[apt_col])
            apt = json_object();
        for (int i = 0; i < ncols; i++) {
            const csv_col_t *c = &cols[i];
            if (c->apartment && !apt)
                continue;
            json_t *v = csv_value(L, c, cells[i], lineno, id);
            if (!v) {
                row_ok = false;
                continue;
            }
            if (c->apartment) {
                if (!json_is_null(v))
                    json_object_set_new(col_obj(apt, c, true), col_field(c), v);
                else
                    json_decref(v);
                continue;
            }
            if (first) {
                if (!json_is_null(v))
                    json_object_set_new(col_obj(bld, c, true), col_field(c), v);
                else
                    json_decref(v);
                continue;
            }
            json_t *mo = col_obj(bld, c, false);
            json_t *was = mo ? json_object_get(mo, col_field(c)) : NULL;
            if (!(json_equal(was ? was : json_null(), v) || (json_is_null(v) && !was))) {
                char *a = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(12)),
                     *b = was ? json_dumps(was, JSON_ENCODE_ANY | JSON_REAL_PRECISION(12)) : NULL;
                fail_at(L, lineno, id,
                        "%s %s differs from line %ld's %s (building columns repeat "
                        "on every row of a building)",
                        c->name, a ? a : "?", cb->line, b ? b : "(empty)");
                free(a), free(b);
                row_ok = false;
            }
            json_decref(v);
        }
        if (apt && row_ok) {
            long *g = hvs_vec_grow(cb->apt_lines, &cb->cap, cb->napts + 1, sizeof *g, 16);
            if (g) {
                cb->apt_lines = g;
                cb->apt_lines[cb->napts++] = lineno;
                json_array_append(json_object_get(bld, "apartments"), apt);
            }
        }
        json_decref(apt);
    }
    free(line);
    if (ncols < 0 && L->errors == 0)
        fail_at(L, lineno ? lineno : 1, NULL, "no header row");
    for (size_t i = 0; i < nbs; i++) {
        check_building(L, bs[i].obj, bs[i].line, bs[i].apt_lines);
        json_decref(bs[i].obj);
        free(bs[i].id);
        free(bs[i].apt_lines);
    }
    free(bs);
}

static void loader_fini(loader_t *L) {
    for (size_t i = 0; i < L->nseen; i++)
        free(L->seen[i].id);
    free(L->seen);
    for (size_t i = 0; i < L->nout; i++)
        free(L->out[i].id), free(L->out[i].buf);
    free(L->out);
    hvs_encoder_destroy(L->enc);
    hvs_serde_destroy(L->s);
}

static int cmd_load(hvs_app_t *app, int argc, char **argv, const char *topic) {
    const char *path = NULL, *format = NULL;
    long timeout_s = 30;
    bool dry = false;
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--format") == 0 && v)
            format = v, i++;
        else if (strcmp(argv[i], "--timeout") == 0) {
            if ((timeout_s = hvsctl_parse_count(argv[i], v)) < 0)
                return 2;
            i++;
        } else if (strcmp(argv[i], "--dry-run") == 0)
            dry = true;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "hvsctl topology load: unknown option %s\n", argv[i]);
            return 2;
        } else if (!path)
            path = argv[i];
        else {
            fprintf(stderr, "hvsctl topology load: one file at a time\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "hvsctl topology load: FILE needed (- for standard input)\n");
        return 2;
    }
    size_t pl = strlen(path);
    bool csv = format ? strcmp(format, "csv") == 0
                      : pl > 4 && strcasecmp(path + pl - 4, ".csv") == 0;
    if (format && !csv && strcmp(format, "jsonl") != 0) {
        fprintf(stderr, "hvsctl topology load: --format jsonl or csv\n");
        return 2;
    }
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!in) {
        fprintf(stderr, "hvsctl topology load: cannot open %s: %s\n", path, strerror(errno));
        return 2;
    }
    loader_t L = {.now = hvs_time_now_ms(), .last_bad_line = -1};
    hvs_err_t err;
    int rc = 1;
    if (hvs_serde_new(app->cfg.schema_registry_url, &L.s, &err) != 0 ||
        hvs_encoder_new(L.s, HVS_SCHEMA_BUILDING, topic, &L.enc, &err) != 0) {
        fprintf(stderr, "hvsctl topology load: %s\n", err.msg);
        goto out;
    }
    L.bschema = avro_value_get_schema(hvs_encoder_value(L.enc));
    avro_schema_t arr;
    bool nullable;
    if (field_type(L.bschema, "apartments", &nullable, &arr) != AVRO_ARRAY) {
        fprintf(stderr, "hvsctl topology load: the Building schema has no apartments array\n");
        goto out;
    }
    L.aschema = avro_schema_array_items(arr);
    if (field_type(L.aschema, "meter", &nullable, &L.mschema) != AVRO_RECORD) {
        fprintf(stderr, "hvsctl topology load: the Building schema has no Apartment.meter\n");
        goto out;
    }
    if (csv) {
        load_csv(&L, in);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        long lineno = 0;
        while ((len = getline(&line, &cap, in)) >= 0) {
            lineno++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                               line[len - 1] == ' ' || line[len - 1] == '\t'))
                line[--len] = '\0';
            if (len > 0)
                load_jsonl_line(&L, line, (size_t)len, lineno);
        }
        free(line);
    }
    if (L.errors) {
        fprintf(stderr, "hvsctl topology load: %s: %ld error%s on %ld line%s: nothing loaded\n",
                path, L.errors, L.errors == 1 ? "" : "s", L.bad_lines, L.bad_lines == 1 ? "" : "s");
        goto out;
    }
    if (L.nout == 0) {
        fprintf(stderr, "hvsctl topology load: %s: no buildings\n", path);
        goto out;
    }
    qsort(L.out, L.nout, sizeof *L.out, cmp_loaded);
    if (dry) {
        printf("valid: %zu building%s (dry run: nothing produced)\n", L.nout,
               L.nout == 1 ? "" : "s");
        rc = 0;
        goto out;
    }
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    hvs_producer_t *p = NULL;
    if (hvs_producer_new(&kc, &p, &err) != 0) {
        fprintf(stderr, "hvsctl topology load: %s\n", err.msg);
        goto out;
    }
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(hvs_producer_handle(p), 0, NULL, &md,
                                              (int)(timeout_s < 10 ? timeout_s : 10) * 1000);
    if (e) {
        fprintf(stderr, "hvsctl topology load: cannot reach Kafka at %s: %s; nothing loaded\n",
                kc.brokers, rd_kafka_err2str(e));
        hvs_producer_destroy(p);
        goto out;
    }
    rd_kafka_metadata_destroy(md);
    size_t sent = 0;
    for (; sent < L.nout; sent++)
        if (hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, L.out[sent].id,
                              strlen(L.out[sent].id), L.out[sent].buf, L.out[sent].len,
                              &err) != 0) {
            fprintf(stderr, "hvsctl topology load: %s: %s\n", L.out[sent].id, err.msg);
            break;
        }
    int frc = hvs_producer_flush(p, (int)timeout_s * 1000, &err);
    uint64_t ok = hvs_producer_delivered(p), failed = hvs_producer_failed(p);
    if (sent == L.nout && frc == 0 && failed == 0 && ok == L.nout) {
        printf("loaded %zu building%s -> %s\n", L.nout, L.nout == 1 ? "" : "s", topic);
        rc = 0;
    } else {
        fprintf(stderr,
                "hvsctl topology load: Kafka acknowledged %llu of %zu buildings (%s): load the "
                "file again (a record replaces its building: loading twice is safe)\n",
                (unsigned long long)ok, L.nout, frc ? err.msg : "deliveries failed");
    }
    hvs_producer_destroy(p);
out:
    if (in != stdin)
        fclose(in);
    loader_fini(&L);
    return rc;
}

/* ---- list, show, delete: the topic's latest state ------------------------------------------ */

typedef struct state_rec {
    char *id;
    json_t *value; /* NULL: removed */
    bool tombstone;
    int32_t partition;
    int64_t offset;
} state_rec_t;

/* The read callback has no opaque pointer: the one state of this command. */
static struct {
    state_rec_t *r;
    size_t n, cap;
    long bad;
} st;

static state_rec_t *state_slot(const char *id, size_t len) {
    char key[HVS_ID_MAX + 1];
    snprintf(key, sizeof key, "%.*s", (int)(len < HVS_ID_MAX ? len : HVS_ID_MAX), id);
    size_t pos;
    bool found;
    HVS_VEC_BSEARCH_STR(st.r, st.n, .id, key, pos, found);
    if (found)
        return &st.r[pos];
    state_rec_t *g = hvs_vec_grow(st.r, &st.cap, st.n + 1, sizeof *g, 64);
    char *copy = g ? strdup(key) : NULL;
    if (!copy)
        return NULL;
    st.r = g;
    hvs_vec_open(st.r, st.n++, pos, sizeof *st.r);
    st.r[pos] = (state_rec_t){.id = copy};
    return &st.r[pos];
}

static int on_record(hvs_decoder_t *dec, const rd_kafka_message_t *m) {
    state_rec_t *r = NULL;
    json_t *j = NULL;
    if (!m->payload) { /* a tombstone: by key, as the followers do */
        if (!m->key || !(r = state_slot(m->key, m->key_len)))
            return 0;
        r->tombstone = true;
    } else {
        avro_value_t *v;
        hvs_err_t err;
        char *text = NULL;
        if (hvs_decoder_decode(dec, m->payload, m->len, &v, &err) != 0 ||
            hvs_serde_value_to_json(v, &text, &err) != 0 || !(j = json_loads(text, 0, NULL)) ||
            !json_is_string(json_object_get(j, "building_id"))) {
            free(text);
            json_decref(j);
            st.bad++;
            return 0;
        }
        free(text);
        const char *id = json_string_value(json_object_get(j, "building_id"));
        if (!(r = state_slot(id, strlen(id)))) {
            json_decref(j);
            return 0;
        }
        r->tombstone = false;
        if (json_is_true(json_object_get(j, "deleted"))) {
            json_decref(j);
            j = NULL;
        }
    }
    json_decref(r->value);
    r->value = j;
    r->partition = m->partition;
    r->offset = m->offset;
    return 0;
}

static void state_free(void) {
    for (size_t i = 0; i < st.n; i++) {
        free(st.r[i].id);
        json_decref(st.r[i].value);
    }
    free(st.r);
    memset(&st, 0, sizeof st);
}

static int read_state(hvs_app_t *app, const char *topic) {
    hvsctl_read_opts_t o = {
        .topic = topic, .partition = -1, .from_beginning = true, .timeout_ms = 10000};
    int rc = hvsctl_read_decoded(app, &o, HVS_SCHEMA_BUILDING, on_record);
    if (rc == 0 && st.bad)
        fprintf(stderr,
                "hvsctl topology: %ld records on %s did not decode (skipped, as the "
                "workers do)\n",
                st.bad, topic);
    return rc;
}

static const state_rec_t *state_find(const char *id) {
    size_t pos;
    bool found;
    HVS_VEC_BSEARCH_STR(st.r, st.n, .id, id, pos, found);
    return found ? &st.r[pos] : NULL;
}

static const char *jstr(json_t *o, const char *name, const char *dflt) {
    const char *s = json_string_value(json_object_get(o, name));
    return s && *s ? s : dflt;
}

static int cmd_list(hvs_app_t *app, const char *topic) {
    int rc = read_state(app, topic);
    if (rc)
        return rc;
    printf("%-24s %-18s %-8s %-24s %s\n", "BUILDING", "ARCHETYPE", "REGION", "HEATED_AREA_M2",
           "APARTMENTS");
    size_t shown = 0;
    for (size_t i = 0; i < st.n; i++) {
        json_t *b = st.r[i].value;
        if (!b)
            continue;
        size_t na, missing;
        double area = json_area(b, &na, &missing);
        char a[40];
        if (isnan(area))
            snprintf(a, sizeof a, area_needed() ? "- (not forecastable)" : "-");
        else
            snprintf(a, sizeof a, "%.1f%s", area,
                     json_is_number(json_object_get(b, "heated_area_m2")) ? "" : " (apartments)");
        printf("%-24s %-18s %-8s %-24s %zu\n", st.r[i].id, jstr(b, "archetype", "-"),
               jstr(b, "holiday_region", "-"), a, na);
        shown++;
    }
    printf("%zu building%s on %s\n", shown, shown == 1 ? "" : "s", topic);
    return 0;
}

/* A meter as the aggregator counts it: "substation in MWh, max_kw 5000, interval_s 3600". */
static void meter_text(json_t *m, char *out, size_t cap) {
    if (!json_is_object(m)) {
        snprintf(out, cap, "none (apartment heat meters in kWh at the aggregator's defaults)");
        return;
    }
    json_t *kw = json_object_get(m, "max_kw"), *iv = json_object_get(m, "interval_s");
    char k[48] = "the kind's default", s[64] = "";
    if (json_is_number(kw))
        snprintf(k, sizeof k, "%g kW", json_number_value(kw));
    if (json_is_integer(iv))
        snprintf(s, sizeof s, "every %lld s", (long long)json_integer_value(iv));
    else
        snprintf(s, sizeof s, "%s",
                 strcmp(jstr(m, "kind", "apartment_heat"), "apartment_heat") == 0
                     ? "HVS_AGG_SAMPLE_INTERVAL"
                     : "interval learned from the data");
    snprintf(out, cap, "%s in %s, capacity %s, %s", jstr(m, "kind", "apartment_heat"),
             jstr(m, "unit", "kWh"), k, s);
}

static int cmd_show(hvs_app_t *app, const char *id, const char *topic) {
    int rc = read_state(app, topic);
    if (rc)
        return rc;
    const state_rec_t *r = state_find(id);
    if (!r || !r->value) {
        if (r)
            fprintf(stderr,
                    "hvsctl topology show: building %s was removed (%s at partition %d "
                    "offset %lld)\n",
                    id, r->tombstone ? "tombstone" : "deleted = true", (int)r->partition,
                    (long long)r->offset);
        else
            fprintf(stderr, "hvsctl topology show: no building %s on %s\n", id, topic);
        return 1;
    }
    json_t *b = r->value;
    char *text = json_dumps(b, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text)
        puts(text);
    free(text);
    char iso[32] = "?";
    json_t *u = json_object_get(b, "updated_at");
    if (json_is_integer(u))
        hvs_time_format_iso8601(json_integer_value(u), iso, sizeof iso);
    printf("# record: partition %d, offset %lld, updated_at %s\n", (int)r->partition,
           (long long)r->offset, iso);
    size_t na, missing;
    double area = json_area(b, &na, &missing);
    char why[96];
    area_why(why, sizeof why, missing, na);
    if (isnan(area) && area_needed())
        printf("# not forecastable: no heated area (heated_area_m2 absent; %s)\n", why);
    else if (isnan(area))
        printf("# heated area: none (the %s profile forecasts without one)\n",
               hvs_profile_active()->name);
    else if (json_is_number(json_object_get(b, "heated_area_m2")))
        printf("# heated area: %.1f m2 (heated_area_m2)\n", area);
    else
        printf("# heated area: %.1f m2 (derived: the sum of the %zu apartments' area_m2)\n", area,
               na);
    const char *region = jstr(b, "holiday_region", NULL);
    hvs_calendar_t *cal = NULL;
    hvs_err_t err;
    if (!region)
        printf("# holiday region: none (the workers use their default region)\n");
    else if (hvs_calendar_new(region, &cal, &err) == 0)
        printf("# holiday region: %s\n", region);
    else
        printf("# unknown holiday region %s: %s (the workers use their default region)\n", region,
               err.msg);
    hvs_calendar_destroy(cal);
    printf("# apartments: %zu\n", na);
    char what[200];
    json_t *bm = json_object_get(b, "meter");
    meter_text(bm, what, sizeof what);
    printf("# meter: %s\n", what);
    json_t *apts = json_object_get(b, "apartments"), *a;
    size_t i, own = 0;
    json_array_foreach(apts, i, a) {
        json_t *m = json_object_get(a, "meter");
        if (!json_is_object(m))
            continue;
        own++;
        meter_text(m, what, sizeof what);
        printf("# apartment %s: own meter: %s\n", jstr(a, "apartment_id", "?"), what);
    }
    if (na > 0)
        printf("# apartments on the building's meter: %zu of %zu\n", na - own, na);
    return 0;
}

static int cmd_delete(hvs_app_t *app, const char *id, bool force, long timeout_s,
                      const char *topic) {
    hvs_err_t err;
    if (hvs_id_check(id, "building_id", &err) != 0) {
        fprintf(stderr, "hvsctl topology delete: %s\n", err.msg);
        return 2;
    }
    if (!force) {
        int rc = read_state(app, topic);
        if (rc)
            return rc;
        const state_rec_t *r = state_find(id);
        if (!r || !r->value) {
            fprintf(stderr,
                    "hvsctl topology delete: no building %s on %s (--force writes the "
                    "tombstone anyway)\n",
                    id, topic);
            return 1;
        }
    }
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    hvs_producer_t *p = NULL;
    int rc = 1;
    if (hvs_producer_new(&kc, &p, &err) == 0 &&
        hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, id, strlen(id), NULL, 0, &err) == 0 &&
        hvs_producer_flush(p, (int)timeout_s * 1000, &err) == 0 && hvs_producer_failed(p) == 0 &&
        hvs_producer_delivered(p) == 1) {
        printf("deleted %s: tombstone on %s\n", id, topic);
        rc = 0;
    } else {
        fprintf(stderr, "hvsctl topology delete: %s: %s\n", id, err.msg);
    }
    hvs_producer_destroy(p);
    return rc;
}

int hvsctl_topology(hvs_app_t *app, int argc, char **argv) {
    if (argc < 1 || hvsctl_wants_help(argc, argv)) {
        puts(help);
        return argc < 1 ? 2 : 0;
    }
    /* the user's regions (HVS_CALENDAR_FILE) count as known, as in the workers */
    hvs_err_t cal_err;
    if (hvs_calendar_load(app->cfg.calendar_file, &cal_err) != 0) {
        fprintf(stderr, "hvsctl topology: %s\n", cal_err.msg);
        return 1;
    }
    const char *topic = hvs_topic_name("topology");
    /* --topic anywhere; the rest is the subcommand's */
    char *rest[64];
    int n = 0;
    for (int i = 1; i < argc && n < 64; i++) {
        if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
            topic = argv[++i];
        else
            rest[n++] = argv[i];
    }
    const char *cmd = argv[0];
    int rc = 2;
    if (strcmp(cmd, "load") == 0) {
        rc = cmd_load(app, n, rest, topic);
    } else if (strcmp(cmd, "list") == 0 && n == 0) {
        rc = cmd_list(app, topic);
    } else if (strcmp(cmd, "show") == 0 && n == 1) {
        rc = cmd_show(app, rest[0], topic);
    } else if (strcmp(cmd, "delete") == 0 && n >= 1) {
        bool force = false;
        long timeout_s = 30;
        const char *id = NULL;
        for (int i = 0; i < n; i++) {
            if (strcmp(rest[i], "--force") == 0)
                force = true;
            else if (strcmp(rest[i], "--timeout") == 0) {
                if ((timeout_s = hvsctl_parse_count(rest[i], i + 1 < n ? rest[i + 1] : NULL)) < 0)
                    return 2;
                i++;
            } else if (!id && rest[i][0] != '-')
                id = rest[i];
            else {
                fprintf(stderr, "hvsctl topology delete: unexpected %s\n", rest[i]);
                return 2;
            }
        }
        if (id)
            rc = cmd_delete(app, id, force, timeout_s, topic);
        else
            fprintf(stderr, "hvsctl topology delete: ID needed\n");
    } else {
        fprintf(stderr, "hvsctl topology: unknown use; see `hvsctl topology --help`\n");
    }
    state_free();
    return rc;
}
