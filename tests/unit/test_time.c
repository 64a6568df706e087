/*
 * time: strict ISO-8601 parsing against independently computed epoch values, formatting,
 * window floors (also before 1970), plausibility bounds, and the watermark tracker's ordering,
 * out-of-orderness, idle advance and removal.
 */
#include "hvs/time.h"
#include "hvs_test.h"

static void test_parse(void) {
    static const struct {
        const char *in;
        hvs_ms_t want; /* values from `date -u -d ... +%s%3N` */
    } good[] = {
        {"2024-10-27T10:30:00Z", 1730025000000},
        {"2024-10-27T10:30:05.123Z", 1730025005123},
        {"2024-10-27T12:30:00+02:00", 1730025000000},
        {"2024-10-27T05:00:00-0530", 1730025000000},
        {"2024-10-27 10:30:00Z", 1730025000000},
        {"2024-02-29T00:00:00Z", 1709164800000},
        {"2000-01-01T00:00:00Z", 946684800000},
        {"1969-12-31T23:59:59.999Z", -1},
        {"2024-10-27T10:30Z", 1730025000000},
        {"2024-10-27T10:30:00.1234567Z", 1730025000123},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        hvs_ms_t t = 0;
        hvs_err_t err;
        int rc = hvs_time_parse_iso8601(good[i].in, &t, &err);
        HVS_CHECK(rc == 0 && t == good[i].want, "%s -> rc %d, %lld (want %lld)", good[i].in, rc,
                  (long long)t, (long long)good[i].want);
    }
    static const char *const bad[] = {
        "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
        "2024-10-27T24:00:00Z", "2024-10-27T10:60:00Z", "2024-10-27T10:30:00",
        "2024-10-27T10:30:00Zjunk", "2024-10-27", "24-10-27T10:30:00Z", "", "garbage",
        "2024-10-27T10:30:00.Z", "2024-10-27T10:30:00+25:00", "2024-1-27T10:30:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hvs_ms_t t;
        hvs_err_t err;
        HVS_CHECK(hvs_time_parse_iso8601(bad[i], &t, &err) == HVS_EINVAL, "\"%s\" accepted",
                  bad[i]);
        HVS_CHECK_EQ_STR(err.reason, "bad_timestamp");
    }
    char buf[40];
    HVS_CHECK_EQ_STR(hvs_time_format_iso8601(1730025005123, buf, sizeof buf),
                     "2024-10-27T10:30:05.123Z");
    HVS_CHECK_EQ_STR(hvs_time_format_iso8601(-1, buf, sizeof buf), "1969-12-31T23:59:59.999Z");
    /* format -> parse is the identity over a spread of instants */
    for (hvs_ms_t t = -86400000LL * 400; t < 86400000LL * 365 * 80; t += 86400000LL * 37 + 12345) {
        hvs_ms_t back;
        hvs_time_format_iso8601(t, buf, sizeof buf);
        HVS_CHECK(hvs_time_parse_iso8601(buf, &back, NULL) == 0 && back == t, "%s", buf);
    }
}

static void test_windows(void) {
    HVS_CHECK_EQ_INT(hvs_time_window_start(1730025005123, HVS_MS_HOUR), 1730023200000);
    HVS_CHECK_EQ_INT(hvs_time_window_start(1730025005123, HVS_MS_15MIN), 1730025000000);
    HVS_CHECK_EQ_INT(hvs_time_window_start(1730024999999, HVS_MS_15MIN), 1730024100000);
    HVS_CHECK_EQ_INT(hvs_time_window_start(1730023200000, HVS_MS_HOUR), 1730023200000);
    HVS_CHECK_EQ_INT(hvs_time_window_start(-1, HVS_MS_HOUR), -HVS_MS_HOUR);
    HVS_CHECK_EQ_INT(hvs_time_day_start(1730025005123), 1729987200000);
    hvs_ms_t now = 1730025000000;
    HVS_CHECK(hvs_time_plausible(now + HVS_MS_DAY, now, HVS_MS_DAY), "one day ahead ok");
    HVS_CHECK(!hvs_time_plausible(now + HVS_MS_DAY + 1, now, HVS_MS_DAY), "beyond a day");
    HVS_CHECK(!hvs_time_plausible(HVS_MS_MIN_EVENT - 1, now, HVS_MS_DAY), "before 2000");
}

static void test_watermark(void) {
    hvs_watermark_t *w = hvs_watermark_new(5 * HVS_MS_MINUTE, 60 * HVS_MS_SECOND);
    HVS_REQUIRE(w, "new");
    hvs_ms_t wall = 1000000;
    HVS_CHECK_EQ_INT(hvs_watermark_current(w, wall), HVS_MS_NONE);
    hvs_ms_t t0 = 1730023200000;
    hvs_watermark_observe(w, 0, t0, wall);
    hvs_watermark_observe(w, 0, t0 - HVS_MS_HOUR, wall); /* late: does not move it back */
    HVS_CHECK_EQ_INT(hvs_watermark_partition(w, 0, wall), t0 - 5 * HVS_MS_MINUTE);
    hvs_watermark_observe(w, 1, t0 + HVS_MS_HOUR, wall);
    HVS_CHECK_EQ_INT(hvs_watermark_current(w, wall), t0 - 5 * HVS_MS_MINUTE); /* min */
    /* partition 0 goes quiet: after the idle timeout it advances with wall time */
    hvs_watermark_observe(w, 1, t0 + HVS_MS_HOUR, wall + 90000);
    HVS_CHECK_EQ_INT(hvs_watermark_partition(w, 0, wall + 90000),
                     t0 - 5 * HVS_MS_MINUTE + 30000);
    HVS_CHECK_EQ_INT(hvs_watermark_current(w, wall + 90000), t0 - 5 * HVS_MS_MINUTE + 30000);
    hvs_watermark_remove(w, 0);
    HVS_CHECK_EQ_INT(hvs_watermark_current(w, wall + 90000), t0 + HVS_MS_HOUR - 5 * HVS_MS_MINUTE);
    HVS_CHECK_EQ_INT(hvs_watermark_partition(w, 0, wall), HVS_MS_NONE);
    hvs_watermark_destroy(w);
    hvs_watermark_destroy(NULL);
}

int main(void) {
    test_parse();
    test_windows();
    test_watermark();
    return hvs_test_done();
}
