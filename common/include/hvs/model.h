/*
 * model.h - XGBoost models (C API, libxgboost 1.7) as the pipeline uses them: train on a dense
 * float matrix (NaN = missing) with the `hist` method, early stopping on a validation set,
 * monotone constraints; predict in batches; serialise to UBJ and compress (zlib) for the
 * `models` topic, and back.
 *
 * Ownership: hvs_model_t is created by train/load and freed by hvs_model_free (NULL-safe);
 * byte buffers returned are malloc'd and the caller's.
 * Thread-safety: hvs_model_predict may run on several threads at once on the same model
 * (XGBoost's in-place prediction keeps its output per thread); train/load/save/free do not
 * overlap with anything else on that model.
 * Errors: HVS_EMODEL with XGBoost's own message (reason "xgboost"), HVS_EINVAL for bad
 * arguments, HVS_ENOMEM; HVS_ESERDE "corrupt_model" for bytes that do not decompress or load.
 */
#ifndef HVS_MODEL_H
#define HVS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "hvs/err.h"

typedef struct hvs_model hvs_model_t;

typedef struct hvs_train_params {
    const char *objective;     /* "reg:squarederror" (default), "reg:absoluteerror", "binary:logistic" */
    int rounds;                /* most boosting rounds; default 400 */
    int early_stopping;        /* stop after this many rounds without validation gain; 0 = 30 */
    double eta;                /* default 0.05 */
    int max_depth;             /* default 6 */
    double min_child_weight;   /* default 5 */
    double subsample;          /* default 0.8 */
    double colsample;          /* default 0.8 */
    double lambda;             /* L2; default 1 */
    int nthread;               /* default 2 */
    uint64_t seed;
    const int8_t *monotone;    /* ncols entries: +1 increasing, -1 decreasing, 0 free; NULL none */
} hvs_train_params_t;

typedef struct hvs_train_report {
    int rounds;                /* rounds kept (best iteration + 1) */
    double valid_metric;       /* validation RMSE (or logloss) at the best round */
    double seconds;
} hvs_train_report_t;

/* Train on x (nrows x ncols, row-major) with labels y and optional weights w (NULL = 1); the
 * validation rows (xv, yv, nv; nv may be 0) drive early stopping. */
int hvs_model_train(const float *x, const float *y, const float *w, size_t nrows, size_t ncols,
                    const float *xv, const float *yv, size_t nv, const hvs_train_params_t *p,
                    hvs_model_t **out, hvs_train_report_t *report, hvs_err_t *err);

/* Predictions of nrows rows of the model's column count into out (nrows floats). */
int hvs_model_predict(hvs_model_t *m, const float *x, size_t nrows, float *out, hvs_err_t *err);
size_t hvs_model_columns(const hvs_model_t *m);

/* UBJ bytes of the model (what Python's xgboost.Booster(model_file=...) loads). */
int hvs_model_save(hvs_model_t *m, unsigned char **bytes, size_t *len, hvs_err_t *err);
/* Load UBJ (or XGBoost JSON) bytes; ncols = the feature count the caller will feed (checked
 * against the model's). */
int hvs_model_load(const void *bytes, size_t len, size_t ncols, hvs_model_t **out, hvs_err_t *err);
void hvs_model_free(hvs_model_t *m);

/* zlib (RFC 1950) both ways; decompress refuses outputs larger than max_out. */
int hvs_zlib_compress(const void *in, size_t len, unsigned char **out, size_t *outlen, hvs_err_t *err);
int hvs_zlib_decompress(const void *in, size_t len, size_t max_out, unsigned char **out,
                        size_t *outlen, hvs_err_t *err);

#endif
