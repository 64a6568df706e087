/*
 * calendar regions: the holidays of the data file's regions in 2025 and 2026 against the
 * official lists (dates below are copied from the governments' published calendars, not
 * computed), UTC offsets of each region's zone against glibc's reading of the system's tz
 * database (an implementation independent of ICU) and at the 2026 DST transitions, a user's
 * file extending a region and adding one, malformed files, and one warning per building for an
 * unknown region.
 */
#include <time.h>

#include "hvs/calendar.h"
#include "hvs/log.h"
#include "hvs_test.h"

#define H (3600000LL)

static hvs_ms_t utc(int y, int mo, int d, int h, int mi) {
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (hvs_ms_t)timegm(&tm) * 1000;
}

static hvs_calendar_t *cal(const char *region) {
    hvs_calendar_t *c = NULL;
    hvs_err_t err;
    HVS_REQUIRE(hvs_calendar_new(region, &c, &err) == 0, "%s: %s", region, err.msg);
    return c;
}

typedef struct {
    const char *region;
    int y, m, d;
    bool holiday;
    const char *name; /* NULL: not checked */
} expect_t;

static void test_official_holidays(void) {
    static const expect_t ex[] = {
        /* Germany: states differ */
        {"DE-BE", 2025, 3, 8, true, "International Women's Day"},
        {"DE-BE", 2026, 3, 8, true, NULL},
        {"DE-BY", 2026, 3, 8, false, NULL},
        {"DE-BE", 2025, 5, 8, true, "Liberation Day"}, /* 80th anniversary, once */
        {"DE-BE", 2026, 5, 8, false, NULL},
        {"DE-BY", 2025, 1, 6, true, "Epiphany"},
        {"DE-BY", 2026, 1, 6, true, "Epiphany"},
        {"DE-BE", 2026, 1, 6, false, NULL},
        {"DE-BW", 2026, 6, 4, true, "Corpus Christi"},
        {"DE-NW", 2025, 6, 19, true, "Corpus Christi"},
        {"DE-HH", 2026, 6, 4, false, NULL},
        {"DE-SN", 2025, 11, 19, true, "Repentance Day"},
        {"DE-SN", 2026, 11, 18, true, "Repentance Day"},
        {"DE-BY", 2026, 11, 18, false, NULL},
        {"DE-TH", 2025, 9, 20, true, "World Children's Day"},
        {"DE-NI", 2025, 10, 31, true, "Reformation Day"},
        {"DE-BY", 2025, 10, 31, false, NULL},
        {"DE-SN", 2016, 10, 31, true, "Reformation Day"},
        {"DE-NI", 2016, 10, 31, false, NULL},
        {"DE-NI", 2017, 10, 31, true, "Reformation Day"},
        {"DE-BY", 1994, 11, 16, true, "Repentance Day"}, /* everywhere until 1994 */
        {"DE-BY", 1995, 11, 22, false, NULL},
        {"DE-BB", 2026, 4, 5, true, "Easter Sunday"},
        {"DE-SL", 2026, 8, 15, true, "Assumption"},
        {"DE-MV", 2026, 3, 8, true, NULL},
        {"DE", 2026, 10, 3, true, "German Unity Day"},
        {"DE", 2026, 5, 14, true, "Ascension"},
        /* France */
        {"FR", 2025, 7, 14, true, "Bastille Day"},
        {"FR", 2025, 6, 9, true, "Whit Monday"},
        {"FR", 2026, 5, 25, true, "Whit Monday"},
        {"FR", 2026, 5, 8, true, "Victory in Europe Day"},
        {"FR", 2026, 11, 11, true, "Armistice Day"},
        {"FR", 2026, 4, 3, false, NULL}, /* no Good Friday outside Alsace-Moselle */
        {"FR-ALS", 2026, 4, 3, true, "Good Friday"},
        /* England and Wales, Scotland */
        {"GB-ENG", 2025, 5, 5, true, "Early May bank holiday"},
        {"GB-ENG", 2026, 5, 4, true, "Early May bank holiday"},
        {"GB-ENG", 2026, 5, 25, true, "Spring bank holiday"},
        {"GB-ENG", 2026, 8, 31, true, "Summer bank holiday"},
        {"GB-ENG", 2026, 12, 28, true, "Boxing Day (observed)"}, /* 26 Dec 2026 is a Saturday */
        {"GB-ENG", 2025, 4, 21, true, "Easter Monday"},
        {"GB-SCT", 2025, 4, 21, false, NULL},
        /* substitute days across the year's end and behind another holiday (gov.uk 2022) */
        {"GB-ENG", 2022, 1, 3, true, "New Year's Day (observed)"},
        {"GB-ENG", 2022, 12, 26, true, "Boxing Day"},
        {"GB-ENG", 2022, 12, 27, true, "Christmas Day (observed)"},
        {"GB-ENG", 2022, 6, 3, true, "Platinum Jubilee bank holiday"},
        {"GB-ENG", 2022, 5, 30, false, NULL}, /* Spring bank holiday moved to 2 June */
        {"GB-SCT", 2026, 1, 2, true, "2nd January"},
        {"GB-SCT", 2025, 12, 1, true, "St Andrew's Day (observed)"}, /* 30 Nov 2025: Sunday */
        {"GB-SCT", 2025, 8, 4, true, "Summer bank holiday"},
        {"GB-SCT", 2025, 8, 25, false, NULL},
        {"GB-NIR", 2025, 7, 14, true, "Battle of the Boyne (observed)"}, /* 12 Jul: Saturday */
        {"IE", 2025, 2, 3, true, "St Brigid's Day"},
        {"IE", 2026, 2, 2, true, "St Brigid's Day"},
        {"IE", 2026, 10, 26, true, "October bank holiday"},
        /* United States */
        {"US", 2025, 11, 27, true, "Thanksgiving Day"},
        {"US", 2026, 11, 26, true, "Thanksgiving Day"},
        {"US", 2026, 1, 19, true, "Birthday of Martin Luther King, Jr."},
        {"US", 2026, 7, 3, true, "Independence Day (observed)"}, /* 4 Jul 2026: Saturday */
        {"US", 2026, 5, 25, true, "Memorial Day"},
        {"US", 2025, 12, 26, false, NULL},
        {"US", 2021, 12, 31, true, "New Year's Day (observed)"}, /* 1 Jan 2022: Saturday */
        {"US-MA", 2026, 4, 20, true, "Patriots' Day"},
        {"US-NY", 2026, 4, 20, false, NULL},
        {"US-CA", 2026, 11, 27, true, "Day after Thanksgiving"},
        /* Netherlands: King's Day on the 26th when the 27th is a Sunday (2025) */
        {"NL", 2025, 4, 26, true, "King's Day"},
        {"NL", 2025, 4, 27, false, NULL},
        {"NL", 2026, 4, 27, true, "King's Day"},
        /* the others */
        {"AT", 2025, 10, 26, true, "National Day"},
        {"AT", 2026, 12, 8, true, "Immaculate Conception"},
        {"IT", 2025, 6, 2, true, "Republic Day"},
        {"IT", 2025, 4, 25, true, "Liberation Day"},
        {"BE", 2025, 7, 21, true, "National Day"},
        {"LU", 2026, 6, 23, true, "National Day"},
        {"DK", 2025, 4, 17, true, "Maundy Thursday"},
        {"DK", 2025, 5, 16, false, NULL}, /* Great Prayer Day abolished from 2024 */
        {"DK", 2023, 5, 5, true, "Great Prayer Day"},
        {"SE", 2025, 6, 20, true, "Midsummer Eve"},
        {"SE", 2026, 6, 20, true, "Midsummer Day"},
        {"SE", 2025, 11, 1, true, "All Saints' Day"},
        {"SE", 2026, 10, 31, true, "All Saints' Day"},
        {"SE", 2026, 6, 6, true, "National Day"},
        {"NO", 2025, 5, 17, true, "Constitution Day"},
        {"NO", 2026, 4, 2, true, "Maundy Thursday"},
        {"FI", 2025, 12, 6, true, "Independence Day"},
        {"FI", 2026, 6, 19, true, "Midsummer Eve"},
        {"PL", 2025, 12, 24, true, "Christmas Eve"},
        {"PL", 2024, 12, 24, false, NULL},
        {"PL", 2026, 11, 11, true, "Independence Day"},
        {"CZ", 2025, 11, 17, true, "Struggle for Freedom and Democracy Day"},
        {"CZ", 2026, 7, 6, true, "Jan Hus Day"},
        {"CZ", 2026, 4, 3, true, "Good Friday"},
        /* Switzerland (unchanged from the hand-written rules) */
        {"CH-TI", 2026, 3, 19, true, "St Joseph"},
        {"CH-TI", 2026, 4, 3, false, NULL},
        {"CH-GE", 2026, 9, 10, true, "Jeune genevois"},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        const expect_t *e = &ex[i];
        hvs_calendar_t *c = cal(e->region);
        hvs_day_info_t d;
        hvs_calendar_date(c, e->y, e->m, e->d, &d);
        HVS_CHECK(d.holiday == e->holiday && (!e->name || strcmp(d.holiday_name, e->name) == 0),
                  "%s %d-%02d-%02d: holiday %d \"%s\", expected %d \"%s\"", e->region, e->y, e->m,
                  e->d, d.holiday, d.holiday_name, e->holiday, e->name ? e->name : "");
        hvs_calendar_destroy(c);
    }
    /* Per year counts of two full lists: England and Wales 2026 has 8 bank holidays, the US
     * federal calendar 11 days off in 2026 (Independence Day's Saturday counted too: 12). */
    hvs_calendar_t *gb = cal("GB-ENG"), *us = cal("US");
    int ngb = 0, nus = 0;
    for (int m = 1; m <= 12; m++)
        for (int d = 1; d <= 31; d++) {
            hvs_day_info_t i;
            if (d > 28 && m == 2)
                continue;
            if (d == 31 && (m == 4 || m == 6 || m == 9 || m == 11))
                continue;
            hvs_calendar_date(gb, 2026, m, d, &i);
            ngb += i.holiday && !i.weekend;
            hvs_calendar_date(us, 2026, m, d, &i);
            nus += i.holiday;
        }
    HVS_CHECK(ngb == 8, "GB-ENG 2026: %d bank holidays on weekdays", ngb);
    HVS_CHECK(nus == 12, "US 2026: %d holidays", nus);
    hvs_calendar_destroy(gb);
    hvs_calendar_destroy(us);
}

static void check_offsets(const char *region, hvs_ms_t at, hvs_ms_t before, hvs_ms_t after) {
    hvs_calendar_t *c = cal(region);
    hvs_ms_t b = hvs_calendar_utc_offset(c, at - 1), a = hvs_calendar_utc_offset(c, at);
    HVS_CHECK(b == before && a == after, "%s at %lld: %lld -> %lld, expected %lld -> %lld", region,
              (long long)at, (long long)b, (long long)a, (long long)before, (long long)after);
    /* back again (the cached interval must not serve an instant outside it) */
    HVS_CHECK(hvs_calendar_utc_offset(c, at - 1) == before, "%s: back before", region);
    hvs_calendar_destroy(c);
}

static void test_dst_transitions(void) {
    /* EU: last Sunday of March / October 2026 at 01:00 UTC */
    hvs_ms_t spring = utc(2026, 3, 29, 1, 0), autumn = utc(2026, 10, 25, 1, 0);
    check_offsets("GB-ENG", spring, 0, H);
    check_offsets("GB-ENG", autumn, H, 0);
    check_offsets("FI", spring, 2 * H, 3 * H);
    check_offsets("FI", autumn, 3 * H, 2 * H);
    check_offsets("CH-ZH", spring, H, 2 * H);
    check_offsets("CH-ZH", autumn, 2 * H, H);
    check_offsets("IE", spring, 0, H);
    /* US: second Sunday of March (8 March 2026) 02:00 EST, first Sunday of November 02:00 EDT */
    check_offsets("US-NY", utc(2026, 3, 8, 7, 0), -5 * H, -4 * H);
    check_offsets("US-NY", utc(2026, 11, 1, 6, 0), -4 * H, -5 * H);
    check_offsets("US-CA", utc(2026, 3, 8, 10, 0), -8 * H, -7 * H);
    check_offsets("US-AZ", utc(2026, 3, 8, 9, 0), -7 * H, -7 * H); /* no DST in Arizona */
    /* local dates and hours follow the zone */
    hvs_calendar_t *ca = cal("US-CA"), *fi = cal("FI");
    hvs_day_info_t d;
    hvs_calendar_day(ca, utc(2026, 1, 1, 7, 59), &d);
    HVS_CHECK(d.year == 2025 && d.month == 12 && d.day == 31, "LA: 07:59Z on 1 Jan is 31 Dec");
    hvs_calendar_day(ca, utc(2026, 1, 1, 8, 0), &d);
    HVS_CHECK(d.year == 2026 && d.holiday, "LA: 08:00Z is New Year's Day");
    HVS_CHECK_NEAR(hvs_calendar_local_hour(fi, utc(2026, 7, 1, 5, 15)), 8.25, 1e-9);
    HVS_CHECK(!strcmp(hvs_calendar_zone(fi), "Europe/Helsinki"), "FI zone %s",
              hvs_calendar_zone(fi));
    hvs_calendar_destroy(ca);
    hvs_calendar_destroy(fi);
}

/* Every zone's offset, every 5 hours of 2025-2026 (the transitions themselves: above),
 * against glibc's localtime_r on the system's zoneinfo files. */
static void test_offsets_vs_system_tz(void) {
    const char *const *r = hvs_calendar_regions();
    int zones = 0, bad = 0;
    char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    for (int n = 0; r[n]; n++) {
        hvs_calendar_t *c = cal(r[n]);
        bool seen = false; /* one region per zone is enough */
        for (int k = 0; k < n && !seen; k++) {
            hvs_calendar_t *o = cal(r[k]);
            seen = strcmp(hvs_calendar_zone(o), hvs_calendar_zone(c)) == 0;
            hvs_calendar_destroy(o);
        }
        if (seen) {
            hvs_calendar_destroy(c);
            continue;
        }
        setenv("TZ", hvs_calendar_zone(c), 1);
        tzset();
        zones++;
        for (hvs_ms_t t = utc(2025, 1, 1, 0, 0); t < utc(2027, 1, 1, 0, 0); t += 5 * H) {
            time_t tt = (time_t)(t / 1000);
            struct tm tm;
            localtime_r(&tt, &tm);
            if (hvs_calendar_utc_offset(c, t) != (hvs_ms_t)tm.tm_gmtoff * 1000 && bad++ < 5)
                HVS_CHECK(false, "%s %s at %lld: ICU %lld, system %ld", r[n], hvs_calendar_zone(c),
                          (long long)t, (long long)hvs_calendar_utc_offset(c, t),
                          (long)tm.tm_gmtoff);
        }
        hvs_calendar_destroy(c);
    }
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    free(saved);
    tzset();
    HVS_CHECK(bad == 0 && zones >= 20, "%d zones, %d offsets differ from the system's", zones, bad);
}

static char *write_file(const char *text) {
    char *path = strdup("/tmp/hvs_cal_XXXXXX");
    int fd = mkstemp(path);
    HVS_REQUIRE(fd >= 0, "mkstemp");
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static bool is_holiday(const char *region, int y, int m, int d) {
    hvs_calendar_t *c = cal(region);
    hvs_day_info_t i;
    hvs_calendar_date(c, y, m, d, &i);
    hvs_calendar_destroy(c);
    return i.holiday;
}

static void test_user_file(void) {
    hvs_calendar_t *before = cal("DE-BY"); /* made from the built-in database: stays valid */
    char *path = write_file("# a user's additions\n"
                            "[DE-BY]\n"
                            "holiday = 08-08 Augsburg Peace Festival  # local\n"
                            "[DE]\n"
                            "holiday = 12-24 Christmas Eve\n"
                            "[CH-ZH]\n"
                            "drop = Labour Day\n"
                            "\n"
                            "[XX-TOKYO]\n"
                            "parent = DE-BE\n"
                            "zone = Asia/Tokyo\n"
                            "drop = Good Friday\n"
                            "holiday = nth:2:mon:01 Coming of Age Day\n"
                            "school = 03-25..04-05 # spring\n");
    hvs_err_t err;
    int nbefore = 0;
    for (const char *const *r = hvs_calendar_regions(); *r; r++)
        nbefore++;
    HVS_REQUIRE(hvs_calendar_load(path, &err) == 0, "load: %s", err.msg);
    int nafter = 0;
    for (const char *const *r = hvs_calendar_regions(); *r; r++)
        nafter++;
    HVS_CHECK(nafter == nbefore + 1, "%d regions, then %d", nbefore, nafter);
    HVS_CHECK(is_holiday("DE-BY", 2025, 8, 8) && is_holiday("DE-BY", 2025, 1, 6),
              "DE-BY extended, its own days kept");
    hvs_calendar_t *by = cal("DE-BY");
    hvs_day_info_t n;
    hvs_calendar_date(by, 2025, 8, 8, &n);
    HVS_CHECK(!strcmp(n.holiday_name, "Augsburg Peace Festival"), "name without the comment: %s",
              n.holiday_name);
    hvs_calendar_destroy(by);
    HVS_CHECK(is_holiday("DE-NW", 2025, 12, 24) && is_holiday("DE-BY", 2025, 12, 24),
              "a holiday added to DE reaches the states");
    HVS_CHECK(!is_holiday("CH-ZH", 2025, 5, 1) && is_holiday("CH-ZH", 2025, 1, 2),
              "CH-ZH: Labour Day dropped, Berchtoldstag kept");
    HVS_CHECK(is_holiday("CH-BS", 2025, 5, 1), "CH-BS keeps its Labour Day");
    hvs_calendar_t *x = cal("XX-TOKYO");
    hvs_day_info_t d;
    hvs_calendar_date(x, 2026, 1, 12, &d);
    HVS_CHECK(d.holiday && !strcmp(d.holiday_name, "Coming of Age Day"), "new region's day: %s",
              d.holiday_name);
    hvs_calendar_date(x, 2026, 3, 8, &d);
    HVS_CHECK(d.holiday, "inherits Berlin's Women's Day");
    hvs_calendar_date(x, 2026, 4, 3, &d);
    HVS_CHECK(!d.holiday, "Good Friday dropped");
    hvs_calendar_date(x, 2026, 3, 30, &d);
    HVS_CHECK(d.school_holiday, "own school holidays");
    hvs_calendar_date(x, 2026, 7, 30, &d);
    HVS_CHECK(!d.school_holiday, "replacing the parent's");
    HVS_CHECK(hvs_calendar_utc_offset(x, utc(2026, 7, 1, 0, 0)) == 9 * H, "Tokyo +9");
    hvs_calendar_destroy(x);
    hvs_calendar_date(before, 2025, 8, 8, &d);
    HVS_CHECK(!d.holiday && !strcmp(hvs_calendar_region(before), "DE-BY"),
              "a calendar made before the load keeps its rules");
    hvs_calendar_destroy(before);
    unlink(path);
    free(path);
}

static void test_malformed(void) {
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"[DE-XX]\nparent = DE\nholiday = 13-01 Nothing\n", ":3: no such date"},
        {"[DE-XX]\nparent = DE\n\nholiday = 12-25\n", ":4: holiday: a name must follow"},
        {"[DE-XX]\nparent = DE\nholiday = nth:6:mon:05 X\n", ":3: expected MM-DD"},
        {"[DE-XX]\nparent = DE\nholiday = 05-01 obs=later X\n", ":3: obs= takes"},
        {"[DE-XX]\ncolour = blue\n", ":2: unknown key"},
        {"holiday = 01-01 X\n", ":1: a setting before the first [REGION]"},
        {"[DE XX]\n", ":1: region codes"},
        {"[DE-XX\n", ":1: expected [REGION]"},
        {"[DE-XX]\nparent = DE\nschool = easter+1\n", ":3: school: expected START DAYS"},
        {"[DE-XX]\nzone = Mars/Olympus_Mons\n",
         ":1: region DE-XX: time zone \"Mars/Olympus_Mons\""},
        {"# x\n[DE-XX]\nparent = DE-QQ\n", ":2: region DE-XX: parent DE-QQ is not defined"},
        {"[A1]\nparent = B1\n[B1]\nparent = A1\n", "parent loop"},
        {"[DE-XX]\nparent = DE\ndrop = Boxing Day\n", "drop \"Boxing Day\": no such holiday"},
        {"[DE-XX]\nholiday = 01-01 New Year\n", "region DE-XX: no zone"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *path = write_file(bad[i].text);
        hvs_err_t err = {0};
        int rc = hvs_calendar_load(path, &err);
        HVS_CHECK(rc == HVS_EINVAL && strstr(err.msg, path) && strstr(err.msg, bad[i].want),
                  "case %zu: rc %d \"%s\", expected \"%s\"", i, rc, err.msg, bad[i].want);
        unlink(path);
        free(path);
    }
    hvs_err_t err = {0};
    HVS_CHECK(hvs_calendar_load("/nonexistent/regions.ini", &err) == HVS_EINVAL &&
                  strstr(err.msg, "/nonexistent/regions.ini"),
              "missing file: %s", err.msg);
    /* a failed load leaves the database in use alone */
    hvs_calendar_t *c = NULL;
    HVS_CHECK(hvs_calendar_new("DE-XX", &c, &err) == HVS_EINVAL && !c, "DE-XX never loaded");
    HVS_CHECK(hvs_calendar_load(NULL, &err) == 0, "built-in only: %s", err.msg);
}

/* An unknown region: one warning per building, however many vectors. */
static void test_warn_once_per_building(void) {
    FILE *logf = tmpfile();
    HVS_REQUIRE(logf, "tmpfile");
    hvs_log_init("test", HVS_LOG_INFO, logf);
    hvs_calendars_t *cs = hvs_calendars_new("CH", "features");
    HVS_REQUIRE(cs, "calendars");
    hvs_calendar_t *ch = hvs_calendars_get(cs, NULL, "b0");
    int wrong = 0;
    for (int v = 0; v < 3000; v++) {
        char b[16];
        snprintf(b, sizeof b, "b%d", v % 3);
        wrong += hvs_calendars_get(cs, "XX-NOWHERE", b) != ch;
        wrong += hvs_calendars_get(cs, "YY-NOWHERE", "b9") != ch;
        wrong += strcmp(hvs_calendar_region(hvs_calendars_get(cs, "DE-BE", b)), "DE-BE") != 0;
    }
    HVS_CHECK(wrong == 0, "%d lookups gave the wrong calendar", wrong);
    hvs_calendars_destroy(cs);
    fflush(logf);
    rewind(logf);
    char line[1024];
    int warnings = 0, named = 0;
    while (fgets(line, sizeof line, logf))
        if (strstr(line, "unknown")) {
            warnings++;
            named += (strstr(line, "building b0") || strstr(line, "building b1") ||
                      strstr(line, "building b2") || strstr(line, "building b9")) &&
                     strstr(line, "NOWHERE");
        }
    fclose(logf);
    hvs_log_init("test", HVS_LOG_INFO, stderr);
    HVS_CHECK(warnings == 4 && named == 4, "%d warnings (%d naming building and region), want 4",
              warnings, named);
}

static const hvs_test_case_t cases[] = {
    {"official_holidays", test_official_holidays},
    {"dst_transitions", test_dst_transitions},
    {"offsets_vs_system_tz", test_offsets_vs_system_tz},
    {"user_file", test_user_file},
    {"malformed", test_malformed},
    {"warn_once_per_building", test_warn_once_per_building},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
