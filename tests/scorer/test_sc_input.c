/*
 * test_sc_input - the scorer's two FeatureVector readers agree: 300 random vectors (NaN values,
 * long and unicode ids, apartment null or not, target null or not, flags, revisions, infinite
 * values, another feature set) encoded by avro-c give the same sc_vector_t, or the same refusal,
 * through the direct reader (sc_input_vector_bytes) and through avro-c's generic decode
 * (sc_input_vector); every cut of a valid record and every flipped byte is refused or read the
 * same way by both, and never crashes.
 */
#include <math.h>
#include <string.h>

#include "hvs/features.h"
#include "hvs/serde.h"
#include "hvs_test.h"
#include "input.h"

static hvs_serde_t *serde;
static hvs_encoder_t *enc;
static hvs_decoder_t *dec, *dec2;
static sc_input_t *in;

#define NOW 1733100000000LL

static uint64_t rng = 12345;
static double rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void encode(const void **buf, size_t *len, int variant) {
    hvs_err_t err = {0};
    avro_value_t *v = hvs_encoder_value(enc), f, item, br;
    char bld[300], apt[64];
    size_t bl = 1 + (size_t)(rnd() * (variant % 17 == 0 ? 280 : 20));
    for (size_t i = 0; i < bl; i++)
        bld[i] = (char)('a' + (int)(rnd() * 26));
    bld[bl] = 0;
    if (variant % 13 == 0)
        snprintf(bld, sizeof bld, "b\xc3\xa9timent_%d", variant); /* UTF-8 */
    snprintf(apt, sizeof apt, "apt_%d", variant);
    bool apt_null = variant % 5 == 0, target_null = variant % 7 == 0;
    int bad = avro_value_get_by_name(v, "building_id", &f, NULL) ||
              avro_value_set_string(&f, bld) ||
              avro_value_get_by_name(v, "apartment_id", &f, NULL) ||
              avro_value_set_branch(&f, apt_null ? 0 : 1, &br) ||
              (apt_null ? avro_value_set_null(&br) : avro_value_set_string(&br, apt)) ||
              avro_value_get_by_name(v, "target_hour", &f, NULL) ||
              avro_value_set_long(&f, (NOW / 3600000LL - 1 - (int)(rnd() * 50)) * 3600000LL) ||
              avro_value_get_by_name(v, "as_of", &f, NULL) || avro_value_set_long(&f, NOW) ||
              avro_value_get_by_name(v, "feature_set_version", &f, NULL) ||
              avro_value_set_string(&f,
                                    variant % 23 == 0 ? "fs-9-00000000" : hvs_features_version()) ||
              avro_value_get_by_name(v, "target", &f, NULL) ||
              avro_value_set_branch(&f, target_null ? 0 : 1, &br) ||
              (target_null ? avro_value_set_null(&br) : avro_value_set_double(&br, rnd() * 3)) ||
              avro_value_get_by_name(v, "revision", &f, NULL) ||
              avro_value_set_int(&f, (int)(rnd() * 10));
    for (int k = 0; !bad && k < (int)(rnd() * 3); k++)
        bad = avro_value_get_by_name(v, "quality_flags", &f, NULL) ||
              avro_value_append(&f, &item, NULL) || avro_value_set_string(&item, "lag_24_missing");
    int n = variant % 29 == 0 ? HVS_FEATURES_COUNT - 1 : HVS_FEATURES_COUNT;
    for (int k = 0; !bad && k < n; k++) {
        double x = rnd() < 0.2 ? NAN : (rnd() - 0.5) * 100;
        if (variant % 19 == 0 && k == 7)
            x = -INFINITY;
        bad = avro_value_get_by_name(v, "names", &f, NULL) || avro_value_append(&f, &item, NULL) ||
              avro_value_set_string(&item, hvs_features_names()[k]) ||
              avro_value_get_by_name(v, "values", &f, NULL) || avro_value_append(&f, &item, NULL) ||
              avro_value_set_double(&item, x);
    }
    HVS_REQUIRE(!bad && hvs_encoder_encode(enc, buf, len, &err) == 0, "encode: %s", err.msg);
}

static bool same_vector(const sc_vector_t *a, const sc_vector_t *b) {
    return strcmp(a->building, b->building) == 0 && strcmp(a->apartment, b->apartment) == 0 &&
           a->hour == b->hour && a->as_of == b->as_of && a->revision == b->revision &&
           memcmp(&a->target, &b->target, sizeof a->target) == 0 &&
           memcmp(a->x, b->x, sizeof a->x) == 0;
}

/* Both readers on the same bytes: the same outcome (vector or reason). */
static int compare(const void *buf, size_t len, const char *what) {
    static sc_vector_t va, vb;
    memset(&va, 0x5a, sizeof va), memset(&vb, 0x5a, sizeof vb);
    hvs_err_t ea = {0}, eb = {0};
    int ra = sc_input_vector_bytes(in, dec, buf, len, NOW, 86400000, &va, &ea);
    avro_value_t *v;
    int rb = hvs_decoder_decode(dec2, buf, len, &v, &eb);
    if (rb == 0)
        rb = sc_input_vector(in, v, NOW, 86400000, &vb, &eb);
    bool ok = (ra == 0) == (rb == 0) &&
              (ra == 0 ? same_vector(&va, &vb) : strcmp(ea.reason, eb.reason) == 0);
    HVS_CHECK(ok, "%s: direct %d (%s), generic %d (%s)", what, ra, ea.reason, rb, eb.reason);
    return ra;
}

static void test_random_vectors(void) {
    int accepted = 0, refused = 0;
    uint64_t direct0 = sc_input_direct(in);
    for (int i = 0; i < 300; i++) {
        const void *buf;
        size_t len;
        encode(&buf, &len, i);
        char what[32];
        snprintf(what, sizeof what, "vector %d", i);
        if (compare(buf, len, what) == 0)
            accepted++;
        else
            refused++;
    }
    HVS_CHECK(accepted > 200 && refused > 20, "%d accepted, %d refused", accepted, refused);
    HVS_CHECK(sc_input_direct(in) - direct0 >= 290, "the direct reader read them: %llu",
              (unsigned long long)(sc_input_direct(in) - direct0));
}

static void test_cuts_and_flips(void) {
    const void *buf;
    size_t len;
    encode(&buf, &len, 1);
    unsigned char *copy = malloc(len);
    HVS_REQUIRE(copy, "oom");
    memcpy(copy, buf, len);
    for (size_t cut = 0; cut < len; cut++) { /* every truncation */
        char what[32];
        snprintf(what, sizeof what, "cut at %zu", cut);
        HVS_CHECK(compare(copy, cut, what) != 0, "%s accepted", what);
    }
    for (size_t i = 5; i < len; i += 3) { /* flipped bytes: read alike or refused alike */
        unsigned char keep = copy[i];
        copy[i] ^= 0xff;
        char what[32];
        snprintf(what, sizeof what, "flip at %zu", i);
        compare(copy, len, what);
        copy[i] = keep;
    }
    free(copy);
}

static void setup(void) {
    hvs_err_t err = {0};
    HVS_REQUIRE(
        hvs_serde_new(NULL, &serde, &err) == 0 &&
            hvs_encoder_new(serde, HVS_SCHEMA_FEATURE_VECTOR, "features.hourly", &enc, &err) == 0 &&
            hvs_decoder_new(serde, HVS_SCHEMA_FEATURE_VECTOR, &dec, &err) == 0 &&
            hvs_decoder_new(serde, HVS_SCHEMA_FEATURE_VECTOR, &dec2, &err) == 0 &&
            sc_input_new(serde, &in, &err) == 0,
        "setup: %s", err.msg);
}

static void teardown(void) {
    sc_input_destroy(in);
    hvs_decoder_destroy(dec);
    hvs_decoder_destroy(dec2);
    hvs_encoder_destroy(enc);
    hvs_serde_destroy(serde);
}

static void run(void) {
    setup();
    test_random_vectors();
    test_cuts_and_flips();
    teardown();
}

static const hvs_test_case_t cases[] = {
    {"direct_reader_agrees", run},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
