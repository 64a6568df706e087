/* calendar.c - holidays, school holidays, bridge days and local time (see calendar.h). */
#include "hvs/calendar.h"

#include "hvs/log.h"
#include "hvs/text.h"
#include "hvs/vec.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ucal.h>

#define DAY_MS (86400000LL)
#define YEAR_MIN 1970
#define YEAR_MAX 2199
#define CACHE_YEARS 4
#define MAX_DEPTH 16 /* parent chain: more is a loop */

/* The built-in region file (data/calendar/regions.ini), embedded at build time. */
extern const char hvs_calendar_builtin[];
extern const size_t hvs_calendar_builtin_len;

enum { F_HOLIDAY = 1, F_BRIDGE = 2, F_SCHOOL = 4, F_XMAS = 8 };

/* ---- rules ------------------------------------------------------------------------------- */

typedef enum { R_FIXED, R_EASTER, R_NTH, R_LAST, R_WEEK } rule_kind_t;

/* [WD<=|WD>=]BASE[+N|-N]: BASE's date, plus N days, then moved to weekday WD on or before
 * (<=) or on or after (>=). */
typedef struct rule {
    rule_kind_t kind;
    int month, day; /* R_FIXED; month also R_NTH/R_LAST */
    int n;          /* R_NTH: 1-5; R_WEEK: ISO week 1-53 */
    int wd;         /* R_NTH/R_LAST: 0 = Monday */
    int offset;
    int align_wd, align_dir; /* align_dir: 0 none, -1 on or before, +1 on or after */
} rule_t;

typedef enum { OBS_NONE, OBS_NEXT, OBS_NEAREST, OBS_SUN_SAT } obs_t;

typedef struct hol {
    rule_t r;
    int from, to; /* years, inclusive */
    obs_t obs;
    char *name, *obs_name;
} hol_t;

typedef struct span {
    rule_t start, end;
    int len; /* > 0: days from start; 0: through `end` inclusive */
    int from, to;
} span_t;

typedef struct regdef {
    char *code, *parent, *zone;
    hol_t *hol;
    size_t nhol, caphol;
    char **drop; /* inherited holidays removed, by name */
    size_t ndrop, capdrop;
    span_t *school;
    size_t nschool, capschool;
    bool school_set; /* own school spans (replace the parent's) */
    int line;        /* of its first section header */
    const char *origin;
} regdef_t;

typedef struct db {
    regdef_t *r;
    size_t n, cap;
    char **origins; /* file names the definitions came from (owned) */
    size_t norigins;
    const char **names; /* NULL-terminated region codes */
    struct db *retired; /* databases replaced by a later load: calendars may still use them */
} db_t;

static const char *const wd_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* ---- civil dates ------------------------------------------------------------------------- */

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
static int year_days(int y) { return leap(y) ? 366 : 365; }
static int month_days(int y, int m) {
    static const int md[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : md[m - 1];
}

/* The calendar counts in long days and int years; the arithmetic is time.h's. */
static long days_from_civil(int y, int m, int d) { return (long)hvs_time_days_from_civil(y, m, d); }

static void civil_from_days(long z, int *y, int *m, int *d) {
    int64_t yy;
    hvs_time_civil_from_days(z, &yy, m, d);
    *y = (int)yy;
}

static int weekday_of(long days) { return (int)(((days % 7) + 7 + 3) % 7); } /* 1970-01-01: Thu */

void hvs_calendar_easter(int year, int *month, int *day) {
    int a = year % 19, b = year / 100, c = year % 100, d = b / 4, e = b % 4;
    int f = (b + 8) / 25, g = (b - f + 1) / 3, h = (19 * a + b - d - g + 15) % 30;
    int i = c / 4, k = c % 4, l = (32 + 2 * e + 2 * i - h - k) % 7;
    int m = (a + 11 * h + 22 * l) / 451;
    *month = (h + l - 7 * m + 114) / 31;
    *day = (h + l - 7 * m + 114) % 31 + 1;
}

/* The rule's date in `year` as days since 1970-01-01; LONG_MIN when it has none that year
 * (the 5th Monday of a month with four). */
static long rule_eval(const rule_t *r, int year) {
    long d;
    switch (r->kind) {
    case R_FIXED:
        if (r->day > month_days(year, r->month))
            return LONG_MIN;
        d = days_from_civil(year, r->month, r->day);
        break;
    case R_EASTER: {
        int m, dd;
        hvs_calendar_easter(year, &m, &dd);
        d = days_from_civil(year, m, dd);
        break;
    }
    case R_NTH: {
        int first = weekday_of(days_from_civil(year, r->month, 1));
        int dom = 1 + (r->wd - first + 7) % 7 + 7 * (r->n - 1);
        if (dom > month_days(year, r->month))
            return LONG_MIN;
        d = days_from_civil(year, r->month, dom);
        break;
    }
    case R_LAST: {
        d = days_from_civil(year, r->month, month_days(year, r->month));
        d -= (weekday_of(d) - r->wd + 7) % 7;
        break;
    }
    case R_WEEK:
    default: {
        long jan4 = days_from_civil(year, 1, 4);
        d = jan4 - weekday_of(jan4) + 7L * (r->n - 1);
        break;
    }
    }
    d += r->offset;
    if (r->align_dir < 0)
        d -= (weekday_of(d) - r->align_wd + 7) % 7;
    else if (r->align_dir > 0)
        d += (r->align_wd - weekday_of(d) + 7) % 7;
    return d;
}

static int parse_wd(const char *s) {
    for (int i = 0; i < 7; i++)
        if (strncmp(s, wd_names[i], 3) == 0)
            return i;
    return -1;
}

/* Reads an unsigned decimal of at most `maxd` digits; -1 when there is none. */
static int parse_uint(const char **p, int maxd) {
    int v = 0, n = 0;
    while (n < maxd && isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        (*p)++, n++;
    }
    return n ? v : -1;
}

/* Parses one rule (see the format in data/calendar/regions.ini); 0 or -1 with `why` set. */
static int rule_parse(const char *s, rule_t *r, const char **why) {
    memset(r, 0, sizeof *r);
    const char *p = s;
    *why = "expected MM-DD, easter[+-N], nth:N:WD:MM, last:WD:MM or week:N, optionally "
           "WD<= or WD>= before and +N/-N after";
    int wd = parse_wd(p);
    if (wd >= 0 && (p[3] == '<' || p[3] == '>') && p[4] == '=') {
        r->align_wd = wd;
        r->align_dir = p[3] == '<' ? -1 : 1;
        p += 5;
    }
    if (strncmp(p, "easter", 6) == 0) {
        r->kind = R_EASTER;
        p += 6;
    } else if (strncmp(p, "nth:", 4) == 0 || strncmp(p, "last:", 5) == 0) {
        bool nth = p[0] == 'n';
        r->kind = nth ? R_NTH : R_LAST;
        p += nth ? 4 : 5;
        if (nth) {
            r->n = parse_uint(&p, 1);
            if (r->n < 1 || r->n > 5 || *p++ != ':')
                return -1;
        }
        if ((r->wd = parse_wd(p)) < 0 || p[3] != ':')
            return -1;
        p += 4;
        r->month = parse_uint(&p, 2);
        if (r->month < 1 || r->month > 12)
            return -1;
    } else if (strncmp(p, "week:", 5) == 0) {
        r->kind = R_WEEK;
        p += 5;
        r->n = parse_uint(&p, 2);
        if (r->n < 1 || r->n > 53)
            return -1;
    } else {
        r->kind = R_FIXED;
        const char *q = p;
        r->month = parse_uint(&p, 2);
        if (p - q != 2 || *p++ != '-')
            return -1;
        q = p;
        r->day = parse_uint(&p, 2);
        if (p - q != 2 || r->month < 1 || r->month > 12 || r->day < 1 ||
            r->day > (r->month == 2 ? 29 : month_days(2001, r->month))) {
            *why = "no such date";
            return -1;
        }
    }
    if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        int v = parse_uint(&p, 3);
        if (v < 0)
            return -1;
        r->offset = sign * v;
    }
    return *p ? -1 : 0;
}

/* ---- the region file ----------------------------------------------------------------------- */

static void regdef_free(regdef_t *r) {
    free(r->code), free(r->parent), free(r->zone);
    for (size_t i = 0; i < r->nhol; i++)
        free(r->hol[i].name), free(r->hol[i].obs_name);
    free(r->hol);
    for (size_t i = 0; i < r->ndrop; i++)
        free(r->drop[i]);
    free(r->drop);
    free(r->school);
}

static void db_free(db_t *db) {
    if (!db)
        return;
    for (size_t i = 0; i < db->n; i++)
        regdef_free(&db->r[i]);
    free(db->r);
    for (size_t i = 0; i < db->norigins; i++)
        free(db->origins[i]);
    free(db->origins);
    free(db->names);
    free(db);
}

static regdef_t *db_find(const db_t *db, const char *code) {
    for (size_t i = 0; i < db->n; i++)
        if (strcmp(db->r[i].code, code) == 0)
            return &db->r[i];
    return NULL;
}

static bool valid_code(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 31)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
            return false;
    return true;
}

/* Splits the next blank-separated word off *p (NUL-terminating it). */
static char *word(char **p) {
    char *s = *p;
    while (isspace((unsigned char)*s))
        s++;
    char *w = s;
    while (*s && !isspace((unsigned char)*s))
        s++;
    if (*s)
        *s++ = 0;
    *p = s;
    return w;
}

/* Options "from=YYYY", "to=YYYY", "obs=..." at the front of *p; leaves *p at the rest. */
static int parse_opts(char **p, int *from, int *to, obs_t *obs, const char **why) {
    *from = YEAR_MIN, *to = YEAR_MAX;
    if (obs)
        *obs = OBS_NONE;
    for (;;) {
        char *s = *p;
        while (isspace((unsigned char)*s))
            s++;
        *p = s;
        bool f = strncmp(s, "from=", 5) == 0, t = strncmp(s, "to=", 3) == 0;
        if (f || t) {
            const char *q = s + (f ? 5 : 3);
            int y = parse_uint(&q, 4);
            if (y < YEAR_MIN || y > YEAR_MAX || (*q && !isspace((unsigned char)*q))) {
                *why = "from=/to= take a year 1970-2199";
                return -1;
            }
            *(f ? from : to) = y;
            *p = (char *)q;
        } else if (obs && strncmp(s, "obs=", 4) == 0) {
            char *q = s + 4, *v = word(&q);
            if (strcmp(v, "next") == 0)
                *obs = OBS_NEXT;
            else if (strcmp(v, "nearest") == 0)
                *obs = OBS_NEAREST;
            else if (strcmp(v, "sun-sat") == 0)
                *obs = OBS_SUN_SAT;
            else {
                *why = "obs= takes next, nearest or sun-sat";
                return -1;
            }
            *p = q;
        } else
            return 0;
    }
}

/* One "key = value" line of section r; `fresh_school`: no school line yet in this section. */
static int apply_line(regdef_t *r, char *key, char *val, bool *fresh_school, const char **why) {
    const char *oom = "out of memory";
    if (strcmp(key, "parent") == 0 || strcmp(key, "zone") == 0) {
        char **dst = key[0] == 'p' ? &r->parent : &r->zone;
        if (!*val || strchr(val, ' ') || (key[0] == 'p' && !valid_code(val))) {
            *why = key[0] == 'p' ? "parent: expected a region code" : "zone: expected an IANA id";
            return -1;
        }
        free(*dst);
        if (!(*dst = strdup(val)))
            return *why = oom, -1;
        return 0;
    }
    if (strcmp(key, "holiday") == 0) {
        hol_t h = {0};
        char *rest = val, *rs = word(&rest);
        if (rule_parse(rs, &h.r, why) || parse_opts(&rest, &h.from, &h.to, &h.obs, why))
            return -1;
        char *name = hvs_text_trim(rest);
        if (!*name)
            return *why = "holiday: a name must follow the rule", -1;
        hol_t *g = hvs_vec_grow(r->hol, &r->caphol, r->nhol + 1, sizeof *g, 16);
        if (!g || !(h.name = strdup(name)))
            return *why = oom, -1;
        r->hol = g;
        if (h.obs == OBS_NEXT || h.obs == OBS_NEAREST) {
            size_t n = strlen(name) + 12;
            if (!(h.obs_name = malloc(n)))
                return free(h.name), *why = oom, -1;
            snprintf(h.obs_name, n, "%s (observed)", name);
        }
        r->hol[r->nhol++] = h;
        return 0;
    }
    if (strcmp(key, "drop") == 0) {
        if (!*val)
            return *why = "drop: expected a holiday's name", -1;
        /* An own holiday of that name goes now; else it is an inherited one. */
        size_t k = 0, before = r->nhol;
        for (size_t i = 0; i < r->nhol; i++) {
            if (strcmp(r->hol[i].name, val) == 0)
                free(r->hol[i].name), free(r->hol[i].obs_name);
            else
                r->hol[k++] = r->hol[i];
        }
        r->nhol = k;
        if (k != before)
            return 0;
        char **g = hvs_vec_grow(r->drop, &r->capdrop, r->ndrop + 1, sizeof *g, 4);
        if (!g || !(g[r->ndrop] = strdup(val)))
            return *why = oom, -1;
        r->drop = g;
        r->ndrop++;
        return 0;
    }
    if (strcmp(key, "school") == 0) {
        span_t s = {0};
        char *rest = val, *st = word(&rest), *dots = strstr(st, "..");
        if (dots) {
            *dots = 0;
            if (rule_parse(st, &s.start, why) || rule_parse(dots + 2, &s.end, why))
                return -1;
        } else {
            if (rule_parse(st, &s.start, why))
                return -1;
            char *n = word(&rest);
            const char *q = n;
            s.len = parse_uint(&q, 3);
            if (s.len < 1 || *q) {
                *why = "school: expected START DAYS or START..END";
                return -1;
            }
        }
        if (parse_opts(&rest, &s.from, &s.to, NULL, why))
            return -1;
        if (*hvs_text_trim(rest))
            return *why = "school: unexpected text after the span", -1;
        if (*fresh_school) /* a section's school lines replace what was there */
            r->nschool = 0;
        *fresh_school = false;
        r->school_set = true;
        span_t *g = hvs_vec_grow(r->school, &r->capschool, r->nschool + 1, sizeof *g, 8);
        if (!g)
            return *why = oom, -1;
        r->school = g;
        r->school[r->nschool++] = s;
        return 0;
    }
    *why = "unknown key (parent, zone, holiday, drop, school)";
    return -1;
}

/* Reads a region file's text into db: new sections add regions, a section of a known region
 * extends it. */
static int db_parse(db_t *db, const char *text, size_t len, const char *origin, hvs_err_t *err) {
    char **og = realloc(db->origins, (db->norigins + 1) * sizeof *og);
    if (!og)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    db->origins = og;
    if (!(og[db->norigins] = strdup(origin)))
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    origin = og[db->norigins++];
    regdef_t *cur = NULL;
    bool fresh_school = true;
    int lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t e = pos;
        while (e < len && text[e] != '\n')
            e++;
        lineno++;
        char buf[512];
        if (e - pos >= sizeof buf)
            return hvs_err_set(err, HVS_EINVAL, "calendar_file", "%s:%d: line too long", origin,
                               lineno);
        memcpy(buf, text + pos, e - pos);
        buf[e - pos] = 0;
        pos = e + 1;
        for (char *h = buf; (h = strchr(h, '#')) != NULL; h++)
            if (h == buf || isspace((unsigned char)h[-1])) { /* a comment, to the line's end */
                *h = 0;
                break;
            }
        char *l = hvs_text_trim(buf);
        if (!*l)
            continue;
        const char *why = NULL;
        if (*l == '[') {
            char *end = strchr(l, ']');
            if (!end || end[1]) {
                why = "expected [REGION]";
                goto bad;
            }
            *end = 0;
            char *code = hvs_text_trim(l + 1);
            if (!valid_code(code)) {
                why = "region codes are 1-31 letters, digits, '-' or '_'";
                goto bad;
            }
            if (!(cur = db_find(db, code))) {
                regdef_t *g = hvs_vec_grow(db->r, &db->cap, db->n + 1, sizeof *g, 64);
                if (!g)
                    return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
                db->r = g;
                cur = &db->r[db->n];
                memset(cur, 0, sizeof *cur);
                if (!(cur->code = strdup(code)))
                    return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
                cur->line = lineno;
                cur->origin = origin;
                db->n++;
            }
            fresh_school = true;
            continue;
        }
        char *eq = strchr(l, '=');
        if (!eq) {
            why = "expected KEY = VALUE or [REGION]";
            goto bad;
        }
        if (!cur) {
            why = "a setting before the first [REGION]";
            goto bad;
        }
        *eq = 0;
        if (apply_line(cur, hvs_text_trim(l), hvs_text_trim(eq + 1), &fresh_school, &why) == 0)
            continue;
    bad:
        return hvs_err_set(err, HVS_EINVAL, "calendar_file", "%s:%d: %s", origin, lineno, why);
    }
    return HVS_OK;
}

/* ---- resolution: a region with what it inherits ------------------------------------------------ */

typedef struct resolved {
    const hol_t **hol;
    size_t nhol, cap;
    const span_t *school;
    size_t nschool;
    const char *zone;
} resolved_t;

static int resolve(const db_t *db, const regdef_t *r, int depth, resolved_t *out, hvs_err_t *err) {
    if (depth > MAX_DEPTH)
        return hvs_err_set(err, HVS_EINVAL, "calendar_file", "%s:%d: region %s: parent loop",
                           r->origin, r->line, r->code);
    if (r->parent) {
        const regdef_t *p = db_find(db, r->parent);
        if (!p)
            return hvs_err_set(err, HVS_EINVAL, "calendar_file",
                               "%s:%d: region %s: parent %s is not defined", r->origin, r->line,
                               r->code, r->parent);
        int rc = resolve(db, p, depth + 1, out, err);
        if (rc)
            return rc;
    }
    for (size_t d = 0; d < r->ndrop; d++) {
        size_t k = 0;
        for (size_t i = 0; i < out->nhol; i++)
            if (strcmp(out->hol[i]->name, r->drop[d]) != 0)
                out->hol[k++] = out->hol[i];
        if (k == out->nhol)
            return hvs_err_set(err, HVS_EINVAL, "calendar_file",
                               "%s:%d: region %s: drop \"%s\": no such holiday inherited",
                               r->origin, r->line, r->code, r->drop[d]);
        out->nhol = k;
    }
    const hol_t **g = hvs_vec_grow(out->hol, &out->cap, out->nhol + r->nhol, sizeof *g, 32);
    if (!g && out->nhol + r->nhol)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    out->hol = g;
    for (size_t i = 0; i < r->nhol; i++)
        out->hol[out->nhol++] = &r->hol[i];
    if (r->school_set)
        out->school = r->school, out->nschool = r->nschool;
    if (r->zone)
        out->zone = r->zone;
    return HVS_OK;
}

/* ---- time zones (ICU) ---------------------------------------------------------------------- */

static int zone_uchars(const char *zone, UChar *id, int cap) {
    int n = 0;
    for (; zone[n]; n++) {
        if (n + 1 >= cap || (unsigned char)zone[n] > 127)
            return -1;
        id[n] = (UChar)zone[n];
    }
    id[n] = 0;
    return n;
}

/* A UCalendar in `zone`, NULL when ICU does not know the zone (ICU would silently use GMT). */
static UCalendar *zone_open(const char *zone) {
    UChar id[128], canon[128];
    int n = zone_uchars(zone, id, 128);
    if (n <= 0)
        return NULL;
    UErrorCode st = U_ZERO_ERROR;
    UBool system = 0;
    ucal_getCanonicalTimeZoneID(id, n, canon, 128, &system, &st);
    if (U_FAILURE(st) || !system)
        return NULL;
    st = U_ZERO_ERROR;
    UCalendar *uc = ucal_open(id, n, "en_US_POSIX", UCAL_GREGORIAN, &st);
    if (U_FAILURE(st)) {
        if (uc)
            ucal_close(uc);
        return NULL;
    }
    return uc;
}

/* Every region resolves, and names a time zone ICU knows. */
static int db_check(db_t *db, hvs_err_t *err) {
    for (size_t i = 0; i < db->n; i++) {
        resolved_t rs = {0};
        int rc = resolve(db, &db->r[i], 0, &rs, err);
        free(rs.hol);
        if (rc)
            return rc;
        const regdef_t *r = &db->r[i];
        if (!rs.zone)
            return hvs_err_set(err, HVS_EINVAL, "calendar_file",
                               "%s:%d: region %s: no zone (own or inherited)", r->origin, r->line,
                               r->code);
        UCalendar *uc = zone_open(rs.zone);
        if (!uc)
            return hvs_err_set(err, HVS_EINVAL, "calendar_file",
                               "%s:%d: region %s: time zone \"%s\" is not in the tz database",
                               r->origin, r->line, r->code, rs.zone);
        ucal_close(uc);
    }
    const char **names = calloc(db->n + 1, sizeof *names);
    if (!names)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; i < db->n; i++)
        names[i] = db->r[i].code;
    db->names = names;
    return HVS_OK;
}

/* The process's database: the built-in file, plus the user's file after hvs_calendar_load. */
static pthread_mutex_t db_mu = PTHREAD_MUTEX_INITIALIZER;
static db_t *db_cur;

static int db_build(const char *path, db_t **out, hvs_err_t *err) {
    db_t *db = calloc(1, sizeof *db);
    if (!db)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    int rc = db_parse(db, hvs_calendar_builtin, hvs_calendar_builtin_len, "(built-in) regions.ini",
                      err);
    if (!rc && path && *path) {
        char *text = NULL;
        size_t n = 0;
        rc = hvs_text_read_file(path, "calendar file", "calendar_file", &text, &n, err);
        if (!rc)
            rc = db_parse(db, text, n, path, err);
        free(text);
    }
    if (!rc)
        rc = db_check(db, err);
    if (rc) {
        db_free(db);
        return rc;
    }
    *out = db;
    return HVS_OK;
}

int hvs_calendar_load(const char *path, hvs_err_t *err) {
    db_t *db = NULL;
    int rc = db_build(path, &db, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&db_mu);
    db->retired = db_cur; /* calendars made from it keep pointing into it */
    db_cur = db;
    pthread_mutex_unlock(&db_mu);
    hvs_log_info("calendar", "%zu holiday regions (built-in%s%s), ICU tz data %s", db->n,
                 path && *path ? " + " : "", path && *path ? path : "", hvs_calendar_tz_version());
    return HVS_OK;
}

static db_t *db_get(hvs_err_t *err) {
    pthread_mutex_lock(&db_mu);
    if (!db_cur && db_build(NULL, &db_cur, err))
        db_cur = NULL; /* the built-in file is tested: only ENOMEM gets here */
    db_t *db = db_cur;
    pthread_mutex_unlock(&db_mu);
    return db;
}

const char *hvs_calendar_tz_version(void) {
    UErrorCode st = U_ZERO_ERROR;
    const char *v = ucal_getTZDataVersion(&st);
    return U_FAILURE(st) || !v ? "?" : v;
}

/* ---- one year's table ---------------------------------------------------------------------- */

typedef struct year_table {
    int year; /* 0 = empty slot */
    uint8_t flags[366];
    const char *name[366]; /* NULL = none */
    int16_t until[366], since[366];
} year_table_t;

struct hvs_calendar {
    const regdef_t *region;
    resolved_t rs;
    UCalendar *uc;
    hvs_ms_t lo, hi, off; /* the zone's offset `off` holds on [lo, hi) */
    year_table_t cache[CACHE_YEARS];
    int next_slot;
};

static void mark(uint8_t *flags, const char **names, long total, long k, const char *name) {
    if (k < 0 || k >= total)
        return;
    flags[k] |= F_HOLIDAY;
    if (!names[k])
        names[k] = name;
}

static bool weekend_day(long days) { return weekday_of(days) >= 5; }

/* Public holidays of `year` into the days base.. of flags[]/names[] (total days): the dates
 * first, then the observed days, which must avoid every date already a holiday. */
static void mark_holidays(const hvs_calendar_t *c, int year, long base, uint8_t *flags,
                          const char **names, long total, int pass) {
    for (size_t i = 0; i < c->rs.nhol; i++) {
        const hol_t *h = c->rs.hol[i];
        if (year < h->from || year > h->to)
            continue;
        long d = rule_eval(&h->r, year);
        if (d == LONG_MIN)
            continue;
        if (pass == 0) {
            if (h->obs == OBS_SUN_SAT && weekday_of(d) == 6)
                d--; /* moved, not doubled */
            mark(flags, names, total, d - base, h->name);
        } else if (h->obs == OBS_NEXT && weekend_day(d)) {
            long s = d + 1;
            while (s - base < total &&
                   (weekend_day(s) || (s - base >= 0 && (flags[s - base] & F_HOLIDAY))))
                s++;
            mark(flags, names, total, s - base, h->obs_name);
        } else if (h->obs == OBS_NEAREST && weekend_day(d)) {
            mark(flags, names, total, d + (weekday_of(d) == 5 ? -1 : 1) - base, h->obs_name);
        }
    }
}

static void mark_school(const hvs_calendar_t *c, int year, uint8_t *flags) {
    int n = year_days(year);
    long jan1 = days_from_civil(year, 1, 1);
    for (size_t i = 0; i < c->rs.nschool; i++) {
        const span_t *s = &c->rs.school[i];
        if (year < s->from || year > s->to)
            continue;
        long a = rule_eval(&s->start, year);
        long b = s->len ? a + s->len - 1 : rule_eval(&s->end, year);
        if (a == LONG_MIN || b == LONG_MIN)
            continue;
        for (long k = a - jan1; k <= b - jan1; k++)
            if (k >= 0 && k < n)
                flags[k] |= F_SCHOOL;
    }
    for (int k = 0; k < n; k++) {
        int yy, mm, dd;
        civil_from_days(jan1 + k, &yy, &mm, &dd);
        if ((mm == 12 && dd >= 24) || (mm == 1 && dd <= 6))
            flags[k] |= F_XMAS;
    }
}

static bool workday_flags(uint8_t f, long days) { return !(f & F_HOLIDAY) && weekday_of(days) < 5; }

/* Fill table t for `year`, looking at the neighbouring years for bridges and distances. */
static void build_year(const hvs_calendar_t *c, int year, year_table_t *t) {
    memset(t, 0, sizeof *t);
    t->year = year;
    long base = days_from_civil(year - 1, 1, 1);
    long total = days_from_civil(year + 2, 1, 1) - base;
    uint8_t *all = calloc((size_t)total, 1);
    const char **names = calloc((size_t)total, sizeof *names);
    if (!all || !names) { /* classify as plain days rather than fail a lookup */
        free(all), free(names);
        return;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int y = year - 1; y <= year + 1; y++)
            mark_holidays(c, y, base, all, names, total, pass);
    long off = days_from_civil(year, 1, 1) - base;
    int len = year_days(year);
    for (int k = 0; k < len; k++) {
        long i = off + k;
        long days = base + i;
        t->flags[k] = all[i] & F_HOLIDAY;
        t->name[k] = names[i];
        bool work = workday_flags(all[i], days);
        bool prev_hol = i > 0 && (all[i - 1] & F_HOLIDAY);
        bool next_hol = i + 1 < total && (all[i + 1] & F_HOLIDAY);
        bool prev_off = i > 0 && !workday_flags(all[i - 1], days - 1);
        bool next_off = i + 1 < total && !workday_flags(all[i + 1], days + 1);
        if (work && ((prev_hol && next_off) || (prev_off && next_hol)))
            t->flags[k] |= F_BRIDGE;
        int until = 366, since = 366;
        for (long j = i; j < total && j - i < 366; j++)
            if (all[j] & F_HOLIDAY) {
                until = (int)(j - i);
                break;
            }
        for (long j = i; j >= 0 && i - j < 366; j--)
            if (all[j] & F_HOLIDAY) {
                since = (int)(i - j);
                break;
            }
        t->until[k] = (int16_t)until;
        t->since[k] = (int16_t)since;
    }
    free(all);
    free(names);
    mark_school(c, year, t->flags);
}

static const year_table_t *year_of(hvs_calendar_t *c, int year) {
    for (int i = 0; i < CACHE_YEARS; i++)
        if (c->cache[i].year == year)
            return &c->cache[i];
    year_table_t *t = &c->cache[c->next_slot];
    c->next_slot = (c->next_slot + 1) % CACHE_YEARS;
    build_year(c, year, t);
    return t;
}

/* ---- API ------------------------------------------------------------------------------------ */

const char *const *hvs_calendar_regions(void) {
    static const char *none[] = {NULL};
    hvs_err_t err;
    db_t *db = db_get(&err);
    return db ? db->names : none;
}

int hvs_calendar_new(const char *region, hvs_calendar_t **out, hvs_err_t *err) {
    *out = NULL;
    db_t *db = db_get(err);
    if (!db)
        return HVS_ENOMEM;
    const regdef_t *r = region ? db_find(db, region) : NULL;
    if (!r)
        return hvs_err_set(err, HVS_EINVAL, "unknown_region",
                           "holiday region \"%.40s\" is not known (%zu regions such as CH-ZH, "
                           "DE-BE, FR, GB-ENG, US-NY: data/calendar/regions.ini and "
                           "HVS_CALENDAR_FILE)",
                           region ? region : "(null)", db->n);
    hvs_calendar_t *c = calloc(1, sizeof *c);
    if (!c)
        return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
    c->region = r;
    int rc = resolve(db, r, 0, &c->rs, err); /* checked at load: only ENOMEM here */
    if (!rc && !(c->uc = zone_open(c->rs.zone)))
        rc = hvs_err_set(err, HVS_ENOMEM, NULL, "time zone %s: ICU calendar", c->rs.zone);
    if (rc) {
        hvs_calendar_destroy(c);
        return rc;
    }
    c->lo = 1, c->hi = 0; /* empty */
    *out = c;
    return HVS_OK;
}

void hvs_calendar_destroy(hvs_calendar_t *c) {
    if (!c)
        return;
    if (c->uc)
        ucal_close(c->uc);
    free(c->rs.hol);
    free(c);
}

const char *hvs_calendar_region(const hvs_calendar_t *c) { return c->region->code; }
const char *hvs_calendar_zone(const hvs_calendar_t *c) { return c->rs.zone; }

hvs_ms_t hvs_calendar_utc_offset(const hvs_calendar_t *cc, hvs_ms_t t) {
    hvs_calendar_t *c = (hvs_calendar_t *)cc; /* the cache is not part of the value (see .h) */
    if (t >= c->lo && t < c->hi)
        return c->off;
    UErrorCode st = U_ZERO_ERROR;
    ucal_setMillis(c->uc, (UDate)t, &st);
    int32_t zo = ucal_get(c->uc, UCAL_ZONE_OFFSET, &st);
    int32_t dst = ucal_get(c->uc, UCAL_DST_OFFSET, &st);
    if (U_FAILURE(st))
        return 0;
    UDate prev = 0, next = 0;
    c->off = (hvs_ms_t)zo + dst;
    c->lo = ucal_getTimeZoneTransitionDate(c->uc, UCAL_TZ_TRANSITION_PREVIOUS_INCLUSIVE, &prev,
                                           &st) &&
                    U_SUCCESS(st)
                ? (hvs_ms_t)prev
                : INT64_MIN;
    st = U_ZERO_ERROR;
    c->hi = ucal_getTimeZoneTransitionDate(c->uc, UCAL_TZ_TRANSITION_NEXT, &next, &st) &&
                    U_SUCCESS(st)
                ? (hvs_ms_t)next
                : INT64_MAX;
    if (c->lo > t || c->hi <= t) /* not what ICU promises: cache nothing */
        c->lo = 1, c->hi = 0;
    return c->off;
}

double hvs_calendar_local_hour(const hvs_calendar_t *c, hvs_ms_t t) {
    hvs_ms_t local = t + hvs_calendar_utc_offset(c, t);
    hvs_ms_t in_day = ((local % DAY_MS) + DAY_MS) % DAY_MS;
    return (double)in_day / 3600000.0;
}

static void classify(hvs_calendar_t *c, long days, hvs_day_info_t *out) {
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    memset(out, 0, sizeof *out);
    out->year = y, out->month = m, out->day = d;
    out->weekday = weekday_of(days);
    out->weekend = out->weekday >= 5;
    out->holiday_name = "";
    out->days_until_holiday = out->days_since_holiday = 366;
    if (y >= YEAR_MIN && y <= YEAR_MAX) {
        const year_table_t *t = year_of(c, y);
        int k = (int)(days - days_from_civil(y, 1, 1));
        uint8_t f = t->flags[k];
        out->holiday = f & F_HOLIDAY;
        out->bridge_day = f & F_BRIDGE;
        out->school_holiday = f & F_SCHOOL;
        out->christmas_period = f & F_XMAS;
        if (t->name[k])
            out->holiday_name = t->name[k];
        out->days_until_holiday = t->until[k];
        out->days_since_holiday = t->since[k];
    } else {
        out->christmas_period = (m == 12 && d >= 24) || (m == 1 && d <= 6);
    }
    out->workday = !out->weekend && !out->holiday;
}

void hvs_calendar_day(hvs_calendar_t *c, hvs_ms_t t, hvs_day_info_t *out) {
    hvs_ms_t local = t + hvs_calendar_utc_offset(c, t);
    long days = (long)(local >= 0 ? local / DAY_MS : (local - DAY_MS + 1) / DAY_MS);
    classify(c, days, out);
}

void hvs_calendar_date(hvs_calendar_t *c, int year, int month, int day, hvs_day_info_t *out) {
    classify(c, days_from_civil(year, month, day), out);
}

/* ---- the calendars of a worker's regions ----------------------------------------------------- */

typedef struct cal_entry {
    char *region;
    hvs_calendar_t *cal; /* NULL: unknown region, the default serves */
    char **warned;       /* unknown region: the buildings warned about, sorted */
    size_t nwarned, capwarned;
} cal_entry_t;

struct hvs_calendars {
    char *default_region, *component;
    hvs_calendar_t *def;
    cal_entry_t *e;
    size_t n, cap;
};

hvs_calendars_t *hvs_calendars_new(const char *default_region, const char *component) {
    hvs_calendars_t *cs = calloc(1, sizeof *cs);
    hvs_err_t err = {0};
    if (!cs || !(cs->default_region = strdup(default_region)) ||
        !(cs->component = strdup(component)) || hvs_calendar_new(default_region, &cs->def, &err)) {
        hvs_calendars_destroy(cs);
        return NULL;
    }
    return cs;
}

void hvs_calendars_destroy(hvs_calendars_t *cs) {
    if (!cs)
        return;
    for (size_t i = 0; i < cs->n; i++) {
        free(cs->e[i].region);
        hvs_calendar_destroy(cs->e[i].cal);
        for (size_t j = 0; j < cs->e[i].nwarned; j++)
            free(cs->e[i].warned[j]);
        free(cs->e[i].warned);
    }
    free(cs->e);
    hvs_calendar_destroy(cs->def);
    free(cs->default_region);
    free(cs->component);
    free(cs);
}

/* Warns about building b's unknown region once per building. */
static void warn_unknown(hvs_calendars_t *cs, cal_entry_t *e, const char *b) {
    if (!b)
        b = "(none)";
    size_t pos;
    bool found;
    HVS_VEC_BSEARCH_STR(e->warned, e->nwarned, , b, pos, found);
    if (found)
        return;
    char **g = hvs_vec_grow(e->warned, &e->capwarned, e->nwarned + 1, sizeof *g, 8);
    char *s = strdup(b);
    if (g)
        e->warned = g;
    if (!g || !s) {
        free(s);
        return; /* out of memory: warn again next time rather than fail */
    }
    hvs_vec_open(e->warned, e->nwarned, pos, sizeof *g);
    e->warned[pos] = s;
    e->nwarned++;
    hvs_log_warn(cs->component, "building %s: holiday region %s unknown, using %s", b, e->region,
                 cs->default_region);
}

hvs_calendar_t *hvs_calendars_get(hvs_calendars_t *cs, const char *region, const char *building) {
    if (!region || !region[0] || strcmp(region, cs->default_region) == 0)
        return cs->def;
    cal_entry_t *e = NULL;
    for (size_t i = 0; i < cs->n && !e; i++)
        if (strcmp(cs->e[i].region, region) == 0)
            e = &cs->e[i];
    if (!e) {
        hvs_calendar_t *c = NULL;
        hvs_err_t err = {0};
        int rc = hvs_calendar_new(region, &c, &err);
        if (rc && rc != HVS_EINVAL)
            return NULL;
        cal_entry_t *ne = hvs_vec_grow(cs->e, &cs->cap, cs->n + 1, sizeof *ne, 8);
        char *r = strdup(region);
        if (!ne || !r) {
            free(r);
            hvs_calendar_destroy(c);
            return NULL;
        }
        cs->e = ne;
        e = &cs->e[cs->n++];
        *e = (cal_entry_t){.region = r, .cal = c};
    }
    if (e->cal)
        return e->cal;
    warn_unknown(cs, e, building);
    return cs->def;
}
