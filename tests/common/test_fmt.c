/* test_fmt - exact, short number text: every double comes back bit for bit through strtod
 * (random bit patterns, meter-like decimals, -0, subnormals, huge, non-finite), meter values
 * are short ("55464.1", not 17 digits), and int64 extremes; the growing text buffer's contents
 * across reallocations. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/fmt.h"
#include "hvs_test.h"

static int roundtrips(double v) {
    char buf[HVS_FMT_MAX + 1];
    size_t n = hvs_fmt_double(buf, v);
    buf[n] = 0;
    double back = strtod(buf, NULL);
    if (isnan(v))
        return isnan(back);
    return memcmp(&back, &v, sizeof v) == 0;
}

static const char *fmt(double v) {
    static char buf[HVS_FMT_MAX + 1];
    buf[hvs_fmt_double(buf, v)] = 0;
    return buf;
}

/* Any double, meter-like ones and specials come back bit for bit through strtod. */
static void test_roundtrip(void) {
    uint64_t x = 88172645463325252ull;
    int bad = 0, n = 0;
    for (int i = 0; i < 50000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof v); /* any bit pattern, NaNs and subnormals included */
        bad += !roundtrips(v);
        double m = (double)(int64_t)(x % 2000000000) / 10.0; /* meter-like */
        bad += !roundtrips(m);
        bad += !roundtrips(m / 1000.0);
        n += 3;
    }
    HVS_CHECK(bad == 0, "%d of %d values did not round-trip", bad, n);
    double specials[] = {0.0,          -0.0,     1e-320,
                         -5e-324,      1e300,    -1.7976931348623157e308,
                         0.1,          1e12,     999999999999.9999,
                         123456.78901, INFINITY, -INFINITY,
                         NAN};
    for (size_t i = 0; i < sizeof specials / sizeof *specials; i++)
        HVS_CHECK(roundtrips(specials[i]), "special %zu: %s", i, fmt(specials[i]));
}

/* The short text of a few doubles and of the int64 extremes. */
static void test_text(void) {
    HVS_CHECK_EQ_STR(fmt(55464.1), "55464.1");
    HVS_CHECK_EQ_STR(fmt(-0.25), "-0.25");
    HVS_CHECK_EQ_STR(fmt(21.0), "21");
    HVS_CHECK_EQ_STR(fmt(-0.0), "-0");
    HVS_CHECK_EQ_STR(fmt(NAN), "nan");
    HVS_CHECK_EQ_STR(fmt(-INFINITY), "-inf");
    char b[HVS_FMT_MAX + 1];
    b[hvs_fmt_int64(b, INT64_MIN)] = 0;
    HVS_CHECK_EQ_STR(b, "-9223372036854775808");
    b[hvs_fmt_int64(b, INT64_MAX)] = 0;
    HVS_CHECK_EQ_STR(b, "9223372036854775807");
    b[hvs_fmt_int64(b, 0)] = 0;
    HVS_CHECK_EQ_STR(b, "0");
}

/* the growing buffer: from nothing, across many reallocations, exact contents */
static void test_strbuf(void) {
    hvs_strbuf_t sb = {0};
    char want[8192];
    size_t wl = 0;
    for (int i = 0; i < 1000; i++) {
        hvs_strbuf_printf(&sb, "%d,", i);
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "%d,", i);
    }
    HVS_CHECK(!sb.oom && sb.len == wl && strcmp(sb.p, want) == 0 && sb.cap > sb.len,
              "strbuf: %zu bytes", sb.len);
    free(sb.p);
    hvs_strbuf_t c = {malloc(4), 0, 4, false};
    hvs_strbuf_printf(&c, "%s", "longer than four");
    HVS_CHECK(!c.oom && strcmp(c.p, "longer than four") == 0, "strbuf from a small malloc'd start");
    free(c.p);
}

static const hvs_test_case_t cases[] = {
    {"roundtrip", test_roundtrip},
    {"text", test_text},
    {"strbuf", test_strbuf},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
