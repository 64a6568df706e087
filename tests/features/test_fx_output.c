/*
 * test_fx_output - FeatureVector encoding: the direct writer is in use on the current schema
 * (it matched avro-c at start), and what it writes decodes, through the generic decoder, to the
 * vector given: ids, null apartment for the building, times, version, every name in order,
 * every value (NaN kept), target or null, flags; for random vectors, not only the start-up
 * samples.
 */
#include <math.h>

#include "hvs/featstore.h"
#include "hvs/serde.h"
#include "hvs_test.h"
#include "vectors.h"

static double rnd(uint64_t *x) {
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return (double)(*x >> 11) / 9007199254740992.0;
}

/* 500 random vectors (NaNs, long ids, every flag) encoded by the direct writer decode to
 * themselves with avro-c. */
static void test_random_vectors(void) {
    hvs_serde_t *s;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_serde_new(NULL, &s, &err) == 0, "serde");
    fx_output_t *o;
    HVS_REQUIRE(fx_output_new(s, "features.hourly", &o, &err) == 0, "output: %s", err.msg);
    HVS_CHECK(fx_output_direct(o), "direct writer in use");
    hvs_decoder_t *dec;
    HVS_REQUIRE(hvs_decoder_new(s, HVS_SCHEMA_FEATURE_VECTOR, &dec, &err) == 0, "decoder");
    uint64_t x = 99;
    int bad = 0;
    for (int k = 0; k < 500; k++) {
        double vals[HVS_FEATURES_COUNT];
        for (int i = 0; i < HVS_FEATURES_COUNT; i++)
            vals[i] = rnd(&x) < 0.2 ? NAN : (rnd(&x) - 0.5) * pow(10, (int)(rnd(&x) * 12) - 4);
        char bld[64], apt[300];
        snprintf(bld, sizeof bld, "bldg_%d", k);
        int alen = (int)(rnd(&x) * 250);
        memset(apt, 'a', (size_t)alen + 1);
        apt[alen + 1] = 0;
        bool building = k % 3 == 0;
        fx_vector_t v = {.building = bld,
                         .entity = building ? HVS_FS_BUILDING : apt,
                         .hour = (hvs_ms_t)(rnd(&x) * 4e12) - 1000000000000LL,
                         .as_of = (hvs_ms_t)(rnd(&x) * 4e12),
                         .x = vals,
                         .flags = (unsigned)(rnd(&x) * 32),
                         .target = k % 4 == 0 ? NAN : rnd(&x) * 9};
        const void *buf;
        size_t len;
        avro_value_t *dv;
        if (fx_output_encode(o, &v, &buf, &len, &err) ||
            hvs_decoder_decode(dec, buf, len, &dv, &err)) {
            bad++;
            fprintf(stderr, "vector %d: %s\n", k, err.msg);
            continue;
        }
        avro_value_t f, b, item;
        const char *str;
        size_t sl;
        int64_t l;
        double d;
        avro_value_get_by_name(dv, "building_id", &f, NULL);
        avro_value_get_string(&f, &str, &sl);
        int ok = strcmp(str, bld) == 0;
        avro_value_get_by_name(dv, "apartment_id", &f, NULL);
        avro_value_get_current_branch(&f, &b);
        if (building)
            ok &= avro_value_get_type(&b) == AVRO_NULL;
        else
            ok &= avro_value_get_string(&b, &str, &sl) == 0 && strcmp(str, apt) == 0;
        avro_value_get_by_name(dv, "target_hour", &f, NULL);
        ok &= avro_value_get_long(&f, &l) == 0 && l == v.hour;
        avro_value_get_by_name(dv, "as_of", &f, NULL);
        ok &= avro_value_get_long(&f, &l) == 0 && l == v.as_of;
        avro_value_get_by_name(dv, "feature_set_version", &f, NULL);
        ok &= avro_value_get_string(&f, &str, &sl) == 0 && strcmp(str, hvs_features_version()) == 0;
        size_t n;
        avro_value_get_by_name(dv, "names", &f, NULL);
        ok &= avro_value_get_size(&f, &n) == 0 && n == HVS_FEATURES_COUNT;
        for (size_t i = 0; ok && i < n; i++)
            ok &= avro_value_get_by_index(&f, i, &item, NULL) == 0 &&
                  avro_value_get_string(&item, &str, &sl) == 0 &&
                  strcmp(str, hvs_features_names()[i]) == 0;
        avro_value_get_by_name(dv, "values", &f, NULL);
        ok &= avro_value_get_size(&f, &n) == 0 && n == HVS_FEATURES_COUNT;
        for (size_t i = 0; ok && i < n; i++)
            ok &= avro_value_get_by_index(&f, i, &item, NULL) == 0 &&
                  avro_value_get_double(&item, &d) == 0 &&
                  (d == vals[i] || (isnan(d) && isnan(vals[i])));
        avro_value_get_by_name(dv, "target", &f, NULL);
        avro_value_get_current_branch(&f, &b);
        if (isnan(v.target))
            ok &= avro_value_get_type(&b) == AVRO_NULL;
        else
            ok &= avro_value_get_double(&b, &d) == 0 && d == v.target;
        avro_value_get_by_name(dv, "quality_flags", &f, NULL);
        avro_value_get_size(&f, &n);
        size_t want = 0;
        for (int i = 0; i < HVS_FEAT_FLAG_COUNT; i++)
            if (v.flags & (1u << i)) {
                ok &= avro_value_get_by_index(&f, want, &item, NULL) == 0 &&
                      avro_value_get_string(&item, &str, &sl) == 0 &&
                      strcmp(str, hvs_features_flag_name(i)) == 0;
                want++;
            }
        ok &= n == want;
        bad += !ok;
    }
    HVS_CHECK(bad == 0, "%d of 500 random vectors did not decode to themselves", bad);
    hvs_decoder_destroy(dec);
    fx_output_destroy(o);
    hvs_serde_destroy(s);
}

static const hvs_test_case_t cases[] = {
    {"random_vectors", test_random_vectors},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
