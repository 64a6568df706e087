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
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-10-27T24:00:00Z",
        "2024-10-27T10:60:00Z",
        "2024-10-27T10:30:00",
        "2024-10-27T10:30:00Zjunk",
        "2024-10-27",
        "24-10-27T10:30:00Z",
        "",
        "garbage",
        "2024-10-27T10:30:00.Z",
        "2024-10-27T10:30:00+25:00",
        "2024-1-27T10:30:00Z",
        "2024-00-10T00:00:00Z",
        "2024-10-00T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-10-27T10:30:60Z",
        "2024-10-27T10:30:00.1234567890Z",
        " 2024-10-27T10:30:00Z",
        "2024-10-27T10:30:00Z\n",
        "+2024-10-27T10:30:00Z",
        "2024-10-27T10:30:00+02",
        "2024-10-27T10:30:00 +02:00",
        "2024-10-27T10:30:00+02:60",
        "2024-10-27T10:30:00+2:00",
        "2024-10-27T10:30:00+02:00:00",
        "2024-10-27X10:30:00Z",
        "2024-10-27T1:30:00Z",
        "2024-10-27T10:3:00Z",
        "2024-10-27T10-30Z",
        "2024/10/27T10:30:00Z",
        "2024-10-27T10:30:00.5",
        "2024-10-27T10:30:+1Z",
        /* cut short at every place a look-ahead happens */
        "2024-10-27T",
        "2024-10-27T1",
        "2024-10-27T10",
        "2024-10-27T10:",
        "2024-10-27T10:3",
        "2024-10-27T10:30:",
        "2024-10-27T10:30:0",
        "2024-10-27T10:30:00.",
        "2024-10-27T10:30:00+",
        "2024-10-27T10:30:00+0",
        "2024-10-27T10:30:00+02:",
        "2024-10-27T10:30:00+02:0",
        "2024-1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hvs_ms_t t;
        hvs_err_t err;
        /* An exact-size heap copy: a read past the NUL is an error under valgrind/ASan. */
        size_t n = strlen(bad[i]) + 1;
        char *in = malloc(n);
        memcpy(in, bad[i], n);
        HVS_CHECK(hvs_time_parse_iso8601(in, &t, &err) == HVS_EINVAL, "\"%s\" accepted", bad[i]);
        HVS_CHECK_EQ_STR(err.reason, "bad_timestamp");
        free(in);
    }
    hvs_ms_t tv;
    hvs_err_t err;
    HVS_CHECK(hvs_time_parse_iso8601("2024-10-27T10:30:00", &tv, &err) == HVS_EINVAL &&
                  strstr(err.msg, "no zone") != NULL,
              "missing zone named: %s", err.msg);
    HVS_CHECK(hvs_time_parse_iso8601(NULL, &tv, &err) == HVS_EINVAL, "NULL");
    HVS_CHECK(hvs_time_parse_iso8601("2024-10-27t10:30:00.5z", &tv, &err) == 0 &&
                  tv == 1730025000500,
              "lower-case t/z, one fraction digit");
    HVS_CHECK(hvs_time_parse_iso8601("2000-02-29T23:59:59,999-00:00", &tv, &err) == 0 &&
                  tv == 951868799999,
              "leap year 2000, comma fraction, -00:00");
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
    HVS_CHECK_EQ_INT(hvs_time_window_start(-HVS_MS_HOUR, HVS_MS_HOUR), -HVS_MS_HOUR);
    HVS_CHECK_EQ_INT(hvs_time_window_start(-HVS_MS_HOUR - 1, HVS_MS_HOUR), -2 * HVS_MS_HOUR);
    HVS_CHECK_EQ_INT(hvs_time_window_start(-1, HVS_MS_15MIN), -HVS_MS_15MIN);
    HVS_CHECK_EQ_INT(hvs_time_day_start(-1), -HVS_MS_DAY); /* 1969-12-31 */
    /* every t of two windows around zero maps to its floor (independent: integer steps) */
    int wrong = 0;
    for (hvs_ms_t w0 = -2 * HVS_MS_15MIN; w0 < 2 * HVS_MS_15MIN; w0 += HVS_MS_15MIN)
        for (hvs_ms_t t = w0; t < w0 + HVS_MS_15MIN; t += 997)
            wrong += hvs_time_window_start(t, HVS_MS_15MIN) != w0;
    HVS_CHECK_EQ_INT(wrong, 0);
    /* no overflow at the bottom of the range: saturates */
    HVS_CHECK_EQ_INT(hvs_time_window_start(INT64_MIN + 5, HVS_MS_HOUR), INT64_MIN);
    HVS_CHECK_EQ_INT(hvs_time_window_start(42, 0), 42);
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
    /* partition 0 goes quiet (1 keeps talking): after the idle timeout 0 advances with wall time */
    hvs_watermark_observe(w, 1, t0 + HVS_MS_HOUR, wall + 45000);
    hvs_watermark_observe(w, 1, t0 + HVS_MS_HOUR, wall + 90000);
    HVS_CHECK_EQ_INT(hvs_watermark_partition(w, 0, wall + 90000), t0 - 5 * HVS_MS_MINUTE + 30000);
    HVS_CHECK_EQ_INT(hvs_watermark_current(w, wall + 90000), t0 - 5 * HVS_MS_MINUTE + 30000);
    hvs_watermark_remove(w, 0);
    HVS_CHECK_EQ_INT(hvs_watermark_current(w, wall + 90000), t0 + HVS_MS_HOUR - 5 * HVS_MS_MINUTE);
    HVS_CHECK_EQ_INT(hvs_watermark_partition(w, 0, wall), HVS_MS_NONE);
    hvs_watermark_destroy(w);
    hvs_watermark_destroy(NULL);

    /* Arrival order does not matter: the watermark is max - out-of-orderness either way. */
    hvs_watermark_t *a = hvs_watermark_new(HVS_MS_MINUTE, 0),
                    *b = hvs_watermark_new(HVS_MS_MINUTE, 0);
    hvs_ms_t ev[] = {t0 + 5000, t0, t0 + 90000, t0 + 30000, t0 - 60000};
    for (int i = 0; i < 5; i++) {
        hvs_watermark_observe(a, 3, ev[i], wall);
        hvs_watermark_observe(b, 3, ev[4 - i], wall);
    }
    HVS_CHECK_EQ_INT(hvs_watermark_current(a, wall), t0 + 90000 - HVS_MS_MINUTE);
    HVS_CHECK_EQ_INT(hvs_watermark_current(b, wall), t0 + 90000 - HVS_MS_MINUTE);
    /* idle_timeout 0 = never advance by wall time */
    HVS_CHECK_EQ_INT(hvs_watermark_current(a, wall + HVS_MS_DAY), t0 + 90000 - HVS_MS_MINUTE);
    hvs_watermark_destroy(a);
    hvs_watermark_destroy(b);

    /* Monotonic: an event after an idle spell does not take the watermark back. */
    w = hvs_watermark_new(HVS_MS_MINUTE, 10 * HVS_MS_SECOND);
    hvs_watermark_observe(w, 7, t0, wall);
    hvs_ms_t later = wall + 70 * HVS_MS_SECOND; /* idle 60 s beyond the timeout */
    hvs_ms_t advanced = t0 - HVS_MS_MINUTE + 60 * HVS_MS_SECOND;
    HVS_CHECK_EQ_INT(hvs_watermark_partition(w, 7, later), advanced);
    hvs_watermark_observe(w, 7, t0 + 1000, later); /* behind the advanced watermark */
    HVS_CHECK_EQ_INT(hvs_watermark_partition(w, 7, later), advanced);
    HVS_CHECK_EQ_INT(hvs_watermark_partition(w, 7, later + 5000), advanced); /* not idle again */
    hvs_watermark_observe(w, 7, t0 + 5 * HVS_MS_MINUTE, later + 5000);       /* real progress */
    HVS_CHECK_EQ_INT(hvs_watermark_partition(w, 7, later + 5000), t0 + 4 * HVS_MS_MINUTE);
    /* A partition with input still waiting (touched) is not idle: a slow consumer's pending
     * readings must not be made late by the wall clock. Once caught up, it idles again. */
    hvs_watermark_touch(w, 7, later + 5000 + 8 * HVS_MS_SECOND);
    hvs_watermark_touch(w, 7, later + 5000 + 16 * HVS_MS_SECOND);
    HVS_CHECK_EQ_INT(hvs_watermark_partition(w, 7, later + 5000 + 24 * HVS_MS_SECOND),
                     t0 + 4 * HVS_MS_MINUTE); /* untouched it would be 14 s further */
    HVS_CHECK_EQ_INT(hvs_watermark_partition(w, 7, later + 5000 + 31 * HVS_MS_SECOND),
                     t0 + 4 * HVS_MS_MINUTE + 5 * HVS_MS_SECOND); /* idle 15 s, 5 beyond */
    hvs_watermark_touch(w, 99, later);                            /* unknown: ignored */
    HVS_CHECK_EQ_INT(hvs_watermark_partition(w, 99, later), HVS_MS_NONE);
    /* many partitions: min over all, removal in any order */
    for (int32_t p = 0; p < 40; p++)
        hvs_watermark_observe(w, p, t0 + p * HVS_MS_MINUTE, later + 5000);
    HVS_CHECK_EQ_INT(hvs_watermark_current(w, later + 5000), t0 - HVS_MS_MINUTE);
    for (int32_t p = 0; p < 39; p++)
        hvs_watermark_remove(w, p);
    HVS_CHECK_EQ_INT(hvs_watermark_current(w, later + 5000), t0 + 38 * HVS_MS_MINUTE);
    hvs_watermark_remove(w, 39);
    HVS_CHECK_EQ_INT(hvs_watermark_current(w, later + 5000), HVS_MS_NONE);
    hvs_watermark_destroy(w);
}

static const hvs_test_case_t cases[] = {
    {"parse", test_parse},
    {"windows", test_windows},
    {"watermark", test_watermark},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
