/*
 * test_model - XGBoost through model.h: a known function is learnt (error measured here against
 * the truth), early stopping keeps fewer rounds than allowed, NaN is missing, save/load and
 * zlib round trips give identical predictions, corrupt or truncated bytes and a wrong column
 * count are refused, a monotone constraint makes predictions non-decreasing along its feature
 * where the unconstrained model is not, and predictions from two threads at once equal the
 * single-threaded ones.
 */
#include <math.h>
#include <pthread.h>

#include "hvs/model.h"
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

int main(void) {
    uint64_t s = 7;
    for (int i = 0; i < N; i++) {
        float *r = &X[i * C];
        r[0] = (float)rnd(&s);
        r[1] = (float)rnd(&s);
        r[2] = (float)rnd(&s);
        r[3] = rnd(&s) < 0.2 ? NAN : (float)rnd(&s);
        Y[i] = (float)(truth(r) + (rnd(&s) - 0.5) * 0.1);
    }
    size_t ntr = 3000, nv = N - ntr;
    hvs_train_params_t p = {.rounds = 2000, .eta = 0.1, .max_depth = 4, .nthread = 2, .seed = 1};
    hvs_model_t *m = NULL;
    hvs_train_report_t rep;
    hvs_err_t err = {0};
    HVS_REQUIRE(hvs_model_train(X, Y, NULL, ntr, C, X + ntr * C, Y + ntr, nv, &p, &m, &rep, &err) == 0,
                "train: %s", err.msg);
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
    HVS_CHECK(fabs(rep.valid_metric - rmse) < 0.1, "reported validation RMSE %.4f", rep.valid_metric);

    /* save / compress / decompress / load: identical predictions */
    unsigned char *ubj = NULL, *z = NULL, *back = NULL;
    size_t lu, lz, lb;
    HVS_REQUIRE(hvs_model_save(m, &ubj, &lu, &err) == 0 && lu > 100 && ubj[0] == '{', "save: %s", err.msg);
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
    HVS_CHECK(hvs_model_load(back, lb, C + 1, &bad, &err) == HVS_ESERDE && !bad, "column count checked");
    HVS_CHECK(hvs_model_load(back, lb / 2, C, &bad, &err) == HVS_ESERDE && !bad, "truncated refused: %s",
              err.msg);
    HVS_CHECK(hvs_zlib_decompress(z, lz / 2, 64 << 20, &back, &lb, &err) == HVS_ESERDE, "cut zlib refused");
    HVS_CHECK(hvs_zlib_decompress(z, lz, 100, &back, &lb, &err) == HVS_ESERDE &&
                  strcmp(err.reason, "too_large") == 0,
              "size cap");
    unsigned char junk[64];
    memset(junk, 0x5a, sizeof junk);
    HVS_CHECK(hvs_model_load(junk, sizeof junk, C, &bad, &err) == HVS_ESERDE, "junk refused");

    /* two threads predicting at once */
    float o1[1000], o2[1000];
    job_t j1 = {m2, X, 1000, o1, 0}, j2 = {m2, X, 1000, o2, 0};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, predict_job, &j1);
    pthread_create(&t2, NULL, predict_job, &j2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    float ref[1000];
    hvs_model_predict(m2, X, 1000, ref, &err);
    HVS_CHECK(j1.rc == 0 && j2.rc == 0 && memcmp(o1, ref, sizeof ref) == 0 && memcmp(o2, ref, sizeof ref) == 0,
              "concurrent predictions equal");

    /* monotone constraint: y falls with x0 in the data, but we demand increasing in x0 */
    for (int i = 0; i < N; i++)
        Y[i] = (float)(-2.0 * X[i * C] + X[i * C + 1] + (rnd(&s) - 0.5) * 0.3);
    int8_t mono[C] = {1, 0, 0, 0};
    hvs_train_params_t pc = p;
    pc.monotone = mono;
    hvs_model_t *mf = NULL, *mc = NULL;
    HVS_REQUIRE(hvs_model_train(X, Y, NULL, ntr, C, X + ntr * C, Y + ntr, nv, &p, &mf, NULL, &err) == 0 &&
                    hvs_model_train(X, Y, NULL, ntr, C, X + ntr * C, Y + ntr, nv, &pc, &mc, NULL, &err) == 0,
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
    HVS_CHECK(falls_free > 5 && falls_con == 0, "monotone: unconstrained falls %d times, constrained %d",
              falls_free, falls_con);
    free(ubj);
    free(z);
    free(back);
    hvs_model_free(m);
    hvs_model_free(m2);
    hvs_model_free(mf);
    hvs_model_free(mc);
    return hvs_test_done();
}
