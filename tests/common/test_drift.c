/*
 * test_drift - PSI of served values against a training profile (drift.h). Profiles are made
 * here the trainer's way (sorted sample, value at round(p * (n - 1)), the trainer's seven
 * probabilities) from seeded samples: a normal feature, a 0/1 flag (30 % ones), a feature that
 * is 0 six times in ten and spread above, and one without a profile.
 *  - served values drawn like the training sample: PSI < 0.05 for every profiled feature
 *    (2000 rows, 2 % missing), the flag and the zero-heavy one included (their duplicate
 *    edges are point masses);
 *  - shifted by +2 standard deviations: > 0.2; a feature turned constant 0 where the profile
 *    had a spread (the fillna(0) story): > 0.2; a feature all missing where the profile had
 *    1 %: > 0.2; the feature without a profile: NaN;
 *  - a 3-bin profile by hand (values on the edges included, the missing bin empty on both
 *    sides): the PSI equals the formula written out here; a profile with a run of equal
 *    quantiles: the bins and their expected shares worked out by hand, a value equal to the
 *    point mass in its bin;
 *  - fewer rows than min_count: NaN; the ring by event hour: a 24 h window counts the last 24
 *    hours only (values 24 and 25 h old do not count), a reused slot starts empty, a value
 *    older than its slot's hour is refused;
 *  - slot text: every slot encoded and decoded into a fresh monitor gives the same PSI bit for
 *    bit and the same text; another profile's text, damaged text and an older hour are refused.
 */
#include <math.h>

#include "hvs/drift.h"
#include "hvs_test.h"

static const double P7[7] = {0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double uni(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}
static double normal(void) { return sqrt(-2 * log(uni())) * cos(2 * M_PI * uni()); }

enum { F_NORMAL, F_FLAG, F_ZERO_HEAVY, F_NONE, NF };

/* One training-like value of feature f. */
static double draw(int f) {
    switch (f) {
    case F_NORMAL: return 10 + 3 * normal();
    case F_FLAG: return uni() < 0.3 ? 1 : 0;
    case F_ZERO_HEAVY: return uni() < 0.6 ? 0 : -log(uni()) * 4;
    default: return uni();
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double q_store[NF][7];
static hvs_feature_profile_t prof[NF];

/* The profile of 20000 training values per feature, 1 % missing (as tr_profile builds it). */
static void make_profile(void) {
    enum { N = 20000 };
    static double col[N];
    static const char *names[NF] = {"normal", "flag", "zero_heavy", NULL};
    for (int f = 0; f < NF; f++) {
        size_t k = 0;
        for (int i = 0; i < N; i++) {
            double v = draw(f);
            if (uni() >= 0.01)
                col[k++] = v;
        }
        qsort(col, k, sizeof *col, cmp_double);
        for (int j = 0; j < 7; j++)
            q_store[f][j] = col[(size_t)(P7[j] * (double)(k - 1) + 0.5)];
        prof[f] = (hvs_feature_profile_t){names[f], q_store[f], P7, 7, 1.0 - (double)k / N};
    }
    prof[F_NONE] = (hvs_feature_profile_t){0};
}

#define T0 (INT64_C(1735689600000)) /* 2025-01-01T00:00Z */

/* PSI after n rows at hour T0 where column f is made by gen (NaN with probability miss). */
static void served(double (*gen)(int), double miss, size_t n, double psi[NF], size_t *nv) {
    hvs_drift_t *d = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_drift_new(prof, NF, 24 * HVS_MS_HOUR, 100, &d, &err) == 0, "new: %s", err.msg);
    for (size_t i = 0; i < n; i++) {
        double row[NF];
        for (int f = 0; f < NF; f++)
            row[f] = uni() < miss ? NAN : gen(f);
        HVS_REQUIRE(hvs_drift_add(d, T0 + (hvs_ms_t)(i % 60) * HVS_MS_MINUTE, row) == 0, "add");
    }
    hvs_drift_psi(d, T0 + 30 * HVS_MS_MINUTE, psi, nv);
    hvs_drift_destroy(d);
}

static double shifted(int f) {
    static const double sd[NF] = {3, 0.46, 4, 0.29}; /* about each feature's spread */
    return draw(f) + 2 * sd[f];
}
static double zero(int f) {
    (void)f;
    return 0;
}
static double nan_all(int f) {
    (void)f;
    return NAN;
}

static void test_own_shifted_constant_missing(void) {
    make_profile();
    double psi[NF];
    size_t nv = 0;
    served(draw, 0.01, 2000, psi, &nv);
    printf("# own distribution, 2000 rows: normal %.4f, flag %.4f, zero-heavy %.4f\n",
           psi[F_NORMAL], psi[F_FLAG], psi[F_ZERO_HEAVY]);
    HVS_CHECK(nv == 2000, "2000 rows in the window: %zu", nv);
    for (int f = 0; f < F_NONE; f++)
        HVS_CHECK(psi[f] < 0.05, "%s: own distribution PSI %.4f < 0.05", prof[f].name, psi[f]);
    HVS_CHECK(isnan(psi[F_NONE]), "no profile: NaN (%g)", psi[F_NONE]);

    served(shifted, 0.01, 2000, psi, &nv);
    printf("# +2 sd: normal %.3f, flag %.3f, zero-heavy %.3f\n", psi[F_NORMAL], psi[F_FLAG],
           psi[F_ZERO_HEAVY]);
    for (int f = 0; f < F_NONE; f++)
        HVS_CHECK(psi[f] > 0.2, "%s: +2 sd PSI %.4f > 0.2", prof[f].name, psi[f]);

    served(zero, 0.01, 2000, psi, &nv);
    printf("# constant 0: normal %.3f, zero-heavy %.3f\n", psi[F_NORMAL], psi[F_ZERO_HEAVY]);
    HVS_CHECK(psi[F_NORMAL] > 0.2, "normal turned constant 0 (fillna(0)): PSI %.4f > 0.2",
              psi[F_NORMAL]);
    HVS_CHECK(psi[F_ZERO_HEAVY] > 0.2, "zero-heavy turned constant 0: PSI %.4f > 0.2",
              psi[F_ZERO_HEAVY]);

    HVS_CHECK(prof[F_NORMAL].missing_rate > 0.005 && prof[F_NORMAL].missing_rate < 0.015,
              "profile missing rate %.4f (about 1 %%)", prof[F_NORMAL].missing_rate);
    served(nan_all, 0, 2000, psi, &nv);
    printf("# all missing: normal %.3f\n", psi[F_NORMAL]);
    for (int f = 0; f < F_NONE; f++)
        HVS_CHECK(psi[f] > 0.2, "%s all missing: PSI %.4f > 0.2", prof[f].name, psi[f]);

    served(draw, 0.01, 99, psi, &nv);
    HVS_CHECK(nv == 99 && isnan(psi[F_NORMAL]) && isnan(psi[F_FLAG]),
              "99 rows, below min_count 100: NaN (%g)", psi[F_NORMAL]);
}

/* Bins worked out by hand; PSI written out from its formula. */
static void test_by_hand(void) {
    static const double q[2] = {10, 20}, p[2] = {0.25, 0.75};
    hvs_feature_profile_t one = {"x", q, p, 2, 0.0};
    hvs_drift_t *d = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_drift_new(&one, 1, HVS_MS_HOUR, 1, &d, &err) == 0, "new: %s", err.msg);
    const double *u, *e;
    HVS_CHECK(hvs_drift_bins(d, 0, &u, &e) == 3 && u[0] == 10 && u[1] == 20 && e[0] == 0.25 &&
                  e[1] == 0.5 && e[2] == 0.25 && e[3] == 0,
              "3 value bins (-inf,10] (10,20] (20,inf) expecting 0.25 0.5 0.25, missing 0");
    /* 20 in the first bin (10 of them on its edge), 70 in the second (20 on its edge), 10 */
    struct {
        double v;
        int n;
    } put[] = {{5, 10}, {10, 10}, {15, 50}, {20, 20}, {25, 10}};
    for (size_t i = 0; i < sizeof put / sizeof put[0]; i++)
        for (int k = 0; k < put[i].n; k++)
            HVS_REQUIRE(hvs_drift_add(d, T0, &put[i].v) == 0, "add");
    double psi;
    size_t nv;
    hvs_drift_psi(d, T0, &psi, &nv);
    const double eps = 1e-4;
    double want = (0.2 - 0.25) * log(0.2 / 0.25) + (0.7 - 0.5) * log(0.7 / 0.5) +
                  (0.1 - 0.25) * log(0.1 / 0.25) + (eps - eps) * log(eps / eps);
    HVS_CHECK(nv == 100 && psi == want, "PSI %.17g, by hand %.17g (0.2159)", psi, want);
    hvs_drift_destroy(d);

    /* a run of equal quantiles at 0 (p 0.1..0.5), then 5 at 0.9; 20 % missing:
     * F(0) = (0.5 + 0.9) / 2 = 0.7, F(5) = 0.9; shares 0.8 x (0.7, 0.2, 0.1) and 0.2 */
    static const double qr[4] = {0, 0, 0, 5}, pr[4] = {0.1, 0.3, 0.5, 0.9};
    hvs_feature_profile_t run = {"y", qr, pr, 4, 0.2};
    HVS_REQUIRE(hvs_drift_new(&run, 1, HVS_MS_HOUR, 1, &d, &err) == 0, "new: %s", err.msg);
    HVS_CHECK(hvs_drift_bins(d, 0, &u, &e) == 3 && u[0] == 0 && u[1] == 5 &&
                  fabs(e[0] - 0.56) < 1e-15 && fabs(e[1] - 0.16) < 1e-15 &&
                  fabs(e[2] - 0.08) < 1e-15 && e[3] == 0.2,
              "merged point mass: bins (-inf,0] (0,5] (5,inf) expect %g %g %g, missing %g", e[0],
              e[1], e[2], e[3]);
    double zero = 0, nan = NAN, four = 4;
    for (int k = 0; k < 56; k++)
        hvs_drift_add(d, T0, &zero); /* on the point mass: its bin */
    for (int k = 0; k < 16; k++)
        hvs_drift_add(d, T0, &four);
    for (int k = 0; k < 8; k++)
        hvs_drift_add(d, T0, &(double){6});
    for (int k = 0; k < 20; k++)
        hvs_drift_add(d, T0, &nan);
    hvs_drift_psi(d, T0, &psi, &nv);
    HVS_CHECK(nv == 100 && fabs(psi) < 1e-12, "counts exactly as expected: PSI %g", psi);
    hvs_drift_destroy(d);

    /* a constant in training: one edge, F = (0.99 + 1) / 2 */
    static const double qc[7] = {3, 3, 3, 3, 3, 3, 3};
    hvs_feature_profile_t cst = {"z", qc, P7, 7, 0.0};
    HVS_REQUIRE(hvs_drift_new(&cst, 1, HVS_MS_HOUR, 1, &d, &err) == 0, "new: %s", err.msg);
    HVS_CHECK(hvs_drift_bins(d, 0, &u, &e) == 2 && u[0] == 3 && e[0] == 0.995 &&
                  fabs(e[1] - 0.005) < 1e-15 && e[2] == 0,
              "a constant: (-inf,3] expects %g, (3,inf) %g", e[0], e[1]);
    hvs_drift_destroy(d);

    /* no quantiles (a feature never seen in training): one value bin and missing */
    hvs_feature_profile_t never = {"w", NULL, NULL, 0, 1.0};
    HVS_REQUIRE(hvs_drift_new(&never, 1, HVS_MS_HOUR, 1, &d, &err) == 0, "new: %s", err.msg);
    HVS_CHECK(hvs_drift_bins(d, 0, &u, &e) == 1 && e[0] == 0 && e[1] == 1, "never seen: 0 and 1");
    hvs_drift_destroy(d);
}

static void test_ring_by_event_hour(void) {
    static const double q[1] = {0}, p[1] = {0.5};
    hvs_feature_profile_t one = {"x", q, p, 1, 0.0};
    hvs_drift_t *d = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_drift_new(&one, 1, 24 * HVS_MS_HOUR, 10, &d, &err) == 0, "new: %s", err.msg);
    double lo = -1, hi = 1, psi;
    size_t nv;
    /* 100 low values 25 h before, 50 at 24 h before, 100 balanced now-ish */
    for (int k = 0; k < 100; k++)
        hvs_drift_add(d, T0 - 25 * HVS_MS_HOUR + 5 * HVS_MS_MINUTE, &lo);
    for (int k = 0; k < 50; k++)
        hvs_drift_add(d, T0 - 24 * HVS_MS_HOUR, &lo);
    hvs_drift_psi(d, T0 - 2 * HVS_MS_HOUR, &psi, &nv);
    HVS_CHECK(nv == 150 && psi > 1, "before: 150 low values, PSI %.3f", psi);
    for (int k = 0; k < 50; k++) {
        hvs_drift_add(d, T0 - 23 * HVS_MS_HOUR, &lo);
        hvs_drift_add(d, T0 + 59 * HVS_MS_MINUTE, &hi);
    }
    hvs_drift_psi(d, T0, &psi, &nv);
    HVS_CHECK(nv == 100 && fabs(psi) < 1e-12,
              "at T0 only the last 24 h count (50 low, 50 high): %zu rows, PSI %g", nv, psi);
    hvs_drift_psi(d, T0 + HVS_MS_HOUR, &psi, &nv);
    HVS_CHECK(nv == 50, "an hour later the values of T0 - 23 h are 24 h old: %zu rows", nv);
    /* T0 + 1 h reuses T0 - 23 h's slot: it starts empty */
    hvs_drift_add(d, T0 + HVS_MS_HOUR, &hi);
    hvs_drift_psi(d, T0 + HVS_MS_HOUR, &psi, &nv);
    HVS_CHECK(nv == 51, "the reused slot holds only its new hour: %zu rows", nv);
    HVS_CHECK(hvs_drift_add(d, T0 - 23 * HVS_MS_HOUR, &lo) == 1,
              "a value older than its slot's hour is not counted");
    hvs_drift_psi(d, T0 - HVS_MS_HOUR, &psi, &nv);
    HVS_CHECK(nv == 0 && isnan(psi), "a window before everything counted: %zu rows", nv);
    hvs_drift_destroy(d);

    static const double qd[2] = {2, 1}, qa[2] = {1, 2}, pd[2] = {0.5, 0.4}, qn[2] = {1, NAN};
    const hvs_feature_profile_t broken[] = {
        {"decreasing quantiles", qd, P7, 2, 0},
        {"descending probabilities", qa, pd, 2, 0},
        {"a NaN quantile", qn, P7, 2, 0},
        {"missing rate 1.5", q, p, 1, 1.5},
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        hvs_drift_t *x = (hvs_drift_t *)1;
        HVS_CHECK(hvs_drift_new(&broken[i], 1, HVS_MS_HOUR, 1, &x, &err) == HVS_EINVAL && !x,
                  "a profile with %s refused", broken[i].name);
    }
    struct {
        hvs_ms_t w;
        const char *what;
    } bad[] = {{0, "0"}, {90 * HVS_MS_MINUTE, "90 min"}, {721 * HVS_MS_HOUR, "721 h"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hvs_drift_t *x = (hvs_drift_t *)1;
        HVS_CHECK(hvs_drift_new(&one, 1, bad[i].w, 1, &x, &err) == HVS_EINVAL && !x,
                  "window %s refused", bad[i].what);
    }
}

static void test_slot_text(void) {
    make_profile();
    hvs_drift_t *a = NULL, *b = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_drift_new(prof, NF, 24 * HVS_MS_HOUR, 100, &a, &err) == 0 &&
                    hvs_drift_new(prof, NF, 24 * HVS_MS_HOUR, 100, &b, &err) == 0,
                "new: %s", err.msg);
    for (int i = 0; i < 3000; i++) {
        double row[NF];
        for (int f = 0; f < NF; f++)
            row[f] = uni() < 0.02 ? NAN : (i % 3 ? draw(f) : shifted(f));
        hvs_drift_add(a, T0 - (hvs_ms_t)(i % 30) * HVS_MS_HOUR, row); /* some evicted */
    }
    char *texts[24] = {0};
    for (int h = 0; h < 24; h++) {
        hvs_strbuf_t t = {0};
        HVS_REQUIRE(hvs_drift_slot_encode(a, T0 - h * HVS_MS_HOUR, &t, &err) == 0, "encode");
        texts[h] = t.p;
        HVS_CHECK(hvs_drift_slot_decode(b, t.p, t.len, &err) == 0, "decode hour -%d: %s", h,
                  err.msg);
    }
    printf("# slot text (%zu bytes): %s\n", strlen(texts[0]), texts[0]);
    double pa[NF], pb[NF];
    size_t na, nb;
    hvs_drift_psi(a, T0, pa, &na);
    hvs_drift_psi(b, T0, pb, &nb);
    HVS_CHECK(na == nb && na > 2000 && memcmp(pa, pb, sizeof pa) == 0,
              "restored PSI bit-identical (%zu rows; %.4f %.4f)", nb, pa[0], pb[0]);
    for (int h = 0; h < 24; h++) {
        hvs_strbuf_t t = {0};
        hvs_drift_slot_encode(b, T0 - h * HVS_MS_HOUR, &t, &err);
        HVS_CHECK(t.p && strcmp(t.p, texts[h]) == 0, "hour -%d encodes the same again", h);
        free(t.p);
    }
    /* an hour the ring does not hold encodes empty, and decodes as empty */
    hvs_strbuf_t t = {0};
    hvs_drift_slot_encode(a, T0 + HVS_MS_HOUR, &t, &err);
    HVS_CHECK(t.p && strstr(t.p, " 0 ") && strstr(t.p, " 0*"), "an empty slot: %s", t.p);
    free(t.p);

    /* an older hour than its slot holds: left alone */
    hvs_strbuf_t old = {0};
    hvs_drift_slot_encode(a, T0 - 24 * HVS_MS_HOUR, &old, &err);
    HVS_CHECK(hvs_drift_slot_decode(b, old.p, old.len, &err) == 1, "older slot text not restored");
    free(old.p);

    /* refused: another profile, damage */
    static const double q[1] = {0}, p[1] = {0.5};
    hvs_feature_profile_t other[NF] = {{"x", q, p, 1, 0.0}};
    hvs_drift_t *c = NULL;
    HVS_REQUIRE(hvs_drift_new(other, NF, 24 * HVS_MS_HOUR, 100, &c, &err) == 0, "new");
    HVS_CHECK(hvs_drift_slot_decode(c, texts[0], strlen(texts[0]), &err) == HVS_ESERDE &&
                  strstr(err.msg, "fingerprint"),
              "another profile's slot refused: %s", err.msg);
    hvs_drift_destroy(c);
    char buf[4096];
    const char *t0 = texts[0];
    size_t l0 = strlen(t0);
    HVS_REQUIRE(l0 + 8 < sizeof buf, "slot text fits");
    struct {
        const char *what, *text;
    } bad[] = {
        {"empty", ""},
        {"another version", "d2 0 0 0000000000000000"},
        {"hour not at an hour", "d1 1000 0 0000000000000000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        HVS_CHECK(hvs_drift_slot_decode(b, bad[i].text, strlen(bad[i].text), &err) == HVS_ESERDE,
                  "%s refused", bad[i].what);
    snprintf(buf, sizeof buf, "%s 7", t0);
    HVS_CHECK(hvs_drift_slot_decode(b, buf, strlen(buf), &err) == HVS_ESERDE,
              "one count too many refused: %s", err.msg);
    HVS_CHECK(hvs_drift_slot_decode(b, t0, (size_t)(strrchr(t0, ' ') - t0), &err) == HVS_ESERDE,
              "one count too few refused: %s", err.msg);
    snprintf(buf, sizeof buf, "%s", t0);
    *strrchr(buf, ' ') = 'x';
    HVS_CHECK(hvs_drift_slot_decode(b, buf, strlen(buf), &err) == HVS_ESERDE,
              "a count run into its neighbour refused: %s", err.msg);
    /* one row more than the counts hold */
    const char *rows_at = strchr(strchr(t0, ' ') + 1, ' ') + 1, *rows_end = strchr(rows_at, ' ');
    snprintf(buf, sizeof buf, "%.*s%ld%s", (int)(rows_at - t0), t0, strtol(rows_at, NULL, 10) + 1,
             rows_end);
    HVS_CHECK(hvs_drift_slot_decode(b, buf, strlen(buf), &err) == HVS_ESERDE &&
                  strstr(err.msg, "values of"),
              "counts that disagree with the rows refused: %s", err.msg);
    snprintf(buf, sizeof buf, "%s 0*99999", t0);
    HVS_CHECK(hvs_drift_slot_decode(b, buf, strlen(buf), &err) == HVS_ESERDE,
              "a zero run past the end refused: %s", err.msg);
    double pc[NF];
    hvs_drift_psi(b, T0, pc, &nb);
    HVS_CHECK(memcmp(pa, pc, sizeof pa) == 0, "refused text changed nothing");
    for (int h = 0; h < 24; h++)
        free(texts[h]);
    hvs_drift_destroy(a);
    hvs_drift_destroy(b);
}

static const hvs_test_case_t cases[] = {
    {"own_distribution_low_shift_constant_missing_high", test_own_shifted_constant_missing},
    {"bins_and_psi_by_hand_point_masses", test_by_hand},
    {"ring_by_event_hour_evicts_24h_old", test_ring_by_event_hour},
    {"slot_text_round_trip_and_refusals", test_slot_text},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
