/*
 * Table-driven configuration (see hvs/config.h). Sources are applied in order default < file <
 * environment; each value is parsed and bounds-checked by its row, and every failure names the
 * key and the offending value (secrets never echoed).
 */
#include "hvs/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hvs/log.h"
#include "hvs/topics.h"

extern char **environ;

#define KAFKA_PREFIX "HVS_KAFKA_"
#define TOPIC_PREFIX "HVS_TOPIC_"

/* Variables read elsewhere, not through a table, that must not be rejected as unknown. */
static const char *const known_globals[] = {"HVS_CONFIG_FILE", NULL};

/* The one list of who owns which HVS_<WORD>_ prefix (see config.h). A new executable with its
 * own table adds its prefix here, or its names are only warned about by the others. */
const hvs_cfg_prefix_t hvs_config_prefixes[] = {
    {"HVS_KAFKA_", NULL},
    {"HVS_REDIS_", NULL},
    {"HVS_SCHEMA_", NULL},
    {"HVS_HTTP_", NULL},
    {"HVS_LOG_", NULL},
    {"HVS_TOPIC_", NULL},
    {"HVS_CONFIG_", NULL},
    {"HVS_SHUTDOWN_", NULL},
    {"HVS_AGG_", "hvs-aggregator"},
    {"HVS_WEATHER_", "hvs-weather"},
    {"HVS_FEAT_", "hvs-features"},
    {"HVS_TRAIN_", "hvs-trainer"},
    {"HVS_SCORE_", "hvs-scorer"},
    {"HVS_ALERT_", "hvs-alerter"},
    {"HVS_FC_", "hvs-forecaster"},
    {"HVS_RF_", "hvs-refresher"},
    {"HVS_SIM_", "hvs-simulator"},
    {"HVS_TECH_", "hvs-technician"},
    {NULL, NULL},
};

/* Length of the HVS_<WORD>_ prefix of `name` (the whole name when it has no second '_'). */
static size_t word_prefix_len(const char *name, size_t namelen) {
    const char *us = namelen > 4 ? memchr(name + 4, '_', namelen - 4) : NULL;
    return us ? (size_t)(us - name) + 1 : namelen;
}

static const hvs_cfg_prefix_t *prefix_lookup(const char *name, size_t plen) {
    for (const hvs_cfg_prefix_t *p = hvs_config_prefixes; p->prefix; p++)
        if (strlen(p->prefix) == plen && strncmp(p->prefix, name, plen) == 0)
            return p;
    return NULL;
}

const hvs_cfg_prefix_t *hvs_config_prefix_of(const char *name) {
    return prefix_lookup(name, word_prefix_len(name, strlen(name)));
}

/* Names outside every known prefix, gathered over the sources for the one warning. */
typedef struct unknown_names {
    char list[1024];
    size_t count;
} unknown_names_t;

static void unknown_add(unknown_names_t *u, const char *name, size_t namelen) {
    size_t len = strlen(u->list);
    /* the same name from the file and the environment is listed once */
    for (const char *at = u->list; *at;) {
        size_t tok = strcspn(at, ",");
        if (tok == namelen && strncmp(at, name, namelen) == 0)
            return;
        at += tok;
        at += strspn(at, ", ");
    }
    u->count++;
    if (len + namelen + 3 < sizeof u->list)
        snprintf(u->list + len, sizeof u->list - len, "%s%.*s", len ? ", " : "", (int)namelen,
                 name);
}

/* Does a row of the loaded tables start with the same HVS_<WORD>_ as `name`? */
static bool own_prefix(const hvs_cfg_section_t *sections, size_t nsections, const char *name,
                       size_t plen) {
    for (size_t s = 0; s < nsections; s++)
        for (size_t i = 0; i < sections[s].n; i++) {
            const char *row = sections[s].entries[i].name;
            if (word_prefix_len(row, strlen(row)) == plen && strncmp(row, name, plen) == 0)
                return true;
        }
    return false;
}

int hvs_config_parse_duration(const char *s, int64_t *ms) {
    if (!s || !*s)
        return HVS_EINVAL;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0)
        return HVS_EINVAL;
    double mult;
    if (*end == '\0' || strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else
        return HVS_EINVAL;
    double r = v * mult;
    if (r > 9.2e18)
        return HVS_EINVAL;
    *ms = (int64_t)llround(r);
    return HVS_OK;
}

static int parse_bool(const char *s, bool *out) {
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return HVS_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return HVS_OK;
        }
    }
    return HVS_EINVAL;
}

static bool bounded(const hvs_cfg_entry_t *e) { return !(e->min == 0 && e->max == 0); }

/* Shown in errors: the value, or **** for secrets. */
static const char *shown(const hvs_cfg_entry_t *e, const char *value) {
    return (e->flags & HVS_CFG_SECRET) ? "****" : value;
}

/* Parse `value` into the row's field. */
static int apply(const hvs_cfg_entry_t *e, void *target, const char *value, const char *origin,
                 hvs_err_t *err) {
    char *field = (char *)target + e->offset;
    switch (e->type) {
    case HVS_CFG_STRING: {
        char **sp = (char **)(void *)field;
        char *copy = strdup(value);
        if (!copy)
            return hvs_err_set(err, HVS_ENOMEM, NULL, "%s: out of memory", e->name);
        free(*sp);
        *sp = copy;
        return HVS_OK;
    }
    case HVS_CFG_INT: {
        errno = 0;
        char *end;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end != '\0')
            return hvs_err_set(err, HVS_ECONFIG, "bad_value", "%s=\"%.80s\" (%s): not an integer",
                               e->name, shown(e, value), origin);
        if (bounded(e) && (v < e->min || v > e->max))
            return hvs_err_set(err, HVS_ECONFIG, "out_of_range",
                               "%s=%lld (%s): out of range [%.0f, %.0f]", e->name, v, origin,
                               e->min, e->max);
        *(int64_t *)(void *)field = v;
        return HVS_OK;
    }
    case HVS_CFG_DOUBLE: {
        errno = 0;
        char *end;
        double v = strtod(value, &end);
        if (errno || end == value || *end != '\0' || !isfinite(v))
            return hvs_err_set(err, HVS_ECONFIG, "bad_value", "%s=\"%.80s\" (%s): not a number",
                               e->name, shown(e, value), origin);
        if (bounded(e) && (v < e->min || v > e->max))
            return hvs_err_set(err, HVS_ECONFIG, "out_of_range",
                               "%s=%g (%s): out of range [%g, %g]", e->name, v, origin, e->min,
                               e->max);
        *(double *)(void *)field = v;
        return HVS_OK;
    }
    case HVS_CFG_BOOL: {
        bool b;
        if (parse_bool(value, &b) != HVS_OK)
            return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                               "%s=\"%.80s\" (%s): not a boolean (true/false/1/0/yes/no/on/off)",
                               e->name, shown(e, value), origin);
        *(bool *)(void *)field = b;
        return HVS_OK;
    }
    case HVS_CFG_DURATION: {
        int64_t ms;
        if (hvs_config_parse_duration(value, &ms) != HVS_OK)
            return hvs_err_set(err, HVS_ECONFIG, "bad_value",
                               "%s=\"%.80s\" (%s): not a duration (e.g. 250ms, 30s, 5m, 48h, 2d)",
                               e->name, shown(e, value), origin);
        if (bounded(e) && (ms < e->min || ms > e->max))
            return hvs_err_set(err, HVS_ECONFIG, "out_of_range",
                               "%s=%s (%s): out of range [%.0fms, %.0fms]", e->name, value, origin,
                               e->min, e->max);
        *(int64_t *)(void *)field = ms;
        return HVS_OK;
    }
    }
    return hvs_err_set(err, HVS_EINVAL, NULL, "%s: unknown type", e->name);
}

static const hvs_cfg_entry_t *find_row(const hvs_cfg_section_t *sections, size_t nsections,
                                       const char *name, size_t namelen, void **target) {
    for (size_t s = 0; s < nsections; s++)
        for (size_t i = 0; i < sections[s].n; i++) {
            const hvs_cfg_entry_t *e = &sections[s].entries[i];
            if (strlen(e->name) == namelen && strncmp(e->name, name, namelen) == 0) {
                *target = sections[s].target;
                return e;
            }
        }
    return NULL;
}

static int passthrough_add(hvs_config_passthrough_t *pt, const char *name, size_t namelen,
                           const char *value, hvs_err_t *err) {
    if (!pt)
        return HVS_OK;
    const char *prop = name + strlen(KAFKA_PREFIX);
    size_t plen = namelen - strlen(KAFKA_PREFIX);
    if (plen == 0)
        return hvs_err_set(err, HVS_ECONFIG, "unknown_key", "%.*s: empty property name",
                           (int)namelen, name);
    char *key = malloc(plen + 1);
    char *val = strdup(value);
    char **kv = realloc(pt->kv, (pt->n + 3) * sizeof *kv);
    if (!key || !val || !kv) {
        free(key);
        free(val);
        if (kv)
            pt->kv = kv;
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < plen; i++)
        key[i] = prop[i] == '_' ? '.' : (char)tolower((unsigned char)prop[i]);
    key[plen] = '\0';
    pt->kv = kv;
    /* A later source overrides an earlier one for the same property. */
    for (size_t i = 0; i < pt->n; i += 2) {
        if (strcmp(pt->kv[i], key) == 0) {
            free(key);
            free(pt->kv[i + 1]);
            pt->kv[i + 1] = val;
            return HVS_OK;
        }
    }
    pt->kv[pt->n++] = key;
    pt->kv[pt->n++] = val;
    pt->kv[pt->n] = NULL;
    return HVS_OK;
}

/* One "NAME=value" from a source. */
static int apply_assignment(const hvs_cfg_section_t *sections, size_t nsections, const char *name,
                            size_t namelen, const char *value, const char *origin,
                            hvs_config_passthrough_t *pt, unknown_names_t *unknown,
                            hvs_err_t *err) {
    void *target;
    const hvs_cfg_entry_t *e = find_row(sections, nsections, name, namelen, &target);
    if (e)
        return apply(e, target, value, origin, err);
    if (strncmp(name, TOPIC_PREFIX, strlen(TOPIC_PREFIX)) == 0) {
        /* a rename of a topic of the table (its value is checked by hvs_topics_configure) */
        size_t ntopics;
        const hvs_topic_t *topics = hvs_topics_all(&ntopics);
        for (size_t i = 0; i < ntopics; i++)
            if (strlen(topics[i].env) == namelen && strncmp(topics[i].env, name, namelen) == 0)
                return HVS_OK;
    }
    if (strncmp(name, KAFKA_PREFIX, strlen(KAFKA_PREFIX)) == 0)
        return passthrough_add(pt, name, namelen, value, err);
    for (const char *const *g = known_globals; *g; g++)
        if (strlen(*g) == namelen && strncmp(*g, name, namelen) == 0)
            return HVS_OK;
    /* Strict under this program's own prefixes and the common ones: a typo there stops
     * start-up. Another program's prefix: its setting, not ours (one ConfigMap for all).
     * Anything else (a user's own HVS_SRC): warned about once, after loading. */
    size_t plen = word_prefix_len(name, namelen);
    const hvs_cfg_prefix_t *known = prefix_lookup(name, plen);
    if (own_prefix(sections, nsections, name, plen) || (known && !known->owner))
        return hvs_err_set(err, HVS_ECONFIG, "unknown_key",
                           "%.*s (%s): unknown setting under %.*s*, which this program reads "
                           "(see --help for its settings)",
                           (int)namelen, name, origin, (int)plen, name);
    if (!known)
        unknown_add(unknown, name, namelen);
    return HVS_OK;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int load_file(const hvs_cfg_section_t *sections, size_t nsections, const char *path,
                     hvs_config_passthrough_t *pt, unknown_names_t *unknown, hvs_err_t *err) {
    FILE *f = fopen(path, "r");
    if (!f)
        return hvs_err_set(err, HVS_ECONFIG, "config_file", "config file %s: %s", path,
                           strerror(errno));
    char line[4096];
    int lineno = 0, rc = HVS_OK;
    while (rc == HVS_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        if (strncmp(s, "export ", 7) == 0)
            s = trim(s + 7);
        char *eq = strchr(s, '=');
        char origin[300];
        snprintf(origin, sizeof origin, "%s:%d", path, lineno);
        if (!eq) {
            rc = hvs_err_set(err, HVS_ECONFIG, "config_file", "%s: expected NAME=value", origin);
            break;
        }
        *eq = '\0';
        char *name = trim(s);
        char *value = trim(eq + 1);
        size_t vlen = strlen(value);
        if (vlen >= 2 && (value[0] == '"' || value[0] == '\'') && value[vlen - 1] == value[0]) {
            value[vlen - 1] = '\0';
            value++;
        }
        if (strncmp(name, "HVS_", 4) != 0) {
            rc = hvs_err_set(err, HVS_ECONFIG, "unknown_key", "%s: %s is not an HVS_* setting",
                             origin, name);
            break;
        }
        rc = apply_assignment(sections, nsections, name, strlen(name), value, origin, pt, unknown,
                              err);
    }
    fclose(f);
    return rc;
}

int hvs_config_load(const hvs_cfg_section_t *sections, size_t nsections, const char *file,
                    char *const *envp, hvs_config_passthrough_t *pt, hvs_err_t *err) {
    if (!envp)
        envp = environ;
    if (pt) {
        pt->kv = calloc(1, sizeof *pt->kv);
        pt->n = 0;
        if (!pt->kv)
            return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    }
    for (size_t s = 0; s < nsections; s++)
        for (size_t i = 0; i < sections[s].n; i++) {
            const hvs_cfg_entry_t *e = &sections[s].entries[i];
            if (e->def) {
                int rc = apply(e, sections[s].target, e->def, "default", err);
                if (rc != HVS_OK)
                    return rc;
            }
        }
    if (!file) {
        for (char *const *e = envp; *e; e++)
            if (strncmp(*e, "HVS_CONFIG_FILE=", 16) == 0 && (*e)[16])
                file = *e + 16;
    }
    unknown_names_t unknown = {.count = 0};
    if (file) {
        int rc = load_file(sections, nsections, file, pt, &unknown, err);
        if (rc != HVS_OK)
            return rc;
    }
    for (char *const *e = envp; *e; e++) {
        if (strncmp(*e, "HVS_", 4) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        int rc = apply_assignment(sections, nsections, *e, (size_t)(eq - *e), eq + 1, "environment",
                                  pt, &unknown, err);
        if (rc != HVS_OK)
            return rc;
    }
    if (unknown.count)
        hvs_log_fields(HVS_LOG_WARN, "config",
                       "ignoring HVS_* variables outside every known prefix (no program of "
                       "hvacstream reads them; a typo?)",
                       HVS_LFS("names", unknown.list), HVS_LFI("count", unknown.count));
    for (size_t s = 0; s < nsections; s++)
        for (size_t i = 0; i < sections[s].n; i++) {
            const hvs_cfg_entry_t *e = &sections[s].entries[i];
            if ((e->flags & HVS_CFG_REQUIRED) && e->type == HVS_CFG_STRING &&
                !*(char **)(void *)((char *)sections[s].target + e->offset))
                return hvs_err_set(err, HVS_ECONFIG, "missing", "%s: required but not set",
                                   e->name);
        }
    return HVS_OK;
}

void hvs_config_fini(const hvs_cfg_section_t *sections, size_t nsections,
                     hvs_config_passthrough_t *pt) {
    for (size_t s = 0; s < nsections; s++)
        for (size_t i = 0; i < sections[s].n; i++) {
            const hvs_cfg_entry_t *e = &sections[s].entries[i];
            if (e->type == HVS_CFG_STRING && sections[s].target) {
                char **sp = (char **)(void *)((char *)sections[s].target + e->offset);
                free(*sp);
                *sp = NULL;
            }
        }
    if (pt && pt->kv) {
        for (size_t i = 0; i < pt->n; i++)
            free(pt->kv[i]);
        free(pt->kv);
        pt->kv = NULL;
        pt->n = 0;
    }
}

/* Mask "[scheme://]user:password@host" to "[scheme://]user:****@host". */
static void mask_url(const char *in, char *out, size_t outlen) {
    snprintf(out, outlen, "%s", in);
    char *scheme = strstr(out, "://");
    char *start = scheme ? scheme + 3 : out;
    char *at = strchr(start, '@');
    if (!at)
        return;
    char *colon = memchr(start, ':', (size_t)(at - start));
    if (!colon)
        return;
    char rest[1024];
    snprintf(rest, sizeof rest, "%s", at);
    snprintf(colon + 1, outlen - (size_t)(colon + 1 - out), "****%s", rest);
}

static void format_value(const hvs_cfg_entry_t *e, const void *target, char *buf, size_t n) {
    const char *field = (const char *)target + e->offset;
    switch (e->type) {
    case HVS_CFG_STRING: {
        const char *s = *(char *const *)(const void *)field;
        if (!s)
            snprintf(buf, n, "(unset)");
        else if (e->flags & HVS_CFG_SECRET)
            snprintf(buf, n, "****");
        else
            mask_url(s, buf, n);
        break;
    }
    case HVS_CFG_INT:
        snprintf(buf, n, "%lld", (long long)*(const int64_t *)(const void *)field);
        break;
    case HVS_CFG_DURATION:
        snprintf(buf, n, "%lldms", (long long)*(const int64_t *)(const void *)field);
        break;
    case HVS_CFG_DOUBLE: snprintf(buf, n, "%g", *(const double *)(const void *)field); break;
    case HVS_CFG_BOOL:
        snprintf(buf, n, "%s", *(const bool *)(const void *)field ? "true" : "false");
        break;
    }
}

static bool secret_property(const char *key) {
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "key") ||
           strstr(key, "token");
}

void hvs_config_log_effective(const hvs_cfg_section_t *sections, size_t nsections,
                              const hvs_config_passthrough_t *pt) {
    if (!hvs_log_enabled(HVS_LOG_INFO))
        return;
    for (size_t s = 0; s < nsections; s++)
        for (size_t i = 0; i < sections[s].n; i++) {
            char value[512];
            format_value(&sections[s].entries[i], sections[s].target, value, sizeof value);
            hvs_log_fields(HVS_LOG_INFO, "config", "effective setting",
                           HVS_LFS("key", sections[s].entries[i].name), HVS_LFS("value", value),
                           HVS_LFS("section", sections[s].title));
        }
    for (size_t i = 0; pt && i + 1 < pt->n; i += 2)
        hvs_log_fields(HVS_LOG_INFO, "config", "kafka pass-through property",
                       HVS_LFS("key", pt->kv[i]),
                       HVS_LFS("value", secret_property(pt->kv[i]) ? "****" : pt->kv[i + 1]));
}

static const char *type_name(hvs_cfg_type_t t) {
    switch (t) {
    case HVS_CFG_STRING: return "string";
    case HVS_CFG_INT: return "int";
    case HVS_CFG_DOUBLE: return "number";
    case HVS_CFG_BOOL: return "bool";
    case HVS_CFG_DURATION: return "duration";
    }
    return "?";
}

void hvs_config_print_help(FILE *out, const hvs_cfg_section_t *sections, size_t nsections) {
    for (size_t s = 0; s < nsections; s++) {
        fprintf(out, "\nSettings (%s):\n", sections[s].title);
        for (size_t i = 0; i < sections[s].n; i++) {
            const hvs_cfg_entry_t *e = &sections[s].entries[i];
            fprintf(out, "  %-32s %s", e->name, type_name(e->type));
            if (e->def)
                fprintf(out, ", default %s", (e->flags & HVS_CFG_SECRET) ? "****" : e->def);
            if (e->flags & HVS_CFG_REQUIRED)
                fprintf(out, ", required");
            if (bounded(e)) {
                if (e->type == HVS_CFG_DURATION)
                    fprintf(out, ", %.0fms..%.0fms", e->min, e->max);
                else
                    fprintf(out, ", %g..%g", e->min, e->max);
            }
            fprintf(out, "\n      %s\n", e->help);
        }
    }
    fprintf(out, "\n  HVS_KAFKA_<PROP>                 any other librdkafka property, e.g.\n"
                 "      HVS_KAFKA_SECURITY_PROTOCOL=SASL_SSL -> security.protocol\n"
                 "  HVS_TOPIC_<NAME>                 rename a topic, e.g. HVS_TOPIC_READINGS_RAW\n"
                 "  HVS_CONFIG_FILE                  file of HVS_NAME=value lines (env wins)\n");
}
