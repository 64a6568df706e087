/*
 * log: the rate limit of like lines (hvs_log_limit_*): N lines per reason per minute, the rest
 * counted and summed up in one line when the minute is over, reasons limited apart.
 */
#include <stdio.h>
#include <string.h>

#include "hvs/log.h"
#include "hvs_test.h"

static FILE *out;

/* What was logged since the last call (the file is rewound and emptied). */
static char *logged(char *buf, size_t cap) {
    fflush(out);
    long n = ftell(out);
    rewind(out);
    size_t got = fread(buf, 1, n > 0 && (size_t)n < cap ? (size_t)n : cap - 1, out);
    buf[got] = '\0';
    fclose(out);
    out = tmpfile();
    hvs_log_init("test", HVS_LOG_INFO, out);
    return buf;
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

static void setup(void) {
    out = tmpfile();
    HVS_REQUIRE(out != NULL, "tmpfile");
    hvs_log_init("test", HVS_LOG_INFO, out);
}

/* A storm of one reason: 3 lines allowed, 97 counted, one summary when the minute is over. */
static void test_storm_summed_up(void) {
    setup();
    static char buf[1 << 16];
    hvs_log_limit_t l = {.per_minute = 3};
    int allowed = 0;
    for (int i = 0; i < 100; i++)
        allowed += hvs_log_limit_take(&l, "bad_id", 1000 + i, "stage", "dead letters");
    HVS_CHECK_EQ_INT(allowed, 3);
    hvs_log_limit_flush(&l, 1000 + 59999, "stage", "dead letters"); /* minute not over yet */
    HVS_CHECK_EQ_INT(count(logged(buf, sizeof buf), "more dead letters"), 0);
    hvs_log_limit_flush(&l, 1000 + 60000, "stage", "dead letters");
    logged(buf, sizeof buf);
    HVS_CHECK(count(buf, "and 97 more dead letters (bad_id) in the last minute") == 1, "%s", buf);
    hvs_log_limit_flush(&l, 1000 + 120000, "stage", "dead letters"); /* said once, not again */
    HVS_CHECK_EQ_INT(count(logged(buf, sizeof buf), "more dead letters"), 0);
    /* a new minute allows lines again */
    HVS_CHECK(hvs_log_limit_take(&l, "bad_id", 1000 + 120001, "stage", "dead letters"), "again");
    fclose(out);
}

/* The summary also comes with the next line of the reason after the minute. */
static void test_summary_on_next_take(void) {
    setup();
    static char buf[1 << 16];
    hvs_log_limit_t l = {0}; /* default: 10 a minute */
    for (int i = 0; i < 15; i++)
        hvs_log_limit_take(&l, "truncated", i, "stage", "dead letters");
    HVS_CHECK(hvs_log_limit_take(&l, "truncated", 70000, "stage", "dead letters"), "new minute");
    logged(buf, sizeof buf);
    HVS_CHECK(count(buf, "and 5 more dead letters (truncated)") == 1, "%s", buf);
    fclose(out);
}

/* Reasons are limited apart; more than the slots share the last one ("other"). */
static void test_reasons_apart(void) {
    setup();
    hvs_log_limit_t l = {.per_minute = 1};
    HVS_CHECK(hvs_log_limit_take(&l, "a", 0, "s", "x"), "a first");
    HVS_CHECK(!hvs_log_limit_take(&l, "a", 1, "s", "x"), "a second");
    HVS_CHECK(hvs_log_limit_take(&l, "b", 2, "s", "x"), "b is not limited by a");
    char r[16];
    for (int i = 0; i < HVS_LOG_LIMIT_REASONS + 5; i++) {
        snprintf(r, sizeof r, "r%d", i);
        hvs_log_limit_take(&l, r, 3, "s", "x");
    }
    HVS_CHECK_EQ_INT(l.nslots, HVS_LOG_LIMIT_REASONS);
    HVS_CHECK_EQ_STR(l.slot[HVS_LOG_LIMIT_REASONS - 1].reason, "other");
    fclose(out);
}

static const hvs_test_case_t cases[] = {
    {"limit_storm_summed_up", test_storm_summed_up},
    {"limit_summary_on_next_take", test_summary_on_next_take},
    {"limit_reasons_apart", test_reasons_apart},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
