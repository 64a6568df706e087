/* alertbook.c - the alerter's book of apartment alerts as text (alertbook.h). */
#include "hvs/alertbook.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const rule_names[HVS_RULE_COUNT] = {"stuck_valve", "no_heat_response",
                                                       "sensor_flatline", "sensor_mismatch",
                                                       "consumption_without_demand"};

uint32_t hvs_alertbook_rule_bit(const char *name) {
    for (int i = 0; i < HVS_RULE_COUNT; i++)
        if (strcmp(name, rule_names[i]) == 0)
            return 1u << i;
    return 0;
}

const char *hvs_alertbook_rule_name(int i) {
    return i >= 0 && i < HVS_RULE_COUNT ? rule_names[i] : "unknown";
}

hvs_ms_t hvs_alertbook_id_day(const char *id) {
    const char *a = id ? strchr(id, '#') : NULL;
    int y, m, d, used = 0;
    if (!a || sscanf(a + 1, "%4d-%2d-%2d%n", &y, &m, &d, &used) != 3 || used != 10 ||
        a[11] != '#' || m < 1 || m > 12 || d < 1 || d > 31)
        return HVS_MS_NONE;
    return hvs_time_days_from_civil(y, m, d) * HVS_MS_DAY;
}

static const char *const disp_names[] = {"CANDIDATE", "RAISED", "SUPPRESSED", "EXPIRED"};

const char *hvs_alertbook_disposition_name(hvs_alertbook_disposition_t d) {
    return (unsigned)d < 4 ? disp_names[d] : "CANDIDATE";
}

int hvs_alertbook_disposition_parse(const char *s, hvs_alertbook_disposition_t *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, disp_names[i]) == 0) {
            *out = (hvs_alertbook_disposition_t)i;
            return 0;
        }
    return -1;
}

int hvs_alert_status_parse(const char *s, hvs_alert_status_t *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, hvs_alert_status_name((hvs_alert_status_t)i)) == 0) {
            *out = (hvs_alert_status_t)i;
            return 0;
        }
    return -1;
}

/* ---- text ----------------------------------------------------------------------------------- */

typedef struct out {
    char *p;
    size_t n, cap;
    bool full;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
    if (o->full || o->n + n >= o->cap) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = '\0';
}

/* A string field: '%', '|' and control bytes as %XX, then the separator. */
static void put_str(out_t *o, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '%' || c == '|' || c < 0x20) {
            char esc[4];
            snprintf(esc, sizeof esc, "%%%02X", c);
            put(o, esc, 3);
        } else {
            put(o, s, 1);
        }
    }
    put(o, "|", 1);
}

static void put_num(out_t *o, const char *fmt, ...) HVS_PRINTF(2, 3);
static void put_num(out_t *o, const char *fmt, ...) {
    char b[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    put(o, b, (size_t)n);
    put(o, "|", 1);
}

static void put_double(out_t *o, double v) {
    if (isnan(v))
        put(o, "nan|", 4);
    else
        put_num(o, "%.17g", v);
}

#define FIELDS 27

int hvs_alertbook_format(const hvs_alertbook_entry_t *e, char *buf, size_t len) {
    out_t o = {buf, 0, len, len == 0};
    put(&o, "a1|", 3);
    put_str(&o, e->id);
    put_str(&o, e->building);
    put_str(&o, e->apartment);
    put_str(&o, e->team);
    put_str(&o, e->model);
    put_str(&o, hvs_alert_type_name(e->type));
    put_str(&o, hvs_alert_severity_name(e->severity));
    put_str(&o, hvs_alert_status_name(e->status));
    put_str(&o, hvs_alertbook_disposition_name(e->disposition));
    put_str(&o, e->reason);
    put_num(&o, "%d", e->open ? 1 : 0);
    put_double(&o, e->score);
    put_num(&o, "%d", e->rank);
    put_num(&o, "%lld", (long long)e->first_seen);
    put_num(&o, "%lld", (long long)e->updated_at);
    put_num(&o, "%lld", (long long)e->list_day);
    put_num(&o, "%u", (unsigned)e->rules);
    put_num(&o, "%d", e->hours);
    put_double(&o, e->max_rule);
    put_double(&o, e->max_z);
    put_double(&o, e->max_prob);
    put_str(&o, e->reasons);
    put_num(&o, "%lld", (long long)e->feedback_at);
    put_str(&o, e->technician);
    put_str(&o, e->root_cause);
    put_str(&o, e->comment);
    put(&o, "end", 3);
    return o.full ? -1 : (int)o.n;
}

/* Bytes of s[0, n) without a multi-byte character cut short at its end (what a byte cut leaves
 * of a character that did not fit whole). */
static size_t utf8_whole(const char *s, size_t n) {
    size_t j = n;
    while (j > 0 && n - j < 3 && ((unsigned char)s[j - 1] & 0xC0) == 0x80)
        j--;
    if (j == 0)
        return n;
    unsigned char lead = (unsigned char)s[j - 1];
    if (lead < 0xC0)
        return n; /* ASCII (or stray continuation bytes: not ours to judge) */
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    return n - (j - 1) < need ? j - 1 : n;
}

size_t hvs_alertbook_copy(char *dst, size_t cap, const char *src) {
    if (cap == 0)
        return 0;
    size_t n = strlen(src);
    if (n < cap) {
        memcpy(dst, src, n + 1);
        return n;
    }
    n = utf8_whole(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

static int hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

/* Unescape field [s, s+n) into dst (cap bytes, cut at a UTF-8 boundary); -1 on a bad escape. */
static int get_str(const char *s, size_t n, char *dst, size_t cap) {
    size_t k = 0;
    bool cut = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1, lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (k + 1 >= cap) {
            cut = true; /* keep checking the escapes of the rest */
            continue;
        }
        dst[k++] = c;
    }
    if (cut)
        k = utf8_whole(dst, k); /* an over-long text cut inside a character: drop the partial one */
    dst[k] = '\0';
    return 0;
}

static int get_ll(const char *s, size_t n, long long *v) {
    char b[64];
    if (n == 0 || n >= sizeof b)
        return -1;
    memcpy(b, s, n);
    b[n] = '\0';
    char *end;
    errno = 0;
    *v = strtoll(b, &end, 10);
    return *end || errno ? -1 : 0;
}

static int get_double(const char *s, size_t n, double *v) {
    char b[64];
    if (n == 0 || n >= sizeof b)
        return -1;
    memcpy(b, s, n);
    b[n] = '\0';
    if (strcmp(b, "nan") == 0) {
        *v = NAN;
        return 0;
    }
    char *end;
    *v = strtod(b, &end);
    return *end ? -1 : 0;
}

static int enum_of(const char *s, size_t n, const char *(*name)(int), int count) {
    for (int i = 0; i < count; i++) {
        const char *x = name(i);
        if (strlen(x) == n && memcmp(x, s, n) == 0)
            return i;
    }
    return -1;
}

static const char *type_name_i(int i) { return hvs_alert_type_name((hvs_alert_type_t)i); }
static const char *sev_name_i(int i) { return hvs_alert_severity_name((hvs_alert_severity_t)i); }
static const char *status_name_i(int i) { return hvs_alert_status_name((hvs_alert_status_t)i); }
static const char *disp_name_i(int i) {
    return hvs_alertbook_disposition_name((hvs_alertbook_disposition_t)i);
}

int hvs_alertbook_parse(const char *s, size_t n, hvs_alertbook_entry_t *e, hvs_err_t *err) {
    const char *f[FIELDS + 1];
    size_t fl[FIELDS + 1];
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= n && nf <= FIELDS; i++)
        if (i == n || s[i] == '|') {
            f[nf] = s + start, fl[nf] = i - start, nf++;
            start = i + 1;
        }
    /* exactly FIELDS + 1 fields: the last ends the line (no "|..." after "end") */
    if (nf != FIELDS + 1 || f[FIELDS] + fl[FIELDS] != s + n || fl[0] != 2 ||
        memcmp(f[0], "a1", 2) != 0 || fl[FIELDS] != 3 || memcmp(f[FIELDS], "end", 3) != 0)
        return hvs_err_set(err, HVS_EINVAL, "bad_entry", "alert book entry: not an a1 line");
    memset(e, 0, sizeof *e);
    long long v[6];
    if (get_str(f[1], fl[1], e->id, sizeof e->id) ||
        get_str(f[2], fl[2], e->building, sizeof e->building) ||
        get_str(f[3], fl[3], e->apartment, sizeof e->apartment) ||
        get_str(f[4], fl[4], e->team, sizeof e->team) ||
        get_str(f[5], fl[5], e->model, sizeof e->model) ||
        get_str(f[10], fl[10], e->reason, sizeof e->reason) ||
        get_str(f[22], fl[22], e->reasons, sizeof e->reasons) ||
        get_str(f[24], fl[24], e->technician, sizeof e->technician) ||
        get_str(f[25], fl[25], e->root_cause, sizeof e->root_cause) ||
        get_str(f[26], fl[26], e->comment, sizeof e->comment))
        return hvs_err_set(err, HVS_EINVAL, "bad_entry", "alert book entry %s: bad escape", e->id);
    int k = 6;
    int t = enum_of(f[k], fl[k], type_name_i, 8), sv = enum_of(f[k + 1], fl[k + 1], sev_name_i, 3),
        st = enum_of(f[k + 2], fl[k + 2], status_name_i, 4),
        d = enum_of(f[k + 3], fl[k + 3], disp_name_i, 4);
    if (t < 0 || sv < 0 || st < 0 || d < 0)
        return hvs_err_set(err, HVS_EINVAL, "bad_entry", "alert book entry %s: bad enum", e->id);
    e->type = (hvs_alert_type_t)t, e->severity = (hvs_alert_severity_t)sv;
    e->status = (hvs_alert_status_t)st, e->disposition = (hvs_alertbook_disposition_t)d;
    k += 5; /* and the reason */
    if (get_ll(f[k], fl[k], &v[0]) || get_double(f[k + 1], fl[k + 1], &e->score) ||
        get_ll(f[k + 2], fl[k + 2], &v[1]) || get_ll(f[k + 3], fl[k + 3], &v[2]) ||
        get_ll(f[k + 4], fl[k + 4], &v[3]) || get_ll(f[k + 5], fl[k + 5], &v[4]) ||
        get_ll(f[k + 6], fl[k + 6], &v[5]))
        return hvs_err_set(err, HVS_EINVAL, "bad_entry", "alert book entry %s: bad number", e->id);
    e->open = v[0] != 0, e->rank = (int)v[1], e->first_seen = v[2], e->updated_at = v[3];
    e->list_day = v[4], e->rules = (uint32_t)v[5];
    k += 7;
    long long hours, fb;
    if (get_ll(f[k], fl[k], &hours) || get_double(f[k + 1], fl[k + 1], &e->max_rule) ||
        get_double(f[k + 2], fl[k + 2], &e->max_z) || get_double(f[k + 3], fl[k + 3], &e->max_prob))
        return hvs_err_set(err, HVS_EINVAL, "bad_entry", "alert book entry %s: bad evidence",
                           e->id);
    e->hours = (int)hours;
    k += 5; /* and the reasons */
    if (get_ll(f[k], fl[k], &fb))
        return hvs_err_set(err, HVS_EINVAL, "bad_entry", "alert book entry %s: bad feedback time",
                           e->id);
    e->feedback_at = fb;
    return 0;
}

/* ---- the published record ------------------------------------------------------------------- */

static const char *type_phrase(hvs_alert_type_t t) {
    switch (t) {
    case HVS_ALERT_RULE_STUCK_VALVE: return "valve looks stuck";
    case HVS_ALERT_RULE_NO_RESPONSE: return "radiator gives no heat";
    case HVS_ALERT_RULE_SENSOR_MISMATCH: return "room sensor looks faulty";
    default: return "unusual consumption";
    }
}

void hvs_alertbook_to_alert(const hvs_alertbook_entry_t *e, hvs_alert_t *a,
                            const char *ev[2 * HVS_ALERTBOOK_EVIDENCE + 1],
                            char evtext[HVS_ALERTBOOK_EVIDENCE][HVS_ALERTBOOK_NAME_MAX],
                            char *summary, size_t summary_len) {
    int n = 0, t = 0;
#define EV(name, ...)                                                                              \
    do {                                                                                           \
        snprintf(evtext[t], HVS_ALERTBOOK_NAME_MAX, __VA_ARGS__);                                  \
        ev[n++] = name, ev[n++] = evtext[t++];                                                     \
    } while (0)
    EV("hours_above", "%d", e->hours);
    EV("open", "%s", e->open ? "true" : "false");
    if (!isnan(e->max_rule))
        EV("rule_score", "%.3f", e->max_rule);
    if (!isnan(e->max_z))
        EV("residual_z", "%.2f", e->max_z);
    if (!isnan(e->max_prob))
        EV("probability", "%.3f", e->max_prob);
    if (e->rules) {
        char *p = evtext[t];
        size_t left = HVS_ALERTBOOK_NAME_MAX;
        p[0] = '\0';
        for (int i = 0; i < HVS_RULE_COUNT; i++)
            if (e->rules & (1u << i)) {
                int w = snprintf(p, left, "%s%s", p == evtext[t] ? "" : ",",
                                 hvs_alertbook_rule_name(i));
                if (w < 0 || (size_t)w >= left)
                    break;
                p += w, left -= (size_t)w;
            }
        ev[n++] = "rules", ev[n++] = evtext[t++];
    }
    if (e->feedback_at) {
        EV("technician", "%s", e->technician);
        if (e->root_cause[0])
            EV("root_cause", "%s", e->root_cause);
        if (e->comment[0]) {
            EV("comment", "%.90s", e->comment); /* then cut at a character boundary */
            evtext[t - 1][utf8_whole(evtext[t - 1], strlen(evtext[t - 1]))] = '\0';
        }
    }
    if (e->reasons[0]) {
        ev[n++] = "reasons";
        ev[n++] = e->reasons;
    }
    ev[n] = NULL;
#undef EV
    int w = snprintf(summary, summary_len, "%s %s: %s (score %.2f over %d h)%s%s", e->building,
                     e->apartment, type_phrase(e->type), e->score, e->hours,
                     e->reasons[0] ? ": " : "", e->reasons);
    if (summary_len && w >= 0 && (size_t)w >= summary_len) /* cut: at a character boundary */
        summary[utf8_whole(summary, summary_len - 1)] = '\0';
    *a = (hvs_alert_t){.building_id = e->building,
                       .apartment_id = e->apartment[0] ? e->apartment : NULL,
                       .type = e->type,
                       .severity = e->severity,
                       .score = e->score,
                       .summary = summary,
                       .evidence = ev,
                       .model = e->model[0] ? e->model : NULL,
                       .first_seen = e->first_seen,
                       .updated_at = e->updated_at,
                       .team = e->team[0] ? e->team : NULL,
                       .status = e->status,
                       .rank = e->rank};
}
