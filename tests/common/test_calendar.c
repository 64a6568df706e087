/*
 * calendar: Easter, moveable and cantonal holidays, bridge days, school holidays, the Christmas
 * period, DST and local dates, against dates taken from published calendars.
 */
#include <time.h>

#include "hvs/calendar.h"
#include "hvs_test.h"

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

static hvs_day_info_t date(hvs_calendar_t *c, int y, int m, int d) {
    hvs_day_info_t i;
    hvs_calendar_date(c, y, m, d, &i);
    return i;
}

static void test_easter(void) {
    static const int e[][3] = {{2000, 4, 23}, {2019, 4, 21}, {2024, 3, 31}, {2025, 4, 20},
                               {2026, 4, 5},  {2038, 4, 25}, {1981, 4, 19}, {2011, 4, 24}};
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        int m, d;
        hvs_calendar_easter(e[i][0], &m, &d);
        HVS_CHECK(m == e[i][1] && d == e[i][2], "Easter %d: %d-%d", e[i][0], m, d);
    }
}

static void test_holidays(void) {
    hvs_calendar_t *zh = cal("CH-ZH"), *ge = cal("CH-GE"), *vd = cal("CH-VD"), *ti = cal("CH-TI");
    hvs_day_info_t i = date(zh, 2024, 5, 9);
    HVS_CHECK(i.holiday && !strcmp(i.holiday_name, "Ascension"), "Ascension 2024: %s",
              i.holiday_name);
    i = date(zh, 2024, 5, 10);
    HVS_CHECK(i.bridge_day && i.workday && !i.holiday, "Friday after Ascension is a bridge day");
    HVS_CHECK(!date(zh, 2024, 5, 8).bridge_day, "Wednesday before is not");
    HVS_CHECK(date(zh, 2025, 6, 9).holiday, "Whit Monday 2025");
    HVS_CHECK(date(zh, 2024, 3, 29).holiday && date(zh, 2024, 4, 1).holiday,
              "Good Friday, Easter Monday 2024");
    HVS_CHECK(date(zh, 2024, 1, 2).holiday && !date(ge, 2024, 1, 2).holiday,
              "Berchtoldstag ZH not GE");
    HVS_CHECK(date(zh, 2024, 5, 1).holiday && !date(vd, 2024, 5, 1).holiday, "1 May ZH not VD");
    i = date(ge, 2024, 9, 5);
    HVS_CHECK(i.holiday && !strcmp(i.holiday_name, "Jeune genevois"), "Jeune genevois 2024: %s",
              i.holiday_name);
    HVS_CHECK(date(vd, 2024, 9, 16).holiday, "Lundi du Jeune 2024");
    HVS_CHECK(date(ge, 2024, 12, 31).holiday, "Restauration genevoise");
    HVS_CHECK(!date(ti, 2024, 3, 29).holiday && date(ti, 2024, 3, 19).holiday,
              "Ticino: no Good Friday, St Joseph");
    const char *const *r = hvs_calendar_regions();
    int n = 0;
    for (; r[n]; n++) {
        hvs_calendar_t *c = cal(r[n]);
        if (strncmp(r[n], "CH", 2) == 0)
            HVS_CHECK(date(c, 2025, 8, 1).holiday, "%s: 1 August", r[n]);
        bool st_stephen = strncmp(r[n], "CH", 2) == 0 || strncmp(r[n], "DE", 2) == 0;
        HVS_CHECK(date(c, 2025, 12, 25).holiday && (!st_stephen || date(c, 2025, 12, 26).holiday),
                  "%s: Christmas", r[n]);
        HVS_CHECK(!date(c, 2025, 11, 12).holiday, "%s: 12 Nov is a plain day", r[n]);
        hvs_calendar_destroy(c);
    }
    /* the regions of the data file: CH and 7 cantons, DE and 16 states, ... */
    HVS_CHECK(n >= 50, "%d regions", n);
    HVS_CHECK(date(zh, 2024, 11, 18).weekday == 0 && date(zh, 2024, 11, 23).weekend, "weekdays");
    hvs_calendar_destroy(zh);
    hvs_calendar_destroy(ge);
    hvs_calendar_destroy(vd);
    hvs_calendar_destroy(ti);
    hvs_calendar_t *c = NULL;
    hvs_err_t err;
    HVS_CHECK(hvs_calendar_new("CH-XX", &c, &err) == HVS_EINVAL &&
                  !strcmp(err.reason, "unknown_region") && !c,
              "unknown region");
    HVS_CHECK(hvs_calendar_new(NULL, &c, &err) == HVS_EINVAL, "NULL region");
}

static void test_periods(void) {
    hvs_calendar_t *zh = cal("CH-ZH");
    /* days until/since across the year boundary: 27 Dec 2024 -> 1 Jan 2025 (5), since 26 Dec (1). */
    hvs_day_info_t i = date(zh, 2024, 12, 27);
    HVS_CHECK(i.days_until_holiday == 5 && i.days_since_holiday == 1, "until %d since %d",
              i.days_until_holiday, i.days_since_holiday);
    i = date(zh, 2025, 1, 3);
    HVS_CHECK(i.days_since_holiday == 1, "since Berchtoldstag: %d", i.days_since_holiday);
    HVS_CHECK(date(zh, 2024, 12, 24).christmas_period && date(zh, 2025, 1, 6).christmas_period &&
                  !date(zh, 2025, 1, 7).christmas_period &&
                  !date(zh, 2024, 12, 23).christmas_period,
              "Christmas period 24 Dec - 6 Jan");
    /* School holidays: Christmas and summer spans are contiguous and hold the expected days. */
    HVS_CHECK(date(zh, 2024, 12, 27).school_holiday && date(zh, 2025, 1, 3).school_holiday,
              "Christmas school holidays");
    HVS_CHECK(date(zh, 2025, 7, 25).school_holiday && date(zh, 2025, 8, 8).school_holiday &&
                  !date(zh, 2025, 6, 10).school_holiday && !date(zh, 2025, 9, 10).school_holiday,
              "ZH summer holidays");
    int runs = 0;
    bool prev = false;
    for (int m = 6; m <= 9; m++)
        for (int d = 1; d <= 31; d++) {
            if ((m == 6 || m == 9) && d == 31)
                continue;
            bool s = date(zh, 2025, m, d).school_holiday;
            runs += s && !prev;
            prev = s;
        }
    HVS_CHECK(runs == 1, "summer holidays in %d pieces", runs);
    hvs_calendar_t *ti = cal("CH-TI");
    HVS_CHECK(date(ti, 2025, 6, 25).school_holiday && date(ti, 2025, 8, 20).school_holiday,
              "Ticino summer from mid-June to late August");
    hvs_calendar_destroy(ti);
    hvs_calendar_destroy(zh);
}

static void test_local_time(void) {
    hvs_calendar_t *zh = cal("CH-ZH");
    hvs_ms_t spring = utc(2024, 3, 31, 1, 0), autumn = utc(2024, 10, 27, 1, 0);
    HVS_CHECK(hvs_calendar_utc_offset(zh, spring - 1) == 3600000, "CET before 31 Mar 01:00Z");
    HVS_CHECK(hvs_calendar_utc_offset(zh, spring) == 7200000, "CEST from 31 Mar 01:00Z");
    HVS_CHECK(hvs_calendar_utc_offset(zh, autumn - 1) == 7200000, "CEST before 27 Oct 01:00Z");
    HVS_CHECK(hvs_calendar_utc_offset(zh, autumn) == 3600000, "CET from 27 Oct 01:00Z");
    HVS_CHECK_NEAR(hvs_calendar_local_hour(zh, spring - 60000), 1.0 + 59.0 / 60, 1e-9);
    HVS_CHECK_NEAR(hvs_calendar_local_hour(zh, spring), 3.0, 1e-9);
    HVS_CHECK_NEAR(hvs_calendar_local_hour(zh, utc(2024, 7, 1, 5, 15)), 7.25, 1e-9);
    hvs_day_info_t i;
    hvs_calendar_day(zh, utc(2024, 12, 31, 23, 30), &i);
    HVS_CHECK(i.year == 2025 && i.month == 1 && i.day == 1 && i.holiday,
              "23:30Z on 31 Dec is New Year");
    hvs_calendar_day(zh, utc(2024, 12, 31, 22, 59), &i);
    HVS_CHECK(i.day == 31 && !i.holiday, "22:59Z is still 31 Dec");
    /* Outside the cached range: plain days, no crash. */
    hvs_calendar_date(zh, 2300, 1, 1, &i);
    HVS_CHECK(!i.holiday && i.year == 2300, "year 2300 is a plain day");
    hvs_calendar_destroy(zh);
}

static const hvs_test_case_t cases[] = {
    {"easter", test_easter},         {"holidays", test_holidays}, {"periods", test_periods},
    {"local_time", test_local_time}, HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
