/*
 * test_model - XGBoost through model.h: a known function is learnt (error measured here against
 * the truth), early stopping keeps fewer rounds than allowed, NaN is missing, save/load and
 * zlib round trips give identical predictions, corrupt or truncated bytes and a wrong column
 * count are refused, a monotone constraint makes predictions non-decreasing along its feature
 * where the unconstrained model is not, and predictions from two threads at once equal the
 * single-threaded ones.
 * hvs-linear: a 3-horizon x 3-column model predicts values worked out by hand here (NaN input
 * contributes 0, an unknown selector takes the nearest row, ties the lower, NaN selector NaN),
 * bad tables are refused, its text starts "hvs-linear 1" and loads back bit-exact, and every
 * kind of damaged text is refused as corrupt_model naming the fault; hvs_model_format tells
 * the two kinds apart.
 * Contributions (TreeSHAP): every row sums to the margin (squared error: the prediction; a
 * binary:logistic model: the logit of its probability), a constant column no tree can split on
 * gets exactly 0, two threads agree with one, and an hvs-linear model's are b_i * x_i and the
 * intercept, worked out by hand; the cost per row at the anomaly models' column count is
 * printed (batches of 1000 rows).
 */
#include <math.h>
#include <pthread.h>
#include <time.h>

#include "hvs/model.h"
#include "hvs/task_rows.h"
#include "hvs_test.h"

#define N 4000
#define C 4

static float X[N * C], Y[N];

static double rnd(uint64_t *x) {
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return (double)(*x >> 11) / 9007199254740992.0;
}

static double truth(const float *r) {
    return 3.0 * r[0] - 2.0 * r[1] + (r[2] > 0.5 ? 1.0 : 0.0) + (isnan(r[3]) ? 0.5 : 0.0);
}

typedef struct job {
    hvs_model_t *m;
    const float *x;
    size_t n;
    float *out;
    int rc;
} job_t;

static void *predict_job(void *p) {
    job_t *j = p;
    hvs_err_t err;
    for (int k = 0; k < 50 && j->rc == 0; k++)
        j->rc = hvs_model_predict(j->m, j->x, j->n, j->out, &err);
    return NULL;
}

/* n rows predicted by two threads at once, 50 times each, into o1 and o2; 0 when all succeeded. */
static int predict_twice_concurrently(hvs_model_t *m, const float *x, size_t n, float *o1,
                                      float *o2) {
    job_t j1 = {m, x, n, o1, 0}, j2 = {m, x, n, o2, 0};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, predict_job, &j1);
    pthread_create(&t2, NULL, predict_job, &j2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    return j1.rc || j2.rc;
}

/* The hvs-linear text t loads as ncols columns? Expect HVS_ESERDE naming `why`. */
static void refused_text(const char *what, const char *t, size_t ncols, const char *why) {
    hvs_model_t *m = NULL;
    hvs_err_t err = {0};
    int rc = hvs_model_load(t, strlen(t), ncols, &m, &err);
    HVS_CHECK(rc == HVS_ESERDE && !m && strcmp(err.reason, "corrupt_model") == 0 &&
                  strstr(err.msg, why),
              "%s refused (rc %d, %s: %s; expected a message with \"%s\")", what, rc, err.reason,
              err.msg, why);
    hvs_model_destroy(m);
}

#define LIN_HEAD "hvs-linear 1\ncolumns 3\nselector 0\nrows 3\n"
#define LIN_ROWS "1 -1 0 0.75 0.5\n4 0.5 0 0.25 -0.125\n8 2 0.125 -0.5 0.0625\n"

static void test_linear(const hvs_model_t *xgb) {
    /* columns: horizon (the selector), err_lag_1, err_lag_2; rows given out of order */
    const float hz[3] = {4, 1, 8};
    const double coef[3 * 4] = {
        0.5,  0,     0.25, -0.125, /* h 4 */
        -1.0, 0,     0.75, 0.5,    /* h 1 */
        2.0,  0.125, -0.5, 0.0625, /* h 8: its own horizon coefficient too */
    };
    hvs_model_t *m = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_linear_new(3, 0, 3, hz, coef, &m, &err) == 0, "linear: %s", err.msg);
    HVS_CHECK_EQ_STR(hvs_model_format(m), "hvs-linear");
    HVS_CHECK_EQ_STR(hvs_model_format(xgb), "xgboost-ubj");
    HVS_CHECK(hvs_model_columns(m) == 3, "3 columns");
    const float x[][3] = {
        {1, 2, -4},    /* -1 + 0.75*2 + 0.5*-4 */
        {4, 8, 2},     /* 0.5 + 0.25*8 - 0.125*2 */
        {8, 1, 16},    /* 2 + 0.125*8 - 0.5*1 + 0.0625*16 */
        {4, NAN, 2},   /* 0.5 + 0 - 0.25 */
        {1, NAN, NAN}, /* intercept alone */
        {2, 2, -4},    /* no row 2: row 1 (1 away) over row 4 (2 away) */
        {7, 1, 16},    /* row 8: 2 + 0.125*7 - 0.5 + 1 */
        {100, 0, 0},   /* above every row: row 8, 2 + 12.5 */
        {-5, 0, 0},    /* below every row: row 1 */
        {2.5f, 0, 0},  /* 1.5 from rows 1 and 4: the lower */
        {NAN, 1, 1},   /* no horizon: no prediction */
    };
    const float want[] = {-1.5f,  2.25f, 3.5f,  0.25f, -1.0f, -1.5f,
                          3.375f, 14.5f, -1.0f, -1.0f, NAN};
    enum { NX = sizeof want / sizeof want[0] };
    float got[NX];
    HVS_REQUIRE(hvs_model_predict(m, &x[0][0], NX, got, &err) == 0, "linear predict: %s", err.msg);
    for (int i = 0; i < NX; i++)
        HVS_CHECK(isnan(want[i]) ? isnan(got[i]) : got[i] == want[i], "row %d: %.9g, expected %.9g",
                  i, (double)got[i], (double)want[i]);

    int sel = -9;
    size_t nsel = 0;
    const float *sv = NULL;
    const double *cf = NULL;
    HVS_CHECK(hvs_model_linear_coef(m, &sel, &nsel, &sv, &cf) == 0 && sel == 0 && nsel == 3 &&
                  memcmp(sv, hz, sizeof hz) == 0 && memcmp(cf, coef, sizeof coef) == 0,
              "coefficient table as given, in the caller's order");
    HVS_CHECK(hvs_model_linear_coef(xgb, &sel, &nsel, &sv, &cf) == HVS_EINVAL,
              "no table on XGBoost");

    /* one row, no selector */
    const double one[4] = {1, 2, 3, 4};
    hvs_model_t *m1 = NULL;
    float o1[2], x1[2][3] = {{1, 1, 1}, {NAN, 10, NAN}};
    HVS_CHECK(hvs_model_linear_new(3, -1, 1, NULL, one, &m1, &err) == 0 &&
                  hvs_model_predict(m1, &x1[0][0], 2, o1, &err) == 0 && o1[0] == 10.0f &&
                  o1[1] == 31.0f,
              "single row: %g %g (10, 31)", m1 ? (double)o1[0] : NAN, m1 ? (double)o1[1] : NAN);

    /* bad tables */
    const float dup[3] = {1, 4, 1}, nan_sel[3] = {1, NAN, 8};
    double nonfinite[12];
    memcpy(nonfinite, coef, sizeof coef);
    nonfinite[6] = INFINITY;
    struct {
        const char *what;
        size_t ncols;
        int selector;
        size_t nsel;
        const float *sv;
        const double *coef;
    } bad[] = {
        {"0 columns", 0, -1, 1, NULL, coef},
        {"4097 columns", 4097, -1, 1, NULL, coef},
        {"selector past the columns", 3, 3, 3, hz, coef},
        {"selector -2", 3, -2, 1, hz, coef},
        {"no rows", 3, 0, 0, hz, coef},
        {"2 rows without a selector", 3, -1, 2, hz, coef},
        {"no selector values", 3, 0, 3, NULL, coef},
        {"infinite coefficient", 3, 0, 3, hz, nonfinite},
        {"duplicate selector values", 3, 0, 3, dup, coef},
        {"NaN selector value", 3, 0, 3, nan_sel, coef},
        {"no coefficients", 3, 0, 3, hz, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hvs_model_t *b = (hvs_model_t *)1;
        int rc = hvs_model_linear_new(bad[i].ncols, bad[i].selector, bad[i].nsel, bad[i].sv,
                                      bad[i].coef, &b, &err);
        HVS_CHECK(rc == HVS_EINVAL && !b, "%s refused: rc %d", bad[i].what, rc);
    }
    nonfinite[6] = NAN;
    hvs_model_t *b = NULL;
    HVS_CHECK(hvs_model_linear_new(3, 0, 3, hz, nonfinite, &b, &err) == HVS_EINVAL && !b,
              "NaN coefficient");

    /* save: the documented text; load: the same table and predictions, bit for bit */
    unsigned char *t = NULL;
    size_t tl = 0;
    HVS_REQUIRE(hvs_model_save(m, &t, &tl, &err) == 0, "save linear: %s", err.msg);
    HVS_CHECK(tl > 13 && memcmp(t, "hvs-linear 1\n", 13) == 0, "text starts \"hvs-linear 1\": %.*s",
              (int)tl, (const char *)t);
    const char *expect = "hvs-linear 1\ncolumns 3\nselector 0\nrows 3\n"
                         "4 0.5 0 0.25 -0.125\n1 -1 0 0.75 0.5\n8 2 0.125 -0.5 0.0625\n";
    HVS_CHECK(tl == strlen(expect) && memcmp(t, expect, tl) == 0, "text:\n%.*s", (int)tl,
              (const char *)t);
    hvs_model_t *back = NULL;
    float got2[NX];
    HVS_CHECK(hvs_model_load(t, tl, 3, &back, &err) == 0 &&
                  hvs_model_predict(back, &x[0][0], NX, got2, &err) == 0 &&
                  memcmp(got, got2, sizeof got) == 0 &&
                  strcmp(hvs_model_format(back), "hvs-linear") == 0,
              "loaded text predicts the same: %s", err.msg);
    hvs_model_destroy(back);
    back = NULL;
    HVS_CHECK(hvs_model_load(t, tl, 4, &back, &err) == HVS_ESERDE && !back &&
                  strstr(err.msg, "columns"),
              "caller's column count checked: %s", err.msg);
    free(t);

    /* awkward values (not binary fractions) survive %.17g exactly */
    enum { R = 5, K = 6 };
    float rv[R];
    double rc_[R * (K + 1)];
    uint64_t s = 11;
    for (int i = 0; i < R; i++) {
        rv[i] = (float)(i + 1) / 3.0f;
        for (int k = 0; k <= K; k++)
            rc_[i * (K + 1) + k] = (rnd(&s) - 0.5) * 1e-3 * (k + 1) + 1.0 / (k + 3);
    }
    hvs_model_t *ma = NULL, *mb = NULL;
    HVS_REQUIRE(hvs_model_linear_new(K, 2, R, rv, rc_, &ma, &err) == 0 &&
                    hvs_model_save(ma, &t, &tl, &err) == 0 &&
                    hvs_model_load(t, tl, K, &mb, &err) == 0,
                "awkward round trip: %s", err.msg);
    free(t);
    hvs_model_linear_coef(mb, &sel, &nsel, &sv, &cf);
    HVS_CHECK(sel == 2 && nsel == R && memcmp(sv, rv, sizeof rv) == 0 &&
                  memcmp(cf, rc_, sizeof rc_) == 0,
              "coefficients and selector values bit-exact after save/load");
    float xa[200 * K], pa[200], pb[200];
    for (int i = 0; i < 200 * K; i++)
        xa[i] = (i % K == 2) ? (float)(i % 7) / 3.0f
                             : (rnd(&s) < 0.1 ? NAN : (float)(rnd(&s) * 20 - 10));
    HVS_CHECK(hvs_model_predict(ma, xa, 200, pa, &err) == 0 &&
                  hvs_model_predict(mb, xa, 200, pb, &err) == 0 && memcmp(pa, pb, sizeof pa) == 0,
              "awkward model predicts bit-exact after save/load");

    /* two threads on one linear model */
    float c1[200], c2[200];
    HVS_CHECK(predict_twice_concurrently(mb, xa, 200, c1, c2) == 0 &&
                  memcmp(c1, pa, sizeof pa) == 0 && memcmp(c2, pa, sizeof pa) == 0,
              "concurrent linear predictions equal");

    /* damaged text */
    hvs_model_t *ok = NULL;
    HVS_CHECK(hvs_model_load(LIN_HEAD LIN_ROWS, strlen(LIN_HEAD LIN_ROWS), 3, &ok, &err) == 0,
              "the hand-written text loads: %s", err.msg);
    float p1;
    HVS_CHECK(ok && hvs_model_predict(ok, x[2], 1, &p1, &err) == 0 && p1 == 3.5f,
              "and predicts 3.5: %g", ok ? (double)p1 : NAN);
    hvs_model_destroy(ok);
    ok = NULL;
    HVS_CHECK(hvs_model_load(LIN_HEAD "1 -1 0 0.75 0.5\n4 0.5 0 0.25 -0.125\n8 2 0.125 -0.5 0.0625",
                             strlen(LIN_HEAD) + strlen(LIN_ROWS) - 1, 3, &ok, &err) == 0,
              "no final newline is fine: %s", err.msg);
    hvs_model_destroy(ok);
    refused_text("version 2", "hvs-linear 2\ncolumns 3\nselector 0\nrows 3\n" LIN_ROWS, 3,
                 "version 2");
    refused_text("version 1.0", "hvs-linear 1.0\ncolumns 3\nselector 0\nrows 3\n" LIN_ROWS, 3,
                 "integer");
    refused_text("truncated rows", LIN_HEAD "1 -1 0 0.75 0.5\n4 0.5 0 0.25 -0.125\n", 3,
                 "truncated");
    refused_text("a row cut short", LIN_HEAD "1 -1 0 0.75 0.5\n4 0.5 0 0.25 -0.125\n8 2 0.125", 3,
                 "has 3 numbers, expected 5");
    refused_text("rows 4 of 3 lines", "hvs-linear 1\ncolumns 3\nselector 0\nrows 4\n" LIN_ROWS, 3,
                 "truncated");
    refused_text("rows 2 of 3 lines", "hvs-linear 1\ncolumns 3\nselector 0\nrows 2\n" LIN_ROWS, 3,
                 "garbage");
    refused_text("trailing garbage", LIN_HEAD LIN_ROWS "x", 3, "garbage");
    refused_text("a trailing blank line", LIN_HEAD LIN_ROWS "\n", 3, "garbage");
    refused_text("a non-number",
                 LIN_HEAD "1 -1 0 0.75 0.5\n4 0.5 zero 0.25 -0.125\n8 2 0.125 -0.5 0.0625\n", 3,
                 "\"zero\" is not a finite number");
    refused_text("a number with junk",
                 LIN_HEAD "1 -1 0 0.75 0.5x\n4 0.5 0 0.25 -0.125\n8 2 0.125 -0.5 0.0625\n", 3,
                 "0.5x");
    refused_text("nan", LIN_HEAD "1 -1 0 0.75 nan\n4 0.5 0 0.25 -0.125\n8 2 0.125 -0.5 0.0625\n", 3,
                 "nan");
    refused_text("overflow",
                 LIN_HEAD "1 -1 0 0.75 1e999\n4 0.5 0 0.25 -0.125\n8 2 0.125 -0.5 0.0625\n", 3,
                 "1e999");
    refused_text("a float-overflowing selector",
                 LIN_HEAD "1e300 -1 0 0.75 0.5\n4 0.5 0 0.25 -0.125\n8 2 0.125 -0.5 0.0625\n", 3,
                 "selector value");
    refused_text("an extra number",
                 LIN_HEAD "1 -1 0 0.75 0.5 9\n4 0.5 0 0.25 -0.125\n8 2 0.125 -0.5 0.0625\n", 3,
                 "has 6 numbers, expected 5");
    refused_text("columns 4 (caller 3)", "hvs-linear 1\ncolumns 4\nselector 0\nrows 3\n" LIN_ROWS,
                 3, "4 columns, expected 3");
    refused_text("columns 3 (caller 4)", LIN_HEAD LIN_ROWS, 4, "3 columns, expected 4");
    refused_text("selector past the columns",
                 "hvs-linear 1\ncolumns 3\nselector 3\nrows 3\n" LIN_ROWS, 3, "selector column 3");
    refused_text("a missing header line", "hvs-linear 1\ncolumns 3\nrows 3\n" LIN_ROWS, 3,
                 "expected \"selector\"");
    refused_text("duplicate selector values",
                 LIN_HEAD "1 -1 0 0.75 0.5\n4 0.5 0 0.25 -0.125\n1 2 0.125 -0.5 0.0625\n", 3,
                 "selector value 1 on rows 0 and 2");
    refused_text("header only", "hvs-linear 1\n", 3, "columns");
    refused_text("an absurd row count",
                 "hvs-linear 1\ncolumns 3\nselector 0\nrows 60000\n" LIN_ROWS, 3, "truncated");

    hvs_model_destroy(m);
    hvs_model_destroy(m1);
    hvs_model_destroy(ma);
    hvs_model_destroy(mb);
}

/* The data and the XGBoost model the cases share, made by the first case that needs them:
 * N rows of the known function plus noise, the first NTR for training, the rest held out. */
#define NTR 3000
#define NV (N - NTR)

static const hvs_train_params_t params = {
    .rounds = 2000, .eta = 0.1, .max_depth = 4, .nthread = 2, .seed = 1};
static bool have_data;
static uint64_t data_rng = 7; /* after the data: the monotone case's noise continues from here */
static hvs_model_t *xgb;
static hvs_train_report_t xgb_rep;

static void make_data(void) {
    if (have_data)
        return;
    uint64_t *s = &data_rng;
    for (int i = 0; i < N; i++) {
        float *r = &X[i * C];
        r[0] = (float)rnd(s);
        r[1] = (float)rnd(s);
        r[2] = (float)rnd(s);
        r[3] = rnd(s) < 0.2 ? NAN : (float)rnd(s);
        Y[i] = (float)(truth(r) + (rnd(s) - 0.5) * 0.1);
    }
    have_data = true;
}

static void free_model(void) { hvs_model_destroy(xgb); }

static hvs_model_t *trained(void) {
    if (xgb)
        return xgb;
    make_data();
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_train(X, Y, NULL, NTR, C, X + NTR * C, Y + NTR, NV, &params, &xgb,
                                &xgb_rep, &err) == 0,
                "train: %s", err.msg);
    hvs_test_cleanup(free_model);
    return xgb;
}

/* The model m saved and loaded back. */
static hvs_model_t *reloaded(hvs_model_t *m) {
    unsigned char *ubj = NULL;
    size_t lu;
    hvs_model_t *m2 = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_save(m, &ubj, &lu, &err) == 0, "save: %s", err.msg);
    HVS_REQUIRE(hvs_model_load(ubj, lu, C, &m2, &err) == 0, "load: %s", err.msg);
    free(ubj);
    return m2;
}

/* The known function is learnt (error against the truth), early stopping keeps fewer rounds. */
static void test_learns_function(void) {
    hvs_model_t *m = trained();
    hvs_train_report_t rep = xgb_rep;
    hvs_err_t err = {0};
    size_t ntr = NTR, nv = NV;
    HVS_CHECK(rep.rounds > 20 && rep.rounds < 2000, "early stopping kept %d rounds", rep.rounds);
    float pred[N];
    HVS_REQUIRE(hvs_model_predict(m, X + ntr * C, nv, pred, &err) == 0, "predict: %s", err.msg);
    double se = 0;
    for (size_t i = 0; i < nv; i++) {
        double e = pred[i] - truth(&X[(ntr + i) * C]);
        se += e * e;
    }
    double rmse = sqrt(se / nv);
    HVS_CHECK(rmse < 0.15, "held-out RMSE against the truth %.4f (noise sd 0.03)", rmse);
    HVS_CHECK(fabs(rep.valid_metric - rmse) < 0.1, "reported validation RMSE %.4f",
              rep.valid_metric);
}

/* save / compress / decompress / load: identical predictions; damaged bytes, a cut zlib stream,
 * the size cap and a wrong column count refused. */
static void test_save_load(void) {
    hvs_model_t *m = trained();
    hvs_err_t err = {0};
    size_t ntr = NTR, nv = NV;
    float pred[N];
    HVS_REQUIRE(hvs_model_predict(m, X + ntr * C, nv, pred, &err) == 0, "predict: %s", err.msg);
    unsigned char *ubj = NULL, *z = NULL, *back = NULL;
    size_t lu, lz, lb;
    HVS_REQUIRE(hvs_model_save(m, &ubj, &lu, &err) == 0 && lu > 100 && ubj[0] == '{', "save: %s",
                err.msg);
    HVS_REQUIRE(hvs_zlib_compress(ubj, lu, &z, &lz, &err) == 0 && lz < lu, "compress");
    HVS_REQUIRE(hvs_zlib_decompress(z, lz, 64 << 20, &back, &lb, &err) == 0 && lb == lu &&
                    memcmp(back, ubj, lu) == 0,
                "decompress");
    hvs_model_t *m2 = NULL;
    HVS_REQUIRE(hvs_model_load(back, lb, C, &m2, &err) == 0, "load: %s", err.msg);
    float pred2[N];
    hvs_model_predict(m2, X + ntr * C, nv, pred2, &err);
    HVS_CHECK(memcmp(pred, pred2, nv * sizeof *pred) == 0, "loaded model predicts the same");
    hvs_model_t *bad = NULL;
    HVS_CHECK(hvs_model_load(back, lb, C + 1, &bad, &err) == HVS_ESERDE && !bad,
              "column count checked");
    HVS_CHECK(hvs_model_load(back, lb / 2, C, &bad, &err) == HVS_ESERDE && !bad,
              "truncated refused: %s", err.msg);
    HVS_CHECK(hvs_zlib_decompress(z, lz / 2, 64 << 20, &back, &lb, &err) == HVS_ESERDE,
              "cut zlib refused");
    HVS_CHECK(hvs_zlib_decompress(z, lz, 100, &back, &lb, &err) == HVS_ESERDE &&
                  strcmp(err.reason, "too_large") == 0,
              "size cap");
    unsigned char junk[64];
    memset(junk, 0x5a, sizeof junk);
    HVS_CHECK(hvs_model_load(junk, sizeof junk, C, &bad, &err) == HVS_ESERDE, "junk refused");
    free(ubj);
    free(z);
    free(back);
    hvs_model_destroy(m2);
}

/* two threads predicting at once (on a loaded model) */
static void test_concurrent_predictions(void) {
    hvs_model_t *m2 = reloaded(trained());
    hvs_err_t err = {0};
    float o1[1000], o2[1000], ref[1000];
    int crc = predict_twice_concurrently(m2, X, 1000, o1, o2);
    hvs_model_predict(m2, X, 1000, ref, &err);
    HVS_CHECK(crc == 0 && memcmp(o1, ref, sizeof ref) == 0 && memcmp(o2, ref, sizeof ref) == 0,
              "concurrent predictions equal");
    hvs_model_destroy(m2);
}

/* monotone constraint: y falls with x0 in the data, but we demand increasing in x0 */
static void test_monotone(void) {
    make_data();
    static float Ym[N]; /* its own targets: the shared Y stays the known function */
    uint64_t s = data_rng;
    size_t ntr = NTR, nv = NV;
    hvs_err_t err = {0};
    for (int i = 0; i < N; i++)
        Ym[i] = (float)(-2.0 * X[i * C] + X[i * C + 1] + (rnd(&s) - 0.5) * 0.3);
    int8_t mono[C] = {1, 0, 0, 0};
    hvs_train_params_t p = params, pc = params;
    pc.monotone = mono;
    hvs_model_t *mf = NULL, *mc = NULL;
    HVS_REQUIRE(
        hvs_model_train(X, Ym, NULL, ntr, C, X + ntr * C, Ym + ntr, nv, &p, &mf, NULL, &err) == 0 &&
            hvs_model_train(X, Ym, NULL, ntr, C, X + ntr * C, Ym + ntr, nv, &pc, &mc, NULL, &err) ==
                0,
        "train: %s", err.msg);
    float grid[50 * C], gf[50], gc[50];
    for (int i = 0; i < 50; i++) {
        grid[i * C] = (float)i / 49;
        grid[i * C + 1] = 0.5f;
        grid[i * C + 2] = 0.3f;
        grid[i * C + 3] = 0.5f;
    }
    hvs_model_predict(mf, grid, 50, gf, &err);
    hvs_model_predict(mc, grid, 50, gc, &err);
    int falls_free = 0, falls_con = 0;
    for (int i = 1; i < 50; i++) {
        falls_free += gf[i] < gf[i - 1] - 1e-6;
        falls_con += gc[i] < gc[i - 1] - 1e-6;
    }
    HVS_CHECK(falls_free > 5 && falls_con == 0,
              "monotone: unconstrained falls %d times, constrained %d", falls_free, falls_con);
    hvs_model_destroy(mf);
    hvs_model_destroy(mc);
}

/* Row sums of contributions c (n x (cols + 1)) against margins; the largest relative error
 * (relative to max(|margin|, 1): a margin near 0 has no meaningful relative scale). */
static double worst_sum_error(const float *c, const double *margin, size_t n, size_t cols) {
    double worst = 0;
    for (size_t r = 0; r < n; r++) {
        double s = 0;
        for (size_t i = 0; i <= cols; i++)
            s += c[r * (cols + 1) + i];
        double e = fabs(s - margin[r]) / fmax(fabs(margin[r]), 1.0);
        worst = e > worst ? e : worst;
    }
    return worst;
}

typedef struct contrib_job {
    hvs_model_t *m;
    const float *x;
    size_t n;
    float *out;
    int rc;
} contrib_job_t;

static void *contrib_job(void *p) {
    contrib_job_t *j = p;
    hvs_err_t err;
    for (int k = 0; k < 20 && j->rc == 0; k++)
        j->rc = hvs_model_contributions(j->m, j->x, j->n, j->out, &err);
    return NULL;
}

/* Squared error: contributions sum to the prediction; two threads agree with one. */
static void test_contributions_regression(void) {
    hvs_model_t *m = trained();
    hvs_err_t err = {0};
    enum { NR = 500 };
    static float pred[NR], c[NR * (C + 1)], c1[NR * (C + 1)], c2[NR * (C + 1)];
    static double margin[NR];
    const float *x = X + NTR * C; /* held out; column 3 has NaNs */
    HVS_REQUIRE(hvs_model_predict(m, x, NR, pred, &err) == 0, "predict: %s", err.msg);
    HVS_REQUIRE(hvs_model_contributions(m, x, NR, c, &err) == 0, "contributions: %s", err.msg);
    for (int r = 0; r < NR; r++)
        margin[r] = pred[r];
    double worst = worst_sum_error(c, margin, NR, C);
    HVS_CHECK(worst < 1e-4, "row sums = predictions (worst relative error %.3g)", worst);
    /* x0 carries the largest effect (3 * x0 over [0, 1]): its contributions spread widest */
    double lo[C], hi[C];
    for (int i = 0; i < C; i++)
        lo[i] = INFINITY, hi[i] = -INFINITY;
    for (int r = 0; r < NR; r++)
        for (int i = 0; i < C; i++) {
            lo[i] = fmin(lo[i], c[r * (C + 1) + i]);
            hi[i] = fmax(hi[i], c[r * (C + 1) + i]);
        }
    HVS_CHECK(hi[0] - lo[0] > hi[1] - lo[1] && hi[1] - lo[1] > hi[2] - lo[2],
              "spread x0 %.3f > x1 %.3f > x2 %.3f", hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]);

    hvs_model_t *m2 = reloaded(m);
    contrib_job_t j1 = {m2, x, NR, c1, 0}, j2 = {m2, x, NR, c2, 0};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, contrib_job, &j1);
    pthread_create(&t2, NULL, contrib_job, &j2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    HVS_CHECK(j1.rc == 0 && j2.rc == 0 && memcmp(c1, c, sizeof c) == 0 &&
                  memcmp(c2, c, sizeof c) == 0,
              "two threads' contributions equal one thread's");
    hvs_model_destroy(m2);
    HVS_CHECK(hvs_model_contributions(m, x, 0, c, &err) == 0, "no rows: nothing to do");
    HVS_CHECK(hvs_model_contributions(NULL, x, 1, c, &err) == HVS_EINVAL, "no model refused");
}

/* binary:logistic with a constant fifth column: sums are log-odds, the constant column 0. */
static void test_contributions_logistic(void) {
    make_data();
    enum { CC = C + 1, NL = 2000 };
    static float xl[N * CC], yl[N], pl[NL], cl[NL * (CC + 1)];
    static double logit[NL];
    for (int r = 0; r < N; r++) {
        memcpy(&xl[r * CC], &X[r * C], C * sizeof *X);
        xl[r * CC + C] = 0.5f; /* the same everywhere: no split can use it */
        yl[r] = Y[r] > 1.0f ? 1.0f : 0.0f;
    }
    hvs_train_params_t p = params;
    p.objective = "binary:logistic";
    p.rounds = 200;
    hvs_model_t *m = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_train(xl, yl, NULL, NTR, CC, xl + NTR * CC, yl + NTR, NV, &p, &m, NULL,
                                &err) == 0,
                "train logistic: %s", err.msg);
    const float *x = xl + (N - NL) * CC;
    HVS_REQUIRE(hvs_model_predict(m, x, NL, pl, &err) == 0 &&
                    hvs_model_contributions(m, x, NL, cl, &err) == 0,
                "predict, contributions: %s", err.msg);
    size_t used = 0;
    for (int r = 0; r < NL; r++) {
        double q = pl[r];
        logit[r] = log(q / (1 - q));
        used += q > 0.01 && q < 0.99; /* the logit is well conditioned there */
    }
    /* a probability in float loses the logit's precision near 0 and 1: compare where it holds */
    double worst = 0;
    for (int r = 0; r < NL; r++)
        if (pl[r] > 0.01f && pl[r] < 0.99f) {
            double e = worst_sum_error(&cl[r * (CC + 1)], &logit[r], 1, CC);
            worst = e > worst ? e : worst;
        }
    HVS_CHECK(used > NL / 10 && worst < 1e-4,
              "row sums = logit(probability) on %zu rows (worst relative error %.3g)", used, worst);
    int nonzero = 0;
    for (int r = 0; r < NL; r++)
        nonzero += cl[r * (CC + 1) + C] != 0.0f;
    HVS_CHECK(nonzero == 0, "the constant column contributes 0 (%d rows otherwise)", nonzero);
    hvs_model_destroy(m);
}

/* hvs-linear: b_i * x_i of the selected row and the intercept, worked out by hand. */
static void test_contributions_linear(void) {
    const float hz[2] = {1, 4};
    const double coef[2 * 4] = {
        -1.0, 0, 0.75, 0.5,    /* h 1 */
        0.5,  0, 0.25, -0.125, /* h 4 */
    };
    hvs_model_t *m = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_linear_new(3, 0, 2, hz, coef, &m, &err) == 0, "linear: %s", err.msg);
    const float x[][3] = {{1, 2, -4}, {4, NAN, 8}, {3, 1, 1}, {NAN, 1, 1}};
    const float want[][4] = {
        {0, 1.5f, -2, -1},         /* h 1: 0.75*2, 0.5*-4, intercept -1 */
        {0, 0, -1, 0.5f},          /* h 4: NaN gives 0, -0.125*8, intercept 0.5 */
        {0, 0.25f, -0.125f, 0.5f}, /* 3 is nearer 4 */
        {NAN, NAN, NAN, NAN},      /* no selector */
    };
    float got[4][4], pred[4];
    HVS_REQUIRE(hvs_model_contributions(m, &x[0][0], 4, &got[0][0], &err) == 0 &&
                    hvs_model_predict(m, &x[0][0], 4, pred, &err) == 0,
                "linear contributions: %s", err.msg);
    for (int r = 0; r < 4; r++) {
        for (int i = 0; i < 4; i++)
            HVS_CHECK(isnan(want[r][i]) ? isnan(got[r][i]) : got[r][i] == want[r][i],
                      "row %d column %d: %g, expected %g", r, i, (double)got[r][i],
                      (double)want[r][i]);
        float s = got[r][0] + got[r][1] + got[r][2] + got[r][3];
        HVS_CHECK(isnan(pred[r]) ? isnan(s) : s == pred[r], "row %d sums to its prediction %g", r,
                  (double)pred[r]);
    }
    hvs_model_destroy(m);
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What a contribution costs at the anomaly models' width, depth 6 and 300 trees (the size of a
 * trainer model), batches of 1000 rows on one thread: printed, not judged. */
static void test_contributions_cost(void) {
    size_t nc = hvs_taskrow_ncols(HVS_TASK_ANOMALY_RESIDUAL);
    enum { NB = 4000, BATCH = 1000 };
    float *xb = malloc(NB * nc * sizeof *xb), *yb = malloc(NB * sizeof *yb);
    float *cb = malloc(BATCH * (nc + 1) * sizeof *cb), pb[BATCH];
    HVS_REQUIRE(xb && yb && cb, "oom");
    uint64_t s = 3;
    for (size_t r = 0; r < NB; r++) {
        double y = 0;
        for (size_t i = 0; i < nc; i++) {
            xb[r * nc + i] = rnd(&s) < 0.03 ? NAN : (float)rnd(&s);
            y += isnan(xb[r * nc + i]) ? 0 : sin(3.0 * xb[r * nc + i] * (double)(i % 5 + 1));
        }
        yb[r] = (float)y;
    }
    hvs_train_params_t p = {.rounds = 300, .eta = 0.05, .max_depth = 6, .nthread = 2, .seed = 2};
    hvs_model_t *m0 = NULL;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_train(xb, yb, NULL, NB, nc, NULL, NULL, 0, &p, &m0, NULL, &err) == 0,
                "train: %s", err.msg);
    unsigned char *ubj = NULL;
    size_t lu = 0;
    hvs_model_t *m = NULL; /* loaded: one thread, as the registry serves it */
    HVS_REQUIRE(hvs_model_save(m0, &ubj, &lu, &err) == 0 &&
                    hvs_model_load(ubj, lu, nc, &m, &err) == 0,
                "reload: %s", err.msg);
    int reps = 5;
    double t0 = mono_s();
    for (int k = 0; k < reps; k++)
        HVS_REQUIRE(hvs_model_contributions(m, xb + (size_t)k % 4 * BATCH * nc, BATCH, cb, &err) ==
                        0,
                    "contributions: %s", err.msg);
    double tc = (mono_s() - t0) / (reps * BATCH);
    t0 = mono_s();
    for (int k = 0; k < reps; k++)
        HVS_REQUIRE(hvs_model_predict(m, xb + (size_t)k % 4 * BATCH * nc, BATCH, pb, &err) == 0,
                    "predict: %s", err.msg);
    double tp = (mono_s() - t0) / (reps * BATCH);
    printf("# contributions: %zu columns, 300 trees of depth 6, batch %d, one thread: %.1f us/row "
           "(%.0f rows/s); prediction %.2f us/row (%.0f rows/s)\n",
           nc, BATCH, tc * 1e6, 1 / tc, tp * 1e6, 1 / tp);
    free(ubj);
    free(xb);
    free(yb);
    free(cb);
    hvs_model_destroy(m0);
    hvs_model_destroy(m);
}

static void case_linear(void) { test_linear(trained()); }

static const hvs_test_case_t cases[] = {
    {"learns_known_function_with_early_stopping", test_learns_function},
    {"save_compress_load_predicts_same_damage_refused", test_save_load},
    {"two_threads_predict_like_one", test_concurrent_predictions},
    {"monotone_constraint_never_falls", test_monotone},
    {"linear_model_by_hand_and_damaged_text_refused", case_linear},
    {"contributions_sum_to_prediction_threads_agree", test_contributions_regression},
    {"contributions_logistic_sum_to_logit_unused_column_zero", test_contributions_logistic},
    {"contributions_linear_by_hand", test_contributions_linear},
    {"contributions_cost_per_row", test_contributions_cost},
    HVS_TEST_CASES_END,
};

int main(int argc, char **argv) { return hvs_test_main(cases, argc, argv); }
