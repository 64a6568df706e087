/*
 * test_agg_account - the uncounted-energy account of a meter (account.h): hours replaced, never
 * added to (a revision moves the day by its difference, a replay changes nothing); a day judged
 * only once closed; the stored text read back bit for bit; days forgotten behind the horizon;
 * stored text that does not parse refused. Expected values are worked by hand.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "account.h"
#include "hvs_test.h"

#define HOUR 3600000LL
#define D0 1733097600000LL /* 2024-12-02T00:00:00Z */

/* Hours [0, hours) of a day published: 200 kWh counted each, but hour 3: unc3 uncounted. */
static void fill_day(agg_account_t *acc, hvs_ms_t day, int hours, double unc3) {
    for (int h = 0; h < hours; h++) {
        double delta;
        HVS_REQUIRE(
            agg_account_set(acc, day + h * HOUR, h == 3 ? 0 : 200, h == 3 ? unc3 : 0, &delta),
            "set");
    }
}

static void test_revision_replaces_its_hour(void) {
    agg_account_t acc = {0};
    fill_day(&acc, D0, 24, 800);
    HVS_CHECK_EQ_INT(acc.n, 1);
    agg_day_t *d = &acc.d[0];
    HVS_CHECK(agg_day_counted(d) == 4600 && agg_day_uncounted(d) == 800, "day: %g + %g",
              agg_day_counted(d), agg_day_uncounted(d));
    HVS_CHECK(agg_account_due(&acc, 0, 0.05), "800 of 5400 is due");
    /* the same value again (a replay): nothing moves */
    double delta = -1;
    d->dirty = false;
    d = agg_account_set(&acc, D0 + 3 * HOUR, 0, 800, &delta);
    HVS_CHECK(d && delta == 0 && !d->dirty, "replay: delta %g, dirty %d", delta, d && d->dirty);
    /* a revision: hour 3 counted after all; the day moves by -800 uncounted, +800 counted */
    d = agg_account_set(&acc, D0 + 3 * HOUR, 800, 0, &delta);
    HVS_CHECK(d && delta == -800 && d->dirty, "revision: delta %g", delta);
    HVS_CHECK(agg_day_counted(d) == 5400 && agg_day_uncounted(d) == 0, "revised day: %g + %g",
              agg_day_counted(d), agg_day_uncounted(d));
    HVS_CHECK(!agg_account_due(&acc, 0, 0.05), "nothing uncounted: not due");
    agg_account_fini(&acc);
}

static void test_closed_days_only(void) {
    agg_account_t acc = {0};
    fill_day(&acc, D0, 12, 600); /* midday: 600 of 2800 */
    HVS_CHECK(!agg_account_closed(&acc, 0) && !agg_account_due(&acc, 0, 0.05), "open at midday");
    fill_day(&acc, D0, 23, 600); /* hour 23 not out (silent), and then day 2's first hour */
    HVS_CHECK(!agg_account_closed(&acc, 0), "open without its last hour");
    double delta;
    HVS_REQUIRE(agg_account_set(&acc, D0 + 24 * HOUR, 200, 0, &delta), "day 2");
    HVS_CHECK_EQ_INT(acc.n, 2);
    HVS_CHECK(agg_account_closed(&acc, 0) && agg_account_due(&acc, 0, 0.05),
              "closed by a later day, 600 of 5000 due");
    HVS_CHECK(!agg_account_due(&acc, 0, 0.2), "under a 20 %% limit");
    acc.d[0].alerted = true;
    HVS_CHECK(!agg_account_due(&acc, 0, 0.05), "alerted once");
    /* a late hour of an older day goes in order */
    HVS_REQUIRE(agg_account_set(&acc, D0 - 2 * HOUR, 10, 0, &delta), "day 0");
    HVS_CHECK(acc.n == 3 && acc.d[0].day == D0 - 24 * HOUR && acc.d[1].day == D0 &&
                  acc.d[2].day == D0 + 24 * HOUR,
              "days sorted");
    agg_account_fini(&acc);
}

static void test_stored_text(void) {
    agg_account_t acc = {0}, back = {0};
    double delta;
    agg_day_t *d = agg_account_set(&acc, D0 + 5 * HOUR, 0.1 + 0.2, 1e-300, &delta);
    agg_account_set(&acc, D0, 123456789.125, 0, &delta);
    agg_account_set(&acc, D0 + 23 * HOUR, 0, 5200, &delta);
    d = &acc.d[0];
    d->alerted = true;
    char text[AGG_DAY_TEXT_MAX + 1];
    size_t n = agg_day_encode(d, text);
    /* format 1: 0x01, alerted, then hour 0: 123456789125 / 10^3 (6-byte varint) and 0 (1), hour
     * 5: 0.1 + 0.2 raw (9) and 1e-300 raw (9), hour 23: 0 and 5200 (3) */
    HVS_CHECK(n == 2 + 1 + 6 + 1 + 1 + 9 + 9 + 1 + 1 + 3 && text[0] == 1 && text[1] == 1 &&
                  text[2] == 0,
              "format-1 day of %zu bytes", n);
    hvs_err_t err;
    HVS_CHECK(agg_account_parse(&back, D0, text, n, &err) == 0, "parse: %s", err.msg);
    HVS_CHECK(back.n == 1 && back.d[0].hours == d->hours && back.d[0].alerted && !back.d[0].dirty &&
                  back.d[0].counted[5] == 0.1 + 0.2 && back.d[0].uncounted[5] == 1e-300 &&
                  back.d[0].counted[0] == 123456789.125 && back.d[0].uncounted[23] == 5200,
              "read back bit for bit");
    for (size_t cut = 1; cut < n; cut++) { /* a truncated value: refused or a shorter day */
        int rc = agg_account_parse(&back, D0, text, cut, &err);
        HVS_CHECK(rc == 0 || rc == HVS_ESERDE, "cut at %zu: %d", cut, rc);
        HVS_CHECK(cut != n - 1 || rc == HVS_ESERDE, "cut inside the last value refused");
    }
    /* the text of before format 1 still reads */
    agg_account_t old = {0};
    static const char t1[] = "1 0:123456789.125:0 5:0.30000000000000004:1e-300 23:0:5200";
    HVS_CHECK(agg_account_parse(&old, D0, t1, sizeof t1 - 1, &err) == 0, "text: %s", err.msg);
    HVS_CHECK(old.n == 1 && old.d[0].hours == d->hours && old.d[0].alerted &&
                  old.d[0].counted[5] == 0.1 + 0.2 && old.d[0].uncounted[5] == 1e-300,
              "text read back bit for bit");
    agg_account_fini(&old);
    static const char b1[] = "\x01\x02", b2[] = "\x01\x00\x18\x00\x00",
                      b3[] = "\x01\x00\x03\x00\x00\x03\x00\x00";
    HVS_CHECK(agg_account_parse(&back, D0, b1, 2, &err) == HVS_ESERDE &&
                  agg_account_parse(&back, D0, b2, sizeof b2 - 1, &err) == HVS_ESERDE &&
                  agg_account_parse(&back, D0, b3, sizeof b3 - 1, &err) == HVS_ESERDE,
              "bad alerted byte, hour 24, an hour twice refused");
    static const char *const bad[] = {"", "2", "1x", "0 24:1:1", "0 3:x:1", "0 3:1:1 ", "0 3:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        HVS_CHECK(agg_account_parse(&back, D0, bad[i], strlen(bad[i]), &err) == HVS_ESERDE,
                  "'%s' refused", bad[i]);
    HVS_CHECK(agg_account_parse(&back, D0 + 1, "0", 1, &err) == HVS_ESERDE, "not a midnight");
    agg_account_fini(&acc);
    agg_account_fini(&back);
}

static void test_forget(void) {
    agg_account_t acc = {0};
    double delta;
    for (int d = 0; d < 4; d++)
        agg_account_set(&acc, D0 + d * 24 * HOUR + HOUR, 1, 0, &delta);
    hvs_ms_t dropped[8];
    /* the horizon in day 2: days 0 and 1 ended before it */
    size_t k = agg_account_forget(&acc, D0 + 2 * 24 * HOUR + 5 * HOUR, dropped, 8);
    HVS_CHECK(k == 2 && dropped[0] == D0 && dropped[1] == D0 + 24 * HOUR, "%zu dropped", k);
    HVS_CHECK(acc.n == 2 && acc.d[0].day == D0 + 2 * 24 * HOUR, "days 2 and 3 kept");
    agg_account_fini(&acc);
}

int main(int argc, char **argv) {
    static const hvs_test_case_t cases[] = {
        {"revision_replaces_its_hour", test_revision_replaces_its_hour},
        {"closed_days_only", test_closed_days_only},
        {"stored_text", test_stored_text},
        {"forget", test_forget},
        HVS_TEST_CASES_END,
    };
    return hvs_test_main(cases, argc, argv);
}
