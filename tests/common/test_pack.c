/*
 * test_pack - compact varints, doubles and floats (pack.h): every double and float reads back
 * bit for bit (NaN payloads, -0, infinities, subnormals, short decimals and long ones); the byte
 * counts the header documents (21.5: 2, 75475.7: 4, 1.6000000000058208: 7, at most 9; a float's
 * 21.3 and NaN 1-2, a computed mean 5, at most 5); varints of every size round-trip; truncated
 * and overlong values are refused; a short buffer is never written past and counts what is
 * needed.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "hvs/pack.h"
#include "hvs_test.h"

static size_t size_of(double v) {
    size_t n = 0;
    hvs_pack_put_double(NULL, 0, &n, v);
    return n;
}

static void test_doubles(void) {
    uint64_t nan_payload = 0x7ff8000000000123ull;
    double quiet;
    memcpy(&quiet, &nan_payload, sizeof quiet);
    const double v[] = {0.0,    -0.0,    21.5,    75475.7,  1.6000000000058208, -3.125, 0.1 + 0.2,
                        1e300,  -1e-300, 5e-324,  INFINITY, -INFINITY,          NAN,    quiet,
                        8.9e15, -8.9e15, 123.456, 0.001};
    char buf[16 * 32];
    size_t n = 0;
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        hvs_pack_put_double(buf, sizeof buf, &n, v[i]);
    HVS_REQUIRE(n <= sizeof buf, "fits");
    const unsigned char *p = (const unsigned char *)buf, *end = p + n;
    int same = 0;
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        double got;
        same += hvs_pack_get_double(&p, end, &got) == 0 && memcmp(&got, &v[i], sizeof got) == 0;
    }
    HVS_CHECK(same == (int)(sizeof v / sizeof *v) && p == end, "bit for bit: %d of %zu", same,
              sizeof v / sizeof *v);
    HVS_CHECK(size_of(21.5) == 2 && size_of(75475.7) == 4 && size_of(1.6000000000058208) == 7,
              "documented sizes: %zu %zu %zu", size_of(21.5), size_of(75475.7),
              size_of(1.6000000000058208));
    size_t most = 0;
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        most = size_of(v[i]) > most ? size_of(v[i]) : most;
    HVS_CHECK(most <= HVS_PACK_DOUBLE_MAX, "at most %d bytes: %zu", HVS_PACK_DOUBLE_MAX, most);
    /* every truncation of a raw double is refused */
    char raw[16];
    size_t rn = 0;
    hvs_pack_put_double(raw, sizeof raw, &rn, 1.6000000000058208);
    int refused = 0;
    for (size_t k = 0; k < rn; k++) {
        const unsigned char *q = (const unsigned char *)raw;
        double got;
        refused += hvs_pack_get_double(&q, q + k, &got) != 0;
    }
    HVS_CHECK(refused == (int)rn, "truncations refused: %d of %zu", refused, rn);
    /* a short buffer: nothing past cap, the length needed counted */
    char small[4] = {'x', 'x', 'x', 'x'};
    size_t sn = 0;
    hvs_pack_put_double(small, 2, &sn, 1.6000000000058208);
    HVS_CHECK(sn == 7 && small[2] == 'x' && small[3] == 'x', "short buffer untouched past cap");
}

static size_t float_size(float v) {
    size_t n = 0;
    hvs_pack_put_float(NULL, 0, &n, v);
    return n;
}

static void test_floats(void) {
    uint32_t payload = 0x7fc00123u, neg_nan = 0xffc00000u;
    float quiet, indefinite;
    memcpy(&quiet, &payload, sizeof quiet);
    memcpy(&indefinite, &neg_nan, sizeof indefinite);
    const float v[] = {0.0f,      -0.0f,         21.3f,          21.283333f, 0.347f,    -3.125f,
                       1e30f,     -1e-30f,       1e-45f,         INFINITY,   -INFINITY, NAN,
                       quiet,     indefinite,    16777215.f,     16777216.f, 0.1f,      -16.25f,
                       1234.567f, 167772.15625f, -167772.15625f, 1677721.5f};
    size_t count = sizeof v / sizeof *v;
    char buf[16 * 32];
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        hvs_pack_put_float(buf, sizeof buf, &n, v[i]);
    HVS_REQUIRE(n <= sizeof buf, "fits");
    const unsigned char *p = (const unsigned char *)buf, *end = p + n;
    int same = 0;
    for (size_t i = 0; i < count; i++) {
        float got;
        same += hvs_pack_get_float(&p, end, &got) == 0 && memcmp(&got, &v[i], sizeof got) == 0;
    }
    HVS_CHECK(same == (int)count && p == end, "bit for bit: %d of %zu", same, count);
    HVS_CHECK(float_size(21.3f) == 2 && float_size(NAN) == 1 && float_size(21.283333f) == 5 &&
                  float_size(0.347f) == 2 && float_size(-0.0f) == 2,
              "documented sizes: %zu %zu %zu %zu %zu", float_size(21.3f), float_size(NAN),
              float_size(21.283333f), float_size(0.347f), float_size(-0.0f));
    size_t most = 0;
    for (size_t i = 0; i < count; i++)
        most = float_size(v[i]) > most ? float_size(v[i]) : most;
    HVS_CHECK(most == HVS_PACK_FLOAT_MAX, "at most %d bytes: %zu", HVS_PACK_FLOAT_MAX, most);
    /* every truncation of a raw float is refused; so are tags it never writes */
    char raw[8];
    size_t rn = 0;
    hvs_pack_put_float(raw, sizeof raw, &rn, 21.283333f);
    int refused = 0;
    for (size_t k = 0; k < rn; k++) {
        const unsigned char *q = (const unsigned char *)raw;
        float got;
        refused += hvs_pack_get_float(&q, q + k, &got) != 0;
    }
    HVS_CHECK(refused == (int)rn, "truncations refused: %d of %zu", refused, rn);
    const unsigned char bad[][5] = {
        {6}, {7}, {13}, {0x24, 0, 0, 0, 0}, {0x80, 0x80, 0x80, 0x80, 0x01}};
    int bad_refused = 0;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const unsigned char *q = bad[i];
        float got;
        bad_refused += hvs_pack_get_float(&q, bad[i] + sizeof bad[i], &got) != 0;
    }
    HVS_CHECK(bad_refused == (int)(sizeof bad / sizeof *bad), "unwritten forms refused: %d",
              bad_refused);
    char small[4] = {'x', 'x', 'x', 'x'};
    size_t sn = 0;
    hvs_pack_put_float(small, 2, &sn, 21.283333f);
    HVS_CHECK(sn == 5 && small[2] == 'x' && small[3] == 'x', "short buffer untouched past cap");
}

static void test_varints(void) {
    const uint64_t v[] = {0, 1, 127, 128, 16383, 16384, UINT32_MAX, (uint64_t)1 << 56, UINT64_MAX};
    char buf[128];
    size_t n = 0;
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        hvs_pack_put_varint(buf, sizeof buf, &n, v[i]);
    const unsigned char *p = (const unsigned char *)buf, *end = p + n;
    int same = 0;
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        uint64_t got;
        same += hvs_pack_get_varint(&p, end, &got) == 0 && got == v[i];
    }
    HVS_CHECK(same == (int)(sizeof v / sizeof *v) && p == end, "varints: %d", same);
    HVS_CHECK(n == 1 + 1 + 1 + 2 + 2 + 3 + 5 + 9 + 10, "LEB128 sizes: %zu bytes", n);
    const unsigned char over[11] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0};
    const unsigned char *q = over;
    uint64_t got;
    HVS_CHECK(hvs_pack_get_varint(&q, over + sizeof over, &got) != 0, "over 64 bits refused");
    q = over;
    HVS_CHECK(hvs_pack_get_varint(&q, over + 3, &got) != 0, "truncated varint refused");
}

static const hvs_test_case_t cases[] = {
    {"doubles", test_doubles},
    {"floats", test_floats},
    {"varints", test_varints},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
