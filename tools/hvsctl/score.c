/*
 * hvsctl score: a file of feature rows scored by a registry version with the stream's own code
 * (docs/design.md section 6, README "Batch scoring"), for backtests, audits and customers' files.
 *
 * The path of a row is the serving workers' path, function for function:
 *   - every row becomes a FeatureVector value of the current schema (JSON lines: the record's
 *     natural JSON, bare or in `hvsctl tail`'s envelope; CSV: a JSON object built from the
 *     header's columns) and is validated by the scorer's reader (sc_input_vector: ids, hours,
 *     the feature set, the values' count, the target), so a row the stream would dead-letter
 *     is refused here for the same reason;
 *   - the version comes from the `models` topic and is validated as the registry does before it
 *     serves (hvs_registry_load_record) and checked against the task's columns
 *     (hvs_model_ref_fits);
 *   - forecast: the row through hvs_taskrow_build (per m2 of the building's heated area),
 *     predictions in batches (hvs_model_predict), kWh as the forecaster publishes them
 *     (fc_point_kwh);
 *   - anomaly-residual / anomaly-classifier: the scorer's batch (sc_batch_add / sc_batch_run on
 *     an in-memory state): expected heat or fault probability, the residual standardised against
 *     the apartment's earlier rows, each one's evidence and their combination (score.h) - without
 *     the rules, which need aggregates, not feature rows. Rows are scored per apartment in hour
 *     order (the ring a residual is standardised against is built from the file's earlier hours
 *     of that apartment), and written back in input order.
 * Areas: a CSV column heated_area_m2, else the building's heated_area_m2 on the `topology`
 * topic (read only when some row needs it).
 *
 * Output: CSV, one line per input row (blank lines skipped), in input order.
 * Exit status: 0 every row scored, 3 some rows refused (each named on stderr, written with an
 * empty prediction and its reason), 1 the model, topics or files failed, 2 usage.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "batch.h"  /* the scorer's library (workers/scorer) */
#include "engine.h" /* the forecaster's library (workers/forecaster): fc_point_kwh */
#include "hvs/features.h"
#include "hvs/model.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs/task_rows.h"
#include "hvs/text.h"
#include "hvs/topics.h"
#include "hvs/topology.h"
#include "hvsctl.h"

static const char *const help =
    "Usage: hvsctl score --model NAME[:VERSION] [--out FILE] [--format csv|jsonl] [--timeout S]\n"
    "                    FILE|-\n"
    "\n"
    "Scores a file of feature rows with a model version of the registry (the `models` topic),\n"
    "through the code the scorer and forecaster run, and writes CSV (to stdout or --out FILE):\n"
    "  line,building_id,apartment_id,target_hour,horizon_h,model,version,prediction,unit,score,\n"
    "  observed_kwh,residual_z,reason\n"
    "one line per input row, in input order. prediction: kWh for forecast/* models (the model's\n"
    "target scale times the building's heated area; never below 0, as forecasts are published),\n"
    "expected kWh for anomaly-residual/*, the fault probability for anomaly-classifier/*.\n"
    "score (anomaly models): the scorer's evidence of that model combined as it combines them,\n"
    "without the rules (they need aggregates): residual evidence from the residual standardised\n"
    "against the apartment's earlier rows of the file (residual_z; empty until 24 earlier\n"
    "6-hour windows), or the probability. observed_kwh: the row's target, if any.\n"
    "\n"
    "NAME alone scores with the active version (the highest approved one that validates);\n"
    "NAME:VERSION with that version even if it is not active (said on stderr). Unknown names\n"
    "or versions, and versions this build cannot serve, are refused (exit 1).\n"
    "\n"
    "Input (--format, else by the name: .csv is CSV, anything else JSON lines):\n"
    "  JSON lines: FeatureVector records' natural JSON, bare or as `hvsctl tail features.hourly`\n"
    "    prints them ({\"topic\":..., \"value\": {...}}).\n"
    "  CSV: a header, then one row per line. Columns: building_id (required), apartment_id,\n"
    "    target_hour (ISO 8601 with a zone, or epoch ms; required), as_of (default: target_hour),\n"
    "    revision, target (observed kWh), heated_area_m2, and feature columns by name (see\n"
    "    `hvsctl tail features.hourly` for the names); every column of the model's rows must be\n"
    "    present (an empty cell is a missing value); an unknown column is refused.\n"
    "Forecast models need the building's heated area: heated_area_m2 of the row, else of the\n"
    "building on the `topology` topic.\n"
    "Scoring takes feature rows, not raw readings: replay the readings through the pipeline\n"
    "(aggregator, features) and take its rows with `hvsctl tail features.hourly --from-beginning`.\n"
    "\n"
    "A row that cannot be scored is named on stderr (line and reason) and written with an empty\n"
    "prediction and its reason; the other rows are scored.\n"
    "  --timeout S   reading `models` (and `topology`) to its end may take S s (default 15)\n"
    "Exit status: 0 every row scored, 3 some rows were not, 1 failure (model, topics, files),\n"
    "2 usage.";

#define CHUNK 4096                    /* rows per prediction call / scorer batch */
#define MAX_FUTURE (400 * HVS_MS_DAY) /* forecast rows of hours ahead are expected */
#define EXIT_ROWS 3

typedef struct row {
    long line;
    bool bad;
    char reason[HVS_ERR_REASON_MAX];
    sc_vector_t v;
    double area;           /* NaN: from topology */
    double pred, score, z; /* NaN: none */
} row_t;

typedef struct sctx {
    hvs_app_t *app;
    hvs_kafka_conf_t kc;
    hvs_serde_t *serde;
    hvs_registry_t *reg;
    hvs_model_ref_t *ref;
    hvs_task_t task;
    hvs_encoder_t *enc;
    sc_input_t *input;
    hvs_ms_t now;
    long timeout_s;
    row_t *rows;
    size_t n, cap;
    long bad;
} sctx_t;

/* ---- rows ------------------------------------------------------------------------------------ */

static row_t *new_row(sctx_t *c, long line) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        row_t *r = realloc(c->rows, cap * sizeof *r);
        if (!r)
            return NULL;
        c->rows = r, c->cap = cap;
    }
    row_t *r = &c->rows[c->n++];
    memset(r, 0, sizeof *r);
    r->line = line;
    r->area = r->pred = r->score = r->z = NAN;
    r->v.hour = HVS_MS_NONE;
    r->v.target = NAN;
    r->v.x[0] = NAN; /* horizon_h, printed */
    return r;
}

/* A refused row: its reason kept for the output, the message on stderr. */
static void refuse(sctx_t *c, row_t *r, const char *reason, const char *msg) {
    if (!r->bad)
        c->bad++;
    r->bad = true;
    snprintf(r->reason, sizeof r->reason, "%s", reason && reason[0] ? reason : "invalid");
    fprintf(stderr, "hvsctl score: line %ld: %s (%s)\n", r->line, msg, r->reason);
}

/* A FeatureVector in natural JSON into row r, validated as the scorer validates its input. */
static void take_json(sctx_t *c, row_t *r, json_t *obj) {
    hvs_err_t err = {0};
    char *text = json_dumps(obj, JSON_COMPACT);
    if (!text) {
        refuse(c, r, "oom", "out of memory");
        return;
    }
    avro_value_t *v = hvs_encoder_value(c->enc);
    int rc = hvs_serde_value_from_json(c->serde, v, text, strlen(text), &err);
    free(text);
    if (rc == 0)
        rc = sc_input_vector(c->input, v, c->now, MAX_FUTURE, &r->v, &err);
    if (rc)
        refuse(c, r, err.reason, err.msg);
}

static void take_jsonl_line(sctx_t *c, row_t *r, const char *line) {
    json_error_t je;
    json_t *j = json_loads(line, JSON_DECODE_ANY, &je);
    if (!j || !json_is_object(j)) {
        char msg[300];
        snprintf(msg, sizeof msg, "not a JSON object: %s", j ? "another JSON value" : je.text);
        refuse(c, r, HVS_SERDE_R_JSON_SYNTAX, msg);
        json_decref(j);
        return;
    }
    /* `hvsctl tail`'s envelope: the record is its value (or it says why it has none) */
    json_t *val = json_object_get(j, "value");
    if (json_object_get(j, "topic") && json_object_get(j, "offset")) {
        if (!json_is_object(val)) {
            const char *e = json_string_value(json_object_get(j, "error"));
            refuse(c, r, json_string_value(json_object_get(j, "reason")),
                   e ? e : "a tail line without a record value");
        } else {
            take_json(c, r, val);
        }
    } else {
        take_json(c, r, j);
    }
    json_decref(j);
}

/* ---- CSV ------------------------------------------------------------------------------------- */

enum {
    C_BUILDING = -2,
    C_APARTMENT = -3,
    C_HOUR = -4,
    C_AS_OF = -5,
    C_REVISION = -6,
    C_TARGET = -7,
    C_AREA = -8
};
static const struct {
    const char *name;
    int code;
} csv_keys[] = {{"building_id", C_BUILDING}, {"apartment_id", C_APARTMENT}, {"target_hour", C_HOUR},
                {"as_of", C_AS_OF},          {"revision", C_REVISION},      {"target", C_TARGET},
                {"heated_area_m2", C_AREA}};

#define CSV_MAX_COLS (HVS_FEATURES_COUNT + 16)

typedef struct csv_head {
    int ncols;
    int code[CSV_MAX_COLS]; /* >= 0 feature index, < 0 csv_keys */
} csv_head_t;

/* The header line: 0, or 1 after printing why it cannot be read. */
static int csv_header(sctx_t *c, char *line, csv_head_t *h) {
    char *f[CSV_MAX_COLS + 1];
    int n = hvs_text_csv_split(line, f, CSV_MAX_COLS);
    if (n < 0 || n > CSV_MAX_COLS) {
        fprintf(stderr, "hvsctl score: the CSV header is not a header (%s)\n",
                n < 0 ? "a quote left open" : "too many columns");
        return 1;
    }
    bool have[HVS_FEATURES_COUNT] = {0}, building = false, hour = false;
    for (int i = 0; i < n; i++) {
        const char *name = hvs_text_trim(f[i]);
        int code = hvs_features_index(name);
        for (size_t k = 0; code < 0 && k < sizeof csv_keys / sizeof csv_keys[0]; k++)
            if (strcmp(name, csv_keys[k].name) == 0)
                code = csv_keys[k].code;
        if (code == -1) {
            fprintf(
                stderr,
                "hvsctl score: CSV column \"%s\" is neither a feature of %s nor one of "
                "building_id, apartment_id, target_hour, as_of, revision, target, heated_area_m2\n",
                name, hvs_features_version());
            return 1;
        }
        for (int k = 0; k < i; k++)
            if (h->code[k] == code) {
                fprintf(stderr, "hvsctl score: CSV column \"%s\" appears twice\n", name);
                return 1;
            }
        h->code[i] = code;
        if (code >= 0)
            have[code] = true;
        building |= code == C_BUILDING;
        hour |= code == C_HOUR;
    }
    h->ncols = n;
    if (!building || !hour) {
        fprintf(stderr, "hvsctl score: the CSV header needs building_id and target_hour columns\n");
        return 1;
    }
    size_t nc;
    const char *const *cols = hvs_taskrow_columns(c->task, &nc);
    for (size_t i = 0; i < nc; i++)
        if (!have[hvs_features_index(cols[i])]) {
            fprintf(stderr,
                    "hvsctl score: CSV column \"%s\" is missing: %s reads it (an empty cell is a "
                    "missing value; the column must be there)\n",
                    cols[i], c->ref->ident);
            return 1;
        }
    return 0;
}

/* A number cell: 1 and *v, 0 empty (missing), -1 not a number. */
static int csv_number(const char *s, double *v) {
    if (!*s || strcmp(s, "NaN") == 0 || strcmp(s, "nan") == 0 || strcmp(s, "null") == 0)
        return 0;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *end || errno == ERANGE || !isfinite(*v) ? -1 : 1;
}

/* A CSV row into a FeatureVector's natural JSON, then the JSON path. */
static void take_csv_line(sctx_t *c, const csv_head_t *h, row_t *r, char *line) {
    char *f[CSV_MAX_COLS + 1], msg[400];
    int n = hvs_text_csv_split(line, f, CSV_MAX_COLS);
    if (n != h->ncols) {
        snprintf(msg, sizeof msg, "%d fields for the header's %d columns%s", n < 0 ? 0 : n,
                 h->ncols, n < 0 ? " (a quote left open)" : "");
        refuse(c, r, "bad_csv", msg);
        return;
    }
    json_t *o = json_object(), *names = json_array(), *values = json_array();
    double x[HVS_FEATURES_COUNT];
    for (int i = 0; i < HVS_FEATURES_COUNT; i++)
        x[i] = NAN;
    hvs_ms_t hour = HVS_MS_NONE, as_of = HVS_MS_NONE;
    const char *why = NULL, *field = "";
    for (int i = 0; i < n && !why; i++) {
        char *s = hvs_text_trim(f[i]);
        int code = h->code[i];
        double d = NAN;
        field = code >= 0 ? hvs_features_names()[code] : "";
        for (size_t k = 0; code < 0 && k < sizeof csv_keys / sizeof csv_keys[0]; k++)
            if (csv_keys[k].code == code)
                field = csv_keys[k].name;
        if (code == C_BUILDING) {
            json_object_set_new(o, "building_id", json_string(s));
        } else if (code == C_APARTMENT) {
            json_object_set_new(o, "apartment_id", *s ? json_string(s) : json_null());
        } else if (code == C_HOUR || code == C_AS_OF) {
            hvs_ms_t t = HVS_MS_NONE;
            hvs_err_t err = {0};
            char *end;
            long long ms = strtoll(s, &end, 10);
            if (*s && !*end)
                t = ms;
            else if (!*s || hvs_time_parse_iso8601(s, &t, &err) != 0)
                why = "not a time (ISO 8601 with a zone, or epoch ms)";
            *(code == C_HOUR ? &hour : &as_of) = t;
        } else {
            int k = csv_number(s, &d);
            if (k < 0)
                why = "not a finite number";
            else if (code == C_REVISION && k > 0)
                json_object_set_new(o, "revision", json_integer((json_int_t)d));
            else if (code == C_TARGET && k > 0)
                json_object_set_new(o, "target", json_real(d));
            else if (code == C_AREA && k > 0)
                r->area = d;
            else if (code >= 0)
                x[code] = d;
        }
    }
    if (why) {
        /* the keys that were read, for the output line */
        for (int i = 0; i < n; i++)
            if (h->code[i] == C_BUILDING)
                snprintf(r->v.building, sizeof r->v.building, "%s", hvs_text_trim(f[i]));
            else if (h->code[i] == C_APARTMENT)
                snprintf(r->v.apartment, sizeof r->v.apartment, "%s", hvs_text_trim(f[i]));
        r->v.hour = hour;
        r->v.x[0] = x[0];
        snprintf(msg, sizeof msg, "%s: %s", field, why);
        refuse(c, r, "bad_csv", msg);
    } else {
        const char *const *fn = hvs_features_names();
        for (int i = 0; i < HVS_FEATURES_COUNT; i++) {
            json_array_append_new(names, json_string(fn[i]));
            json_array_append_new(values, isnan(x[i]) ? json_null() : json_real(x[i]));
        }
        json_object_set_new(o, "target_hour", json_integer(hour));
        json_object_set_new(o, "as_of", json_integer(as_of == HVS_MS_NONE ? hour : as_of));
        json_object_set_new(o, "feature_set_version", json_string(hvs_features_version()));
        json_object_set(o, "names", names);
        json_object_set(o, "values", values);
        if (!json_object_get(o, "revision"))
            json_object_set_new(o, "revision", json_integer(0));
        take_json(c, r, o);
    }
    json_decref(names);
    json_decref(values);
    json_decref(o);
}

/* Read every row of `in`. 0, or 1 after printing why (a header that cannot be read, I/O). */
static int read_rows(sctx_t *c, FILE *in, const char *path, bool csv) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long no = 0;
    csv_head_t head = {0};
    bool have_head = false;
    int rc = 0;
    while ((len = getline(&line, &cap, in)) >= 0) {
        no++;
        const char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            continue;
        if (csv && !have_head) {
            if (strncmp(line, "\xef\xbb\xbf", 3) == 0) /* a UTF-8 byte order mark (spreadsheets) */
                memmove(line, line + 3, strlen(line + 3) + 1);
            if ((rc = csv_header(c, line, &head)))
                break;
            have_head = true;
            continue;
        }
        row_t *r = new_row(c, no);
        if (!r) {
            fprintf(stderr, "hvsctl score: out of memory at line %ld of %s\n", no, path);
            rc = 1;
            break;
        }
        if (csv)
            take_csv_line(c, &head, r, line);
        else
            take_jsonl_line(c, r, line);
    }
    if (rc == 0 && ferror(in)) {
        fprintf(stderr, "hvsctl score: reading %s: %s\n", path, strerror(errno));
        rc = 1;
    }
    free(line);
    return rc;
}

/* ---- the model -------------------------------------------------------------------------------- */

/* The version asked for, loaded and validated into c->ref. 0, or 1 after printing why. */
static int open_model(sctx_t *c, const char *spec) {
    char name[256];
    int want = 0;
    const char *colon = strrchr(spec, ':');
    char *end = NULL;
    long v = colon ? strtol(colon + 1, &end, 10) : 0;
    /* names hold ':' themselves (forecast/building:b1): a version is digits after the last */
    if (colon && colon[1] && !*end && v >= 1 && v <= INT_MAX) {
        want = (int)v;
        snprintf(name, sizeof name, "%.*s", (int)(colon - spec), spec);
    } else {
        snprintf(name, sizeof name, "%s", spec);
    }
    const char *slash = strchr(name, '/');
    char task[64];
    snprintf(task, sizeof task, "%.*s", slash ? (int)(slash - name) : (int)strlen(name), name);
    int t = hvs_taskrow_task_parse(task);
    if (t < 0 || t == HVS_TASK_REFRESH) {
        fprintf(stderr,
                "hvsctl score: %s: only forecast/*, anomaly-residual/* and anomaly-classifier/* "
                "models score feature rows%s\n",
                name, t == HVS_TASK_REFRESH ? " (refresh models read the refresher's errors)" : "");
        return 1;
    }
    c->task = (hvs_task_t)t;
    hvs_err_t err = {0};
    const char *topic = hvs_topic_name("models");
    hvs_registry_opts_t ro = {.prefix = name, .load_models = false};
    if (hvs_registry_new(&c->kc, c->serde, topic, &ro, &c->reg, &err) != 0) {
        fprintf(stderr, "hvsctl score: cannot read topic %s at %s: %s\n", topic, c->kc.brokers,
                err.msg);
        return 1;
    }
    hvs_registry_poll(c->reg, (int)(c->timeout_s * 1000));
    if (!hvs_registry_caught_up(c->reg)) {
        fprintf(stderr, "hvsctl score: topic %s at %s was not read to its end within %ld s\n",
                topic, c->kc.brokers, c->timeout_s);
        return 1;
    }
    size_t n, lo = 0, hi;
    const hvs_model_info_t *vs = hvs_registry_versions(c->reg, &n);
    for (int pass = 0; pass < 2; pass++) {
        for (lo = 0; lo < n && strcmp(vs[lo].name, name) != 0;)
            lo++;
        for (hi = lo; hi < n && strcmp(vs[hi].name, name) == 0;)
            hi++;
        if (lo < hi || !want || pass)
            break;
        /* "forecast/building:123" names building 123's model when no "forecast/building" has
         * versions (the prefix read covers both) */
        snprintf(name, sizeof name, "%s", spec);
        want = 0;
    }
    if (lo == hi) {
        fprintf(stderr, "hvsctl score: no model named \"%s\" on topic %s\n", name, topic);
        return 1;
    }
    /* the active version: the highest APPROVED that validates (the registry's rule) */
    int active = 0;
    hvs_model_ref_t *active_ref = NULL;
    for (size_t i = hi; i-- > lo && !active;) {
        if (vs[i].status != HVS_MODEL_APPROVED || !vs[i].record)
            continue;
        if (hvs_registry_load_record(c->serde, vs[i].record, vs[i].record_len, &active_ref, &err) ==
            0)
            active = vs[i].version;
    }
    if (!want) {
        if (!active) {
            fprintf(stderr,
                    "hvsctl score: %s has no active version (approved and valid with this "
                    "build): name one as %s:VERSION\n",
                    name, name);
            return 1;
        }
        c->ref = active_ref;
    } else {
        size_t i = lo;
        while (i < hi && vs[i].version != want)
            i++;
        if (i == hi) {
            fprintf(stderr, "hvsctl score: %s has no version %d (versions %d to %d)\n", name, want,
                    vs[lo].version, vs[hi - 1].version);
            hvs_registry_release(active_ref);
            return 1;
        }
        if (want == active) {
            c->ref = active_ref;
        } else {
            hvs_registry_release(active_ref);
            if (!vs[i].record || hvs_registry_load_record(c->serde, vs[i].record, vs[i].record_len,
                                                          &c->ref, &err) != 0) {
                fprintf(stderr, "hvsctl score: %s:%d cannot serve with this build: %s (%s)\n", name,
                        want, err.msg, err.reason);
                return 1;
            }
            char act[32] = "none";
            if (active)
                snprintf(act, sizeof act, "version %d", active);
            fprintf(stderr,
                    "hvsctl score: %s:%d is not the active version (status %s; active: %s): "
                    "scoring with it as asked\n",
                    name, want, hvs_model_status_name(vs[i].status), act);
        }
    }
    if (!hvs_model_ref_fits(c->ref, c->task) ||
        (c->task == HVS_TASK_FORECAST &&
         c->ref->target_scale != hvs_taskrow_scale(HVS_TASK_FORECAST))) {
        fprintf(stderr,
                "hvsctl score: %s: its columns or target scale are not this build's %s rows "
                "(the scorer and forecaster would not use it either)\n",
                c->ref->ident, hvs_taskrow_task_name(c->task));
        return 1;
    }
    return 0;
}

/* Heated areas from the `topology` topic for the rows that need one and have none. */
static int topology_areas(sctx_t *c) {
    bool need = false;
    for (size_t i = 0; i < c->n && !need; i++)
        need = !c->rows[i].bad && c->task == HVS_TASK_FORECAST && isnan(c->rows[i].area);
    if (!need)
        return 0;
    hvs_topology_t *t = NULL;
    hvs_err_t err = {0};
    const char *topic = hvs_topic_name("topology");
    if (hvs_topology_new(&c->kc, c->serde, topic, &t, &err) != 0) {
        fprintf(stderr, "hvsctl score: cannot read topic %s at %s: %s\n", topic, c->kc.brokers,
                err.msg);
        return 1;
    }
    hvs_ms_t until = hvs_time_mono_ms() + c->timeout_s * 1000;
    while (!hvs_topology_caught_up(t) && hvs_time_mono_ms() < until)
        hvs_topology_poll(t, 200);
    if (!hvs_topology_caught_up(t)) {
        fprintf(stderr, "hvsctl score: topic %s at %s was not read to its end within %ld s\n",
                topic, c->kc.brokers, c->timeout_s);
        hvs_topology_destroy(t);
        return 1;
    }
    for (size_t i = 0; i < c->n; i++) {
        row_t *r = &c->rows[i];
        if (r->bad || !isnan(r->area))
            continue;
        const hvs_building_t *b = hvs_topology_find(t, r->v.building);
        r->area = b ? b->heated_area_m2 : NAN;
    }
    hvs_topology_destroy(t);
    return 0;
}

/* ---- scoring -------------------------------------------------------------------------------- */

/* Forecast rows: the forecaster's rows and kWh. 0, or 1 after printing why. */
static int score_forecast(sctx_t *c) {
    size_t ncols = hvs_taskrow_ncols(HVS_TASK_FORECAST);
    float *x = malloc(CHUNK * ncols * sizeof *x), *out = malloc(CHUNK * sizeof *out);
    size_t *which = malloc(CHUNK * sizeof *which);
    int rc = 0;
    if (!x || !out || !which) {
        fprintf(stderr, "hvsctl score: out of memory\n");
        rc = 1;
    }
    for (size_t i = 0; i < c->n && rc == 0;) {
        size_t k = 0;
        for (; i < c->n && k < CHUNK; i++) {
            row_t *r = &c->rows[i];
            double row[HVS_TASKROW_MAX_COLS];
            hvs_err_t err = {0};
            if (r->bad)
                continue;
            if (hvs_taskrow_build(HVS_TASK_FORECAST, r->v.x, r->area, row, &err) != 0) {
                char msg[HVS_ERR_MSG_MAX + 96];
                snprintf(msg, sizeof msg, "%s%s", err.msg,
                         strcmp(err.reason, "no_area") == 0
                             ? " (no heated_area_m2 column value, none on topology either)"
                             : "");
                refuse(c, r, err.reason, msg);
                continue;
            }
            for (size_t j = 0; j < ncols; j++)
                x[k * ncols + j] = (float)row[j];
            which[k++] = i;
        }
        hvs_err_t err = {0};
        if (k && hvs_model_predict(c->ref->model, x, k, out, &err) != 0) {
            fprintf(stderr, "hvsctl score: %s: prediction failed: %s\n", c->ref->ident, err.msg);
            rc = 1;
        }
        for (size_t j = 0; j < k && rc == 0; j++) {
            row_t *r = &c->rows[which[j]];
            bool nan = false;
            r->pred = fc_point_kwh(c->ref->target_scale, out[j], r->area, &nan);
            if (nan)
                refuse(c, r, "non_finite_prediction", "the model predicted no finite value");
        }
    }
    free(x);
    free(out);
    free(which);
    return rc;
}

typedef struct emit_ctx {
    sctx_t *c;
    sc_state_t *st;
    const size_t *items; /* the batch's rows, in the order they were added */
    size_t nitems, at;
} emit_ctx_t;

/* The scorer's emit: the apartment-hour's vector half as the scorer would publish it. Emits come
 * in the order the vectors were added, one per vector the ring took. */
static int on_emit(void *opaque, sc_building_t *b, sc_apartment_t *a, hvs_ms_t hour,
                   hvs_err_t *err) {
    (void)err;
    emit_ctx_t *e = opaque;
    const sc_model_t *m = sc_model_get(a, hour);
    while (e->at < e->nitems) {
        row_t *r = &e->c->rows[e->items[e->at++]];
        if (r->v.hour != hour || strcmp(r->v.building, b->id) != 0 ||
            strcmp(r->v.apartment, a->id) != 0) {
            refuse(e->c, r, "too_old", "older than the scorer's ring of the apartment's hours");
            continue;
        }
        if (m) {
            r->pred = e->c->task == HVS_TASK_ANOMALY_RESIDUAL ? m->expected : m->prob;
            r->z = m->residual_z;
            r->score = sc_combine(0, m->e_res, m->e_cls);
        }
        break;
    }
    return 0;
}

/* Drift findings are the scorer's alerts on a stream; a file's rows raise none. */
static int on_finding(void *opaque, const sc_finding_t *f, hvs_err_t *err) {
    (void)opaque, (void)f, (void)err;
    return 0;
}

static int cmp_rows(const void *pa, const void *pb, void *arg) {
    const row_t *rows = arg, *a = &rows[*(const size_t *)pa], *b = &rows[*(const size_t *)pb];
    int k = strcmp(a->v.building, b->v.building);
    if (!k)
        k = strcmp(a->v.apartment, b->v.apartment);
    if (!k)
        k = a->v.hour < b->v.hour ? -1 : a->v.hour > b->v.hour;
    if (!k)
        k = a->line < b->line ? -1 : a->line > b->line;
    return k;
}

/* Anomaly rows: the scorer's batch on an in-memory state, per apartment in hour order. */
static int score_anomaly(sctx_t *c) {
    size_t *ord = malloc((c->n ? c->n : 1) * sizeof *ord), m = 0;
    sc_batch_t *bt = sc_batch_new();
    sc_state_t *st = sc_state_new();
    sc_watch_conf_t wc;
    sc_watch_conf_default(&wc);
    sc_watches_t *ws = sc_watches_new(&wc);
    int rc = 0;
    if (!ord || !bt || !st || !ws) {
        fprintf(stderr, "hvsctl score: out of memory\n");
        rc = 1;
    }
    for (size_t i = 0; i < c->n && rc == 0; i++) {
        row_t *r = &c->rows[i];
        if (r->bad)
            continue;
        if (!r->v.apartment[0]) {
            refuse(c, r, "building_level",
                   "a building-level row: anomaly models score apartments (apartment_id)");
            continue;
        }
        ord[m++] = i;
    }
    if (rc == 0)
        qsort_r(ord, m, sizeof *ord, cmp_rows, c->rows);
    sc_score_conf_t conf;
    sc_score_conf_default(&conf);
    hvs_model_ref_t *res = c->task == HVS_TASK_ANOMALY_RESIDUAL ? c->ref : NULL;
    hvs_model_ref_t *cls = c->task == HVS_TASK_ANOMALY_CLASSIFIER ? c->ref : NULL;
    for (size_t i = 0; i < m && rc == 0; i += CHUNK) {
        size_t k = m - i < CHUNK ? m - i : CHUNK;
        hvs_err_t err = {0};
        for (size_t j = 0; j < k && rc == 0; j++) {
            row_t *r = &c->rows[ord[i + j]];
            rc = sc_batch_add(bt, &r->v, 0, false, res, cls, r->area, &err);
        }
        emit_ctx_t e = {c, st, ord + i, k, 0};
        sc_batch_hooks_t hooks = {on_emit, on_finding, &e};
        if (rc == 0)
            rc = sc_batch_run(bt, st, ws, &conf, &hooks, &err);
        while (rc == 0 && e.at < e.nitems) /* no emit: too old for the ring */
            refuse(c, &c->rows[ord[i + e.at++]], "too_old",
                   "older than the scorer's ring of the apartment's hours");
        if (rc) {
            fprintf(stderr, "hvsctl score: %s: scoring failed: %s\n", c->ref->ident, err.msg);
            rc = 1;
        }
    }
    sc_watches_destroy(ws);
    sc_state_destroy(st);
    sc_batch_destroy(bt);
    free(ord);
    return rc;
}

/* ---- output --------------------------------------------------------------------------------- */

static void put_field(FILE *out, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void put_num(FILE *out, double v) {
    if (isfinite(v))
        fprintf(out, "%.12g", v);
}

static void write_rows(const sctx_t *c, FILE *out) {
    fputs("line,building_id,apartment_id,target_hour,horizon_h,model,version,prediction,unit,score,"
          "observed_kwh,residual_z,reason\n",
          out);
    const char *unit = c->task == HVS_TASK_ANOMALY_CLASSIFIER ? "probability" : "kwh";
    bool anomaly = c->task != HVS_TASK_FORECAST;
    for (size_t i = 0; i < c->n; i++) {
        const row_t *r = &c->rows[i];
        char hour[40] = "";
        if (r->v.hour != HVS_MS_NONE && r->v.building[0])
            hvs_time_format_iso8601(r->v.hour, hour, sizeof hour);
        fprintf(out, "%ld,", r->line);
        put_field(out, r->v.building);
        fputc(',', out);
        put_field(out, r->v.apartment);
        fprintf(out, ",%s,", hour);
        put_num(out, r->v.x[0]); /* horizon_h */
        fputc(',', out);
        put_field(out, c->ref->name);
        fprintf(out, ",%d,", c->ref->version);
        put_num(out, r->bad ? NAN : r->pred);
        fprintf(out, ",%s,", r->bad ? "" : unit);
        put_num(out, r->bad || !anomaly ? NAN : r->score);
        fputc(',', out);
        put_num(out, r->v.target);
        fputc(',', out);
        put_num(out, r->bad ? NAN : r->z);
        fputc(',', out);
        put_field(out, r->bad ? r->reason : "");
        fputc('\n', out);
    }
}

/* ---- the command ---------------------------------------------------------------------------- */

int hvsctl_score(hvs_app_t *app, int argc, char **argv) {
    if (hvsctl_wants_help(argc, argv)) {
        puts(help);
        return 0;
    }
    const char *model = NULL, *outpath = NULL, *path = NULL, *format = NULL;
    sctx_t c = {.app = app, .timeout_s = 15, .now = hvs_time_now_ms()};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool opt = strcmp(a, "--model") == 0 || strcmp(a, "--out") == 0 ||
                   strcmp(a, "--format") == 0 || strcmp(a, "--timeout") == 0;
        if (opt && !v) {
            fprintf(stderr, "hvsctl score: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--model") == 0) {
            model = argv[++i];
        } else if (strcmp(a, "--out") == 0) {
            outpath = argv[++i];
        } else if (strcmp(a, "--format") == 0) {
            format = argv[++i];
            if (strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0) {
                fprintf(stderr, "hvsctl score: --format csv or jsonl\n");
                return 2;
            }
        } else if (strcmp(a, "--timeout") == 0) {
            c.timeout_s = hvsctl_parse_count(a, argv[++i]);
            if (c.timeout_s < 1 || c.timeout_s > 3600) {
                if (c.timeout_s >= 0)
                    fprintf(stderr, "hvsctl score: --timeout: 1 to 3600 seconds\n");
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "hvsctl score: unknown option %s (see --help)\n", a);
            return 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "hvsctl score: one input file (got \"%s\" and \"%s\")\n", path, a);
            return 2;
        }
    }
    if (!model || !model[0] || !path) {
        fprintf(stderr, "hvsctl score: --model NAME[:VERSION] and a FILE (or -) are needed\n");
        return 2;
    }
    size_t plen = strlen(path);
    bool csv = format ? strcmp(format, "csv") == 0
                      : plen >= 4 && strcasecmp(path + plen - 4, ".csv") == 0;
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!in) {
        fprintf(stderr, "hvsctl score: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    hvs_err_t err = {0};
    int rc = 0;
    hvs_app_kafka_conf(app, &c.kc);
    if (hvs_serde_new(app->cfg.schema_registry_url, &c.serde, &err) != 0 ||
        sc_input_new(c.serde, &c.input, &err) != 0 ||
        hvs_encoder_new(c.serde, HVS_SCHEMA_FEATURE_VECTOR, hvs_topic_name("features.hourly"),
                        &c.enc, &err) != 0) {
        fprintf(stderr, "hvsctl score: %s\n", err.msg);
        rc = 1;
    }
    if (rc == 0)
        rc = open_model(&c, model);
    if (rc == 0)
        rc = read_rows(&c, in, path, csv);
    if (rc == 0)
        rc = topology_areas(&c);
    if (rc == 0)
        rc = c.task == HVS_TASK_FORECAST ? score_forecast(&c) : score_anomaly(&c);
    if (rc == 0) {
        FILE *out = outpath ? fopen(outpath, "w") : stdout;
        if (!out) {
            fprintf(stderr, "hvsctl score: cannot write %s: %s\n", outpath, strerror(errno));
            rc = 1;
        } else {
            write_rows(&c, out);
            if (fflush(out) != 0 || ferror(out) || (outpath && fclose(out) != 0)) {
                fprintf(stderr, "hvsctl score: writing %s: %s\n", outpath ? outpath : "stdout",
                        strerror(errno));
                rc = 1;
            }
        }
    }
    if (rc == 0) {
        fprintf(stderr, "hvsctl score: %zu rows scored with %s, %ld refused\n", c.n - (size_t)c.bad,
                c.ref->ident, c.bad);
        rc = c.bad ? EXIT_ROWS : 0;
    }
    if (in != stdin)
        fclose(in);
    free(c.rows);
    hvs_registry_release(c.ref);
    hvs_registry_destroy(c.reg);
    hvs_encoder_destroy(c.enc);
    sc_input_destroy(c.input);
    hvs_serde_destroy(c.serde);
    return rc;
}
