/* profile.c - what a deployment meters (see hvs/profile.h). */
#include "hvs/profile.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/features.h"
#include "hvs/log.h"
#include "hvs/task_rows.h"
#include "hvs/text.h"
#include "hvs/vec.h"

extern const char hvs_profiles_builtin[];
extern const size_t hvs_profiles_builtin_len;

static const char *const channel_names[HVS_CH_COUNT] = {"use",      "water", "temp",
                                                        "setpoint", "valve", "humidity"};

const char *hvs_profile_channel_name(hvs_profile_channel_t ch) {
    return (unsigned)ch < HVS_CH_COUNT ? channel_names[ch] : "?";
}

/* The parsed profiles. Strings point into `text` copies kept with the database, which is never
 * freed once in use (pointers handed out stay valid). */
typedef struct db {
    hvs_profile_t *p;
    size_t n, cap;
    char **texts; /* the files' bytes, NUL-terminated, modified in place by the parser */
    size_t ntexts, captexts;
    struct db *retired; /* the database in use before this one (kept: see Ownership) */
} db_t;

static void db_free(db_t *db) {
    if (!db)
        return;
    for (size_t i = 0; i < db->ntexts; i++)
        free(db->texts[i]);
    free(db->texts);
    free(db->p);
    free(db);
}

static hvs_profile_t *db_find(db_t *db, const char *name) {
    for (size_t i = 0; i < db->n; i++)
        if (strcmp(db->p[i].name, name) == 0)
            return &db->p[i];
    return NULL;
}

#define FAIL(...) hvs_err_set(err, HVS_EINVAL, "profile_file", __VA_ARGS__)

static bool name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 31)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
            return false;
    return true;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(x))
        return -1;
    *out = x;
    return 0;
}

/* sensor = TYPE UNIT MIN MAX counter|gauge apartment|room CHANNEL */
static int parse_sensor(hvs_profile_t *p, char *v, const char *where, hvs_err_t *err) {
    char *tok[8], *save = NULL;
    int n = 0;
    for (char *t = strtok_r(v, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
        if (n < 8)
            tok[n++] = t;
        else
            n = 9;
    if (n != 7)
        return FAIL("%s: sensor needs TYPE UNIT MIN MAX counter|gauge apartment|room CHANNEL",
                    where);
    if (p->nsensors >= HVS_PROFILE_MAX_SENSORS)
        return FAIL("%s: more than %d sensors", where, HVS_PROFILE_MAX_SENSORS);
    hvs_sensor_info_t *s = &p->sensors[p->nsensors];
    s->type = tok[0];
    s->unit = tok[1];
    if (strlen(tok[0]) > HVS_READING_ID_MAX)
        return FAIL("%s: sensor type longer than %d bytes", where, HVS_READING_ID_MAX);
    for (size_t i = 0; i < p->nsensors; i++)
        if (strcmp(p->sensors[i].type, s->type) == 0)
            return FAIL("%s: sensor %s defined twice", where, s->type);
    if (parse_double(tok[2], &s->min) || parse_double(tok[3], &s->max) || s->min > s->max)
        return FAIL("%s: sensor %s: MIN MAX must be finite numbers, MIN <= MAX", where, s->type);
    if (strcmp(tok[4], "counter") && strcmp(tok[4], "gauge"))
        return FAIL("%s: sensor %s: '%s' is neither counter nor gauge", where, s->type, tok[4]);
    s->cumulative = strcmp(tok[4], "counter") == 0;
    if (strcmp(tok[5], "apartment") && strcmp(tok[5], "room"))
        return FAIL("%s: sensor %s: '%s' is neither apartment nor room", where, s->type, tok[5]);
    s->per_room = strcmp(tok[5], "room") == 0;
    int ch = -1;
    for (int c = 0; c < HVS_CH_COUNT; c++)
        if (strcmp(tok[6], channel_names[c]) == 0)
            ch = c;
    if (ch < 0)
        return FAIL("%s: sensor %s: unknown channel '%s' (use water temp setpoint valve humidity)",
                    where, s->type, tok[6]);
    /* the aggregator differences counters and averages gauges: a channel is one or the other */
    bool counter_ch = ch == HVS_CH_USE || ch == HVS_CH_WATER;
    if (counter_ch != s->cumulative || (counter_ch && s->per_room))
        return FAIL("%s: sensor %s: channel %s takes %s", where, s->type, tok[6],
                    counter_ch ? "an apartment-level counter" : "a gauge");
    for (size_t i = 0; i < p->nsensors; i++)
        if (p->channel[i] == (hvs_profile_channel_t)ch)
            return FAIL("%s: sensor %s: channel %s is fed by %s already", where, s->type, tok[6],
                        p->sensors[i].type);
    p->channel[p->nsensors++] = (hvs_profile_channel_t)ch;
    if (ch == HVS_CH_USE)
        p->quantity = s->type;
    return HVS_OK;
}

static int parse_line(hvs_profile_t *p, char *key, char *v, const char *where, hvs_err_t *err) {
    if (strcmp(key, "sensor") == 0)
        return parse_sensor(p, v, where, err);
    if (strcmp(key, "meter_max_kw") == 0) {
        if (parse_double(v, &p->meter_max_kw) || p->meter_max_kw < 0 || p->meter_max_kw > 1e6)
            return FAIL("%s: meter_max_kw '%s' is not a number in [0, 1e6]", where, v);
        return HVS_OK;
    }
    if (strcmp(key, "target_scale") == 0) {
        if (strcmp(v, "per_heated_m2") && strcmp(v, "kwh"))
            return FAIL("%s: target_scale '%s' is neither per_heated_m2 nor kwh", where, v);
        p->target_scale = v;
        return HVS_OK;
    }
    if (strcmp(key, "monotone") == 0) {
        if (strcmp(v, "on") && strcmp(v, "off"))
            return FAIL("%s: monotone '%s' is neither on nor off", where, v);
        p->monotone = strcmp(v, "on") == 0;
        return HVS_OK;
    }
    if (strcmp(key, "window") == 0) {
        if (strcmp(v, "1h"))
            return FAIL("%s: window '%s': only 1h is supported", where, v);
        p->window_ms = 3600000;
        return HVS_OK;
    }
    if (strcmp(key, "tasks") == 0) {
        p->tasks = 0;
        char *save = NULL;
        for (char *t = strtok_r(v, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
            int k = hvs_taskrow_task_parse(t);
            if (k < 0)
                return FAIL("%s: tasks: '%s' is not a task", where, t);
            p->tasks |= 1u << k;
        }
        if (!p->tasks)
            return FAIL("%s: tasks: none named", where);
        if ((p->tasks & (1u << HVS_TASK_REFRESH)) && !(p->tasks & (1u << HVS_TASK_FORECAST)))
            return FAIL("%s: tasks: refresh corrects forecasts, it needs forecast", where);
        return HVS_OK;
    }
    if (strcmp(key, "forecast_drop") == 0) {
        size_t n = 0;
        while (p->forecast_drop[n])
            n++;
        char *save = NULL;
        for (char *t = strtok_r(v, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
            if (hvs_features_index(t) < 0)
                return FAIL("%s: forecast_drop: '%s' is not a feature of set %s", where, t,
                            hvs_features_version());
            if (n >= HVS_PROFILE_MAX_DROP)
                return FAIL("%s: forecast_drop: more than %d names", where, HVS_PROFILE_MAX_DROP);
            p->forecast_drop[n++] = t;
            p->forecast_drop[n] = NULL;
        }
        return HVS_OK;
    }
    return FAIL("%s: unknown key '%s'", where, key);
}

/* Parse a file's text (taken: kept by the database, or freed on failure). */
static int db_parse(db_t *db, char *text, const char *file, hvs_err_t *err) {
    char **nt = hvs_vec_grow(db->texts, &db->captexts, db->ntexts + 1, sizeof *nt, 4);
    if (!nt) {
        free(text);
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    }
    db->texts = nt;
    db->texts[db->ntexts++] = text;
    hvs_profile_t *cur = NULL;
    int lineno = 0;
    char *save = NULL;
    char where[320];
    /* strtok_r skips empty lines, so line numbers are counted from the text itself */
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        snprintf(where, sizeof where, "%s:%d", file, lineno);
        if (strlen(line) > 511)
            return FAIL("%s: line longer than 511 bytes", where);
        for (char *c = line; *c; c++) /* a comment: '#' at the start or after a blank */
            if (*c == '#' && (c == line || *(c - 1) == ' ' || *(c - 1) == '\t')) {
                *c = '\0';
                break;
            }
        char *s = hvs_text_trim(line);
        if (!*s)
            continue;
        if (*s == '[') {
            size_t n = strlen(s);
            if (s[n - 1] != ']')
                return FAIL("%s: a section is [NAME]", where);
            s[n - 1] = '\0';
            char *name = hvs_text_trim(s + 1);
            if (!name_ok(name))
                return FAIL("%s: profile name '%s': 1-31 letters, digits, '-' or '_'", where, name);
            cur = db_find(db, name);
            if (!cur) {
                hvs_profile_t *np = hvs_vec_grow(db->p, &db->cap, db->n + 1, sizeof *np, 4);
                if (!np)
                    return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
                db->p = np;
                cur = &db->p[db->n++];
            }
            /* a section replaces the profile whole: nothing of the old one leaks through */
            memset(cur, 0, sizeof *cur);
            cur->name = name;
            cur->window_ms = 3600000;
            cur->target_scale = "per_heated_m2";
            cur->tasks = (1u << HVS_TASK_COUNT) - 1;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq)
            return FAIL("%s: expected KEY = VALUE or [NAME]", where);
        *eq = '\0';
        char *key = hvs_text_trim(s), *v = hvs_text_trim(eq + 1);
        if (!cur)
            return FAIL("%s: '%s' before the first [NAME]", where, key);
        int rc = parse_line(cur, key, v, where, err);
        if (rc)
            return rc;
    }
    (void)save;
    return HVS_OK;
}

static int db_check(db_t *db, hvs_err_t *err) {
    for (size_t i = 0; i < db->n; i++)
        if (!db->p[i].quantity)
            return hvs_err_set(err, HVS_EINVAL, "bad_profile",
                               "profile %s has no sensor on channel use (its metered quantity)",
                               db->p[i].name);
    return HVS_OK;
}

static int db_build(const char *path, db_t **out, hvs_err_t *err) {
    db_t *db = calloc(1, sizeof *db);
    char *builtin = malloc(hvs_profiles_builtin_len + 1);
    if (!db || !builtin) {
        free(db), free(builtin);
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    }
    memcpy(builtin, hvs_profiles_builtin, hvs_profiles_builtin_len + 1);
    int rc = db_parse(db, builtin, "(built-in) profiles.ini", err);
    char *text = NULL;
    if (!rc && path && *path &&
        !(rc = hvs_text_read_file(path, "profile file", "profile_file", &text, NULL, err)))
        rc = db_parse(db, text, path, err);
    if (!rc)
        rc = db_check(db, err);
    if (rc) {
        db_free(db);
        return rc;
    }
    *out = db;
    return HVS_OK;
}

bool hvs_profile_task_on(const hvs_profile_t *p, int task) {
    return task >= 0 && task < HVS_TASK_COUNT && (p->tasks & (1u << task));
}

/* The profile in use: set once at start-up (or lazily to heat), read lock-free after. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(const hvs_profile_t *) active;
static db_t *db_cur; /* active's database, the older ones chained (under mu) */

/* Make db the one in use with its profile p (under mu). */
static void db_use(db_t *db, const hvs_profile_t *p) {
    db->retired = db_cur;
    db_cur = db;
    atomic_store(&active, p);
}

int hvs_profile_load(const char *name, const char *path, hvs_err_t *err) {
    if (!name || !*name)
        name = HVS_PROFILE_DEFAULT;
    db_t *db = NULL;
    int rc = db_build(path, &db, err);
    if (rc)
        return rc;
    const hvs_profile_t *p = db_find(db, name);
    if (!p) {
        char known[512] = "";
        for (size_t i = 0, k = 0; i < db->n && k < sizeof known; i++)
            k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "",
                                  db->p[i].name);
        rc = hvs_err_set(err, HVS_EINVAL, "unknown_profile",
                         "profile %s is not defined (known: %s)", name, known);
        db_free(db);
        return rc;
    }
    pthread_mutex_lock(&mu);
    db_use(db, p); /* kept for the process: p and its strings point into it */
    pthread_mutex_unlock(&mu);
    hvs_log_info("profile", "profile %s (metered quantity %s, forecast target %s, %zu sensors)%s%s",
                 p->name, p->quantity, p->target_scale, p->nsensors,
                 path && *path ? " from built-in + " : "", path && *path ? path : "");
    return HVS_OK;
}

const hvs_profile_t *hvs_profile_active(void) {
    const hvs_profile_t *p = atomic_load(&active);
    if (p)
        return p;
    pthread_mutex_lock(&mu);
    if (!(p = atomic_load(&active))) {
        db_t *db = NULL;
        hvs_err_t err = {0};
        /* the built-in file is tested (test_profile): only ENOMEM fails here */
        if (db_build(NULL, &db, &err) || !(p = db_find(db, HVS_PROFILE_DEFAULT))) {
            /* no sensors: every reading is refused as unknown_sensor, and this says why */
            static const hvs_profile_t none = {.name = "none", .quantity = "", .target_scale = ""};
            hvs_log_error("profile", "built-in profiles: %s", err.msg);
            db_free(db);
            p = &none;
            atomic_store(&active, p);
        } else {
            db_use(db, p);
        }
    }
    pthread_mutex_unlock(&mu);
    return p;
}

const char *hvs_profile_channel_sensor(hvs_profile_channel_t ch) {
    const hvs_profile_t *p = hvs_profile_active();
    for (size_t i = 0; i < p->nsensors; i++)
        if (p->channel[i] == ch)
            return p->sensors[i].type;
    return NULL;
}
