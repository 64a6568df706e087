/*
 * test_model_registry - what hvs_registry_load_record decodes of a record besides the model,
 * without a broker (the registry's serving life is test_model_registry_it): the training
 * profile on the ref, per feature in the record's column order, equals what was encoded bit
 * for bit (quantiles, probabilities, missing rate; duplicate edges kept as they are); a
 * feature the trainer never saw (every quantile NaN) keeps its missing rate without
 * quantiles; a feature with no entry, and entries that are not a profile (probabilities
 * not ascending, quantiles decreasing, arrays of different lengths, a missing rate above 1)
 * have none; an entry naming no column is ignored, and a repeated name takes the later
 * entry. None of it refuses the version, and a drift monitor takes the ref's profile as it is.
 * And hvs_joint_histogram_bracketed (the forecaster's alert rule) against rows counted by hand.
 */
#include <math.h>

#include "hvs/drift.h"
#include "hvs/model.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs_test.h"

enum { NF = 9 };

static const char *feats[NF] = {"temperature_c", "hour",         "use_lag_24",
                                "hdh",           "is_weekend",   "err_lag_1",
                                "wind_speed_ms", "humidity_pct", "cloud_cover_pct"};

static const double p7[7] = {0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99};
static const double q_temp[7] = {-12.3, -7.25, 0.1, 4.4, 11.000000000000002, 21.5, 27.75};
static const double q_hour[7] = {0, 0, 6, 12, 18, 23, 23}; /* duplicate edges stay */
static const double q_nan[7] = {NAN, NAN, NAN, NAN, NAN, NAN, NAN};
static const double p_desc[3] = {0.9, 0.5, 0.1}, q3[3] = {1, 2, 3};
static const double q_err_first[2] = {-1, 1}, q_err[3] = {-0.5, 0, 0.5}, p3[3] = {0.1, 0.5, 0.9};
static const double q_dec[3] = {3, 2, 1};

/* Encode a linear record over feats with profile prof (np entries) and load it. */
static hvs_model_ref_t *load(const hvs_feature_profile_t *prof, size_t np) {
    hvs_serde_t *serde = NULL;
    hvs_encoder_t *enc = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_MODEL_VERSION, "models", &enc, &err) == 0,
                "serde: %s", err.msg);
    double coef[NF + 1] = {1.5};
    hvs_model_t *m = NULL;
    unsigned char *raw = NULL, *z = NULL;
    size_t rl = 0, zl = 0;
    HVS_REQUIRE(hvs_model_linear_new(NF, -1, 1, NULL, coef, &m, &err) == 0 &&
                    hvs_model_save(m, &raw, &rl, &err) == 0 &&
                    hvs_zlib_compress(raw, rl, &z, &zl, &err) == 0,
                "model: %s", err.msg);
    hvs_model_record_t rec = {.name = "refresh/global",
                              .version = 1,
                              .status = HVS_MODEL_APPROVED,
                              .features = feats,
                              .nfeatures = NF,
                              .train_start = 1,
                              .train_end = 2,
                              .created_at = 3,
                              .metrics = {NAN, NAN, NAN, NAN, NAN, NAN, -1},
                              .profile = prof,
                              .nprofile = np,
                              .model_format = HVS_MODEL_FORMAT_LINEAR,
                              .model = z,
                              .model_len = zl,
                              .decided_at = HVS_MS_NONE};
    const void *buf = NULL;
    size_t len = 0;
    hvs_model_ref_t *ref = NULL;
    HVS_REQUIRE(hvs_registry_encode(serde, enc, &rec, &buf, &len, &err) == 0, "encode: %s",
                err.msg);
    HVS_REQUIRE(hvs_registry_load_record(serde, buf, len, &ref, &err) == 0, "load: %s", err.msg);
    hvs_encoder_destroy(enc);
    hvs_serde_destroy(serde);
    hvs_model_destroy(m);
    free(raw);
    free(z);
    return ref;
}

static bool same_doubles(const double *a, const double *b, size_t n) {
    return n == 0 || (a && b && memcmp(a, b, n * sizeof *a) == 0);
}

static void check_feature(const hvs_model_ref_t *r, size_t i, const double *q, const double *p,
                          size_t nq, double mr) {
    const hvs_feature_profile_t *f = &r->profile[i];
    HVS_CHECK(f->name && strcmp(f->name, feats[i]) == 0, "%s: profiled", feats[i]);
    HVS_CHECK(f->nq == nq && same_doubles(f->quantiles, q, nq) &&
                  same_doubles(f->probabilities, p, nq) && f->missing_rate == mr,
              "%s: %zu quantiles (expected %zu), missing rate %.17g (expected %.17g), values "
              "bit-exact",
              feats[i], f->nq, nq, f->missing_rate, mr);
}

static void check_none(const hvs_model_ref_t *r, size_t i) {
    const hvs_feature_profile_t *f = &r->profile[i];
    HVS_CHECK(!f->name && f->nq == 0 && !f->quantiles && !f->probabilities && f->missing_rate == 0,
              "%s: no profile (name %s, nq %zu)", feats[i], f->name ? f->name : "NULL", f->nq);
}

static void test_profile_read_back(void) {
    const hvs_feature_profile_t prof[] = {
        {"wind_speed_ms", q_err, p3, 3, 0.0}, /* replaced below */
        {"hour", q_hour, p7, 7, 0.0},           {"temperature_c", q_temp, p7, 7, 0.013},
        {"use_lag_24", q_nan, p7, 7, 1.0},      {"hdh", q3, p_desc, 3, 0.0},
        {"err_lag_1", q_err_first, p3, 2, 0.5}, /* replaced below */
        {"not_a_column", q3, p3, 3, 0.0},       {"err_lag_1", q_err, p3, 3, 0.25},
        {"wind_speed_ms", q_dec, p3, 3, 0.0}, /* quantiles decreasing: unusable, clears it */
        {"humidity_pct", q3, p3, 2, 1.5},     /* missing rate above 1 */
        {"cloud_cover_pct", q3, p3, 3, 0.0},
    };
    hvs_model_ref_t *r = load(prof, sizeof prof / sizeof prof[0]);
    HVS_REQUIRE(r->profile && r->nfeatures == NF, "a profile of %d columns", NF);
    check_feature(r, 0, q_temp, p7, 7, 0.013);
    check_feature(r, 1, q_hour, p7, 7, 0.0);
    check_feature(r, 2, NULL, NULL, 0, 1.0);
    check_none(r, 3); /* probabilities descending */
    check_none(r, 4); /* no entry */
    check_feature(r, 5, q_err, p3, 3, 0.25);
    check_none(r, 6);
    check_none(r, 7);
    check_feature(r, 8, q3, p3, 3, 0.0);
    HVS_CHECK(r->probe[1] == 12 && r->probe[0] == 4.4, "the probe is still the medians: %g %g",
              r->probe[1], r->probe[0]);
    /* what the scorer will do with it: a drift monitor straight from the ref */
    hvs_drift_t *d = NULL;
    hvs_err_t err = {0};
    HVS_CHECK(hvs_drift_new(r->profile, r->nfeatures, 24 * HVS_MS_HOUR, 1, &d, &err) == 0,
              "a drift monitor over the ref's profile: %s", err.msg);
    HVS_CHECK(d && hvs_drift_bins(d, 1, NULL, NULL) == 6 && hvs_drift_bins(d, 3, NULL, NULL) == 0,
              "hour has 6 value bins (5 distinct edges), hdh none");
    hvs_drift_destroy(d);
    hvs_registry_release(r);

    /* no profile at all: every column without one, and the version still loads */
    r = load(NULL, 0);
    for (size_t i = 0; i < NF; i++)
        check_none(r, i);
    hvs_registry_release(r);
}

/* Arrays of different lengths cannot be written through hvs_registry_encode (one nq for both):
 * the probabilities array is cut in the decoded value instead. */
static void test_profile_length_mismatch(void) {
    hvs_serde_t *serde = NULL;
    hvs_encoder_t *enc = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_serde_new(NULL, &serde, &err) == 0 &&
                    hvs_encoder_new(serde, HVS_SCHEMA_MODEL_VERSION, "models", &enc, &err) == 0,
                "serde: %s", err.msg);
    double coef[2] = {1, 0};
    hvs_model_t *m = NULL;
    unsigned char *raw = NULL, *z = NULL;
    size_t rl = 0, zl = 0;
    HVS_REQUIRE(hvs_model_linear_new(1, -1, 1, NULL, coef, &m, &err) == 0 &&
                    hvs_model_save(m, &raw, &rl, &err) == 0 &&
                    hvs_zlib_compress(raw, rl, &z, &zl, &err) == 0,
                "model: %s", err.msg);
    const char *one[1] = {"hour"};
    const hvs_feature_profile_t prof[1] = {{"hour", q3, p3, 3, 0.0}};
    hvs_model_record_t rec = {.name = "refresh/global",
                              .version = 1,
                              .status = HVS_MODEL_APPROVED,
                              .features = one,
                              .nfeatures = 1,
                              .metrics = {NAN, NAN, NAN, NAN, NAN, NAN, -1},
                              .profile = prof,
                              .nprofile = 1,
                              .model_format = HVS_MODEL_FORMAT_LINEAR,
                              .model = z,
                              .model_len = zl,
                              .decided_at = HVS_MS_NONE};
    const void *buf = NULL;
    size_t len = 0;
    HVS_REQUIRE(hvs_registry_encode(serde, enc, &rec, &buf, &len, &err) == 0, "encode: %s",
                err.msg);
    /* Avro writes the probabilities as a block count 3 (zigzag 0x06), three doubles and the
     * end 0x00: drop the third double and count 2, and the record is one double shorter */
    unsigned char *b = malloc(len);
    HVS_REQUIRE(b, "oom");
    memcpy(b, buf, len);
    size_t at = SIZE_MAX;
    for (size_t i = 0; i + 1 + 24 <= len && at == SIZE_MAX; i++)
        if (b[i] == 0x06 && memcmp(b + i + 1, &p3[0], 8) == 0 &&
            memcmp(b + i + 9, &p3[1], 8) == 0 && memcmp(b + i + 17, &p3[2], 8) == 0)
            at = i;
    HVS_REQUIRE(at != SIZE_MAX, "found the probabilities in the record");
    b[at] = 0x04; /* count 2 (zigzag) */
    memmove(b + at + 17, b + at + 25, len - (at + 25));
    size_t nlen = len - 8;
    hvs_model_ref_t *r = NULL;
    int rc = hvs_registry_load_record(serde, b, nlen, &r, &err);
    HVS_CHECK(rc == 0 && r, "a profile of different lengths still loads: %s", err.msg);
    if (r) {
        HVS_CHECK(!r->profile[0].name && r->profile[0].nq == 0,
                  "hour: no profile when its arrays differ in length (nq %zu)", r->profile[0].nq);
        hvs_registry_release(r);
    }
    free(b);
    free(raw);
    free(z);
    hvs_model_destroy(m);
    hvs_encoder_destroy(enc);
    hvs_serde_destroy(serde);
}

/* hvs_joint_histogram_bracketed against rows counted one by one: a hand-made histogram of
 * winter nights (cold, dark) and summer days (warm, sunny), and points inside and beyond it. */
static void test_joint_histogram_bracketed(void) {
    double te[] = {-30, -10, 0, 10, 20, 40}, ge[] = {0, 100, 400, 1000};
    int64_t counts[5 * 3] = {0};
    hvs_joint_histogram_t h = {te, ge, 6, 4, counts, 0};
    /* rows: (t bin, g bin, count) */
    static const int rows[][3] = {{1, 0, 500}, {2, 0, 300}, {2, 1, 40}, {3, 1, 200},
                                  {3, 2, 150}, {4, 2, 400}, {0, 0, 3}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        counts[rows[i][0] * 3 + rows[i][1]] += rows[i][2];
        h.total += rows[i][2];
    }
    static const double pts[][2] = {{-5, 50}, {5, 600}, {-5, 600},   {-25, 800}, {35, 900},
                                    {-25, 0}, {15, 50}, {-40, 2000}, {60, -100}, {0, 100}};
    for (size_t k = 0; k < sizeof pts / sizeof pts[0]; k++)
        for (int64_t min = 0; min <= 600; min += 50) {
            size_t a, b;
            HVS_REQUIRE(hvs_joint_histogram_count(&h, pts[k][0], pts[k][1], &a, &b) >= 0, "bin");
            int64_t lo = 0, hi = 0;
            for (size_t i = 0; i < 5; i++)
                for (size_t j = 0; j < 3; j++) {
                    lo += i <= a && j <= b ? counts[i * 3 + j] : 0;
                    hi += i >= a && j >= b ? counts[i * 3 + j] : 0;
                }
            int64_t below = -1, above = -1;
            int r = hvs_joint_histogram_bracketed(&h, pts[k][0], pts[k][1], min, &below, &above);
            HVS_CHECK(r == (lo >= min && hi >= min) && below == lo && above == hi,
                      "(%g, %g) min %lld: %d (%lld / %lld), rows say %lld / %lld", pts[k][0],
                      pts[k][1], (long long)min, r, (long long)below, (long long)above,
                      (long long)lo, (long long)hi);
        }
    /* frost under a strong sun: warmer and sunnier rows exist, colder and darker ones too */
    HVS_CHECK_EQ_INT(hvs_joint_histogram_bracketed(&h, -5, 600, 1, NULL, NULL), 1);
    /* colder than any winter night and sunny: nothing colder and darker but 3 rows */
    HVS_CHECK_EQ_INT(hvs_joint_histogram_bracketed(&h, -25, 800, 10, NULL, NULL), 0);
    /* hotter and sunnier than any summer day: nothing beyond */
    HVS_CHECK_EQ_INT(hvs_joint_histogram_bracketed(&h, 35, 900, 1, NULL, NULL), 1);
    HVS_CHECK_EQ_INT(hvs_joint_histogram_bracketed(&h, 35, 900, 401, NULL, NULL), 0);
    HVS_CHECK_EQ_INT(hvs_joint_histogram_bracketed(&h, NAN, 900, 1, NULL, NULL), -1);
    hvs_joint_histogram_t empty = {te, ge, 6, 4, NULL, 0};
    HVS_CHECK_EQ_INT(hvs_joint_histogram_bracketed(&empty, 0, 0, 1, NULL, NULL), -1);
}

static const hvs_test_case_t cases[] = {
    {"joint_histogram_bracketed", test_joint_histogram_bracketed},
    {"profile_read_back_per_column_bit_exact", test_profile_read_back},
    {"profile_arrays_of_different_lengths_left_out", test_profile_length_mismatch},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
