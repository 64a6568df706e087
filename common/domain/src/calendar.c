/* calendar.c - holidays, school holidays, bridge days and local time (see calendar.h). */
#include "hvs/calendar.h"

#include "hvs/log.h"
#include "hvs/vec.h"

#include <stdlib.h>
#include <string.h>

#define DAY_MS (86400000LL)
#define YEAR_MIN 1970
#define YEAR_MAX 2199
#define CACHE_YEARS 4

enum { F_HOLIDAY = 1, F_BRIDGE = 2, F_SCHOOL = 4, F_XMAS = 8 };

/* School-holiday pattern of a region (see calendar.h for the rules). */
typedef enum { SCHOOL_CH_DE, SCHOOL_CH_FR, SCHOOL_CH_TI, SCHOOL_DE_BY } school_pattern_t;

typedef struct region {
    const char *name;
    unsigned holidays; /* H_* bits below */
    school_pattern_t school;
    int sports_week; /* ISO week of the sports holidays */
    int sports_len;  /* days */
} region_t;

enum {
    H_NEW_YEAR = 1u << 0,
    H_BERCHTOLD = 1u << 1,
    H_EPIPHANY = 1u << 2,
    H_ST_JOSEPH = 1u << 3,
    H_GOOD_FRIDAY = 1u << 4,
    H_EASTER_MONDAY = 1u << 5,
    H_LABOUR = 1u << 6,
    H_ASCENSION = 1u << 7,
    H_WHIT_MONDAY = 1u << 8,
    H_CORPUS = 1u << 9,
    H_PETER_PAUL = 1u << 10,
    H_NATIONAL = 1u << 11,
    H_ASSUMPTION = 1u << 12,
    H_JEUNE_GE = 1u << 13,
    H_JEUNE_VD = 1u << 14,
    H_GERMAN_UNITY = 1u << 15,
    H_ALL_SAINTS = 1u << 16,
    H_IMMACULATE = 1u << 17,
    H_CHRISTMAS = 1u << 18,
    H_ST_STEPHEN = 1u << 19,
    H_RESTAURATION = 1u << 20,
};

#define H_CH_BASE                                                                                  \
    (H_NEW_YEAR | H_GOOD_FRIDAY | H_EASTER_MONDAY | H_ASCENSION | H_WHIT_MONDAY | H_NATIONAL |     \
     H_CHRISTMAS | H_ST_STEPHEN)

static const region_t regions[] = {
    {"CH", H_CH_BASE, SCHOOL_CH_DE, 9, 14},
    {"CH-ZH", H_CH_BASE | H_BERCHTOLD | H_LABOUR, SCHOOL_CH_DE, 7, 14},
    {"CH-BE", H_CH_BASE | H_BERCHTOLD, SCHOOL_CH_DE, 9, 14},
    {"CH-BS", H_CH_BASE | H_LABOUR, SCHOOL_CH_DE, 9, 14},
    {"CH-LU", H_CH_BASE | H_BERCHTOLD | H_CORPUS | H_ASSUMPTION | H_ALL_SAINTS | H_IMMACULATE,
     SCHOOL_CH_DE, 8, 14},
    {"CH-GE", H_CH_BASE | H_JEUNE_GE | H_RESTAURATION, SCHOOL_CH_FR, 8, 7},
    {"CH-VD", H_CH_BASE | H_BERCHTOLD | H_JEUNE_VD, SCHOOL_CH_FR, 8, 7},
    /* Ticino: no Good Friday; Epiphany, St Joseph, Labour Day, Corpus Christi, Sts Peter and
     * Paul, Assumption, All Saints and Immaculate Conception on top of the other federal days. */
    {"CH-TI",
     (H_CH_BASE & ~H_GOOD_FRIDAY) | H_EPIPHANY | H_ST_JOSEPH | H_LABOUR | H_CORPUS | H_PETER_PAUL |
         H_ASSUMPTION | H_ALL_SAINTS | H_IMMACULATE,
     SCHOOL_CH_TI, 9, 7},
    {"DE-BY",
     H_NEW_YEAR | H_EPIPHANY | H_GOOD_FRIDAY | H_EASTER_MONDAY | H_LABOUR | H_ASCENSION |
         H_WHIT_MONDAY | H_CORPUS | H_ASSUMPTION | H_GERMAN_UNITY | H_ALL_SAINTS | H_CHRISTMAS |
         H_ST_STEPHEN,
     SCHOOL_DE_BY, 9, 7},
};
#define NREGIONS (sizeof regions / sizeof regions[0])

static const char *const holiday_names[] = {
    "New Year's Day",   "Berchtoldstag",      "Epiphany",
    "St Joseph",        "Good Friday",        "Easter Monday",
    "Labour Day",       "Ascension",          "Whit Monday",
    "Corpus Christi",   "Sts Peter and Paul", "National Day",
    "Assumption",       "Jeune genevois",     "Lundi du Jeune",
    "German Unity Day", "All Saints",         "Immaculate Conception",
    "Christmas Day",    "St Stephen's Day",   "Restauration genevoise",
};

typedef struct year_table {
    int year; /* 0 = empty slot */
    uint8_t flags[366];
    int8_t name[366]; /* index into holiday_names, -1 = none */
    int16_t until[366], since[366];
} year_table_t;

struct hvs_calendar {
    const region_t *region;
    year_table_t cache[CACHE_YEARS];
    int next_slot;
};

/* ---- civil dates ------------------------------------------------------------------------- */

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
static int year_days(int y) { return leap(y) ? 366 : 365; }

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

/* Day of the year (0-based) of a date. */
static int yday(int y, int m, int d) {
    return (int)(days_from_civil(y, m, d) - days_from_civil(y, 1, 1));
}

/* The n-th (1-based) given weekday (0 = Monday) of a month, as a day of the month. */
static int nth_weekday(int y, int m, int wd, int n) {
    int first = weekday_of(days_from_civil(y, m, 1));
    return 1 + (wd - first + 7) % 7 + 7 * (n - 1);
}

/* ---- one year's table ---------------------------------------------------------------------- */

/* Public holidays of `year` in region r: flags[] and name[] of a year table. */
static void mark_holidays(const region_t *r, int year, uint8_t *flags, int8_t *name) {
    int em, ed;
    hvs_calendar_easter(year, &em, &ed);
    int easter = yday(year, em, ed);
    struct {
        unsigned bit;
        int yd;
    } days[] = {
        {H_NEW_YEAR, yday(year, 1, 1)},
        {H_BERCHTOLD, yday(year, 1, 2)},
        {H_EPIPHANY, yday(year, 1, 6)},
        {H_ST_JOSEPH, yday(year, 3, 19)},
        {H_GOOD_FRIDAY, easter - 2},
        {H_EASTER_MONDAY, easter + 1},
        {H_LABOUR, yday(year, 5, 1)},
        {H_ASCENSION, easter + 39},
        {H_WHIT_MONDAY, easter + 50},
        {H_CORPUS, easter + 60},
        {H_PETER_PAUL, yday(year, 6, 29)},
        {H_NATIONAL, yday(year, 8, 1)},
        {H_ASSUMPTION, yday(year, 8, 15)},
        /* Thursday after the first Sunday of September */
        {H_JEUNE_GE, yday(year, 9, nth_weekday(year, 9, 6, 1) + 4)},
        /* Monday after the third Sunday of September */
        {H_JEUNE_VD, yday(year, 9, nth_weekday(year, 9, 6, 3) + 1)},
        {H_GERMAN_UNITY, yday(year, 10, 3)},
        {H_ALL_SAINTS, yday(year, 11, 1)},
        {H_IMMACULATE, yday(year, 12, 8)},
        {H_CHRISTMAS, yday(year, 12, 25)},
        {H_ST_STEPHEN, yday(year, 12, 26)},
        {H_RESTAURATION, yday(year, 12, 31)},
    };
    for (size_t i = 0; i < sizeof days / sizeof days[0]; i++) {
        if (!(r->holidays & days[i].bit))
            continue;
        int k = days[i].yd;
        flags[k] |= F_HOLIDAY;
        if (name[k] < 0) {
            int bit = 0;
            while ((1u << bit) != days[i].bit)
                bit++;
            name[k] = (int8_t)bit;
        }
    }
}

static void mark_span(uint8_t *flags, int from, int len, int ndays) {
    for (int k = from; k < from + len; k++)
        if (k >= 0 && k < ndays)
            flags[k] |= F_SCHOOL;
}

/* Day of the year of the Saturday on or before a day of the year. */
static int saturday_before(int year, int yd) {
    int wd = weekday_of(days_from_civil(year, 1, 1) + yd);
    return yd - (wd + 2) % 7;
}

static void mark_school(const region_t *r, int year, uint8_t *flags) {
    int n = year_days(year);
    int em, ed;
    hvs_calendar_easter(year, &em, &ed);
    int easter = yday(year, em, ed);
    /* Sports holidays: from the Saturday before the Monday of ISO week w. */
    long jan4 = days_from_civil(year, 1, 4);
    int week1_monday = (int)(jan4 - days_from_civil(year, 1, 1)) - weekday_of(jan4);
    mark_span(flags, week1_monday + 7 * (r->sports_week - 1) - 2, r->sports_len + 2, n);
    switch (r->school) {
    case SCHOOL_CH_DE:
        mark_span(flags, easter + 6, 16, n); /* spring, after Easter */
        mark_span(flags, yday(year, 7, nth_weekday(year, 7, 0, 2)) - 2, 37, n); /* 5 weeks */
        mark_span(flags, yday(year, 10, nth_weekday(year, 10, 0, 1)) - 2, 16, n);
        break;
    case SCHOOL_CH_FR:
        mark_span(flags, easter - 3, 17, n);                              /* Easter holidays */
        mark_span(flags, saturday_before(year, yday(year, 7, 1)), 51, n); /* ~7 weeks */
        mark_span(flags, yday(year, 10, nth_weekday(year, 10, 0, 3)) - 2, 9, n);
        break;
    case SCHOOL_CH_TI:
        mark_span(flags, easter - 3, 12, n);
        mark_span(flags, saturday_before(year, yday(year, 6, 17)), 74, n); /* mid-June..August */
        mark_span(flags, saturday_before(year, yday(year, 10, 31)), 9, n);
        break;
    case SCHOOL_DE_BY:
        mark_span(flags, easter - 7, 16, n);
        mark_span(flags, saturday_before(year, yday(year, 8, 1)), 46, n); /* ~6.5 weeks */
        mark_span(flags, saturday_before(year, yday(year, 11, 1)), 9, n);
        break;
    }
    /* Christmas: from the Saturday on or before 24 Dec to the year's end, and from 1 Jan to the
     * first Sunday on or after 2 Jan. */
    mark_span(flags, saturday_before(year, yday(year, 12, 24)), 10, n);
    int jan2 = yday(year, 1, 2);
    int wd = weekday_of(days_from_civil(year, 1, 2));
    mark_span(flags, 0, jan2 + (6 - wd) + 1, n);
    for (int k = 0; k < n; k++) {
        int mm, dd, yy;
        civil_from_days(days_from_civil(year, 1, 1) + k, &yy, &mm, &dd);
        if ((mm == 12 && dd >= 24) || (mm == 1 && dd <= 6))
            flags[k] |= F_XMAS;
    }
}

static bool workday_flags(uint8_t f, long days) { return !(f & F_HOLIDAY) && weekday_of(days) < 5; }

/* Fill table t for `year`, looking at the neighbouring years for bridges and distances. */
static void build_year(const region_t *r, int year, year_table_t *t) {
    /* Three years of holiday flags side by side: previous, this, next. */
    uint8_t f3[3][366];
    int8_t n3[3][366];
    memset(f3, 0, sizeof f3);
    memset(n3, -1, sizeof n3);
    for (int i = 0; i < 3; i++)
        mark_holidays(r, year - 1 + i, f3[i], n3[i]);
    int len[3] = {year_days(year - 1), year_days(year), year_days(year + 1)};
    long base = days_from_civil(year - 1, 1, 1);
    int total = len[0] + len[1] + len[2];
    uint8_t *all = calloc((size_t)total, 1);
    if (!all) { /* classify as plain days rather than fail a lookup */
        memset(t, 0, sizeof *t);
        memset(t->name, -1, sizeof t->name);
        t->year = year;
        return;
    }
    memcpy(all, f3[0], (size_t)len[0]);
    memcpy(all + len[0], f3[1], (size_t)len[1]);
    memcpy(all + len[0] + len[1], f3[2], (size_t)len[2]);

    memset(t, 0, sizeof *t);
    t->year = year;
    memcpy(t->name, n3[1], sizeof t->name);
    for (int k = 0; k < len[1]; k++) {
        int i = len[0] + k;
        long days = base + i;
        t->flags[k] = all[i] & F_HOLIDAY;
        bool work = workday_flags(all[i], days);
        bool prev_hol = i > 0 && (all[i - 1] & F_HOLIDAY);
        bool next_hol = i + 1 < total && (all[i + 1] & F_HOLIDAY);
        bool prev_off = i > 0 && !workday_flags(all[i - 1], days - 1);
        bool next_off = i + 1 < total && !workday_flags(all[i + 1], days + 1);
        if (work && ((prev_hol && next_off) || (prev_off && next_hol)))
            t->flags[k] |= F_BRIDGE;
        int until = 366, since = 366;
        for (int j = i; j < total && j - i < 366; j++)
            if (all[j] & F_HOLIDAY) {
                until = j - i;
                break;
            }
        for (int j = i; j >= 0 && i - j < 366; j--)
            if (all[j] & F_HOLIDAY) {
                since = i - j;
                break;
            }
        t->until[k] = (int16_t)until;
        t->since[k] = (int16_t)since;
    }
    free(all);
    mark_school(r, year, t->flags);
}

static const year_table_t *year_of(hvs_calendar_t *c, int year) {
    for (int i = 0; i < CACHE_YEARS; i++)
        if (c->cache[i].year == year)
            return &c->cache[i];
    year_table_t *t = &c->cache[c->next_slot];
    c->next_slot = (c->next_slot + 1) % CACHE_YEARS;
    build_year(c->region, year, t);
    return t;
}

/* ---- API ------------------------------------------------------------------------------------ */

const char *const *hvs_calendar_regions(void) {
    static const char *names[NREGIONS + 1];
    for (size_t i = 0; i < NREGIONS; i++)
        names[i] = regions[i].name;
    names[NREGIONS] = NULL;
    return names;
}

int hvs_calendar_new(const char *region, hvs_calendar_t **out, hvs_err_t *err) {
    for (size_t i = 0; i < NREGIONS; i++) {
        if (region && strcmp(regions[i].name, region) == 0) {
            hvs_calendar_t *c = calloc(1, sizeof *c);
            if (!c)
                return hvs_err_set(err, HVS_ENOMEM, NULL, "out of memory");
            c->region = &regions[i];
            *out = c;
            return HVS_OK;
        }
    }
    return hvs_err_set(err, HVS_EINVAL, "unknown_region",
                       "holiday region \"%.40s\" is not known (CH, CH-ZH, CH-BE, CH-BS, CH-LU, "
                       "CH-GE, CH-VD, CH-TI, DE-BY)",
                       region ? region : "(null)");
}

void hvs_calendar_destroy(hvs_calendar_t *c) { free(c); }

const char *hvs_calendar_region(const hvs_calendar_t *c) { return c->region->name; }

/* Last Sunday of a month at 01:00 UTC, in ms. */
static hvs_ms_t last_sunday_1utc(int year, int month) {
    long last = days_from_civil(year, month + 1, 1) - 1;
    last -= (weekday_of(last) + 1) % 7;
    return (hvs_ms_t)last * DAY_MS + 3600000LL;
}

hvs_ms_t hvs_calendar_utc_offset(const hvs_calendar_t *c, hvs_ms_t t) {
    (void)c;
    int y, m, d;
    long days = (long)(t >= 0 ? t / DAY_MS : (t - DAY_MS + 1) / DAY_MS);
    civil_from_days(days, &y, &m, &d);
    if (m < 3 || m > 10)
        return 3600000LL;
    if (m > 3 && m < 10)
        return 7200000LL;
    return t >= last_sunday_1utc(y, 3) && t < last_sunday_1utc(y, 10) ? 7200000LL : 3600000LL;
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
        if (t->name[k] >= 0)
            out->holiday_name = holiday_names[t->name[k]];
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
    hvs_calendar_t *cal; /* NULL: unknown region (warned), the default serves */
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
    }
    free(cs->e);
    hvs_calendar_destroy(cs->def);
    free(cs->default_region);
    free(cs->component);
    free(cs);
}

hvs_calendar_t *hvs_calendars_get(hvs_calendars_t *cs, const char *region, const char *building) {
    if (!region || !region[0] || strcmp(region, cs->default_region) == 0)
        return cs->def;
    for (size_t i = 0; i < cs->n; i++)
        if (strcmp(cs->e[i].region, region) == 0)
            return cs->e[i].cal ? cs->e[i].cal : cs->def;
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
    cs->e[cs->n++] = (cal_entry_t){r, c};
    if (!c)
        hvs_log_warn(cs->component, "building %s: holiday region %s unknown, using %s", building,
                     region, cs->default_region);
    return c ? c : cs->def;
}
