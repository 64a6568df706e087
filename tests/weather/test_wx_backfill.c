/*
 * test_wx_backfill - the backfill's range and request URL (backfill.h): "FROM..TO" accepted as
 * UTC days (00:00 of each, both included), refused when malformed, not a calendar day, reversed
 * or ending after today; the archive URL written out by hand.
 */
#include <string.h>

#include "backfill.h"
#include "hvs/log.h"
#include "hvs_test.h"

#define DAY (24 * 3600 * 1000LL)
#define D(y, m, d) ((hvs_ms_t)hvs_time_days_from_civil(y, m, d) * DAY)

static void test_range(void) {
    hvs_ms_t now = D(2024, 3, 10) + 13 * 3600 * 1000LL, from = 0, to = 0;
    hvs_err_t err = {0};
    HVS_CHECK_EQ_INT(wx_backfill_range("2024-01-01..2024-03-10", now, &from, &to, &err), 0);
    HVS_CHECK(from == D(2024, 1, 1) && to == D(2024, 3, 10), "days %lld %lld", (long long)from,
              (long long)to);
    HVS_CHECK_EQ_INT(wx_backfill_range("2024-02-29..2024-02-29", now, &from, &to, &err), 0);
    HVS_CHECK(from == to && from == D(2024, 2, 29), "one leap day");
    static const char *const bad[] = {
        "2024-01-01",             /* no .. */
        "2024-01-01..",           /* no end */
        "2023-02-29..2023-03-01", /* not a day */
        "2024-1-1..2024-01-02",   /* not YYYY-MM-DD */
        "2024-01-02..2024-01-01", /* reversed */
        "2024-03-01..2024-03-11", /* ends tomorrow */
        "2024-01-01..2024-01-02x",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = wx_backfill_range(bad[i], now, &from, &to, &err);
        HVS_CHECK(rc == HVS_EINVAL && strcmp(err.reason, "bad_range") == 0, "\"%s\" refused: %d",
                  bad[i], rc);
    }
    HVS_CHECK_EQ_INT(wx_backfill_range(NULL, now, &from, &to, &err), HVS_EINVAL);
}

static void test_url(void) {
    char buf[512];
    int n = wx_archive_url(buf, sizeof buf, "http://h:8/", 47.37691, -8.5, "temperature_2m",
                           D(2024, 2, 1), D(2024, 3, 2));
    const char *want = "http://h:8/v1/archive?latitude=47.3769&longitude=-8.5000&start_date="
                       "2024-02-01&end_date=2024-03-02&hourly=temperature_2m&windspeed_unit=ms"
                       "&timezone=GMT";
    HVS_CHECK(n == (int)strlen(want) && strcmp(buf, want) == 0, "%s", buf);
    HVS_CHECK_EQ_INT(wx_archive_url(buf, 20, "http://h:8", 0, 0, "x", D(2024, 1, 1), D(2024, 1, 1)),
                     -1);
}

static const hvs_test_case_t cases[] = {
    {"range", test_range},
    {"url", test_url},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) {
    hvs_log_init("test", HVS_LOG_ERROR, NULL);
    return hvs_test_main(cases, argc, argv);
}
