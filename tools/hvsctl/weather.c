/*
 * hvsctl weather import: a user's own hourly weather (a station's records, a provider's export)
 * -> OBSERVED Weather records on weather.hourly, keyed by building, the same records the weather
 * worker's backfill publishes (issued_at = the hour's end). The whole file is read and checked
 * first; one bad line and nothing is published (every bad line is named, the first 20 printed).
 */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/kafka.h"
#include "hvs/serde.h"
#include "hvs/text.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvs/topology.h"
#include "hvsctl.h"

static const char *const help =
    "Usage: hvsctl weather import FILE [--format csv|jsonl] [--building ID] [--lat X --lon Y]\n"
    "                             [--provider P] [--topic T] [--timeout S]\n"
    "\n"
    "Publishes hourly weather of the past as OBSERVED Weather records (issued at the end of\n"
    "their hour) to weather.hourly (or --topic), keyed by building id. FILE is CSV with a header\n"
    "line, or JSON lines (one object per hour); --format, else the name (.csv, .jsonl/.json/\n"
    ".ndjson), else the first character ('{': JSON lines) decides. Columns / keys:\n"
    "  time                      required: the hour's start, ISO-8601 with a zone\n"
    "                            (2024-01-05T13:00:00Z, +01:00 ...), or YYYY-MM-DDTHH:MM as UTC\n"
    "                            (Open-Meteo's form); on the hour, over (not in the future)\n"
    "  temperature_c             air temperature at 2 m, degC, [-80, 60]   -> temperature_c\n"
    "  relative_humidity_pct     relative humidity, %, [0, 100]           -> relative_humidity_pct\n"
    "  cloud_cover_pct           cloud cover, %, [0, 100]                 -> cloud_cover_pct\n"
    "  radiation_w_m2            global horizontal irradiance, W/m2, [0, 1500]\n"
    "                            (also shortwave_radiation_wm2)          -> shortwave_radiation_wm2\n"
    "  wind_speed_ms             wind at 10 m, m/s, [0, 120]             -> wind_speed_ms\n"
    "  building_id               the building the hour is for (else --building)\n"
    "  latitude, longitude       where (else --lat/--lon, else the building's in topology)\n"
    "At least one value column; an empty CSV cell or JSON null is an unknown value, a line with\n"
    "no value at all is refused. Every line is checked (time, ranges, columns, a building known\n"
    "or located, no hour twice for a building); with any bad line nothing is published and each\n"
    "one is named as FILE:LINE. CSV cells may be quoted (\"...\") but hold no comma.\n"
    "  --provider P   the records' provider field (default \"import\")\n"
    "  --timeout S    give up when Kafka has not acknowledged everything (default 30)\n"
    "Prints \"imported N hours for M locations\". Exit status: 0 imported, 1 bad input or Kafka\n"
    "failure (nothing or not everything published: see the message), 2 usage.";

enum { V_TEMP, V_RH, V_CLOUD, V_GHI, V_WIND, NV };
static const struct {
    const char *name, *alias, *field;
    double lo, hi;
} vars[NV] = {
    {"temperature_c", NULL, "temperature_c", -80, 60},
    {"relative_humidity_pct", NULL, "relative_humidity_pct", 0, 100},
    {"cloud_cover_pct", NULL, "cloud_cover_pct", 0, 100},
    {"radiation_w_m2", "shortwave_radiation_wm2", "shortwave_radiation_wm2", 0, 1500},
    {"wind_speed_ms", NULL, "wind_speed_ms", 0, 120},
};
enum { C_TIME = NV, C_BUILDING, C_LAT, C_LON, NCOLS };
static const char *const other_cols[] = {"time", "building_id", "latitude", "longitude"};

#define MAX_ERRORS_SHOWN 20
#define ID_MAX 128

typedef struct row {
    char building[ID_MAX];
    double lat, lon; /* NAN: not given */
    hvs_ms_t hour;
    unsigned present;
    double v[NV];
    long line;
} row_t;

typedef struct ctx {
    const char *label;
    const char *building; /* --building */
    double lat, lon;      /* --lat/--lon (NAN: none) */
    hvs_ms_t now;
    row_t *rows;
    size_t n, cap;
    long errors;
} ctx_t;

static void bad(ctx_t *c, long line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void bad(ctx_t *c, long line, const char *fmt, ...) {
    if (c->errors++ < MAX_ERRORS_SHOWN) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s:%ld: ", c->label, line);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
}

static int column_of(const char *name) {
    for (int v = 0; v < NV; v++)
        if (strcmp(name, vars[v].name) == 0 || (vars[v].alias && strcmp(name, vars[v].alias) == 0))
            return v;
    for (int k = 0; k < NCOLS - NV; k++)
        if (strcmp(name, other_cols[k]) == 0)
            return NV + k;
    return -1;
}

static const char *col_name(int c) { return c < NV ? vars[c].name : other_cols[c - NV]; }

/* The hour of `s`: 0, or -1 with the line marked bad. */
static int parse_time(ctx_t *c, long line, const char *s, hvs_ms_t *out) {
    char buf[64];
    size_t n = strlen(s);
    /* Open-Meteo's "YYYY-MM-DDTHH:MM" (and with a space): UTC */
    if (n == 16 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == ' ') && s[13] == ':') {
        snprintf(buf, sizeof buf, "%.16s:00Z", s);
        s = buf;
    }
    hvs_err_t e = {0};
    if (hvs_time_parse_iso8601(s, out, &e)) {
        bad(c, line, "bad time \"%.40s\": %s", s == buf ? buf : s, e.msg);
        return -1;
    }
    if (*out % HVS_MS_HOUR != 0) {
        bad(c, line, "time \"%.40s\" is not on the hour", s);
        return -1;
    }
    if (*out + HVS_MS_HOUR > c->now) {
        bad(c, line, "time \"%.40s\": the hour is not over yet (only observed weather is imported)",
            s);
        return -1;
    }
    if (*out < (hvs_ms_t)hvs_time_days_from_civil(1990, 1, 1) * HVS_MS_DAY) {
        bad(c, line, "time \"%.40s\" is before 1990", s);
        return -1;
    }
    return 0;
}

static int parse_value(ctx_t *c, long line, int v, const char *s, double *out) {
    char *end;
    double d = strtod(s, &end);
    if (end == s || *end || !isfinite(d)) {
        bad(c, line, "%s \"%.40s\" is not a number", vars[v].name, s);
        return -1;
    }
    if (d < vars[v].lo || d > vars[v].hi) {
        bad(c, line, "%s %g out of range [%g, %g]", vars[v].name, d, vars[v].lo, vars[v].hi);
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_coord(ctx_t *c, long line, const char *what, const char *s, double lim,
                       double *out) {
    char *end;
    double d = strtod(s, &end);
    if (end == s || *end || !isfinite(d) || d < -lim || d > lim) {
        bad(c, line, "%s \"%.40s\": expected a number in [%g, %g]", what, s, -lim, lim);
        return -1;
    }
    *out = d;
    return 0;
}

/* One cell (CSV text, or a JSON value rendered to text; NULL = empty/null) into the row. */
static int set_cell(ctx_t *c, row_t *r, int col, const char *s) {
    if (col == C_TIME) {
        if (!s || !*s) {
            bad(c, r->line, "time is empty");
            return -1;
        }
        return parse_time(c, r->line, s, &r->hour);
    }
    if (!s || !*s)
        return 0;
    if (col == C_BUILDING) {
        if (strlen(s) >= ID_MAX) {
            bad(c, r->line, "building_id longer than %d characters", ID_MAX - 1);
            return -1;
        }
        snprintf(r->building, sizeof r->building, "%s", s);
        return 0;
    }
    if (col == C_LAT)
        return parse_coord(c, r->line, "latitude", s, 90, &r->lat);
    if (col == C_LON)
        return parse_coord(c, r->line, "longitude", s, 180, &r->lon);
    if (parse_value(c, r->line, col, s, &r->v[col]))
        return -1;
    r->present |= 1u << col;
    return 0;
}

static row_t *new_row(ctx_t *c, long line) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        row_t *g = realloc(c->rows, cap * sizeof *g);
        if (!g)
            return NULL;
        c->rows = g;
        c->cap = cap;
    }
    row_t *r = &c->rows[c->n];
    memset(r, 0, sizeof *r);
    r->lat = r->lon = NAN;
    r->line = line;
    return r;
}

/* The row's checks beyond its cells; keeps it when good. */
static void finish_row(ctx_t *c, row_t *r, bool ok) {
    if (ok && !r->building[0] && !c->building) {
        bad(c, r->line, "missing column building_id (or give --building)");
        ok = false;
    }
    if (ok && isnan(r->lat) != isnan(r->lon)) {
        bad(c, r->line, "latitude and longitude go together");
        ok = false;
    }
    if (ok && !r->present) {
        bad(c, r->line, "no value (every weather column is empty)");
        ok = false;
    }
    if (!ok)
        return;
    if (!r->building[0])
        snprintf(r->building, sizeof r->building, "%s", c->building);
    if (isnan(r->lat)) {
        r->lat = c->lat;
        r->lon = c->lon;
    }
    c->n++;
}

/* Split a CSV line at commas (in place): the number of cells (at most max). */
static int read_csv(ctx_t *c, FILE *f) {
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int cols[32], ncols = -1;
    char *cells[32];
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!*hvs_text_trim(line))
            continue;
        int n = hvs_text_csv_split(line, cells, 32);
        if (n < 0) {
            bad(c, lineno, "malformed CSV: a quote left open, or text after a closing quote");
            if (ncols < 0)
                break;
            continue;
        }
        if (ncols < 0) { /* the header */
            if (n > 32) {
                bad(c, lineno, "header: more than 32 columns");
                break;
            }
            bool seen[NCOLS] = {false}, values = false;
            for (int i = 0; i < n; i++) {
                cols[i] = column_of(cells[i]);
                if (cols[i] < 0)
                    bad(c, lineno, "header: unknown column \"%.40s\" (hvsctl weather --help)",
                        cells[i]);
                else if (seen[cols[i]])
                    bad(c, lineno, "header: column %s twice", col_name(cols[i]));
                else
                    seen[cols[i]] = true, values |= cols[i] < NV;
            }
            if (!seen[C_TIME])
                bad(c, lineno, "header: missing column time");
            if (!values)
                bad(c, lineno, "header: no weather column (temperature_c, radiation_w_m2, ...)");
            if (seen[C_LAT] != seen[C_LON])
                bad(c, lineno, "header: latitude and longitude go together");
            if (c->errors)
                break;
            ncols = n;
            continue;
        }
        row_t *r = new_row(c, lineno);
        if (!r) {
            free(line);
            return -1;
        }
        if (n != ncols) {
            bad(c, lineno, "%d cells, the header has %d columns", n, ncols);
            continue;
        }
        bool ok = true;
        for (int i = 0; i < n && ok; i++)
            ok = set_cell(c, r, cols[i], cells[i]) == 0;
        finish_row(c, r, ok);
    }
    if (ncols < 0 && !c->errors)
        bad(c, lineno, "no header line (an empty file?)");
    free(line);
    return 0;
}

static int read_jsonl(ctx_t *c, FILE *f) {
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *text = hvs_text_trim(line);
        if (!*text)
            continue;
        row_t *r = new_row(c, lineno);
        if (!r) {
            free(line);
            return -1;
        }
        json_error_t je;
        json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(o)) {
            bad(c, lineno, "not a JSON object%s%s", o ? "" : ": ", o ? "" : je.text);
            json_decref(o);
            continue;
        }
        bool ok = true, has_time = false;
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) {
            if (!ok)
                break;
            int col = column_of(k);
            char num[64];
            const char *s = NULL;
            if (col < 0) {
                bad(c, lineno, "unknown field \"%.40s\" (hvsctl weather --help)", k);
                ok = false;
                break;
            }
            has_time |= col == C_TIME;
            if (json_is_string(v) && (col == C_TIME || col == C_BUILDING)) {
                s = json_string_value(v);
            } else if (json_is_number(v) && col != C_TIME && col != C_BUILDING) {
                snprintf(num, sizeof num, "%.17g", json_number_value(v));
                s = num;
            } else if (!json_is_null(v) || col == C_TIME) {
                bad(c, lineno, "%s: expected %s", k,
                    col == C_TIME || col == C_BUILDING ? "a string" : "a number or null");
                ok = false;
                break;
            }
            ok = set_cell(c, r, col, s) == 0;
        }
        if (ok && !has_time) {
            bad(c, lineno, "missing field time");
            ok = false;
        }
        json_decref(o);
        finish_row(c, r, ok);
    }
    free(line);
    return 0;
}

static int cmp_row(const void *a, const void *b) {
    const row_t *x = a, *y = b;
    int s = strcmp(x->building, y->building);
    if (s)
        return s;
    if (x->hour != y->hour)
        return x->hour < y->hour ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Coordinates of rows without them from topology (read only when some row needs it). */
static int locate(ctx_t *c, hvs_app_t *app, hvs_serde_t *s, int timeout_ms) {
    bool need = false;
    for (size_t i = 0; i < c->n && !need; i++)
        need = isnan(c->rows[i].lat);
    if (!need)
        return 0;
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    hvs_topology_t *t = NULL;
    hvs_err_t err = {0};
    if (hvs_topology_new(&kc, s, hvs_topic_name("topology"), &t, &err)) {
        fprintf(stderr, "hvsctl weather: topology: %s\n", err.msg);
        return -1;
    }
    int64_t deadline = hvs_time_mono_ms() + timeout_ms;
    while (!hvs_topology_caught_up(t) && hvs_time_mono_ms() < deadline)
        hvs_topology_poll(t, 100);
    if (!hvs_topology_caught_up(t)) {
        fprintf(stderr, "hvsctl weather: topology not read to its end within %d s (Kafka at %s?)\n",
                timeout_ms / 1000, kc.brokers);
        hvs_topology_destroy(t);
        return -1;
    }
    for (size_t i = 0; i < c->n; i++) {
        row_t *r = &c->rows[i];
        if (!isnan(r->lat))
            continue;
        const hvs_building_t *b = hvs_topology_find(t, r->building);
        if (!b)
            bad(c, r->line,
                "building %s is not in topology and the line gives no latitude/longitude",
                r->building);
        else
            r->lat = b->latitude, r->lon = b->longitude;
    }
    hvs_topology_destroy(t);
    return 0;
}

static int publish(ctx_t *c, hvs_app_t *app, hvs_serde_t *s, const char *topic,
                   const char *provider, long timeout_s, size_t *locations) {
    hvs_kafka_conf_t kc;
    hvs_app_kafka_conf(app, &kc);
    hvs_producer_t *p = NULL;
    hvs_encoder_t *enc = NULL;
    hvs_err_t err = {0};
    int rc = -1;
    if (hvs_producer_new(&kc, &p, &err) ||
        hvs_encoder_new(s, HVS_SCHEMA_WEATHER, topic, &enc, &err)) {
        fprintf(stderr, "hvsctl weather: %s\n", err.msg);
        goto out;
    }
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(hvs_producer_handle(p), 0, NULL, &md,
                                              (int)(timeout_s < 10 ? timeout_s : 10) * 1000);
    if (e) {
        fprintf(stderr, "hvsctl weather: cannot reach Kafka at %s: %s; nothing imported\n",
                kc.brokers, rd_kafka_err2str(e));
        goto out;
    }
    rd_kafka_metadata_destroy(md);
    *locations = 0;
    for (size_t i = 0; i < c->n; i++) {
        const row_t *r = &c->rows[i];
        *locations += i == 0 || strcmp(r->building, c->rows[i - 1].building) != 0;
        json_t *o = json_pack("{s:s, s:f, s:f, s:I, s:I, s:s, s:s}", "building_id", r->building,
                              "latitude", r->lat, "longitude", r->lon, "hour", (json_int_t)r->hour,
                              "issued_at", (json_int_t)(r->hour + HVS_MS_HOUR), "kind", "OBSERVED",
                              "provider", provider);
        for (int v = 0; o && v < NV; v++)
            json_object_set_new(o, vars[v].field,
                                r->present & (1u << v) ? json_real(r->v[v]) : json_null());
        char *json = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        const void *buf;
        size_t len;
        int bad_rc = !json ||
                     hvs_serde_value_from_json(s, hvs_encoder_value(enc), json, strlen(json),
                                               &err) ||
                     hvs_encoder_encode(enc, &buf, &len, &err);
        free(json);
        while (!bad_rc && hvs_producer_send(p, topic, RD_KAFKA_PARTITION_UA, r->building,
                                            strlen(r->building), buf, len, &err)) {
            if (err.code != HVS_ETIMEOUT)
                bad_rc = 1;
            hvs_producer_poll(p);
        }
        if (bad_rc) {
            fprintf(stderr, "hvsctl weather: %s:%ld: %s; stopped after %zu of %zu hours\n",
                    c->label, r->line, err.msg, i, c->n);
            goto out;
        }
    }
    if (hvs_producer_flush(p, (int)timeout_s * 1000, &err)) {
        fprintf(stderr,
                "hvsctl weather: not every record was acknowledged: %s (re-run the import: the "
                "same records are published again)\n",
                err.msg);
        goto out;
    }
    rc = 0;
out:
    hvs_encoder_destroy(enc);
    hvs_producer_destroy(p);
    return rc;
}

static int import(hvs_app_t *app, int argc, char **argv) {
    if (hvsctl_wants_help(argc, argv)) {
        puts(help);
        return 0;
    }
    const char *path = NULL, *format = NULL, *provider = "import";
    const char *topic = hvs_topic_name("weather.hourly");
    ctx_t c = {.lat = NAN, .lon = NAN, .now = hvs_time_now_ms()};
    long timeout_s = 30;
    const char *lat = NULL, *lon = NULL;
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char *a = argv[i];
        if (v && strcmp(a, "--format") == 0)
            format = v, i++;
        else if (v && strcmp(a, "--building") == 0)
            c.building = v, i++;
        else if (v && strcmp(a, "--lat") == 0)
            lat = v, i++;
        else if (v && strcmp(a, "--lon") == 0)
            lon = v, i++;
        else if (v && strcmp(a, "--provider") == 0)
            provider = v, i++;
        else if (v && strcmp(a, "--topic") == 0)
            topic = v, i++;
        else if (strcmp(a, "--timeout") == 0)
            timeout_s = hvsctl_parse_count(a, v), i++;
        else if (a[0] != '-' && !path)
            path = a;
        else {
            fprintf(stderr, "hvsctl weather import: unexpected argument \"%s\"\n%s\n", a, help);
            return 2;
        }
    }
    if (!path || timeout_s <= 0 || (format && strcmp(format, "csv") && strcmp(format, "jsonl")) ||
        (!lat != !lon) || (c.building && strlen(c.building) >= ID_MAX)) {
        fprintf(stderr, "%s\n", help);
        return 2;
    }
    c.label = path;
    if (lat && (parse_coord(&c, 0, "--lat", lat, 90, &c.lat) ||
                parse_coord(&c, 0, "--lon", lon, 180, &c.lon)))
        return 2;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "hvsctl weather import: cannot open %s\n", path);
        return 1;
    }
    if (!format) {
        const char *dot = strrchr(path, '.');
        if (dot && strcmp(dot, ".csv") == 0)
            format = "csv";
        else if (dot &&
                 (!strcmp(dot, ".jsonl") || !strcmp(dot, ".json") || !strcmp(dot, ".ndjson")))
            format = "jsonl";
        else {
            int ch;
            while ((ch = fgetc(f)) != EOF && isspace(ch))
                ;
            format = ch == '{' ? "jsonl" : "csv";
            rewind(f);
        }
    }
    int rc = strcmp(format, "csv") == 0 ? read_csv(&c, f) : read_jsonl(&c, f);
    fclose(f);
    hvs_serde_t *s = NULL;
    hvs_err_t err = {0};
    size_t locations = 0;
    if (rc) {
        fprintf(stderr, "hvsctl weather import: out of memory\n");
        goto fail;
    }
    if (c.errors == 0 && c.n == 0)
        bad(&c, 0, "no data line");
    if (c.errors == 0) {
        qsort(c.rows, c.n, sizeof *c.rows, cmp_row);
        for (size_t i = 1; i < c.n; i++)
            if (strcmp(c.rows[i].building, c.rows[i - 1].building) == 0 &&
                c.rows[i].hour == c.rows[i - 1].hour)
                bad(&c, c.rows[i].line, "the hour of building %s is already on line %ld",
                    c.rows[i].building, c.rows[i - 1].line);
    }
    if (c.errors == 0 && hvs_serde_new(app->cfg.schema_registry_url, &s, &err)) {
        fprintf(stderr, "hvsctl weather: %s\n", err.msg);
        goto fail;
    }
    if (c.errors == 0 && locate(&c, app, s, (int)timeout_s * 1000))
        goto fail;
    if (c.errors) {
        if (c.errors > MAX_ERRORS_SHOWN)
            fprintf(stderr, "... and %ld more\n", c.errors - MAX_ERRORS_SHOWN);
        fprintf(stderr, "hvsctl weather import: %ld bad line(s) in %s: nothing imported\n",
                c.errors, path);
        goto fail;
    }
    if (publish(&c, app, s, topic, provider, timeout_s, &locations))
        goto fail;
    printf("imported %zu hours for %zu locations\n", c.n, locations);
    hvs_serde_destroy(s);
    free(c.rows);
    return 0;
fail:
    hvs_serde_destroy(s);
    free(c.rows);
    return 1;
}

int hvsctl_weather(hvs_app_t *app, int argc, char **argv) {
    if (argc >= 1 && strcmp(argv[0], "import") == 0)
        return import(app, argc - 1, argv + 1);
    if (hvsctl_wants_help(argc, argv)) {
        puts(help);
        return 0;
    }
    fprintf(stderr, "hvsctl weather: expected \"import FILE\"\n\n%s\n", help);
    return 2;
}
